/* baton/error.h: the one error space of libbaton.
 *
 * Every function that can fail returns 0 (or a count) on success and a
 * negative BT_ERR_* on failure. The list is an X-macro so the names and the
 * messages cannot drift from the codes. */
#ifndef BATON_ERROR_H
#define BATON_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

#define BT_ERRNO_MAP(X)                                                        \
  X(OK, 0, "success")                                                          \
  X(NOMEM, -1, "out of memory")                                                \
  X(INVAL, -2, "invalid argument")                                             \
  X(PARSE, -3, "malformed input")                                              \
  X(TOO_LARGE, -4, "size limit exceeded")                                      \
  X(IO, -5, "I/O error")                                                       \
  X(TLS, -6, "TLS error")                                                      \
  X(H2, -7, "HTTP/2 protocol error")                                           \
  X(CLOSED, -8, "connection or call closed")                                   \
  X(TIMEOUT, -9, "timed out")                                                  \
  X(NOTFOUND, -10, "not found")                                                \
  X(EXISTS, -11, "already exists")                                             \
  X(UNSUPPORTED, -12, "not supported")                                         \
  X(AGAIN, -13, "more input needed")                                           \
  X(STATE, -14, "operation not valid in this state")                           \
  X(LIMIT, -15, "buffer budget exhausted")

typedef enum bt_err {
#define BT_ERR_ENUM_(name, value, text) BT_ERR_##name = value,
  BT_ERRNO_MAP(BT_ERR_ENUM_)
#undef BT_ERR_ENUM_
} bt_err;

/* A sentence for a BT_ERR_* code ("out of memory"); never NULL. */
const char *bt_strerror(int err);
/* The symbolic name of a BT_ERR_* code ("NOMEM"); never NULL. */
const char *bt_err_name(int err);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
