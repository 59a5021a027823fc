/* diag.c: the list of "file:line: message" errors a config load collects.
 *
 * Loading keeps going after an error so `--check` can show every problem at
 * once; this module only stores and prints the lines. */
#include "diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <baton/alloc.h>

void gw_diag_init(gw_diag *d) {
  d->lines = NULL;
  d->n = 0;
  d->cap = 0;
}

void gw_diag_clear(gw_diag *d) {
  if (!d)
    return;
  for (size_t i = 0; i < d->n; i++)
    bt_free(d->lines[i]);
  bt_free(d->lines);
  gw_diag_init(d);
}

void gw_diag_error(gw_diag *d, const char *file, int line, const char *fmt,
                   ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);

  char prefix[64] = "";
  if (line > 0)
    snprintf(prefix, sizeof(prefix), ":%d", line);
  if (!file)
    file = "";
  /* Long messages were cut at sizeof(msg) above: one error stays one
   * line of bounded size whatever the input put into it. */
  size_t len = strlen(file) + strlen(prefix) + 2 + strlen(msg);
  char *s = bt_malloc(len + 1);
  if (*file)
    snprintf(s, len + 1, "%s%s: %s", file, prefix, msg);
  else
    snprintf(s, len + 1, "%s", msg);

  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 8;
    d->lines = bt_realloc(d->lines, d->cap * sizeof(*d->lines));
  }
  d->lines[d->n++] = s;
}

size_t gw_diag_count(const gw_diag *d) {
  return d ? d->n : 0;
}

void gw_diag_print(const gw_diag *d) {
  if (!d)
    return;
  for (size_t i = 0; i < d->n; i++)
    fprintf(stderr, "%s\n", d->lines[i]);
}

/* Length of buf[0..n) without a trailing, incomplete UTF-8 sequence, so
 * cutting a message never leaves half a character before the dots. */
static size_t utf8_complete(const char *buf, size_t n) {
  size_t j = n;
  while (j > 0 && ((unsigned char)buf[j - 1] & 0xC0) == 0x80)
    j--;
  if (j == 0)
    return n;
  unsigned char lead = (unsigned char)buf[j - 1];
  if (lead < 0xC0)
    return n; /* ASCII before: any continuation bytes are stray anyway */
  size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  return n - (j - 1) < want ? j - 1 : n;
}

const char *gw_diag_quote(char *buf, size_t cap, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  /* Room for the longest piece (\xNN) plus "..." and the NUL. */
  size_t limit = cap - 8;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (o >= limit) {
      o = utf8_complete(buf, o);
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    if (c < 0x20 || c == 0x7f || c == '\\') {
      buf[o++] = '\\';
      if (c == '\\') {
        buf[o++] = '\\';
      } else {
        buf[o++] = 'x';
        buf[o++] = hex[c >> 4];
        buf[o++] = hex[c & 15];
      }
    } else {
      buf[o++] = (char)c;
    }
  }
  buf[o] = '\0';
  return buf;
}
