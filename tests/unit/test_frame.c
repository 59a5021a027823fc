/* Tests for frame.c: the incremental gRPC message decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <baton/alloc.h>
#include <baton/error.h>
#include "frame.h"

#define MAX_MSGS 64

/* What the callback saw. */
typedef struct {
  size_t n;
  uint8_t data[MAX_MSGS][512];
  size_t len[MAX_MSGS];
  int compressed[MAX_MSGS];
  const uint8_t *ptr[MAX_MSGS];
  int stop_after; /* return 99 after this many messages; 0: never */
} collector;

static int collect(void *ud, int compressed, const uint8_t *msg, size_t len) {
  collector *c = ud;
  assert_true(c->n < MAX_MSGS);
  assert_true(len <= sizeof(c->data[0]));
  assert_non_null(msg);
  memcpy(c->data[c->n], msg, len);
  c->len[c->n] = len;
  c->compressed[c->n] = compressed;
  c->ptr[c->n] = msg;
  c->n++;
  if (c->stop_after && c->n == (size_t)c->stop_after)
    return 99;
  return 0;
}

/* Appends one framed message to buf; returns the new length. */
static size_t frame(uint8_t *buf, size_t at, int compressed, const char *body,
                    size_t len) {
  bt__frame_header_write(buf + at, compressed, (uint32_t)len);
  memcpy(buf + at + BT_FRAME_HEADER_LEN, body, len);
  return at + BT_FRAME_HEADER_LEN + len;
}

static void test_frame_header_write(void **state) {
  uint8_t h[5];
  bt__frame_header_write(h, 0, 0x01020304);
  assert_memory_equal(h, "\x00\x01\x02\x03\x04", 5);
  bt__frame_header_write(h, 1, 5);
  assert_memory_equal(h, "\x01\x00\x00\x00\x05", 5);
  /* any non-zero flag is written as 1 */
  bt__frame_header_write(h, 7, UINT32_MAX);
  assert_memory_equal(h, "\x01\xff\xff\xff\xff", 5);
}

static void test_frame_whole_message_is_zero_copy(void **state) {
  uint8_t buf[64];
  size_t n = frame(buf, 0, 0, "hello", 5);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 1024);
  collector c = {0};
  long base = bt_alloc_live();
  assert_int_equal(bt__frame_decoder_feed(&d, buf, n, collect, &c), 0);
  assert_int_equal(c.n, 1);
  assert_int_equal(c.len[0], 5);
  assert_memory_equal(c.data[0], "hello", 5);
  assert_int_equal(c.compressed[0], 0);
  assert_ptr_equal(c.ptr[0], buf + 5);
  assert_int_equal(bt_alloc_live(), base);
  assert_false(bt__frame_decoder_partial(&d));
  bt__frame_decoder_clear(&d);
}

static void test_frame_several_messages_in_one_feed(void **state) {
  uint8_t buf[256];
  size_t n = frame(buf, 0, 0, "one", 3);
  n = frame(buf, n, 1, "two!", 4);
  n = frame(buf, n, 0, "", 0);
  n = frame(buf, n, 0, "three", 5);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 1024);
  collector c = {0};
  assert_int_equal(bt__frame_decoder_feed(&d, buf, n, collect, &c), 0);
  assert_int_equal(c.n, 4);
  assert_memory_equal(c.data[0], "one", 3);
  assert_int_equal(c.compressed[1], 1);
  assert_memory_equal(c.data[1], "two!", 4);
  assert_int_equal(c.len[2], 0);
  assert_memory_equal(c.data[3], "three", 5);
  /* all in place */
  assert_ptr_equal(c.ptr[0], buf + 5);
  assert_ptr_equal(c.ptr[1], buf + 13);
  assert_ptr_equal(c.ptr[3], buf + 27);
  assert_null(d.buf);
  bt__frame_decoder_clear(&d);
}

