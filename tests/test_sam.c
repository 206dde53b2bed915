/* test_sam.c - the sam core: the request table (every type, every malformed or
 * out-of-order request ends the connection), SCP03 handshakes through the sam against the
 * card role with diversified keys (three-step and pipelined), the session table, flag
 * signatures, sealed blobs and rotation, receipts, personalisation, the sealed key file,
 * and diversification known answers computed with the OpenSSL command line. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "div.h"
#include "err.h"
#include "frame.h"
#include "sam.h"
#include "scp_sim.h"
#include "vec.h"

#define NSLOTS 8u

static struct sam_session g_slots[NSLOTS];
static struct sam g_sam;
static uint8_t g_out[SAM_REPLY_FRAME_MAX + 64];
static uint8_t g_req[SAM_REQ_MAX + 64];
static uint32_t g_id = 100;
static int g_persist_rc;
static int g_persist_calls;

static const uint8_t serial_a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t serial_b[8] = { 9, 9, 9, 9, 9, 9, 9, 9 };
static const uint8_t isd_aid[8] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };

struct reply {
	uint8_t type;
	const uint8_t *body; /* after the id */
	size_t n;
	int err;             /* ERROR frames */
};

static int persist_stub(void *ctx, const struct sam_keystore *ks)
{
	(void)ctx;
	assert_int_equal(sam_keys_check(ks), 0);
	g_persist_calls++;
	return g_persist_rc;
}

/* Keys with known bytes where a test needs them: the SE_SERVER master is 00..1F and
 * the blob master 20..3F. */
static void make_keystore(struct sam_keystore *ks, size_t dev_keylen)
{
	assert_int_equal(sam_keys_generate(ks, dev_keylen), 0);
	for (size_t i = 0; i < SAM_KEY_LEN; i++) {
		ks->k[SAM_FAM_SE_SERVER - 1][0].key[i] = (uint8_t)i;
		ks->k[SAM_FAM_BLOB - 1][0].key[i] = (uint8_t)(0x20 + i);
	}
}

static void setup_caps(unsigned caps, size_t nslots)
{
	struct sam_keystore ks;
	struct sam_config cfg = { caps, persist_stub, NULL };

	make_keystore(&ks, 16);
	assert_int_equal(sam_init(&g_sam, &cfg, &ks, g_slots, nslots), 0);
	ct_wipe(&ks, sizeof(ks));
	g_persist_rc = 0;
	g_persist_calls = 0;
}

static int setup(void **state)
{
	(void)state;
	setup_caps(0, NSLOTS);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sam_wipe(&g_sam);
	return 0;
}

/* One request with a fresh id; the reply must be one frame within the reply limits
 * that echoes the id. Returns sam_request()'s result. */
static int call(struct sam_conn *c, uint8_t type, const uint8_t *body, size_t n, struct reply *r)
{
	static uint32_t limits[FRAME_TYPES];
	static uint8_t rbuf[SAM_REPLY_MAX];
	struct wr out = wr_init(g_out, sizeof(g_out));
	struct frame_rd f;
	const uint8_t *p;
	size_t pn;
	uint32_t id = g_id++;
	int rc;

	assert_true(n + SAM_ID_LEN <= sizeof(g_req));
	g_req[0] = (uint8_t)(id >> 24);
	g_req[1] = (uint8_t)(id >> 16);
	g_req[2] = (uint8_t)(id >> 8);
	g_req[3] = (uint8_t)id;
	if (n > 0)
		memmove(g_req + SAM_ID_LEN, body, n);
	rc = sam_request(&g_sam, c, type, g_req, n + SAM_ID_LEN, &out);
	memset(r, 0, sizeof(*r));
	if (rc != 0) {
		assert_int_equal(out.len, 0);
		return rc;
	}
	sam_reply_limits(limits);
	assert_int_equal(frame_rd_init(&f, rbuf, sizeof(rbuf), SAM_REPLY_MAX + 1, limits), 0);
	assert_int_equal(frame_rd_push(&f, out.p, out.len), out.len);
	assert_int_equal(frame_rd_state(&f), FRAME_READY);
	assert_int_equal(frame_rd_take(&f, &r->type, &p, &pn), 0);
	assert_true(pn >= SAM_ID_LEN);
	assert_int_equal(((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]),
			 id);
	/* the reply outlives this call in g_out: point there */
	r->body = g_out + FRAME_HDR_LEN + SAM_ID_LEN;
	r->n = pn - SAM_ID_LEN;
	if (r->type == SAM_ERROR) {
		assert_int_equal(r->n, 4);
		r->err = (int)((uint32_t)r->body[0] << 24 | (uint32_t)r->body[1] << 16 |
			       (uint32_t)r->body[2] << 8 | r->body[3]);
		assert_true(r->err < 0);
	}
	return 0;
}

static void expect_ok(struct sam_conn *c, uint8_t type, const uint8_t *body, size_t n,
		      struct reply *r)
{
	assert_int_equal(call(c, type, body, n, r), 0);
	if (r->type == SAM_ERROR)
		fail_msg("%s failed: %s", sam_request_name(type), tb_errname(r->err));
	assert_int_equal(r->type, SAM_REPLY(type));
}

static void expect_err(struct sam_conn *c, uint8_t type, const uint8_t *body, size_t n, int err)
{
	struct reply r;

	assert_int_equal(call(c, type, body, n, &r), 0);
	assert_int_equal(r.type, SAM_ERROR);
	if (r.err != err)
		fail_msg("%s: want %s, got %s", sam_request_name(type), tb_errname(err),
			 tb_errname(r.err));
}

/* The request ends the connection: no reply, the connection is CLOSED with no sessions. */
static void expect_close(struct sam_conn *c, uint8_t type, const uint8_t *body, size_t n)
{
	struct reply r;

	assert_int_equal(call(c, type, body, n, &r), TB_E_SAM_PROTO);
	assert_int_equal(c->state, SAM_CS_CLOSED);
	assert_int_equal(c->nsessions, 0);
	assert_int_equal(c->head, SAM_NONE);
}

