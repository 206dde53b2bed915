/* fuzz_se.c - arbitrary APDU sequences into the se core on both interfaces, plain or
 * wrapped by our SCP03 host in a channel opened first (server on the host interface,
 * reader on contactless, as the first input byte asks), with power events, relay
 * answers and event draining mixed in. After every step the persistent image must load
 * into a second se equal to the running se's mirror, satisfy the image invariants, and
 * the purse and sequence counters must only move forward (the purse's counter by one
 * exactly when its balance moved). Any violation calls abort().
 *
 * Input: flags(1), then records ctl(1) len(1, or 2 when ctl & 08) bytes(len):
 *   ctl & 01 interface (1 = host), ctl & 02 wrap with the open channel,
 *   ctl >> 4: 0..B command APDU, C drain events, D relay fail, E relay answer (bytes),
 *   F power event on the interface. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "scp03.h"
#include "se.h"
#include "store_mem.h"

static struct se_mem pristine, mem, copy;
static struct se se, se2;
static struct scp_host host[SE_IF_COUNT];
static int open_ch[SE_IF_COUNT];
static uint8_t resp[SE_RESP_MAX], wrapped[SE_CMD_MAX + 64];

static void check(int ok)
{
	if (!ok)
		abort();
}

static void keys_of(struct scp_keys *k, size_t len, uint8_t base)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < len; i++) {
		k->enc[i] = (uint8_t)(base + i);
		k->mac[i] = (uint8_t)(base + 0x40 + i);
		k->dek[i] = (uint8_t)(base + 0x80 + i);
	}
	k->len = len;
}

static int rng(void *ctx, uint8_t *out, size_t n)
{
	(void)ctx;
	memset(out, 0x42, n);
	return 0;
}

static const struct se_config cfg = { rng, NULL, NULL };

static void setup_once(void)
{
	static const uint8_t serial[SE_SERIAL_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static int done;
	struct scp_keys k;

	if (done)
		return;
	se_mem_init(&pristine);
	check(se_format(&pristine.store, serial) == 0);
	keys_of(&k, 16, 0x10);
	check(se_put_keyset(&pristine.store, 0x01, SE_ROLE_SERVER, &k) == 0);
	keys_of(&k, 32, 0x20);
	check(se_put_keyset(&pristine.store, 0x02, SE_ROLE_READER, &k) == 0);
	check(se_configure(&pristine.store, 5000, 3) == 0);
	done = 1;
}

static size_t apdu(enum se_iface ifc, const uint8_t *cmd, size_t n)
{
	struct wr w = wr_init(resp, sizeof(resp));
	int rc = se_apdu(&se, ifc, cmd, n, 1700000000u, &w);

	check(rc == 0 || rc == SE_PENDING_RELAY);
	check(rc == SE_PENDING_RELAY ? w.len == 0 : w.len >= 2);
	return w.len;
}

/* SELECT the wallet (or the ISD) and open a channel with our host role. */
static void open_channel(enum se_iface ifc, int isd, uint8_t level)
{
	static const uint8_t challenge[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint8_t cmd[64] = { 0x00, 0xA4, 0x04, 0x00 };
	const uint8_t *aid = isd ? se_isd_aid : se_wallet_aid;
	size_t aid_len = isd ? SE_ISD_AID_LEN : SE_WALLET_AID_LEN, n;
	struct scp_host_config hc;
	struct scp_keys k;
	struct wr w;

	cmd[4] = (uint8_t)aid_len;
	memcpy(cmd + 5, aid, aid_len);
	check(apdu(ifc, cmd, 5 + aid_len) >= 2);
	if (ifc == SE_IF_HOST)
		keys_of(&k, 16, 0x10);
	else
		keys_of(&k, 32, 0x20);
	memset(&hc, 0, sizeof(hc));
	hc.keys = &k;
	hc.host_challenge = challenge;
	hc.host_challenge_len = sizeof(challenge);
	hc.kvn = ifc == SE_IF_HOST ? 0x01 : 0x02;
	hc.level = level;
	hc.mode = SCP_MODE_S8;
	hc.aid = aid;
	hc.aid_len = aid_len;
	w = wr_init(cmd, sizeof(cmd));
	check(scp_host_begin(&host[ifc], &hc, &w) == 0);
	n = apdu(ifc, cmd, w.len);
	w = wr_init(cmd, sizeof(cmd));
	check(scp_host_init_update(&host[ifc], resp, n, &w) == 0);
	n = apdu(ifc, cmd, w.len);
	check(scp_host_ext_auth(&host[ifc], resp, n) == 0);
	open_ch[ifc] = 1;
}

static void images_equal(const struct se_image *a, const struct se_image *b)
{
	check(a->balance == b->balance && a->tx_counter == b->tx_counter &&
	      a->max_balance == b->max_balance && a->locked == b->locked &&
	      a->disabled == b->disabled && a->permit == b->permit && a->pauth == b->pauth &&
	      a->flag == b->flag && a->personalised == b->personalised &&
	      a->last_kind == b->last_kind && a->last_amount == b->last_amount);
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++)
		check(a->ks[s].present == b->ks[s].present && a->ks[s].kvn == b->ks[s].kvn &&
		      a->ks[s].role == b->ks[s].role && a->ks[s].counter == b->ks[s].counter &&
		      a->ks[s].failures == b->ks[s].failures && a->ks[s].locked == b->ks[s].locked);
	for (unsigned i = 0; i < SE_TICKET_MAX; i++)
		check(a->tickets[i].used == b->tickets[i].used &&
		      a->tickets[i].uses == b->tickets[i].uses &&
		      a->tickets[i].service == b->tickets[i].service);
}