static void test_frame_byte_by_byte(void **state) {
  uint8_t buf[256];
  size_t n = frame(buf, 0, 0, "abc", 3);
  n = frame(buf, n, 0, "", 0);
  n = frame(buf, n, 1, "defghij", 7);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 1024);
  collector c = {0};
  for (size_t i = 0; i < n; i++) {
    assert_int_equal(bt__frame_decoder_feed(&d, buf + i, 1, collect, &c), 0);
    /* partial exactly while inside a message */
    int inside = !(i + 1 == 8 || i + 1 == 13 || i + 1 == n);
    assert_int_equal(bt__frame_decoder_partial(&d), inside);
  }
  assert_int_equal(c.n, 3);
  assert_int_equal(c.len[0], 3);
  assert_memory_equal(c.data[0], "abc", 3);
  assert_int_equal(c.len[1], 0);
  assert_int_equal(c.len[2], 7);
  assert_int_equal(c.compressed[2], 1);
  assert_memory_equal(c.data[2], "defghij", 7);
  bt__frame_decoder_clear(&d);
}

static void test_frame_message_straddles_feeds(void **state) {
  uint8_t buf[256];
  char body[100];
  for (int i = 0; i < 100; i++)
    body[i] = (char)('a' + i % 26);
  size_t n = frame(buf, 0, 0, body, 100);
  n = frame(buf, n, 0, "tail", 4);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 1024);
  collector c = {0};
  /* prefix plus 40 bytes, then 60 bytes plus the whole next message */
  assert_int_equal(bt__frame_decoder_feed(&d, buf, 45, collect, &c), 0);
  assert_int_equal(c.n, 0);
  assert_true(bt__frame_decoder_partial(&d));
  assert_int_equal(bt__frame_decoder_feed(&d, buf + 45, n - 45, collect, &c),
                   0);
  assert_int_equal(c.n, 2);
  assert_int_equal(c.len[0], 100);
  assert_memory_equal(c.data[0], body, 100);
  /* the straddling one came from the decoder's buffer, the next in place */
  assert_true(c.ptr[0] < buf || c.ptr[0] >= buf + sizeof(buf));
  assert_ptr_equal(c.ptr[1], buf + 110);
  assert_memory_equal(c.data[1], "tail", 4);
  assert_false(bt__frame_decoder_partial(&d));
  bt__frame_decoder_clear(&d);
}

static void test_frame_prefix_split_then_body_in_place(void **state) {
  uint8_t buf[64];
  size_t n = frame(buf, 0, 0, "xyz", 3);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 1024);
  collector c = {0};
  long base = bt_alloc_live();
  assert_int_equal(bt__frame_decoder_feed(&d, buf, 2, collect, &c), 0);
  assert_int_equal(bt__frame_decoder_feed(&d, buf + 2, 3, collect, &c), 0);
  assert_true(bt__frame_decoder_partial(&d));
  /* the body arrives whole: no buffering needed */
  assert_int_equal(bt__frame_decoder_feed(&d, buf + 5, n - 5, collect, &c), 0);
  assert_int_equal(c.n, 1);
  assert_ptr_equal(c.ptr[0], buf + 5);
  assert_int_equal(bt_alloc_live(), base);
  bt__frame_decoder_clear(&d);
}

static void test_frame_empty_message(void **state) {
  uint8_t buf[16];
  size_t n = frame(buf, 0, 1, "", 0);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 0); /* a limit of 0 still admits empty ones */
  collector c = {0};
  assert_int_equal(bt__frame_decoder_feed(&d, buf, n, collect, &c), 0);
  assert_int_equal(c.n, 1);
  assert_int_equal(c.len[0], 0);
  assert_int_equal(c.compressed[0], 1);
  assert_false(bt__frame_decoder_partial(&d));
  /* an empty feed does nothing */
  assert_int_equal(bt__frame_decoder_feed(&d, buf, 0, collect, &c), 0);
  assert_int_equal(c.n, 1);
  bt__frame_decoder_clear(&d);
}

