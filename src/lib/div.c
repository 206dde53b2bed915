/* div.c - key diversification (div.h): the sam derives with it from its masters, a reader
 * from its terminal key, and both reach the same se-reader key sets. Every output is one
 * KDF call per key; a failed call leaves *out untouched and wipes what it made. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "div.h"
#include "err.h"

#define DIV_LABEL_LEN 6u
#define DIV_BEFORE_LEN (DIV_LABEL_LEN + 3u + 3u)   /* label role kvn t | 00 | L(2) */

int div_device_keys(const uint8_t key[DIV_KEY_LEN], uint8_t role, uint8_t version,
		    size_t keylen, const uint8_t serial[DIV_SERIAL_LEN], struct scp_keys *out)
{
	static const uint8_t label[DIV_LABEL_LEN] = { 'T', 'B', '-', 'D', 'I', 'V' };
	uint8_t *dst[3] = { NULL, NULL, NULL };
	uint8_t before[DIV_BEFORE_LEN];
	struct scp_keys k;
	int rc = 0;

	if (key == NULL || serial == NULL || out == NULL || role < 1 || role > 3)
		return TB_E_INVAL;
	if (keylen != 16 && keylen != 24 && keylen != 32)
		return TB_E_KEYLEN;
	memset(&k, 0, sizeof(k));
	dst[0] = k.enc;
	dst[1] = k.mac;
	dst[2] = k.dek;
	memcpy(before, label, DIV_LABEL_LEN);
	before[DIV_LABEL_LEN] = role;
	before[DIV_LABEL_LEN + 1] = version;
	before[DIV_LABEL_LEN + 3] = 0x00; /* separator */
	before[DIV_LABEL_LEN + 4] = (uint8_t)((keylen * 8u) >> 8);
	before[DIV_LABEL_LEN + 5] = (uint8_t)(keylen * 8u);
	for (uint8_t t = 1; t <= 3 && rc == 0; t++) {
		before[DIV_LABEL_LEN + 2] = t;
		rc = crypto_kdf_ctr_cmac(key, DIV_KEY_LEN, before, sizeof(before), serial,
					 DIV_SERIAL_LEN, dst[t - 1], keylen);
	}
	if (rc == 0) {
		k.len = keylen;
		*out = k;
	}
	ct_wipe(&k, sizeof(k));
	return rc;
}

int div_terminal_key(const uint8_t master[DIV_KEY_LEN], uint8_t version,
		     uint8_t out[DIV_KEY_LEN])
{
	static const uint8_t before[] = { 'T', 'B', '-', 'T', 'E', 'R', 'M', 0x00, 0x01, 0x00 };
	uint8_t ctx[1];

	if (master == NULL || out == NULL)
		return TB_E_INVAL;
	ctx[0] = version;
	return crypto_kdf_ctr_cmac(master, DIV_KEY_LEN, before, sizeof(before), ctx, sizeof(ctx),
				   out, DIV_KEY_LEN);
}
