/* test_server_e2e.c - the whole stack as processes: sam, se behind its IC_I/F link, and
 * `tapbridge server`; a scripted phone opens a pinned TLS session, says HELLO, selects
 * the top-up service, carries the server's SCP03 level-33 session to its se, and is told
 * "topped up 500" only once the ledger holds the receipt; the balance is then read back
 * from the se itself and from the ledger. */
#include "lib/crypto.h"
#include "srv_rig.h"

static struct srv_rig g_rig;

static int setup(void **state)
{
	(void)state;
	rig_setup(&g_rig, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

static void ledger_check(const uint8_t serial[8], int64_t want, uint32_t counter)
{
	struct db *db = NULL;
	struct db_audit au;
	struct db_transfer t;
	struct db_applied ap;
	char key[DB_KEY_MAX];
	int64_t bal = -1;

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(ledger_balance(db, serial, &bal), 0);
	assert_int_equal(bal, want);
	assert_int_equal(ledger_key_se(serial, counter, key), 0);
	assert_int_equal(db->ops->transfer_get(db, key, &t, &ap), 0);
	assert_int_equal(t.amount, RIG_TOPUP);
	assert_int_equal(db->ops->ledger_audit(db, &au), 0);
	assert_int_equal(au.postings_sum, 0);
	assert_int_equal(au.unbalanced_transfers, 0);
	assert_int_equal(au.balance_mismatches, 0);
	db_close(db);
}

static void test_topup(void **state)
{
	struct proto_menu menu;
	struct phone p;
	int64_t t0, us;

	(void)state;
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[0].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[0].serial, &menu), 1);
	assert_int_equal(menu.n, 3);
	assert_int_equal(menu.items[0].id, RIG_SVC_TOPUP);
	assert_int_equal(menu.items[0].kind, DB_SVC_EMONEY);
	assert_int_equal(menu.items[0].state, PROTO_SVC_OFFERED);
	assert_int_equal(menu.items[1].kind, DB_SVC_TICKET);

	t0 = sp_now_us();
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	us = sp_now_us() - t0;
	assert_string_equal(p.notice, "topped up 500, balance 500");
	/* SELECT wallet, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, CREDIT */
	assert_int_equal(p.apdus, 4);
	print_message("top-up through phone, server, sam and se: %lld us\n", (long long)us);
	ledger_check(g_rig.se[0].serial, 500, 1);

	/* A second one in the same session. */
	t0 = sp_now_us();
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	us = sp_now_us() - t0;
	assert_string_equal(p.notice, "topped up 500, balance 1000");
	print_message("second top-up: %lld us\n", (long long)us);
	ledger_check(g_rig.se[0].serial, 1000, 2);

	/* The history: two top-ups, newest first. */
	{
		struct proto_msg q = { .type = PROTO_HISTORY_REQ }, h;

		q.u.history_req.before = 0;
		q.u.history_req.max = 1;
		assert_int_equal(phone_send(&p, &q), 0);
		assert_int_equal(phone_recv(&p), 1);
		assert_int_equal(p.type, PROTO_HISTORY);
		assert_int_equal(proto_decode(p.type, p.buf, p.n, &h), 0);
		assert_int_equal(h.u.history.n, 1);
		assert_int_equal(h.u.history.more, 1);
		assert_int_equal(h.u.history.recs[0].kind, DB_EV_TOPUP);
		assert_int_equal(h.u.history.recs[0].amount, RIG_TOPUP);
		q.u.history_req.before = h.u.history.recs[0].id;
		q.u.history_req.max = 32;
		assert_int_equal(phone_send(&p, &q), 0);
		assert_int_equal(phone_recv(&p), 1);
		assert_int_equal(proto_decode(p.type, p.buf, p.n, &h), 0);
		assert_int_equal(h.u.history.n, 1);
		assert_int_equal(h.u.history.more, 0);
	}
	/* The se's own balance: the purse is the source of truth. */
	assert_int_equal(rig_se_balance(&p), 1000);
	assert_int_equal(phone_select(&p, 77), PROTO_NOTICE);
	assert_string_equal(p.notice, "no such service");
	phone_close(&p);
}

