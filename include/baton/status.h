/* baton/status.h: gRPC status codes and their mapping to and from HTTP
 * status and HTTP/2 error codes. A small pure module (as gRPC's
 * status_conversion.c). */
#ifndef BATON_STATUS_H
#define BATON_STATUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

#define BT_GRPC_CODE_MAP(X)                                                    \
  X(OK, 0)                                                                     \
  X(CANCELLED, 1)                                                              \
  X(UNKNOWN, 2)                                                                \
  X(INVALID_ARGUMENT, 3)                                                       \
  X(DEADLINE_EXCEEDED, 4)                                                      \
  X(NOT_FOUND, 5)                                                              \
  X(ALREADY_EXISTS, 6)                                                         \
  X(PERMISSION_DENIED, 7)                                                      \
  X(RESOURCE_EXHAUSTED, 8)                                                     \
  X(FAILED_PRECONDITION, 9)                                                    \
  X(ABORTED, 10)                                                               \
  X(OUT_OF_RANGE, 11)                                                          \
  X(UNIMPLEMENTED, 12)                                                         \
  X(INTERNAL, 13)                                                              \
  X(UNAVAILABLE, 14)                                                           \
  X(DATA_LOSS, 15)                                                             \
  X(UNAUTHENTICATED, 16)

typedef enum bt_grpc_code {
#define BT_GRPC_ENUM_(name, value) BT_GRPC_##name = value,
  BT_GRPC_CODE_MAP(BT_GRPC_ENUM_)
#undef BT_GRPC_ENUM_
} bt_grpc_code;

/* "OK", "CANCELLED", ...; "UNKNOWN_CODE" for values outside 0..16. */
const char *bt_grpc_code_name(int code);
/* Parses a code name ("UNAVAILABLE", exactly len bytes, case-sensitive).
 * Returns the code (0..16), BT_ERR_NOTFOUND for any other name, or
 * BT_ERR_INVAL when name is NULL. */
int bt_grpc_code_from_name(const char *name, size_t len);
/* gRPC's http-grpc-status-mapping, for responses without grpc-status:
 * 400→INTERNAL, 401→UNAUTHENTICATED, 403→PERMISSION_DENIED,
 * 404→UNIMPLEMENTED, 429/502/503/504→UNAVAILABLE, others→UNKNOWN. */
int bt_grpc_code_from_http_status(int http_status);
/* RST_STREAM / GOAWAY error code → gRPC code (REFUSED_STREAM→UNAVAILABLE,
 * CANCEL→CANCELLED, ENHANCE_YOUR_CALM→RESOURCE_EXHAUSTED,
 * INADEQUATE_SECURITY→PERMISSION_DENIED, others→INTERNAL). */
int bt_grpc_code_from_h2_error(uint32_t h2_error);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
