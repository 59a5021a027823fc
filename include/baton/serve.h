/* baton/serve.h: running a server process until it is told to stop.
 *
 * SIGTERM and SIGINT ask a Baton process to drain and exit. They are taken
 * synchronously: bt_serve_block_signals blocks them before any thread
 * starts (every thread inherits the mask), and the main thread collects one
 * with bt_serve_wait_signal and then shuts the server down from ordinary
 * code. No signal handler ever runs, so nothing a handler could touch
 * (worker loops, the server) is read while worker threads write it. */
#ifndef BATON_SERVE_H
#define BATON_SERVE_H

#include <baton/error.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

/* Blocks SIGTERM and SIGINT in the calling thread and ignores SIGPIPE (a
 * write to a closed socket is an error return, not a signal). Call it in
 * main before any thread is created, so that every thread inherits the
 * blocked mask. Returns 0, or BT_ERR_INVAL if the mask cannot be set. */
int bt_serve_block_signals(void);

/* Waits for SIGTERM or SIGINT, which bt_serve_block_signals must have
 * blocked, and returns its number. A second signal sent while the process
 * drains stays pending and is ignored. */
int bt_serve_wait_signal(void);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
