/* saga.c: compensations. When a saga fails — live, or found unfinished in
 * the log after a crash — its committed (and possibly committed) steps are
 * undone in reverse order, a parallel group's steps together. Each
 * compensation is retried with capped exponential backoff up to its limit;
 * one that never succeeds marks the saga COMPENSATION_FAILED: kept, logged
 * at error level and listed by `baton-gateway sagas`, never dropped.
 * Compensations are not bound by the client's deadline. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <baton/status.h>

#include "saga.h"

#include "proxy/proxy.h"

typedef struct comp_task comp_task;
typedef struct compensation compensation;

struct comp_task {
  compensation *cp;
  const gw_node *step; /* the forward step; step->comp is the call */
  uint8_t *req;
  size_t len;
  uint32_t attempts;
  bt_client_call *call;
  bt_timer *timer;
  int done;
};

struct compensation {
  bt_arena *arena;
  gw_worker *w;
  const gw_flow *flow;
  char *saga_id;
  comp_task *tasks; /* by slot, descending */
  size_t n;
  size_t group_start, group_end; /* the tasks running now */
  size_t pending;                /* tasks of this group not done, log waits */
  int failed;
  int ending;
};

static void run_group(compensation *cp);

typedef struct kept_sagas kept_sagas; /* read from the log, see below */

struct gw_sagas {
  const gw_config *cfg;
  const gw_flows *flows;
  gw_sagalog *log;
  kept_sagas *recovered; /* claimed at open, for worker 0 */
  bt_timer *takeover;    /* worker 0 with PostgreSQL */
};

/* ---- sagas this process is driving ----------------------------------
 * A lease takeover must not pick up a saga that is still running here: the
 * set of live saga ids is checked before recovering one. Shared by every
 * worker; touched at a saga's start and end only. */
#define LIVE_BUCKETS 1024

typedef struct live_id {
  struct live_id *next;
  char id[40];
} live_id;

static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static live_id *live[LIVE_BUCKETS];

static unsigned live_bucket(const char *id) {
  unsigned h = 2166136261u;
  for (; *id; id++)
    h = (h ^ (unsigned char)*id) * 16777619u;
  return h % LIVE_BUCKETS;
}

/* Adds id; returns 0 when it was already there. */
int gw_saga_live_add(const char *id) {
  unsigned b = live_bucket(id);
  pthread_mutex_lock(&live_mu);
  for (live_id *l = live[b]; l; l = l->next) {
    if (strcmp(l->id, id) == 0) {
      pthread_mutex_unlock(&live_mu);
      return 0;
    }
  }
  live_id *l = bt_calloc(1, sizeof(*l));
  snprintf(l->id, sizeof(l->id), "%s", id);
  l->next = live[b];
  live[b] = l;
  pthread_mutex_unlock(&live_mu);
  return 1;
}

void gw_saga_live_remove(const char *id) {
  unsigned b = live_bucket(id);
  pthread_mutex_lock(&live_mu);
  for (live_id **p = &live[b]; *p; p = &(*p)->next) {
    if (strcmp((*p)->id, id) == 0) {
      live_id *l = *p;
      *p = l->next;
      bt_free(l);
      break;
    }
  }
  pthread_mutex_unlock(&live_mu);
}

void gw_saga_log(gw_worker *w, const gw_saga_record *rec, gw_sagalog_done_fn fn,
                 void *ud) {
  if (w->stopping) {
    /* Shutting down: nothing more is recorded; what the log holds is
     * finished by the next start. */
    if (fn)
      fn(ud, BT_ERR_CLOSED);
    return;
  }
  gw_sagalog_append(w->sagas->log, rec, w->loop, fn, ud);
}

