/* model.c: resolves protoc's descriptors into what the emitters print (see
 * model.h). Owns the protoc-c specifics the emitters must not guess: the
 * (pb_c_file) options that change C names (c_package) or suppress protoc-c's
 * output (no_generate), and the checks that every generated name is a valid,
 * unique C identifier next to the ones protoc-c generates for the same
 * service. */
#include "model.h"

#include <baton/alloc.h>

#include <stdint.h>
#include <string.h>

#include "emit.h"
#include "names.h"

/* protobuf-c.proto: extend google.protobuf.FileOptions { pb_c_file = 1019 } */
#define PB_C_FILE_OPTIONS_FIELD 1019
#define PB_C_NO_GENERATE_FIELD 1
#define PB_C_C_PACKAGE_FIELD 6

/* ---- protoc-c's file options ------------------------------------------ */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* Reads no_generate and c_package out of one serialized ProtobufCFileOptions
 * (later occurrences win, as protobuf merging does). *c_package is replaced
 * by a bt_malloc'd copy. Returns -1 on malformed input. */
static int parse_pb_c_options(const uint8_t *p, size_t len, int *no_generate,
                              char **c_package) {
  const uint8_t *end = p + len;
  while (p < end) {
    uint64_t key, v;
    if (read_varint(&p, end, &key) < 0)
      return -1;
    uint64_t field = key >> 3;
    switch (key & 7) {
    case PROTOBUF_C_WIRE_TYPE_VARINT:
      if (read_varint(&p, end, &v) < 0)
        return -1;
      if (field == PB_C_NO_GENERATE_FIELD)
        *no_generate = v != 0;
      break;
    case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED:
      if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
        return -1;
      if (field == PB_C_C_PACKAGE_FIELD) {
        bt_free(*c_package);
        *c_package = bt_strndup((const char *)p, (size_t)v);
      }
      p += v;
      break;
    case PROTOBUF_C_WIRE_TYPE_64BIT:
      if (end - p < 8)
        return -1;
      p += 8;
      break;
    case PROTOBUF_C_WIRE_TYPE_32BIT:
      if (end - p < 4)
        return -1;
      p += 4;
      break;
    default:
      return -1;
    }
  }
  return 0;
}

/* Our descriptor.pb-c does not know the extension, so protobuf-c kept it
 * among FileOptions' unknown fields: the raw bytes after the tag, which for
 * a length-delimited field start with the length. */
