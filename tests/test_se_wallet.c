/* test_se_wallet.c - the wallet application: who may send what (interface, key set role,
 * level), the purse with its receipts and limits, tickets, personal authentication, the
 * authenticity-confirmation flag (signed and verified with a real P-256 key), relay
 * (armed, refused when not, the phone's answer as the response), lock / unlock, the
 * disable-functions event; every error path leaves the image byte for byte as it was. */
#include "se_rig.h"

#include "crypto.h"
#include "se_int.h"

#define CL SE_IF_CONTACTLESS
#define HOST SE_IF_HOST

static uint8_t before[IMG_PAGES][SE_PAGE_SIZE];

static void snap(void)
{
	memcpy(before, R.mem.img, sizeof(before));
}

/* Every record but the key sets, whose sequence counters move with every INITIALIZE
 * UPDATE (a session opened between snap() and the check). */
static void assert_unchanged(void)
{
	assert_true(rig_same(before[IMG_PG_IDENT], R.mem.img[IMG_PG_IDENT], SE_PAGE_SIZE));
	assert_true(rig_same(before[IMG_PG_PURSE], R.mem.img[IMG_PG_PURSE],
			     (IMG_PAGES - IMG_PG_PURSE) * SE_PAGE_SIZE));
}

/* 80 INS P1 P2 [Lc data] 00 through ifc's channel (if open). */
static uint16_t w_cmd(enum se_iface ifc, uint8_t ins, uint8_t p1, uint8_t p2, const uint8_t *data,
		      size_t n)
{
	uint8_t cmd[SE_CMD_MAX];
	size_t len = 4;

	cmd[0] = 0x80;
	cmd[1] = ins;
	cmd[2] = p1;
	cmd[3] = p2;
	if (n > 0) {
		cmd[len++] = (uint8_t)n;
		memcpy(cmd + len, data, n);
		len += n;
	}
	cmd[len++] = 0x00;
	return rig_cmd(ifc, cmd, len);
}

