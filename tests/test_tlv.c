/* test_tlv.c - the BER-TLV reader and builder: round trips, tag and length
 * forms at their boundaries, one malformed input per error code, every
 * truncation and single-byte change of a nested input, the depth limit, and
 * GlobalPlatform / pySim responses decoded field by field. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tlv.h"
#include "vec.h"

/* A GET STATUS (P1 40, P2 02) response: the ISD and one applet (C4 = its
 * load file, CC = its security domain), 9000 cut. */
#define GP_GET_STATUS                                                            \
	"E3134F08A0000001510000009F700107C5039E8000"                             \
	"E3244F07A00000000410109F700107C503000000"                               \
	"C406A00000000410CC08A000000151000000"
/* GET DATA 00E0, key information template: keys 01..03 of KVN 30, AES-128. */
#define GP_KEY_INFO "E012C00401308810C00402308810C00403308810"
/* pySim vectors (scp03-sessions.json): GET DATA BF3E response, the eUICC EID. */
#define PYSIM_EID "BF3E125A1089882119900000000000000000000005"
/* One top-level element (81-form length) nesting six levels deep, with 1-3
 * byte tags, empty values, tag 00 and ASCII: every proper prefix of it is
 * incomplete. FF20 { E3 { 4F 9F70 5F2D DF8101 A5 {..} BF0C { .. 73 { E1 { C1 } } } }
 * 70 {..} C5 C4 CE CC 9F7F 5F20 DF8102 9F70 4F E3 00 53 9F6E 8A E5 { C1 } } */
#define NESTED                                                                   \
	"FF2081AC"                                                               \
	"E3384F05A0000000039F7001075F2D02656EDF81010100"                         \
	"A5098801015F2001415000"                                                 \
	"BF0C159F4D020B0AC00050034142437307E105C103010203"                       \
	"700E5A0841111111111111115F340101"                                       \
	"C5039E8000C403A00000CE020100CC01AA9F7F0201025F200142DF8102025F41"       \
	"9F7001074F00E3000000"                                                   \
	"5328" "00000000000000000000000000000000000000000000000000000000000000000000" \
	"000000000000" "9F6E0100" "8A0105" "E505C103010203"

static size_t hex(const char *h, uint8_t *out, size_t cap)
{
	return hexbuf(h, out, cap);
}

/* ---- a transcript of a walk, to compare parses ---- */

struct transcript {
	uint8_t buf[8192];
	size_t len;
	size_t count;
	bool value_only; /* leave out constructed lengths (non-minimal input) */
};

static int record(void *ctx, const struct tlv *t, unsigned depth, size_t off)
{
	struct transcript *tr = ctx;
	struct wr w = wr_init(tr->buf, sizeof(tr->buf));

	(void)off;
	w.len = tr->len;
	assert_int_equal(wr_u8(&w, (uint8_t)depth), 0);
	assert_int_equal(wr_u32be(&w, t->tag), 0);
	assert_int_equal(wr_u8(&w, t->constructed ? 1 : 0), 0);
	if (!t->constructed || !tr->value_only)
		assert_int_equal(wr_u32be(&w, (uint32_t)t->val.n), 0);
	if (!t->constructed)
		assert_int_equal(wr_bytes(&w, t->val.p, t->val.n), 0);
	tr->len = w.len;
	tr->count++;
	return 0;
}

static bool same_transcript(const struct transcript *a, const struct transcript *b)
{
	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->len; i++) {
		if (a->buf[i] != b->buf[i])
			return false;
	}
	return true;
}

static int walk_record(const uint8_t *p, size_t n, unsigned flags, struct transcript *tr)
{
	tr->len = 0;
	tr->count = 0;
	return tlv_walk_ex(p, n, TLV_MAX_DEPTH, flags, record, tr, NULL);
}

/* Reads one element from hex and checks the result code; a failure must leave
 * the reader and the output exactly as they were. */
static void read_expect(const char *h, unsigned flags, int want)
{
	uint8_t buf[64];
	size_t n = hex(h, buf, sizeof(buf));
	uint8_t *copy = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
	struct rd r;
	struct tlv t, before;
	int rc;

	assert_non_null(copy);
	memcpy(copy, buf, n);
	r = rd_init(copy, n);
	memset(&t, 0xA5, sizeof(t));
	before = t;
	rc = tlv_read(&r, flags, &t);
	if (rc != want)
		fail_msg("%s flags %u: got %s, want %s", h, flags, tb_errname(rc), tb_errname(want));
	if (rc != 0) {
		assert_ptr_equal(r.p, copy);
		assert_int_equal(r.n, n);
		assert_memory_equal(&t, &before, sizeof(t));
	}
	free(copy);
}

/* ---- tags ---- */

