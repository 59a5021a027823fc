/* Tests for h2scan.c: frames on streams the client ended, PRIORITY on
 * stream 0 and on itself, stream ids out of order, and the same answers
 * whatever the byte boundaries between feeds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "h2scan.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

typedef struct wire {
  uint8_t b[16384];
  size_t n;
} wire;

static void frame(wire *w, uint8_t type, uint8_t flags, int32_t stream,
                  const uint8_t *payload, uint32_t len) {
  uint8_t *p = w->b + w->n;
  p[0] = (uint8_t)(len >> 16);
  p[1] = (uint8_t)(len >> 8);
  p[2] = (uint8_t)len;
  p[3] = type;
  p[4] = flags;
  p[5] = (uint8_t)((uint32_t)stream >> 24);
  p[6] = (uint8_t)(stream >> 16);
  p[7] = (uint8_t)(stream >> 8);
  p[8] = (uint8_t)stream;
  if (len)
    memcpy(p + 9, payload, len);
  w->n += 9 + len;
}

static void start(wire *w) {
  memcpy(w->b, PREFACE, 24);
  w->n = 24;
  frame(w, 0x4, 0, 0, NULL, 0); /* SETTINGS */
}

static const uint8_t block[] = {0x82, 0x86, 0x84}; /* a header block */

static void headers(wire *w, int32_t stream, uint8_t flags) {
  frame(w, 0x1, 0x4 | flags, stream, block, sizeof(block));
}

static void priority(wire *w, int32_t stream, int32_t dep) {
  uint8_t p[5] = {(uint8_t)((uint32_t)dep >> 24), (uint8_t)(dep >> 16),
                  (uint8_t)(dep >> 8), (uint8_t)dep, 16};
  frame(w, 0x2, 0, stream, p, 5);
}

/* Feeds w in pieces of step bytes; returns the verdict and where the good
 * bytes end, counted from the start of w (a frame header that began in an
 * earlier piece was handed on with it: then nothing of the last piece is
 * good). */
static bt_h2scan_verdict scan(const wire *w, size_t step, size_t *ok_at) {
  bt_h2scan s;
  bt__h2scan_init(&s);
  size_t off = 0;
  while (off < w->n) {
    size_t n = w->n - off < step ? w->n - off : step;
    size_t ok;
    bt_h2scan_verdict v = bt__h2scan_feed(&s, w->b + off, n, &ok);
    if (v != BT_H2SCAN_OK) {
      *ok_at = off + ok;
      return v;
    }
    off += n;
  }
  *ok_at = w->n;
  return BT_H2SCAN_OK;
}

/* Every piece size gives the same verdict; no byte at or after the start
 * of the offending frame is called good unless it was in an earlier piece
 * (the last piece's good bytes stop at the frame, or are none). */
static void expect(const wire *w, bt_h2scan_verdict want, size_t frame_at) {
  for (size_t step = 1; step <= w->n; step++) {
    size_t ok_at;
    assert_int_equal(scan(w, step, &ok_at), want);
    if (want != BT_H2SCAN_OK)
      assert_true(ok_at <= frame_at || ok_at % step == 0);
    if (step == w->n && want != BT_H2SCAN_OK)
      assert_int_equal(ok_at, frame_at);
  }
}

static void test_h2scan_a_well_behaved_client_passes(void **state) {
  wire w;
  start(&w);
  uint8_t msg[20] = {0};
  for (int32_t id = 1; id < 200; id += 2) {
    headers(&w, id, 0);
    frame(&w, 0x0, 0x1, id, msg, sizeof(msg));             /* DATA END_STREAM */
    frame(&w, 0x8, 0, id, (const uint8_t *)"\0\0\1\0", 4); /* WINDOW_UPDATE */
  }
  frame(&w, 0x3, 0, 199, (const uint8_t *)"\0\0\0\x8", 4); /* RST_STREAM */
  expect(&w, BT_H2SCAN_OK, 0);
}

