/* test_scp03.c - SCP03 both roles: the pySim sessions (scp03-sessions.json) value by value
 * through the host and the card, host <-> card in memory over every key size, S8/S16,
 * level and challenge mode with commands of every case, and the failure rules (wrong keys
 * and cryptograms, tampering, replay, bare SWs, levels, counter exhaustion, padding). */
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "scp03.h"
#include "scp03_int.h"
#include "sw.h"
#include "vec.h"

#define BUF (APDU_MAX_CMD + 64u)

static uint8_t g_cmd[BUF], g_wrapped[BUF], g_plain[BUF], g_resp[BUF], g_out[BUF], g_tmp[BUF];

static size_t g_roundtrips; /* commands that went through the whole pair */

static const uint8_t g_aid[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static const uint8_t g_kdd[SCP_KDD_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

/* ------------------------------------------------------------ vector helpers --- */

struct vsess {
	const json_t *j, *in, *ex, *par;
	struct scp_keys keys;
	uint8_t hc[SCP_S16];
	size_t hclen;
	uint8_t iu[64];
	size_t iulen;
	uint8_t level, i, kvn;
	uint8_t aid[SCP_AID_MAX];
	size_t aid_len;
};

static uint8_t hexbyte(const json_t *obj, const char *key)
{
	uint8_t b[1];

	assert_int_equal(vec_hex(obj, key, b, 1), 1);
	return b[0];
}

static void vsess_load(const json_t *j, struct vsess *v)
{
	memset(v, 0, sizeof(*v));
	v->j = j;
	v->in = json_object_get(j, "inputs");
	v->ex = json_object_get(j, "expected");
	v->par = json_object_get(j, "params");
	v->keys.len = vec_hex(v->in, "key_enc", v->keys.enc, SCP_KEY_MAX);
	assert_int_equal(vec_hex(v->in, "key_mac", v->keys.mac, SCP_KEY_MAX), v->keys.len);
	assert_int_equal(vec_hex(v->in, "key_dek", v->keys.dek, SCP_KEY_MAX), v->keys.len);
	v->hclen = vec_hex(v->in, "host_challenge", v->hc, sizeof(v->hc));
	v->iulen = vec_hex(v->in, "initialize_update_response", v->iu, sizeof(v->iu));
	v->level = hexbyte(v->par, "security_level_p1");
	v->i = hexbyte(v->par, "scp_i");
	v->kvn = hexbyte(v->par, "kvn");
	v->aid_len = vec_hex(v->par, "security_domain_aid", v->aid, sizeof(v->aid));
}

/* A session struct holding the trace's keys, for the building-block functions. */
static void session_from_trace(const struct scp_trace *t, uint8_t level, struct scp_session *s)
{
	memset(s, 0, sizeof(*s));
	memcpy(s->s_enc, t->s_enc, SCP_KEY_MAX);
	memcpy(s->s_mac, t->s_mac, SCP_KEY_MAX);
	memcpy(s->s_rmac, t->s_rmac, SCP_KEY_MAX);
	memcpy(s->chain, t->chain, SCP_BLOCK);
	memcpy(s->counter, t->counter, SCP_BLOCK);
	s->keylen = t->keylen;
	s->maclen = t->challenge_len;
	s->level = level;
}

static size_t cat(uint8_t *dst, size_t at, const uint8_t *src, size_t n)
{
	memcpy(dst + at, src, n);
	return at + n;
}

/* ------------------------------------------------- (a) vectors through the host --- */

static void host_vector_handshake(struct vsess *v, struct scp_host *h, struct scp_trace *t)
{
	struct scp_host_config cfg = { &v->keys, v->hc, v->hclen, v->kvn, v->level,
				       SCP_MODE_AUTO, v->aid, v->aid_len };
	struct wr w = wr_init(g_out, sizeof(g_out));
	uint8_t buf[128], ok[2] = { 0x90, 0x00 };
	size_t n, L = v->hclen;

	assert_int_equal(scp_host_begin(h, &cfg, &w), 0);
	assert_hex_equal(w.p, w.len, vec_str(v->ex, "initialize_update_command"));
	w = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_host_init_update(h, v->iu, v->iulen, &w), 0);
	assert_hex_equal(w.p, w.len, vec_str(v->ex, "external_authenticate_command"));
	assert_int_equal(scp_host_trace(h, t), 0);

	assert_hex_equal(t->kdd, SCP_KDD_LEN, vec_str(v->ex, "key_diversification_data"));
	buf[0] = t->kvn;
	buf[1] = 0x03;
	buf[2] = t->i;
	assert_hex_equal(buf, 3, vec_str(v->ex, "key_information"));
	assert_int_equal(t->challenge_len, L);
	assert_hex_equal(t->card_challenge, L, vec_str(v->ex, "card_challenge"));
	assert_hex_equal(t->card_cryptogram, L, vec_str(v->ex, "card_cryptogram"));
	n = cat(buf, cat(buf, 0, t->host_challenge, L), t->card_challenge, L);
	assert_hex_equal(buf, n, vec_str(v->ex, "kdf_context_session"));
	assert_int_equal(t->keylen, v->keys.len);
	assert_hex_equal(t->s_enc, t->keylen, vec_str(v->ex, "s_enc"));
	assert_hex_equal(t->s_mac, t->keylen, vec_str(v->ex, "s_mac"));
	assert_hex_equal(t->s_rmac, t->keylen, vec_str(v->ex, "s_rmac"));
	assert_hex_equal(t->host_cryptogram, L, vec_str(v->ex, "host_cryptogram"));
	/* EXTERNAL AUTHENTICATE: MAC input = 16 zero bytes || header || host cryptogram. */
	memset(buf, 0, SCP_BLOCK);
	n = cat(buf, SCP_BLOCK, g_out, 5 + L);
	assert_hex_equal(buf, n, vec_str(v->ex, "external_authenticate_mac_input"));
	assert_hex_equal(g_out + 5 + L, L, vec_str(v->ex, "external_authenticate_c_mac"));
	assert_hex_equal(t->chain, SCP_BLOCK,
			 vec_str(v->ex, "mac_chaining_value_after_external_authenticate"));
	/* Pseudo-random card challenge from the sequence counter and the AID. */
	buf[0] = (uint8_t)(t->sequence_counter >> 16);
	buf[1] = (uint8_t)(t->sequence_counter >> 8);
	buf[2] = (uint8_t)t->sequence_counter;
	assert_hex_equal(buf, 3, vec_str(v->ex, "sequence_counter"));
	n = cat(buf, 3, v->aid, v->aid_len);
	assert_hex_equal(buf, n, vec_str(v->ex, "pseudo_random_card_challenge_context"));
	assert_int_equal(scp_card_challenge(&v->keys, t->sequence_counter, v->aid, v->aid_len, buf,
					    L), 0);
	assert_hex_equal(buf, L, vec_str(v->ex, "pseudo_random_card_challenge"));
	assert_int_equal(scp_host_ext_auth(h, ok, 2), 0);
	assert_int_equal(h->state, SCP_HOST_OPEN);
}

static void host_vector_response(struct vsess *v, struct scp_host *h, const json_t *st,
				 const struct scp_trace *t)
{
	struct scp_session s;
	struct scp_resp info;
	struct wr w = wr_init(g_out, sizeof(g_out));
	size_t rn = vec_hex(st, "card_response", g_resp, sizeof(g_resp));
	size_t L = t->challenge_len, n;
	uint8_t icv[SCP_BLOCK], block[SCP_BLOCK];

	session_from_trace(t, v->level, &s);
	if (vec_has(st, "r_mac_input")) {
		n = cat(g_tmp, cat(g_tmp, 0, t->chain, SCP_BLOCK), g_resp, rn - 2 - L);
		n = cat(g_tmp, n, g_resp + rn - 2, 2);
		assert_hex_equal(g_tmp, n, vec_str(st, "r_mac_input"));
		assert_hex_equal(g_resp + rn - 2 - L, L, vec_str(st, "r_mac"));
	}
	if (vec_has(st, "response_icv")) {
		memcpy(block, t->counter, SCP_BLOCK);
		block[0] = 0x80;
		assert_hex_equal(block, SCP_BLOCK, vec_str(st, "response_counter_block"));
		assert_int_equal(scp_icv(&s, t->counter, 1, icv), 0);
		assert_hex_equal(icv, SCP_BLOCK, vec_str(st, "response_icv"));
	}
	assert_int_equal(scp_host_unwrap(h, g_resp, rn, &info, &w), 0);
	assert_hex_equal(w.p, w.len, vec_str(st, "plain_response"));
	assert_int_equal(info.sw, 0x9000);
	assert_int_equal(info.n, w.len - 2);
	assert_int_equal(info.authenticated, (v->level & SCP_LEVEL_RMAC) ? 1 : 0);
	ct_wipe(&s, sizeof(s));
}

static void host_vector_step(struct vsess *v, struct scp_host *h, const json_t *st)
{
	struct scp_trace before, t;
	struct scp_session s;
	struct wr w = wr_init(g_wrapped, sizeof(g_wrapped));
	size_t pn = vec_hex(st, "plain_command", g_cmd, sizeof(g_cmd));
	size_t L = v->hclen, n, clen;
	uint8_t icv[SCP_BLOCK], block[SCP_BLOCK];
	struct apdu a;

	assert_int_equal(scp_host_trace(h, &before), 0);
	assert_int_equal(scp_host_wrap(h, g_cmd, pn, &w), 0);
	assert_hex_equal(w.p, w.len, vec_str(st, "wrapped_command"));
	assert_int_equal(scp_host_trace(h, &t), 0);
	assert_int_equal(apdu_parse(g_cmd, pn, &a), 0);
	clen = g_wrapped[4] - L; /* every vector command is short */
	if (vec_has(st, "encryption_counter_block"))
		assert_hex_equal(t.counter, SCP_BLOCK, vec_str(st, "encryption_counter_block"));
	if (vec_has(st, "encryption_counter_after")) {
		memset(block, 0, SCP_BLOCK);
		block[SCP_BLOCK - 1] = (uint8_t)atoi(vec_str(st, "encryption_counter_after"));
		assert_memory_equal(t.counter, block, SCP_BLOCK);
		assert_int_equal(clen, 0); /* nothing was encrypted */
	}
	if (vec_has(st, "command_icv")) {
		session_from_trace(&t, v->level, &s);
		assert_int_equal(scp_icv(&s, t.counter, 0, icv), 0);
		assert_hex_equal(icv, SCP_BLOCK, vec_str(st, "command_icv"));
		memcpy(g_tmp, a.data, a.nc);
		scp_pad(g_tmp, a.nc);
		assert_hex_equal(g_tmp, scp_padded_len(a.nc), vec_str(st, "padded_plaintext"));
		assert_hex_equal(g_wrapped + 5, clen, vec_str(st, "ciphertext"));
		assert_int_equal(crypto_aes_cbc_decrypt(s.s_enc, s.keylen, icv, g_wrapped + 5, clen,
							g_tmp), 0);
		assert_hex_equal(g_tmp, clen, vec_str(st, "padded_plaintext"));
		ct_wipe(&s, sizeof(s));
	}
	n = cat(g_tmp, cat(g_tmp, 0, before.chain, SCP_BLOCK), g_wrapped, 5 + clen);
	assert_hex_equal(g_tmp, n, vec_str(st, "c_mac_input"));
	assert_hex_equal(t.chain, SCP_BLOCK, vec_str(st, "mac_chaining_value_after"));
	assert_hex_equal(g_wrapped + 5 + clen, L, vec_str(st, "c_mac"));
	if (vec_has(st, "card_response"))
		host_vector_response(v, h, st, &t);
}

static void test_vectors_host(void **state)
{
	json_t *root = vec_load("scp03-sessions.json");
	size_t k, count = 0, steps = 0;
	json_t *j, *st;

	(void)state;
	json_array_foreach(root, k, j) {
		struct vsess v;
		struct scp_host h;
		struct scp_trace t;
		size_t m;

		vsess_load(j, &v);
		host_vector_handshake(&v, &h, &t);
		json_array_foreach(json_object_get(j, "steps"), m, st) {
			host_vector_step(&v, &h, st);
			steps++;
		}
		scp_host_close(&h);
		assert_int_equal(h.state, SCP_HOST_CLOSED);
		count++;
	}
	assert_int_equal(count, 9);
	assert_int_equal(steps, 45);
	json_decref(root);
}

/* ------------------------------------------------- (b) vectors through the card --- */

static void card_vector_session(const json_t *j)
{
	struct vsess v;
	struct scp_card c;
	struct scp_card_result res;
	struct scp_card_config cfg;
	struct wr w;
	uint8_t seq[3];
	uint32_t counter;
	size_t n, m;
	json_t *st;

	vsess_load(j, &v);
	memset(&cfg, 0, sizeof(cfg));
	cfg.i = v.i;
	assert_int_equal(vec_hex(v.ex, "key_diversification_data", cfg.kdd, SCP_KDD_LEN), SCP_KDD_LEN);
	cfg.aid = v.aid;
	cfg.aid_len = v.aid_len;
	assert_int_equal(scp_card_init(&c, &cfg), 0);

	n = vec_hex(v.ex, "initialize_update_command", g_cmd, sizeof(g_cmd));
	w = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, g_cmd, n, &res, &w), 0);
	assert_int_equal(res.action, SCP_CARD_NEED_KEYS);
	assert_int_equal(res.kvn, v.kvn);
	assert_int_equal(w.len, 0);
	/* The card increments before use: the stored value is one less. */
	assert_int_equal(vec_hex(v.ex, "sequence_counter", seq, 3), 3);
	counter = ((uint32_t)seq[0] << 16) | ((uint32_t)seq[1] << 8) | seq[2];
	assert_int_equal(scp_card_supply_keys(&c, v.kvn, &v.keys, counter - 1, NULL, 0, &res, &w), 0);
	assert_int_equal(res.action, SCP_CARD_PERSIST);
	assert_int_equal(res.counter, counter);
	assert_int_equal(w.len, 0); /* nothing released before the counter is saved */
	assert_int_equal(scp_card_counter_saved(&c, &res, &w), 0);
	assert_int_equal(res.action, SCP_CARD_SEND);
	assert_hex_equal(w.p, w.len, vec_str(v.in, "initialize_update_response"));

	n = vec_hex(v.ex, "external_authenticate_command", g_cmd, sizeof(g_cmd));
	w = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, g_cmd, n, &res, &w), 0);
	assert_int_equal(res.action, SCP_CARD_SEND);
	assert_int_equal(res.auth, SCP_CARD_AUTH_OK);
	assert_int_equal(res.kvn, v.kvn);
	assert_hex_equal(w.p, w.len, "9000");

	json_array_foreach(json_object_get(j, "steps"), m, st) {
		n = vec_hex(st, "wrapped_command", g_cmd, sizeof(g_cmd));
		w = wr_init(g_out, sizeof(g_out));
		assert_int_equal(scp_card_command(&c, g_cmd, n, &res, &w), 0);
		assert_int_equal(res.action, SCP_CARD_DELIVER);
		assert_int_equal(res.authenticated, 1);
		assert_int_equal(res.level, v.level);
		assert_hex_equal(w.p, w.len, vec_str(st, "plain_command"));
		if (!vec_has(st, "card_response"))
			continue;
		n = vec_hex(st, "plain_response", g_resp, sizeof(g_resp));
		w = wr_init(g_out, sizeof(g_out));
		assert_int_equal(scp_card_respond(&c, g_resp, n, &w), 0);
		assert_hex_equal(w.p, w.len, vec_str(st, "card_response"));
	}
	scp_card_reset(&c);
	assert_int_equal(c.state, SCP_CARD_STATE_IDLE);
}

