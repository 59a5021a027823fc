/* main.c: the baton-gateway program: flags, signals, and the gateway's
 * lifetime. `--check` loads everything and reports every error, like
 * `nginx -t`. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"

#define BATON_VERSION "0.1.0"

static gw_gateway *running;

static void usage(FILE *out) {
  fprintf(out,
          "usage: baton-gateway --config FILE   run the gateway\n"
          "       baton-gateway --check FILE    validate config, descriptors "
          "and flows, then exit\n"
          "       baton-gateway --version\n"
          "       baton-gateway --help\n"
          "\n"
          "SIGTERM or SIGINT drains (GOAWAY, in-flight calls finish) and "
          "exits.\n");
}

static void on_signal(int sig) {
  (void)sig;
  if (running)
    gw_gateway_shutdown(running);
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

int main(int argc, char **argv) {
  const char *config = NULL;
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
  struct sigaction sa = {0};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  running = gw;
  if (gw_gateway_start(gw) != 0) {
    fprintf(stderr, "baton-gateway: cannot start\n");
    running = NULL;
    gw_gateway_free(gw);
    return 1;
  }
  fprintf(stderr, "baton-gateway: ready (%zu flows, %zu routes)\n", gw->flows.n,
          gw->cfg->n_routes);
  gw_gateway_wait(gw);
  running = NULL;
  fprintf(stderr, "baton-gateway: stopped\n");
  gw_gateway_free(gw);
  return 0;
}
