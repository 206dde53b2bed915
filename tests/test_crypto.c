/* test_crypto.c - the crypto port against published values: NIST SP 800-38B
 * CMAC (tags and subkeys), NIST CAVP SP 800-108 counter-mode KDF, FIPS-197 /
 * SP 800-38A AES, FIPS 180-2 SHA-256, ECDSA P-256 sign/verify behaviour, and AES-GCM
 * (McGrew-Viega test cases 13-16). */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "vec.h"

static void test_cmac_vectors(void **state)
{
	json_t *root = vec_load("cmac.json");
	size_t i, count = 0;
	json_t *v;

	(void)state;
	json_array_foreach(root, i, v) {
		uint8_t key[32], msg[64], tag[16], l[16], k1[16], k2[16];
		size_t kn = vec_hex(v, "key", key, sizeof(key));
		size_t mn = vec_hex(v, "message", msg, sizeof(msg));

		assert_int_equal(crypto_cmac(key, kn, msg, mn, tag), 0);
		assert_hex_equal(tag, 16, vec_str(v, "tag"));
		assert_int_equal(crypto_cmac_subkeys(key, kn, l, k1, k2), 0);
		assert_hex_equal(k1, 16, vec_str(v, "subkey_K1"));
		assert_hex_equal(k2, 16, vec_str(v, "subkey_K2"));
		if (vec_has(v, "subkey_L"))
			assert_hex_equal(l, 16, vec_str(v, "subkey_L"));
		/* The same tag when the message comes in two parts split anywhere. */
		for (size_t cut = 0; cut <= mn; cut += 7) {
			struct crypto_part parts[2] = { { msg, cut }, { msg + cut, mn - cut } };
			assert_int_equal(crypto_cmac_parts(key, kn, parts, 2, tag), 0);
			assert_hex_equal(tag, 16, vec_str(v, "tag"));
		}
		count++;
	}
	assert_int_equal(count, 15);
	json_decref(root);
}

static void test_kdf_vectors(void **state)
{
	json_t *root = vec_load("kdf.json");
	size_t i, count = 0;
	json_t *v;

	(void)state;
	json_array_foreach(root, i, v) {
		uint8_t key[32], before[128], after[128], out[64], want[64];
		size_t kn = vec_hex(v, "KI", key, sizeof(key));
		size_t nb = 0, na = 0;
		size_t outlen = (size_t)json_integer_value(json_object_get(v, "L_bits")) / 8;
		const char *loc = vec_str(v, "counter_location");

		if (strcmp(loc, "BEFORE_FIXED") == 0) {
			na = vec_hex(v, "fixed_input_data", after, sizeof(after));
		} else if (strcmp(loc, "MIDDLE_FIXED") == 0) {
			nb = vec_hex(v, "data_before_counter", before, sizeof(before));
			na = vec_hex(v, "data_after_counter", after, sizeof(after));
		} else {
			fail_msg("unknown counter location %s", loc);
		}
		assert_int_equal(vec_hex(v, "KO", want, sizeof(want)), outlen);
		assert_int_equal(crypto_kdf_ctr_cmac(key, kn, before, nb, after, na, out, outlen), 0);
		assert_hex_equal(out, outlen, vec_str(v, "KO"));
		count++;
	}
	assert_int_equal(count, 24);
	json_decref(root);
}

