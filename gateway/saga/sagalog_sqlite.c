/* sagalog_sqlite.c: the saga log in an SQLite file (the embedded default).
 *
 * WAL mode with synchronous=FULL: a commit appends the transaction's pages
 * to the -wal file and fsyncs it, so a committed batch survives a crash, and
 * readers (the blocking reads' connection) never wait for the writer. A
 * torn last WAL frame (a crash in the middle of a commit) fails its
 * checksum and SQLite's recovery drops that one transaction; a damaged
 * database file is caught by PRAGMA quick_check at open and reported with
 * the file's name. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include <baton/alloc.h>
#include <baton/error.h>

#include "sagalog_store.h"

/* Bumped when the tables change shape; a newer file is refused. */
#define SAGALOG_SQLITE_VERSION 1

enum {
  ST_BEGIN,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_START,
  ST_STEP,
  ST_TOUCH,
  ST_STATE,
  ST_COUNT
};

static const char *const writer_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_START] =
        "INSERT INTO sagas(id, flow, request, state, owner, lease_until, "
        "created_ms, updated_ms) VALUES(?1, ?2, ?3, 0, ?4, ?5, ?6, ?6) "
        "ON CONFLICT(id) DO NOTHING",
    /* The latest state of each step; a record without comp_request keeps
     * the one stored by an earlier record of that step. */
    [ST_STEP] =
        "INSERT INTO saga_steps(saga_id, step_index, name, state, "
        "comp_request, attempts) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
        "ON CONFLICT(saga_id, step_index) DO UPDATE SET name = excluded.name, "
        "state = excluded.state, comp_request = "
        "coalesce(excluded.comp_request, "
        "saga_steps.comp_request), attempts = excluded.attempts",
    [ST_TOUCH] = "UPDATE sagas SET updated_ms = ?2 WHERE id = ?1",
    [ST_STATE] = "UPDATE sagas SET state = ?2, updated_ms = ?3 WHERE id = ?1",
};

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS sagas("
    " id TEXT PRIMARY KEY, flow TEXT NOT NULL, request BLOB,"
    " state INTEGER NOT NULL, owner TEXT NOT NULL,"
    " lease_until INTEGER NOT NULL, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS saga_steps("
    " saga_id TEXT NOT NULL, step_index INTEGER NOT NULL, name TEXT NOT NULL,"
    " state INTEGER NOT NULL, comp_request BLOB,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " PRIMARY KEY(saga_id, step_index));"
    /* Listing by state and finding the unfinished ones. */
    "CREATE INDEX IF NOT EXISTS sagas_by_state ON sagas(state, created_ms);";

#define VIEW_COLUMNS                                                           \
  "SELECT s.id, s.flow, s.request, s.state, s.owner, s.created_ms,"            \
  " s.updated_ms, t.step_index, t.name, t.state, t.comp_request, t.attempts"   \
  " FROM sagas s LEFT JOIN saga_steps t ON t.saga_id = s.id "

static const char *const read_sql[] = {
    [SAGALOG_ALL] = VIEW_COLUMNS "ORDER BY s.created_ms, s.id, t.step_index",
    [SAGALOG_STATE] = VIEW_COLUMNS
    "WHERE s.state = ?1 ORDER BY s.created_ms, s.id, t.step_index",
    [SAGALOG_UNFINISHED] =
        VIEW_COLUMNS "WHERE s.state IN (0, 1) AND s.owner = ?1 "
                     "ORDER BY s.created_ms, s.id, t.step_index",
};

struct sagalog_backend {
  char *path;
  char *owner;
  uint32_t lease_ms;
  sqlite3 *w; /* writer thread's connection */
  sqlite3 *r; /* the reads' connection */
  sqlite3_stmt *st[ST_COUNT];
};

static void close_db(sqlite3 *db) {
  if (db)
    sqlite3_close_v2(db);
}

static void sqlite_close(sagalog_backend *b) {
  if (!b)
    return;
  for (int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(b->st[i]);
  close_db(b->w);
  close_db(b->r);
  bt_free(b->path);
  bt_free(b->owner);
  bt_free(b);
}

/* Runs sql; on failure writes "saga log PATH: WHAT: reason" to err. */
static int exec_or_err(sqlite3 *db, const char *path, const char *sql,
                       const char *what, char *err, size_t errlen) {
  char *msg = NULL;
  int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "saga log %s: %s: %s", path, what,
             msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return -1;
  }
  return 0;
}

