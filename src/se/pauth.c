/* pauth.c - personal authentication: the se holds only an identifier and a key that
 * proves possession; the personal data lives on the server, found there by the id.
 * What stays true: the key leaves the se never; it comes in only under C-DEC (level 33)
 * and is wiped from every buffer it passes through.
 *
 * PROVE: proof = AES-CMAC(key, serial(8) || card nonce(8) || challenge), full 16 bytes;
 * the response is id(16) || card nonce(8) || proof(16). */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "se_int.h"

#define PAUTH_NONCE_LEN 8u
#define PAUTH_CHALLENGE_MIN 8u
#define PAUTH_CHALLENGE_MAX 32u

/* P1 00: data id(16) key(16). P1 01: no data, removes both. */
int pauth_set(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	struct img_patch patch;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_SECRET)) != 0)
		return rc;
	if (c->a->p1 == 0x01) {
		if ((rc = se_expect(c, 1, 0, 0)) != 0)
			return rc;
		next.pauth = 0;
		memset(next.pauth_id, 0, sizeof(next.pauth_id));
		return se_persist(c->se, &next, NULL, 0);
	}
	if ((rc = se_expect(c, 0, 0, SE_PAUTH_ID_LEN + SE_PAUTH_KEY_LEN)) != 0)
		return rc;
	next.pauth = 1;
	memcpy(next.pauth_id, c->a->data, SE_PAUTH_ID_LEN);
	patch = (struct img_patch){ IMG_PG_WALLET, IMG_PAUTH_KEY_AT, c->a->data + SE_PAUTH_ID_LEN,
				    SE_PAUTH_KEY_LEN };
	return se_persist(c->se, &next, &patch, 1);
}

/* Data: the verifier's challenge, 8..32 bytes. */
int pauth_prove(struct se_cmd *c)
{
	uint8_t key[SE_PAUTH_KEY_LEN], nonce[PAUTH_NONCE_LEN], tag[16];
	struct crypto_part parts[3];
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_READER, SE_LEVEL_WALLET)) != 0)
		return rc;
	if (c->a->p1 != 0 || c->a->p2 != 0)
		return TB_E_SE_P1P2;
	if (c->a->nc < PAUTH_CHALLENGE_MIN)
		return TB_E_TRUNC;
	if (c->a->nc > PAUTH_CHALLENGE_MAX)
		return TB_E_LEFTOVER;
	if (!c->se->img.pauth)
		return TB_E_SE_NOT_FOUND;
	if (wr_room(c->out) < SE_PAUTH_ID_LEN + PAUTH_NONCE_LEN + sizeof(tag))
		return TB_E_NOSPACE;
	if ((rc = se_random(c->se, nonce, sizeof(nonce))) != 0)
		return rc;
	parts[0] = (struct crypto_part){ c->se->img.serial, SE_SERIAL_LEN };
	parts[1] = (struct crypto_part){ nonce, sizeof(nonce) };
	parts[2] = (struct crypto_part){ c->a->data, c->a->nc };
	if ((rc = img_read_pauth_key(&c->se->jnl, key)) == 0 &&
	    (rc = crypto_cmac_parts(key, sizeof(key), parts, 3, tag)) == 0) {
		(void)wr_bytes(c->out, c->se->img.pauth_id, SE_PAUTH_ID_LEN);
		(void)wr_bytes(c->out, nonce, sizeof(nonce));
		(void)wr_bytes(c->out, tag, sizeof(tag));
	}
	ct_wipe(key, sizeof(key));
	ct_wipe(tag, sizeof(tag));
	return rc;
}
