/* flow.c: the flow compiler (see flow.h). Walks each flow's YAML, checks it
 * against the descriptors and builds the plan; every problem is reported
 * with the config file and line, and compilation goes on so --check shows
 * them all. */
#include "flow.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/status.h>

typedef struct compiler {
  const gw_config *cfg;
  const gw_registry *reg;
  bt_arena *arena;
  gw_diag *diag;
  int errors;
  /* the flow being compiled */
  const char **names; /* root names: "request", then steps in order */
  const gw_message **types;
  int *has_code;
  size_t n_roots, cap_roots;
  size_t n_calls;
  int group;             /* next parallel group id */
  int saga;              /* a compensation was seen */
  const gw_node **steps; /* CALL nodes by slot */
} compiler;

static void error(compiler *c, const gw_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error(compiler *c, const gw_ynode *at, const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  gw_diag_error(c->diag, c->cfg->path, at ? at->line : 0, "%s", buf);
  c->errors++;
}

/* The env of names visible to a node: "request" and the first `visible`
 * roots (steps written before it). */
static gw_expr_env env_upto(const compiler *c, size_t visible) {
  gw_expr_env env = {.n = visible,
                     .names = c->names,
                     .types = c->types,
                     .has_code = c->has_code};
  return env;
}

static int is_scalar(const gw_ynode *n) {
  return n && n->kind == GW_Y_SCALAR;
}

static int check_keys(compiler *c, const gw_ynode *map, const char *what,
                      const char *const *allowed) {
  int ok = 1;
  for (size_t i = 0; i < map->n; i++) {
    const char *k = map->keys[i]->value;
    int found = 0;
    for (const char *const *a = allowed; *a; a++)
      if (strcmp(k, *a) == 0)
        found = 1;
    if (!found) {
      error(c, map->keys[i], "unknown key '%s' in %s", k, what);
      ok = 0;
    }
  }
  return ok;
}

static int parse_code(const gw_ynode *n) {
  if (!is_scalar(n))
    return -1;
  int code = bt_grpc_code_from_name(n->value, n->len);
  if (code >= 0)
    return code;
  char *end;
  long v = strtol(n->value, &end, 10);
  if (*n->value && !*end && v >= 0 && v <= 16)
    return (int)v;
  return -1;
}

static int valid_step_name(const char *s) {
  if (!(islower((unsigned char)*s) || *s == '_'))
    return 0;
  for (; *s; s++)
    if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) ||
          *s == '_'))
      return 0;
  return 1;
}

/* ---- first pass: every step name, in the order written --------------- */

static void add_root(compiler *c, const char *name, const gw_message *type,
                     int has_code) {
  if (c->n_roots == c->cap_roots) {
    size_t cap = c->cap_roots ? c->cap_roots * 2 : 8;
    const char **names = bt_arena_alloc(c->arena, cap * sizeof(*names));
    const gw_message **types = bt_arena_alloc(c->arena, cap * sizeof(*types));
    int *codes = bt_arena_alloc(c->arena, cap * sizeof(*codes));
    if (c->n_roots) {
      memcpy(names, c->names, c->n_roots * sizeof(*names));
      memcpy(types, c->types, c->n_roots * sizeof(*types));
      memcpy(codes, c->has_code, c->n_roots * sizeof(*codes));
    }
    c->names = names;
    c->types = types;
    c->has_code = codes;
    c->cap_roots = cap;
  }
  c->names[c->n_roots] = name;
  c->types[c->n_roots] = type;
  c->has_code[c->n_roots] = has_code;
  c->n_roots++;
}

static long find_root(const compiler *c, const char *name) {
  for (size_t i = 0; i < c->n_roots; i++)
    if (strcmp(c->names[i], name) == 0)
      return (long)i;
  return -1;
}