static void test_frame_over_limit_refused_before_buffering(void **state) {
  uint8_t hdr[5];
  bt__frame_header_write(hdr, 0, 101);
  long base = bt_alloc_live();
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 100);
  collector c = {0};
  assert_int_equal(bt__frame_decoder_feed(&d, hdr, 5, collect, &c),
                   BT_ERR_TOO_LARGE);
  assert_int_equal(c.n, 0);
  assert_null(d.buf);
  assert_int_equal(bt_alloc_live(), base);
  bt__frame_decoder_clear(&d);

  /* a 4 GiB claim, prefix fed a byte at a time: refused on the last byte */
  bt__frame_header_write(hdr, 0, UINT32_MAX);
  bt__frame_decoder_init(&d, 100);
  for (int i = 0; i < 4; i++)
    assert_int_equal(bt__frame_decoder_feed(&d, hdr + i, 1, collect, &c), 0);
  assert_int_equal(bt__frame_decoder_feed(&d, hdr + 4, 1, collect, &c),
                   BT_ERR_TOO_LARGE);
  assert_null(d.buf);
  assert_int_equal(bt_alloc_live(), base);
  bt__frame_decoder_clear(&d);
}

static void test_frame_at_limit_accepted(void **state) {
  uint8_t buf[128];
  char body[100];
  memset(body, 'q', sizeof(body));
  size_t n = frame(buf, 0, 0, body, 100);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 100);
  collector c = {0};
  /* straddling, so the buffer is used up to exactly the limit */
  assert_int_equal(bt__frame_decoder_feed(&d, buf, 50, collect, &c), 0);
  assert_int_equal(bt__frame_decoder_feed(&d, buf + 50, n - 50, collect, &c),
                   0);
  assert_int_equal(c.n, 1);
  assert_int_equal(c.len[0], 100);
  assert_memory_equal(c.data[0], body, 100);
  assert_true(d.buf_cap <= 100);
  bt__frame_decoder_clear(&d);
}

static void test_frame_bad_flags(void **state) {
  const uint8_t flags[] = {2, 0x80, 0xFF};
  for (size_t i = 0; i < sizeof(flags); i++) {
    uint8_t buf[16] = {flags[i], 0, 0, 0, 1, 'x'};
    bt_frame_decoder d;
    bt__frame_decoder_init(&d, 100);
    collector c = {0};
    assert_int_equal(bt__frame_decoder_feed(&d, buf, 6, collect, &c),
                     BT_ERR_PARSE);
    assert_int_equal(c.n, 0);
    bt__frame_decoder_clear(&d);
  }
  /* a bad flag after a good message: the good one is delivered first */
  uint8_t buf[32];
  size_t n = frame(buf, 0, 0, "ok", 2);
  buf[n++] = 3;
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 100);
  collector c = {0};
  assert_int_equal(bt__frame_decoder_feed(&d, buf, n, collect, &c), 0);
  assert_int_equal(c.n, 1);
  uint8_t rest[4] = {0, 0, 0, 0};
  assert_int_equal(bt__frame_decoder_feed(&d, rest, 4, collect, &c),
                   BT_ERR_PARSE);
  bt__frame_decoder_clear(&d);
}

static void test_frame_callback_error_stops(void **state) {
  uint8_t buf[64];
  size_t n = frame(buf, 0, 0, "a", 1);
  n = frame(buf, n, 0, "b", 1);
  n = frame(buf, n, 0, "c", 1);
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 100);
  collector c = {0};
  c.stop_after = 2;
  assert_int_equal(bt__frame_decoder_feed(&d, buf, n, collect, &c), 99);
  assert_int_equal(c.n, 2);
  assert_memory_equal(c.data[1], "b", 1);
  bt__frame_decoder_clear(&d);

  /* also when the stopping message was buffered */
  bt__frame_decoder_init(&d, 100);
  collector c2 = {0};
  c2.stop_after = 1;
  assert_int_equal(bt__frame_decoder_feed(&d, buf, 3, collect, &c2), 0);
  assert_int_equal(bt__frame_decoder_feed(&d, buf + 3, n - 3, collect, &c2),
                   99);
  assert_int_equal(c2.n, 1);
  bt__frame_decoder_clear(&d);
}