static void test_aes_known(void **state)
{
	uint8_t key[32], pt[64], ct[64], iv[16], out[64];
	(void)state;

	/* FIPS-197 appendix C.1 */
	hexbuf("000102030405060708090A0B0C0D0E0F", key, sizeof(key));
	hexbuf("00112233445566778899AABBCCDDEEFF", pt, sizeof(pt));
	assert_int_equal(crypto_aes_ecb_encrypt(key, 16, pt, out), 0);
	assert_hex_equal(out, 16, "69C4E0D86A7B0430D8CDB78070B4C55A");
	/* FIPS-197 appendix C.3 (AES-256) */
	hexbuf("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F", key, sizeof(key));
	assert_int_equal(crypto_aes_ecb_encrypt(key, 32, pt, out), 0);
	assert_hex_equal(out, 16, "8EA2B7CA516745BFEAFC49904B496089");
	/* SP 800-38A F.2.1 CBC-AES128, first two blocks */
	hexbuf("2B7E151628AED2A6ABF7158809CF4F3C", key, sizeof(key));
	hexbuf("000102030405060708090A0B0C0D0E0F", iv, sizeof(iv));
	hexbuf("6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51", pt, sizeof(pt));
	assert_int_equal(crypto_aes_cbc_encrypt(key, 16, iv, pt, 32, ct), 0);
	assert_hex_equal(ct, 32, "7649ABAC8119B246CEE98E9B12E9197D5086CB9B507219EE95DB113A917678B2");
	assert_int_equal(crypto_aes_cbc_decrypt(key, 16, iv, ct, 32, out), 0);
	assert_memory_equal(out, pt, 32);
	/* in place */
	memcpy(out, pt, 32);
	assert_int_equal(crypto_aes_cbc_encrypt(key, 16, iv, out, 32, out), 0);
	assert_memory_equal(out, ct, 32);
	/* bad lengths */
	assert_int_equal(crypto_aes_cbc_encrypt(key, 16, iv, pt, 17, ct), TB_E_INVAL);
	assert_int_equal(crypto_aes_ecb_encrypt(key, 15, pt, out), TB_E_KEYLEN);
	assert_int_equal(crypto_cmac(key, 20, pt, 3, out), TB_E_KEYLEN);
}

