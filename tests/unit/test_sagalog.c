/* test_sagalog.c: the durable saga log (gateway/sagalog*.c) on SQLite in a
 * temp dir, and on PostgreSQL when BATON_TEST_PG holds a connection string
 * (CTest's unit.test_sagalog.pg starts a throwaway cluster with
 * tests/e2e/pg.sh and runs this with --pg-only). Each PostgreSQL test gets
 * its own schema. */
#define _GNU_SOURCE /* nftw */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include <baton/loop.h>

#include "saga/sagalog.h"
#include "saga/sagalog_store.h"

/* ---- fixtures ----------------------------------------------------------- */

typedef struct fx {
  int pg;
  char dir[256];   /* SQLite: the temp dir */
  char path[320];  /* SQLite: the log file */
  char conn[1024]; /* PostgreSQL: the connection string with our schema */
  char schema[64];
  bt_loop *loop; /* the test thread's loop, attached to every log opened */
} fx;

static const char *pg_base(void) {
  const char *s = getenv("BATON_TEST_PG");
  return s && s[0] ? s : NULL;
}

static int pg_exec(const char *conn, const char *sql) {
  PGconn *c = PQconnectdb(conn);
  int ok = PQstatus(c) == CONNECTION_OK;
  if (ok) {
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    PGresult *r = PQexec(c, sql);
    ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
         PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok)
      fprintf(stderr, "test: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
  } else {
    fprintf(stderr, "test: cannot connect: %s", PQerrorMessage(c));
  }
  PQfinish(c);
  return ok ? 0 : -1;
}

static int setup_sqlite(void **state) {
  fx *f = calloc(1, sizeof(*f));
  const char *tmp = getenv("TMPDIR");
  snprintf(f->dir, sizeof(f->dir), "%s/sagalog.XXXXXX",
           tmp && tmp[0] ? tmp : "/tmp");
  if (!mkdtemp(f->dir)) {
    free(f);
    return -1;
  }
  snprintf(f->path, sizeof(f->path), "%s/saga.db", f->dir);
  f->loop = bt_loop_new();
  *state = f;
  return 0;
}

static int setup_pg(void **state) {
  static int counter;
  fx *f = calloc(1, sizeof(*f));
  f->pg = 1;
  snprintf(f->schema, sizeof(f->schema), "sagalog_t%ld_%d", (long)getpid(),
           ++counter);
  const char *base = pg_base();
  char sql[128];
  snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", f->schema);
  if (!base || pg_exec(base, sql) < 0) {
    free(f);
    return -1;
  }
  if (strstr(base, "://"))
    snprintf(f->conn, sizeof(f->conn), "%s%soptions=-csearch_path%%3D%s", base,
             strchr(base, '?') ? "&" : "?", f->schema);
  else
    snprintf(f->conn, sizeof(f->conn), "%s options='-csearch_path=%s'", base,
             f->schema);
  f->loop = bt_loop_new();
  *state = f;
  return 0;
}

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw) {
  return remove(p);
}

static int teardown(void **state) {
  fx *f = *state;
  if (f->pg) {
    char sql[128];
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", f->schema);
    pg_exec(pg_base(), sql);
  } else {
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  bt_loop_free(f->loop);
  free(f);
  return 0;
}

static gw_sagalog_opts opts_for(fx *f, const char *owner, uint32_t lease_ms) {
  gw_sagalog_opts o = {0};
  if (f->pg)
    o.postgres = f->conn;
  else
    o.sqlite_path = f->path;
  o.owner = owner;
  o.lease_ms = lease_ms;
  return o;
}

/* Opens a log (asserting it opened) and attaches the test's loop. */
static gw_sagalog *open_log(fx *f, const char *owner, uint32_t lease_ms) {
  gw_sagalog_opts o = opts_for(f, owner, lease_ms);
  char err[512] = "";
  gw_sagalog *log = gw_sagalog_open(&o, err, sizeof(err));
  if (!log)
    fail_msg("gw_sagalog_open: %s", err);
  gw_sagalog_attach_loop(log, f->loop);
  return log;
}

static void close_log(fx *f, gw_sagalog *log) {
  gw_sagalog_detach_loop(log, f->loop);
  gw_sagalog_close(log);
}

/* ---- appending ---------------------------------------------------------- */

typedef struct waiter {
  int calls;
  int err;
  int errors;
} waiter;

static void on_done(void *ud, int err) {
  waiter *w = ud;
  w->calls++;
  if (err < 0) {
    w->errors++;
    w->err = err;
  }
}

static gw_saga_record rec_start(const char *id, const char *flow,
                                const void *req, size_t len) {
  gw_saga_record r = {.kind = GW_REC_SAGA_START, .saga_id = id, .flow = flow};
  r.request = req;
  r.request_len = len;
  return r;
}

static gw_saga_record rec_step(const char *id, int index, const char *name,
                               gw_step_state st, const void *comp,
                               size_t comp_len, uint32_t attempts) {
  gw_saga_record r = {.kind = GW_REC_STEP, .saga_id = id, .step = name};
  r.step_index = index;
  r.step_state = st;
  r.comp_request = comp;
  r.comp_request_len = comp_len;
  r.attempts = attempts;
  return r;
}

static gw_saga_record rec_state(const char *id, gw_saga_state st) {
  gw_saga_record r = {.kind = GW_REC_SAGA_STATE, .saga_id = id};
  r.saga_state = st;
  return r;
}

/* Appends with a callback on f's loop and runs the loop until it has run:
 * a pending completion keeps bt_loop_run going, so this returns only after
 * the record is durable (or failed). Returns the callback's err. */
static int append_wait(fx *f, gw_sagalog *log, gw_saga_record r) {
  waiter w = {0};
  gw_sagalog_append(log, &r, f->loop, on_done, &w);
  bt_loop_run(f->loop);
  assert_int_equal(w.calls, 1);
  return w.err;
}

/* ---- reading back ------------------------------------------------------- */

typedef struct step_copy {
  char name[64];
  int index;
  int state;
  int has_comp;
  uint8_t comp[64];
  size_t comp_len;
  uint32_t attempts;
} step_copy;

typedef struct saga_copy {
  char id[64];
  char flow[128];
  int has_req;
  uint8_t req[64];
  size_t req_len;
  int state;
  char owner[64];
  int64_t created_ms, updated_ms;
  size_t n_steps;
  step_copy steps[8];
} saga_copy;

typedef struct collected {
  size_t n;
  int ordered; /* steps came in index order */
  saga_copy s[128];
} collected;

static void collect(const gw_saga_view *v, void *ud) {
  collected *c = ud;
  if (c->n == sizeof(c->s) / sizeof(c->s[0]))
    return;
  saga_copy *s = &c->s[c->n++];
  snprintf(s->id, sizeof(s->id), "%s", v->saga_id);
  snprintf(s->flow, sizeof(s->flow), "%s", v->flow);
  s->has_req = v->request != NULL;
  s->req_len = v->request_len;
  if (v->request && v->request_len <= sizeof(s->req))
    memcpy(s->req, v->request, v->request_len);
  s->state = (int)v->state;
  snprintf(s->owner, sizeof(s->owner), "%s", v->owner);
  s->created_ms = v->created_ms;
  s->updated_ms = v->updated_ms;
  s->n_steps = v->n_steps;
  for (size_t i = 0; i < v->n_steps && i < 8; i++) {
    step_copy *t = &s->steps[i];
    snprintf(t->name, sizeof(t->name), "%s", v->steps[i].name);
    t->index = v->steps[i].index;
    t->state = (int)v->steps[i].state;
    t->has_comp = v->steps[i].comp_request != NULL;
    t->comp_len = v->steps[i].comp_request_len;
    if (t->has_comp && t->comp_len <= sizeof(t->comp))
      memcpy(t->comp, v->steps[i].comp_request, t->comp_len);
    t->attempts = v->steps[i].attempts;
    if (i > 0 && v->steps[i].index <= v->steps[i - 1].index)
      c->ordered = 0;
  }
}

static collected *new_collected(void) {
  collected *c = calloc(1, sizeof(*c));
  c->ordered = 1;
  return c;
}

static const saga_copy *find_saga(const collected *c, const char *id) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->s[i].id, id) == 0)
      return &c->s[i];
  return NULL;
}