static void hello(struct sam_conn *c)
{
	uint8_t v = SAM_PROTO_VERSION;
	struct reply r;

	sam_conn_open(&g_sam, c);
	expect_ok(c, SAM_HELLO, &v, 1, &r);
	assert_int_equal(r.n, 7 + SAM_PUB_LEN);
	assert_int_equal(c->state, SAM_CS_READY);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* --------------------------------------------------------- known answers --- */

static void test_sizes(void **state)
{
	(void)state;
	/* docs/sam.md states the slot size: 16384 sessions = 6.8 MB. */
	assert_true(sizeof(struct sam_session) <= 432);
	assert_true(sizeof(struct sam_keystore) <= 2200);
	assert_true(SAM_REPLY_FRAME_MAX < 66 * 1024);
}

/* Expected values: `openssl mac -cipher AES-256-CBC -macopt hexkey:000102..1f -in F CMAC`
 * where F holds the KDF's PRF input written out by hand from docs/sam.md, e.g. for
 * Key-ENC of role 1, KVN 11: 54422d444956 01 11 01 00 0080 01 0102030405060708. */
static void test_div_known_answers(void **state)
{
	struct sam_key m;
	struct scp_keys k;
	uint8_t blob[32];

	(void)state;
	memset(&m, 0, sizeof(m));
	m.present = 1;
	m.version = 0x11;
	m.dev_keylen = 16;
	for (size_t i = 0; i < 32; i++)
		m.key[i] = (uint8_t)i;
	assert_int_equal(sam_div_device_keys(&m, SAM_FAM_SE_SERVER, serial_a, &k), 0);
	assert_int_equal(k.len, 16);
	assert_hex_equal(k.enc, 16, "488B479F90700C9142350ECC1F935644");
	assert_hex_equal(k.mac, 16, "05E42365F840C7263B9802887485DA77");
	assert_hex_equal(k.dek, 16, "5FBA1C6A8C999DC2ABE3C60E9B4EB2E6");
	/* 32-byte device keys take two PRF blocks (counter 01, 02); role 3, KVN 31:
	 * 54422d444956 03 31 02 00 0100 | 01/02 | serial for Key-MAC. */
	m.version = 0x31;
	m.dev_keylen = 32;
	assert_int_equal(sam_div_device_keys(&m, SAM_FAM_READER_SERVER, serial_a, &k), 0);
	assert_hex_equal(k.mac, 32, "CC76F0B51721DCEC32DAC2EBCF117F0E674ADFEB6E6A2468F46E12B0045AF6B6");
	/* The se-reader family goes through the terminal key a reader holds: the reader's own
	 * derivation (div.h) from it gives the sam's key set, and no other family's. */
	{
		uint8_t term[32];
		struct scp_keys viaterm, sam_k, other;

		m.version = 0x21;
		m.dev_keylen = 16;
		assert_int_equal(sam_div_device_keys(&m, SAM_FAM_SE_READER, serial_a, &sam_k), 0);
		assert_int_equal(sam_div_terminal_key(&m, term), 0);
		assert_int_equal(div_device_keys(term, SAM_FAM_SE_READER, 0x21, 16, serial_a, &viaterm), 0);
		assert_true(ct_eq(viaterm.enc, sam_k.enc, 16) && ct_eq(viaterm.mac, sam_k.mac, 16) &&
			    ct_eq(viaterm.dek, sam_k.dek, 16));
		/* Not the master itself, and not what a one-level derivation would give. */
		assert_false(ct_eq(term, m.key, 32));
		assert_int_equal(div_device_keys(m.key, SAM_FAM_SE_READER, 0x21, 16, serial_a, &other), 0);
		assert_false(ct_eq(other.enc, sam_k.enc, 16));
		/* Another version gives another terminal key. */
		m.version = 0x22;
		assert_int_equal(sam_div_terminal_key(&m, other.enc), 0);
		assert_false(ct_eq(other.enc, term, 16));
		ct_wipe(term, sizeof(term));
		ct_wipe(&viaterm, sizeof(viaterm));
		ct_wipe(&sam_k, sizeof(sam_k));
		ct_wipe(&other, sizeof(other));
	}
	/* Blob key: master 20..3f, PRF input 54422d424c4f4200 0100 | 01/02 | "blob-1". */
	for (size_t i = 0; i < 32; i++)
		m.key[i] = (uint8_t)(0x20 + i);
	m.dev_keylen = 0;
	assert_int_equal(sam_div_blob_key(&m, (const uint8_t *)"blob-1", 6, blob), 0);
	assert_hex_equal(blob, 32, "6DE5CA4424EB0BE4DC8C1A8DAE76B679CA67C726C616175AE5182A0C390D1B6D");
	/* Refusals. */
	assert_int_equal(sam_div_device_keys(&m, 0, serial_a, &k), TB_E_INVAL);
	assert_int_equal(sam_div_device_keys(&m, SAM_FAM_SE_SERVER, serial_a, &k), TB_E_KEYLEN);
	assert_int_equal(sam_div_blob_key(&m, blob, 0, blob), TB_E_INVAL);
	assert_int_equal(sam_div_blob_key(&m, blob, SAM_BLOB_ID_MAX + 1, blob), TB_E_INVAL);
	ct_wipe(&k, sizeof(k));
	ct_wipe(&m, sizeof(m));
}

/* ------------------------------------------------------- the request table --- */

static void test_hello_first(void **state)
{
	struct sam_conn c;
	uint8_t v = SAM_PROTO_VERSION, bad = 2;
	struct reply r;

	(void)state;
	sam_conn_open(&g_sam, &c);
	expect_close(&c, SAM_STATUS, NULL, 0);
	/* After the close nothing more is taken, not even HELLO. */
	assert_int_equal(call(&c, SAM_HELLO, &v, 1, &r), TB_E_SAM_PROTO);

	sam_conn_open(&g_sam, &c);
	expect_err(&c, SAM_HELLO, &bad, 1, TB_E_UNSUPPORTED);
	assert_int_equal(c.state, SAM_CS_NEW);
	expect_ok(&c, SAM_HELLO, &v, 1, &r);
	assert_int_equal(r.body[0], SAM_PROTO_VERSION);
	assert_int_equal(r.body[1], 0); /* no capabilities */
	assert_int_equal(be32(r.body + 2), NSLOTS);
	assert_int_equal(r.body[6], 1);  /* signing key version */
	assert_int_equal(r.body[7], 0x04);
	expect_close(&c, SAM_HELLO, &v, 1); /* twice is out of order */
}

static void test_status(void **state)
{
	struct sam_conn c;
	struct reply r;

	(void)state;
	hello(&c);
	expect_ok(&c, SAM_STATUS, NULL, 0, &r);
	assert_int_equal(r.n, 9 + SAM_FAMILIES * (3 + SAM_VERSIONS));
	assert_int_equal(be32(r.body + 1), NSLOTS);
	assert_int_equal(be32(r.body + 5), 0);
	assert_int_equal(r.body[9], SAM_FAM_SE_SERVER);
	assert_int_equal(r.body[10], 0x11);
	assert_int_equal(r.body[11], 1);
	assert_int_equal(r.body[9 + 7], SAM_FAM_SE_READER);
	assert_int_equal(r.body[10 + 7], 0x21);
	assert_int_equal(r.body[10 + 14], 0x31);
	assert_int_equal(r.body[10 + 21], 1);
	assert_int_equal(r.body[10 + 28], 1);
	sam_conn_close(&g_sam, &c);
}

/* A valid body for each type, for the truncation and extension sweeps. */
struct valid_req {
	uint8_t type;
	uint8_t body[48];
	size_t n;
	int exact;  /* fixed size: one more byte is malformed too */
};

static void test_malformed_closes(void **state)
{
	static const struct valid_req reqs[] = {
		{ SAM_STATUS, { 0 }, 0, 1 },
		{ SAM_GET_PUBLIC_KEY, { 0 }, 1, 1 },
		{ SAM_DERIVE_DEVICE_KEYS, { 1, 0, 1, 2, 3, 4, 5, 6, 7, 8 }, 10, 1 },
		{ SAM_SCP_OPEN, { 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x33, 8, 0 }, 13, 1 },
		{ SAM_SCP_STEP, { 0, 0, 0, 0, 0, 2, 0x90, 0 }, 8, 0 },
		{ SAM_SCP_WRAP, { 0, 0, 0, 0, 0x80, 0xCA, 0, 0 }, 8, 0 },
		{ SAM_SCP_UNWRAP, { 0, 0, 0, 0, 0x90, 0x00 }, 6, 0 },
		{ SAM_SCP_CLOSE, { 0, 0, 0, 0 }, 4, 1 },
		{ SAM_SCP_PUT_KEY, { 0, 0, 0, 0, 1, 0 }, 6, 1 },
		{ SAM_SIGN, { 1, 'x' }, 2, 0 },
		{ SAM_SEAL_BLOB, { 1, 'a', 'p' }, 3, 0 },
		{ SAM_OPEN_BLOB, { 1, 'a' }, 2, 0 },
		{ SAM_RECEIPT_VERIFY, { 0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 1, 2, 3, 4, 0xEE }, 15, 0 },
		{ SAM_ROTATE, { SAM_FAM_BLOB }, 1, 1 },
		{ SAM_RETIRE, { SAM_FAM_BLOB, 9 }, 2, 1 },
	};
	static const struct valid_req bad[] = {
		{ SAM_DERIVE_DEVICE_KEYS, { 0, 0, 1, 2, 3, 4, 5, 6, 7, 8 }, 10, 1 },    /* role 0 */
		{ SAM_DERIVE_DEVICE_KEYS, { 4, 0, 1, 2, 3, 4, 5, 6, 7, 8 }, 10, 1 },    /* role 4 */
		{ SAM_SCP_OPEN, { 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x33, 8, 0 }, 13, 1 },  /* role */
		{ SAM_SCP_OPEN, { 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x33, 9, 0 }, 13, 1 },  /* challenge */
		{ SAM_SCP_OPEN, { 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x33, 8, 4, 1, 2, 3, 4 }, 17, 1 },
		{ SAM_SCP_OPEN, { 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x33, 8, 5, 1, 2, 3, 4 }, 17, 1 },
		{ SAM_SCP_STEP, { 0, 0, 0, 0, 0, 3, 0x90, 0 }, 8, 0 },       /* resp length past end */
		{ SAM_SIGN, { 0, 'x' }, 2, 0 },                              /* domain 0 */
		{ SAM_SIGN, { 3, 'x' }, 2, 0 },                              /* domain 3 */
		{ SAM_SEAL_BLOB, { 0, 'p' }, 2, 0 },                          /* empty blob id */
		{ SAM_SEAL_BLOB, { 65, 'p' }, 2, 0 },                         /* id past end */
		{ SAM_OPEN_BLOB, { 3, 'a' }, 2, 0 },
		{ SAM_RECEIPT_VERIFY, { 0, 1, 2, 3, 4, 5, 6, 7, 8, 3, 1, 2, 3, 4, 0xEE }, 15, 0 },
		{ SAM_RECEIPT_VERIFY, { 0, 1, 2, 3, 4, 5, 6, 7, 8, 17, 1, 2, 3, 4, 0xEE }, 15, 0 },
		{ SAM_RECEIPT_VERIFY, { 0, 1, 2, 3, 4, 5, 6, 7, 8, 5, 1, 2, 3, 4, 0xEE }, 15, 0 },
		{ SAM_ROTATE, { 0 }, 1, 1 },
		{ SAM_ROTATE, { 6 }, 1, 1 },
		{ SAM_RETIRE, { 0, 1 }, 2, 1 },
	};
	struct sam_conn c;
	uint8_t big[SAM_APDU_MAX + 16];

	(void)state;
	teardown(NULL);
	setup_caps(SAM_CAP_PERSO | SAM_CAP_KEYS, NSLOTS);
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		const struct valid_req *v = &reqs[i];

		/* Every cut of a valid request: fewer bytes than its fields need. */
		for (size_t cut = 0; cut < v->n; cut++) {
			struct reply r;
			int rc;

			hello(&c);
			rc = call(&c, v->type, v->body, cut, &r);
			/* A cut that leaves a shorter valid request (a variable tail) may be
			 * answered; anything else must close. */
			if (rc == 0) {
				assert_false(v->exact);
				sam_conn_close(&g_sam, &c);
				continue;
			}
			assert_int_equal(rc, TB_E_SAM_PROTO);
			assert_int_equal(c.state, SAM_CS_CLOSED);
		}
		if (v->exact) {
			uint8_t longer[64];

			memcpy(longer, v->body, v->n);
			longer[v->n] = 0;
			hello(&c);
			expect_close(&c, v->type, longer, v->n + 1);
		}
		/* Without HELLO first, every request closes. */
		sam_conn_open(&g_sam, &c);
		expect_close(&c, v->type, v->body, v->n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hello(&c);
		expect_close(&c, bad[i].type, bad[i].body, bad[i].n);
	}
	/* Types not in the table, and reply types sent as requests. */
	for (unsigned t = 0; t < 256; t++) {
		if (sam_request_name((uint8_t)t) != NULL)
			continue;
		hello(&c);
		expect_close(&c, (uint8_t)t, NULL, 0);
	}
	/* Over a type's maximum. */
	memset(big, 0, sizeof(big));
	hello(&c);
	expect_close(&c, SAM_SIGN, big, 1 + SAM_SIGN_MSG_MAX + 1);
	hello(&c);
	expect_close(&c, SAM_SCP_WRAP, big, 4 + SAM_APDU_MAX + 1);
	/* No room for a reply: nothing happens, the connection stays. */
	{
		struct wr out = wr_init(g_out, SAM_REPLY_FRAME_MAX - 1);

		hello(&c);
		g_req[0] = g_req[1] = g_req[2] = g_req[3] = 0;
		assert_int_equal(sam_request(&g_sam, &c, SAM_STATUS, g_req, 4, &out), TB_E_NOSPACE);
		assert_int_equal(c.state, SAM_CS_READY);
		assert_int_equal(out.len, 0);
		sam_conn_close(&g_sam, &c);
	}
}

/* ------------------------------------------------------------------ SCP03 --- */

static size_t open_body(uint8_t *b, uint8_t role, uint8_t kvn, const uint8_t serial[8],
			uint8_t level, uint8_t chlen, const uint8_t *aid, size_t aid_len)
{
	struct wr w = wr_init(b, 64);

	(void)wr_u8(&w, role);
	(void)wr_u8(&w, kvn);
	(void)wr_bytes(&w, serial, 8);
	(void)wr_u8(&w, level);
	(void)wr_u8(&w, chlen);
	(void)wr_u8(&w, (uint8_t)aid_len);
	(void)wr_bytes(&w, aid, aid_len);
	return w.len;
}

static size_t step_body(uint8_t *b, size_t cap, uint32_t h, const uint8_t *resp, size_t rn,
			const uint8_t *cmd, size_t cn)
{
	struct wr w = wr_init(b, cap);

	(void)wr_u32be(&w, h);
	(void)wr_u16be(&w, (uint16_t)rn);
	(void)wr_bytes(&w, resp, rn);
	assert_int_equal(wr_bytes(&w, cmd, cn), 0);
	return w.len;
}

static size_t handle_body(uint8_t *b, size_t cap, uint32_t h, const uint8_t *p, size_t n)
{
	struct wr w = wr_init(b, cap);

	(void)wr_u32be(&w, h);
	assert_int_equal(wr_bytes(&w, p, n), 0);
	return w.len;
}

/* The card of serial for role's current KVN, with the keys the sam would diversify. */
static void sim_for(struct scp_sim *m, uint8_t i, uint8_t role, const uint8_t serial[8])
{
	const struct sam_key *k = sam_keys_find(&g_sam.ks, role, 0);
	struct scp_keys keys;

	assert_non_null(k);
	assert_int_equal(sam_div_device_keys(k, role, serial, &keys), 0);
	assert_int_equal(scp_sim_init(m, i, serial, isd_aid, sizeof(isd_aid), &keys, k->version),
			 0);
	ct_wipe(&keys, sizeof(keys));
}

/* SCP_OPEN; the card answers INITIALIZE UPDATE. Returns the handle. */
static uint32_t scp_open(struct sam_conn *c, struct scp_sim *m, uint8_t role,
			 const uint8_t serial[8], uint8_t level, uint8_t chlen, uint8_t *resp,
			 size_t *rn)
{
	uint8_t b[64];
	struct reply r;
	uint32_t h;

	expect_ok(c, SAM_SCP_OPEN, b, open_body(b, role, 0, serial, level, chlen, isd_aid,
						 sizeof(isd_aid)), &r);
	h = be32(r.body);
	assert_int_equal(r.body[4], m->kvn);
	assert_int_equal(r.n, 5 + 6 + chlen);
	assert_int_equal(r.body[5], 0x80);
	assert_int_equal(r.body[6], 0x50);
	assert_int_equal(r.body[7], m->kvn);
	assert_int_equal(scp_sim_apdu(m, r.body + 5, r.n - 5, resp, 512, rn), 0);
	return h;
}

static const uint8_t cmd_get[] = { 0x80, 0xCA, 0x00, 0x66, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0x00 };

/* One wrapped command through the card and back: plain data must come back authenticated. */
static void scp_roundtrip(struct sam_conn *c, struct scp_sim *m, uint32_t h)
{
	uint8_t b[SAM_APDU_MAX + 16], resp[512];
	size_t rn;
	struct reply r;

	expect_ok(c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)), &r);
	assert_int_equal(r.body[0], 0x84);
	assert_int_equal(scp_sim_apdu(m, r.body, r.n, resp, sizeof(resp), &rn), 0);
	assert_int_equal(m->authenticated, 1);
	expect_ok(c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn), &r);
	assert_int_equal(r.n, 3 + 4);
	assert_int_equal(r.body[0], 0x90);
	assert_int_equal(r.body[1], 0x00);
	assert_int_equal(r.body[2], 1); /* R-MAC verified */
	assert_hex_equal(r.body + 3, 4, "DEADBEEF");
}

