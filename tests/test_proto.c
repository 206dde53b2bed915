/* test_proto.c - the phone session protocol codecs (server/proto.h): a sample of every
 * frame type decodes, re-encodes to the same bytes and survives every truncation and
 * single-byte change (fails, or parses to something that re-encodes to the changed
 * bytes); each rule fails with its own error; encoders refuse what decoders refuse and
 * leave the writer alone on error; the size tables are exact; UTF-8 edge cases. */
#include <string.h>

#include "err.h"
#include "frame.h"
#include "proto.h"
#include "vec.h"

struct sample {
	uint8_t type;
	const char *hex;
};

#define REC1 "0000000000000010" "0000000065000000" "03" "00000001" "00000007" \
	     "00000000000001F4" "0000000000000BB8"
#define REC2 "000000000000000F" "FFFFFFFFFFFFFF00" "0E" "00000000" "00000000" \
	     "FFFFFFFFFFFFFF9C" "0000000000000000"

static const struct sample samples[] = {
	{ PROTO_HELLO, "0001" "5345000000004321" "03" "312E30" },
	{ PROTO_MENU, "02" "00000001" "02" "01" "05" "5075727365" "00000002" "04" "02" "06" "5469636B6574" },
	{ PROTO_MENU, "00" },
	{ PROTO_SELECT, "00000001" },
	{ PROTO_SE_APDU, "00000001" "80CA00FE00" },
	{ PROTO_SE_RESP, "FFFFFFFF" "9000" },
	{ PROTO_RELAY_UP, "00000009" "00000001" "A1B2C3" },
	{ PROTO_RELAY_DOWN, "00000009" "00" "D4E5" },
	{ PROTO_RELAY_DOWN, "00000009" "00" },
	{ PROTO_RELAY_DOWN, "00000009" "01" },
	{ PROTO_HISTORY_REQ, "0000000000000000" "0A" },
	{ PROTO_HISTORY, "01" "02" REC1 REC2 },
	{ PROTO_HISTORY, "00" "00" },
	{ PROTO_NOTICE, "48656C6C6F20E29C93" },
	{ PROTO_ERROR, "0002" "6672616D6520746F6F206C61726765" },
	{ PROTO_PING, "0102030405060708" },
	{ PROTO_PONG, "0102030405060708" },
	{ PROTO_BYE, "" },
	/* the flows' additions: SELECT with its op byte, STAGE */
	{ PROTO_SELECT, "00000002" "01" },
	{ PROTO_SELECT, "00000003" "00" },
	{ PROTO_SELECT, "FFFFFFFF" "02" },
	{ PROTO_SELECT, "00000004" "04" },
	{ PROTO_STAGE, "8050300008" "A0A1A2A3A4A5A6A7" "00" },
	{ PROTO_STAGE, "8050000000" },
	{ PROTO_STAGE, "8050300010" "000102030405060708090A0B0C0D0E0F" },
	/* the portal's login link */
	{ PROTO_PORTAL_REQ, "" },
	{ PROTO_PORTAL_LINK, "68747470733A2F2F3132372E302E302E313A383434342F6C2F4142" },
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static size_t sample_bytes(size_t i, uint8_t *out, size_t cap)
{
	return hexbuf(samples[i].hex, out, cap);
}

/* Re-encodes m and checks the bytes equal p. */
static void assert_reencodes(const struct proto_msg *m, const uint8_t *p, size_t n)
{
	uint8_t out[PROTO_PHONE_IN_MAX];
	struct wr w = wr_init(out, sizeof(out));

	assert_int_equal(proto_encode(&w, m), 0);
	assert_int_equal(w.len, n);
	if (n > 0)
		assert_memory_equal(out, p, n);
}

static void test_samples_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		uint8_t p[PROTO_PHONE_IN_MAX];
		size_t n = sample_bytes(i, p, sizeof(p));
		struct proto_msg m;

		assert_int_equal(proto_decode(samples[i].type, n ? p : NULL, n, &m), 0);
		assert_int_equal(m.type, samples[i].type);
		assert_reencodes(&m, p, n);
	}
}

