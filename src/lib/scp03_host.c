/* scp03_host.c - the SCP03 off-card entity: INITIALIZE UPDATE, EXTERNAL AUTHENTICATE,
 * then wrap / unwrap. A security failure closes the host for good (until the next
 * scp_host_begin) and wipes every key it held; static keys leave once session keys exist. */
#include <string.h>

#include "apdu.h"
#include "ct.h"
#include "err.h"
#include "scp03_int.h"
#include "sw.h"

#define SCP_INS_INIT_UPDATE 0x50u
#define SCP_INS_EXT_AUTH 0x82u

/* Wipes everything and leaves the sticky closed state. */
static int host_fail(struct scp_host *h, int rc)
{
	ct_wipe(h, sizeof(*h));
	h->state = SCP_HOST_CLOSED;
	return rc;
}

void scp_host_close(struct scp_host *h)
{
	(void)host_fail(h, 0);
}

static int host_config_check(const struct scp_host_config *cfg)
{
	size_t len = cfg->host_challenge_len;

	if (cfg->keys == NULL || cfg->host_challenge == NULL)
		return TB_E_INVAL;
	if (cfg->keys->len != 16 && cfg->keys->len != 24 && cfg->keys->len != 32)
		return TB_E_KEYLEN;
	if (len != SCP_S8 && len != SCP_S16)
		return TB_E_INVAL;
	if (cfg->mode != SCP_MODE_AUTO && (size_t)cfg->mode != len)
		return TB_E_INVAL;
	if (cfg->aid != NULL && (cfg->aid_len < SCP_AID_MIN || cfg->aid_len > SCP_AID_MAX))
		return TB_E_INVAL;
	if (!scp_level_valid(cfg->level))
		return TB_E_SCP_LEVEL;
	return 0;
}

int scp_host_begin(struct scp_host *h, const struct scp_host_config *cfg, struct wr *out)
{
	size_t len = cfg->host_challenge_len;
	int rc;

	if ((rc = host_config_check(cfg)) != 0)
		return rc;
	if (wr_room(out) < 6 + len)
		return TB_E_NOSPACE;
	ct_wipe(h, sizeof(*h));
	h->keys = *cfg->keys;
	memcpy(h->host_challenge, cfg->host_challenge, len);
	h->challenge_len = len;
	if (cfg->aid != NULL) {
		memcpy(h->aid, cfg->aid, cfg->aid_len);
		h->aid_len = cfg->aid_len;
	}
	h->kvn = cfg->kvn;
	h->level = cfg->level;
	h->mode = cfg->mode;
	(void)wr_u8(out, 0x80);
	(void)wr_u8(out, SCP_INS_INIT_UPDATE);
	(void)wr_u8(out, cfg->kvn);
	(void)wr_u8(out, 0x00);
	(void)wr_u8(out, (uint8_t)len);
	(void)wr_bytes(out, cfg->host_challenge, len);
	(void)wr_u8(out, 0x00);
	h->state = SCP_HOST_WAIT_IU;
	return 0;
}

/* KDD | KVN 03 i | card challenge | card cryptogram | [counter] | 9000, checked
 * against what this host asked for. */
static int host_parse_iu(struct scp_host *h, const uint8_t *resp, size_t n)
{
	struct apdu_resp r;
	struct rd rd;
	uint8_t kvn, scp, i;
	uint32_t counter = 0;
	size_t len;

	if (apdu_resp_parse(resp, n, &r) != 0)
		return TB_E_SCP_RESPONSE;
	if (r.sw != SW_OK)
		return TB_E_SCP_SW;
	rd = rd_init(r.data, r.n);
	if (rd_copy(&rd, h->kdd, SCP_KDD_LEN) != 0 || rd_u8(&rd, &kvn) != 0 ||
	    rd_u8(&rd, &scp) != 0 || rd_u8(&rd, &i) != 0)
		return TB_E_SCP_RESPONSE;
	len = (i & SCP_I_S16) ? SCP_S16 : SCP_S8;
	/* The challenge we sent fixed S8 / S16 (and an explicit mode fixed the length). */
	if (scp != 0x03 || len != h->challenge_len || (h->kvn != 0 && kvn != h->kvn))
		return TB_E_SCP_RESPONSE;
	if (rd_copy(&rd, h->card_challenge, len) != 0 || rd_copy(&rd, h->card_cryptogram, len) != 0)
		return TB_E_SCP_RESPONSE;
	if ((i & SCP_I_PSEUDO_RANDOM) && rd_u24be(&rd, &counter) != 0)
		return TB_E_SCP_RESPONSE;
	if (rd_end(&rd) != 0)
		return TB_E_SCP_RESPONSE;
	h->kvn = kvn;
	h->i = i;
	h->sequence_counter = counter;
	return scp_level_check(h->level, i);
}

