/* serve_flags.h (private): the command line of bt_serve (the flags are
 * listed in baton/serve.h), apart from the process's life so that it can be
 * tested without starting a server. Parsing prints nothing: what is wrong
 * comes back as text for bt_serve to print with the usage. */
#ifndef BT_SERVE_FLAGS_H
#define BT_SERVE_FLAGS_H

#include <stddef.h>
#include <stdio.h>

#include <baton/serve.h>

typedef struct serve_flags {
  const char *host; /* strings point into argv or are literals */
  int port;         /* -1 until --port is given */
  int use_tls;
  const char *cert, *key, *ca;
  int require_client_cert;
  int help;            /* --help or -h was given: nothing else is checked */
  bt_server_opts opts; /* the defaults, with --workers and the limits */
} serve_flags;

/* Parses argv[1] .. argv[argc - 1] into f, handing arguments it does not
 * know to app->flag. Returns 0, or -1 with one line (no newline) saying
 * what is wrong in err ("unknown flag --x", "--port is required"). */
int bt__serve_flags_parse(serve_flags *f, int argc, char **argv,
                          const bt_serve_app *app, char *err, size_t errlen);

/* Writes the usage of app's program, its own flags included, to out. */
void bt__serve_flags_usage(FILE *out, const bt_serve_app *app);

#endif
