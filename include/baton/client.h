/* baton/client.h: the gRPC client side of libbaton.
 *
 * A bt_channel connects to host:port (h2c, or TLS with a CA, an optional
 * client certificate and hostname verification) and multiplexes many calls
 * over one or several connections, reconnecting with exponential backoff.
 * The asynchronous API runs on a bt_loop; the bt_sync_* API wraps it with a
 * private loop for simple, blocking programs. */
#ifndef BATON_CLIENT_H
#define BATON_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#include <baton/loop.h>
#include <baton/metadata.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

typedef struct bt_channel bt_channel;
typedef struct bt_client_call bt_client_call;

typedef struct bt_channel_opts {
  const char *host;
  int port;
  int use_tls;
  const char *ca_file;   /* NULL: the system's default CA paths */
  const char *cert_file; /* client certificate for mTLS, or NULL */
  const char *key_file;
  const char *server_name;     /* SNI and name verified; default host */
  int verify_hostname;         /* default 1 */
  uint32_t connect_timeout_ms; /* default 5 s */
  int connections;             /* connections to spread calls on; 1 */
  size_t max_recv_message;     /* default 4 MiB */
  uint32_t backoff_initial_ms; /* reconnect backoff; default 100 ms */
  uint32_t backoff_max_ms;     /* default 10 s */
  const char *authority;       /* :authority; default host:port */
  uint32_t max_streams;        /* calls in flight per connection, at most
                                  the server's limit; 0 = the server's */
  /* Calls waiting for a stream (every connection full or connecting): at
   * most max_pending (more fail at once with UNAVAILABLE), each for at most
   * pending_timeout_ms (then UNAVAILABLE), as Envoy's circuit breaker. */
  uint32_t max_pending;        /* default 1024; 0 = no limit */
  uint32_t pending_timeout_ms; /* default 5 s; 0 = none */
  uint32_t max_header_list;    /* response header and trailer list, bytes,
                                  advertised and enforced; 64 KiB */
  size_t channel_buffer;       /* bytes buffered for the channel's calls
                                  (queued requests, parts of responses);
                                  past it sends fail; default 64 MiB */
  size_t stream_buffer;        /* a call's queued requests above this: not
                                  writable; default 1 MiB */
  const char *name;            /* names the backend in status messages;
                                  default host:port */
  unsigned initialized;        /* set by bt_channel_opts_init */
} bt_channel_opts;

/* Fills opts with the defaults above. Mandatory: bt_channel_new refuses
 * options it did not set up (a zeroed struct would mean no hostname
 * verification and no limits). */
void bt_channel_opts_init(bt_channel_opts *opts);

/* A channel on loop into *out; opts (and its strings) are copied. Connects
 * lazily on the first call. Returns 0; BT_ERR_INVAL when opts were not set
 * up by bt_channel_opts_init or lack a host and port; BT_ERR_TLS when the
 * CA, certificate or key cannot be loaded; BT_ERR_NOTFOUND when host does
 * not resolve. On error *out is NULL and err (errlen bytes; may be NULL)
 * holds a sentence saying why. */
int bt_channel_new(bt_loop *loop, const bt_channel_opts *opts, bt_channel **out,
                   char *err, size_t errlen);
/* Cancels every call (their on_done fires with CANCELLED), closes the
 * connections and frees the channel; accepts NULL. */
void bt_channel_free(bt_channel *ch);

typedef struct bt_call_opts {
  int64_t timeout_ms;          /* sent as grpc-timeout; 0 = none */
  const bt_metadata *metadata; /* request metadata, copied; may be NULL */
  int gzip;                    /* compress request messages */
  int single_response;         /* unary or client-streaming: a second
                                  response message ends the call INTERNAL */
} bt_call_opts;

/* The final status of a call; valid during on_done (sync: until free). */
typedef struct bt_status {
  int code;                    /* bt_grpc_code */
  const char *message;         /* decoded grpc-message, never NULL */
  const bt_metadata *trailers; /* never NULL */
} bt_status;

typedef struct bt_client_callbacks {
  /* Response headers arrived (may not fire for trailers-only answers). */
  void (*on_headers)(bt_client_call *call, const bt_metadata *initial,
                     void *ud);
  /* A response message; msg decoded with the output descriptor given to
   * bt_channel_start_call (NULL when it was NULL). Valid during the call. */
  void (*on_message)(bt_client_call *call, const ProtobufCMessage *msg,
                     const uint8_t *bytes, size_t len, void *ud);
  /* Always fires exactly once, from the loop; the call is freed after. */
  void (*on_done)(bt_client_call *call, const bt_status *status, void *ud);
  /* The call's queue fell below half its high-water mark after a send left
   * it above (bt_client_call_writable); may be NULL. */
  void (*on_writable)(bt_client_call *call, void *ud);
} bt_client_callbacks;