static void test_samples_fields(void **state)
{
	uint8_t p[512];
	size_t n;
	struct proto_msg m;

	(void)state;
	n = sample_bytes(0, p, sizeof(p));
	assert_int_equal(proto_decode(PROTO_HELLO, p, n, &m), 0);
	assert_int_equal(m.u.hello.version, 1);
	assert_hex_equal(m.u.hello.serial, 8, "5345000000004321");
	assert_int_equal(m.u.hello.app_len, 3);
	assert_memory_equal(m.u.hello.app, "1.0", 3);
	assert_ptr_equal(m.u.hello.app, p + 11); /* zero copy */

	n = sample_bytes(1, p, sizeof(p));
	assert_int_equal(proto_decode(PROTO_MENU, p, n, &m), 0);
	assert_int_equal(m.u.menu.n, 2);
	assert_int_equal(m.u.menu.items[1].id, 2);
	assert_int_equal(m.u.menu.items[1].kind, 4);
	assert_int_equal(m.u.menu.items[1].state, PROTO_SVC_READY);
	assert_memory_equal(m.u.menu.items[1].name, "Ticket", 6);

	n = sample_bytes(11, p, sizeof(p));
	assert_int_equal(proto_decode(PROTO_HISTORY, p, n, &m), 0);
	assert_int_equal(m.u.history.more, 1);
	assert_int_equal(m.u.history.n, 2);
	assert_int_equal(m.u.history.recs[0].id, 16);
	assert_int_equal(m.u.history.recs[0].time, 0x65000000);
	assert_int_equal(m.u.history.recs[0].reader, 7);
	assert_int_equal(m.u.history.recs[0].amount, 500);
	assert_int_equal(m.u.history.recs[0].balance, 3000);
	assert_true(m.u.history.recs[1].time == -256);
	assert_true(m.u.history.recs[1].amount == -100);

	n = sample_bytes(5, p, sizeof(p));
	assert_int_equal(proto_decode(PROTO_SE_RESP, p, n, &m), 0);
	assert_int_equal(m.u.apdu.seq, 0xFFFFFFFFu);
	assert_int_equal(m.u.apdu.n, 2);

	n = sample_bytes(9, p, sizeof(p));
	assert_int_equal(proto_decode(PROTO_RELAY_DOWN, p, n, &m), 0);
	assert_int_equal(m.u.relay_down.status, PROTO_RELAY_FAIL);
	assert_null(m.u.relay_down.data);
	assert_int_equal(m.u.relay_down.n, 0);
}

/* Every proper prefix of a sample fails, and the output is untouched. */
static void test_truncations(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		uint8_t p[PROTO_PHONE_IN_MAX];
		size_t n = sample_bytes(i, p, sizeof(p));

		for (size_t k = 0; k < n; k++) {
			struct proto_msg m, before;
			int rc;

			memset(&m, 0xA5, sizeof(m));
			before = m;
			rc = proto_decode(samples[i].type, k ? p : NULL, k, &m);
			/* A prefix of a trailing-blob type can be valid on its own (a shorter
			 * APDU); then it must be canonical. Otherwise it fails cleanly. */
			if (rc == 0) {
				assert_reencodes(&m, p, k);
				continue;
			}
			assert_true(rc < 0);
			assert_memory_equal(&m, &before, sizeof(m));
		}
	}
}

/* Every single-byte change fails or parses to something that encodes to the new bytes:
 * the encoding is canonical, so nothing is accepted in two spellings. */
static void test_byte_changes(void **state)
{
	static const uint8_t flips[] = { 0x01, 0x80, 0xFF, 0x20 };

	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		uint8_t p[PROTO_PHONE_IN_MAX];
		size_t n = sample_bytes(i, p, sizeof(p));

		for (size_t k = 0; k < n; k++) {
			for (size_t f = 0; f < sizeof(flips); f++) {
				struct proto_msg m;

				p[k] ^= flips[f];
				if (proto_decode(samples[i].type, p, n, &m) == 0)
					assert_reencodes(&m, p, n);
				p[k] ^= flips[f];
			}
		}
	}
}