static void test_scp_handshake_three_steps(void **state)
{
	static const uint8_t params[][3] = {
		/* i, level, challenge length */
		{ 0x70, 0x33, 8 }, { 0x70, 0x13, 8 }, { 0x60, 0x33, 8 }, { 0x71, 0x33, 16 },
		{ 0x30, 0x11, 8 }, { 0x10, 0x01, 8 }, { 0x10, 0x03, 8 },
	};
	struct sam_conn c;

	(void)state;
	hello(&c);
	for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
		for (uint8_t role = 1; role <= SAM_ROLES; role++) {
			uint8_t b[600], resp[512];
			struct scp_sim m;
			struct reply r;
			size_t rn;
			uint32_t h;

			sim_for(&m, params[p][0], role, serial_a);
			h = scp_open(&c, &m, role, serial_a, params[p][1], params[p][2], resp, &rn);
			expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
			assert_int_equal(r.body[0], SAM_SS_WAIT_EA);
			assert_int_equal((r.body[1] << 8) | r.body[2], r.n - 3);
			assert_int_equal(r.body[3], 0x84);
			assert_int_equal(r.body[4], 0x82);
			assert_int_equal(r.body[5], params[p][1]);
			assert_int_equal(scp_sim_apdu(&m, r.body + 3, r.n - 3, resp, sizeof(resp), &rn), 0);
			assert_int_equal(m.auth_ok, 1);
			expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
			assert_int_equal(r.body[0], SAM_SS_OPEN);
			assert_int_equal(r.n, 3);
			if (params[p][1] & SCP_LEVEL_RMAC) {
				scp_roundtrip(&c, &m, h);
				scp_roundtrip(&c, &m, h);
			}
			expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
			assert_int_equal(c.nsessions, 0);
		}
	}
	sam_conn_close(&g_sam, &c);
}