/* Parses "backend pkg.Service/Method" of a call; NULL method on error. */
static const gw_method *resolve_call(compiler *c, const gw_ynode *call,
                                     size_t *backend) {
  if (!is_scalar(call)) {
    error(c, call, "call must be \"BACKEND package.Service/Method\"");
    return NULL;
  }
  const char *sp = strchr(call->value, ' ');
  if (!sp) {
    error(c, call, "call must be \"BACKEND package.Service/Method\", got '%s'",
          call->value);
    return NULL;
  }
  char bname[128];
  size_t blen = (size_t)(sp - call->value);
  if (blen >= sizeof(bname))
    blen = sizeof(bname) - 1;
  memcpy(bname, call->value, blen);
  bname[blen] = 0;
  const char *mname = sp + 1;
  while (*mname == ' ')
    mname++;
  int ok = 1;
  long bi = -1;
  for (size_t i = 0; i < c->cfg->n_backends; i++)
    if (strcmp(c->cfg->backends[i].name, bname) == 0)
      bi = (long)i;
  if (bi < 0) {
    error(c, call, "unknown backend '%s'", bname);
    ok = 0;
  }
  const gw_method *m = gw_registry_method(c->reg, mname);
  if (!m) {
    error(c, call, "unknown method '%s' (not in the descriptor set)", mname);
    return NULL;
  }
  if (m->client_streaming || m->server_streaming) {
    error(c, call, "method '%s' is streaming; flow steps call unary methods",
          mname);
    return NULL;
  }
  *backend = (size_t)(bi < 0 ? 0 : bi);
  return ok ? m : NULL;
}

static void collect_steps(compiler *c, const gw_ynode *steps);

static void collect_call(compiler *c, const gw_ynode *step) {
  const gw_ynode *name = gw_ynode_get(step, "name");
  const gw_ynode *call = gw_ynode_get(step, "call");
  const gw_method *m = NULL;
  if (call && is_scalar(call)) {
    const char *sp = strchr(call->value, ' ');
    if (sp)
      m = gw_registry_method(c->reg, sp + 1 + strspn(sp + 1, " "));
  }
  if (!name || !is_scalar(name)) {
    error(c, step, "a call step needs a name");
    return;
  }
  if (!valid_step_name(name->value) || strcmp(name->value, "request") == 0) {
    error(c, name,
          "step name '%s' must be lowercase letters, digits and '_' and not "
          "'request'",
          name->value);
    return;
  }
  if (find_root(c, name->value) >= 0) {
    error(c, name, "duplicate step name '%s'", name->value);
    return;
  }
  add_root(c, name->value, m ? m->output : NULL, 1);
}

static void collect_steps(compiler *c, const gw_ynode *steps) {
  if (!steps || steps->kind != GW_Y_SEQ)
    return;
  for (size_t i = 0; i < steps->n; i++) {
    const gw_ynode *s = steps->values[i];
    if (s->kind != GW_Y_MAP)
      continue;
    if (gw_ynode_get(s, "call")) {
      collect_call(c, s);
    } else if (gw_ynode_get(s, "parallel")) {
      const gw_ynode *p = gw_ynode_get(s, "parallel");
      if (p->kind == GW_Y_SEQ)
        for (size_t k = 0; k < p->n; k++)
          if (p->values[k]->kind == GW_Y_MAP)
            collect_call(c, p->values[k]);
    } else if (gw_ynode_get(s, "if")) {
      collect_steps(c, gw_ynode_get(s, "then"));
      collect_steps(c, gw_ynode_get(s, "else"));
    }
  }
}

/* 1 when src names a step whose call did not resolve: its errors were
 * reported already, and reporting every use again would bury them. */
static int mentions_broken_step(const compiler *c, const char *src) {
  for (size_t i = 1; i < c->n_roots; i++) {
    if (c->types[i])
      continue;
    size_t n = strlen(c->names[i]);
    for (const char *p = strstr(src, c->names[i]); p;
         p = strstr(p + 1, c->names[i])) {
      int starts = p == src || !(isalnum((unsigned char)p[-1]) ||
                                 p[-1] == '_' || p[-1] == '.');
      int ends = !(isalnum((unsigned char)p[n]) || p[n] == '_');
      if (starts && ends)
        return 1;
    }
  }
  return 0;
}

/* ---- mappings -------------------------------------------------------- */

