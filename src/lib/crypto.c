/* crypto.c - the crypto port over OpenSSL 3 libcrypto. The only file in the
 * project that includes OpenSSL headers. Every temporary that held key
 * material or intermediate cipher state is wiped before return. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/bn.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"

int ct_eq(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}

void ct_wipe(void *p, size_t n)
{
	if (p != NULL && n > 0)
		OPENSSL_cleanse(p, n);
}

static const EVP_CIPHER *aes_cipher(size_t keylen, int cbc)
{
	switch (keylen) {
	case 16: return cbc ? EVP_aes_128_cbc() : EVP_aes_128_ecb();
	case 24: return cbc ? EVP_aes_192_cbc() : EVP_aes_192_ecb();
	case 32: return cbc ? EVP_aes_256_cbc() : EVP_aes_256_ecb();
	default: return NULL;
	}
}

/* One shot of AES without padding; n is a multiple of the block size. */
static int aes_run(const uint8_t *key, size_t keylen, int cbc, int enc, const uint8_t *iv,
		   const uint8_t *in, size_t n, uint8_t *out)
{
	const EVP_CIPHER *c = aes_cipher(keylen, cbc);
	EVP_CIPHER_CTX *ctx = NULL;
	int outl = 0, finl = 0, rc = TB_E_CRYPTO;

	if (c == NULL)
		return TB_E_KEYLEN;
	if (n % CRYPTO_AES_BLOCK != 0 || n > (size_t)0x7FFFFFF0)
		return TB_E_INVAL;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return TB_E_NOMEM;
	if (EVP_CipherInit_ex(ctx, c, NULL, key, iv, enc) != 1)
		goto out;
	EVP_CIPHER_CTX_set_padding(ctx, 0);
	if (n > 0 && EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + outl, &finl) != 1)
		goto out;
	if ((size_t)outl + (size_t)finl != n)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx); /* frees and cleanses the key schedule */
	return rc;
}

int crypto_aes_ecb_encrypt(const uint8_t *key, size_t keylen,
			   const uint8_t in[CRYPTO_AES_BLOCK], uint8_t out[CRYPTO_AES_BLOCK])
{
	return aes_run(key, keylen, 0, 1, NULL, in, CRYPTO_AES_BLOCK, out);
}

int crypto_aes_cbc_encrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_AES_BLOCK],
			   const uint8_t *in, size_t n, uint8_t *out)
{
	return aes_run(key, keylen, 1, 1, iv, in, n, out);
}

int crypto_aes_cbc_decrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_AES_BLOCK],
			   const uint8_t *in, size_t n, uint8_t *out)
{
	return aes_run(key, keylen, 1, 0, iv, in, n, out);
}

static const EVP_CIPHER *gcm_cipher(size_t keylen)
{
	switch (keylen) {
	case 16: return EVP_aes_128_gcm();
	case 24: return EVP_aes_192_gcm();
	case 32: return EVP_aes_256_gcm();
	default: return NULL;
	}
}

/* One GCM pass; on decryption the tag is set before the final call checks it. */
static int gcm_run(const uint8_t *key, size_t keylen, int enc, const uint8_t *iv,
		   const uint8_t *aad, size_t naad, const uint8_t *in, size_t n, uint8_t *out,
		   uint8_t *tag)
{
	const EVP_CIPHER *c = gcm_cipher(keylen);
	EVP_CIPHER_CTX *ctx = NULL;
	uint8_t fin[CRYPTO_AES_BLOCK]; /* GCM's final call writes nothing */
	int outl = 0, finl = 0, rc = TB_E_CRYPTO;

	if (c == NULL)
		return TB_E_KEYLEN;
	if (n > (size_t)0x7FFFFFF0 || naad > (size_t)0x7FFFFFF0 ||
	    (n > 0 && (in == NULL || out == NULL)) || (naad > 0 && aad == NULL))
		return TB_E_INVAL;
	if ((ctx = EVP_CIPHER_CTX_new()) == NULL)
		return TB_E_NOMEM;
	if (EVP_CipherInit_ex(ctx, c, NULL, NULL, NULL, enc) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_GCM_IV_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(ctx, NULL, NULL, key, iv, enc) != 1)
		goto out;
	if (naad > 0 && EVP_CipherUpdate(ctx, NULL, &outl, aad, (int)naad) != 1)
		goto out;
	if (n > 0 && (EVP_CipherUpdate(ctx, out, &outl, in, (int)n) != 1 || (size_t)outl != n))
		goto out;
	if (!enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_GCM_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, fin, &finl) != 1) {
		rc = enc ? TB_E_CRYPTO : TB_E_AEAD;
		goto out;
	}
	if (finl != 0)
		goto out;
	if (enc && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_GCM_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rc;
}

