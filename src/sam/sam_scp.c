/* sam_scp.c - the off-card side of SCP03 for a client that never sees a static key:
 * SCP_OPEN diversifies the device's key set and starts scp_host, SCP_STEP takes the card's
 * handshake answers (and may wrap a first command together with EXTERNAL AUTHENTICATE),
 * SCP_WRAP / SCP_UNWRAP protect one command at a time, SCP_CLOSE frees the slot.
 * What stays true: a session moves only along WAIT_IU -> WAIT_EA | EA_SPEC -> OPEN <-> DUE,
 * or to CLOSED on a security failure (keys wiped, TB_E_SCP_CLOSED until SCP_CLOSE); a
 * request the session's state does not allow ends the connection before anything changes. */
#include <string.h>

#include "apdu.h"
#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "sam_int.h"
#include "sw.h"

static const uint8_t sw_ok[2] = { 0x90, 0x00 };

/* The session named by the next 4 request bytes, owned by this connection. */
int sam_scp_take(struct sam_call *k, struct sam_session **ss)
{
	uint32_t handle;

	if (rd_u32be(&k->req, &handle) != 0)
		return TB_E_SAM_PROTO;
	*ss = sam_sess_find(k->s, k->c, handle);
	return *ss != NULL ? 0 : TB_E_SAM_PROTO;
}

void sam_scp_fail(struct sam_session *ss)
{
	scp_host_close(&ss->h);
	ss->state = SAM_SS_CLOSED;
}

/* role(1) kvn(1) serial(8) level(1) challenge length(1) aid length(1) aid. kvn 0 = the
 * role's current version; SAM_KVN_CARD = the one the card names (INITIALIZE UPDATE P1 00):
 * the keys are diversified at SCP_STEP, from the serial kept in the session. */
int sam_h_scp_open(struct sam_call *k)
{
	uint8_t role, kvn, level, chlen, aid_len, challenge[SCP_S16];
	const uint8_t *serial, *aid = NULL, *given_ch = NULL;
	const struct sam_key *m;
	struct scp_host_config cfg;
	int given;
	struct sam_session *ss;
	struct scp_keys keys;
	uint32_t idx;
	int rc;

	if (rd_u8(&k->req, &role) || rd_u8(&k->req, &kvn) ||
	    rd_bytes(&k->req, SAM_SERIAL_LEN, &serial) || rd_u8(&k->req, &level) ||
	    rd_u8(&k->req, &chlen) || rd_u8(&k->req, &aid_len))
		return TB_E_SAM_PROTO;
	/* Bit 7 of challenge-len: the caller gives the host challenge (after the aid). The
	 * server pre-stages one at a phone before it knows which reader will answer it. */
	given = (chlen & SAM_CHALLENGE_GIVEN) != 0;
	chlen &= (uint8_t)~SAM_CHALLENGE_GIVEN;
	if (role < SAM_FAM_SE_SERVER || role > SAM_FAM_READER_SERVER ||
	    (chlen != SCP_S8 && chlen != SCP_S16) ||
	    (aid_len != 0 && (aid_len < SCP_AID_MIN || aid_len > SCP_AID_MAX)))
		return TB_E_SAM_PROTO;
	if ((aid_len != 0 && rd_bytes(&k->req, aid_len, &aid)) ||
	    (given && rd_bytes(&k->req, chlen, &given_ch)) || rd_end(&k->req))
		return TB_E_SAM_PROTO;
	if ((m = sam_keys_find(&k->s->ks, role, kvn == SAM_KVN_CARD ? 0 : kvn)) == NULL)
		return TB_E_SAM_KEY;
	if (!scp_level_valid(level))
		return TB_E_SCP_LEVEL;
	if ((rc = sam_sess_alloc(k->s, k->c, &idx)) != 0)
		return rc;
	ss = &k->s->slots[idx];
	memset(&cfg, 0, sizeof(cfg));
	cfg.keys = &keys;
	cfg.host_challenge = challenge;
	cfg.host_challenge_len = chlen;
	cfg.kvn = kvn == SAM_KVN_CARD ? 0x00 : m->version;
	cfg.level = level;
	cfg.mode = chlen == SCP_S16 ? SCP_MODE_S16 : SCP_MODE_S8;
	cfg.aid = aid;
	cfg.aid_len = aid_len;
	/* The card's choice: a placeholder of the right length until its answer names the
	 * version (sam_scp_card_keys replaces it before anything is derived from it). */
	memset(&keys, 0, sizeof(keys));
	keys.len = m->dev_keylen;
	if ((rc = kvn == SAM_KVN_CARD ? 0 : sam_div_device_keys(m, role, serial, &keys)) == 0 &&
	    (rc = given ? (memcpy(challenge, given_ch, chlen), 0) : crypto_random(challenge, chlen)) == 0 &&
	    (rc = wr_u32be(k->out, sam_sess_handle(k->s, ss))) == 0 &&
	    (rc = wr_u8(k->out, cfg.kvn)) == 0)
		rc = scp_host_begin(&ss->h, &cfg, k->out);
	ct_wipe(&keys, sizeof(keys));
	if (rc != 0) {
		sam_sess_free(k->s, k->c, ss);
		return rc;
	}
	ss->state = SAM_SS_WAIT_IU;
	ss->role = role;
	memcpy(ss->serial, serial, SAM_SERIAL_LEN);
	return 0;
}

