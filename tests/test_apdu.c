/* test_apdu.c - ISO 7816-4 command and response APDUs: cases 1-4 in short and
 * extended form against hand-built encodings, boundaries 255/256/65535/65536, every
 * truncation and single-byte change, each error code and offset, atomic encoding. */
#include <string.h>

#include "apdu.h"
#include "err.h"
#include "vec.h"

/* Big enough for the largest command; static, the test stack stays small. */
static uint8_t big[APDU_MAX_CMD + 16];
static uint8_t enc[APDU_MAX_CMD + 16];
static uint8_t payload[APDU_MAX_NC_EXT];

static void fill_payload(void)
{
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 3);
}

/* Builds an encoding by hand, byte by byte, independent of apdu_encode. */
static size_t build(uint8_t *out, size_t nc, size_t ne, int ext)
{
	size_t k = 0;

	out[k++] = 0x80;
	out[k++] = 0xCA;
	out[k++] = 0x9F;
	out[k++] = 0x7F;
	if (ext && (nc > 0 || ne > 0))
		out[k++] = 0x00;
	if (nc > 0) {
		if (ext)
			out[k++] = (uint8_t)(nc >> 8);
		out[k++] = (uint8_t)nc;
		memcpy(out + k, payload, nc);
		k += nc;
	}
	if (ne > 0) {
		if (ext)
			out[k++] = (uint8_t)((ne >> 8) & 0xFF); /* 65536 -> 00 00 */
		out[k++] = (uint8_t)ne;                       /* 256 -> 00 */
	}
	return k;
}

static void assert_same_apdu(const struct apdu *a, const struct apdu *b)
{
	assert_int_equal(a->cla, b->cla);
	assert_int_equal(a->ins, b->ins);
	assert_int_equal(a->p1, b->p1);
	assert_int_equal(a->p2, b->p2);
	assert_int_equal(a->nc, b->nc);
	assert_int_equal(a->ne, b->ne);
	assert_int_equal(a->extended, b->extended);
	if (a->nc > 0)
		assert_memory_equal(a->data, b->data, a->nc);
	else
		assert_null(b->data);
}

/* 1 when the two parse to different commands. */
static int apdu_differs(const struct apdu *a, const struct apdu *b)
{
	if (a->cla != b->cla || a->ins != b->ins || a->p1 != b->p1 || a->p2 != b->p2 ||
	    a->nc != b->nc || a->ne != b->ne || a->extended != b->extended)
		return 1;
	for (size_t i = 0; i < a->nc; i++) {
		if (a->data[i] != b->data[i])
			return 1;
	}
	return 0;
}

/* A failed parse leaves *out exactly as it was. */
static int parse_checked(const uint8_t *buf, size_t n, struct apdu *out)
{
	struct apdu guard;
	int rc;

	memset(out, 0xA5, sizeof(*out));
	memset(&guard, 0xA5, sizeof(guard));
	rc = apdu_parse(buf, n, out);
	if (rc != 0)
		assert_memory_equal(out, &guard, sizeof(guard));
	return rc;
}

struct shape {
	size_t nc, ne;
	int ext_flag;            /* a->extended asked of the encoder */
	enum apdu_case want_case;
	int want_ext;            /* form on the wire */
};