bt_metadata *gw_saga_metadata(const bt_metadata *base, const char *saga_id,
                              const char *step, int compensation) {
  bt_metadata *md = bt_metadata_new(NULL);
  for (size_t i = 0; base && i < bt_metadata_count(base); i++) {
    const char *key;
    const uint8_t *value;
    size_t len;
    bt_metadata_at(base, i, &key, &value, &len);
    bt_metadata_add(md, key, strlen(key), value, len);
  }
  bt_metadata_add_str(md, "baton-saga-id", saga_id);
  char buf[160];
  snprintf(buf, sizeof(buf), "%s%s", compensation ? "compensate:" : "", step);
  bt_metadata_add_str(md, "baton-step", buf);
  return md;
}

static void cp_free(compensation *cp) {
  for (size_t i = 0; i < cp->n; i++)
    bt_timer_free(cp->tasks[i].timer);
  bt_arena_free(cp->arena);
}

static void ended(void *ud, int err) {
  compensation *cp = ud;
  if (err)
    fprintf(stderr, "baton-gateway: saga %s: cannot log its end\n",
            cp->saga_id);
  gw_saga_live_remove(cp->saga_id);
  cp_free(cp);
}

static void finish_saga(compensation *cp) {
  gw_saga_state st =
      cp->failed ? GW_SAGA_COMPENSATION_FAILED : GW_SAGA_COMPENSATED;
  if (cp->failed)
    fprintf(stderr,
            "baton-gateway: ERROR saga %s (%s) is COMPENSATION_FAILED: a "
            "compensation gave up; see baton-gateway sagas --state "
            "COMPENSATION_FAILED\n",
            cp->saga_id, cp->flow->method->name);
  gw_saga_record rec = {
      .kind = GW_REC_SAGA_STATE, .saga_id = cp->saga_id, .saga_state = st};
  gw_saga_log(cp->w, &rec, ended, cp);
}

static void task_logged(void *ud, int err) {
  comp_task *t = ud;
  compensation *cp = t->cp;
  if (--cp->pending == 0)
    run_group(cp);
}

static void task_done(comp_task *t, int ok) {
  compensation *cp = t->cp;
  t->done = 1;
  if (!ok)
    cp->failed = 1;
  gw_saga_record rec = {.kind = GW_REC_STEP,
                        .saga_id = cp->saga_id,
                        .step = t->step->name,
                        .step_index = (int)t->step->slot,
                        .step_state = ok ? GW_STEP_COMPENSATED
                                         : GW_STEP_COMPENSATION_FAILED,
                        .comp_request = t->req,
                        .comp_request_len = t->len,
                        .attempts = t->attempts};
  gw_saga_log(cp->w, &rec, task_logged, t);
}

static void send_task(comp_task *t);

static void retry_fired(void *ud) {
  send_task(ud);
}

static void comp_done(bt_client_call *c, const bt_status *st, void *ud) {
  comp_task *t = ud;
  const gw_node *comp = t->step->comp;
  t->call = NULL;
  if (st->code == BT_GRPC_OK) {
    task_done(t, 1);
    return;
  }
  fprintf(stderr,
          "baton-gateway: saga %s: compensation of step '%s' failed "
          "(attempt %u of %u): %s: %s\n",
          t->cp->saga_id, t->step->name, t->attempts, comp->retry.attempts,
          bt_grpc_code_name(st->code), st->message);
  if (t->attempts >= comp->retry.attempts ||
      !(comp->retry.on_codes & (1u << st->code))) {
    task_done(t, 0);
    return;
  }
  uint64_t ms = comp->retry.backoff_ms;
  for (uint32_t i = 1; i < t->attempts && ms < comp->retry.max_backoff_ms; i++)
    ms *= 2;
  if (ms > comp->retry.max_backoff_ms)
    ms = comp->retry.max_backoff_ms;
  if (ms > 1)
    ms = ms / 2 + (uint64_t)rand() % (ms / 2 + 1);
  if (!t->timer)
    t->timer = bt_timer_new(t->cp->w->loop, retry_fired, t);
  bt_timer_start(t->timer, ms);
}

static const bt_client_callbacks comp_cbs = {.on_done = comp_done};

