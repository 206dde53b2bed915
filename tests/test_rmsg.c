/* test_rmsg.c - the relay message codecs (src/lib/rmsg.c): exact bytes of each message
 * as the flows contract writes them, round trips, every truncation, trailing bytes,
 * single-byte changes, field limits with their specific error codes, and encoders that
 * leave the writer untouched on failure. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "rmsg.h"
#include "vec.h"

static uint8_t B[RMSG_MAX + 64];

/* Plain data equality (no memcmp outside the allow-list). */
static int eqb(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

/* Every proper prefix of b fails; b with one more byte fails. dec is up or down. */
static void cuts_fail(int (*dec)(const uint8_t *, size_t, struct rmsg *), const uint8_t *b, size_t n)
{
	uint8_t x[RMSG_MAX + 1];
	struct rmsg m;

	for (size_t k = 0; k < n; k++)
		assert_true(dec(b, k, &m) < 0);
	memcpy(x, b, n);
	x[n] = 0x00;
	/* A trailing byte: rest-of-message fields absorb it, fixed ones refuse it. */
	(void)dec(x, n + 1, &m);
}

static void test_hello(void **state)
{
	struct wr w = wr_init(B, sizeof(B));
	struct rmsg m;

	(void)state;
	assert_int_equal(rmsg_hello_enc(&w, 7), 0);
	assert_hex_equal(B, w.len, "010100000007");
	assert_int_equal(rmsg_up_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_HELLO);
	assert_int_equal(m.reader_id, 7);
	cuts_fail(rmsg_up_dec, B, w.len);
	B[6] = 0;
	assert_int_equal(rmsg_up_dec(B, 7, &m), TB_E_LEFTOVER);
	B[1] = 0x02; /* version */
	assert_int_equal(rmsg_up_dec(B, 6, &m), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_down_dec(B, 6, &m), TB_E_RMSG_TYPE);
	B[0] = 0x04;
	assert_int_equal(rmsg_up_dec(B, 6, &m), TB_E_RMSG_TYPE);
	assert_int_equal(rmsg_up_dec(B, 0, &m), TB_E_TRUNC);
}

static void test_auth(void **state)
{
	uint8_t iu[34];
	struct wr w = wr_init(B, sizeof(B));
	struct rmsg m;

	(void)state;
	for (size_t i = 0; i < sizeof(iu); i++)
		iu[i] = (uint8_t)(0xA0 + i);
	assert_int_equal(rmsg_auth_enc(&w, 0x01020304, iu, 34), 0);
	assert_int_equal(w.len, 40);
	assert_hex_equal(B, 6, "020102030422");
	assert_int_equal(rmsg_up_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_AUTH);
	assert_int_equal(m.reader_id, 0x01020304);
	assert_int_equal(m.a_n, 34);
	assert_ptr_equal(m.a, B + 6);
	cuts_fail(rmsg_up_dec, B, w.len);
	assert_int_equal(rmsg_up_dec(B, w.len + 1, &m), TB_E_LEFTOVER);
	B[5] = 30; /* below 31 */
	assert_int_equal(rmsg_up_dec(B, 36, &m), TB_E_RMSG_FIELD);
	B[5] = 35;
	assert_int_equal(rmsg_up_dec(B, 41, &m), TB_E_RMSG_FIELD);
	/* Encoder limits; the writer stays untouched. */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_auth_enc(&w, 1, iu, 30), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_auth_enc(&w, 1, iu, 35), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 0);
	w = wr_init(B, 39);
	assert_int_equal(rmsg_auth_enc(&w, 1, iu, 34), TB_E_NOSPACE);
	assert_int_equal(w.len, 0);
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_auth_enc(&w, 1, iu, 31), 0);
	assert_int_equal(rmsg_up_dec(B, w.len, &m), 0);
	assert_int_equal(m.a_n, 31);
}

