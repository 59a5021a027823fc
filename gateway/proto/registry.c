/* registry.c (gateway): the protobuf types and methods loaded from a
 * FileDescriptorSet.
 *
 * The set is decoded with protobuf-c's code for descriptor.proto into a
 * scratch arena, then copied into the registry's own arena as the flat,
 * resolved structs of registry.h: every message (nested ones too) and enum
 * under its full name, every field with its type reference turned into a
 * pointer, every method of every service. Name lookups go through hash
 * tables built here; a message's fields are found by name with a sorted
 * index and by number with a dense table (or a sorted one when the numbers
 * are sparse), since the decoder asks for one per tag it reads. After load
 * nothing is written, so every worker shares the registry without locks. */
#include "registry.h"
#include "msglayout.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/alloc.h>
#include <baton/arena.h>

#include "google/protobuf/descriptor.pb-c.h"

/* What an empty message's data points at (its length is 0). */
static const uint8_t empty_data[1];

#define MAX_FIELD_NUMBER 536870911u /* 2^29 - 1 */
/* A file this big is not a descriptor set (protobuf's own are < 1 MiB). */
#define MAX_SET_SIZE ((size_t)64 << 20)
/* A by-number table is dense when it wastes at most this much. */
#define DENSE_SLACK 64u

/* A message with what lookups need; pub must stay first (a gw_message
 * pointer is converted back to this). */
typedef struct msg_impl {
  gw_message pub;
  const gw_field **by_name;   /* fields sorted by name */
  const gw_field **by_number; /* sorted by number (pub.dense_by_number is
                                 the table, when the numbers allow one) */
  struct gw_msg empty;        /* this type with no field set */
} msg_impl;

/* Open addressing, linear probing, power-of-two capacity; keys live in
 * the registry's arena. */
typedef struct htab {
  const char **keys;
  void **vals;
  size_t cap;
} htab;

struct gw_registry {
  bt_arena *arena;
  msg_impl *msgs;
  size_t n_msgs;
  gw_enum *enums;
  size_t n_enums;
  gw_method *methods;
  size_t n_methods;
  htab msg_tab, enum_tab, method_tab;
};

/* ---- hash tables ----------------------------------------------------- */

static uint64_t hash_str(const char *s, size_t len) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

static void htab_init(bt_arena *a, htab *t, size_t n) {
  size_t cap = 8;
  while (cap < n * 2)
    cap *= 2;
  t->cap = cap;
  t->keys = bt_arena_calloc(a, cap * sizeof(*t->keys));
  t->vals = bt_arena_calloc(a, cap * sizeof(*t->vals));
}

/* Returns -1 when key is already present. */
static int htab_put(htab *t, const char *key, void *val) {
  size_t mask = t->cap - 1;
  size_t i = (size_t)hash_str(key, strlen(key)) & mask;
  while (t->keys[i]) {
    if (strcmp(t->keys[i], key) == 0)
      return -1;
    i = (i + 1) & mask;
  }
  t->keys[i] = key;
  t->vals[i] = val;
  return 0;
}

static void *htab_get(const htab *t, const char *key, size_t len) {
  if (!t->cap)
    return NULL;
  size_t mask = t->cap - 1;
  size_t i = (size_t)hash_str(key, len) & mask;
  while (t->keys[i]) {
    if (strncmp(t->keys[i], key, len) == 0 && t->keys[i][len] == '\0')
      return t->vals[i];
    i = (i + 1) & mask;
  }
  return NULL;
}

/* ---- building -------------------------------------------------------- */

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto msg_proto;
typedef Google__Protobuf__EnumDescriptorProto enum_proto;
typedef Google__Protobuf__FieldDescriptorProto field_proto;

/* Load state: the registry being built and, per message, where it came
 * from (the scratch arena holds both). */
typedef struct builder {
  gw_registry *r;
  const msg_proto **msg_src;
  const file_proto **msg_file;
  size_t msg_i, enum_i;
  char *err;
  size_t errlen;
} builder;

