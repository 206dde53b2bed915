/* rdr_tap.c - one tap from SELECT to "reader: done": the se's serial and the deny
 * list, the level-33 channel with the se's READER key set (derived here from the
 * terminal key), the relay status, then the application and the relay in the order
 * the flow asks for. What stays true: nothing reaches the wallet before the channel
 * is open; the derived key set lives only for the handshake and is wiped. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "div.h"
#include "err.h"
#include "rdr_int.h"

static const uint8_t wallet_aid[11] = { 0xF0, 'T', 'A', 'P', 'B', 'R', 'I', 'D', 'G', 'E', 0x01 };

static int select_wallet(struct rdr *r)
{
	uint8_t cmd[6 + sizeof(wallet_aid)] = { 0x00, 0xA4, 0x04, 0x00, sizeof(wallet_aid) };
	struct rdr_line l;
	int rc;

	memcpy(cmd + 5, wallet_aid, sizeof(wallet_aid));
	cmd[sizeof(cmd) - 1] = 0x00;
	if ((rc = rdr_raw(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw != 0x9000u) {
		line_start(&l, "reader: refused: no wallet on this card (");
		line_sw(&l, r->sw);
		line_str(&l, ")");
		rdr_say_line(r, &l);
		return TB_E_RDR_REFUSED;
	}
	return 0;
}

static int read_serial(struct rdr *r)
{
	static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0x45, 0x00 };
	int rc;

	if ((rc = rdr_raw(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw != 0x9000u || r->plain_n != 10 || r->plain[0] != 0x45 || r->plain[1] != 0x08) {
		rdr_say(r, "reader: refused: the card has no readable serial");
		return TB_E_RDR_REFUSED;
	}
	memcpy(r->serial, r->plain + 2, RMSG_SERIAL_LEN);
	return 0;
}

/* One handshake step: send out, the response goes to r->resp (got bytes). */
static int hs_step(struct rdr *r, const uint8_t *out, size_t n, size_t *got)
{
	int rc = r->io->xmit(r->io->ctx, out, n, r->resp, sizeof(r->resp), got);

	if (rc != 0 || *got < 2 || *got > sizeof(r->resp)) {
		rdr_say(r, "reader: card lost");
		return TB_E_RDR_CARD;
	}
	return 0;
}

static int open_channel(struct rdr *r)
{
	struct scp_host_config hc;
	struct scp_keys k;
	uint8_t challenge[SCP_S8], out[64];
	struct wr w = wr_init(out, sizeof(out));
	size_t got = 0;
	int rc;

	memset(&hc, 0, sizeof(hc));
	if ((rc = crypto_random(challenge, sizeof(challenge))))
		return rc;
	rc = div_device_keys(r->keys->terminal, RDR_ROLE_SE_READER, r->keys->terminal_kvn,
			     r->keys->terminal_keylen, r->serial, &k);
	if (rc == 0) {
		hc.keys = &k;
		hc.host_challenge = challenge;
		hc.host_challenge_len = sizeof(challenge);
		hc.kvn = r->keys->terminal_kvn;
		hc.level = RDR_SE_LEVEL;
		hc.mode = SCP_MODE_S8;
		hc.aid = wallet_aid;
		hc.aid_len = sizeof(wallet_aid);
		rc = scp_host_begin(&r->se, &hc, &w);
	}
	ct_wipe(&k, sizeof(k));
	if (rc != 0)
		goto out;
	if ((rc = hs_step(r, out, w.len, &got)))
		return rc;
	w = wr_init(out, sizeof(out));
	if ((rc = scp_host_init_update(&r->se, r->resp, got, &w)))
		goto out;
	if ((rc = hs_step(r, out, w.len, &got)))
		return rc;
	rc = scp_host_ext_auth(&r->se, r->resp, got);
out:
	if (rc != 0)
		rdr_say(r, "reader: se not authenticated");
	return rc;
}

/* GET DATA 00 C1: C1 08 locked(1) disabled(2) armed(1) service(4). */
static int relay_status(struct rdr *r)
{
	static const uint8_t cmd[] = { 0x80, 0xCA, 0x00, 0xC1, 0x00 };
	const uint8_t *v = r->plain + 2;
	int rc;

	if ((rc = rdr_cmd(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw == 0x6A81u || (r->sw == 0x9000u && r->plain_n == 10 && v[0] != 0)) {
		rdr_say(r, "reader: refused: wallet locked");
		return TB_E_RDR_REFUSED;
	}
	if (r->sw != 0x9000u || r->plain_n != 10 || r->plain[0] != 0xC1 || r->plain[1] != 0x08) {
		rdr_say(r, "reader: refused: the wallet does not tell its relay status");
		return TB_E_RDR_REFUSED;
	}
	r->armed = v[3] != 0;
	r->armed_service = (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 | (uint32_t)v[6] << 8 | v[7];
	return 0;
}

static int tap_run(struct rdr *r)
{
	struct rdr_line l;
	int rc;

	if ((rc = select_wallet(r)) || (rc = read_serial(r)))
		return rc;
	if (rdr_denied(r->st, r->serial)) {
		rdr_say(r, "reader: refused: se denied");
		return TB_E_RDR_DENIED;
	}
	if ((rc = open_channel(r)))
		return rc;
	line_start(&l, "reader: authenticated se ");
	line_hex(&l, r->serial, RMSG_SERIAL_LEN);
	rdr_say_line(r, &l);
	if ((rc = relay_status(r)))
		return rc;
	if (!r->armed) {
		if ((rc = rdr_app_offline(r)))
			return rc;
		rdr_say(r, "reader: done");
		return 0;
	}
	if (r->cfg->order == RDR_ONLINE_FIRST && (rc = rdr_relay_open(r)))
		return rc;
	if ((rc = rdr_app_online(r)))
		return rc;
	if (!r->relay_open && (rc = rdr_relay_open(r)))
		return rc;
	return rdr_relay_finish(r);
}

int rdr_tap(struct rdr *r, const struct rdr_keys *keys, const struct rdr_cfg *cfg,
	    const struct rdr_io *io, struct rdr_store *st, int64_t now)
{
	int rc;

	if (r == NULL || keys == NULL || cfg == NULL || io == NULL || st == NULL ||
	    io->xmit == NULL || io->save == NULL || io->say == NULL)
		return TB_E_INVAL;
	memset(r, 0, sizeof(*r));
	r->keys = keys;
	r->cfg = cfg;
	r->io = io;
	r->st = st;
	r->now = now;
	rc = tap_run(r);
	scp_host_close(&r->se);
	scp_card_reset(&r->card);
	ct_wipe(r->plain, sizeof(r->plain));
	ct_wipe(r->resp, sizeof(r->resp));
	return rc;
}
