/* baton/server.h: the gRPC server side of libbaton.
 *
 * A bt_server serves registered services on any number of listeners (h2c
 * with prior knowledge, or TLS 1.2+ with ALPN h2) from one event loop per
 * worker thread, each with its own SO_REUSEPORT socket. Handlers run on the
 * worker's loop and must not block it: a handler may finish its call later,
 * from a timer or from the callback of a client call it made itself.
 *
 * Call lifecycle: the runtime creates a bt_call per stream and invokes the
 * method's handler. The handler (or code it hands the call to) must call
 * bt_call_finish exactly once, even after the call was cancelled; the
 * runtime frees the call after both bt_call_finish was called and the
 * stream closed. */
#ifndef BATON_SERVER_H
#define BATON_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include <baton/arena.h>
#include <baton/loop.h>
#include <baton/metadata.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

typedef struct bt_server bt_server;
typedef struct bt_call bt_call;

typedef enum bt_call_kind {
  BT_CALL_UNARY = 0,
  BT_CALL_SERVER_STREAMING = 1,
  BT_CALL_CLIENT_STREAMING = 2,
  BT_CALL_BIDI_STREAMING = 3
} bt_call_kind;

/* Entry point of a method. For unary and server-streaming methods the
 * runtime waits for the one request message and the end of the client's
 * stream and passes it decoded in req (owned by the call's arena). For
 * client-streaming and bidi methods req is NULL and the handler registers
 * bt_call_on_message / bt_call_on_half_close. handlers and ud are what was
 * given at registration. */
typedef void (*bt_method_invoke_fn)(bt_call *call, const ProtobufCMessage *req,
                                    const void *handlers, void *ud);

typedef struct bt_method_desc {
  const char *path; /* "/package.Service/Method" */
  bt_call_kind kind;
  const ProtobufCMessageDescriptor *input;  /* NULL: messages stay bytes */
  const ProtobufCMessageDescriptor *output; /* for bt_call_send checks */
  bt_method_invoke_fn invoke;
} bt_method_desc;

typedef struct bt_service_desc {
  const char *name; /* "package.Service" */
  size_t n_methods;
  const bt_method_desc *methods;
} bt_service_desc;

typedef struct bt_tls_opts {
  const char *cert_file; /* PEM chain */
  const char *key_file;  /* PEM key */
  const char *ca_file;   /* CA to verify peers' certificates (mTLS) */
  int require_client_cert;
} bt_tls_opts;

typedef struct bt_server_opts {
  int workers;                     /* event-loop threads; 0 = one per core */
  uint32_t max_concurrent_streams; /* per connection; default 1000 */
  uint32_t max_header_list;        /* bytes, counted by the runtime; 16 KiB */
  size_t max_recv_message;         /* bytes; default 4 MiB */
  uint32_t initial_window;         /* per-stream window; default 1 MiB */
  uint32_t connection_window;      /* default 16 MiB */
  uint32_t handshake_timeout_ms;   /* TLS handshake + client preface; 10 s */
  uint32_t idle_timeout_ms;        /* no open stream; default 5 min; 0 = off */
  uint32_t write_timeout_ms;       /* a write that makes no progress; 30 s */
  uint32_t stream_reset_burst;     /* client RST_STREAMs per connection; 1000 */
  uint32_t stream_reset_rate;      /* per second; 33 */
  uint32_t max_continuations;      /* CONTINUATION frames per header block; 8 */
  /* Memory: bytes buffered for a connection (parts of messages received,
   * requests held for handlers, responses queued) and for the whole
   * process. Past either, the connection stops being read and sends on it
   * fail; a connection still over its budget after buffer_timeout_ms has
   * the call holding the most reset with RESOURCE_EXHAUSTED. */
  size_t connection_buffer;   /* default 32 MiB */
  size_t process_buffer;      /* default 1 GiB; 0 = no process limit */
  uint32_t buffer_timeout_ms; /* default 5 s */
  size_t stream_buffer;       /* a call's queued responses above this: not
                                 writable (bt_call_writable); default 1 MiB */
  /* Decoded request messages may take at most factor x their size + floor
   * bytes of the call's memory; past it: RESOURCE_EXHAUSTED. */
  uint32_t decoded_factor; /* default 16 */
  size_t decoded_floor;    /* default 1 MiB */
  /* Time: headers, and for unary and server-streaming methods the request
   * message, must arrive within request_header_timeout_ms of the stream's
   * first frame; a stream with no frame either way for
   * stream_idle_timeout_ms is reset. 0 = off. */
  uint32_t request_header_timeout_ms; /* default 10 s */
  uint32_t stream_idle_timeout_ms;    /* default 5 min */
  uint32_t max_connections; /* per listener, all workers; 10000; 0 = none */
  /* Protocol glitches a client may cause per connection (invalid frames,
   * empty DATA, PRIORITY, zero WINDOW_UPDATE, streams the server had to
   * reset for the client's fault): a token bucket; past it GOAWAY
   * ENHANCE_YOUR_CALM. nghttp2 1.67's defaults. */
  uint32_t glitch_burst; /* default 1000 */
  uint32_t glitch_rate;  /* per second; default 33 */
  unsigned initialized;  /* set by bt_server_opts_init */
} bt_server_opts;

