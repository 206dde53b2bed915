/* isd.c - the Issuer Security Domain's commands behind the secure channel: GET DATA
 * (key information template, CPLC, CIN, card recognition data), GET STATUS in the
 * tagged E3 format, and PUT KEY (AES key sets under Key-DEK, notes section 9).
 * What stays true: every length is checked before a byte is read, and PUT KEY checks
 * every key and KCV before anything is written. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "se_int.h"
#include "tlv.h"

#define ISD_INS_GET_DATA 0xCAu
#define ISD_INS_GET_STATUS 0xF2u
#define ISD_INS_PUT_KEY 0xD8u
#define ISD_KEY_TYPE_AES 0x88u
#define ISD_CPLC_LEN 42u
#define ISD_LC_INITIALIZED 0x07u
#define ISD_LC_SECURED 0x0Fu
#define ISD_LC_SELECTABLE 0x07u
#define ISD_LC_APP_LOCKED 0x83u

/* ---------------------------------------------------------------- GET DATA --- */

static int isd_key_info(struct se_cmd *c)
{
	const struct se_image *img = &c->se->img;
	struct tlv_mark m;
	int rc;

	if ((rc = tlv_open(c->out, 0xE0, &m)) != 0)
		return rc;
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++) {
		if (!img->ks[s].present)
			continue;
		for (uint8_t id = 1; id <= 3; id++) {
			uint8_t v[4] = { id, img->ks[s].kvn, ISD_KEY_TYPE_AES, img->ks[s].keylen };

			if ((rc = tlv_put(c->out, 0xC0, v, sizeof(v))) != 0)
				return rc;
		}
	}
	return tlv_close(c->out, &m);
}

/* CPLC: the serial is IC fabricator (bytes 0-1), IC batch identifier (bytes 2-3) and
 * IC serial number (bytes 4-7); the other fields are zero but for the OS release. */
static int isd_cplc(struct se_cmd *c)
{
	const uint8_t *sn = c->se->img.serial;
	uint8_t v[ISD_CPLC_LEN];

	memset(v, 0, sizeof(v));
	memcpy(v, sn, 2);         /* IC fabricator */
	v[2] = 'T';               /* IC type */
	v[3] = 'B';
	v[8] = 0x01;              /* OS release level 1.0 */
	memcpy(v + 12, sn + 4, 4); /* IC serial number */
	memcpy(v + 16, sn + 2, 2); /* IC batch identifier */
	return tlv_put(c->out, 0x9F7F, v, sizeof(v));
}

/* GP card recognition data: GP card, GP 2.3.1, SCP03 with i = 70. */
static int isd_card_data(struct se_cmd *c)
{
	static const uint8_t oids[] = {
		0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01,
		0x60, 0x0C, 0x06, 0x0A, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x02, 0x02, 0x03, 0x01,
		0x63, 0x09, 0x06, 0x07, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x03,
		0x64, 0x0B, 0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x04, 0x03, 0x70,
	};
	struct tlv_mark outer, inner;
	int rc;

	if ((rc = tlv_open(c->out, 0x66, &outer)) || (rc = tlv_open(c->out, 0x73, &inner)) ||
	    (rc = wr_bytes(c->out, oids, sizeof(oids))) || (rc = tlv_close(c->out, &inner)))
		return rc;
	return tlv_close(c->out, &outer);
}

int se_get_data_common(struct se_cmd *c)
{
	uint16_t tag = (uint16_t)(c->a->p1 << 8 | c->a->p2);

	if (c->a->nc != 0)
		return TB_E_LEFTOVER;
	switch (tag) {
	case 0x9F7F:
		return isd_cplc(c);
	case 0x0045:
		return tlv_put(c->out, 0x45, c->se->img.serial, SE_SERIAL_LEN);
	default:
		return TB_E_SE_NOT_FOUND;
	}
}

static int isd_get_data(struct se_cmd *c)
{
	uint16_t tag = (uint16_t)(c->a->p1 << 8 | c->a->p2);

	if (c->a->nc != 0)
		return TB_E_LEFTOVER;
	if (tag == 0x00E0)
		return isd_key_info(c);
	if (tag == 0x0066)
		return isd_card_data(c);
	return se_get_data_common(c);
}

/* -------------------------------------------------------------- GET STATUS --- */

struct isd_entry {
	const uint8_t *aid;
	size_t aid_len;
	uint8_t life;
	uint8_t priv[3];
};

static int isd_put_entry(struct wr *w, const struct isd_entry *e)
{
	struct tlv_mark m;
	int rc;

	if ((rc = tlv_open(w, 0xE3, &m)) || (rc = tlv_put(w, 0x4F, e->aid, e->aid_len)) ||
	    (rc = tlv_put(w, 0x9F70, &e->life, 1)) || (rc = tlv_put(w, 0xC5, e->priv, 3)))
		return rc;
	return tlv_close(w, &m);
}

