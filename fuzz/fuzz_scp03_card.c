/* fuzz_scp03_card.c - the SCP03 card role under arbitrary commands after a real handshake.
 * Byte 0 picks level, S8/S16, challenge mode and key size; then records of a length byte
 * and a body: length b8 clear = raw command bytes to the card, b8 set = a plain command the
 * host wraps first. Checked: no crash; once the card said 6982 it says 6982 to everything
 * until an INITIALIZE UPDATE; host-wrapped commands in a live session arrive unchanged
 * and their responses unwrap to what the application sent. Any violation abort()s. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apdu.h"
#include "ct.h"
#include "scp03.h"

static uint8_t g_out[APDU_MAX_CMD + 64], g_wrapped[512], g_canon[512], g_resp[64], g_plain[512];

struct fz {
	struct scp_host h;
	struct scp_card c;
	struct scp_keys keys;
	uint32_t counter;
	int closed;  /* the card answered 6982: nothing but 6982 until INITIALIZE UPDATE */
	int in_sync; /* host and card share a live session */
};

static void must(int ok)
{
	if (!ok)
		abort();
}

static int is_sw(const struct wr *w, uint8_t sw1, uint8_t sw2)
{
	return w->len == 2 && w->p[0] == sw1 && w->p[1] == sw2;
}

/* Answers NEED_KEYS / PERSIST the way a secure element would. */
static void card_keys(struct fz *f, struct scp_card_result *res, struct wr *w)
{
	static const uint8_t challenge[16] = { 0x5A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };

	if (res->action != SCP_CARD_NEED_KEYS)
		return;
	must(scp_card_supply_keys(&f->c, 0x30, &f->keys, f->counter, challenge,
				  f->c.challenge_len, res, w) == 0);
	if (res->action == SCP_CARD_PERSIST) {
		f->counter = res->counter;
		must(scp_card_counter_saved(&f->c, res, w) == 0);
	}
}

static void handshake(struct fz *f, uint8_t sel)
{
	static const uint8_t levels[6] = { 0x00, 0x01, 0x03, 0x11, 0x13, 0x33 };
	static const uint8_t hc[16] = { 0xA5, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5 };
	uint8_t i = (uint8_t)(0x60 | (sel & 0x10) | ((sel >> 3) & 1));
	struct scp_card_config cc = { i, { 0 }, (const uint8_t *)"\xA0\x00\x00\x01\x51", 5 };
	struct scp_host_config hcfg = { &f->keys, hc, (i & 1) ? 16u : 8u, 0, levels[sel % 6],
					SCP_MODE_AUTO, NULL, 0 };
	struct scp_card_result res;
	struct wr w = wr_init(g_wrapped, sizeof(g_wrapped)), o = wr_init(g_out, sizeof(g_out));

	f->keys.len = 16u + 8u * ((sel >> 5) % 3u);
	memset(f->keys.enc, 0x40, sizeof(f->keys.enc));
	memset(f->keys.mac, 0x41, sizeof(f->keys.mac));
	must(scp_card_init(&f->c, &cc) == 0 && scp_host_begin(&f->h, &hcfg, &w) == 0);
	must(scp_card_command(&f->c, w.p, w.len, &res, &o) == 0);
	card_keys(f, &res, &o);
	w = wr_init(g_wrapped, sizeof(g_wrapped));
	must(scp_host_init_update(&f->h, o.p, o.len, &w) == 0);
	o = wr_init(g_out, sizeof(g_out));
	must(scp_card_command(&f->c, w.p, w.len, &res, &o) == 0 && res.auth == SCP_CARD_AUTH_OK);
	must(scp_host_ext_auth(&f->h, o.p, o.len) == 0);
	f->in_sync = 1;
}

/* The application answers a delivered command; the host checks what comes back. */
static void app_answer(struct fz *f, const uint8_t *cmd, size_t n, int from_host)
{
	static const uint16_t sws[4] = { 0x9000, 0x6310, 0x6A88, 0x6200 };
	uint16_t sw = sws[n % 4];
	size_t dn = (n % 5 == 0 || sw == 0x6A88) ? 0 : n % 17;
	struct wr o = wr_init(g_out, sizeof(g_out)), u = wr_init(g_plain, sizeof(g_plain));
	struct scp_resp info;

	memcpy(g_resp, cmd, dn);
	g_resp[dn] = (uint8_t)(sw >> 8);
	g_resp[dn + 1] = (uint8_t)sw;
	must(scp_card_respond(&f->c, g_resp, dn + 2, &o) == 0);
	if (!from_host)
		return;
	must(scp_host_unwrap(&f->h, o.p, o.len, &info, &u) == 0 && info.sw == sw && info.n == dn);
	must(dn == 0 || ct_eq(u.p, g_resp, dn));
}

/* Wraps cmd with the host when the record asks for it and the session is live (and
 * protects commands: level 01 and up); g_canon gets the plain form the card must deliver. */
static int host_wraps(struct fz *f, const uint8_t *cmd, size_t n, struct wr *w)
{
	struct wr cw = wr_init(g_canon, sizeof(g_canon));
	struct apdu a;

	if (!f->in_sync || f->closed || f->h.s.level == 0 || apdu_parse(cmd, n, &a) != 0 ||
	    scp_host_wrap(&f->h, cmd, n, w) != 0)
		return 0;
	a.cla = (uint8_t)(a.cla & ~0x04u);
	a.extended = 0;
	must(apdu_encode(&a, &cw) == 0 && cw.len <= sizeof(g_canon));
	return (int)cw.len;
}

/* One record (length byte, body): returns the bytes it used. */
static size_t step(struct fz *f, const uint8_t *p, size_t left)
{
	size_t n = (size_t)(p[0] & 0x7Fu) < left - 1 ? (size_t)(p[0] & 0x7Fu) : left - 1;
	const uint8_t *cmd = p + 1;
	struct scp_card_result res;
	struct wr o = wr_init(g_out, sizeof(g_out)), w = wr_init(g_wrapped, sizeof(g_wrapped));
	size_t used = 1 + n, canon = 0;
	int is_iu;

	if ((p[0] & 0x80u) && (canon = (size_t)host_wraps(f, cmd, n, &w)) > 0) {
		cmd = w.p;
		n = w.len;
	} else {
		f->in_sync = 0; /* raw bytes: the host no longer follows the card */
	}
	is_iu = n >= 2 && cmd[0] == 0x80 && cmd[1] == 0x50;
	must(scp_card_command(&f->c, cmd, n, &res, &o) == 0);
	if (f->closed && !is_iu)
		must(res.action == SCP_CARD_SEND && is_sw(&o, 0x69, 0x82));
	if (is_iu)
		f->closed = 0;
	if (canon > 0)
		must(res.action == SCP_CARD_DELIVER && o.len == canon && ct_eq(o.p, g_canon, canon));
	if (res.action == SCP_CARD_SEND && is_sw(&o, 0x69, 0x82))
		f->closed = 1;
	card_keys(f, &res, &o);
	if (res.action == SCP_CARD_DELIVER)
		app_answer(f, cmd, n, canon > 0);
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fz f;

	if (size < 1)
		return 0;
	memset(&f, 0, sizeof(f));
	handshake(&f, data[0]);
	for (size_t at = 1; at < size;)
		at += step(&f, data + at, size - at);
	scp_host_close(&f.h);
	scp_card_reset(&f.c);
	return 0;
}