static void test_vectors_card(void **state)
{
	json_t *root = vec_load("scp03-sessions.json");
	size_t k;
	json_t *j;

	(void)state;
	assert_int_equal(json_array_size(root), 9);
	json_array_foreach(root, k, j)
		card_vector_session(j);
	json_decref(root);
}

/* ------------------------------------------------- in-memory host <-> card pair --- */

struct pair {
	struct scp_host h;
	struct scp_card c;
	struct scp_keys keys;
	uint8_t level;
	uint32_t counter; /* the card's stored sequence counter */
};

static void make_keys(struct scp_keys *k, size_t len, uint8_t seed)
{
	memset(k, 0, sizeof(*k));
	for (size_t x = 0; x < len; x++) {
		k->enc[x] = (uint8_t)(seed + x);
		k->mac[x] = (uint8_t)(seed + 0x40 + x);
		k->dek[x] = (uint8_t)(seed + 0x80 + x);
	}
	k->len = len;
}

/* Card side of the pair, up to its INITIALIZE UPDATE answer in g_out. */
static void pair_card_iu(struct pair *p, const uint8_t *cmd, size_t n, struct wr *w,
			 struct scp_card_result *res)
{
	static const uint8_t challenge[SCP_S16] = { 0xC0, 0xC1, 0xC2, 0xC3, 0xC4, 0xC5, 0xC6, 0xC7,
						    0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xCF };

