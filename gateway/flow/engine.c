/* engine.c: runs a compiled flow for one client call, as a state machine
 * on the worker's loop: nothing blocks. The client request and every step
 * response are decoded once (views over their bytes); requests to backends
 * and the final response are encoded from the plan's mappings.
 *
 * A run owns its own arena, not the client call's: backend calls may still
 * be finishing (being cancelled) after the client has its answer, and the
 * run is freed only when the last of them reported. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/status.h>

#include "flow.h"

#include "core/core.h"
#include "proxy/proxy.h"
#include "saga/saga.h"

typedef struct gw_run gw_run;

typedef struct step_call {
  gw_run *run;
  const gw_node *node;
  bt_client_call *call;
  bt_timer *backoff;
  int backing_off;
  uint32_t attempt;
  uint8_t *resp;
  size_t resp_len;
  int got_resp;
  int maybe_applied; /* an earlier attempt ended in a way that may have
                        applied it (timeout, reset, UNAVAILABLE...) */
} step_call;

typedef struct frame {
  const gw_block *block;
  size_t next;
} frame;

struct gw_run {
  bt_arena *arena;
  const gw_flow *flow;
  gw_worker *w;
  bt_call *call; /* NULL once the client has its answer */
  const gw_msg **msgs;
  int *codes;
  step_call *steps; /* by slot */
  frame *stack;
  size_t depth, stack_cap;
  size_t inflight; /* backend calls and backoff timers outstanding */
  int done;
  int advancing;
  int64_t deadline;
  bt_timer *deadline_timer;
  bt_metadata *md;
  /* sagas: the run is logged and compensated when it fails */
  int saga;
  char saga_id[40];
  int *step_state;    /* gw_step_state by slot, -1: not started */
  uint8_t **comp_req; /* by slot: what the compensation would send */
  size_t *comp_len;
  int compensate;            /* failed: compensate once in-flight calls end */
  int completed;             /* COMPLETED is being logged: never compensate */
  const uint8_t *resp_bytes; /* the answer, sent once COMPLETED is durable */
  size_t resp_len;
};

static void advance(gw_run *run);

static void run_free(gw_run *run) {
  /* A completed saga (or one that never started) leaves the live set here;
   * one being compensated leaves it when its compensation ends. */
  if (run->saga && !run->compensate)
    gw_saga_live_remove(run->saga_id);
  bt_timer_free(run->deadline_timer);
  for (size_t i = 0; i < run->flow->env.n; i++)
    bt_timer_free(run->steps[i].backoff);
  bt_arena_free(run->arena); /* run->md with it */
}

/* Hands the steps to compensate to the background compensator. */
static void start_compensation(gw_run *run) {
  size_t n = run->flow->env.n;
  gw_comp_input *in = bt_arena_calloc(run->arena, n * sizeof(*in));
  size_t k = 0;
  for (size_t slot = 1; slot < n; slot++) {
    int st = run->step_state[slot];
    const gw_node *step = run->flow->steps[slot];
    if (!step || !step->comp ||
        (st != GW_STEP_STARTED && st != GW_STEP_COMMITTED))
      continue;
    in[k].slot = (int)slot;
    in[k].state = (gw_step_state)st;
    in[k].req = run->comp_req[slot];
    in[k].len = run->comp_len[slot];
    k++;
  }
  gw_saga_compensate(run->w, run->flow, run->saga_id, in, k);
}

static void maybe_free(gw_run *run) {
  if (!run->done || run->inflight != 0 || run->advancing)
    return;
  /* Forward calls have all ended (cancelled ones included), so nothing
   * can still apply after its compensation. */
  if (run->compensate)
    start_compensation(run);
  run_free(run);
}

/* Ends the run for the client with code (OK answers are sent by
 * respond()). In-flight backend calls are cancelled. */