static void send_task(comp_task *t) {
  compensation *cp = t->cp;
  const gw_node *comp = t->step->comp;
  if (cp->w->stopping) {
    /* Left for the next start, which finds the saga unfinished. */
    task_done(t, 1);
    return;
  }
  t->attempts++;
  bt_channel *ch = gw_upstream_pick(cp->w->up, comp->backend);
  if (!ch) {
    bt_status st = {.code = BT_GRPC_UNAVAILABLE,
                    .message = "backend has no usable endpoint"};
    comp_done(NULL, &st, t);
    return;
  }
  bt_metadata *md = gw_saga_metadata(NULL, cp->saga_id, t->step->name, 1);
  bt_call_opts opts = {
      .timeout_ms = comp->timeout_ms, .metadata = md, .single_response = 1};
  t->call =
      bt_channel_start_call(ch, comp->method->path, NULL, &opts, &comp_cbs, t);
  bt_metadata_free(md);
  bt_client_call_send_bytes(t->call, t->req, t->len);
  bt_client_call_close_send(t->call);
}

/* Starts the next group of tasks (same group id), or ends the saga. */
static void run_group(compensation *cp) {
  cp->group_start = cp->group_end;
  if (cp->group_start >= cp->n) {
    finish_saga(cp);
    return;
  }
  int group = cp->tasks[cp->group_start].step->group;
  size_t end = cp->group_start;
  while (end < cp->n && cp->tasks[end].step->group == group)
    end++;
  cp->group_end = end;
  cp->pending = end - cp->group_start;
  for (size_t i = cp->group_start; i < end; i++)
    send_task(&cp->tasks[i]);
}

static void compensating_logged(void *ud, int err) {
  compensation *cp = ud;
  if (err)
    fprintf(stderr, "baton-gateway: saga %s: cannot log COMPENSATING\n",
            cp->saga_id);
  run_group(cp);
}

static int by_slot_desc(const void *a, const void *b) {
  const comp_task *x = a, *y = b;
  return (int)y->step->slot - (int)x->step->slot;
}

void gw_saga_compensate(gw_worker *w, const gw_flow *flow, const char *saga_id,
                        const gw_comp_input *in, size_t n) {
  bt_arena *arena = bt_arena_new(4096);
  compensation *cp = bt_arena_calloc(arena, sizeof(*cp));
  cp->arena = arena;
  cp->w = w;
  cp->flow = flow;
  cp->saga_id = bt_arena_strndup(arena, saga_id, strlen(saga_id));
  cp->tasks = bt_arena_calloc(arena, (n ? n : 1) * sizeof(*cp->tasks));
  for (size_t i = 0; i < n; i++) {
    if (in[i].slot <= 0 || (size_t)in[i].slot >= flow->env.n)
      continue;
    const gw_node *step = flow->steps[in[i].slot];
    if (!step || !step->comp)
      continue;
    comp_task *t = &cp->tasks[cp->n++];
    t->cp = cp;
    t->step = step;
    t->req = bt_arena_memdup(arena, in[i].req, in[i].len);
    t->len = in[i].len;
  }
  qsort(cp->tasks, cp->n, sizeof(*cp->tasks), by_slot_desc);
  /* Members of a parallel group sit next to each other: their slots are
   * consecutive. */
  gw_saga_record rec = {.kind = GW_REC_SAGA_STATE,
                        .saga_id = cp->saga_id,
                        .saga_state = GW_SAGA_COMPENSATING};
  gw_saga_log(w, &rec, compensating_logged, cp);
}

/* ---- recovery -------------------------------------------------------- */

/* A saga read from the log, copied out of the log's buffers. */
typedef struct kept_step {
  char *name;
  int index;
  gw_step_state state;
  uint8_t *req;
  size_t len;
} kept_step;

typedef struct kept_saga {
  char *saga_id;
  char *flow;
  char *owner;
  gw_saga_state state;
  kept_step *steps;
  size_t n_steps;
} kept_saga;

