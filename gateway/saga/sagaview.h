/* sagaview.h (gateway/saga, private): the rows both stores read (a saga
 * joined with its steps) and their folding into gw_saga_view calls. */
#ifndef GW_SAGAVIEW_H
#define GW_SAGAVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "sagalog.h"

/* One row of the "saga joined with its steps" queries, ordered by saga then
 * step index; pointers valid for the call only. Lengths are byte counts
 * (strings need not be NUL-terminated). */
typedef struct sagalog_row {
  const char *id;
  size_t id_len;
  const char *flow;
  size_t flow_len;
  const uint8_t *request; /* NULL: SQL NULL */
  size_t request_len;
  int64_t state;
  const char *owner;
  size_t owner_len;
  int64_t created_ms;
  int64_t updated_ms;
  int has_step; /* 0: a saga without steps (the LEFT JOIN's NULLs) */
  int64_t step_index;
  const char *step_name;
  size_t step_name_len;
  int64_t step_state;
  const uint8_t *comp_request; /* NULL: SQL NULL */
  size_t comp_request_len;
  int64_t attempts;
} sagalog_row;

/* Turns rows into gw_saga_view calls, one saga at a time (memory bounded by
 * one saga, whatever the table size). */
typedef struct sagalog_views {
  void (*fn)(const gw_saga_view *s, void *ud);
  void *ud;
  int count;
  int open; /* cur holds a saga not yet emitted */
  gw_saga_view cur;
  gw_saga_step_view *steps;
  size_t steps_cap;
} sagalog_views;

void gw_sagaview_init(sagalog_views *v,
                      void (*fn)(const gw_saga_view *s, void *ud), void *ud);
void gw_sagaview_row(sagalog_views *v, const sagalog_row *r);
/* Emits the last saga; returns the number of sagas emitted. */
int gw_sagaview_end(sagalog_views *v);
/* Frees what is held without emitting it (after an error). */
void gw_sagaview_clear(sagalog_views *v);

#endif
