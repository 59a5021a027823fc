/* base64.c: standard base64 (RFC 4648 alphabet) for "-bin" metadata values.
 * Encodes without padding, as gRPC emits; decodes padded and unpadded. */
#include "base64.h"

#include <baton/error.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Reverse table: 0..63, or 0xFF outside the alphabet ('=' included). */
static const uint8_t rev[256] = {
#define R_(c, v) [(unsigned char)(c)] = (v) + 1
    /* stored +1 so the zero-initialised rest means "invalid" */
    R_('A', 0),  R_('B', 1),  R_('C', 2),  R_('D', 3),  R_('E', 4),
    R_('F', 5),  R_('G', 6),  R_('H', 7),  R_('I', 8),  R_('J', 9),
    R_('K', 10), R_('L', 11), R_('M', 12), R_('N', 13), R_('O', 14),
    R_('P', 15), R_('Q', 16), R_('R', 17), R_('S', 18), R_('T', 19),
    R_('U', 20), R_('V', 21), R_('W', 22), R_('X', 23), R_('Y', 24),
    R_('Z', 25), R_('a', 26), R_('b', 27), R_('c', 28), R_('d', 29),
    R_('e', 30), R_('f', 31), R_('g', 32), R_('h', 33), R_('i', 34),
    R_('j', 35), R_('k', 36), R_('l', 37), R_('m', 38), R_('n', 39),
    R_('o', 40), R_('p', 41), R_('q', 42), R_('r', 43), R_('s', 44),
    R_('t', 45), R_('u', 46), R_('v', 47), R_('w', 48), R_('x', 49),
    R_('y', 50), R_('z', 51), R_('0', 52), R_('1', 53), R_('2', 54),
    R_('3', 55), R_('4', 56), R_('5', 57), R_('6', 58), R_('7', 59),
    R_('8', 60), R_('9', 61), R_('+', 62), R_('/', 63),
#undef R_
};

size_t bt__base64_encoded_len(size_t len) {
  return len / 3 * 4 + (len % 3 == 0 ? 0 : len % 3 + 1);
}

size_t bt__base64_encode(const uint8_t *in, size_t len, char *out) {
  char *o = out;
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
    *o++ = alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *o++ = alphabet[v >> 18];
    *o++ = alphabet[(v >> 12) & 63];
    *o++ = alphabet[(v >> 6) & 63];
  }
  *o = '\0';
  return (size_t)(o - out);
}

int bt__base64_decode(const char *in, size_t len, uint8_t *out,
                      size_t *out_len) {
  /* Padding is only legal as one or two '=' ending a whole 4-character
   * group; any other '=' is then rejected as outside the alphabet. */
  if (len % 4 == 0 && len > 0 && in[len - 1] == '=')
    len -= in[len - 2] == '=' ? 2 : 1;
  if (len % 4 == 1)
    return BT_ERR_PARSE;
  uint8_t *o = out;
  uint32_t v = 0;
  int n = 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t c = rev[(unsigned char)in[i]];
    if (c == 0)
      return BT_ERR_PARSE;
    v = v << 6 | (uint32_t)(c - 1);
    if (++n == 4) {
      *o++ = (uint8_t)(v >> 16);
      *o++ = (uint8_t)(v >> 8);
      *o++ = (uint8_t)v;
      v = 0;
      n = 0;
    }
  }
  /* Leftover bits below a whole byte are ignored, as most decoders do. */
  if (n == 2) {
    *o++ = (uint8_t)(v >> 4);
  } else if (n == 3) {
    *o++ = (uint8_t)(v >> 10);
    *o++ = (uint8_t)(v >> 2);
  }
  *out_len = (size_t)(o - out);
  return 0;
}
