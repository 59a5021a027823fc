/* emit.h: a growing text buffer with printf-style appending, the one tool
 * protoc-gen-baton builds every name and every generated file with. */
#ifndef BATON_GEN_EMIT_H
#define BATON_GEN_EMIT_H

#include <stdarg.h>
#include <stddef.h>

typedef struct emit_buf {
  char *data; /* always NUL-terminated once anything was appended */
  size_t len;
  size_t cap;
} emit_buf;

/* The caller supplies the storage; emit_clear frees what it grew. */
void emit_init(emit_buf *b);
void emit_clear(emit_buf *b);

void emit_append(emit_buf *b, const char *s, size_t n);
void emit_char(emit_buf *b, char c);
void emit_str(emit_buf *b, const char *s);
void emit_printf(emit_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void emit_vprintf(emit_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Hands the text over (bt_free it; never NULL, "" when empty) and leaves the
 * buffer empty and reusable. */
char *emit_release(emit_buf *b);

/* printf into a new string; bt_free it. */
char *emit_strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