/* One extra byte: refused as leftover where the layout is closed, otherwise canonical. */
static void test_extra_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		uint8_t p[PROTO_PHONE_IN_MAX];
		size_t n = sample_bytes(i, p, sizeof(p));
		struct proto_msg m;
		int rc;
		uint8_t t = samples[i].type;

		p[n] = 0x41;
		rc = proto_decode(t, p, n + 1, &m);
		if (t == PROTO_SE_APDU || t == PROTO_SE_RESP || t == PROTO_RELAY_UP ||
		    t == PROTO_NOTICE || t == PROTO_ERROR || t == PROTO_PORTAL_LINK ||
		    (t == PROTO_STAGE && n < PROTO_STAGE_MAX) ||
		    (t == PROTO_RELAY_DOWN && p[4] == PROTO_RELAY_ANSWER)) {
			assert_int_equal(rc, 0);
			assert_reencodes(&m, p, n + 1);
		} else if (t == PROTO_RELAY_DOWN || t == PROTO_STAGE ||
			   (t == PROTO_SELECT && n == 4)) {
			/* a fifth SELECT byte is an op, and 0x41 is none */
			assert_int_equal(rc, TB_E_PROTO_FIELD);
		} else {
			assert_int_equal(rc, TB_E_LEFTOVER);
		}
	}
}

struct bad {
	uint8_t type;
	const char *hex;
	int err;
};

static const struct bad bads[] = {
	{ PROTO_HELLO, "0002" "5345000000004321" "03" "312E30", TB_E_PROTO_VERSION },
	{ PROTO_HELLO, "0000", TB_E_PROTO_VERSION },
	{ PROTO_HELLO, "0001" "5345000000004321" "00", TB_E_PROTO_FIELD },
	{ PROTO_HELLO, "0001" "5345000000004321" "03" "310A30", TB_E_PROTO_TEXT },
	{ PROTO_HELLO, "0001" "5345000000004321" "02" "C3A9", TB_E_PROTO_TEXT },
	{ PROTO_HELLO, "0001" "5345000000004321" "21"
		       "3131313131313131313131313131313131313131313131313131313131313131" "31",
	  TB_E_PROTO_FIELD },
	{ PROTO_HELLO, "0001" "53450000000043", TB_E_TRUNC },
	{ PROTO_MENU, "21", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "01" "00000000" "02" "01" "01" "41", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "01" "00000001" "00" "01" "01" "41", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "01" "00000001" "02" "04" "01" "41", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "01" "00000001" "02" "00" "01" "41", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "01" "00000001" "02" "01" "00", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "01" "00000001" "02" "01" "02" "C328", TB_E_PROTO_TEXT },
	{ PROTO_MENU, "02" "00000001" "02" "01" "01" "41" "00000001" "02" "01" "01" "42", TB_E_PROTO_FIELD },
	{ PROTO_MENU, "02" "00000001" "02" "01" "01" "41", TB_E_TRUNC },
	{ PROTO_SELECT, "00000000", TB_E_PROTO_FIELD },
	{ PROTO_SELECT, "000001", TB_E_TRUNC },
	{ PROTO_SELECT, "00000001" "05", TB_E_PROTO_FIELD },
	{ PROTO_SELECT, "00000001" "FF", TB_E_PROTO_FIELD },
	{ PROTO_SELECT, "00000000" "01", TB_E_PROTO_FIELD },
	{ PROTO_SELECT, "00000001" "01" "00", TB_E_LEFTOVER },
	{ PROTO_STAGE, "", TB_E_PROTO_FIELD },
	{ PROTO_PORTAL_REQ, "00", TB_E_LEFTOVER },
	{ PROTO_PORTAL_LINK, "", TB_E_PROTO_FIELD },
	{ PROTO_PORTAL_LINK, "68740A", TB_E_PROTO_TEXT },
	{ PROTO_STAGE, "80503000", TB_E_PROTO_FIELD },
	{ PROTO_STAGE, "8050300011" "000102030405060708090A0B0C0D0E0F10", TB_E_PROTO_FIELD },
	{ PROTO_SE_APDU, "00000001" "80CA00", TB_E_PROTO_FIELD },
	{ PROTO_SE_RESP, "00000001" "90", TB_E_PROTO_FIELD },
	{ PROTO_SE_RESP, "000000", TB_E_TRUNC },
	{ PROTO_RELAY_UP, "00000001" "00000001", TB_E_PROTO_FIELD },
	{ PROTO_RELAY_DOWN, "00000001" "01" "00", TB_E_PROTO_FIELD },
	{ PROTO_RELAY_DOWN, "00000001" "02", TB_E_PROTO_FIELD },
	{ PROTO_RELAY_DOWN, "00000001", TB_E_TRUNC },
	{ PROTO_HISTORY_REQ, "0000000000000000" "00", TB_E_PROTO_FIELD },
	{ PROTO_HISTORY_REQ, "0000000000000000" "21", TB_E_PROTO_FIELD },
	{ PROTO_HISTORY, "02" "00", TB_E_PROTO_FIELD },
	{ PROTO_HISTORY, "01" "00", TB_E_PROTO_FIELD },
	{ PROTO_HISTORY, "00" "21", TB_E_PROTO_FIELD },
	{ PROTO_HISTORY, "00" "02" REC2 REC1, TB_E_PROTO_FIELD },        /* ids not decreasing */
	{ PROTO_HISTORY, "00" "02" REC1 REC1, TB_E_PROTO_FIELD },        /* ids repeat */
	{ PROTO_HISTORY, "00" "01" "0000000000000000" "0000000065000000" "03" "00000001" "00000007"
			 "00000000000001F4" "0000000000000BB8", TB_E_PROTO_FIELD }, /* id 0 */
	{ PROTO_HISTORY, "00" "01" "0000000000000001" "0000000065000000" "00" "00000001" "00000007"
			 "00000000000001F4" "0000000000000BB8", TB_E_PROTO_FIELD }, /* kind 0 */
	{ PROTO_NOTICE, "", TB_E_PROTO_FIELD },
	{ PROTO_NOTICE, "48690A", TB_E_PROTO_TEXT },
	{ PROTO_NOTICE, "4869C280", TB_E_PROTO_TEXT },
	{ PROTO_ERROR, "0000" "41", TB_E_PROTO_FIELD },
	{ PROTO_ERROR, "0001", TB_E_PROTO_FIELD },
	{ PROTO_ERROR, "0001" "FF", TB_E_PROTO_TEXT },
	{ PROTO_PING, "01020304050607", TB_E_TRUNC },
	{ PROTO_PONG, "010203040506070809", TB_E_LEFTOVER },
	{ PROTO_BYE, "00", TB_E_LEFTOVER },
	{ 0x00, "", TB_E_FRAME_TYPE },
	{ 0x07, "", TB_E_FRAME_TYPE },
	{ 0x89, "00", TB_E_FRAME_TYPE },
	{ 0xFF, "", TB_E_FRAME_TYPE },
};

