/* test_reader.c - the reader core (src/reader) against the real se core in-process: an
 * se personalised with a SERVER key set and the READER key set the reader derives from
 * its terminal key (div_device_keys), the server's own channel on the host interface
 * (credit, arm, tickets, flag, personal auth), and a test "server" here that answers the
 * se's RELAY events as the SCP03 host of the reader's card role. Checks: every app online
 * (both flow orders), the outbox emptied only after a valid RESULT and kept after a
 * forged one, an 8F refusal, the offline flag path (real ECDSA), the deny list, a pay
 * over the balance, a failed counter save, and the state file codec. */
#include "se_rig.h"

#include "crypto.h"
#include "ct.h"
#include "div.h"
#include "rdr.h"
#include "rmsg.h"
#include "reader_files.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define TERM_KVN 0x21
#define RS_KVN 0x31
#define READER_ID 7u
#define SERVICE 9u
#define TICKET_SVC 4u

static const uint8_t term_key[32] = { 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x7B,
				      0x7C, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
				      0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90 };

/* The test server: the host of the reader's channel. */
struct tsrv {
	struct scp_host h;
	int forge;                 /* flip a byte of the wrapped RESULT */
	int refuse;                /* answer HELLO with 8F */
	int fail_relay;            /* the phone does not answer (6F00) */
	uint8_t deny[2][8];
	size_t deny_n;
	size_t hellos, auths, datas;
	struct rmsg_record got[RMSG_RECORDS_MAX];
	uint8_t got_body[RMSG_RECORDS_MAX][RMSG_BODY_MAX];
	size_t got_n;
	uint8_t refused_seq;       /* status 2 for this seq's record (0: none) */
};

static struct {
	struct rdr_keys keys;
	struct rdr_store st;
	struct rdr r;
	struct rdr_cfg cfg;
	struct tsrv srv;
	char lines[32][RDR_LINE_MAX];
	size_t n_lines;
	size_t saves;
	int fail_save_at;          /* 1-based save number that fails; 0 = none */
	uint8_t ins[128];          /* INS of every contactless command, in order */
	size_t n_ins;
	uint8_t flag_priv[32];
} T;

/* ------------------------------------------------------------ the server --- */

static int srv_hello(struct tsrv *s, const struct rmsg *m, struct wr *ans)
{
	struct scp_keys k;
	struct scp_host_config hc;
	uint8_t ch[8] = { 1, 2, 3, 4, 5, 6, 7, (uint8_t)s->hellos };
	uint8_t iu[32], serial[8];
	struct wr w = wr_init(iu, sizeof(iu));

	assert_int_equal(m->reader_id, READER_ID);
	if (s->refuse)
		return rmsg_refuse_enc(ans, RMSG_REFUSE_UNKNOWN_READER, "unknown reader", 14);
	rmsg_reader_serial(READER_ID, serial);
	assert_int_equal(div_device_keys(term_key, 3, RS_KVN, 16, serial, &k), 0);
	memset(&hc, 0, sizeof(hc));
	hc.keys = &k;
	hc.host_challenge = ch;
	hc.host_challenge_len = 8;
	hc.kvn = RS_KVN;
	hc.level = 0x33;
	hc.mode = SCP_MODE_S8;
	hc.aid = rmsg_reader_aid;
	hc.aid_len = RMSG_READER_AID_LEN;
	assert_int_equal(scp_host_begin(&s->h, &hc, &w), 0);
	return rmsg_ans_hello_enc(ans, iu, w.len);
}

static int srv_auth(struct tsrv *s, const struct rmsg *m, struct wr *ans)
{
	static const uint8_t get_req[] = { 0x80, 0xE2, 0x00, 0x00, 0x00 };
	uint8_t ea[64], gr[64];
	struct wr w = wr_init(ea, sizeof(ea)), gw = wr_init(gr, sizeof(gr));

	assert_int_equal(m->reader_id, READER_ID);
	assert_int_equal(scp_host_init_update(&s->h, m->a, m->a_n, &w), 0);
	/* EXTERNAL AUTHENTICATE's answer has no MAC: the server wraps its first command
	 * before it sees it, as the sam's EA_SPEC step does. */
	assert_int_equal(scp_host_ext_auth(&s->h, (const uint8_t *)"\x90\x00", 2), 0);
	assert_int_equal(scp_host_wrap(&s->h, get_req, sizeof(get_req), &gw), 0);
	return rmsg_ans_auth_enc(ans, ea, w.len, gr, gw.len);
}

