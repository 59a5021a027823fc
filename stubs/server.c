/* server.c: bt_server: options, the method table, listeners and the worker
 * threads, each with its own event loop and its own SO_REUSEPORT socket per
 * listener, so the call path takes no lock. The method table is built before
 * start and only read afterwards. */
#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/status.h>

#include "budget.h"
#include "loop_int.h"
#include "pool.h"
#include "srv.h"
#include "opts_int.h"
#include "tls.h"

void bt_server_opts_init(bt_server_opts *o) {
  memset(o, 0, sizeof(*o));
  o->workers = 0;
  o->initialized = BT__OPTS_INITIALIZED;
  o->max_concurrent_streams = 1000;
  o->max_header_list = 16384;
  o->max_recv_message = 4u << 20;
  o->initial_window = 1u << 20;
  o->connection_window = 16u << 20;
  o->handshake_timeout_ms = 10000;
  o->idle_timeout_ms = 300000;
  o->write_timeout_ms = 30000;
  o->stream_reset_burst = 1000;
  o->stream_reset_rate = 33;
  o->max_continuations = 8;
  o->connection_buffer = 32u << 20;
  o->process_buffer = (size_t)1 << 30;
  o->buffer_timeout_ms = 5000;
  o->stream_buffer = 1u << 20;
  o->decoded_factor = 16;
  o->decoded_floor = 1u << 20;
  o->request_header_timeout_ms = 10000;
  o->stream_idle_timeout_ms = 300000;
  o->max_connections = 10000;
  o->glitch_burst = 1000;
  o->glitch_rate = 33;
}

void bt_server_set_logger(bt_server *s,
                          void (*fn)(int level, const char *msg, void *ud),
                          void *ud) {
  s->log = fn;
  s->log_ud = ud;
}

bt_server *bt_server_new(const bt_server_opts *opts) {
  if (opts && opts->initialized != BT__OPTS_INITIALIZED)
    return NULL;
  bt_server *s = bt_calloc(1, sizeof(*s));
  if (opts)
    s->opts = *opts;
  else
    bt_server_opts_init(&s->opts);
  if (s->opts.workers <= 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    s->opts.workers = n > 0 ? (int)n : 1;
  }
  bt__budget_set_process_limit(s->opts.process_buffer);
  return s;
}

/* ---- the method table: open addressing on the path ------------------- */

static uint64_t hash_path(const char *p, size_t len) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= (uint8_t)p[i];
    h *= 1099511628211ull;
  }
  return h;
}

static void table_insert(srv_method *table, size_t cap, const srv_method *m) {
  size_t i = hash_path(m->path, m->path_len) & (cap - 1);
  while (table[i].path)
    i = (i + 1) & (cap - 1);
  table[i] = *m;
}

static void table_grow(bt_server *s) {
  size_t cap = s->methods_cap ? s->methods_cap * 2 : 64;
  srv_method *table = bt_calloc(cap, sizeof(*table));
  for (size_t i = 0; i < s->methods_cap; i++)
    if (s->methods[i].path)
      table_insert(table, cap, &s->methods[i]);
  bt_free(s->methods);
  s->methods = table;
  s->methods_cap = cap;
}

const srv_method *bt__srv_server_find(const bt_server *s, const char *path,
                                      size_t len) {
  if (path && s->methods_cap) {
    size_t i = hash_path(path, len) & (s->methods_cap - 1);
    while (s->methods[i].path) {
      const srv_method *m = &s->methods[i];
      if (m->path_len == len && memcmp(m->path, path, len) == 0)
        return m;
      i = (i + 1) & (s->methods_cap - 1);
    }
  }
  return s->fallback.invoke ? &s->fallback : NULL;
}

