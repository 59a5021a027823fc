/* sagalog_pg.c: the saga log in PostgreSQL (libpq), for several gateways in
 * front of the same services.
 *
 * The same tables as the SQLite backend. A batch is sent in libpq's pipeline
 * mode (BEGIN, every record, COMMIT, then one sync), so a batch of any size
 * costs one round trip and one commit. Leases: a saga belongs to the
 * gateway named in its owner column until lease_until; the writer thread
 * pushes lease_until forward for this gateway's unfinished sagas every
 * lease_ms / 3, so when a gateway dies its sagas' leases run out and
 * another gateway's claim (FOR UPDATE SKIP LOCKED: two claimers never take
 * the same saga) takes them over. Every time is the database server's
 * clock, so the gateways' clocks need not agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <baton/alloc.h>
#include <baton/error.h>

#include "sagalog_store.h"

/* Milliseconds since the epoch on the server's clock. */
#define NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

/* Prepared on the writer's connection. */
static const struct {
  const char *name;
  const char *sql;
  int n_params;
} writer_stmts[] = {
    {"bt_saga_start",
     "INSERT INTO sagas(id, flow, request, state, owner, lease_until, "
     "created_ms, updated_ms) VALUES($1, $2, $3, 0, $4, " NOW_MS
     " + $5::bigint, " NOW_MS ", " NOW_MS ") ON CONFLICT (id) DO NOTHING",
     5},
    /* The latest state of each step; a record without comp_request keeps
     * the one stored by an earlier record of that step. */
    {"bt_saga_step",
     "INSERT INTO saga_steps(saga_id, step_index, name, state, comp_request, "
     "attempts) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT (saga_id, "
     "step_index) DO UPDATE SET name = excluded.name, state = excluded.state, "
     "comp_request = coalesce(excluded.comp_request, saga_steps.comp_request), "
     "attempts = excluded.attempts",
     6},
    {"bt_saga_touch", "UPDATE sagas SET updated_ms = " NOW_MS " WHERE id = $1",
     1},
    {"bt_saga_state",
     "UPDATE sagas SET state = $2, updated_ms = " NOW_MS " WHERE id = $1", 2},
};

static const char renew_sql[] =
    "UPDATE sagas SET lease_until = " NOW_MS " + $2::bigint "
    "WHERE owner = $1 AND state IN (0, 1)";

/* Serialized by an advisory lock: CREATE ... IF NOT EXISTS is not safe
 * when two gateways start at once on an empty database. */
static const char schema_sql[] =
    "SET client_min_messages = warning;"
    "BEGIN;"
    "SELECT pg_advisory_xact_lock(7305514129);"
    "CREATE TABLE IF NOT EXISTS sagas("
    " id TEXT PRIMARY KEY, flow TEXT NOT NULL, request BYTEA,"
    " state INT NOT NULL, owner TEXT NOT NULL, lease_until BIGINT NOT NULL,"
    " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS saga_steps("
    " saga_id TEXT NOT NULL, step_index INT NOT NULL, name TEXT NOT NULL,"
    " state INT NOT NULL, comp_request BYTEA, attempts INT NOT NULL DEFAULT 0,"
    " PRIMARY KEY(saga_id, step_index));"
    "CREATE INDEX IF NOT EXISTS sagas_by_state ON sagas(state, created_ms);"
    "COMMIT;";

#define VIEW_COLUMNS                                                           \
  "SELECT s.id, s.flow, s.request, s.state, s.owner, s.created_ms,"            \
  " s.updated_ms, t.step_index, t.name, t.state, t.comp_request, t.attempts"   \
  " FROM sagas s LEFT JOIN saga_steps t ON t.saga_id = s.id "

