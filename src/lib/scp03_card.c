/* scp03_card.c - the SCP03 card side (the IC applet's secure channel) as a state machine:
 * INITIALIZE UPDATE (key set and counter resolved by the caller), EXTERNAL AUTHENTICATE,
 * then unwrap each command and wrap its response. Any security error aborts the session
 * and wipes its keys; from then on every command but INITIALIZE UPDATE gets 6982. */
#include <string.h>

#include "apdu.h"
#include "ct.h"
#include "err.h"
#include "scp03_int.h"
#include "sw.h"

#define SCP_CLA_GP 0x80u
#define SCP_CLA_GP_SM 0x84u
#define SCP_INS_INIT_UPDATE 0x50u
#define SCP_INS_EXT_AUTH 0x82u

/* Ends whatever session or handshake is under way; keeps the configuration. */
static void card_end(struct scp_card *c, enum scp_card_state next)
{
	scp_session_wipe(&c->s);
	ct_wipe(c->host_challenge, sizeof(c->host_challenge));
	ct_wipe(c->host_cryptogram, sizeof(c->host_cryptogram));
	ct_wipe(c->held, sizeof(c->held));
	c->held_len = 0;
	c->held_counter = 0;
	c->await_app = 0;
	c->app_protected = 0;
	c->state = next;
}

void scp_card_reset(struct scp_card *c)
{
	card_end(c, SCP_CARD_STATE_IDLE);
	c->kvn = 0;
}

/* A bare status word as the whole response (the caller checked the room). */
static int card_send_sw(struct scp_card_result *res, struct wr *out, uint16_t sw, int err)
{
	res->action = SCP_CARD_SEND;
	res->err = err;
	return wr_u16be(out, sw);
}

/* Security error: abort, answer 6982. */
static int card_abort(struct scp_card *c, struct scp_card_result *res, struct wr *out, int err)
{
	card_end(c, SCP_CARD_STATE_CLOSED);
	return card_send_sw(res, out, SW_SECURITY_STATUS, err);
}

/* Whether CLA says secure messaging (first interindustry / GP coding b3 b4, further
 * channels b6). */
static int cla_has_sm(uint8_t cla)
{
	return (cla & 0x40u) ? (cla & 0x20u) != 0 : (cla & 0x0Cu) != 0;
}

int scp_card_init(struct scp_card *c, const struct scp_card_config *cfg)
{
	int pseudo = (cfg->i & SCP_I_PSEUDO_RANDOM) != 0;

	if ((cfg->i & SCP_I_RFU) || ((cfg->i & SCP_I_RENC) && !(cfg->i & SCP_I_RMAC)))
		return TB_E_INVAL;
	if (cfg->aid == NULL ? (pseudo || cfg->aid_len != 0)
			     : (cfg->aid_len < SCP_AID_MIN || cfg->aid_len > SCP_AID_MAX))
		return TB_E_INVAL;
	ct_wipe(c, sizeof(*c));
	c->i = cfg->i;
	memcpy(c->kdd, cfg->kdd, SCP_KDD_LEN);
	if (cfg->aid != NULL)
		memcpy(c->aid, cfg->aid, cfg->aid_len);
	c->aid_len = cfg->aid_len;
	c->challenge_len = (cfg->i & SCP_I_S16) ? SCP_S16 : SCP_S8;
	c->state = SCP_CARD_STATE_IDLE;
	return 0;
}

/* 80 50 KVN 00 Lc challenge [Le]: always ends the running session first. */
static int card_init_update(struct scp_card *c, const uint8_t *cmd, size_t n,
			    struct scp_card_result *res, struct wr *out)
{
	struct apdu a;
	int rc;

	scp_card_reset(c);
	if ((rc = apdu_parse(cmd, n, &a)) != 0)
		return card_send_sw(res, out, SW_WRONG_LENGTH, rc);
	if (a.p2 != 0x00)
		return card_send_sw(res, out, SW_INCORRECT_P1P2, TB_E_INVAL);
	if (a.nc != c->challenge_len)
		return card_send_sw(res, out, SW_WRONG_LENGTH, TB_E_APDU_LC);
	memcpy(c->host_challenge, a.data, a.nc);
	c->kvn = a.p1;
	c->state = SCP_CARD_STATE_NEED_KEYS;
	res->action = SCP_CARD_NEED_KEYS;
	res->kvn = a.p1;
	return 0;
}

