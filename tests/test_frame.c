/* test_frame.c - the length-prefixed frame decoder and encoder: known bytes, byte-by-
 * byte and chunked pushing, many frames in one push, limits enforced before any payload
 * byte is stored, sticky failures, the per-type table, atomic writes. */
#include <string.h>

#include "err.h"
#include "frame.h"
#include "vec.h"

#define GUARD 0xEE

struct want {
	uint8_t type;
	const char *payload_hex;
};

/* A stream of frames with different types and sizes, empty payload included. */
static const struct want stream_frames[] = {
	{ 0x01, "68656C6C6F" },
	{ 0x02, "" },
	{ 0x7F, "00" },
	{ 0xFF, "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E" },
	{ 0x00, "AABBCC" },
};

static size_t build_stream(uint8_t *out, size_t cap)
{
	struct wr w = wr_init(out, cap);
	uint8_t p[64];

	for (size_t i = 0; i < sizeof(stream_frames) / sizeof(stream_frames[0]); i++) {
		size_t n = hexbuf(stream_frames[i].payload_hex, p, sizeof(p));
		assert_int_equal(frame_write(&w, stream_frames[i].type, p, n, 64), 0);
	}
	return w.len;
}

/* Pushes the stream in chunks of the given sizes (cycled) and checks every frame. */
static void pump_and_check(const uint8_t *s, size_t n, const size_t *chunks, size_t nchunks)
{
	uint8_t buf[64];
	struct frame_rd f;
	size_t off = 0, got = 0, ci = 0;

	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 65, NULL), 0);
	while (off < n) {
		size_t c = chunks[ci++ % nchunks], end = off + c > n ? n : off + c;

		while (off < end) {
			off += frame_rd_push(&f, s + off, end - off);
			assert_true(frame_rd_state(&f) >= 0);
			if (frame_rd_state(&f) == FRAME_READY) {
				uint8_t type;
				const uint8_t *p;
				size_t pn;

				assert_true(got < sizeof(stream_frames) / sizeof(stream_frames[0]));
				assert_int_equal(frame_rd_take(&f, &type, &p, &pn), 0);
				assert_int_equal(type, stream_frames[got].type);
				assert_hex_equal(p, pn, stream_frames[got].payload_hex);
				if (pn == 0)
					assert_null(p);
				got++;
			}
		}
	}
	assert_int_equal(got, sizeof(stream_frames) / sizeof(stream_frames[0]));
	assert_int_equal(frame_rd_state(&f), FRAME_NEED_MORE);
}

static void test_write_known(void **state)
{
	uint8_t out[32];
	struct wr w = wr_init(out, sizeof(out));
	(void)state;

	assert_int_equal(frame_write(&w, 0x01, (const uint8_t *)"hello", 5, 6), 0);
	assert_hex_equal(out, w.len, "000000060168656C6C6F");
	w = wr_init(out, sizeof(out));
	assert_int_equal(frame_write(&w, 0xA5, NULL, 0, 1), 0);
	assert_hex_equal(out, w.len, "00000001A5");
}

static void test_byte_by_byte(void **state)
{
	uint8_t s[256];
	size_t n = build_stream(s, sizeof(s));
	const size_t one[] = { 1 };
	(void)state;
	pump_and_check(s, n, one, 1);
}

static void test_chunks(void **state)
{
	uint8_t s[256];
	size_t n = build_stream(s, sizeof(s));
	const size_t odd[] = { 3, 1, 7, 2, 11, 5 };
	const size_t all[] = { 1000 };
	(void)state;
	pump_and_check(s, n, odd, sizeof(odd) / sizeof(odd[0]));
	pump_and_check(s, n, all, 1);
	for (size_t c = 2; c < 40; c++)
		pump_and_check(s, n, &c, 1);
}

/* One push of many frames stops at each frame's end and waits to be taken. */
static void test_many_in_one_push(void **state)
{
	uint8_t s[256], buf[64], type;
	size_t n = build_stream(s, sizeof(s)), used, pn;
	const uint8_t *p;
	struct frame_rd f;
	(void)state;

	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 65, NULL), 0);
	used = frame_rd_push(&f, s, n);
	assert_int_equal(used, 4 + 1 + 5);
	assert_int_equal(frame_rd_state(&f), FRAME_READY);
	/* While a frame waits, nothing more is consumed. */
	assert_int_equal(frame_rd_push(&f, s + used, n - used), 0);
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), 0);
	assert_int_equal(type, 0x01);
	assert_hex_equal(p, pn, "68656C6C6F");
	assert_int_equal(frame_rd_state(&f), FRAME_NEED_MORE);
	assert_int_equal(frame_rd_push(&f, s + used, n - used), 5);
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), 0);
	assert_int_equal(type, 0x02);
	assert_int_equal(pn, 0);
	assert_null(p);
	/* Taking twice: the second has no frame. */
	type = 0x33;
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), TB_E_TRUNC);
	assert_int_equal(type, 0x33);
}

