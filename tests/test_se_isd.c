/* test_se_isd.c - the se core's Issuer Security Domain: RAM budget, image start-up,
 * SELECT, GET DATA (00E0, 9F7F, 0045, 0066), GET STATUS, the SCP03 card role as GP hosts
 * use it (KVN in P1, i = 70, bare error SWs, no session after a failed EXTERNAL
 * AUTHENTICATE, data without Le, padding-only C-DEC), key set lockout, PUT KEY and the
 * personalisation entry points. */
#include "se_rig.h"

#include "crypto.h"
#include "se_int.h"

static uint16_t isd_open(enum se_iface ifc, uint8_t kvn, const struct scp_keys *k, uint8_t level)
{
	return rig_open_aid(ifc, kvn, k, level, se_isd_aid, SE_ISD_AID_LEN);
}

static void test_ram_budget(void **state)
{
	(void)state;
	print_message("sizeof(struct se) = %zu bytes (budget %d)\n", sizeof(struct se),
		      SE_RAM_BUDGET);
	assert_true(sizeof(struct se) < SE_RAM_BUDGET);
}

static void test_image_start(void **state)
{
	struct se se;

	(void)state;
	memset(&R, 0, sizeof(R));
	se_mem_init(&R.mem);
	assert_int_equal(se_init(&se, NULL, &R.mem.store), TB_E_SE_IMAGE);
	assert_int_equal(se_format(&R.mem.store, rig_serial), 0);
	assert_int_equal(se_init(&se, NULL, &R.mem.store), 0);
	assert_int_equal(se.img.personalised, 0);
	assert_int_equal(se.img.ks[0].kvn, SE_DEFAULT_KVN);
	assert_int_equal(se.img.lockout_limit, SE_DEFAULT_LOCKOUT);
	/* A record that does not decode makes the image unusable, not half-used. */
	R.mem.img[IMG_PG_PURSE][0] ^= 0xFF;
	assert_int_equal(se_init(&se, NULL, &R.mem.store), TB_E_SE_IMAGE);
	/* An all-bad command never reaches a failed se. */
	{
		uint8_t resp[SE_RESP_MAX];
		struct wr w = wr_init(resp, sizeof(resp));
		static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x45 };

		assert_int_equal(se_apdu(&se, SE_IF_HOST, cmd, sizeof(cmd), 0, &w), 0);
		assert_int_equal(w.len, 2);
		assert_int_equal(resp[0] << 8 | resp[1], SW_MEMORY_FAILURE);
	}
}

static void test_select(void **state)
{
	(void)state;
	rig_personalised();
	assert_int_equal(rig_select(SE_IF_HOST, se_isd_aid, SE_ISD_AID_LEN), SW_OK);
	assert_true(R.n > 2 && R.resp[0] == 0x6F);
	assert_int_equal(rig_select_wallet(SE_IF_HOST), SW_OK);
	assert_int_equal(R.se.ifs[SE_IF_HOST].app, SE_APP_WALLET);
	/* Unknown AID: 6A82 and the selection stays. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "00A4040005A00000000100"), SW_FILE_NOT_FOUND);
	assert_int_equal(R.se.ifs[SE_IF_HOST].app, SE_APP_WALLET);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "00A4040005A000"), SW_WRONG_LENGTH);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "00A4080008A000000151000000"), SW_INCORRECT_P1P2);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "00A4040400"), SW_INCORRECT_P1P2);
	/* No AID: the ISD; P2 0C: no FCI. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "00A4040000"), SW_OK);
	assert_int_equal(R.se.ifs[SE_IF_HOST].app, SE_APP_ISD);
	assert_int_equal(rig_raw_hex(SE_IF_CONTACTLESS, "00A4040C0BF0544150425249444745 01"), SW_OK);
	assert_int_equal(R.n, 0);
	assert_int_equal(R.se.ifs[SE_IF_CONTACTLESS].app, SE_APP_WALLET);
	/* Interfaces are separate. */
	assert_int_equal(R.se.ifs[SE_IF_HOST].app, SE_APP_ISD);
}