/* WAIT_IU: the INITIALIZE UPDATE response -> EXTERNAL AUTHENTICATE (+ a first command
 * wrapped as if the channel were open: it is, for the card, once EA succeeds). */
static int step_iu(struct sam_call *k, struct sam_session *ss, const uint8_t *resp, size_t rn,
		   const uint8_t *cmd, size_t cn, uint8_t *ea_len)
{
	size_t start = k->out->len;
	int rc = 0;

	/* KVN 0 asked: the keys of the version the card names (or the session fails). */
	if ((ss->h.kvn == 0 && (rc = sam_scp_card_keys(k->s, ss, resp, rn)) != 0) ||
	    (rc = scp_host_init_update(&ss->h, resp, rn, k->out)) != 0) {
		sam_scp_fail(ss);
		return rc;
	}
	ea_len[0] = (uint8_t)((k->out->len - start) >> 8);
	ea_len[1] = (uint8_t)(k->out->len - start);
	if (cn == 0) {
		ss->state = SAM_SS_WAIT_EA;
		return 0;
	}
	/* The EXTERNAL AUTHENTICATE response is bare 9000 (no R-MAC), so opening now on
	 * the expected answer and checking the real one later (EA_SPEC) is exact. */
	if ((rc = scp_host_ext_auth(&ss->h, sw_ok, sizeof(sw_ok))) != 0 ||
	    (rc = scp_host_wrap(&ss->h, cmd, cn, k->out)) != 0) {
		sam_scp_fail(ss);
		return rc;
	}
	ss->state = SAM_SS_EA_SPEC;
	return 0;
}

/* WAIT_EA: the EXTERNAL AUTHENTICATE response opens the channel (+ a first command). */
static int step_ea(struct sam_call *k, struct sam_session *ss, const uint8_t *resp, size_t rn,
		   const uint8_t *cmd, size_t cn)
{
	int rc;

	if ((rc = scp_host_ext_auth(&ss->h, resp, rn)) != 0 ||
	    (cn > 0 && (rc = scp_host_wrap(&ss->h, cmd, cn, k->out)) != 0)) {
		sam_scp_fail(ss);
		return rc;
	}
	ss->state = cn > 0 ? SAM_SS_DUE : SAM_SS_OPEN;
	return 0;
}

/* EA_SPEC: the real EXTERNAL AUTHENTICATE response must be the 9000 assumed. */
static int step_ea_spec(struct sam_session *ss, const uint8_t *resp, size_t rn)
{
	struct apdu_resp r;
	int rc = 0;

	if (apdu_resp_parse(resp, rn, &r) != 0 || r.n != 0)
		rc = TB_E_SCP_RESPONSE;
	else if (r.sw != SW_OK)
		rc = TB_E_SCP_SW;
	if (rc != 0) {
		sam_scp_fail(ss);
		return rc;
	}
	ss->state = SAM_SS_DUE;
	return 0;
}