static const char *const read_sql[] = {
    [SAGALOG_ALL] = VIEW_COLUMNS "ORDER BY s.created_ms, s.id, t.step_index",
    [SAGALOG_STATE] = VIEW_COLUMNS
    "WHERE s.state = $1::int ORDER BY s.created_ms, s.id, t.step_index",
    [SAGALOG_UNFINISHED] =
        VIEW_COLUMNS "WHERE s.state IN (0, 1) AND s.owner = $1 "
                     "ORDER BY s.created_ms, s.id, t.step_index",
};

struct sagalog_backend {
  char *conninfo;
  char *owner;
  char lease[24]; /* lease_ms as text, a query parameter */
  PGconn *w;      /* writer thread's connection */
  int w_prepared; /* writer_stmts are prepared on w */
  PGconn *r;      /* the reads' connection */
};

/* libpq's messages run over several lines ("...failed: ...\n\tIs the
 * server running...\n"); ours are one line each. */
static void one_line(char *buf, size_t size, const char *msg) {
  size_t n = 0;
  int space = 0;
  for (const char *p = msg; *p && n + 1 < size; p++) {
    if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
      space = n > 0;
      continue;
    }
    if (space && n + 2 < size)
      buf[n++] = ' ';
    space = 0;
    buf[n++] = *p;
  }
  buf[n] = 0;
}

static const char *pg_msg(PGconn *c) {
  static __thread char buf[512];
  one_line(buf, sizeof(buf), c ? PQerrorMessage(c) : "no connection");
  return buf;
}

/* A failed statement's message without its ERROR:/CONTEXT: decoration. */
static void result_msg(char *buf, size_t size, const PGresult *res) {
  const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  one_line(buf, size, m ? m : PQresultErrorMessage(res));
}

static void pg_close(sagalog_backend *b) {
  if (!b)
    return;
  if (b->w)
    PQfinish(b->w);
  if (b->r)
    PQfinish(b->r);
  bt_free(b->conninfo);
  bt_free(b->owner);
  bt_free(b);
}

static int prepare_writer(sagalog_backend *b) {
  for (size_t i = 0; i < sizeof(writer_stmts) / sizeof(writer_stmts[0]); i++) {
    PGresult *res = PQprepare(b->w, writer_stmts[i].name, writer_stmts[i].sql,
                              writer_stmts[i].n_params, NULL);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
      fprintf(stderr,
              "baton-gateway: saga log (PostgreSQL): cannot prepare "
              "a statement: %s\n",
              pg_msg(b->w));
      return -1;
    }
  }
  b->w_prepared = 1;
  return 0;
}

/* Named, so pg_stat_activity shows what the connections are (a name in
 * the connection string wins). */
static PGconn *connect_as(const sagalog_backend *b, const char *role) {
  char app[64];
  snprintf(app, sizeof(app), "baton-gateway saga log (%s)", role);
  const char *keys[] = {"dbname", "fallback_application_name", NULL};
  const char *vals[] = {b->conninfo, app, NULL};
  return PQconnectdbParams(keys, vals, 1);
}

/* A connection that is usable now, reconnecting after a failure. */
static int ensure_conn(sagalog_backend *b, PGconn **c) {
  if (*c && PQstatus(*c) == CONNECTION_OK)
    return 0;
  if (*c)
    PQreset(*c);
  else
    *c = connect_as(b, c == &b->w ? "writer" : "reads");
  if (PQstatus(*c) != CONNECTION_OK) {
    fprintf(stderr, "baton-gateway: saga log (PostgreSQL): %s\n", pg_msg(*c));
    return -1;
  }
  if (c == &b->w)
    b->w_prepared = 0;
  return 0;
}

static int exec_ok(PGconn *c, const char *sql) {
  PGresult *res = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(res);
  PQclear(res);
  return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
}

static const sagalog_backend_ops pg_ops;