/* Session keys, the card cryptogram (into resp) and the expected host cryptogram. */
static int card_derive(struct scp_card *c, const struct scp_keys *keys,
		       const uint8_t *card_challenge, uint8_t cryptogram[SCP_S16])
{
	uint8_t context[2 * SCP_S16];
	size_t len = c->challenge_len;
	int rc;

	memcpy(context, c->host_challenge, len);
	memcpy(context + len, card_challenge, len);
	c->s.maclen = len;
	if ((rc = scp_session_keys(&c->s, keys, context, 2 * len)) == 0 &&
	    (rc = scp_cryptogram(&c->s, SCP_DC_CARD_CRYPTOGRAM, context, 2 * len, cryptogram)) == 0)
		rc = scp_cryptogram(&c->s, SCP_DC_HOST_CRYPTOGRAM, context, 2 * len,
				    c->host_cryptogram);
	ct_wipe(context, sizeof(context));
	return rc;
}

/* KDD | KVN 03 i | card challenge | card cryptogram | [counter] | 9000 into c->held. */
static void card_build_iu(struct scp_card *c, uint8_t kvn, const uint8_t *challenge,
			  const uint8_t *cryptogram, uint32_t counter)
{
	struct wr w = wr_init(c->held, sizeof(c->held));

	(void)wr_bytes(&w, c->kdd, SCP_KDD_LEN);
	(void)wr_u8(&w, kvn);
	(void)wr_u8(&w, 0x03);
	(void)wr_u8(&w, c->i);
	(void)wr_bytes(&w, challenge, c->challenge_len);
	(void)wr_bytes(&w, cryptogram, c->challenge_len);
	if (c->i & SCP_I_PSEUDO_RANDOM)
		(void)wr_u24be(&w, counter);
	(void)wr_u16be(&w, SW_OK);
	c->held_len = w.len;
}

/* Sends the held INITIALIZE UPDATE response (room checked by the caller). */
static void card_release(struct scp_card *c, struct scp_card_result *res, struct wr *out)
{
	(void)wr_bytes(out, c->held, c->held_len);
	res->action = SCP_CARD_SEND;
	res->kvn = c->kvn;
	res->counter = c->held_counter;
	ct_wipe(c->held, sizeof(c->held));
	c->held_len = 0;
	c->state = SCP_CARD_STATE_HANDSHAKE;
}

int scp_card_supply_keys(struct scp_card *c, uint8_t kvn, const struct scp_keys *keys,
			 uint32_t counter, const uint8_t *challenge, size_t challenge_len,
			 struct scp_card_result *res, struct wr *out)
{
	uint8_t card_challenge[SCP_S16], cryptogram[SCP_S16];
	int pseudo = (c->i & SCP_I_PSEUDO_RANDOM) != 0;
	int rc;

	if (c->state != SCP_CARD_STATE_NEED_KEYS)
		return TB_E_SCP_STATE;
	if (keys == NULL)
		return TB_E_INVAL;
	if (keys->len != 16 && keys->len != 24 && keys->len != 32)
		return TB_E_KEYLEN;
	if (!pseudo && (challenge == NULL || challenge_len != c->challenge_len))
		return TB_E_INVAL;
	if (wr_room(out) < SCP_IU_RESP_MAX)
		return TB_E_NOSPACE;
	memset(res, 0, sizeof(*res));
	if (pseudo && counter >= SCP_COUNTER_LAST) {
		card_end(c, SCP_CARD_STATE_IDLE);
		return card_send_sw(res, out, SW_CONDITIONS_NOT_SATISFIED, TB_E_SCP_COUNTER);
	}
	/* Pseudo-random: the counter goes up before it is used. */
	if (pseudo) {
		counter++;
		rc = scp_card_challenge(keys, counter, c->aid, c->aid_len, card_challenge,
					c->challenge_len);
	} else {
		memcpy(card_challenge, challenge, challenge_len);
		rc = 0;
	}
	if (rc == 0)
		rc = card_derive(c, keys, card_challenge, cryptogram);
	if (rc != 0) {
		card_end(c, SCP_CARD_STATE_IDLE);
		goto out;
	}
	c->kvn = kvn;
	card_build_iu(c, kvn, card_challenge, cryptogram, counter);
	res->kvn = kvn;
	if (pseudo) {
		c->held_counter = counter;
		c->state = SCP_CARD_STATE_PERSIST;
		res->action = SCP_CARD_PERSIST;
		res->counter = counter;
	} else {
		card_release(c, res, out);
	}
out:
	ct_wipe(card_challenge, sizeof(card_challenge));
	ct_wipe(cryptogram, sizeof(cryptogram));
	return rc;
}