/* The se's ticket records (LIST, plain through the phone's link after a reset); their
 * count, or -1. */
static int se_tickets(struct phone *p, uint8_t recs[8][21])
{
	static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 0x54, 0x41, 0x50, 0x42,
				       0x52, 0x49, 0x44, 0x47, 0x45, 0x01, 0x00 };
	static const uint8_t list[] = { 0x80, 0x42, 0x00, 0x00, 0x00 };
	uint8_t reset = 0x02, resp[256];
	size_t rn = 0;

	if (phone_link(p, SE_LINK_T_POWER, &reset, 1, NULL, 0, NULL) != 0 ||
	    phone_link(p, SE_LINK_T_APDU, sel, sizeof(sel), resp, sizeof(resp), &rn) != 0 ||
	    rn < 2 || resp[rn - 2] != 0x90 ||
	    phone_link(p, SE_LINK_T_APDU, list, sizeof(list), resp, sizeof(resp), &rn) != 0 ||
	    rn < 2 || resp[rn - 2] != 0x90 || (rn - 2) % 21 != 0 || (rn - 2) / 21 > 8)
		return -1;
	memcpy(recs, resp, rn - 2);
	return (int)((rn - 2) / 21);
}

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Ticket issuance: the db row first, then TICKET STORE through the server's level-33
 * channel, then "ticket N issued"; the se lists the record the db holds. */
static void test_ticket(void **state)
{
	struct proto_menu menu;
	struct phone p;
	struct db *db = NULL;
	struct db_ticket t;
	uint8_t recs[8][21];
	unsigned long long id = 0;
	int64_t t0 = (int64_t)time(NULL), us;
	uint64_t rid;

	(void)state;
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[0].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[0].serial, &menu), 1);
	assert_int_equal(se_tickets(&p, recs), 0);
	us = sp_now_us();
	assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
	us = sp_now_us() - us;
	assert_int_equal(sscanf(p.notice, "ticket %llu issued", &id), 1);
	assert_true(id > 0);
	assert_int_equal(p.apdus, 4);
	print_message("ticket issued through phone, server, sam and se: %lld us\n", (long long)us);

	assert_int_equal(se_tickets(&p, recs), 1);
	rid = (uint64_t)be32(recs[0]) << 32 | be32(recs[0] + 4);
	assert_int_equal(rid, id);
	assert_int_equal(be32(recs[0] + 8), RIG_SVC_TICKET);
	assert_true((int64_t)be32(recs[0] + 12) >= t0 - 1);
	assert_int_equal(be32(recs[0] + 16), be32(recs[0] + 12) + 86400 - 1);
	assert_int_equal(recs[0][20], 1);

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(db->ops->ticket_get(db, id, &t), 0);
	assert_memory_equal(t.se, g_rig.se[0].serial, 8);
	assert_int_equal(t.service, RIG_SVC_TICKET);
	assert_int_equal(t.uses_left, 1);
	assert_int_equal(t.state, DB_TICKET_VALID);
	assert_int_equal(t.valid_from, (int64_t)be32(recs[0] + 12));
	db_close(db);

	/* More: another id each, all in the se, until its 8 slots are full. */
	for (int k = 2; k <= 8; k++) {
		assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
		assert_int_equal(strncmp(p.notice, "ticket ", 7), 0);
		assert_int_equal(se_tickets(&p, recs), k);
	}
	/* The ninth: the se has no slot (6A84); the row committed before is revoked before
	 * the phone hears it, and the session goes on. */
	assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
	assert_string_equal(p.notice, "ticket refused by the se (6A84)");
	assert_int_equal(se_tickets(&p, recs), 8);
	{
		struct db_ticket all[16];
		size_t n = 0, valid = 0, revoked = 0;

		assert_int_equal(db_open(g_rig.db_url, &db), 0);
		assert_int_equal(db->ops->tickets_of_se(db, g_rig.se[0].serial, 0, all, 16, &n), 0);
		assert_int_equal(n, 9);
		for (size_t k = 0; k < n; k++) {
			valid += all[k].state == DB_TICKET_VALID;
			revoked += all[k].state == DB_TICKET_REVOKED;
		}
		assert_int_equal(valid, 8);
		assert_int_equal(revoked, 1);
		assert_int_equal(all[8].state, DB_TICKET_REVOKED);
		db_close(db);
	}
	assert_int_equal(phone_select(&p, 77), PROTO_NOTICE);
	assert_string_equal(p.notice, "no such service");
	phone_close(&p);
}