static uint16_t w_hex(enum se_iface ifc, uint8_t ins, uint8_t p1, const char *hex)
{
	uint8_t data[256];
	size_t n = hexbuf(hex, data, sizeof(data));

	return w_cmd(ifc, ins, p1, 0x00, data, n);
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t amount_cmd(enum se_iface ifc, uint8_t ins, uint32_t amount)
{
	uint8_t a[4];

	be32(a, amount);
	return w_cmd(ifc, ins, 0, 0, a, 4);
}

/* Server on the host interface, a reader on contactless, both at level 33. */
static void both_open_on(void)
{
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(rig_open_reader(CL, 0x33), SW_OK);
}

static void both_open(void)
{
	rig_personalised();
	both_open_on();
}

/* ------------------------------------------------------------------ access --- */

static void test_access_rules(void **state)
{
	static const uint8_t ins[] = { 0x32, 0x34, 0x40, 0x44, 0x46, 0x48, 0x60, 0x62,
				       0x64, 0x66, 0x68, 0x92, 0x94 };

	(void)state;
	rig_personalised();
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	snap();
	/* Without a session nothing but the phone's own commands. */
	for (size_t i = 0; i < sizeof(ins); i++) {
		assert_int_equal(w_cmd(CL, ins[i], 0, 0, NULL, 0), SW_SECURITY_STATUS);
		assert_int_equal(w_cmd(HOST, ins[i], 0, 0, NULL, 0), SW_SECURITY_STATUS);
	}
	assert_int_equal(w_cmd(CL, 0x30, 0, 0, NULL, 0), SW_SECURITY_STATUS);
	assert_int_equal(w_cmd(CL, 0x90, 0, 0, NULL, 0), SW_SECURITY_STATUS);
	assert_int_equal(w_cmd(HOST, 0x30, 0, 0, NULL, 0), SW_OK);
	/* A session below C-MAC + R-MAC is not enough. */
	assert_int_equal(rig_open_server(HOST, 0x03), SW_OK);
	assert_int_equal(amount_cmd(HOST, 0x32, 10), SW_SECURITY_STATUS);
	assert_int_equal(rig_open_server(HOST, 0x00), SW_OK);
	assert_int_equal(amount_cmd(HOST, 0x32, 10), SW_SECURITY_STATUS);
	/* The reader may not credit, store tickets or unlock. */
	assert_int_equal(rig_open_reader(CL, 0x33), SW_OK);
	assert_int_equal(amount_cmd(CL, 0x32, 10), SW_SECURITY_STATUS);
	assert_int_equal(w_hex(CL, 0x40, 0, "0102030405060708 00000001 00000000 FFFFFFFF 01"),
			 SW_SECURITY_STATUS);
	assert_int_equal(w_cmd(CL, 0x92, 0, 0, NULL, 0), SW_SECURITY_STATUS);
	/* Unknown instruction, wrong class. */
	assert_int_equal(w_cmd(CL, 0x10, 0, 0, NULL, 0), SW_INS_NOT_SUPPORTED);
	assert_int_equal(rig_cmd_hex(CL, "0030000000"), SW_CLA_NOT_SUPPORTED);
	assert_unchanged();
}

/* ------------------------------------------------------------------- purse --- */

static void check_receipt(const uint8_t *r, uint32_t counter, uint8_t kind, uint32_t amount,
			  uint32_t balance, uint8_t kvn)
{
	static const uint8_t label[] = "tapbridge receipt\x00\x00\x80";
	uint8_t key[16], tag[16], want[25];
	struct scp_keys k;

	memcpy(want, rig_serial, 8);
	be32(want + 8, counter);
	want[12] = kind;
	be32(want + 13, amount);
	be32(want + 17, balance);
	want[21] = kvn;
	assert_true(rig_same(r, want, 22));
	/* The MAC: the server's Key-MAC, so the server can check a reader's receipt. */
	rig_server_keys(&k);
	assert_int_equal(crypto_kdf_ctr_cmac(k.mac, k.len, label, sizeof(label) - 1, rig_serial, 8,
					     key, 16),
			 0);
	assert_int_equal(crypto_cmac(key, 16, r, 25, tag), 0);
	assert_true(rig_same(r + 25, tag, 8));
}

static void test_purse(void **state)
{
	struct se_event ev;
	uint32_t seq;

	(void)state;
	rig_personalised();
	assert_int_equal(se_configure(&R.mem.store, 1000, SE_DEFAULT_LOCKOUT), 0);
	rig_start();
	both_open_on();
	assert_int_equal(amount_cmd(HOST, 0x32, 700), SW_OK);
	assert_int_equal(R.n, 33);
	assert_int_equal(R.authenticated, 1);
	check_receipt(R.resp, 1, SE_TX_CREDIT, 700, 700, RIG_SERVER_KVN);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.kind, SE_EV_TRANSACTION);
	assert_int_equal(ev.tx_kind, SE_TX_CREDIT);
	assert_int_equal(ev.balance, 700);
	assert_int_equal(ev.counter, 1);
	assert_int_equal(se_next_event(&R.se, &ev), 0);
	/* The receipt names the session: the reader's sequence counter. */
	seq = R.se.ifs[CL].seq;
	assert_int_equal(amount_cmd(CL, 0x34, 250), SW_OK);
	check_receipt(R.resp, 2, SE_TX_DEBIT, 250, 450, RIG_READER_KVN);
	assert_int_equal(R.resp[22] << 16 | R.resp[23] << 8 | R.resp[24], seq);
	assert_int_equal(amount_cmd(HOST, 0x34, 50), SW_OK);
	check_receipt(R.resp, 3, SE_TX_DEBIT, 50, 400, RIG_SERVER_KVN);
	snap();
	assert_int_equal(amount_cmd(CL, 0x34, 401), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(amount_cmd(HOST, 0x32, 601), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(amount_cmd(HOST, 0x32, 0), SW_WRONG_DATA);
	assert_int_equal(w_hex(HOST, 0x32, 0, "000001"), SW_WRONG_LENGTH);
	assert_int_equal(w_hex(HOST, 0x32, 0, "0000000101"), SW_WRONG_LENGTH);
	assert_int_equal(w_hex(HOST, 0x32, 1, "00000001"), SW_INCORRECT_P1P2);
	assert_int_equal(w_cmd(CL, 0x34, 0, 0, NULL, 0), SW_WRONG_LENGTH);
	assert_unchanged();
	/* Up to the maximum exactly, and down to zero. */
	assert_int_equal(amount_cmd(HOST, 0x32, 600), SW_OK);
	assert_int_equal(amount_cmd(CL, 0x34, 1000), SW_OK);
	check_receipt(R.resp, 5, SE_TX_DEBIT, 1000, 0, RIG_READER_KVN);
	assert_int_equal(w_cmd(CL, 0x30, 0, 0, NULL, 0), SW_OK);
	assert_hex_equal(R.resp, R.n, "00000000 00000005 000003E8");
	/* The phone reads the balance without a session. */
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x30, 0, 0, NULL, 0), SW_OK);
	assert_hex_equal(R.resp, R.n, "00000000 00000005 000003E8");
	/* A restart sees the same purse. */
	rig_start();
	assert_int_equal(R.se.img.tx_counter, 5);
	assert_int_equal(R.se.img.last_kind, SE_TX_DEBIT);
}