int scp_card_refuse(struct scp_card *c, uint16_t sw, struct scp_card_result *res,
		    struct wr *out)
{
	if (c->state != SCP_CARD_STATE_NEED_KEYS && c->state != SCP_CARD_STATE_PERSIST)
		return TB_E_SCP_STATE;
	if (wr_room(out) < 2)
		return TB_E_NOSPACE;
	memset(res, 0, sizeof(*res));
	card_end(c, SCP_CARD_STATE_IDLE);
	return card_send_sw(res, out, sw, 0);
}

int scp_card_counter_saved(struct scp_card *c, struct scp_card_result *res, struct wr *out)
{
	if (c->state != SCP_CARD_STATE_PERSIST)
		return TB_E_SCP_STATE;
	if (wr_room(out) < c->held_len)
		return TB_E_NOSPACE;
	memset(res, 0, sizeof(*res));
	card_release(c, res, out);
	return 0;
}

/* 84 82 level 00 Lc host-cryptogram C-MAC, after an answered INITIALIZE UPDATE. Every
 * failure leaves no session; only a wrong MAC or cryptogram counts as a failed try. */
static int card_ext_auth(struct scp_card *c, const uint8_t *cmd, size_t n,
			 struct scp_card_result *res, struct wr *out)
{
	size_t len = c->challenge_len;
	uint8_t hdr[5], tag[SCP_BLOCK];
	struct apdu a;
	int ok, rc;

	if (apdu_parse(cmd, n, &a) != 0 || a.cla != SCP_CLA_GP_SM || a.ins != SCP_INS_EXT_AUTH)
		return card_abort(c, res, out, TB_E_SCP_STATE);
	res->kvn = c->kvn;
	if (a.p2 != 0x00 || !scp_level_valid(a.p1)) {
		card_end(c, SCP_CARD_STATE_CLOSED);
		return card_send_sw(res, out, SW_INCORRECT_P1P2, TB_E_SCP_LEVEL);
	}
	if (scp_level_check(a.p1, c->i) != 0)
		return card_abort(c, res, out, TB_E_SCP_LEVEL);
	if (a.nc != 2 * len) {
		card_end(c, SCP_CARD_STATE_CLOSED);
		return card_send_sw(res, out, SW_WRONG_LENGTH, TB_E_APDU_LC);
	}
	hdr[0] = a.cla;
	hdr[1] = a.ins;
	hdr[2] = a.p1;
	hdr[3] = a.p2;
	hdr[4] = (uint8_t)a.nc;
	memset(c->s.chain, 0, SCP_BLOCK);
	if ((rc = scp_cmac(&c->s, hdr, sizeof(hdr), a.data, len, tag)) != 0) {
		card_end(c, SCP_CARD_STATE_CLOSED);
		return rc;
	}
	/* Both checks run whatever the first one says. */
	ok = ct_eq(tag, a.data + len, len) & ct_eq(c->host_cryptogram, a.data, len);
	if (!ok) {
		ct_wipe(tag, sizeof(tag));
		card_end(c, SCP_CARD_STATE_CLOSED);
		res->auth = SCP_CARD_AUTH_FAILED;
		return card_send_sw(res, out, SW_AUTH_FAILED, TB_E_SCP_HOST_CRYPTOGRAM);
	}
	memcpy(c->s.chain, tag, SCP_BLOCK);
	ct_wipe(tag, sizeof(tag));
	memset(c->s.counter, 0, SCP_BLOCK);
	c->s.level = a.p1;
	ct_wipe(c->host_challenge, sizeof(c->host_challenge));
	ct_wipe(c->host_cryptogram, sizeof(c->host_cryptogram));
	c->state = SCP_CARD_STATE_OPEN;
	res->auth = SCP_CARD_AUTH_OK;
	return card_send_sw(res, out, SW_OK, 0); /* never R-MACed */
}

static int card_deliver_copy(struct scp_card *c, const uint8_t *cmd, size_t n,
			     struct scp_card_result *res, struct wr *out, int authenticated)
{
	res->action = SCP_CARD_DELIVER;
	res->authenticated = authenticated;
	res->level = authenticated ? c->s.level : 0;
	c->await_app = 1;
	c->app_protected = 0;
	return wr_bytes(out, cmd, n);
}

/* A command inside an open session, checked against the session's level. */
static int card_secured(struct scp_card *c, const uint8_t *cmd, size_t n,
			struct scp_card_result *res, struct wr *out)
{
	struct apdu a;
	int rc;