static void test_bad_payloads(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		uint8_t p[PROTO_PHONE_IN_MAX];
		size_t n = hexbuf(bads[i].hex, p, sizeof(p));
		struct proto_msg m, before;

		memset(&m, 0x5A, sizeof(m));
		before = m;
		if (proto_decode(bads[i].type, n ? p : NULL, n, &m) != bads[i].err)
			fail_msg("bad sample %zu: got %s, want %s", i,
				 tb_errname(proto_decode(bads[i].type, n ? p : NULL, n, &m)),
				 tb_errname(bads[i].err));
		assert_memory_equal(&m, &before, sizeof(m));
	}
}

/* Sizes at the limits: exactly the largest payload of each type is accepted, and its
 * frame's N equals the table entry. */
static void test_limits(void **state)
{
	static uint8_t big[PROTO_N_MENU];
	static const char name63[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJK";
	uint8_t fr[FRAME_HDR_LEN + PROTO_PHONE_IN_MAX + 8];
	struct proto_msg m;
	struct wr w;

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(strlen(name63), PROTO_NAME_MAX);

	/* MENU: 32 items with 63-byte names is the largest frame of all. */
	m.type = PROTO_MENU;
	m.u.menu.n = PROTO_MENU_MAX;
	for (size_t i = 0; i < PROTO_MENU_MAX; i++) {
		m.u.menu.items[i].id = (uint32_t)(i + 1);
		m.u.menu.items[i].kind = 1;
		m.u.menu.items[i].state = PROTO_SVC_OFFERED;
		m.u.menu.items[i].name = (const uint8_t *)name63;
		m.u.menu.items[i].name_len = PROTO_NAME_MAX;
	}
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_phone_in[PROTO_MENU]);
	assert_int_equal(proto_phone_in[PROTO_MENU], PROTO_PHONE_IN_MAX);
	m.u.menu.n = PROTO_MENU_MAX + 1;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), TB_E_PROTO_FIELD);
	assert_int_equal(w.len, 0);
	m.u.menu.n = 1;
	m.u.menu.items[0].name_len = PROTO_NAME_MAX + 1;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_encode(&w, &m), TB_E_PROTO_FIELD);

	/* SE_APDU / SE_RESP: 1100 bytes yes, 1101 no. */
	m.type = PROTO_SE_RESP;
	m.u.apdu.seq = 1;
	m.u.apdu.data = big;
	m.u.apdu.n = PROTO_APDU_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_srv_in[PROTO_SE_RESP]);
	assert_int_equal(proto_srv_in[PROTO_SE_RESP], PROTO_SRV_IN_MAX);
	m.u.apdu.n = PROTO_APDU_MAX + 1;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), TB_E_PROTO_FIELD);
	{
		uint8_t p[4 + PROTO_APDU_MAX + 1] = { 0, 0, 0, 1 };

		memset(p + 4, 0x90, sizeof(p) - 4);
		assert_int_equal(proto_decode(PROTO_SE_APDU, p, sizeof(p), &m), TB_E_PROTO_FIELD);
		assert_int_equal(proto_decode(PROTO_SE_APDU, p, sizeof(p) - 1, &m), 0);
	}

	/* RELAY: 1024 yes, 1025 no. */
	m.type = PROTO_RELAY_UP;
	m.u.relay_up.relay = 1;
	m.u.relay_up.service = 2;
	m.u.relay_up.data = big;
	m.u.relay_up.n = PROTO_RELAY_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_srv_in[PROTO_RELAY_UP]);
	m.u.relay_up.n = PROTO_RELAY_MAX + 1;
	assert_int_equal(proto_encode(&w, &m), TB_E_PROTO_FIELD);
	m.type = PROTO_RELAY_DOWN;
	m.u.relay_down.relay = 1;
	m.u.relay_down.status = PROTO_RELAY_ANSWER;
	m.u.relay_down.data = big;
	m.u.relay_down.n = PROTO_RELAY_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_phone_in[PROTO_RELAY_DOWN]);

	/* NOTICE 256, ERROR reason 128, HELLO app 32. */
	m.type = PROTO_NOTICE;
	m.u.notice.p = big;
	m.u.notice.n = PROTO_NOTICE_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_phone_in[PROTO_NOTICE]);
	m.u.notice.n = PROTO_NOTICE_MAX + 1;
	assert_int_equal(proto_encode(&w, &m), TB_E_PROTO_FIELD);
	m.type = PROTO_ERROR;
	m.u.error.code = PROTO_ERR_MALFORMED;
	m.u.error.reason = big;
	m.u.error.n = PROTO_REASON_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_phone_in[PROTO_ERROR]);
	m.type = PROTO_HELLO;
	m.u.hello.version = PROTO_VERSION;
	memset(m.u.hello.serial, 0x11, sizeof(m.u.hello.serial));
	m.u.hello.app = big;
	m.u.hello.app_len = PROTO_APP_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_srv_in[PROTO_HELLO]);
	assert_true(proto_srv_in[PROTO_HELLO] <= PROTO_PREHELLO_MAX);

	/* HISTORY: 32 records. */
	m.type = PROTO_HISTORY;
	m.u.history.more = 1;
	m.u.history.n = PROTO_HISTORY_MAX;
	for (size_t i = 0; i < PROTO_HISTORY_MAX; i++) {
		memset(&m.u.history.recs[i], 0, sizeof(m.u.history.recs[i]));
		m.u.history.recs[i].id = 100 - i;
		m.u.history.recs[i].kind = 1;
	}
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + proto_phone_in[PROTO_HISTORY]);
}