/* handle(4) response length(2) response [plain command] */
int sam_h_scp_step(struct sam_call *k)
{
	struct sam_session *ss;
	const uint8_t *resp, *cmd = NULL;
	uint8_t *state, *ea_len;
	uint16_t rn;
	size_t cn;
	int rc;

	if ((rc = sam_scp_take(k, &ss)) != 0)
		return rc;
	if (rd_u16be(&k->req, &rn) || rn > SAM_APDU_MAX || rd_bytes(&k->req, rn, &resp))
		return TB_E_SAM_PROTO;
	cn = rd_left(&k->req);
	if (cn > SAM_APDU_MAX || (cn > 0 && rd_bytes(&k->req, cn, &cmd)))
		return TB_E_SAM_PROTO;
	if (ss->state == SAM_SS_CLOSED)
		return TB_E_SCP_CLOSED;
	if (ss->state != SAM_SS_WAIT_IU && ss->state != SAM_SS_WAIT_EA &&
	    !(ss->state == SAM_SS_EA_SPEC && cn == 0))
		return TB_E_SAM_PROTO;
	if (wr_reserve(k->out, 1, &state) || wr_reserve(k->out, 2, &ea_len))
		return TB_E_NOSPACE;
	ea_len[0] = ea_len[1] = 0;
	if (ss->state == SAM_SS_WAIT_IU)
		rc = step_iu(k, ss, resp, rn, cmd, cn, ea_len);
	else if (ss->state == SAM_SS_WAIT_EA)
		rc = step_ea(k, ss, resp, rn, cmd, cn);
	else
		rc = step_ea_spec(ss, resp, rn);
	*state = ss->state;
	return rc;
}

/* handle(4) plain command */
int sam_h_scp_wrap(struct sam_call *k)
{
	struct sam_session *ss;
	const uint8_t *cmd = NULL;
	size_t cn;
	int rc;

	if ((rc = sam_scp_take(k, &ss)) != 0)
		return rc;
	cn = rd_left(&k->req);
	if (cn > SAM_APDU_MAX || (cn > 0 && rd_bytes(&k->req, cn, &cmd)))
		return TB_E_SAM_PROTO;
	if (ss->state == SAM_SS_CLOSED)
		return TB_E_SCP_CLOSED;
	if (ss->state != SAM_SS_OPEN)
		return TB_E_SAM_PROTO;
	/* A command that cannot be wrapped changes nothing: the channel stays OPEN. */
	if ((rc = scp_host_wrap(&ss->h, cmd, cn, k->out)) != 0)
		return rc;
	ss->state = SAM_SS_DUE;
	return 0;
}

/* handle(4) protected response -> sw(2) authenticated(1) plain data */
int sam_h_scp_unwrap(struct sam_call *k)
{
	struct sam_session *ss;
	struct scp_resp info;
	const uint8_t *resp = NULL;
	uint8_t *fixed;
	size_t rn;
	int rc;

	if ((rc = sam_scp_take(k, &ss)) != 0)
		return rc;
	rn = rd_left(&k->req);
	if (rn > SAM_APDU_MAX || (rn > 0 && rd_bytes(&k->req, rn, &resp)))
		return TB_E_SAM_PROTO;
	if (ss->state == SAM_SS_CLOSED)
		return TB_E_SCP_CLOSED;
	if (ss->state != SAM_SS_DUE && ss->state != SAM_SS_KEY_DUE)
		return TB_E_SAM_PROTO;
	if (wr_reserve(k->out, 3, &fixed) != 0)
		return TB_E_NOSPACE;
	if ((rc = scp_host_unwrap(&ss->h, resp, rn, &info, k->out)) != 0) {
		if (ss->h.state == SCP_HOST_CLOSED)
			ss->state = SAM_SS_CLOSED;
		return rc;
	}
	k->out->len -= 2; /* SW1 SW2 travel in the fixed part */
	/* A PUT KEY's answer: checked here, only the verdict goes back. */
	if (ss->state == SAM_SS_KEY_DUE &&
	    (rc = sam_putkey_check(ss, &info, k->out, (size_t)(fixed - k->out->p) + 3)) != 0)
		return rc;
	fixed[0] = (uint8_t)(info.sw >> 8);
	fixed[1] = (uint8_t)info.sw;
	fixed[2] = info.authenticated ? 1 : 0;
	ss->state = SAM_SS_OPEN;
	return 0;
}

/* handle(4) */
int sam_h_scp_close(struct sam_call *k)
{
	struct sam_session *ss;
	int rc;

	if ((rc = sam_scp_take(k, &ss)) != 0)
		return rc;
	if (rd_end(&k->req) != 0)
		return TB_E_SAM_PROTO;
	sam_sess_free(k->s, k->c, ss);
	return 0;
}
