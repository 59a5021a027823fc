/* emit.c: the growing text buffer of protoc-gen-baton (see emit.h). Memory
 * comes from bt_malloc, so running out aborts with a location instead of
 * producing half a file. */
#include "emit.h"

#include <baton/alloc.h>

#include <stdio.h>
#include <string.h>

void emit_init(emit_buf *b) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void emit_clear(emit_buf *b) {
  bt_free(b->data);
  emit_init(b);
}

/* Makes room for n more bytes plus the terminating NUL. */
static void reserve(emit_buf *b, size_t n) {
  size_t need = b->len + n + 1;
  if (need <= b->cap)
    return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  b->data = bt_realloc(b->data, cap);
  b->cap = cap;
}

void emit_append(emit_buf *b, const char *s, size_t n) {
  reserve(b, n);
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void emit_char(emit_buf *b, char c) {
  emit_append(b, &c, 1);
}

void emit_str(emit_buf *b, const char *s) {
  emit_append(b, s, strlen(s));
}

void emit_vprintf(emit_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n <= 0)
    return;
  reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void emit_printf(emit_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit_vprintf(b, fmt, ap);
  va_end(ap);
}

char *emit_release(emit_buf *b) {
  if (!b->data) {
    reserve(b, 0);
    b->data[0] = '\0';
  }
  char *s = b->data;
  emit_init(b);
  return s;
}

char *emit_strf(const char *fmt, ...) {
  emit_buf b;
  emit_init(&b);
  va_list ap;
  va_start(ap, fmt);
  emit_vprintf(&b, fmt, ap);
  va_end(ap);
  return emit_release(&b);
}
