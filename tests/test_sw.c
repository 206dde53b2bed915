/* test_sw.c - status word messages (named SWs, the 61XX/63CX/6CXX families, class
 * fallbacks, small buffers) and which SWs count as success or warning for SCP03. */
#include <string.h>

#include "sw.h"
#include "vec.h"

static const uint16_t named[] = {
	SW_OK, SW_WARN_NO_CHANGE, SW_WARN_EOF, SW_WARN_CORRUPTED, SW_WARN_SELECTED_INVALIDATED,
	SW_MORE_DATA, SW_AUTH_FAILED, SW_EXEC_ERROR, SW_MEMORY_FAILURE, SW_WRONG_LENGTH,
	SW_CLA_FUNC_NOT_SUPPORTED, SW_LOGICAL_CHANNEL_NOT_SUPPORTED,
	SW_SECURE_MESSAGING_NOT_SUPPORTED, SW_COMMAND_NOT_ALLOWED, SW_INCOMPATIBLE_FILE,
	SW_SECURITY_STATUS, SW_AUTH_METHOD_BLOCKED, SW_REF_DATA_NOT_USABLE,
	SW_CONDITIONS_NOT_SATISFIED, SW_COMMAND_NOT_ALLOWED_NO_EF, SW_SM_DATA_MISSING,
	SW_SM_DATA_INCORRECT, SW_WRONG_DATA, SW_FUNC_NOT_SUPPORTED, SW_FILE_NOT_FOUND,
	SW_RECORD_NOT_FOUND, SW_NOT_ENOUGH_MEMORY, SW_INCORRECT_P1P2, SW_LC_INCONSISTENT_P1P2,
	SW_REF_DATA_NOT_FOUND, SW_WRONG_P1P2, SW_INS_NOT_SUPPORTED, SW_CLA_NOT_SUPPORTED,
	SW_UNKNOWN,
};

static const char *msg(uint16_t sw)
{
	static char buf[96];
	return sw_message(sw, buf, sizeof(buf));
}

static void test_named(void **state)
{
	(void)state;
	assert_string_equal(msg(SW_OK), "success");
	assert_string_equal(msg(SW_FILE_NOT_FOUND), "file or application not found");
	assert_string_equal(msg(SW_SECURITY_STATUS), "security status not satisfied");
	assert_string_equal(msg(SW_CONDITIONS_NOT_SATISFIED), "conditions of use not satisfied");
	assert_string_equal(msg(SW_INS_NOT_SUPPORTED), "instruction code not supported or invalid");
	assert_non_null(strstr(msg(SW_AUTH_FAILED), "authentication failed"));
	/* Each named constant has its own sentence, not a class fallback. */
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		const char *m = msg(named[i]);
		assert_non_null(m);
		assert_true(strlen(m) > 5);
		assert_null(strstr(m, "unknown"));
		for (size_t j = 0; j < i; j++) {
			if (named[j] != named[i])
				assert_true(strcmp(m, msg(named[j])) != 0);
		}
	}
}

static void test_families(void **state)
{
	char buf[64];
	(void)state;
	assert_string_equal(sw_message(0x6110, buf, sizeof(buf)), "16 more bytes available (GET RESPONSE)");
	assert_string_equal(sw_message(0x61FF, buf, sizeof(buf)), "255 more bytes available (GET RESPONSE)");
	assert_string_equal(sw_message(0x6100, buf, sizeof(buf)), "256 or more bytes available (GET RESPONSE)");
	assert_string_equal(sw_message(0x63C3, buf, sizeof(buf)), "verification failed, 3 tries left");
	assert_string_equal(sw_message(0x63C0, buf, sizeof(buf)), "verification failed, 0 tries left");
	assert_string_equal(sw_message(0x63CF, buf, sizeof(buf)), "verification failed, 15 tries left");
	assert_string_equal(sw_message(0x6C20, buf, sizeof(buf)), "wrong Le; exact length is 32");
	assert_string_equal(sw_message(0x6C00, buf, sizeof(buf)), "wrong Le; exact length is 256");
	/* The number lands in the caller's buffer. */
	assert_ptr_equal(sw_message(0x6C01, buf, sizeof(buf)), buf);
	/* Without a buffer the family still gets a sentence, just without the number. */
	assert_string_equal(sw_message(0x6C20, NULL, 0), "wrong Le");
	assert_string_equal(sw_message(0x63C2, buf, 0), "verification failed");
	assert_string_equal(sw_message(0x6105, NULL, 10), "more bytes available (GET RESPONSE)");
}

