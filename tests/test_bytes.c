/* test_bytes.c - the bounded reader and writer: big-endian values, zero-copy views,
 * and that every call which fails (too short, no room) changes neither the
 * reader/writer nor the output. */
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "vec.h"

static const uint8_t src[9] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x10 };

static void test_getters_values(void **state)
{
	struct rd r = rd_init(src, sizeof(src));
	uint8_t u8;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	(void)state;

	assert_int_equal(rd_u8(&r, &u8), 0);
	assert_int_equal(u8, 0x01);
	assert_int_equal(rd_left(&r), 8);
	r = rd_init(src, sizeof(src));
	assert_int_equal(rd_u16be(&r, &u16), 0);
	assert_int_equal(u16, 0x0123);
	r = rd_init(src, sizeof(src));
	assert_int_equal(rd_u24be(&r, &u32), 0);
	assert_int_equal(u32, 0x012345);
	r = rd_init(src, sizeof(src));
	assert_int_equal(rd_u32be(&r, &u32), 0);
	assert_int_equal(u32, 0x01234567);
	assert_ptr_equal(r.p, src + 4);
	r = rd_init(src, sizeof(src));
	assert_int_equal(rd_u64be(&r, &u64), 0);
	assert_true(u64 == 0x0123456789ABCDEFull);
	assert_int_equal(rd_left(&r), 1);
	assert_int_equal(rd_end(&r), TB_E_LEFTOVER);
	assert_int_equal(rd_u8(&r, &u8), 0);
	assert_int_equal(u8, 0x10);
	assert_int_equal(rd_end(&r), 0);
}

/* Each fixed-size getter on every too-short input: TB_E_TRUNC, nothing moves. */
static void test_getters_short(void **state)
{
	(void)state;
	for (size_t have = 0; have < 8; have++) {
		struct rd r = rd_init(src, have);
		uint8_t u8 = 0x77;
		uint16_t u16 = 0x7777;
		uint32_t u32 = 0x77777777;
		uint64_t u64 = 0x7777777777777777ull;

		if (have < 1)
			assert_int_equal(rd_u8(&r, &u8), TB_E_TRUNC);
		if (have < 2)
			assert_int_equal(rd_u16be(&r, &u16), TB_E_TRUNC);
		if (have < 3)
			assert_int_equal(rd_u24be(&r, &u32), TB_E_TRUNC);
		if (have < 4)
			assert_int_equal(rd_u32be(&r, &u32), TB_E_TRUNC);
		assert_int_equal(rd_u64be(&r, &u64), TB_E_TRUNC);
		assert_ptr_equal(r.p, src);
		assert_int_equal(r.n, have);
		assert_int_equal(u8, 0x77);
		assert_int_equal(u16, 0x7777);
		assert_int_equal(u32, 0x77777777);
		assert_true(u64 == 0x7777777777777777ull);
	}
}

static void test_views(void **state)
{
	struct rd r = rd_init(src, sizeof(src)), sub;
	const uint8_t *p = NULL;
	uint8_t dst[9], v = 0;
	(void)state;

	/* Zero-copy: the view points into the source. */
	assert_int_equal(rd_bytes(&r, 2, &p), 0);
	assert_ptr_equal(p, src);
	assert_int_equal(rd_bytes(&r, 0, &p), 0);
	assert_ptr_equal(p, src + 2);
	assert_int_equal(rd_peek(&r, &v), 0);
	assert_int_equal(v, 0x45);
	assert_int_equal(rd_left(&r), 7);
	assert_int_equal(rd_sub(&r, 3, &sub), 0);
	assert_ptr_equal(sub.p, src + 2);
	assert_int_equal(sub.n, 3);
	assert_int_equal(rd_left(&r), 4);
	assert_int_equal(rd_skip(&r, 1), 0);
	assert_int_equal(rd_copy(&r, dst, 3), 0);
	assert_hex_equal(dst, 3, "CDEF10");
	assert_int_equal(rd_end(&r), 0);

	/* Too long: nothing moves, nothing is written, also for absurd lengths. */
	r = rd_init(src, 4);
	p = NULL;
	memset(dst, 0x77, sizeof(dst));
	sub.p = NULL;
	sub.n = 99;
	assert_int_equal(rd_bytes(&r, 5, &p), TB_E_TRUNC);
	assert_int_equal(rd_bytes(&r, (size_t)-1, &p), TB_E_TRUNC);
	assert_int_equal(rd_copy(&r, dst, 5), TB_E_TRUNC);
	assert_int_equal(rd_sub(&r, 5, &sub), TB_E_TRUNC);
	assert_int_equal(rd_skip(&r, 5), TB_E_TRUNC);
	assert_null(p);
	assert_null(sub.p);
	assert_int_equal(sub.n, 99);
	for (size_t i = 0; i < sizeof(dst); i++)
		assert_int_equal(dst[i], 0x77);
	assert_ptr_equal(r.p, src);
	assert_int_equal(r.n, 4);
	r = rd_init(src, 0);
	v = 0x55;
	assert_int_equal(rd_peek(&r, &v), TB_E_TRUNC);
	assert_int_equal(v, 0x55);
	assert_int_equal(rd_end(&r), 0);
	assert_int_equal(rd_copy(&r, dst, 0), 0);
}