static void test_data(void **state)
{
	uint8_t resp[RMSG_MAX];
	struct wr w = wr_init(B, sizeof(B));
	struct rmsg m;

	(void)state;
	memset(resp, 0x5A, sizeof(resp));
	assert_int_equal(rmsg_data_enc(&w, 0x9000, resp, 12), 0);
	assert_hex_equal(B, 3, "039000");
	assert_int_equal(rmsg_up_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_DATA);
	assert_int_equal(m.ea_sw, 0x9000);
	assert_int_equal(m.a_n, 12);
	for (size_t k = 0; k < 5; k++)
		assert_true(rmsg_up_dec(B, k, &m) < 0);
	assert_int_equal(rmsg_up_dec(B, 4, &m), TB_E_RMSG_FIELD); /* one byte: no SW */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_data_enc(&w, 0x9000, resp, 1), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_data_enc(&w, 0x9000, resp, RMSG_MAX - 2), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 0);
	assert_int_equal(rmsg_data_enc(&w, 0x6300, resp, RMSG_MAX - 3), 0);
	assert_int_equal(w.len, RMSG_MAX);
	assert_int_equal(rmsg_up_dec(B, w.len, &m), 0);
	assert_int_equal(m.ea_sw, 0x6300);
	assert_int_equal(rmsg_up_dec(B, RMSG_MAX + 1, &m), TB_E_RMSG_FIELD);
}

static void test_answers(void **state)
{
	uint8_t iu[14], ea[21], gr[14];
	struct wr w = wr_init(B, sizeof(B));
	struct rmsg m;

	(void)state;
	hexbuf("8050210008A1A2A3A4A5A6A7A800", iu, sizeof(iu));
	assert_int_equal(rmsg_ans_hello_enc(&w, iu, 14), 0);
	assert_hex_equal(B, w.len, "818050210008A1A2A3A4A5A6A7A800");
	assert_int_equal(rmsg_down_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_ANS_HELLO);
	assert_int_equal(m.a_n, 14);
	assert_int_equal(rmsg_down_dec(B, 5, &m), TB_E_RMSG_FIELD); /* 4-byte IU */
	assert_int_equal(rmsg_down_dec(B, 1, &m), TB_E_TRUNC);
	memset(B + 15, 0, 9);
	assert_int_equal(rmsg_down_dec(B, 23, &m), 0); /* 22 bytes: S16 with Le */
	assert_int_equal(rmsg_down_dec(B, 24, &m), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_up_dec(B, 15, &m), TB_E_RMSG_TYPE);

	memset(ea, 0xEA, sizeof(ea));
	memset(gr, 0x67, sizeof(gr));
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_ans_auth_enc(&w, ea, 21, gr, 14), 0);
	assert_int_equal(w.len, 2 + 21 + 14);
	assert_hex_equal(B, 3, "8215EA");
	assert_int_equal(rmsg_down_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_ANS_AUTH);
	assert_ptr_equal(m.a, B + 2);
	assert_int_equal(m.a_n, 21);
	assert_ptr_equal(m.b, B + 23);
	assert_int_equal(m.b_n, 14);
	for (size_t k = 0; k < 2 + 21 + 4; k++)
		assert_true(rmsg_down_dec(B, k, &m) < 0);
	assert_int_equal(rmsg_down_dec(B, 2 + 21 + 4, &m), 0); /* a 4-byte command is the least */
	B[1] = 4;
	assert_int_equal(rmsg_down_dec(B, w.len, &m), TB_E_RMSG_FIELD);
	B[1] = 38;
	assert_int_equal(rmsg_down_dec(B, w.len, &m), TB_E_RMSG_FIELD);
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_ans_auth_enc(&w, ea, 4, gr, 14), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_ans_auth_enc(&w, ea, 21, gr, 3), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 0);

	assert_int_equal(rmsg_ans_data_enc(&w, gr, 14), 0);
	assert_int_equal(rmsg_down_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_ANS_DATA);
	assert_int_equal(m.a_n, 14);
	assert_int_equal(rmsg_down_dec(B, 4, &m), TB_E_RMSG_FIELD);
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_ans_data_enc(&w, gr, 3), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 0);
}

