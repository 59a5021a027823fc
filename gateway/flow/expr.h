/* expr.h (gateway/flow, private): the condition language of flows, a documented
 * subset of CEL. Parsed and type-checked at load against the message types
 * of the names in scope; evaluated per request without any name lookup.
 *
 * Grammar (lowest precedence first):
 *   expr    := or
 *   or      := and ( "||" and )*
 *   and     := cmp ( "&&" cmp )*
 *   cmp     := unary ( ("=="|"!="|"<"|"<="|">"|">="|"in") unary )?
 *   unary   := "!" unary | "-" unary | primary
 *   primary := literal | path | "has(" path ")" | "code(" ident ")"
 *            | "size(" path ")" | "(" expr ")" | list
 *   path    := ident ( "." ident )*            (first ident: a name in scope)
 *   literal := int | uint ("1u") | double | "string" | 'string' | true | false
 *            | a gRPC code name (OK, CANCELLED, ... UNAUTHENTICATED)
 *   list    := "[" ( expr ( "," expr )* )? "]"
 * Types: bool, int, uint, double, string, bytes, enum (compares with int or
 * with a string literal naming one of its values, checked at load), message
 * (only in has()), list (repeated fields and list literals, only right of
 * "in" or in size()). code(step) is the step's gRPC status code (an int). */
#ifndef GW_EXPR_H
#define GW_EXPR_H

#include <stddef.h>

#include <baton/arena.h>

#include "proto/proto.h"

typedef struct gw_expr gw_expr;

/* Names in scope: root i is called names[i] and holds a message of
 * types[i]; has_code[i] says whether code(names[i]) is allowed (steps). */
typedef struct gw_expr_env {
  size_t n;
  const char *const *names;
  const gw_message *const *types;
  const int *has_code;
} gw_expr_env;

/* Runtime values for the same roots: msgs[i] (NULL: not run, reads as an
 * empty message) and codes[i] (-1: not run). */
typedef struct gw_expr_ctx {
  const gw_msg *const *msgs;
  const int *codes;
} gw_expr_ctx;

/* Compiles src (a bool expression). Returns NULL and writes
 * "column N: reason" into err on a syntax or type error. */
gw_expr *gw_expr_compile(bt_arena *arena, const char *src,
                         const gw_expr_env *env, char *err, size_t errlen);
/* Evaluates to 1 or 0. Never fails: every path has a value (defaults). */
int gw_expr_eval(const gw_expr *e, const gw_expr_ctx *ctx);

/* A field path "root.a.b" resolved at load: the root's index and the fields
 * (each singular except possibly the last). */
typedef struct gw_path {
  size_t root;
  size_t n;
  const gw_field **fields;
} gw_path;

/* Resolves src as a path against env. Returns 0, or -1 with the reason in
 * err ("unknown field 'totl' in shop.v1.Order"). A path of just a root name
 * (n = 0) is the whole message. */
int gw_expr_path_compile(bt_arena *arena, const char *src,
                         const gw_expr_env *env, gw_path *out, char *err,
                         size_t errlen);
/* The message holding the path's last field (walking singular messages;
 * absent ones read as empty), or the root itself when n = 0. Never NULL:
 * unset roots read as empty messages of their type (made in arena). */
const gw_msg *gw_expr_path_parent(const gw_path *p, const gw_expr_ctx *ctx,
                                  const gw_expr_env *env, bt_arena *arena);

#endif