int bt_server_add_service(bt_server *s, const bt_service_desc *svc,
                          const void *handlers, void *ud) {
  if (s->started)
    return BT_ERR_STATE;
  for (size_t i = 0; i < svc->n_methods; i++) {
    const bt_method_desc *d = &svc->methods[i];
    size_t len = strlen(d->path);
    const srv_method *old = bt__srv_server_find(s, d->path, len);
    if (old && old != &s->fallback)
      return BT_ERR_EXISTS;
  }
  for (size_t i = 0; i < svc->n_methods; i++) {
    const bt_method_desc *d = &svc->methods[i];
    if ((s->n_methods + 1) * 2 > s->methods_cap)
      table_grow(s);
    srv_method m = {
        .path = d->path,
        .path_len = strlen(d->path),
        .kind = d->kind,
        .input = d->input,
        .output = d->output,
        .invoke = d->invoke,
        .handlers = handlers,
        .ud = ud,
    };
    table_insert(s->methods, s->methods_cap, &m);
    s->n_methods++;
  }
  return 0;
}

void bt_server_set_fallback(bt_server *s, bt_method_invoke_fn invoke,
                            void *ud) {
  s->fallback = (srv_method){.path = "*",
                             .path_len = 1,
                             .kind = BT_CALL_BIDI_STREAMING,
                             .invoke = invoke,
                             .ud = ud};
}

void bt_server_on_worker_stop(bt_server *s,
                              void (*fn)(bt_loop *loop, int worker, void *ud),
                              void *ud) {
  s->worker_stop = fn;
  s->worker_stop_ud = ud;
}

void bt_server_on_worker_start(bt_server *s,
                               void (*fn)(bt_loop *loop, int worker, void *ud),
                               void *ud) {
  s->worker_start = fn;
  s->worker_start_ud = ud;
}

/* ---- listeners ------------------------------------------------------- */