static void test_get_data(void **state)
{
	(void)state;
	rig_blank();
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA00E000"), SW_OK);
	assert_hex_equal(R.resp, R.n, "E012C00401FF8810C00402FF8810C00403FF8810");
	rig_personalised();
	/* No Le: the data comes all the same. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA00E0"), SW_OK);
	assert_hex_equal(R.resp, R.n,
			 "E024C00401018810C00402018810C00403018810"
			 "C00401028820C00402028820C00403028820");
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA9F7F00"), SW_OK);
	assert_int_equal(R.n, 3 + 42);
	assert_hex_equal(R.resp, 5, "9F7F2A5345");
	assert_hex_equal(R.resp + 3 + 12, 6, "000012340000");
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "00CA004500"), SW_OK);
	assert_hex_equal(R.resp, R.n, "45085345000000001234");
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA006600"), SW_OK);
	assert_true(R.n > 4 && R.resp[0] == 0x66 && R.resp[1] == R.n - 2 && R.resp[2] == 0x73);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA00FF00"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA00450100"), SW_WRONG_LENGTH);
	/* The same data answers on the wallet too. */
	assert_int_equal(rig_select_wallet(SE_IF_CONTACTLESS), SW_OK);
	assert_int_equal(rig_raw_hex(SE_IF_CONTACTLESS, "80CA004500"), SW_OK);
	assert_int_equal(R.n, 10);
}

static void test_command_coding(void **state)
{
	(void)state;
	rig_personalised();
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "81CA004500"), SW_LOGICAL_CHANNEL_NOT_SUPPORTED);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "A0CA004500"), SW_CLA_NOT_SUPPORTED);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80EE000000"), SW_INS_NOT_SUPPORTED);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA"), SW_WRONG_LENGTH);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA00450500"), SW_WRONG_LENGTH);
	/* A secure-messaging CLA without a session. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "84CA004500"), SW_SECURITY_STATUS);
	/* GET STATUS and PUT KEY need a session. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80F28002024F0000"), SW_SECURITY_STATUS);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80D8008100"), SW_SECURITY_STATUS);
	/* Too long for the se. */
	{
		uint8_t big[SE_CMD_MAX + 1];

		memset(big, 0x11, sizeof(big));
		big[0] = 0x80;
		big[1] = 0xCA;
		assert_int_equal(rig_raw(SE_IF_HOST, big, sizeof(big)), SW_WRONG_LENGTH);
	}
	/* Bad arguments and a small response buffer change nothing. */
	{
		uint8_t small[8];
		struct wr w = wr_init(small, sizeof(small));
		static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x45 };

		assert_int_equal(se_apdu(&R.se, SE_IF_HOST, cmd, sizeof(cmd), 0, &w), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
		assert_int_equal(se_apdu(&R.se, (enum se_iface)7, cmd, sizeof(cmd), 0, &w), TB_E_INVAL);
	}
}

static void test_init_update(void **state)
{
	uint32_t c0;

	(void)state;
	rig_personalised();
	c0 = R.se.img.ks[0].counter;
	/* KVN 00: the first available set (the server's, slot 0). */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500000080102030405060708 00"), SW_OK);
	assert_int_equal(R.n, 32);
	assert_hex_equal(R.resp, 13, "00005345000000001234 010370");
	assert_int_equal(R.se.img.ks[0].counter, c0 + 1);
	assert_int_equal(R.resp[29] << 16 | R.resp[30] << 8 | R.resp[31], c0 + 1);
	/* The counter went to the image before the answer left. */
	rig_start();
	assert_int_equal(R.se.img.ks[0].counter, c0 + 1);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500200080102030405060708 00"), SW_OK);
	assert_hex_equal(R.resp + 10, 3, "020370");
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500500080102030405060708 00"),
			 SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500001080102030405060708 00"), SW_INCORRECT_P1P2);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "805000001001020304050607080102030405060708 00"),
			 SW_WRONG_LENGTH);
	/* The default set is gone after personalisation. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "8050FF00080102030405060708 00"),
			 SW_REF_DATA_NOT_FOUND);
}

static void test_channel_levels(void **state)
{
	static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
	struct scp_keys k;

	(void)state;
	rig_personalised();
	rig_server_keys(&k);
	for (size_t i = 0; i < sizeof(levels); i++) {
		assert_int_equal(isd_open(SE_IF_HOST, RIG_SERVER_KVN, &k, levels[i]), SW_OK);
		assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002024F0000"), SW_OK);
		assert_hex_equal(R.resp, R.n, "E313 4F08A000000151000000 9F70010F C5039EFE80");
		assert_int_equal(R.authenticated, (levels[i] & SCP_LEVEL_RMAC) != 0);
		/* An error SW travels bare and leaves the session up. */
		assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80CA00FF00"), SW_REF_DATA_NOT_FOUND);
		assert_int_equal(R.n, 0);
		assert_int_equal(R.authenticated, 0);
		assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80CA0045"), SW_OK);
		assert_int_equal(R.n, 10);
	}
	/* At 01 and up a plain command aborts the session. */
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA004500"), SW_SECURITY_STATUS);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA004500"), SW_SECURITY_STATUS);
	/* A new SELECT ends it too: plain commands work again. */
	assert_int_equal(rig_select(SE_IF_HOST, se_isd_aid, SE_ISD_AID_LEN), SW_OK);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80CA004500"), SW_OK);
}