static int srv_data(struct tsrv *s, const struct rmsg *m, struct wr *ans)
{
	struct rmsg_result_item it[RMSG_RECORDS_MAX];
	uint8_t plain[1200], cmd[1200], wrapped[1200];
	struct wr pw = wr_init(plain, sizeof(plain));
	struct wr cw = wr_init(cmd, sizeof(cmd)), ww = wr_init(wrapped, sizeof(wrapped));
	struct scp_resp info;
	struct apdu a;
	size_t n = 0;

	assert_int_equal(m->ea_sw, 0x9000);
	assert_int_equal(scp_host_unwrap(&s->h, m->a, m->a_n, &info, &pw), 0);
	assert_true(info.authenticated);
	assert_int_equal(info.sw, 0x9000);
	assert_int_equal(rmsg_request_dec(plain, info.n, s->got, RMSG_RECORDS_MAX, &n), 0);
	s->got_n = n;
	for (size_t i = 0; i < n; i++) {
		memcpy(s->got_body[i], s->got[i].body, s->got[i].body_n);
		s->got[i].body = s->got_body[i];
		it[i].seq = s->got[i].seq;
		it[i].status = s->got[i].seq == s->refused_seq ? RMSG_ST_REFUSED : RMSG_ST_BOOKED;
		it[i].info = s->got[i].kind == RMSG_K_PAUTH    ? "age>=20=yes"
			     : s->got[i].kind == RMSG_K_REFUND ? "refund 100, credit pending"
							       : "balance=700";
		it[i].info_n = strlen(it[i].info);
		if (it[i].status == RMSG_ST_REFUSED)
			it[i].info = "receipt unknown", it[i].info_n = 15;
	}
	memset(&a, 0, sizeof(a));
	a.cla = 0x80;
	a.ins = 0xE4;
	a.data = cmd + 0;
	assert_int_equal(rmsg_result_enc(&cw, it, n, (const uint8_t(*)[8])s->deny, s->deny_n), 0);
	{
		uint8_t full[1200];
		struct wr fw = wr_init(full, sizeof(full));

		a.data = cmd;
		a.nc = cw.len;
		assert_int_equal(apdu_encode(&a, &fw), 0);
		assert_int_equal(scp_host_wrap(&s->h, full, fw.len, &ww), 0);
	}
	if (s->forge)
		wrapped[ww.len / 2] ^= 0x01;
	return rmsg_ans_data_enc(ans, wrapped, ww.len);
}

static int srv_answer(struct tsrv *s, const uint8_t *p, size_t n, struct wr *ans)
{
	struct rmsg m;

	assert_int_equal(rmsg_up_dec(p, n, &m), 0);
	switch (m.type) {
	case RMSG_HELLO:
		s->hellos++;
		return srv_hello(s, &m, ans);
	case RMSG_AUTH:
		s->auths++;
		return srv_auth(s, &m, ans);
	default:
		s->datas++;
		return srv_data(s, &m, ans);
	}
}

/* ------------------------------------------------------- the reader's io --- */

static int t_xmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *got)
{
	struct wr w = wr_init(resp, cap);
	int rc;

	(void)ctx;
	if (n >= 2 && T.n_ins < sizeof(T.ins))
		T.ins[T.n_ins++] = cmd[1];
	rc = se_apdu(&R.se, SE_IF_CONTACTLESS, cmd, n, R.now, &w);
	assert_true(rc == 0 || rc == SE_PENDING_RELAY);
	if (rc == SE_PENDING_RELAY) {
		struct se_event ev;
		uint8_t ans[RMSG_MAX];
		struct wr aw = wr_init(ans, sizeof(ans));

		do
			assert_int_equal(se_next_event(&R.se, &ev), 1);
		while (ev.kind != SE_EV_RELAY);
		assert_int_equal(ev.service, SERVICE);
		if (T.srv.fail_relay) {
			assert_int_equal(se_relay_fail(&R.se, &w), 0);
		} else {
			assert_int_equal(srv_answer(&T.srv, ev.data, ev.n, &aw), 0);
			assert_int_equal(se_relay_answer(&R.se, ans, aw.len, &w), 0);
		}
	}
	*got = w.len;
	return 0;
}

static int t_save(void *ctx, const struct rdr_store *s)
{
	static uint8_t buf[RDR_STORE_ENC_MAX];
	struct wr w = wr_init(buf, sizeof(buf));

	(void)ctx;
	T.saves++;
	if (T.fail_save_at != 0 && (int)T.saves == T.fail_save_at)
		return TB_E_IO;
	return rdr_store_enc(&w, s); /* what a file would hold must encode */
}

static void t_say(void *ctx, const char *line)
{
	(void)ctx;
	assert_true(T.n_lines < 32);
	assert_true(strlen(line) < RDR_LINE_MAX);
	strcpy(T.lines[T.n_lines++], line);
}

static const struct rdr_io t_io = { t_xmit, t_save, t_say, NULL };

static int said(const char *line)
{
	for (size_t i = 0; i < T.n_lines; i++)
		if (strcmp(T.lines[i], line) == 0)
			return 1;
	return 0;
}

static void show_lines(void)
{
	for (size_t i = 0; i < T.n_lines; i++)
		print_message("  %s\n", T.lines[i]);
}

#define assert_said(l)                                  \
	do {                                            \
		if (!said(l)) {                         \
			show_lines();                   \
			fail_msg("not said: %s", l);    \
		}                                       \
	} while (0)

/* ------------------------------------------------------------- the setup --- */