/* Search criteria: 4F with an AID prefix (4F 00 matches all), then optionally a 5C tag
 * list (accepted; the entries always carry 4F, 9F70 and C5). */
static int isd_status_filter(const struct apdu *a, struct rd *prefix)
{
	struct rd r = rd_init(a->data, a->nc);
	struct tlv t;
	int rc;

	if (a->nc == 0)
		return TB_E_INVAL;
	if ((rc = tlv_expect(&r, TLV_STRICT, 0x4F, &t)) != 0)
		return rc == TB_E_TRUNC ? TB_E_INVAL : rc;
	*prefix = t.val;
	if (rd_left(&r) > 0 && (rc = tlv_expect(&r, TLV_STRICT, 0x5C, &t)) != 0)
		return rc == TB_E_TRUNC ? TB_E_INVAL : rc;
	return rd_end(&r) == 0 ? 0 : TB_E_INVAL;
}

static int isd_get_status(struct se_cmd *c)
{
	const struct se_test_app *t = c->se->cfg != NULL ? c->se->cfg->test_app : NULL;
	struct isd_entry e[3];
	size_t n = 0, found = 0;
	struct rd prefix;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_READER | SE_ALLOW_DEFAULT, 0)) != 0)
		return rc;
	if (c->a->cla != SE_CLA_GP)
		return TB_E_SE_CLA;
	if (c->a->p1 != 0x80 && c->a->p1 != 0x40 && c->a->p1 != 0x20 && c->a->p1 != 0x10)
		return TB_E_SE_P1P2;
	if ((c->a->p2 & 0xFEu) != 0x02)
		return TB_E_SE_P1P2; /* only the tagged format (P2 b2) */
	if ((rc = isd_status_filter(c->a, &prefix)) != 0)
		return rc;
	if (c->a->p2 & 0x01u)
		return TB_E_SE_NOT_FOUND; /* "next occurrence": all came in the first answer */
	memset(e, 0, sizeof(e));
	if (c->a->p1 == 0x80) {
		e[n++] = (struct isd_entry){ se_isd_aid, SE_ISD_AID_LEN,
					     c->se->img.personalised ? ISD_LC_SECURED
								     : ISD_LC_INITIALIZED,
					     { 0x9E, 0xFE, 0x80 } };
	} else if (c->a->p1 == 0x40) {
		e[n++] = (struct isd_entry){ se_wallet_aid, SE_WALLET_AID_LEN,
					     c->se->img.locked ? ISD_LC_APP_LOCKED
							       : ISD_LC_SELECTABLE,
					     { 0, 0, 0 } };
		if (t != NULL)
			e[n++] = (struct isd_entry){ t->aid, t->aid_len, ISD_LC_SELECTABLE,
						     { 0, 0, 0 } };
	}
	for (size_t i = 0; i < n; i++) {
		if (prefix.n > e[i].aid_len || !ct_eq(prefix.p, e[i].aid, prefix.n))
			continue;
		if ((rc = isd_put_entry(c->out, &e[i])) != 0)
			return rc;
		found++;
	}
	return found > 0 ? 0 : TB_E_SE_NOT_FOUND;
}

/* ----------------------------------------------------------------- PUT KEY --- */

/* One AES key data field: 88 L clear-length ciphertext 03 KCV (notes section 9). */
static int isd_key_field(struct rd *r, const struct scp_keys *kek, uint8_t key[SCP_KEY_MAX],
			 uint8_t *keylen, uint8_t kcv[3])
{
	static const uint8_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	uint8_t type, len, clear, kcv_len, iv[16], check[16];
	const uint8_t *ct, *want;
	size_t ctlen;
	int rc;

	if (rd_u8(r, &type) || rd_u8(r, &len) || rd_u8(r, &clear))
		return TB_E_TRUNC;
	if (type != ISD_KEY_TYPE_AES || (clear != 16 && clear != 24 && clear != 32))
		return TB_E_INVAL;
	ctlen = clear == 16 ? 16u : 32u;
	if (len != 1 + ctlen)
		return TB_E_INVAL;
	if (rd_bytes(r, ctlen, &ct) || rd_u8(r, &kcv_len))
		return TB_E_TRUNC;
	if (kcv_len != 3)
		return TB_E_INVAL;
	if (rd_bytes(r, 3, &want))
		return TB_E_TRUNC;
	memset(iv, 0, sizeof(iv));
	if ((rc = crypto_aes_cbc_decrypt(kek->dek, kek->len, iv, ct, ctlen, key)) == 0 &&
	    (rc = crypto_aes_ecb_encrypt(key, clear, ones, check)) == 0 && !ct_eq(check, want, 3))
		rc = TB_E_INVAL;
	memcpy(kcv, check, 3);
	*keylen = clear;
	ct_wipe(check, sizeof(check));
	return rc;
}

