/* sagalog.c: the saga log's common part: the append queue, the writer
 * thread that group-commits it, completions delivered to each caller's
 * loop, and the blocking reads, over one of two backends
 * (sagalog_sqlite.c, sagalog_pg.c; see sagalog_store.h).
 *
 * Group commit: appends only queue a copy of the record. One writer thread
 * per log waits for the first record, then up to group_commit_us for more,
 * takes everything queued, and writes it in one transaction (one fsync).
 * Since there is one writer and one FIFO queue, the records of a saga are
 * written in the order they were appended. After the commit each record
 * with a callback moves to its loop's completion list and that loop's
 * uv_async_t is poked; the async callback runs the callbacks on the loop's
 * thread. */
#include "sagalog.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include <baton/alloc.h>
#include <baton/error.h>

#include "sagalog_store.h"
#include "sagaview.h"

/* Stop waiting for more records once this many are queued. */
#define SAGALOG_BATCH_HINT 1024
/* Below both databases' limits on one value (SQLite 1e9 bytes, PostgreSQL
 * 1 GiB), and far above any gRPC message the gateway accepts. */
#define SAGALOG_MAX_BLOB ((size_t)256 << 20)

/* A loop that receives completions. Its done list and inflight count are
 * shared with the writer (mu); pending and refd belong to the loop thread. */
typedef struct sagalog_att {
  struct sagalog_att *next;
  bt_loop *loop;
  uv_async_t async;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* inflight reached 0 */
  sagalog_rec *done_head;
  sagalog_rec **done_tail;
  size_t inflight; /* appended with a callback, not yet on the done list */
  size_t pending;  /* appended with a callback, callback not yet run */
  int refd;        /* async handle keeps the loop alive */
  int detached;
} sagalog_att;

struct gw_sagalog {
  const sagalog_backend_ops *ops;
  sagalog_backend *be;
  char *owner;
  uint32_t lease_ms;
  uint32_t group_commit_us;

  pthread_mutex_t mu; /* queue, atts, stopping, commits */
  pthread_cond_t cv;  /* the writer waits here */
  sagalog_rec *head;
  sagalog_rec **tail;
  size_t queued;
  int64_t first_ns; /* when the oldest queued record arrived */
  int stopping;
  sagalog_att *atts;
  uint64_t commits;
  pthread_t writer;

  /* Writer thread only: sagas that lost a record nobody was told about
   * (appended without a callback, its transaction failed). Their later
   * records fail too, up to and including the next one with a callback,
   * so a saga's log never has a record whose predecessor is missing
   * without the engine knowing. */
  char **lost;
  size_t n_lost, cap_lost;

  pthread_mutex_t read_mu; /* the backend's read connection */
};

static const char *const saga_state_names[] = {"RUNNING", "COMPENSATING",
                                               "COMPLETED", "COMPENSATED",
                                               "COMPENSATION_FAILED"};

const char *gw_sagalog_state_name(gw_saga_state s) {
  if ((int)s < 0 ||
      (size_t)s >= sizeof(saga_state_names) / sizeof(saga_state_names[0]))
    return "UNKNOWN";
  return saga_state_names[s];
}

