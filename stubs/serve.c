/* serve.c: a server process's stop signals, taken with sigwait on the main
 * thread instead of a handler (see baton/serve.h for why). */
#include <baton/error.h>
#include <baton/serve.h>

#include <pthread.h>
#include <signal.h>

static void stop_signal_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
}

int bt_serve_block_signals(void) {
  sigset_t set;
  stop_signal_set(&set);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
    return BT_ERR_INVAL;
  signal(SIGPIPE, SIG_IGN);
  return 0;
}

int bt_serve_wait_signal(void) {
  sigset_t set;
  stop_signal_set(&set);
  int sig = 0;
  /* sigwait fails only for an invalid set; EINTR is not among its errors,
   * but loop anyway rather than report a signal that did not come. */
  while (sigwait(&set, &sig) != 0)
    ;
  return sig;
}