/* Data: new KVN || Key-ENC, Key-MAC, Key-DEK fields. Keys go to keys (SECRET). */
static int isd_put_key_parse(const struct apdu *a, const struct scp_keys *kek, uint8_t *kvn,
			     struct scp_keys *keys, uint8_t kcv[9])
{
	uint8_t *dst[3] = { keys->enc, keys->mac, keys->dek };
	uint8_t len[3];
	struct rd r = rd_init(a->data, a->nc);
	int rc;

	if (rd_u8(&r, kvn))
		return TB_E_TRUNC;
	for (unsigned i = 0; i < 3; i++)
		if ((rc = isd_key_field(&r, kek, dst[i], &len[i], kcv + 3 * i)) != 0)
			return rc;
	if (rd_end(&r) != 0)
		return TB_E_LEFTOVER;
	if (len[0] != len[1] || len[1] != len[2] || *kvn == 0x00 || *kvn == SE_DEFAULT_KVN)
		return TB_E_INVAL;
	keys->len = len[0];
	return 0;
}

/* 80 D8 P1 81 Lc data: P1 00 adds a key set, else replaces set P1. A set added by the
 * factory (DEFAULT) session is the SERVER's, one added by a SERVER session a READER's;
 * a replaced set keeps its role (the default set becomes SERVER). */
static int isd_put_key(struct se_cmd *c)
{
	struct se *se = c->se;
	struct scp_keys kek, keys;
	uint8_t kvn, kcv[9], role, page_keys[IMG_KEYS_LEN];
	struct se_image next;
	struct img_patch patch;
	int cur, old = -1, slot, rc;

	memset(&kek, 0, sizeof(kek));
	memset(&keys, 0, sizeof(keys));
	memset(page_keys, 0, sizeof(page_keys));
	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_DEFAULT, SCP_LEVEL_CMAC)) != 0)
		return rc;
	if (c->a->cla != SE_CLA_GP)
		return TB_E_SE_CLA;
	if (c->a->p2 != 0x81)
		return TB_E_SE_P1P2;
	/* The session's own set must still be the one it opened with. */
	if ((cur = img_keyset_find(&se->img, c->kvn)) < 0 || cur != c->slot)
		return TB_E_SE_SECURITY;
	if (c->a->p1 != 0x00 && (old = img_keyset_find(&se->img, c->a->p1)) < 0)
		return TB_E_SE_NOT_FOUND;
	if ((rc = img_read_keys(&se->jnl, (unsigned)cur, &kek)) != 0 ||
	    (rc = isd_put_key_parse(c->a, &kek, &kvn, &keys, kcv)) != 0)
		goto out;
	rc = TB_E_SE_EXISTS;
	if (img_keyset_find(&se->img, kvn) >= 0 && (old < 0 || se->img.ks[old].kvn != kvn))
		goto out;
	next = se->img;
	role = c->role == SE_ROLE_DEFAULT ? SE_ROLE_SERVER : SE_ROLE_READER;
	if (old >= 0) {
		role = next.ks[old].role == SE_ROLE_DEFAULT ? SE_ROLE_SERVER : next.ks[old].role;
		memset(&next.ks[old], 0, sizeof(next.ks[old]));
	}
	if ((rc = img_keyset_place(&next, kvn, role, (uint8_t)keys.len, &slot)) != 0)
		goto out;
	memcpy(page_keys, keys.enc, keys.len);
	memcpy(page_keys + SCP_KEY_MAX, keys.mac, keys.len);
	memcpy(page_keys + 2 * SCP_KEY_MAX, keys.dek, keys.len);
	patch = (struct img_patch){ (uint16_t)(IMG_PG_KEYSET + (unsigned)slot), IMG_KEYS_AT,
				    page_keys, IMG_KEYS_LEN };
	if ((rc = wr_room(c->out) >= 10 ? 0 : TB_E_NOSPACE) != 0 ||
	    (rc = se_persist(se, &next, &patch, 1)) != 0)
		goto out;
	(void)wr_u8(c->out, kvn);
	(void)wr_bytes(c->out, kcv, sizeof(kcv));
out:
	ct_wipe(&kek, sizeof(kek));
	ct_wipe(&keys, sizeof(keys));
	ct_wipe(page_keys, sizeof(page_keys));
	return rc;
}

int isd_command(struct se_cmd *c)
{
	switch (c->a->ins) {
	case ISD_INS_GET_DATA:
		return isd_get_data(c);
	case ISD_INS_GET_STATUS:
		return isd_get_status(c);
	case ISD_INS_PUT_KEY:
		return isd_put_key(c);
	default:
		return TB_E_SE_INS;
	}
}