	assert_int_equal(scp_card_command(&p->c, cmd, n, res, w), 0);
	assert_int_equal(res->action, SCP_CARD_NEED_KEYS);
	assert_int_equal(scp_card_supply_keys(&p->c, 0x30, &p->keys, p->counter, challenge,
					      p->c.challenge_len, res, w), 0);
	if (res->action == SCP_CARD_PERSIST) {
		assert_int_equal(res->counter, p->counter + 1);
		p->counter = res->counter;
		assert_int_equal(scp_card_counter_saved(&p->c, res, w), 0);
	}
	assert_int_equal(res->action, SCP_CARD_SEND);
}

/* Sets up a card with i and a host asking for level; runs the handshake. Returns the
 * host's result of the INITIALIZE UPDATE response (0 on a full handshake). */
static int pair_open_keys(struct pair *p, const struct scp_keys *card_keys, size_t keylen,
			  uint8_t i, uint8_t level, enum scp_mode mode, size_t hclen)
{
	static const uint8_t hc[SCP_S16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
					     0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xF0, 0x01 };
	struct scp_card_config cc = { i, { 0 }, g_aid, sizeof(g_aid) };
	struct scp_host_config hcfg;
	struct scp_card_result res;
	struct wr w = wr_init(g_cmd, sizeof(g_cmd)), o = wr_init(g_out, sizeof(g_out));
	int rc;

	memset(p, 0, sizeof(*p));
	make_keys(&p->keys, keylen, 0x40);
	memcpy(cc.kdd, g_kdd, SCP_KDD_LEN);
	assert_int_equal(scp_card_init(&p->c, &cc), 0);
	memset(&hcfg, 0, sizeof(hcfg));
	hcfg.keys = &p->keys;
	hcfg.host_challenge = hc;
	hcfg.host_challenge_len = hclen;
	hcfg.kvn = 0x30;
	hcfg.level = level;
	hcfg.mode = mode;
	hcfg.aid = g_aid;
	hcfg.aid_len = sizeof(g_aid);
	p->level = level;
	assert_int_equal(scp_host_begin(&p->h, &hcfg, &w), 0);
	if (card_keys != NULL)
		p->keys = *card_keys; /* the card holds other keys than the host */
	pair_card_iu(p, w.p, w.len, &o, &res);
	make_keys(&p->keys, keylen, 0x40);
	w = wr_init(g_cmd, sizeof(g_cmd));
	if ((rc = scp_host_init_update(&p->h, o.p, o.len, &w)) != 0)
		return rc;
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&p->c, w.p, w.len, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_SEND);
	assert_int_equal(res.auth, SCP_CARD_AUTH_OK);
	assert_int_equal(p->c.state, SCP_CARD_STATE_OPEN);
	assert_int_equal(scp_host_ext_auth(&p->h, o.p, o.len), 0);
	return 0;
}

static void pair_open(struct pair *p, size_t keylen, uint8_t i, uint8_t level)
{
	size_t hclen = (i & SCP_I_S16) ? SCP_S16 : SCP_S8;

	assert_int_equal(pair_open_keys(p, NULL, keylen, i, level, SCP_MODE_AUTO, hclen), 0);
}

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t x = 0; x < n; x++)
		p[x] = (uint8_t)(seed + 7 * x);
}

/* One command through host -> card -> application -> card -> host, checked at each end. */
static void roundtrip(struct pair *p, const struct apdu *plain, size_t rlen, uint16_t sw)
{
	struct wr w = wr_init(g_plain, sizeof(g_plain));
	struct wr ww = wr_init(g_wrapped, sizeof(g_wrapped));
	struct wr o = wr_init(g_out, sizeof(g_out));
	struct scp_card_result res;
	struct scp_resp info;
	size_t pn, rn;
	int rmac = (p->level & SCP_LEVEL_RMAC) != 0;
	int protected_sw = scp_sw_protected(sw);

	assert_int_equal(apdu_encode(plain, &w), 0);
	pn = w.len;
	assert_int_equal(scp_host_wrap(&p->h, g_plain, pn, &ww), 0);
	assert_int_equal(scp_card_command(&p->c, ww.p, ww.len, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_int_equal(res.authenticated, 1);
	assert_int_equal(res.level, p->level);
	assert_int_equal(o.len, pn);
	assert_memory_equal(o.p, g_plain, pn);
	/* The application answers. */
	fill(g_resp, rlen, (uint8_t)(rlen + 3));
	g_resp[rlen] = (uint8_t)(sw >> 8);
	g_resp[rlen + 1] = (uint8_t)sw;
	rn = rlen + 2;
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_respond(&p->c, g_resp, rn, &o), 0);
	if (rmac && !protected_sw) {
		assert_int_equal(o.len, 2); /* bare */
	}
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p->h, o.p, o.len, &info, &w), 0);
	assert_int_equal(info.sw, sw);
	assert_int_equal(info.authenticated, rmac && protected_sw);
	if (rmac && !protected_sw) {
		assert_int_equal(info.n, 0);
	} else {
		assert_int_equal(info.n, rlen);
		assert_int_equal(w.len, rn);
		assert_memory_equal(w.p, g_resp, rn);
	}
	g_roundtrips++;
}

static const size_t g_sizes[] = { 0, 1, 15, 16, 17, 255, 256, 1000 };
static const size_t g_nes[] = { 0, 1, 256, 257, 65536 };