static void test_power_ends_session(void **state)
{
	(void)state;
	rig_personalised();
	assert_int_equal(rig_select_wallet(SE_IF_CONTACTLESS), SW_OK);
	assert_int_equal(rig_open_reader(SE_IF_CONTACTLESS, 0x33), SW_OK);
	assert_int_equal(rig_cmd_hex(SE_IF_CONTACTLESS, "8030000000"), SW_OK);
	se_power(&R.se, SE_IF_CONTACTLESS, SE_POWER_OFF);
	assert_int_equal(R.se.ifs[SE_IF_CONTACTLESS].app, SE_APP_ISD);
	assert_int_equal(rig_cmd_hex(SE_IF_CONTACTLESS, "8030000000"), SW_SECURITY_STATUS);
}

/* The EXTERNAL AUTHENTICATE our host would send, with one byte changed. */
static uint16_t bad_auth(enum se_iface ifc, uint8_t kvn, const struct scp_keys *k, size_t flip)
{
	uint8_t challenge[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, out[64];
	struct scp_host_config hc;
	struct scp_host h;
	struct wr w = wr_init(out, sizeof(out));

	memset(&hc, 0, sizeof(hc));
	memset(&h, 0, sizeof(h));
	hc.keys = k;
	hc.host_challenge = challenge;
	hc.host_challenge_len = 8;
	hc.kvn = kvn;
	hc.level = 0x33;
	hc.mode = SCP_MODE_S8;
	assert_int_equal(scp_host_begin(&h, &hc, &w), 0);
	if (rig_raw(ifc, out, w.len) != SW_OK)
		return R.sw;
	w = wr_init(out, sizeof(out));
	assert_int_equal(scp_host_init_update(&h, R.resp, R.n + 2, &w), 0);
	out[flip] ^= 0x01;
	return rig_raw(ifc, out, w.len);
}

static void test_failed_auth_and_lockout(void **state)
{
	struct scp_keys k;

	(void)state;
	rig_personalised();
	assert_int_equal(se_configure(&R.mem.store, SE_DEFAULT_MAX_BALANCE, 3), 0);
	rig_start();
	rig_server_keys(&k);
	/* Wrong host cryptogram (byte 5) and wrong C-MAC (last byte): 6300, no session. */
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_SERVER_KVN, &k, 5), SW_AUTH_FAILED);
	assert_int_equal(R.se.img.ks[0].failures, 1);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "84CA004508000000000000000000"), SW_SECURITY_STATUS);
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_SERVER_KVN, &k, 20), SW_AUTH_FAILED);
	assert_int_equal(R.se.img.ks[0].failures, 2);
	/* A success clears the count (durably). */
	assert_int_equal(isd_open(SE_IF_HOST, RIG_SERVER_KVN, &k, 0x33), SW_OK);
	assert_int_equal(R.se.img.ks[0].failures, 0);
	rig_start();
	assert_int_equal(R.se.img.ks[0].failures, 0);
	/* Three in a row lock the set: the third answer says so. */
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_SERVER_KVN, &k, 5), SW_AUTH_FAILED);
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_SERVER_KVN, &k, 5), SW_AUTH_FAILED);
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_SERVER_KVN, &k, 5), SE_SW_KEYSET_LOCKED);
	assert_int_equal(R.se.img.ks[0].locked, 1);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500100080102030405060708 00"), SE_SW_KEYSET_LOCKED);
	/* Locked across a restart; KVN 00 now finds the reader's set; the reader's set works. */
	rig_start();
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500100080102030405060708 00"), SE_SW_KEYSET_LOCKED);
	assert_int_equal(rig_raw_hex(SE_IF_HOST, "80500000080102030405060708 00"), SW_OK);
	assert_hex_equal(R.resp + 10, 1, "02");
	assert_int_equal(rig_open_reader(SE_IF_CONTACTLESS, 0x33), 0x0001); /* ISD selected: AID differs */
	assert_int_equal(rig_select_wallet(SE_IF_CONTACTLESS), SW_OK);
	assert_int_equal(rig_open_reader(SE_IF_CONTACTLESS, 0x33), SW_OK);
	/* Replacing the set through personalisation unlocks it. */
	assert_int_equal(se_put_keyset(&R.mem.store, RIG_SERVER_KVN, SE_ROLE_SERVER, &k), 0);
	rig_start();
	assert_int_equal(R.se.img.ks[0].locked, 0);
	assert_int_equal(isd_open(SE_IF_HOST, RIG_SERVER_KVN, &k, 0x33), SW_OK);
}