static int setup(void **state)
{
	struct scp_keys k;
	uint8_t serial[8], pub[65];

	(void)state;
	rig_blank();
	rig_server_keys(&k);
	assert_int_equal(se_put_keyset(&R.mem.store, RIG_SERVER_KVN, SE_ROLE_SERVER, &k), 0);
	assert_int_equal(div_device_keys(term_key, 2, TERM_KVN, 16, rig_serial, &k), 0);
	assert_int_equal(se_put_keyset(&R.mem.store, TERM_KVN, SE_ROLE_READER, &k), 0);
	rig_start();
	memset(&T, 0, sizeof(T));
	rdr_store_init(&T.st);
	T.keys.id = READER_ID;
	T.keys.kvn = RS_KVN;
	rmsg_reader_serial(READER_ID, serial);
	assert_int_equal(div_device_keys(term_key, 3, RS_KVN, 16, serial, &T.keys.rs), 0);
	memcpy(T.keys.terminal, term_key, 32);
	T.keys.terminal_kvn = TERM_KVN;
	T.keys.terminal_keylen = 16;
	assert_int_equal(crypto_p256_keygen(T.flag_priv, pub), 0);
	memcpy(T.keys.flag_pub, pub, 65);
	T.keys.has_flag_pub = 1;
	T.cfg.app = RDR_APP_PAY;
	T.cfg.amount = 300;
	T.cfg.service = 5;
	return 0;
}

/* The server's own channel on the host interface: one secured wallet command. */
static void server_cmd(const char *hex)
{
	assert_int_equal(rig_select_wallet(SE_IF_HOST), SW_OK);
	assert_int_equal(rig_open_server(SE_IF_HOST, 0x33), SW_OK);
	if (rig_cmd_hex(SE_IF_HOST, hex) != SW_OK)
		fail_msg("server command %s: %04X", hex, R.sw);
}

static void credit(uint32_t amount)
{
	char hex[32];

	snprintf(hex, sizeof(hex), "8032000004%08X", amount);
	server_cmd(hex);
}

static void arm(void)
{
	char hex[64];

	snprintf(hex, sizeof(hex), "806C000008%08X%08X", SERVICE, R.now + 600);
	server_cmd(hex);
}

static uint32_t balance(void)
{
	server_cmd("8030000000");
	return (uint32_t)R.resp[0] << 24 | (uint32_t)R.resp[1] << 16 | (uint32_t)R.resp[2] << 8 | R.resp[3];
}

static int tap(void)
{
	T.n_lines = 0;
	T.n_ins = 0;
	se_power(&R.se, SE_IF_CONTACTLESS, SE_POWER_RESET);
	return rdr_tap(&T.r, &T.keys, &T.cfg, &t_io, &T.st, R.now);
}

static size_t index_of(uint8_t ins)
{
	for (size_t i = 0; i < T.n_ins; i++)
		if (T.ins[i] == ins)
			return i;
	return SIZE_MAX;
}

/* ----------------------------------------------------------------- tests --- */

static void test_pay_online(void **state)
{
	(void)state;
	credit(1000);
	arm();
	assert_int_equal(tap(), 0);
	assert_said("reader: authenticated se 5345000000001234");
	assert_said("reader: paid 300");
	assert_said("reader: done");
	assert_int_equal(T.r.envelopes, 3);
	assert_int_equal(T.srv.got_n, 1);
	assert_int_equal(T.srv.got[0].kind, RMSG_K_PAY);
	assert_int_equal(T.srv.got[0].seq, 1);
	assert_int_equal(T.srv.got[0].service, SERVICE);
	assert_memory_equal(T.srv.got[0].serial, rig_serial, 8);
	assert_int_equal(T.st.n, 0);             /* acknowledged: gone */
	assert_int_equal(T.st.next_seq, 2);
	assert_int_equal(T.st.card_counter, 1);  /* saved before the IU response left */
	assert_int_equal(balance(), 700);
	/* offline-first: the DEBIT (34) before the first ENVELOPE (C2). */
	assert_true(index_of(0x34) < index_of(0xC2));
}

static void test_pay_online_first(void **state)
{
	(void)state;
	credit(1000);
	arm();
	T.cfg.order = RDR_ONLINE_FIRST;
	assert_int_equal(tap(), 0);
	assert_said("reader: paid 300");
	assert_int_equal(T.r.envelopes, 3);
	assert_true(index_of(0xC2) < index_of(0x34)); /* HELLO/AUTH first */
	assert_int_equal(T.st.n, 0);
	assert_int_equal(balance(), 700);
}

static void test_forged_result_keeps_outbox(void **state)
{
	(void)state;
	credit(1000);
	arm();
	T.srv.forge = 1;
	assert_int_equal(tap(), TB_E_RDR_SERVER);
	assert_said("reader: server not authenticated");
	assert_false(said("reader: done"));
	assert_int_equal(T.st.n, 1);             /* kept */
	assert_int_equal(T.st.rec[0].seq, 1);
	assert_int_equal(balance(), 700);        /* the se paid: the record proves it */
	/* The next tap reports both, this tap's first, and empties the outbox. */
	T.srv.forge = 0;
	arm();
	assert_int_equal(tap(), 0);
	assert_int_equal(T.srv.got_n, 2);
	assert_int_equal(T.srv.got[0].seq, 2);
	assert_int_equal(T.srv.got[1].seq, 1);
	assert_int_equal(T.st.n, 0);
	assert_int_equal(T.st.card_counter, 2);
	assert_int_equal(balance(), 400);
}

