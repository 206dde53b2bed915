/* test_phone_e2e.c - `tapbridge phone` as a process against the real parts: a sam, an
 * se behind its IC_I/F link and `tapbridge server` (tests/util/srv_rig.h). Scripted
 * commands: menu, top-up through the server's channel, the balance read from the se
 * itself, the history; a wrong pin refused with a clear line; a profile and a script
 * file; and the relay pump: with a one-time permit stored in the se (through a server
 * channel the sam opens, as the server would), `arm` then `serve` while a fake reader
 * sends an ENVELOPE on the se's contactless socket: the phone carries it to the server
 * and the server's RELAY_DOWN back, and counts the round trip. */
#include "io/se_listen.h"
#include "srv_rig.h"

static struct srv_rig g_rig;
static char g_pin[TLS_FPR_HEX_LEN + 8], g_addr[32], g_out[PATH_MAX];
static char g_text[1 << 16];

static int setup(void **state)
{
	char hex[TLS_FPR_HEX_LEN];

	(void)state;
	rig_setup(&g_rig, 1);
	assert_int_equal(tls_fpr_hex(g_rig.fpr, hex), 0);
	snprintf(g_pin, sizeof(g_pin), "SHA256:%s", hex);
	snprintf(g_addr, sizeof(g_addr), "127.0.0.1:%u", (unsigned)g_rig.port);
	rig_path(&g_rig, g_out, "phone.out");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

static const char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	g_text[0] = '\0';
	if (f != NULL) {
		n = fread(g_text, 1, sizeof(g_text) - 1, f);
		fclose(f);
	}
	g_text[n] = '\0';
	return g_text;
}

static void want_line(const char *text, const char *line)
{
	if (strstr(text, line) == NULL)
		fail_msg("no line '%s' in:\n%s", line, text);
}

/* tapbridge phone --server --pin --link --stats WORDS... ; its exit status, output in g_text. */
static int phone_run(const char *pin, char *const words[])
{
	char *argv[40] = { g_rig.bin, "phone", "--server", g_addr, "--pin", (char *)pin, "--link",
			   g_rig.se[0].link, "--stats" };
	int k = 9, rc;

	for (int i = 0; words[i] != NULL; i++)
		argv[k++] = words[i];
	argv[k] = NULL;
	rc = sp_run(argv, g_out);
	(void)slurp(g_out);
	print_message("%s", g_text);
	return rc;
}

static void test_topup_balance_history(void **state)
{
	char *words[] = { "menu;", "topup", "1", ";", "balance;", "history", "5", NULL };
	const char *t;

	(void)state;
	assert_int_equal(phone_run(g_pin, words), 0);
	t = g_text;
	want_line(t, "phone: menu 1 e-money [offered] top-up\n");
	want_line(t, "phone: menu 2 ticket [offered] transit\n");
	want_line(t, "phone: menu 3 personal-auth [offered] id-check\n");
	want_line(t, "phone: notice topped up 500, balance 500\n");
	want_line(t, "phone: se says credit 500, balance 500, counter 1\n");
	want_line(t, "phone: balance 500\n");
	want_line(t, "top-up service 1 reader 0 amount 500 time ");
	want_line(t, "phone: stats relay-rtts=0\n");
	assert_null(strstr(t, "error"));
	/* The order on the screen is the order of the commands. */
	assert_true(strstr(t, "notice topped up") < strstr(t, "phone: balance 500"));
	assert_true(strstr(t, "phone: balance 500") < strstr(t, "phone: history "));
}

static void test_wrong_pin(void **state)
{
	char *words[] = { "menu", NULL };

	(void)state;
	assert_int_equal(phone_run("SHA256:" "00112233445566778899AABBCCDDEEFF"
				   "00112233445566778899AABBCCDDEEFF", words), 1);
	want_line(g_text, "phone: error: the server session ended: the server's certificate "
			  "does not match the pinned fingerprint\n");
	assert_null(strstr(g_text, "phone: menu"));
	/* Not a fingerprint at all: a usage error before anything is tried. */
	assert_int_equal(phone_run("SHA256:12", words), 2);
}

