/* baton/serve.h: running a server process until it is told to stop.
 *
 * bt_serve is the whole main of a backend: it parses the standard flags,
 * lets the program register its services, serves, and drains on SIGTERM or
 * SIGINT. A backend is then its handlers plus
 *
 *   static int setup(bt_server *server, void *ud) {
 *     return pkg__svc__baton_register(server, &handlers, ud);
 *   }
 *   int main(int argc, char **argv) {
 *     static const bt_serve_app app = {.name = "my-backend", .setup = setup};
 *     return bt_serve(argc, argv, &app);
 *   }
 *
 * SIGTERM and SIGINT ask a Baton process to drain and exit. They are taken
 * synchronously: bt_serve_block_signals blocks them before any thread
 * starts (every thread inherits the mask), and the main thread collects one
 * with bt_serve_wait_signal and then shuts the server down from ordinary
 * code. No signal handler ever runs, so nothing a handler could touch
 * (worker loops, the server) is read while worker threads write it. A
 * program with its own main (the gateway) uses these two directly. */
#ifndef BATON_SERVE_H
#define BATON_SERVE_H

#include <baton/error.h>
#include <baton/server.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Built with -fvisibility=hidden: what this header declares is exported. */
#pragma GCC visibility push(default)

/* Registers the program's services on server (and does whatever else must
 * happen before it listens); called once, after the flags were parsed.
 * Returns 0, or a negative BT_ERR_* to stop with exit status 1. */
typedef int (*bt_serve_setup_fn)(bt_server *server, void *ud);

/* One of the program's own flags: an argument bt_serve does not know
 * itself, whole ("--delay_ms=300"). Returns 1 when it took arg, 0 when it
 * does not know it, -1 when it knows it but the value is bad; for 0 and -1
 * bt_serve prints the usage and exits with status 2. */
typedef int (*bt_serve_flag_fn)(const char *arg, void *ud);

/* What bt_serve needs from the program. Only name and setup are required. */
typedef struct bt_serve_app {
  const char *name;        /* prefixes the usage and every error line */
  bt_serve_setup_fn setup; /* registers the services */
  void *ud;                /* passed to setup and flag */
  bt_serve_flag_fn flag;   /* NULL: the program has no flags of its own */
  const char *flag_usage;  /* lines describing those flags, or NULL */
  const char *host;        /* --host's default; NULL: "127.0.0.1" */
} bt_serve_app;

/* Runs a server process; call it from main and return what it returns.
 * Flags (a value after '=' or as the next argument; the true/false
 * switches take theirs after '=' only):
 *   --port=N                 required; 0 picks a free port
 *   --host=ADDR              app->host, else 127.0.0.1
 *   --workers=N              event-loop threads; 0 = one per core
 *   --use_tls[=true]         serve TLS (ALPN h2) instead of h2c
 *   --cert=FILE --key=FILE   the TLS pair; default certs/out/server.{crt,key}
 *   --ca=FILE                verify the certificates clients present
 *   --require_client_cert[=true]  and refuse clients without one (needs --ca)
 *   --FIELD=N                any other field of bt_server_opts, the
 *                            limits (baton/server.h): --connection_buffer=N,
 *                            --request_header_timeout_ms=N, ...
 *   --help                   the usage on stdout; exit status 0
 * then app->flag for any other argument. It blocks the stop signals
 * (bt_serve_block_signals) before any thread starts, builds the server,
 * calls app->setup, listens, starts, prints "listening on PORT" on stdout
 * once serving, waits for SIGTERM or SIGINT, drains (bt_server_shutdown:
 * in-flight calls finish) and frees the server. Unlike the rest of
 * libbaton it writes to stderr: it is the process's main.
 * Returns the exit status: 0 after a drain, 2 for a bad command line (the
 * usage on stderr), 1 when the server cannot start (one line on stderr
 * saying what failed: a TLS file that cannot be read, the address, setup's
 * error). */
int bt_serve(int argc, char **argv, const bt_serve_app *app);

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