/* Fills opts with the defaults documented above. Mandatory before
 * bt_server_new (which checks it). */
void bt_server_opts_init(bt_server_opts *opts);

/* A new server; opts is copied (NULL = defaults). Free with bt_server_free.
 * Returns NULL when opts were not set up by bt_server_opts_init (a zeroed
 * struct would mean no limits). */
bt_server *bt_server_new(const bt_server_opts *opts);
/* Stops if running, joins the workers and frees; accepts NULL. */
void bt_server_free(bt_server *server);

/* Adds a listener on host:port (port 0 picks one; see bt_server_port).
 * tls NULL serves h2c with prior knowledge. Files are loaded now. Before
 * start. Returns 0; BT_ERR_INVAL for a bad port, an unresolvable host or a
 * started server; BT_ERR_IO when the socket cannot be bound; BT_ERR_TLS when
 * the certificate, key or CA cannot be loaded. The reason, as a sentence, goes
 * to the logger (bt_server_set_logger). */
int bt_server_listen(bt_server *server, const char *host, int port,
                     const bt_tls_opts *tls);
/* The port listener i is bound to (after bt_server_listen); -1 when there
 * is no listener i. */
int bt_server_port(const bt_server *server, size_t i);

/* Registers every method of svc. handlers is the generated handlers table
 * passed back to each method's invoke; it and svc must outlive the server.
 * Returns BT_ERR_EXISTS when a path is already registered. Before start. */
int bt_server_add_service(bt_server *server, const bt_service_desc *svc,
                          const void *handlers, void *ud);
/* Serves every path no service claims with invoke (req always NULL,
 * messages as bytes, kind BT_CALL_BIDI_STREAMING). Without one, such paths
 * answer UNIMPLEMENTED. Before start. */
void bt_server_set_fallback(bt_server *server, bt_method_invoke_fn invoke,
                            void *ud);
/* Called once on each worker's loop thread after it stopped serving, before
 * its loop is freed: release what on_worker_start made. */
void bt_server_on_worker_stop(bt_server *server,
                              void (*fn)(bt_loop *loop, int worker, void *ud),
                              void *ud);
/* Called once on each worker's loop thread before it accepts connections. */
void bt_server_on_worker_start(bt_server *server,
                               void (*fn)(bt_loop *loop, int worker, void *ud),
                               void *ud);

/* Levels of the logger's sentences. */
enum { BT_LOG_ERROR = 0, BT_LOG_WARNING = 1, BT_LOG_INFO = 2 };

/* Where the runtime reports what an operator should know (why a listener
 * could not be opened, a listener at its connection limit, ...), one
 * sentence per call at a BT_LOG_* level. The library never prints: without
 * a logger these sentences are dropped. Set it before bt_server_listen to
 * hear about listeners; fn is also called from worker threads. */
void bt_server_set_logger(bt_server *server,
                          void (*fn)(int level, const char *msg, void *ud),
                          void *ud);

/* Starts the workers and returns. */
int bt_server_start(bt_server *server);
/* Asks the workers to drain: GOAWAY to every connection, finish in-flight
 * calls, then stop. Thread- and async-signal-safe. */
void bt_server_shutdown(bt_server *server);
/* Blocks until every worker stopped. */
void bt_server_wait(bt_server *server);

/* ---- the call, as a handler sees it ---------------------------------- */

const char *bt_call_path(const bt_call *call);
bt_call_kind bt_call_get_kind(const bt_call *call);
/* Request metadata (decoded -bin values); owned by the call. */
const bt_metadata *bt_call_request_metadata(const bt_call *call);
/* The client's deadline, absolute on bt_now_ms's clock (rounded down);
 * INT64_MAX when none was sent. */