static void test_writers_values(void **state)
{
	uint8_t out[32], *room;
	struct wr w = wr_init(out, sizeof(out));
	(void)state;

	assert_int_equal(wr_u8(&w, 0x01), 0);
	assert_int_equal(wr_u16be(&w, 0x0203), 0);
	assert_int_equal(wr_u24be(&w, 0x040506), 0);
	assert_int_equal(wr_u32be(&w, 0x0708090A), 0);
	assert_int_equal(wr_u64be(&w, 0x0B0C0D0E0F101112ull), 0);
	assert_int_equal(wr_bytes(&w, (const uint8_t *)"\x13\x14", 2), 0);
	assert_int_equal(wr_fill(&w, 0x15, 3), 0);
	assert_int_equal(wr_reserve(&w, 2, &room), 0);
	assert_ptr_equal(room, out + 23);
	room[0] = 0x16;
	room[1] = 0x17;
	assert_int_equal(w.len, 25);
	assert_int_equal(wr_room(&w), 7);
	assert_hex_equal(out, w.len, "01 0203 040506 0708090A 0B0C0D0E0F101112 1314 151515 1617");
}

/* Each writer with one byte too little room: TB_E_NOSPACE, nothing written. */
static void test_writers_nospace(void **state)
{
	uint8_t out[16], *room = NULL;
	(void)state;

	for (size_t cap = 0; cap < 9; cap++) {
		struct wr w;

		memset(out, 0xEE, sizeof(out));
		w = wr_init(out, cap);
		if (cap < 1)
			assert_int_equal(wr_u8(&w, 0x01), TB_E_NOSPACE);
		if (cap < 2)
			assert_int_equal(wr_u16be(&w, 0x0102), TB_E_NOSPACE);
		if (cap < 3)
			assert_int_equal(wr_u24be(&w, 0x010203), TB_E_NOSPACE);
		if (cap < 4)
			assert_int_equal(wr_u32be(&w, 0x01020304), TB_E_NOSPACE);
		if (cap < 8)
			assert_int_equal(wr_u64be(&w, 1), TB_E_NOSPACE);
		assert_int_equal(wr_bytes(&w, src, cap + 1), TB_E_NOSPACE);
		assert_int_equal(wr_fill(&w, 0x00, cap + 1), TB_E_NOSPACE);
		assert_int_equal(wr_reserve(&w, cap + 1, &room), TB_E_NOSPACE);
		assert_int_equal(wr_reserve(&w, (size_t)-1, &room), TB_E_NOSPACE);
		assert_null(room);
		assert_int_equal(w.len, 0);
		assert_int_equal(w.cap, cap);
		for (size_t i = 0; i < sizeof(out); i++)
			assert_int_equal(out[i], 0xEE);
	}
	/* Room counted from what is already written. */
	{
		struct wr w = wr_init(out, 4);
		assert_int_equal(wr_u16be(&w, 0xAABB), 0);
		assert_int_equal(wr_u24be(&w, 1), TB_E_NOSPACE);
		assert_int_equal(w.len, 2);
		assert_int_equal(out[2], 0xEE);
		assert_int_equal(wr_u16be(&w, 0xCCDD), 0);
		assert_int_equal(wr_room(&w), 0);
		assert_hex_equal(out, 4, "AABBCCDD");
		assert_int_equal(wr_bytes(&w, NULL, 0), 0);
	}
	/* Empty views over NULL (an APDU without data, a zero-capacity writer) are
	 * legal: zero-length reads and writes succeed, longer ones fail, and no
	 * arithmetic is done on the NULL pointer (UBSan checks that in build/asan). */
	{
		struct rd r = rd_init(NULL, 0);
		struct wr w = wr_init(NULL, 0);
		const uint8_t *p = NULL;
		uint8_t *none = NULL, v = 0;
		struct rd sub;

		assert_int_equal(rd_bytes(&r, 0, &p), 0);
		assert_int_equal(rd_skip(&r, 0), 0);
		assert_int_equal(rd_sub(&r, 0, &sub), 0);
		assert_int_equal(sub.n, 0);
		assert_int_equal(rd_u8(&r, &v), TB_E_TRUNC);
		assert_int_equal(rd_end(&r), 0);
		assert_int_equal(wr_reserve(&w, 0, &none), 0);
		assert_int_equal(wr_fill(&w, 0xAA, 0), 0);
		assert_int_equal(wr_u8(&w, 1), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
	}
	/* A value that does not fit in 24 bits is refused, not cut. */
	{
		struct wr w = wr_init(out, sizeof(out));
		assert_int_equal(wr_u24be(&w, 0x01000000u), TB_E_INVAL);
		assert_int_equal(w.len, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_getters_values),
		cmocka_unit_test(test_getters_short),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_writers_values),
		cmocka_unit_test(test_writers_nospace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