static void test_purse_needs_server_set(void **state)
{
	struct scp_keys k;

	(void)state;
	rig_blank();
	rig_reader_keys(&k);
	assert_int_equal(se_put_keyset(&R.mem.store, RIG_READER_KVN, SE_ROLE_READER, &k), 0);
	rig_start();
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(rig_open_reader(CL, 0x33), SW_OK);
	R.se.img.balance = 10; /* mirror only: the debit must refuse before persisting */
	assert_int_equal(amount_cmd(CL, 0x34, 1), SW_CONDITIONS_NOT_SATISFIED);
	rig_start();
	assert_int_equal(R.se.img.balance, 0);
}

/* ----------------------------------------------------------------- tickets --- */

static void ticket(uint8_t out[21], uint8_t id, uint32_t service, uint32_t nb, uint32_t na,
		   uint8_t uses)
{
	memset(out, 0, 21);
	out[7] = id;
	be32(out + 8, service);
	be32(out + 12, nb);
	be32(out + 16, na);
	out[20] = uses;
}

static void test_tickets(void **state)
{
	uint8_t t[21], q[12];

	(void)state;
	both_open();
	ticket(t, 1, 0x1001, RIG_NOW - 100, RIG_NOW + 100, 2);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SE_SW_EXISTS);
	ticket(t, 2, 0x1002, RIG_NOW + 100, RIG_NOW + 200, 1);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_OK);
	snap();
	ticket(t, 3, 0x1002, RIG_NOW + 300, RIG_NOW + 200, 1);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_WRONG_DATA);
	ticket(t, 3, 0x1002, RIG_NOW, RIG_NOW + 200, 0);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_WRONG_DATA);
	for (size_t k = 0; k < 21; k++)
		assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, k), SW_WRONG_LENGTH);
	/* Check: valid now / not yet valid; unknown id. */
	assert_int_equal(w_hex(CL, 0x44, 0, "0000000000000001"), SW_OK);
	assert_int_equal(R.n, 22);
	assert_int_equal(R.resp[21], 0x00);
	assert_int_equal(w_hex(CL, 0x44, 0, "0000000000000002"), SW_OK);
	assert_int_equal(R.resp[21], 0x01);
	assert_int_equal(w_hex(CL, 0x44, 0, "0000000000000009"), SW_REF_DATA_NOT_FOUND);
	/* Consume: wrong service, not yet valid, unknown. */
	memset(q, 0, sizeof(q));
	q[7] = 1;
	be32(q + 8, 0x1002);
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_WRONG_DATA);
	q[7] = 2;
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_CONDITIONS_NOT_SATISFIED);
	q[7] = 9;
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 11), SW_WRONG_LENGTH);
	assert_unchanged();
	/* Each consume takes one use, then the ticket is used up. */
	q[7] = 1;
	be32(q + 8, 0x1001);
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_OK);
	assert_int_equal(R.resp[20], 1);
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_OK);
	assert_int_equal(R.resp[20], 0);
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(w_hex(CL, 0x44, 0, "0000000000000001"), SW_OK);
	assert_int_equal(R.resp[21], 0x03);
	/* Expired. */
	R.now = RIG_NOW + 250;
	q[7] = 2;
	be32(q + 8, 0x1002);
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_CONDITIONS_NOT_SATISFIED);
	R.now = RIG_NOW + 150;
	assert_int_equal(w_cmd(CL, 0x46, 0, 0, q, 12), SW_OK);
	R.now = RIG_NOW;
	/* The phone lists them; the spent id can be stored again. */
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x42, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(R.n, 42);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	ticket(t, 1, 0x1001, RIG_NOW, RIG_NOW + 100, 5);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x42, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(R.n, 42);
	/* Full: 8 slots (the spent ticket 2's slot is reused for the ninth). */
	for (uint8_t id = 3; id <= 8; id++) {
		ticket(t, id, 0x1003, RIG_NOW, RIG_NOW + 100, 1);
		assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_OK);
	}
	ticket(t, 9, 0x1003, RIG_NOW, RIG_NOW + 100, 1);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_OK);
	ticket(t, 10, 0x1003, RIG_NOW, RIG_NOW + 100, 1);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_NOT_ENOUGH_MEMORY);
	/* Delete frees a slot. */
	assert_int_equal(w_hex(HOST, 0x48, 0, "0000000000000009"), SW_OK);
	assert_int_equal(w_hex(HOST, 0x48, 0, "0000000000000009"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(w_cmd(HOST, 0x40, 0, 0, t, 21), SW_OK);
}

/* ------------------------------------------------------------------- pauth --- */

static void test_pauth(void **state)
{
	uint8_t set[32], key[16], tag[16], msg[8 + 8 + 16];
	const char *challenge = "00112233445566778899AABBCCDDEEFF";

	(void)state;
	both_open();
	for (size_t i = 0; i < 32; i++)
		set[i] = (uint8_t)(0xC0 + i);
	memcpy(key, set + 16, 16);
	assert_int_equal(w_hex(CL, 0x62, 0, challenge), SW_REF_DATA_NOT_FOUND);
	/* The key travels only under C-DEC / R-ENC. */
	assert_int_equal(rig_open_server(HOST, 0x11), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x60, 0, 0, set, 32), SW_SECURITY_STATUS);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x60, 0, 0, set, 31), SW_WRONG_LENGTH);
	assert_int_equal(w_cmd(HOST, 0x60, 2, 0, set, 32), SW_INCORRECT_P1P2);
	assert_int_equal(w_cmd(HOST, 0x60, 0, 0, set, 32), SW_OK);
	/* The key is on its page, not in the mirror. */
	assert_true(rig_same(R.mem.img[IMG_PG_WALLET] + IMG_PAUTH_KEY_AT, key, 16));
	R.rng_next = 0x40;
	assert_int_equal(w_hex(CL, 0x62, 0, challenge), SW_OK);
	assert_int_equal(R.n, 40);
	assert_true(rig_same(R.resp, set, 16));
	memcpy(msg, rig_serial, 8);
	memcpy(msg + 8, R.resp + 16, 8);
	hexbuf(challenge, msg + 16, 16);
	assert_hex_equal(R.resp + 16, 8, "4041424344454647");
	assert_int_equal(crypto_cmac(key, 16, msg, sizeof(msg), tag), 0);
	assert_true(rig_same(R.resp + 24, tag, 16));
	assert_int_equal(w_hex(CL, 0x62, 0, "00112233445566"), SW_WRONG_LENGTH);
	assert_int_equal(w_hex(CL, 0x62, 0, "00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF00"),
			 SW_WRONG_LENGTH);
	/* No rng: no proof. */
	R.cfg.rng = NULL;
	assert_int_equal(w_hex(CL, 0x62, 0, challenge), SW_CONDITIONS_NOT_SATISFIED);
	R.cfg.rng = rig_rng;
	/* Cleared: id and key gone. */
	assert_int_equal(w_cmd(HOST, 0x60, 1, 0, NULL, 0), SW_OK);
	assert_int_equal(w_hex(CL, 0x62, 0, challenge), SW_REF_DATA_NOT_FOUND);
	memset(key, 0, sizeof(key));
	assert_true(rig_same(R.mem.img[IMG_PG_WALLET] + IMG_PAUTH_KEY_AT, key, 16));
}