/* A sam call that must succeed; the reply's length. */
static size_t sam_ok(struct sam_sync *sam, uint8_t type, const uint8_t *body, size_t n,
		     uint8_t *reply, size_t cap)
{
	size_t rn = 0;

	assert_int_equal(sam_sync_call(sam, type, body, n, reply, cap, &rn), 0);
	return rn;
}

/* A reader's check over the se's contactless link: SELECT wallet, a SE_READER channel at
 * level 33 (the sam plays the reader's host side with the reader key set the rig wrote),
 * FLAG GET (80 66) in it. The token and signature in out (101 bytes); the status word. */
static uint16_t reader_flag_get(struct sam_sync *sam, int i, uint8_t out[101])
{
	static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 0x54, 0x41, 0x50, 0x42,
				       0x52, 0x49, 0x44, 0x47, 0x45, 0x01, 0x00 };
	static const uint8_t get[] = { 0x80, 0x66, 0x00, 0x00 };
	uint8_t body[SAM_APDU_MAX + 64], reply[SAM_APDU_MAX + 64], resp[SE_RESP_MAX];
	uint8_t ea_resp[64], ea[64], wrapped[64];
	size_t rn = 0, ern = 0, rl, ea_n, wr_n;
	char cl[PATH_MAX + 8];
	struct sam_open_reply o;
	struct sam_step_reply st;
	struct sam_unwrap_reply u;
	struct phone rd;
	struct wr w;
	uint32_t handle;

	phone_init(&rd);
	snprintf(cl, sizeof(cl), "%s.cl", g_rig.se[i].link);
	rd.link = sp_unix_connect(cl, 5000);
	assert_true(rd.link >= 0);
	assert_int_equal(phone_link(&rd, SE_LINK_T_APDU, sel, sizeof(sel), resp, sizeof(resp),
				    &rn), 0);
	assert_int_equal(resp[rn - 2], 0x90);

	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_open(&w, SAM_FAM_SE_READER, 0, g_rig.se[i].serial, 0x33, 8,
					  se_wallet_aid, SE_WALLET_AID_LEN), 0);
	rl = sam_ok(sam, SAM_SCP_OPEN, body, w.len, reply, sizeof(reply));
	assert_int_equal(sam_dec_scp_open(reply, rl, &o), 0);
	handle = o.handle;
	assert_int_equal(phone_link(&rd, SE_LINK_T_APDU, o.apdu, o.n, resp, sizeof(resp), &rn), 0);

	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, handle, resp, rn, get, sizeof(get)), 0);
	rl = sam_ok(sam, SAM_SCP_STEP, body, w.len, reply, sizeof(reply));
	assert_int_equal(sam_dec_scp_step(reply, rl, &st), 0);
	assert_non_null(st.ea);
	assert_non_null(st.wrapped);
	assert_true(st.ea_n <= sizeof(ea) && st.wrapped_n <= sizeof(wrapped));
	memcpy(ea, st.ea, st.ea_n);
	ea_n = st.ea_n;
	memcpy(wrapped, st.wrapped, st.wrapped_n);
	wr_n = st.wrapped_n;
	assert_int_equal(phone_link(&rd, SE_LINK_T_APDU, ea, ea_n, ea_resp, sizeof(ea_resp), &ern),
			 0);
	assert_int_equal(phone_link(&rd, SE_LINK_T_APDU, wrapped, wr_n, resp, sizeof(resp), &rn), 0);

	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, handle, ea_resp, ern, NULL, 0), 0);
	(void)sam_ok(sam, SAM_SCP_STEP, body, w.len, reply, sizeof(reply));
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, handle, resp, rn), 0);
	rl = sam_ok(sam, SAM_SCP_UNWRAP, body, w.len, reply, sizeof(reply));
	assert_int_equal(sam_dec_scp_unwrap(reply, rl, &u), 0);
	if (u.sw == 0x9000) {
		assert_true(u.authenticated);
		assert_int_equal(u.n, 101);
		memcpy(out, u.data, 101);
	}
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, handle, NULL, 0), 0);
	(void)sam_ok(sam, SAM_SCP_CLOSE, body, w.len, reply, sizeof(reply));
	phone_close(&rd);
	return u.sw;
}