static void test_refusal_and_relay_failure(void **state)
{
	(void)state;
	credit(1000);
	arm();
	T.srv.refuse = 1;
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: server refused: unknown reader");
	assert_int_equal(T.st.n, 1);
	assert_int_equal(T.r.envelopes, 1);
	T.srv.refuse = 0;
	T.srv.fail_relay = 1;
	arm();
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: relay failed: the phone did not answer");
	assert_int_equal(T.st.n, 2);
	/* A RESULT that refuses a record: it is final, removed, and shown. */
	T.srv.fail_relay = 0;
	T.srv.refused_seq = 1;
	arm();
	assert_int_equal(tap(), 0);
	assert_said("reader: refused: receipt unknown");
	assert_said("reader: paid 300");
	assert_int_equal(T.srv.got_n, 3);
	assert_int_equal(T.st.n, 0);
}

static void test_over_balance(void **state)
{
	(void)state;
	credit(1000);
	arm();
	T.cfg.amount = 5000;
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: balance too low");
	assert_int_equal(T.r.envelopes, 0);
	assert_int_equal(T.st.n, 0);
	assert_int_equal(T.st.next_seq, 1);
	assert_int_equal(balance(), 1000);
}

static void test_gate_id_checkout(void **state)
{
	char hex[128];

	(void)state;
	credit(5000);
	/* A ticket for service 4, valid now, 2 uses. */
	snprintf(hex, sizeof(hex), "8040000015%016X%08X%08X%08X02", 0xAB, TICKET_SVC, R.now - 10,
		 R.now + 1000);
	server_cmd(hex);
	arm();
	T.cfg.app = RDR_APP_GATE;
	T.cfg.ticket_service = TICKET_SVC;
	assert_int_equal(tap(), 0);
	assert_said("reader: ticket ok");
	assert_int_equal(T.srv.got[0].kind, RMSG_K_TICKET);
	assert_int_equal(T.srv.got[0].body[20], 1); /* one use left after this one */
	T.cfg.ticket_service = 77;
	arm();
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: no valid ticket");

	server_cmd("8060000020" "000102030405060708090A0B0C0D0E0F" "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF");
	arm();
	T.cfg.app = RDR_APP_ID;
	assert_int_equal(tap(), 0);
	assert_said("reader: identity confirmed: age>=20=yes");
	assert_int_equal(T.srv.got[0].kind, RMSG_K_PAUTH);
	assert_hex_equal(T.srv.got[0].body, 16, "000102030405060708090A0B0C0D0E0F");

	arm();
	T.cfg.app = RDR_APP_CHECKOUT;
	T.cfg.items[0] = (struct rdr_item){ 1, 2, 300 };
	T.cfg.items[1] = (struct rdr_item){ 5, 1, 600 };
	T.cfg.n_items = 2;
	assert_int_equal(tap(), 0);
	{
		char want[64];

		snprintf(want, sizeof(want), "reader: order %u paid 1200", T.srv.got[0].seq);
		assert_said(want);
	}
	assert_int_equal(T.srv.got[0].kind, RMSG_K_ORDER);
	assert_int_equal(T.srv.got[0].body_n, 33 + 1 + 12);
	assert_hex_equal(T.srv.got[0].body + 33, 13, "02" "000000010002" "000000050001");
	assert_int_equal(balance(), 3800);
	assert_int_equal(T.st.n, 0);
}

/* The token the server would sign, stored through its channel. */
static void put_flag(uint32_t limit, uint32_t expiry, int bad_sig)
{
	uint8_t token[37], msg[42], sig[64];
	char hex[2 * 101 + 16];
	size_t k;

	token[0] = 0x01;
	memcpy(token + 1, rig_serial, 8);
	memcpy(token + 9, "\x00\x00\x00\x0C", 4); /* service 12 */
	for (int i = 0; i < 4; i++)
		token[13 + i] = (uint8_t)(expiry >> (24 - 8 * i));
	for (int i = 0; i < 16; i++)
		token[17 + i] = (uint8_t)(0xC0 + i);
	for (int i = 0; i < 4; i++)
		token[33 + i] = (uint8_t)(limit >> (24 - 8 * i));
	memcpy(msg, "TBSG\x01", 5);
	memcpy(msg + 5, token, 37);
	assert_int_equal(crypto_ecdsa_sign(T.flag_priv, msg, sizeof(msg), sig), 0);
	if (bad_sig)
		sig[10] ^= 0x01;
	k = (size_t)snprintf(hex, sizeof(hex), "8064000065");
	for (int i = 0; i < 37; i++)
		k += (size_t)snprintf(hex + k, sizeof(hex) - k, "%02X", token[i]);
	for (int i = 0; i < 64; i++)
		k += (size_t)snprintf(hex + k, sizeof(hex) - k, "%02X", sig[i]);
	server_cmd(hex);
}

