/* kdf.c - NIST SP 800-108 counter-mode KDF with AES-CMAC, 8-bit counter between
 * two fixed parts. Built on the crypto port; the PRF output is wiped. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"

int crypto_kdf_ctr_cmac(const uint8_t *key, size_t keylen, const uint8_t *before, size_t nbefore,
			const uint8_t *after, size_t nafter, uint8_t *out, size_t outlen)
{
	uint8_t block[CRYPTO_AES_BLOCK];
	uint8_t i = 0;
	size_t done = 0;
	int rc = 0;

	if (outlen > 255u * CRYPTO_AES_BLOCK)
		return TB_E_INVAL;
	while (done < outlen) {
		struct crypto_part parts[3] = { { before, nbefore }, { &i, 1 }, { after, nafter } };
		size_t take = outlen - done < CRYPTO_AES_BLOCK ? outlen - done : CRYPTO_AES_BLOCK;

		i++;
		if ((rc = crypto_cmac_parts(key, keylen, parts, 3, block)) != 0)
			break;
		memcpy(out + done, block, take);
		done += take;
	}
	ct_wipe(block, sizeof(block));
	if (rc != 0)
		ct_wipe(out, outlen);
	return rc;
}
