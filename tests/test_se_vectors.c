/* test_se_vectors.c - the se's card role against someone else's host: every session of
 * tests/vectors/scp03-sessions.json (pySim's recorded SCP03 sessions: i = 70, KVN
 * 30/31/32, AES-128/192/256, levels 11/03/33, KDD 00..00) is replayed into the se. The
 * se must answer INITIALIZE UPDATE exactly as the recorded card did (the pseudo-random
 * challenge comes from the sequence counter, brought to the recorded value by earlier
 * INITIALIZE UPDATEs), accept the recorded EXTERNAL AUTHENTICATE, hand the test
 * application exactly the recorded plain commands, and wrap the recorded plain
 * responses into exactly the recorded card responses. Where the source recorded no
 * card response, the test application answers 9000 and our own host role checks the
 * R-MAC. The test application is the se's test-only seam (struct se_test_app) at the
 * vector's security-domain AID. */
#include "se_rig.h"

struct vec_app {
	uint8_t want_cmd[300];
	size_t want_n;
	uint8_t answer[300];
	size_t answer_n;
	int calls;
};

static struct vec_app app;

static int vec_app_handle(void *ctx, const uint8_t *cmd, size_t n, struct wr *resp)
{
	struct vec_app *a = ctx;

	a->calls++;
	assert_int_equal(n, a->want_n);
	assert_true(rig_same(cmd, a->want_cmd, n));
	return wr_bytes(resp, a->answer, a->answer_n);
}

