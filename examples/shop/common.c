/* common.c: the shop backends' shared main (flags, listen, signals) and the
 * Stats counters. Handlers run on several worker threads, so the counters
 * sit behind one mutex; a call takes it once on arrival, which costs nothing
 * next to the call itself. */
#include "common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Stats ----------------------------------------------------------- */

static struct {
  pthread_mutex_t mu;
  int64_t calls;
  int64_t cancelled;
  int64_t last_deadline_ms;
  char *last_traceparent; /* bt_malloc'd; NULL = none */
  char *last_authorization;
} stats = {PTHREAD_MUTEX_INITIALIZER, 0, 0, -1, NULL, NULL};

/* A heap copy of key's value in md, or NULL when absent. */
static char *metadata_copy(const bt_metadata *md, const char *key) {
  size_t len;
  const uint8_t *v = bt_metadata_get(md, key, &len);
  return v ? bt_strndup((const char *)v, len) : NULL;
}

static void count_cancel(bt_call *call, void *ud) {
  pthread_mutex_lock(&stats.mu);
  stats.cancelled++;
  pthread_mutex_unlock(&stats.mu);
}

void shop_observe(bt_call *call) {
  int64_t deadline = bt_call_deadline(call), left = -1;
  if (deadline != INT64_MAX) {
    left = (deadline - bt_now_ns()) / 1000000;
    if (left < 0)
      left = 0;
  }
  const bt_metadata *md = bt_call_request_metadata(call);
  /* Copied outside the lock; the old values are freed outside it too. */
  char *tp = metadata_copy(md, "traceparent");
  char *auth = metadata_copy(md, "authorization");

  pthread_mutex_lock(&stats.mu);
  stats.calls++;
  stats.last_deadline_ms = left;
  char *old_tp = stats.last_traceparent, *old_auth = stats.last_authorization;
  stats.last_traceparent = tp;
  stats.last_authorization = auth;
  pthread_mutex_unlock(&stats.mu);

  bt_free(old_tp);
  bt_free(old_auth);
  bt_call_on_cancel(call, count_cancel, NULL);
}

void shop_stats(bt_call *call, const Shop__V1__StatsRequest *req, void *ud) {
  bt_arena *arena = bt_call_arena(call);
  Shop__V1__StatsResponse resp = SHOP__V1__STATS_RESPONSE__INIT;
  char *old_tp = NULL, *old_auth = NULL;

  pthread_mutex_lock(&stats.mu);
  resp.calls = stats.calls;
  resp.cancelled = stats.cancelled;
  resp.last_deadline_ms = stats.last_deadline_ms;
  if (stats.last_traceparent)
    resp.last_traceparent = bt_arena_strndup(arena, stats.last_traceparent,
                                             strlen(stats.last_traceparent));
  if (stats.last_authorization)
    resp.last_authorization = bt_arena_strndup(
        arena, stats.last_authorization, strlen(stats.last_authorization));
  if (req->reset) {
    stats.calls = 0;
    stats.cancelled = 0;
    stats.last_deadline_ms = -1;
    old_tp = stats.last_traceparent;
    old_auth = stats.last_authorization;
    stats.last_traceparent = NULL;
    stats.last_authorization = NULL;
  }
  pthread_mutex_unlock(&stats.mu);

  bt_free(old_tp);
  bt_free(old_auth);
  shop_reply(call, &resp.base);
}

/* ---- handler helpers --------------------------------------------------- */