static void matrix_session(size_t keylen, int s16, uint8_t level, int pseudo)
{
	uint8_t i = (uint8_t)(SCP_I_RMAC | SCP_I_RENC | (pseudo ? SCP_I_PSEUDO_RANDOM : 0) |
			      (s16 ? SCP_I_S16 : 0));
	struct pair p;
	size_t k = 0;

	pair_open(&p, keylen, i, level);
	for (size_t a = 0; a < sizeof(g_sizes) / sizeof(g_sizes[0]); a++) {
		for (size_t b = 0; b < sizeof(g_nes) / sizeof(g_nes[0]); b++, k++) {
			struct apdu cmd = { 0x80, 0xCA, (uint8_t)k, 0x00, g_cmd, g_sizes[a], g_nes[b], 0 };
			size_t rlen = g_sizes[(k * 3) % 8];
			uint16_t sw = 0x9000;

			fill(g_cmd, cmd.nc, (uint8_t)k);
			if (k % 5 == 4)
				sw = 0x6310;
			if (k % 7 == 6) {
				sw = 0x6A88;
				rlen = 0;
			}
			if (k % 2)
				cmd.cla = 0x00;
			roundtrip(&p, &cmd, rlen, sw);
		}
	}
	scp_host_close(&p.h);
	scp_card_reset(&p.c);
}

static void test_matrix(void **state)
{
	static const size_t keylens[] = { 16, 24, 32 };
	static const uint8_t levels[] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };

	(void)state;
	g_roundtrips = 0;
	for (size_t kl = 0; kl < 3; kl++)
		for (int s16 = 0; s16 < 2; s16++)
			for (size_t lv = 0; lv < 6; lv++)
				for (int pseudo = 0; pseudo < 2; pseudo++)
					matrix_session(keylens[kl], s16, levels[lv], pseudo);
	assert_int_equal(g_roundtrips, 3 * 2 * 6 * 2 * 8 * 5);
}

/* Explicit S8/S16 modes and extended commands on the host side keep the pair in step. */
static void test_explicit_modes(void **state)
{
	struct pair p;
	struct apdu cmd = { 0x80, 0xE2, 0x00, 0x00, g_cmd, 300, 0, 0 };

	(void)state;
	fill(g_cmd, 300, 9);
	assert_int_equal(pair_open_keys(&p, NULL, 16, 0x71, 0x33, SCP_MODE_S16, 16), 0);
	roundtrip(&p, &cmd, 20, 0x9000);
	assert_int_equal(pair_open_keys(&p, NULL, 32, 0x70, 0x33, SCP_MODE_S8, 8), 0);
	roundtrip(&p, &cmd, 20, 0x9000);
	/* An explicit mode that disagrees with the challenge length is refused up front. */
	{
		struct scp_host h;
		struct scp_host_config cfg = { &p.keys, g_cmd, 8, 0, 0x33, SCP_MODE_S16, NULL, 0 };
		struct wr w = wr_init(g_out, sizeof(g_out));

		assert_int_equal(scp_host_begin(&h, &cfg, &w), TB_E_INVAL);
		assert_int_equal(w.len, 0);
		cfg.host_challenge_len = 9;
		cfg.mode = SCP_MODE_AUTO;
		assert_int_equal(scp_host_begin(&h, &cfg, &w), TB_E_INVAL);
		cfg.host_challenge_len = 8;
		cfg.level = 0x07;
		assert_int_equal(scp_host_begin(&h, &cfg, &w), TB_E_SCP_LEVEL);
		cfg.level = 0x33;
		w = wr_init(g_out, 13);
		assert_int_equal(scp_host_begin(&h, &cfg, &w), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
	}
}

/* --------------------------------------------------------------- (d) failures --- */

static void send_card(struct pair *p, const uint8_t *cmd, size_t n, struct scp_card_result *res,
		      struct wr *o)
{
	*o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&p->c, cmd, n, res, o), 0);
}

static void assert_6982(struct pair *p, const uint8_t *cmd, size_t n)
{
	struct scp_card_result res;
	struct wr o;

	send_card(p, cmd, n, &res, &o);
	assert_int_equal(res.action, SCP_CARD_SEND);
	assert_hex_equal(o.p, o.len, "6982");
	assert_int_equal(p->c.state, SCP_CARD_STATE_CLOSED);
}

static size_t wrap_one(struct pair *p, const char *hex, uint8_t *out)
{
	struct wr w = wr_init(out, BUF);
	size_t n = hexbuf(hex, g_plain, sizeof(g_plain));

	assert_int_equal(scp_host_wrap(&p->h, g_plain, n, &w), 0);
	return w.len;
}

static void test_wrong_keys(void **state)
{
	struct pair p;
	struct scp_keys other;
	struct wr w = wr_init(g_out, sizeof(g_out));
	struct scp_resp info;

	(void)state;
	make_keys(&other, 16, 0x40);
	other.mac[5] ^= 0x01;
	assert_int_equal(pair_open_keys(&p, &other, 16, 0x70, 0x33, SCP_MODE_AUTO, 8),
			 TB_E_SCP_CARD_CRYPTOGRAM);
	assert_int_equal(p.h.state, SCP_HOST_CLOSED);
	/* Closed and wiped: every later call says so. */
	for (size_t k = 0; k < sizeof(p.h.s.s_mac); k++)
		assert_int_equal(p.h.s.s_mac[k], 0);
	assert_int_equal(scp_host_wrap(&p.h, g_aid, 4, &w), TB_E_SCP_CLOSED);
	assert_int_equal(scp_host_unwrap(&p.h, g_aid, 2, &info, &w), TB_E_SCP_CLOSED);
	assert_int_equal(scp_host_ext_auth(&p.h, g_aid, 2), TB_E_SCP_CLOSED);
	assert_int_equal(w.len, 0);
	/* Other Key-ENC: the pseudo-random challenge no longer matches (checked after the
	 * cryptogram, so Key-MAC stays right here). */
	make_keys(&other, 16, 0x40);
	other.enc[0] ^= 0x80;
	assert_int_equal(pair_open_keys(&p, &other, 16, 0x70, 0x33, SCP_MODE_AUTO, 8),
			 TB_E_SCP_CHALLENGE);
	assert_int_equal(p.h.state, SCP_HOST_CLOSED);
}