/* Session keys, card cryptogram check, optional challenge check, host cryptogram. */
static int host_derive(struct scp_host *h)
{
	uint8_t context[2 * SCP_S16], want[SCP_S16];
	size_t len = h->challenge_len;
	int rc;

	memcpy(context, h->host_challenge, len);
	memcpy(context + len, h->card_challenge, len);
	h->s.maclen = len;
	if ((rc = scp_session_keys(&h->s, &h->keys, context, 2 * len)) != 0)
		goto out;
	if ((rc = scp_cryptogram(&h->s, SCP_DC_CARD_CRYPTOGRAM, context, 2 * len, want)) != 0)
		goto out;
	if (!ct_eq(want, h->card_cryptogram, len)) {
		rc = TB_E_SCP_CARD_CRYPTOGRAM;
		goto out;
	}
	if ((h->i & SCP_I_PSEUDO_RANDOM) && h->aid_len > 0) {
		if ((rc = scp_card_challenge(&h->keys, h->sequence_counter, h->aid, h->aid_len, want,
					     len)) != 0)
			goto out;
		if (!ct_eq(want, h->card_challenge, len)) {
			rc = TB_E_SCP_CHALLENGE;
			goto out;
		}
	}
	rc = scp_cryptogram(&h->s, SCP_DC_HOST_CRYPTOGRAM, context, 2 * len, h->host_cryptogram);
out:
	ct_wipe(context, sizeof(context));
	ct_wipe(want, sizeof(want));
	return rc;
}

/* 84 82 level 00 Lc host-cryptogram C-MAC; the chain starts from 16 zero bytes. */
static int host_ext_auth_cmd(struct scp_host *h, struct wr *out)
{
	size_t len = h->challenge_len;
	uint8_t hdr[5] = { 0x84, SCP_INS_EXT_AUTH, h->level, 0x00, (uint8_t)(2 * len) };
	uint8_t tag[SCP_BLOCK];
	int rc;

	memset(h->s.chain, 0, SCP_BLOCK);
	if ((rc = scp_cmac(&h->s, hdr, sizeof(hdr), h->host_cryptogram, len, tag)) != 0)
		return rc;
	(void)wr_bytes(out, hdr, sizeof(hdr));
	(void)wr_bytes(out, h->host_cryptogram, len);
	(void)wr_bytes(out, tag, len);
	memcpy(h->s.chain, tag, SCP_BLOCK);
	return 0;
}

int scp_host_init_update(struct scp_host *h, const uint8_t *resp, size_t n, struct wr *out)
{
	int rc;

	if (h->state == SCP_HOST_CLOSED)
		return TB_E_SCP_CLOSED;
	if (h->state != SCP_HOST_WAIT_IU)
		return TB_E_SCP_STATE;
	if (resp == NULL && n > 0)
		return TB_E_INVAL;
	if (wr_room(out) < 5 + 2 * h->challenge_len)
		return TB_E_NOSPACE;
	if ((rc = host_parse_iu(h, resp, n)) != 0 || (rc = host_derive(h)) != 0 ||
	    (rc = host_ext_auth_cmd(h, out)) != 0)
		return host_fail(h, rc);
	ct_wipe(&h->keys, sizeof(h->keys));
	h->state = SCP_HOST_WAIT_EA;
	return 0;
}