static const struct shape shapes[] = {
	{ 0, 0, 0, APDU_CASE_1, 0 },
	{ 0, 1, 0, APDU_CASE_2, 0 },
	{ 0, 255, 0, APDU_CASE_2, 0 },
	{ 0, 256, 0, APDU_CASE_2, 0 },
	{ 0, 257, 0, APDU_CASE_2, 1 },
	{ 0, 5, 1, APDU_CASE_2, 1 },
	{ 0, 65535, 0, APDU_CASE_2, 1 },
	{ 0, 65536, 0, APDU_CASE_2, 1 },
	{ 1, 0, 0, APDU_CASE_3, 0 },
	{ 255, 0, 0, APDU_CASE_3, 0 },
	{ 256, 0, 0, APDU_CASE_3, 1 },
	{ 5, 0, 1, APDU_CASE_3, 1 },
	{ 65535, 0, 0, APDU_CASE_3, 1 },
	{ 1, 1, 0, APDU_CASE_4, 0 },
	{ 6, 256, 0, APDU_CASE_4, 0 },
	{ 255, 255, 0, APDU_CASE_4, 0 },
	{ 255, 257, 0, APDU_CASE_4, 1 },
	{ 256, 1, 0, APDU_CASE_4, 1 },
	{ 3, 7, 1, APDU_CASE_4, 1 },
	{ 65535, 65535, 0, APDU_CASE_4, 1 },
	{ 65535, 65536, 0, APDU_CASE_4, 1 },
	{ 1, 65536, 0, APDU_CASE_4, 1 },
};

static struct apdu shape_apdu(const struct shape *s)
{
	struct apdu a = { 0x80, 0xCA, 0x9F, 0x7F, NULL, s->nc, s->ne, s->ext_flag };

	if (s->nc > 0)
		a.data = payload;
	return a;
}

static void test_round_trips(void **state)
{
	(void)state;
	fill_payload();
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *s = &shapes[i];
		struct apdu a = shape_apdu(s), got;
		struct wr w = wr_init(enc, sizeof(enc));
		size_t n = build(big, s->nc, s->ne, s->want_ext);

		/* Encoding matches the hand-built bytes. */
		assert_int_equal(apdu_encode(&a, &w), 0);
		assert_int_equal(w.len, n);
		assert_memory_equal(enc, big, n);
		/* Parsing gives the fields back, data borrowed from the buffer. */
		assert_int_equal(parse_checked(big, n, &got), 0);
		assert_int_equal(apdu_case_of(&got), s->want_case);
		assert_int_equal(got.extended, s->want_ext && s->want_case != APDU_CASE_1);
		a.extended = got.extended;
		assert_same_apdu(&a, &got);
		if (got.nc > 0)
			assert_ptr_equal(got.data, big + (s->want_ext ? 7 : 5));
		/* And re-encoding the parsed struct gives the same bytes. */
		w = wr_init(enc, sizeof(enc));
		assert_int_equal(apdu_encode(&got, &w), 0);
		assert_int_equal(w.len, n);
		assert_memory_equal(enc, big, n);
	}
}

static void test_known_answers(void **state)
{
	uint8_t buf[64];
	struct apdu a;
	size_t n;
	(void)state;

	/* GET DATA 9F7F, case 2S with Le 00. */
	n = hexbuf("80CA9F7F00", buf, sizeof(buf));
	assert_int_equal(apdu_parse(buf, n, &a), 0);
	assert_int_equal(apdu_case_of(&a), APDU_CASE_2);
	assert_int_equal(a.ne, 256);
	assert_int_equal(a.extended, 0);
	assert_null(a.data);
	/* SELECT by AID, case 4S. */
	n = hexbuf("00A4040008A00000015100000000", buf, sizeof(buf));
	assert_int_equal(apdu_parse(buf, n, &a), 0);
	assert_int_equal(apdu_case_of(&a), APDU_CASE_4);
	assert_int_equal(a.cla, 0x00);
	assert_int_equal(a.ins, 0xA4);
	assert_int_equal(a.p1, 0x04);
	assert_int_equal(a.p2, 0x00);
	assert_int_equal(a.nc, 8);
	assert_hex_equal(a.data, a.nc, "A000000151000000");
	assert_int_equal(a.ne, 256);
	/* EXTERNAL AUTHENTICATE, case 3S. */
	n = hexbuf("8482330010 00112233445566778899AABBCCDDEEFF", buf, sizeof(buf));
	assert_int_equal(apdu_parse(buf, n, &a), 0);
	assert_int_equal(apdu_case_of(&a), APDU_CASE_3);
	assert_int_equal(a.nc, 16);
	assert_int_equal(a.ne, 0);
	/* Case 2E with Le 0000 = 65536; case 4E with Le 0001. */
	n = hexbuf("00B00000000000", buf, sizeof(buf));
	assert_int_equal(apdu_parse(buf, n, &a), 0);
	assert_int_equal(apdu_case_of(&a), APDU_CASE_2);
	assert_int_equal(a.ne, 65536);
	assert_int_equal(a.extended, 1);
	n = hexbuf("00D6000000000301020300 01", buf, sizeof(buf));
	assert_int_equal(apdu_parse(buf, n, &a), 0);
	assert_int_equal(apdu_case_of(&a), APDU_CASE_4);
	assert_int_equal(a.nc, 3);
	assert_hex_equal(a.data, 3, "010203");
	assert_int_equal(a.ne, 1);
}