/* The tables: what each side accepts, by direction; nothing else. */
static void test_tables(void **state)
{
	size_t srv_types = 0, phone_types = 0;

	(void)state;
	for (unsigned t = 0; t < FRAME_TYPES; t++) {
		if (proto_srv_in[t] != 0) {
			srv_types++;
			assert_true(t < 0x80);
			assert_non_null(proto_type_name((uint8_t)t));
			assert_true(proto_srv_in[t] <= PROTO_SRV_IN_MAX);
		}
		if (proto_phone_in[t] != 0) {
			phone_types++;
			assert_true(t >= 0x40);
			assert_non_null(proto_type_name((uint8_t)t));
			assert_true(proto_phone_in[t] <= PROTO_PHONE_IN_MAX);
		}
		if (proto_type_name((uint8_t)t) != NULL)
			assert_true(proto_srv_in[t] != 0 || proto_phone_in[t] != 0);
	}
	assert_int_equal(srv_types, 9);
	assert_int_equal(phone_types, 11);
	assert_int_equal(proto_srv_in[PROTO_PORTAL_REQ], 1);
	assert_int_equal(proto_phone_in[PROTO_PORTAL_LINK], 257);
	assert_int_equal(proto_srv_in[PROTO_SELECT], 6);
	assert_int_equal(proto_phone_in[PROTO_STAGE], 22);
	assert_int_equal(proto_srv_in[PROTO_STAGE], 0);
	assert_string_equal(proto_type_name(PROTO_STAGE), "STAGE");
	assert_int_equal(proto_srv_in[PROTO_HISTORY_REQ], 10);
	assert_int_equal(proto_srv_in[PROTO_PING], 9);
	assert_int_equal(proto_srv_in[PROTO_BYE], 1);
	assert_int_equal(proto_srv_in[PROTO_MENU], 0);
	assert_int_equal(proto_phone_in[PROTO_HELLO], 0);
	assert_string_equal(proto_type_name(PROTO_SE_APDU), "SE_APDU");
	assert_true(sizeof(struct proto_msg) <= PROTO_MSG_SIZE_MAX);
}