/* A profile and a script; a failing command makes the exit status 1 but the rest run. */
static void test_profile_script(void **state)
{
	char prof[PATH_MAX], script[PATH_MAX];
	FILE *f;
	int rc;

	(void)state;
	rig_path(&g_rig, prof, "phone.profile");
	rig_path(&g_rig, script, "phone.script");
	f = fopen(prof, "w");
	assert_non_null(f);
	fprintf(f, "# test profile\nserver %s\nfingerprint %s\n", g_addr, g_pin);
	fclose(f);
	f = fopen(script, "w");
	assert_non_null(f);
	fprintf(f, "# a script\narm 2\n\nselect 77\nbalance\nfly away\nquit\nbalance\n");
	fclose(f);
	{
		char *argv[] = { g_rig.bin, "phone", "--profile", prof, "--link", g_rig.se[0].link,
				 "--script", script, NULL };

		rc = sp_run(argv, g_out);
	}
	(void)slurp(g_out);
	print_message("%s", g_text);
	assert_int_equal(rc, 1);
	want_line(g_text, "phone: error: arm refused by the se (6A88)\n"); /* no permit */
	want_line(g_text, "phone: notice no such service\n");
	want_line(g_text, "phone: balance 500\n");
	want_line(g_text, "phone: error: 'fly away': unknown command");
	/* Nothing after quit: one balance line, not two. */
	assert_null(strstr(strstr(g_text, "phone: balance 500\n") + 1, "phone: balance"));
}

/* A plain command through a SERVER level-33 channel the sam opens on the se's host
 * interface (the phone link, before the phone process takes it): the status word. */
static uint16_t server_cmd(const uint8_t *cmd, size_t cn)
{
	static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 0x54, 0x41, 0x50, 0x42,
				       0x52, 0x49, 0x44, 0x47, 0x45, 0x01, 0x00 };
	uint8_t body[SAM_APDU_MAX + 64], reply[SAM_APDU_MAX + 64], resp[SE_RESP_MAX];
	uint8_t ea_resp[64], ea[64], wrapped[128];
	size_t rn = 0, ern = 0, rl = 0, ea_n, wr_n;
	struct sam_sync sam;
	struct sam_open_reply o;
	struct sam_step_reply st;
	struct sam_unwrap_reply u;
	struct phone p;
	struct wr w;

	assert_int_equal(sam_sync_connect(&sam, g_rig.sam_sock), 0);
	assert_int_equal(phone_link_open(&p, g_rig.se[0].link), 0);
	assert_int_equal(phone_link(&p, SE_LINK_T_APDU, sel, sizeof(sel), resp, sizeof(resp), &rn), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_open(&w, SAM_FAM_SE_SERVER, 0, g_rig.se[0].serial, 0x33, 8,
					  se_wallet_aid, SE_WALLET_AID_LEN), 0);
	assert_int_equal(sam_sync_call(&sam, SAM_SCP_OPEN, body, w.len, reply, sizeof(reply), &rl), 0);
	assert_int_equal(sam_dec_scp_open(reply, rl, &o), 0);
	assert_int_equal(phone_link(&p, SE_LINK_T_APDU, o.apdu, o.n, resp, sizeof(resp), &rn), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, o.handle, resp, rn, cmd, cn), 0);
	assert_int_equal(sam_sync_call(&sam, SAM_SCP_STEP, body, w.len, reply, sizeof(reply), &rl), 0);
	assert_int_equal(sam_dec_scp_step(reply, rl, &st), 0);
	assert_true(st.ea != NULL && st.wrapped != NULL);
	assert_true(st.ea_n <= sizeof(ea) && st.wrapped_n <= sizeof(wrapped));
	memcpy(ea, st.ea, st.ea_n);
	ea_n = st.ea_n;
	memcpy(wrapped, st.wrapped, st.wrapped_n);
	wr_n = st.wrapped_n;
	assert_int_equal(phone_link(&p, SE_LINK_T_APDU, ea, ea_n, ea_resp, sizeof(ea_resp), &ern), 0);
	assert_int_equal(phone_link(&p, SE_LINK_T_APDU, wrapped, wr_n, resp, sizeof(resp), &rn), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, o.handle, ea_resp, ern, NULL, 0), 0);
	assert_int_equal(sam_sync_call(&sam, SAM_SCP_STEP, body, w.len, reply, sizeof(reply), &rl), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, o.handle, resp, rn), 0);
	assert_int_equal(sam_sync_call(&sam, SAM_SCP_UNWRAP, body, w.len, reply, sizeof(reply), &rl), 0);
	assert_int_equal(sam_dec_scp_unwrap(reply, rl, &u), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, o.handle, NULL, 0), 0);
	(void)sam_sync_call(&sam, SAM_SCP_CLOSE, body, w.len, reply, sizeof(reply), &rl);
	phone_close(&p);
	sam_sync_close(&sam);
	return u.sw;
}