int64_t bt_call_deadline(const bt_call *call);
/* The call's arena: memory freed with the call. */
bt_arena *bt_call_arena(bt_call *call);
/* The loop the call runs on (to start timers or client calls). */
bt_loop *bt_call_loop(bt_call *call);
/* The request message of a unary or server-streaming method registered
 * without an input descriptor (raw bytes, owned by the call); NULL for
 * other methods. */
const uint8_t *bt_call_request_bytes(const bt_call *call, size_t *len);
/* The peer's address as "ip:port". */
const char *bt_call_peer(const bt_call *call);

/* A request message of a streaming call. msg is decoded with the method's
 * input descriptor (NULL for raw methods) and, with bytes, valid only during
 * the callback. */
typedef void (*bt_call_message_fn)(bt_call *call, const ProtobufCMessage *msg,
                                   const uint8_t *bytes, size_t len, void *ud);
typedef void (*bt_call_event_fn)(bt_call *call, void *ud);
void bt_call_on_message(bt_call *call, bt_call_message_fn fn, void *ud);
/* The client closed its side: no more messages will come. */
void bt_call_on_half_close(bt_call *call, bt_call_event_fn fn, void *ud);
/* The client cancelled, the deadline passed or the connection died. The
 * handler still calls bt_call_finish (it then sends nothing). */
void bt_call_on_cancel(bt_call *call, bt_call_event_fn fn, void *ud);
/* 1 once the call was cancelled (as on_cancel), else 0. */
int bt_call_is_cancelled(const bt_call *call);

/* Metadata to send. Initial metadata must be added before the first
 * message; trailing metadata before bt_call_finish. Returns BT_ERR_INVAL
 * for an invalid or reserved key, BT_ERR_STATE when too late. */
int bt_call_add_initial_metadata(bt_call *call, const char *key,
                                 const void *value, size_t len);
int bt_call_add_trailing_metadata(bt_call *call, const char *key,
                                  const void *value, size_t len);
/* Sends the response headers (with the initial metadata added so far) now
 * instead of with the first message: a proxy relays a backend's headers as
 * they come. Returns BT_ERR_STATE after the status was sent. */
int bt_call_send_headers(bt_call *call);
/* Compress response messages with gzip when the client accepts it. */
void bt_call_set_compression(bt_call *call, int gzip);

/* Sends a response message (packed now; the call keeps the bytes until
 * written). Returns BT_ERR_STATE after finish or cancel (stop producing),
 * BT_ERR_LIMIT when the connection or the process is over its buffer
 * budget (the call is then ended with RESOURCE_EXHAUSTED), BT_ERR_NOMEM
 * when the message cannot be allocated (the call is ended likewise). */
int bt_call_send(bt_call *call, const ProtobufCMessage *msg);
int bt_call_send_bytes(bt_call *call, const uint8_t *bytes, size_t len);
/* Back-pressure: 1 while the client reads fast enough to send more, 0 when
 * the call's queue is over its high-water mark (bt_server_opts.
 * stream_buffer) or its connection is over budget. A producer that gets 0
 * waits for on_writable, which fires once the queue is below half the mark
 * again (from the loop, never inside a send). */
int bt_call_writable(const bt_call *call);
/* Bytes queued for the client, not yet handed to the connection. */
size_t bt_call_send_queued(const bt_call *call);
void bt_call_on_writable(bt_call *call, bt_call_event_fn fn, void *ud);
/* A bound on how long the call may run, the server's own (a proxy's
 * default timeout): past it the call ends with DEADLINE_EXCEEDED (the
 * handler sees a cancel). Checked by the connection's sweep, to within a
 * second, so it costs no timer of its own; for an exact deadline use the
 * client's grpc-timeout or a timer. */
void bt_call_expire_after(bt_call *call, uint32_t ms);
/* Stops granting the client flow-control window for this call (messages
 * already allowed still arrive) until bt_call_read_resume: a proxy pauses
 * the side whose output it cannot pass on. */
void bt_call_read_pause(bt_call *call);
void bt_call_read_resume(bt_call *call);
/* Ends the call with a status; message may be NULL. The call must not be
 * used afterwards. */
void bt_call_finish(bt_call *call, int code, const char *message);
/* Calls fn after delay_ms on the call's loop unless the call was cancelled
 * first (then fn is called at once with bt_call_is_cancelled true, so the
 * handler can finish). One pending timer per call. */
void bt_call_after(bt_call *call, uint64_t delay_ms, bt_call_event_fn fn,
                   void *ud);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