static int list_count(gw_sagalog *log, int state) {
  return gw_sagalog_list(log, state, NULL, NULL);
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* ---- tests on both backends --------------------------------------------- */

static void test_sagalog_state_names(void **state) {
  for (int s = GW_SAGA_RUNNING; s <= GW_SAGA_COMPENSATION_FAILED; s++)
    assert_int_equal(gw_sagalog_state_parse(gw_sagalog_state_name(s)), s);
  assert_string_equal(gw_sagalog_state_name(GW_SAGA_COMPENSATION_FAILED),
                      "COMPENSATION_FAILED");
  assert_string_equal(gw_sagalog_state_name((gw_saga_state)99), "UNKNOWN");
  assert_int_equal(gw_sagalog_state_parse("running"), -1);
  assert_int_equal(gw_sagalog_state_parse(""), -1);
  assert_int_equal(gw_sagalog_state_parse(NULL), -1);
}

static const uint8_t req1[] = {0x0a, 0x00, 0x01, 0x00, 'x', 'y', 0x00};
static const uint8_t comp0[] = {0x08, 0x00, 0x12, 0x00};
static const uint8_t comp2[] = {0x00, 0xff, 0x00};

/* Start, steps started/committed/failed/compensated with compensation
 * bytes holding NULs, saga state changes and the end, read back by list
 * (all and by state) and by claim; then again after reopening. */
static void test_sagalog_round_trip(void **state) {
  fx *f = *state;
  int64_t t0 = sagalog_wall_ms();
  gw_sagalog *log = open_log(f, "gw-a", 0);
  waiter w = {0};
  gw_saga_record recs[] = {
      rec_start("saga-1", "shop.Orders/Place", req1, sizeof(req1)),
      rec_step("saga-1", 0, "reserve", GW_STEP_STARTED, NULL, 0, 0),
      rec_step("saga-1", 0, "reserve", GW_STEP_COMMITTED, comp0, sizeof(comp0),
               0),
      rec_step("saga-1", 1, "pay", GW_STEP_STARTED, NULL, 0, 0),
      rec_step("saga-1", 1, "pay", GW_STEP_FAILED, NULL, 0, 0),
      rec_state("saga-1", GW_SAGA_COMPENSATING),
      /* No comp_request: the committed one stays. */
      rec_step("saga-1", 0, "reserve", GW_STEP_COMPENSATED, NULL, 0, 1),
      rec_state("saga-1", GW_SAGA_COMPENSATED),
      /* An empty but present request and compensation; steps 0 and 2 only. */
      rec_start("saga-2", "shop.Orders/Place", "", 0),
      rec_step("saga-2", 2, "seat", GW_STEP_STARTED, comp2, sizeof(comp2), 0),
      rec_step("saga-2", 0, "reserve", GW_STEP_COMMITTED, "", 0, 0),
      /* No request at all. */
      rec_start("saga-3", "travel.Travel/Book", NULL, 0),
      rec_state("saga-3", GW_SAGA_COMPLETED),
  };
  size_t n = sizeof(recs) / sizeof(recs[0]);
  for (size_t i = 0; i < n; i++)
    gw_sagalog_append(log, &recs[i], f->loop, on_done, &w);
  bt_loop_run(f->loop);
  assert_int_equal(w.calls, (int)n);
  assert_int_equal(w.errors, 0);

  for (int round = 0; round < 2; round++) {
    collected *c = new_collected();
    assert_int_equal(gw_sagalog_list(log, -1, collect, c), 3);
    assert_int_equal(c->n, 3);
    assert_true(c->ordered);

    const saga_copy *s1 = find_saga(c, "saga-1");
    assert_non_null(s1);
    assert_string_equal(s1->flow, "shop.Orders/Place");
    assert_true(s1->has_req);
    assert_int_equal(s1->req_len, sizeof(req1));
    assert_memory_equal(s1->req, req1, sizeof(req1));
    assert_int_equal(s1->state, GW_SAGA_COMPENSATED);
    assert_string_equal(s1->owner, "gw-a");
    assert_true(s1->created_ms >= t0 - 2000);
    assert_true(s1->created_ms <= sagalog_wall_ms() + 2000);
    assert_true(s1->updated_ms >= s1->created_ms);
    assert_int_equal(s1->n_steps, 2);
    assert_string_equal(s1->steps[0].name, "reserve");
    assert_int_equal(s1->steps[0].index, 0);
    assert_int_equal(s1->steps[0].state, GW_STEP_COMPENSATED);
    assert_int_equal(s1->steps[0].attempts, 1);
    assert_true(s1->steps[0].has_comp);
    assert_int_equal(s1->steps[0].comp_len, sizeof(comp0));
    assert_memory_equal(s1->steps[0].comp, comp0, sizeof(comp0));
    assert_string_equal(s1->steps[1].name, "pay");
    assert_int_equal(s1->steps[1].state, GW_STEP_FAILED);
    assert_false(s1->steps[1].has_comp);

    const saga_copy *s2 = find_saga(c, "saga-2");
    assert_non_null(s2);
    assert_true(s2->has_req);
    assert_int_equal(s2->req_len, 0);
    assert_int_equal(s2->state, GW_SAGA_RUNNING);
    assert_int_equal(s2->n_steps, 2);
    assert_int_equal(s2->steps[0].index, 0);
    assert_int_equal(s2->steps[0].state, GW_STEP_COMMITTED);
    assert_true(s2->steps[0].has_comp);
    assert_int_equal(s2->steps[0].comp_len, 0);
    assert_int_equal(s2->steps[1].index, 2);
    assert_string_equal(s2->steps[1].name, "seat");
    assert_int_equal(s2->steps[1].state, GW_STEP_STARTED);
    assert_int_equal(s2->steps[1].comp_len, sizeof(comp2));
    assert_memory_equal(s2->steps[1].comp, comp2, sizeof(comp2));

    const saga_copy *s3 = find_saga(c, "saga-3");
    assert_non_null(s3);
    assert_false(s3->has_req);
    assert_string_equal(s3->flow, "travel.Travel/Book");
    assert_int_equal(s3->state, GW_SAGA_COMPLETED);
    assert_int_equal(s3->n_steps, 0);
    free(c);

    /* By state. */
    c = new_collected();
    assert_int_equal(gw_sagalog_list(log, GW_SAGA_COMPENSATED, collect, c), 1);
    assert_string_equal(c->s[0].id, "saga-1");
    free(c);
    assert_int_equal(list_count(log, GW_SAGA_RUNNING), 1);
    assert_int_equal(list_count(log, GW_SAGA_COMPLETED), 1);
    assert_int_equal(list_count(log, GW_SAGA_COMPENSATION_FAILED), 0);

    /* Claim: only the unfinished one, with its steps. */
    c = new_collected();
    assert_int_equal(gw_sagalog_claim_unfinished(log, collect, c), 1);
    assert_string_equal(c->s[0].id, "saga-2");
    assert_string_equal(c->s[0].owner, "gw-a");
    assert_int_equal(c->s[0].n_steps, 2);
    free(c);

    /* The same after closing and reopening. */
    close_log(f, log);
    log = open_log(f, "gw-a", 0);
  }
  close_log(f, log);
}

/* Records of one saga are applied in append order, whichever batches they
 * land in: the last of 300 updates of a step wins, and a fire-and-forget
 * record is durable before the saga's later record reports durable. */
static void test_sagalog_order_per_saga(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  gw_saga_record r = rec_start("ord-1", "f/M", "a", 1);
  gw_sagalog_append(log, &r, NULL, NULL, NULL);
  r = rec_start("ord-2", "f/M", "b", 1);
  gw_sagalog_append(log, &r, NULL, NULL, NULL);
  for (uint32_t i = 0; i < 300; i++) {
    r = rec_step("ord-1", 0, "s", i % 2 ? GW_STEP_COMMITTED : GW_STEP_STARTED,
                 &i, sizeof(i), i);
    gw_sagalog_append(log, &r, NULL, NULL, NULL);
    r = rec_step("ord-2", (int)(i % 3), "t", GW_STEP_STARTED, NULL, 0, i);
    gw_sagalog_append(log, &r, NULL, NULL, NULL);
    if (i % 50 == 0)
      sleep_ms(1); /* spread over several batches */
  }
  r = rec_state("ord-1", GW_SAGA_COMPENSATING);
  gw_sagalog_append(log, &r, NULL, NULL, NULL);
  assert_int_equal(append_wait(f, log, rec_state("ord-1", GW_SAGA_COMPENSATED)),
                   0);
  collected *c = new_collected();
  assert_int_equal(gw_sagalog_list(log, -1, collect, c), 2);
  const saga_copy *s1 = find_saga(c, "ord-1");
  assert_non_null(s1);
  assert_int_equal(s1->state, GW_SAGA_COMPENSATED);
  assert_int_equal(s1->n_steps, 1);
  assert_int_equal(s1->steps[0].attempts, 299);
  assert_int_equal(s1->steps[0].state, GW_STEP_COMMITTED);
  uint32_t last = 299;
  assert_int_equal(s1->steps[0].comp_len, sizeof(last));
  assert_memory_equal(s1->steps[0].comp, &last, sizeof(last));
  const saga_copy *s2 = find_saga(c, "ord-2");
  assert_non_null(s2);
  assert_int_equal(s2->n_steps, 3);
  assert_int_equal(s2->steps[0].attempts, 297);
  assert_int_equal(s2->steps[1].attempts, 298);
  assert_int_equal(s2->steps[2].attempts, 299);
  free(c);
  close_log(f, log);
}

/* Group commit: 1,000 concurrent appends from two loops on two threads,
 * each waiting for durability, take far fewer than 1,000 transactions. */
typedef struct gc_thread {
  gw_sagalog *log;
  pthread_barrier_t *barrier;
  int index;
  waiter w;
} gc_thread;

#define GC_PER_THREAD 500

static void *gc_main(void *arg) {
  gc_thread *t = arg;
  bt_loop *loop = bt_loop_new();
  gw_sagalog_attach_loop(t->log, loop);
  pthread_barrier_wait(t->barrier);
  for (int i = 0; i < GC_PER_THREAD; i++) {
    char id[32];
    snprintf(id, sizeof(id), "gc-%d-%d", t->index, i);
    gw_saga_record r = rec_start(id, "f/M", id, strlen(id));
    gw_sagalog_append(t->log, &r, loop, on_done, &t->w);
  }
  bt_loop_run(loop); /* returns once every completion ran */
  gw_sagalog_detach_loop(t->log, loop);
  bt_loop_free(loop);
  return NULL;
}

static void test_sagalog_group_commit(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  uint64_t before = gw_sagalog_commit_count(log);
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  gc_thread t[2] = {{.log = log, .barrier = &barrier, .index = 0},
                    {.log = log, .barrier = &barrier, .index = 1}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, gc_main, &t[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  uint64_t commits = gw_sagalog_commit_count(log) - before;
  printf("# group commit (%s): %d appends from 2 loops in %llu commits\n",
         f->pg ? "PostgreSQL" : "SQLite", 2 * GC_PER_THREAD,
         (unsigned long long)commits);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(t[i].w.calls, GC_PER_THREAD);
    assert_int_equal(t[i].w.errors, 0);
  }
  assert_true(commits >= 1);
  assert_true(commits <= 2 * GC_PER_THREAD / 10);
  assert_int_equal(list_count(log, GW_SAGA_RUNNING), 2 * GC_PER_THREAD);
  close_log(f, log);
}

/* A COMPENSATION_FAILED saga goes back to COMPENSATING, owned by the caller,
 * its failed steps to COMMITTED with no attempts; other states refuse. */
static void test_sagalog_retry_compensation_failed(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  gw_saga_record recs[] = {
      rec_start("r-1", "f/M", "q", 1),
      rec_step("r-1", 0, "reserve", GW_STEP_COMMITTED, "c0", 2, 0),
      rec_step("r-1", 1, "pay", GW_STEP_COMMITTED, "c1", 2, 0),
      rec_state("r-1", GW_SAGA_COMPENSATING),
      rec_step("r-1", 1, "pay", GW_STEP_COMPENSATED, NULL, 0, 2),
      rec_step("r-1", 0, "reserve", GW_STEP_COMPENSATION_FAILED, NULL, 0, 7),
      rec_state("r-1", GW_SAGA_COMPENSATION_FAILED),
      rec_start("r-2", "f/M", "q", 1),
      rec_state("r-2", GW_SAGA_COMPLETED),
  };
  for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
    assert_int_equal(append_wait(f, log, recs[i]), 0);
  close_log(f, log);

  /* The sagas command: another process, another owner. */
  gw_sagalog *cmd = open_log(f, "sagas-cmd", 0);
  assert_int_equal(list_count(cmd, GW_SAGA_COMPENSATION_FAILED), 1);
  assert_int_equal(gw_sagalog_retry(cmd, "r-1"), 0);
  assert_int_equal(gw_sagalog_retry(cmd, "r-1"), BT_ERR_STATE);
  assert_int_equal(gw_sagalog_retry(cmd, "r-2"), BT_ERR_STATE);
  assert_int_equal(gw_sagalog_retry(cmd, "no-such-saga"), BT_ERR_NOTFOUND);
  assert_int_equal(list_count(cmd, GW_SAGA_COMPENSATION_FAILED), 0);

  collected *c = new_collected();
  assert_int_equal(gw_sagalog_claim_unfinished(cmd, collect, c), 1);
  const saga_copy *s = &c->s[0];
  assert_string_equal(s->id, "r-1");
  assert_int_equal(s->state, GW_SAGA_COMPENSATING);
  assert_string_equal(s->owner, "sagas-cmd");
  assert_int_equal(s->n_steps, 2);
  assert_int_equal(s->steps[0].state, GW_STEP_COMMITTED);
  assert_int_equal(s->steps[0].attempts, 0);
  assert_int_equal(s->steps[0].comp_len, 2);
  assert_memory_equal(s->steps[0].comp, "c0", 2);
  assert_int_equal(s->steps[1].state, GW_STEP_COMPENSATED);
  assert_int_equal(s->steps[1].attempts, 2);
  free(c);
  /* The blocking calls refuse nothing they cannot do. */
  assert_int_equal(gw_sagalog_renew(cmd), 0);
  close_log(f, cmd);
}

/* A transaction the database refuses reports err < 0 to its waiter (and
 * stderr says why); the writer goes on with the next batch. */
static void add_reject_trigger(fx *f) {
  if (f->pg) {
    assert_int_equal(
        pg_exec(f->conn,
                "CREATE FUNCTION reject_boom() RETURNS trigger LANGUAGE "
                "plpgsql AS $$ BEGIN IF NEW.id = 'boom' THEN RAISE EXCEPTION "
                "'boom rejected (test)'; END IF; RETURN NEW; END $$;"
                "CREATE TRIGGER reject_boom BEFORE INSERT ON sagas FOR EACH "
                "ROW EXECUTE FUNCTION reject_boom();"
                "CREATE FUNCTION reject_bad() RETURNS trigger LANGUAGE "
                "plpgsql AS $$ BEGIN IF NEW.name = 'bad' THEN RAISE EXCEPTION "
                "'bad step rejected (test)'; END IF; RETURN NEW; END $$;"
                "CREATE TRIGGER reject_bad BEFORE INSERT ON saga_steps FOR "
                "EACH ROW EXECUTE FUNCTION reject_bad()"),
        0);
  } else {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TRIGGER reject_boom BEFORE INSERT ON sagas WHEN "
                     "NEW.id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom "
                     "rejected (test)'); END;"
                     "CREATE TRIGGER reject_bad BEFORE INSERT ON saga_steps "
                     "WHEN NEW.name = 'bad' BEGIN SELECT RAISE(ABORT, 'bad "
                     "step rejected (test)'); END",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
  }
}

static void test_sagalog_failed_transaction_reports_error(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  assert_int_equal(append_wait(f, log, rec_start("before", "f/M", "x", 1)), 0);
  add_reject_trigger(f);
  int err = append_wait(f, log, rec_start("boom", "f/M", "x", 1));
  assert_true(err < 0);
  assert_int_equal(append_wait(f, log, rec_start("after", "f/M", "x", 1)), 0);
  collected *c = new_collected();
  assert_int_equal(gw_sagalog_list(log, -1, collect, c), 2);
  assert_non_null(find_saga(c, "before"));
  assert_non_null(find_saga(c, "after"));
  assert_null(find_saga(c, "boom"));
  free(c);
  close_log(f, log);
}

/* A fire-and-forget record that could not be written fails its saga's
 * later records up to and including the next one with a callback (the
 * engine learns of the hole there), so no later record of the saga is
 * durable without it; afterwards the saga's records are written again.
 * Other sagas are not affected. The outcome is the same whether the failed
 * record shares a transaction with the later ones or not. */
static void test_sagalog_lost_record_fails_later_ones(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  assert_int_equal(append_wait(f, log, rec_start("P", "f/M", "p", 1)), 0);
  assert_int_equal(append_wait(f, log, rec_start("Q", "f/M", "q", 1)), 0);
  add_reject_trigger(f);
  gw_saga_record r = rec_step("P", 0, "bad", GW_STEP_COMMITTED, "c", 1, 0);
  gw_sagalog_append(log, &r, NULL, NULL, NULL); /* will fail */
  sleep_ms(20);
  r = rec_step("P", 1, "later", GW_STEP_STARTED, NULL, 0, 0);
  gw_sagalog_append(log, &r, NULL, NULL, NULL); /* must not be written */
  assert_true(append_wait(f, log, rec_state("P", GW_SAGA_COMPENSATING)) < 0);
  assert_int_equal(
      append_wait(f, log, rec_step("Q", 0, "q0", GW_STEP_STARTED, NULL, 0, 0)),
      0);
  /* Told: P's records are written again. */
  assert_int_equal(
      append_wait(f, log,
                  rec_step("P", 2, "after", GW_STEP_STARTED, NULL, 0, 0)),
      0);
  collected *c = new_collected();
  assert_int_equal(gw_sagalog_list(log, -1, collect, c), 2);
  const saga_copy *p = find_saga(c, "P");
  assert_non_null(p);
  assert_int_equal(p->state, GW_SAGA_RUNNING);
  assert_int_equal(p->n_steps, 1);
  assert_int_equal(p->steps[0].index, 2);
  const saga_copy *q = find_saga(c, "Q");
  assert_non_null(q);
  assert_int_equal(q->n_steps, 1);
  free(c);
  close_log(f, log);
}

/* An invalid record is refused through its callback, never written. */
static void test_sagalog_invalid_record(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  waiter w = {0};
  gw_saga_record r = rec_start(NULL, "f/M", "x", 1);
  gw_sagalog_append(log, &r, f->loop, on_done, &w);
  r = rec_start("", "f/M", "x", 1);
  gw_sagalog_append(log, &r, f->loop, on_done, &w);
  r = rec_start("id", "f/M", NULL, 5); /* a length without bytes */
  gw_sagalog_append(log, &r, f->loop, on_done, &w);
  r = rec_state("id", (gw_saga_state)17);
  gw_sagalog_append(log, &r, f->loop, on_done, &w);
  r = rec_step("id", 0, "s", (gw_step_state)-3, NULL, 0, 0);
  gw_sagalog_append(log, &r, f->loop, on_done, &w);
  gw_sagalog_append(log, NULL, f->loop, on_done, &w);
  bt_loop_run(f->loop);
  assert_int_equal(w.calls, 6);
  assert_int_equal(w.errors, 6);
  assert_int_equal(w.err, BT_ERR_INVAL);
  assert_int_equal(list_count(log, -1), 0);
  /* NULLs are accepted where the header says so. */
  gw_sagalog_append(NULL, &r, f->loop, on_done, &w);
  gw_sagalog_close(NULL);
  gw_sagalog_attach_loop(NULL, f->loop);
  gw_sagalog_detach_loop(NULL, f->loop);
  assert_true(gw_sagalog_list(NULL, -1, NULL, NULL) < 0);
  assert_true(gw_sagalog_retry(log, NULL) < 0);
  close_log(f, log);
}

/* Detaching a loop waits for its records in flight and runs every
 * outstanding callback before it returns; close commits what is queued. */
static void test_sagalog_detach_and_close_flush(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  waiter w = {0};
  for (int i = 0; i < 50; i++) {
    char id[16];
    snprintf(id, sizeof(id), "d-%d", i);
    gw_saga_record r = rec_start(id, "f/M", NULL, 0);
    gw_sagalog_append(log, &r, f->loop, on_done, &w);
  }
  gw_sagalog_detach_loop(log, f->loop); /* the loop never ran */
  assert_int_equal(w.calls, 50);
  assert_int_equal(w.errors, 0);
  for (int i = 0; i < 200; i++) {
    char id[16];
    snprintf(id, sizeof(id), "q-%d", i);
    gw_saga_record r = rec_start(id, "f/M", NULL, 0);
    gw_sagalog_append(log, &r, NULL, NULL, NULL);
  }
  gw_sagalog_close(log);
  log = open_log(f, "gw-a", 0);
  assert_int_equal(list_count(log, GW_SAGA_RUNNING), 250);
  close_log(f, log);
}

/* ---- SQLite only -------------------------------------------------------- */

static void write_file(const char *path, const void *p, size_t len,
                       long offset) {
  FILE *fp = fopen(path, offset < 0 ? "wb" : "r+b");
  assert_non_null(fp);
  if (offset > 0)
    assert_int_equal(fseek(fp, offset, SEEK_SET), 0);
  assert_int_equal(fwrite(p, 1, len, fp), len);
  fclose(fp);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void expect_open_error(fx *f, const char *what) {
  gw_sagalog_opts o = opts_for(f, "gw-a", 0);
  char err[512] = "";
  gw_sagalog *log = gw_sagalog_open(&o, err, sizeof(err));
  if (log)
    fail_msg("%s: the log opened", what);
  printf("# %s: %s\n", what, err);
  assert_non_null(strstr(err, f->path)); /* names the file */
}

/* A log with enough sagas for a few pages, closed (so it is all in the
 * main file, no -wal). */
static void fill_log(fx *f, int n) {
  gw_sagalog *log = open_log(f, "gw-a", 0);
  uint8_t big[200];
  memset(big, 0x5a, sizeof(big));
  for (int i = 0; i < n; i++) {
    char id[16];
    snprintf(id, sizeof(id), "fill-%04d", i);
    gw_saga_record r = rec_start(id, "f/M", big, sizeof(big));
    gw_sagalog_append(log, &r, NULL, NULL, NULL);
    r = rec_step(id, 0, "s", GW_STEP_COMMITTED, big, sizeof(big), 0);
    gw_sagalog_append(log, &r, NULL, NULL, NULL);
  }
  assert_int_equal(
      append_wait(f, log, rec_state("fill-0000", GW_SAGA_COMPLETED)), 0);
  close_log(f, log);
}

static void test_sagalog_sqlite_garbage_file(void **state) {
  fx *f = *state;
  uint8_t junk[8192];
  uint32_t x = 12345;
  for (size_t i = 0; i < sizeof(junk); i++) {
    x = x * 1103515245 + 12345;
    junk[i] = (uint8_t)(x >> 16);
  }
  write_file(f->path, junk, sizeof(junk), -1);
  expect_open_error(f, "garbage file");
  /* Left as it was: the operator decides what to do with it. */
  assert_int_equal(file_size(f->path), (long)sizeof(junk));
}

static void test_sagalog_sqlite_damaged_page(void **state) {
  fx *f = *state;
  fill_log(f, 300);
  long size = file_size(f->path);
  assert_true(size >= 8 * 4096);
  uint8_t junk[4096];
  memset(junk, 0xa7, sizeof(junk));
  /* Page 3 onwards: table and index pages, not the header. */
  write_file(f->path, junk, sizeof(junk), 2 * 4096);
  write_file(f->path, junk, sizeof(junk), 4 * 4096);
  expect_open_error(f, "damaged pages");
}

static void test_sagalog_sqlite_truncated_file(void **state) {
  fx *f = *state;
  fill_log(f, 300);
  long size = file_size(f->path);
  assert_true(size >= 8 * 4096);
  /* Mid-page, about half the file gone. */
  assert_int_equal(truncate(f->path, (size / 4096 / 2) * 4096 + 1000), 0);
  expect_open_error(f, "truncated file");
}

static int copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (!in)
    return -1;
  FILE *out = fopen(to, "wb");
  if (!out) {
    fclose(in);
    return -1;
  }
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
    fwrite(buf, 1, n, out);
  fclose(in);
  return fclose(out);
}

/* A crash in the middle of a commit leaves a torn last WAL frame: the copy
 * of the files taken while the log is open (what a crash leaves), with the
 * -wal cut by a few bytes, opens and holds every transaction but the torn
 * last one. */
static void test_sagalog_sqlite_torn_wal(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  for (int i = 0; i < 10; i++) {
    char id[16];
    snprintf(id, sizeof(id), "torn-%d", i);
    assert_int_equal(append_wait(f, log, rec_start(id, "f/M", "r", 1)), 0);
  }
  char wal[400], copy[300], copy_wal[320];
  snprintf(wal, sizeof(wal), "%s-wal", f->path);
  snprintf(copy, sizeof(copy), "%s/crash.db", f->dir);
  snprintf(copy_wal, sizeof(copy_wal), "%s-wal", copy);
  assert_int_equal(copy_file(f->path, copy), 0);
  assert_int_equal(copy_file(wal, copy_wal), 0);
  close_log(f, log);

  long wal_size = file_size(copy_wal);
  assert_true(wal_size > 4096);
  assert_int_equal(truncate(copy_wal, wal_size - 3), 0);
  snprintf(f->path, sizeof(f->path), "%s", copy);
  log = open_log(f, "gw-a", 0);
  collected *c = new_collected();
  assert_int_equal(gw_sagalog_list(log, -1, collect, c), 9);
  for (int i = 0; i < 9; i++) {
    char id[16];
    snprintf(id, sizeof(id), "torn-%d", i);
    assert_non_null(find_saga(c, id));
  }
  assert_null(find_saga(c, "torn-9"));
  free(c);
  /* And it takes new records. */
  assert_int_equal(append_wait(f, log, rec_start("torn-9", "f/M", "r", 1)), 0);
  assert_int_equal(list_count(log, -1), 10);
  close_log(f, log);
}

static void test_sagalog_open_errors(void **state) {
  fx *f = *state;
  char err[512];
  gw_sagalog_opts o = {0};
  assert_null(gw_sagalog_open(&o, err, sizeof(err)));
  assert_non_null(strstr(err, "exactly one"));
  o.sqlite_path = f->path;
  o.postgres = "host=/nonexistent";
  assert_null(gw_sagalog_open(&o, err, sizeof(err)));
  assert_null(gw_sagalog_open(NULL, err, sizeof(err)));
  assert_null(gw_sagalog_open(NULL, NULL, 0));
  snprintf(f->path, sizeof(f->path), "%s/no/such/dir/saga.db", f->dir);
  expect_open_error(f, "missing directory");
  /* A directory where the file should be. */
  snprintf(f->path, sizeof(f->path), "%s", f->dir);
  expect_open_error(f, "a directory");
}

/* ---- PostgreSQL only ---------------------------------------------------- */

/* Two gateways on one database: while A renews its lease B cannot take A's
 * sagas; once A dies (closes without finishing them, so nobody renews) and
 * the lease runs out, B's claim takes them over with their steps, and A
 * coming back finds them gone. */
static void test_sagalog_pg_lease_takeover(void **state) {
  fx *f = *state;
  const uint32_t lease = 1000;
  gw_sagalog *a = open_log(f, "gw-a", lease);
  gw_sagalog_opts ob = opts_for(f, "gw-b", lease);
  char err[512];
  gw_sagalog *b = gw_sagalog_open(&ob, err, sizeof(err));
  assert_non_null(b);
  assert_int_equal(append_wait(f, a, rec_start("L1", "f/M", "1", 1)), 0);
  assert_int_equal(
      append_wait(f, a, rec_step("L1", 0, "s", GW_STEP_COMMITTED, "c", 1, 0)),
      0);
  assert_int_equal(append_wait(f, a, rec_start("L2", "f/M", "2", 1)), 0);
  assert_int_equal(append_wait(f, a, rec_state("L2", GW_SAGA_COMPENSATING)), 0);
  assert_int_equal(append_wait(f, a, rec_start("L3", "f/M", "3", 1)), 0);
  assert_int_equal(append_wait(f, a, rec_state("L3", GW_SAGA_COMPLETED)), 0);

  sleep_ms((int)lease + lease / 2); /* A's writer renews meanwhile */
  assert_int_equal(gw_sagalog_claim_unfinished(b, NULL, NULL), 0);
  assert_int_equal(gw_sagalog_claim_unfinished(a, NULL, NULL), 2);

  close_log(f, a); /* A dies */
  assert_int_equal(gw_sagalog_claim_unfinished(b, NULL, NULL), 0);
  sleep_ms((int)lease + 200);
  collected *c = new_collected();
  assert_int_equal(gw_sagalog_claim_unfinished(b, collect, c), 2);
  const saga_copy *l1 = find_saga(c, "L1");
  assert_non_null(l1);
  assert_string_equal(l1->owner, "gw-b");
  assert_int_equal(l1->state, GW_SAGA_RUNNING);
  assert_int_equal(l1->n_steps, 1);
  assert_int_equal(l1->steps[0].state, GW_STEP_COMMITTED);
  assert_memory_equal(l1->steps[0].comp, "c", 1);
  const saga_copy *l2 = find_saga(c, "L2");
  assert_non_null(l2);
  assert_int_equal(l2->state, GW_SAGA_COMPENSATING);
  free(c);

  /* A restarts under the same name: B renews, so nothing comes back. */
  a = open_log(f, "gw-a", lease);
  sleep_ms((int)lease + 200);
  assert_int_equal(gw_sagalog_claim_unfinished(a, NULL, NULL), 0);
  assert_int_equal(gw_sagalog_claim_unfinished(b, NULL, NULL), 2);
  close_log(f, a);
  gw_sagalog_close(b);
}

typedef struct claimer {
  gw_sagalog *log;
  pthread_barrier_t *barrier;
  collected *got;
  int rv;
} claimer;

static void *claim_main(void *arg) {
  claimer *c = arg;
  pthread_barrier_wait(c->barrier);
  c->rv = gw_sagalog_claim_unfinished(c->log, collect, c->got);
  return NULL;
}

/* A gateway that dies with n unfinished sagas named PREFIX-NNNN. */
static void dead_gateway(fx *f, const char *prefix, int n) {
  gw_sagalog *dead = open_log(f, "gw-dead", 200);
  for (int i = 0; i < n; i++) {
    char id[32];
    snprintf(id, sizeof(id), "%s-%04d", prefix, i);
    gw_saga_record r = rec_start(id, "f/M", NULL, 0);
    gw_sagalog_append(dead, &r, NULL, NULL, NULL);
  }
  close_log(f, dead);
  sleep_ms(400); /* its lease runs out */
}

/* Two gateways claiming a dead one's sagas at the same moment: every saga
 * goes to exactly one of them. And a saga another transaction holds locked
 * (a claim in progress) is skipped, not waited for. */
static void test_sagalog_pg_concurrent_claim(void **state) {
  fx *f = *state;
  const int n = 1000;
  dead_gateway(f, "cc", n);
  gw_sagalog_opts o1 = opts_for(f, "gw-1", 5000),
                  o2 = opts_for(f, "gw-2", 5000);
  char err[512];
  claimer cl[2] = {{.log = gw_sagalog_open(&o1, err, sizeof(err))},
                   {.log = gw_sagalog_open(&o2, err, sizeof(err))}};
  assert_non_null(cl[0].log);
  assert_non_null(cl[1].log);
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, 2);
  pthread_t th[2];
  for (int i = 0; i < 2; i++) {
    cl[i].barrier = &barrier;
    cl[i].got = new_collected();
    assert_int_equal(pthread_create(&th[i], NULL, claim_main, &cl[i]), 0);
  }
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  printf("# concurrent claim: %d + %d of %d\n", cl[0].rv, cl[1].rv, n);
  assert_int_equal(cl[0].rv + cl[1].rv, n);
  /* collected keeps the first 128 of each: enough to see no overlap. */
  for (size_t i = 0; i < cl[0].got->n; i++) {
    assert_string_equal(cl[0].got->s[i].owner, "gw-1");
    assert_null(find_saga(cl[1].got, cl[0].got->s[i].id));
  }
  for (size_t i = 0; i < cl[1].got->n; i++)
    assert_string_equal(cl[1].got->s[i].owner, "gw-2");
  /* None lost. */
  assert_int_equal(list_count(cl[0].log, GW_SAGA_RUNNING), n);
  /* Claiming again takes only one's own. */
  assert_int_equal(gw_sagalog_claim_unfinished(cl[0].log, NULL, NULL),
                   cl[0].rv);
  assert_int_equal(gw_sagalog_claim_unfinished(cl[1].log, NULL, NULL),
                   cl[1].rv);

  /* Deterministic SKIP LOCKED: hold 5 of 20 expired sagas locked. */
  dead_gateway(f, "sk", 20);
  PGconn *locker = PQconnectdb(f->conn);
  assert_int_equal(PQstatus(locker), CONNECTION_OK);
  PQclear(PQexec(locker, "BEGIN"));
  PGresult *res = PQexec(
      locker, "SELECT id FROM sagas WHERE id < 'sk-0005' AND id LIKE 'sk-%' "
              "FOR UPDATE");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  assert_int_equal(PQntuples(res), 5);
  PQclear(res);
  assert_int_equal(gw_sagalog_claim_unfinished(cl[0].log, NULL, NULL),
                   cl[0].rv + 15);
  PQclear(PQexec(locker, "COMMIT"));
  PQfinish(locker);
  assert_int_equal(gw_sagalog_claim_unfinished(cl[1].log, NULL, NULL),
                   cl[1].rv + 5);
  for (int i = 0; i < 2; i++) {
    free(cl[i].got);
    gw_sagalog_close(cl[i].log);
  }
}

/* The server drops the log's connections (a restart, a failover, an
 * operator): the next append and the next reads reconnect, and no record
 * is lost. */
static void test_sagalog_pg_reconnect(void **state) {
  fx *f = *state;
  gw_sagalog *log = open_log(f, "gw-a", 0);
  assert_int_equal(append_wait(f, log, rec_start("rc-1", "f/M", "1", 1)), 0);
  assert_int_equal(list_count(log, -1), 1);
  /* Waits (up to 5 s) until each backend is gone. */
  assert_int_equal(pg_exec(f->conn,
                           "SELECT pg_terminate_backend(pid, 5000) FROM "
                           "pg_stat_activity WHERE application_name LIKE "
                           "'baton-gateway saga log%'"),
                   0);
  assert_int_equal(append_wait(f, log, rec_start("rc-2", "f/M", "2", 1)), 0);
  assert_int_equal(list_count(log, -1), 2);
  assert_int_equal(gw_sagalog_claim_unfinished(log, NULL, NULL), 2);
  close_log(f, log);
}

static void test_sagalog_pg_bad_connection(void **state) {
  char err[512] = "";
  gw_sagalog_opts o = {.postgres =
                           "host=/nonexistent-baton-dir port=1 dbname=x "
                           "password=sekrit connect_timeout=2"};
  assert_null(gw_sagalog_open(&o, err, sizeof(err)));
  printf("# bad connection: %s\n", err);
  assert_non_null(strstr(err, "cannot connect"));
  assert_null(strstr(err, "sekrit"));
  o.postgres = "this is not a connection string";
  assert_null(gw_sagalog_open(&o, err, sizeof(err)));
}

/* ---- main --------------------------------------------------------------- */

#define BOTH(prefix, setup)                                                    \
  cmocka_unit_test_setup_teardown(test_sagalog_round_trip, setup, teardown),   \
      cmocka_unit_test_setup_teardown(test_sagalog_order_per_saga, setup,      \
                                      teardown),                               \
      cmocka_unit_test_setup_teardown(test_sagalog_group_commit, setup,        \
                                      teardown),                               \
      cmocka_unit_test_setup_teardown(test_sagalog_retry_compensation_failed,  \
                                      setup, teardown),                        \
      cmocka_unit_test_setup_teardown(                                         \
          test_sagalog_failed_transaction_reports_error, setup, teardown),     \
      cmocka_unit_test_setup_teardown(                                         \
          test_sagalog_lost_record_fails_later_ones, setup, teardown),         \
      cmocka_unit_test_setup_teardown(test_sagalog_invalid_record, setup,      \
                                      teardown),                               \
      cmocka_unit_test_setup_teardown(test_sagalog_detach_and_close_flush,     \
                                      setup, teardown)

int main(int argc, char **argv) {
  int pg_only = argc > 1 && strcmp(argv[1], "--pg-only") == 0;
  int rv = 0;
  if (!pg_only) {
    const struct CMUnitTest sqlite_tests[] = {
        cmocka_unit_test(test_sagalog_state_names),
        BOTH(sqlite, setup_sqlite),
        cmocka_unit_test_setup_teardown(test_sagalog_sqlite_garbage_file,
                                        setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_sagalog_sqlite_damaged_page,
                                        setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_sagalog_sqlite_truncated_file,
                                        setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_sagalog_sqlite_torn_wal,
                                        setup_sqlite, teardown),
        cmocka_unit_test_setup_teardown(test_sagalog_open_errors, setup_sqlite,
                                        teardown),
    };
    rv |=
        cmocka_run_group_tests_name("sagalog_sqlite", sqlite_tests, NULL, NULL);
  }
  if (pg_base()) {
    const struct CMUnitTest pg_tests[] = {
        BOTH(pg, setup_pg),
        cmocka_unit_test_setup_teardown(test_sagalog_pg_lease_takeover,
                                        setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_sagalog_pg_concurrent_claim,
                                        setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_sagalog_pg_reconnect, setup_pg,
                                        teardown),
        cmocka_unit_test(test_sagalog_pg_bad_connection),
    };
    rv |=
        cmocka_run_group_tests_name("sagalog_postgresql", pg_tests, NULL, NULL);
  } else if (pg_only) {
    fprintf(stderr, "test_sagalog --pg-only: BATON_TEST_PG is not set "
                    "(run it through tests/e2e/pg.sh run)\n");
    return 1;
  } else {
    printf("[  SKIPPED ] sagalog_postgresql: BATON_TEST_PG is not set (CTest "
           "runs them as unit.test_sagalog.pg)\n");
  }
  return rv;
}