static int fail(builder *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int fail(builder *b, const char *fmt, ...) {
  if (b->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err, b->errlen, fmt, ap);
    va_end(ap);
  }
  return -1;
}

static const char *nz(const char *s) {
  return s ? s : "";
}

static void count_msg(const msg_proto *m, size_t *n_msgs, size_t *n_enums) {
  (*n_msgs)++;
  *n_enums += m->n_enum_type;
  for (size_t i = 0; i < m->n_nested_type; i++)
    count_msg(m->nested_type[i], n_msgs, n_enums);
}

/* "scope.name", or name when scope is empty, in the registry's arena. */
static char *join_name(builder *b, const char *scope, const char *name) {
  size_t sl = strlen(scope), nl = strlen(name);
  char *s = bt_arena_alloc(b->r->arena, sl + nl + 2);
  if (sl) {
    memcpy(s, scope, sl);
    s[sl++] = '.';
  }
  memcpy(s + sl, name, nl + 1);
  return s;
}

static int add_enum(builder *b, const char *scope, const enum_proto *ep) {
  if (!ep->name || !*ep->name)
    return fail(b, "an enum in scope '%s' has no name", scope);
  gw_enum *e = &b->r->enums[b->enum_i++];
  e->full_name = join_name(b, scope, ep->name);
  e->n_values = ep->n_value;
  const char **names =
      bt_arena_alloc(b->r->arena, (ep->n_value + 1) * sizeof(*names));
  int32_t *numbers =
      bt_arena_alloc(b->r->arena, (ep->n_value + 1) * sizeof(*numbers));
  for (size_t i = 0; i < ep->n_value; i++) {
    const char *vn = nz(ep->value[i]->name);
    names[i] = bt_arena_strndup(b->r->arena, vn, strlen(vn));
    numbers[i] = ep->value[i]->number;
  }
  e->names = names;
  e->numbers = numbers;
  if (htab_put(&b->r->enum_tab, e->full_name, e) != 0)
    return fail(b, "enum %s is defined twice in the descriptor set",
                e->full_name);
  return 0;
}

/* Registers m and its nested types and enums (fields come later, once
 * every type has a name to be found by). */
static int add_msg(builder *b, const file_proto *file, const char *scope,
                   const msg_proto *mp) {
  if (!mp->name || !*mp->name)
    return fail(b, "a message in scope '%s' of %s has no name", scope,
                nz(file->name));
  size_t idx = b->msg_i++;
  msg_impl *mi = &b->r->msgs[idx];
  mi->pub.full_name = join_name(b, scope, mp->name);
  mi->pub.map_entry =
      mp->options && mp->options->has_map_entry && mp->options->map_entry;
  b->msg_src[idx] = mp;
  b->msg_file[idx] = file;
  if (htab_put(&b->r->msg_tab, mi->pub.full_name, mi) != 0)
    return fail(b, "message %s is defined twice in the descriptor set",
                mi->pub.full_name);
  for (size_t i = 0; i < mp->n_enum_type; i++)
    if (add_enum(b, mi->pub.full_name, mp->enum_type[i]) != 0)
      return -1;
  for (size_t i = 0; i < mp->n_nested_type; i++)
    if (add_msg(b, file, mi->pub.full_name, mp->nested_type[i]) != 0)
      return -1;
  return 0;
}

static int is_packable(gw_ftype t) {
  return t != GW_TYPE_STRING && t != GW_TYPE_BYTES && t != GW_TYPE_MESSAGE &&
         t != GW_TYPE_GROUP;
}

static int cmp_by_name(const void *a, const void *b) {
  const gw_field *fa = *(const gw_field *const *)a;
  const gw_field *fb = *(const gw_field *const *)b;
  return strcmp(fa->name, fb->name);
}

static int cmp_by_number(const void *a, const void *b) {
  const gw_field *fa = *(const gw_field *const *)a;
  const gw_field *fb = *(const gw_field *const *)b;
  return fa->number < fb->number ? -1 : fa->number > fb->number;
}