/* A frame the writer builds is one frame_rd takes whole, with the receiver's table. */
static void test_frames_through_frame_rd(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		uint8_t p[PROTO_PHONE_IN_MAX], fr[FRAME_HDR_LEN + PROTO_PHONE_IN_MAX];
		uint8_t buf[PROTO_PHONE_IN_MAX - 1], type;
		size_t n = sample_bytes(i, p, sizeof(p)), pn;
		const uint8_t *payload;
		const uint32_t *table = (samples[i].type & 0x80) ? proto_phone_in : proto_srv_in;
		struct proto_msg m;
		struct wr w = wr_init(fr, sizeof(fr));
		struct frame_rd f;

		assert_int_equal(proto_decode(samples[i].type, n ? p : NULL, n, &m), 0);
		assert_int_equal(proto_frame_put(&w, &m), 0);
		assert_int_equal(frame_rd_init(&f, buf, sizeof(buf), PROTO_PHONE_IN_MAX, table), 0);
		assert_int_equal(frame_rd_push(&f, fr, w.len), w.len);
		assert_int_equal(frame_rd_take(&f, &type, &payload, &pn), 0);
		assert_int_equal(type, samples[i].type);
		assert_int_equal(pn, n);
		if (n > 0)
			assert_memory_equal(payload, p, n);
	}
}

/* Encoders: NOSPACE leaves the writer and the bytes beyond it alone. */
static void test_encoder_atomic(void **state)
{
	(void)state;
	for (size_t i = 0; i < NSAMPLES; i++) {
		uint8_t p[PROTO_PHONE_IN_MAX], out[PROTO_PHONE_IN_MAX + FRAME_HDR_LEN];
		size_t n = sample_bytes(i, p, sizeof(p));
		struct proto_msg m;

		assert_int_equal(proto_decode(samples[i].type, n ? p : NULL, n, &m), 0);
		for (size_t cap = 0; cap < n; cap++) {
			struct wr w = wr_init(out, cap);

			memset(out, 0xEE, sizeof(out));
			assert_int_equal(proto_encode(&w, &m), TB_E_NOSPACE);
			assert_int_equal(w.len, 0);
			for (size_t k = 0; k < sizeof(out); k++)
				assert_int_equal(out[k], 0xEE);
		}
		for (size_t cap = 0; cap < n + FRAME_HDR_LEN; cap++) {
			struct wr w = wr_init(out, cap);

			assert_int_equal(proto_frame_put(&w, &m), TB_E_NOSPACE);
			assert_int_equal(w.len, 0);
		}
	}
}

/* SELECT's op byte: absent is op 0 without the byte, each op round-trips with the
 * byte, the encoder writes it only when asked or needed, and op 5 is refused both ways. */