/* Every cut of every shape fails without touching the output, or parses to a
 * different command (ISO 7816-4 lets a cut case 3/4 read as e.g. case 2S). */
static void test_truncations(void **state)
{
	(void)state;
	fill_payload();
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *s = &shapes[i];
		size_t n = build(big, s->nc, s->ne, s->want_ext);
		struct apdu full, cut;

		assert_int_equal(apdu_parse(big, n, &full), 0);
		for (size_t k = 0; k < n; k++) {
			int rc = parse_checked(big, k, &cut);

			if (k < 4) {
				assert_int_equal(rc, TB_E_APDU_SHORT);
				continue;
			}
			if (rc == 0)
				assert_true(apdu_differs(&full, &cut));
			else
				assert_true(rc == TB_E_APDU_LC || rc == TB_E_APDU_LE ||
					    rc == TB_E_APDU_FORM);
		}
	}
}

/* Every single-byte change of small encodings fails cleanly or parses to
 * something else; trailing garbage is never ignored. */
static void test_byte_changes(void **state)
{
	static const uint8_t deltas[] = { 0x01, 0x80, 0xFF };
	(void)state;
	fill_payload();
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *s = &shapes[i];
		size_t n = build(big, s->nc, s->ne, s->want_ext);
		struct apdu full, got;

		if (n > 600)
			continue;
		assert_int_equal(apdu_parse(big, n, &full), 0);
		memcpy(enc, big, n);
		for (size_t k = 0; k < n; k++) {
			for (size_t d = 0; d < sizeof(deltas); d++) {
				enc[k] ^= deltas[d];
				if (parse_checked(enc, n, &got) == 0)
					assert_true(apdu_differs(&full, &got));
				enc[k] ^= deltas[d];
			}
		}
		/* One extra byte at the end: never the same command. */
		enc[n] = 0x00;
		if (parse_checked(enc, n + 1, &got) == 0)
			assert_true(apdu_differs(&full, &got));
	}
}

struct bad {
	const char *hex;
	int rc;
	size_t at;
};

static const struct bad bads[] = {
	{ "", TB_E_APDU_SHORT, 0 },
	{ "80", TB_E_APDU_SHORT, 1 },
	{ "80CA9F", TB_E_APDU_SHORT, 3 },
	/* Short Lc 0 followed by a byte: neither short nor a whole extended field. */
	{ "80CA9F7F 00 00", TB_E_APDU_FORM, 4 },
	{ "80CA9F7F 00 12", TB_E_APDU_FORM, 4 },
	/* Extended Lc 0000 with anything after it. */
	{ "80CA9F7F 000000 AA", TB_E_APDU_FORM, 4 },
	{ "80CA9F7F 000000 0000", TB_E_APDU_FORM, 4 },
	/* Short Lc and data disagree. */
	{ "80CA9F7F 02 AA", TB_E_APDU_LC, 4 },
	{ "80CA9F7F 02 AABB CCDD", TB_E_APDU_LC, 4 },
	{ "80CA9F7F FF AABB", TB_E_APDU_LC, 4 },
	/* Extended Lc and data disagree. */
	{ "80CA9F7F 000002 AA", TB_E_APDU_LC, 4 },
	{ "80CA9F7F 000002 AABB 000000", TB_E_APDU_LC, 4 },
	{ "80CA9F7F 00FFFF AA", TB_E_APDU_LC, 4 },
	/* Extended Lc with a one-byte Le. */
	{ "80CA9F7F 000002 AABB 00", TB_E_APDU_LE, 9 },
	{ "80CA9F7F 000001 AA 10", TB_E_APDU_LE, 8 },
};

