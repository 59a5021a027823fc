/* cli.h (private): the client's internal structures, shared by channel.c
 * (channels, connections, the HTTP/2 client session) and client_call.c (the
 * bt_client_call API and how a call's status is decided). */
#ifndef BT_CLI_H
#define BT_CLI_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <baton/client.h>

#include "budget.h"
#include "conn.h"
#include "msgin.h"
#include "sendq.h"

typedef struct cli_conn cli_conn;

typedef enum {
  SLOT_IDLE,
  SLOT_CONNECTING,
  SLOT_READY,
  SLOT_BACKOFF
} slot_state;

typedef struct cli_slot {
  bt_channel *ch;
  cli_conn *conn; /* the current connection, or NULL */
  slot_state state;
  bt_timer *backoff_timer;
  uint32_t backoff_ms;
  char last_error[200];
} cli_slot;

struct bt_channel {
  bt_loop *loop;
  bt_channel_opts opts; /* strings point into the copies below */
  char *host, *ca_file, *cert_file, *key_file, *server_name, *authority;
  char *name;              /* for status messages: opts.name or host:port */
  bt_budget budget;        /* bytes buffered for the channel's calls */
  bt_client_call *blocked; /* calls waiting for on_writable */
  bt_timer *pending_timer; /* the oldest waiting call's pending_timeout */
  int pending_timer_armed;
  SSL_CTX *ssl_ctx;
  struct sockaddr_storage addr;
  int addr_ok;
  cli_slot *slots;
  int n_slots;
  cli_conn *conns;              /* every live connection, doubly linked */
  bt_client_call *pending;      /* calls waiting for a connection, FIFO */
  bt_client_call *pending_tail; /* its last call: enqueue is O(1) */
  size_t n_pending;
  int freeing;
};

struct cli_conn {
  cli_slot *slot; /* NULL once the slot moved on (GOAWAY) */
  bt_channel *ch; /* NULL once the channel was freed */
  cli_conn *prev, *next;
  bt_conn *conn;
  nghttp2_session *h2;
  int ready;
  int goaway;
  size_t active;
  bt_client_call *calls;  /* calls with a stream on this connection */
  size_t conn_unconsumed; /* DATA of this read, granted again after it */
};

typedef enum {
  CC_NEW,     /* neither queued nor attached yet */
  CC_PENDING, /* waiting for a connection */
  CC_ACTIVE,  /* has a stream */
  CC_DONE     /* on_done delivered or about to be */
} cc_state;

struct bt_client_call {
  bt_arena *arena; /* the call and everything it holds; freed with it */
  bt_channel *ch;
  cc_state state;
  bt_client_call *prev, *next; /* in the pending list or the conn's list */
  cli_conn *cc;
  int32_t stream_id;
  char *path;
  const ProtobufCMessageDescriptor *output;
  bt_client_callbacks cbs;
  void *ud;
  int64_t deadline;
  nghttp2_nv *md_nv; /* the request metadata as header fields, in arena */
  size_t md_nv_count;
  const char *user_agent; /* the caller's "user-agent" folded into ours */
  size_t user_agent_len;
  int gzip;
  int single_response;
  bt_sendq out;
  size_t out_charged; /* out.bytes charged to the channel's budget */
  int send_closed;
  int blocked; /* on the channel's blocked list */
  bt_client_call *blocked_next;
  uint64_t pending_since_ms; /* loop time it started waiting for a stream */
  int was_pending;           /* pending_since_ms is set */
  bt_call *charge_to;        /* a proxied server call sharing what we hold */
  bt_timer *timer;           /* deadline, or the deferred on_done */
  /* response */
  bt_msgin in;
  size_t in_charged;   /* the decoder's buffer, charged to the budget */
  int read_paused;     /* bt_client_call_read_pause: window not granted */
  size_t unconsumed;   /* bytes received while paused */
  size_t header_bytes; /* response headers + trailers, as RFC 9113 counts */
  int http_status;
  int got_headers;
  int content_type_ok;
  int have_grpc_status;
  int grpc_status;
  char *grpc_message;
  bt_metadata *init_md;
  bt_metadata *trailers;
  int encoding_bad; /* the server used an encoding we do not know */
  /* local decision, made before the stream ended */
  int local_code;
  char *local_message;
};

/* channel.c */
/* Finds a connection for a new call or queues it. */
void bt__cli_channel_dispatch(bt_channel *ch, bt_client_call *call);
/* Takes the call off the pending list. */
void bt__cli_channel_unqueue(bt_channel *ch, bt_client_call *call);
/* Resets the call's stream with CANCEL (if it has one). */
void bt__cli_conn_reset_stream(bt_client_call *call);
/* Wakes the connection up after new output for the call. */
void bt__cli_conn_kick(bt_client_call *call);
/* Grants the server window for len bytes of the call's stream. */
void bt__cli_conn_consume(bt_client_call *call, size_t len);
/* Puts the call on (takes it off) the channel's list of calls to tell when
 * they may send again. */
void bt__cli_channel_block(bt_channel *ch, bt_client_call *call);
void bt__cli_channel_unblock(bt_channel *ch, bt_client_call *call);

/* client_call.c */
/* Fires on_writable when the call may send again; 1 when still blocked. */
int bt__cli_call_check_writable(bt_client_call *call);
/* Submits the call's request on cc (the connection is ready). */
int bt__cli_call_attach(bt_client_call *call, cli_conn *cc);
/* Ends the call with a locally decided status (failure before or during
 * the stream); delivers on_done from the loop. */
void bt__cli_call_fail(bt_client_call *call, int code, const char *message);
/* The connection is gone: the call fails with UNAVAILABLE. */
void bt__cli_call_conn_lost(bt_client_call *call, const char *why);
/* nghttp2 callbacks' entry points for a call. */
int bt__cli_call_header(bt_client_call *call, const nghttp2_frame *frame,
                        const uint8_t *name, size_t namelen,
                        const uint8_t *value, size_t valuelen);
void bt__cli_call_headers_done(bt_client_call *call,
                               const nghttp2_frame *frame);
void bt__cli_call_data(bt_client_call *call, const uint8_t *data, size_t len);
void bt__cli_call_stream_closed(bt_client_call *call, uint32_t error_code);
ssize_t bt__cli_call_read_data(nghttp2_session *h2, int32_t stream_id,
                               uint8_t *buf, size_t length,
                               uint32_t *data_flags,
                               nghttp2_data_source *source, void *user_data);

#endif