static void finish(gw_run *run, int code, const char *message) {
  if (run->done)
    return;
  run->done = 1;
  if (run->saga && code != BT_GRPC_OK && !run->completed)
    run->compensate = 1;
  if (run->deadline_timer)
    bt_timer_stop(run->deadline_timer);
  for (size_t i = 1; i < run->flow->env.n; i++) {
    step_call *sc = &run->steps[i];
    if (sc->call)
      bt_client_call_cancel(sc->call); /* its on_done still comes */
    if (sc->backing_off) {
      bt_timer_stop(sc->backoff);
      sc->backing_off = 0;
      run->inflight--;
    }
  }
  if (run->call) {
    bt_call_finish(run->call, code, message);
    run->call = NULL;
  }
  maybe_free(run);
}

/* The common start of every callback that was counted in `inflight` (a
 * backend call, a backoff timer, a saga-log write): uncounts it and says
 * whether the run goes on. 0 means the run is over (and maybe freed) or has
 * just failed because the log could not be written: the caller returns. */
static int resume(gw_run *run, int log_err) {
  run->inflight--;
  if (run->done) {
    maybe_free(run);
    return 0;
  }
  if (log_err) {
    finish(run, BT_GRPC_UNAVAILABLE, "the saga log cannot be written");
    return 0;
  }
  return 1;
}

static gw_expr_ctx ctx_of(const gw_run *run) {
  gw_expr_ctx ctx = {.msgs = run->msgs, .codes = run->codes};
  return ctx;
}

/* ---- encoding from mappings ------------------------------------------ */

static void encode_mapping(gw_run *run, const gw_mapping *m, gw_enc *enc);

static void encode_whole(gw_enc *enc, const gw_field *target,
                         const gw_msg *msg) {
  /* The message's own bytes, copied once (a NULL message encodes empty). */
  gw_value v = {.type = GW_TYPE_MESSAGE, .v.msg = msg};
  gw_dynmsg_enc_value(enc, target, &v);
}

static void encode_path(gw_run *run, const gw_map_entry *e, gw_enc *enc) {
  gw_expr_ctx ctx = ctx_of(run);
  const gw_msg *parent =
      gw_expr_path_parent(&e->path, &ctx, &run->flow->env, run->arena);
  if (e->path.n == 0) { /* a whole step response or the request */
    encode_whole(enc, e->target, parent);
    return;
  }
  const gw_field *sf = e->path.fields[e->path.n - 1];
  if (sf->repeated) {
    gw_dynmsg_enc_repeated(enc, e->target, parent, sf);
    return;
  }
  if (gw_dynmsg_count(parent, sf) == 0 && sf->has_presence)
    return; /* absent stays absent */
  gw_value v;
  gw_dynmsg_get(parent, sf, 0, &v);
  if (sf->type == GW_TYPE_MESSAGE) {
    encode_whole(enc, e->target, v.v.msg);
    return;
  }
  gw_dynmsg_enc_value(enc, e->target, &v);
}

static void encode_mapping(gw_run *run, const gw_mapping *m, gw_enc *enc) {
  for (size_t i = 0; i < m->n; i++) {
    const gw_map_entry *e = &m->entries[i];
    switch (e->kind) {
    case GW_SRC_LITERAL:
      gw_dynmsg_enc_value(enc, e->target, &e->literal);
      break;
    case GW_SRC_NESTED: {
      gw_enc *sub = gw_dynmsg_enc_new(run->arena);
      encode_mapping(run, e->nested, sub);
      gw_dynmsg_enc_message(enc, e->target, sub);
      break;
    }
    case GW_SRC_PATH:
      encode_path(run, e, enc);
      break;
    }
  }
}

/* ---- fail messages --------------------------------------------------- */

static void append(char *buf, size_t cap, size_t *len, const char *s,
                   size_t n) {
  if (*len + n >= cap)
    n = cap - 1 - *len;
  memcpy(buf + *len, s, n);
  *len += n;
  buf[*len] = 0;
}

