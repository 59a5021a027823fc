/* Tests for route.c's matching: a prefix that names a method routes only
 * that method, a service prefix matches on the '/' boundary, the longest
 * matching prefix wins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proxy/proxy.h"

static void test_route_method_prefix_matches_that_method_only(void **state) {
  assert_true(gw_route_matches("/pkg.Service/Get", "/pkg.Service/Get"));
  assert_false(gw_route_matches("/pkg.Service/Get", "/pkg.Service/GetAdmin"));
  assert_false(gw_route_matches("/pkg.Service/Get", "/pkg.Service/Ge"));
}

static void test_route_service_prefix_matches_on_the_slash(void **state) {
  assert_true(gw_route_matches("/pkg.Service/", "/pkg.Service/Get"));
  assert_true(gw_route_matches("/pkg.Service", "/pkg.Service/Get"));
  assert_false(gw_route_matches("/pkg.Service", "/pkg.ServiceAdmin/Get"));
  assert_false(gw_route_matches("/pkg.Service/", "/pkg.ServiceAdmin/Get"));
  assert_true(gw_route_matches("/", "/anything/At"));
}

static void test_route_longest_match_wins(void **state) {
  gw_route_config routes[] = {
      {.prefix = "/pkg.Service/", .backend = "all"},
      {.prefix = "/pkg.Service/Get", .backend = "get"},
      {.prefix = "/other", .backend = "other"},
  };
  gw_config cfg = {.routes = routes, .n_routes = 3};
  assert_ptr_equal(gw_route_find(&cfg, "/pkg.Service/Get"), &routes[1]);
  assert_ptr_equal(gw_route_find(&cfg, "/pkg.Service/GetAdmin"), &routes[0]);
  assert_ptr_equal(gw_route_find(&cfg, "/pkg.Service/Put"), &routes[0]);
  assert_ptr_equal(gw_route_find(&cfg, "/other/X"), &routes[2]);
  assert_null(gw_route_find(&cfg, "/otherwise/X"));
  assert_null(gw_route_find(&cfg, "/nope/X"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_route_method_prefix_matches_that_method_only),
      cmocka_unit_test(test_route_service_prefix_matches_on_the_slash),
      cmocka_unit_test(test_route_longest_match_wins),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
