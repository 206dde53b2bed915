/* sw.c - human messages for ISO 7816-4 / GlobalPlatform status words.
 * Lookup goes exact SW, then the XX-parameter families, then the SW1 class;
 * every SW gets a sentence, and numbers are formatted without stdio. */
#include <stddef.h>

#include "sw.h"

struct sw_text {
	uint16_t sw;
	const char *msg;
};

static const struct sw_text sw_exact[] = {
	{ SW_OK, "success" },
	{ SW_WARN_NO_CHANGE, "warning: no information given, non-volatile memory unchanged" },
	{ SW_WARN_CORRUPTED, "warning: part of the returned data may be corrupted" },
	{ SW_WARN_EOF, "warning: end of file or record reached before Ne bytes were read" },
	{ SW_WARN_SELECTED_INVALIDATED, "warning: selected file or application invalidated" },
	{ SW_AUTH_FAILED, "warning: authentication failed (e.g. wrong host cryptogram)" },
	{ SW_MORE_DATA, "warning: more data available" },
	{ SW_EXEC_ERROR, "execution error: non-volatile memory unchanged" },
	{ SW_MEMORY_FAILURE, "execution error: memory failure" },
	{ SW_WRONG_LENGTH, "wrong length" },
	{ SW_CLA_FUNC_NOT_SUPPORTED, "functions in CLA not supported" },
	{ SW_LOGICAL_CHANNEL_NOT_SUPPORTED, "logical channel not supported" },
	{ SW_SECURE_MESSAGING_NOT_SUPPORTED, "secure messaging not supported" },
	{ SW_COMMAND_NOT_ALLOWED, "command not allowed" },
	{ SW_INCOMPATIBLE_FILE, "command incompatible with the file structure" },
	{ SW_SECURITY_STATUS, "security status not satisfied" },
	{ SW_AUTH_METHOD_BLOCKED, "authentication method blocked" },
	{ SW_REF_DATA_NOT_USABLE, "reference data not usable" },
	{ SW_CONDITIONS_NOT_SATISFIED, "conditions of use not satisfied" },
	{ SW_COMMAND_NOT_ALLOWED_NO_EF, "command not allowed: no current EF" },
	{ SW_SM_DATA_MISSING, "expected secure messaging data objects missing" },
	{ SW_SM_DATA_INCORRECT, "secure messaging data objects incorrect" },
	{ SW_WRONG_DATA, "incorrect parameters in the command data field" },
	{ SW_FUNC_NOT_SUPPORTED, "function not supported" },
	{ SW_FILE_NOT_FOUND, "file or application not found" },
	{ SW_RECORD_NOT_FOUND, "record not found" },
	{ SW_NOT_ENOUGH_MEMORY, "not enough memory space" },
	{ SW_INCORRECT_P1P2, "incorrect parameters P1-P2" },
	{ SW_LC_INCONSISTENT_P1P2, "Lc inconsistent with P1-P2" },
	{ SW_REF_DATA_NOT_FOUND, "referenced data not found" },
	{ SW_WRONG_P1P2, "wrong parameters P1-P2" },
	{ SW_INS_NOT_SUPPORTED, "instruction code not supported or invalid" },
	{ SW_CLA_NOT_SUPPORTED, "class not supported" },
	{ SW_UNKNOWN, "no precise diagnosis" },
};

/* Indexed by SW1 - 0x60, for SWs no exact entry or family names. */
static const char *const sw_class[16] = {
	NULL,
	NULL, /* 61XX is a family */
	"warning: non-volatile memory unchanged",
	"warning: non-volatile memory changed",
	"execution error: non-volatile memory unchanged",
	"execution error: non-volatile memory changed",
	"execution error: security-related issue",
	"wrong length",
	"functions in CLA not supported",
	"command not allowed",
	"wrong parameters",
	"wrong parameters P1-P2",
	NULL, /* 6CXX is a family */
	"instruction code not supported or invalid",
	"class not supported",
	"no precise diagnosis",
};

/* Appends s to buf at *len, keeping room for the NUL; cuts what does not fit. */
static void sw_cat(char *buf, unsigned cap, unsigned *len, const char *s)
{
	while (*s != '\0' && *len + 1 < cap)
		buf[(*len)++] = *s++;
	buf[*len] = '\0';
}

/* pre + decimal v + post into buf; NULL when there is no buffer to write into. */
static const char *sw_fmt(char *buf, unsigned cap, const char *pre, unsigned v, const char *post)
{
	char digits[12];
	unsigned i = sizeof(digits) - 1, len = 0;

	if (buf == NULL || cap == 0)
		return NULL;
	digits[i] = '\0';
	do {
		digits[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && i > 0);
	buf[0] = '\0';
	sw_cat(buf, cap, &len, pre);
	sw_cat(buf, cap, &len, digits + i);
	sw_cat(buf, cap, &len, post);
	return buf;
}

/* The XX-parameter families; NULL when sw is not in one. */
static const char *sw_family(uint16_t sw, char *buf, unsigned cap)
{
	unsigned sw1 = sw >> 8, sw2 = sw & 0xFFu;
	const char *m;

	if (sw1 == 0x61) {
		if (sw2 == 0)
			return "256 or more bytes available (GET RESPONSE)";
		m = sw_fmt(buf, cap, "", sw2, " more bytes available (GET RESPONSE)");
		return m != NULL ? m : "more bytes available (GET RESPONSE)";
	}
	if (sw1 == 0x63 && (sw2 & 0xF0u) == 0xC0u) {
		m = sw_fmt(buf, cap, "verification failed, ", sw2 & 0x0Fu, " tries left");
		return m != NULL ? m : "verification failed";
	}
	if (sw1 == 0x6C) {
		m = sw_fmt(buf, cap, "wrong Le; exact length is ", sw2 == 0 ? 256u : sw2, "");
		return m != NULL ? m : "wrong Le";
	}
	return NULL;
}

const char *sw_message(uint16_t sw, char *buf, unsigned cap)
{
	const char *m;
	unsigned sw1 = sw >> 8;

	for (size_t i = 0; i < sizeof(sw_exact) / sizeof(sw_exact[0]); i++) {
		if (sw_exact[i].sw == sw)
			return sw_exact[i].msg;
	}
	m = sw_family(sw, buf, cap);
	if (m != NULL)
		return m;
	if (sw1 >= 0x60 && sw1 <= 0x6F && sw_class[sw1 - 0x60] != NULL)
		return sw_class[sw1 - 0x60];
	if ((sw1 & 0xF0u) == 0x90)
		return "application-specific status";
	return "unknown status word";
}

int sw_is_success_or_warning(uint16_t sw)
{
	unsigned sw1 = sw >> 8;

	return sw == SW_OK || sw1 == 0x62 || sw1 == 0x63;
}