static void render_value(const gw_value *v, const gw_field *f, char *out,
                         size_t cap) {
  switch (v->type) {
  case GW_TYPE_STRING:
  case GW_TYPE_BYTES:
    snprintf(out, cap, "%.*s", (int)(v->v.s.len > 200 ? 200 : v->v.s.len),
             (const char *)v->v.s.ptr);
    break;
  case GW_TYPE_BOOL:
    snprintf(out, cap, "%s", v->v.b ? "true" : "false");
    break;
  case GW_TYPE_DOUBLE:
  case GW_TYPE_FLOAT:
    snprintf(out, cap, "%g", v->v.d);
    break;
  case GW_TYPE_ENUM: {
    const char *name = gw_registry_enum_name(f->enum_type, (int32_t)v->v.i);
    if (name)
      snprintf(out, cap, "%s", name);
    else
      snprintf(out, cap, "%" PRId64, v->v.i);
    break;
  }
  case GW_TYPE_UINT32:
  case GW_TYPE_UINT64:
  case GW_TYPE_FIXED32:
  case GW_TYPE_FIXED64:
    snprintf(out, cap, "%" PRIu64, v->v.u);
    break;
  case GW_TYPE_MESSAGE:
  case GW_TYPE_GROUP:
    snprintf(out, cap, "%s", f->message->full_name);
    break;
  default:
    snprintf(out, cap, "%" PRId64, v->v.i);
    break;
  }
}

static void render_template(gw_run *run, const gw_template *t, char *buf,
                            size_t cap) {
  size_t len = 0;
  buf[0] = 0;
  gw_expr_ctx ctx = ctx_of(run);
  for (size_t i = 0; i < t->n; i++) {
    const gw_template_part *p = &t->parts[i];
    if (p->text) {
      append(buf, cap, &len, p->text, strlen(p->text));
      continue;
    }
    if (p->path.n == 0) {
      append(buf, cap, &len, run->flow->env.names[p->path.root],
             strlen(run->flow->env.names[p->path.root]));
      continue;
    }
    const gw_msg *parent =
        gw_expr_path_parent(&p->path, &ctx, &run->flow->env, run->arena);
    const gw_field *f = p->path.fields[p->path.n - 1];
    char vbuf[256];
    if (f->repeated) {
      snprintf(vbuf, sizeof(vbuf), "[%zu items]", gw_dynmsg_count(parent, f));
    } else {
      gw_value v;
      gw_dynmsg_get(parent, f, 0, &v);
      render_value(&v, f, vbuf, sizeof(vbuf));
    }
    append(buf, cap, &len, vbuf, strlen(vbuf));
  }
}

/* ---- steps ----------------------------------------------------------- */

static void start_step(gw_run *run, const gw_node *node);
static void compute_comp_request(gw_run *run, const gw_node *node);
static void log_step(gw_run *run, const gw_node *node, gw_step_state st,
                     gw_sagalog_done_fn fn, void *ud);

static void step_message(bt_client_call *c, const ProtobufCMessage *m,
                         const uint8_t *bytes, size_t len, void *ud) {
  step_call *sc = ud;
  /* The bytes live only during this callback; the decoded view points
   * into this copy for the rest of the run. */
  sc->resp = bt_arena_memdup(sc->run->arena, bytes, len);
  sc->resp_len = len;
  sc->got_resp = 1;
}

static void backoff_done(void *ud) {
  step_call *sc = ud;
  gw_run *run = sc->run;
  sc->backing_off = 0;
  if (!resume(run, 0))
    return;
  start_step(run, sc->node);
}

/* Retries a failed attempt when the policy allows it and the deadline
 * leaves room for the backoff; returns 1 when a retry is scheduled. */