int gw_sagalog_state_parse(const char *name) {
  if (!name)
    return -1;
  for (size_t i = 0; i < sizeof(saga_state_names) / sizeof(saga_state_names[0]);
       i++)
    if (strcmp(name, saga_state_names[i]) == 0)
      return (int)i;
  return -1;
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* cv uses CLOCK_MONOTONIC, so deadlines are mono_ns() values. */
static void wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
                       int64_t deadline_ns) {
  struct timespec ts = {.tv_sec = deadline_ns / 1000000000,
                        .tv_nsec = deadline_ns % 1000000000};
  pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- records ------------------------------------------------------------ */

/* One allocation holds the record and copies of everything it points to. */
static sagalog_rec *rec_copy(const gw_saga_record *in) {
  const char *id = in->saga_id ? in->saga_id : "";
  const char *flow = in->flow ? in->flow : "";
  const char *step = in->step ? in->step : "";
  size_t id_len = strlen(id), flow_len = strlen(flow), step_len = strlen(step);
  size_t req_len = in->request ? in->request_len : 0;
  size_t comp_len = in->comp_request ? in->comp_request_len : 0;
  size_t size = sizeof(sagalog_rec) + id_len + 1 + flow_len + 1 + step_len + 1 +
                req_len + comp_len;
  sagalog_rec *r = bt_calloc(1, size);
  char *p = (char *)(r + 1);
  r->saga_id = memcpy(p, id, id_len + 1);
  p += id_len + 1;
  r->flow = memcpy(p, flow, flow_len + 1);
  p += flow_len + 1;
  r->step = memcpy(p, step, step_len + 1);
  p += step_len + 1;
  if (in->request) {
    r->request = (const uint8_t *)p;
    r->request_len = req_len;
    memcpy(p, in->request, req_len);
    p += req_len;
  }
  if (in->comp_request) {
    r->comp_request = (const uint8_t *)p;
    r->comp_request_len = comp_len;
    memcpy(p, in->comp_request, comp_len);
  }
  r->kind = in->kind;
  r->step_index = in->step_index;
  r->step_state = (int)in->step_state;
  r->attempts = in->attempts;
  r->saga_state = (int)in->saga_state;
  return r;
}

static int rec_valid(const gw_saga_record *rec) {
  if (!rec || !rec->saga_id || !rec->saga_id[0])
    return 0;
  switch (rec->kind) {
  case GW_REC_SAGA_START:
    return (rec->request || rec->request_len == 0) &&
           rec->request_len <= SAGALOG_MAX_BLOB;
  case GW_REC_STEP:
    return rec->step_state >= GW_STEP_STARTED &&
           rec->step_state <= GW_STEP_COMPENSATION_FAILED &&
           (rec->comp_request || rec->comp_request_len == 0) &&
           rec->comp_request_len <= SAGALOG_MAX_BLOB;
  case GW_REC_SAGA_STATE:
    return rec->saga_state >= GW_SAGA_RUNNING &&
           rec->saga_state <= GW_SAGA_COMPENSATION_FAILED;
  }
  return 0;
}

/* ---- completions ------------------------------------------------------- */

/* Loop thread: runs the callbacks of list, oldest first. */
static void run_completions(sagalog_att *att, sagalog_rec *list) {
  while (list) {
    sagalog_rec *r = list;
    list = r->next;
    gw_sagalog_done_fn fn = r->fn;
    void *ud = r->ud;
    int err = r->err;
    bt_free(r);
    att->pending--;
    fn(ud, err);
  }
  if (att->pending == 0 && att->refd && !att->detached) {
    uv_unref((uv_handle_t *)&att->async);
    att->refd = 0;
  }
}

static void on_async(uv_async_t *h) {
  sagalog_att *att = h->data;
  pthread_mutex_lock(&att->mu);
  sagalog_rec *list = att->done_head;
  att->done_head = NULL;
  att->done_tail = &att->done_head;
  pthread_mutex_unlock(&att->mu);
  run_completions(att, list);
}

/* Any thread: hands r (with its outcome in r->err) to its loop. The
 * uv_async_send happens under att->mu: once detach saw inflight reach 0
 * under that lock, nothing here touches att again. */
static void deliver(sagalog_rec *r, int counted) {
  sagalog_att *att = r->att;
  r->next = NULL;
  pthread_mutex_lock(&att->mu);
  *att->done_tail = r;
  att->done_tail = &r->next;
  if (counted && --att->inflight == 0)
    pthread_cond_broadcast(&att->cv);
  uv_async_send(&att->async);
  pthread_mutex_unlock(&att->mu);
}

static sagalog_att *find_att(gw_sagalog *log, bt_loop *loop) {
  for (sagalog_att *a = log->atts; a; a = a->next)
    if (a->loop == loop)
      return a;
  return NULL;
}

void gw_sagalog_attach_loop(gw_sagalog *log, bt_loop *loop) {
  if (!log || !loop)
    return;
  pthread_mutex_lock(&log->mu);
  if (find_att(log, loop)) {
    pthread_mutex_unlock(&log->mu);
    return;
  }
  sagalog_att *att = bt_calloc(1, sizeof(*att));
  att->loop = loop;
  att->done_tail = &att->done_head;
  pthread_mutex_init(&att->mu, NULL);
  pthread_cond_init(&att->cv, NULL);
  uv_async_init(bt_loop_uv(loop), &att->async, on_async);
  att->async.data = att;
  /* Referenced only while a completion is pending, so an idle log does not
   * keep bt_loop_run from returning. */
  uv_unref((uv_handle_t *)&att->async);
  att->next = log->atts;
  log->atts = att;
  pthread_mutex_unlock(&log->mu);
}

static void on_att_closed(uv_handle_t *h) {
  sagalog_att *att = h->data;
  pthread_mutex_destroy(&att->mu);
  pthread_cond_destroy(&att->cv);
  bt_free(att);
}

void gw_sagalog_detach_loop(gw_sagalog *log, bt_loop *loop) {
  if (!log || !loop)
    return;
  pthread_mutex_lock(&log->mu);
  sagalog_att **pp = &log->atts;
  while (*pp && (*pp)->loop != loop)
    pp = &(*pp)->next;
  sagalog_att *att = *pp;
  if (att)
    *pp = att->next;
  pthread_mutex_unlock(&log->mu);
  if (!att)
    return;
  /* Every record appended from this loop gets its answer: wait for the
   * writer to finish the ones in flight (one commit at most), then run all
   * outstanding callbacks here. */
  pthread_mutex_lock(&att->mu);
  while (att->inflight > 0)
    pthread_cond_wait(&att->cv, &att->mu);
  sagalog_rec *list = att->done_head;
  att->done_head = NULL;
  att->done_tail = &att->done_head;
  pthread_mutex_unlock(&att->mu);
  att->detached = 1;
  run_completions(att, list);
  uv_close((uv_handle_t *)&att->async, on_att_closed);
}

void gw_sagalog_append(gw_sagalog *log, const gw_saga_record *rec,
                       bt_loop *loop, gw_sagalog_done_fn fn, void *ud) {
  if (!log)
    return;
  int valid = rec_valid(rec);
  sagalog_rec *r;
  if (valid) {
    r = rec_copy(rec);
  } else {
    r = bt_calloc(1, sizeof(*r));
    r->err = BT_ERR_INVAL;
  }
  r->fn = fn;
  r->ud = ud;

  pthread_mutex_lock(&log->mu);
  sagalog_att *att = fn && loop ? find_att(log, loop) : NULL;
  if (fn && !att) {
    /* A broken contract, not bad input: say so loudly. The record is still
     * written; only the callback is lost. */
    fprintf(stderr,
            "baton-gateway: saga log: append with a callback on a loop that "
            "is not attached; the callback will not run\n");
    r->fn = NULL;
  }
  r->att = att;
  if (att) {
    /* loop's thread (the contract): pending and refd are its own. */
    if (att->pending++ == 0 && !att->refd) {
      uv_ref((uv_handle_t *)&att->async);
      att->refd = 1;
    }
  }
  int closing = log->stopping;
  if (!valid || closing) {
    pthread_mutex_unlock(&log->mu);
    if (closing)
      r->err = BT_ERR_CLOSED;
    if (r->fn)
      deliver(r, 0);
    else
      bt_free(r);
    return;
  }
  if (att) {
    pthread_mutex_lock(&att->mu);
    att->inflight++;
    pthread_mutex_unlock(&att->mu);
  }
  r->next = NULL;
  int was_empty = log->head == NULL;
  *log->tail = r;
  log->tail = &r->next;
  log->queued++;
  if (was_empty)
    log->first_ns = mono_ns();
  if (was_empty || log->queued == SAGALOG_BATCH_HINT)
    pthread_cond_signal(&log->cv);
  pthread_mutex_unlock(&log->mu);
}

/* ---- the writer --------------------------------------------------------- */

static size_t lost_find(const gw_sagalog *log, const char *saga_id) {
  for (size_t i = 0; i < log->n_lost; i++)
    if (strcmp(log->lost[i], saga_id) == 0)
      return i;
  return (size_t)-1;
}

static void lost_set(gw_sagalog *log, const char *saga_id, int lost) {
  size_t i = lost_find(log, saga_id);
  if (!lost && i != (size_t)-1) {
    bt_free(log->lost[i]);
    log->lost[i] = log->lost[--log->n_lost];
  } else if (lost && i == (size_t)-1) {
    if (log->n_lost == log->cap_lost) {
      log->cap_lost = log->cap_lost ? 2 * log->cap_lost : 8;
      log->lost = bt_realloc(log->lost, log->cap_lost * sizeof(*log->lost));
    }
    log->lost[log->n_lost++] = bt_strdup(saga_id);
  }
}

static void write_and_deliver(gw_sagalog *log, sagalog_rec *batch) {
  /* In append order: r->err set here means "not written". */
  size_t n = 0;
  for (sagalog_rec *r = batch; r; r = r->next)
    n++;
  sagalog_rec **all = bt_malloc(n * sizeof(*all));
  n = 0;
  for (sagalog_rec *r = batch; r; r = r->next)
    all[n++] = r;
  sagalog_rec *head = NULL, **tail = &head;
  for (size_t i = 0; i < n; i++) {
    sagalog_rec *r = all[i];
    if (log->n_lost && lost_find(log, r->saga_id) != (size_t)-1) {
      r->err = BT_ERR_IO;
      if (r->fn) /* told now */
        lost_set(log, r->saga_id, 0);
      continue;
    }
    *tail = r;
    tail = &r->next;
  }
  *tail = NULL;

  int rv = head ? log->ops->write_batch(log->be, head) : 0;
  if (rv < 0)
    rv = BT_ERR_IO;
  pthread_mutex_lock(&log->mu);
  if (rv == 0 && head)
    log->commits++;
  pthread_mutex_unlock(&log->mu);
  for (size_t i = 0; i < n; i++) {
    sagalog_rec *r = all[i];
    if (r->err == 0 && rv < 0) {
      r->err = rv;
      lost_set(log, r->saga_id, !r->fn);
    }
    if (r->fn)
      deliver(r, 1);
    else
      bt_free(r);
  }
  bt_free(all);
}

static void *writer_main(void *arg) {
  gw_sagalog *log = arg;
  int64_t gc_ns = (int64_t)log->group_commit_us * 1000;
  int64_t renew_ns =
      log->ops->renew_writer ? (int64_t)log->lease_ms * 1000000 / 3 : 0;
  int64_t next_renew = renew_ns ? mono_ns() + renew_ns : 0;

  pthread_mutex_lock(&log->mu);
  for (;;) {
    int64_t now = mono_ns();
    if (renew_ns && now >= next_renew) {
      pthread_mutex_unlock(&log->mu);
      log->ops->renew_writer(log->be);
      pthread_mutex_lock(&log->mu);
      next_renew = mono_ns() + renew_ns;
      continue;
    }
    if (!log->head) {
      if (log->stopping)
        break;
      if (renew_ns)
        wait_until(&log->cv, &log->mu, next_renew);
      else
        pthread_cond_wait(&log->cv, &log->mu);
      continue;
    }
    int64_t flush_at = log->first_ns + gc_ns;
    if (!log->stopping && log->queued < SAGALOG_BATCH_HINT && now < flush_at) {
      /* Group commit: give concurrent appenders a moment to join. */
      wait_until(&log->cv, &log->mu,
                 renew_ns && next_renew < flush_at ? next_renew : flush_at);
      continue;
    }
    sagalog_rec *batch = log->head;
    log->head = NULL;
    log->tail = &log->head;
    log->queued = 0;
    pthread_mutex_unlock(&log->mu);
    write_and_deliver(log, batch);
    pthread_mutex_lock(&log->mu);
  }
  pthread_mutex_unlock(&log->mu);
  return NULL;
}

/* ---- open / close ------------------------------------------------------- */

gw_sagalog *gw_sagalog_open(const gw_sagalog_opts *opts, char *err,
                            size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof(dummy);
  }
  err[0] = 0;
  if (!opts) {
    snprintf(err, errlen, "saga log: no options");
    return NULL;
  }
  int has_sqlite = opts->sqlite_path && opts->sqlite_path[0];
  int has_pg = opts->postgres && opts->postgres[0];
  if (has_sqlite == has_pg) {
    snprintf(err, errlen,
             "saga log: give exactly one of a SQLite path and a PostgreSQL "
             "connection string");
    return NULL;
  }

  char owner[300];
  if (opts->owner && opts->owner[0]) {
    snprintf(owner, sizeof(owner), "%s", opts->owner);
  } else {
    char host[256];
    if (gethostname(host, sizeof(host)) != 0)
      snprintf(host, sizeof(host), "localhost");
    host[sizeof(host) - 1] = 0;
    snprintf(owner, sizeof(owner), "%s:%ld", host, (long)getpid());
  }
  uint32_t lease_ms = opts->lease_ms ? opts->lease_ms : 10000;
  if (lease_ms < 3)
    lease_ms = 3;

  sagalog_config cfg = {.target =
                            has_sqlite ? opts->sqlite_path : opts->postgres,
                        .owner = owner,
                        .lease_ms = lease_ms};
  const sagalog_backend_ops *ops = NULL;
  sagalog_backend *be = has_sqlite
                            ? gw_sagalog_sqlite_open(&cfg, &ops, err, errlen)
                            : gw_sagalog_pg_open(&cfg, &ops, err, errlen);
  if (!be)
    return NULL;

  gw_sagalog *log = bt_calloc(1, sizeof(*log));
  log->ops = ops;
  log->be = be;
  log->owner = bt_strdup(owner);
  log->lease_ms = lease_ms;
  log->group_commit_us = opts->group_commit_us ? opts->group_commit_us : 1000;
  log->tail = &log->head;
  pthread_mutex_init(&log->mu, NULL);
  pthread_mutex_init(&log->read_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&log->cv, &ca);
  pthread_condattr_destroy(&ca);
  int rv = pthread_create(&log->writer, NULL, writer_main, log);
  if (rv != 0) {
    snprintf(err, errlen, "saga log: cannot start the writer thread: %s",
             strerror(rv));
    ops->close(be);
    pthread_cond_destroy(&log->cv);
    pthread_mutex_destroy(&log->mu);
    pthread_mutex_destroy(&log->read_mu);
    bt_free(log->owner);
    bt_free(log);
    return NULL;
  }
  return log;
}