int crypto_aes_gcm_encrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_GCM_IV_LEN],
			   const uint8_t *aad, size_t naad, const uint8_t *in, size_t n,
			   uint8_t *out, uint8_t tag[CRYPTO_GCM_TAG_LEN])
{
	int rc = gcm_run(key, keylen, 1, iv, aad, naad, in, n, out, tag);

	if (rc != 0 && rc != TB_E_KEYLEN && rc != TB_E_INVAL && n > 0)
		ct_wipe(out, n); /* no half-encrypted output */
	return rc;
}

int crypto_aes_gcm_decrypt(const uint8_t *key, size_t keylen, const uint8_t iv[CRYPTO_GCM_IV_LEN],
			   const uint8_t *aad, size_t naad, const uint8_t *in, size_t n,
			   const uint8_t tag[CRYPTO_GCM_TAG_LEN], uint8_t *out)
{
	uint8_t t[CRYPTO_GCM_TAG_LEN];
	int rc;

	memcpy(t, tag, sizeof(t)); /* OpenSSL takes a non-const tag */
	rc = gcm_run(key, keylen, 0, iv, aad, naad, in, n, out, t);
	/* Nothing of an unauthenticated plaintext leaves: wipe what was decrypted. */
	if (rc != 0 && rc != TB_E_KEYLEN && rc != TB_E_INVAL && n > 0)
		ct_wipe(out, n);
	return rc;
}

static const char *cmac_cipher_name(size_t keylen)
{
	switch (keylen) {
	case 16: return "AES-128-CBC";
	case 24: return "AES-192-CBC";
	case 32: return "AES-256-CBC";
	default: return NULL;
	}
}

int crypto_cmac_parts(const uint8_t *key, size_t keylen, const struct crypto_part *parts,
		      size_t nparts, uint8_t tag[CRYPTO_AES_BLOCK])
{
	const char *cname = cmac_cipher_name(keylen);
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outl = 0;
	int rc = TB_E_CRYPTO;

	if (cname == NULL)
		return TB_E_KEYLEN;
	if ((mac = EVP_MAC_fetch(NULL, "CMAC", NULL)) == NULL)
		goto out;
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, (char *)cname, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (EVP_MAC_init(ctx, key, keylen, params) != 1)
		goto out;
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].n > 0 && EVP_MAC_update(ctx, parts[i].p, parts[i].n) != 1)
			goto out;
	}
	if (EVP_MAC_final(ctx, tag, &outl, CRYPTO_AES_BLOCK) != 1 || outl != CRYPTO_AES_BLOCK)
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

int crypto_cmac(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t n,
		uint8_t tag[CRYPTO_AES_BLOCK])
{
	struct crypto_part part = { msg, n };
	return crypto_cmac_parts(key, keylen, &part, 1, tag);
}

/* Doubling in GF(2^128) as SP 800-38B 6.1: shift left, xor 0x87 if the top bit was set. */
static void gf_double(const uint8_t in[CRYPTO_AES_BLOCK], uint8_t out[CRYPTO_AES_BLOCK])
{
	uint8_t carry = (uint8_t)(in[0] >> 7);

	for (size_t i = 0; i < CRYPTO_AES_BLOCK - 1; i++)
		out[i] = (uint8_t)((in[i] << 1) | (in[i + 1] >> 7));
	out[CRYPTO_AES_BLOCK - 1] = (uint8_t)(in[CRYPTO_AES_BLOCK - 1] << 1);
	/* branch-free: the mask is 0xFF or 0x00 */
	out[CRYPTO_AES_BLOCK - 1] ^= (uint8_t)(0x87 & (uint8_t)(0 - carry));
}

int crypto_cmac_subkeys(const uint8_t *key, size_t keylen, uint8_t l[CRYPTO_AES_BLOCK],
			uint8_t k1[CRYPTO_AES_BLOCK], uint8_t k2[CRYPTO_AES_BLOCK])
{
	static const uint8_t zero[CRYPTO_AES_BLOCK];
	int rc = crypto_aes_ecb_encrypt(key, keylen, zero, l);

	if (rc != 0)
		return rc;
	gf_double(l, k1);
	gf_double(k1, k2);
	return 0;
}

int crypto_sha256(const uint8_t *msg, size_t n, uint8_t out[CRYPTO_SHA256_LEN])
{
	unsigned int outl = 0;

	if (EVP_Digest(msg, n, out, &outl, EVP_sha256(), NULL) != 1 || outl != CRYPTO_SHA256_LEN)
		return TB_E_CRYPTO;
	return 0;
}

int crypto_random(uint8_t *out, size_t n)
{
	if (n > (size_t)0x7FFFFFFF)
		return TB_E_INVAL;
	return RAND_bytes(out, (int)n) == 1 ? 0 : TB_E_CRYPTO;
}

/* Builds an EVP_PKEY for P-256 from a raw private scalar and/or public point. */
static int p256_pkey(const uint8_t *priv, const uint8_t *pub, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *bn = NULL;
	int rc = TB_E_CRYPTO;

	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		goto out;
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1)
		goto out;
	if (priv != NULL) {
		if ((bn = BN_secure_new()) == NULL || BN_bin2bn(priv, CRYPTO_P256_PRIV_LEN, bn) == NULL)
			goto out;
		if (OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, bn) != 1)
			goto out;
	}
	if (pub != NULL && OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
							     CRYPTO_P256_PUB_LEN) != 1)
		goto out;
	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL)
		goto out;
	if (EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, priv != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
			      params) != 1)
		goto out;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_clear_free(bn);
	return rc;
}