/* Resolves a field's type_name (".pkg.Msg", as protoc writes it). */
static int resolve_type(builder *b, const msg_impl *mi, const field_proto *fp,
                        gw_field *f) {
  const char *tn = fp->type_name;
  if (!tn || !*tn)
    return fail(b, "field %s.%s has type %s but no type name",
                mi->pub.full_name, f->name,
                f->type == GW_TYPE_ENUM ? "enum" : "message");
  const char *name = tn[0] == '.' ? tn + 1 : tn;
  size_t len = strlen(name);
  const msg_impl *m = htab_get(&b->r->msg_tab, name, len);
  const gw_enum *e = m ? NULL : htab_get(&b->r->enum_tab, name, len);
  /* protoc always sets type; a hand-made set may leave it to the name. */
  if (!fp->has_type)
    f->type = m ? GW_TYPE_MESSAGE : GW_TYPE_ENUM;
  if (f->type == GW_TYPE_ENUM ? !e : !m)
    return fail(b,
                "field %s.%s refers to %s, which is not in the descriptor "
                "set; was it made with --include_imports?",
                mi->pub.full_name, f->name, name);
  if (f->type == GW_TYPE_ENUM)
    f->enum_type = e;
  else
    f->message = &m->pub;
  return 0;
}

static int build_fields(builder *b, size_t idx) {
  bt_arena *a = b->r->arena;
  msg_impl *mi = &b->r->msgs[idx];
  const msg_proto *mp = b->msg_src[idx];
  const char *syntax = nz(b->msg_file[idx]->syntax);
  int proto3 = strcmp(syntax, "proto3") == 0;
  if (!proto3 && *syntax && strcmp(syntax, "proto2") != 0)
    return fail(b, "%s: syntax \"%s\" is not supported",
                nz(b->msg_file[idx]->name), syntax);

  /* Oneofs whose members are all proto3 optional are synthetic: hidden,
   * the others renumbered densely. */
  int *oneof_map = bt_arena_alloc(a, (mp->n_oneof_decl + 1) * sizeof(int));
  for (size_t i = 0; i < mp->n_oneof_decl; i++)
    oneof_map[i] = 0;
  for (size_t i = 0; i < mp->n_field; i++) {
    const field_proto *fp = mp->field[i];
    if (!fp->has_oneof_index)
      continue;
    if (fp->oneof_index < 0 || (size_t)fp->oneof_index >= mp->n_oneof_decl)
      return fail(b, "field %s.%s has oneof index %d out of range",
                  mi->pub.full_name, nz(fp->name), (int)fp->oneof_index);
    if (fp->proto3_optional)
      oneof_map[fp->oneof_index] = -1;
  }
  const char **oneof_names =
      bt_arena_alloc(a, (mp->n_oneof_decl + 1) * sizeof(*oneof_names));
  size_t n_oneofs = 0;
  for (size_t i = 0; i < mp->n_oneof_decl; i++) {
    if (oneof_map[i] < 0)
      continue;
    const char *on = nz(mp->oneof_decl[i]->name);
    oneof_names[n_oneofs] = bt_arena_strndup(a, on, strlen(on));
    oneof_map[i] = (int)n_oneofs++;
  }
  mi->pub.oneof_names = oneof_names;
  mi->pub.n_oneofs = n_oneofs;

  gw_field *fields = bt_arena_calloc(a, (mp->n_field + 1) * sizeof(*fields));
  uint32_t max_number = 0;
  for (size_t i = 0; i < mp->n_field; i++) {
    const field_proto *fp = mp->field[i];
    gw_field *f = &fields[i];
    if (!fp->name || !*fp->name)
      return fail(b, "a field of %s has no name", mi->pub.full_name);
    f->name = bt_arena_strndup(a, fp->name, strlen(fp->name));
    f->index = (uint32_t)i;
    if (!fp->has_number || fp->number < 1 ||
        (uint32_t)fp->number > MAX_FIELD_NUMBER)
      return fail(b, "field %s.%s has invalid number %d", mi->pub.full_name,
                  f->name, (int)fp->number);
    f->number = (uint32_t)fp->number;
    if (f->number > max_number)
      max_number = f->number;
    f->type = fp->has_type ? (gw_ftype)fp->type : (gw_ftype)0;
    if (fp->has_type && (fp->type < 1 || fp->type > 18))
      return fail(b, "field %s.%s has unknown type %d", mi->pub.full_name,
                  f->name, (int)fp->type);
    if (!fp->has_type && (!fp->type_name || !*fp->type_name))
      return fail(b, "field %s.%s has no type", mi->pub.full_name, f->name);
    if (!fp->has_type || f->type == GW_TYPE_MESSAGE ||
        f->type == GW_TYPE_GROUP || f->type == GW_TYPE_ENUM) {
      if (resolve_type(b, mi, fp, f) != 0)
        return -1;
    }
    f->repeated =
        fp->has_label &&
        fp->label ==
            GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED;
    int explicit_packed = fp->options && fp->options->has_packed;
    if (f->repeated && is_packable(f->type))
      f->packed = proto3 ? !(explicit_packed && !fp->options->packed)
                         : (explicit_packed && fp->options->packed);
    f->oneof = -1;
    if (fp->has_oneof_index && !fp->proto3_optional)
      f->oneof = oneof_map[fp->oneof_index];
    /* proto2 singular fields always track presence; proto3 ones only as
     * messages, oneof members or `optional`. */
    f->has_presence = !f->repeated && (!proto3 || f->type == GW_TYPE_MESSAGE ||
                                       f->type == GW_TYPE_GROUP ||
                                       f->oneof >= 0 || fp->proto3_optional);
  }
  mi->pub.fields = fields;
  mi->pub.n_fields = mp->n_field;

  size_t n = mp->n_field;
  const gw_field **by_name = bt_arena_alloc(a, (n + 1) * sizeof(*by_name));
  for (size_t i = 0; i < n; i++)
    by_name[i] = &fields[i];
  qsort(by_name, n, sizeof(*by_name), cmp_by_name);
  for (size_t i = 1; i < n; i++)
    if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0)
      return fail(b, "message %s has two fields named %s", mi->pub.full_name,
                  by_name[i]->name);
  mi->by_name = by_name;

  const gw_field **sorted = bt_arena_alloc(a, (n + 1) * sizeof(*sorted));
  memcpy(sorted, by_name, n * sizeof(*sorted));
  qsort(sorted, n, sizeof(*sorted), cmp_by_number);
  for (size_t i = 1; i < n; i++)
    if (sorted[i - 1]->number == sorted[i]->number)
      return fail(b, "message %s has two fields numbered %u", mi->pub.full_name,
                  (unsigned)sorted[i]->number);
  if (max_number <= 2 * n + DENSE_SLACK) {
    const gw_field **dense =
        bt_arena_calloc(a, ((size_t)max_number + 1) * sizeof(*dense));
    for (size_t i = 0; i < n; i++)
      dense[fields[i].number] = &fields[i];
    mi->pub.dense_by_number = dense;
    mi->pub.n_dense = max_number + 1;
  }
  mi->by_number = sorted;
  return 0;
}