/* The image as a restart would see it, against the running mirror and the last one. */
static void check_image(struct se_image *last)
{
	const struct se_image *now = &se.img;

	check(!se.failed);
	memcpy(copy.img, mem.img, sizeof(copy.img));
	se_mem_power_on(&copy);
	check(se_init(&se2, NULL, &copy.store) == 0);
	images_equal(&se2.img, now);
	check(img_check(now) == 0);
	check(now->tx_counter == last->tx_counter || now->tx_counter == last->tx_counter + 1);
	check((now->tx_counter != last->tx_counter) == (now->balance != last->balance));
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++)
		if (now->ks[s].present && last->ks[s].present && now->ks[s].kvn == last->ks[s].kvn)
			check(now->ks[s].counter >= last->ks[s].counter);
	*last = *now;
}

static void step_command(enum se_iface ifc, int wrap, const uint8_t *p, size_t len)
{
	struct wr w = wr_init(wrapped, sizeof(wrapped));
	uint8_t plain[SE_RESP_MAX];
	struct wr pw = wr_init(plain, sizeof(plain));
	struct scp_resp info;
	size_t n;

	if (wrap && open_ch[ifc] && scp_host_wrap(&host[ifc], p, len, &w) == 0) {
		n = apdu(ifc, wrapped, w.len);
		if (n > 0 && scp_host_unwrap(&host[ifc], resp, n, &info, &pw) != 0)
			open_ch[ifc] = 0;
		return;
	}
	(void)apdu(ifc, p, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t levels[4] = { 0x33, 0x11, 0x13, 0x01 };
	struct se_image last;
	struct se_event ev;
	size_t i = 1;

	if (size < 1)
		return 0;
	setup_once();
	memcpy(&mem, &pristine, sizeof(mem));
	mem.store.ctx = &mem;
	copy = mem;
	copy.store.ctx = &copy;
	memset(host, 0, sizeof(host));
	memset(open_ch, 0, sizeof(open_ch));
	check(se_init(&se, &cfg, &mem.store) == 0);
	if (data[0] & 1)
		open_channel(SE_IF_HOST, (data[0] & 4) != 0, levels[(data[0] >> 4) & 3]);
	if (data[0] & 2)
		open_channel(SE_IF_CONTACTLESS, 0, levels[(data[0] >> 6) & 3]);
	last = se.img;
	check_image(&last);
	while (i + 2 <= size) {
		uint8_t ctl = data[i++];
		size_t len = data[i++];
		enum se_iface ifc = (ctl & 1) ? SE_IF_HOST : SE_IF_CONTACTLESS;
		struct wr w = wr_init(resp, sizeof(resp));

		if ((ctl & 0x08) && i < size)
			len = len << 8 | data[i++];
		if (len > size - i)
			len = size - i;
		switch (ctl >> 4) {
		case 0xC:
			while (se_next_event(&se, &ev))
				check(ev.kind != SE_EV_NONE && (ev.kind != SE_EV_RELAY || ev.n <= SE_ENVELOPE_MAX));
			break;
		case 0xD:
			check(se_relay_fail(&se, &w) == 0 || w.len == 0);
			break;
		case 0xE:
			check(se_relay_answer(&se, data + i, len, &w) <= 0);
			break;
		case 0xF:
			se_power(&se, ifc, (enum se_power_event)(ctl & 2 ? SE_POWER_OFF : SE_POWER_RESET));
			open_ch[ifc] = 0;
			break;
		default:
			step_command(ifc, (ctl & 2) != 0, data + i, len);
			break;
		}
		i += len;
		check_image(&last);
	}
	return 0;
}