/* A connection with the settings every use needs. */
static sqlite3 *open_conn(const char *path, char *err, size_t errlen) {
  sqlite3 *db = NULL;
  int rc = sqlite3_open_v2(
      path, &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    snprintf(err, errlen, "saga log %s: cannot open: %s", path,
             db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    close_db(db);
    return NULL;
  }
  sqlite3_extended_result_codes(db, 1);
  /* The writer and the reads' connection (and a sagas command in another
   * process) wait for each other's short transactions. */
  sqlite3_busy_timeout(db, 5000);
  return db;
}

/* PRAGMA quick_check: "ok", or the first problem found. SQLite's own error
 * (not a database, corrupt header) also lands here. */
static int check_file(sqlite3 *db, const char *path, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) {
    snprintf(err, errlen,
             "saga log %s is not a usable SQLite database (%s); move it "
             "away or restore it from a backup",
             path, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return -1;
  }
  const unsigned char *first = sqlite3_column_text(st, 0);
  if (!first || strcmp((const char *)first, "ok") != 0) {
    /* The report can run to many lines: keep the start, on one line. */
    char what[160];
    snprintf(what, sizeof(what), "%s",
             first ? (const char *)first : "no answer");
    for (char *p = what; *p; p++)
      if (*p == '\n' || *p == '\r')
        *p = ' ';
    snprintf(err, errlen,
             "saga log %s is corrupt (integrity check: %s); move it away or "
             "restore it from a backup",
             path, what);
    sqlite3_finalize(st);
    return -1;
  }
  sqlite3_finalize(st);
  return 0;
}

static int pragma_int(sqlite3 *db, const char *sql, int *out) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
    *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return 0;
  }
  sqlite3_finalize(st);
  return -1;
}

static int set_wal(sqlite3 *db, const char *path, char *err, size_t errlen) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_step(st);
  const unsigned char *mode =
      rc == SQLITE_ROW ? sqlite3_column_text(st, 0) : NULL;
  if (!mode || strcmp((const char *)mode, "wal") != 0) {
    snprintf(err, errlen, "saga log %s: cannot switch to WAL mode: %s", path,
             mode ? (const char *)mode : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return -1;
  }
  sqlite3_finalize(st);
  return 0;
}

static const sagalog_backend_ops sqlite_ops;

sagalog_backend *gw_sagalog_sqlite_open(const sagalog_config *cfg,
                                        const sagalog_backend_ops **ops,
                                        char *err, size_t errlen) {
  sagalog_backend *b = bt_calloc(1, sizeof(*b));
  b->path = bt_strdup(cfg->target);
  b->owner = bt_strdup(cfg->owner);
  b->lease_ms = cfg->lease_ms;
  const char *path = b->path;
  int version = 0;

  b->w = open_conn(path, err, errlen);
  if (!b->w)
    goto fail;
  /* Checked before anything writes: a damaged file is refused as it is.
   * Opening also replays a -wal file left by a crash. */
  if (check_file(b->w, path, err, errlen) < 0 ||
      set_wal(b->w, path, err, errlen) < 0 ||
      exec_or_err(b->w, path, "PRAGMA synchronous=FULL", "cannot set up", err,
                  errlen) < 0)
    goto fail;
  if (pragma_int(b->w, "PRAGMA user_version", &version) < 0) {
    snprintf(err, errlen, "saga log %s: cannot read the schema version: %s",
             path, sqlite3_errmsg(b->w));
    goto fail;
  }
  if (version > SAGALOG_SQLITE_VERSION) {
    snprintf(err, errlen,
             "saga log %s has schema version %d; this gateway knows up to %d",
             path, version, SAGALOG_SQLITE_VERSION);
    goto fail;
  }
  if (exec_or_err(b->w, path, "BEGIN IMMEDIATE", "cannot create the tables",
                  err, errlen) < 0)
    goto fail;
  if (exec_or_err(b->w, path, schema_sql, "cannot create the tables", err,
                  errlen) < 0 ||
      exec_or_err(b->w, path, "PRAGMA user_version=1",
                  "cannot create the tables", err, errlen) < 0 ||
      exec_or_err(b->w, path, "COMMIT", "cannot create the tables", err,
                  errlen) < 0) {
    sqlite3_exec(b->w, "ROLLBACK", NULL, NULL, NULL);
    goto fail;
  }
  for (int i = 0; i < ST_COUNT; i++) {
    if (sqlite3_prepare_v3(b->w, writer_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                           &b->st[i], NULL) != SQLITE_OK) {
      snprintf(err, errlen, "saga log %s: unexpected tables: %s", path,
               sqlite3_errmsg(b->w));
      goto fail;
    }
  }

  b->r = open_conn(path, err, errlen);
  if (!b->r || exec_or_err(b->r, path, "PRAGMA synchronous=FULL",
                           "cannot set up", err, errlen) < 0)
    goto fail;
  *ops = &sqlite_ops;
  return b;

fail:
  sqlite_close(b);
  return NULL;
}

