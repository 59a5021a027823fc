/* percent.c: grpc-message percent-encoding (PROTOCOL-HTTP2.md): bytes outside
 * printable ASCII and '%' itself become %XX. Decoding is forgiving, because
 * the message is for humans: a malformed escape is kept as it is. */
#include "percent.h"

static int needs_escape(uint8_t c) {
  return c < 0x20 || c > 0x7E || c == '%';
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

size_t bt__percent_encoded_len(const uint8_t *in, size_t len) {
  size_t n = len;
  for (size_t i = 0; i < len; i++) {
    if (needs_escape(in[i]))
      n += 2;
  }
  return n;
}

size_t bt__percent_encode(const uint8_t *in, size_t len, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  char *o = out;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = in[i];
    if (needs_escape(c)) {
      *o++ = '%';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    } else {
      *o++ = (char)c;
    }
  }
  *o = '\0';
  return (size_t)(o - out);
}

size_t bt__percent_decode(const char *in, size_t len, uint8_t *out) {
  uint8_t *o = out;
  for (size_t i = 0; i < len; i++) {
    int hi, lo;
    if (in[i] == '%' && i + 2 < len && (hi = hex_value(in[i + 1])) >= 0 &&
        (lo = hex_value(in[i + 2])) >= 0) {
      *o++ = (uint8_t)(hi << 4 | lo);
      i += 2;
    } else {
      *o++ = (uint8_t)in[i];
    }
  }
  *o = '\0';
  return (size_t)(o - out);
}
