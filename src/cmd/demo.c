/* demo.c - `tapbridge demo`: the main job on embedded defaults. Today it runs what
 * exists (an SCP03 level-33 session between our host and card roles, the bytes a
 * relaying phone would see, and a forged command being refused) and says plainly
 * which parties are not built yet. It never pretends. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "lib/apdu.h"
#include "lib/crypto.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/scp03.h"
#include "lib/sw.h"
#include "lib/tlv.h"

#define BUF 1024

/* A stand-in application behind the card role: answers GET DATA 9F7F with a
 * CPLC-like TLV and echoes the data of any other case 3/4 command. */
static size_t demo_app(const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap)
{
	static const uint8_t cplc[] = { 0x9F, 0x7F, 0x06, 'D', 'E', 'M', 'O', 0x00, 0x01 };
	struct apdu a;
	struct wr w = wr_init(resp, cap);

	if (apdu_parse(cmd, n, &a) != 0) {
		(void)wr_u16be(&w, SW_WRONG_LENGTH);
		return w.len;
	}
	if (a.ins == 0xCA && a.p1 == 0x9F && a.p2 == 0x7F)
		(void)wr_bytes(&w, cplc, sizeof(cplc));
	else
		(void)wr_bytes(&w, a.data, a.nc);
	(void)wr_u16be(&w, SW_OK);
	return w.len;
}

static void show(const char *who, const uint8_t *p, size_t n)
{
	char hex[2 * BUF + 1];

	if (hex_encode(p, n, HEX_PUBLIC, hex, sizeof(hex)) != 0)
		snprintf(hex, sizeof(hex), "(%zu bytes)", n);
	printf("  %-28s %s\n", who, hex);
}

/* The card's side of one exchange: command in, response out (pseudo-random mode,
 * so the only "persistence" is the sequence counter kept in *counter). */
static int card_exchange(struct scp_card *card, const struct scp_keys *keys, uint32_t *counter,
			 const uint8_t *cmd, size_t n, uint8_t *resp, size_t *rn)
{
	struct scp_card_result res;
	uint8_t plain[BUF], app[BUF];
	struct wr out = wr_init(resp, BUF);
	int rc = scp_card_command(card, cmd, n, &res, &out);

	if (rc == 0 && res.action == SCP_CARD_NEED_KEYS) {
		out.len = 0;
		rc = scp_card_supply_keys(card, 0x30, keys, *counter, NULL, 0, &res, &out);
	}
	if (rc == 0 && res.action == SCP_CARD_PERSIST) {
		*counter = res.counter; /* a real se writes this through its journal first */
		out.len = 0;
		rc = scp_card_counter_saved(card, &res, &out);
	}
	if (rc == 0 && res.action == SCP_CARD_DELIVER) {
		size_t an;
		memcpy(plain, resp, out.len);
		an = demo_app(plain, out.len, app, sizeof(app));
		out.len = 0;
		rc = scp_card_respond(card, app, an, &out);
	}
	*rn = out.len;
	return rc;
}

static int step(struct scp_host *h, struct scp_card *card, const struct scp_keys *keys,
		uint32_t *counter, const char *what, const uint8_t *cmd, size_t n, int tamper)
{
	uint8_t wrapped[BUF], resp[BUF], plain[BUF];
	struct wr w = wr_init(wrapped, sizeof(wrapped)), p = wr_init(plain, sizeof(plain));
	struct scp_resp info;
	size_t rn = 0;
	int rc;

	printf("%s\n", what);
	show("plain command (host only)", cmd, n);
	if ((rc = scp_host_wrap(h, cmd, n, &w)) != 0)
		return rc;
	if (tamper) {
		wrapped[w.len - 3] ^= 0x01; /* the relay flips one bit of the ciphertext/MAC */
		show("relayed, one bit changed", wrapped, w.len);
	} else {
		show("relayed command", wrapped, w.len);
	}
	if ((rc = card_exchange(card, keys, counter, wrapped, w.len, resp, &rn)) != 0)
		return rc;
	show("relayed response", resp, rn);
	if ((rc = scp_host_unwrap(h, resp, rn, &info, &p)) != 0)
		return rc;
	show("plain response (host only)", plain, p.len);
	{
		char buf[64];
		printf("  %-28s %04X %s (%s)\n", "status", info.sw, sw_message(info.sw, buf, sizeof(buf)),
		       info.authenticated ? "authenticated by R-MAC" : "NOT authenticated");
	}
	return 0;
}

