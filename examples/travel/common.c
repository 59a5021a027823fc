/* common.c: the travel backends' own flags (bt_serve runs their main), the
 * path of every business call (switches, delay, idempotency, apply) and the
 * in-memory state behind Get, Reset and Configure. The state stays
 * allocated at exit: reachable from st, so no leak checker counts it.
 *
 * Handlers run on several worker threads; all state sits behind one mutex.
 * An apply function runs with it held, so "is this (saga id, step) new?"
 * and "apply it" are one atomic step: two copies of a call arriving
 * together (a retry racing a slow first attempt) apply once. */
#include "common.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a small string-keyed hash map ------------------------------------ */

/* Records are looked up by key, by (saga id, step) and counted by ref, and
 * answers by (saga id, step); a benchmark may run many thousands of sagas
 * through one backend, so these are hashed rather than scanned. */
typedef struct map_entry {
  struct map_entry *next;
  char *key; /* bt_malloc'd */
  void *val;
} map_entry;

typedef struct map {
  map_entry **buckets;
  size_t nbuckets; /* a power of two, or 0 before the first put */
  size_t count;
} map;

static size_t hash_str(const char *s) {
  size_t h = 14695981039346656037u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}

static map_entry **map_slot(const map *m, const char *key) {
  return &m->buckets[hash_str(key) & (m->nbuckets - 1)];
}

static void *map_get(const map *m, const char *key) {
  if (m->nbuckets == 0)
    return NULL;
  for (map_entry *e = *map_slot(m, key); e; e = e->next)
    if (strcmp(e->key, key) == 0)
      return e->val;
  return NULL;
}

static void map_grow(map *m) {
  map old = *m;
  m->nbuckets = old.nbuckets ? old.nbuckets * 2 : 64;
  m->buckets = bt_calloc(m->nbuckets, sizeof *m->buckets);
  for (size_t i = 0; i < old.nbuckets; i++) {
    for (map_entry *e = old.buckets[i], *next; e; e = next) {
      next = e->next;
      map_entry **slot = map_slot(m, e->key);
      e->next = *slot;
      *slot = e;
    }
  }
  bt_free(old.buckets);
}

/* Sets key (copied) to val, replacing an earlier value. */
static void map_put(map *m, const char *key, void *val) {
  if (m->nbuckets) {
    for (map_entry *e = *map_slot(m, key); e; e = e->next) {
      if (strcmp(e->key, key) == 0) {
        e->val = val;
        return;
      }
    }
  }
  if (m->count >= m->nbuckets)
    map_grow(m);
  map_entry *e = bt_malloc(sizeof *e);
  e->key = bt_strndup(key, strlen(key));
  e->val = val;
  map_entry **slot = map_slot(m, key);
  e->next = *slot;
  *slot = e;
  m->count++;
}

/* Empties m; free_val (may be NULL) frees each value. */
static void map_clear(map *m, void (*free_val)(void *)) {
  for (size_t i = 0; i < m->nbuckets; i++) {
    for (map_entry *e = m->buckets[i], *next; e; e = next) {
      next = e->next;
      if (free_val)
        free_val(e->val);
      bt_free(e->key);
      bt_free(e);
    }
  }
  bt_free(m->buckets);
  *m = (map){0};
}

/* ---- the state ---------------------------------------------------------- */

typedef struct op_entry {
  char *op, *key, *saga_id, *step; /* bt_malloc'd */
  int64_t at_us;
} op_entry;

/* The first answer to a (saga id, step), given again to repeats. */
typedef struct answer {
  int code;
  char *message;  /* errors; bt_malloc'd */
  uint8_t *bytes; /* OK: the packed response; bt_malloc'd */
  size_t len;
} answer;

/* The switches of ConfigureRequest. Method lists are ",A,B," (bt_malloc'd)
 * so membership is one strstr; delay_methods NULL means every method. */
typedef struct switches {
  int delay_ms;
  char *delay_methods;
  int apply_before_delay;
  char *unavailable_methods;
} switches;

static struct {
  pthread_mutex_t mu;
  op_entry *ops;
  size_t n_ops, cap_ops;
  travel_record **records; /* owned, in creation order */
  size_t n_records, cap_records;
  map by_key;     /* record key -> record */
  map by_step;    /* "saga\nstep" -> record it created */
  map ref_counts; /* ref -> (intptr_t) records with it */
  map answers;    /* "saga\nstep" -> answer, owned */
  int64_t calls, duplicates_ignored, cancelled, unavailable;
  long next_id;      /* never reset: ids stay unique in a process */
  switches sw;       /* in force */
  switches sw_flags; /* from the command line, restored by Reset */
} st = {.mu = PTHREAD_MUTEX_INITIALIZER, .next_id = 1};

