/* expr.c (gateway): the condition language of flows, a documented subset
 * of CEL (docs/expressions.md is the user's reference, expr.h the
 * contract).
 *
 * Owns: the lexer, a recursive-descent parser that type-checks while it
 * builds the tree (so every error has the column of what caused it), and
 * the evaluator. Names are resolved once, at compile time, to root indexes
 * and gw_field pointers, string literals compared with enums become enum
 * numbers, and && / || chains are flat nodes: evaluation allocates nothing,
 * compares no names and recurses only as deep as the parser allowed
 * (EXPR_MAX_DEPTH levels of nesting). */
#include "expr.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/status.h>

/* Parentheses, list brackets, '!' and '-' each open one level. The tree is
 * at most a small constant times this deep, so the parser, the checker and
 * the evaluator stay far from the stack's end whatever the input. */
#define EXPR_MAX_DEPTH 64

/* ---- types ------------------------------------------------------------- */

enum {
  TY_BOOL,
  TY_INT,
  TY_UINT,
  TY_DOUBLE,
  TY_STRING,
  TY_BYTES,
  TY_ENUM,
  TY_MESSAGE,
  TY_LIST, /* a repeated field or a list literal */
};

/* A list literal's element type is per item (checked where it is used). */
#define ELEM_ITEMS 0xff

typedef struct etype {
  uint8_t k;             /* TY_* */
  uint8_t elem;          /* TY_LIST: the element's TY_* (a map's: its key's), or
                            ELEM_ITEMS for a list literal */
  uint8_t map;           /* TY_LIST of a map field; msg is the entry type */
  const gw_enum *en;     /* TY_ENUM, or a list of them */
  const gw_message *msg; /* TY_MESSAGE, or a list of them / map entry */
} etype;

/* ---- runtime values ------------------------------------------------------ */

enum { V_BOOL, V_INT, V_UINT, V_DOUBLE, V_STR };

typedef struct val {
  uint8_t k; /* V_* */
  union {
    int b;
    int64_t i;
    uint64_t u;
    double d;
    struct {
      const uint8_t *p;
      size_t n;
    } s;
  } u;
} val;

/* ---- the tree ------------------------------------------------------------ */

enum {
  N_CONST, /* c */
  N_PATH,  /* path: a field's value (or a list, right of 'in') */
  N_HAS,   /* path */
  N_SIZE,  /* path */
  N_CODE,  /* root */
  N_NOT,   /* kid */
  N_NEG,   /* kid */
  N_AND,   /* kids */
  N_OR,    /* kids */
  N_CMP,   /* bin, cmp */
  N_IN,    /* bin: r is a list literal (N_LIST) or a repeated field */
  N_LIST,  /* kids */
};