static int parse_literal(compiler *c, const gw_ynode *v, const gw_field *f,
                         gw_value *out) {
  char tbuf[160];
  out->type = f->type;
  if (f->repeated) {
    error(c, v, "field '%s' is repeated: map a repeated field to it", f->name);
    return -1;
  }
  if (v->quoted) {
    if (f->type == GW_TYPE_STRING || f->type == GW_TYPE_BYTES) {
      out->v.s.ptr = (const uint8_t *)v->value;
      out->v.s.len = v->len;
      return 0;
    }
    if (f->type == GW_TYPE_ENUM) {
      int32_t num;
      if (gw_registry_enum_value(f->enum_type, v->value, &num) != 0) {
        error(c, v, "'%s' is not a value of enum %s", v->value,
              f->enum_type->full_name);
        return -1;
      }
      out->v.i = num;
      return 0;
    }
    error(c, v, "field '%s' is %s; a quoted value is a string", f->name,
          gw_registry_field_type_str(f, tbuf, sizeof(tbuf)));
    return -1;
  }
  const char *s = v->value;
  char *end;
  errno = 0;
  switch (f->type) {
  case GW_TYPE_BOOL:
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
      out->v.b = s[0] == 't';
      return 0;
    }
    break;
  case GW_TYPE_DOUBLE:
  case GW_TYPE_FLOAT:
    out->v.d = strtod(s, &end);
    if (*s && !*end && errno == 0)
      return 0;
    break;
  case GW_TYPE_UINT32:
  case GW_TYPE_UINT64:
  case GW_TYPE_FIXED32:
  case GW_TYPE_FIXED64:
    if (*s != '-') {
      out->v.u = strtoull(s, &end, 10);
      if (*s && !*end && errno == 0 &&
          ((f->type != GW_TYPE_UINT32 && f->type != GW_TYPE_FIXED32) ||
           out->v.u <= UINT32_MAX))
        return 0;
    }
    break;
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
  case GW_TYPE_MESSAGE:
  case GW_TYPE_GROUP:
  case GW_TYPE_ENUM:
    return 1; /* not a literal of these: a path */
  default:    /* signed integers */
    out->v.i = strtoll(s, &end, 10);
    if (*s && !*end && errno == 0) {
      int is32 = f->type == GW_TYPE_INT32 || f->type == GW_TYPE_SINT32 ||
                 f->type == GW_TYPE_SFIXED32;
      if (!is32 || (out->v.i >= INT32_MIN && out->v.i <= INT32_MAX))
        return 0;
    }
    break;
  }
  return 1; /* not a literal: try it as a path */
}

static int looks_like_literal(const char *s) {
  return strcmp(s, "true") == 0 || strcmp(s, "false") == 0 ||
         isdigit((unsigned char)s[0]) ||
         ((s[0] == '-' || s[0] == '+' || s[0] == '.') &&
          isdigit((unsigned char)s[1]));
}

static gw_mapping *compile_mapping(compiler *c, const gw_ynode *map,
                                   const gw_message *type, size_t visible);

static int compile_path_source(compiler *c, const gw_ynode *v,
                               const gw_field *f, size_t visible,
                               gw_map_entry *e) {
  char err[256];
  gw_expr_env env = env_upto(c, visible);
  if (mentions_broken_step(c, v->value)) {
    c->errors++; /* already reported at the step */
    return -1;
  }
  if (gw_expr_path_compile(c->arena, v->value, &env, &e->path, err,
                           sizeof(err)) != 0) {
    /* A later step named here? Say so: it is the likely mistake. */
    char root[64];
    size_t n = strcspn(v->value, ".");
    snprintf(root, sizeof(root), "%.*s", (int)(n < 63 ? n : 63), v->value);
    long r = find_root(c, root);
    if (r >= (long)visible)
      error(c, v, "field '%s': step '%s' does not run before this point",
            f->name, root);
    else
      error(c, v, "field '%s': %s", f->name, err);
    return -1;
  }
  gw_ftype from;
  const gw_message *from_msg = NULL;
  const gw_enum *from_enum = NULL;
  int from_rep = 0;
  if (e->path.n == 0) {
    from = GW_TYPE_MESSAGE;
    from_msg = c->types[e->path.root];
  } else {
    const gw_field *sf = e->path.fields[e->path.n - 1];
    from = sf->type;
    from_msg = sf->message;
    from_enum = sf->enum_type;
    from_rep = sf->repeated;
  }
  if (gw_dynmsg_value_assignable(from, from_msg, from_enum, from_rep, f, err,
                                 sizeof(err)) != 0) {
    error(c, v, "cannot map '%s' to field '%s': %s", v->value, f->name, err);
    return -1;
  }
  e->kind = GW_SRC_PATH;
  return 0;
}

