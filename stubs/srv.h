/* srv.h (private): the server's internal structures, shared by server.c
 * (server, listeners, workers), srv_session.c (HTTP/2 server sessions) and
 * call.c (the bt_call API). */
#ifndef BT_SRV_H
#define BT_SRV_H

#include <pthread.h>

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <uv.h>

#include <baton/server.h>

#include <stdatomic.h>

#include "budget.h"
#include "conn.h"
#include "h2scan.h"
#include "msgin.h"
#include "ratelim.h"
#include "sendq.h"

typedef struct srv_worker srv_worker;
typedef struct srv_session srv_session;

typedef struct srv_method {
  const char *path;
  size_t path_len;
  bt_call_kind kind;
  const ProtobufCMessageDescriptor *input;
  const ProtobufCMessageDescriptor *output;
  bt_method_invoke_fn invoke;
  const void *handlers;
  void *ud;
} srv_method;

typedef struct srv_listener {
  char host[256];
  int port;
  struct sockaddr_storage addr;
  SSL_CTX *ssl_ctx;            /* NULL: h2c */
  int first_fd;                /* bound by bt_server_listen, used by worker 0 */
  atomic_uint n_conns;         /* open connections, every worker */
  atomic_llong full_logged_ms; /* when the limit was last reported */
} srv_listener;

struct bt_server {
  bt_server_opts opts;
  srv_listener *listeners;
  size_t n_listeners;
  srv_method *methods; /* open-addressing table keyed by path */
  size_t methods_cap, n_methods;
  srv_method fallback;
  void (*worker_start)(bt_loop *loop, int worker, void *ud);
  void *worker_start_ud;
  void (*worker_stop)(bt_loop *loop, int worker, void *ud);
  void *worker_stop_ud;
  void (*log)(int level, const char *msg, void *ud);
  void *log_ud;
  srv_worker *workers;
  int n_workers;
  int started;
  atomic_int stopping;
};

struct srv_worker {
  bt_server *server;
  int index;
  pthread_t thread;
  bt_loop *loop;
  uv_async_t wakeup; /* shutdown request */
  uv_tcp_t *listen_handles;
  uv_timer_t drain_timer;
  uv_timer_t trim_timer; /* gives freed memory back to the system */
  int trim_due;          /* a connection closed since the last trim */
  srv_session *sessions; /* doubly linked */
  nghttp2_session_callbacks *h2_callbacks;
  nghttp2_option *h2_options;
  int draining;
  int ready;
};

struct srv_session {
  srv_worker *worker;
  srv_listener *listener;
  bt_conn *conn;
  nghttp2_session *h2;
  srv_session *prev, *next;
  size_t open_streams;
  bt_call *calls; /* streams with a call, doubly linked */
  int got_settings;
  int goaway;
  bt_ratelim resets;      /* RST_STREAMs from the client */
  bt_ratelim glitches;    /* protocol glitches the client caused */
  bt_budget budget;       /* bytes buffered for this connection */
  int read_paused;        /* stopped reading: over budget */
  size_t conn_unconsumed; /* DATA of this read, granted again after it */
  uint64_t over_since_ms; /* when the budget was first exceeded; 0 = not */
  bt_timer *sweep;        /* stream timeouts and the budget, while streams */
  int sweep_armed;
  int expiring;     /* a call has an expire_ms: the sweep must run */
  bt_call *blocked; /* calls waiting for on_writable (via blocked_next) */
  bt_h2scan scan;   /* what nghttp2 does not check for us (h2scan.h) */
  int scan_failed;  /* the scanner found a connection error */
  int closing;
};

typedef enum {
  CALL_HEADERS,    /* receiving request headers */
  CALL_WAIT_UNARY, /* unary or server streaming: waiting for the request */
  CALL_RUNNING,    /* the handler has the call */
  CALL_DONE        /* status sent or stream gone */
} call_state;