static void test_h2scan_data_after_end_stream(void **state) {
  wire w;
  start(&w);
  headers(&w, 1, 0x1); /* END_STREAM */
  size_t at = w.n;
  frame(&w, 0x0, 0, 1, (const uint8_t *)"test", 4);
  expect(&w, BT_H2SCAN_STREAM_CLOSED, at);
}

static void test_h2scan_headers_after_rst_stream(void **state) {
  wire w;
  start(&w);
  headers(&w, 1, 0);
  frame(&w, 0x3, 0, 1, (const uint8_t *)"\0\0\0\x8", 4);
  size_t at = w.n;
  headers(&w, 1, 0);
  expect(&w, BT_H2SCAN_STREAM_CLOSED, at);
}

static void test_h2scan_trailers_end_the_stream(void **state) {
  wire w;
  start(&w);
  headers(&w, 1, 0);
  frame(&w, 0x0, 0, 1, (const uint8_t *)"body", 4);
  headers(&w, 1, 0x1); /* trailers + END_STREAM: legal */
  frame(&w, 0x8, 0, 1, (const uint8_t *)"\0\0\1\0", 4);
  expect(&w, BT_H2SCAN_OK, 0);
  size_t at = w.n;
  frame(&w, 0x0, 0, 1, (const uint8_t *)"more", 4);
  expect(&w, BT_H2SCAN_STREAM_CLOSED, at);
}

static void test_h2scan_priority_rules(void **state) {
  wire w;
  start(&w);
  priority(&w, 3, 1); /* fine: a stream depending on another */
  expect(&w, BT_H2SCAN_OK, 0);
  size_t at = w.n;
  priority(&w, 0, 1);
  expect(&w, BT_H2SCAN_PRIORITY_STREAM_0, at);
  start(&w);
  at = w.n;
  priority(&w, 5, 5);
  expect(&w, BT_H2SCAN_PRIORITY_SELF, at);
}

static void test_h2scan_priority_frames_are_counted(void **state) {
  wire w;
  start(&w);
  for (int i = 0; i < 10; i++)
    priority(&w, 3, 1);
  bt_h2scan s;
  bt__h2scan_init(&s);
  size_t ok;
  assert_int_equal(bt__h2scan_feed(&s, w.b, w.n, &ok), BT_H2SCAN_OK);
  assert_int_equal(s.priority_frames, 10);
}

static void test_h2scan_stream_ids_must_increase(void **state) {
  wire w;
  start(&w);
  headers(&w, 5, 0);
  size_t at = w.n;
  headers(&w, 3, 0);
  expect(&w, BT_H2SCAN_STREAM_ID_ORDER, at);
}

static void test_h2scan_trailers_of_an_older_stream_pass(void **state) {
  wire w;
  start(&w);
  /* Stream 1 stays open while 100 newer streams come and go; its
   * trailers are older than what is remembered and must pass. */
  headers(&w, 1, 0);
  for (int32_t id = 3; id < 203; id += 2)
    headers(&w, id, 0x1);
  headers(&w, 1, 0x1);
  expect(&w, BT_H2SCAN_OK, 0);
  /* A skipped id inside the remembered range was never opened. */
  wire v;
  start(&v);
  for (int32_t id = 1; id < 21; id += 4) /* 1, 5, 9, 13, 17 */
    headers(&v, id, 0x1);
  size_t at = v.n;
  headers(&v, 7, 0);
  expect(&v, BT_H2SCAN_STREAM_ID_ORDER, at);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_h2scan_a_well_behaved_client_passes),
      cmocka_unit_test(test_h2scan_data_after_end_stream),
      cmocka_unit_test(test_h2scan_headers_after_rst_stream),
      cmocka_unit_test(test_h2scan_trailers_end_the_stream),
      cmocka_unit_test(test_h2scan_priority_rules),
      cmocka_unit_test(test_h2scan_priority_frames_are_counted),
      cmocka_unit_test(test_h2scan_stream_ids_must_increase),
      cmocka_unit_test(test_h2scan_trailers_of_an_older_stream_pass),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