struct kept_sagas {
  kept_saga *sagas;
  size_t n, cap;
};

static void keep_view(const gw_saga_view *s, void *ud) {
  kept_sagas *r = ud;
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 16;
    r->sagas = bt_realloc(r->sagas, r->cap * sizeof(*r->sagas));
  }
  kept_saga *k = &r->sagas[r->n++];
  k->saga_id = bt_strdup(s->saga_id);
  k->flow = bt_strdup(s->flow);
  k->owner = bt_strdup(s->owner ? s->owner : "");
  k->state = s->state;
  k->n_steps = s->n_steps;
  k->steps = bt_calloc(s->n_steps ? s->n_steps : 1, sizeof(*k->steps));
  for (size_t i = 0; i < s->n_steps; i++) {
    const gw_saga_step_view *v = &s->steps[i];
    kept_step *st = &k->steps[i];
    st->name = bt_strdup(v->name ? v->name : "");
    st->index = v->index;
    st->state = v->state;
    st->len = v->comp_request_len;
    st->req = bt_malloc(st->len ? st->len : 1);
    if (st->len)
      memcpy(st->req, v->comp_request, st->len);
  }
}

static void recovered_free(kept_sagas *r) {
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++) {
    kept_saga *k = &r->sagas[i];
    for (size_t j = 0; j < k->n_steps; j++) {
      bt_free(k->steps[j].name);
      bt_free(k->steps[j].req);
    }
    bt_free(k->steps);
    bt_free(k->saga_id);
    bt_free(k->flow);
    bt_free(k->owner);
  }
  bt_free(r->sagas);
  bt_free(r);
}

/* Hands one kept saga to the compensator (unless it runs here already). */
static void compensate_kept(gw_worker *w, const kept_saga *k) {
  if (!gw_saga_live_add(k->saga_id))
    return;
  const gw_flow *flow = gw_flow_find(w->sagas->flows, k->flow);
  if (!flow) {
    fprintf(stderr,
            "baton-gateway: ERROR saga %s: flow %s is no longer configured; "
            "left unfinished\n",
            k->saga_id, k->flow);
    gw_saga_live_remove(k->saga_id);
    return;
  }
  gw_comp_input *in = bt_calloc(k->n_steps ? k->n_steps : 1, sizeof(*in));
  size_t n = 0;
  for (size_t i = 0; i < k->n_steps; i++) {
    const kept_step *st = &k->steps[i];
    /* STARTED: in flight when the gateway died, possibly committed. */
    if (st->state != GW_STEP_STARTED && st->state != GW_STEP_COMMITTED &&
        st->state != GW_STEP_COMPENSATION_FAILED)
      continue;
    const gw_node *node = st->index > 0 && (size_t)st->index < flow->env.n
                              ? flow->steps[st->index]
                              : NULL;
    if (!node || strcmp(node->name, st->name) != 0) {
      /* The flow changed since: never send one step's undo request to
       * another step's compensation. */
      fprintf(stderr,
              "baton-gateway: ERROR saga %s: step '%s' is no longer step %d "
              "of %s; left unfinished for an operator\n",
              k->saga_id, st->name, st->index, k->flow);
      gw_saga_live_remove(k->saga_id);
      bt_free(in);
      return;
    }
    in[n].slot = st->index;
    in[n].state = st->state;
    in[n].req = st->req;
    in[n].len = st->len;
    n++;
  }
  fprintf(stderr,
          "baton-gateway: recovering saga %s (%s, was %s): compensating %zu "
          "step%s\n",
          k->saga_id, k->flow, gw_sagalog_state_name(k->state), n,
          n == 1 ? "" : "s");
  gw_saga_compensate(w, flow, k->saga_id, in, n);
  bt_free(in);
}

/* The periodic lease takeover (PostgreSQL). The claim also renews this
 * gateway's own rows, which may be running here right now: only sagas that
 * belonged to another owner before the claim are taken over. */