static int compile_entry(compiler *c, const gw_ynode *key, const gw_ynode *v,
                         const gw_message *type, size_t visible,
                         gw_map_entry *e) {
  const gw_field *f = gw_registry_field(type, key->value);
  if (!f) {
    error(c, key, "unknown field '%s' in %s", key->value, type->full_name);
    return -1;
  }
  e->target = f;
  if (v->kind == GW_Y_MAP) {
    if (f->type != GW_TYPE_MESSAGE || f->repeated || f->message->map_entry) {
      error(c, v, "field '%s' is not a message: a nested mapping needs one",
            f->name);
      return -1;
    }
    e->kind = GW_SRC_NESTED;
    e->nested = compile_mapping(c, v, f->message, visible);
    return e->nested ? 0 : -1;
  }
  if (v->kind == GW_Y_SEQ) {
    error(c, v,
          "field '%s': lists are not supported in mappings; map a "
          "repeated field",
          f->name);
    return -1;
  }
  if (v->quoted || looks_like_literal(v->value)) {
    int rv = parse_literal(c, v, f, &e->literal);
    if (rv < 0)
      return -1;
    if (rv == 0) {
      e->kind = GW_SRC_LITERAL;
      return 0;
    }
    if (looks_like_literal(v->value)) {
      char tbuf[160];
      error(c, v, "'%s' is not a valid value for field '%s' (%s)", v->value,
            f->name, gw_registry_field_type_str(f, tbuf, sizeof(tbuf)));
      return -1;
    }
  }
  return compile_path_source(c, v, f, visible, e);
}

static gw_mapping *compile_mapping(compiler *c, const gw_ynode *map,
                                   const gw_message *type, size_t visible) {
  if (!map || map->kind != GW_Y_MAP) {
    error(c, map, "a mapping must be a map of field: value");
    return NULL;
  }
  gw_mapping *m = bt_arena_calloc(c->arena, sizeof(*m));
  m->type = type;
  m->entries = bt_arena_calloc(c->arena, (map->n + 1) * sizeof(*m->entries));
  int ok = 1;
  for (size_t i = 0; i < map->n; i++) {
    if (compile_entry(c, map->keys[i], map->values[i], type, visible,
                      &m->entries[m->n]) == 0)
      m->n++;
    else
      ok = 0;
  }
  return ok ? m : NULL;
}

/* ---- steps ----------------------------------------------------------- */

static gw_expr *compile_cond(compiler *c, const gw_ynode *n, size_t visible) {
  if (!is_scalar(n)) {
    error(c, n, "a condition must be a string");
    return NULL;
  }
  char err[256];
  gw_expr_env env = env_upto(c, visible);
  if (mentions_broken_step(c, n->value)) {
    c->errors++; /* already reported at the step */
    return NULL;
  }
  gw_expr *e = gw_expr_compile(c->arena, n->value, &env, err, sizeof(err));
  if (!e)
    error(c, n, "condition '%s': %s", n->value, err);
  return e;
}

static uint32_t code_list(compiler *c, const gw_ynode *n, const char *what) {
  uint32_t mask = 0;
  if (!n || n->kind != GW_Y_SEQ) {
    error(c, n, "%s must be a list of gRPC codes", what);
    return 0;
  }
  for (size_t i = 0; i < n->n; i++) {
    int code = parse_code(n->values[i]);
    if (code < 0)
      error(c, n->values[i], "'%s' is not a gRPC code name",
            is_scalar(n->values[i]) ? n->values[i]->value : "?");
    else
      mask |= 1u << code;
  }
  return mask;
}

static int duration(compiler *c, const gw_ynode *n, const char *key,
                    uint32_t *ms) {
  if (!is_scalar(n) || gw_config_parse_duration_ms(n->value, ms) != 0) {
    char q[80];
    gw_diag_quote(q, sizeof(q), is_scalar(n) ? n->value : "?",
                  is_scalar(n) ? n->len : 1);
    error(c, n, "%s must be a duration like 250ms or 2s, got '%s'", key, q);
    return -1;
  }
  return 0;
}