static void test_class_fallbacks(void **state)
{
	(void)state;
	assert_string_equal(msg(0x6299), "warning: non-volatile memory unchanged");
	assert_string_equal(msg(0x6301), "warning: non-volatile memory changed");
	assert_string_equal(msg(0x6401), "execution error: non-volatile memory unchanged");
	assert_string_equal(msg(0x6512), "execution error: non-volatile memory changed");
	assert_string_equal(msg(0x6601), "execution error: security-related issue");
	assert_string_equal(msg(0x6701), "wrong length");
	assert_string_equal(msg(0x6899), "functions in CLA not supported");
	assert_string_equal(msg(0x6999), "command not allowed");
	assert_string_equal(msg(0x6A99), "wrong parameters");
	assert_string_equal(msg(0x6B01), "wrong parameters P1-P2");
	assert_string_equal(msg(0x6D01), "instruction code not supported or invalid");
	assert_string_equal(msg(0x6E01), "class not supported");
	assert_string_equal(msg(0x6F01), "no precise diagnosis");
	assert_string_equal(msg(0x9101), "application-specific status");
	assert_string_equal(msg(0x6000), "unknown status word");
	assert_string_equal(msg(0x0000), "unknown status word");
	assert_string_equal(msg(0xA000), "unknown status word");
}

/* Every SW gets a sentence, and tiny buffers are never overrun. */
static void test_all_sws_small_buffers(void **state)
{
	(void)state;
	for (uint32_t sw = 0; sw <= 0xFFFF; sw++) {
		for (unsigned cap = 1; cap <= 8; cap += 3) {
			char buf[16];
			const char *m;

			memset(buf, 'Z', sizeof(buf));
			m = sw_message((uint16_t)sw, buf, cap);
			assert_non_null(m);
			if (m == buf) {
				assert_true(strlen(buf) < cap);
				for (size_t k = cap; k < sizeof(buf); k++)
					assert_int_equal(buf[k], 'Z');
			} else {
				assert_true(strlen(m) > 0);
				assert_int_equal(buf[0], 'Z');
			}
		}
	}
	/* A cut message is a prefix of the whole one. */
	{
		char small[8], whole[64];
		sw_message(0x63C3, small, sizeof(small));
		assert_string_equal(small, "verific");
		sw_message(0x63C3, whole, sizeof(whole));
		assert_int_equal(strncmp(small, whole, 7), 0);
	}
}

static void test_success_or_warning(void **state)
{
	(void)state;
	for (uint32_t sw = 0; sw <= 0xFFFF; sw++) {
		int want = sw == 0x9000 || (sw >> 8) == 0x62 || (sw >> 8) == 0x63;
		assert_int_equal(sw_is_success_or_warning((uint16_t)sw), want);
	}
	/* 61XX is transport-level (GET RESPONSE), not an outcome. */
	assert_int_equal(sw_is_success_or_warning(0x6110), 0);
	assert_int_equal(sw_is_success_or_warning(0x9000), 1);
	assert_int_equal(sw_is_success_or_warning(0x6310), 1);
	assert_int_equal(sw_is_success_or_warning(0x6A88), 0);
	assert_int_equal(sw_is_success_or_warning(0x9001), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_families),
		cmocka_unit_test(test_class_fallbacks),
		cmocka_unit_test(test_all_sws_small_buffers),
		cmocka_unit_test(test_success_or_warning),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