static void test_tags(void **state)
{
	static const struct {
		const char *enc;
		uint32_t tag;
		bool constructed;
		size_t size;
	} cases[] = {
		{ "4F0101", 0x4F, false, 1 },         { "E30101", 0xE3, true, 1 },
		{ "000101", 0x00, false, 1 },         { "9F7F0101", 0x9F7F, false, 2 },
		{ "BF3E0101", 0xBF3E, true, 2 },      { "5F200101", 0x5F20, false, 2 },
		{ "5F2D0101", 0x5F2D, false, 2 },     { "9F020101", 0x9F02, false, 2 },
		{ "DF81010101", 0xDF8101, false, 3 }, { "FFFF7F0101", 0xFFFF7F, true, 3 },
		{ "7F210101", 0x7F21, true, 2 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t in[16], out[16];
		size_t n = hex(cases[i].enc, in, sizeof(in));
		struct rd r = rd_init(in, n);
		struct wr w = wr_init(out, sizeof(out));
		struct tlv t;

		assert_int_equal(tlv_next(&r, &t), 0);
		assert_int_equal(t.tag, cases[i].tag);
		assert_int_equal(t.constructed, cases[i].constructed);
		assert_int_equal(t.hdr_len, cases[i].size + 1);
		assert_int_equal(t.val.n, 1);
		assert_ptr_equal(t.val.p, in + n - 1);
		assert_int_equal(rd_end(&r), 0);
		assert_int_equal(tlv_tag_size(cases[i].tag), cases[i].size);
		assert_int_equal(tlv_put(&w, cases[i].tag, t.val.p, 1), 0);
		assert_hex_equal(out, w.len, cases[i].enc);
	}
	/* Encodings that are not 1-3 byte tags. */
	assert_int_equal(tlv_tag_size(0x1F), 0);
	assert_int_equal(tlv_tag_size(0x9F80), 0);   /* says a third byte follows */
	assert_int_equal(tlv_tag_size(0x4F01), 0);   /* first byte says one byte */
	assert_int_equal(tlv_tag_size(0xDF0101), 0); /* middle byte says the end */
	assert_int_equal(tlv_tag_size(0xDF8181), 0);
	assert_int_equal(tlv_tag_size(0x9F818101), 0);
}

static void test_tag_errors(void **state)
{
	(void)state;
	read_expect("9F81810100", TLV_BER, TB_E_TLV_TAG); /* 4-byte tag */
	read_expect("9F818181", TLV_BER, TB_E_TLV_TAG);   /* known too long before the end */
	read_expect("FFFFFF", TLV_BER, TB_E_TLV_TAG);     /* FF padding is not skipped */
	read_expect("", TLV_BER, TB_E_TRUNC);
	read_expect("9F", TLV_BER, TB_E_TRUNC);
	read_expect("BF81", TLV_BER, TB_E_TRUNC);
	/* 80 as first subsequent byte: a padded tag number, strict refuses it. */
	read_expect("5F800100", TLV_BER, 0);
	read_expect("5F800100", TLV_STRICT, TB_E_TLV_TAG);
	read_expect("5F810100", TLV_STRICT, 0);
}

/* ---- lengths ---- */

static void test_length_forms(void **state)
{
	static uint8_t val[65536 + 16], out[65536 + 16];
	static const struct {
		size_t n;
		const char *hdr;
	} cases[] = {
		{ 0, "4F00" },          { 1, "4F01" },          { 127, "4F7F" },
		{ 128, "4F8180" },      { 255, "4F81FF" },      { 256, "4F820100" },
		{ 65535, "4F82FFFF" },  { 65536, "4F83010000" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].n, hl = strlen(cases[i].hdr) / 2;
		struct wr w = wr_init(out, sizeof(out));
		struct rd r;
		struct tlv t;

		assert_int_equal(tlv_put(&w, 0x4F, val, n), 0);
		assert_int_equal(w.len, hl + n);
		assert_hex_equal(out, hl, cases[i].hdr);
		for (unsigned flags = 0; flags <= TLV_STRICT; flags++) {
			r = rd_init(out, w.len);
			assert_int_equal(tlv_read(&r, flags, &t), 0);
			assert_int_equal(t.hdr_len, hl);
			assert_int_equal(t.val.n, n);
			assert_ptr_equal(t.val.p, out + hl);
			if (n > 0)
				assert_memory_equal(t.val.p, val, n);
			assert_int_equal(rd_end(&r), 0);
			/* One byte short: the value runs past the end. */
			if (n > 0) {
				r = rd_init(out, w.len - 1);
				assert_int_equal(tlv_read(&r, flags, &t), TB_E_TLV_LEN_PAST_END);
			}
		}
	}
}

static void test_length_limits(void **state)
{
	uint8_t out[16];
	struct wr w = wr_init(out, sizeof(out));

	(void)state;
	assert_int_equal(tlv_put_header(&w, 0x9F7F, TLV_MAX_LEN), 0);
	assert_hex_equal(out, w.len, "9F7F83FFFFFF");
	assert_int_equal(tlv_put_header(&w, 0x9F7F, (size_t)TLV_MAX_LEN + 1), TB_E_TLV_LEN_FORM);
	assert_int_equal(tlv_put(&w, 0x9F7F, out, (size_t)TLV_MAX_LEN + 1), TB_E_TLV_LEN_FORM);
	assert_int_equal(w.len, 6);
	/* A header alone says nothing about the value: reading it finds no value. */
	read_expect("9F7F83FFFFFF", TLV_BER, TB_E_TLV_LEN_PAST_END);
}

static void test_length_errors(void **state)
{
	(void)state;
	read_expect("4F", TLV_BER, TB_E_TLV_LEN_TRUNC);
	read_expect("4F81", TLV_BER, TB_E_TLV_LEN_TRUNC);
	read_expect("4F8201", TLV_BER, TB_E_TLV_LEN_TRUNC);
	read_expect("9F70830100", TLV_BER, TB_E_TLV_LEN_TRUNC);
	read_expect("4F0501020304", TLV_BER, TB_E_TLV_LEN_PAST_END);
	read_expect("4F81800102", TLV_BER, TB_E_TLV_LEN_PAST_END);
	read_expect("E3804F0100000000", TLV_BER, TB_E_TLV_INDEFINITE);
	read_expect("4F840000000100", TLV_BER, TB_E_TLV_LEN_FORM);
	read_expect("4F8500000000000100", TLV_BER, TB_E_TLV_LEN_FORM);
	read_expect("4FFF", TLV_BER, TB_E_TLV_LEN_FORM);
	read_expect("00", TLV_BER, TB_E_TLV_LEN_TRUNC); /* trailing 00 padding */
	/* Non-minimal long forms: BER yes, strict no. */
	read_expect("4F810501020304050607", TLV_BER, 0);
	read_expect("4F810501020304050607", TLV_STRICT, TB_E_TLV_LEN_FORM);
	read_expect("4F8100", TLV_STRICT, TB_E_TLV_LEN_FORM);
	read_expect("4F820003010203", TLV_BER, 0);
	read_expect("4F820003010203", TLV_STRICT, TB_E_TLV_LEN_FORM);
	read_expect("4F830000020102", TLV_BER, 0);
	read_expect("4F830000020102", TLV_STRICT, TB_E_TLV_LEN_FORM);
	/* Minimal ones pass strict; tlv_read takes one element, the rest stays. */
	read_expect("4F7F", TLV_STRICT, TB_E_TLV_LEN_PAST_END);
	read_expect("4F00FF", TLV_STRICT, 0);
}

static void test_non_minimal_value(void **state)
{
	uint8_t in[256];
	size_t n = hex("4F82007F", in, sizeof(in));
	struct rd r;
	struct tlv t;

	(void)state;
	memset(in + n, 0x33, 0x7F);
	r = rd_init(in, n + 0x7F);
	assert_int_equal(tlv_read(&r, TLV_STRICT, &t), TB_E_TLV_LEN_FORM);
	assert_int_equal(r.n, n + 0x7F);
	assert_int_equal(tlv_next(&r, &t), 0);
	assert_int_equal(t.tag, 0x4F);
	assert_int_equal(t.hdr_len, 4);
	assert_int_equal(t.val.n, 0x7F);
	assert_int_equal(rd_end(&r), 0);
}

/* ---- padding bytes ---- */

static void test_padding_is_data(void **state)
{
	uint8_t in[16];
	size_t n = hex("00004F01AA", in, sizeof(in));
	struct rd r = rd_init(in, n);
	struct tlv t;

	(void)state;
	assert_int_equal(tlv_next(&r, &t), 0);
	assert_int_equal(t.tag, 0x00);
	assert_int_equal(t.val.n, 0);
	assert_int_equal(tlv_next(&r, &t), 0);
	assert_int_equal(t.tag, 0x4F);
	assert_int_equal(tlv_next(&r, &t), TB_E_TRUNC);
	/* Trailing FF padding fails rather than ending the data early. */
	n = hex("4F01AAFFFF", in, sizeof(in));
	assert_int_equal(tlv_walk(in, n, TLV_MAX_DEPTH, NULL, NULL), TB_E_TRUNC);
	n = hex("4F01AAFFFFFF", in, sizeof(in));
	assert_int_equal(tlv_walk(in, n, TLV_MAX_DEPTH, NULL, NULL), TB_E_TLV_TAG);
}

/* ---- helpers over one level ---- */

static void test_enter_expect_find(void **state)
{
	uint8_t in[128];
	size_t n = hex(GP_GET_STATUS, in, sizeof(in));
	struct rd r = rd_init(in, n), inner, saved;
	struct tlv t;

	(void)state;
	assert_int_equal(tlv_expect(&r, TLV_BER, 0x4F, &t), TB_E_TLV_NOT_FOUND);
	assert_int_equal(r.n, n);
	assert_int_equal(tlv_enter(&r, TLV_STRICT, 0xE3, &inner), 0);
	assert_int_equal(inner.n, 0x13);
	assert_int_equal(r.n, n - 0x15);
	saved = inner;
	assert_int_equal(tlv_enter(&inner, TLV_BER, 0x4F, &saved), TB_E_TLV_NOT_CONSTRUCTED);
	assert_ptr_equal(saved.p, in + 2);
	assert_int_equal(tlv_expect(&inner, TLV_BER, 0x4F, &t), 0);
	assert_hex_equal(t.val.p, t.val.n, "A000000151000000");
	/* Closing with bytes left is refused. */
	assert_int_equal(rd_end(&inner), TB_E_LEFTOVER);
	assert_int_equal(tlv_find(&inner, TLV_BER, 0xC5, &t), 0);
	assert_hex_equal(t.val.p, t.val.n, "9E8000");
	assert_int_equal(tlv_find(&inner, TLV_BER, 0x4F, &t), TB_E_TLV_NOT_FOUND);
	assert_int_equal(tlv_find(&inner, TLV_BER, 0x9F70, &t), 0);
	assert_hex_equal(t.val.p, t.val.n, "07");
	/* find does not consume and does not search children. */
	assert_int_equal(inner.n, 9);
	saved = rd_init(in, n);
	assert_int_equal(tlv_find(&saved, TLV_BER, 0x4F, &t), TB_E_TLV_NOT_FOUND);
	assert_int_equal(tlv_find(&saved, TLV_BER, 0xE3, &t), 0); /* the first one */
	assert_int_equal(t.val.n, 0x13);
	/* A malformed element after the match still fails the level. */
	n = hex("C50100C40401", in, sizeof(in));
	saved = rd_init(in, n);
	memset(&t, 0, sizeof(t));
	assert_int_equal(tlv_find(&saved, TLV_BER, 0xC5, &t), TB_E_TLV_LEN_PAST_END);
	assert_int_equal(t.tag, 0);
}

/* ---- the walker ---- */

/* depth levels of E0 nested in each other around an empty 4F. */
static size_t nested_chain(unsigned levels, uint8_t *out, size_t cap)
{
	struct wr w = wr_init(out, cap);
	struct tlv_mark m[16];

	assert_true(levels <= 16);
	for (unsigned i = 0; i + 1 < levels; i++)
		assert_int_equal(tlv_open(&w, 0xE0, &m[i]), 0);
	assert_int_equal(tlv_put(&w, 0x4F, NULL, 0), 0);
	for (unsigned i = levels - 1; i-- > 0;)
		assert_int_equal(tlv_close(&w, &m[i]), 0);
	return w.len;
}

static void test_depth_limit(void **state)
{
	uint8_t in[64];
	struct transcript tr = { .value_only = false };
	size_t off = 0;

	(void)state;
	for (unsigned levels = 1; levels <= TLV_MAX_DEPTH + 1; levels++) {
		size_t n = nested_chain(levels, in, sizeof(in));

		assert_int_equal(n, 2 * levels);
		for (unsigned max = 1; max <= TLV_MAX_DEPTH; max++) {
			int rc = tlv_walk_ex(in, n, max, TLV_BER, NULL, NULL, &off);
			if (levels <= max) {
				assert_int_equal(rc, 0);
			} else {
				assert_int_equal(rc, TB_E_TLV_DEPTH);
				assert_int_equal(off, 2 * max); /* the first element too deep */
			}
		}
	}
	assert_int_equal(nested_chain(TLV_MAX_DEPTH, in, sizeof(in)), 2 * TLV_MAX_DEPTH);
	assert_int_equal(walk_record(in, 2 * TLV_MAX_DEPTH, TLV_BER, &tr), 0);
	assert_int_equal(tr.count, TLV_MAX_DEPTH);
	assert_int_equal(tlv_walk(in, 2, 0, NULL, NULL), TB_E_INVAL);
	assert_int_equal(tlv_walk(in, 2, TLV_MAX_DEPTH + 1, NULL, NULL), TB_E_INVAL);
	/* An empty constructed element at the last level is fine. */
	assert_int_equal(tlv_walk(in, hex("E000", in, sizeof(in)), 1, NULL, NULL), 0);
	assert_int_equal(tlv_walk(in, hex("E0024F00", in, sizeof(in)), 1, NULL, NULL),
			 TB_E_TLV_DEPTH);
	assert_int_equal(tlv_walk(NULL, 0, 1, NULL, NULL), 0);
}

struct stop_ctx {
	size_t seen;
	size_t stop_at;
};

static int stop_after(void *ctx, const struct tlv *t, unsigned depth, size_t off)
{
	struct stop_ctx *s = ctx;

	(void)t;
	(void)depth;
	(void)off;
	return ++s->seen == s->stop_at ? 42 : 0;
}

static void test_walk_order_and_stop(void **state)
{
	uint8_t in[128];
	size_t n = hex(GP_GET_STATUS, in, sizeof(in)), off = 0;
	struct transcript tr = { .value_only = false };
	struct stop_ctx s = { 0, 3 };
	uint8_t want[256];
	size_t wn;

	(void)state;
	assert_int_equal(walk_record(in, n, TLV_STRICT, &tr), 0);
	assert_int_equal(tr.count, 10);
	/* depth, tag, constructed, length, primitive value: parents first. */
	wn = hex("00000000E3 01 00000013"
		 "01 0000004F 00 00000008 A000000151000000"
		 "01 00009F70 00 00000001 07"
		 "01 000000C5 00 00000003 9E8000"
		 "00 000000E3 01 00000024"
		 "01 0000004F 00 00000007 A0000000041010"
		 "01 00009F70 00 00000001 07"
		 "01 000000C5 00 00000003 000000"
		 "01 000000C4 00 00000006 A00000000410"
		 "01 000000CC 00 00000008 A000000151000000",
		 want, sizeof(want));
	assert_int_equal(tr.len, wn);
	assert_memory_equal(tr.buf, want, wn);
	assert_int_equal(tlv_walk_ex(in, n, TLV_MAX_DEPTH, TLV_BER, stop_after, &s, &off), 42);
	assert_int_equal(off, 12); /* the 9F70 of the first entry */
}

static void test_walk_error_offsets(void **state)
{
	static const struct {
		const char *in;
		int rc;
		size_t off;
	} cases[] = {
		{ "E3054F03010203" "4F", TB_E_TLV_LEN_TRUNC, 7 },
		{ "E3054F04010203", TB_E_TLV_LEN_PAST_END, 2 },
		{ "E3064F0201024F81", TB_E_TLV_LEN_TRUNC, 6 },
		{ "E3074F0201024F8101", TB_E_TLV_LEN_PAST_END, 6 },
		{ "4F0100" "E3804F0100000000", TB_E_TLV_INDEFINITE, 3 },
		{ "E30A" "E008" "5F810100" "9F818101", TB_E_TLV_TAG, 8 },
		{ "E307" "4F840000000100", TB_E_TLV_LEN_FORM, 2 },
		{ "E309" "4F840000000100", TB_E_TLV_LEN_PAST_END, 0 },
		{ "E3054F810200AA", 0, 0 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t in[64];
		size_t n = hex(cases[i].in, in, sizeof(in)), off = 99;
		int rc = tlv_walk_ex(in, n, TLV_MAX_DEPTH, TLV_BER, NULL, NULL, &off);

		if (rc != cases[i].rc)
			fail_msg("%s: got %s", cases[i].in, tb_errname(rc));
		assert_int_equal(off, rc == 0 ? 99 : cases[i].off);
	}
}

/* ---- robustness of a nested input ---- */

static void test_every_truncation(void **state)
{
	uint8_t in[512];
	size_t n = hex(NESTED, in, sizeof(in));
	struct transcript full = { .value_only = false };

	(void)state;
	assert_int_equal(n, 4 + 0xAC);
	for (unsigned flags = 0; flags <= TLV_STRICT; flags++) {
		assert_int_equal(walk_record(in, n, flags, &full), 0);
		assert_int_equal(full.count, 36);
		for (size_t cut = 0; cut < n; cut++) {
			uint8_t *p = malloc(cut ? cut : 1); /* exact size: ASan sees over-reads */
			struct rd r;
			struct tlv t;
			size_t off = SIZE_MAX;
			int rc;

			assert_non_null(p);
			memcpy(p, in, cut);
			rc = tlv_walk_ex(p, cut, TLV_MAX_DEPTH, flags, NULL, NULL, &off);
			if (cut == 0) {
				assert_int_equal(rc, 0); /* nothing is a valid empty list */
			} else {
				if (rc != TB_E_TRUNC && rc != TB_E_TLV_LEN_TRUNC && rc != TB_E_TLV_LEN_PAST_END)
					fail_msg("cut %zu: %s", cut, tb_errname(rc));
				assert_true(off < cut);
				/* The outer element alone already refuses every cut. */
				r = rd_init(p, cut);
				assert_int_not_equal(tlv_read(&r, flags, &t), 0);
				assert_int_equal(r.n, cut);
			}
			free(p);
		}
	}
}

static void test_every_byte_change(void **state)
{
	uint8_t in[512];
	size_t n = hex(NESTED, in, sizeof(in));
	struct transcript full = { .value_only = false }, got = { .value_only = false };
	size_t parsed = 0, failed = 0;

	(void)state;
	for (unsigned flags = 0; flags <= TLV_STRICT; flags++) {
		assert_int_equal(walk_record(in, n, flags, &full), 0);
		for (size_t i = 0; i < n; i++) {
			uint8_t orig = in[i];

			for (unsigned v = 0; v < 256; v++) {
				if (v == orig)
					continue;
				in[i] = (uint8_t)v;
				if (walk_record(in, n, flags, &got) != 0) {
					failed++;
					continue;
				}
				parsed++;
				if (same_transcript(&got, &full))
					fail_msg("byte %zu %02X -> %02X parses to the same", i, orig, v);
			}
			in[i] = orig;
		}
	}
	/* Both outcomes occur, so the test exercises both. */
	assert_true(parsed > 1000);
	assert_true(failed > 1000);
}

/* ---- the builder ---- */

/* Rebuilds the elements of one level with the builder, recursing into
 * constructed ones. */
static void rebuild(struct rd level, struct wr *w)
{
	while (rd_left(&level) > 0) {
		struct tlv t;
		struct tlv_mark m;

		assert_int_equal(tlv_next(&level, &t), 0);
		if (!t.constructed) {
			assert_int_equal(tlv_put(w, t.tag, t.val.p, t.val.n), 0);
			continue;
		}
		assert_int_equal(tlv_open(w, t.tag, &m), 0);
		rebuild(t.val, w);
		assert_int_equal(tlv_close(w, &m), 0);
	}
}

static void test_round_trip(void **state)
{
	static const uint8_t aid[] = { 0xA0, 0, 0, 0, 0x03 }, lcs = 7, zero = 0, one = 1;
	uint8_t out[512], in[512];
	struct wr w = wr_init(out, sizeof(out));
	struct tlv_mark top, e3, a5, bf0c;
	struct transcript t1 = { .value_only = false }, t2 = { .value_only = false };
	size_t n;

	(void)state;
	/* The first part of NESTED by hand. An abandoned element leaves no trace. */
	assert_int_equal(tlv_open(&w, 0xFF20, &top), 0);
	assert_int_equal(tlv_put(&w, 0xE3, NULL, 0), 0);
	w.len = top.start;
	assert_int_equal(tlv_open(&w, 0xFF20, &top), 0);
	assert_int_equal(tlv_open(&w, 0xE3, &e3), 0);
	assert_int_equal(tlv_put(&w, 0x4F, aid, sizeof(aid)), 0);
	assert_int_equal(tlv_put(&w, 0x9F70, &lcs, 1), 0);
	assert_int_equal(tlv_put(&w, 0x5F2D, (const uint8_t *)"en", 2), 0);
	assert_int_equal(tlv_put(&w, 0xDF8101, &zero, 1), 0);
	assert_int_equal(tlv_open(&w, 0xA5, &a5), 0);
	assert_int_equal(tlv_put(&w, 0x88, &one, 1), 0);
	assert_int_equal(tlv_put(&w, 0x5F20, (const uint8_t *)"A", 1), 0);
	assert_int_equal(tlv_put(&w, 0x50, NULL, 0), 0);
	assert_int_equal(tlv_close(&w, &a5), 0);
	assert_int_equal(tlv_open(&w, 0xBF0C, &bf0c), 0);
	assert_int_equal(tlv_put(&w, 0x9F4D, (const uint8_t *)"\x0B\x0A", 2), 0);
	assert_int_equal(tlv_put(&w, 0xC0, NULL, 0), 0);
	assert_int_equal(tlv_put(&w, 0x50, (const uint8_t *)"ABC", 3), 0);
	assert_int_equal(tlv_close(&w, &bf0c), 0);
	assert_int_equal(tlv_close(&w, &bf0c), TB_E_INVAL); /* closed twice */
	assert_int_equal(tlv_close(&w, &e3), 0);
	assert_int_equal(tlv_close(&w, &top), 0);
	assert_hex_equal(out, w.len, "FF2031E32F" "4F05A0000000039F7001075F2D02656EDF81010100"
				     "A509880101" "5F200141" "5000"
				     "BF0C0C9F4D020B0A" "C000" "5003414243");

	/* Reader -> builder -> reader: the same elements, and for minimal input
	 * the same bytes. */
	n = hex(NESTED, in, sizeof(in));
	assert_int_equal(walk_record(in, n, TLV_STRICT, &t1), 0);
	w = wr_init(out, sizeof(out));
	rebuild(rd_init(in, n), &w);
	assert_int_equal(w.len, n);
	assert_memory_equal(out, in, n);
	assert_int_equal(walk_record(out, w.len, TLV_STRICT, &t2), 0);
	assert_int_equal(t1.len, t2.len);
	assert_memory_equal(t1.buf, t2.buf, t1.len);

	/* Non-minimal BER input comes back minimal with the same elements. */
	t1.value_only = t2.value_only = true;
	n = hex("E381074F820001AA5000", in, sizeof(in));
	assert_int_equal(walk_record(in, n, TLV_BER, &t1), 0);
	assert_int_equal(walk_record(in, n, TLV_STRICT, &t2), TB_E_TLV_LEN_FORM);
	w = wr_init(out, sizeof(out));
	rebuild(rd_init(in, n), &w);
	assert_hex_equal(out, w.len, "E3054F01AA5000");
	assert_int_equal(walk_record(out, w.len, TLV_STRICT, &t2), 0);
	assert_int_equal(t1.len, t2.len);
	assert_memory_equal(t1.buf, t2.buf, t1.len);
}

static void test_builder_lengths_and_nospace(void **state)
{
	static uint8_t out[70000], val[70000];
	static const size_t sizes[] = { 0, 127, 128, 255, 256, 65535, 65536 };
	static const char *hdrs[] = { "E300", "E37F", "E38180", "E381FF", "E3820100",
				      "E382FFFF", "E383010000" };
	(void)state;
	memset(val, 0x5A, sizeof(val));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i], hl = strlen(hdrs[i]) / 2, total = hl + n;
		struct wr w;
		struct tlv_mark m;

		/* An exact-size buffer works: the length grows in place. */
		w = wr_init(out, total);
		assert_int_equal(tlv_open(&w, 0xE3, &m), 0);
		assert_int_equal(wr_bytes(&w, val, n), 0);
		assert_int_equal(tlv_close(&w, &m), 0);
		assert_int_equal(w.len, total);
		assert_hex_equal(out, hl, hdrs[i]);
		if (n > 0)
			assert_memory_equal(out + hl, val, n);
		/* One byte less: close (or open) fails and nothing changes. */
		if (hl > 2) {
			w = wr_init(out, total - 1);
			memset(out, 0xEE, sizeof(out));
			assert_int_equal(tlv_open(&w, 0xE3, &m), 0);
			assert_int_equal(wr_bytes(&w, val, n), 0);
			assert_int_equal(tlv_close(&w, &m), TB_E_NOSPACE);
			assert_int_equal(w.len, 2 + n);
			assert_hex_equal(out, 2, "E300");
			assert_memory_equal(out + 2, val, n);
			assert_int_equal(out[2 + n], 0xEE);
			assert_int_not_equal(m.len_at, SIZE_MAX); /* still open */
		}
		w = wr_init(out, total - 1);
		memset(out, 0xEE, sizeof(out));
		assert_int_equal(tlv_put(&w, 0xE3, val, n), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
		assert_int_equal(out[0], 0xEE);
	}
}

static void test_builder_errors_keep_output(void **state)
{
	uint8_t out[8];
	struct wr w = wr_init(out, sizeof(out));
	struct tlv_mark m = { 0, 0 }, m2 = { 0, 0 };

	(void)state;
	assert_int_equal(tlv_put(&w, 0x4F, (const uint8_t *)"\x01\x02", 2), 0);
	memset(out + 4, 0xEE, 4);
	assert_int_equal(tlv_put(&w, 0x1F, NULL, 0), TB_E_TLV_TAG);
	assert_int_equal(tlv_put(&w, 0x9F818101, NULL, 0), TB_E_TLV_TAG);
	assert_int_equal(tlv_put(&w, 0x4F, NULL, 1), TB_E_INVAL);
	assert_int_equal(tlv_put(&w, 0x4F, out, 3), TB_E_NOSPACE);
	assert_int_equal(tlv_put_header(&w, 0xDF8101, 300), TB_E_NOSPACE);
	assert_int_equal(tlv_open(&w, 0x9F80, &m), TB_E_TLV_TAG);
	assert_int_equal(tlv_close(&w, &m), TB_E_INVAL); /* never opened */
	assert_int_equal(w.len, 4);
	assert_hex_equal(out, 8, "4F020102EEEEEEEE");
	assert_int_equal(m.start, 0);
	assert_int_equal(m.len_at, 0);
	/* An exactly full buffer: open fits, a nested open does not. */
	assert_int_equal(tlv_open(&w, 0xDF8101, &m), 0);
	assert_int_equal(tlv_open(&w, 0xE3, &m2), TB_E_NOSPACE);
	assert_int_equal(m2.len_at, 0);
	assert_int_equal(w.len, 8);
	assert_int_equal(tlv_close(&w, &m), 0);
	assert_hex_equal(out, w.len, "4F020102DF810100");
}

/* ---- real responses ---- */

static void test_gp_get_status(void **state)
{
	uint8_t in[128];
	size_t n = hex(GP_GET_STATUS, in, sizeof(in));
	struct rd r = rd_init(in, n), e3;
	struct tlv t;
	static const char *aids[] = { "A000000151000000", "A0000000041010" };
	static const char *privs[] = { "9E8000", "000000" };
	size_t entries = 0;

	(void)state;
	while (rd_left(&r) > 0) {
		assert_true(entries < 2);
		assert_int_equal(tlv_enter(&r, TLV_STRICT, 0xE3, &e3), 0);
		assert_int_equal(tlv_find(&e3, TLV_STRICT, 0x4F, &t), 0);
		assert_hex_equal(t.val.p, t.val.n, aids[entries]);
		assert_int_equal(tlv_find(&e3, TLV_STRICT, 0x9F70, &t), 0);
		assert_hex_equal(t.val.p, t.val.n, "07"); /* SELECTABLE */
		assert_int_equal(tlv_find(&e3, TLV_STRICT, 0xC5, &t), 0);
		assert_hex_equal(t.val.p, t.val.n, privs[entries]);
		if (entries == 1) {
			assert_int_equal(tlv_find(&e3, TLV_STRICT, 0xC4, &t), 0);
			assert_hex_equal(t.val.p, t.val.n, "A00000000410");
			assert_int_equal(tlv_find(&e3, TLV_STRICT, 0xCC, &t), 0);
			assert_hex_equal(t.val.p, t.val.n, "A000000151000000");
		} else {
			assert_int_equal(tlv_find(&e3, TLV_STRICT, 0xCC, &t), TB_E_TLV_NOT_FOUND);
		}
		entries++;
	}
	assert_int_equal(entries, 2);
}

static void test_gp_key_info(void **state)
{
	uint8_t in[64];
	size_t n = hex(GP_KEY_INFO, in, sizeof(in)), keys = 0;
	struct rd r = rd_init(in, n), e0;

	(void)state;
	assert_int_equal(tlv_enter(&r, TLV_STRICT, 0xE0, &e0), 0);
	assert_int_equal(rd_end(&r), 0);
	while (rd_left(&e0) > 0) {
		struct tlv c0;
		uint8_t id, kvn, type, len;

		assert_int_equal(tlv_expect(&e0, TLV_STRICT, 0xC0, &c0), 0);
		assert_int_equal(c0.val.n, 4);
		assert_int_equal(rd_u8(&c0.val, &id), 0);
		assert_int_equal(rd_u8(&c0.val, &kvn), 0);
		assert_int_equal(rd_u8(&c0.val, &type), 0);
		assert_int_equal(rd_u8(&c0.val, &len), 0);
		assert_int_equal(rd_end(&c0.val), 0);
		assert_int_equal(id, keys + 1);
		assert_int_equal(kvn, 0x30);
		assert_int_equal(type, 0x88); /* AES */
		assert_int_equal(len, 16);
		keys++;
	}
	assert_int_equal(keys, 3);
}

static void test_pysim_eid(void **state)
{
	uint8_t in[64];
	size_t n = hex(PYSIM_EID, in, sizeof(in));
	struct rd r = rd_init(in, n), bf3e;
	struct tlv t;

	(void)state;
	assert_int_equal(tlv_enter(&r, TLV_STRICT, 0xBF3E, &bf3e), 0);
	assert_int_equal(tlv_expect(&bf3e, TLV_STRICT, 0x5A, &t), 0);
	assert_hex_equal(t.val.p, t.val.n, "89882119900000000000000000000005");
	assert_int_equal(rd_end(&bf3e), 0);
	assert_int_equal(rd_end(&r), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tags),
		cmocka_unit_test(test_tag_errors),
		cmocka_unit_test(test_length_forms),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_length_errors),
		cmocka_unit_test(test_non_minimal_value),
		cmocka_unit_test(test_padding_is_data),
		cmocka_unit_test(test_enter_expect_find),
		cmocka_unit_test(test_depth_limit),
		cmocka_unit_test(test_walk_order_and_stop),
		cmocka_unit_test(test_walk_error_offsets),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_every_byte_change),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_builder_lengths_and_nospace),
		cmocka_unit_test(test_builder_errors_keep_output),
		cmocka_unit_test(test_gp_get_status),
		cmocka_unit_test(test_gp_key_info),
		cmocka_unit_test(test_pysim_eid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