void gw_sagalog_close(gw_sagalog *log) {
  if (!log)
    return;
  pthread_mutex_lock(&log->mu);
  log->stopping = 1;
  pthread_cond_signal(&log->cv);
  pthread_mutex_unlock(&log->mu);
  /* The writer commits what is queued before it returns. */
  pthread_join(log->writer, NULL);
  if (log->atts)
    /* Their completions were delivered; the handles stay with their loops
     * (which bt_loop_free closes), but their memory is lost. */
    fprintf(stderr, "baton-gateway: saga log closed with loops still "
                    "attached (detach them first)\n");
  log->ops->close(log->be);
  for (size_t i = 0; i < log->n_lost; i++)
    bt_free(log->lost[i]);
  bt_free(log->lost);
  pthread_cond_destroy(&log->cv);
  pthread_mutex_destroy(&log->mu);
  pthread_mutex_destroy(&log->read_mu);
  bt_free(log->owner);
  bt_free(log);
}

uint64_t gw_sagalog_commit_count(gw_sagalog *log) {
  pthread_mutex_lock(&log->mu);
  uint64_t n = log->commits;
  pthread_mutex_unlock(&log->mu);
  return n;
}

/* ---- reading ------------------------------------------------------------ */

int gw_sagalog_list(gw_sagalog *log, int state,
                    void (*fn)(const gw_saga_view *s, void *ud), void *ud) {
  if (!log)
    return BT_ERR_INVAL;
  sagalog_views v;
  gw_sagaview_init(&v, fn, ud);
  pthread_mutex_lock(&log->read_mu);
  int rv = log->ops->read(log->be, state < 0 ? SAGALOG_ALL : SAGALOG_STATE,
                          state, &v);
  pthread_mutex_unlock(&log->read_mu);
  if (rv < 0) {
    gw_sagaview_clear(&v);
    return rv;
  }
  return gw_sagaview_end(&v);
}