static int schedule_retry(gw_run *run, step_call *sc, int code) {
  const gw_retry *r = &sc->node->retry;
  if (sc->attempt >= r->attempts || !(r->on_codes & (1u << code)))
    return 0;
  uint64_t ms = r->backoff_ms;
  for (uint32_t i = 1; i < sc->attempt && ms < r->max_backoff_ms; i++)
    ms *= 2;
  if (ms > r->max_backoff_ms)
    ms = r->max_backoff_ms;
  /* Full jitter on the upper half: spread retries of many clients. */
  if (ms > 1)
    ms = ms / 2 + (uint64_t)rand() % (ms / 2 + 1);
  if (bt_now_ms() + (int64_t)ms >= run->deadline)
    return 0;
  if (!sc->backoff)
    sc->backoff = bt_timer_new(run->w->loop, backoff_done, sc);
  sc->backing_off = 1;
  run->inflight++;
  bt_timer_start(sc->backoff, ms);
  return 1;
}

static void committed_logged(void *ud, int err) {
  step_call *sc = ud;
  gw_run *run = sc->run;
  if (!resume(run, err))
    return;
  if (run->inflight == 0)
    advance(run);
}

/* Codes after which the backend surely did not apply the call; after any
 * other (a timeout, a reset, UNAVAILABLE...) it may have. */
static int surely_not_applied(int code) {
  switch (code) {
  case BT_GRPC_INVALID_ARGUMENT:
  case BT_GRPC_NOT_FOUND:
  case BT_GRPC_ALREADY_EXISTS:
  case BT_GRPC_PERMISSION_DENIED:
  case BT_GRPC_FAILED_PRECONDITION:
  case BT_GRPC_OUT_OF_RANGE:
  case BT_GRPC_UNIMPLEMENTED:
  case BT_GRPC_UNAUTHENTICATED:
    return 1;
  default:
    return 0;
  }
}

/* Nesting and memory limits for decoding a message of len bytes: its
 * decoded form may take decoded_factor x len + decoded_floor bytes. */
static gw_decode_limits decode_limits(const gw_config *cfg, size_t len) {
  gw_decode_limits lim = {.max_depth = cfg->max_message_depth};
  size_t factor = cfg->decoded_factor ? cfg->decoded_factor : 16;
  lim.max_bytes = (len > SIZE_MAX / 2 / factor ? SIZE_MAX / 2 : len * factor) +
                  cfg->decoded_floor;
  return lim;
}

static void step_done(bt_client_call *c, const bt_status *st, void *ud) {
  step_call *sc = ud;
  gw_run *run = sc->run;
  sc->call = NULL;
  if (!resume(run, 0))
    return;
  const gw_node *node = sc->node;
  int code = st->code;
  char msg[512];
  if (code == BT_GRPC_OK) {
    char err[256];
    gw_msg *resp = NULL;
    gw_decode_limits lim = decode_limits(run->w->cfg, sc->resp_len);
    if (!sc->got_resp) {
      code = BT_GRPC_INTERNAL;
      snprintf(msg, sizeof(msg), "step '%s': the backend sent no response",
               node->name);
    } else if (gw_dynmsg_decode(run->arena, node->method->output, sc->resp,
                                sc->resp_len, &lim, &resp, err,
                                sizeof(err)) != 0) {
      code = BT_GRPC_INTERNAL;
      snprintf(msg, sizeof(msg), "step '%s': invalid response: %s", node->name,
               err);
    } else {
      run->msgs[node->slot] = resp;
      run->codes[node->slot] = BT_GRPC_OK;
      if (run->saga && node->comp) {
        /* Now with the step's response: what its undo must send. */
        compute_comp_request(run, node);
        log_step(run, node, GW_STEP_COMMITTED, committed_logged, sc);
        return;
      }
    }
  } else {
    snprintf(msg, sizeof(msg), "step '%s' failed: %s", node->name, st->message);
  }
  if (code != BT_GRPC_OK) {
    run->codes[node->slot] = code;
    if (!surely_not_applied(code))
      sc->maybe_applied = 1;
    if (schedule_retry(run, sc, code))
      return;
    if (!surely_not_applied(code))
      sc->maybe_applied = 1;
    /* FAILED (nothing to undo) only when no attempt may have applied it:
     * ALREADY_EXISTS after a timed-out first try is the first try. */
    if (run->saga && node->comp && surely_not_applied(code) &&
        !sc->maybe_applied)
      log_step(run, node, GW_STEP_FAILED, NULL, NULL);
    if (!(node->continue_on & (1u << code))) {
      finish(run, code, msg);
      return;
    }
  }
  if (run->inflight == 0)
    advance(run);
}

