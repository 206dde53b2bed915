/* scp03_kdf.c - SCP03 key derivation (Amendment D 4.1.5, 6.2.1-6.2.2): session keys,
 * card and host cryptograms, the pseudo-random card challenge, and the level rules.
 * Every derived value is written only on success; temporaries are wiped. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "scp03_int.h"

#define SCP_LABEL_LEN 11u

int scp_level_valid(uint8_t level)
{
	switch (level) {
	case 0x00: case 0x01: case 0x03: case 0x11: case 0x13: case 0x33:
		return 1;
	default:
		return 0;
	}
}

int scp_level_check(uint8_t level, uint8_t i)
{
	if (!scp_level_valid(level))
		return TB_E_SCP_LEVEL;
	if ((level & SCP_LEVEL_RMAC) && !(i & SCP_I_RMAC))
		return TB_E_SCP_LEVEL;
	/* R-ENC is offered only as b7 b6 = 11. */
	if ((level & SCP_LEVEL_RENC) && (i & (SCP_I_RMAC | SCP_I_RENC)) != (SCP_I_RMAC | SCP_I_RENC))
		return TB_E_SCP_LEVEL;
	return 0;
}

int scp_kdf(const uint8_t *key, size_t keylen, uint8_t constant, const uint8_t *context,
	    size_t ncontext, uint8_t *out, size_t outlen)
{
	uint8_t before[SCP_LABEL_LEN + 4];
	uint16_t bits = (uint16_t)(outlen * 8u);

	if (outlen == 0 || outlen > SCP_KEY_MAX)
		return TB_E_INVAL;
	memset(before, 0, SCP_LABEL_LEN);
	before[SCP_LABEL_LEN] = constant;
	before[SCP_LABEL_LEN + 1] = 0x00; /* separation indicator */
	before[SCP_LABEL_LEN + 2] = (uint8_t)(bits >> 8);
	before[SCP_LABEL_LEN + 3] = (uint8_t)bits;
	return crypto_kdf_ctr_cmac(key, keylen, before, sizeof(before), context, ncontext, out,
				   outlen);
}

int scp_session_keys(struct scp_session *s, const struct scp_keys *k, const uint8_t *context,
		     size_t ncontext)
{
	int rc;

	if (k->len != 16 && k->len != 24 && k->len != 32)
		return TB_E_KEYLEN;
	if ((rc = scp_kdf(k->enc, k->len, SCP_DC_S_ENC, context, ncontext, s->s_enc, k->len)) != 0)
		goto out;
	if ((rc = scp_kdf(k->mac, k->len, SCP_DC_S_MAC, context, ncontext, s->s_mac, k->len)) != 0)
		goto out;
	if ((rc = scp_kdf(k->mac, k->len, SCP_DC_S_RMAC, context, ncontext, s->s_rmac, k->len)) != 0)
		goto out;
	s->keylen = k->len;
out:
	if (rc != 0) {
		ct_wipe(s->s_enc, sizeof(s->s_enc));
		ct_wipe(s->s_mac, sizeof(s->s_mac));
		ct_wipe(s->s_rmac, sizeof(s->s_rmac));
	}
	return rc;
}

int scp_cryptogram(const struct scp_session *s, uint8_t constant, const uint8_t *context,
		   size_t ncontext, uint8_t out[SCP_S16])
{
	return scp_kdf(s->s_mac, s->keylen, constant, context, ncontext, out, s->maclen);
}

int scp_card_challenge(const struct scp_keys *k, uint32_t counter, const uint8_t *aid,
		       size_t aid_len, uint8_t *out, size_t len)
{
	uint8_t context[3 + SCP_AID_MAX];

	if (counter > SCP_COUNTER_LAST || aid_len > SCP_AID_MAX || (aid_len > 0 && aid == NULL))
		return TB_E_INVAL;
	context[0] = (uint8_t)(counter >> 16);
	context[1] = (uint8_t)(counter >> 8);
	context[2] = (uint8_t)counter;
	if (aid_len > 0)
		memcpy(context + 3, aid, aid_len);
	return scp_kdf(k->enc, k->len, SCP_DC_CARD_CHALLENGE, context, 3 + aid_len, out, len);
}
