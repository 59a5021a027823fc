/* main.c: protoc-gen-baton, the protoc plugin that writes Baton's typed
 * stubs. protoc sends a CodeGeneratorRequest on stdin; for every file to
 * generate we answer foo.baton.h and foo.baton.c (beside protoc-c's
 * foo.pb-c.h, which they include) in a CodeGeneratorResponse on stdout.
 *
 * Problems with the .proto files go into CodeGeneratorResponse.error (protoc
 * prints it and fails); only an unreadable request or a failed write is
 * reported on stderr with a non-zero exit, as plugin.proto asks. Files
 * without services still get (almost empty) stubs so a build can list every
 * output up front. */
#include <baton/alloc.h>

#include <stdio.h>
#include <string.h>

#include "emit.h"
#include "generate.h"
#include "model.h"

typedef Google__Protobuf__Compiler__CodeGeneratorRequest request_t;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse response_t;
typedef Google__Protobuf__Compiler__CodeGeneratorResponse__File file_t;

/* protoc's CodeGeneratorResponse.Feature: proto3 `optional` fields are fine
 * with us (we only read services), so say so or protoc refuses them. */
#define FEATURE_PROTO3_OPTIONAL 1

static int read_all(FILE *in, emit_buf *out) {
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, in)) > 0)
    emit_append(out, chunk, n);
  return ferror(in) ? -1 : 0;
}

static int write_all(FILE *out, const uint8_t *p, size_t len) {
  if (fwrite(p, 1, len, out) != len || fflush(out) != 0)
    return -1;
  return 0;
}

static const Google__Protobuf__FileDescriptorProto *
find_file(const request_t *req, const char *name) {
  for (size_t i = 0; i < req->n_proto_file; i++)
    if (strcmp(req->proto_file[i]->name, name) == 0)
      return req->proto_file[i];
  return NULL;
}

/* Adds an output file; takes name and content. */
static void add_file(response_t *resp, char *name, char *content) {
  file_t *f = bt_malloc(sizeof *f);
  google__protobuf__compiler__code_generator_response__file__init(f);
  f->name = name;
  f->content = content;
  resp->file = bt_realloc(resp->file, (resp->n_file + 1) * sizeof *resp->file);
  resp->file[resp->n_file++] = f;
}

static void response_clear(response_t *resp) {
  for (size_t i = 0; i < resp->n_file; i++) {
    bt_free(resp->file[i]->name);
    bt_free(resp->file[i]->content);
    bt_free(resp->file[i]);
  }
  bt_free(resp->file);
  bt_free(resp->error);
}

/* Generates one file's stubs into resp. Returns -1 with *err set. */
static int generate_file(response_t *resp, const model_index *ix,
                         const Google__Protobuf__FileDescriptorProto *fd,
                         char **err) {
  model_file f;
  int rv = model_file_init(&f, ix, fd, err);
  if (rv == 0) {
    emit_buf text;
    emit_init(&text);
    generate_header(&text, &f);
    add_file(resp, emit_strf("%s.baton.h", f.stem), emit_release(&text));
    generate_source(&text, &f);
    add_file(resp, emit_strf("%s.baton.c", f.stem), emit_release(&text));
  }
  model_file_clear(&f);
  return rv;
}

/* Fills resp from req; any problem ends up in resp->error. */
static void run(const request_t *req, response_t *resp) {
  model_index ix;
  char *err = NULL;
  if (req->parameter && req->parameter[0]) {
    resp->error = emit_strf("protoc-gen-baton takes no parameters (got "
                            "\"%s\")",
                            req->parameter);
    return;
  }
  model_index_init(&ix, req);
  for (size_t i = 0; i < req->n_file_to_generate && !err; i++) {
    const char *name = req->file_to_generate[i];
    const Google__Protobuf__FileDescriptorProto *fd = find_file(req, name);
    if (!fd)
      err = emit_strf("%s: not among the request's files", name);
    else
      generate_file(resp, &ix, fd, &err);
  }
  model_index_clear(&ix);
  resp->error = err;
}

int main(void) {
  emit_buf in;
  request_t *req = NULL;
  response_t resp = GOOGLE__PROTOBUF__COMPILER__CODE_GENERATOR_RESPONSE__INIT;
  uint8_t *out = NULL;
  int rv = 1;

  emit_init(&in);
  if (read_all(stdin, &in) < 0) {
    perror("protoc-gen-baton: reading the request");
    goto out;
  }
  req = google__protobuf__compiler__code_generator_request__unpack(
      NULL, in.len, (const uint8_t *)in.data);
  if (!req) {
    fprintf(stderr, "protoc-gen-baton: the input is not a "
                    "CodeGeneratorRequest (run me through protoc)\n");
    goto out;
  }

  resp.has_supported_features = 1;
  resp.supported_features = FEATURE_PROTO3_OPTIONAL;
  run(req, &resp);

  size_t len =
      google__protobuf__compiler__code_generator_response__get_packed_size(
          &resp);
  out = bt_malloc(len);
  google__protobuf__compiler__code_generator_response__pack(&resp, out);
  if (write_all(stdout, out, len) < 0) {
    perror("protoc-gen-baton: writing the response");
    goto out;
  }
  rv = 0;
out:
  bt_free(out);
  response_clear(&resp);
  if (req)
    google__protobuf__compiler__code_generator_request__free_unpacked(req,
                                                                      NULL);
  emit_clear(&in);
  return rv;
}
