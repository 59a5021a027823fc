/* serve.c: a server process's life: bt_serve (the flags are serve_flags.c's)
 * and the stop signals, taken with sigwait on the main thread instead of a
 * handler (see baton/serve.h for why). */
#include <baton/error.h>
#include <baton/serve.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "serve_flags.h"

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

/* ---- bt_serve ----------------------------------------------------------- */

/* Checks that a TLS file can be opened, so that a wrong path is reported
 * as such, in one line, instead of as OpenSSL's error queue. */
static int readable(const char *name, const char *flag, const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp) {
    fclose(fp);
    return 0;
  }
  fprintf(stderr, "%s: cannot read --%s=%s: %s\n", name, flag, path,
          strerror(errno));
  return -1;
}

static int tls_files_readable(const char *name, const serve_flags *f) {
  if (readable(name, "cert", f->cert) < 0 || readable(name, "key", f->key) < 0)
    return -1;
  return f->ca ? readable(name, "ca", f->ca) : 0;
}

/* Registers, listens and starts; on failure says what failed and returns
 * -1. */
static int start(bt_server *server, const bt_serve_app *app,
                 const serve_flags *f) {
  int rv = app->setup(server, app->ud);
  if (rv < 0) {
    fprintf(stderr, "%s: cannot register the services: %s\n", app->name,
            bt_strerror(rv));
    return -1;
  }
  bt_tls_opts tls = {.cert_file = f->cert,
                     .key_file = f->key,
                     .ca_file = f->ca,
                     .require_client_cert = f->require_client_cert};
  /* Why it failed (the file, OpenSSL's reason, errno) went to the logger. */
  rv = bt_server_listen(server, f->host, f->port, f->use_tls ? &tls : NULL);
  if (rv < 0)
    return -1;
  if ((rv = bt_server_start(server)) < 0) {
    fprintf(stderr, "%s: cannot start: %s\n", app->name, bt_strerror(rv));
    return -1;
  }
  return 0;
}

/* The runtime's sentences (why a listener failed, a connection cap
 * reached), one line each on stderr under the program's name. */
static void log_to_stderr(int level, const char *msg, void *ud) {
  static const char *const levels[] = {"error", "warning", "info"};
  const char *name = ud;
  fprintf(stderr, "%s: %s: %s\n", name,
          level >= 0 && level <= 2 ? levels[level] : "info", msg);
}

int bt_serve(int argc, char **argv, const bt_serve_app *app) {
  serve_flags f;
  char err[256];
  if (bt__serve_flags_parse(&f, argc, argv, app, err, sizeof(err)) < 0) {
    fprintf(stderr, "%s: %s\n", app->name, err);
    bt__serve_flags_usage(stderr, app);
    return 2;
  }
  if (f.help) {
    bt__serve_flags_usage(stdout, app);
    return 0;
  }
  if (f.use_tls && tls_files_readable(app->name, &f) < 0)
    return 1;

  /* Before any thread starts (the workers, or one setup makes), so that all
   * inherit the mask and the stop signal is taken below. */
  bt_serve_block_signals();
  bt_server *server = bt_server_new(&f.opts);
  bt_server_set_logger(server, log_to_stderr, (void *)app->name);
  int rv = start(server, app, &f);
  if (rv == 0) {
    /* The line run scripts and tests wait for (tests/e2e/harness.py). */
    printf("listening on %d\n", bt_server_port(server, 0));
    fflush(stdout);
    bt_serve_wait_signal();
    bt_server_shutdown(server);
    bt_server_wait(server);
  }
  bt_server_free(server);
  return rv == 0 ? 0 : 1;
}