/* A refund: a record only (no se command moves money at the reader), online only. */
static void test_refund(void **state)
{
	static const char key[] = "S:5345000000001234:00000002";
	const char *k = NULL;
	size_t kn = 0;
	uint32_t amount = 0;

	(void)state;
	credit(1000);
	T.cfg.app = RDR_APP_REFUND;
	T.cfg.amount = 100;
	memcpy(T.cfg.refund_key, key, sizeof(key));
	/* not armed: no server, no refund, nothing kept */
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: refund needs the server");
	assert_int_equal(T.st.n, 0);
	arm();
	assert_int_equal(tap(), 0);
	assert_said("reader: refund 100, credit pending");
	assert_said("reader: done");
	assert_int_equal(T.srv.got_n, 1);
	assert_int_equal(T.srv.got[0].kind, RMSG_K_REFUND);
	assert_int_equal(T.srv.got[0].service, SERVICE);
	assert_memory_equal(T.srv.got[0].serial, rig_serial, 8);
	assert_int_equal(rmsg_refund_dec(T.srv.got[0].body, T.srv.got[0].body_n, &k, &kn, &amount), 0);
	assert_int_equal(kn, strlen(key));
	assert_memory_equal(k, key, kn);
	assert_int_equal(amount, 100);
	assert_int_equal(T.st.n, 0);
	assert_int_equal(balance(), 1000); /* the reader moved nothing: the server credits */
	assert_int_equal(index_of(0x34), SIZE_MAX);
	/* no key: refused before anything is kept */
	T.cfg.refund_key[0] = '\0';
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: no refund key or amount");
	assert_int_equal(T.st.n, 0);
}

static void test_offline_flag(void **state)
{
	(void)state;
	credit(1000);
	/* Not armed, no flag: refused, nothing moved. */
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: offline and no flag on the phone");
	/* A forged signature: refused, the flag stays. */
	put_flag(500, R.now + 300, 1);
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: flag signature does not verify");
	/* Above the offline limit. */
	put_flag(200, R.now + 300, 0);
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: amount above the offline limit");
	assert_int_equal(T.st.n, 0);
	/* Within it: paid offline, a FLAG record (the flag's service) and a PAY record (the
	 * reader's e-money service) in the outbox, the flag consumed. */
	put_flag(500, R.now + 300, 0);
	assert_int_equal(tap(), 0);
	assert_said("reader: paid 300 (offline flag)");
	assert_said("reader: done");
	assert_int_equal(T.r.envelopes, 0);
	assert_int_equal(T.st.n, 2);
	assert_int_equal(T.st.rec[0].kind, RMSG_K_FLAG);
	assert_int_equal(T.st.rec[0].service, 12);
	assert_int_equal(T.st.rec[0].body_n, 20);
	assert_hex_equal(T.st.rec[0].body, 20, "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF0000012C");
	assert_int_equal(T.st.rec[1].kind, RMSG_K_PAY);
	assert_int_equal(T.st.rec[1].body_n, 33);
	assert_int_equal(T.st.rec[1].body[12], 0x02); /* a debit receipt */
	assert_int_equal(balance(), 700);
	assert_int_equal(tap(), TB_E_RDR_REFUSED); /* consumed: one flag, one tap */
	assert_said("reader: refused: offline and no flag on the phone");
	/* id offline; then a relayed tap reports both FLAG records. */
	put_flag(0, R.now + 300, 0);
	T.cfg.app = RDR_APP_ID;
	assert_int_equal(tap(), 0);
	assert_said("reader: identity confirmed (offline flag)");
	assert_int_equal(T.st.n, 3);
	T.cfg.app = RDR_APP_PAY;
	arm();
	assert_int_equal(tap(), 0);
	assert_int_equal(T.srv.got_n, 4);
	assert_said("reader: offline record 1 reported"); /* FLAG */
	assert_said("reader: paid 300");                  /* the offline PAY, then this tap's */
	assert_said("reader: offline record 3 reported"); /* FLAG of the id check */
	assert_int_equal(T.st.n, 0);
	/* Expired flag (the se itself refuses to hand it out). */
	server_cmd("806C030000"); /* disarm */
	put_flag(500, R.now + 10, 0);
	R.now += 20;
	assert_int_equal(tap(), TB_E_RDR_REFUSED);
	assert_said("reader: refused: flag expired");
}