/* The pipelined form: EXTERNAL AUTHENTICATE and the first command in one SCP_STEP, the
 * card gets both at once, the sam gets both answers back to back. */
static void test_scp_handshake_pipelined(void **state)
{
	uint8_t b[600], resp[512], resp2[512];
	struct scp_sim m;
	struct sam_conn c;
	struct reply r;
	size_t rn, rn2, ea_n;
	uint32_t h;

	(void)state;
	hello(&c);
	sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_a);
	h = scp_open(&c, &m, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, resp, &rn);
	expect_ok(&c, SAM_SCP_STEP, b,
		  step_body(b, sizeof(b), h, resp, rn, cmd_get, sizeof(cmd_get)), &r);
	assert_int_equal(r.body[0], SAM_SS_EA_SPEC);
	ea_n = (size_t)(r.body[1] << 8 | r.body[2]);
	assert_int_equal(ea_n, 5 + 16);
	assert_true(r.n > 3 + ea_n);
	{
		uint8_t ea[64], wrapped[600];
		size_t wn = r.n - 3 - ea_n;

		memcpy(ea, r.body + 3, ea_n);
		memcpy(wrapped, r.body + 3 + ea_n, wn);
		assert_int_equal(scp_sim_apdu(&m, ea, ea_n, resp, sizeof(resp), &rn), 0);
		assert_int_equal(scp_sim_apdu(&m, wrapped, wn, resp2, sizeof(resp2), &rn2), 0);
	}
	assert_int_equal(m.auth_ok, 1);
	assert_int_equal(m.delivered, 1);
	/* Unwrap before the EXTERNAL AUTHENTICATE answer is checked: out of order. */
	{
		struct sam_conn c2;
		uint32_t h2;
		struct scp_sim m2;
		uint8_t r2[512];
		size_t r2n;

		hello(&c2);
		sim_for(&m2, 0x70, SAM_FAM_SE_SERVER, serial_a);
		h2 = scp_open(&c2, &m2, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, r2, &r2n);
		expect_ok(&c2, SAM_SCP_STEP, b,
			  step_body(b, sizeof(b), h2, r2, r2n, cmd_get, sizeof(cmd_get)), &r);
		expect_close(&c2, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h2, resp2, rn2));
	}
	expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
	assert_int_equal(r.body[0], SAM_SS_DUE);
	expect_ok(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp2, rn2), &r);
	assert_int_equal(r.body[2], 1);
	assert_hex_equal(r.body + 3, 4, "DEADBEEF");
	scp_roundtrip(&c, &m, h);
	sam_conn_close(&g_sam, &c);
	assert_int_equal(g_sam.used, 0);
}

/* A failed EXTERNAL AUTHENTICATE after a pipelined command: the session closes, the
 * pipelined unwrap gets TB_E_SCP_CLOSED (not a closed connection). */
static void test_scp_pipelined_ea_fails(void **state)
{
	static const uint8_t sw6982[2] = { 0x69, 0x82 };
	uint8_t b[600], resp[512];
	struct scp_sim m;
	struct sam_conn c;
	struct reply r;
	size_t rn;
	uint32_t h;

	(void)state;
	hello(&c);
	sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_a);
	h = scp_open(&c, &m, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, resp, &rn);
	expect_ok(&c, SAM_SCP_STEP, b,
		  step_body(b, sizeof(b), h, resp, rn, cmd_get, sizeof(cmd_get)), &r);
	expect_err(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, sw6982, 2, NULL, 0),
		   TB_E_SCP_SW);
	expect_err(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, sw6982, 2),
		   TB_E_SCP_CLOSED);
	expect_err(&c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)),
		   TB_E_SCP_CLOSED);
	expect_err(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, sw6982, 2, NULL, 0),
		   TB_E_SCP_CLOSED);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	assert_int_equal(g_sam.used, 0);
	sam_conn_close(&g_sam, &c);
}

/* A card of another serial has other keys: the card cryptogram fails, the session closes. */
static void test_scp_wrong_device(void **state)
{
	uint8_t b[600], resp[512];
	struct scp_sim m;
	struct sam_conn c;
	struct reply r;
	size_t rn;
	uint32_t h;

	(void)state;
	hello(&c);
	sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_b);
	/* The sam diversifies for serial_a, the card holds serial_b's keys. */
	expect_ok(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x33, 8, NULL, 0),
		  &r);
	h = be32(r.body);
	assert_int_equal(scp_sim_apdu(&m, r.body + 5, r.n - 5, resp, sizeof(resp), &rn), 0);
	expect_err(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0),
		   TB_E_SCP_CARD_CRYPTOGRAM);
	expect_err(&c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)),
		   TB_E_SCP_CLOSED);
	/* A key the sam does not hold, a level that does not exist. */
	expect_err(&c, SAM_SCP_OPEN, b,
		   open_body(b, SAM_FAM_SE_SERVER, 0x15, serial_a, 0x33, 8, NULL, 0), TB_E_SAM_KEY);
	expect_err(&c, SAM_SCP_OPEN, b,
		   open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x02, 8, NULL, 0), TB_E_SCP_LEVEL);
	assert_int_equal(c.nsessions, 1);
	sam_conn_close(&g_sam, &c);
	assert_int_equal(g_sam.used, 0);
}

/* Every request a session's state does not allow ends the connection. */
static void test_scp_out_of_state(void **state)
{
	uint8_t b[600], resp[512];
	struct scp_sim m;
	struct sam_conn c, other;
	struct reply r;
	size_t rn;
	uint32_t h;

	(void)state;
	/* WAIT_IU: WRAP, UNWRAP. */
	for (int t = 0; t < 2; t++) {
		hello(&c);
		sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_a);
		h = scp_open(&c, &m, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, resp, &rn);
		expect_close(&c, t ? SAM_SCP_UNWRAP : SAM_SCP_WRAP, b,
			     handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)));
	}
	assert_int_equal(g_sam.used, 0);
	/* OPEN: STEP, UNWRAP; DUE: WRAP, STEP. */
	for (int t = 0; t < 4; t++) {
		hello(&c);
		sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_a);
		h = scp_open(&c, &m, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, resp, &rn);
		expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
		assert_int_equal(scp_sim_apdu(&m, r.body + 3, r.n - 3, resp, sizeof(resp), &rn), 0);
		expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
		if (t >= 2)
			expect_ok(&c, SAM_SCP_WRAP, b,
				  handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)), &r);
		if (t == 0 || t == 3)
			expect_close(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0));
		else if (t == 1)
			expect_close(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn));
		else
			expect_close(&c, SAM_SCP_WRAP, b,
				     handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)));
	}
	assert_int_equal(g_sam.used, 0);
	/* Handles: another connection's, a stale one, a made-up one. */
	hello(&c);
	hello(&other);
	sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_a);
	h = scp_open(&c, &m, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, resp, &rn);
	expect_close(&other, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0));
	assert_int_equal(c.nsessions, 1); /* untouched by the other's misuse */
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	expect_close(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0));
	hello(&c);
	expect_close(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), 0x00012345u, NULL, 0));
	/* A wrap the host refuses (a logical-channel CLA) is an ERROR; the channel stays. */
	{
		static const uint8_t cla1[] = { 0x81, 0xCA, 0x00, 0x66, 0x00 };

		hello(&c);
		sim_for(&m, 0x70, SAM_FAM_SE_SERVER, serial_a);
		h = scp_open(&c, &m, SAM_FAM_SE_SERVER, serial_a, 0x33, 8, resp, &rn);
		expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
		assert_int_equal(scp_sim_apdu(&m, r.body + 3, r.n - 3, resp, sizeof(resp), &rn), 0);
		expect_ok(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
		expect_err(&c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cla1, sizeof(cla1)),
			   TB_E_SCP_CLA);
		scp_roundtrip(&c, &m, h);
		/* A tampered response closes the session with TB_E_SCP_RMAC. */
		expect_ok(&c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)),
			  &r);
		assert_int_equal(scp_sim_apdu(&m, r.body, r.n, resp, sizeof(resp), &rn), 0);
		resp[0] ^= 1;
		expect_err(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn),
			   TB_E_SCP_RMAC);
		expect_err(&c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)),
			   TB_E_SCP_CLOSED);
		sam_conn_close(&g_sam, &c);
	}
	sam_conn_close(&g_sam, &other);
	assert_int_equal(g_sam.used, 0);
}

