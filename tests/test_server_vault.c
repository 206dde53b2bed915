/* test_server_vault.c - the server's memory control as processes (sam, two ses behind
 * their IC_I/F links, `tapbridge server`): se 0 tops up and gets two tickets, backs itself
 * up (SELECT op 3); a restore before any replacement is refused; `admin se-replace`
 * declares it lost and se 1 its replacement; se 1 restores (op 4): its own purse holds the
 * moved balance, its ticket list the re-issued tickets, the db agrees, and a second
 * restore credits nothing; se 0 is blocked at HELLO. Then personal authentication: `admin
 * pauth-set`, the se's key registered before the flag (vault slot 2), and a reader's
 * proof from the se checked against the key the sam opens from the vault. */
#include "lib/crypto.h"
#include "lib/rmsg.h"
#include "server/svc.h"
#include "srv_rig.h"

static struct srv_rig g_rig;

static const uint8_t wallet_sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 0x54, 0x41, 0x50,
				      0x42, 0x52, 0x49, 0x44, 0x47, 0x45, 0x01, 0x00 };

static int setup(void **state)
{
	(void)state;
	rig_setup(&g_rig, 2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

static void hex16(const uint8_t serial[8], char out[17])
{
	assert_int_equal(hex_encode(serial, 8, HEX_PUBLIC, out, 17), 0);
}

/* SELECT service with an op byte, then the pump. */
static int select_op(struct phone *p, uint32_t service, uint8_t op)
{
	struct proto_msg m = { .type = PROTO_SELECT };

	m.u.select.service = service;
	m.u.select.op = op;
	m.u.select.has_op = 1;
	if (phone_send(p, &m) != 0)
		return -1;
	return phone_pump(p);
}

static void hello(struct phone *p, int i, struct proto_menu *menu)
{
	assert_int_equal(phone_open(p, g_rig.tc, g_rig.port, g_rig.se[i].link, 10000), 0);
	assert_int_equal(phone_hello(p, g_rig.se[i].serial, menu), 1);
}

/* The se's ticket records (plain TICKET LIST after a reset of the host interface). */
static int se_tickets(struct phone *p, uint8_t recs[8][21])
{
	static const uint8_t list[] = { 0x80, 0x42, 0x00, 0x00, 0x00 };
	uint8_t reset = 0x02, resp[256];
	size_t rn = 0;

	if (phone_link(p, SE_LINK_T_POWER, &reset, 1, NULL, 0, NULL) != 0 ||
	    phone_link(p, SE_LINK_T_APDU, wallet_sel, sizeof(wallet_sel), resp, sizeof(resp),
		       &rn) != 0 ||
	    phone_link(p, SE_LINK_T_APDU, list, sizeof(list), resp, sizeof(resp), &rn) != 0 ||
	    rn < 2 || resp[rn - 2] != 0x90 || (rn - 2) % 21 != 0)
		return -1;
	memcpy(recs, resp, rn - 2);
	return (int)((rn - 2) / 21);
}

static uint64_t be64(const uint8_t *b)
{
	uint64_t x = 0;

	for (int i = 0; i < 8; i++)
		x = x << 8 | b[i];
	return x;
}

static void admin(char **argv)
{
	char log[PATH_MAX];

	rig_path(&g_rig, log, "admin.log");
	assert_int_equal(sp_run(argv, log), 0);
}

static void test_backup_restore(void **state)
{
	struct proto_menu menu;
	struct phone p;
	struct db *db = NULL;
	struct db_ticket t[16];
	struct db_audit au;
	uint8_t recs[8][21];
	uint64_t old_ids[2];
	char old_hex[17], new_hex[17];
	int64_t bal = -1;
	size_t n = 0;

	(void)state;
	hello(&p, 0, &menu);
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	assert_string_equal(p.notice, "topped up 500, balance 500");
	assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
	assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
	assert_int_equal(strncmp(p.notice, "ticket ", 7), 0);
	p.apdus = 0;
	assert_int_equal(select_op(&p, RIG_SVC_TOPUP, PROTO_OP_BACKUP), PROTO_NOTICE);
	assert_string_equal(p.notice, "backup stored (balance 500, 2 tickets)");
	/* SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE + GET BALANCE, TICKET LIST */
	assert_int_equal(p.apdus, 5);
	assert_int_equal(se_tickets(&p, recs), 2);
	old_ids[0] = be64(recs[0]);
	old_ids[1] = be64(recs[1]);
	phone_close(&p);

	/* se 1 replaces nothing yet */
	hello(&p, 1, &menu);
	assert_int_equal(select_op(&p, RIG_SVC_TOPUP, PROTO_OP_RESTORE), PROTO_NOTICE);
	assert_string_equal(p.notice, "restore refused (this se replaces no lost se)");
	phone_close(&p);

	hex16(g_rig.se[0].serial, old_hex);
	hex16(g_rig.se[1].serial, new_hex);
	{
		char *argv[] = { g_rig.bin, "admin", "se-replace", "--dir", g_rig.dir, "--old",
				 old_hex, "--new", new_hex, NULL };

		admin(argv);
	}

	hello(&p, 1, &menu);
	assert_int_equal(menu.items[0].state, PROTO_SVC_OFFERED);
	assert_int_equal(select_op(&p, RIG_SVC_TOPUP, PROTO_OP_RESTORE), PROTO_NOTICE);
	assert_string_equal(p.notice, "restored: balance 500, 2 tickets");
	/* twice: nothing credited again */
	assert_int_equal(select_op(&p, RIG_SVC_TOPUP, PROTO_OP_RESTORE), PROTO_NOTICE);
	assert_string_equal(p.notice, "restored already");
	assert_int_equal(rig_se_balance(&p), 500);
	assert_int_equal(se_tickets(&p, recs), 2);
	phone_close(&p);

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(db->ops->tickets_of_se(db, g_rig.se[1].serial, 0, t, 16, &n), 0);
	assert_int_equal(n, 2);
	for (size_t k = 0; k < n; k++) {
		assert_int_equal(t[k].state, DB_TICKET_VALID);
		assert_int_equal(t[k].service, RIG_SVC_TICKET);
		assert_true(be64(recs[0]) == t[k].id || be64(recs[1]) == t[k].id);
	}
	for (size_t k = 0; k < 2; k++) {
		assert_int_equal(db->ops->ticket_get(db, old_ids[k], &t[0]), 0);
		assert_int_equal(t[0].state, DB_TICKET_REVOKED);
	}
	assert_int_equal(ledger_balance(db, g_rig.se[1].serial, &bal), 0);
	assert_int_equal(bal, 500);
	assert_int_equal(ledger_balance(db, g_rig.se[0].serial, &bal), 0);
	assert_int_equal(bal, 0);
	assert_int_equal(db->ops->ledger_audit(db, &au), 0);
	assert_int_equal(au.postings_sum, 0);
	assert_int_equal(au.balance_mismatches, 0);
	db_close(db);

	/* the lost se: every service blocked, its backup refused */
	hello(&p, 0, &menu);
	for (size_t k = 0; k < menu.n; k++)
		assert_int_equal(menu.items[k].state, PROTO_SVC_BLOCKED);
	assert_int_equal(select_op(&p, RIG_SVC_TOPUP, PROTO_OP_BACKUP), PROTO_NOTICE);
	assert_string_equal(p.notice, "backup refused (se reported lost)");
	phone_close(&p);

	/* a top-up on the new se reconciles nothing: the ledger agrees with its purse */
	hello(&p, 1, &menu);
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	assert_string_equal(p.notice, "topped up 500, balance 1000");
	phone_close(&p);
	assert_false(rig_log_has(&g_rig, "event=reconciled"));
}

/* A sam call that must succeed; the reply's length. */
static size_t sam_ok(struct sam_sync *sam, uint8_t type, const uint8_t *body, size_t n,
		     uint8_t *reply, size_t cap)
{
	size_t rn = 0;

	assert_int_equal(sam_sync_call(sam, type, body, n, reply, cap, &rn), 0);
	return rn;
}

/* A reader's command over the se's contactless link in a SE_READER level-33 channel (the
 * sam plays the reader's host side): the plain response data in out, its length. */
static size_t reader_cmd(struct sam_sync *sam, int i, const uint8_t *cmd, size_t cn,
			 uint8_t *out, size_t cap)
{
	uint8_t body[SAM_APDU_MAX + 64], reply[SAM_APDU_MAX + 64], resp[SE_RESP_MAX];
	uint8_t ea_resp[64], ea[64], wrapped[128];
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
	assert_int_equal(phone_link(&rd, SE_LINK_T_APDU, wallet_sel, sizeof(wallet_sel), resp,
				    sizeof(resp), &rn), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_open(&w, SAM_FAM_SE_READER, 0, g_rig.se[i].serial, 0x33, 8,
					  se_wallet_aid, SE_WALLET_AID_LEN), 0);
	rl = sam_ok(sam, SAM_SCP_OPEN, body, w.len, reply, sizeof(reply));
	assert_int_equal(sam_dec_scp_open(reply, rl, &o), 0);
	handle = o.handle;
	assert_int_equal(phone_link(&rd, SE_LINK_T_APDU, o.apdu, o.n, resp, sizeof(resp), &rn), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, handle, resp, rn, cmd, cn), 0);
	rl = sam_ok(sam, SAM_SCP_STEP, body, w.len, reply, sizeof(reply));
	assert_int_equal(sam_dec_scp_step(reply, rl, &st), 0);
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
	assert_int_equal(u.sw, 0x9000);
	assert_true(u.authenticated && u.n <= cap);
	memcpy(out, u.data, u.n);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, handle, NULL, 0), 0);
	(void)sam_ok(sam, SAM_SCP_CLOSE, body, w.len, reply, sizeof(reply));
	phone_close(&rd);
	return u.n;
}