static void compile_retry(compiler *c, const gw_ynode *n, gw_retry *r) {
  static const char *const keys[] = {"attempts", "backoff", "max_backoff", "on",
                                     NULL};
  r->attempts = 1;
  if (!n)
    return;
  if (n->kind != GW_Y_MAP) {
    error(c, n, "retry must be a map");
    return;
  }
  check_keys(c, n, "retry", keys);
  const gw_ynode *a = gw_ynode_get(n, "attempts");
  r->backoff_ms = 20;
  r->max_backoff_ms = 1000;
  r->on_codes = 1u << BT_GRPC_UNAVAILABLE;
  if (a) {
    char *end;
    long v = is_scalar(a) ? strtol(a->value, &end, 10) : 0;
    if (!is_scalar(a) || *end || v < 1 || v > 100)
      error(c, a, "retry attempts must be 1..100");
    else
      r->attempts = (uint32_t)v;
  }
  if (gw_ynode_get(n, "backoff"))
    duration(c, gw_ynode_get(n, "backoff"), "backoff", &r->backoff_ms);
  if (gw_ynode_get(n, "max_backoff"))
    duration(c, gw_ynode_get(n, "max_backoff"), "max_backoff",
             &r->max_backoff_ms);
  if (gw_ynode_get(n, "on"))
    r->on_codes = code_list(c, gw_ynode_get(n, "on"), "retry on");
}

/* compensate: {call, request, timeout, retry}. Its mapping sees the
 * step's own response too. A compensation is retried on any failure. */
static gw_node *compile_comp(compiler *c, const gw_ynode *s, size_t slot) {
  static const char *const keys[] = {"call", "request", "timeout", "retry",
                                     NULL};
  if (s->kind != GW_Y_MAP) {
    error(c, s, "compensate must be a map with call and request");
    return NULL;
  }
  check_keys(c, s, "compensate", keys);
  gw_node *n = bt_arena_calloc(c->arena, sizeof(*n));
  n->kind = GW_NODE_CALL;
  n->line = s->line;
  n->slot = slot;
  n->name = c->names[slot];
  n->method = resolve_call(c, gw_ynode_get(s, "call"), &n->backend);
  if (!n->method)
    return NULL;
  const gw_ynode *req = gw_ynode_get(s, "request");
  if (req) {
    n->request = compile_mapping(c, req, n->method->input, slot + 1);
    if (!n->request)
      return NULL;
  } else {
    n->request = bt_arena_calloc(c->arena, sizeof(*n->request));
    n->request->type = n->method->input;
  }
  n->timeout_ms = 5000;
  if (gw_ynode_get(s, "timeout"))
    duration(c, gw_ynode_get(s, "timeout"), "timeout", &n->timeout_ms);
  const gw_ynode *retry = gw_ynode_get(s, "retry");
  compile_retry(c, retry, &n->retry);
  if (!retry || !gw_ynode_get(retry, "attempts"))
    n->retry.attempts = 10;
  if (!retry || !gw_ynode_get(retry, "backoff"))
    n->retry.backoff_ms = 100;
  if (!retry || !gw_ynode_get(retry, "max_backoff"))
    n->retry.max_backoff_ms = 10000;
  if (!retry || !gw_ynode_get(retry, "on"))
    n->retry.on_codes = ~1u; /* every code but OK */
  c->saga = 1;
  return n;
}