void shop_reply(bt_call *call, const ProtobufCMessage *resp) {
  int rv = bt_call_send(call, resp);
  if (rv < 0 && !bt_call_is_cancelled(call)) {
    bt_call_finish(call, BT_GRPC_INTERNAL, bt_strerror(rv));
    return;
  }
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

int shop_gone(bt_call *call) {
  if (!bt_call_is_cancelled(call))
    return 0;
  bt_call_finish(call, BT_GRPC_CANCELLED, NULL);
  return 1;
}

char *shop_sprintf(bt_call *call, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  char *s = bt_arena_alloc(bt_call_arena(call), (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- main -------------------------------------------------------------- */

typedef struct shop_flags {
  const char *host;
  int port;
  int workers;
  int use_tls;
  const char *cert;
  const char *key;
} shop_flags;

static bt_server *the_server;

/* "--name=value" matching name: returns value, else NULL. */
static const char *flag_value(const char *arg, const char *name) {
  size_t n = strlen(name);
  if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
      arg[2 + n] != '=')
    return NULL;
  return arg + 3 + n;
}

/* A decimal in [lo, hi], or -1. */
static long parse_int(const char *v, long lo, long hi) {
  char *end;
  long n = strtol(v, &end, 10);
  return (*v == '\0' || *end != '\0' || n < lo || n > hi) ? -1 : n;
}

static int usage(const char *name, const char *bad) {
  fprintf(stderr,
          "%s: bad flag %s\n"
          "usage: %s --port=N [--host=ADDR] [--workers=N]\n"
          "       [--use_tls=true [--cert=FILE] [--key=FILE]]\n",
          name, bad, name);
  return 2;
}

static int parse_flags(const char *name, int argc, char **argv, shop_flags *f) {
  *f = (shop_flags){.host = "127.0.0.1",
                    .port = -1,
                    .cert = "certs/out/server.crt",
                    .key = "certs/out/server.key"};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if ((v = flag_value(a, "port"))) {
      if ((f->port = (int)parse_int(v, 0, 65535)) < 0)
        return usage(name, a);
    } else if ((v = flag_value(a, "workers"))) {
      if ((f->workers = (int)parse_int(v, 0, 1024)) < 0)
        return usage(name, a);
    } else if ((v = flag_value(a, "host"))) {
      f->host = v;
    } else if ((v = flag_value(a, "use_tls"))) {
      if (!strcmp(v, "true") || !strcmp(v, "1"))
        f->use_tls = 1;
      else if (!strcmp(v, "false") || !strcmp(v, "0"))
        f->use_tls = 0;
      else
        return usage(name, a);
    } else if ((v = flag_value(a, "cert"))) {
      f->cert = v;
    } else if ((v = flag_value(a, "key"))) {
      f->key = v;
    } else {
      return usage(name, a);
    }
  }
  return f->port < 0 ? usage(name, "(--port is required)") : 0;
}

int shop_serve(const char *name, int argc, char **argv, shop_register_fn reg) {
  shop_flags f;
  int rv = parse_flags(name, argc, argv, &f);
  if (rv != 0)
    return rv;

  bt_server_opts opts;
  bt_server_opts_init(&opts);
  opts.workers = f.workers;
  the_server = bt_server_new(&opts);
  bt_tls_opts tls = {.cert_file = f.cert, .key_file = f.key};
  if ((rv = reg(the_server)) < 0) {
    fprintf(stderr, "%s: cannot register the service: %s\n", name,
            bt_strerror(rv));
    rv = 1;
    goto out;
  }
  if ((rv = bt_server_listen(the_server, f.host, f.port,
                             f.use_tls ? &tls : NULL)) < 0) {
    fprintf(stderr, "%s: cannot listen on %s:%d: %s\n", name, f.host, f.port,
            bt_strerror(rv));
    rv = 1;
    goto out;
  }

  bt_serve_block_signals(); /* before the workers start: they inherit it */
  if ((rv = bt_server_start(the_server)) < 0) {
    fprintf(stderr, "%s: cannot start: %s\n", name, bt_strerror(rv));
    rv = 1;
    goto out;
  }
  printf("listening on %d\n", bt_server_port(the_server, 0));
  fflush(stdout);
  bt_serve_wait_signal();
  bt_server_shutdown(the_server);
  bt_server_wait(the_server);
  rv = 0;
out:
  bt_server_free(the_server);
  the_server = NULL;
  pthread_mutex_lock(&stats.mu);
  bt_free(stats.last_traceparent);
  bt_free(stats.last_authorization);
  stats.last_traceparent = stats.last_authorization = NULL;
  pthread_mutex_unlock(&stats.mu);
  return rv;
}