static int pb_c_options(const Google__Protobuf__FileDescriptorProto *fd,
                        int *no_generate, char **c_package) {
  *no_generate = 0;
  *c_package = NULL;
  if (!fd->options)
    return 0;
  const ProtobufCMessage *opts = &fd->options->base;
  for (unsigned i = 0; i < opts->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *uf = &opts->unknown_fields[i];
    if (uf->tag != PB_C_FILE_OPTIONS_FIELD ||
        uf->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
      continue;
    const uint8_t *p = uf->data, *end = uf->data + uf->len;
    uint64_t len;
    if (read_varint(&p, end, &len) < 0 || len != (uint64_t)(end - p) ||
        parse_pb_c_options(p, (size_t)len, no_generate, c_package) < 0)
      return -1;
  }
  return 0;
}

/* "scope.name", or "name" at the root. */
static char *join(const char *scope, const char *name) {
  return scope[0] ? emit_strf("%s.%s", scope, name) : emit_strf("%s", name);
}

/* ---- the type index ----------------------------------------------------- */

static void index_add(model_index *ix, const char *proto_full,
                      const char *c_full) {
  ix->types = bt_realloc(ix->types, (ix->n_types + 1) * sizeof *ix->types);
  model_type *t = &ix->types[ix->n_types++];
  emit_buf b;
  emit_init(&b);
  t->full = emit_strf(".%s", proto_full);
  names_full_to_c(&b, c_full);
  t->ctype = emit_release(&b);
  names_full_to_lower(&b, c_full);
  t->lower = emit_release(&b);
}

/* proto_scope names the message on the wire; c_scope is the same with
 * protoc-c's c_package in place of the package. */
static void index_message(model_index *ix, const char *proto_scope,
                          const char *c_scope,
                          const Google__Protobuf__DescriptorProto *m) {
  char *proto_full = join(proto_scope, m->name);
  char *c_full = join(c_scope, m->name);
  index_add(ix, proto_full, c_full);
  for (size_t i = 0; i < m->n_nested_type; i++)
    index_message(ix, proto_full, c_full, m->nested_type[i]);
  bt_free(proto_full);
  bt_free(c_full);
}

void model_index_init(
    model_index *ix,
    const Google__Protobuf__Compiler__CodeGeneratorRequest *req) {
  ix->n_types = 0;
  ix->types = NULL;
  for (size_t i = 0; i < req->n_proto_file; i++) {
    const Google__Protobuf__FileDescriptorProto *fd = req->proto_file[i];
    const char *package = fd->package ? fd->package : "";
    int no_generate;
    char *c_package;
    /* A malformed option only matters for files we generate; those report
     * it from model_file_init. */
    if (pb_c_options(fd, &no_generate, &c_package) < 0)
      c_package = NULL;
    for (size_t j = 0; j < fd->n_message_type; j++)
      index_message(ix, package, c_package ? c_package : package,
                    fd->message_type[j]);
    bt_free(c_package);
  }
}

void model_index_clear(model_index *ix) {
  for (size_t i = 0; i < ix->n_types; i++) {
    bt_free(ix->types[i].full);
    bt_free(ix->types[i].ctype);
    bt_free(ix->types[i].lower);
  }
  bt_free(ix->types);
  ix->n_types = 0;
  ix->types = NULL;
}

const model_type *model_index_find(const model_index *ix, const char *full) {
  for (size_t i = 0; i < ix->n_types; i++)
    if (strcmp(ix->types[i].full, full) == 0)
      return &ix->types[i];
  return NULL;
}

/* ---- generated-name clash checks --------------------------------------- */

/* Every C identifier the file's stubs and protoc-c's service code define,
 * with who defines it, to find two that coincide. */
typedef struct name_set {
  size_t n;
  char **names;
  char **owners;
} name_set;

static void name_set_clear(name_set *set) {
  for (size_t i = 0; i < set->n; i++) {
    bt_free(set->names[i]);
    bt_free(set->owners[i]);
  }
  bt_free(set->names);
  bt_free(set->owners);
}

/* Takes ownership of name. Returns -1 with *err set on a clash. */
static int name_set_add(name_set *set, char *name, const char *owner,
                        const char *file, char **err) {
  for (size_t i = 0; i < set->n; i++) {
    if (strcmp(set->names[i], name) == 0) {
      *err = emit_strf("%s: the C name %s of %s clashes with %s; rename one "
                       "of them",
                       file, name, owner, set->owners[i]);
      bt_free(name);
      return -1;
    }
  }
  set->names = bt_realloc(set->names, (set->n + 1) * sizeof *set->names);
  set->owners = bt_realloc(set->owners, (set->n + 1) * sizeof *set->owners);
  set->names[set->n] = name;
  set->owners[set->n] = bt_strdup(owner);
  set->n++;
  return 0;
}

static int check_service_names(name_set *set, const model_service *s,
                               const char *file, char **err) {
  /* What protoc-c defines for the service (c_service.cc). */
  static const char *const pbc_service_suffixes[] = {
      "__init", "__descriptor", "__method_descriptors",
      "__method_indices_by_name"};
  /* What the stubs define for the service (generate.c). */
  static const char *const baton_service_suffixes[] = {
      "__baton_service", "__baton_register", "__baton_methods"};
  /* What the stubs define per method. */
  static const char *const baton_method_suffixes[] = {
      "__invoke", "__send", "__start", "__recv", "_sync"};
  char *owner_pbc = emit_strf("protoc-c's code for service %s", s->full);
  char *owner_baton = emit_strf("the stubs of service %s", s->full);
  int rv = -1;

  for (size_t i = 0; i < sizeof pbc_service_suffixes / sizeof(char *); i++)
    if (name_set_add(set, emit_strf("%s%s", s->lower, pbc_service_suffixes[i]),
                     owner_pbc, file, err) < 0)
      goto out;
  if (name_set_add(set, emit_strf("%s_Service", s->ctype), owner_pbc, file,
                   err) < 0 ||
      name_set_add(set, emit_strf("%s_ServiceDestroy", s->ctype), owner_pbc,
                   file, err) < 0 ||
      name_set_add(set, emit_strf("%s_BatonHandlers", s->ctype), owner_baton,
                   file, err) < 0)
    goto out;
  for (size_t i = 0; i < sizeof baton_service_suffixes / sizeof(char *); i++)
    if (name_set_add(set,
                     emit_strf("%s%s", s->lower, baton_service_suffixes[i]),
                     owner_baton, file, err) < 0)
      goto out;
  for (size_t m = 0; m < s->n_methods; m++) {
    const model_method *md = &s->methods[m];
    char *owner = emit_strf("the stubs of method %s.%s", s->full, md->name);
    char *owner_pbc_m =
        emit_strf("protoc-c's client function for %s.%s", s->full, md->name);
    int clash =
        name_set_add(set, emit_strf("%s__%s", s->lower, md->lower), owner_pbc_m,
                     file, err) < 0 ||
        name_set_add(set, emit_strf("%s__%s__PATH", s->upper, md->upper), owner,
                     file, err) < 0;
    for (size_t i = 0;
         !clash && i < sizeof baton_method_suffixes / sizeof(char *); i++)
      clash = name_set_add(set,
                           emit_strf("%s__%s%s", s->lower, md->lower,
                                     baton_method_suffixes[i]),
                           owner, file, err) < 0;
    bt_free(owner);
    bt_free(owner_pbc_m);
    if (clash)
      goto out;
  }
  rv = 0;
out:
  bt_free(owner_pbc);
  bt_free(owner_baton);
  return rv;
}

/* ---- files, services, methods ------------------------------------------- */

static model_kind
method_kind(const Google__Protobuf__MethodDescriptorProto *m) {
  int cs = m->has_client_streaming && m->client_streaming;
  int ss = m->has_server_streaming && m->server_streaming;
  if (cs && ss)
    return MODEL_BIDI_STREAMING;
  if (cs)
    return MODEL_CLIENT_STREAMING;
  if (ss)
    return MODEL_SERVER_STREAMING;
  return MODEL_UNARY;
}

static int method_init(model_method *md, const model_service *s,
                       const model_index *ix,
                       const Google__Protobuf__MethodDescriptorProto *m,
                       const char *file, char **err) {
  emit_buf b;
  emit_init(&b);
  md->name = m->name;
  names_camel_to_lower(&b, m->name, strlen(m->name));
  md->lower = emit_release(&b);
  names_camel_to_upper(&b, m->name, strlen(m->name));
  md->upper = emit_release(&b);
  md->path = emit_strf("/%s/%s", s->full, m->name);
  md->kind = method_kind(m);
  const char *in = m->input_type ? m->input_type : "";
  const char *out = m->output_type ? m->output_type : "";
  md->input = model_index_find(ix, in);
  md->output = model_index_find(ix, out);
  if (!md->input || !md->output) {
    *err = emit_strf("%s: method %s.%s: message type \"%s\" not found among "
                     "the request's files",
                     file, s->full, m->name, !md->input ? in : out);
    return -1;
  }
  if (names_is_c_keyword(md->lower)) {
    *err = emit_strf("%s: method %s.%s: its C name \"%s\" is a C keyword", file,
                     s->full, m->name, md->lower);
    return -1;
  }
  return 0;
}

static int service_init(model_service *s, const model_index *ix,
                        const Google__Protobuf__FileDescriptorProto *fd,
                        const char *c_package,
                        const Google__Protobuf__ServiceDescriptorProto *sd,
                        char **err) {
  const char *package = fd->package ? fd->package : "";
  char *c_full = join(c_package ? c_package : package, sd->name);
  emit_buf b;
  emit_init(&b);
  s->full = join(package, sd->name);
  names_full_to_c(&b, c_full);
  s->ctype = emit_release(&b);
  names_full_to_lower(&b, c_full);
  s->lower = emit_release(&b);
  names_full_to_upper(&b, c_full);
  s->upper = emit_release(&b);
  bt_free(c_full);
  s->n_methods = 0;
  s->methods = bt_calloc(sd->n_method ? sd->n_method : 1, sizeof *s->methods);
  for (size_t i = 0; i < sd->n_method; i++) {
    s->n_methods++;
    if (method_init(&s->methods[i], s, ix, sd->method[i], fd->name, err) < 0)
      return -1;
  }
  return 0;
}

static void service_clear(model_service *s) {
  for (size_t i = 0; i < s->n_methods; i++) {
    bt_free(s->methods[i].lower);
    bt_free(s->methods[i].upper);
    bt_free(s->methods[i].path);
  }
  bt_free(s->methods);
  bt_free(s->full);
  bt_free(s->ctype);
  bt_free(s->lower);
  bt_free(s->upper);
}

int model_file_init(model_file *f, const model_index *ix,
                    const Google__Protobuf__FileDescriptorProto *fd,
                    char **err) {
  emit_buf b;
  emit_init(&b);
  f->name = fd->name;
  f->stem = names_strip_proto(fd->name);
  emit_str(&b, "PROTOC_GEN_BATON_");
  names_file_identifier(&b, fd->name);
  emit_str(&b, "_INCLUDED");
  f->guard = emit_release(&b);
  f->n_services = 0;
  f->services =
      bt_calloc(fd->n_service ? fd->n_service : 1, sizeof *f->services);

  int no_generate;
  char *c_package = NULL;
  name_set names = {0, NULL, NULL};
  int rv = -1;
  if (pb_c_options(fd, &no_generate, &c_package) < 0) {
    *err = emit_strf("%s: malformed (pb_c_file) options", fd->name);
    goto out;
  }
  if (no_generate) {
    *err = emit_strf("%s: option (pb_c_file).no_generate is set, so protoc-c "
                     "makes no %s.pb-c.h for the stubs to build on",
                     fd->name, f->stem);
    goto out;
  }
  for (size_t i = 0; i < fd->n_service; i++) {
    f->n_services++;
    if (service_init(&f->services[i], ix, fd, c_package, fd->service[i], err) <
        0)
      goto out;
    if (check_service_names(&names, &f->services[i], fd->name, err) < 0)
      goto out;
  }
  rv = 0;
out:
  name_set_clear(&names);
  bt_free(c_package);
  return rv;
}

void model_file_clear(model_file *f) {
  for (size_t i = 0; i < f->n_services; i++)
    service_clear(&f->services[i]);
  bt_free(f->services);
  bt_free(f->stem);
  bt_free(f->guard);
  f->services = NULL;
  f->n_services = 0;
  f->stem = f->guard = NULL;
}

const char *model_kind_constant(model_kind kind) {
  static const char *const constants[] = {
      "BT_CALL_UNARY", "BT_CALL_SERVER_STREAMING", "BT_CALL_CLIENT_STREAMING",
      "BT_CALL_BIDI_STREAMING"};
  return constants[kind];
}

const char *model_kind_text(model_kind kind) {
  static const char *const texts[] = {"unary", "server streaming",
                                      "client streaming", "bidi streaming"};
  return texts[kind];
}
