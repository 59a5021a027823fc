/* names.c: protoc-c's case conversions (see names.h). They are copied rule
 * for rule, including protoc-c's quirks (runs of capitals are not split),
 * because the generated stubs refer to types and descriptors by the names
 * protoc-c chose; any divergence is a compile error in the user's build. */
#include "names.h"

#include <baton/alloc.h>

#include <ctype.h>
#include <string.h>

static void camel_to_case(emit_buf *out, const char *s, size_t n, int upper) {
  int was_upper = 1; /* no leading underscore */
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int is_upper = isupper(c) != 0;
    if (is_upper && !was_upper)
      emit_char(out, '_');
    emit_char(out, (char)(upper ? toupper(c) : tolower(c)));
    was_upper = is_upper;
  }
}

void names_camel_to_lower(emit_buf *out, const char *s, size_t n) {
  camel_to_case(out, s, n, 0);
}

void names_camel_to_upper(emit_buf *out, const char *s, size_t n) {
  camel_to_case(out, s, n, 1);
}

/* protoc-c's ToCamel: drops '_' and raises the letter after it and the
 * first letter. */
static void to_camel(emit_buf *out, const char *s, size_t n, int unused) {
  int next_upper = 1;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '_') {
      next_upper = 1;
    } else if (next_upper) {
      emit_char(out, (char)toupper(c));
      next_upper = 0;
    } else {
      emit_char(out, (char)c);
    }
  }
}

/* Splits full on '.', skips empty pieces, converts each with piece_fn and
 * joins them with "__". */
static void full_name(emit_buf *out, const char *full,
                      void (*piece_fn)(emit_buf *, const char *, size_t, int),
                      int arg) {
  int first = 1;
  const char *p = full;
  while (*p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n > 0) {
      if (!first)
        emit_str(out, "__");
      piece_fn(out, p, n, arg);
      first = 0;
    }
    p += n;
    if (*p == '.')
      p++;
  }
}

void names_full_to_lower(emit_buf *out, const char *full) {
  full_name(out, full, camel_to_case, 0);
}

void names_full_to_upper(emit_buf *out, const char *full) {
  full_name(out, full, camel_to_case, 1);
}

void names_full_to_c(emit_buf *out, const char *full) {
  full_name(out, full, to_camel, 0);
}

void names_file_identifier(emit_buf *out, const char *filename) {
  for (const char *p = filename; *p; p++) {
    unsigned char c = (unsigned char)*p;
    if (isalnum(c))
      emit_char(out, (char)c);
    else
      emit_printf(out, "_%x", c);
  }
}

static int has_suffix(const char *s, size_t n, const char *suffix) {
  size_t m = strlen(suffix);
  return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

char *names_strip_proto(const char *filename) {
  size_t n = strlen(filename);
  if (has_suffix(filename, n, ".protodevel"))
    n -= strlen(".protodevel");
  else if (has_suffix(filename, n, ".proto"))
    n -= strlen(".proto");
  return bt_strndup(filename, n);
}

int names_is_c_keyword(const char *s) {
  static const char *const keywords[] = {
      "auto",       "break",     "case",           "char",
      "const",      "continue",  "default",        "do",
      "double",     "else",      "enum",           "extern",
      "float",      "for",       "goto",           "if",
      "inline",     "int",       "long",           "register",
      "restrict",   "return",    "short",          "signed",
      "sizeof",     "static",    "struct",         "switch",
      "typedef",    "union",     "unsigned",       "void",
      "volatile",   "while",     "_Alignas",       "_Alignof",
      "_Atomic",    "_Bool",     "_Complex",       "_Generic",
      "_Imaginary", "_Noreturn", "_Static_assert", "_Thread_local"};
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++)
    if (strcmp(s, keywords[i]) == 0)
      return 1;
  return 0;
}