static void test_errors(void **state)
{
	uint8_t buf[64];
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		size_t n = hexbuf(bads[i].hex, buf, sizeof(buf)), at = 999;
		struct apdu a;

		assert_int_equal(parse_checked(buf, n, &a), bads[i].rc);
		assert_int_equal(apdu_parse_at(buf, n, &a, &at), bads[i].rc);
		assert_int_equal(at, bads[i].at);
	}
	/* NULL with a length is an argument error, not a crash. */
	{
		struct apdu a;
		assert_int_equal(apdu_parse(NULL, 5, &a), TB_E_INVAL);
		assert_int_equal(apdu_parse(NULL, 0, &a), TB_E_APDU_SHORT);
	}
}

static void test_encode_errors(void **state)
{
	struct apdu a = { 0x80, 0xCA, 0x00, 0x66, NULL, 0, 0, 0 };
	struct wr w;
	(void)state;
	fill_payload();

	w = wr_init(enc, sizeof(enc));
	a.data = payload;
	a.nc = APDU_MAX_NC_EXT + 1;
	assert_int_equal(apdu_encode(&a, &w), TB_E_INVAL);
	a.nc = 1;
	a.ne = APDU_MAX_NE_EXT + 1;
	assert_int_equal(apdu_encode(&a, &w), TB_E_INVAL);
	a.ne = 0;
	a.data = NULL;
	assert_int_equal(apdu_encode(&a, &w), TB_E_INVAL);
	assert_int_equal(w.len, 0);
	/* Every capacity short of the need says NOSPACE and writes nothing. */
	fill_payload();
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		struct apdu b = shape_apdu(&shapes[i]);
		size_t need = build(big, shapes[i].nc, shapes[i].ne, shapes[i].want_ext);
		size_t caps[] = { 0, 3, 4, 5, 6, need / 2, need - 2, need - 1 };

		for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
			if (caps[c] >= need)
				continue;
			memset(enc, 0xEE, need);
			w = wr_init(enc, caps[c]);
			assert_int_equal(apdu_encode(&b, &w), TB_E_NOSPACE);
			assert_int_equal(w.len, 0);
			for (size_t k = 0; k < need; k++)
				assert_int_equal(enc[k], 0xEE);
		}
		/* Appends after what the writer already holds. */
		w = wr_init(enc, need + 1);
		assert_int_equal(wr_u8(&w, 0x42), 0);
		assert_int_equal(apdu_encode(&b, &w), 0);
		assert_int_equal(w.len, need + 1);
		assert_int_equal(enc[0], 0x42);
		assert_memory_equal(enc + 1, big, need);
	}
}

static void test_case_of(void **state)
{
	struct apdu a = { 0 };
	(void)state;
	assert_int_equal(apdu_case_of(&a), APDU_CASE_1);
	a.ne = 1;
	assert_int_equal(apdu_case_of(&a), APDU_CASE_2);
	a.nc = 1;
	assert_int_equal(apdu_case_of(&a), APDU_CASE_4);
	a.ne = 0;
	assert_int_equal(apdu_case_of(&a), APDU_CASE_3);
}