static void test_default_lockout_limit(void **state)
{
	struct scp_keys k;

	(void)state;
	rig_personalised();
	rig_reader_keys(&k);
	for (unsigned i = 1; i < SE_DEFAULT_LOCKOUT; i++)
		assert_int_equal(bad_auth(SE_IF_CONTACTLESS, RIG_READER_KVN, &k, 5), SW_AUTH_FAILED);
	assert_int_equal(bad_auth(SE_IF_CONTACTLESS, RIG_READER_KVN, &k, 5), SE_SW_KEYSET_LOCKED);
	assert_int_equal(R.se.img.ks[1].failures, SE_DEFAULT_LOCKOUT);
}

/* A set locked from the host interface while a reader's handshake on contactless is
 * half done: the reader's EXTERNAL AUTHENTICATE (correct as it is) opens nothing. */
static void test_locked_during_handshake(void **state)
{
	uint8_t challenge[8] = { 1, 1, 2, 3, 5, 8, 13, 21 }, ea[64];
	struct scp_host_config hc;
	struct scp_host h;
	struct scp_keys k;
	struct wr w = wr_init(ea, sizeof(ea));

	(void)state;
	rig_personalised();
	assert_int_equal(se_configure(&R.mem.store, SE_DEFAULT_MAX_BALANCE, 2), 0);
	rig_start();
	rig_reader_keys(&k);
	memset(&hc, 0, sizeof(hc));
	memset(&h, 0, sizeof(h));
	hc.keys = &k;
	hc.host_challenge = challenge;
	hc.host_challenge_len = 8;
	hc.kvn = RIG_READER_KVN;
	hc.level = 0x33;
	hc.mode = SCP_MODE_S8;
	assert_int_equal(scp_host_begin(&h, &hc, &w), 0);
	assert_int_equal(rig_raw(SE_IF_CONTACTLESS, ea, w.len), SW_OK);
	w = wr_init(ea, sizeof(ea));
	assert_int_equal(scp_host_init_update(&h, R.resp, R.n + 2, &w), 0);
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_READER_KVN, &k, 5), SW_AUTH_FAILED);
	assert_int_equal(bad_auth(SE_IF_HOST, RIG_READER_KVN, &k, 5), SE_SW_KEYSET_LOCKED);
	assert_int_equal(rig_raw(SE_IF_CONTACTLESS, ea, w.len), SE_SW_KEYSET_LOCKED);
	assert_int_equal(rig_raw_hex(SE_IF_CONTACTLESS, "80CA004500"), SW_OK); /* no session */
}