static gw_node *compile_call(compiler *c, const gw_ynode *s, size_t visible) {
  static const char *const keys[] = {"name",        "call",       "request",
                                     "timeout",     "retry",      "when",
                                     "continue_on", "compensate", NULL};
  check_keys(c, s, "call step", keys);
  const gw_ynode *name = gw_ynode_get(s, "name");
  if (!name || !is_scalar(name))
    return NULL; /* reported in the first pass */
  long slot = find_root(c, name->value);
  if (slot < 0)
    return NULL;
  gw_node *n = bt_arena_calloc(c->arena, sizeof(*n));
  n->kind = GW_NODE_CALL;
  n->line = s->line;
  n->name = name->value;
  n->slot = (size_t)slot;
  n->method = resolve_call(c, gw_ynode_get(s, "call"), &n->backend);
  int ok = n->method != NULL;
  const gw_ynode *req = gw_ynode_get(s, "request");
  if (req && n->method) {
    n->request = compile_mapping(c, req, n->method->input, visible);
    ok &= n->request != NULL;
  } else if (n->method) {
    n->request = bt_arena_calloc(c->arena, sizeof(*n->request));
    n->request->type = n->method->input;
  }
  /* The rest is checked even after an error, so --check shows it all. A
   * step without a timeout gets limits.step_timeout: no backend may hold a
   * flow forever when the client sent no deadline. */
  n->timeout_ms = c->cfg->step_timeout_ms;
  if (gw_ynode_get(s, "timeout"))
    duration(c, gw_ynode_get(s, "timeout"), "timeout", &n->timeout_ms);
  compile_retry(c, gw_ynode_get(s, "retry"), &n->retry);
  if (gw_ynode_get(s, "continue_on"))
    n->continue_on =
        code_list(c, gw_ynode_get(s, "continue_on"), "continue_on");
  if (gw_ynode_get(s, "when")) {
    n->when = compile_cond(c, gw_ynode_get(s, "when"), visible);
    ok &= n->when != NULL;
  }
  if (gw_ynode_get(s, "compensate")) {
    n->comp = compile_comp(c, gw_ynode_get(s, "compensate"), n->slot);
    ok &= n->comp != NULL;
  }
  n->group = c->group++;
  c->steps[n->slot] = n;
  c->n_calls++;
  return ok ? n : NULL;
}

/* ---- fail message templates ------------------------------------------ */

/* The placeholder "{path}" whose '{' is at open and '}' at close, as a path
 * over the roots visible at the step. */
static int compile_placeholder(compiler *c, const gw_ynode *msg,
                               const char *open, const char *close,
                               size_t visible, gw_template_part *part) {
  char *path = bt_arena_strndup(c->arena, open + 1, (size_t)(close - open - 1));
  char err[256];
  gw_expr_env env = env_upto(c, visible);
  if (gw_expr_path_compile(c->arena, path, &env, &part->path, err,
                           sizeof(err)) != 0) {
    error(c, msg, "fail message placeholder {%s}: %s", path, err);
    return -1;
  }
  return 0;
}

/* Splits a fail message into literal text and placeholders. */
static int compile_template(compiler *c, const gw_ynode *msg, size_t visible,
                            gw_template *t) {
  /* "{path}" placeholders: each '{' opens one, closed by the next '}'.
   * There is no escape: "{{x}" is the placeholder "{x", which does not
   * compile, so a message cannot hold a literal '{'; a '}' outside a
   * placeholder is literal text. */
  const char *p = msg->value;
  size_t cap = 1;
  for (const char *q = p; *q; q++)
    cap += *q == '{' ? 2 : 0;
  t->parts = bt_arena_calloc(c->arena, (cap + 1) * sizeof(*t->parts));
  while (*p) {
    const char *open = strchr(p, '{');
    if (!open) {
      t->parts[t->n++].text = p;
      break;
    }
    if (open > p)
      t->parts[t->n++].text = bt_arena_strndup(c->arena, p, (size_t)(open - p));
    const char *close = strchr(open, '}');
    if (!close) {
      error(c, msg, "unclosed '{' in fail message");
      return -1;
    }
    if (compile_placeholder(c, msg, open, close, visible, &t->parts[t->n++]) !=
        0)
      return -1;
    p = close + 1;
  }
  return 0;
}

/* ---- step kinds ------------------------------------------------------ */

static int compile_block(compiler *c, const gw_ynode *steps, gw_block *b,
                         size_t *visible);

/* A step kind's compiler: s is the step's map; *visible counts the roots
 * its expressions may name and grows by the steps it adds. */
typedef gw_node *(*step_compile_fn)(compiler *c, const gw_ynode *s,
                                    size_t *visible);

static gw_node *compile_call_step(compiler *c, const gw_ynode *s,
                                  size_t *visible) {
  gw_node *n = compile_call(c, s, *visible);
  *visible += 1;
  return n;
}

