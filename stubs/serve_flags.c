/* serve_flags.c: bt_serve's command line: the standard flags, the limits of
 * bt_server_opts as --FIELD=N, and the hand-off of every other argument to
 * the program's own flag function. */
#include "serve_flags.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_HOST "127.0.0.1"
#define MAX_WORKERS 1024

/* Limits: every field of bt_server_opts but workers, in its order (see
 * baton/server.h for units and defaults). */
static const struct limit {
  const char *name;
  size_t offset;
  int is_size; /* size_t, else uint32_t */
} limits[] = {
#define SIZE_LIMIT(f)                                                          \
  { #f, offsetof(bt_server_opts, f), 1 }
#define U32_LIMIT(f)                                                           \
  { #f, offsetof(bt_server_opts, f), 0 }
    U32_LIMIT(max_concurrent_streams), U32_LIMIT(max_header_list),
    SIZE_LIMIT(max_recv_message),      U32_LIMIT(initial_window),
    U32_LIMIT(connection_window),      U32_LIMIT(handshake_timeout_ms),
    U32_LIMIT(idle_timeout_ms),        U32_LIMIT(write_timeout_ms),
    U32_LIMIT(stream_reset_burst),     U32_LIMIT(stream_reset_rate),
    U32_LIMIT(max_continuations),      SIZE_LIMIT(connection_buffer),
    SIZE_LIMIT(process_buffer),        U32_LIMIT(buffer_timeout_ms),
    SIZE_LIMIT(stream_buffer),         U32_LIMIT(decoded_factor),
    SIZE_LIMIT(decoded_floor),         U32_LIMIT(request_header_timeout_ms),
    U32_LIMIT(stream_idle_timeout_ms), U32_LIMIT(max_connections),
    U32_LIMIT(glitch_burst),           U32_LIMIT(glitch_rate),
#undef SIZE_LIMIT
#undef U32_LIMIT
};
#define N_LIMITS (sizeof(limits) / sizeof(limits[0]))

/* A "--name[=value]" argument taken apart; name is not NUL-terminated. */
typedef struct flag {
  const char *name;
  size_t name_len;
  const char *value; /* after '=', or NULL */
} flag;

static int fail(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
  return -1;
}

static int is(const flag *fl, const char *name) {
  return strlen(name) == fl->name_len &&
         strncmp(fl->name, name, fl->name_len) == 0;
}

/* A decimal in [0, max]; -1 when v is not one. */
static long long parse_uint(const char *v, unsigned long long max) {
  char *end;
  if (*v < '0' || *v > '9')
    return -1; /* strtoull would take "-1", " 1" and "" */
  errno = 0;
  unsigned long long n = strtoull(v, &end, 10);
  return (*end != '\0' || errno != 0 || n > max) ? -1 : (long long)n;
}

/* A boolean flag: bare means true. Returns 0 or 1, -1 for a bad value. */
static int parse_bool(const char *v) {
  if (!v || !strcmp(v, "true") || !strcmp(v, "1"))
    return 1;
  if (!strcmp(v, "false") || !strcmp(v, "0"))
    return 0;
  return -1;
}

static const struct limit *find_limit(const flag *fl) {
  for (size_t i = 0; i < N_LIMITS; i++)
    if (is(fl, limits[i].name))
      return &limits[i];
  return NULL;
}

static int set_limit(serve_flags *f, const struct limit *l, const char *v) {
  long long n =
      parse_uint(v, l->is_size ? (unsigned long long)SIZE_MAX : UINT32_MAX);
  if (n < 0)
    return -1;
  char *field = (char *)&f->opts + l->offset;
  if (l->is_size)
    *(size_t *)field = (size_t)n;
  else
    *(uint32_t *)field = (uint32_t)n;
  return 0;
}

/* The flags that take a value (the booleans do not); the limits too. */
static int takes_value(const flag *fl) {
  static const char *const names[] = {"port", "host", "workers",
                                      "cert", "key",  "ca"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (is(fl, names[i]))
      return 1;
  return find_limit(fl) != NULL;
}

/* Sets the standard flag fl, whose value is v. Returns 0, or -1 when v is
 * bad for it. */
static int set_standard(serve_flags *f, const flag *fl, const char *v) {
  long long n;
  int b;
  if (is(fl, "port")) {
    if ((n = parse_uint(v, 65535)) < 0)
      return -1;
    f->port = (int)n;
  } else if (is(fl, "workers")) {
    if ((n = parse_uint(v, MAX_WORKERS)) < 0)
      return -1;
    f->opts.workers = (int)n;
  } else if (is(fl, "host")) {
    f->host = v;
  } else if (is(fl, "cert")) {
    f->cert = v;
  } else if (is(fl, "key")) {
    f->key = v;
  } else if (is(fl, "ca")) {
    f->ca = v;
  } else if (is(fl, "use_tls")) {
    if ((b = parse_bool(v)) < 0)
      return -1;
    f->use_tls = b;
  } else if (is(fl, "require_client_cert")) {
    if ((b = parse_bool(v)) < 0)
      return -1;
    f->require_client_cert = b;
  } else {
    return set_limit(f, find_limit(fl), v);
  }
  return 0;
}

static int is_standard(const flag *fl) {
  return takes_value(fl) || is(fl, "use_tls") || is(fl, "require_client_cert");
}

/* Takes argv[*i] when it is a standard flag, and its value from the next
 * argument when written "--name VALUE" (then *i moves past it). Returns 1
 * when taken, 0 when not a standard flag, -1 (err set) when bad. */
static int standard_flag(serve_flags *f, int argc, char **argv, int *i,
                         char *err, size_t errlen) {
  const char *arg = argv[*i];
  if (strncmp(arg, "--", 2) != 0)
    return 0;
  const char *eq = strchr(arg + 2, '=');
  flag fl = {.name = arg + 2,
             .name_len = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2),
             .value = eq ? eq + 1 : NULL};
  if (!is_standard(&fl))
    return 0;
  const char *v = fl.value;
  if (!v && takes_value(&fl)) {
    if (*i + 1 >= argc)
      return fail(err, errlen, "%s needs a value", arg);
    v = argv[++*i];
  }
  if (set_standard(f, &fl, v) < 0)
    return fail(err, errlen, "bad value %s for --%.*s", v ? v : "(none)",
                (int)fl.name_len, fl.name);
  return 1;
}

int bt__serve_flags_parse(serve_flags *f, int argc, char **argv,
                          const bt_serve_app *app, char *err, size_t errlen) {
  *f = (serve_flags){.host = app->host ? app->host : DEFAULT_HOST,
                     .port = -1,
                     .cert = "certs/out/server.crt",
                     .key = "certs/out/server.key"};
  bt_server_opts_init(&f->opts);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      f->help = 1;
      return 0;
    }
    int rv = standard_flag(f, argc, argv, &i, err, errlen);
    if (rv < 0)
      return -1;
    if (rv == 0 && (rv = app->flag ? app->flag(arg, app->ud) : 0) != 1)
      return fail(err, errlen, "%s flag %s", rv < 0 ? "bad" : "unknown", arg);
  }
  if (f->port < 0)
    return fail(err, errlen, "--port is required");
  if (f->require_client_cert && (!f->use_tls || !f->ca))
    return fail(err, errlen,
                "--require_client_cert needs --use_tls=true and --ca");
  return 0;
}

void bt__serve_flags_usage(FILE *out, const bt_serve_app *app) {
  fprintf(out,
          "usage: %s --port=N [--host=ADDR] [--workers=N]\n"
          "       [--use_tls=true [--cert=FILE] [--key=FILE]\n"
          "        [--ca=FILE [--require_client_cert=true]]] [--LIMIT=N ...]\n",
          app->name);
  if (app->flag_usage)
    fputs(app->flag_usage, out);
  fprintf(out,
          "--host defaults to %s; --port=0 picks a free port;\n"
          "--workers=0 is one per core.\n"
          "LIMIT is a field of bt_server_opts (bytes, ms or a count):",
          app->host ? app->host : DEFAULT_HOST);
  for (size_t i = 0; i < N_LIMITS; i++)
    fprintf(out, "%s%s", i % 3 == 0 ? "\n  " : ", ", limits[i].name);
  fputs("\nSIGTERM or SIGINT drains (in-flight calls finish) and exits 0.\n",
        out);
}