/* Runs a pair up to the card's INITIALIZE UPDATE answer, returns the EA command length. */
static size_t pair_until_ea(struct pair *p, uint8_t i, uint8_t level, uint8_t *ea)
{
	static const uint8_t hc[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct scp_card_config cc = { i, { 0 }, g_aid, sizeof(g_aid) };
	struct scp_host_config hcfg = { NULL, hc, 8, 0, level, SCP_MODE_AUTO, NULL, 0 };
	struct scp_card_result res;
	struct wr w = wr_init(g_cmd, sizeof(g_cmd)), o = wr_init(g_out, sizeof(g_out));

	memset(p, 0, sizeof(*p));
	make_keys(&p->keys, 16, 0x40);
	hcfg.keys = &p->keys;
	assert_int_equal(scp_card_init(&p->c, &cc), 0);
	assert_int_equal(scp_host_begin(&p->h, &hcfg, &w), 0);
	pair_card_iu(p, w.p, w.len, &o, &res);
	w = wr_init(ea, BUF);
	assert_int_equal(scp_host_init_update(&p->h, o.p, o.len, &w), 0);
	return w.len;
}

/* A correct C-MAC over a wrong host cryptogram, from the card's own session keys. */
static size_t forge_ea(struct pair *p, uint8_t level, const uint8_t *crypto, uint8_t *ea)
{
	struct scp_trace t;
	struct scp_session s;
	uint8_t tag[SCP_BLOCK];

	assert_int_equal(scp_card_trace(&p->c, &t), 0);
	session_from_trace(&t, 0, &s);
	memset(s.chain, 0, SCP_BLOCK);
	ea[0] = 0x84;
	ea[1] = 0x82;
	ea[2] = level;
	ea[3] = 0x00;
	ea[4] = 16;
	memcpy(ea + 5, crypto, 8);
	assert_int_equal(scp_cmac(&s, ea, 5, ea + 5, 8, tag), 0);
	memcpy(ea + 13, tag, 8);
	return 21;
}

static void test_wrong_host_cryptogram(void **state)
{
	struct pair p;
	struct scp_card_result res;
	struct wr o;
	uint8_t ea[64], bad[8] = { 0 };
	size_t n;

	(void)state;
	/* A flipped cryptogram byte: MAC and cryptogram both fail. */
	n = pair_until_ea(&p, 0x70, 0x33, ea);
	ea[6] ^= 0x01;
	send_card(&p, ea, n, &res, &o);
	assert_hex_equal(o.p, o.len, "6300");
	assert_int_equal(res.auth, SCP_CARD_AUTH_FAILED);
	assert_int_equal(res.kvn, 0x30);
	assert_int_equal(p.c.state, SCP_CARD_STATE_CLOSED);
	ea[6] ^= 0x01; /* the right one now comes too late */
	assert_6982(&p, ea, n);
	/* no session: a protected command is refused */
	n = hexbuf("84CA0066080102030405060708", g_wrapped, sizeof(g_wrapped));
	assert_6982(&p, g_wrapped, n);

	/* A valid C-MAC over a wrong cryptogram: still 6300, no session. */
	n = pair_until_ea(&p, 0x70, 0x33, ea);
	n = forge_ea(&p, 0x33, bad, ea);
	send_card(&p, ea, n, &res, &o);
	assert_hex_equal(o.p, o.len, "6300");
	assert_int_equal(res.auth, SCP_CARD_AUTH_FAILED);
	assert_int_equal(scp_host_ext_auth(&p.h, o.p, o.len), TB_E_SCP_SW);
	assert_int_equal(p.h.state, SCP_HOST_CLOSED);

	/* A wrong C-MAC over the right cryptogram. */
	n = pair_until_ea(&p, 0x70, 0x33, ea);
	ea[n - 1] ^= 0x40;
	send_card(&p, ea, n, &res, &o);
	assert_hex_equal(o.p, o.len, "6300");
	assert_int_equal(res.auth, SCP_CARD_AUTH_FAILED);

	/* Anything but EXTERNAL AUTHENTICATE after INITIALIZE UPDATE ends the handshake. */
	n = pair_until_ea(&p, 0x70, 0x33, ea);
	assert_6982(&p, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5);
	assert_6982(&p, ea, n);
}

static void test_level_refused(void **state)
{
	struct pair p;
	struct scp_card_result res;
	struct wr o;
	uint8_t ea[64], crypto[8];
	size_t n;

	(void)state;
	/* Host side: i 10 offers neither R-MAC nor R-ENC; i 30 offers no R-ENC. */
	assert_int_equal(pair_open_keys(&p, NULL, 16, 0x10, 0x11, SCP_MODE_AUTO, 8), TB_E_SCP_LEVEL);
	assert_int_equal(p.h.state, SCP_HOST_CLOSED);
	assert_int_equal(pair_open_keys(&p, NULL, 16, 0x30, 0x33, SCP_MODE_AUTO, 8), TB_E_SCP_LEVEL);
	assert_int_equal(pair_open_keys(&p, NULL, 16, 0x30, 0x13, SCP_MODE_AUTO, 8), 0);
	assert_int_equal(scp_level_check(0x33, 0x70), 0);
	assert_int_equal(scp_level_check(0x33, 0x50), TB_E_SCP_LEVEL);
	assert_int_equal(scp_level_check(0x02, 0x70), TB_E_SCP_LEVEL);
	/* Card side: a host asking for 33 from an i=30 card gets 6982, not a failed try. */
	n = pair_until_ea(&p, 0x30, 0x13, ea);
	memcpy(crypto, ea + 5, 8);
	n = forge_ea(&p, 0x33, crypto, ea);
	send_card(&p, ea, n, &res, &o);
	assert_hex_equal(o.p, o.len, "6982");
	assert_int_equal(res.auth, SCP_CARD_AUTH_NONE);
	assert_int_equal(res.err, TB_E_SCP_LEVEL);
	/* An undefined level: 6A86. */
	n = pair_until_ea(&p, 0x30, 0x13, ea);
	ea[2] = 0x07;
	send_card(&p, ea, n, &res, &o);
	assert_hex_equal(o.p, o.len, "6A86");
	assert_int_equal(p.c.state, SCP_CARD_STATE_CLOSED);
	/* Wrong length: 6700. */
	n = pair_until_ea(&p, 0x30, 0x13, ea);
	ea[4] = (uint8_t)(n - 6);
	send_card(&p, ea, n - 1, &res, &o);
	assert_hex_equal(o.p, o.len, "6700");
	assert_int_equal(res.auth, SCP_CARD_AUTH_NONE);
}

static void test_tampered_command(void **state)
{
	struct pair p;
	uint8_t good[64];
	size_t n;

	(void)state;
	/* Every byte but Le (which the C-MAC does not cover, see below). */
	pair_open(&p, 16, 0x70, 0x33);
	n = wrap_one(&p, "80E2910006BF3E035C015A00", good);
	for (size_t pos = 0; pos + 1 < n; pos++) {
		for (unsigned flip = 0x01; flip <= 0x80; flip <<= 3) {
			pair_open(&p, 16, 0x70, 0x33);
			(void)wrap_one(&p, "80E2910006BF3E035C015A00", g_wrapped);
			assert_memory_equal(g_wrapped, good, n);
			g_wrapped[pos] ^= (uint8_t)flip;
			assert_6982(&p, g_wrapped, n);
			/* aborted: the untouched command comes too late */
			assert_6982(&p, good, n);
		}
	}
	/* Truncations are refused too (all but dropping Le: see test_le_not_maced). */
	for (size_t cut = 0; cut + 1 < n; cut++) {
		pair_open(&p, 16, 0x70, 0x33);
		assert_int_equal(wrap_one(&p, "80E2910006BF3E035C015A00", g_wrapped), n);
		assert_6982(&p, g_wrapped, cut);
	}
}

/* Le is outside the C-MAC (Amendment D and every peer): a relay may change it. */
static void test_le_not_maced(void **state)
{
	struct pair p;
	struct scp_card_result res;
	struct wr o;
	size_t n;

	(void)state;
	pair_open(&p, 16, 0x70, 0x33);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	g_wrapped[n - 1] = 0x10;
	send_card(&p, g_wrapped, n, &res, &o);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_hex_equal(o.p, o.len, "80CA006610");
	/* ... or drop it. */
	pair_open(&p, 16, 0x70, 0x33);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	send_card(&p, g_wrapped, n - 1, &res, &o);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_hex_equal(o.p, o.len, "80CA0066");
}

static void test_tampered_response(void **state)
{
	static const uint8_t levels[] = { 0x11, 0x33 };
	struct scp_card_result res;
	struct scp_resp info;
	struct pair p;
	struct wr o, w;
	uint8_t good[128];
	size_t n, rn;

	(void)state;
	for (size_t lv = 0; lv < 2; lv++) {
		for (size_t pos = 0;; pos++) {
			pair_open(&p, 16, 0x70, levels[lv]);
			n = wrap_one(&p, "80CA006600", g_wrapped);
			send_card(&p, g_wrapped, n, &res, &o);
			o = wr_init(good, sizeof(good));
			assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\x01\x02\x03\x90\x00", 5,
							  &o), 0);
			rn = o.len;
			if (pos >= rn)
				break;
			memcpy(g_resp, good, rn);
			g_resp[pos] ^= 0x01;
			w = wr_init(g_tmp, sizeof(g_tmp));
			assert_int_equal(scp_host_unwrap(&p.h, g_resp, rn, &info, &w), TB_E_SCP_RMAC);
			assert_int_equal(w.len, 0);
			assert_int_equal(p.h.state, SCP_HOST_CLOSED);
			assert_int_equal(scp_host_unwrap(&p.h, good, rn, &info, &w), TB_E_SCP_CLOSED);
			assert_int_equal(scp_host_wrap(&p.h, g_plain, 4, &w), TB_E_SCP_CLOSED);
		}
	}
	/* A truncated response (R-MAC cut) is refused the same way. */
	pair_open(&p, 16, 0x70, 0x11);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	send_card(&p, g_wrapped, n, &res, &o);
	o = wr_init(good, sizeof(good));
	assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\x90\x00", 2, &o), 0);
	assert_int_equal(o.len, 10);
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, good + 1, 9, &info, &w), TB_E_SCP_RMAC);
}

