/* Tests for serve_flags.c: bt_serve's command line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "serve_flags.h"

static int no_setup(bt_server *server, void *ud) {
  return 0;
}

/* An app flag function: takes --mine=ok, refuses any other --mine value. */
static int mine(const char *arg, void *ud) {
  if (strncmp(arg, "--mine=", 7) != 0)
    return 0;
  if (strcmp(arg + 7, "ok") != 0)
    return -1;
  ++*(int *)ud;
  return 1;
}

static char err[256];

/* Parses a NULL-terminated argument list after a program name. */
static int parse_app(serve_flags *f, const bt_serve_app *app,
                     const char **args) {
  char *argv[32] = {"prog"};
  int argc = 1;
  for (; args[argc - 1]; argc++)
    argv[argc] = (char *)args[argc - 1];
  err[0] = '\0';
  return bt__serve_flags_parse(f, argc, argv, app, err, sizeof(err));
}

static int parse(serve_flags *f, const char **args) {
  static const bt_serve_app app = {.name = "prog", .setup = no_setup};
  return parse_app(f, &app, args);
}

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

static void test_defaults(void **state) {
  serve_flags f;
  assert_int_equal(parse(&f, ARGS("--port=0")), 0);
  assert_int_equal(f.port, 0);
  assert_string_equal(f.host, "127.0.0.1");
  assert_int_equal(f.use_tls, 0);
  assert_string_equal(f.cert, "certs/out/server.crt");
  assert_string_equal(f.key, "certs/out/server.key");
  assert_null(f.ca);
  assert_int_equal(f.help, 0);
  bt_server_opts want;
  bt_server_opts_init(&want);
  assert_memory_equal(&f.opts, &want, sizeof(want));
}

static void test_value_after_equals_or_as_next_argument(void **state) {
  serve_flags f;
  assert_int_equal(
      parse(&f, ARGS("--port", "8080", "--host", "::1", "--workers", "3")), 0);
  assert_int_equal(f.port, 8080);
  assert_string_equal(f.host, "::1");
  assert_int_equal(f.opts.workers, 3);
  assert_int_equal(parse(&f, ARGS("--host=0.0.0.0", "--port=65535")), 0);
  assert_int_equal(f.port, 65535);
  assert_string_equal(f.host, "0.0.0.0");
}

static void test_port_required_and_checked(void **state) {
  serve_flags f;
  assert_int_equal(parse(&f, ARGS("--workers=1")), -1);
  assert_string_equal(err, "--port is required");
  const char *bad[] = {"--port=-1", "--port=65536", "--port=", "--port=1x",
                       "--port= 1"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(parse(&f, ARGS(bad[i])), -1);
    assert_non_null(strstr(err, "bad value"));
  }
  assert_int_equal(parse(&f, ARGS("--port")), -1);
  assert_string_equal(err, "--port needs a value");
}

static void test_workers_bounded(void **state) {
  serve_flags f;
  assert_int_equal(parse(&f, ARGS("--port=0", "--workers=1024")), 0);
  assert_int_equal(f.opts.workers, 1024);
  assert_int_equal(parse(&f, ARGS("--port=0", "--workers=1025")), -1);
  assert_int_equal(parse(&f, ARGS("--port=0", "--workers=-2")), -1);
}

static void test_limits_set_their_fields(void **state) {
  serve_flags f;
  assert_int_equal(
      parse(&f, ARGS("--port=0", "--connection_buffer=8388608",
                     "--request_header_timeout_ms", "1000", "--glitch_rate=0")),
      0);
  assert_int_equal(f.opts.connection_buffer, 8388608);
  assert_int_equal(f.opts.request_header_timeout_ms, 1000);
  assert_int_equal(f.opts.glitch_rate, 0);
  assert_int_equal(
      parse(&f, ARGS("--port=0", "--initial_window=65535", "--decoded_floor=0",
                     "--max_header_list", "8192")),
      0);
  assert_int_equal(f.opts.initial_window, 65535);
  assert_int_equal(f.opts.decoded_floor, 0);
  assert_int_equal(f.opts.max_header_list, 8192);
  /* uint32_t fields stop at UINT32_MAX; size_t ones do not. */
  assert_int_equal(parse(&f, ARGS("--port=0", "--idle_timeout_ms=4294967296")),
                   -1);
  assert_int_equal(parse(&f, ARGS("--port=0", "--process_buffer=4294967296")),
                   0);
  assert_int_equal(f.opts.process_buffer, (size_t)4294967296u);
}