struct bt_call {
  bt_arena *arena;
  srv_session *sess; /* NULL once the stream closed */
  bt_call *prev, *next;
  bt_loop *loop;
  const char *peer;
  int32_t stream_id;
  call_state state;
  const srv_method *method;
  /* request headers */
  const char *path;
  size_t path_len;
  int method_is_post;
  int content_type_ok;
  int content_type_seen;
  int timeout_bad;
  int encoding_bad;
  int accept_gzip;
  size_t header_bytes;
  int headers_too_large;
  int64_t deadline;
  bt_metadata *req_md;
  /* request messages */
  bt_msgin in;
  size_t in_charged;     /* the decoder's buffer, charged to the budget */
  size_t unary_charged;  /* the held request, charged to the budget */
  size_t linked_charged; /* what linked client calls hold (proxies) */
  int half_closed;
  int read_paused;   /* bt_call_read_pause: window not granted */
  size_t unconsumed; /* bytes received while paused, window not granted */
  uint64_t started_ms, active_ms; /* loop time: first frame, last frame */
  uint64_t expire_ms;             /* bt_call_expire_after; 0: none */
  const ProtobufCMessage *unary_req;
  const uint8_t *unary_bytes; /* raw unary methods */
  size_t unary_len;
  ProtobufCAllocator *pb_alloc;
  bt_call_message_fn on_message;
  void *on_message_ud;
  bt_call_event_fn on_half_close;
  void *on_half_close_ud;
  bt_call_event_fn on_cancel;
  void *on_cancel_ud;
  /* response */
  bt_metadata *init_md;
  bt_metadata *trail_md;
  bt_sendq out;
  size_t out_charged; /* out.bytes charged to the budget */
  bt_call_event_fn on_writable;
  void *on_writable_ud;
  int blocked; /* on the session's blocked list */
  bt_call *blocked_next;
  int gzip;
  int headers_submitted;
  int status_code;
  const char *status_message;
  int status_pending; /* trailers wait for the queue to drain */
  int status_sent;
  int http_only; /* answered as plain HTTP (405, 415): text below */
  const char *text;
  size_t text_len, text_off;
  /* lifetime */
  int finished; /* the handler called bt_call_finish */
  int closed;   /* nghttp2 closed the stream */
  int cancelled;
  int aborted; /* ended by the runtime for a limit (bt__srv_call_abort) */
  int busy;    /* inside a callback into user code */
  bt_timer *deadline_timer;
  bt_timer *after_timer;
  bt_call_event_fn after_fn;
  void *after_ud;
};

/* srv_session.c */
/* The call's budget changed by delta bytes (charge > 0, release < 0). */
void bt__srv_session_budget(srv_session *s, long long delta);
/* Puts the call on (takes it off) the list told when it can send again. */
void bt__srv_session_block(srv_session *s, bt_call *call);
void bt__srv_session_unblock(srv_session *s, bt_call *call);
/* A stream was reset for the client's fault (bad framing, over a limit):
 * counted as a glitch. */
void bt__srv_session_glitch(srv_session *s);
/* The process is over its buffer budget: a connection holding more than
 * its share stops being read and sheds after the grace period. */
void bt__srv_session_process_over(srv_session *s);
/* Arms the per-session timer that enforces stream timeouts and the budget. */
void bt__srv_session_sweep_start(srv_session *s);
/* Reports a line through the server's logger. */
void bt__srv_log(const bt_server *server, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The worker's nghttp2 callbacks and options (created once per worker). */
void bt__srv_session_worker_init(srv_worker *w);
void bt__srv_session_worker_clear(srv_worker *w);
void bt__srv_session_accept(srv_worker *w, uv_stream_t *listener,
                            srv_listener *l);
void bt__srv_session_goaway(srv_session *s);

/* server.c: the method for path, or the fallback, or NULL. */
const srv_method *bt__srv_server_find(const bt_server *server, const char *path,
                                      size_t len);

/* call.c: the runtime's side of a call */
bt_call *bt__srv_call_new(srv_session *s, int32_t stream_id);
/* Headers are complete: validate, route and start the handler. */
void bt__srv_call_headers_done(bt_call *call);
/* DATA payload for the call. */
void bt__srv_call_data(bt_call *call, const uint8_t *data, size_t len);
/* The client half-closed. */
void bt__srv_call_end_of_input(bt_call *call);
/* The runtime gives up on the call (a limit): status code and message when
 * nothing was sent yet, else RST_STREAM h2_code; the handler sees a cancel. */
void bt__srv_call_abort(bt_call *call, int code, const char *message,
                        uint32_t h2_code);
/* Resets the stream of a call whose status was already sent (it waits
 * behind messages the client does not read) and drops what it queued. */
void bt__srv_call_reset(bt_call *call, uint32_t h2_code);
/* Bytes this call holds against the connection's budget. */
size_t bt__srv_call_charged(const bt_call *call);
/* A client call proxied for this one holds delta more (or fewer) bytes:
 * they count against this call's connection (and the process) instead of
 * the client call's channel (bt_client_call_charge_to). */
void bt__srv_call_charge_linked(bt_call *call, long long delta);
/* 1 when the call's connection (or, once its stream is gone, the process)
 * is over its buffer budget. */
int bt__srv_call_budget_exceeded(const bt_call *call);
/* Fires on_writable if the call can send again; returns 1 when it is still
 * blocked. */
int bt__srv_call_check_writable(bt_call *call);
/* nghttp2 closed the stream (error_code from RST_STREAM or 0). */
void bt__srv_call_stream_closed(bt_call *call, uint32_t error_code);
/* A header of the request; returns 0 or -1 to reset the stream. */
int bt__srv_call_header(bt_call *call, const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen);
/* nghttp2 data source read callback for response bodies. */
ssize_t bt__srv_call_read_data(nghttp2_session *h2, int32_t stream_id,
                               uint8_t *buf, size_t length,
                               uint32_t *data_flags,
                               nghttp2_data_source *source, void *user_data);

#endif