static void run_session(const json_t *s)
{
	const json_t *params = json_object_get(s, "params"), *in = json_object_get(s, "inputs");
	const json_t *exp = json_object_get(s, "expected"), *steps = json_object_get(s, "steps");
	uint8_t buf[600], iu_resp[64], aid[16], challenge[16], out[600];
	struct se_test_app t;
	struct scp_keys k;
	struct scp_host_config hc;
	struct scp_host h;
	struct wr w;
	size_t n, aid_len, iu_len;
	uint32_t seq;
	uint8_t kvn;
	size_t i;
	json_t *step;

	memset(&k, 0, sizeof(k));
	k.len = vec_hex(in, "key_enc", k.enc, sizeof(k.enc));
	assert_int_equal(vec_hex(in, "key_mac", k.mac, sizeof(k.mac)), k.len);
	assert_int_equal(vec_hex(in, "key_dek", k.dek, sizeof(k.dek)), k.len);
	assert_int_equal(vec_hex(params, "kvn", &kvn, 1), 1);
	aid_len = vec_hex(params, "security_domain_aid", aid, sizeof(aid));
	assert_int_equal(vec_hex(exp, "sequence_counter", buf, 3), 3);
	seq = (uint32_t)buf[0] << 16 | (uint32_t)buf[1] << 8 | buf[2];
	print_message("%s: KVN %02X, %zu-byte keys, level %s, counter %u\n", vec_str(s, "id"), kvn,
		      k.len, vec_str(params, "security_level_p1"), seq);

	/* A personalised se whose test application sits at the vector's AID. */
	memset(&R, 0, sizeof(R));
	R.now = RIG_NOW;
	se_mem_init(&R.mem);
	assert_int_equal(se_format(&R.mem.store, rig_serial), 0);
	assert_int_equal(se_put_keyset(&R.mem.store, kvn, SE_ROLE_SERVER, &k), 0);
	memset(&t, 0, sizeof(t));
	memcpy(t.aid, aid, aid_len);
	t.aid_len = aid_len;
	assert_int_equal(vec_hex(exp, "key_diversification_data", t.kdd, sizeof(t.kdd)), SCP_KDD_LEN);
	t.handle = vec_app_handle;
	t.ctx = &app;
	R.cfg.test_app = &t;
	rig_start();
	assert_int_equal(rig_select(SE_IF_CONTACTLESS, aid, aid_len), SW_OK);

	/* Bring the counter to the recorded value: each INITIALIZE UPDATE takes one. */
	for (uint32_t c = 1; c < seq; c++) {
		assert_int_equal(rig_raw_hex(SE_IF_CONTACTLESS, "8050000008 0001020304050607 00"), SW_OK);
		assert_int_equal(R.resp[31], c);
	}

	/* INITIALIZE UPDATE: the recorded command, the recorded answer, byte for byte. */
	n = vec_hex(exp, "initialize_update_command", buf, sizeof(buf));
	rig_raw(SE_IF_CONTACTLESS, buf, n);
	iu_len = vec_hex(in, "initialize_update_response", iu_resp, sizeof(iu_resp));
	assert_hex_equal(R.resp, R.n + 2, vec_str(in, "initialize_update_response"));

	/* Our host follows along (to read the answers the source did not record). */
	n = vec_hex(in, "host_challenge", challenge, sizeof(challenge));
	memset(&hc, 0, sizeof(hc));
	memset(&h, 0, sizeof(h));
	hc.keys = &k;
	hc.host_challenge = challenge;
	hc.host_challenge_len = n;
	hc.kvn = kvn;
	assert_int_equal(vec_hex(params, "security_level_p1", &hc.level, 1), 1);
	hc.mode = SCP_MODE_S8;
	hc.aid = aid;
	hc.aid_len = aid_len;
	w = wr_init(out, sizeof(out));
	assert_int_equal(scp_host_begin(&h, &hc, &w), 0);
	w = wr_init(out, sizeof(out));
	assert_int_equal(scp_host_init_update(&h, iu_resp, iu_len, &w), 0);
	assert_hex_equal(out, w.len, vec_str(exp, "external_authenticate_command"));

	/* EXTERNAL AUTHENTICATE: the recorded command is accepted. */
	n = vec_hex(exp, "external_authenticate_command", buf, sizeof(buf));
	assert_int_equal(rig_raw(SE_IF_CONTACTLESS, buf, n), SW_OK);
	assert_int_equal(R.n, 0);
	assert_int_equal(scp_host_ext_auth(&h, R.resp, 2), 0);

	json_array_foreach(steps, i, step) {
		struct scp_resp info;
		struct wr pw;
		int calls = app.calls;

		app.want_n = vec_hex(step, "plain_command", app.want_cmd, sizeof(app.want_cmd));
		if (vec_has(step, "plain_response")) {
			app.answer_n = vec_hex(step, "plain_response", app.answer, sizeof(app.answer));
		} else {
			app.answer[0] = 0x90;
			app.answer[1] = 0x00;
			app.answer_n = 2;
		}
		w = wr_init(out, sizeof(out));
		assert_int_equal(scp_host_wrap(&h, app.want_cmd, app.want_n, &w), 0);
		assert_hex_equal(out, w.len, vec_str(step, "wrapped_command"));
		n = vec_hex(step, "wrapped_command", buf, sizeof(buf));
		assert_int_equal(rig_raw(SE_IF_CONTACTLESS, buf, n), SW_OK);
		assert_int_equal(app.calls, calls + 1);
		if (vec_has(step, "card_response"))
			assert_hex_equal(R.resp, R.n + 2, vec_str(step, "card_response"));
		pw = wr_init(out, sizeof(out));
		assert_int_equal(scp_host_unwrap(&h, R.resp, R.n + 2, &info, &pw), 0);
		assert_int_equal(info.sw, SW_OK);
		assert_int_equal(info.authenticated, (hc.level & SCP_LEVEL_RMAC) != 0);
		assert_true(rig_same(out, app.answer, app.answer_n));
	}
	/* The session's counter is durable. */
	assert_int_equal(R.se.img.ks[img_keyset_find(&R.se.img, kvn)].counter, seq);
}

static void test_sessions(void **state)
{
	json_t *root = vec_load("scp03-sessions.json");
	json_t *s;
	size_t i, count = 0;

	(void)state;
	json_array_foreach(root, i, s) {
		const json_t *params = json_object_get(s, "params");

		/* Every session of the file is in scope (i = 70, S8); say so if one is not. */
		assert_string_equal(vec_str(params, "scp_i"), "70");
		assert_string_equal(vec_str(params, "mode"), "S8");
		run_session(s);
		count++;
	}
	assert_int_equal(count, 9);
	json_decref(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sessions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