static int bind_socket(const struct sockaddr_storage *addr) {
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  if (bind(fd, (const struct sockaddr *)addr, len) != 0 ||
      listen(fd, 1024) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

static void set_port(struct sockaddr_storage *addr, int port) {
  if (addr->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)addr)->sin6_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
}

static int bound_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (ss.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int bt_server_listen(bt_server *s, const char *host, int port,
                     const bt_tls_opts *tls) {
  if (s->started || port < 0 || port > 65535)
    return BT_ERR_INVAL;
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_PASSIVE};
  struct addrinfo *res = NULL;
  char portstr[8];
  snprintf(portstr, sizeof(portstr), "%d", port);
  int gai = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
  if (gai != 0 || !res) {
    bt__srv_log(s, BT_LOG_ERROR, "cannot resolve listen address %s: %s",
                host ? host : "*", gai_strerror(gai));
    return BT_ERR_INVAL;
  }
  srv_listener l = {0};
  snprintf(l.host, sizeof(l.host), "%s", host ? host : "");
  memcpy(&l.addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  l.first_fd = bind_socket(&l.addr);
  if (l.first_fd < 0) {
    bt__srv_log(s, BT_LOG_ERROR, "cannot listen on %s:%d: %s",
                host ? host : "*", port, strerror(errno));
    return BT_ERR_IO;
  }
  l.port = bound_port(l.first_fd);
  set_port(&l.addr, l.port);
  if (tls) {
    char err[512];
    l.ssl_ctx = bt__tls_server_ctx(tls->cert_file, tls->key_file, tls->ca_file,
                                   tls->require_client_cert, err, sizeof(err));
    if (!l.ssl_ctx) {
      bt__srv_log(s, BT_LOG_ERROR, "listener %s:%d: %s", host ? host : "*",
                  port, err);
      close(l.first_fd);
      return BT_ERR_TLS;
    }
  }
  s->listeners =
      bt_realloc(s->listeners, (s->n_listeners + 1) * sizeof(*s->listeners));
  s->listeners[s->n_listeners++] = l;
  return 0;
}

int bt_server_port(const bt_server *s, size_t i) {
  return i < s->n_listeners ? s->listeners[i].port : -1;
}

/* ---- workers --------------------------------------------------------- */

static void on_connection(uv_stream_t *listener, int status) {
  srv_worker *w = listener->data;
  if (status < 0 || w->draining)
    return;
  srv_listener *l =
      &w->server->listeners[(size_t)((uv_tcp_t *)listener - w->listen_handles)];
  bt__srv_session_accept(w, listener, l);
}

/* Once a second: connections holding too much of a process over its
 * budget are made to shed (see bt__srv_session_process_over), and memory is
 * handed back. glibc keeps what was freed (and raises its mmap threshold
 * after large frees), so after an attack, or a burst of large messages, the
 * process would keep its peak RSS: after connections closed or many
 * buffered bytes were released, free memory goes back. malloc_trim locks
 * each arena briefly; when nothing changed it is not called at all. */
#define TRIM_INTERVAL_MS 1000
#if defined(__SANITIZE_ADDRESS__)
#define BT_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define BT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BT_ASAN 1
#elif __has_feature(thread_sanitizer)
#define BT_TSAN 1
#endif
#endif
#ifdef BT_ASAN
void __sanitizer_purge_allocator(void); /* compiler-rt / libasan */
#endif
#define TRIM_AFTER_RELEASED (8u << 20)

static void trim_tick(uv_timer_t *t) {
  srv_worker *w = t->data;
  /* Connections that hold much but stopped charging (a response queue a
   * client never reads) are found here when the process is over budget. */
  if (bt__budget_exceeded(NULL))
    for (srv_session *s = w->sessions; s; s = s->next)
      bt__srv_session_process_over(s);
  size_t released = bt__budget_take_released();
  if (w->trim_due || released >= TRIM_AFTER_RELEASED) {
    w->trim_due = 0;
    /* This thread's reuse caches too: they refill on demand. */
    bt__pool_flush();
    bt_arena_cache_flush();
    bt__conn_cache_flush();
#if defined(BT_ASAN)
    /* ASan's allocator replaces glibc's (whose arenas malloc_trim would
     * walk, and crash in): it has its own way to give memory back. */
    __sanitizer_purge_allocator();
#elif defined(BT_TSAN)
    /* TSan's allocator replaces glibc's too and has no purge: keep it. */
#elif defined(__GLIBC__)
    malloc_trim(0);
#endif
  }
}

static void drain_deadline(uv_timer_t *t) {
  srv_worker *w = t->data;
  /* In-flight calls had their time: close what is left. */
  for (srv_session *s = w->sessions; s; s = s->next)
    bt__conn_close(s->conn, BT_ERR_CLOSED);
}

static void start_drain(uv_async_t *a) {
  srv_worker *w = a->data;
  if (w->draining)
    return;
  w->draining = 1;
  for (size_t i = 0; i < w->server->n_listeners; i++)
    uv_close((uv_handle_t *)&w->listen_handles[i], NULL);
  /* The wakeup stays open (a second shutdown may still signal it) but must
   * not keep the loop alive. */
  uv_unref((uv_handle_t *)&w->wakeup);
  for (srv_session *s = w->sessions; s; s = s->next)
    bt__srv_session_goaway(s);
  uv_timer_start(&w->drain_timer, drain_deadline, 30000, 0);
  uv_unref((uv_handle_t *)&w->drain_timer);
  if (!w->sessions)
    uv_stop(bt_loop_uv(w->loop));
}

static int open_listeners(srv_worker *w) {
  bt_server *s = w->server;
  uv_loop_t *uv = bt_loop_uv(w->loop);
  w->listen_handles =
      bt_calloc(s->n_listeners ? s->n_listeners : 1, sizeof(uv_tcp_t));
  for (size_t i = 0; i < s->n_listeners; i++) {
    srv_listener *l = &s->listeners[i];
    int fd = w->index == 0 ? l->first_fd : bind_socket(&l->addr);
    if (fd < 0) {
      bt__srv_log(s, BT_LOG_ERROR, "worker %d cannot listen on port %d: %s",
                  w->index, l->port, strerror(errno));
      return -1;
    }
    uv_tcp_t *h = &w->listen_handles[i];
    uv_tcp_init(uv, h);
    h->data = w;
    uv_tcp_open(h, fd);
    if (uv_listen((uv_stream_t *)h, 1024, on_connection) != 0)
      return -1;
  }
  return 0;
}

static void *worker_main(void *arg) {
  srv_worker *w = arg;
  bt__srv_session_worker_init(w);
  if (open_listeners(w) == 0) {
    if (w->server->worker_start)
      w->server->worker_start(w->loop, w->index, w->server->worker_start_ud);
    if (!w->server->stopping)
      bt_loop_run(w->loop);
  }
  /* Whatever is still open (sessions cut by the drain deadline) closes now. */
  for (srv_session *s = w->sessions; s; s = s->next)
    bt__conn_close(s->conn, BT_ERR_CLOSED);
  if (w->server->worker_stop)
    w->server->worker_stop(w->loop, w->index, w->server->worker_stop_ud);
  /* Let every close finish (bounded by the connections' write timeouts).
   * The loop itself is freed by bt_server_free, after the join: until then
   * a late bt_server_shutdown may still touch its wakeup handle. */
  uv_run(bt_loop_uv(w->loop), UV_RUN_DEFAULT);
  /* What this thread charged and released is in the process count, not
   * left in its batch (a later server in the process starts from 0). */
  bt__budget_flush_thread();
  bt__srv_session_worker_clear(w);
  bt_free(w->listen_handles);
  return NULL;
}

int bt_server_start(bt_server *s) {
  if (s->started)
    return BT_ERR_STATE;
  s->started = 1;
  s->n_workers = s->opts.workers;
  s->workers = bt_calloc((size_t)s->n_workers, sizeof(*s->workers));
  for (int i = 0; i < s->n_workers; i++) {
    srv_worker *w = &s->workers[i];
    w->server = s;
    w->index = i;
    w->loop = bt_loop_new();
    uv_async_init(bt_loop_uv(w->loop), &w->wakeup, start_drain);
    w->wakeup.data = w;
    uv_timer_init(bt_loop_uv(w->loop), &w->drain_timer);
    w->drain_timer.data = w;
    uv_unref((uv_handle_t *)&w->drain_timer);
    uv_timer_init(bt_loop_uv(w->loop), &w->trim_timer);
    w->trim_timer.data = w;
    uv_timer_start(&w->trim_timer, trim_tick, TRIM_INTERVAL_MS,
                   TRIM_INTERVAL_MS);
    uv_unref((uv_handle_t *)&w->trim_timer);
  }
  for (int i = 0; i < s->n_workers; i++) {
    if (pthread_create(&s->workers[i].thread, NULL, worker_main,
                       &s->workers[i]) != 0)
      return BT_ERR_NOMEM;
  }
  return 0;
}

void bt_server_shutdown(bt_server *s) {
  /* Only the first call wakes the workers: a second SIGTERM during the
   * drain must not signal loops that may be finishing. */
  if (atomic_exchange(&s->stopping, 1))
    return;
  for (int i = 0; i < s->n_workers; i++)
    uv_async_send(&s->workers[i].wakeup);
}

void bt_server_wait(bt_server *s) {
  for (int i = 0; i < s->n_workers; i++) {
    if (s->workers[i].thread) {
      pthread_join(s->workers[i].thread, NULL);
      s->workers[i].thread = 0;
    }
  }
}

void bt_server_free(bt_server *s) {
  if (!s)
    return;
  if (s->started) {
    bt_server_shutdown(s);
    bt_server_wait(s);
  }
  for (int i = 0; i < s->n_workers; i++)
    bt_loop_free(s->workers[i].loop);
  for (size_t i = 0; i < s->n_listeners; i++) {
    SSL_CTX_free(s->listeners[i].ssl_ctx);
    if (!s->started)
      close(s->listeners[i].first_fd);
  }
  bt_free(s->listeners);
  bt_free(s->methods);
  bt_free(s->workers);
  bt_free(s);
}
