/* test_hex.c - hex text <-> bytes: case, separators between pairs only, odd
 * lengths and stray characters refused without writing, capacity limits, and the
 * refusal to print buffers marked secret. */
#include <string.h>

#include "err.h"
#include "hex.h"
#include "vec.h"

static int dec(const char *s, uint8_t *out, size_t cap, size_t *outlen)
{
	return hex_decode(s, strlen(s), out, cap, outlen);
}

static void test_decode_good(void **state)
{
	uint8_t out[16];
	size_t n = 0;
	(void)state;

	assert_int_equal(dec("00ff10AB", out, sizeof(out), &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(out[0], 0x00);
	assert_int_equal(out[1], 0xFF);
	assert_int_equal(out[2], 0x10);
	assert_int_equal(out[3], 0xAB);
	assert_int_equal(dec("aBcD", out, sizeof(out), &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0], 0xAB);
	assert_int_equal(out[1], 0xCD);
	/* Spaces, tabs and colons between pairs, also leading, trailing and repeated. */
	assert_int_equal(dec(" 01:02 03\t04  ::05 ", out, sizeof(out), &n), 0);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(out[i], i + 1);
	/* Empty and separator-only strings are zero bytes. */
	n = 99;
	assert_int_equal(dec("", out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(dec(" : ", out, sizeof(out), &n), 0);
	assert_int_equal(n, 0);
	/* n bounds the text: no NUL needed, nothing past n read. */
	assert_int_equal(hex_decode("0102zz", 4, out, sizeof(out), &n), 0);
	assert_int_equal(n, 2);
	/* Exactly cap bytes fit. */
	assert_int_equal(dec("0102", out, 2, &n), 0);
	assert_int_equal(n, 2);
}

struct bad {
	const char *s;
	int rc;
};

static void test_decode_bad(void **state)
{
	static const struct bad bads[] = {
		{ "1", TB_E_HEX },         /* odd length */
		{ "123", TB_E_HEX },
		{ "01 2", TB_E_HEX },
		{ "0 1", TB_E_HEX },       /* separator inside a pair */
		{ "0:1", TB_E_HEX },
		{ "0g", TB_E_HEX },        /* not a digit */
		{ "0x01", TB_E_HEX },
		{ "01\n02", TB_E_HEX },    /* newline is not a separator */
		{ "01-02", TB_E_HEX },
		{ "01,02", TB_E_HEX },
		{ "0102030405", TB_E_NOSPACE }, /* 5 bytes into cap 4 */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		uint8_t out[8];
		size_t n = 77;

		memset(out, 0xEE, sizeof(out));
		assert_int_equal(dec(bads[i].s, out, 4, &n), bads[i].rc);
		assert_int_equal(n, 77);
		for (size_t k = 0; k < sizeof(out); k++)
			assert_int_equal(out[k], 0xEE);
	}
	/* A NUL inside the counted text is a bad character, not an end. */
	{
		uint8_t out[4];
		size_t n = 77;
		assert_int_equal(hex_decode("01\0" "02", 5, out, sizeof(out), &n), TB_E_HEX);
		assert_int_equal(n, 77);
	}
}

static void test_encode(void **state)
{
	const uint8_t in[] = { 0x00, 0x9F, 0xA5, 0xFF };
	char out[16];
	(void)state;

	assert_int_equal(hex_encode(in, sizeof(in), HEX_PUBLIC, out, sizeof(out)), 0);
	assert_string_equal(out, "009FA5FF");
	/* Exactly 2n + 1 fits; one less does not, and writes nothing. */
	assert_int_equal(hex_encode(in, 4, HEX_PUBLIC, out, 9), 0);
	assert_string_equal(out, "009FA5FF");
	memset(out, 'Z', sizeof(out));
	assert_int_equal(hex_encode(in, 4, HEX_PUBLIC, out, 8), TB_E_NOSPACE);
	assert_int_equal(hex_encode(in, 0, HEX_PUBLIC, out, 0), TB_E_NOSPACE);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 'Z');
	assert_int_equal(hex_encode(in, 0, HEX_PUBLIC, out, 1), 0);
	assert_string_equal(out, "");
	/* A huge n cannot wrap the capacity check. */
	assert_int_equal(hex_encode(in, (size_t)-1 / 2 + 1, HEX_PUBLIC, out, sizeof(out)), TB_E_NOSPACE);
}

static void test_secret_refused(void **state)
{
	const uint8_t key[16] = { 0x40, 0x41, 0x42, 0x43 };
	char out[64];
	(void)state;

	memset(out, 'Z', sizeof(out));
	assert_int_equal(hex_encode(key, sizeof(key), HEX_SECRET, out, sizeof(out)), TB_E_SECRET);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 'Z');
	/* Refused even when it would not fit: the secret check comes first. */
	assert_int_equal(hex_encode(key, sizeof(key), HEX_SECRET, out, 1), TB_E_SECRET);
}

static void test_round_trip_all_bytes(void **state)
{
	uint8_t in[256], back[256];
	char text[513];
	size_t n = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	assert_int_equal(hex_encode(in, sizeof(in), HEX_PUBLIC, text, sizeof(text)), 0);
	assert_int_equal(strlen(text), 512);
	assert_int_equal(dec(text, back, sizeof(back), &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(in, back, sizeof(in));
	/* Lower case decodes to the same bytes. */
	for (size_t i = 0; i < 512; i++) {
		if (text[i] >= 'A' && text[i] <= 'F')
			text[i] = (char)(text[i] - 'A' + 'a');
	}
	assert_int_equal(dec(text, back, sizeof(back), &n), 0);
	assert_memory_equal(in, back, sizeof(in));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_good),
		cmocka_unit_test(test_decode_bad),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_secret_refused),
		cmocka_unit_test(test_round_trip_all_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