/* ---- writing ------------------------------------------------------------ */

static int bind_blob(sqlite3_stmt *st, int i, const uint8_t *p, size_t len) {
  if (!p)
    return sqlite3_bind_null(st, i);
  if (len == 0)
    return sqlite3_bind_zeroblob(st, i, 0);
  return sqlite3_bind_blob64(st, i, p, len, SQLITE_STATIC);
}

static int run(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_rec(sagalog_backend *b, const sagalog_rec *r, int64_t now) {
  sqlite3_stmt *st;
  int rc;
  switch (r->kind) {
  case GW_REC_SAGA_START:
    st = b->st[ST_START];
    sqlite3_bind_text(st, 1, r->saga_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->flow, -1, SQLITE_STATIC);
    bind_blob(st, 3, r->request, r->request_len);
    sqlite3_bind_text(st, 4, b->owner, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now + b->lease_ms);
    sqlite3_bind_int64(st, 6, now);
    return run(st);
  case GW_REC_STEP:
    st = b->st[ST_STEP];
    sqlite3_bind_text(st, 1, r->saga_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, r->step_index);
    sqlite3_bind_text(st, 3, r->step, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, r->step_state);
    bind_blob(st, 5, r->comp_request, r->comp_request_len);
    sqlite3_bind_int64(st, 6, r->attempts);
    rc = run(st);
    if (rc != SQLITE_OK)
      return rc;
    st = b->st[ST_TOUCH];
    sqlite3_bind_text(st, 1, r->saga_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    return run(st);
  case GW_REC_SAGA_STATE:
    st = b->st[ST_STATE];
    sqlite3_bind_text(st, 1, r->saga_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, r->saga_state);
    sqlite3_bind_int64(st, 3, now);
    return run(st);
  }
  return SQLITE_MISUSE;
}

static int sqlite_write_batch(sagalog_backend *b, const sagalog_rec *head) {
  int64_t now = sagalog_wall_ms();
  size_t n = 0;
  for (const sagalog_rec *r = head; r; r = r->next)
    n++;
  int rc = run(b->st[ST_BEGIN]);
  for (const sagalog_rec *r = head; r && rc == SQLITE_OK; r = r->next)
    rc = write_rec(b, r, now);
  if (rc == SQLITE_OK)
    rc = run(b->st[ST_COMMIT]);
  if (rc == SQLITE_OK)
    return 0;
  fprintf(stderr, "baton-gateway: saga log %s: cannot write %zu records: %s\n",
          b->path, n, sqlite3_errmsg(b->w));
  if (!sqlite3_get_autocommit(b->w))
    run(b->st[ST_ROLLBACK]);
  return BT_ERR_IO;
}

/* ---- reading ------------------------------------------------------------ */

static int sqlite_read(sagalog_backend *b, sagalog_filter filter, int state,
                       sagalog_views *out) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(b->r, read_sql[filter], -1, &st, NULL) != SQLITE_OK) {
    fprintf(stderr, "baton-gateway: saga log %s: cannot read: %s\n", b->path,
            sqlite3_errmsg(b->r));
    return BT_ERR_IO;
  }
  if (filter == SAGALOG_STATE)
    sqlite3_bind_int(st, 1, state);
  else if (filter == SAGALOG_UNFINISHED)
    sqlite3_bind_text(st, 1, b->owner, -1, SQLITE_STATIC);
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    sagalog_row row = {0};
    /* Text first, then its length (SQLite's documented order). */
    row.id = (const char *)sqlite3_column_text(st, 0);
    row.id_len = (size_t)sqlite3_column_bytes(st, 0);
    row.flow = (const char *)sqlite3_column_text(st, 1);
    row.flow_len = (size_t)sqlite3_column_bytes(st, 1);
    if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
      row.request = sqlite3_column_blob(st, 2);
      row.request_len = (size_t)sqlite3_column_bytes(st, 2);
      if (!row.request)
        row.request = (const uint8_t *)""; /* an empty blob */
    }
    row.state = sqlite3_column_int64(st, 3);
    row.owner = (const char *)sqlite3_column_text(st, 4);
    row.owner_len = (size_t)sqlite3_column_bytes(st, 4);
    row.created_ms = sqlite3_column_int64(st, 5);
    row.updated_ms = sqlite3_column_int64(st, 6);
    row.has_step = sqlite3_column_type(st, 7) != SQLITE_NULL;
    if (row.has_step) {
      row.step_index = sqlite3_column_int64(st, 7);
      row.step_name = (const char *)sqlite3_column_text(st, 8);
      row.step_name_len = (size_t)sqlite3_column_bytes(st, 8);
      row.step_state = sqlite3_column_int64(st, 9);
      if (sqlite3_column_type(st, 10) != SQLITE_NULL) {
        row.comp_request = sqlite3_column_blob(st, 10);
        row.comp_request_len = (size_t)sqlite3_column_bytes(st, 10);
        if (!row.comp_request)
          row.comp_request = (const uint8_t *)"";
      }
      row.attempts = sqlite3_column_int64(st, 11);
    }
    if (!row.id)
      continue; /* a NULL id cannot come from us; skip it */
    gw_sagaview_row(out, &row);
  }
  if (rc != SQLITE_DONE) {
    fprintf(stderr, "baton-gateway: saga log %s: cannot read: %s\n", b->path,
            sqlite3_errmsg(b->r));
    sqlite3_finalize(st);
    return BT_ERR_IO;
  }
  sqlite3_finalize(st);
  return 0;
}