static void switches_clear(switches *s) {
  bt_free(s->delay_methods);
  bt_free(s->unavailable_methods);
  *s = (switches){0};
}

static char *dup_or_null(const char *s) {
  return s ? bt_strndup(s, strlen(s)) : NULL;
}

static void switches_copy(switches *dst, const switches *src) {
  switches_clear(dst);
  *dst = *src;
  dst->delay_methods = dup_or_null(src->delay_methods);
  dst->unavailable_methods = dup_or_null(src->unavailable_methods);
}

/* ",A,B," from n names; NULL when n is 0. */
static char *method_list(char **names, size_t n) {
  if (n == 0)
    return NULL;
  size_t len = 2;
  for (size_t i = 0; i < n; i++)
    len += strlen(names[i]) + 1;
  char *s = bt_malloc(len), *p = s;
  *p++ = ',';
  for (size_t i = 0; i < n; i++) {
    size_t k = strlen(names[i]);
    memcpy(p, names[i], k);
    p += k;
    *p++ = ',';
  }
  *p = '\0';
  return s;
}

/* "A,B" from the command line as ",A,B,". */
static char *method_list_flag(const char *v) {
  size_t n = strlen(v);
  char *s = bt_malloc(n + 3);
  snprintf(s, n + 3, ",%s,", v);
  return s;
}

static int in_list(const char *list, const char *method) {
  char needle[128];
  snprintf(needle, sizeof needle, ",%s,", method);
  return list && strstr(list, needle) != NULL;
}

static void free_answer(void *p) {
  answer *a = p;
  if (!a)
    return;
  bt_free(a->message);
  bt_free(a->bytes);
  bt_free(a);
}

static void free_record(travel_record *r) {
  if (!r)
    return;
  bt_free(r->key);
  bt_free(r->status);
  bt_free(r->saga_id);
  bt_free(r->step);
  bt_free(r->ref);
  bt_free(r->detail);
  bt_free(r);
}

/* Forgets every op, record, answer and counter (not next_id). Locked. */
static void state_clear(void) {
  for (size_t i = 0; i < st.n_ops; i++) {
    bt_free(st.ops[i].op);
    bt_free(st.ops[i].key);
    bt_free(st.ops[i].saga_id);
    bt_free(st.ops[i].step);
  }
  bt_free(st.ops);
  st.ops = NULL;
  st.n_ops = st.cap_ops = 0;
  for (size_t i = 0; i < st.n_records; i++)
    free_record(st.records[i]);
  bt_free(st.records);
  st.records = NULL;
  st.n_records = st.cap_records = 0;
  map_clear(&st.by_key, NULL);
  map_clear(&st.by_step, NULL);
  map_clear(&st.ref_counts, NULL);
  map_clear(&st.answers, free_answer);
  st.calls = st.duplicates_ignored = st.cancelled = st.unavailable = 0;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* "saga\nstep" into buf (a saga id or step longer than buf is cut: such a
 * caller shares its entry with another, which only an abuser would do). */
static const char *step_key(char *buf, size_t len, const char *saga_id,
                            const char *step) {
  snprintf(buf, len, "%s\n%s", saga_id, step);
  return buf;
}

/* ---- for apply functions (lock held) ----------------------------------- */

void travel_op(const char *op, const char *key, const travel_saga *saga) {
  if (st.n_ops == st.cap_ops) {
    st.cap_ops = st.cap_ops ? st.cap_ops * 2 : 64;
    st.ops = bt_realloc(st.ops, st.cap_ops * sizeof *st.ops);
  }
  st.ops[st.n_ops++] = (op_entry){.op = bt_strndup(op, strlen(op)),
                                  .key = bt_strndup(key, strlen(key)),
                                  .saga_id = dup_or_null(saga->id),
                                  .step = dup_or_null(saga->step),
                                  .at_us = now_us()};
}

travel_record *travel_record_add(const char *key, const char *status,
                                 const travel_saga *saga, const char *ref,
                                 int64_t amount, const char *detail_fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, detail_fmt);
  vsnprintf(detail, sizeof detail, detail_fmt, ap);
  va_end(ap);

  travel_record *r = bt_malloc(sizeof *r);
  *r = (travel_record){.key = bt_strndup(key, strlen(key)),
                       .status = bt_strndup(status, strlen(status)),
                       .saga_id = dup_or_null(saga->id),
                       .step = dup_or_null(saga->step),
                       .ref = bt_strndup(ref, strlen(ref)),
                       .detail = bt_strndup(detail, strlen(detail)),
                       .amount = amount};
  if (st.n_records == st.cap_records) {
    st.cap_records = st.cap_records ? st.cap_records * 2 : 64;
    st.records = bt_realloc(st.records, st.cap_records * sizeof *st.records);
  }
  st.records[st.n_records++] = r;
  map_put(&st.by_key, key, r);
  if (saga->id[0]) {
    char buf[512];
    map_put(&st.by_step, step_key(buf, sizeof buf, saga->id, saga->step), r);
  }
  intptr_t n = (intptr_t)map_get(&st.ref_counts, ref);
  map_put(&st.ref_counts, ref, (void *)(n + 1));
  return r;
}