/* A C-DEC command whose data field is padding alone is a command without data. */
static void test_padding_only_cdec(void **state)
{
	struct scp_host *h = &R.host[SE_IF_HOST];
	uint8_t cmd[64], icv[16], block[16], tag[16], next[16], plain[64];
	struct crypto_part parts[3];
	struct scp_resp info;
	struct wr pw = wr_init(plain, sizeof(plain));
	struct scp_keys k;
	unsigned carry = 1;

	(void)state;
	rig_personalised();
	rig_server_keys(&k);
	assert_int_equal(isd_open(SE_IF_HOST, RIG_SERVER_KVN, &k, 0x33), SW_OK);
	memcpy(next, h->s.counter, 16);
	for (size_t i = 16; i-- > 0;) {
		unsigned v = next[i] + carry;

		next[i] = (uint8_t)v;
		carry = v >> 8;
	}
	assert_int_equal(crypto_aes_ecb_encrypt(h->s.s_enc, h->s.keylen, next, icv), 0);
	memset(block, 0, sizeof(block));
	block[0] = 0x80;
	assert_int_equal(crypto_aes_cbc_encrypt(h->s.s_enc, h->s.keylen, icv, block, 16, block), 0);
	memcpy(cmd, "\x84\xCA\x00\x45\x18", 5);
	memcpy(cmd + 5, block, 16);
	parts[0] = (struct crypto_part){ h->s.chain, 16 };
	parts[1] = (struct crypto_part){ cmd, 5 };
	parts[2] = (struct crypto_part){ block, 16 };
	assert_int_equal(crypto_cmac_parts(h->s.s_mac, h->s.keylen, parts, 3, tag), 0);
	memcpy(cmd + 21, tag, 8);
	cmd[29] = 0x00;
	memcpy(h->s.chain, tag, 16);
	memcpy(h->s.counter, next, 16);
	h->response_due = 1;
	rig_raw(SE_IF_HOST, cmd, 30);
	assert_int_equal(scp_host_unwrap(h, R.resp, R.n + 2, &info, &pw), 0);
	assert_int_equal(info.sw, SW_OK);
	assert_int_equal(info.authenticated, 1);
	assert_hex_equal(plain, info.n, "45085345000000001234");
}

static void test_get_status(void **state)
{
	(void)state;
	rig_personalised();
	assert_int_equal(rig_open_server(SE_IF_HOST, 0x33), 0x0001); /* ISD selected */
	{
		struct scp_keys k;

		rig_reader_keys(&k);
		assert_int_equal(isd_open(SE_IF_HOST, RIG_READER_KVN, &k, 0x33), SW_OK);
	}
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F24002024F0000"), SW_OK);
	assert_hex_equal(R.resp, R.n, "E316 4F0BF0544150425249444745 01 9F700107 C503000000");
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002024F00"), SW_OK);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28003024F00"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002054F03A0000000"), SW_OK);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002054F03B0000000"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002094F005C054F9F70C500"), SW_OK);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F22002024F0000"), SW_REF_DATA_NOT_FOUND);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F20102024F0000"), SW_INCORRECT_P1P2);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28000024F0000"), SW_INCORRECT_P1P2);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F2800200"), SW_WRONG_DATA);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002024F0500"), SW_WRONG_DATA);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F28002034F000100"), SW_WRONG_DATA);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "00F28002024F0000"), SW_CLA_NOT_SUPPORTED);
	/* A locked wallet shows as LOCKED. */
	R.se.img.locked = 1;
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "80F24002024F0000"), SW_OK);
	assert_int_equal(R.resp[2 + 13 + 3], 0x83);
}

/* ------------------------------------------------------------------ PUT KEY --- */

/* 88 L clear ciphertext 03 KCV for one AES key under dek. */
static size_t key_field(uint8_t *p, const uint8_t *key, size_t len, const struct scp_keys *kek)
{
	static const uint8_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	uint8_t iv[16] = { 0 }, pad[32] = { 0 }, kcv[16];
	size_t ctlen = len == 16 ? 16 : 32;

	memcpy(pad, key, len);
	p[0] = 0x88;
	p[1] = (uint8_t)(1 + ctlen);
	p[2] = (uint8_t)len;
	assert_int_equal(crypto_aes_cbc_encrypt(kek->dek, kek->len, iv, pad, ctlen, p + 3), 0);
	assert_int_equal(crypto_aes_ecb_encrypt(key, len, ones, kcv), 0);
	p[3 + ctlen] = 0x03;
	memcpy(p + 4 + ctlen, kcv, 3);
	return 7 + ctlen;
}

