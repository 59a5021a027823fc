/* timeout.c: the grpc-timeout header value ("TimeoutValue TimeoutUnit",
 * PROTOCOL-HTTP2.md): at most 8 digits and one of H M S m u n. */
#include "timeout.h"

#include <baton/error.h>

#define TIMEOUT_MAX_DIGITS 8
#define TIMEOUT_MAX_VALUE 99999999LL

static const struct {
  char unit;
  int64_t ns;
} units[] = {
    /* finest first: bt__timeout_format takes the first that fits */
    {'n', 1LL},
    {'u', 1000LL},
    {'m', 1000000LL},
    {'S', 1000000000LL},
    {'M', 60LL * 1000000000LL},
    {'H', 3600LL * 1000000000LL},
};

#define NUNITS (sizeof(units) / sizeof(units[0]))

int bt__timeout_parse(const char *s, size_t len, int64_t *ns) {
  if (!s || len < 2 || len > TIMEOUT_MAX_DIGITS + 1)
    return BT_ERR_PARSE;
  int64_t value = 0;
  for (size_t i = 0; i + 1 < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return BT_ERR_PARSE;
    value = value * 10 + (s[i] - '0');
  }
  for (size_t u = 0; u < NUNITS; u++) {
    if (units[u].unit == s[len - 1]) {
      /* 8 digits of hours overflow int64 nanoseconds: saturate. */
      *ns = value > INT64_MAX / units[u].ns ? INT64_MAX : value * units[u].ns;
      return 0;
    }
  }
  return BT_ERR_PARSE;
}

size_t bt__timeout_format(int64_t ns, char out[BT_TIMEOUT_MAX_LEN]) {
  if (ns <= 0)
    ns = 0;
  size_t u = 0;
  int64_t value = ns;
  for (; u < NUNITS; u++) {
    /* ceil(ns / unit) without overflowing near INT64_MAX */
    value = ns / units[u].ns + (ns % units[u].ns != 0);
    if (value <= TIMEOUT_MAX_VALUE)
      break;
  }
  /* INT64_MAX ns is about 2.6 million hours, so H always fits. */
  char digits[TIMEOUT_MAX_DIGITS];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + value % 10);
    value /= 10;
  } while (value > 0);
  size_t len = 0;
  while (n > 0)
    out[len++] = digits[--n];
  out[len++] = units[u].unit;
  out[len] = '\0';
  return len;
}