static int p256_export(EVP_PKEY *pk, uint8_t *priv, uint8_t pub[CRYPTO_P256_PUB_LEN])
{
	BIGNUM *bn = NULL;
	size_t publ = 0;
	int rc = TB_E_CRYPTO;

	if (EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pub, CRYPTO_P256_PUB_LEN,
					    &publ) != 1 || publ != CRYPTO_P256_PUB_LEN)
		goto out;
	if (priv != NULL) {
		if (EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_PRIV_KEY, &bn) != 1)
			goto out;
		if (BN_bn2binpad(bn, priv, CRYPTO_P256_PRIV_LEN) != CRYPTO_P256_PRIV_LEN)
			goto out;
	}
	rc = 0;
out:
	BN_clear_free(bn);
	return rc;
}

int crypto_p256_keygen(uint8_t priv[CRYPTO_P256_PRIV_LEN], uint8_t pub[CRYPTO_P256_PUB_LEN])
{
	EVP_PKEY *pk = EVP_EC_gen("prime256v1");
	int rc;

	if (pk == NULL)
		return TB_E_CRYPTO;
	rc = p256_export(pk, priv, pub);
	EVP_PKEY_free(pk);
	return rc;
}

int crypto_p256_public(const uint8_t priv[CRYPTO_P256_PRIV_LEN], uint8_t pub[CRYPTO_P256_PUB_LEN])
{
	EC_GROUP *grp = NULL;
	EC_POINT *pt = NULL;
	BIGNUM *bn = NULL;
	int rc = TB_E_CRYPTO;

	if ((grp = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL)
		goto out;
	if ((bn = BN_secure_new()) == NULL || BN_bin2bn(priv, CRYPTO_P256_PRIV_LEN, bn) == NULL)
		goto out;
	if (BN_is_zero(bn) || BN_cmp(bn, EC_GROUP_get0_order(grp)) >= 0) {
		rc = TB_E_INVAL;
		goto out;
	}
	if ((pt = EC_POINT_new(grp)) == NULL || EC_POINT_mul(grp, pt, bn, NULL, NULL, NULL) != 1)
		goto out;
	if (EC_POINT_point2oct(grp, pt, POINT_CONVERSION_UNCOMPRESSED, pub, CRYPTO_P256_PUB_LEN,
			       NULL) != CRYPTO_P256_PUB_LEN)
		goto out;
	rc = 0;
out:
	EC_POINT_free(pt);
	BN_clear_free(bn);
	EC_GROUP_free(grp);
	return rc;
}

int crypto_ecdsa_sign(const uint8_t priv[CRYPTO_P256_PRIV_LEN], const uint8_t *msg, size_t n,
		      uint8_t sig[CRYPTO_P256_SIG_LEN])
{
	uint8_t pub[CRYPTO_P256_PUB_LEN];
	uint8_t der[80];
	const uint8_t *dp = der;
	size_t derl = sizeof(der);
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	const BIGNUM *r, *s;
	int rc;

	if ((rc = crypto_p256_public(priv, pub)) != 0)
		return rc;
	rc = TB_E_CRYPTO;
	if (p256_pkey(priv, pub, &pk) != 0)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, der, &derl, msg, n) != 1)
		goto out;
	if ((es = d2i_ECDSA_SIG(NULL, &dp, (long)derl)) == NULL)
		goto out;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, sig, 32) != 32 || BN_bn2binpad(s, sig + 32, 32) != 32)
		goto out;
	rc = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return rc;
}

int crypto_ecdsa_verify(const uint8_t pub[CRYPTO_P256_PUB_LEN], const uint8_t *msg, size_t n,
			const uint8_t sig[CRYPTO_P256_SIG_LEN])
{
	uint8_t der[80];
	uint8_t *dp = der;
	int derl;
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *md = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int rc = TB_E_CRYPTO, v;

	if (p256_pkey(NULL, pub, &pk) != 0) {
		rc = TB_E_SIGNATURE; /* not a point on the curve: nothing can verify */
		goto out;
	}
	if ((es = ECDSA_SIG_new()) == NULL)
		goto out;
	if ((r = BN_bin2bn(sig, 32, NULL)) == NULL || (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(es, r, s) != 1)
		goto out;
	r = s = NULL;
	if ((derl = i2d_ECDSA_SIG(es, NULL)) <= 0 || (size_t)derl > sizeof(der))
		goto out;
	if (i2d_ECDSA_SIG(es, &dp) != derl)
		goto out;
	if ((md = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) != 1)
		goto out;
	v = EVP_DigestVerify(md, der, (size_t)derl, msg, n);
	rc = v == 1 ? 0 : TB_E_SIGNATURE;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return rc;
}
