/* tool_scp03.c - `tapbridge tool scp03 replay < TRACE`: replays a recorded host-side
 * SCP03 session through the host role and prints every value it derives, one
 * `name HEX` line each. It prints session keys on purpose: it is a trace tool the user
 * feeds with their own keys. Errors: one `error: ...` line on stderr, exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "lib/apdu.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/scp03.h"

#define REPLAY_BUF (APDU_MAX_CMD + 64u)

struct replay {
	struct scp_keys keys;
	size_t enc_len, mac_len, dek_len;
	uint8_t host_challenge[SCP_S16];
	size_t host_challenge_len;
	uint8_t init_response[SCP_IU_RESP_MAX + 16];
	size_t init_response_len;
	uint8_t level;
	uint8_t aid[SCP_AID_MAX];
	size_t aid_len;
	unsigned seen;        /* REPLAY_HAVE_* bits */
	int started;          /* handshake done: only command / response from here */
	int response_allowed; /* the previous directive was a command */
	struct scp_host host;
};

enum {
	REPLAY_HAVE_ENC = 1u << 0,
	REPLAY_HAVE_MAC = 1u << 1,
	REPLAY_HAVE_DEK = 1u << 2,
	REPLAY_HAVE_HC = 1u << 3,
	REPLAY_HAVE_IU = 1u << 4,
	REPLAY_HAVE_LEVEL = 1u << 5,
	REPLAY_HAVE_AID = 1u << 6,
};

static uint8_t replay_in[REPLAY_BUF];
static uint8_t replay_out[REPLAY_BUF];
static char replay_hex[2 * REPLAY_BUF + 1];

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tapbridge tool scp03 replay < TRACE\n"
		"\n"
		"Recomputes a recorded host-side SCP03 session and prints, one `name HEX` line\n"
		"each: initialize-update, s-enc, s-mac, s-rmac, card-cryptogram, host-cryptogram,\n"
		"external-authenticate, then `wrapped` per command and `unwrapped` (data and SW)\n"
		"per response. WARNING: it prints the session keys; use it with your own keys.\n"
		"\n"
		"TRACE, one directive per line (blank lines and # comments ignored):\n"
		"  key-enc HEX, key-mac HEX, [key-dek HEX]   static keys, 16/24/32 bytes each\n"
		"  host-challenge HEX                        8 (S8) or 16 (S16) bytes\n"
		"  init-response HEX                         the card's INITIALIZE UPDATE response + SW\n"
		"  level HEX                                 security level (00 01 03 11 13 33)\n"
		"  [aid HEX]                                 check a pseudo-random card challenge\n"
		"  command HEX [response HEX] ...            plain commands, protected responses + SW\n"
		"The EXTERNAL AUTHENTICATE response is taken to be 9000.\n");
}

static int fail(const char *what, const char *detail)
{
	fprintf(stderr, "error: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	return 1;
}

/* `name HEX`. Session keys go through here too: printing them is this tool's job. */
static void put(const char *name, const uint8_t *p, size_t n)
{
	if (hex_encode(p, n, HEX_PUBLIC, replay_hex, sizeof(replay_hex)) != 0)
		replay_hex[0] = '\0';
	printf("%s %s\n", name, replay_hex);
}

static int decode(const char *name, const char *val, uint8_t *out, size_t cap, size_t *n)
{
	int rc = hex_decode(val, strlen(val), out, cap, n);

	if (rc != 0) {
		fprintf(stderr, "error: %s: %s\n", name, rc == TB_E_NOSPACE ? "too long" : tb_strerror(rc));
		return 1;
	}
	return 0;
}

static int handshake(struct replay *r)
{
	static const uint8_t ok[2] = { 0x90, 0x00 };
	static const struct { unsigned bit; const char *name; } need[] = {
		{ REPLAY_HAVE_ENC, "key-enc" }, { REPLAY_HAVE_MAC, "key-mac" },
		{ REPLAY_HAVE_HC, "host-challenge" }, { REPLAY_HAVE_IU, "init-response" },
		{ REPLAY_HAVE_LEVEL, "level" },
	};
	struct scp_host_config cfg;
	struct scp_trace t;
	struct wr w;
	int rc;

	for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++) {
		if (!(r->seen & need[k].bit))
			return fail("missing directive", need[k].name);
	}
	if (r->enc_len != r->mac_len || ((r->seen & REPLAY_HAVE_DEK) && r->dek_len != r->enc_len))
		return fail("keys differ in length", NULL);
	if (r->init_response_len < SCP_KDD_LEN + 1)
		return fail("init-response too short", NULL);
	r->keys.len = r->enc_len;
	memset(&cfg, 0, sizeof(cfg));
	cfg.keys = &r->keys;
	cfg.host_challenge = r->host_challenge;
	cfg.host_challenge_len = r->host_challenge_len;
	cfg.kvn = r->init_response[SCP_KDD_LEN];
	cfg.level = r->level;
	cfg.mode = SCP_MODE_AUTO;
	if (r->seen & REPLAY_HAVE_AID) {
		cfg.aid = r->aid;
		cfg.aid_len = r->aid_len;
	}
	w = wr_init(replay_out, sizeof(replay_out));
	if ((rc = scp_host_begin(&r->host, &cfg, &w)) != 0)
		return fail(tb_strerror(rc), NULL);
	put("initialize-update", w.p, w.len);
	w = wr_init(replay_out, sizeof(replay_out));
	if ((rc = scp_host_init_update(&r->host, r->init_response, r->init_response_len, &w)) != 0)
		return fail(tb_strerror(rc), NULL);
	if ((rc = scp_host_trace(&r->host, &t)) != 0)
		return fail(tb_strerror(rc), NULL);
	put("s-enc", t.s_enc, t.keylen);
	put("s-mac", t.s_mac, t.keylen);
	put("s-rmac", t.s_rmac, t.keylen);
	put("card-cryptogram", t.card_cryptogram, t.challenge_len);
	put("host-cryptogram", t.host_cryptogram, t.challenge_len);
	ct_wipe(&t, sizeof(t));
	put("external-authenticate", w.p, w.len);
	if ((rc = scp_host_ext_auth(&r->host, ok, sizeof(ok))) != 0)
		return fail(tb_strerror(rc), NULL);
	r->started = 1;
	return 0;
}

