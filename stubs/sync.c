/* sync.c: the blocking convenience API (bt_sync_*). A bt_sync_channel owns a
 * private loop and a channel on it; each blocking function runs that loop
 * until what it waits for has happened. Responses are buffered in the call
 * as they arrive, so nothing is lost between two bt_sync_call_recv. */
#include <string.h>

#include <baton/alloc.h>
#include <baton/client.h>
#include <baton/error.h>
#include <baton/status.h>

struct bt_sync_channel {
  bt_loop *loop;
  bt_channel *ch;
};

typedef struct sync_msg {
  struct sync_msg *next;
  ProtobufCMessage *msg;
} sync_msg;

struct bt_sync_call {
  bt_sync_channel *sch;
  bt_client_call *call; /* NULL once done */
  const ProtobufCMessageDescriptor *output;
  sync_msg *head, *tail;
  int got_headers;
  bt_metadata *initial;
  int done;
  bt_status status;
  char *message;
  bt_metadata *trailers;
};

int bt_sync_channel_new(const bt_channel_opts *opts, bt_sync_channel **out,
                        char *err, size_t errlen) {
  bt_sync_channel *s = bt_calloc(1, sizeof(*s));
  s->loop = bt_loop_new();
  int rc = bt_channel_new(s->loop, opts, &s->ch, err, errlen);
  if (rc != 0) {
    bt_loop_free(s->loop);
    bt_free(s);
    s = NULL;
  }
  *out = s;
  return rc;
}

void bt_sync_channel_free(bt_sync_channel *s) {
  if (!s)
    return;
  bt_channel_free(s->ch);
  bt_loop_free(s->loop); /* runs the loop until every handle closed */
  bt_free(s);
}

static bt_metadata *copy_md(const bt_metadata *src) {
  bt_metadata *md = bt_metadata_new(NULL);
  for (size_t i = 0; i < bt_metadata_count(src); i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    bt_metadata_at(src, i, &key, &value, &len);
    bt_metadata_add(md, key, strlen(key), value, len);
  }
  return md;
}

static void on_headers(bt_client_call *c, const bt_metadata *md, void *ud) {
  bt_sync_call *sc = ud;
  sc->got_headers = 1;
  sc->initial = copy_md(md);
}

static void on_message(bt_client_call *c, const ProtobufCMessage *msg,
                       const uint8_t *bytes, size_t len, void *ud) {
  bt_sync_call *sc = ud;
  /* Unpack again into a message the caller owns and frees. */
  ProtobufCMessage *own =
      sc->output ? protobuf_c_message_unpack(sc->output, NULL, len, bytes)
                 : NULL;
  if (!own)
    return;
  sync_msg *m = bt_calloc(1, sizeof(*m));
  m->msg = own;
  if (sc->tail)
    sc->tail->next = m;
  else
    sc->head = m;
  sc->tail = m;
}

static void on_done(bt_client_call *c, const bt_status *st, void *ud) {
  bt_sync_call *sc = ud;
  sc->call = NULL;
  sc->done = 1;
  sc->message = bt_strdup(st->message);
  sc->trailers = copy_md(st->trailers);
  sc->status.code = st->code;
  sc->status.message = sc->message;
  sc->status.trailers = sc->trailers;
}

static const bt_client_callbacks sync_cbs = {
    .on_headers = on_headers,
    .on_message = on_message,
    .on_done = on_done,
};

bt_sync_call *bt_sync_call_start(bt_sync_channel *s, const char *path,
                                 const ProtobufCMessageDescriptor *output,
                                 const bt_call_opts *opts) {
  bt_sync_call *sc = bt_calloc(1, sizeof(*sc));
  sc->sch = s;
  sc->output = output;
  /* The channel hands raw bytes; they are decoded once, here. */
  sc->call = bt_channel_start_call(s->ch, path, NULL, opts, &sync_cbs, sc);
  return sc;
}

int bt_sync_call_send(bt_sync_call *sc, const ProtobufCMessage *msg) {
  if (!sc->call)
    return BT_ERR_CLOSED;
  int rv = bt_client_call_send(sc->call, msg);
  /* Let the loop push the bytes out before the caller's next step. */
  bt_loop_run_once(sc->sch->loop, 0);
  return rv;
}

int bt_sync_call_close_send(bt_sync_call *sc) {
  if (!sc->call)
    return BT_ERR_CLOSED;
  int rv = bt_client_call_close_send(sc->call);
  bt_loop_run_once(sc->sch->loop, 0);
  return rv;
}

int bt_sync_call_recv(bt_sync_call *sc, ProtobufCMessage **out) {
  *out = NULL;
  while (!sc->head && !sc->done)
    bt_loop_run_once(sc->sch->loop, 1);
  if (!sc->head)
    return 0;
  sync_msg *m = sc->head;
  sc->head = m->next;
  if (!sc->head)
    sc->tail = NULL;
  *out = m->msg;
  bt_free(m);
  return 1;
}

const bt_metadata *bt_sync_call_initial_metadata(bt_sync_call *sc) {
  while (!sc->got_headers && !sc->done)
    bt_loop_run_once(sc->sch->loop, 1);
  return sc->initial;
}

const bt_status *bt_sync_call_status(bt_sync_call *sc) {
  while (!sc->done)
    bt_loop_run_once(sc->sch->loop, 1);
  return &sc->status;
}

void bt_sync_call_cancel(bt_sync_call *sc) {
  if (sc->call)
    bt_client_call_cancel(sc->call);
}

void bt_sync_call_free(bt_sync_call *sc) {
  if (!sc)
    return;
  if (!sc->done) {
    bt_sync_call_cancel(sc);
    bt_sync_call_status(sc);
  }
  while (sc->head) {
    sync_msg *m = sc->head;
    sc->head = m->next;
    protobuf_c_message_free_unpacked(m->msg, NULL);
    bt_free(m);
  }
  bt_metadata_free(sc->initial);
  bt_metadata_free(sc->trailers);
  bt_free(sc->message);
  bt_free(sc);
}

int bt_sync_unary(bt_sync_channel *s, const char *path,
                  const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *output,
                  const bt_call_opts *opts, ProtobufCMessage **resp,
                  char **message) {
  bt_sync_call *sc = bt_sync_call_start(s, path, output, opts);
  bt_sync_call_send(sc, req);
  bt_sync_call_close_send(sc);
  const bt_status *st = bt_sync_call_status(sc);
  int code = st->code;
  ProtobufCMessage *m = NULL;
  bt_sync_call_recv(sc, &m);
  if (code != BT_GRPC_OK && m) {
    protobuf_c_message_free_unpacked(m, NULL);
    m = NULL;
  }
  *resp = m;
  if (message)
    *message = bt_strdup(st->message);
  bt_sync_call_free(sc);
  return code;
}