static const gw_message *method_type(builder *b, const char *mname,
                                     const char *tn, const char *what) {
  const char *name = nz(tn);
  if (name[0] == '.')
    name++;
  const msg_impl *m = htab_get(&b->r->msg_tab, name, strlen(name));
  if (!m)
    fail(b,
         "method %s: %s type '%s' is not in the descriptor set; was it made "
         "with --include_imports?",
         mname, what, name);
  return m ? &m->pub : NULL;
}

static int build_methods(builder *b,
                         const Google__Protobuf__FileDescriptorSet *set) {
  bt_arena *a = b->r->arena;
  size_t k = 0;
  for (size_t fi = 0; fi < set->n_file; fi++) {
    const file_proto *file = set->file[fi];
    for (size_t si = 0; si < file->n_service; si++) {
      const Google__Protobuf__ServiceDescriptorProto *sp = file->service[si];
      if (!sp->name || !*sp->name)
        return fail(b, "a service in %s has no name", nz(file->name));
      for (size_t mi = 0; mi < sp->n_method; mi++) {
        const Google__Protobuf__MethodDescriptorProto *mp = sp->method[mi];
        if (!mp->name || !*mp->name)
          return fail(b, "a method of service %s has no name", sp->name);
        gw_method *m = &b->r->methods[k++];
        const char *pkg = nz(file->package);
        size_t len =
            1 + strlen(pkg) + 1 + strlen(sp->name) + 1 + strlen(mp->name) + 1;
        char *path = bt_arena_alloc(a, len);
        snprintf(path, len, "/%s%s%s/%s", pkg, *pkg ? "." : "", sp->name,
                 mp->name);
        m->path = path;
        m->name = path + 1;
        if (!(m->input = method_type(b, m->name, mp->input_type, "input")))
          return -1;
        if (!(m->output = method_type(b, m->name, mp->output_type, "output")))
          return -1;
        m->client_streaming = mp->client_streaming;
        m->server_streaming = mp->server_streaming;
        if (htab_put(&b->r->method_tab, m->name, m) != 0)
          return fail(b, "method %s is defined twice in the descriptor set",
                      m->name);
      }
    }
  }
  return 0;
}