static void test_deny_list(void **state)
{
	(void)state;
	credit(1000);
	arm();
	memcpy(T.srv.deny[0], "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	memcpy(T.srv.deny[1], rig_serial, 8);
	T.srv.deny_n = 2;
	assert_int_equal(tap(), 0);
	assert_int_equal(T.st.deny_n, 2);
	assert_true(rdr_denied(&T.st, rig_serial));
	arm();
	assert_int_equal(tap(), TB_E_RDR_DENIED);
	assert_said("reader: refused: se denied");
	assert_int_equal(balance(), 700);
	/* An empty deny list in a RESULT clears it. */
	rdr_store_init(&T.st);
	T.st.next_seq = 50;
	T.srv.deny_n = 0;
	assert_int_equal(tap(), 0);
	assert_int_equal(T.st.deny_n, 0);
}

static void test_counter_save_fails(void **state)
{
	(void)state;
	credit(1000);
	arm();
	T.fail_save_at = 2; /* 1: the record; 2: the card-role counter */
	assert_int_equal(tap(), TB_E_IO);
	assert_said("reader: state not saved");
	assert_int_equal(T.r.envelopes, 1);     /* no AUTH: the IU response never left */
	assert_int_equal(T.srv.auths, 0);
	assert_int_equal(T.st.card_counter, 0);
	assert_int_equal(T.st.n, 1);
	/* And a failed record save: nothing in the outbox, nothing sent. */
	T.fail_save_at = 3;
	arm();
	assert_int_equal(tap(), TB_E_IO);
	assert_int_equal(T.st.n, 1);
	assert_int_equal(T.st.next_seq, 2);
}

static void test_wrong_terminal_key(void **state)
{
	(void)state;
	T.keys.terminal[0] ^= 1;
	assert_int_equal(tap(), TB_E_SCP_CARD_CRYPTOGRAM);
	assert_int_equal(balance(), 0);
	assert_said("reader: se not authenticated");
}

static void test_store_codec(void **state)
{
	static struct rdr_store s, d;
	static uint8_t buf[RDR_STORE_ENC_MAX];
	struct wr w = wr_init(buf, sizeof(buf));

	(void)state;
	rdr_store_init(&s);
	s.next_seq = 10;
	s.card_counter = 0x123456;
	s.deny_n = 1;
	memcpy(s.deny[0], rig_serial, 8);
	for (size_t i = 0; i < 2; i++) {
		s.rec[i].kind = RMSG_K_PAY;
		s.rec[i].seq = (uint32_t)(3 + i);
		s.rec[i].time = 1700000000;
		s.rec[i].body_n = 33;
		memset(s.rec[i].body, (int)i, 33);
	}
	s.n = 2;
	assert_int_equal(rdr_store_enc(&w, &s), 0);
	assert_hex_equal(buf, 14, "5442525301" "0000000A" "00123456" "01");
	assert_int_equal(rdr_store_dec(buf, w.len, &d), 0);
	assert_int_equal(d.next_seq, 10);
	assert_int_equal(d.card_counter, 0x123456);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.rec[1].seq, 4);
	assert_memory_equal(d.rec[1].body, s.rec[1].body, 33);
	d.next_seq = 99;
	for (size_t k = 0; k < w.len; k++)
		assert_true(rdr_store_dec(buf, k, &d) < 0);
	assert_int_equal(d.next_seq, 99); /* untouched on failure */
	assert_int_equal(rdr_store_dec(buf, w.len + 1, &d), TB_E_LEFTOVER);
	buf[0] = 'X';
	assert_int_equal(rdr_store_dec(buf, w.len, &d), TB_E_RDR_STATE);
	buf[0] = 'T';
	s.rec[1].seq = 3; /* a duplicate seq */
	w = wr_init(buf, sizeof(buf));
	assert_int_equal(rdr_store_enc(&w, &s), 0);
	assert_int_equal(rdr_store_dec(buf, w.len, &d), TB_E_RDR_STATE);
	s.rec[1].seq = 10; /* not below next_seq */
	w = wr_init(buf, sizeof(buf));
	assert_int_equal(rdr_store_enc(&w, &s), 0);
	assert_int_equal(rdr_store_dec(buf, w.len, &d), TB_E_RDR_STATE);
	/* The fullest store fits its bound. */
	rdr_store_init(&s);
	s.next_seq = 1000;
	s.deny_n = RDR_DENY_MAX;
	for (size_t i = 0; i < RDR_OUTBOX_MAX; i++) {
		s.rec[i].kind = RMSG_K_ORDER;
		s.rec[i].seq = (uint32_t)(i + 1);
		s.rec[i].body_n = RMSG_BODY_MAX;
		s.rec[i].body[33] = RMSG_ITEMS_MAX;
	}
	s.n = RDR_OUTBOX_MAX;
	w = wr_init(buf, sizeof(buf));
	assert_int_equal(rdr_store_enc(&w, &s), 0);
	assert_int_equal(w.len, RDR_STORE_ENC_MAX);
	assert_int_equal(rdr_store_dec(buf, w.len, &d), 0);
	assert_int_equal(d.n, RDR_OUTBOX_MAX);
}

static int keyfile(const char *dir, const char *text, mode_t mode, unsigned *line)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/k", dir);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(p, mode), 0);
	memset(&T.keys, 0, sizeof(T.keys));
	return reader_keys_load(p, &T.keys, line);
}