static size_t put_key_cmd(uint8_t *cmd, uint8_t p1, uint8_t kvn, const struct scp_keys *nk,
			  const struct scp_keys *kek)
{
	size_t n = 6;

	cmd[0] = 0x80;
	cmd[1] = 0xD8;
	cmd[2] = p1;
	cmd[3] = 0x81;
	cmd[5] = kvn;
	n += key_field(cmd + n, nk->enc, nk->len, kek);
	n += key_field(cmd + n, nk->mac, nk->len, kek);
	n += key_field(cmd + n, nk->dek, nk->len, kek);
	cmd[4] = (uint8_t)(n - 5);
	cmd[n++] = 0x00;
	return n;
}

static void test_put_key(void **state)
{
	struct scp_keys def, srv, rdr, rdr2;
	uint8_t cmd[256];
	size_t n;

	(void)state;
	rig_blank();
	rig_default_keys(&def);
	rig_keys(&srv, 16, 0x50);
	rig_keys(&rdr, 24, 0x60);
	rig_keys(&rdr2, 32, 0x70);
	assert_int_equal(isd_open(SE_IF_HOST, SE_DEFAULT_KVN, &def, 0x33), SW_OK);
	/* A wrong KCV: 6A80, nothing changes. */
	n = put_key_cmd(cmd, 0x00, 0x30, &srv, &def);
	cmd[n - 2] ^= 1;
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_WRONG_DATA);
	assert_int_equal(R.se.img.personalised, 0);
	/* The default session adds the server's set: personalised, default gone. */
	n = put_key_cmd(cmd, 0x00, 0x30, &srv, &def);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_OK);
	assert_int_equal(R.n, 10);
	assert_int_equal(R.resp[0], 0x30);
	assert_int_equal(R.se.img.personalised, 1);
	assert_int_equal(img_keyset_find(&R.se.img, SE_DEFAULT_KVN), -1);
	assert_int_equal(R.se.img.ks[img_keyset_find(&R.se.img, 0x30)].role, SE_ROLE_SERVER);
	/* That session's own set is gone: no more PUT KEY through it. */
	n = put_key_cmd(cmd, 0x00, 0x31, &rdr, &def);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_SECURITY_STATUS);
	assert_int_equal(isd_open(SE_IF_HOST, SE_DEFAULT_KVN, &def, 0x33), SW_REF_DATA_NOT_FOUND);
	/* The server adds a reader set, and replaces it. */
	assert_int_equal(isd_open(SE_IF_HOST, 0x30, &srv, 0x33), SW_OK);
	n = put_key_cmd(cmd, 0x00, 0x31, &rdr, &srv);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_OK);
	assert_int_equal(R.se.img.ks[img_keyset_find(&R.se.img, 0x31)].role, SE_ROLE_READER);
	n = put_key_cmd(cmd, 0x00, 0x31, &rdr, &srv);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SE_SW_EXISTS);
	n = put_key_cmd(cmd, 0x31, 0x32, &rdr2, &srv);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_OK);
	assert_int_equal(img_keyset_find(&R.se.img, 0x31), -1);
	assert_int_equal(R.se.img.ks[img_keyset_find(&R.se.img, 0x32)].keylen, 32);
	n = put_key_cmd(cmd, 0x44, 0x33, &rdr2, &srv);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_REF_DATA_NOT_FOUND);
	n = put_key_cmd(cmd, 0x00, 0xFF, &rdr2, &srv);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_WRONG_DATA);
	n = put_key_cmd(cmd, 0x00, 0x40, &rdr2, &srv);
	cmd[4]--;
	cmd[n - 2] = 0x00;
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n - 1), SW_WRONG_LENGTH);
	/* The new reader set opens a channel; the reader cannot PUT KEY. */
	rig_start();
	assert_int_equal(isd_open(SE_IF_CONTACTLESS, 0x32, &rdr2, 0x33), SW_OK);
	n = put_key_cmd(cmd, 0x00, 0x41, &rdr, &rdr2);
	assert_int_equal(rig_cmd(SE_IF_CONTACTLESS, cmd, n), SW_SECURITY_STATUS);
	/* Level 00 (no C-MAC) may not carry keys. */
	assert_int_equal(isd_open(SE_IF_HOST, 0x30, &srv, 0x00), SW_OK);
	n = put_key_cmd(cmd, 0x00, 0x41, &rdr, &srv);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, n), SW_SECURITY_STATUS);
}