static void test_session_table_full(void **state)
{
	uint8_t b[64];
	struct sam_conn c, d;
	struct reply r;
	uint32_t handles[NSLOTS];

	(void)state;
	hello(&c);
	hello(&d);
	for (size_t i = 0; i < NSLOTS; i++) {
		expect_ok(i % 2 ? &c : &d, SAM_SCP_OPEN, b,
			  open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x33, 8, NULL, 0), &r);
		handles[i] = be32(r.body);
	}
	assert_int_equal(g_sam.used, NSLOTS);
	expect_err(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x33, 8, NULL, 0),
		   TB_E_SAM_BUSY);
	/* d goes away: its sessions are freed and wiped, c's stay. */
	sam_conn_close(&g_sam, &d);
	assert_int_equal(g_sam.used, NSLOTS / 2);
	for (size_t i = 0; i < NSLOTS; i++) {
		if (i % 2 == 0) {
			const struct sam_session *ss = &g_sam.slots[handles[i] & 0xFFFFF];
			const uint8_t *p = (const uint8_t *)&ss->h;

			assert_int_equal(ss->state, SAM_SS_FREE);
			for (size_t x = 0; x < sizeof(ss->h); x++)
				assert_int_equal(p[x], 0);
		}
	}
	expect_ok(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x33, 8, NULL, 0),
		  &r);
	/* The freed slot's new handle differs from the old one (generation). */
	for (size_t i = 0; i < NSLOTS; i++)
		assert_int_not_equal(be32(r.body), handles[i]);
	sam_conn_close(&g_sam, &c);
	assert_int_equal(g_sam.used, 0);
}

/* ----------------------------------------------------------- other keys --- */

static void test_sign(void **state)
{
	static const uint8_t msg[] = "token bytes";
	uint8_t b[600], pub[SAM_PUB_LEN], sig[SAM_SIG_LEN], signed_msg[600];
	struct sam_conn c;
	struct reply r;
	uint8_t v = 0;

	(void)state;
	hello(&c);
	expect_ok(&c, SAM_GET_PUBLIC_KEY, &v, 1, &r);
	assert_int_equal(r.body[0], 1);
	memcpy(pub, r.body + 1, SAM_PUB_LEN);
	b[0] = SAM_SIGN_FLAG;
	memcpy(b + 1, msg, sizeof(msg));
	expect_ok(&c, SAM_SIGN, b, 1 + sizeof(msg), &r);
	assert_int_equal(r.n, 1 + SAM_SIG_LEN);
	assert_int_equal(r.body[0], 1);
	memcpy(sig, r.body + 1, SAM_SIG_LEN);
	memcpy(signed_msg, "TBSG\x01", 5);
	memcpy(signed_msg + 5, msg, sizeof(msg));
	assert_int_equal(crypto_ecdsa_verify(pub, signed_msg, 5 + sizeof(msg), sig), 0);
	/* Domain separation: the same message in the other domain does not verify. */
	signed_msg[4] = SAM_SIGN_READER;
	assert_int_equal(crypto_ecdsa_verify(pub, signed_msg, 5 + sizeof(msg), sig),
			 TB_E_SIGNATURE);
	assert_int_equal(crypto_ecdsa_verify(pub, msg, sizeof(msg), sig), TB_E_SIGNATURE);
	/* Empty and longest messages. */
	b[0] = SAM_SIGN_READER;
	expect_ok(&c, SAM_SIGN, b, 1, &r);
	memset(b + 1, 0x5A, SAM_SIGN_MSG_MAX);
	expect_ok(&c, SAM_SIGN, b, 1 + SAM_SIGN_MSG_MAX, &r);
	v = 7;
	expect_err(&c, SAM_GET_PUBLIC_KEY, &v, 1, TB_E_SAM_KEY);
	sam_conn_close(&g_sam, &c);
}

static size_t seal_body(uint8_t *b, const char *id, const uint8_t *pt, size_t n)
{
	size_t idn = strlen(id);

	b[0] = (uint8_t)idn;
	memcpy(b + 1, id, idn);
	if (n > 0)
		memcpy(b + 1 + idn, pt, n);
	return 1 + idn + n;
}

static uint8_t g_big[SAM_REQ_MAX];
static uint8_t g_blob[SAM_BLOB_MAX + SAM_BLOB_OVERHEAD];
static uint8_t g_plain[SAM_BLOB_MAX];

static size_t seal(struct sam_conn *c, const char *id, const uint8_t *pt, size_t n,
		   uint8_t *blob)
{
	struct reply r;

	expect_ok(c, SAM_SEAL_BLOB, g_big, seal_body(g_big, id, pt, n), &r);
	assert_int_equal(r.n, n + SAM_BLOB_OVERHEAD);
	memcpy(blob, r.body, r.n);
	return r.n;
}

static void open_ok(struct sam_conn *c, const char *id, const uint8_t *blob, size_t bn,
		    const uint8_t *pt, size_t n)
{
	struct reply r;

	expect_ok(c, SAM_OPEN_BLOB, g_big, seal_body(g_big, id, blob, bn), &r);
	assert_int_equal(r.n, n);
	assert_true(n == 0 || ct_eq(r.body, pt, n));
}

static void test_blobs(void **state)
{
	static const uint8_t pt[] = "personal data of a wallet";
	struct sam_conn c;
	uint8_t blob[256];
	size_t bn;

	(void)state;
	hello(&c);
	bn = seal(&c, "wallet/42", pt, sizeof(pt), blob);
	assert_int_equal(blob[0], SAM_BLOB_FORMAT);
	assert_int_equal(blob[1], 1);
	open_ok(&c, "wallet/42", blob, bn, pt, sizeof(pt));
	/* Every byte matters; the right error names what was wrong. */
	for (size_t i = 0; i < bn; i++) {
		uint8_t t[256];
		int want = i == 0 ? TB_E_SAM_BLOB : i == 1 ? TB_E_SAM_KEY : TB_E_AEAD;

		memcpy(t, blob, bn);
		t[i] ^= 0x01;
		expect_err(&c, SAM_OPEN_BLOB, g_big, seal_body(g_big, "wallet/42", t, bn), want);
	}
	/* Another id, every cut. */
	expect_err(&c, SAM_OPEN_BLOB, g_big, seal_body(g_big, "wallet/43", blob, bn), TB_E_AEAD);
	for (size_t cut = 0; cut < bn; cut++)
		expect_err(&c, SAM_OPEN_BLOB, g_big, seal_body(g_big, "wallet/42", blob, cut),
			   cut < SAM_BLOB_OVERHEAD ? TB_E_SAM_BLOB : TB_E_AEAD);
	/* Two seals of the same data differ (fresh nonce). */
	{
		uint8_t blob2[256];

		assert_int_equal(seal(&c, "wallet/42", pt, sizeof(pt), blob2), bn);
		assert_false(ct_eq(blob, blob2, bn));
	}
	/* Empty and largest plaintexts. */
	bn = seal(&c, "e", NULL, 0, blob);
	open_ok(&c, "e", blob, bn, NULL, 0);
	for (size_t i = 0; i < SAM_BLOB_MAX; i++)
		g_plain[i] = (uint8_t)(i * 31);
	bn = seal(&c, "big", g_plain, SAM_BLOB_MAX, g_blob);
	open_ok(&c, "big", g_blob, bn, g_plain, SAM_BLOB_MAX);
	sam_conn_close(&g_sam, &c);
}