/* Every cut of a valid stream just wants more: never an error, never a frame early. */
static void test_truncations(void **state)
{
	uint8_t s[16], buf[8];
	struct wr w = wr_init(s, sizeof(s));
	struct frame_rd f;
	(void)state;

	assert_int_equal(frame_write(&w, 0x09, (const uint8_t *)"abcdef", 6, 8), 0);
	for (size_t k = 0; k < w.len; k++) {
		assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 8, NULL), 0);
		assert_int_equal(frame_rd_push(&f, s, k), k);
		assert_int_equal(frame_rd_state(&f), FRAME_NEED_MORE);
	}
	assert_int_equal(frame_rd_push(&f, s + w.len - 1, 1), 1);
	assert_int_equal(frame_rd_state(&f), FRAME_READY);
}

/* An oversize frame fails on its 4th length byte; not one payload byte is stored. */
static void test_oversize_before_payload(void **state)
{
	uint8_t s[64], buf[16];
	struct frame_rd f;
	uint8_t type = 0x44;
	const uint8_t *p = NULL;
	size_t pn = 77;
	(void)state;

	/* N = 17 against max 16 (payload 15 fits buf, but the limit is 16). */
	memset(s, 0x5A, sizeof(s));
	s[0] = 0; s[1] = 0; s[2] = 0; s[3] = 17; s[4] = 0x01;
	memset(buf, GUARD, sizeof(buf));
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 16, NULL), 0);
	assert_int_equal(frame_rd_push(&f, s, 3), 3);
	assert_int_equal(frame_rd_state(&f), FRAME_NEED_MORE);
	assert_int_equal(frame_rd_push(&f, s + 3, sizeof(s) - 3), 1);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_OVERSIZE);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], GUARD);
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), TB_E_FRAME_OVERSIZE);
	assert_int_equal(type, 0x44);
	assert_null(p);
	assert_int_equal(pn, 77);
	/* A length no buffer could hold fails the same way. */
	memset(s, 0xFF, 4);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 16, NULL), 0);
	assert_int_equal(frame_rd_push(&f, s, sizeof(s)), 4);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_OVERSIZE);
	/* N = max is accepted. */
	s[0] = 0; s[1] = 0; s[2] = 0; s[3] = 16;
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 16, NULL), 0);
	assert_int_equal(frame_rd_push(&f, s, 4 + 16), 4 + 16);
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), 0);
	assert_int_equal(pn, 15);
	assert_int_equal(type, 0x01);
}

static void test_empty_and_sticky(void **state)
{
	uint8_t buf[8], good[16];
	const uint8_t zero[] = { 0, 0, 0, 0, 0x01 };
	struct wr w = wr_init(good, sizeof(good));
	struct frame_rd f;
	(void)state;

	assert_int_equal(frame_write(&w, 0x01, (const uint8_t *)"ok", 2, 8), 0);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 8, NULL), 0);
	assert_int_equal(frame_rd_push(&f, zero, sizeof(zero)), 4);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_EMPTY);
	/* Sticky: a valid frame afterwards is not even looked at. */
	assert_int_equal(frame_rd_push(&f, good, w.len), 0);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_EMPTY);
	/* Only a new init starts over. */
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 8, NULL), 0);
	assert_int_equal(frame_rd_push(&f, good, w.len), w.len);
	assert_int_equal(frame_rd_state(&f), FRAME_READY);
	/* NULL with a length is a caller bug; it sticks too. */
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 8, NULL), 0);
	assert_int_equal(frame_rd_push(&f, NULL, 0), 0);
	assert_int_equal(frame_rd_state(&f), FRAME_NEED_MORE);
	assert_int_equal(frame_rd_push(&f, NULL, 3), 0);
	assert_int_equal(frame_rd_state(&f), TB_E_INVAL);
}