static void test_boundaries(void **state)
{
	struct apdu a = { 0x00, 0xB0, 0x00, 0x00, NULL, 0, 0, 0 };
	struct wr w;
	(void)state;
	fill_payload();

	/* Ne 256 is the last short Le (00), 257 forces extended. */
	a.ne = 256;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_hex_equal(enc, w.len, "00B0000000");
	a.ne = 257;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_hex_equal(enc, w.len, "00B00000000101");
	a.ne = 65536;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_hex_equal(enc, w.len, "00B00000000000");
	a.ne = 65535;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_hex_equal(enc, w.len, "00B0000000FFFF");
	/* Nc 255 is the last short Lc, 256 forces extended and so does Le with it. */
	a.ne = 256;
	a.nc = 255;
	a.data = payload;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_int_equal(w.len, 4 + 1 + 255 + 1);
	assert_int_equal(enc[4], 0xFF);
	assert_int_equal(enc[w.len - 1], 0x00);
	a.nc = 256;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_int_equal(w.len, 4 + 3 + 256 + 2);
	assert_hex_equal(enc + 4, 3, "000100");
	assert_hex_equal(enc + w.len - 2, 2, "0100");
	a.nc = 65535;
	a.ne = 65536;
	w = wr_init(enc, sizeof(enc));
	assert_int_equal(apdu_encode(&a, &w), 0);
	assert_int_equal(w.len, APDU_MAX_CMD);
	assert_hex_equal(enc + 4, 3, "00FFFF");
	assert_hex_equal(enc + w.len - 2, 2, "0000");
	/* Short Le 01..FF are 1..255. */
	for (unsigned v = 1; v <= 0xFF; v++) {
		uint8_t b[5] = { 0x00, 0xB0, 0x00, 0x00, (uint8_t)v };
		struct apdu p;
		assert_int_equal(apdu_parse(b, 5, &p), 0);
		assert_int_equal(p.ne, v);
	}
}

static void test_responses(void **state)
{
	uint8_t buf[32], out[32];
	struct apdu_resp r, guard;
	struct wr w;
	size_t n;
	(void)state;

	n = hexbuf("9000", buf, sizeof(buf));
	assert_int_equal(apdu_resp_parse(buf, n, &r), 0);
	assert_int_equal(r.n, 0);
	assert_null(r.data);
	assert_int_equal(r.sw, 0x9000);
	n = hexbuf("6F10A0 6A82", buf, sizeof(buf));
	assert_int_equal(apdu_resp_parse(buf, n, &r), 0);
	assert_int_equal(r.n, 3);
	assert_ptr_equal(r.data, buf);
	assert_int_equal(r.sw, 0x6A82);
	/* Round trip, and every cut below 2 bytes fails without touching *out. */
	w = wr_init(out, sizeof(out));
	assert_int_equal(apdu_resp_encode(r.data, r.n, r.sw, &w), 0);
	assert_hex_equal(out, w.len, "6F10A06A82");
	for (size_t k = 0; k < 2; k++) {
		memset(&r, 0x5A, sizeof(r));
		memset(&guard, 0x5A, sizeof(guard));
		assert_int_equal(apdu_resp_parse(buf, k, &r), TB_E_APDU_RESP);
		assert_memory_equal(&r, &guard, sizeof(r));
	}
	/* A cut of 2 or more reads as shorter data and a different SW. */
	assert_int_equal(apdu_resp_parse(buf, 4, &r), 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.sw, 0xA06A);
	/* Encoding: NOSPACE at every capacity short of n + 2, nothing written. */
	for (size_t cap = 0; cap < 5; cap++) {
		memset(out, 0xEE, sizeof(out));
		w = wr_init(out, cap);
		assert_int_equal(apdu_resp_encode(buf, 3, 0x9000, &w), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
		assert_int_equal(out[0], 0xEE);
	}
	w = wr_init(out, 2);
	assert_int_equal(apdu_resp_encode(NULL, 0, 0x6982, &w), 0);
	assert_hex_equal(out, w.len, "6982");
	w = wr_init(out, sizeof(out));
	assert_int_equal(apdu_resp_encode(NULL, 1, 0x9000, &w), TB_E_INVAL);
	assert_int_equal(apdu_resp_parse(NULL, 3, &r), TB_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_byte_changes),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_case_of),
		cmocka_unit_test(test_boundaries),
		cmocka_unit_test(test_responses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