static void test_rotation(void **state)
{
	static const uint8_t pt[] = "old data";
	uint8_t b[64], blob1[128], blob2[128], pub1[SAM_PUB_LEN];
	struct sam_conn c;
	struct reply r;
	size_t bn1, bn2;
	uint8_t f;

	(void)state;
	hello(&c);
	/* Without the capability. */
	f = SAM_FAM_BLOB;
	expect_err(&c, SAM_ROTATE, &f, 1, TB_E_SAM_DENIED);
	b[0] = SAM_FAM_BLOB;
	b[1] = 1;
	expect_err(&c, SAM_RETIRE, b, 2, TB_E_SAM_DENIED);
	sam_conn_close(&g_sam, &c);
	teardown(NULL);
	setup_caps(SAM_CAP_KEYS, NSLOTS);
	hello(&c);
	bn1 = seal(&c, "x", pt, sizeof(pt), blob1);
	expect_ok(&c, SAM_ROTATE, &f, 1, &r);
	assert_int_equal(r.body[0], SAM_FAM_BLOB);
	assert_int_equal(r.body[1], 2);
	assert_int_equal(g_persist_calls, 1);
	bn2 = seal(&c, "x", pt, sizeof(pt), blob2);
	assert_int_equal(blob2[1], 2);
	open_ok(&c, "x", blob1, bn1, pt, sizeof(pt));
	open_ok(&c, "x", blob2, bn2, pt, sizeof(pt));
	/* The current version cannot be retired; an old one can, and its blobs go with it. */
	b[0] = SAM_FAM_BLOB;
	b[1] = 2;
	expect_err(&c, SAM_RETIRE, b, 2, TB_E_INVAL);
	b[1] = 1;
	expect_ok(&c, SAM_RETIRE, b, 2, &r);
	expect_err(&c, SAM_OPEN_BLOB, g_big, seal_body(g_big, "x", blob1, bn1), TB_E_SAM_KEY);
	expect_err(&c, SAM_RETIRE, b, 2, TB_E_SAM_KEY);
	open_ok(&c, "x", blob2, bn2, pt, sizeof(pt));
	/* A failed persist keeps the old keys. */
	g_persist_rc = TB_E_IO;
	expect_err(&c, SAM_ROTATE, &f, 1, TB_E_IO);
	g_persist_rc = 0;
	bn2 = seal(&c, "x", pt, sizeof(pt), blob2);
	assert_int_equal(blob2[1], 2);
	/* Versions run out: at most SAM_VERSIONS held. */
	for (int i = 0; i < 3; i++)
		expect_ok(&c, SAM_ROTATE, &f, 1, &r);
	expect_err(&c, SAM_ROTATE, &f, 1, TB_E_SAM_FULL);
	/* A role: new SCP_OPENs use the new KVN, the old one still works when asked for. */
	f = SAM_FAM_SE_SERVER;
	expect_ok(&c, SAM_ROTATE, &f, 1, &r);
	assert_int_equal(r.body[1], 0x12);
	expect_ok(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x33, 8, NULL, 0),
		  &r);
	assert_int_equal(r.body[4], 0x12);
	expect_ok(&c, SAM_SCP_OPEN, b,
		  open_body(b, SAM_FAM_SE_SERVER, 0x11, serial_a, 0x33, 8, NULL, 0), &r);
	assert_int_equal(r.body[4], 0x11);
	/* The signing key: a new public key, the old one still published. */
	f = 0;
	expect_ok(&c, SAM_GET_PUBLIC_KEY, &f, 1, &r);
	memcpy(pub1, r.body + 1, SAM_PUB_LEN);
	f = SAM_FAM_SIGN;
	expect_ok(&c, SAM_ROTATE, &f, 1, &r);
	f = 0;
	expect_ok(&c, SAM_GET_PUBLIC_KEY, &f, 1, &r);
	assert_int_equal(r.body[0], 2);
	assert_false(ct_eq(r.body + 1, pub1, SAM_PUB_LEN));
	f = 1;
	expect_ok(&c, SAM_GET_PUBLIC_KEY, &f, 1, &r);
	assert_true(ct_eq(r.body + 1, pub1, SAM_PUB_LEN));
	sam_conn_close(&g_sam, &c);
}

/* ------------------------------------------------------------- re-keying --- */

/* The card of serial holding role's set of the given version (the keys the sam derives). */
static void sim_at(struct scp_sim *m, uint8_t role, uint8_t version, const uint8_t serial[8])
{
	const struct sam_key *k = sam_keys_find(&g_sam.ks, role, version);
	struct scp_keys keys;

	assert_non_null(k);
	assert_int_equal(sam_div_device_keys(k, role, serial, &keys), 0);
	assert_int_equal(scp_sim_init(m, 0x70, serial, isd_aid, sizeof(isd_aid), &keys, version), 0);
	ct_wipe(&keys, sizeof(keys));
}

/* SCP_OPEN (kvn as given: 0, a version, SAM_KVN_CARD), the three-step handshake with the
 * card at level: the handle of the open session. */
static uint32_t pk_open(struct sam_conn *c, struct scp_sim *m, uint8_t role, uint8_t kvn,
			uint8_t level)
{
	uint8_t b[600], resp[512];
	struct reply r;
	size_t rn;
	uint32_t h;

	expect_ok(c, SAM_SCP_OPEN, b, open_body(b, role, kvn, serial_a, level, 8, isd_aid,
						 sizeof(isd_aid)), &r);
	h = be32(r.body);
	/* The card's choice: P1 00, and the reply names no version yet. */
	assert_int_equal(r.body[7], kvn == SAM_KVN_CARD ? 0x00 : m->kvn);
	assert_int_equal(r.body[4], kvn == SAM_KVN_CARD ? 0x00 : m->kvn);
	assert_int_equal(scp_sim_apdu(m, r.body + 5, r.n - 5, resp, sizeof(resp), &rn), 0);
	expect_ok(c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
	assert_int_equal(scp_sim_apdu(m, r.body + 3, r.n - 3, resp, sizeof(resp), &rn), 0);
	assert_int_equal(m->auth_ok, 1);
	expect_ok(c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), &r);
	assert_int_equal(r.body[0], SAM_SS_OPEN);
	return h;
}

static size_t pk_body(uint8_t *b, uint32_t h, uint8_t family, uint8_t kvn)
{
	struct wr w = wr_init(b, 8);

	(void)wr_u32be(&w, h);
	(void)wr_u8(&w, family);
	(void)wr_u8(&w, kvn);
	return w.len;
}

/* The card's side of a PUT KEY: the wrapped command through the card role; the plain one
 * must be 80 D8 old 81 Lc new || 3 AES key fields 00 whose keys decrypt under the card's
 * static Key-DEK to `want` and whose KCVs are right. kcv gets the new KVN || KCVs. */
static void pk_card_take(struct scp_sim *m, const uint8_t *wrapped, size_t wn, uint8_t old,
			 uint8_t kvn, const struct scp_keys *want, uint8_t kcv[10])
{
	static const uint8_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	const uint8_t *wk[3] = { want->enc, want->mac, want->dek };
	uint8_t plain[512], iv[16] = { 0 }, key[32], check[16];
	struct scp_card_result res;
	struct wr w = wr_init(plain, sizeof(plain));
	size_t ctlen = want->len == 16 ? 16u : 32u, at = 6;

	assert_int_equal(scp_card_command(&m->c, wrapped, wn, &res, &w), 0);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_int_equal(res.level, 0x33);
	assert_int_equal(w.len, 5 + 1 + 3 * (3 + ctlen + 4) + 1);
	assert_int_equal(plain[0], 0x80);
	assert_int_equal(plain[1], 0xD8);
	assert_int_equal(plain[2], old);
	assert_int_equal(plain[3], 0x81);
	assert_int_equal(plain[4], w.len - 6);
	assert_int_equal(plain[5], kvn);
	assert_int_equal(plain[w.len - 1], 0x00);
	kcv[0] = kvn;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(plain[at], 0x88);
		assert_int_equal(plain[at + 1], 1 + ctlen);
		assert_int_equal(plain[at + 2], want->len);
		assert_int_equal(crypto_aes_cbc_decrypt(m->keys.dek, m->keys.len, iv, plain + at + 3,
							ctlen, key), 0);
		assert_true(ct_eq(key, wk[i], want->len));
		assert_int_equal(plain[at + 3 + ctlen], 3);
		assert_int_equal(crypto_aes_ecb_encrypt(wk[i], want->len, ones, check), 0);
		assert_true(ct_eq(plain + at + 4 + ctlen, check, 3));
		memcpy(kcv + 1 + 3 * i, check, 3);
		at += 3 + ctlen + 4;
	}
	ct_wipe(key, sizeof(key));
	ct_wipe(plain, sizeof(plain));
}

/* The card answers (data || SW, protected by its session); the sam's SCP_UNWRAP reply. */
static void pk_card_answer(struct scp_sim *m, const uint8_t *ans, size_t an, uint8_t *resp,
			   size_t *rn)
{
	struct wr w = wr_init(resp, 512);

	assert_int_equal(scp_card_respond(&m->c, ans, an, &w), 0);
	*rn = w.len;
}

static void want_keys(uint8_t family, uint8_t version, struct scp_keys *k)
{
	assert_int_equal(sam_div_device_keys(sam_keys_find(&g_sam.ks, family, version), family,
					     serial_a, k), 0);
}

/* SCP_PUT_KEY: the se-reader then the se-server set of an se personalised before a
 * rotation, through a channel opened with the KVN the card names; the card's answer
 * checked by the sam (a wrong KCV closes the session, a bare SW passes); refusals. */