enum { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

typedef struct node node;
struct node {
  uint8_t op;  /* N_* */
  uint8_t cmp; /* N_CMP: C_* */
  uint8_t vk;  /* N_PATH: the V_* its last field reads as */
  etype t;
  size_t col; /* 1-based column where the node starts (its operator for
                 comparisons) */
  node *next; /* parse-time chaining of list items and && / || operands */
  union {
    val c;
    struct {
      size_t root;
      size_t n;
      const gw_field **f;
      const gw_field *key; /* N_PATH of a map field: the entry's key */
    } path;
    size_t root;
    node *kid;
    struct {
      node **v;
      size_t n;
    } kids;
    struct {
      node *l, *r;
    } bin;
  } u;
};

struct gw_expr {
  const node *root;
};

/* ---- lexer --------------------------------------------------------------- */

enum {
  T_EOF,
  T_ERR, /* the lexer already reported it */
  T_IDENT,
  T_INT, /* u holds the magnitude; range checked by the parser */
  T_UINT,
  T_DOUBLE,
  T_STRING,
  T_LP,
  T_RP,
  T_LB,
  T_RB,
  T_COMMA,
  T_DOT,
  T_NOT,
  T_MINUS,
  T_EQ,
  T_NE,
  T_LT,
  T_LE,
  T_GT,
  T_GE,
  T_AND,
  T_OR,
};

typedef struct tok {
  int k;
  size_t pos; /* byte offset in src */
  size_t len; /* bytes of source */
  uint64_t u;
  double d;
  const char *s; /* T_STRING: decoded bytes in the arena, NUL-terminated */
  size_t slen;
} tok;

typedef struct parser {
  bt_arena *arena;
  const char *src;
  size_t pos; /* where the token after cur starts (before blanks) */
  tok cur;
  const gw_expr_env *env;
  int depth;
  int failed;
  int with_col; /* "column N: " prefix (expressions; paths have none) */
  char *err;
  size_t errlen;
} parser;

static void fail(parser *P, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error only: later ones are consequences of it. */
static void fail(parser *P, size_t pos, const char *fmt, ...) {
  if (P->failed)
    return;
  P->failed = 1;
  if (!P->err || P->errlen == 0)
    return;
  size_t off = 0;
  if (P->with_col) {
    int n = snprintf(P->err, P->errlen, "column %zu: ", pos + 1);
    off = n < 0 ? 0 : (size_t)n;
    if (off >= P->errlen)
      return;
  } else {
    P->err[0] = '\0';
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(P->err + off, P->errlen - off, fmt, ap);
  va_end(ap);
}

/* Copies up to max bytes of s into buf for an error message, escaping
 * anything that is not printable ASCII (the source may be any bytes). */
static const char *printable(const char *s, size_t n, char *buf, size_t len) {
  static const size_t max = 32;
  size_t o = 0;
  for (size_t i = 0; i < n && o + 5 < len; i++) {
    if (i == max) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      buf[o++] = (char)c;
    } else {
      o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
    }
  }
  buf[o] = '\0';
  return buf;
}

static int is_ident_start(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(int c) {
  return c >= '0' && c <= '9';
}

static int is_ident_char(int c) {
  return is_ident_start(c) || is_digit(c);
}

static int hex_val(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static size_t skip_blanks(const char *s, size_t i) {
  while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
    i++;
  return i;
}

static int lex_number(parser *P, size_t i, tok *t) {
  const char *s = P->src;
  int is_double = 0, overflow = 0;
  uint64_t u = 0;
  if (s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
    i += 2;
    if (hex_val((unsigned char)s[i]) < 0) {
      fail(P, t->pos, "invalid hex number: expected a digit after '0x'");
      return T_ERR;
    }
    for (int h; (h = hex_val((unsigned char)s[i])) >= 0; i++) {
      if (u > (UINT64_MAX >> 4))
        overflow = 1;
      u = (u << 4) | (uint64_t)h;
    }
  } else {
    for (; is_digit((unsigned char)s[i]); i++) {
      uint64_t d = (uint64_t)(s[i] - '0');
      if (u > (UINT64_MAX - d) / 10)
        overflow = 1;
      u = u * 10 + d;
    }
    if (s[i] == '.' && is_digit((unsigned char)s[i + 1])) {
      is_double = 1;
      for (i++; is_digit((unsigned char)s[i]); i++)
        ;
    }
    if (s[i] == 'e' || s[i] == 'E') {
      size_t j = i + 1;
      if (s[j] == '+' || s[j] == '-')
        j++;
      if (!is_digit((unsigned char)s[j])) {
        fail(P, t->pos, "invalid number: expected digits in the exponent");
        return T_ERR;
      }
      is_double = 1;
      for (i = j; is_digit((unsigned char)s[i]); i++)
        ;
    }
  }
  int k = is_double ? T_DOUBLE : T_INT;
  if (!is_double && (s[i] == 'u' || s[i] == 'U')) {
    k = T_UINT;
    i++;
  }
  if (is_ident_char((unsigned char)s[i]) || s[i] == '.') {
    char b[48];
    size_t j = i;
    while (is_ident_char((unsigned char)s[j]) || s[j] == '.')
      j++;
    fail(P, t->pos, "invalid number '%s'",
         printable(s + t->pos, j - t->pos, b, sizeof(b)));
    return T_ERR;
  }
  t->len = i - t->pos;
  if (k == T_DOUBLE) {
    char buf[128];
    if (t->len >= sizeof(buf)) {
      fail(P, t->pos, "number too long");
      return T_ERR;
    }
    memcpy(buf, s + t->pos, t->len);
    buf[t->len] = '\0';
    errno = 0;
    /* strtod reads the C locale's '.': the gateway never calls setlocale. */
    t->d = strtod(buf, NULL);
    if (isinf(t->d)) {
      fail(P, t->pos, "double literal out of range");
      return T_ERR;
    }
  } else {
    if (overflow) {
      fail(P, t->pos, "integer literal out of range");
      return T_ERR;
    }
    t->u = u;
  }
  return k;
}

/* Appends code point cp as UTF-8. */
static size_t put_utf8(char *o, uint32_t cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xC0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  o[0] = (char)(0xE0 | (cp >> 12));
  o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
  o[2] = (char)(0x80 | (cp & 0x3F));
  return 3;
}

static int lex_string(parser *P, size_t i, tok *t) {
  const char *s = P->src;
  char q = s[i++];
  /* Decoded text is never longer than its source (\uHHHH, 6 bytes, gives
   * at most 3; \xHH, 4, one): size the buffer by this literal's source, not
   * by the rest of the expression. */
  size_t end = i;
  while (s[end] && s[end] != q) {
    if (s[end] == '\\' && s[end + 1])
      end++;
    end++;
  }
  size_t cap = end - i + 1;
  char *out = bt_arena_alloc(P->arena, cap);
  size_t o = 0;
  for (;;) {
    char c = s[i];
    if (c == '\0' || c == '\n' || c == '\r') {
      fail(P, t->pos, "unterminated string");
      return T_ERR;
    }
    if (c == q) {
      i++;
      break;
    }
    if (c != '\\') {
      out[o++] = c;
      i++;
      continue;
    }
    size_t esc = i;
    char e = s[i + 1];
    i += 2;
    switch (e) {
    case '"':
    case '\'':
    case '\\':
      out[o++] = e;
      break;
    case 'n':
      out[o++] = '\n';
      break;
    case 't':
      out[o++] = '\t';
      break;
    case 'r':
      out[o++] = '\r';
      break;
    case 'x':
    case 'u': {
      int nd = e == 'x' ? 2 : 4;
      uint32_t cp = 0;
      for (int k = 0; k < nd; k++) {
        int h = hex_val((unsigned char)s[i]);
        if (h < 0) {
          fail(P, esc, "invalid escape: \\%c needs %d hex digits", e, nd);
          return T_ERR;
        }
        cp = (cp << 4) | (uint32_t)h;
        i++;
      }
      if (e == 'x') {
        out[o++] = (char)cp;
      } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        fail(P, esc, "invalid escape: \\u%04X is a surrogate", (unsigned)cp);
        return T_ERR;
      } else {
        o += put_utf8(out + o, cp);
      }
      break;
    }
    default: {
      char b[16];
      if (e == '\0') {
        fail(P, t->pos, "unterminated string");
      } else {
        fail(P, esc, "unknown escape '\\%s'", printable(&e, 1, b, sizeof(b)));
      }
      return T_ERR;
    }
    }
  }
  out[o] = '\0';
  t->s = out;
  t->slen = o;
  t->len = i - t->pos;
  return T_STRING;
}

/* Lexes the token starting at or after byte i into t. */
static void lex_at(parser *P, size_t i, tok *t) {
  const char *s = P->src;
  i = skip_blanks(s, i);
  memset(t, 0, sizeof(*t));
  t->pos = i;
  t->len = 1;
  unsigned char c = (unsigned char)s[i];
  unsigned char c2 = c ? (unsigned char)s[i + 1] : 0;
  switch (c) {
  case '\0':
    t->k = T_EOF;
    t->len = 0;
    return;
  case '(':
    t->k = T_LP;
    return;
  case ')':
    t->k = T_RP;
    return;
  case '[':
    t->k = T_LB;
    return;
  case ']':
    t->k = T_RB;
    return;
  case ',':
    t->k = T_COMMA;
    return;
  case '.':
    t->k = T_DOT;
    return;
  case '-':
    t->k = T_MINUS;
    return;
  case '!':
    t->k = c2 == '=' ? T_NE : T_NOT;
    t->len = c2 == '=' ? 2 : 1;
    return;
  case '<':
    t->k = c2 == '=' ? T_LE : T_LT;
    t->len = c2 == '=' ? 2 : 1;
    return;
  case '>':
    t->k = c2 == '=' ? T_GE : T_GT;
    t->len = c2 == '=' ? 2 : 1;
    return;
  case '=':
    if (c2 == '=') {
      t->k = T_EQ;
      t->len = 2;
      return;
    }
    fail(P, i, "unexpected '=' (use '==' to compare)");
    t->k = T_ERR;
    return;
  case '&':
  case '|':
    if (c2 == c) {
      t->k = c == '&' ? T_AND : T_OR;
      t->len = 2;
      return;
    }
    fail(P, i, "unexpected '%c' (use '%c%c')", c, c, c);
    t->k = T_ERR;
    return;
  case '"':
  case '\'':
    t->k = lex_string(P, i, t);
    return;
  default:
    break;
  }
  if (is_digit(c)) {
    t->k = lex_number(P, i, t);
    return;
  }
  if (is_ident_start(c)) {
    size_t j = i;
    while (is_ident_char((unsigned char)s[j]))
      j++;
    t->k = T_IDENT;
    t->len = j - i;
    return;
  }
  if (c >= 0x20 && c < 0x7f)
    fail(P, i, "unexpected character '%c'%s", c,
         strchr("+*/%?:", c) ? " (conditions have no arithmetic)" : "");
  else
    fail(P, i, "unexpected byte 0x%02x", c);
  t->k = T_ERR;
}

static void advance(parser *P) {
  lex_at(P, P->pos, &P->cur);
  P->pos = P->cur.pos + P->cur.len;
}

static int tok_is(const parser *P, const tok *t, const char *word) {
  size_t n = strlen(word);
  return t->k == T_IDENT && t->len == n &&
         memcmp(P->src + t->pos, word, n) == 0;
}

/* Describes the current token for "expected X, found Y" messages. */
static const char *tok_desc(const parser *P, const tok *t, char *buf,
                            size_t len) {
  if (t->k == T_EOF)
    return "end of expression";
  char b[48];
  snprintf(buf, len, "'%s'", printable(P->src + t->pos, t->len, b, sizeof(b)));
  return buf;
}

/* Fails with "unexpected X" at the current token (unless the lexer already
 * said what is wrong with it). */
static void fail_unexpected(parser *P, const char *expected) {
  if (P->cur.k == T_ERR)
    return;
  char b[64];
  if (expected)
    fail(P, P->cur.pos, "expected %s but found %s", expected,
         tok_desc(P, &P->cur, b, sizeof(b)));
  else
    fail(P, P->cur.pos, "unexpected %s", tok_desc(P, &P->cur, b, sizeof(b)));
}

static int expect(parser *P, int k, const char *what) {
  if (P->cur.k != k) {
    fail_unexpected(P, what);
    return -1;
  }
  advance(P);
  return 0;
}

/* ---- type helpers -------------------------------------------------------- */

static uint8_t kind_of_ftype(gw_ftype t) {
  switch (t) {
  case GW_TYPE_DOUBLE:
  case GW_TYPE_FLOAT:
    return TY_DOUBLE;
  case GW_TYPE_INT64:
  case GW_TYPE_INT32:
  case GW_TYPE_SFIXED32:
  case GW_TYPE_SFIXED64:
  case GW_TYPE_SINT32:
  case GW_TYPE_SINT64:
    return TY_INT;
  case GW_TYPE_UINT64:
  case GW_TYPE_FIXED64:
  case GW_TYPE_FIXED32:
  case GW_TYPE_UINT32:
    return TY_UINT;
  case GW_TYPE_BOOL:
    return TY_BOOL;
  case GW_TYPE_STRING:
    return TY_STRING;
  case GW_TYPE_BYTES:
    return TY_BYTES;
  case GW_TYPE_ENUM:
    return TY_ENUM;
  case GW_TYPE_MESSAGE:
  case GW_TYPE_GROUP:
  default:
    return TY_MESSAGE;
  }
}

/* The runtime representation of a value of kind k. */
static uint8_t vkind(uint8_t k) {
  switch (k) {
  case TY_BOOL:
    return V_BOOL;
  case TY_INT:
  case TY_ENUM:
    return V_INT;
  case TY_UINT:
    return V_UINT;
  case TY_DOUBLE:
    return V_DOUBLE;
  default:
    return V_STR;
  }
}

/* A map entry's key field (number 1), or NULL when f is not a map. */
static const gw_field *map_key(const gw_field *f) {
  if (!f->repeated || !f->message || !f->message->map_entry)
    return NULL;
  return gw_registry_field_by_number(f->message, 1);
}

static etype field_etype(const gw_field *f) {
  etype t = {0};
  uint8_t k = kind_of_ftype(f->type);
  const gw_field *key = map_key(f);
  if (key) {
    t.k = TY_LIST;
    t.map = 1;
    t.msg = f->message;
    t.elem = kind_of_ftype(key->type);
    t.en = key->type == GW_TYPE_ENUM ? key->enum_type : NULL;
    return t;
  }
  t.k = f->repeated ? TY_LIST : k;
  t.elem = f->repeated ? k : 0;
  if (k == TY_ENUM)
    t.en = f->enum_type;
  if (k == TY_MESSAGE)
    t.msg = f->message;
  return t;
}

static const char *kind_name(uint8_t k) {
  switch (k) {
  case TY_BOOL:
    return "bool";
  case TY_INT:
    return "int";
  case TY_UINT:
    return "uint";
  case TY_DOUBLE:
    return "double";
  case TY_STRING:
    return "string";
  case TY_BYTES:
    return "bytes";
  case TY_ENUM:
    return "enum";
  case TY_MESSAGE:
    return "message";
  default:
    return "list";
  }
}

static const char *scalar_name(uint8_t k, const gw_enum *en,
                               const gw_message *msg, char *buf, size_t len) {
  if (k == TY_ENUM && en)
    snprintf(buf, len, "enum %s", en->full_name);
  else if (k == TY_MESSAGE && msg)
    snprintf(buf, len, "message %s", msg->full_name);
  else
    snprintf(buf, len, "%s", kind_name(k));
  return buf;
}

/* "int", "enum shop.v1.PayStatus", "list(string)", "map(string, int)". */
static const char *type_name(const etype *t, char *buf, size_t len) {
  char e[160], v[160];
  if (t->k != TY_LIST)
    return scalar_name(t->k, t->en, t->msg, buf, len);
  if (t->elem == ELEM_ITEMS) {
    snprintf(buf, len, "list");
  } else if (t->map) {
    const gw_field *vf = gw_registry_field_by_number(t->msg, 2);
    etype vt = {0};
    if (vf)
      vt = field_etype(vf);
    snprintf(buf, len, "map(%s, %s)",
             scalar_name(t->elem, t->en, NULL, e, sizeof(e)),
             vf ? type_name(&vt, v, sizeof(v)) : "?");
  } else {
    snprintf(buf, len, "list(%s)",
             scalar_name(t->elem, t->en, t->msg, e, sizeof(e)));
  }
  return buf;
}

static int is_number(uint8_t k) {
  return k == TY_INT || k == TY_UINT || k == TY_DOUBLE || k == TY_ENUM;
}

static int is_text(uint8_t k) {
  return k == TY_STRING || k == TY_BYTES;
}

/* ---- nodes --------------------------------------------------------------- */

static node *new_node(parser *P, uint8_t op, size_t pos) {
  node *n = bt_arena_calloc(P->arena, sizeof(*n));
  n->op = op;
  n->col = pos + 1;
  return n;
}

static node **chain_to_array(parser *P, node *first, size_t n) {
  node **v = bt_arena_alloc(P->arena, (n ? n : 1) * sizeof(*v));
  size_t i = 0;
  for (node *k = first; k; k = k->next)
    v[i++] = k;
  return v;
}

static int is_string_literal(const node *n) {
  return n->op == N_CONST && n->t.k == TY_STRING;
}

/* Appends ", name" (or "name" first) to a list for an error message; ends
 * it with "..." once full. */
static void append_name(char *buf, size_t len, size_t *o, const char *name) {
  if (*o >= len)
    return;
  int w =
      snprintf(buf + *o, len - *o, "%s%s", *o ? ", " : "", name ? name : "?");
  if (w >= 0 && (size_t)w < len - *o) {
    *o += (size_t)w;
    return;
  }
  if (len >= 4)
    memcpy(buf + len - 4, "...", 4);
  *o = len;
}

/* Turns a string literal compared with enum en into that enum's number, at
 * load, so no name is compared per request. */
static int resolve_enum_literal(parser *P, node *lit, const gw_enum *en) {
  const char *name = (const char *)lit->u.c.u.s.p;
  int32_t num = 0;
  if (strlen(name) != lit->u.c.u.s.n ||
      gw_registry_enum_value(en, name, &num) != 0) {
    char vals[160], b[48];
    size_t o = 0;
    vals[0] = '\0';
    for (size_t i = 0; i < en->n_values; i++)
      append_name(vals, sizeof(vals), &o, en->names[i]);
    fail(P, lit->col - 1, "'%s' is not a value of enum %s (values: %s)",
         printable(name, lit->u.c.u.s.n, b, sizeof(b)), en->full_name, vals);
    return -1;
  }
  lit->u.c.k = V_INT;
  lit->u.c.u.i = num;
  lit->t.k = TY_ENUM;
  lit->t.en = en;
  return 0;
}

/* A list or a message where a comparable value is needed. */
static int check_value(parser *P, const node *n) {
  char b[200];
  if (n->t.k == TY_LIST) {
    fail(P, n->col - 1,
         "a list (%s) can only be used right of 'in' or in size()",
         type_name(&n->t, b, sizeof(b)));
    return -1;
  }
  if (n->t.k == TY_MESSAGE) {
    fail(P, n->col - 1, "a message (%s) can only be used in has()",
         n->t.msg ? n->t.msg->full_name : "?");
    return -1;
  }
  return 0;
}

static const char *const cmp_names[] = {"==", "!=", "<", "<=", ">", ">="};

/* Checks that a (a node) and a value of type tb (node *b when b is a node:
 * list elements of a field are not) can be compared with cmp; string
 * literals facing an enum become its numbers. pos is the operator's. */
static int check_compare(parser *P, node *a, node *b, const etype *tb, int cmp,
                         size_t pos, const char *opname) {
  if (check_value(P, a) != 0)
    return -1;
  if (b && check_value(P, b) != 0)
    return -1;
  if (a->t.k == TY_ENUM && b && is_string_literal(b)) {
    if (resolve_enum_literal(P, b, a->t.en) != 0)
      return -1;
    tb = &b->t;
  } else if (tb->k == TY_ENUM && is_string_literal(a)) {
    if (resolve_enum_literal(P, a, tb->en) != 0)
      return -1;
  }
  uint8_t ka = a->t.k, kb = tb->k;
  char x[200], y[200];
  int ok;
  if (ka == TY_ENUM && kb == TY_ENUM)
    ok =
        a->t.en == tb->en || strcmp(a->t.en->full_name, tb->en->full_name) == 0;
  else if (is_number(ka) && is_number(kb))
    ok = 1;
  else if (is_text(ka) && is_text(kb))
    ok = 1;
  else
    ok = ka == TY_BOOL && kb == TY_BOOL;
  if (!ok) {
    fail(P, pos, "cannot compare %s with %s", type_name(&a->t, x, sizeof(x)),
         type_name(tb, y, sizeof(y)));
    return -1;
  }
  if (ka == TY_BOOL && cmp != C_EQ && cmp != C_NE) {
    fail(P, pos, "'%s' cannot order bool values", opname);
    return -1;
  }
  return 0;
}

static int need_bool(parser *P, const node *n, const char *what) {
  if (n->t.k == TY_BOOL)
    return 0;
  char b[200];
  fail(P, n->col - 1, "%s must be bool, got %s", what,
       type_name(&n->t, b, sizeof(b)));
  return -1;
}

/* ---- paths --------------------------------------------------------------- */

static long find_root(const gw_expr_env *env, const char *s, size_t n) {
  for (size_t i = 0; i < env->n; i++) {
    const char *name = env->names[i];
    if (name && strlen(name) == n && memcmp(name, s, n) == 0)
      return (long)i;
  }
  return -1;
}

static void fail_unknown_name(parser *P, const tok *t) {
  char names[160], b[48];
  size_t o = 0;
  names[0] = '\0';
  for (size_t i = 0; i < P->env->n; i++)
    append_name(names, sizeof(names), &o, P->env->names[i]);
  fail(P, t->pos, "unknown name '%s' (in scope: %s)",
       printable(P->src + t->pos, t->len, b, sizeof(b)),
       P->env->n ? names : "nothing");
}

/* Parses the fields after a root (the current token is the root's
 * identifier, already resolved to index root) and fills out. Each field but
 * the last must be a singular message. Returns 0 or -1. */
static int parse_path_fields(parser *P, size_t root, gw_path *out) {
  const gw_message *m = P->env->types[root];
  size_t cap = 4, n = 0;
  const gw_field **f = bt_arena_alloc(P->arena, cap * sizeof(*f));
  /* Dotted name so far, for messages ("order.items"). */
  size_t start = P->cur.pos, end = P->cur.pos + P->cur.len;
  advance(P);
  while (P->cur.k == T_DOT) {
    advance(P);
    if (P->cur.k != T_IDENT) {
      fail_unexpected(P, "a field name after '.'");
      return -1;
    }
    char b[48], b2[48];
    if (n > 0) {
      const gw_field *prev = f[n - 1];
      if (prev->repeated) {
        fail(P, P->cur.pos,
             "cannot select '%s' from %s: it is a repeated field",
             printable(P->src + P->cur.pos, P->cur.len, b, sizeof(b)),
             printable(P->src + start, end - start, b2, sizeof(b2)));
        return -1;
      }
      if (kind_of_ftype(prev->type) != TY_MESSAGE || !prev->message) {
        char tb[64];
        etype pt = field_etype(prev);
        fail(P, P->cur.pos,
             "cannot select '%s' from %s: it is %s, not a message",
             printable(P->src + P->cur.pos, P->cur.len, b, sizeof(b)),
             printable(P->src + start, end - start, b2, sizeof(b2)),
             type_name(&pt, tb, sizeof(tb)));
        return -1;
      }
      m = prev->message;
    }
    char *name = bt_arena_strndup(P->arena, P->src + P->cur.pos, P->cur.len);
    const gw_field *fld = m ? gw_registry_field(m, name) : NULL;
    if (!fld) {
      fail(P, P->cur.pos, "unknown field '%s' in %s",
           printable(name, P->cur.len, b, sizeof(b)), m ? m->full_name : "?");
      return -1;
    }
    if (n == cap) {
      const gw_field **g = bt_arena_alloc(P->arena, 2 * cap * sizeof(*g));
      memcpy(g, f, n * sizeof(*f));
      f = g;
      cap *= 2;
    }
    f[n++] = fld;
    end = P->cur.pos + P->cur.len;
    advance(P);
  }
  out->root = root;
  out->n = n;
  out->fields = f;
  return 0;
}

/* The dotted source text of a path node, for messages. */
static const char *path_text(const parser *P, const node *n, char *buf,
                             size_t len) {
  size_t o = 0;
  o += (size_t)snprintf(buf, len, "%s", P->env->names[n->u.path.root]);
  for (size_t i = 0; i < n->u.path.n && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, ".%s", n->u.path.f[i]->name);
  return buf;
}

/* Parses a path starting at the current identifier, which must name a
 * root. */
static node *parse_path(parser *P) {
  if (P->cur.k != T_IDENT) {
    fail_unexpected(P, "a field path");
    return NULL;
  }
  long root = find_root(P->env, P->src + P->cur.pos, P->cur.len);
  if (root < 0) {
    fail_unknown_name(P, &P->cur);
    return NULL;
  }
  node *n = new_node(P, N_PATH, P->cur.pos);
  gw_path p;
  if (parse_path_fields(P, (size_t)root, &p) != 0)
    return NULL;
  n->u.path.root = p.root;
  n->u.path.n = p.n;
  n->u.path.f = p.fields;
  if (p.n == 0) {
    n->t.k = TY_MESSAGE;
    n->t.msg = P->env->types[root];
  } else {
    const gw_field *last = p.fields[p.n - 1];
    n->t = field_etype(last);
    n->u.path.key = map_key(last);
    n->vk = vkind(n->t.k == TY_LIST ? n->t.elem : n->t.k);
  }
  return n;
}

/* ---- parser -------------------------------------------------------------- */

static node *parse_or(parser *P);
static node *parse_unary(parser *P);

static int enter(parser *P, size_t pos) {
  if (++P->depth > EXPR_MAX_DEPTH) {
    fail(P, pos, "expression nested deeper than %d levels", EXPR_MAX_DEPTH);
    return -1;
  }
  return 0;
}

static node *parse_call(parser *P) {
  tok name = P->cur;
  advance(P); /* the name; cur is '(' */
  advance(P);
  char pb[200], tb[160];
  if (tok_is(P, &name, "code")) {
    if (P->cur.k != T_IDENT) {
      fail_unexpected(P, "a step name");
      return NULL;
    }
    long root = find_root(P->env, P->src + P->cur.pos, P->cur.len);
    if (root < 0) {
      fail_unknown_name(P, &P->cur);
      return NULL;
    }
    if (!P->env->has_code || !P->env->has_code[root]) {
      fail(P, name.pos, "code() takes a step name; '%s' has no status",
           P->env->names[root]);
      return NULL;
    }
    advance(P);
    if (expect(P, T_RP, "')'") != 0)
      return NULL;
    node *n = new_node(P, N_CODE, name.pos);
    n->u.root = (size_t)root;
    n->t.k = TY_INT;
    return n;
  }
  int is_has = tok_is(P, &name, "has");
  node *p = parse_path(P);
  if (!p || expect(P, T_RP, "')'") != 0)
    return NULL;
  if (p->u.path.n == 0) {
    fail(P, name.pos,
         "%s() takes a field path such as %s.field, not a "
         "whole message",
         is_has ? "has" : "size", P->env->names[p->u.path.root]);
    return NULL;
  }
  const gw_field *last = p->u.path.f[p->u.path.n - 1];
  if (is_has) {
    if (!last->repeated && !last->has_presence) {
      fail(P, name.pos,
           "has() needs a field with presence (a message, a oneof member, "
           "an optional or a repeated field); %s is %s",
           path_text(P, p, pb, sizeof(pb)),
           gw_registry_field_type_str(last, tb, sizeof(tb)));
      return NULL;
    }
    p->op = N_HAS;
  } else {
    if (!last->repeated && last->type != GW_TYPE_STRING &&
        last->type != GW_TYPE_BYTES) {
      fail(P, name.pos,
           "size() takes a repeated, string or bytes field; %s is %s",
           path_text(P, p, pb, sizeof(pb)),
           gw_registry_field_type_str(last, tb, sizeof(tb)));
      return NULL;
    }
    p->op = N_SIZE;
  }
  p->col = name.pos + 1;
  p->t.k = is_has ? TY_BOOL : TY_INT;
  return p;
}

static node *parse_list(parser *P) {
  node *n = new_node(P, N_LIST, P->cur.pos);
  advance(P); /* '[' */
  node *first = NULL, **tail = &first;
  size_t count = 0;
  while (P->cur.k != T_RB) {
    node *item = parse_or(P);
    if (!item)
      return NULL;
    *tail = item;
    tail = &item->next;
    count++;
    if (P->cur.k == T_COMMA) {
      advance(P);
      continue;
    }
    if (P->cur.k != T_RB) {
      fail_unexpected(P, "',' or ']'");
      return NULL;
    }
  }
  advance(P); /* ']' */
  n->u.kids.v = chain_to_array(P, first, count);
  n->u.kids.n = count;
  n->t.k = TY_LIST;
  n->t.elem = ELEM_ITEMS;
  return n;
}

static node *parse_primary(parser *P) {
  tok t = P->cur;
  node *n;
  switch (t.k) {
  case T_INT:
    if (t.u > (uint64_t)INT64_MAX) {
      fail(P, t.pos,
           "integer literal out of range (int is 64-bit signed; "
           "add 'u' for uint)");
      return NULL;
    }
    n = new_node(P, N_CONST, t.pos);
    n->t.k = TY_INT;
    n->u.c.k = V_INT;
    n->u.c.u.i = (int64_t)t.u;
    advance(P);
    return n;
  case T_UINT:
    n = new_node(P, N_CONST, t.pos);
    n->t.k = TY_UINT;
    n->u.c.k = V_UINT;
    n->u.c.u.u = t.u;
    advance(P);
    return n;
  case T_DOUBLE:
    n = new_node(P, N_CONST, t.pos);
    n->t.k = TY_DOUBLE;
    n->u.c.k = V_DOUBLE;
    n->u.c.u.d = t.d;
    advance(P);
    return n;
  case T_STRING:
    n = new_node(P, N_CONST, t.pos);
    n->t.k = TY_STRING;
    n->u.c.k = V_STR;
    n->u.c.u.s.p = (const uint8_t *)t.s;
    n->u.c.u.s.n = t.slen;
    advance(P);
    return n;
  case T_LP: {
    if (enter(P, t.pos) != 0)
      return NULL;
    advance(P);
    n = parse_or(P);
    if (!n || expect(P, T_RP, "')'") != 0)
      return NULL;
    P->depth--;
    return n;
  }
  case T_LB:
    if (enter(P, t.pos) != 0)
      return NULL;
    n = parse_list(P);
    P->depth--;
    return n;
  case T_IDENT:
    break;
  default:
    fail_unexpected(P, "a value");
    return NULL;
  }
  if (tok_is(P, &t, "true") || tok_is(P, &t, "false")) {
    n = new_node(P, N_CONST, t.pos);
    n->t.k = TY_BOOL;
    n->u.c.k = V_BOOL;
    n->u.c.u.b = tok_is(P, &t, "true");
    advance(P);
    return n;
  }
  if (tok_is(P, &t, "in")) {
    fail_unexpected(P, "a value");
    return NULL;
  }
  tok next;
  lex_at(P, P->pos, &next);
  if (next.k == T_LP) {
    if (tok_is(P, &t, "has") || tok_is(P, &t, "size") || tok_is(P, &t, "code"))
      return parse_call(P);
    char b[48];
    fail(P, t.pos, "unknown function '%s' (functions: has, size, code)",
         printable(P->src + t.pos, t.len, b, sizeof(b)));
    return NULL;
  }
  /* Roots win over code names: a step may be called like a code. */
  if (find_root(P->env, P->src + t.pos, t.len) >= 0)
    return parse_path(P);
  int code = bt_grpc_code_from_name(P->src + t.pos, t.len);
  if (code >= 0) {
    n = new_node(P, N_CONST, t.pos);
    n->t.k = TY_INT;
    n->u.c.k = V_INT;
    n->u.c.u.i = code;
    advance(P);
    return n;
  }
  fail_unknown_name(P, &t);
  return NULL;
}

static node *parse_unary(parser *P) {
  tok t = P->cur;
  if (t.k != T_NOT && t.k != T_MINUS)
    return parse_primary(P);
  if (enter(P, t.pos) != 0)
    return NULL;
  advance(P);
  node *n;
  if (t.k == T_MINUS && (P->cur.k == T_INT || P->cur.k == T_DOUBLE)) {
    /* A negative literal: folded here, which also admits -2^63. */
    n = new_node(P, N_CONST, t.pos);
    if (P->cur.k == T_DOUBLE) {
      n->t.k = TY_DOUBLE;
      n->u.c.k = V_DOUBLE;
      n->u.c.u.d = -P->cur.d;
    } else {
      if (P->cur.u > (uint64_t)INT64_MAX + 1) {
        fail(P, t.pos, "integer literal out of range (int is 64-bit signed)");
        return NULL;
      }
      n->t.k = TY_INT;
      n->u.c.k = V_INT;
      n->u.c.u.i = (int64_t)(0 - P->cur.u);
    }
    advance(P);
    P->depth--;
    return n;
  }
  node *kid = parse_unary(P);
  if (!kid)
    return NULL;
  P->depth--;
  char b[200];
  if (t.k == T_NOT) {
    if (need_bool(P, kid, "the operand of '!'") != 0)
      return NULL;
    n = new_node(P, N_NOT, t.pos);
    n->t.k = TY_BOOL;
  } else {
    if (kid->t.k != TY_INT && kid->t.k != TY_DOUBLE) {
      fail(P, t.pos, "'-' needs an int or a double, got %s",
           type_name(&kid->t, b, sizeof(b)));
      return NULL;
    }
    n = new_node(P, N_NEG, t.pos);
    n->t.k = kid->t.k;
  }
  n->u.kid = kid;
  return n;
}

static int cmp_op(int k) {
  switch (k) {
  case T_EQ:
    return C_EQ;
  case T_NE:
    return C_NE;
  case T_LT:
    return C_LT;
  case T_LE:
    return C_LE;
  case T_GT:
    return C_GT;
  case T_GE:
    return C_GE;
  default:
    return -1;
  }
}

static node *parse_cmp(parser *P) {
  node *l = parse_unary(P);
  if (!l)
    return NULL;
  tok op = P->cur;
  int c = cmp_op(op.k);
  int is_in = tok_is(P, &op, "in");
  if (c < 0 && !is_in)
    return l;
  advance(P);
  node *r = parse_unary(P);
  if (!r)
    return NULL;
  if (cmp_op(P->cur.k) >= 0 || tok_is(P, &P->cur, "in")) {
    fail(P, P->cur.pos, "comparisons do not chain: add parentheses");
    return NULL;
  }
  node *n = new_node(P, is_in ? N_IN : N_CMP, op.pos);
  n->t.k = TY_BOOL;
  n->u.bin.l = l;
  n->u.bin.r = r;
  if (!is_in) {
    n->cmp = (uint8_t)c;
    if (check_compare(P, l, r, &r->t, c, op.pos, cmp_names[c]) != 0)
      return NULL;
    return n;
  }
  char b[200];
  if (r->op == N_LIST) {
    if (check_value(P, l) != 0)
      return NULL;
    for (size_t i = 0; i < r->u.kids.n; i++) {
      node *item = r->u.kids.v[i];
      if (check_compare(P, l, item, &item->t, C_EQ, op.pos, "in") != 0)
        return NULL;
    }
    return n;
  }
  if (r->t.k != TY_LIST || r->op != N_PATH) {
    fail(P, r->col - 1,
         "right of 'in' must be a list or a repeated field, got %s",
         type_name(&r->t, b, sizeof(b)));
    return NULL;
  }
  etype et = {.k = r->t.elem, .en = r->t.en, .msg = r->t.map ? NULL : r->t.msg};
  if (et.k == TY_MESSAGE) {
    fail(P, op.pos, "'in' cannot search %s: messages do not compare",
         type_name(&r->t, b, sizeof(b)));
    return NULL;
  }
  if (check_compare(P, l, NULL, &et, C_EQ, op.pos, "in") != 0)
    return NULL;
  return n;
}

/* Parses operands separated by tk into one flat node (or returns the only
 * operand), so long chains cost no recursion. */
static node *parse_chain(parser *P, int tk, uint8_t op, const char *name,
                         node *(*sub)(parser *)) {
  node *first = sub(P);
  if (!first || P->cur.k != tk)
    return first;
  node *n = new_node(P, op, first->col - 1);
  node **tail = &first->next;
  size_t count = 1;
  char what[32];
  snprintf(what, sizeof(what), "an operand of '%s'", name);
  if (need_bool(P, first, what) != 0)
    return NULL;
  while (P->cur.k == tk) {
    advance(P);
    node *k = sub(P);
    if (!k || need_bool(P, k, what) != 0)
      return NULL;
    *tail = k;
    tail = &k->next;
    count++;
  }
  n->u.kids.v = chain_to_array(P, first, count);
  n->u.kids.n = count;
  n->t.k = TY_BOOL;
  return n;
}

static node *parse_and(parser *P) {
  return parse_chain(P, T_AND, N_AND, "&&", parse_cmp);
}

static node *parse_or(parser *P) {
  return parse_chain(P, T_OR, N_OR, "||", parse_and);
}

static void parser_init(parser *P, bt_arena *arena, const char *src,
                        const gw_expr_env *env, char *err, size_t errlen,
                        int with_col) {
  memset(P, 0, sizeof(*P));
  P->arena = arena;
  P->src = src;
  P->env = env;
  P->err = err;
  P->errlen = errlen;
  P->with_col = with_col;
  if (err && errlen)
    err[0] = '\0';
  advance(P);
}

gw_expr *gw_expr_compile(bt_arena *arena, const char *src,
                         const gw_expr_env *env, char *err, size_t errlen) {
  static const gw_expr_env none = {0};
  parser P;
  parser_init(&P, arena, src ? src : "", env ? env : &none, err, errlen, 1);
  if (P.cur.k == T_EOF) {
    fail(&P, 0, "empty expression");
    return NULL;
  }
  node *root = parse_or(&P);
  if (!root || P.failed)
    return NULL;
  if (P.cur.k != T_EOF) {
    fail_unexpected(&P, NULL);
    return NULL;
  }
  if (need_bool(&P, root, "condition") != 0)
    return NULL;
  gw_expr *e = bt_arena_calloc(arena, sizeof(*e));
  e->root = root;
  return e;
}

int gw_expr_path_compile(bt_arena *arena, const char *src,
                         const gw_expr_env *env, gw_path *out, char *err,
                         size_t errlen) {
  static const gw_expr_env none = {0};
  parser P;
  parser_init(&P, arena, src ? src : "", env ? env : &none, err, errlen, 0);
  if (P.cur.k != T_IDENT) {
    fail_unexpected(&P, "a path such as request.field");
    return -1;
  }
  long root = find_root(P.env, src + P.cur.pos, P.cur.len);
  if (root < 0) {
    fail_unknown_name(&P, &P.cur);
    return -1;
  }
  gw_path p;
  if (parse_path_fields(&P, (size_t)root, &p) != 0)
    return -1;
  if (P.cur.k != T_EOF) {
    fail_unexpected(&P, "the end of the path");
    return -1;
  }
  *out = p;
  return 0;
}

/* ---- evaluation ---------------------------------------------------------- */

static const gw_msg *root_msg(const gw_expr_ctx *ctx, size_t root) {
  return ctx && ctx->msgs ? ctx->msgs[root] : NULL;
}

/* The message holding a path's last field, or NULL when it reads as an
 * empty one (a root that did not run, an unset sub-message). */
static const gw_msg *walk(const node *p, const gw_expr_ctx *ctx) {
  const gw_msg *m = root_msg(ctx, p->u.path.root);
  for (size_t k = 0; m && k + 1 < p->u.path.n; k++) {
    gw_value v;
    if (!gw_dynmsg_get(m, p->u.path.f[k], 0, &v))
      return NULL;
    m = v.v.msg;
  }
  return m;
}

/* Element i of f in m (i = 0 for singular fields) as a value of kind vk;
 * m NULL reads the default. */
static void read_field(const gw_msg *m, const gw_field *f, size_t i, uint8_t vk,
                       val *out) {
  gw_value v = {0};
  memset(out, 0, sizeof(*out));
  out->k = vk;
  if (!m) {
    if (vk == V_STR)
      out->u.s.p = (const uint8_t *)"";
    /* As dynmsg reads an absent enum: proto2's default is the first value
     * (proto3's first value is 0). */
    if (f->type == GW_TYPE_ENUM && f->enum_type && f->enum_type->n_values)
      out->u.i = f->enum_type->numbers[0];
    return;
  }
  gw_dynmsg_get(m, f, i, &v);
  switch (vk) {
  case V_BOOL:
    out->u.b = v.v.b != 0;
    break;
  case V_INT:
    out->u.i = v.v.i;
    break;
  case V_UINT:
    out->u.u = v.v.u;
    break;
  case V_DOUBLE:
    out->u.d = v.v.d;
    break;
  default:
    out->u.s.p = v.v.s.ptr ? v.v.s.ptr : (const uint8_t *)"";
    out->u.s.n = v.v.s.ptr ? v.v.s.len : 0;
    break;
  }
}

static int cmp_int_double(int64_t i, double d) {
  if (isnan(d))
    return 2;
  if (d >= 9223372036854775808.0)
    return -1;
  if (d < -9223372036854775808.0)
    return 1;
  int64_t t = (int64_t)d; /* toward zero, in range */
  if (i != t)
    return i < t ? -1 : 1;
  double frac = d - (double)t;
  return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int cmp_uint_double(uint64_t u, double d) {
  if (isnan(d))
    return 2;
  if (d >= 18446744073709551616.0)
    return -1;
  if (d < 0)
    return 1;
  uint64_t t = (uint64_t)d;
  if (u != t)
    return u < t ? -1 : 1;
  double frac = d - (double)t;
  return frac > 0 ? -1 : 0;
}

static int cmp_int_uint(int64_t i, uint64_t u) {
  if (i < 0)
    return -1;
  return (uint64_t)i < u ? -1 : (uint64_t)i > u ? 1 : 0;
}

/* Three-way comparison of values the checker allowed together: -1, 0, 1,
 * or 2 when unordered (a NaN). Numbers compare by value across int, uint
 * and double; text bytewise. */
static int compare(const val *a, const val *b) {
  switch (a->k) {
  case V_BOOL:
    return a->u.b == b->u.b ? 0 : a->u.b < b->u.b ? -1 : 1;
  case V_STR: {
    size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
    int r = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
    if (r)
      return r < 0 ? -1 : 1;
    return a->u.s.n == b->u.s.n ? 0 : a->u.s.n < b->u.s.n ? -1 : 1;
  }
  case V_INT:
    if (b->k == V_INT)
      return a->u.i < b->u.i ? -1 : a->u.i > b->u.i ? 1 : 0;
    if (b->k == V_UINT)
      return cmp_int_uint(a->u.i, b->u.u);
    return cmp_int_double(a->u.i, b->u.d);
  case V_UINT:
    if (b->k == V_UINT)
      return a->u.u < b->u.u ? -1 : a->u.u > b->u.u ? 1 : 0;
    if (b->k == V_INT)
      return -cmp_int_uint(b->u.i, a->u.u);
    return cmp_uint_double(a->u.u, b->u.d);
  default:
    if (b->k == V_DOUBLE) {
      if (isnan(a->u.d) || isnan(b->u.d))
        return 2;
      return a->u.d < b->u.d ? -1 : a->u.d > b->u.d ? 1 : 0;
    }
    if (b->k == V_INT) {
      int r = cmp_int_double(b->u.i, a->u.d);
      return r == 2 ? 2 : -r;
    }
    int r = cmp_uint_double(b->u.u, a->u.d);
    return r == 2 ? 2 : -r;
  }
}

static int apply(int cmp, int r) {
  switch (cmp) {
  case C_EQ:
    return r == 0;
  case C_NE:
    return r != 0;
  case C_LT:
    return r == -1;
  case C_LE:
    return r == -1 || r == 0;
  case C_GT:
    return r == 1;
  default:
    return r == 1 || r == 0;
  }
}

static int eval_bool(const node *n, const gw_expr_ctx *ctx);

static size_t utf8_count(const uint8_t *p, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; i++)
    c += (p[i] & 0xC0) != 0x80;
  return c;
}

static void eval_val(const node *n, const gw_expr_ctx *ctx, val *out) {
  switch (n->op) {
  case N_CONST:
    *out = n->u.c;
    return;
  case N_PATH:
    read_field(walk(n, ctx), n->u.path.f[n->u.path.n - 1], 0, n->vk, out);
    return;
  case N_SIZE: {
    const gw_msg *m = walk(n, ctx);
    const gw_field *f = n->u.path.f[n->u.path.n - 1];
    out->k = V_INT;
    out->u.i = 0;
    if (!m)
      return;
    if (f->repeated) {
      out->u.i = (int64_t)gw_dynmsg_count(m, f);
      return;
    }
    gw_value v = {0};
    gw_dynmsg_get(m, f, 0, &v);
    if (!v.v.s.ptr)
      return;
    /* CEL's size() of a string counts code points; the decoder already
     * checked the UTF-8. */
    out->u.i =
        (int64_t)(f->type == GW_TYPE_STRING ? utf8_count(v.v.s.ptr, v.v.s.len)
                                            : v.v.s.len);
    return;
  }
  case N_CODE:
    out->k = V_INT;
    out->u.i = ctx && ctx->codes ? ctx->codes[n->u.root] : -1;
    return;
  case N_NEG:
    eval_val(n->u.kid, ctx, out);
    if (out->k == V_DOUBLE)
      out->u.d = -out->u.d;
    else /* wraps at INT64_MIN rather than being undefined */
      out->u.i = (int64_t)(0 - (uint64_t)out->u.i);
    return;
  default:
    out->k = V_BOOL;
    out->u.b = eval_bool(n, ctx);
    return;
  }
}

static int eval_in(const node *n, const gw_expr_ctx *ctx) {
  val a, b;
  eval_val(n->u.bin.l, ctx, &a);
  const node *r = n->u.bin.r;
  if (r->op == N_LIST) {
    for (size_t i = 0; i < r->u.kids.n; i++) {
      eval_val(r->u.kids.v[i], ctx, &b);
      if (compare(&a, &b) == 0)
        return 1;
    }
    return 0;
  }
  const gw_msg *m = walk(r, ctx);
  if (!m)
    return 0;
  const gw_field *f = r->u.path.f[r->u.path.n - 1];
  size_t count = gw_dynmsg_count(m, f);
  for (size_t i = 0; i < count; i++) {
    if (r->u.path.key) {
      gw_value e = {0};
      if (!gw_dynmsg_get(m, f, i, &e))
        e.v.msg = NULL;
      read_field(e.v.msg, r->u.path.key, 0, r->vk, &b);
    } else {
      read_field(m, f, i, r->vk, &b);
    }
    if (compare(&a, &b) == 0)
      return 1;
  }
  return 0;
}

static int eval_bool(const node *n, const gw_expr_ctx *ctx) {
  switch (n->op) {
  case N_CONST:
    return n->u.c.u.b;
  case N_PATH: {
    val v;
    eval_val(n, ctx, &v);
    return v.u.b;
  }
  case N_HAS: {
    const gw_msg *m = walk(n, ctx);
    return m ? gw_dynmsg_has(m, n->u.path.f[n->u.path.n - 1]) != 0 : 0;
  }
  case N_NOT:
    return !eval_bool(n->u.kid, ctx);
  case N_AND:
    for (size_t i = 0; i < n->u.kids.n; i++)
      if (!eval_bool(n->u.kids.v[i], ctx))
        return 0;
    return 1;
  case N_OR:
    for (size_t i = 0; i < n->u.kids.n; i++)
      if (eval_bool(n->u.kids.v[i], ctx))
        return 1;
    return 0;
  case N_CMP: {
    val a, b;
    eval_val(n->u.bin.l, ctx, &a);
    eval_val(n->u.bin.r, ctx, &b);
    return apply(n->cmp, compare(&a, &b));
  }
  case N_IN:
    return eval_in(n, ctx);
  default:
    return 0;
  }
}

int gw_expr_eval(const gw_expr *e, const gw_expr_ctx *ctx) {
  return e ? eval_bool(e->root, ctx) : 0;
}

const gw_msg *gw_expr_path_parent(const gw_path *p, const gw_expr_ctx *ctx,
                                  const gw_expr_env *env, bt_arena *arena) {
  const gw_msg *m = root_msg(ctx, p->root);
  if (!m)
    m = gw_dynmsg_empty(arena, env->types[p->root]);
  for (size_t k = 0; k + 1 < p->n; k++) {
    gw_value v;
    const gw_field *f = p->fields[k];
    if (!gw_dynmsg_get(m, f, 0, &v) || !v.v.msg)
      m = gw_dynmsg_empty(arena, f->message);
    else
      m = v.v.msg;
  }
  return m;
}