static void test_refuse(void **state)
{
	char reason[RMSG_REASON_MAX + 1];
	struct wr w = wr_init(B, sizeof(B));
	struct rmsg m;

	(void)state;
	assert_int_equal(rmsg_refuse_enc(&w, RMSG_REFUSE_UNKNOWN_READER, "unknown reader", 14), 0);
	assert_hex_equal(B, 4, "8F01756E");
	assert_int_equal(rmsg_down_dec(B, w.len, &m), 0);
	assert_int_equal(m.type, RMSG_ANS_REFUSE);
	assert_int_equal(m.code, 1);
	assert_int_equal(m.a_n, 14);
	assert_memory_equal(m.a, "unknown reader", 14);
	for (size_t k = 0; k < 3; k++) /* longer prefixes are shorter reasons */
		assert_true(rmsg_down_dec(B, k, &m) < 0);
	B[5] = 0x0A; /* a control character */
	assert_int_equal(rmsg_down_dec(B, w.len, &m), TB_E_RMSG_TEXT);
	B[5] = 0x7F;
	assert_int_equal(rmsg_down_dec(B, w.len, &m), TB_E_RMSG_TEXT);
	B[1] = 0;
	assert_int_equal(rmsg_down_dec(B, w.len, &m), TB_E_RMSG_FIELD);
	B[1] = 6;
	assert_int_equal(rmsg_down_dec(B, w.len, &m), TB_E_RMSG_FIELD);
	memset(reason, 'x', sizeof(reason));
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_refuse_enc(&w, 5, reason, RMSG_REASON_MAX), 0);
	assert_int_equal(rmsg_down_dec(B, w.len, &m), 0);
	B[w.len] = 'x';
	assert_int_equal(rmsg_down_dec(B, w.len + 1, &m), TB_E_RMSG_TEXT); /* 65 bytes */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_refuse_enc(&w, 5, reason, RMSG_REASON_MAX + 1), TB_E_RMSG_TEXT);
	assert_int_equal(rmsg_refuse_enc(&w, 5, reason, 0), TB_E_RMSG_TEXT);
	assert_int_equal(rmsg_refuse_enc(&w, 6, reason, 3), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_refuse_enc(&w, 2, "a\nb", 3), TB_E_RMSG_TEXT);
	assert_int_equal(w.len, 0);
}

/* ------------------------------------------------------ REQUEST, RESULT --- */

static uint8_t receipt[33], order[33 + 1 + 12], ticket[21], pa[56], flag[53];

static size_t sample_records(struct rmsg_record r[5])
{
	static const uint8_t serial[8] = { 0x53, 0x45, 0, 0, 0, 0, 0x12, 0x34 };

	memset(receipt, 0x11, sizeof(receipt));
	memset(order, 0x22, sizeof(order));
	order[33] = 2;
	memset(ticket, 0x33, sizeof(ticket));
	memset(pa, 0x44, sizeof(pa));
	memset(flag, 0x55, sizeof(flag));
	memset(r, 0, 5 * sizeof(r[0]));
	for (size_t i = 0; i < 5; i++) {
		r[i].kind = (uint8_t)(i + 1);
		r[i].seq = (uint32_t)(100 + i);
		r[i].time = 1700000000 + (int64_t)i;
		r[i].service = (uint32_t)(9 + i);
		memcpy(r[i].serial, serial, 8);
	}
	r[0].body = receipt, r[0].body_n = 33;
	r[1].body = order, r[1].body_n = sizeof(order);
	r[2].body = ticket, r[2].body_n = 21;
	r[3].body = pa, r[3].body_n = 56;
	r[4].body = flag, r[4].body_n = 53;
	return 5;
}

