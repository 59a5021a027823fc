/* Tests for yaml.c (and diag.c): the node tree, its line numbers, and the
 * inputs it refuses: syntax errors, duplicate keys, several documents,
 * alias bombs, deep nesting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <baton/alloc.h>
#include <baton/arena.h>
#include "config/diag.h"
#include "config/ynode.h"

typedef struct fx {
  bt_arena *arena;
  gw_diag diag;
  long live;
} fx;

static int setup(void **state) {
  fx *f = calloc(1, sizeof(*f));
  f->live = bt_alloc_live();
  f->arena = bt_arena_new(0);
  gw_diag_init(&f->diag);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx *f = *state;
  gw_diag_clear(&f->diag);
  bt_arena_free(f->arena);
  /* the parser's scratch memory (anchors, stacks) is all given back */
  assert_int_equal(bt_alloc_live(), f->live);
  free(f);
  return 0;
}

static gw_ynode *parse(fx *f, const char *text) {
  return gw_ynode_parse("gw.yaml", text, strlen(text), f->arena, &f->diag);
}

/* Asserts the diag holds exactly these lines, printing them if not. */
static void expect_errors(fx *f, const char *const *want, size_t n) {
  if (f->diag.n != n) {
    for (size_t i = 0; i < f->diag.n; i++)
      print_message("got: %s\n", f->diag.lines[i]);
  }
  assert_int_equal(f->diag.n, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(f->diag.lines[i], want[i]);
}

static void expect_error(fx *f, const char *want) {
  expect_errors(f, &want, 1);
}

static void test_yaml_tree_keeps_lines_and_styles(void **state) {
  fx *f = *state;
  gw_ynode *root = parse(f, "top: 1\n"
                            "nested:\n"
                            "  list: [a, 'b', \"c\"]\n"
                            "  text: |\n"
                            "    two\n"
                            "    lines\n"
                            "  folded: >\n"
                            "    x\n"
                            "empty:\n");
  assert_non_null(root);
  assert_int_equal(f->diag.n, 0);
  assert_int_equal(root->kind, GW_Y_MAP);
  assert_int_equal(root->n, 3);
  assert_string_equal(root->keys[0]->value, "top");
  assert_int_equal(root->keys[1]->line, 2);

  gw_ynode *top = gw_ynode_get(root, "top");
  assert_int_equal(top->kind, GW_Y_SCALAR);
  assert_string_equal(top->value, "1");
  assert_int_equal(top->len, 1);
  assert_int_equal(top->quoted, 0);
  assert_int_equal(top->line, 1);
  assert_int_equal(top->col, 6);

  gw_ynode *nested = gw_ynode_get(root, "nested");
  assert_int_equal(nested->kind, GW_Y_MAP);
  assert_int_equal(nested->line, 3); /* a block map starts at its first key */
  gw_ynode *list = gw_ynode_get(nested, "list");
  assert_int_equal(list->kind, GW_Y_SEQ);
  assert_int_equal(list->n, 3);
  assert_int_equal(list->line, 3);
  assert_int_equal(list->col, 9);
  assert_string_equal(list->values[0]->value, "a");
  assert_int_equal(list->values[0]->quoted, 0);
  assert_int_equal(list->values[1]->quoted, 1);
  assert_int_equal(list->values[2]->quoted, 1);
  assert_int_equal(list->values[2]->col, 18);

  gw_ynode *text = gw_ynode_get(nested, "text");
  assert_string_equal(text->value, "two\nlines\n");
  assert_int_equal(text->quoted, 1); /* block scalars are strings */
  assert_int_equal(gw_ynode_get(nested, "folded")->quoted, 1);

  gw_ynode *empty = gw_ynode_get(root, "empty");
  assert_int_equal(empty->kind, GW_Y_SCALAR);
  assert_int_equal(empty->len, 0);
  assert_int_equal(empty->quoted, 0);
  assert_int_equal(empty->line, 9);

  assert_null(gw_ynode_get(root, "missing"));
  assert_null(gw_ynode_get(list, "a")); /* not a map */
  assert_null(gw_ynode_get(NULL, "a"));
  assert_string_equal(gw_ynode_kind_name(root), "map");
  assert_string_equal(gw_ynode_kind_name(list), "sequence");
  assert_string_equal(gw_ynode_kind_name(top), "scalar");
}

static void test_yaml_scalar_keeps_nul_bytes(void **state) {
  fx *f = *state;
  gw_ynode *root = parse(f, "a: \"x\\0y\"\n");
  assert_non_null(root);
  gw_ynode *a = gw_ynode_get(root, "a");
  assert_int_equal(a->len, 3);
  assert_memory_equal(a->value, "x\0y", 4);
}

/* Regression (fuzz): an empty collection read before any other node
 * copied from a NULL scratch stack. */
static void test_yaml_empty_collections(void **state) {
  fx *f = *state;
  gw_ynode *root = parse(f, "[]");
  assert_non_null(root);
  assert_int_equal(root->kind, GW_Y_SEQ);
  assert_int_equal(root->n, 0);
  assert_non_null(root->values);
  root = parse(f, "{}");
  assert_non_null(root);
  assert_int_equal(root->kind, GW_Y_MAP);
  assert_int_equal(root->n, 0);
  root = parse(f, "[[], {}, [[]]]");
  assert_non_null(root);
  assert_int_equal(root->n, 3);
  assert_int_equal(root->values[2]->values[0]->n, 0);
}

static void test_yaml_alias_reuses_anchored_node(void **state) {
  fx *f = *state;
  gw_ynode *root = parse(f, "base: &b { connections: 4 }\n"
                            "one: *b\n"
                            "two: *b\n"
                            "s: &s word\n"
                            "t: *s\n");
  assert_non_null(root);
  gw_ynode *base = gw_ynode_get(root, "base");
  assert_ptr_equal(gw_ynode_get(root, "one"), base);
  assert_ptr_equal(gw_ynode_get(root, "two"), base);
  assert_ptr_equal(gw_ynode_get(root, "t"), gw_ynode_get(root, "s"));
  assert_string_equal(gw_ynode_get(base, "connections")->value, "4");
}

static void test_yaml_anchor_redefined_takes_latest(void **state) {
  fx *f = *state;
  gw_ynode *root = parse(f, "a: &x 1\nb: &x 2\nc: *x\n");
  assert_non_null(root);
  assert_string_equal(gw_ynode_get(root, "c")->value, "2");
}

static void test_yaml_unknown_anchor_refused(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: 1\nb: *nope\n"));
  expect_error(f, "gw.yaml:2: unknown anchor 'nope'");
}

static void test_yaml_self_alias_refused(void **state) {
  fx *f = *state;
  /* the anchor is known only once its node ends: no cycles */
  assert_null(parse(f, "a: &loop [1, *loop]\n"));
  expect_error(f, "gw.yaml:1: unknown anchor 'loop'");
}

static void test_yaml_alias_bomb_refused(void **state) {
  fx *f = *state;
  /* nine levels of ten aliases: 10^9 nodes if expanded, ~100 written */
  const char *bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                     "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                     "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                     "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                     "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                     "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                     "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
  assert_null(parse(f, bomb));
  /* by line 6 a, b, ... e stand for 111,111 nodes each: the ninth *e
   * passes the cap */
  expect_error(f, "gw.yaml:6: too many nodes (more than 1000000, aliases "
                  "counted in full)");
}

static void test_yaml_small_alias_fanout_allowed(void **state) {
  fx *f = *state;
  /* 10^4 expanded nodes is a big config, not a bomb */
  const char *ok = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                   "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                   "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n";
  gw_ynode *root = parse(f, ok);
  assert_non_null(root);
  gw_ynode *d = gw_ynode_get(root, "d");
  assert_ptr_equal(d->values[9]->values[9]->values[0], gw_ynode_get(root, "a"));
}

static char *nested(int depth) {
  char *s = malloc((size_t)depth * 2 + 8);
  size_t o = 0;
  s[o++] = 'a';
  s[o++] = ':';
  s[o++] = ' ';
  for (int i = 0; i < depth; i++)
    s[o++] = '[';
  for (int i = 0; i < depth; i++)
    s[o++] = ']';
  s[o++] = '\n';
  s[o] = '\0';
  return s;
}

static void test_yaml_depth_capped(void **state) {
  fx *f = *state;
  char *ok = nested(255); /* plus the root map: 256 */
  assert_non_null(parse(f, ok));
  free(ok);
  char *deep = nested(256);
  assert_null(parse(f, deep));
  free(deep);
  expect_error(f, "gw.yaml:1: nesting deeper than 256 levels");
}

static void test_yaml_alias_depth_capped(void **state) {
  fx *f = *state;
  /* each level is fine alone; the alias puts 200 levels under 100 */
  char *text = malloc(2048);
  size_t o = 0;
  o += (size_t)sprintf(text + o, "a: &deep ");
  for (int i = 0; i < 200; i++)
    text[o++] = '[';
  for (int i = 0; i < 200; i++)
    text[o++] = ']';
  o += (size_t)sprintf(text + o, "\nb: ");
  for (int i = 0; i < 100; i++)
    text[o++] = '[';
  o += (size_t)sprintf(text + o, "*deep");
  for (int i = 0; i < 100; i++)
    text[o++] = ']';
  text[o++] = '\n';
  text[o] = '\0';
  assert_null(parse(f, text));
  free(text);
  expect_error(f, "gw.yaml:2: nesting deeper than 256 levels");
}

static void test_yaml_duplicate_key_refused(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: 1\n"
                       "b:\n"
                       "  x: 1\n"
                       "  x: 2\n"
                       "a: 3\n"));
  /* every duplicate, in file order, not just the first */
  const char *want[] = {
      "gw.yaml:4: duplicate key 'x' (first at line 3)",
      "gw.yaml:5: duplicate key 'a' (first at line 1)",
  };
  expect_errors(f, want, 2);
}

