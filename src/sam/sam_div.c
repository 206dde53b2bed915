/* sam_div.c - key diversification: a device's SCP03 key set from a role master and the
 * device serial (src/lib/div.c), the se-reader terminal key, the per-blob key, the se's
 * receipt key. Every key here is one SP 800-108 counter-mode KDF with AES-CMAC (crypto_kdf_ctr_cmac): fixed input "label || 00 || L",
 * the 8-bit counter, then the context. Outputs are written whole or wiped. */
#include <string.h>

#include "crypto.h"
#include "div.h"
#include "ct.h"
#include "err.h"
#include "sam.h"

int sam_div_device_keys(const struct sam_key *m, uint8_t role,
			const uint8_t serial[SAM_SERIAL_LEN], struct scp_keys *out)
{
	uint8_t term[DIV_KEY_LEN];
	int rc;

	if (m == NULL || !m->present || role < SAM_FAM_SE_SERVER || role > SAM_FAM_READER_SERVER)
		return TB_E_INVAL;
	if (role != SAM_FAM_SE_READER)
		return div_device_keys(m->key, role, m->version, m->dev_keylen, serial, out);
	/* The se-reader family goes through the terminal key that readers hold, so that a
	 * reader derives the same key sets without the master ever leaving the sam. */
	rc = div_terminal_key(m->key, m->version, term);
	if (rc == 0)
		rc = div_device_keys(term, role, m->version, m->dev_keylen, serial, out);
	ct_wipe(term, sizeof(term));
	return rc;
}

int sam_div_terminal_key(const struct sam_key *m, uint8_t out[SAM_KEY_LEN])
{
	if (m == NULL || !m->present)
		return TB_E_INVAL;
	return div_terminal_key(m->key, m->version, out);
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