static void test_request(void **state)
{
	struct rmsg_record in[5], out[RMSG_RECORDS_MAX];
	struct wr w = wr_init(B, sizeof(B));
	size_t n = sample_records(in), count = 99;

	(void)state;
	assert_int_equal(rmsg_request_enc(&w, in, n), 0);
	assert_int_equal(w.len, 1 + 5 * 27 + 33 + 46 + 21 + 56 + 53);
	/* count, then the first record's header: kind seq time service serial len */
	assert_hex_equal(B, 1 + 27, "05" "01" "00000064" "000000006553F100" "00000009"
				    "5345000000001234" "0021");
	assert_int_equal(rmsg_request_dec(B, w.len, out, RMSG_RECORDS_MAX, &count), 0);
	assert_int_equal(count, 5);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].kind, in[i].kind);
		assert_int_equal(out[i].seq, in[i].seq);
		assert_true(out[i].time == in[i].time);
		assert_int_equal(out[i].service, in[i].service);
		assert_memory_equal(out[i].serial, in[i].serial, 8);
		assert_int_equal(out[i].body_n, in[i].body_n);
		assert_memory_equal(out[i].body, in[i].body, in[i].body_n);
	}
	count = 99;
	for (size_t k = 0; k < w.len; k++)
		assert_true(rmsg_request_dec(B, k, out, RMSG_RECORDS_MAX, &count) < 0);
	assert_int_equal(count, 99);
	assert_int_equal(rmsg_request_dec(B, w.len + 1, out, RMSG_RECORDS_MAX, &count), TB_E_LEFTOVER);
	assert_int_equal(rmsg_request_dec(B, w.len, out, 4, &count), TB_E_RMSG_FIELD);
	/* Every single-byte change fails or parses to something else. */
	for (size_t i = 0; i < w.len; i++) {
		struct rmsg_record o2[RMSG_RECORDS_MAX];
		size_t c2 = 0;

		B[i] ^= 0x01;
		if (rmsg_request_dec(B, w.len, o2, RMSG_RECORDS_MAX, &c2) == 0) {
			int same = c2 == n;

			for (size_t j = 0; same && j < n; j++)
				same = o2[j].kind == in[j].kind && o2[j].seq == in[j].seq &&
				       o2[j].time == in[j].time && o2[j].service == in[j].service &&
				       eqb(o2[j].serial, in[j].serial, 8) &&
				       o2[j].body_n == in[j].body_n &&
				       eqb(o2[j].body, in[j].body, in[j].body_n);
			assert_false(same);
		}
		B[i] ^= 0x01;
	}
	/* An empty REQUEST. */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_request_enc(&w, NULL, 0), 0);
	assert_hex_equal(B, w.len, "00");
	assert_int_equal(rmsg_request_dec(B, 1, out, RMSG_RECORDS_MAX, &count), 0);
	assert_int_equal(count, 0);
}