static void test_type_table(void **state)
{
	static uint32_t table[FRAME_TYPES];
	uint8_t buf[32], s[64], type;
	const uint8_t *p;
	size_t pn;
	struct frame_rd f;
	struct wr w;
	(void)state;

	table[0x01] = 11;  /* payload up to 10 */
	table[0x02] = 1;   /* empty payload only */
	table[0x03] = 500; /* above the overall max: the overall max wins */
	/* Allowed types within their limits. */
	w = wr_init(s, sizeof(s));
	assert_int_equal(frame_write(&w, 0x01, (const uint8_t *)"0123456789", 10, 11), 0);
	assert_int_equal(frame_write(&w, 0x02, NULL, 0, 1), 0);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 20, table), 0);
	assert_int_equal(frame_rd_push(&f, s, w.len), 15);
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), 0);
	assert_int_equal(type, 0x01);
	assert_int_equal(frame_rd_push(&f, s + 15, w.len - 15), 5);
	assert_int_equal(frame_rd_take(&f, &type, &p, &pn), 0);
	assert_int_equal(type, 0x02);
	assert_int_equal(pn, 0);
	/* A refused type fails on its type byte; its payload is not stored. */
	memset(buf, GUARD, sizeof(buf));
	w = wr_init(s, sizeof(s));
	assert_int_equal(frame_write(&w, 0x04, (const uint8_t *)"xy", 2, 20), 0);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 20, table), 0);
	assert_int_equal(frame_rd_push(&f, s, w.len), 5);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_TYPE);
	assert_int_equal(buf[0], GUARD);
	/* Over the type's own limit: oversize, on the type byte. */
	w = wr_init(s, sizeof(s));
	assert_int_equal(frame_write(&w, 0x02, (const uint8_t *)"z", 1, 20), 0);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 20, table), 0);
	assert_int_equal(frame_rd_push(&f, s, w.len), 5);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_OVERSIZE);
	assert_int_equal(buf[0], GUARD);
	/* The overall max applies to types with a larger entry. */
	s[0] = 0; s[1] = 0; s[2] = 0; s[3] = 21; s[4] = 0x03;
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 20, table), 0);
	assert_int_equal(frame_rd_push(&f, s, 5), 4);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_OVERSIZE);
	/* Type 0 has entry 0: refused. */
	s[3] = 1; s[4] = 0x00;
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 20, table), 0);
	assert_int_equal(frame_rd_push(&f, s, 5), 5);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_TYPE);
}

static void test_init_and_set_max(void **state)
{
	uint8_t buf[8], s[16];
	struct frame_rd f, guard;
	struct wr w;
	(void)state;

	memset(&f, 0x5A, sizeof(f));
	memset(&guard, 0x5A, sizeof(guard));
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 0, NULL), TB_E_INVAL);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 10, NULL), TB_E_INVAL);
	assert_int_equal(frame_rd_init(&f, NULL, 4, 2, NULL), TB_E_INVAL);
	assert_memory_equal(&f, &guard, sizeof(f));
	assert_int_equal(frame_rd_init(&f, NULL, 0, 1, NULL), 0);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 9, NULL), 0);
	/* A small cap (say before authentication), raised afterwards. */
	assert_int_equal(frame_rd_set_max(&f, 10), TB_E_INVAL);
	assert_int_equal(frame_rd_set_max(&f, 0), TB_E_INVAL);
	assert_int_equal(frame_rd_set_max(&f, 3), 0);
	w = wr_init(s, sizeof(s));
	assert_int_equal(frame_write(&w, 0x01, (const uint8_t *)"abc", 3, 9), 0);
	assert_int_equal(frame_rd_push(&f, s, w.len), 4);
	assert_int_equal(frame_rd_state(&f), TB_E_FRAME_OVERSIZE);
	assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), 3, NULL), 0);
	assert_int_equal(frame_rd_set_max(&f, 9), 0);
	assert_int_equal(frame_rd_push(&f, s, w.len), w.len);
	assert_int_equal(frame_rd_state(&f), FRAME_READY);
	/* The state is a fixed, small struct. */
	assert_true(sizeof(struct frame_rd) <= 64);
}

static void test_write_errors(void **state)
{
	uint8_t out[16];
	struct wr w;
	(void)state;

	w = wr_init(out, sizeof(out));
	assert_int_equal(frame_write(&w, 1, (const uint8_t *)"abcd", 4, 4), TB_E_FRAME_OVERSIZE);
	assert_int_equal(frame_write(&w, 1, NULL, 0, 0), TB_E_FRAME_OVERSIZE);
	assert_int_equal(frame_write(&w, 1, NULL, 2, 8), TB_E_INVAL);
	assert_int_equal(w.len, 0);
	for (size_t cap = 0; cap < 9; cap++) {
		memset(out, GUARD, sizeof(out));
		w = wr_init(out, cap);
		assert_int_equal(frame_write(&w, 1, (const uint8_t *)"abcd", 4, 5), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], GUARD);
	}
	w = wr_init(out, 9);
	assert_int_equal(frame_write(&w, 1, (const uint8_t *)"abcd", 4, 5), 0);
	assert_int_equal(w.len, 9);
	assert_hex_equal(out, 9, "000000050161626364");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_known),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_many_in_one_push),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_oversize_before_payload),
		cmocka_unit_test(test_empty_and_sticky),
		cmocka_unit_test(test_type_table),
		cmocka_unit_test(test_init_and_set_max),
		cmocka_unit_test(test_write_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
