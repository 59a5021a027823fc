/* main.c: the baton-gateway program: flags, signals, and the gateway's
 * lifetime. `--check` loads everything and reports every error, like
 * `nginx -t`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define BATON_VERSION "0.1.0"

static void usage(FILE *out) {
  fprintf(out,
          "usage: baton-gateway --config FILE   run the gateway\n"
          "       baton-gateway --check FILE    validate config, descriptors "
          "and flows, then exit\n"
          "       baton-gateway sagas --config FILE [--state STATE] [--retry "
          "SAGA_ID]\n"
          "                                     list sagas (by state: RUNNING, "
          "COMPENSATING,\n"
          "                                     COMPLETED, COMPENSATED, "
          "COMPENSATION_FAILED) or retry a failed one\n"
          "       baton-gateway --version\n"
          "       baton-gateway --help\n"
          "\n"
          "SIGTERM or SIGINT drains (GOAWAY, in-flight calls finish) and "
          "exits.\n");
}

static const char *flag_value(int argc, char **argv, int *i, const char *name) {
  size_t n = strlen(name);
  if (strncmp(argv[*i], name, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] == 0 && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

static void print_saga(const gw_saga_view *s, void *ud) {
  time_t t = (time_t)(s->updated_ms / 1000);
  struct tm tm;
  char when[32];
  gmtime_r(&t, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  printf("%s  %-20s %s  %s  owner=%s\n", s->saga_id,
         gw_sagalog_state_name(s->state), when, s->flow,
         s->owner ? s->owner : "-");
  static const char *const step_states[] = {
      "STARTED", "COMMITTED", "FAILED", "COMPENSATED", "COMPENSATION_FAILED"};
  for (size_t i = 0; i < s->n_steps; i++) {
    const gw_saga_step_view *st = &s->steps[i];
    printf("    step %-16s %-20s attempts=%u\n", st->name,
           (unsigned)st->state < 5 ? step_states[st->state] : "?",
           st->attempts);
  }
}

/* baton-gateway sagas --config FILE [--state STATE] [--retry ID] */
static int sagas_command(int argc, char **argv) {
  const char *config = NULL, *state = NULL, *retry = NULL;
  for (int i = 2; i < argc; i++) {
    const char *v;
    if ((v = flag_value(argc, argv, &i, "--config")))
      config = v;
    else if ((v = flag_value(argc, argv, &i, "--state")))
      state = v;
    else if ((v = flag_value(argc, argv, &i, "--retry")))
      retry = v;
    else {
      fprintf(stderr, "baton-gateway sagas: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  if (!config) {
    usage(stderr);
    return 2;
  }
  int want = -1;
  if (state && (want = gw_sagalog_state_parse(state)) < 0) {
    fprintf(stderr, "baton-gateway sagas: unknown state '%s'\n", state);
    return 2;
  }
  bt_arena *arena = bt_arena_new(16384);
  gw_diag diag;
  gw_diag_init(&diag);
  gw_config *cfg = gw_config_load(config, arena, &diag);
  int rv = 1;
  if (!cfg) {
    gw_diag_print(&diag);
    goto out;
  }
  if (!cfg->saga_line) {
    fprintf(stderr, "baton-gateway sagas: %s has no saga_log\n", config);
    goto out;
  }
  if (!cfg->saga_lease_ms)
    cfg->saga_lease_ms = 10000;
  char err[512];
  gw_sagalog_opts so = gw_saga_log_opts(cfg);
  so.owner = "baton-gateway-sagas-command";
  gw_sagalog *log = gw_sagalog_open(&so, err, sizeof(err));
  if (!log) {
    fprintf(stderr, "baton-gateway sagas: %s\n", err);
    goto out;
  }
  if (retry) {
    int r = gw_sagalog_retry(log, retry);
    if (r == 0)
      printf("saga %s is COMPENSATING again; a running gateway (or the next "
             "one to start) finishes it\n",
             retry);
    else
      fprintf(stderr, "baton-gateway sagas: cannot retry %s: %s\n", retry,
              r == BT_ERR_NOTFOUND ? "no such saga"
                                   : "it is not COMPENSATION_FAILED");
    rv = r == 0 ? 0 : 1;
  } else {
    int n = gw_sagalog_list(log, want, print_saga, NULL);
    if (n >= 0) {
      printf("%d saga%s\n", n, n == 1 ? "" : "s");
      rv = 0;
    }
  }
  gw_sagalog_close(log);
out:
  gw_diag_clear(&diag);
  bt_arena_free(arena);
  return rv;
}

int main(int argc, char **argv) {
  const char *config = NULL;
  if (argc > 1 && strcmp(argv[1], "sagas") == 0)
    return sagas_command(argc, argv);
  int check = 0;
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(argv[i], "--version") == 0) {
      printf("baton-gateway %s\n", BATON_VERSION);
      return 0;
    }
    if ((v = flag_value(argc, argv, &i, "--config"))) {
      config = v;
    } else if ((v = flag_value(argc, argv, &i, "--check"))) {
      config = v;
      check = 1;
    } else {
      fprintf(stderr, "baton-gateway: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (!config) {
    usage(stderr);
    return 2;
  }
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  gw_diag diag;
  gw_diag_init(&diag);
  gw_gateway *gw = gw_gateway_load(config, &diag);
  if (!gw) {
    gw_diag_print(&diag);
    fprintf(stderr, "baton-gateway: %zu error%s in %s\n", gw_diag_count(&diag),
            gw_diag_count(&diag) == 1 ? "" : "s", config);
    gw_diag_clear(&diag);
    return 1;
  }
  gw_diag_clear(&diag);
  if (check) {
    printf("baton-gateway: %s is valid (%zu flow%s, %zu route%s, %zu "
           "backend%s)\n",
           config, gw->flows.n, gw->flows.n == 1 ? "" : "s", gw->cfg->n_routes,
           gw->cfg->n_routes == 1 ? "" : "s", gw->cfg->n_backends,
           gw->cfg->n_backends == 1 ? "" : "s");
    gw_gateway_free(gw);
    return 0;
  }
  /* Before any thread starts, so that every thread inherits the mask and the
   * stop signal is taken here, by sigwait, not by a handler on some worker. */
  bt_serve_block_signals();
  if (gw_gateway_start(gw) != 0) {
    fprintf(stderr, "baton-gateway: cannot start\n");
    gw_gateway_free(gw);
    return 1;
  }
  fprintf(stderr, "baton-gateway: ready (%zu flows, %zu routes)\n", gw->flows.n,
          gw->cfg->n_routes);
  bt_serve_wait_signal();
  gw_gateway_shutdown(gw);
  gw_gateway_wait(gw);
  fprintf(stderr, "baton-gateway: stopped\n");
  gw_gateway_free(gw);
  return 0;
}