/* REFUND (kind 6): key || amount; the body codec and the record's length rules. */
static void test_refund(void **state)
{
	static const char key[] = "S:5345000000001234:00000004";
	uint8_t body[RMSG_REFUND_LEN_MAX + 8], big[RMSG_REFUND_KEY_MAX + 1];
	struct wr w = wr_init(body, sizeof(body));
	struct rmsg_record in, out;
	const char *k = NULL;
	size_t kn = 0, n;
	uint32_t amount = 0;
	struct rd r;

	(void)state;
	assert_int_equal(rmsg_refund_enc(&w, key, strlen(key), 300), 0);
	n = w.len;
	assert_int_equal(n, strlen(key) + 4);
	assert_hex_equal(body + n - 4, 4, "0000012C");
	assert_int_equal(rmsg_refund_dec(body, n, &k, &kn, &amount), 0);
	assert_int_equal(kn, strlen(key));
	assert_memory_equal(k, key, kn);
	assert_int_equal(amount, 300);
	/* limits: amount 0, empty or long key, a space or a control byte in it */
	w = wr_init(body, sizeof(body));
	assert_int_equal(rmsg_refund_enc(&w, key, strlen(key), 0), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_refund_enc(&w, key, 0, 1), TB_E_RMSG_FIELD);
	memset(big, 'A', sizeof(big));
	assert_int_equal(rmsg_refund_enc(&w, (const char *)big, RMSG_REFUND_KEY_MAX + 1, 1),
			 TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_refund_enc(&w, "S: 1", 4, 1), TB_E_RMSG_TEXT);
	assert_int_equal(rmsg_refund_enc(&w, "S:\n1", 4, 1), TB_E_RMSG_TEXT);
	assert_int_equal(w.len, 0); /* nothing written by a failed call */
	w = wr_init(body, 10);
	assert_int_equal(rmsg_refund_enc(&w, key, strlen(key), 1), TB_E_NOSPACE);
	assert_int_equal(w.len, 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(rmsg_refund_enc(&w, (const char *)big, RMSG_REFUND_KEY_MAX, 7), 0);
	assert_int_equal(w.len, RMSG_REFUND_LEN_MAX);
	assert_int_equal(rmsg_refund_dec(body, w.len, &k, &kn, &amount), 0);
	assert_int_equal(kn, RMSG_REFUND_KEY_MAX);
	/* every shorter body: too short, or a key that ends in amount bytes (not text) */
	kn = 99;
	for (size_t i = 0; i < RMSG_REFUND_LEN_MIN; i++)
		assert_int_equal(rmsg_refund_dec(body, i, &k, &kn, &amount), TB_E_RMSG_FIELD);
	assert_int_equal(kn, 99);
	assert_int_equal(rmsg_refund_dec(body, RMSG_REFUND_LEN_MAX + 1, &k, &kn, &amount),
			 TB_E_RMSG_FIELD);

	/* as a record: round trip; each truncation fails; a body of another length refused */
	w = wr_init(body, sizeof(body));
	assert_int_equal(rmsg_refund_enc(&w, key, strlen(key), 300), 0);
	memset(&in, 0, sizeof(in));
	in.kind = RMSG_K_REFUND;
	in.seq = 9;
	in.time = 1700000000;
	in.service = 1;
	memcpy(in.serial, "\x53\x45\0\0\0\0\x12\x34", 8);
	in.body = body;
	in.body_n = w.len;
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_record_enc(&w, &in), 0);
	assert_int_equal(w.len, RMSG_RECORD_HDR + strlen(key) + 4);
	r = rd_init(B, w.len);
	assert_int_equal(rmsg_record_dec(&r, &out), 0);
	assert_int_equal(out.kind, RMSG_K_REFUND);
	assert_int_equal(out.body_n, in.body_n);
	assert_memory_equal(out.body, body, in.body_n);
	for (size_t i = 0; i < w.len; i++) {
		r = rd_init(B, i);
		assert_true(rmsg_record_dec(&r, &out) < 0);
	}
	in.body_n = 4; /* no key */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_record_enc(&w, &in), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 0);
	body[3] = ' '; /* a space in the key */
	in.body_n = strlen(key) + 4;
	assert_int_equal(rmsg_record_enc(&w, &in), TB_E_RMSG_FIELD);
	in.kind = 7; /* no such kind */
	body[3] = '4';
	assert_int_equal(rmsg_record_enc(&w, &in), TB_E_RMSG_FIELD);
}

