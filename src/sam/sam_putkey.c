/* sam_putkey.c - re-keying a device after a rotation, without a key leaving the sam in
 * clear: SCP_OPEN with the KVN the card names (its keys resolved here from the answer),
 * SCP_PUT_KEY (the current version's key set under the session's static Key-DEK, with
 * KCVs, wrapped at the session's level) and the check of the card's answer to it.
 * What stays true: only an older set of the session's own family (or, from an se-server
 * session, of the se-reader family) is replaced, by its family's current version; every
 * key and plain PUT KEY byte is wiped on every path; the client hears only ok or fail. */
#include <string.h>

#include "apdu.h"
#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "sam_int.h"
#include "sw.h"

#define PK_CLA 0x80u
#define PK_INS 0xD8u
#define PK_P2_SEVERAL 0x81u      /* key id 1, more keys follow */
#define PK_KEY_TYPE_AES 0x88u
#define PK_KCV_LEN 3u
#define KI_KVN_AT SCP_KDD_LEN    /* key information after the KDD in the IU answer */

int sam_scp_card_keys(struct sam *s, struct sam_session *ss, const uint8_t *resp, size_t rn)
{
	const struct sam_key *m;
	struct apdu_resp r;
	struct scp_keys keys;
	int rc;

	/* Not a 9000 answer with key information: scp_host_init_update says why. */
	if (apdu_resp_parse(resp, rn, &r) != 0 || r.sw != SW_OK || r.n <= KI_KVN_AT)
		return 0;
	/* A version of this role only (the ranges do not overlap), and one still held. */
	if (r.data[KI_KVN_AT] == 0 || (m = sam_keys_find(&s->ks, ss->role, r.data[KI_KVN_AT])) == NULL)
		return TB_E_SAM_KEY;
	if ((rc = sam_div_device_keys(m, ss->role, ss->serial, &keys)) == 0) {
		ct_wipe(&ss->h.keys, sizeof(ss->h.keys));
		ss->h.keys = keys;
	}
	ct_wipe(&keys, sizeof(keys));
	return rc;
}

/* First 3 bytes of AES-ECB(key, 16 x 01) (GP 2.3 section 7.2.2; notes section 9). */
static int pk_kcv(const uint8_t *key, size_t len, uint8_t kcv[PK_KCV_LEN])
{
	uint8_t ones[CRYPTO_AES_BLOCK], out[CRYPTO_AES_BLOCK];
	int rc;

	memset(ones, 0x01, sizeof(ones));
	if ((rc = crypto_aes_ecb_encrypt(key, len, ones, out)) == 0)
		memcpy(kcv, out, PK_KCV_LEN);
	ct_wipe(out, sizeof(out));
	return rc;
}

/* One AES key data field: 88 (1 + ct len) clear-len AES-CBC(DEK, ICV 0, key [padded to
 * 32]) 03 KCV. A 24-byte key gets 8 zero bytes of padding (any bytes will do). */
static int pk_field(struct wr *w, const struct scp_keys *dek, const uint8_t *key, size_t len,
		    uint8_t kcv[PK_KCV_LEN])
{
	uint8_t iv[CRYPTO_AES_BLOCK], plain[SCP_KEY_MAX], *ct;
	size_t ctlen = len == 16 ? 16u : 32u;
	int rc;

	memset(iv, 0, sizeof(iv));
	memset(plain, 0, sizeof(plain));
	memcpy(plain, key, len);
	if ((rc = wr_u8(w, PK_KEY_TYPE_AES)) || (rc = wr_u8(w, (uint8_t)(1 + ctlen))) ||
	    (rc = wr_u8(w, (uint8_t)len)) || (rc = wr_reserve(w, ctlen, &ct)) ||
	    (rc = crypto_aes_cbc_encrypt(dek->dek, dek->len, iv, plain, ctlen, ct)) ||
	    (rc = pk_kcv(key, len, kcv)) || (rc = wr_u8(w, PK_KCV_LEN)))
		goto out;
	rc = wr_bytes(w, kcv, PK_KCV_LEN);
out:
	ct_wipe(plain, sizeof(plain));
	return rc;
}

/* 80 D8 old 81 Lc new-KVN ENC MAC DEK 00, and the answer the card must give. */
static int pk_command(struct wr *w, uint8_t old, uint8_t kvn, const struct scp_keys *dek,
		      const struct scp_keys *nk, uint8_t expect[SAM_PUT_KEY_ANSWER])
{
	const uint8_t *keys[3] = { nk->enc, nk->mac, nk->dek };
	uint8_t *lc;
	int rc;

	if ((rc = wr_u8(w, PK_CLA)) || (rc = wr_u8(w, PK_INS)) || (rc = wr_u8(w, old)) ||
	    (rc = wr_u8(w, PK_P2_SEVERAL)) || (rc = wr_reserve(w, 1, &lc)) || (rc = wr_u8(w, kvn)))
		return rc;
	expect[0] = kvn;
	for (unsigned i = 0; i < 3; i++)
		if ((rc = pk_field(w, dek, keys[i], nk->len, expect + 1 + PK_KCV_LEN * i)) != 0)
			return rc;
	*lc = (uint8_t)(w->len - 5);
	return wr_u8(w, 0x00);
}