static void test_yaml_duplicate_key_in_big_map(void **state) {
  fx *f = *state;
  char *text = malloc(100 * 16 + 64);
  size_t o = 0;
  for (int i = 0; i < 100; i++)
    o += (size_t)sprintf(text + o, "k%d: %d\n", i, i);
  o += (size_t)sprintf(text + o, "k7: again\nk50: again\nk7: thrice\n");
  assert_null(parse(f, text));
  free(text);
  const char *want[] = {
      "gw.yaml:101: duplicate key 'k7' (first at line 8)",
      "gw.yaml:102: duplicate key 'k50' (first at line 51)",
      "gw.yaml:103: duplicate key 'k7' (first at line 8)",
  };
  expect_errors(f, want, 3);
}

static void test_yaml_quoted_and_plain_keys_collide(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: 1\n\"a\": 2\n"));
  expect_error(f, "gw.yaml:2: duplicate key 'a' (first at line 1)");
}

static void test_yaml_non_scalar_key_refused(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: 1\n? [x, y]\n: 2\n"));
  expect_error(f, "gw.yaml:2: a mapping key must be a scalar, found a "
                  "sequence");
}

static void test_yaml_multiple_documents_refused(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: 1\n---\nb: 2\n"));
  expect_error(f, "gw.yaml:2: more than one YAML document in the file");
}

