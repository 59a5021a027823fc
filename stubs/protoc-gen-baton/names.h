/* names.h: protoc-c's naming rules (protoc-c/c_helpers.cc), so the stubs
 * name exactly the C types, descriptors and functions protoc-c emits.
 *
 *   CamelToLower  "EmptyCall"      -> "empty_call"
 *   FullNameToLower "grpc.testing.TestService" -> "grpc__testing__test_service"
 *   FullNameToC   "grpc.testing.Empty" -> "Grpc__Testing__Empty"
 *
 * Every function appends to out. */
#ifndef BATON_GEN_NAMES_H
#define BATON_GEN_NAMES_H

#include <stddef.h>

#include "emit.h"

/* An underscore before each upper-case letter that follows a non-upper one,
 * then lower case: "HTTPGetURL" -> "httpget_url" (as protoc-c does). */
void names_camel_to_lower(emit_buf *out, const char *s, size_t n);
/* As names_camel_to_lower, upper case: "EmptyCall" -> "EMPTY_CALL". */
void names_camel_to_upper(emit_buf *out, const char *s, size_t n);
/* Dot-separated pieces (empty ones skipped) joined with "__". */
void names_full_to_lower(emit_buf *out, const char *full);
void names_full_to_upper(emit_buf *out, const char *full);
/* Pieces in CamelCase (underscores dropped, the letter after one raised),
 * joined with "__": "my_pkg.subPkg.Msg" -> "MyPkg__SubPkg__Msg". */
void names_full_to_c(emit_buf *out, const char *full);
/* Every byte that is not [A-Za-z0-9] becomes '_' and its hex code, as
 * protoc-c's FilenameIdentifier: "a/b.proto" -> "a_2fb_2eproto". */
void names_file_identifier(emit_buf *out, const char *filename);
/* The file name without ".protodevel" or ".proto", as protoc-c's StripProto;
 * bt_free the result. */
char *names_strip_proto(const char *filename);
/* 1 when s is a C (C11) keyword, so it cannot name a struct member. */
int names_is_c_keyword(const char *s);

#endif