static void test_tls_flags(void **state) {
  serve_flags f;
  assert_int_equal(
      parse(&f, ARGS("--port=0", "--use_tls", "--cert=c.pem", "--key", "k.pem",
                     "--ca=ca.pem", "--require_client_cert=true")),
      0);
  assert_int_equal(f.use_tls, 1);
  assert_string_equal(f.cert, "c.pem");
  assert_string_equal(f.key, "k.pem");
  assert_string_equal(f.ca, "ca.pem");
  assert_int_equal(f.require_client_cert, 1);
  assert_int_equal(parse(&f, ARGS("--port=0", "--use_tls=true", "--use_tls=0")),
                   0);
  assert_int_equal(f.use_tls, 0);
  assert_int_equal(parse(&f, ARGS("--port=0", "--use_tls=yes")), -1);
  assert_int_equal(
      parse(&f, ARGS("--port=0", "--use_tls=true", "--require_client_cert=1")),
      -1);
  assert_non_null(strstr(err, "needs --use_tls=true and --ca"));
}

static void test_unknown_flags(void **state) {
  serve_flags f;
  assert_int_equal(parse(&f, ARGS("--port=0", "--bogus=1")), -1);
  assert_string_equal(err, "unknown flag --bogus=1");
  assert_int_equal(parse(&f, ARGS("--port=0", "stray")), -1);
  assert_string_equal(err, "unknown flag stray");
  /* A standard name as a prefix is not that flag. */
  assert_int_equal(parse(&f, ARGS("--port=0", "--portable=1")), -1);
}

static void test_app_flags(void **state) {
  int taken = 0;
  const bt_serve_app app = {
      .name = "prog", .setup = no_setup, .flag = mine, .ud = &taken};
  serve_flags f;
  assert_int_equal(parse_app(&f, &app, ARGS("--mine=ok", "--port=1")), 0);
  assert_int_equal(taken, 1);
  assert_int_equal(parse_app(&f, &app, ARGS("--port=1", "--mine=no")), -1);
  assert_string_equal(err, "bad flag --mine=no");
  assert_int_equal(parse_app(&f, &app, ARGS("--port=1", "--other")), -1);
  assert_string_equal(err, "unknown flag --other");
}

static void test_app_default_host(void **state) {
  const bt_serve_app app = {
      .name = "prog", .setup = no_setup, .host = "0.0.0.0"};
  serve_flags f;
  assert_int_equal(parse_app(&f, &app, ARGS("--port=1")), 0);
  assert_string_equal(f.host, "0.0.0.0");
}

static void test_help_needs_nothing_else(void **state) {
  serve_flags f;
  assert_int_equal(parse(&f, ARGS("--help")), 0);
  assert_int_equal(f.help, 1);
  assert_int_equal(parse(&f, ARGS("-h", "--bogus")), 0);
  assert_int_equal(f.help, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_value_after_equals_or_as_next_argument),
      cmocka_unit_test(test_port_required_and_checked),
      cmocka_unit_test(test_workers_bounded),
      cmocka_unit_test(test_limits_set_their_fields),
      cmocka_unit_test(test_tls_flags),
      cmocka_unit_test(test_unknown_flags),
      cmocka_unit_test(test_app_flags),
      cmocka_unit_test(test_app_default_host),
      cmocka_unit_test(test_help_needs_nothing_else),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
