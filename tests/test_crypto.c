/* test_crypto.c - the crypto port against published values: NIST SP 800-38B
 * CMAC (tags and subkeys), NIST CAVP SP 800-108 counter-mode KDF, FIPS-197 /
 * SP 800-38A AES, FIPS 180-2 SHA-256, and ECDSA P-256 sign/verify behaviour. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cmac_vectors),
		cmocka_unit_test(test_kdf_vectors),
		cmocka_unit_test(test_aes_known),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_ecdsa),
		cmocka_unit_test(test_random_and_ct),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