static int build(builder *b, const Google__Protobuf__FileDescriptorSet *set,
                 bt_arena *scratch) {
  gw_registry *r = b->r;
  size_t n_msgs = 0, n_enums = 0, n_methods = 0;
  for (size_t fi = 0; fi < set->n_file; fi++) {
    const file_proto *file = set->file[fi];
    for (size_t i = 0; i < file->n_message_type; i++)
      count_msg(file->message_type[i], &n_msgs, &n_enums);
    n_enums += file->n_enum_type;
    for (size_t i = 0; i < file->n_service; i++)
      n_methods += file->service[i]->n_method;
  }
  r->msgs = bt_arena_calloc(r->arena, (n_msgs + 1) * sizeof(*r->msgs));
  r->enums = bt_arena_calloc(r->arena, (n_enums + 1) * sizeof(*r->enums));
  r->methods = bt_arena_calloc(r->arena, (n_methods + 1) * sizeof(*r->methods));
  r->n_msgs = n_msgs;
  r->n_enums = n_enums;
  r->n_methods = n_methods;
  htab_init(r->arena, &r->msg_tab, n_msgs);
  htab_init(r->arena, &r->enum_tab, n_enums);
  htab_init(r->arena, &r->method_tab, n_methods);
  b->msg_src = bt_arena_alloc(scratch, (n_msgs + 1) * sizeof(*b->msg_src));
  b->msg_file = bt_arena_alloc(scratch, (n_msgs + 1) * sizeof(*b->msg_file));

  for (size_t fi = 0; fi < set->n_file; fi++) {
    const file_proto *file = set->file[fi];
    const char *pkg = nz(file->package);
    for (size_t i = 0; i < file->n_enum_type; i++)
      if (add_enum(b, pkg, file->enum_type[i]) != 0)
        return -1;
    for (size_t i = 0; i < file->n_message_type; i++)
      if (add_msg(b, file, pkg, file->message_type[i]) != 0)
        return -1;
  }
  for (size_t i = 0; i < n_msgs; i++)
    if (build_fields(b, i) != 0)
      return -1;
  for (size_t i = 0; i < n_msgs; i++) {
    /* A map entry is read as key = 1, value = 2 by everyone after us. */
    const gw_message *m = &r->msgs[i].pub;
    if (m->map_entry && (m->n_fields != 2 || m->fields[0].number != 1 ||
                         m->fields[1].number != 2 || m->fields[0].repeated ||
                         m->fields[1].repeated))
      return fail(b,
                  "map entry %s must have exactly fields key = 1 and "
                  "value = 2",
                  m->full_name);
  }
  for (size_t i = 0; i < n_msgs; i++)
    r->msgs[i].empty =
        (struct gw_msg){.type = &r->msgs[i].pub, .data = empty_data};
  return build_methods(b, set);
}