static void test_request_limits(void **state)
{
	struct rmsg_record in[5], many[RMSG_RECORDS_MAX + 1], out[RMSG_RECORDS_MAX];
	struct wr w = wr_init(B, sizeof(B));
	size_t count;
	struct rd r;

	(void)state;
	sample_records(in);
	for (size_t i = 0; i < RMSG_RECORDS_MAX + 1; i++)
		many[i] = in[0];
	assert_int_equal(rmsg_request_enc(&w, many, RMSG_RECORDS_MAX + 1), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_request_enc(&w, many, RMSG_RECORDS_MAX), 0);
	B[0] = 9;
	assert_int_equal(rmsg_request_dec(B, w.len, out, RMSG_RECORDS_MAX, &count), TB_E_RMSG_FIELD);
	/* Field checks of the record codec, each with the writer untouched. */
	w = wr_init(B, sizeof(B));
	in[0].seq = 0;
	assert_int_equal(rmsg_record_enc(&w, &in[0]), TB_E_RMSG_FIELD);
	in[0].seq = 1;
	in[0].kind = 6;
	assert_int_equal(rmsg_record_enc(&w, &in[0]), TB_E_RMSG_FIELD);
	in[0].kind = 0;
	assert_int_equal(rmsg_record_enc(&w, &in[0]), TB_E_RMSG_FIELD);
	in[0].kind = 1;
	in[0].body_n = 32;
	assert_int_equal(rmsg_record_enc(&w, &in[0]), TB_E_RMSG_FIELD);
	in[0].body_n = 33;
	order[33] = 0; /* no items */
	assert_int_equal(rmsg_record_enc(&w, &in[1]), TB_E_RMSG_FIELD);
	order[33] = 3; /* says 3, holds 2 */
	assert_int_equal(rmsg_record_enc(&w, &in[1]), TB_E_RMSG_FIELD);
	order[33] = 2;
	in[4].body_n = 20; /* a FLAG without receipt */
	assert_int_equal(rmsg_record_enc(&w, &in[4]), 0);
	in[4].body_n = 21;
	assert_int_equal(rmsg_record_enc(&w, &in[4]), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 27 + 20);
	w = wr_init(B, 27 + 32);
	assert_int_equal(rmsg_record_enc(&w, &in[0]), TB_E_NOSPACE);
	assert_int_equal(w.len, 0);
	/* The decoder refuses a seq of 0 and a length that does not fit the kind. */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_record_enc(&w, &in[0]), 0);
	B[1] = B[2] = B[3] = B[4] = 0;
	r = rd_init(B, w.len);
	assert_int_equal(rmsg_record_dec(&r, &out[0]), TB_E_RMSG_FIELD);
	assert_int_equal(r.n, w.len); /* nothing consumed */
	B[4] = 1;
	B[26] = 34; /* len 34 for a PAY */
	r = rd_init(B, w.len + 1);
	assert_int_equal(rmsg_record_dec(&r, &out[0]), TB_E_RMSG_FIELD);
}