static void test_pauth(void **state)
{
	struct proto_menu menu;
	struct phone p;
	struct sam_sync sam;
	struct db *db = NULL;
	static struct db_pauth rec;
	uint8_t sealed[512], body[RMSG_PAUTH_LEN], out[64], prove[5 + 16], req[600], plain[64];
	char hex[17], id[SVC_BLOB_ID_MAX], idhex[33];
	uint64_t version = 0;
	size_t sn = 0, rl;
	struct wr w;

	(void)state;
	hex16(g_rig.se[1].serial, hex);
	{
		char *set[] = { g_rig.bin, "admin", "pauth-set", "--dir", g_rig.dir, "--se", hex,
				"--attr", "name=Alice", "--attr", "age=42", NULL };
		char *vis[] = { g_rig.bin, "admin", "pauth-set", "--dir", g_rig.dir, "--class", "1",
				 "--visible", "name", NULL };
		char *bad[] = { g_rig.bin, "admin", "pauth-set", "--dir", g_rig.dir, "--se", hex,
				"--attr", "Name=x;y", NULL };

		admin(set);
		admin(vis);
		assert_int_equal(sp_run(bad, "/dev/null"), 2);
	}
	hello(&p, 1, &menu);
	p.apdus = 0;
	assert_int_equal(phone_select(&p, RIG_SVC_PAUTH), PROTO_NOTICE);
	assert_int_equal(strncmp(p.notice, "flag set until ", 15), 0);
	/* SELECT, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE + PAUTH SET, FLAG SET */
	assert_int_equal(p.apdus, 5);
	/* registered once: the next flag is one command again */
	p.apdus = 0;
	assert_int_equal(phone_select(&p, RIG_SVC_PAUTH), PROTO_NOTICE);
	assert_int_equal(p.apdus, 4);
	phone_close(&p);

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(db->ops->blob_get(db, g_rig.se[1].serial, SVC_SLOT_PAUTH, &version, sealed,
					   sizeof(sealed), &sn), 0);
	assert_int_equal(db->ops->pauth_get(db, g_rig.se[1].serial, &rec), 0);
	assert_int_equal(strlen(rec.identifier), 32);
	assert_int_equal(rec.n_attrs, 2);
	db_close(db);

	/* the se's proof at a reader, checked with the key the sam opens from the vault */
	assert_int_equal(sam_sync_connect(&sam, g_rig.sam_sock), 0);
	memcpy(prove, "\x80\x62\x00\x00\x10", 5);
	assert_int_equal(crypto_random(prove + 5, 16), 0);
	assert_int_equal(reader_cmd(&sam, 1, prove, sizeof(prove), out, sizeof(out)), 40);
	memcpy(body, out, 24);
	memcpy(body + 24, prove + 5, 16);
	memcpy(body + 40, out + 24, 16);
	assert_int_equal(svc_blob_id(id, "pauth", g_rig.se[1].serial, -1), 0);
	w = wr_init(req, sizeof(req));
	assert_int_equal(sam_enc_blob(&w, (const uint8_t *)id, strlen(id), sealed, sn), 0);
	rl = sam_ok(&sam, SAM_OPEN_BLOB, req, w.len, plain, sizeof(plain));
	assert_int_equal(rl, 32);
	assert_int_equal(hex_encode(plain, 16, HEX_PUBLIC, idhex, sizeof(idhex)), 0);
	assert_string_equal(rec.identifier, idhex); /* the identifier is the sealed id */
	assert_int_equal(svc_pauth_check(g_rig.se[1].serial, body, sizeof(body), plain, rl), 0);
	body[50] ^= 0x04;
	assert_int_equal(svc_pauth_check(g_rig.se[1].serial, body, sizeof(body), plain, rl),
			 TB_E_VAULT_PROOF);
	ct_wipe(plain, sizeof(plain));
	sam_sync_close(&sam);
}

static void test_stop(void **state)
{
	(void)state;
	assert_int_equal(sp_stop(g_rig.server), 0);
	g_rig.server = -1;
	assert_false(rig_log_has(&g_rig, "commit_failed=1"));
	assert_false(rig_log_has(&g_rig, "pauth_key_unrecorded"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backup_restore),
		cmocka_unit_test(test_pauth),
		cmocka_unit_test(test_stop),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