sagalog_backend *gw_sagalog_pg_open(const sagalog_config *cfg,
                                    const sagalog_backend_ops **ops, char *err,
                                    size_t errlen) {
  sagalog_backend *b = bt_calloc(1, sizeof(*b));
  b->conninfo = bt_strdup(cfg->target);
  b->owner = bt_strdup(cfg->owner);
  snprintf(b->lease, sizeof(b->lease), "%u", (unsigned)cfg->lease_ms);

  /* The connection string may hold a password: it is never printed. */
  b->w = connect_as(b, "writer");
  if (PQstatus(b->w) != CONNECTION_OK) {
    snprintf(err, errlen, "saga log (PostgreSQL): cannot connect: %s",
             pg_msg(b->w));
    goto fail;
  }
  if (exec_ok(b->w, schema_sql) < 0) {
    snprintf(err, errlen, "saga log (PostgreSQL): cannot create the tables: %s",
             pg_msg(b->w));
    goto fail;
  }
  if (prepare_writer(b) < 0) {
    snprintf(err, errlen, "saga log (PostgreSQL): unexpected tables: %s",
             pg_msg(b->w));
    goto fail;
  }
  b->r = connect_as(b, "reads");
  if (PQstatus(b->r) != CONNECTION_OK) {
    snprintf(err, errlen, "saga log (PostgreSQL): cannot connect: %s",
             pg_msg(b->r));
    goto fail;
  }
  *ops = &pg_ops;
  return b;

fail:
  pg_close(b);
  return NULL;
}

/* ---- writing ------------------------------------------------------------ */

static int send_rec(sagalog_backend *b, const sagalog_rec *r) {
  char idx[16], state[16], attempts[16];
  /* Text parameters, except the blobs (binary: no escaping, any bytes). */
  const char *v[6];
  int len[6] = {0};
  int fmt[6] = {0};
  switch (r->kind) {
  case GW_REC_SAGA_START:
    v[0] = r->saga_id;
    v[1] = r->flow;
    v[2] = r->request ? (const char *)r->request : NULL;
    len[2] = (int)r->request_len;
    fmt[2] = 1;
    if (r->request && r->request_len == 0)
      v[2] = ""; /* an empty bytea, not NULL */
    v[3] = b->owner;
    v[4] = b->lease;
    return PQsendQueryPrepared(b->w, "bt_saga_start", 5, v, len, fmt, 0);
  case GW_REC_STEP:
    snprintf(idx, sizeof(idx), "%d", r->step_index);
    snprintf(state, sizeof(state), "%d", r->step_state);
    snprintf(attempts, sizeof(attempts), "%u", (unsigned)r->attempts);
    v[0] = r->saga_id;
    v[1] = idx;
    v[2] = r->step;
    v[3] = state;
    v[4] = r->comp_request ? (const char *)r->comp_request : NULL;
    if (r->comp_request && r->comp_request_len == 0)
      v[4] = "";
    len[4] = (int)r->comp_request_len;
    fmt[4] = 1;
    v[5] = attempts;
    if (!PQsendQueryPrepared(b->w, "bt_saga_step", 6, v, len, fmt, 0))
      return 0;
    v[0] = r->saga_id;
    return PQsendQueryPrepared(b->w, "bt_saga_touch", 1, v, NULL, NULL, 0);
  case GW_REC_SAGA_STATE:
    snprintf(state, sizeof(state), "%d", r->saga_state);
    v[0] = r->saga_id;
    v[1] = state;
    return PQsendQueryPrepared(b->w, "bt_saga_state", 2, v, NULL, NULL, 0);
  }
  return 0;
}

/* Reads the pipeline's results up to its sync; returns 0 when every
 * statement succeeded. The first error goes to err. */
static int drain_pipeline(PGconn *c, char *err, size_t errlen) {
  int failed = 0, nulls = 0;
  for (;;) {
    PGresult *res = PQgetResult(c);
    if (!res) {
      /* One NULL ends each statement's results; two in a row mean nothing
       * more will come (a broken connection). */
      if (++nulls > 1 || PQstatus(c) == CONNECTION_BAD) {
        if (!failed)
          snprintf(err, errlen, "%s", pg_msg(c));
        return -1;
      }
      continue;
    }
    nulls = 0;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(res);
      return failed ? -1 : 0;
    }
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      if (!failed && st != PGRES_PIPELINE_ABORTED) {
        result_msg(err, errlen, res);
        failed = 1;
      } else if (!failed) {
        failed = 1;
        snprintf(err, errlen, "pipeline aborted");
      }
    }
    PQclear(res);
  }
}