static const bt_client_callbacks step_cbs = {
    .on_message = step_message,
    .on_done = step_done,
};

/* The compensation's request as it would be sent now (the step's own
 * response reads as empty until it is in). */
static void compute_comp_request(gw_run *run, const gw_node *node) {
  gw_enc *enc = gw_dynmsg_enc_new(run->arena);
  encode_mapping(run, node->comp->request, enc);
  const uint8_t *bytes = gw_dynmsg_enc_data(enc, &run->comp_len[node->slot]);
  run->comp_req[node->slot] = (uint8_t *)bytes;
}

static void log_step(gw_run *run, const gw_node *node, gw_step_state st,
                     gw_sagalog_done_fn fn, void *ud) {
  run->step_state[node->slot] = st;
  gw_saga_record rec = {.kind = GW_REC_STEP,
                        .saga_id = run->saga_id,
                        .step = node->name,
                        .step_index = (int)node->slot,
                        .step_state = st,
                        .comp_request = run->comp_req[node->slot],
                        .comp_request_len = run->comp_len[node->slot]};
  if (fn)
    run->inflight++;
  gw_saga_log(run->w, &rec, fn, ud);
}

static void send_step(gw_run *run, const gw_node *node);

static void started_logged(void *ud, int err) {
  step_call *sc = ud;
  gw_run *run = sc->run;
  if (!resume(run, err))
    return;
  send_step(run, sc->node);
}

static void start_step(gw_run *run, const gw_node *node) {
  step_call *sc = &run->steps[node->slot];
  sc->run = run;
  sc->node = node;
  if (run->saga && node->comp && sc->attempt == 0) {
    /* Logged before the call goes out: if we die now, the step counts as
     * possibly committed and is compensated. */
    sc->attempt++;
    compute_comp_request(run, node);
    log_step(run, node, GW_STEP_STARTED, started_logged, sc);
    return;
  }
  sc->attempt++;
  send_step(run, node);
}