static void test_yaml_syntax_error_names_line(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: 1\nb: [1, 2\nc: 3\n"));
  expect_error(f, "gw.yaml:3: syntax error: did not find expected ',' or "
                  "']' (while parsing a flow sequence at line 2)");
}

static void test_yaml_bad_indentation_names_line(void **state) {
  fx *f = *state;
  assert_null(parse(f, "listen:\n  address: x\n backends: 1\n"));
  assert_int_equal(f->diag.n, 1);
  assert_true(strncmp(f->diag.lines[0], "gw.yaml:3: syntax error: ", 25) == 0);
}

static void test_yaml_invalid_utf8_refused(void **state) {
  fx *f = *state;
  assert_null(parse(f, "a: \xff\n"));
  expect_error(f, "gw.yaml: cannot read YAML: invalid leading UTF-8 octet "
                  "at byte 3");
}

static void test_yaml_nul_in_input_refused(void **state) {
  fx *f = *state;
  static const char text[] = "a: 1\nb: \0\n";
  assert_null(
      gw_ynode_parse("gw.yaml", text, sizeof(text) - 1, f->arena, &f->diag));
  assert_int_equal(f->diag.n, 1);
  assert_true(strncmp(f->diag.lines[0], "gw.yaml: cannot read YAML: ", 27) ==
              0);
}

static void test_yaml_empty_refused(void **state) {
  fx *f = *state;
  const char *empties[] = {"", "\n\n", "# only a comment\n", "---\n",
                           "--- # nothing\n...\n"};
  for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
    gw_diag_clear(&f->diag);
    assert_null(parse(f, empties[i]));
    expect_error(f, "gw.yaml: empty configuration");
  }
  /* a null scalar is a document, just not a config: config.c says so */
  gw_diag_clear(&f->diag);
  gw_ynode *root = parse(f, "~\n");
  assert_non_null(root);
  assert_string_equal(root->value, "~");
}