/* The relay pump with a fake reader on the se's contactless socket. */
static void test_relay_pump(void **state)
{
	static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 0x54, 0x41, 0x50, 0x42,
				       0x52, 0x49, 0x44, 0x47, 0x45, 0x01, 0x00 };
	/* ENVELOPE with a relay HELLO: 01 || version 01 || reader id 7. */
	static const uint8_t env[] = { 0x80, 0xC2, 0x00, 0x00, 0x06, 0x01, 0x01, 0x00, 0x00, 0x00,
				       0x07, 0x00 };
	/* ... and one that is not a HELLO (a cut AUTH): never answered from a stage. */
	static const uint8_t env2[] = { 0x80, 0xC2, 0x00, 0x00, 0x06, 0x02, 0x00, 0x00, 0x00,
					0x07, 0x00, 0x00 };
	uint8_t permit[13] = { 0x80, 0x6C, 0x01, 0x00, 0x08, 0, 0, 0, RIG_SVC_TOPUP };
	uint32_t expiry = (uint32_t)time(NULL) + 3600;
	char cl[PATH_MAX + 8], log[PATH_MAX];
	uint8_t resp[SE_RESP_MAX], type = 0;
	size_t rn = 0;
	int64_t end;
	pid_t pid;
	int fd, st = 0, staged;

	(void)state;
	permit[9] = (uint8_t)(expiry >> 24);
	permit[10] = (uint8_t)(expiry >> 16);
	permit[11] = (uint8_t)(expiry >> 8);
	permit[12] = (uint8_t)expiry;
	assert_int_equal(server_cmd(permit, sizeof(permit)), 0x9000);

	rig_path(&g_rig, log, "phone.relay.out");
	{
		char *argv[] = { g_rig.bin, "phone", "--server", g_addr, "--pin", g_pin, "--link",
				 g_rig.se[0].link, "--stats", "--trace", "--wait-relay", "4",
				 "arm", "1;", "serve", "6", NULL };

		pid = sp_spawn(argv, log);
	}
	end = sp_now_us() + 10 * 1000000;
	while (strstr(slurp(log), "phone: armed service 1") == NULL) {
		if (sp_now_us() > end || waitpid(pid, NULL, WNOHANG) == pid)
			fail_msg("the phone did not arm:\n%s", g_text);
		sp_sleep_ms(20);
	}

	snprintf(cl, sizeof(cl), "%s.cl", g_rig.se[0].link);
	fd = sp_unix_connect(cl, 5000);
	assert_true(fd >= 0);
	fr_send(fd, SE_LISTEN_T_APDU, sel, sizeof(sel));
	assert_int_equal(fr_recv(fd, &type, resp, sizeof(resp), &rn, 5000), 0);
	assert_int_equal(type, SE_LISTEN_T_RESPONSE);
	assert_int_equal(resp[rn - 2], 0x90);
	fr_send(fd, SE_LISTEN_T_APDU, env, sizeof(env));
	assert_int_equal(fr_recv(fd, &type, resp, sizeof(resp), &rn, 8000), 0);
	assert_true(rn >= 2);
	staged = rn > 3 && resp[0] == 0x81 && resp[rn - 2] == 0x90;
	if (staged) {
		/* The server staged a challenge: the phone answered the HELLO itself with
		 * 81 || INITIALIZE UPDATE. The next relay message must go up. */
		assert_int_equal(resp[1], 0x80);
		assert_int_equal(resp[2], 0x50);
		fr_send(fd, SE_LISTEN_T_APDU, env2, sizeof(env2));
		assert_int_equal(fr_recv(fd, &type, resp, sizeof(resp), &rn, 8000), 0);
		assert_true(rn >= 2);
	}
	/* The server's answer came through the phone: 8F (refused: a malformed AUTH, an
	 * unknown reader) or 81 || 9000, or RELAY_DOWN status 1 (6F00 at the reader). */
	if (resp[rn - 2] == 0x90)
		assert_true(rn > 2 && (resp[0] == 0x81 || resp[0] == 0x8F));
	else
		assert_true(resp[rn - 2] == 0x6F && resp[rn - 1] == 0x00);
	close(fd);

	assert_int_equal(waitpid(pid, &st, 0), pid);
	(void)slurp(log);
	print_message("%s", g_text);
	want_line(g_text, "phone: relay up 1\n");
	want_line(g_text, "phone: stats relay-rtts=1\n");
	if (staged)
		want_line(g_text, "phone: relay hello answered from the stage\n");
	if (resp[rn - 2] != 0x90)
		want_line(g_text, "phone: error: relay refused by the server\n");
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topup_balance_history),
		cmocka_unit_test(test_wrong_pin),
		cmocka_unit_test(test_profile_script),
		cmocka_unit_test(test_relay_pump),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