int gw_sagalog_claim_unfinished(gw_sagalog *log,
                                void (*fn)(const gw_saga_view *s, void *ud),
                                void *ud) {
  if (!log)
    return BT_ERR_INVAL;
  sagalog_views v;
  gw_sagaview_init(&v, fn, ud);
  pthread_mutex_lock(&log->read_mu);
  int rv = log->ops->claim(log->be);
  if (rv == 0)
    rv = log->ops->read(log->be, SAGALOG_UNFINISHED, -1, &v);
  pthread_mutex_unlock(&log->read_mu);
  if (rv < 0) {
    gw_sagaview_clear(&v);
    return rv;
  }
  return gw_sagaview_end(&v);
}

int gw_sagalog_renew(gw_sagalog *log) {
  if (!log)
    return BT_ERR_INVAL;
  pthread_mutex_lock(&log->read_mu);
  int rv = log->ops->renew(log->be);
  pthread_mutex_unlock(&log->read_mu);
  return rv;
}

int gw_sagalog_retry(gw_sagalog *log, const char *saga_id) {
  if (!log || !saga_id)
    return BT_ERR_INVAL;
  pthread_mutex_lock(&log->read_mu);
  int rv = log->ops->retry(log->be, saga_id);
  pthread_mutex_unlock(&log->read_mu);
  return rv;
}
