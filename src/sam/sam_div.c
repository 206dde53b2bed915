/* sam_div.c - key diversification: a device's SCP03 key set from a role master and the
 * device serial, the per-blob key, the se's receipt key. Every key here is one SP 800-108
 * counter-mode KDF with AES-CMAC (crypto_kdf_ctr_cmac): fixed input "label || 00 || L",
 * the 8-bit counter, then the context. Outputs are written whole or wiped. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "sam.h"

#define DIV_LABEL_LEN 6u
#define DIV_BEFORE_LEN (DIV_LABEL_LEN + 3u + 3u)   /* label role kvn t | 00 | L(2) */

int sam_div_device_keys(const struct sam_key *m, uint8_t role,
			const uint8_t serial[SAM_SERIAL_LEN], struct scp_keys *out)
{
	static const uint8_t label[DIV_LABEL_LEN] = { 'T', 'B', '-', 'D', 'I', 'V' };
	uint8_t *dst[3] = { NULL, NULL, NULL };
	uint8_t before[DIV_BEFORE_LEN];
	struct scp_keys k;
	size_t len;
	int rc = 0;

	if (m == NULL || !m->present || role < SAM_FAM_SE_SERVER || role > SAM_FAM_READER_SERVER)
		return TB_E_INVAL;
	len = m->dev_keylen;
	if (len != 16 && len != 24 && len != 32)
		return TB_E_KEYLEN;
	memset(&k, 0, sizeof(k));
	dst[0] = k.enc;
	dst[1] = k.mac;
	dst[2] = k.dek;
	memcpy(before, label, DIV_LABEL_LEN);
	before[DIV_LABEL_LEN] = role;
	before[DIV_LABEL_LEN + 1] = m->version;
	before[DIV_LABEL_LEN + 3] = 0x00; /* separator */
	before[DIV_LABEL_LEN + 4] = (uint8_t)((len * 8u) >> 8);
	before[DIV_LABEL_LEN + 5] = (uint8_t)(len * 8u);
	for (uint8_t t = 1; t <= 3 && rc == 0; t++) {
		before[DIV_LABEL_LEN + 2] = t;
		rc = crypto_kdf_ctr_cmac(m->key, SAM_KEY_LEN, before, sizeof(before), serial,
					 SAM_SERIAL_LEN, dst[t - 1], len);
	}
	if (rc == 0) {
		k.len = len;
		*out = k;
	}
	ct_wipe(&k, sizeof(k));
	return rc;
}

int sam_div_blob_key(const struct sam_key *m, const uint8_t *blob_id, size_t n,
		     uint8_t out[SAM_KEY_LEN])
{
	static const uint8_t before[] = { 'T', 'B', '-', 'B', 'L', 'O', 'B', 0x00, 0x01, 0x00 };

	if (m == NULL || !m->present || blob_id == NULL || n == 0 || n > SAM_BLOB_ID_MAX)
		return TB_E_INVAL;
	return crypto_kdf_ctr_cmac(m->key, SAM_KEY_LEN, before, sizeof(before), blob_id, n, out,
				   SAM_KEY_LEN);
}

int sam_div_receipt_key(const struct scp_keys *dev, const uint8_t serial[SAM_SERIAL_LEN],
			uint8_t out[16])
{
	static const uint8_t label[] = { 't', 'a', 'p', 'b', 'r', 'i', 'd', 'g', 'e', ' ', 'r',
					 'e', 'c', 'e', 'i', 'p', 't', 0x00, 0x00, 0x80 };

	return crypto_kdf_ctr_cmac(dev->mac, dev->len, label, sizeof(label), serial,
				   SAM_SERIAL_LEN, out, 16);
}