static gw_node *compile_parallel_step(compiler *c, const gw_ynode *s,
                                      size_t *visible) {
  static const char *const keys[] = {"parallel", "when", NULL};
  check_keys(c, s, "parallel step", keys);
  const gw_ynode *p = gw_ynode_get(s, "parallel");
  if (p->kind != GW_Y_SEQ || p->n == 0) {
    error(c, p, "parallel must be a non-empty list of call steps");
    return NULL;
  }
  gw_node *n = bt_arena_calloc(c->arena, sizeof(*n));
  n->kind = GW_NODE_PARALLEL;
  n->line = s->line;
  n->children = bt_arena_calloc(c->arena, p->n * sizeof(*n->children));
  int ok = 1;
  int group = c->group;
  for (size_t i = 0; i < p->n; i++) {
    const gw_ynode *child = p->values[i];
    if (child->kind != GW_Y_MAP || !gw_ynode_get(child, "call")) {
      error(c, child, "a parallel group holds call steps only");
      ok = 0;
      continue;
    }
    /* Siblings run at the same time: none sees another's response. */
    gw_node *cn = compile_call(c, child, *visible);
    if (cn) {
      cn->group = group; /* compensated together */
      n->children[n->n_children++] = cn;
    } else {
      ok = 0;
    }
  }
  c->group = group + 1;
  if (gw_ynode_get(s, "when"))
    n->when = compile_cond(c, gw_ynode_get(s, "when"), *visible);
  *visible += p->n;
  return ok ? n : NULL;
}

static gw_node *compile_if_step(compiler *c, const gw_ynode *s,
                                size_t *visible) {
  static const char *const keys[] = {"if", "then", "else", NULL};
  check_keys(c, s, "if step", keys);
  gw_node *n = bt_arena_calloc(c->arena, sizeof(*n));
  n->kind = GW_NODE_IF;
  n->line = s->line;
  n->cond = compile_cond(c, gw_ynode_get(s, "if"), *visible);
  const gw_ynode *then = gw_ynode_get(s, "then");
  const gw_ynode *els = gw_ynode_get(s, "else");
  if (!then) {
    error(c, s, "if needs a then list");
    return NULL;
  }
  int ok = n->cond != NULL;
  ok &= compile_block(c, then, &n->then_block, visible) == 0;
  if (els)
    ok &= compile_block(c, els, &n->else_block, visible) == 0;
  return ok ? n : NULL;
}

static gw_node *compile_fail_step(compiler *c, const gw_ynode *s,
                                  size_t *visible) {
  static const char *const keys[] = {"fail", "when", NULL};
  static const char *const fkeys[] = {"code", "message", NULL};
  check_keys(c, s, "fail step", keys);
  const gw_ynode *f = gw_ynode_get(s, "fail");
  if (f->kind != GW_Y_MAP) {
    error(c, f, "fail must be a map with code and message");
    return NULL;
  }
  check_keys(c, f, "fail", fkeys);
  gw_node *n = bt_arena_calloc(c->arena, sizeof(*n));
  n->kind = GW_NODE_FAIL;
  n->line = s->line;
  n->code = parse_code(gw_ynode_get(f, "code"));
  if (n->code <= 0) {
    error(c, gw_ynode_get(f, "code") ? gw_ynode_get(f, "code") : f,
          "fail needs a gRPC code other than OK (e.g. FAILED_PRECONDITION)");
    return NULL;
  }
  const gw_ynode *msg = gw_ynode_get(f, "message");
  if (msg && !is_scalar(msg)) {
    error(c, msg, "fail message must be a string");
    return NULL;
  }
  if (msg && compile_template(c, msg, *visible, &n->message) != 0)
    return NULL;
  if (gw_ynode_get(s, "when"))
    n->when = compile_cond(c, gw_ynode_get(s, "when"), *visible);
  return n;
}

/* A step is of the first kind whose key it has, in this order. */
static const struct {
  const char *key;
  step_compile_fn compile;
} step_kinds[] = {
    {"call", compile_call_step},
    {"parallel", compile_parallel_step},
    {"if", compile_if_step},
    {"fail", compile_fail_step},
};

static gw_node *compile_step(compiler *c, const gw_ynode *s, size_t *visible) {
  if (s->kind != GW_Y_MAP) {
    error(c, s, "a step must be a map");
    return NULL;
  }
  for (size_t i = 0; i < sizeof(step_kinds) / sizeof(step_kinds[0]); i++)
    if (gw_ynode_get(s, step_kinds[i].key))
      return step_kinds[i].compile(c, s, visible);
  error(c, s, "a step must have one of: call, parallel, if, fail");
  return NULL;
}