static void recover_foreign(gw_worker *w) {
  gw_sagalog *log = w->sagas->log;
  kept_sagas before = {0}, claimed = {0};
  int rv = gw_sagalog_list(log, GW_SAGA_RUNNING, keep_view, &before);
  if (rv >= 0)
    rv = gw_sagalog_list(log, GW_SAGA_COMPENSATING, keep_view, &before);
  if (rv >= 0)
    rv = gw_sagalog_claim_unfinished(log, keep_view, &claimed);
  if (rv < 0)
    fprintf(stderr, "baton-gateway: cannot read the saga log for takeover\n");
  const char *self = w->sagas->cfg->saga_owner;
  for (size_t i = 0; rv >= 0 && i < claimed.n; i++) {
    const kept_saga *k = &claimed.sagas[i];
    int foreign = 0;
    for (size_t j = 0; j < before.n; j++)
      if (strcmp(before.sagas[j].saga_id, k->saga_id) == 0)
        foreign = strcmp(before.sagas[j].owner, k->owner) != 0 &&
                  (!self || strcmp(before.sagas[j].owner, self) != 0);
    if (foreign)
      compensate_kept(w, k);
  }
  kept_sagas *b = bt_calloc(1, sizeof(*b)), *c = bt_calloc(1, sizeof(*c));
  *b = before;
  *c = claimed;
  recovered_free(b);
  recovered_free(c);
}

/* ---- the process's sagas --------------------------------------------- */

gw_sagalog_opts gw_saga_log_opts(const gw_config *cfg) {
  gw_sagalog_opts o = {.sqlite_path = cfg->saga_sqlite,
                       .postgres = cfg->saga_postgres,
                       .owner = cfg->saga_owner,
                       .lease_ms = cfg->saga_lease_ms,
                       .group_commit_us = cfg->saga_group_commit_us};
  return o;
}

gw_sagas *gw_saga_open(const gw_config *cfg, const gw_flows *flows, char *err,
                       size_t errlen) {
  gw_sagalog_opts so = gw_saga_log_opts(cfg);
  gw_sagalog *log = gw_sagalog_open(&so, err, errlen);
  if (!log)
    return NULL;
  gw_sagas *s = bt_calloc(1, sizeof(*s));
  s->cfg = cfg;
  s->flows = flows;
  s->log = log;
  s->recovered = bt_calloc(1, sizeof(*s->recovered));
  if (gw_sagalog_claim_unfinished(log, keep_view, s->recovered) < 0)
    fprintf(stderr, "baton-gateway: cannot read the saga log for "
                    "recovery\n");
  return s;
}

void gw_saga_close(gw_sagas *s) {
  if (!s)
    return;
  gw_sagalog_close(s->log);
  recovered_free(s->recovered);
  bt_free(s);
}

static void takeover_tick(void *ud) {
  gw_worker *w = ud;
  recover_foreign(w);
  bt_timer_start(w->sagas->takeover, w->sagas->cfg->saga_lease_ms);
}

void gw_saga_worker_start(gw_worker *w) {
  gw_sagas *s = w->sagas;
  gw_sagalog_attach_loop(s->log, w->loop);
  if (w->index != 0)
    return;
  /* Sagas a crash left unfinished (claimed before serving). */
  kept_sagas *r = s->recovered;
  s->recovered = NULL;
  for (size_t i = 0; r && i < r->n; i++)
    compensate_kept(w, &r->sagas[i]);
  recovered_free(r);
  if (s->cfg->saga_postgres) {
    /* PostgreSQL: sagas of gateways whose lease ran out become ours. */
    s->takeover = bt_timer_new(w->loop, takeover_tick, w);
    bt_timer_start(s->takeover, s->cfg->saga_lease_ms);
  }
}

void gw_saga_worker_stop(gw_worker *w) {
  gw_sagas *s = w->sagas;
  if (w->index == 0) {
    bt_timer_free(s->takeover);
    s->takeover = NULL;
  }
  gw_sagalog_detach_loop(s->log, w->loop);
}
