/* sagaview.c: folds the rows of a store's "saga joined with its steps"
 * query into one gw_saga_view per saga (shared by the SQLite and PostgreSQL
 * stores). */
#include "sagaview.h"

#include <string.h>

#include <baton/alloc.h>

void gw_sagaview_init(sagalog_views *v,
                      void (*fn)(const gw_saga_view *s, void *ud), void *ud) {
  memset(v, 0, sizeof(*v));
  v->fn = fn;
  v->ud = ud;
}

/* A copy of a blob that stays non-NULL when empty, so "present but empty"
 * and "absent" stay apart. */
static uint8_t *blob_dup(const uint8_t *p, size_t len) {
  if (!p)
    return NULL;
  uint8_t *c = bt_malloc(len ? len : 1);
  if (len)
    memcpy(c, p, len);
  return c;
}

static char *str_dup(const char *s, size_t len) {
  return bt_strndup(s ? s : "", s ? len : 0);
}

static void views_drop_cur(sagalog_views *v) {
  if (!v->open)
    return;
  bt_free((char *)v->cur.saga_id);
  bt_free((char *)v->cur.flow);
  bt_free((uint8_t *)v->cur.request);
  bt_free((char *)v->cur.owner);
  for (size_t i = 0; i < v->cur.n_steps; i++) {
    bt_free((char *)v->steps[i].name);
    bt_free((uint8_t *)v->steps[i].comp_request);
  }
  memset(&v->cur, 0, sizeof(v->cur));
  v->open = 0;
}

static void views_emit(sagalog_views *v) {
  if (!v->open)
    return;
  v->cur.steps = v->cur.n_steps ? v->steps : NULL;
  if (v->fn)
    v->fn(&v->cur, v->ud);
  v->count++;
  views_drop_cur(v);
}

static uint32_t clamp_u32(int64_t x) {
  return x < 0 ? 0 : x > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)x;
}

static int clamp_int(int64_t x) {
  return x < -1000000 ? -1000000 : x > 1000000 ? 1000000 : (int)x;
}

void gw_sagaview_row(sagalog_views *v, const sagalog_row *r) {
  size_t cur_len = v->open ? strlen(v->cur.saga_id) : 0;
  if (!v->open || cur_len != r->id_len ||
      memcmp(v->cur.saga_id, r->id, r->id_len) != 0) {
    views_emit(v);
    v->open = 1;
    v->cur.saga_id = str_dup(r->id, r->id_len);
    v->cur.flow = str_dup(r->flow, r->flow_len);
    v->cur.request = blob_dup(r->request, r->request_len);
    v->cur.request_len = r->request ? r->request_len : 0;
    /* Whatever an edited table holds must not become an out-of-range
     * enum the engine indexes with. */
    v->cur.state = (gw_saga_state)clamp_int(r->state);
    v->cur.owner = str_dup(r->owner, r->owner_len);
    v->cur.created_ms = r->created_ms;
    v->cur.updated_ms = r->updated_ms;
  }
  if (!r->has_step)
    return;
  if (v->cur.n_steps == v->steps_cap) {
    v->steps_cap = v->steps_cap ? v->steps_cap * 2 : 8;
    v->steps = bt_realloc(v->steps, v->steps_cap * sizeof(*v->steps));
  }
  gw_saga_step_view *st = &v->steps[v->cur.n_steps++];
  st->name = str_dup(r->step_name, r->step_name_len);
  st->index = clamp_int(r->step_index);
  st->state = (gw_step_state)clamp_int(r->step_state);
  st->comp_request = blob_dup(r->comp_request, r->comp_request_len);
  st->comp_request_len = r->comp_request ? r->comp_request_len : 0;
  st->attempts = clamp_u32(r->attempts);
}

int gw_sagaview_end(sagalog_views *v) {
  views_emit(v);
  int n = v->count;
  gw_sagaview_clear(v);
  return n;
}

void gw_sagaview_clear(sagalog_views *v) {
  views_drop_cur(v);
  bt_free(v->steps);
  v->steps = NULL;
  v->steps_cap = 0;
}