static void test_yaml_tags(void **state) {
  fx *f = *state;
  gw_ynode *root = parse(f, "a: !!str 3\nb: ! 4\nc: !!map {x: 1}\n");
  assert_non_null(root);
  assert_int_equal(gw_ynode_get(root, "a")->quoted, 1);
  assert_int_equal(gw_ynode_get(root, "b")->quoted, 1);
  assert_int_equal(gw_ynode_get(root, "c")->kind, GW_Y_MAP);

  assert_null(parse(f, "a: !!int 3\nb: !custom x\n"));
  const char *want[] = {
      "gw.yaml:1: unsupported tag 'tag:yaml.org,2002:int'",
      "gw.yaml:2: unsupported tag '!custom'",
  };
  expect_errors(f, want, 2);
}

static void test_yaml_load_reads_file(void **state) {
  fx *f = *state;
  char path[] = "/tmp/test_yaml_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "a: 1\nb:\n  - x\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  gw_ynode *root = gw_ynode_load(path, f->arena, &f->diag);
  assert_non_null(root);
  assert_int_equal(gw_ynode_get(root, "b")->values[0]->line, 3);

  /* errors carry the path as given */
  fd = open(path, O_WRONLY | O_TRUNC);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "a: [\n", 5), 5);
  close(fd);
  assert_null(gw_ynode_load(path, f->arena, &f->diag));
  assert_int_equal(f->diag.n, 1);
  assert_true(strncmp(f->diag.lines[0], path, strlen(path)) == 0);
  assert_true(
      strncmp(f->diag.lines[0] + strlen(path), ":2: syntax error", 16) == 0);
  unlink(path);
}

static void test_yaml_load_missing_file(void **state) {
  fx *f = *state;
  assert_null(gw_ynode_load("/nonexistent/gw.yaml", f->arena, &f->diag));
  expect_error(f, "/nonexistent/gw.yaml: cannot open: No such file or "
                  "directory");
  gw_diag_clear(&f->diag);
  assert_null(gw_ynode_load("/tmp", f->arena, &f->diag));
  expect_error(f, "/tmp: not a regular file");
}

static void test_yaml_diag_lines_and_quoting(void **state) {
  fx *f = *state;
  gw_diag_error(&f->diag, "a.yaml", 7, "bad %s %d", "thing", 3);
  gw_diag_error(&f->diag, "a.yaml", 0, "whole file");
  gw_diag_error(&f->diag, NULL, 0, "no file");
  const char *want[] = {"a.yaml:7: bad thing 3", "a.yaml: whole file",
                        "no file"};
  expect_errors(f, want, 3);
  assert_int_equal(gw_diag_count(&f->diag), 3);
  assert_int_equal(gw_diag_count(NULL), 0);
  gw_diag_clear(NULL);

  char buf[16];
  assert_string_equal(gw_diag_quote(buf, sizeof(buf), "a\nb\\", 4),
                      "a\\x0ab\\\\");
  assert_string_equal(gw_diag_quote(buf, sizeof(buf), "abcdefghijklmnop", 16),
                      "abcdefgh...");
  /* a cut never leaves half of a UTF-8 character: é is 2 bytes */
  assert_string_equal(gw_diag_quote(buf, sizeof(buf), "abcdefg\xc3\xa9xyz", 12),
                      "abcdefg...");
  assert_string_equal(gw_diag_quote(buf, sizeof(buf), "abcdef\xc3\xa9xyz", 11),
                      "abcdef\xc3\xa9...");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_yaml_tree_keeps_lines_and_styles,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_scalar_keeps_nul_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_empty_collections, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_alias_reuses_anchored_node,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_anchor_redefined_takes_latest,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_unknown_anchor_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_self_alias_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_alias_bomb_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_small_alias_fanout_allowed,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_depth_capped, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_alias_depth_capped, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_duplicate_key_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_duplicate_key_in_big_map, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_quoted_and_plain_keys_collide,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_non_scalar_key_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_multiple_documents_refused,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_syntax_error_names_line, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_bad_indentation_names_line,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_invalid_utf8_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_nul_in_input_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_empty_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_tags, setup, teardown),
      cmocka_unit_test_setup_teardown(test_yaml_load_reads_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_load_missing_file, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_yaml_diag_lines_and_quoting, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