/* One attempt: 0, -1 (the database refused), or -2 (the connection was
 * lost, or could not be made). */
static int write_once(sagalog_backend *b, const sagalog_rec *head, char *err,
                      size_t errlen) {
  if (ensure_conn(b, &b->w) < 0) {
    snprintf(err, errlen, "%s", pg_msg(b->w));
    return -2;
  }
  if (!b->w_prepared && prepare_writer(b) < 0) {
    snprintf(err, errlen, "%s", pg_msg(b->w));
    return PQstatus(b->w) == CONNECTION_BAD ? -2 : -1;
  }
  if (!PQenterPipelineMode(b->w)) {
    snprintf(err, errlen, "%s", pg_msg(b->w));
    return -1;
  }
  int sent = PQsendQueryParams(b->w, "BEGIN", 0, NULL, NULL, NULL, NULL, 0);
  for (const sagalog_rec *r = head; r && sent; r = r->next)
    sent = send_rec(b, r);
  if (sent)
    sent = PQsendQueryParams(b->w, "COMMIT", 0, NULL, NULL, NULL, NULL, 0);
  int rv = -1;
  if (PQpipelineSync(b->w))
    rv = drain_pipeline(b->w, err, errlen);
  if (!sent && !err[0])
    snprintf(err, errlen, "%s", pg_msg(b->w));
  int lost = PQstatus(b->w) == CONNECTION_BAD;
  if (!PQexitPipelineMode(b->w)) {
    /* Results we could not read: start over on a fresh connection. */
    PQreset(b->w);
    b->w_prepared = 0;
    rv = -1;
  }
  if (rv == 0 && sent)
    return 0;
  /* An error inside BEGIN leaves the transaction aborted, not ended. */
  if (PQstatus(b->w) == CONNECTION_OK &&
      PQtransactionStatus(b->w) != PQTRANS_IDLE)
    exec_ok(b->w, "ROLLBACK");
  return lost ? -2 : -1;
}

static int pg_write_batch(sagalog_backend *b, const sagalog_rec *head) {
  char err[512] = "";
  size_t n = 0;
  for (const sagalog_rec *r = head; r; r = r->next)
    n++;
  int rv = write_once(b, head, err, sizeof(err));
  if (rv == -2) {
    /* A server restart or failover. Every statement is idempotent (insert
     * or ignore, upserts, updates to given values) and no later batch was
     * written, so sending the batch again on a new connection is right
     * whether or not its COMMIT got through. */
    fprintf(stderr,
            "baton-gateway: saga log (PostgreSQL): connection lost (%s); "
            "reconnecting\n",
            err);
    err[0] = 0;
    rv = write_once(b, head, err, sizeof(err));
  }
  if (rv == 0)
    return 0;
  fprintf(stderr,
          "baton-gateway: saga log (PostgreSQL): cannot write %zu records: "
          "%s\n",
          n, err);
  return BT_ERR_IO;
}

/* ---- leases ------------------------------------------------------------- */

/* Runs sql with text parameters; returns the rows it changed or < 0. */
static int exec_params(PGconn *c, const char *sql, int n,
                       const char *const *v) {
  PGresult *res = PQexecParams(c, sql, n, NULL, v, NULL, NULL, 0);
  ExecStatusType st = PQresultStatus(res);
  int rv;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    const char *t = PQcmdTuples(res);
    rv = st == PGRES_TUPLES_OK ? PQntuples(res) : t[0] ? atoi(t) : 0;
  } else {
    fprintf(stderr, "baton-gateway: saga log (PostgreSQL): %s\n", pg_msg(c));
    rv = BT_ERR_IO;
  }
  PQclear(res);
  return rv;
}

