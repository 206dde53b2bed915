/* flag.c - the authenticity-confirmation flag (flow 3): a token the server signs (ECDSA
 * P-256 over "TBSG" || 01 || the 37 token bytes: the sam's domain-separated form, see
 * docs/sam.md), stores here through its secure channel, a reader
 * reads and verifies offline with the server's public key, then consumes (clears).
 * Token: version 01 || serial(8) || service(4) || expiry(4) || nonce(16) ||
 * offline limit(4), followed by the signature r || s (64).
 * What stays true: a stored token names this se's serial; the se does not need the
 * server's key (the channel authenticated the server) and never alters the token. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "se_int.h"

#define FLAG_VERSION 0x01u
#define FLAG_SERIAL_AT 1u
#define FLAG_EXPIRY_AT 13u
#define FLAG_NONCE_AT 17u

static uint32_t flag_expiry(const uint8_t *token)
{
	const uint8_t *p = token + FLAG_EXPIRY_AT;

	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Data: token(37) || signature(64). Replaces a stored token. */
int flag_set(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, SE_FLAG_LEN)))
		return rc;
	if (c->a->data[0] != FLAG_VERSION ||
	    !ct_eq(c->a->data + FLAG_SERIAL_AT, next.serial, SE_SERIAL_LEN))
		return TB_E_INVAL;
	if (flag_expiry(c->a->data) < c->now)
		return TB_E_SE_EXPIRED;
	next.flag = 1;
	memcpy(next.flag_token, c->a->data, SE_FLAG_LEN);
	return se_persist(c->se, &next, NULL, 0);
}

/* Response: token || signature, while it has not expired. */
int flag_read(struct se_cmd *c)
{
	const struct se_image *img = &c->se->img;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_READER, SE_LEVEL_WALLET)) || (rc = se_expect(c, 0, 0, 0)))
		return rc;
	if (!img->flag)
		return TB_E_SE_NOT_FOUND;
	if (flag_expiry(img->flag_token) < c->now)
		return TB_E_SE_EXPIRED;
	return wr_bytes(c->out, img->flag_token, SE_FLAG_LEN);
}

/* Data: the token's nonce(16), naming the token the reader used. */
int flag_consume(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_READER, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, SE_FLAG_NONCE_LEN)))
		return rc;
	if (!next.flag)
		return TB_E_SE_NOT_FOUND;
	if (!ct_eq(c->a->data, next.flag_token + FLAG_NONCE_AT, SE_FLAG_NONCE_LEN))
		return TB_E_INVAL;
	next.flag = 0;
	memset(next.flag_token, 0, sizeof(next.flag_token));
	return se_persist(c->se, &next, NULL, 0);
}