	if ((rc = apdu_parse(cmd, n, &a)) != 0) {
		if (c->s.level == 0)
			return card_send_sw(res, out, SW_WRONG_LENGTH, rc);
		return card_abort(c, res, out, rc);
	}
	if (c->s.level == 0) {
		if (cla_has_sm(a.cla))
			return card_abort(c, res, out, TB_E_SCP_LEVEL);
		return card_deliver_copy(c, cmd, n, res, out, 1);
	}
	/* Below the level (no C-MAC) or outside our CLA rule: a security error. */
	if (a.cla != SCP_CLA_GP_SM && a.cla != 0x04)
		return card_abort(c, res, out, TB_E_SCP_LEVEL);
	if ((rc = scp_sm_unwrap_command(&c->s, &a, out)) != 0) {
		if (rc == TB_E_SCP_CMAC || rc == TB_E_SCP_PADDING)
			return card_abort(c, res, out, rc);
		return rc;
	}
	res->action = SCP_CARD_DELIVER;
	res->authenticated = 1;
	res->level = c->s.level;
	c->await_app = 1;
	c->app_protected = 1;
	return 0;
}

/* No session: plain commands go to the application, unauthenticated. */
static int card_plain(struct scp_card *c, const uint8_t *cmd, size_t n,
		      struct scp_card_result *res, struct wr *out)
{
	struct apdu a;
	int rc;

	if ((rc = apdu_parse(cmd, n, &a)) != 0)
		return card_send_sw(res, out, SW_WRONG_LENGTH, rc);
	if (cla_has_sm(a.cla))
		return card_abort(c, res, out, TB_E_SCP_STATE);
	return card_deliver_copy(c, cmd, n, res, out, 0);
}

int scp_card_command(struct scp_card *c, const uint8_t *cmd, size_t n,
		     struct scp_card_result *res, struct wr *out)
{
	if (cmd == NULL && n > 0)
		return TB_E_INVAL;
	if (wr_room(out) < n + 2)
		return TB_E_NOSPACE;
	memset(res, 0, sizeof(*res));
	c->await_app = 0;
	c->app_protected = 0;
	if (n >= 2 && cmd[0] == SCP_CLA_GP && cmd[1] == SCP_INS_INIT_UPDATE)
		return card_init_update(c, cmd, n, res, out);
	switch (c->state) {
	case SCP_CARD_STATE_CLOSED:
		return card_send_sw(res, out, SW_SECURITY_STATUS, TB_E_SCP_CLOSED);
	case SCP_CARD_STATE_HANDSHAKE:
		return card_ext_auth(c, cmd, n, res, out);
	case SCP_CARD_STATE_OPEN:
		return card_secured(c, cmd, n, res, out);
	default:
		/* A pending INITIALIZE UPDATE that was never answered is dropped. */
		card_end(c, SCP_CARD_STATE_IDLE);
		return card_plain(c, cmd, n, res, out);
	}
}

int scp_card_respond(struct scp_card *c, const uint8_t *resp, size_t n, struct wr *out)
{
	struct apdu_resp r;
	int rc;

	if (!c->await_app)
		return TB_E_SCP_STATE;
	if ((rc = apdu_resp_parse(resp, n, &r)) != 0)
		return rc;
	if (c->app_protected && c->state == SCP_CARD_STATE_OPEN && (c->s.level & SCP_LEVEL_RMAC))
		rc = scp_sm_wrap_response(&c->s, r.data, r.n, r.sw, out);
	else
		rc = wr_bytes(out, resp, n);
	if (rc == 0) {
		c->await_app = 0;
		c->app_protected = 0;
	}
	return rc;
}

int scp_card_trace(const struct scp_card *c, struct scp_trace *t)
{
	if (c->state == SCP_CARD_STATE_CLOSED)
		return TB_E_SCP_CLOSED;
	if (c->state != SCP_CARD_STATE_PERSIST && c->state != SCP_CARD_STATE_HANDSHAKE &&
	    c->state != SCP_CARD_STATE_OPEN)
		return TB_E_SCP_STATE;
	memset(t, 0, sizeof(*t));
	memcpy(t->s_enc, c->s.s_enc, SCP_KEY_MAX);
	memcpy(t->s_mac, c->s.s_mac, SCP_KEY_MAX);
	memcpy(t->s_rmac, c->s.s_rmac, SCP_KEY_MAX);
	t->keylen = c->s.keylen;
	memcpy(t->chain, c->s.chain, SCP_BLOCK);
	memcpy(t->counter, c->s.counter, SCP_BLOCK);
	t->challenge_len = c->challenge_len;
	memcpy(t->host_challenge, c->host_challenge, SCP_S16);
	memcpy(t->host_cryptogram, c->host_cryptogram, SCP_S16);
	memcpy(t->kdd, c->kdd, SCP_KDD_LEN);
	t->kvn = c->kvn;
	t->i = c->i;
	t->level = c->s.level;
	return 0;
}