gw_registry *gw_registry_from_bytes(const uint8_t *data, size_t len, char *err,
                                    size_t errlen) {
  if (errlen)
    err[0] = '\0';
  bt_arena *scratch = bt_arena_new(0);
  Google__Protobuf__FileDescriptorSet *set =
      google__protobuf__file_descriptor_set__unpack(
          bt_arena_protobuf_allocator(scratch), len, data);
  if (!set) {
    if (errlen)
      snprintf(err, errlen,
               "not a FileDescriptorSet (make one with protoc "
               "--include_imports --descriptor_set_out=FILE)");
    bt_arena_free(scratch);
    return NULL;
  }
  if (set->n_file == 0) {
    if (errlen)
      snprintf(err, errlen, "the descriptor set holds no files");
    bt_arena_free(scratch);
    return NULL;
  }
  bt_arena *arena = bt_arena_new(16384);
  gw_registry *r = bt_arena_calloc(arena, sizeof(*r));
  r->arena = arena;
  builder b = {.r = r, .err = err, .errlen = errlen};
  int rv = build(&b, set, scratch);
  bt_arena_free(scratch);
  if (rv != 0) {
    bt_arena_free(arena);
    return NULL;
  }
  return r;
}

gw_registry *gw_registry_load(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errlen)
      snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 65536, len = 0, n;
  uint8_t *buf = bt_malloc(cap);
  while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
    len += n;
    if (len == cap) {
      if (cap >= MAX_SET_SIZE)
        break;
      cap *= 2;
      buf = bt_realloc(buf, cap);
    }
  }
  int read_err = ferror(f);
  fclose(f);
  if (read_err || len >= MAX_SET_SIZE) {
    if (errlen)
      snprintf(err, errlen,
               read_err ? "cannot read %s" : "%s: larger than 64 MiB", path);
    bt_free(buf);
    return NULL;
  }
  char inner[512];
  gw_registry *r = gw_registry_from_bytes(buf, len, inner, sizeof(inner));
  bt_free(buf);
  if (!r && errlen)
    snprintf(err, errlen, "%s: %s", path, inner);
  return r;
}

void gw_registry_free(gw_registry *r) {
  if (r)
    bt_arena_free(r->arena);
}

/* ---- lookups --------------------------------------------------------- */

const gw_message *gw_registry_message(const gw_registry *r,
                                      const char *full_name) {
  if (!r || !full_name)
    return NULL;
  if (full_name[0] == '.')
    full_name++;
  const msg_impl *m = htab_get(&r->msg_tab, full_name, strlen(full_name));
  return m ? &m->pub : NULL;
}

const gw_enum *gw_registry_enum(const gw_registry *r, const char *full_name) {
  if (!r || !full_name)
    return NULL;
  if (full_name[0] == '.')
    full_name++;
  return htab_get(&r->enum_tab, full_name, strlen(full_name));
}

const gw_method *gw_registry_method(const gw_registry *r, const char *name) {
  if (!r || !name)
    return NULL;
  if (name[0] == '/')
    name++;
  return htab_get(&r->method_tab, name, strlen(name));
}

void gw_registry_each_method(const gw_registry *r,
                             void (*fn)(const gw_method *m, void *ud),
                             void *ud) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n_methods; i++)
    fn(&r->methods[i], ud);
}

static const msg_impl *impl_of(const gw_message *m) {
  return (const msg_impl *)m;
}