/* Which set the request may replace: 0, or why not (nothing changed yet). */
static int pk_allowed(const struct sam *s, const struct sam_session *ss, uint8_t family,
		      uint8_t *old, const struct sam_key **cur)
{
	uint8_t base = SAM_KVN_BASE(family);

	/* The se lets a SERVER session replace any of its sets; only se-server sessions
	 * (the server's) may ask, and only for the two families an se holds. */
	if (ss->role != SAM_FAM_SE_SERVER)
		return TB_E_SAM_DENIED;
	if ((ss->h.level & (SCP_LEVEL_CMAC | SCP_LEVEL_RMAC)) != (SCP_LEVEL_CMAC | SCP_LEVEL_RMAC))
		return TB_E_SCP_LEVEL; /* without an R-MAC the card's answer proves nothing */
	if (family == SAM_FAM_SE_SERVER && *old == 0)
		*old = ss->h.kvn;
	if ((family == SAM_FAM_SE_SERVER && *old != ss->h.kvn) || *old <= base ||
	    *old > base + 0x0Fu)
		return TB_E_INVAL;
	if ((*cur = sam_keys_find(&s->ks, family, 0)) == NULL)
		return TB_E_SAM_KEY;
	return *old < (*cur)->version ? 0 : TB_E_SAM_CURRENT;
}

/* handle(4) family(1) kvn(1) -> new-kvn(1) wrapped PUT KEY. kvn: the set replaced (for the
 * session's own family 0 = the session's set). */
int sam_h_scp_put_key(struct sam_call *k)
{
	uint8_t cmd[SAM_PUT_KEY_CMD_MAX], expect[SAM_PUT_KEY_ANSWER], family, old;
	const struct sam_key *cur = NULL, *own;
	struct wr w = wr_init(cmd, sizeof(cmd));
	struct sam_session *ss;
	struct scp_keys dek, nk;
	int rc;

	if ((rc = sam_scp_take(k, &ss)) != 0)
		return rc;
	if (rd_u8(&k->req, &family) || rd_u8(&k->req, &old) || rd_end(&k->req) ||
	    (family != SAM_FAM_SE_SERVER && family != SAM_FAM_SE_READER))
		return TB_E_SAM_PROTO;
	if (ss->state == SAM_SS_CLOSED)
		return TB_E_SCP_CLOSED;
	if (ss->state != SAM_SS_OPEN)
		return TB_E_SAM_PROTO;
	if ((rc = pk_allowed(k->s, ss, family, &old, &cur)) != 0)
		return rc;
	/* The session's static Key-DEK (gone from scp_host with the static keys) again. */
	if ((own = sam_keys_find(&k->s->ks, ss->role, ss->h.kvn)) == NULL)
		return TB_E_SAM_KEY;
	memset(&dek, 0, sizeof(dek));
	memset(&nk, 0, sizeof(nk));
	if ((rc = sam_div_device_keys(own, ss->role, ss->serial, &dek)) == 0 &&
	    (rc = sam_div_device_keys(cur, family, ss->serial, &nk)) == 0 &&
	    (rc = pk_command(&w, old, cur->version, &dek, &nk, expect)) == 0 &&
	    (rc = wr_u8(k->out, cur->version)) == 0)
		rc = scp_host_wrap(&ss->h, cmd, w.len, k->out); /* fails: the channel stays OPEN */
	if (rc == 0) {
		memcpy(ss->expect, expect, sizeof(expect));
		ss->state = SAM_SS_KEY_DUE;
	}
	ct_wipe(&dek, sizeof(dek));
	ct_wipe(&nk, sizeof(nk));
	ct_wipe(cmd, sizeof(cmd));
	ct_wipe(expect, sizeof(expect));
	return rc;
}

int sam_putkey_check(struct sam_session *ss, const struct scp_resp *info, struct wr *out,
		     size_t data_at)
{
	/* A bare error status word: the card changed nothing; the client hears the SW. */
	if (info->sw != SW_OK)
		return 0;
	if (!info->authenticated || info->n != SAM_PUT_KEY_ANSWER || data_at > out->len ||
	    out->len - data_at != SAM_PUT_KEY_ANSWER ||
	    !ct_eq(out->p + data_at, ss->expect, SAM_PUT_KEY_ANSWER)) {
		sam_scp_fail(ss);
		return TB_E_SAM_KCV;
	}
	ct_wipe(out->p + data_at, SAM_PUT_KEY_ANSWER);
	out->len = data_at;
	ct_wipe(ss->expect, sizeof(ss->expect));
	return 0;
}
