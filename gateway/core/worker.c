/* worker.c: which gw_worker the calling thread is (a thread-local set when
 * the runtime starts the worker). */
#include "core.h"

static _Thread_local gw_worker *current_worker;

gw_worker *gw_worker_current(void) {
  return current_worker;
}

void gw_worker_set_current(gw_worker *w) {
  current_worker = w;
}
