/* diag.h (gateway/config): diagnostics collected while loading a config:
 * every error is kept as "file:line: message" so `--check` can print them
 * all, not just the first. */
#ifndef GW_DIAG_H
#define GW_DIAG_H

#include <stddef.h>

typedef struct gw_diag {
  char **lines; /* bt_malloc'ed "file:line: message" strings */
  size_t n, cap;
} gw_diag;

void gw_diag_init(gw_diag *d);
void gw_diag_clear(gw_diag *d);
/* Records "file:line: message" (line 0 leaves it out). */
void gw_diag_error(gw_diag *d, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
size_t gw_diag_count(const gw_diag *d);
/* Writes every line to stderr. */
void gw_diag_print(const gw_diag *d);
/* Makes len bytes of outside text safe to put in a message: control bytes
 * become \xNN and text longer than about cap is cut with "...". Writes into
 * buf (cap bytes, at least 8) and returns it. */
const char *gw_diag_quote(char *buf, size_t cap, const char *s, size_t len);

#endif