static void test_frame_clear_releases_buffer(void **state) {
  uint8_t buf[64];
  size_t n = frame(buf, 0, 0, "0123456789", 10);
  long base = bt_alloc_live();
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, 100);
  collector c = {0};
  /* stop mid-body: the buffer holds a partial message */
  assert_int_equal(bt__frame_decoder_feed(&d, buf, n - 3, collect, &c), 0);
  assert_true(bt__frame_decoder_partial(&d));
  assert_int_equal(bt_alloc_live(), base + 1);
  bt__frame_decoder_clear(&d);
  assert_int_equal(bt_alloc_live(), base);
  assert_false(bt__frame_decoder_partial(&d));
  bt__frame_decoder_clear(NULL);
}

static int count_big(void *ud, int compressed, const uint8_t *msg, size_t len) {
  size_t *seen = ud;
  for (size_t i = 0; i < len; i++)
    assert_int_equal(msg[i], 'z');
  *seen = len;
  return 0;
}

static void test_frame_large_buffer_released_after_message(void **state) {
  enum { BIG = 200000 };
  uint8_t *buf = bt_malloc(BIG + 5);
  bt__frame_header_write(buf, 0, BIG);
  memset(buf + 5, 'z', BIG);
  long base = bt_alloc_live();
  bt_frame_decoder d;
  bt__frame_decoder_init(&d, BIG);
  size_t seen = 0;
  assert_int_equal(bt__frame_decoder_feed(&d, buf, 1000, count_big, &seen), 0);
  assert_int_equal(bt_alloc_live(), base + 1);
  assert_int_equal(
      bt__frame_decoder_feed(&d, buf + 1000, BIG + 5 - 1000, count_big, &seen),
      0);
  assert_int_equal(seen, BIG);
  /* an idle stream does not keep a large buffer */
  assert_null(d.buf);
  assert_int_equal(bt_alloc_live(), base);
  bt__frame_decoder_clear(&d);
  bt_free(buf);
}

/* Random chunkings of a stream of messages all decode to the same messages. */
static void test_frame_random_chunking(void **state) {
  uint8_t stream[4096];
  size_t n = 0;
  char body[300];
  size_t lens[20];
  for (size_t m = 0; m < 20; m++) {
    lens[m] = (m * 61) % 300;
    for (size_t i = 0; i < lens[m]; i++)
      body[i] = (char)(m + i);
    n = frame(stream, n, (int)(m & 1), body, lens[m]);
  }
  uint32_t seed = 12345;
  for (int round = 0; round < 200; round++) {
    bt_frame_decoder d;
    bt__frame_decoder_init(&d, 300);
    collector *c = bt_calloc(1, sizeof(*c));
    size_t at = 0;
    while (at < n) {
      seed = seed * 1103515245u + 12345u;
      size_t chunk = 1 + (seed >> 16) % (round < 100 ? 16 : 700);
      if (chunk > n - at)
        chunk = n - at;
      assert_int_equal(
          bt__frame_decoder_feed(&d, stream + at, chunk, collect, c), 0);
      at += chunk;
    }
    assert_false(bt__frame_decoder_partial(&d));
    assert_int_equal(c->n, 20);
    for (size_t m = 0; m < 20; m++) {
      assert_int_equal(c->len[m], lens[m]);
      assert_int_equal(c->compressed[m], (int)(m & 1));
      for (size_t i = 0; i < lens[m]; i++)
        assert_int_equal(c->data[m][i], (uint8_t)(m + i));
    }
    bt_free(c);
    bt__frame_decoder_clear(&d);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_header_write),
      cmocka_unit_test(test_frame_whole_message_is_zero_copy),
      cmocka_unit_test(test_frame_several_messages_in_one_feed),
      cmocka_unit_test(test_frame_byte_by_byte),
      cmocka_unit_test(test_frame_message_straddles_feeds),
      cmocka_unit_test(test_frame_prefix_split_then_body_in_place),
      cmocka_unit_test(test_frame_empty_message),
      cmocka_unit_test(test_frame_over_limit_refused_before_buffering),
      cmocka_unit_test(test_frame_at_limit_accepted),
      cmocka_unit_test(test_frame_bad_flags),
      cmocka_unit_test(test_frame_callback_error_stops),
      cmocka_unit_test(test_frame_clear_releases_buffer),
      cmocka_unit_test(test_frame_large_buffer_released_after_message),
      cmocka_unit_test(test_frame_random_chunking),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