static void send_step(gw_run *run, const gw_node *node) {
  step_call *sc = &run->steps[node->slot];
  sc->got_resp = 0;
  int64_t left = run->deadline - bt_now_ms();
  if (left <= 0) {
    finish(run, BT_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded");
    return;
  }
  /* No deadline at all: the backend gets none either. */
  int64_t timeout = run->deadline == INT64_MAX ? 0 : left;
  if (node->timeout_ms && (timeout == 0 || node->timeout_ms < timeout))
    timeout = node->timeout_ms;
  bt_channel *ch =
      run->w->stopping ? NULL : gw_upstream_pick(run->w->up, node->backend);
  if (!ch) {
    char msg[256];
    snprintf(msg, sizeof(msg), "step '%s': backend has no usable endpoint",
             node->name);
    finish(run, BT_GRPC_UNAVAILABLE, msg);
    return;
  }
  gw_enc *enc = gw_dynmsg_enc_new(run->arena);
  encode_mapping(run, node->request, enc);
  size_t len;
  const uint8_t *bytes = gw_dynmsg_enc_data(enc, &len);
  /* A saga's calls carry its id and the step for backends to deduplicate. */
  bt_metadata *md =
      run->saga ? gw_saga_metadata(run->md, run->saga_id, node->name, 0) : NULL;
  /* Steps are unary: a second response message is the backend's error. */
  bt_call_opts opts = {.timeout_ms = timeout,
                       .metadata = md ? md : run->md,
                       .single_response = 1};
  run->inflight++;
  sc->call =
      bt_channel_start_call(ch, node->method->path, NULL, &opts, &step_cbs, sc);
  bt_metadata_free(md);
  bt_client_call_send_bytes(sc->call, bytes, len);
  bt_client_call_close_send(sc->call);
}

/* ---- the state machine ------------------------------------------------ */

static void push(gw_run *run, const gw_block *b) {
  if (run->depth == run->stack_cap) {
    size_t cap = run->stack_cap ? run->stack_cap * 2 : 8;
    frame *s = bt_arena_alloc(run->arena, cap * sizeof(*s));
    if (run->depth)
      memcpy(s, run->stack, run->depth * sizeof(*s));
    run->stack = s;
    run->stack_cap = cap;
  }
  run->stack[run->depth++] = (frame){b, 0};
}

static int guard_passes(gw_run *run, const gw_node *n) {
  if (!n->when)
    return 1;
  gw_expr_ctx ctx = ctx_of(run);
  return gw_expr_eval(n->when, &ctx);
}

static void completed_logged(void *ud, int err) {
  gw_run *run = ud;
  if (!resume(run, err))
    return;
  bt_call_send_bytes(run->call, run->resp_bytes, run->resp_len);
  finish(run, BT_GRPC_OK, NULL);
}

static void respond(gw_run *run) {
  gw_enc *enc = gw_dynmsg_enc_new(run->arena);
  encode_mapping(run, run->flow->response, enc);
  size_t len;
  const uint8_t *bytes = gw_dynmsg_enc_data(enc, &len);
  if (run->saga) {
    /* Every step committed: the saga's end is durable before the client
     * hears of it, and nothing will be compensated from here on. */
    run->completed = 1;
    run->resp_bytes = bytes;
    run->resp_len = len;
    gw_saga_record rec = {.kind = GW_REC_SAGA_STATE,
                          .saga_id = run->saga_id,
                          .saga_state = GW_SAGA_COMPLETED};
    run->inflight++;
    gw_saga_log(run->w, &rec, completed_logged, run);
    return;
  }
  bt_call_send_bytes(run->call, bytes, len);
  finish(run, BT_GRPC_OK, NULL);
}

/* Runs nodes until one has to wait for backend calls, or the flow ends. */
static void advance(gw_run *run) {
  run->advancing = 1;
  while (!run->done && run->inflight == 0) {
    if (run->depth == 0) {
      respond(run);
      break;
    }
    frame *f = &run->stack[run->depth - 1];
    if (f->next >= f->block->n) {
      run->depth--;
      continue;
    }
    const gw_node *n = f->block->nodes[f->next++];
    if (!guard_passes(run, n))
      continue;
    gw_expr_ctx ctx;
    char msg[1024];
    switch (n->kind) {
    case GW_NODE_CALL:
      start_step(run, n);
      break;
    case GW_NODE_PARALLEL:
      for (size_t i = 0; i < n->n_children && !run->done; i++)
        if (guard_passes(run, n->children[i]))
          start_step(run, n->children[i]);
      break;
    case GW_NODE_IF:
      ctx = ctx_of(run);
      if (gw_expr_eval(n->cond, &ctx))
        push(run, &n->then_block);
      else if (n->else_block.n)
        push(run, &n->else_block);
      break;
    case GW_NODE_FAIL:
      render_template(run, &n->message, msg, sizeof(msg));
      finish(run, n->code, msg);
      break;
    }
  }
  run->advancing = 0;
  maybe_free(run);
}

static void saga_started(void *ud, int err) {
  gw_run *run = ud;
  if (!resume(run, err))
    return;
  advance(run);
}

static void start_saga(gw_run *run, const uint8_t *request, size_t len) {
  size_t n = run->flow->env.n;
  run->saga = 1;
  run->step_state = bt_arena_alloc(run->arena, n * sizeof(int));
  for (size_t i = 0; i < n; i++)
    run->step_state[i] = -1;
  run->comp_req = bt_arena_calloc(run->arena, n * sizeof(*run->comp_req));
  run->comp_len = bt_arena_calloc(run->arena, n * sizeof(*run->comp_len));
  /* 128 bits from gw_ids_random_hex: a per-thread xoshiro256** seeded from
   * getrandom, so unique ids, not secrets (its outputs predict the next
   * ones; a saga id only has to tell sagas apart). Kernel seeds keep
   * replicas sharing a log from drawing the same ids (rand() seeded by time
   * and pid would, in containers); an id still live here is drawn again. */
  do {
    gw_ids_random_hex(run->saga_id, 32);
  } while (!gw_saga_live_add(run->saga_id));
  gw_saga_record rec = {.kind = GW_REC_SAGA_START,
                        .saga_id = run->saga_id,
                        .flow = run->flow->method->name,
                        .request = request,
                        .request_len = len};
  run->inflight++;
  gw_saga_log(run->w, &rec, saga_started, run);
}

static void deadline_passed(void *ud) {
  gw_run *run = ud;
  finish(run, BT_GRPC_DEADLINE_EXCEEDED, "Deadline Exceeded");
}

static void client_cancelled(bt_call *call, void *ud) {
  gw_run *run = ud;
  /* The runtime already answered (or the client is gone): cancel the
   * backends; finishing the call sends nothing more. */
  finish(run, BT_GRPC_CANCELLED, NULL);
}

void gw_engine_invoke(bt_call *call, const ProtobufCMessage *req,
                      const void *handlers, void *ud) {
  const gw_flow *flow = handlers;
  gw_worker *w = gw_worker_current();
  bt_arena *arena = bt_arena_new(0); /* the default size is cached */
  gw_run *run = bt_arena_calloc(arena, sizeof(*run));
  size_t n = flow->env.n;
  run->arena = arena;
  run->flow = flow;
  run->w = w;
  run->call = call;
  run->msgs = bt_arena_calloc(arena, n * sizeof(*run->msgs));
  run->codes = bt_arena_alloc(arena, n * sizeof(*run->codes));
  for (size_t i = 0; i < n; i++)
    run->codes[i] = -1;
  run->steps = bt_arena_calloc(arena, n * sizeof(*run->steps));

  size_t len;
  const uint8_t *bytes = bt_call_request_bytes(call, &len);
  gw_decode_limits lim = decode_limits(w->cfg, len);
  char err[256];
  gw_msg *request = NULL;
  int rv = gw_dynmsg_decode(arena, flow->method->input, bytes, len, &lim,
                            &request, err, sizeof(err));
  if (rv != 0) {
    char msg[320];
    if (rv == -2)
      snprintf(msg, sizeof(msg),
               "%s of %zu bytes would take more than %zu bytes decoded "
               "(limits.decoded_factor, decoded_floor)",
               flow->method->input->full_name, len, lim.max_bytes);
    else
      snprintf(msg, sizeof(msg), "invalid %s: %s",
               flow->method->input->full_name, err);
    bt_call_finish(
        call, rv == -2 ? BT_GRPC_RESOURCE_EXHAUSTED : BT_GRPC_INVALID_ARGUMENT,
        msg);
    bt_arena_free(arena);
    return;
  }
  run->msgs[0] = request;
  run->codes[0] = BT_GRPC_OK;
  run->deadline = bt_call_deadline(call);
  if (flow->timeout_ms) {
    int64_t d = bt_now_ms() + (int64_t)flow->timeout_ms;
    if (d < run->deadline)
      run->deadline = d;
  }
  if (run->deadline != INT64_MAX) {
    int64_t left = run->deadline - bt_now_ms();
    run->deadline_timer = bt_timer_new(w->loop, deadline_passed, run);
    bt_timer_start(run->deadline_timer, left > 0 ? (uint64_t)left : 0);
  }
  run->md = gw_forward_metadata(w->cfg, call, run->arena);
  bt_call_on_cancel(call, client_cancelled, run);
  push(run, &flow->body);
  if (flow->saga && w->sagas) {
    start_saga(run, bytes, len);
    return;
  }
  advance(run);
}