static void test_replay(void **state)
{
	struct pair p;
	struct scp_card_result res;
	struct wr o;
	size_t n1, n2;
	uint8_t first[64];

	(void)state;
	pair_open(&p, 16, 0x70, 0x01);
	n1 = wrap_one(&p, "80CA006600", first);
	send_card(&p, first, n1, &res, &o);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\x90\x00", 2, &o), 0);
	/* The same bytes again: the chain has moved on. */
	assert_6982(&p, first, n1);
	/* And a command held back, then sent after a later one. */
	pair_open(&p, 16, 0x70, 0x03);
	n1 = wrap_one(&p, "80CA006600", first);
	n2 = wrap_one(&p, "80CA006700", g_wrapped);
	assert_6982(&p, g_wrapped, n2);
	(void)n1;
}

static void test_bare_error_sw(void **state)
{
	struct pair p;
	struct scp_card_result res;
	struct scp_resp info;
	struct wr o, w;
	size_t n;

	(void)state;
	pair_open(&p, 24, 0x70, 0x33);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	send_card(&p, g_wrapped, n, &res, &o);
	/* The application's data with an error SW is dropped; the SW goes bare. */
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\xAA\x6A\x88", 3, &o), 0);
	assert_hex_equal(o.p, o.len, "6A88");
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, o.p, o.len, &info, &w), 0);
	assert_int_equal(info.sw, 0x6A88);
	assert_int_equal(info.authenticated, 0);
	assert_int_equal(info.n, 0);
	assert_hex_equal(w.p, w.len, "6A88");
	assert_int_equal(p.h.state, SCP_HOST_OPEN);
	/* The channel goes on. */
	{
		struct apdu cmd = { 0x80, 0xCA, 0, 0x66, NULL, 0, 256, 0 };

		p.level = 0x33;
		roundtrip(&p, &cmd, 5, 0x9000);
	}
	/* A relayed "success" without R-MAC is not success: 9000 alone fails the R-MAC. */
	n = wrap_one(&p, "80CA006600", g_wrapped);
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, (const uint8_t *)"\x90\x00", 2, &info, &w),
			 TB_E_SCP_RMAC);
	/* Data with an unprotected SW cannot be the card's. */
	pair_open(&p, 16, 0x70, 0x11);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, (const uint8_t *)"\x01\x6A\x88", 3, &info, &w),
			 TB_E_SCP_RMAC);
	/* At a level without R-MAC every response is passed on unauthenticated. */
	pair_open(&p, 16, 0x70, 0x03);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, (const uint8_t *)"\x01\x90\x00", 3, &info, &w), 0);
	assert_int_equal(info.authenticated, 0);
	assert_int_equal(info.sw, 0x9000);
	assert_int_equal(info.n, 1);
	/* Unwrap needs a wrapped command awaiting its response. */
	assert_int_equal(scp_host_unwrap(&p.h, (const uint8_t *)"\x90\x00", 2, &info, &w),
			 TB_E_SCP_STATE);
	assert_int_equal(scp_host_unwrap(&p.h, (const uint8_t *)"\x90", 1, &info, &w),
			 TB_E_SCP_STATE);
	(void)n;
}

static void test_counter(void **state)
{
	static const uint8_t hc[8] = { 0 };
	struct scp_card_config cc = { 0x70, { 0 }, g_aid, sizeof(g_aid) };
	struct scp_host_config hcfg = { NULL, hc, 8, 0, 0x33, SCP_MODE_AUTO, NULL, 0 };
	struct scp_card_result res;
	struct scp_keys keys;
	struct scp_card c;
	struct scp_host h;
	struct wr w, o;

	(void)state;
	make_keys(&keys, 16, 1);
	hcfg.keys = &keys;
	assert_int_equal(scp_card_init(&c, &cc), 0);
	w = wr_init(g_cmd, sizeof(g_cmd));
	assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, w.p, w.len, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_NEED_KEYS);
	assert_int_equal(res.kvn, 0x00);
	assert_int_equal(scp_card_supply_keys(&c, 0x21, &keys, SCP_COUNTER_LAST, NULL, 0, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_SEND);
	assert_int_equal(res.err, TB_E_SCP_COUNTER);
	assert_hex_equal(o.p, o.len, "6985");
	assert_int_equal(c.state, SCP_CARD_STATE_IDLE);
	/* The last value still works; the response names the KVN actually used. */
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, w.p, w.len, &res, &o), 0);
	assert_int_equal(scp_card_supply_keys(&c, 0x21, &keys, SCP_COUNTER_LAST - 1, NULL, 0, &res,
					      &o), 0);
	assert_int_equal(res.action, SCP_CARD_PERSIST);
	assert_int_equal(res.counter, SCP_COUNTER_LAST);
	assert_int_equal(res.kvn, 0x21);
	assert_int_equal(scp_card_counter_saved(&c, &res, &o), 0);
	assert_int_equal(o.len, 10 + 3 + 8 + 8 + 3 + 2);
	assert_hex_equal(o.p + 10, 3, "210370");
	assert_hex_equal(o.p + 29, 5, "FFFFFF9000");
	assert_int_equal(scp_host_init_update(&h, o.p, o.len, &w), 0);
	/* Refusing a pending INITIALIZE UPDATE (key set locked, counter not writable). */
	o = wr_init(g_out, sizeof(g_out));
	w = wr_init(g_cmd, sizeof(g_cmd));
	assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
	assert_int_equal(scp_card_command(&c, w.p, w.len, &res, &o), 0);
	assert_int_equal(scp_card_supply_keys(&c, 0x21, &keys, 5, NULL, 0, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_PERSIST);
	assert_int_equal(scp_card_refuse(&c, SW_MEMORY_FAILURE, &res, &o), 0);
	assert_hex_equal(o.p, o.len, "6581");
	assert_int_equal(scp_card_counter_saved(&c, &res, &o), TB_E_SCP_STATE);
	assert_int_equal(scp_card_supply_keys(&c, 0x21, &keys, 5, NULL, 0, &res, &o), TB_E_SCP_STATE);
	/* A command before the counter is saved drops the held response. */
	w = wr_init(g_cmd, sizeof(g_cmd));
	assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, w.p, w.len, &res, &o), 0);
	assert_int_equal(scp_card_supply_keys(&c, 0x21, &keys, 6, NULL, 0, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_PERSIST);
	assert_int_equal(o.len, 0);
	assert_int_equal(scp_card_command(&c, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5, &res, &o), 0);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_int_equal(scp_card_counter_saved(&c, &res, &o), TB_E_SCP_STATE);
	assert_int_equal(c.held_len, 0);
}