static int compile_block(compiler *c, const gw_ynode *steps, gw_block *b,
                         size_t *visible) {
  if (steps->kind != GW_Y_SEQ) {
    error(c, steps, "steps must be a list");
    return -1;
  }
  b->nodes = bt_arena_calloc(c->arena, (steps->n + 1) * sizeof(*b->nodes));
  int ok = 1;
  for (size_t i = 0; i < steps->n; i++) {
    gw_node *n = compile_step(c, steps->values[i], visible);
    if (n)
      b->nodes[b->n++] = n;
    else
      ok = 0;
  }
  return ok ? 0 : -1;
}

static void compile_flow(compiler *c, const gw_ynode *key, const gw_ynode *body,
                         gw_flow *f) {
  static const char *const keys[] = {"timeout", "steps", "response", NULL};
  memset(f, 0, sizeof(*f));
  f->line = key->line;
  const gw_method *m = gw_registry_method(c->reg, key->value);
  if (!m) {
    error(c, key, "unknown method '%s' (not in the descriptor set)",
          key->value);
    return;
  }
  if (m->client_streaming || m->server_streaming) {
    error(c, key, "flow '%s': flows serve unary methods only", key->value);
    return;
  }
  f->method = m;
  if (body->kind != GW_Y_MAP) {
    error(c, body, "flow '%s' must be a map", key->value);
    return;
  }
  check_keys(c, body, "flow", keys);
  c->n_roots = 0;
  c->n_calls = 0;
  c->saga = 0;
  c->group = 1;
  add_root(c, "request", m->input, 0);
  const gw_ynode *steps = gw_ynode_get(body, "steps");
  if (!steps) {
    error(c, body, "flow '%s' needs steps", key->value);
    return;
  }
  collect_steps(c, steps);
  c->steps = bt_arena_calloc(c->arena, c->n_roots * sizeof(*c->steps));
  if (gw_ynode_get(body, "timeout"))
    duration(c, gw_ynode_get(body, "timeout"), "timeout", &f->timeout_ms);
  size_t visible = 1;
  compile_block(c, steps, &f->body, &visible);
  const gw_ynode *resp = gw_ynode_get(body, "response");
  if (resp) {
    f->response = compile_mapping(c, resp, m->output, c->n_roots);
  } else {
    f->response = bt_arena_calloc(c->arena, sizeof(*f->response));
    f->response->type = m->output;
  }
  f->env.n = c->n_roots;
  f->env.names = c->names;
  f->env.types = c->types;
  f->env.has_code = c->has_code;
  f->n_calls = c->n_calls;
  f->saga = c->saga;
  f->steps = c->steps;
  if (f->saga && !c->cfg->saga_line)
    error(c, key,
          "flow '%s' has compensations but no saga_log is configured "
          "(saga_log: { sqlite: FILE } or { postgres: CONNINFO })",
          key->value);
  /* The next flow gets fresh arrays: these now belong to f. */
  c->names = NULL;
  c->types = NULL;
  c->has_code = NULL;
  c->cap_roots = 0;
}

const gw_flow *gw_flow_find(const gw_flows *flows, const char *name) {
  if (name[0] == '/')
    name++;
  for (size_t i = 0; i < flows->n; i++)
    if (strcmp(flows->flows[i].method->name, name) == 0)
      return &flows->flows[i];
  return NULL;
}

int gw_flow_compile_all(const gw_config *cfg, const gw_registry *reg,
                        bt_arena *arena, gw_flows *out, gw_diag *diag) {
  compiler c = {.cfg = cfg, .reg = reg, .arena = arena, .diag = diag};
  memset(out, 0, sizeof(*out));
  const gw_ynode *flows = cfg->flows;
  if (!flows)
    return 0;
  if (flows->kind != GW_Y_MAP) {
    error(&c, flows, "flows must be a map of \"package.Service/Method\": flow");
    return c.errors;
  }
  out->flows = bt_arena_calloc(arena, (flows->n + 1) * sizeof(*out->flows));
  for (size_t i = 0; i < flows->n; i++) {
    int before = c.errors;
    compile_flow(&c, flows->keys[i], flows->values[i], &out->flows[out->n]);
    if (c.errors == before)
      out->n++;
  }
  return c.errors;
}