static int run_scp03(void)
{
	static const uint8_t isd[] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
	static const uint8_t getdata[] = { 0x80, 0xCA, 0x9F, 0x7F, 0x00 };
	static const uint8_t store[] = { 0x80, 0xE2, 0x90, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0x00 };
	struct scp_keys keys = { .len = 16 };
	struct scp_card_config ccfg = { .i = 0x70, .aid = isd, .aid_len = sizeof(isd) };
	struct scp_host_config hcfg = { 0 };
	struct scp_host h;
	struct scp_card card;
	uint8_t challenge[8], buf[BUF], resp[BUF];
	struct wr w = wr_init(buf, sizeof(buf));
	uint32_t counter = 0;
	size_t rn = 0;
	int rc;

	memset(&h, 0, sizeof(h));
	/* Demo keys only (not secret): a real deployment diversifies them in the sam. */
	for (uint8_t i = 0; i < 16; i++) {
		keys.enc[i] = (uint8_t)(0x40 + i);
		keys.mac[i] = (uint8_t)(0x50 + i);
		keys.dek[i] = (uint8_t)(0x60 + i);
	}
	if ((rc = crypto_random(challenge, sizeof(challenge))) != 0 ||
	    (rc = scp_card_init(&card, &ccfg)) != 0)
		goto out;
	hcfg.keys = &keys;
	hcfg.host_challenge = challenge;
	hcfg.host_challenge_len = sizeof(challenge);
	hcfg.kvn = 0x30;
	hcfg.level = 0x33;
	hcfg.aid = isd;
	hcfg.aid_len = sizeof(isd);

	printf("SCP03 handshake, AES-128, S8, pseudo-random card challenge, level 33\n");
	if ((rc = scp_host_begin(&h, &hcfg, &w)) != 0)
		goto out;
	show("INITIALIZE UPDATE", buf, w.len);
	if ((rc = card_exchange(&card, &keys, &counter, buf, w.len, resp, &rn)) != 0)
		goto out;
	show("card's answer", resp, rn);
	w.len = 0;
	if ((rc = scp_host_init_update(&h, resp, rn, &w)) != 0)
		goto out;
	printf("  %-28s verified (sequence counter %06X)\n", "card cryptogram", (unsigned)counter);
	show("EXTERNAL AUTHENTICATE", buf, w.len);
	if ((rc = card_exchange(&card, &keys, &counter, buf, w.len, resp, &rn)) != 0)
		goto out;
	show("card's answer", resp, rn);
	if ((rc = scp_host_ext_auth(&h, resp, rn)) != 0)
		goto out;
	printf("  %-28s both sides authenticated; C-DEC, C-MAC, R-ENC, R-MAC on\n\n", "channel");

	if ((rc = step(&h, &card, &keys, &counter, "GET DATA 9F7F through the relay", getdata,
		       sizeof(getdata), 0)) != 0)
		goto out;
	if ((rc = step(&h, &card, &keys, &counter, "\nSTORE DATA \"hello\" through the relay", store,
		       sizeof(store), 0)) != 0)
		goto out;
	rc = step(&h, &card, &keys, &counter, "\nThe relay forges: one bit of a wrapped command changed",
		  store, sizeof(store), 1);
	if (rc != 0)
		goto out;
	printf("  the card refused the forged command and closed the session; a new\n"
	       "  INITIALIZE UPDATE is needed before it accepts anything again.\n");
out:
	scp_host_close(&h);
	scp_card_reset(&card);
	ct_wipe(&keys, sizeof(keys));
	if (rc != 0)
		fprintf(stderr, "demo: SCP03 step failed: %s\n", tb_strerror(rc));
	return rc;
}

int cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("tapbridge demo\n==============\n\n");
	printf("What runs today: the foundation every party is built on (codecs, the crypto\n"
	       "port and the GlobalPlatform SCP03 secure channel). Host and card roles run in\n"
	       "this one process; the lines marked \"relayed\" are all a phone in the middle sees.\n\n");
	if (run_scp03() != 0)
		return 1;
	printf("\nBuilt but not part of this demo yet (see the README): the secure element\n"
	       "(`tapbridge se`), the sam, the server with its first services (top-up,\n"
	       "tickets, the authenticity flag) and the gateway.\n"
	       "Not built yet (later work): the reader, the phone, the other services,\n"
	       "the portal, and the five end-to-end flows.\n");
	return 0;
}