/* A C-DEC block holding only padding (yubikit's form of a data-less command). */
static size_t forge_cdec(struct pair *p, const uint8_t *block16, uint8_t *out)
{
	struct scp_trace t;
	struct scp_session s;
	uint8_t next[SCP_BLOCK], icv[SCP_BLOCK], tag[SCP_BLOCK];

	assert_int_equal(scp_host_trace(&p->h, &t), 0);
	session_from_trace(&t, 0x03, &s);
	scp_counter_next(s.counter, next);
	assert_int_equal(scp_icv(&s, next, 0, icv), 0);
	memcpy(out, "\x84\xCA\x00\x66\x18", 5);
	assert_int_equal(crypto_aes_cbc_encrypt(s.s_enc, s.keylen, icv, block16, 16, out + 5), 0);
	assert_int_equal(scp_cmac(&s, out, 5, out + 5, 16, tag), 0);
	memcpy(out + 21, tag, 8);
	out[29] = 0x00;
	return 30;
}

static void test_cdec_padding(void **state)
{
	uint8_t pad_only[16] = { 0x80 }, no_marker[16] = { 0x41, 0x42 }, late[16] = { 0 };
	struct scp_card_result res;
	struct pair p;
	struct wr o;
	size_t n;

	(void)state;
	pair_open(&p, 16, 0x70, 0x03);
	n = forge_cdec(&p, pad_only, g_wrapped);
	send_card(&p, g_wrapped, n, &res, &o);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_hex_equal(o.p, o.len, "80CA006600");
	/* Data that does not end in 80 00..: security error, session aborted. */
	pair_open(&p, 16, 0x70, 0x03);
	n = forge_cdec(&p, no_marker, g_wrapped);
	assert_6982(&p, g_wrapped, n);
	pair_open(&p, 16, 0x70, 0x03);
	n = forge_cdec(&p, late, g_wrapped); /* all zeros: no marker */
	assert_6982(&p, g_wrapped, n);
	/* Building blocks. */
	assert_int_equal(scp_unpad(pad_only, 16, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(scp_unpad(pad_only, 15, &n), TB_E_SCP_PADDING);
	assert_int_equal(scp_unpad(pad_only, 0, &n), TB_E_SCP_PADDING);
	late[15] = 0x80;
	assert_int_equal(scp_unpad(late, 16, &n), 0);
	assert_int_equal(n, 15);
	late[15] = 0x81;
	assert_int_equal(scp_unpad(late, 16, &n), TB_E_SCP_PADDING);
	assert_int_equal(scp_padded_len(0), 16);
	assert_int_equal(scp_padded_len(15), 16);
	assert_int_equal(scp_padded_len(16), 32);
}

static void test_renc_bad_padding(void **state)
{
	struct scp_card_result res;
	struct scp_resp info;
	struct scp_trace t;
	struct scp_session s;
	struct pair p;
	struct wr o, w;
	uint8_t icv[SCP_BLOCK], tag[SCP_BLOCK], resp[64], bad[16];
	size_t n;

	(void)state;
	pair_open(&p, 32, 0x70, 0x33);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	send_card(&p, g_wrapped, n, &res, &o);
	assert_int_equal(scp_card_trace(&p.c, &t), 0);
	session_from_trace(&t, 0x33, &s);
	memset(bad, 0x5A, sizeof(bad));
	assert_int_equal(scp_icv(&s, s.counter, 1, icv), 0);
	assert_int_equal(crypto_aes_cbc_encrypt(s.s_enc, s.keylen, icv, bad, 16, resp), 0);
	assert_int_equal(scp_rmac(&s, resp, 16, 0x9000, tag), 0);
	memcpy(resp + 16, tag, 8);
	resp[24] = 0x90;
	resp[25] = 0x00;
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, resp, 26, &info, &w), TB_E_SCP_PADDING);
	assert_int_equal(w.len, 0);
	assert_int_equal(p.h.state, SCP_HOST_CLOSED);
	/* R-ENC with no data: nothing to decrypt, R-MAC alone. */
	pair_open(&p, 16, 0x70, 0x33);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	send_card(&p, g_wrapped, n, &res, &o);
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\x90\x00", 2, &o), 0);
	assert_int_equal(o.len, 10);
	w = wr_init(g_tmp, sizeof(g_tmp));
	assert_int_equal(scp_host_unwrap(&p.h, o.p, o.len, &info, &w), 0);
	assert_hex_equal(w.p, w.len, "9000");
	assert_int_equal(info.authenticated, 1);
}

static void test_init_update_rules(void **state)
{
	struct scp_card_config cc = { 0x71, { 0 }, g_aid, sizeof(g_aid) };
	struct scp_card_result res;
	struct scp_card c;
	struct pair p;
	struct wr o;
	size_t n;

	(void)state;
	assert_int_equal(scp_card_init(&c, &cc), 0);
	/* S16 card, 8-byte host challenge: 6700 (GlobalPlatformPro then retries with 16). */
	n = hexbuf("8050300008010203040506070800", g_cmd, sizeof(g_cmd));
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, g_cmd, n, &res, &o), 0);
	assert_hex_equal(o.p, o.len, "6700");
	n = hexbuf("805030011001020304050607080102030405060708", g_cmd, sizeof(g_cmd));
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_command(&c, g_cmd, n, &res, &o), 0);
	assert_hex_equal(o.p, o.len, "6A86");
	/* A host with an 8-byte challenge sees 6700 as TB_E_SCP_SW and closes. */
	{
		struct scp_host h;
		struct scp_keys k;
		struct scp_host_config hc = { &k, g_kdd, 8, 0, 0x33, SCP_MODE_AUTO, NULL, 0 };
		struct wr w = wr_init(g_cmd, sizeof(g_cmd));

		make_keys(&k, 16, 0);
		assert_int_equal(scp_host_begin(&h, &hc, &w), 0);
		assert_int_equal(scp_host_init_update(&h, (const uint8_t *)"\x67\x00", 2, &w),
				 TB_E_SCP_SW);
		assert_int_equal(h.state, SCP_HOST_CLOSED);
	}
	/* Config rules. */
	cc.i = 0x72;
	assert_int_equal(scp_card_init(&c, &cc), TB_E_INVAL);
	cc.i = 0x50;
	assert_int_equal(scp_card_init(&c, &cc), TB_E_INVAL);
	cc.i = 0x10;
	cc.aid = NULL;
	cc.aid_len = 0;
	assert_int_equal(scp_card_init(&c, &cc), TB_E_INVAL);
	cc.i = 0x60;
	assert_int_equal(scp_card_init(&c, &cc), 0);
	/* A new INITIALIZE UPDATE aborts a running session. */
	pair_open(&p, 16, 0x70, 0x01);
	n = wrap_one(&p, "80CA006600", g_wrapped);
	send_card(&p, (const uint8_t *)"\x80\x50\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00", 13,
		  &res, &o);
	assert_int_equal(res.action, SCP_CARD_NEED_KEYS);
	for (size_t k = 0; k < sizeof(p.c.s.s_mac); k++)
		assert_int_equal(p.c.s.s_mac[k], 0);
	assert_6982(&p, g_wrapped, n);
}

/* Every truncation and every change of the parts the cryptogram or the counter check
 * cover makes the host refuse the INITIALIZE UPDATE response. */