/* Runs a one-shot statement on the reads' connection. types holds one
 * letter per parameter: 't' a const char *, 'i' an int64_t. Returns the
 * number of rows changed, 1 when it produced a row, or < 0. */
static int exec_params(sagalog_backend *b, const char *sql, const char *types,
                       ...) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(b->r, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
      if (types[i] == 't')
        sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1,
                          SQLITE_TRANSIENT);
      else
        sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    rc = sqlite3_step(st);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    fprintf(stderr, "baton-gateway: saga log %s: %s\n", b->path,
            sqlite3_errmsg(b->r));
    return BT_ERR_IO;
  }
  return rc == SQLITE_ROW ? 1 : sqlite3_changes(b->r);
}

/* One file, one gateway: every unfinished saga in it is this gateway's. */
static int sqlite_claim(sagalog_backend *b) {
  int rv = exec_params(b,
                       "UPDATE sagas SET owner = ?1, lease_until = ?2 "
                       "WHERE state IN (0, 1)",
                       "ti", b->owner, sagalog_wall_ms() + b->lease_ms);
  return rv < 0 ? rv : 0;
}

static int sqlite_renew(sagalog_backend *b) {
  return 0;
}

static int sqlite_retry(sagalog_backend *b, const char *saga_id) {
  int64_t now = sagalog_wall_ms();
  int rv = exec_params(b, "BEGIN IMMEDIATE", "");
  if (rv < 0)
    return rv;
  rv = exec_params(b,
                   "UPDATE sagas SET state = 1, owner = ?1, lease_until = ?2, "
                   "updated_ms = ?3 WHERE id = ?4 AND state = 4",
                   "tiit", b->owner, now + b->lease_ms, now, saga_id);
  if (rv == 0) {
    rv = exec_params(b, "SELECT 1 FROM sagas WHERE id = ?1", "t", saga_id);
    if (rv >= 0)
      rv = rv ? BT_ERR_STATE : BT_ERR_NOTFOUND;
  } else if (rv > 0) {
    /* Failed compensations start over: back to COMMITTED, no attempts. */
    rv = exec_params(b,
                     "UPDATE saga_steps SET state = 1, attempts = 0 "
                     "WHERE saga_id = ?1 AND state = 4",
                     "t", saga_id);
    if (rv >= 0)
      rv = exec_params(b, "COMMIT", "");
    if (rv >= 0)
      return 0;
  }
  exec_params(b, "ROLLBACK", "");
  return rv;
}

static const sagalog_backend_ops sqlite_ops = {
    .write_batch = sqlite_write_batch,
    .renew_writer = NULL,
    .renew = sqlite_renew,
    .read = sqlite_read,
    .claim = sqlite_claim,
    .retry = sqlite_retry,
    .close = sqlite_close,
};