const struct gw_msg *gw_registry_empty_message(const gw_message *m) {
  return &impl_of(m)->empty;
}

const gw_field *gw_registry_field(const gw_message *m, const char *name) {
  if (!m || !name)
    return NULL;
  const msg_impl *mi = impl_of(m);
  size_t lo = 0, hi = m->n_fields;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, mi->by_name[mid]->name);
    if (c == 0)
      return mi->by_name[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

const gw_field *gw_registry_field_by_number(const gw_message *m,
                                            uint32_t number) {
  if (m->dense_by_number)
    return number < m->n_dense ? m->dense_by_number[number] : NULL;
  const msg_impl *mi = impl_of(m);
  size_t lo = 0, hi = m->n_fields;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint32_t n = mi->by_number[mid]->number;
    if (n == number)
      return mi->by_number[mid];
    if (number < n)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

int gw_registry_enum_value(const gw_enum *e, const char *name,
                           int32_t *number) {
  if (!e || !name)
    return -1;
  for (size_t i = 0; i < e->n_values; i++) {
    if (strcmp(e->names[i], name) == 0) {
      if (number)
        *number = e->numbers[i];
      return 0;
    }
  }
  return -1;
}

const char *gw_registry_enum_name(const gw_enum *e, int32_t number) {
  if (!e)
    return NULL;
  for (size_t i = 0; i < e->n_values; i++)
    if (e->numbers[i] == number)
      return e->names[i];
  return NULL;
}

static const char *scalar_name(gw_ftype t) {
  static const char *const names[] = {
      [GW_TYPE_DOUBLE] = "double",     [GW_TYPE_FLOAT] = "float",
      [GW_TYPE_INT64] = "int64",       [GW_TYPE_UINT64] = "uint64",
      [GW_TYPE_INT32] = "int32",       [GW_TYPE_FIXED64] = "fixed64",
      [GW_TYPE_FIXED32] = "fixed32",   [GW_TYPE_BOOL] = "bool",
      [GW_TYPE_STRING] = "string",     [GW_TYPE_GROUP] = "group",
      [GW_TYPE_MESSAGE] = "message",   [GW_TYPE_BYTES] = "bytes",
      [GW_TYPE_UINT32] = "uint32",     [GW_TYPE_ENUM] = "enum",
      [GW_TYPE_SFIXED32] = "sfixed32", [GW_TYPE_SFIXED64] = "sfixed64",
      [GW_TYPE_SINT32] = "sint32",     [GW_TYPE_SINT64] = "sint64"};
  if ((unsigned)t >= sizeof(names) / sizeof(names[0]) || !names[t])
    return "?";
  return names[t];
}

/* The element type alone: "int32", "message pkg.M", "enum pkg.E". */
static const char *elem_str(const gw_field *f, char *buf, size_t len) {
  if ((f->type == GW_TYPE_MESSAGE || f->type == GW_TYPE_GROUP) && f->message)
    snprintf(buf, len, "%s %s", scalar_name(f->type), f->message->full_name);
  else if (f->type == GW_TYPE_ENUM && f->enum_type)
    snprintf(buf, len, "enum %s", f->enum_type->full_name);
  else
    snprintf(buf, len, "%s", scalar_name(f->type));
  return buf;
}

const char *gw_registry_field_type_str(const gw_field *f, char *buf,
                                       size_t len) {
  if (!len)
    return buf;
  if (!f) {
    snprintf(buf, len, "?");
    return buf;
  }
  char a[256], b[256];
  if (f->repeated && f->message && f->message->map_entry) {
    const gw_message *e = f->message;
    snprintf(buf, len, "map<%s, %s>", elem_str(&e->fields[0], a, sizeof(a)),
             elem_str(&e->fields[1], b, sizeof(b)));
  } else if (f->repeated) {
    snprintf(buf, len, "repeated %s", elem_str(f, a, sizeof(a)));
  } else {
    elem_str(f, buf, len);
  }
  return buf;
}
