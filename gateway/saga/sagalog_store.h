/* sagalog_store.h (gateway/saga, private to sagalog*.c and its test): what the
 * saga log's common part (sagalog.c: queue, writer thread, completions,
 * views) shares with its two storage backends (sagalog_sqlite.c,
 * sagalog_pg.c).
 *
 * A backend holds two connections: one used only by the writer thread
 * (write_batch, renew_writer) and one for the blocking reads, which
 * sagalog.c serializes with a mutex. */
#ifndef GW_SAGALOG_STORE_H
#define GW_SAGALOG_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "sagalog.h"
#include "sagaview.h"

struct sagalog_att;

/* A queued record: gw_saga_record's fields copied into one allocation.
 * request and comp_request are NULL when the record had none (a STEP
 * without comp_request keeps the stored one); an empty but present blob is
 * a non-NULL pointer with length 0. */
typedef struct sagalog_rec {
  struct sagalog_rec *next;
  gw_record_kind kind;
  const char *saga_id;
  const char *flow; /* never NULL ("" when absent) */
  const char *step; /* never NULL */
  const uint8_t *request;
  size_t request_len;
  const uint8_t *comp_request;
  size_t comp_request_len;
  int step_index;
  int step_state;
  uint32_t attempts;
  int saga_state;
  /* completion, owned by sagalog.c */
  struct sagalog_att *att;
  gw_sagalog_done_fn fn;
  void *ud;
  int err;
} sagalog_rec;

/* Which sagas a read returns. */
typedef enum sagalog_filter {
  SAGALOG_ALL,       /* every saga */
  SAGALOG_STATE,     /* sagas in one state */
  SAGALOG_UNFINISHED /* RUNNING or COMPENSATING and owned by this owner */
} sagalog_filter;

typedef struct sagalog_config {
  const char *target; /* file path or connection string */
  const char *owner;
  uint32_t lease_ms;
} sagalog_config;

typedef struct sagalog_backend sagalog_backend;

typedef struct sagalog_backend_ops {
  /* Writes the list head in order in one transaction on the writer's
   * connection and commits it. 0, or < 0 after printing why to stderr. */
  int (*write_batch)(sagalog_backend *b, const sagalog_rec *head);
  /* Lease renewal on the writer's connection; NULL when the backend has no
   * leases (the writer then never wakes up for it). */
  int (*renew_writer)(sagalog_backend *b);
  /* The rest run on the read connection, one at a time. */
  int (*renew)(sagalog_backend *b);
  int (*read)(sagalog_backend *b, sagalog_filter filter, int state,
              sagalog_views *out);
  /* Takes the unfinished sagas (see gw_sagalog_claim_unfinished) for this
   * owner and renews their lease; a following read(SAGALOG_UNFINISHED)
   * returns them. Returns 0 or < 0. */
  int (*claim)(sagalog_backend *b);
  int (*retry)(sagalog_backend *b, const char *saga_id);
  void (*close)(sagalog_backend *b);
} sagalog_backend_ops;

/* Open a backend, both connections and the schema; NULL with a sentence in
 * err. */
sagalog_backend *gw_sagalog_sqlite_open(const sagalog_config *cfg,
                                        const sagalog_backend_ops **ops,
                                        char *err, size_t errlen);
sagalog_backend *gw_sagalog_pg_open(const sagalog_config *cfg,
                                    const sagalog_backend_ops **ops, char *err,
                                    size_t errlen);

/* Wall clock in ms since the epoch (created/updated columns, leases). */
static inline int64_t sagalog_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For tests: transactions the writer committed so far. */
uint64_t gw_sagalog_commit_count(gw_sagalog *log);

#endif