int scp_host_ext_auth(struct scp_host *h, const uint8_t *resp, size_t n)
{
	struct apdu_resp r;

	if (h->state == SCP_HOST_CLOSED)
		return TB_E_SCP_CLOSED;
	if (h->state != SCP_HOST_WAIT_EA)
		return TB_E_SCP_STATE;
	if (apdu_resp_parse(resp, n, &r) != 0 || r.n != 0)
		return host_fail(h, TB_E_SCP_RESPONSE);
	if (r.sw != SW_OK)
		return host_fail(h, TB_E_SCP_SW);
	h->s.level = h->level;
	memset(h->s.counter, 0, SCP_BLOCK);
	h->response_due = 0;
	h->state = SCP_HOST_OPEN;
	return 0;
}

static int host_open_check(const struct scp_host *h)
{
	if (h->state == SCP_HOST_CLOSED)
		return TB_E_SCP_CLOSED;
	return h->state == SCP_HOST_OPEN ? 0 : TB_E_SCP_STATE;
}

int scp_host_wrap(struct scp_host *h, const uint8_t *cmd, size_t n, struct wr *out)
{
	struct apdu a;
	int rc;

	if ((rc = host_open_check(h)) != 0)
		return rc;
	if ((rc = apdu_parse(cmd, n, &a)) != 0)
		return rc;
	/* Level 00: an authenticated session without secure messaging. */
	if (h->s.level == 0)
		rc = wr_bytes(out, cmd, n);
	else
		rc = scp_sm_wrap_command(&h->s, &a, out);
	if (rc == 0)
		h->response_due = 1;
	return rc;
}

int scp_host_unwrap(struct scp_host *h, const uint8_t *resp, size_t n, struct scp_resp *info,
		    struct wr *out)
{
	struct apdu_resp r;
	size_t start = out->len;
	int authenticated = 0, rc;

	if ((rc = host_open_check(h)) != 0)
		return rc;
	if (!h->response_due)
		return TB_E_SCP_STATE;
	if ((rc = apdu_resp_parse(resp, n, &r)) != 0)
		return rc;
	if (!(h->s.level & SCP_LEVEL_RMAC)) {
		/* Nothing protects responses at this level: pass them on, unauthenticated. */
		if ((rc = wr_bytes(out, resp, n)) != 0)
			return rc;
	} else if ((rc = scp_sm_unwrap_response(&h->s, r.data, r.n, r.sw, out,
						&authenticated)) != 0) {
		if (rc == TB_E_SCP_RMAC || rc == TB_E_SCP_PADDING)
			return host_fail(h, rc);
		return rc;
	}
	info->sw = r.sw;
	info->n = out->len - start - 2;
	info->authenticated = authenticated;
	h->response_due = 0;
	return 0;
}

int scp_host_trace(const struct scp_host *h, struct scp_trace *t)
{
	if (h->state == SCP_HOST_CLOSED)
		return TB_E_SCP_CLOSED;
	if (h->state != SCP_HOST_WAIT_EA && h->state != SCP_HOST_OPEN)
		return TB_E_SCP_STATE;
	memset(t, 0, sizeof(*t));
	memcpy(t->s_enc, h->s.s_enc, SCP_KEY_MAX);
	memcpy(t->s_mac, h->s.s_mac, SCP_KEY_MAX);
	memcpy(t->s_rmac, h->s.s_rmac, SCP_KEY_MAX);
	t->keylen = h->s.keylen;
	memcpy(t->chain, h->s.chain, SCP_BLOCK);
	memcpy(t->counter, h->s.counter, SCP_BLOCK);
	t->challenge_len = h->challenge_len;
	memcpy(t->host_challenge, h->host_challenge, SCP_S16);
	memcpy(t->card_challenge, h->card_challenge, SCP_S16);
	memcpy(t->card_cryptogram, h->card_cryptogram, SCP_S16);
	memcpy(t->host_cryptogram, h->host_cryptogram, SCP_S16);
	memcpy(t->kdd, h->kdd, SCP_KDD_LEN);
	t->kvn = h->kvn;
	t->i = h->i;
	t->level = h->level;
	t->sequence_counter = h->sequence_counter;
	return 0;
}