/* Flow 3: SELECT of the personal-auth service sets the authenticity flag through the
 * server's channel; a reader reads it over contactless in its own channel and verifies
 * the sam's signature over "TBSG" || 01 || token with the sam's public key. */
static void test_flag(void **state)
{
	struct proto_menu menu;
	struct phone p;
	struct sam_sync sam;
	uint8_t flag[101], msg[5 + 37], reply[128], v0 = 0;
	long long until = 0;
	int64_t now = (int64_t)time(NULL);
	size_t rl;
	uint32_t expiry;

	(void)state;
	assert_int_equal(sam_sync_connect(&sam, g_rig.sam_sock), 0);
	/* No flag yet: the reader's channel works and says so. */
	assert_int_equal(reader_flag_get(&sam, 0, flag), 0x6A88);

	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[0].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[0].serial, &menu), 1);
	assert_int_equal(menu.items[2].kind, DB_SVC_PAUTH);
	assert_int_equal(phone_select(&p, RIG_SVC_PAUTH), PROTO_NOTICE);
	assert_int_equal(sscanf(p.notice, "flag set until %lld", &until), 1);
	assert_int_equal(p.apdus, 4);
	phone_close(&p);

	assert_int_equal(reader_flag_get(&sam, 0, flag), 0x9000);
	assert_int_equal(flag[0], 0x01);
	assert_memory_equal(flag + 1, g_rig.se[0].serial, 8);
	assert_int_equal(be32(flag + 9), RIG_SVC_PAUTH);
	expiry = be32(flag + 13);
	assert_int_equal((long long)expiry, until);
	assert_true((int64_t)expiry >= now + 299 && (int64_t)expiry <= now + 302);
	assert_int_equal(be32(flag + 33), RIG_OFFLINE);

	rl = sam_ok(&sam, SAM_GET_PUBLIC_KEY, &v0, 1, reply, sizeof(reply));
	assert_int_equal(rl, 1 + CRYPTO_P256_PUB_LEN);
	memcpy(msg, "TBSG\x01", 5);
	memcpy(msg + 5, flag, 37);
	assert_int_equal(crypto_ecdsa_verify(reply + 1, msg, sizeof(msg), flag + 37), 0);
	/* The signature covers the token: one changed byte and it no longer verifies, nor in
	 * the other domain. */
	msg[5 + 20] ^= 0x01;
	assert_int_equal(crypto_ecdsa_verify(reply + 1, msg, sizeof(msg), flag + 37),
			 TB_E_SIGNATURE);
	msg[5 + 20] ^= 0x01;
	msg[4] = 0x02;
	assert_int_equal(crypto_ecdsa_verify(reply + 1, msg, sizeof(msg), flag + 37),
			 TB_E_SIGNATURE);
	sam_sync_close(&sam);
}

static void test_unknown_se(void **state)
{
	static const uint8_t other[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct proto_menu menu;
	struct phone p;

	(void)state;
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, NULL, 10000), 0);
	assert_int_equal(phone_hello(&p, other, &menu), 0);
	assert_int_equal(p.err_code, PROTO_ERR_UNKNOWN_SE);
	phone_close(&p);
}

static void test_stop(void **state)
{
	(void)state;
	assert_int_equal(sp_stop(g_rig.server), 0);
	g_rig.server = -1;
	assert_true(rig_log_has(&g_rig, "srv event=stats batches="));
	assert_false(rig_log_has(&g_rig, "commit_failed=1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topup),
		cmocka_unit_test(test_ticket),
		cmocka_unit_test(test_flag),
		cmocka_unit_test(test_unknown_se),
		cmocka_unit_test(test_stop),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