static void test_select_op(void **state)
{
	static const uint8_t no_op[] = { 0, 0, 0, 7 }, op1[] = { 0, 0, 0, 7, 1 };
	static const uint8_t op3[] = { 0, 0, 0, 7, 3 }, op4[] = { 0, 0, 0, 7, 4 };
	static const uint8_t op5[] = { 0, 0, 0, 7, 5 };
	uint8_t out[8];
	struct proto_msg m;
	struct wr w;

	(void)state;
	assert_int_equal(proto_decode(PROTO_SELECT, no_op, sizeof(no_op), &m), 0);
	assert_int_equal(m.u.select.service, 7);
	assert_int_equal(m.u.select.op, PROTO_OP_PHONE);
	assert_int_equal(m.u.select.has_op, 0);
	assert_int_equal(proto_decode(PROTO_SELECT, op1, sizeof(op1), &m), 0);
	assert_int_equal(m.u.select.op, PROTO_OP_USE);
	assert_int_equal(m.u.select.has_op, 1);
	assert_int_equal(proto_decode(PROTO_SELECT, op3, sizeof(op3), &m), 0);
	assert_int_equal(m.u.select.op, PROTO_OP_BACKUP);
	assert_int_equal(proto_decode(PROTO_SELECT, op4, sizeof(op4), &m), 0);
	assert_int_equal(m.u.select.op, PROTO_OP_RESTORE);
	assert_int_equal(proto_decode(PROTO_SELECT, op5, sizeof(op5), &m), TB_E_PROTO_FIELD);

	/* What the server code builds ({ .service = N }) stays the 4-byte SELECT. */
	m = (struct proto_msg){ .type = PROTO_SELECT };
	m.u.select.service = 9;
	w = wr_init(out, sizeof(out));
	assert_int_equal(proto_encode(&w, &m), 0);
	assert_int_equal(w.len, 4);
	m.u.select.op = PROTO_OP_PERMIT;
	w = wr_init(out, sizeof(out));
	assert_int_equal(proto_encode(&w, &m), 0);
	assert_int_equal(w.len, 5);
	assert_int_equal(out[4], 2);
	m.u.select.op = PROTO_OP_RESTORE;
	w = wr_init(out, sizeof(out));
	assert_int_equal(proto_encode(&w, &m), 0);
	assert_int_equal(out[4], 4);
	m.u.select.op = 5;
	w = wr_init(out, sizeof(out));
	assert_int_equal(proto_encode(&w, &m), TB_E_PROTO_FIELD);
	assert_int_equal(w.len, 0);
	/* Room for the service but not the op: nothing written. */
	m.u.select.op = PROTO_OP_USE;
	w = wr_init(out, 4);
	assert_int_equal(proto_encode(&w, &m), TB_E_NOSPACE);
	assert_int_equal(w.len, 0);
}

/* STAGE: 5..21 bytes, the frame of the largest is N = 22, opaque bytes kept as they are. */
static void test_stage(void **state)
{
	uint8_t apdu[PROTO_STAGE_MAX + 1], fr[FRAME_HDR_LEN + PROTO_N_STAGE + 1];
	struct proto_msg m = { .type = PROTO_STAGE };
	struct wr w;

	(void)state;
	for (size_t i = 0; i < sizeof(apdu); i++)
		apdu[i] = (uint8_t)(0x80 + i);
	m.u.stage.apdu = apdu;
	m.u.stage.n = PROTO_STAGE_MAX;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), 0);
	assert_int_equal(w.len, FRAME_HDR_LEN - 1 + PROTO_N_STAGE);
	assert_int_equal(fr[3], 22);
	assert_int_equal(fr[4], PROTO_STAGE);
	assert_memory_equal(fr + FRAME_HDR_LEN, apdu, PROTO_STAGE_MAX);
	m.u.stage.n = PROTO_STAGE_MAX + 1;
	w = wr_init(fr, sizeof(fr));
	assert_int_equal(proto_frame_put(&w, &m), TB_E_PROTO_FIELD);
	m.u.stage.n = PROTO_STAGE_MIN - 1;
	assert_int_equal(proto_frame_put(&w, &m), TB_E_PROTO_FIELD);
	assert_int_equal(w.len, 0);
	assert_int_equal(proto_decode(PROTO_STAGE, apdu, PROTO_STAGE_MIN, &m), 0);
	assert_ptr_equal(m.u.stage.apdu, apdu);
	assert_int_equal(m.u.stage.n, PROTO_STAGE_MIN);
}