static void test_put_key(void **state)
{
	uint8_t b[600], resp[512], kcv[10], ans[16];
	struct scp_keys want;
	struct scp_sim m;
	struct sam_conn c;
	struct reply r;
	uint8_t f;
	size_t rn;
	uint32_t h;

	(void)state;
	teardown(NULL);
	setup_caps(SAM_CAP_KEYS, NSLOTS);
	hello(&c);
	/* Nothing newer yet: refused, the channel stays open. */
	sim_at(&m, SAM_FAM_SE_SERVER, 0x11, serial_a);
	h = pk_open(&c, &m, SAM_FAM_SE_SERVER, 0, 0x33);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0), TB_E_SAM_CURRENT);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_READER, 0x21), TB_E_SAM_CURRENT);
	scp_roundtrip(&c, &m, h);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	f = SAM_FAM_SE_SERVER;
	expect_ok(&c, SAM_ROTATE, &f, 1, &r);
	f = SAM_FAM_SE_READER;
	expect_ok(&c, SAM_ROTATE, &f, 1, &r);

	/* The card still at 11: SCP_OPEN with the card's choice resolves to 11. */
	sim_at(&m, SAM_FAM_SE_SERVER, 0x11, serial_a);
	h = pk_open(&c, &m, SAM_FAM_SE_SERVER, SAM_KVN_CARD, 0x33);
	/* The reader set 21 -> 22, keys under the session's (11) Key-DEK. */
	expect_ok(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_READER, 0x21), &r);
	assert_int_equal(r.body[0], 0x22);
	assert_int_equal(r.body[1], 0x84);
	want_keys(SAM_FAM_SE_READER, 0x22, &want);
	pk_card_take(&m, r.body + 1, r.n - 1, 0x21, 0x22, &want, kcv);
	ct_wipe(&want, sizeof(want));
	memcpy(ans, kcv, 10);
	ans[10] = 0x90;
	ans[11] = 0x00;
	pk_card_answer(&m, ans, 12, resp, &rn);
	expect_ok(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn), &r);
	/* Only the verdict: 9000, authenticated, no data. */
	assert_int_equal(r.n, 3);
	assert_int_equal(r.body[0], 0x90);
	assert_int_equal(r.body[2], 1);
	/* The se-server set 11 -> 12; a bare error SW from the card passes, nothing kept. */
	expect_ok(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0), &r);
	assert_int_equal(r.body[0], 0x12);
	want_keys(SAM_FAM_SE_SERVER, 0x12, &want);
	pk_card_take(&m, r.body + 1, r.n - 1, 0x11, 0x12, &want, kcv);
	ans[0] = 0x6A;
	ans[1] = 0x80;
	pk_card_answer(&m, ans, 2, resp, &rn);
	expect_ok(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn), &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.body[0], 0x6A);
	assert_int_equal(r.body[2], 0);
	/* Again, and the card answers with one KCV byte wrong: ERROR, the session closes. */
	expect_ok(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0x11), &r);
	pk_card_take(&m, r.body + 1, r.n - 1, 0x11, 0x12, &want, kcv);
	memcpy(ans, kcv, 10);
	ans[5] ^= 0x01;
	ans[10] = 0x90;
	ans[11] = 0x00;
	pk_card_answer(&m, ans, 12, resp, &rn);
	expect_err(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn), TB_E_SAM_KCV);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0), TB_E_SCP_CLOSED);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	/* A right answer (new KVN, KCVs) is taken. */
	sim_at(&m, SAM_FAM_SE_SERVER, 0x11, serial_a);
	h = pk_open(&c, &m, SAM_FAM_SE_SERVER, SAM_KVN_CARD, 0x33);
	expect_ok(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0), &r);
	pk_card_take(&m, r.body + 1, r.n - 1, 0x11, 0x12, &want, kcv);
	memcpy(ans, kcv, 10);
	ans[10] = 0x90;
	ans[11] = 0x00;
	pk_card_answer(&m, ans, 12, resp, &rn);
	expect_ok(&c, SAM_SCP_UNWRAP, b, handle_body(b, sizeof(b), h, resp, rn), &r);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.body[2], 1);
	/* The channel goes on. */
	scp_roundtrip(&c, &m, h);
	/* Refusals that leave the channel open: a set of another family's range, another
	 * se-server set than the session's own. */
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_READER, 0x11), TB_E_INVAL);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_READER, 0x20), TB_E_INVAL);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0x13), TB_E_INVAL);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_READER, 0x22), TB_E_SAM_CURRENT);
	scp_roundtrip(&c, &m, h);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	ct_wipe(&want, sizeof(want));
	/* The card at the new version: the card's choice resolves to 12, nothing to replace. */
	sim_at(&m, SAM_FAM_SE_SERVER, 0x12, serial_a);
	h = pk_open(&c, &m, SAM_FAM_SE_SERVER, SAM_KVN_CARD, 0x33);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0), TB_E_SAM_CURRENT);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	/* Without an R-MAC the answer proves nothing: refused. */
	sim_at(&m, SAM_FAM_SE_SERVER, 0x11, serial_a);
	h = pk_open(&c, &m, SAM_FAM_SE_SERVER, 0x11, 0x03);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0), TB_E_SCP_LEVEL);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	/* Only the server's sessions: an se-reader session is denied. */
	sim_at(&m, SAM_FAM_SE_READER, 0x21, serial_a);
	h = pk_open(&c, &m, SAM_FAM_SE_READER, 0x21, 0x33);
	expect_err(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_READER, 0x21), TB_E_SAM_DENIED);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	/* The card's choice naming another role's set, or a retired version: no keys. */
	sim_at(&m, SAM_FAM_SE_READER, 0x21, serial_a);
	expect_ok(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, SAM_KVN_CARD, serial_a, 0x33,
						  8, isd_aid, sizeof(isd_aid)), &r);
	h = be32(r.body);
	assert_int_equal(scp_sim_apdu(&m, r.body + 5, r.n - 5, resp, sizeof(resp), &rn), 0);
	expect_err(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), TB_E_SAM_KEY);
	expect_err(&c, SAM_SCP_WRAP, b, handle_body(b, sizeof(b), h, cmd_get, sizeof(cmd_get)),
		   TB_E_SCP_CLOSED);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	b[0] = SAM_FAM_SE_SERVER;
	b[1] = 0x11;
	sim_at(&m, SAM_FAM_SE_SERVER, 0x11, serial_a);
	expect_ok(&c, SAM_RETIRE, b, 2, &r);
	expect_ok(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, SAM_KVN_CARD, serial_a, 0x33,
						  8, isd_aid, sizeof(isd_aid)), &r);
	h = be32(r.body);
	assert_int_equal(scp_sim_apdu(&m, r.body + 5, r.n - 5, resp, sizeof(resp), &rn), 0);
	expect_err(&c, SAM_SCP_STEP, b, step_body(b, sizeof(b), h, resp, rn, NULL, 0), TB_E_SAM_KEY);
	expect_ok(&c, SAM_SCP_CLOSE, b, handle_body(b, sizeof(b), h, NULL, 0), &r);
	/* Out of state (before the channel opened) and a family an se does not hold close. */
	sim_at(&m, SAM_FAM_SE_SERVER, 0x12, serial_a);
	expect_ok(&c, SAM_SCP_OPEN, b, open_body(b, SAM_FAM_SE_SERVER, 0, serial_a, 0x33, 8, NULL,
						  0), &r);
	h = be32(r.body);
	expect_close(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_SE_SERVER, 0));
	hello(&c);
	h = pk_open(&c, &m, SAM_FAM_SE_SERVER, 0, 0x33);
	expect_close(&c, SAM_SCP_PUT_KEY, b, pk_body(b, h, SAM_FAM_READER_SERVER, 0x31));
	assert_int_equal(g_sam.used, 0);
}