static int on_command(struct replay *r, const char *val)
{
	struct wr w = wr_init(replay_out, sizeof(replay_out));
	size_t n;
	int rc;

	if (!r->started && handshake(r) != 0)
		return 1;
	if (decode("command", val, replay_in, sizeof(replay_in), &n) != 0)
		return 1;
	if ((rc = scp_host_wrap(&r->host, replay_in, n, &w)) != 0)
		return fail("command", tb_strerror(rc));
	put("wrapped", w.p, w.len);
	r->response_allowed = 1;
	return 0;
}

static int on_response(struct replay *r, const char *val)
{
	struct wr w = wr_init(replay_out, sizeof(replay_out));
	struct scp_resp info;
	size_t n;
	int rc;

	if (!r->response_allowed)
		return fail("response without a command before it", NULL);
	r->response_allowed = 0;
	if (decode("response", val, replay_in, sizeof(replay_in), &n) != 0)
		return 1;
	if ((rc = scp_host_unwrap(&r->host, replay_in, n, &info, &w)) != 0)
		return fail(tb_strerror(rc), NULL);
	put("unwrapped", w.p, w.len);
	if (!info.authenticated)
		printf("# unwrapped response is not authenticated (no R-MAC covers it)\n");
	return 0;
}

/* One handshake directive: its bit, where its bytes go and the lengths allowed. */
static int on_setting(struct replay *r, const char *name, const char *val)
{
	struct setting {
		const char *name;
		unsigned bit;
		uint8_t *dst;
		size_t cap;
		size_t *len;
		size_t min;
	} table[] = {
		{ "key-enc", REPLAY_HAVE_ENC, r->keys.enc, SCP_KEY_MAX, &r->enc_len, 16 },
		{ "key-mac", REPLAY_HAVE_MAC, r->keys.mac, SCP_KEY_MAX, &r->mac_len, 16 },
		{ "key-dek", REPLAY_HAVE_DEK, r->keys.dek, SCP_KEY_MAX, &r->dek_len, 16 },
		{ "host-challenge", REPLAY_HAVE_HC, r->host_challenge, SCP_S16,
		  &r->host_challenge_len, SCP_S8 },
		{ "init-response", REPLAY_HAVE_IU, r->init_response, sizeof(r->init_response),
		  &r->init_response_len, 2 },
		{ "aid", REPLAY_HAVE_AID, r->aid, SCP_AID_MAX, &r->aid_len, SCP_AID_MIN },
	};
	size_t n;
	uint8_t lv;

	if (r->started)
		return fail("directive after the first command", name);
	if (strcmp(name, "level") == 0) {
		if (r->seen & REPLAY_HAVE_LEVEL)
			return fail("directive given twice", name);
		if (decode(name, val, &lv, 1, &n) != 0)
			return 1;
		if (n != 1)
			return fail("level: one byte expected", NULL);
		r->level = lv;
		r->seen |= REPLAY_HAVE_LEVEL;
		return 0;
	}
	for (size_t k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
		if (strcmp(name, table[k].name) != 0)
			continue;
		if (r->seen & table[k].bit)
			return fail("directive given twice", name);
		if (decode(name, val, table[k].dst, table[k].cap, &n) != 0)
			return 1;
		if (n < table[k].min)
			return fail(name, "too short");
		*table[k].len = n;
		r->seen |= table[k].bit;
		return 0;
	}
	return fail("unknown directive", name);
}

/* Splits "name value" (value may be empty) and dispatches it. */
static int on_line(struct replay *r, char *line)
{
	char *name = line, *val;
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ' ||
			 line[n - 1] == '\t'))
		line[--n] = '\0';
	while (*name == ' ' || *name == '\t')
		name++;
	if (*name == '\0' || *name == '#')
		return 0;
	val = name + strcspn(name, " \t");
	if (*val != '\0')
		*val++ = '\0';
	while (*val == ' ' || *val == '\t')
		val++;
	if (strcmp(name, "command") == 0)
		return on_command(r, val);
	if (strcmp(name, "response") == 0)
		return on_response(r, val);
	r->response_allowed = 0;
	return on_setting(r, name, val);
}

static int replay(void)
{
	static struct replay r;
	char *line = NULL;
	size_t cap = 0;
	int rc = 0;

	memset(&r, 0, sizeof(r));
	while (rc == 0 && getline(&line, &cap, stdin) != -1)
		rc = on_line(&r, line);
	if (rc == 0 && ferror(stdin))
		rc = fail("reading standard input", NULL);
	if (rc == 0 && !r.started)
		rc = handshake(&r);
	free(line);
	scp_host_close(&r.host);
	ct_wipe(&r, sizeof(r));
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}

int tool_scp03(int argc, char **argv)
{
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc != 2 || strcmp(argv[1], "replay") != 0) {
		usage(stderr);
		return 2;
	}
	return replay();
}