/* Starts a call to path ("/pkg.Service/Method"). opts may be NULL. The call
 * belongs to the channel until on_done returns. Never NULL: failures
 * (connection refused, ...) arrive through on_done. */
bt_client_call *bt_channel_start_call(bt_channel *ch, const char *path,
                                      const ProtobufCMessageDescriptor *output,
                                      const bt_call_opts *opts,
                                      const bt_client_callbacks *cbs, void *ud);
/* Queues a request message. BT_ERR_STATE after close_send or the end;
 * BT_ERR_LIMIT when the channel or the process is over its buffer budget
 * and BT_ERR_NOMEM when the message cannot be allocated (both end the call
 * with RESOURCE_EXHAUSTED). */
int bt_client_call_send(bt_client_call *call, const ProtobufCMessage *msg);
int bt_client_call_send_bytes(bt_client_call *call, const uint8_t *bytes,
                              size_t len);
/* Back-pressure: 1 while the server takes what is sent, 0 when the call's
 * queue is over its high-water mark (bt_channel_opts.stream_buffer) or the
 * channel is over its buffer budget; on_writable tells when to go on. */
int bt_client_call_writable(const bt_client_call *call);
/* Bytes queued for the server, not yet handed to the connection. */
size_t bt_client_call_send_queued(const bt_client_call *call);
/* Proxies: what this call buffers (parts of responses, queued requests)
 * also counts against server_call's connection budget, so a client cannot
 * make the proxy hold more upstream than its own connection may (a slow
 * reader with many paused streams). NULL unlinks; unlink before
 * server_call ends. */
typedef struct bt_call bt_call;
void bt_client_call_charge_to(bt_client_call *call, bt_call *server_call);
/* Stops granting the server flow-control window for this call's responses
 * until bt_client_call_read_resume (a proxy whose client is not reading). */
void bt_client_call_read_pause(bt_client_call *call);
void bt_client_call_read_resume(bt_client_call *call);
/* Half-closes: no more request messages. Returns 0, or BT_ERR_STATE when
 * the call was already half-closed or has ended. */
int bt_client_call_close_send(bt_client_call *call);
/* Resets the stream (RST_STREAM CANCEL); on_done follows with CANCELLED
 * unless the call had already ended. */
void bt_client_call_cancel(bt_client_call *call);
/* Unary and server-streaming shorthand: start, send req, close_send.
 * Returns the call as bt_channel_start_call does. */
bt_client_call *bt_channel_call(bt_channel *ch, const char *path,
                                const ProtobufCMessage *req,
                                const ProtobufCMessageDescriptor *output,
                                const bt_call_opts *opts,
                                const bt_client_callbacks *cbs, void *ud);

/* ---- blocking convenience ------------------------------------------- */

typedef struct bt_sync_channel bt_sync_channel;
typedef struct bt_sync_call bt_sync_call;

/* A channel with a loop of its own, for blocking calls; errors as
 * bt_channel_new. */
int bt_sync_channel_new(const bt_channel_opts *opts, bt_sync_channel **out,
                        char *err, size_t errlen);
void bt_sync_channel_free(bt_sync_channel *ch);

/* A blocking call on ch (never NULL; a call that cannot start ends with its
 * status, see bt_sync_call_status). Free with bt_sync_call_free. */
bt_sync_call *bt_sync_call_start(bt_sync_channel *ch, const char *path,
                                 const ProtobufCMessageDescriptor *output,
                                 const bt_call_opts *opts);
/* As bt_client_call_send and bt_client_call_close_send, then one turn of
 * the channel's loop; BT_ERR_CLOSED when the call could not be started. */
int bt_sync_call_send(bt_sync_call *call, const ProtobufCMessage *msg);
int bt_sync_call_close_send(bt_sync_call *call);
/* Waits for the next response message. Returns 1 with *out set (free it
 * with protobuf_c_message_free_unpacked(*out, NULL)), 0 at the end of the
 * responses, or a BT_ERR_*. */
int bt_sync_call_recv(bt_sync_call *call, ProtobufCMessage **out);
/* Waits for the response headers; NULL when the call ended without. */
const bt_metadata *bt_sync_call_initial_metadata(bt_sync_call *call);
/* Waits for the end; the status is owned by the call. */
const bt_status *bt_sync_call_status(bt_sync_call *call);
void bt_sync_call_cancel(bt_sync_call *call);
/* Cancels the call if it has not ended and frees it; accepts NULL. */
void bt_sync_call_free(bt_sync_call *call);

/* Unary in one go. On return *resp is the response or NULL (free with
 * protobuf_c_message_free_unpacked); returns the gRPC code. When message
 * is not NULL it gets the status message (bt_free it). */
int bt_sync_unary(bt_sync_channel *ch, const char *path,
                  const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *output,
                  const bt_call_opts *opts, ProtobufCMessage **resp,
                  char **message);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
