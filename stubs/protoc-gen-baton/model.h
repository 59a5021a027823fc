/* model.h: what protoc-gen-baton generates from, resolved from the
 * descriptors protoc hands over: every message type with its protoc-c C
 * names, and per file its services and methods with paths, kinds and the
 * names of everything the stubs declare. Checks that the generated names
 * cannot clash happen here, so the emitters only print. */
#ifndef BATON_GEN_MODEL_H
#define BATON_GEN_MODEL_H

#include <stddef.h>

#include "google/protobuf/compiler/plugin.pb-c.h"

typedef struct model_type {
  char *full;  /* ".pkg.Outer.Inner", as method input/output refer to it */
  char *ctype; /* "Pkg__Outer__Inner" */
  char *lower; /* "pkg__outer__inner"; its descriptor is lower__descriptor */
} model_type;

/* Every message type of every file in the request. */
typedef struct model_index {
  size_t n_types;
  model_type *types;
} model_index;

typedef enum model_kind {
  MODEL_UNARY,
  MODEL_SERVER_STREAMING,
  MODEL_CLIENT_STREAMING,
  MODEL_BIDI_STREAMING
} model_kind;

typedef struct model_method {
  const char *name; /* "EmptyCall"; points into the request */
  char *lower;      /* "empty_call": handler member and function infix */
  char *upper;      /* "EMPTY_CALL": macro infix */
  char *path;       /* "/grpc.testing.TestService/EmptyCall" */
  model_kind kind;
  const model_type *input;
  const model_type *output;
} model_method;

typedef struct model_service {
  char *full;  /* "grpc.testing.TestService": the name on the wire */
  char *ctype; /* "Grpc__Testing__TestService" (c_package applied) */
  char *lower; /* "grpc__testing__test_service": every function's prefix */
  char *upper; /* "GRPC__TESTING__TEST_SERVICE": every macro's prefix */
  size_t n_methods;
  model_method *methods;
} model_service;

typedef struct model_file {
  const char *name; /* "grpc/testing/test.proto"; points into the request */
  char *stem;       /* "grpc/testing/test": outputs are stem.baton.{h,c} */
  char *guard;      /* include guard of stem.baton.h */
  size_t n_services;
  model_service *services;
} model_file;

/* Indexes the message types of every file in req. Free with
 * model_index_clear. */
void model_index_init(
    model_index *ix,
    const Google__Protobuf__Compiler__CodeGeneratorRequest *req);
void model_index_clear(model_index *ix);
/* The type named full (".pkg.Msg"), or NULL. */
const model_type *model_index_find(const model_index *ix, const char *full);

/* Resolves fd's services against ix into f. Returns 0, or -1 with *err set
 * to a sentence naming the file and what is wrong (bt_free it); f needs
 * model_file_clear either way. */
int model_file_init(model_file *f, const model_index *ix,
                    const Google__Protobuf__FileDescriptorProto *fd,
                    char **err);
void model_file_clear(model_file *f);

/* The kind as the runtime's enum constant ("BT_CALL_UNARY"). */
const char *model_kind_constant(model_kind kind);
/* "unary", "server streaming", ... for comments. */
const char *model_kind_text(model_kind kind);

#endif
