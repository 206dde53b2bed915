/* crypto.h - the crypto port: the only cryptographic interface the project uses.
 * OpenSSL 3 (libcrypto) sits behind it in crypto.c, the one file that includes
 * OpenSSL headers. All buffers are caller-owned; keys are 16, 24 or 32 bytes
 * (AES-128/192/256), otherwise TB_E_KEYLEN. Functions return 0 or TB_E_*. */
#ifndef TB_CRYPTO_H
#define TB_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CRYPTO_AES_BLOCK 16
#define CRYPTO_AES_MAXKEY 32
#define CRYPTO_SHA256_LEN 32
#define CRYPTO_P256_PRIV_LEN 32
#define CRYPTO_P256_PUB_LEN 65  /* uncompressed point 04 || X || Y */
#define CRYPTO_P256_SIG_LEN 64  /* r || s, each 32 bytes big-endian */

/* One block of AES in ECB mode. in and out may be the same buffer. */
int crypto_aes_ecb_encrypt(const uint8_t *key, size_t keylen,
			   const uint8_t in[CRYPTO_AES_BLOCK], uint8_t out[CRYPTO_AES_BLOCK]);

/* AES-CBC without padding: n must be a multiple of 16 (else TB_E_INVAL).
 * in and out may be the same buffer. */
int crypto_aes_cbc_encrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_AES_BLOCK],
			   const uint8_t *in, size_t n, uint8_t *out);
int crypto_aes_cbc_decrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_AES_BLOCK],
			   const uint8_t *in, size_t n, uint8_t *out);

/* AES-GCM (NIST SP 800-38D) with a 96-bit IV and the full 128-bit tag. in and out
 * may be the same buffer; aad may be NULL when naad is 0, in/out when n is 0.
 * Decryption verifies before it releases: on a wrong tag it wipes the n bytes at out
 * and returns TB_E_AEAD. Never use one (key, iv) pair twice. */
#define CRYPTO_GCM_IV_LEN 12
#define CRYPTO_GCM_TAG_LEN 16
int crypto_aes_gcm_encrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_GCM_IV_LEN],
			   const uint8_t *aad, size_t naad, const uint8_t *in, size_t n,
			   uint8_t *out, uint8_t tag[CRYPTO_GCM_TAG_LEN]);
int crypto_aes_gcm_decrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_GCM_IV_LEN],
			   const uint8_t *aad, size_t naad, const uint8_t *in, size_t n,
			   const uint8_t tag[CRYPTO_GCM_TAG_LEN], uint8_t *out);

/* A piece of a message given in parts (MAC chaining value || header || data). */
struct crypto_part {
	const uint8_t *p;
	size_t n;
};

/* AES-CMAC (NIST SP 800-38B), full 16-byte tag, over the parts concatenated. */
int crypto_cmac_parts(const uint8_t *key, size_t keylen, const struct crypto_part *parts,
		      size_t nparts, uint8_t tag[CRYPTO_AES_BLOCK]);
int crypto_cmac(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t n,
		uint8_t tag[CRYPTO_AES_BLOCK]);
/* The CMAC subkeys (L = AES(K, 0), K1, K2), exposed so the doubling can be
 * checked against the published values. */
int crypto_cmac_subkeys(const uint8_t *key, size_t keylen, uint8_t l[CRYPTO_AES_BLOCK],
			uint8_t k1[CRYPTO_AES_BLOCK], uint8_t k2[CRYPTO_AES_BLOCK]);

int crypto_sha256(const uint8_t *msg, size_t n, uint8_t out[CRYPTO_SHA256_LEN]);

/* Fills n bytes from the operating system's CSPRNG (through OpenSSL's DRBG). */
int crypto_random(uint8_t *out, size_t n);

/* ECDSA over P-256 with SHA-256 of msg. Keys are raw: a 32-byte private scalar
 * and a 65-byte uncompressed public point; signatures are raw r || s. */
int crypto_p256_keygen(uint8_t priv[CRYPTO_P256_PRIV_LEN], uint8_t pub[CRYPTO_P256_PUB_LEN]);
int crypto_p256_public(const uint8_t priv[CRYPTO_P256_PRIV_LEN], uint8_t pub[CRYPTO_P256_PUB_LEN]);
int crypto_ecdsa_sign(const uint8_t priv[CRYPTO_P256_PRIV_LEN], const uint8_t *msg, size_t n,
		      uint8_t sig[CRYPTO_P256_SIG_LEN]);
/* 0 when the signature verifies, TB_E_SIGNATURE when it does not. */
int crypto_ecdsa_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN], const uint8_t *msg, size_t n,
			const uint8_t sig[CRYPTO_P256_SIG_LEN]);

/* NIST SP 800-108 KDF in counter mode with AES-CMAC as PRF and an 8-bit counter
 * (1, 2, ...) placed between `before` and `after`: PRF input i is
 * before || i || after. out gets outlen bytes (at most 255 PRF blocks).
 * SCP03 uses it with before = label || 00 || L and after = context. */
int crypto_kdf_ctr_cmac(const uint8_t *key, size_t keylen, const uint8_t *before, size_t nbefore,
			const uint8_t *after, size_t nafter, uint8_t *out, size_t outlen);

#endif