/* Runs op on the reads' connection, once more on a new connection when
 * the first attempt found it lost (a server restart). */
static int on_reads(sagalog_backend *b, int (*op)(sagalog_backend *b)) {
  int rv = ensure_conn(b, &b->r) < 0 ? BT_ERR_IO : op(b);
  if (rv < 0 && PQstatus(b->r) == CONNECTION_BAD)
    rv = ensure_conn(b, &b->r) < 0 ? BT_ERR_IO : op(b);
  return rv;
}

static int renew_on(sagalog_backend *b, PGconn **c) {
  if (ensure_conn(b, c) < 0)
    return BT_ERR_IO;
  const char *v[2] = {b->owner, b->lease};
  int rv = exec_params(*c, renew_sql, 2, v);
  return rv < 0 ? rv : 0;
}

static int pg_renew_writer(sagalog_backend *b) {
  return renew_on(b, &b->w);
}

static int renew_reads(sagalog_backend *b) {
  return renew_on(b, &b->r);
}

static int pg_renew(sagalog_backend *b) {
  return on_reads(b, renew_reads);
}

/* This gateway's unfinished sagas and those whose owner let the lease run
 * out. A row another claimer has locked is skipped (it is being taken);
 * one it took and committed no longer matches (fresh lease). */
static int claim_once(sagalog_backend *b) {
  const char *v[2] = {b->owner, b->lease};
  int rv = exec_params(
      b->r,
      "UPDATE sagas SET owner = $1, lease_until = " NOW_MS " + $2::bigint "
      "WHERE id IN (SELECT id FROM sagas WHERE state IN (0, 1) AND "
      "(owner = $1 OR lease_until < " NOW_MS ") FOR UPDATE SKIP LOCKED)",
      2, v);
  return rv < 0 ? rv : 0;
}

static int pg_claim(sagalog_backend *b) {
  return on_reads(b, claim_once);
}

static int retry_once(sagalog_backend *b, const char *saga_id) {
  if (exec_ok(b->r, "BEGIN") < 0)
    return BT_ERR_IO;
  const char *v[3] = {b->owner, b->lease, saga_id};
  int rv = exec_params(
      b->r,
      "UPDATE sagas SET state = 1, owner = $1, lease_until = " NOW_MS
      " + $2::bigint, updated_ms = " NOW_MS " WHERE id = $3 AND state = 4",
      3, v);
  if (rv == 0) {
    rv = exec_params(b->r, "SELECT 1 FROM sagas WHERE id = $1", 1, &v[2]);
    if (rv >= 0)
      rv = rv ? BT_ERR_STATE : BT_ERR_NOTFOUND;
  } else if (rv > 0) {
    /* Failed compensations start over: back to COMMITTED, no attempts. */
    rv = exec_params(b->r,
                     "UPDATE saga_steps SET state = 1, attempts = 0 "
                     "WHERE saga_id = $1 AND state = 4",
                     1, &v[2]);
    if (rv >= 0 && exec_ok(b->r, "COMMIT") == 0)
      return 0;
    if (rv >= 0)
      rv = BT_ERR_IO;
  }
  exec_ok(b->r, "ROLLBACK");
  return rv;
}

static int pg_retry(sagalog_backend *b, const char *saga_id) {
  int rv = ensure_conn(b, &b->r) < 0 ? BT_ERR_IO : retry_once(b, saga_id);
  if (rv < 0 && PQstatus(b->r) == CONNECTION_BAD)
    rv = ensure_conn(b, &b->r) < 0 ? BT_ERR_IO : retry_once(b, saga_id);
  return rv;
}

/* ---- reading ------------------------------------------------------------ */

/* Binary result columns: int4/int8 in network order, text and bytea as raw
 * bytes. Lengths are checked, so a surprising column type reads as 0. */