static void test_sha256(void **state)
{
	uint8_t out[32];
	(void)state;
	assert_int_equal(crypto_sha256((const uint8_t *)"abc", 3, out), 0);
	assert_hex_equal(out, 32, "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
}

static void test_ecdsa(void **state)
{
	uint8_t priv[32], pub[65], pub2[65], sig[64];
	const uint8_t msg[] = "serial|service|expiry|nonce";
	(void)state;

	assert_int_equal(crypto_p256_keygen(priv, pub), 0);
	assert_int_equal(pub[0], 0x04);
	assert_int_equal(crypto_p256_public(priv, pub2), 0);
	assert_memory_equal(pub, pub2, 65);
	assert_int_equal(crypto_ecdsa_sign(priv, msg, sizeof(msg), sig), 0);
	assert_int_equal(crypto_ecdsa_verify(pub, msg, sizeof(msg), sig), 0);
	/* Any flipped bit in message or signature fails. */
	for (size_t i = 0; i < 64; i++) {
		sig[i] ^= 0x01;
		assert_int_equal(crypto_ecdsa_verify(pub, msg, sizeof(msg), sig), TB_E_SIGNATURE);
		sig[i] ^= 0x01;
	}
	assert_int_equal(crypto_ecdsa_verify(pub, msg, sizeof(msg) - 1, sig), TB_E_SIGNATURE);
	/* A point not on the curve is refused, not a crash. */
	pub[10] ^= 0x40;
	assert_int_equal(crypto_ecdsa_verify(pub, msg, sizeof(msg), sig), TB_E_SIGNATURE);
	/* Zero is not a private key. */
	memset(priv, 0, sizeof(priv));
	assert_int_equal(crypto_p256_public(priv, pub2), TB_E_INVAL);
}

static void test_random_and_ct(void **state)
{
	uint8_t a[32], b[32];
	(void)state;
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_false(ct_eq(a, b, sizeof(a)));
	memcpy(b, a, sizeof(a));
	assert_true(ct_eq(a, b, sizeof(a)));
	b[31] ^= 0x80;
	assert_false(ct_eq(a, b, sizeof(a)));
	ct_wipe(a, sizeof(a));
	for (size_t i = 0; i < sizeof(a); i++)
		assert_int_equal(a[i], 0);
}

/* AES-256-GCM known answers: McGrew and Viega, "The Galois/Counter Mode of Operation
 * (GCM)", revised 2005, Appendix B, Test Cases 13-16 (96-bit IVs; the same values as
 * NIST's GCM test vectors). Case 16 has a partial last block and 20 bytes of AAD. */
struct gcm_case {
	const char *key, *iv, *aad, *pt, *ct, *tag;
};

static const char gcm_k15[] = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
static const char gcm_p15[] = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
			      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
static const char gcm_c15[] = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
			      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";

static const struct gcm_case gcm_cases[] = {
	{ "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b" },
	{ "0000000000000000000000000000000000000000000000000000000000000000",
	  "000000000000000000000000", "", "00000000000000000000000000000000",
	  "cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919" },
	{ gcm_k15, "cafebabefacedbaddecaf888", "", gcm_p15, gcm_c15,
	  "b094dac5d93471bdec1a502270e3cc6c" },
	/* Case 16: case 15's plaintext and ciphertext cut to 60 bytes, with AAD. */
	{ gcm_k15, "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	  NULL, NULL, "76fc6ece0f4e1768cddf8853bb2d551b" },
};

static void test_aes_gcm_known(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(gcm_cases) / sizeof(gcm_cases[0]); c++) {
		const struct gcm_case *g = &gcm_cases[c];
		uint8_t key[32], iv[12], aad[32], pt[64], ct[64], want[64], tag[16], wtag[16];
		uint8_t back[64];
		size_t kn = hexbuf(g->key, key, sizeof(key)), an = hexbuf(g->aad, aad, sizeof(aad));
		size_t pn = hexbuf(g->pt != NULL ? g->pt : gcm_p15, pt, sizeof(pt));
		size_t cn = hexbuf(g->ct != NULL ? g->ct : gcm_c15, want, sizeof(want));

		assert_int_equal(hexbuf(g->iv, iv, sizeof(iv)), 12);
		assert_int_equal(hexbuf(g->tag, wtag, sizeof(wtag)), 16);
		if (g->pt == NULL)
			pn = cn = 60;
		assert_int_equal(pn, cn);
		assert_int_equal(crypto_aes_gcm_encrypt(key, kn, iv, aad, an, pt, pn, ct, tag), 0);
		assert_true(ct_eq(ct, want, cn));
		assert_true(ct_eq(tag, wtag, 16));
		assert_int_equal(crypto_aes_gcm_decrypt(key, kn, iv, aad, an, ct, cn, tag, back), 0);
		assert_true(ct_eq(back, pt, pn));
		/* Verify before release: any flipped bit fails and leaves zeros behind. */
		for (size_t bit = 0; bit < 8 * (cn + 16 + an); bit += 29) {
			uint8_t c2[64], t2[16], a2[32];
			size_t byte = bit / 8;

			memcpy(c2, ct, cn);
			memcpy(t2, tag, 16);
			memcpy(a2, aad, an);
			if (byte < cn)
				c2[byte] ^= (uint8_t)(1u << (bit % 8));
			else if (byte < cn + 16)
				t2[byte - cn] ^= (uint8_t)(1u << (bit % 8));
			else
				a2[byte - cn - 16] ^= (uint8_t)(1u << (bit % 8));
			memset(back, 0xAA, sizeof(back));
			assert_int_equal(crypto_aes_gcm_decrypt(key, kn, iv, a2, an, c2, cn, t2, back),
					 TB_E_AEAD);
			for (size_t i = 0; i < cn; i++)
				assert_int_equal(back[i], 0);
		}
		/* In place, both ways. */
		memcpy(back, pt, pn);
		assert_int_equal(crypto_aes_gcm_encrypt(key, kn, iv, aad, an, back, pn, back, tag), 0);
		assert_true(ct_eq(back, want, cn));
		assert_int_equal(crypto_aes_gcm_decrypt(key, kn, iv, aad, an, back, cn, tag, back), 0);
		assert_true(ct_eq(back, pt, pn));
	}
	{
		uint8_t k[20] = { 0 }, iv[12] = { 0 }, tag[16], b[16] = { 0 };

		assert_int_equal(crypto_aes_gcm_encrypt(k, 20, iv, NULL, 0, b, 16, b, tag),
				 TB_E_KEYLEN);
		assert_int_equal(crypto_aes_gcm_encrypt(k, 16, iv, NULL, 0, NULL, 16, b, tag),
				 TB_E_INVAL);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmac_vectors),
		cmocka_unit_test(test_kdf_vectors),
		cmocka_unit_test(test_aes_known),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_ecdsa),
		cmocka_unit_test(test_random_and_ct),
		cmocka_unit_test(test_aes_gcm_known),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