travel_record *travel_record_find(const char *key) {
  return map_get(&st.by_key, key);
}

travel_record *travel_record_of_compensated_step(const travel_saga *saga) {
  static const char prefix[] = "compensate:";
  if (!saga->id[0] || strncmp(saga->step, prefix, sizeof prefix - 1) != 0)
    return NULL;
  char buf[512];
  return map_get(&st.by_step, step_key(buf, sizeof buf, saga->id,
                                       saga->step + sizeof prefix - 1));
}

void travel_record_set_status(travel_record *r, const char *status) {
  bt_free(r->status);
  r->status = bt_strndup(status, strlen(status));
}

int64_t travel_records_with_ref(const char *ref) {
  return (intptr_t)map_get(&st.ref_counts, ref);
}

long travel_next_id(void) {
  return st.next_id++;
}

char *travel_sprintf(bt_call *call, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0)
    n = 0;
  char *s = bt_arena_alloc(bt_call_arena(call), (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return s;
}

/* ---- the path of a business call --------------------------------------- */

/* One business call between arrival and answer; in the call's arena. */
typedef struct pending {
  const char *method;
  const void *req;
  travel_apply_fn apply;
  travel_saga saga;
  int applied;
  int code;            /* the answer, once applied: */
  const char *message; /* the call's arena */
  const uint8_t *bytes;
  size_t len;
} pending;

/* A NUL-terminated arena copy of key's value, "" when absent. */
static const char *metadata_str(bt_call *call, const char *key) {
  size_t len;
  const uint8_t *v = bt_metadata_get(bt_call_request_metadata(call), key, &len);
  return v ? bt_arena_strndup(bt_call_arena(call), (const char *)v, len) : "";
}

static void count_cancel(bt_call *call, void *ud) {
  pthread_mutex_lock(&st.mu);
  st.cancelled++;
  pthread_mutex_unlock(&st.mu);
}

/* Answers p from a repeat's stored answer or by applying it, and stores a
 * first answer for the saga's step. Lock held. */
static void apply_locked(bt_call *call, pending *p) {
  bt_arena *arena = bt_call_arena(call);
  char buf[512];
  const char *skey = p->saga.id[0]
                         ? step_key(buf, sizeof buf, p->saga.id, p->saga.step)
                         : NULL;
  p->applied = 1;
  answer *a = skey ? map_get(&st.answers, skey) : NULL;
  if (a) {
    /* Copied into the arena: a Reset may free a once the lock is gone. */
    st.duplicates_ignored++;
    p->code = a->code;
    p->message = a->message
                     ? bt_arena_strndup(arena, a->message, strlen(a->message))
                     : NULL;
    p->bytes = a->len ? bt_arena_memdup(arena, a->bytes, a->len) : NULL;
    p->len = a->len;
    return;
  }

  const ProtobufCMessage *resp = NULL;
  const char *message = NULL;
  p->code = p->apply(call, p->req, &p->saga, &resp, &message);
  p->message = message;
  if (p->code == BT_GRPC_OK && resp) {
    p->len = protobuf_c_message_get_packed_size(resp);
    uint8_t *bytes = bt_arena_alloc(arena, p->len ? p->len : 1);
    protobuf_c_message_pack(resp, bytes);
    p->bytes = bytes;
  }
  if (skey) {
    a = bt_calloc(1, sizeof *a);
    a->code = p->code;
    a->message = dup_or_null(p->message);
    a->len = p->len;
    a->bytes = p->len ? bt_malloc(p->len) : NULL;
    if (p->len)
      memcpy(a->bytes, p->bytes, p->len);
    map_put(&st.answers, skey, a);
  }
}

static void reply(bt_call *call, const pending *p) {
  if (p->code != BT_GRPC_OK) {
    bt_call_finish(call, p->code, p->message);
    return;
  }
  int rv = bt_call_send_bytes(call, p->bytes ? p->bytes : (const uint8_t *)"",
                              p->len);
  if (rv < 0 && !bt_call_is_cancelled(call)) {
    bt_call_finish(call, BT_GRPC_INTERNAL, bt_strerror(rv));
    return;
  }
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

/* The delay's end (or the call's cancel, which fires it at once). A call
 * cancelled before it was applied applies nothing: the step never
 * happened, as when the caller died while the backend was busy. */
static void resume(bt_call *call, void *ud) {
  pending *p = ud;
  if (bt_call_is_cancelled(call)) {
    bt_call_finish(call, BT_GRPC_CANCELLED, NULL);
    return;
  }
  if (!p->applied) {
    pthread_mutex_lock(&st.mu);
    apply_locked(call, p);
    pthread_mutex_unlock(&st.mu);
  }
  reply(call, p);
}

void travel_handle(bt_call *call, const char *method, const void *req,
                   travel_apply_fn apply) {
  pending *p = bt_arena_calloc(bt_call_arena(call), sizeof *p);
  p->method = method;
  p->req = req;
  p->apply = apply;
  p->saga.id = metadata_str(call, "baton-saga-id");
  p->saga.step = metadata_str(call, "baton-step");
  bt_call_on_cancel(call, count_cancel, NULL);

  pthread_mutex_lock(&st.mu);
  st.calls++;
  if (in_list(st.sw.unavailable_methods, method)) {
    st.unavailable++;
    pthread_mutex_unlock(&st.mu);
    bt_call_finish(call, BT_GRPC_UNAVAILABLE,
                   travel_sprintf(call,
                                  "%s is switched off "
                                  "(ConfigureRequest.unavailable_methods)",
                                  method));
    return;
  }
  int delay_ms = (!st.sw.delay_methods || in_list(st.sw.delay_methods, method))
                     ? st.sw.delay_ms
                     : 0;
  if (delay_ms == 0 || st.sw.apply_before_delay)
    apply_locked(call, p);
  pthread_mutex_unlock(&st.mu);

  if (delay_ms == 0)
    reply(call, p);
  else
    bt_call_after(call, (uint64_t)delay_ms, resume, p);
}

/* ---- Get, Reset, Configure ---------------------------------------------- */

static char *arena_str(bt_arena *arena, const char *s) {
  return s ? bt_arena_strndup(arena, s, strlen(s)) : "";
}

/* The state as a message in arena. Locked. */
static Travel__V1__BackendState *snapshot(bt_arena *arena) {
  Travel__V1__BackendState *s = bt_arena_alloc(arena, sizeof *s);
  travel__v1__backend_state__init(s);
  s->n_ops = st.n_ops;
  s->ops = bt_arena_alloc(arena, (st.n_ops + 1) * sizeof *s->ops);
  for (size_t i = 0; i < st.n_ops; i++) {
    Travel__V1__Operation *o = bt_arena_alloc(arena, sizeof *o);
    travel__v1__operation__init(o);
    o->op = arena_str(arena, st.ops[i].op);
    o->key = arena_str(arena, st.ops[i].key);
    o->saga_id = arena_str(arena, st.ops[i].saga_id);
    o->step = arena_str(arena, st.ops[i].step);
    o->at_us = st.ops[i].at_us;
    s->ops[i] = o;
  }
  s->n_records = st.n_records;
  s->records = bt_arena_alloc(arena, (st.n_records + 1) * sizeof *s->records);
  for (size_t i = 0; i < st.n_records; i++) {
    const travel_record *r = st.records[i];
    Travel__V1__Record *m = bt_arena_alloc(arena, sizeof *m);
    travel__v1__record__init(m);
    m->key = arena_str(arena, r->key);
    m->status = arena_str(arena, r->status);
    m->saga_id = arena_str(arena, r->saga_id);
    m->step = arena_str(arena, r->step);
    m->detail = arena_str(arena, r->detail);
    s->records[i] = m;
  }
  s->calls = st.calls;
  s->duplicates_ignored = st.duplicates_ignored;
  s->cancelled = st.cancelled;
  s->unavailable = st.unavailable;
  return s;
}

static void send_state(bt_call *call, const Travel__V1__BackendState *s) {
  int rv = bt_call_send(call, &s->base);
  if (rv < 0 && !bt_call_is_cancelled(call)) {
    bt_call_finish(call, BT_GRPC_INTERNAL, bt_strerror(rv));
    return;
  }
  bt_call_finish(call, BT_GRPC_OK, NULL);
}

void travel_get(bt_call *call, const Travel__V1__GetStateRequest *req,
                void *ud) {
  pthread_mutex_lock(&st.mu);
  Travel__V1__BackendState *s = snapshot(bt_call_arena(call));
  pthread_mutex_unlock(&st.mu);
  send_state(call, s);
}

void travel_reset(bt_call *call, const Travel__V1__ResetRequest *req,
                  void *ud) {
  pthread_mutex_lock(&st.mu);
  Travel__V1__BackendState *s = snapshot(bt_call_arena(call));
  state_clear();
  switches_copy(&st.sw, &st.sw_flags);
  pthread_mutex_unlock(&st.mu);
  send_state(call, s);
}

void travel_configure(bt_call *call, const Travel__V1__ConfigureRequest *req,
                      void *ud) {
  if (req->delay_ms < 0) {
    bt_call_finish(call, BT_GRPC_INVALID_ARGUMENT, "negative delay_ms");
    return;
  }
  switches sw = {
      .delay_ms = req->delay_ms,
      .delay_methods = method_list(req->delay_methods, req->n_delay_methods),
      .apply_before_delay = req->apply_before_delay,
      .unavailable_methods =
          method_list(req->unavailable_methods, req->n_unavailable_methods)};
  pthread_mutex_lock(&st.mu);
  switches_clear(&st.sw);
  st.sw = sw; /* takes sw's lists */
  Travel__V1__BackendState *s = snapshot(bt_call_arena(call));
  pthread_mutex_unlock(&st.mu);
  send_state(call, s);
}

/* ---- the flags: ConfigureRequest's switches ---------------------------- */

static const char flag_usage[] = "       [--delay_ms=N [--delay_methods=M1,M2] "
                                 "[--apply_before_delay=true]]\n"
                                 "       [--unavailable_methods=M1,M2]\n";

/* "--name=value" matching name: returns value, else NULL. */
static const char *flag_value(const char *arg, const char *name) {
  size_t n = strlen(name);
  if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
      arg[2 + n] != '=')
    return NULL;
  return arg + 3 + n;
}

/* A decimal in [lo, hi], or -1. */
static long parse_int(const char *v, long lo, long hi) {
  char *end;
  long n = strtol(v, &end, 10);
  return (*v == '\0' || *end != '\0' || n < lo || n > hi) ? -1 : n;
}

/* One switch into sw; returns bt_serve_flag_fn's 1, 0 or -1. */
static int switch_flag(switches *sw, const char *arg) {
  const char *v;
  long n;
  if ((v = flag_value(arg, "delay_ms"))) {
    if ((n = parse_int(v, 0, 3600 * 1000)) < 0)
      return -1;
    sw->delay_ms = (int)n;
  } else if ((v = flag_value(arg, "delay_methods"))) {
    bt_free(sw->delay_methods);
    sw->delay_methods = method_list_flag(v);
  } else if ((v = flag_value(arg, "apply_before_delay"))) {
    if (!strcmp(v, "true") || !strcmp(v, "1"))
      sw->apply_before_delay = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0"))
      sw->apply_before_delay = 0;
    else
      return -1;
  } else if ((v = flag_value(arg, "unavailable_methods"))) {
    bt_free(sw->unavailable_methods);
    sw->unavailable_methods = method_list_flag(v);
  } else {
    return 0;
  }
  return 1;
}

/* Runs on the main thread before any worker starts: no lock needed. */
static int travel_flag(const char *arg, void *ud) {
  int rv = switch_flag(&st.sw_flags, arg);
  /* The flags are in force from the start. bt_serve has no hook after the
   * last flag, so each one copies them all again (a few, once). */
  if (rv == 1)
    switches_copy(&st.sw, &st.sw_flags);
  return rv;
}

bt_serve_app travel_app(const char *name, bt_serve_setup_fn setup) {
  return (bt_serve_app){.name = name,
                        .setup = setup,
                        .flag = travel_flag,
                        .flag_usage = flag_usage};
}