static int64_t col_int(const PGresult *res, int col) {
  const unsigned char *p = (const unsigned char *)PQgetvalue(res, 0, col);
  int len = PQgetlength(res, 0, col);
  if (PQgetisnull(res, 0, col) || (len != 4 && len != 8))
    return 0;
  uint64_t x = 0;
  for (int i = 0; i < len; i++)
    x = x << 8 | p[i];
  return len == 4 ? (int64_t)(int32_t)(uint32_t)x : (int64_t)x;
}

static const char *col_bytes(const PGresult *res, int col, size_t *len) {
  if (PQgetisnull(res, 0, col)) {
    *len = 0;
    return NULL;
  }
  *len = (size_t)PQgetlength(res, 0, col);
  return PQgetvalue(res, 0, col);
}

static int read_once(sagalog_backend *b, sagalog_filter filter, int state,
                     sagalog_views *out) {
  char st[16];
  const char *v[1] = {NULL};
  int n = 0;
  if (filter == SAGALOG_STATE) {
    snprintf(st, sizeof(st), "%d", state);
    v[0] = st;
    n = 1;
  } else if (filter == SAGALOG_UNFINISHED) {
    v[0] = b->owner;
    n = 1;
  }
  /* Row by row, so listing a large table does not hold it in memory. */
  if (!PQsendQueryParams(b->r, read_sql[filter], n, NULL, v, NULL, NULL, 1) ||
      !PQsetSingleRowMode(b->r)) {
    fprintf(stderr, "baton-gateway: saga log (PostgreSQL): cannot read: %s\n",
            pg_msg(b->r));
    PGresult *res;
    while ((res = PQgetResult(b->r)))
      PQclear(res);
    return BT_ERR_IO;
  }
  int rv = 0;
  PGresult *res;
  while ((res = PQgetResult(b->r))) {
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_SINGLE_TUPLE && PQnfields(res) == 12) {
      sagalog_row row = {0};
      size_t len;
      row.id = col_bytes(res, 0, &row.id_len);
      row.flow = col_bytes(res, 1, &row.flow_len);
      row.request = (const uint8_t *)col_bytes(res, 2, &len);
      row.request_len = len;
      row.state = col_int(res, 3);
      row.owner = col_bytes(res, 4, &row.owner_len);
      row.created_ms = col_int(res, 5);
      row.updated_ms = col_int(res, 6);
      row.has_step = !PQgetisnull(res, 0, 7);
      if (row.has_step) {
        row.step_index = col_int(res, 7);
        row.step_name = col_bytes(res, 8, &row.step_name_len);
        row.step_state = col_int(res, 9);
        row.comp_request = (const uint8_t *)col_bytes(res, 10, &len);
        row.comp_request_len = len;
        row.attempts = col_int(res, 11);
      }
      if (row.id)
        gw_sagaview_row(out, &row);
    } else if (s != PGRES_TUPLES_OK && rv == 0) {
      char msg[256];
      result_msg(msg, sizeof(msg), res);
      fprintf(stderr, "baton-gateway: saga log (PostgreSQL): cannot read: %s\n",
              msg);
      rv = BT_ERR_IO;
    }
    PQclear(res);
  }
  return rv;
}

static int pg_read(sagalog_backend *b, sagalog_filter filter, int state,
                   sagalog_views *out) {
  int rv =
      ensure_conn(b, &b->r) < 0 ? BT_ERR_IO : read_once(b, filter, state, out);
  /* Again only if nothing was handed out yet: fn sees each saga once. */
  if (rv < 0 && PQstatus(b->r) == CONNECTION_BAD && out->count == 0 &&
      !out->open)
    rv = ensure_conn(b, &b->r) < 0 ? BT_ERR_IO
                                   : read_once(b, filter, state, out);
  return rv;
}

static const sagalog_backend_ops pg_ops = {
    .write_batch = pg_write_batch,
    .renew_writer = pg_renew_writer,
    .renew = pg_renew,
    .read = pg_read,
    .claim = pg_claim,
    .retry = pg_retry,
    .close = pg_close,
};