static void test_init_response_codec(void **state)
{
	static const uint8_t hc[8] = { 9, 8, 7, 6, 5, 4, 3, 2 };
	struct scp_card_config cc = { 0x70, { 0 }, g_aid, sizeof(g_aid) };
	struct scp_host_config hcfg = { NULL, hc, 8, 0x30, 0x33, SCP_MODE_AUTO, g_aid, sizeof(g_aid) };
	uint8_t resp[64];
	struct scp_card_result res;
	struct scp_host h;
	struct pair p;
	struct wr w, o;
	size_t rn;

	(void)state;
	memset(&p, 0, sizeof(p));
	make_keys(&p.keys, 16, 0x40);
	hcfg.keys = &p.keys;
	p.counter = 41;
	assert_int_equal(scp_card_init(&p.c, &cc), 0);
	w = wr_init(g_cmd, sizeof(g_cmd));
	assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
	o = wr_init(resp, sizeof(resp));
	pair_card_iu(&p, w.p, w.len, &o, &res);
	rn = o.len;
	assert_int_equal(rn, 34);
	for (size_t cut = 0; cut < rn; cut++) {
		w = wr_init(g_cmd, sizeof(g_cmd));
		assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
		w = wr_init(g_out, sizeof(g_out));
		assert_int_not_equal(scp_host_init_update(&h, resp, cut, &w), 0);
		assert_int_equal(w.len, 0);
		assert_int_equal(h.state, SCP_HOST_CLOSED);
	}
	/* KDD (opaque) and i's RFU bit are not covered; KVN, SCP id, challenge, cryptogram,
	 * counter and SW are. */
	for (size_t pos = SCP_KDD_LEN; pos < rn; pos++) {
		w = wr_init(g_cmd, sizeof(g_cmd));
		assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
		resp[pos] ^= pos == SCP_KDD_LEN + 2 ? 0x01 : 0x40;
		w = wr_init(g_out, sizeof(g_out));
		assert_int_not_equal(scp_host_init_update(&h, resp, rn, &w), 0);
		resp[pos] ^= pos == SCP_KDD_LEN + 2 ? 0x01 : 0x40;
	}
	w = wr_init(g_cmd, sizeof(g_cmd));
	assert_int_equal(scp_host_begin(&h, &hcfg, &w), 0);
	w = wr_init(g_out, 20);
	assert_int_equal(scp_host_init_update(&h, resp, rn, &w), TB_E_NOSPACE);
	assert_int_equal(h.state, SCP_HOST_WAIT_IU);
	w = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_host_init_update(&h, resp, rn, &w), 0);
}

static void test_cla_rule(void **state)
{
	static const uint8_t bad[] = { 0x81, 0x83, 0x90, 0x0C, 0x08, 0x40, 0xC0, 0xE0, 0x01, 0xA0 };
	struct scp_card_result res;
	struct pair p;
	struct wr w, o;
	size_t n;

	(void)state;
	pair_open(&p, 16, 0x70, 0x01);
	for (size_t k = 0; k < sizeof(bad); k++) {
		uint8_t cmd[5] = { bad[k], 0xCA, 0x00, 0x66, 0x00 };

		w = wr_init(g_wrapped, sizeof(g_wrapped));
		assert_int_equal(scp_host_wrap(&p.h, cmd, 5, &w), TB_E_SCP_CLA);
		assert_int_equal(w.len, 0);
	}
	/* 00 -> 04 and 84 -> 84; the card hands back 00 and 80. */
	n = wrap_one(&p, "00CA006600", g_wrapped);
	assert_int_equal(g_wrapped[0], 0x04);
	send_card(&p, g_wrapped, n, &res, &o);
	assert_hex_equal(o.p, o.len, "00CA006600");
	n = wrap_one(&p, "84CA006600", g_wrapped);
	assert_int_equal(g_wrapped[0], 0x84);
	send_card(&p, g_wrapped, n, &res, &o);
	assert_hex_equal(o.p, o.len, "80CA006600");
	/* In a session at 01, a plain command is below the level. */
	assert_6982(&p, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5);
	/* Without a session plain commands pass unauthenticated; SM ones are refused. */
	scp_card_reset(&p.c);
	send_card(&p, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5, &res, &o);
	assert_int_equal(res.action, SCP_CARD_DELIVER);
	assert_int_equal(res.authenticated, 0);
	o = wr_init(g_out, sizeof(g_out));
	assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\x90\x00", 2, &o), 0);
	assert_hex_equal(o.p, o.len, "9000");
	assert_int_equal(scp_card_respond(&p.c, (const uint8_t *)"\x90\x00", 2, &o), TB_E_SCP_STATE);
	assert_6982(&p, (const uint8_t *)"\x84\xCA\x00\x66\x00", 5);
	assert_6982(&p, (const uint8_t *)"\x80\xCA\x00\x66\x00", 5);
}

/* Extended length: the MAC input carries 00 HH LL when Lc' > 255 or Ne > 256. */
static void test_extended_rule(void **state)
{
	struct pair p;
	struct scp_trace before;
	struct wr w;
	uint8_t tag[SCP_BLOCK];
	struct scp_session s;

	(void)state;
	assert_int_equal(scp_extended(255, 256), 0);
	assert_int_equal(scp_extended(256, 0), 1);
	assert_int_equal(scp_extended(8, 257), 1);
	pair_open(&p, 16, 0x70, 0x01);
	assert_int_equal(scp_host_trace(&p.h, &before), 0);
	/* Case 2 with Ne 257: extended, Lc' = 8 as 00 00 08, Le as 01 01. */
	hexbuf("80CA0066000101", g_plain, sizeof(g_plain));
	w = wr_init(g_wrapped, sizeof(g_wrapped));
	assert_int_equal(scp_host_wrap(&p.h, g_plain, 7, &w), 0);
	assert_int_equal(w.len, 4 + 3 + 8 + 2);
	assert_hex_equal(w.p, 7, "84CA0066000008");
	assert_hex_equal(w.p + 15, 2, "0101");
	session_from_trace(&before, 0x01, &s);
	assert_int_equal(scp_cmac(&s, w.p, 7, NULL, 0, tag), 0);
	assert_memory_equal(tag, w.p + 7, 8);
	{
		struct scp_card_result res;
		struct wr o;

		send_card(&p, g_wrapped, w.len, &res, &o);
		assert_int_equal(res.action, SCP_CARD_DELIVER);
		assert_hex_equal(o.p, o.len, "80CA0066000101");
	}
}

static void test_struct_sizes(void **state)
{
	(void)state;
	/* The sizes scp03.h states (LP64); smaller on 32-bit ABIs. */
	assert_true(sizeof(struct scp_session) <= 152);
	assert_true(sizeof(struct scp_host) <= 392);
	assert_true(sizeof(struct scp_card) <= 320);
	if (sizeof(void *) == 8 && sizeof(size_t) == 8) {
		assert_int_equal(sizeof(struct scp_session), 152);
		assert_int_equal(sizeof(struct scp_host), 392);
		assert_int_equal(sizeof(struct scp_card), 320);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors_host),
		cmocka_unit_test(test_vectors_card),
		cmocka_unit_test(test_matrix),
		cmocka_unit_test(test_explicit_modes),
		cmocka_unit_test(test_wrong_keys),
		cmocka_unit_test(test_wrong_host_cryptogram),
		cmocka_unit_test(test_level_refused),
		cmocka_unit_test(test_tampered_command),
		cmocka_unit_test(test_le_not_maced),
		cmocka_unit_test(test_tampered_response),
		cmocka_unit_test(test_replay),
		cmocka_unit_test(test_bare_error_sw),
		cmocka_unit_test(test_counter),
		cmocka_unit_test(test_cdec_padding),
		cmocka_unit_test(test_renc_bad_padding),
		cmocka_unit_test(test_init_update_rules),
		cmocka_unit_test(test_init_response_codec),
		cmocka_unit_test(test_cla_rule),
		cmocka_unit_test(test_extended_rule),
		cmocka_unit_test(test_struct_sizes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