#define KF_OK "enc 000102030405060708090A0B0C0D0E0F\nmac 101112131415161718191A1B1C1D1E1F\n" \
	"dek 202122232425262728292A2B2C2D2E2F\nid 7\nkvn 31\nterminal " \
	"7172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D8E8F90\n" \
	"terminal-kvn 21\nterminal-keylen 16\n"

/* The key file and the durable state directory (src/io/reader_files.c). */
static void test_files(void **state)
{
	char dir[] = "/tmp/tb_rdr_files.XXXXXX", cmd[300];
	static struct rdr_store s, d;
	unsigned line = 0;
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(keyfile(dir, "# c\n\n" KF_OK, 0600, &line), 0);
	assert_int_equal(T.keys.id, 7);
	assert_int_equal(T.keys.kvn, 0x31);
	assert_int_equal(T.keys.terminal_kvn, 0x21);
	assert_int_equal(T.keys.terminal_keylen, 16);
	assert_int_equal(T.keys.rs.len, 16);
	assert_memory_equal(T.keys.terminal, term_key, 32);
	assert_false(T.keys.has_flag_pub);
	assert_int_equal(keyfile(dir, KF_OK "flag-pub 04" "11111111111111111111111111111111"
		"11111111111111111111111111111111" "22222222222222222222222222222222"
		"22222222222222222222222222222222\n", 0600, &line), 0);
	assert_true(T.keys.has_flag_pub);
	assert_int_equal(keyfile(dir, KF_OK, 0644, &line), TB_E_RDR_KEYFILE); /* readable by others */
	assert_int_equal(keyfile(dir, KF_OK "id 8\n", 0600, &line), TB_E_RDR_KEYFILE);
	assert_int_equal(line, 9);
	assert_int_equal(keyfile(dir, KF_OK "colour blue\n", 0600, &line), TB_E_RDR_KEYFILE);
	assert_int_equal(keyfile(dir, "id 7\n", 0600, &line), TB_E_RDR_KEYFILE); /* missing */
	assert_int_equal(keyfile(dir, "kvn 00\n", 0600, &line), TB_E_RDR_KEYFILE);
	assert_int_equal(line, 1);
	snprintf(cmd, sizeof(cmd), "%s/nope", dir);
	assert_int_equal(reader_keys_load(cmd, &T.keys, &line), TB_E_IO);

	/* State: missing = fresh; save then load; a corrupt file is refused. */
	assert_int_equal(reader_state_load(dir, &d), 0);
	assert_int_equal(d.next_seq, 1);
	rdr_store_init(&s);
	s.next_seq = 5;
	s.card_counter = 3;
	assert_int_equal(reader_state_save(dir, &s), 0);
	assert_int_equal(reader_state_load(dir, &d), 0);
	assert_int_equal(d.next_seq, 5);
	assert_int_equal(d.card_counter, 3);
	fd = reader_state_lock(dir);
	assert_true(fd >= 0);
	snprintf(cmd, sizeof(cmd), "printf X >> %s/reader.state", dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(reader_state_load(dir, &d), TB_E_RDR_STATE);
	close(fd);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* Parses t (KF_OK with line `drop` left out and line `dup` appended again; -1 for
 * neither) and checks a refusal leaves *out as it was. */
static int kf_variant(int drop, int dup, unsigned *line)
{
	static const char ok[] = KF_OK;
	static struct rdr_keys k, canary;
	const char *p = ok, *dp = NULL;
	size_t n = 0, dn = 0;
	char t[1024];
	int rc;

	for (int i = 0; *p != '\0'; i++) {
		size_t len = (size_t)(strchr(p, '\n') - p) + 1;

		if (i != drop) {
			memcpy(t + n, p, len);
			n += len;
		}
		if (i == dup) {
			dp = p;
			dn = len;
		}
		p += len;
	}
	if (dp != NULL) {
		memcpy(t + n, dp, dn);
		n += dn;
	}
	memset(&k, 0x5A, sizeof(k));
	memset(&canary, 0x5A, sizeof(canary));
	rc = reader_keys_parse(t, n, &k, line);
	if (rc != 0)
		assert_memory_equal(&k, &canary, sizeof(k));
	return rc;
}

static int kf_text(const char *t, unsigned *line)
{
	memset(&T.keys, 0, sizeof(T.keys));
	return reader_keys_parse(t, strlen(t), &T.keys, line);
}

#define KF_HEX24 "000102030405060708090A0B0C0D0E0F1011121314151617"
#define KF_TAIL "id 7\nkvn 31\nterminal 7172737475767778797A7B7C7D7E7F808182838485868788898A8B8C8D" \
	"8E8F90\nterminal-kvn 21\nterminal-keylen 16\n"

/* The key file parser from memory (what reader_keys_load hands it). */
static void test_keys_parse(void **state)
{
	static const char ok[] = KF_OK;
	char t[1024];
	unsigned line = 99;

	(void)state;
	assert_int_equal(kf_variant(-1, -1, &line), 0);
	assert_int_equal(line, 0);
	assert_int_equal(kf_text(KF_OK, &line), 0);
	assert_int_equal(T.keys.rs.len, 16);
	assert_int_equal(T.keys.rs.enc[15], 0x0F);
	assert_int_equal(T.keys.rs.dek[0], 0x20);
	assert_int_equal(T.keys.id, 7);
	assert_memory_equal(T.keys.terminal, term_key, 32);
	/* Every line missing in turn: refused, about no line. Every line twice: refused
	 * at the repeat (line 9). */
	for (int i = 0; i < 8; i++) {
		line = 99;
		assert_int_equal(kf_variant(i, -1, &line), TB_E_RDR_KEYFILE);
		assert_int_equal(line, 0);
		assert_int_equal(kf_variant(-1, i, &line), TB_E_RDR_KEYFILE);
		assert_int_equal(line, 9);
	}
	/* Key lengths: 24 and 32 bytes, one length for all three; anything else refused. */
	assert_int_equal(kf_text("enc " KF_HEX24 "\nmac " KF_HEX24 "\ndek " KF_HEX24 "\n" KF_TAIL,
				 &line), 0);
	assert_int_equal(T.keys.rs.len, 24);
	assert_int_equal(kf_text("enc " KF_HEX24 "0001020304050607\nmac " KF_HEX24 "0001020304050607\n"
				 "dek " KF_HEX24 "0001020304050607\n" KF_TAIL, &line), 0);
	assert_int_equal(T.keys.rs.len, 32);
	assert_int_equal(kf_text("enc " KF_HEX24 "\nmac " KF_HEX24 "\ndek 00000000000000000000000000000000\n"
				 KF_TAIL, &line), TB_E_RDR_KEYFILE); /* 24, 24, 16 */
	assert_int_equal(line, 0);
	assert_int_equal(kf_text("enc 0001020304050607\nmac 0001020304050607\ndek 0001020304050607\n"
				 KF_TAIL, &line), TB_E_RDR_KEYFILE); /* 8 bytes */
	assert_int_equal(kf_text("enc " KF_HEX24 KF_HEX24 "\n", &line), TB_E_RDR_KEYFILE);
	assert_int_equal(line, 1); /* 48 bytes: does not fit */
	assert_int_equal(kf_text(KF_OK "flag-pub 0411\n", &line), TB_E_RDR_KEYFILE);
	assert_int_equal(line, 9);
	assert_int_equal(kf_text("# x\nmac 0G\n", &line), TB_E_RDR_KEYFILE); /* bad hex */
	assert_int_equal(line, 2);
	/* Every truncation fails, except the one that drops only the last LF. */
	for (size_t n = 0; n + 1 < sizeof(ok) - 1; n++) {
		assert_int_equal(reader_keys_parse(ok, n, &T.keys, &line), TB_E_RDR_KEYFILE);
		assert_true(line <= 8);
	}
	assert_int_equal(reader_keys_parse(ok, sizeof(ok) - 2, &T.keys, &line), 0);
	/* CRLF, a NUL byte, and the longest line fgets took (510 bytes before the LF). */
	assert_int_equal(kf_text("enc 000102030405060708090A0B0C0D0E0F\r\nmac 101112131415161718191A1B1C1D1E1F"
				 "\r\ndek 202122232425262728292A2B2C2D2E2F\r\n" KF_TAIL, &line), 0);
	memcpy(t, ok, sizeof(ok));
	t[3] = '\0';
	assert_int_equal(reader_keys_parse(t, sizeof(ok) - 1, &T.keys, &line), TB_E_RDR_KEYFILE);
	assert_int_equal(line, 1);
	memset(t, '#', 510);
	memcpy(t + 510, "\n" KF_OK, sizeof(ok) + 1);
	assert_int_equal(kf_text(t, &line), 0);
	memset(t, '#', 511);
	memcpy(t + 511, "\n" KF_OK, sizeof(ok) + 1);
	assert_int_equal(kf_text(t, &line), TB_E_RDR_KEYFILE);
	assert_int_equal(line, 1);
}

static void test_sizes(void **state)
{
	(void)state;
	assert_true(sizeof(struct rdr) < 20 * 1024);
	assert_true(sizeof(struct rdr_store) < 12 * 1024);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pay_online, setup),
		cmocka_unit_test_setup(test_pay_online_first, setup),
		cmocka_unit_test_setup(test_forged_result_keeps_outbox, setup),
		cmocka_unit_test_setup(test_refusal_and_relay_failure, setup),
		cmocka_unit_test_setup(test_over_balance, setup),
		cmocka_unit_test_setup(test_gate_id_checkout, setup),
		cmocka_unit_test_setup(test_offline_flag, setup),
		cmocka_unit_test_setup(test_refund, setup),
		cmocka_unit_test_setup(test_deny_list, setup),
		cmocka_unit_test_setup(test_counter_save_fails, setup),
		cmocka_unit_test_setup(test_wrong_terminal_key, setup),
		cmocka_unit_test(test_store_codec),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_keys_parse),
		cmocka_unit_test(test_sizes),
	};

	return cmocka_run_group_tests_name("reader", tests, NULL, NULL);
}