static void test_utf8(void **state)
{
	static const struct {
		const char *hex;
		int ok;
	} cases[] = {
		{ "", 1 },
		{ "41", 1 },
		{ "C3A9", 1 },          /* e acute */
		{ "E697A5E69CAC", 1 },  /* two CJK characters */
		{ "F09F9880", 1 },      /* an emoji */
		{ "F48FBFBF", 1 },      /* U+10FFFF */
		{ "EFBFBF", 1 },        /* U+FFFF */
		{ "C2A0", 1 },          /* U+00A0, first after C1 */
		{ "09", 0 },            /* tab */
		{ "0A", 0 },
		{ "00", 0 },
		{ "7F", 0 },            /* DEL */
		{ "C280", 0 },          /* C1 control U+0080 */
		{ "C29F", 0 },          /* C1 control U+009F */
		{ "C080", 0 },          /* overlong NUL */
		{ "C1BF", 0 },          /* overlong */
		{ "E08080", 0 },        /* overlong */
		{ "E09FBF", 0 },        /* overlong U+07FF */
		{ "F08FBFBF", 0 },      /* overlong U+FFFF */
		{ "EDA080", 0 },        /* surrogate U+D800 */
		{ "EDBFBF", 0 },        /* surrogate U+DFFF */
		{ "F4908080", 0 },      /* U+110000 */
		{ "F5808080", 0 },
		{ "80", 0 },            /* lone continuation */
		{ "C3", 0 },            /* cut */
		{ "E697", 0 },          /* cut */
		{ "C341", 0 },          /* bad continuation */
		{ "FF", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t p[16];
		size_t n = hexbuf(cases[i].hex, p, sizeof(p));

		if (proto_text_ok(n ? p : NULL, n) != cases[i].ok)
			fail_msg("utf8 case %s: want %d", cases[i].hex, cases[i].ok);
	}
	assert_false(proto_text_ok(NULL, 1));
}

static void test_errors(void **state)
{
	(void)state;
	assert_string_equal(proto_err_reason(PROTO_ERR_TOO_LARGE), "frame too large");
	assert_string_equal(proto_err_reason(PROTO_ERR_UNKNOWN_TYPE), "unknown frame type");
	assert_string_equal(proto_err_reason(PROTO_ERR_BEFORE_HELLO), "frame before HELLO");
	assert_string_equal(proto_err_reason(999), "error");
	assert_int_equal(proto_err_from(TB_E_FRAME_OVERSIZE), PROTO_ERR_TOO_LARGE);
	assert_int_equal(proto_err_from(TB_E_FRAME_TYPE), PROTO_ERR_UNKNOWN_TYPE);
	assert_int_equal(proto_err_from(TB_E_FRAME_EMPTY), PROTO_ERR_EMPTY);
	assert_int_equal(proto_err_from(TB_E_PROTO_VERSION), PROTO_ERR_VERSION);
	assert_int_equal(proto_err_from(TB_E_TRUNC), PROTO_ERR_MALFORMED);
	assert_int_equal(proto_err_from(TB_E_PROTO_TEXT), PROTO_ERR_MALFORMED);
	/* Every default reason fits an ERROR frame and is clean text. */
	for (uint16_t c = 1; c <= PROTO_ERR_INTERNAL; c++) {
		const char *r = proto_err_reason(c);

		assert_string_not_equal(r, "error");
		assert_true(strlen(r) <= PROTO_REASON_MAX);
		assert_true(proto_text_ok((const uint8_t *)r, strlen(r)));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples_round_trip),
		cmocka_unit_test(test_samples_fields),
		cmocka_unit_test(test_truncations),
		cmocka_unit_test(test_byte_changes),
		cmocka_unit_test(test_extra_byte),
		cmocka_unit_test(test_bad_payloads),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_frames_through_frame_rd),
		cmocka_unit_test(test_encoder_atomic),
		cmocka_unit_test(test_select_op),
		cmocka_unit_test(test_stage),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