static void test_result(void **state)
{
	static const uint8_t deny[2][8] = { { 1, 2, 3, 4, 5, 6, 7, 8 }, { 9, 9, 9, 9, 9, 9, 9, 9 } };
	struct rmsg_result_item it[3] = {
		{ 100, RMSG_ST_BOOKED, "balance=700", 11 },
		{ 101, RMSG_ST_REPLAY, "", 0 },
		{ 103, RMSG_ST_REFUSED, "unknown id", 10 },
	}, out[RMSG_RECORDS_MAX];
	struct wr w = wr_init(B, sizeof(B));
	const uint8_t *d = NULL;
	size_t n = 0, dn = 0;

	(void)state;
	assert_int_equal(rmsg_result_enc(&w, it, 3, deny, 2), 0);
	assert_hex_equal(B, 18, "03" "00000064" "00" "0B" "62616C616E63653D373030");
	assert_int_equal(w.len, 1 + 3 * 6 + 21 + 1 + 16);
	assert_int_equal(rmsg_result_dec(B, w.len, out, RMSG_RECORDS_MAX, &n, &d, &dn), 0);
	assert_int_equal(n, 3);
	assert_int_equal(dn, 2);
	assert_memory_equal(d, deny, 16);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(out[i].seq, it[i].seq);
		assert_int_equal(out[i].status, it[i].status);
		assert_int_equal(out[i].info_n, it[i].info_n);
		assert_memory_equal(out[i].info, it[i].info, it[i].info_n);
	}
	n = 77;
	for (size_t k = 0; k < w.len; k++)
		assert_true(rmsg_result_dec(B, k, out, RMSG_RECORDS_MAX, &n, &d, &dn) < 0);
	assert_int_equal(n, 77);
	assert_int_equal(rmsg_result_dec(B, w.len + 1, out, RMSG_RECORDS_MAX, &n, &d, &dn),
			 TB_E_LEFTOVER);
	assert_int_equal(rmsg_result_dec(B, w.len, out, 2, &n, &d, &dn), TB_E_RMSG_FIELD);
	B[5] = 3; /* status */
	assert_int_equal(rmsg_result_dec(B, w.len, out, RMSG_RECORDS_MAX, &n, &d, &dn), TB_E_RMSG_FIELD);
	B[5] = 0;
	B[7] = 0x01; /* a control character in info */
	assert_int_equal(rmsg_result_dec(B, w.len, out, RMSG_RECORDS_MAX, &n, &d, &dn), TB_E_RMSG_TEXT);
	B[7] = 'b';
	/* An empty RESULT and the limits. */
	w = wr_init(B, sizeof(B));
	assert_int_equal(rmsg_result_enc(&w, NULL, 0, NULL, 0), 0);
	assert_hex_equal(B, w.len, "0000");
	assert_int_equal(rmsg_result_dec(B, 2, out, RMSG_RECORDS_MAX, &n, &d, &dn), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dn, 0);
	assert_null(d);
	B[1] = 33;
	assert_int_equal(rmsg_result_dec(B, 2 + 33 * 8, out, RMSG_RECORDS_MAX, &n, &d, &dn),
			 TB_E_RMSG_FIELD);
	B[0] = 9;
	assert_int_equal(rmsg_result_dec(B, 2, out, RMSG_RECORDS_MAX, &n, &d, &dn), TB_E_RMSG_FIELD);
	w = wr_init(B, sizeof(B));
	it[0].status = 3;
	assert_int_equal(rmsg_result_enc(&w, it, 3, deny, 2), TB_E_RMSG_FIELD);
	it[0].status = 0;
	it[0].info_n = RMSG_INFO_MAX + 1;
	assert_int_equal(rmsg_result_enc(&w, it, 3, deny, 2), TB_E_RMSG_TEXT);
	it[0].info_n = 11;
	assert_int_equal(rmsg_result_enc(&w, it, 3, deny, 33), TB_E_RMSG_FIELD);
	assert_int_equal(rmsg_result_enc(&w, it, 9, deny, 0), TB_E_RMSG_FIELD);
	assert_int_equal(w.len, 0);
	w = wr_init(B, 10);
	assert_int_equal(rmsg_result_enc(&w, it, 3, deny, 2), TB_E_NOSPACE);
	assert_int_equal(w.len, 0);
}

/* The largest RESULT and REQUEST still fit one ENVELOPE once wrapped. */
static void test_sizes(void **state)
{
	(void)state;
	assert_true(1 + RMSG_RECORDS_MAX * (6 + RMSG_INFO_MAX) + 1 + RMSG_DENY_MAX * 8 + 7 + 16 + 8 + 1 <=
		    RMSG_MAX);
	assert_true(3 + ((RMSG_REQUEST_MAX + 1 + 15) / 16) * 16 + 8 + 2 <= RMSG_MAX);
	assert_int_equal(RMSG_BODY_MAX, 130);
}

static void test_reader_ids(void **state)
{
	uint8_t kdd[10], serial[8];

	(void)state;
	rmsg_reader_kdd(0x01020304, kdd);
	assert_hex_equal(kdd, 10, "00000000000001020304");
	rmsg_reader_serial(7, serial);
	assert_hex_equal(serial, 8, "0000000000000007");
	assert_hex_equal(rmsg_reader_aid, RMSG_READER_AID_LEN, "F054415042524944474502");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),   cmocka_unit_test(test_auth),
		cmocka_unit_test(test_data),    cmocka_unit_test(test_answers),
		cmocka_unit_test(test_refuse),  cmocka_unit_test(test_request),
		cmocka_unit_test(test_request_limits), cmocka_unit_test(test_result),
		cmocka_unit_test(test_refund),
		cmocka_unit_test(test_sizes),   cmocka_unit_test(test_reader_ids),
	};

	return cmocka_run_group_tests_name("rmsg", tests, NULL, NULL);
}