/* -------------------------------------------------------------------- flag --- */

static void flag_token(uint8_t t[SE_FLAG_LEN], const uint8_t priv[32], uint32_t expiry)
{
	memset(t, 0, SE_FLAG_LEN);
	t[0] = 0x01;
	memcpy(t + 1, rig_serial, 8);
	be32(t + 9, 0x2001);
	be32(t + 13, expiry);
	for (size_t i = 0; i < 16; i++)
		t[17 + i] = (uint8_t)(0x90 + i);
	be32(t + 33, 3);
	assert_int_equal(crypto_ecdsa_sign(priv, t, SE_FLAG_TOKEN_LEN, t + SE_FLAG_TOKEN_LEN), 0);
}

static void test_flag(void **state)
{
	uint8_t priv[32], pub[65], t[SE_FLAG_LEN];

	(void)state;
	both_open();
	assert_int_equal(crypto_p256_keygen(priv, pub), 0);
	assert_int_equal(w_cmd(CL, 0x66, 0, 0, NULL, 0), SW_REF_DATA_NOT_FOUND);
	snap();
	flag_token(t, priv, RIG_NOW + 600);
	assert_int_equal(w_cmd(CL, 0x64, 0, 0, t, SE_FLAG_LEN), SW_SECURITY_STATUS);
	assert_int_equal(w_cmd(HOST, 0x64, 0, 0, t, SE_FLAG_LEN - 1), SW_WRONG_LENGTH);
	t[1] ^= 1; /* another se's serial */
	assert_int_equal(w_cmd(HOST, 0x64, 0, 0, t, SE_FLAG_LEN), SW_WRONG_DATA);
	flag_token(t, priv, RIG_NOW - 1);
	assert_int_equal(w_cmd(HOST, 0x64, 0, 0, t, SE_FLAG_LEN), SW_CONDITIONS_NOT_SATISFIED);
	assert_unchanged();
	flag_token(t, priv, RIG_NOW + 600);
	assert_int_equal(w_cmd(HOST, 0x64, 0, 0, t, SE_FLAG_LEN), SW_OK);
	/* Only the reader reads it; it verifies offline with the server's public key. */
	assert_int_equal(w_cmd(HOST, 0x66, 0, 0, NULL, 0), SW_SECURITY_STATUS);
	assert_int_equal(w_cmd(CL, 0x66, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(R.n, SE_FLAG_LEN);
	assert_int_equal(crypto_ecdsa_verify(pub, R.resp, SE_FLAG_TOKEN_LEN, R.resp + SE_FLAG_TOKEN_LEN), 0);
	/* Consumed with the token's nonce only. */
	snap();
	assert_int_equal(w_hex(CL, 0x68, 0, "909192939495969798999A9B9C9D9E90"), SW_WRONG_DATA);
	assert_int_equal(w_hex(CL, 0x68, 0, "909192939495969798999A9B9C9D9E"), SW_WRONG_LENGTH);
	assert_unchanged();
	R.now = RIG_NOW + 601;
	assert_int_equal(w_cmd(CL, 0x66, 0, 0, NULL, 0), SW_CONDITIONS_NOT_SATISFIED);
	R.now = RIG_NOW;
	assert_int_equal(w_hex(CL, 0x68, 0, "909192939495969798999A9B9C9D9E9F"), SW_OK);
	assert_int_equal(w_cmd(CL, 0x66, 0, 0, NULL, 0), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(w_hex(CL, 0x68, 0, "909192939495969798999A9B9C9D9E9F"), SW_REF_DATA_NOT_FOUND);
}

/* ------------------------------------------------------------------- relay --- */

static uint16_t envelope(const char *hex)
{
	uint8_t cmd[SE_CMD_MAX + 16];
	size_t n = hexbuf(hex, cmd + 5, sizeof(cmd) - 6);

	cmd[0] = 0x80;
	cmd[1] = 0xC2;
	cmd[2] = 0x00;
	cmd[3] = 0x00;
	cmd[4] = (uint8_t)n;
	cmd[5 + n] = 0x00;
	return rig_cmd(CL, cmd, n + 6);
}

static void test_relay(void **state)
{
	static const uint8_t answer[] = { 0xDE, 0xAD, 0xBE, 0xEF };
	struct se_event ev;
	struct wr w;

	(void)state;
	both_open();
	/* Not armed: refused. */
	assert_int_equal(envelope("0102030405"), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(se_next_event(&R.se, &ev), 0);
	/* The server arms it through its channel (the reader cannot). */
	assert_int_equal(w_hex(CL, 0x6C, 0, "00003001 6553F200"), SW_SECURITY_STATUS);
	assert_int_equal(w_hex(HOST, 0x6C, 0, "00003001 FFFFFFFF"), SW_OK);
	assert_int_equal(envelope("0102030405"), 0);
	assert_int_equal(R.rc, SE_PENDING_RELAY);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.kind, SE_EV_RELAY);
	assert_int_equal(ev.service, 0x3001);
	assert_hex_equal(ev.data, ev.n, "0102030405");
	assert_int_equal(se_next_event(&R.se, &ev), 0);
	/* One in flight: the reader waits; the host interface does not. */
	assert_int_equal(rig_raw_hex(CL, "80CA00C100"), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(w_cmd(HOST, 0x30, 0, 0, NULL, 0), SW_OK);
	/* The phone's answer is the response, through the reader's channel. */
	{
		uint8_t raw[SE_RESP_MAX], plain[SE_RESP_MAX];
		struct wr pw = wr_init(plain, sizeof(plain));
		struct scp_resp info;

		w = wr_init(raw, 8);
		assert_int_equal(se_relay_answer(&R.se, answer, sizeof(answer), &w), TB_E_NOSPACE);
		w = wr_init(raw, sizeof(raw));
		assert_int_equal(se_relay_answer(&R.se, answer, SE_ENVELOPE_MAX + 1, &w), TB_E_INVAL);
		assert_int_equal(se_relay_answer(&R.se, answer, sizeof(answer), &w), 0);
		assert_int_equal(scp_host_unwrap(&R.host[CL], raw, w.len, &info, &pw), 0);
		assert_int_equal(info.sw, SW_OK);
		assert_int_equal(info.authenticated, 1);
		assert_hex_equal(plain, info.n, "DEADBEEF");
		assert_int_equal(se_relay_answer(&R.se, answer, sizeof(answer), &w), TB_E_SE_STATE);
	}
	/* Without a reader session, and a failed relay. */
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(envelope("AABB"), 0);
	w = wr_init(R.resp, sizeof(R.resp));
	assert_int_equal(se_relay_fail(&R.se, &w), 0);
	assert_hex_equal(R.resp, w.len, "6F00");
	assert_int_equal(se_relay_fail(&R.se, &w), TB_E_SE_STATE);
	/* The field goes: the pending relay is dropped. */
	assert_int_equal(envelope("AABB"), 0);
	se_power(&R.se, CL, SE_POWER_OFF);
	assert_int_equal(se_next_event(&R.se, &ev), 0);
	w = wr_init(R.resp, sizeof(R.resp));
	assert_int_equal(se_relay_answer(&R.se, answer, 4, &w), TB_E_SE_STATE);
	/* ENVELOPE on the host interface, empty, too long, bad P1. */
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(w_hex(HOST, 0xC2, 0, "01"), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(rig_raw_hex(CL, "80C2000000"), SW_WRONG_LENGTH);
	assert_int_equal(rig_raw_hex(CL, "80C2010001AA"), SW_INCORRECT_P1P2);
	{
		uint8_t big[7 + SE_ENVELOPE_MAX + 1 + 2] = { 0x80, 0xC2, 0x00, 0x00, 0x00,
							     (SE_ENVELOPE_MAX + 1) >> 8,
							     (SE_ENVELOPE_MAX + 1) & 0xFF };

		assert_int_equal(rig_raw(CL, big, sizeof(big) - 2), SW_WRONG_LENGTH);
		big[6] = SE_ENVELOPE_MAX & 0xFF;
		big[5] = SE_ENVELOPE_MAX >> 8;
		assert_int_equal(rig_raw(CL, big, 7 + SE_ENVELOPE_MAX), 0);
		assert_int_equal(R.rc, SE_PENDING_RELAY);
		assert_int_equal(se_next_event(&R.se, &ev), 1);
		assert_int_equal(ev.n, SE_ENVELOPE_MAX);
		w = wr_init(R.resp, sizeof(R.resp));
		assert_int_equal(se_relay_fail(&R.se, &w), 0);
	}
	/* The phone disarms; armed state expires. */
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x6C, 3, 0, NULL, 0), SW_OK);
	assert_int_equal(envelope("01"), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	assert_int_equal(w_hex(HOST, 0x6C, 0, "00003001 00000001"), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(w_hex(HOST, 0x6C, 0, "00003001 6553F200"), SW_OK);
	R.now = 0x6553F201;
	assert_int_equal(envelope("01"), SW_CONDITIONS_NOT_SATISFIED);
	R.now = RIG_NOW;
	assert_int_equal(w_hex(HOST, 0x6C, 9, ""), SW_INCORRECT_P1P2);
}

static void test_relay_permit(void **state)
{
	struct se_event ev;

	(void)state;
	both_open();
	/* The phone cannot arm without the server's permit. */
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(w_hex(HOST, 0x6C, 2, "00003002"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	assert_int_equal(w_hex(HOST, 0x6C, 1, "00003002 6553F200"), SW_OK);
	assert_int_equal(R.se.img.permit, 1);
	/* The server's session cannot use the phone's path. */
	assert_int_equal(w_hex(HOST, 0x6C, 2, "00003002"), SW_SECURITY_STATUS);
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	snap();
	assert_int_equal(w_hex(HOST, 0x6C, 2, "00003003"), SW_WRONG_DATA);
	assert_int_equal(w_hex(HOST, 0x6C, 2, "000030"), SW_WRONG_LENGTH);
	R.now = 0x6553F201;
	assert_int_equal(w_hex(HOST, 0x6C, 2, "00003002"), SW_CONDITIONS_NOT_SATISFIED);
	R.now = RIG_NOW;
	assert_unchanged();
	assert_int_equal(w_hex(HOST, 0x6C, 2, "00003002"), SW_OK);
	assert_int_equal(R.se.img.permit, 0);
	assert_int_equal(w_hex(HOST, 0x6C, 2, "00003002"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_select_wallet(CL), SW_OK); /* no reader session this time */
	assert_int_equal(envelope("C0FFEE"), 0);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.service, 0x3002);
	/* GET DATA C1 shows the relay armed. */
	{
		struct wr w = wr_init(R.resp, sizeof(R.resp));

		assert_int_equal(se_relay_answer(&R.se, NULL, 0, &w), 0);
		assert_hex_equal(R.resp, w.len, "9000");
	}
	assert_int_equal(rig_raw_hex(HOST, "80CA00C100"), SW_OK);
	assert_hex_equal(R.resp, R.n, "C108 00 0000 01 00003002");
}

/* -------------------------------------------------------------------- lock --- */

static void test_lock(void **state)
{
	struct se_event ev;

	(void)state;
	both_open();
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(w_hex(HOST, 0x90, 0, "00"), SW_WRONG_LENGTH);
	assert_int_equal(w_cmd(HOST, 0x90, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.kind, SE_EV_LOCKED);
	snap();
	/* Everything but SELECT, GET DATA and the secure channel answers 6A81. */
	assert_int_equal(w_cmd(HOST, 0x30, 0, 0, NULL, 0), SE_SW_WALLET_LOCKED);
	assert_int_equal(w_cmd(HOST, 0x90, 0, 0, NULL, 0), SE_SW_WALLET_LOCKED);
	assert_int_equal(amount_cmd(CL, 0x34, 1), SE_SW_WALLET_LOCKED);
	assert_int_equal(w_cmd(CL, 0x10, 0, 0, NULL, 0), SE_SW_WALLET_LOCKED);
	assert_int_equal(envelope("01"), SE_SW_WALLET_LOCKED);
	assert_int_equal(rig_raw_hex(HOST, "80CA00C100"), SW_OK);
	assert_hex_equal(R.resp, R.n, "C108 01 0000 00 00000000");
	assert_int_equal(rig_raw_hex(HOST, "80CA004500"), SW_OK);
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(rig_open_reader(CL, 0x33), SW_OK);
	assert_int_equal(w_cmd(CL, 0x92, 0, 0, NULL, 0), SW_SECURITY_STATUS);
	rig_start();
	assert_int_equal(R.se.img.locked, 1);
	assert_unchanged();
	/* Only the server unlocks. */
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x92, 0, 0, NULL, 0), SW_SECURITY_STATUS);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	assert_int_equal(w_cmd(HOST, 0x92, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.kind, SE_EV_UNLOCKED);
	assert_int_equal(w_cmd(HOST, 0x92, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(se_next_event(&R.se, &ev), 0);
	assert_int_equal(w_cmd(HOST, 0x30, 0, 0, NULL, 0), SW_OK);
	/* The server may lock too. */
	assert_int_equal(w_cmd(HOST, 0x90, 0, 0, NULL, 0), SW_OK);
	assert_int_equal(R.se.img.locked, 1);
}

static void test_disable_and_events(void **state)
{
	struct se_event ev;

	(void)state;
	both_open();
	assert_int_equal(w_hex(HOST, 0x94, 0, "0005"), SW_OK);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.kind, SE_EV_DISABLE);
	assert_int_equal(ev.bitmap, 5);
	assert_int_equal(w_hex(HOST, 0x94, 0, "05"), SW_WRONG_LENGTH);
	assert_int_equal(w_hex(CL, 0x94, 0, "0001"), SW_SECURITY_STATUS);
	assert_int_equal(rig_raw_hex(CL, "80CA00C1"), SW_SECURITY_STATUS); /* plain inside a session */
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(rig_raw_hex(CL, "80CA00C1"), SW_OK);
	assert_hex_equal(R.resp, R.n, "C108 00 0005 00 00000000");
	/* A full queue drops the oldest and says how many. */
	for (unsigned i = 0; i < SE_EVENT_QUEUE + 3; i++)
		assert_int_equal(amount_cmd(HOST, 0x32, 1), SW_OK);
	assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.lost, 3);
	assert_int_equal(ev.counter, 4);
	for (unsigned i = 1; i < SE_EVENT_QUEUE; i++)
		assert_int_equal(se_next_event(&R.se, &ev), 1);
	assert_int_equal(ev.counter, SE_EVENT_QUEUE + 3);
	assert_int_equal(ev.lost, 0);
	assert_int_equal(se_next_event(&R.se, &ev), 0);
}

/* Every fixed-format command: each truncation and one extra byte answer 6700, a wrong
 * P2 6A86, and none of them changes the image. */
static void test_lengths_and_p1p2(void **state)
{
	static const struct {
		enum se_iface ifc;
		uint8_t ins, p1;
		size_t len;
	} cmds[] = {
		{ HOST, 0x30, 0, 0 },  { HOST, 0x32, 0, 4 },  { CL, 0x34, 0, 4 },
		{ HOST, 0x40, 0, 21 }, { HOST, 0x42, 0, 0 },  { CL, 0x44, 0, 8 },
		{ CL, 0x46, 0, 12 },   { HOST, 0x48, 0, 8 },  { HOST, 0x60, 0, 32 },
		{ HOST, 0x60, 1, 0 },  { HOST, 0x64, 0, 101 }, { CL, 0x66, 0, 0 },
		{ CL, 0x68, 0, 16 },   { HOST, 0x6C, 0, 8 },  { HOST, 0x6C, 1, 8 },
		{ HOST, 0x6C, 3, 0 },  { HOST, 0x90, 0, 0 },  { HOST, 0x92, 0, 0 },
		{ HOST, 0x94, 0, 2 },
	};
	uint8_t data[128];

	(void)state;
	both_open();
	memset(data, 0x01, sizeof(data));
	snap();
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		for (size_t k = 0; k < cmds[i].len; k++)
			assert_int_equal(w_cmd(cmds[i].ifc, cmds[i].ins, cmds[i].p1, 0, data, k),
					 SW_WRONG_LENGTH);
		assert_int_equal(w_cmd(cmds[i].ifc, cmds[i].ins, cmds[i].p1, 0, data, cmds[i].len + 1),
				 SW_WRONG_LENGTH);
		assert_int_equal(w_cmd(cmds[i].ifc, cmds[i].ins, cmds[i].p1, 1, data, cmds[i].len),
				 SW_INCORRECT_P1P2);
	}
	assert_int_equal(w_cmd(HOST, 0x62, 0, 1, data, 16), SW_INCORRECT_P1P2);
	assert_int_equal(w_cmd(HOST, 0x60, 7, 0, data, 32), SW_INCORRECT_P1P2);
	assert_unchanged();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_access_rules),
		cmocka_unit_test(test_purse),
		cmocka_unit_test(test_purse_needs_server_set),
		cmocka_unit_test(test_tickets),
		cmocka_unit_test(test_pauth),
		cmocka_unit_test(test_flag),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_relay_permit),
		cmocka_unit_test(test_lock),
		cmocka_unit_test(test_disable_and_events),
		cmocka_unit_test(test_lengths_and_p1p2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