/* The receipt as src/se/purse.c makes it, computed here from its definition. */
static void test_receipt(void **state)
{
	static const uint8_t label[] = "tapbridge receipt";
	uint8_t body[25], b[128], before[20], rk[16], tag[16];
	const struct sam_key *m = sam_keys_find(&g_sam.ks, SAM_FAM_SE_SERVER, 0);
	struct scp_keys dev;
	struct sam_conn c;
	struct reply r;
	struct wr w;

	(void)state;
	for (size_t i = 0; i < sizeof(body); i++)
		body[i] = (uint8_t)(0x30 + i);
	memcpy(before, label, 17);
	before[17] = 0x00;
	before[18] = 0x00;
	before[19] = 0x80;
	assert_int_equal(sam_div_device_keys(m, SAM_FAM_SE_SERVER, serial_a, &dev), 0);
	assert_int_equal(crypto_kdf_ctr_cmac(dev.mac, dev.len, before, sizeof(before), serial_a, 8,
					     rk, 16), 0);
	assert_int_equal(crypto_cmac(rk, 16, body, sizeof(body), tag), 0);
	hello(&c);
	for (int bad = 0; bad < 3; bad++) {
		w = wr_init(b, sizeof(b));
		(void)wr_u8(&w, 0);
		(void)wr_bytes(&w, bad == 2 ? serial_b : serial_a, 8);
		(void)wr_u8(&w, 8);
		(void)wr_bytes(&w, tag, 8);
		(void)wr_bytes(&w, body, sizeof(body));
		if (bad == 1)
			b[w.len - 1] ^= 1;
		if (bad == 0)
			expect_ok(&c, SAM_RECEIPT_VERIFY, b, w.len, &r);
		else
			expect_err(&c, SAM_RECEIPT_VERIFY, b, w.len, TB_E_SAM_RECEIPT);
	}
	b[0] = 0x13;
	expect_err(&c, SAM_RECEIPT_VERIFY, b, w.len, TB_E_SAM_KEY);
	sam_conn_close(&g_sam, &c);
	ct_wipe(&dev, sizeof(dev));
}

static void test_derive_needs_perso(void **state)
{
	uint8_t b[16] = { SAM_FAM_SE_READER, 0 };
	const struct sam_key *m;
	struct scp_keys want;
	struct sam_conn c;
	struct reply r;

	(void)state;
	memcpy(b + 2, serial_a, 8);
	hello(&c);
	expect_err(&c, SAM_DERIVE_DEVICE_KEYS, b, 10, TB_E_SAM_DENIED);
	sam_conn_close(&g_sam, &c);
	teardown(NULL);
	setup_caps(SAM_CAP_PERSO, NSLOTS);
	hello(&c);
	expect_ok(&c, SAM_DERIVE_DEVICE_KEYS, b, 10, &r);
	m = sam_keys_find(&g_sam.ks, SAM_FAM_SE_READER, 0);
	assert_int_equal(sam_div_device_keys(m, SAM_FAM_SE_READER, serial_a, &want), 0);
	assert_int_equal(r.n, 3 + 3 * 16);
	assert_int_equal(r.body[0], SAM_FAM_SE_READER);
	assert_int_equal(r.body[1], 0x21);
	assert_int_equal(r.body[2], 16);
	assert_true(ct_eq(r.body + 3, want.enc, 16));
	assert_true(ct_eq(r.body + 19, want.mac, 16));
	assert_true(ct_eq(r.body + 35, want.dek, 16));
	/* A device key is not its master. */
	assert_false(ct_eq(r.body + 3, m->key, 16));
	b[1] = 0x22;
	expect_err(&c, SAM_DERIVE_DEVICE_KEYS, b, 10, TB_E_SAM_KEY);
	ct_wipe(&want, sizeof(want));
	sam_conn_close(&g_sam, &c);
}

/* --------------------------------------------------------- the key file --- */

static uint8_t g_file[SAM_KEYFILE_MAX];

static void test_keyfile(void **state)
{
	struct sam_keystore ks, back;
	struct sam_soft_kek sk, sk2;
	struct sam_kek kek, kek2;
	uint8_t kind, id[SAM_KEK_ID_LEN];
	struct wr w = wr_init(g_file, sizeof(g_file));
	size_t n;

	(void)state;
	make_keystore(&ks, 16);
	memset(sk.key, 0x11, sizeof(sk.key));
	memset(sk2.key, 0x12, sizeof(sk2.key));
	assert_int_equal(sam_kek_soft(&kek, &sk), 0);
	assert_int_equal(sam_kek_soft(&kek2, &sk2), 0);
	assert_int_equal(sam_keyfile_seal(&ks, &kek, &w), 0);
	n = w.len;
	assert_true(n <= SAM_KEYFILE_MAX);
	assert_int_equal(sam_keyfile_kek(g_file, n, &kind, id), 0);
	assert_int_equal(kind, SAM_KEK_FILE);
	assert_true(ct_eq(id, kek.id, SAM_KEK_ID_LEN));
	assert_int_equal(sam_keyfile_open(g_file, n, &kek, &back), 0);
	assert_true(ct_eq(&back.k[SAM_FAM_SE_SERVER - 1][0].key, &ks.k[SAM_FAM_SE_SERVER - 1][0].key,
			  SAM_KEY_LEN));
	assert_true(ct_eq(back.k[SAM_FAM_SIGN - 1][0].pub, ks.k[SAM_FAM_SIGN - 1][0].pub,
			  SAM_PUB_LEN));
	assert_true(ct_eq(back.current, ks.current, SAM_FAMILIES));
	/* No master key appears in the file in clear. */
	for (size_t f = 0; f < SAM_FAMILIES; f++)
		for (size_t i = 0; i + SAM_KEY_LEN <= n; i++)
			assert_false(ct_eq(g_file + i, ks.k[f][0].key, SAM_KEY_LEN));
	/* Another KEK, every flipped byte, every cut: refused, nothing written. */
	memset(&back, 0x77, sizeof(back));
	assert_int_equal(sam_keyfile_open(g_file, n, &kek2, &back), TB_E_SAM_KEYFILE);
	kek2.kind = kek.kind;
	memcpy(kek2.id, kek.id, SAM_KEK_ID_LEN); /* even when it claims the right id */
	assert_int_equal(sam_keyfile_open(g_file, n, &kek2, &back), TB_E_SAM_KEYFILE);
	for (size_t i = 0; i < n; i++) {
		g_file[i] ^= 0x20;
		assert_int_equal(sam_keyfile_open(g_file, n, &kek, &back), TB_E_SAM_KEYFILE);
		g_file[i] ^= 0x20;
	}
	for (size_t cut = 0; cut < n; cut++)
		assert_int_not_equal(sam_keyfile_open(g_file, cut, &kek, &back), 0);
	assert_int_equal(back.current[0], 0x77);
	/* Two seals of the same keys differ (fresh DEK and nonces). */
	{
		static uint8_t again[SAM_KEYFILE_MAX];
		struct wr w2 = wr_init(again, sizeof(again));

		assert_int_equal(sam_keyfile_seal(&ks, &kek, &w2), 0);
		assert_int_equal(w2.len, n);
		assert_false(ct_eq(again, g_file, n));
	}
	/* Rotation and retirement survive the file. */
	{
		uint8_t v;
		struct wr w3 = wr_init(g_file, sizeof(g_file));

		assert_int_equal(sam_keys_rotate(&ks, SAM_FAM_SIGN, &v), 0);
		assert_int_equal(v, 2);
		assert_int_equal(sam_keys_rotate(&ks, SAM_FAM_SE_READER, &v), 0);
		assert_int_equal(v, 0x22);
		assert_int_equal(sam_keys_retire(&ks, SAM_FAM_SE_READER, 0x21), 0);
		assert_int_equal(sam_keyfile_seal(&ks, &kek, &w3), 0);
		assert_int_equal(sam_keyfile_open(g_file, w3.len, &kek, &back), 0);
		assert_int_equal(back.current[SAM_FAM_SIGN - 1], 2);
		assert_non_null(sam_keys_find(&back, SAM_FAM_SIGN, 1));
		assert_null(sam_keys_find(&back, SAM_FAM_SE_READER, 0x21));
		assert_non_null(sam_keys_find(&back, SAM_FAM_SE_READER, 0x22));
	}
	/* An unsound store is neither sealed nor loaded. */
	ks.current[SAM_FAM_BLOB - 1] = 9;
	w = wr_init(g_file, sizeof(g_file));
	assert_int_equal(sam_keyfile_seal(&ks, &kek, &w), TB_E_INVAL);
	{
		struct sam s2;
		struct sam_config cfg = { 0, NULL, NULL };

		assert_int_equal(sam_init(&s2, &cfg, &ks, g_slots, NSLOTS), TB_E_SAM_KEYFILE);
	}
	ct_wipe(&ks, sizeof(ks));
	ct_wipe(&back, sizeof(back));
	ct_wipe(&sk, sizeof(sk));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_div_known_answers),
		cmocka_unit_test_setup_teardown(test_hello_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scp_handshake_three_steps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scp_handshake_pipelined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scp_pipelined_ea_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scp_wrong_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scp_out_of_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_table_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_receipt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_derive_needs_perso, setup, teardown),
		cmocka_unit_test(test_keyfile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
