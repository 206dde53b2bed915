/* tool_apdu.c - `tapbridge tool apdu decode [--response] HEX`: one field per line.
 * The output is a stable interface (tests/check_tool_apdu.sh): exit 0 decoded,
 * 1 bad input with one `error:` line naming the problem and where, 2 usage. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "lib/apdu.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/sw.h"

/* The largest command (65544 bytes) is longer than the largest response (65538). */
#define TOOL_APDU_MAX APDU_MAX_CMD

static uint8_t tool_buf[TOOL_APDU_MAX];
static char tool_hex[2 * TOOL_APDU_MAX + 1];

static int tool_apdu_usage(FILE *f)
{
	fprintf(f, "usage: tapbridge tool apdu decode HEX\n"
		   "       tapbridge tool apdu decode --response HEX\n");
	return 2;
}

/* The character hex_decode stops at, so the error line can point at it. */
static size_t tool_hex_bad_at(const char *s)
{
	size_t i, digits = 0;

	for (i = 0; s[i] != '\0'; i++) {
		char c = s[i];
		int sep = c == ' ' || c == '\t' || c == ':';
		int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

		if (hex)
			digits++;
		else if (!sep || digits % 2 != 0)
			return i;
	}
	return i;
}

static int tool_error(const char *where, size_t at, int rc)
{
	printf("error: at %s %zu: %s (%s)\n", where, at, tb_strerror(rc), tb_errname(rc));
	return 1;
}

static const char *tool_hexstr(const uint8_t *p, size_t n)
{
	if (hex_encode(p, n, HEX_PUBLIC, tool_hex, sizeof(tool_hex)) != 0)
		return "?";
	return tool_hex;
}

static int tool_decode_cmd(const uint8_t *buf, size_t n)
{
	struct apdu a;
	size_t at = 0, lefield;
	enum apdu_case c;
	int rc = apdu_parse_at(buf, n, &a, &at);

	if (rc != 0)
		return tool_error("offset", at, rc);
	c = apdu_case_of(&a);
	if (c == APDU_CASE_1)
		printf("case 1\n");
	else
		printf("case %d %s\n", (int)c, a.extended ? "extended" : "short");
	printf("cla %02X  ins %02X  p1 %02X  p2 %02X\n", a.cla, a.ins, a.p1, a.p2);
	if (a.nc > 0)
		printf("lc %zu  data %s\n", a.nc, tool_hexstr(a.data, a.nc));
	if (a.ne > 0) {
		/* The Le field as sent: 1 byte short, 00 HH LL in case 2E, HH LL in case 4E. */
		lefield = !a.extended ? 1 : (a.nc == 0 ? 3 : 2);
		printf("le %zu (%s)\n", a.ne, tool_hexstr(buf + n - lefield, lefield));
	}
	return 0;
}

static int tool_decode_resp(const uint8_t *buf, size_t n)
{
	struct apdu_resp r;
	char msg[96];
	int rc = apdu_resp_parse(buf, n, &r);

	if (rc != 0)
		return tool_error("offset", n, rc);
	if (r.n > 0)
		printf("nr %zu  data %s\n", r.n, tool_hexstr(r.data, r.n));
	else
		printf("nr 0\n");
	printf("sw %04X  %s\n", (unsigned)r.sw, sw_message(r.sw, msg, sizeof(msg)));
	return 0;
}

int tool_apdu(int argc, char **argv)
{
	int response = 0, rc;
	const char *text;
	size_t n = 0;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		tool_apdu_usage(stdout);
		return 0;
	}
	if (argc < 3 || strcmp(argv[1], "decode") != 0)
		return tool_apdu_usage(stderr);
	if (argc == 4 && strcmp(argv[2], "--response") == 0)
		response = 1;
	else if (argc != 3 || argv[2][0] == '-')
		return tool_apdu_usage(stderr);
	text = argv[argc - 1];
	rc = hex_decode(text, strlen(text), tool_buf, sizeof(tool_buf), &n);
	if (rc == TB_E_NOSPACE) {
		printf("error: at offset %zu: input longer than any APDU (%s)\n",
		       (size_t)TOOL_APDU_MAX, tb_errname(rc));
		return 1;
	}
	if (rc != 0)
		return tool_error("character", tool_hex_bad_at(text), rc);
	return response ? tool_decode_resp(tool_buf, n) : tool_decode_cmd(tool_buf, n);
}