static void test_personalisation_api(void **state)
{
	struct scp_keys k;

	(void)state;
	rig_blank();
	rig_reader_keys(&k);
	assert_int_equal(se_put_keyset(&R.mem.store, 0x00, SE_ROLE_READER, &k), TB_E_INVAL);
	assert_int_equal(se_put_keyset(&R.mem.store, 0xFF, SE_ROLE_READER, &k), TB_E_INVAL);
	assert_int_equal(se_put_keyset(&R.mem.store, 0x05, SE_ROLE_DEFAULT, &k), TB_E_INVAL);
	k.len = 20;
	assert_int_equal(se_put_keyset(&R.mem.store, 0x05, SE_ROLE_READER, &k), TB_E_KEYLEN);
	rig_reader_keys(&k);
	for (uint8_t kvn = 1; kvn <= SE_KEYSET_MAX; kvn++)
		assert_int_equal(se_put_keyset(&R.mem.store, kvn, SE_ROLE_READER, &k), 0);
	assert_int_equal(se_put_keyset(&R.mem.store, 9, SE_ROLE_READER, &k), TB_E_SE_FULL);
	assert_int_equal(se_put_keyset(&R.mem.store, 2, SE_ROLE_SERVER, &k), 0);
	rig_start();
	assert_int_equal(R.se.img.personalised, 1);
	assert_int_equal(R.se.img.ks[img_keyset_find(&R.se.img, 2)].role, SE_ROLE_SERVER);
	assert_int_equal(se_configure(&R.mem.store, 5000, 0), TB_E_INVAL);
	assert_int_equal(se_configure(&R.mem.store, 5000, 4), 0);
	rig_start();
	assert_int_equal(R.se.img.max_balance, 5000);
	assert_int_equal(R.se.img.lockout_limit, 4);
	assert_int_equal(se_format(NULL, rig_serial), TB_E_INVAL);
}

static void test_sw_table(void **state)
{
	(void)state;
	assert_int_equal(se_sw(0), SW_OK);
	assert_int_equal(se_sw(TB_E_TRUNC), SW_WRONG_LENGTH);
	assert_int_equal(se_sw(TB_E_INVAL), SW_WRONG_DATA);
	assert_int_equal(se_sw(TB_E_SE_SECURITY), SW_SECURITY_STATUS);
	assert_int_equal(se_sw(TB_E_SE_STATE), SW_CONDITIONS_NOT_SATISFIED);
	assert_int_equal(se_sw(TB_E_SE_INS), SW_INS_NOT_SUPPORTED);
	assert_int_equal(se_sw(TB_E_SCP_LOCKED), SE_SW_KEYSET_LOCKED);
	assert_int_equal(se_sw(TB_E_SE_LOCKED), SE_SW_WALLET_LOCKED);
	assert_int_equal(se_sw(TB_E_STORE), SW_MEMORY_FAILURE);
	assert_int_equal(se_sw(-12345), SW_UNKNOWN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ram_budget),
		cmocka_unit_test(test_image_start),
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_get_data),
		cmocka_unit_test(test_command_coding),
		cmocka_unit_test(test_init_update),
		cmocka_unit_test(test_channel_levels),
		cmocka_unit_test(test_power_ends_session),
		cmocka_unit_test(test_failed_auth_and_lockout),
		cmocka_unit_test(test_default_lockout_limit),
		cmocka_unit_test(test_locked_during_handshake),
		cmocka_unit_test(test_padding_only_cdec),
		cmocka_unit_test(test_get_status),
		cmocka_unit_test(test_put_key),
		cmocka_unit_test(test_personalisation_api),
		cmocka_unit_test(test_sw_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
