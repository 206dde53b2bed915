/* se_rig.h - a test rig for the se core (header-only, static inline so each test file
 * takes what it uses): an in-memory store, a personalised image (server key set KVN 01,
 * AES-128; reader key set KVN 02, AES-256), and our SCP03 host role on each interface
 * to open channels and wrap commands as the server or a reader would. */
#ifndef TB_TEST_SE_RIG_H
#define TB_TEST_SE_RIG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "apdu.h"
#include "err.h"
#include "scp03.h"
#include "se.h"
#include "store_mem.h"
#include "sw.h"
#include "vec.h"

#define RIG_SERVER_KVN 0x01
#define RIG_READER_KVN 0x02
#define RIG_NOW 1700000000u

static const uint8_t rig_serial[SE_SERIAL_LEN] = { 0x53, 0x45, 0x00, 0x00, 0x00, 0x00, 0x12, 0x34 };

struct rig {
	struct se_mem mem;
	struct se se;
	struct se_config cfg;
	uint32_t now;
	uint8_t rng_next;
	uint8_t host_seed;
	struct scp_host host[SE_IF_COUNT];
	int open[SE_IF_COUNT];
	uint8_t resp[SE_RESP_MAX];
	size_t n;       /* response data length (SW excluded), plain after unwrap */
	uint16_t sw;
	int authenticated;
	int rc;         /* se_apdu's return */
};

/* 32 KiB of store: static, one rig per test program. */
static struct rig R;

static inline int rig_rng(void *ctx, uint8_t *out, size_t n)
{
	struct rig *r = ctx;

	for (size_t i = 0; i < n; i++)
		out[i] = r->rng_next++;
	return 0;
}

static inline void rig_keys(struct scp_keys *k, size_t len, uint8_t base)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < len; i++) {
		k->enc[i] = (uint8_t)(base + i);
		k->mac[i] = (uint8_t)(base + 0x40 + i);
		k->dek[i] = (uint8_t)(base + 0x80 + i);
	}
	k->len = len;
}

static inline void rig_server_keys(struct scp_keys *k) { rig_keys(k, 16, 0x10); }
static inline void rig_reader_keys(struct scp_keys *k) { rig_keys(k, 32, 0x20); }
static inline void rig_default_keys(struct scp_keys *k)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < 16; i++)
		k->enc[i] = k->mac[i] = k->dek[i] = (uint8_t)(0x40 + i);
	k->len = 16;
}

static inline void rig_start(void)
{
	memset(&R.se, 0, sizeof(R.se));
	memset(R.host, 0, sizeof(R.host));
	memset(R.open, 0, sizeof(R.open));
	R.cfg.rng = rig_rng;
	R.cfg.rng_ctx = &R;
	assert_int_equal(se_init(&R.se, &R.cfg, &R.mem.store), 0);
}

/* A fresh image, factory state only. */
static inline void rig_blank(void)
{
	memset(&R, 0, sizeof(R));
	R.now = RIG_NOW;
	se_mem_init(&R.mem);
	assert_int_equal(se_format(&R.mem.store, rig_serial), 0);
	rig_start();
}

/* A fresh, personalised image. */
static inline void rig_personalised(void)
{
	struct scp_keys k;

	memset(&R, 0, sizeof(R));
	R.now = RIG_NOW;
	se_mem_init(&R.mem);
	assert_int_equal(se_format(&R.mem.store, rig_serial), 0);
	rig_server_keys(&k);
	assert_int_equal(se_put_keyset(&R.mem.store, RIG_SERVER_KVN, SE_ROLE_SERVER, &k), 0);
	rig_reader_keys(&k);
	assert_int_equal(se_put_keyset(&R.mem.store, RIG_READER_KVN, SE_ROLE_READER, &k), 0);
	rig_start();
}

/* Sends raw bytes; R.resp/R.n/R.sw get the raw response. Returns the SW. */
static inline uint16_t rig_raw(enum se_iface ifc, const uint8_t *cmd, size_t n)
{
	struct wr w = wr_init(R.resp, sizeof(R.resp));

	R.rc = se_apdu(&R.se, ifc, cmd, n, R.now, &w);
	assert_true(R.rc == 0 || R.rc == SE_PENDING_RELAY);
	if (R.rc == SE_PENDING_RELAY) {
		assert_int_equal(w.len, 0);
		R.n = 0;
		R.sw = 0;
		return 0;
	}
	assert_true(w.len >= 2);
	R.n = w.len - 2;
	R.sw = (uint16_t)(R.resp[w.len - 2] << 8 | R.resp[w.len - 1]);
	R.authenticated = 0;
	return R.sw;
}

static inline uint16_t rig_raw_hex(enum se_iface ifc, const char *hex)
{
	uint8_t cmd[SE_CMD_MAX + 64];
	size_t n = hexbuf(hex, cmd, sizeof(cmd));

	return rig_raw(ifc, cmd, n);
}

static inline uint16_t rig_select(enum se_iface ifc, const uint8_t *aid, size_t n)
{
	uint8_t cmd[5 + SCP_AID_MAX + 1] = { 0x00, 0xA4, 0x04, 0x00, (uint8_t)n };

	memcpy(cmd + 5, aid, n);
	cmd[5 + n] = 0x00;
	R.open[ifc] = 0;
	return rig_raw(ifc, cmd, 6 + n);
}

static inline uint16_t rig_select_wallet(enum se_iface ifc)
{
	return rig_select(ifc, se_wallet_aid, SE_WALLET_AID_LEN);
}

/* Opens a channel on ifc (to the selected application with aid, for the challenge
 * check). Returns the SW of the step that failed, or 9000. */
static inline uint16_t rig_open_aid(enum se_iface ifc, uint8_t kvn, const struct scp_keys *keys,
				    uint8_t level, const uint8_t *aid, size_t aid_len)
{
	uint8_t challenge[8], out[64];
	struct scp_host_config hc;
	struct wr w = wr_init(out, sizeof(out));
	struct wr rw;
	int rc;

	for (size_t i = 0; i < sizeof(challenge); i++)
		challenge[i] = (uint8_t)(0xA0 + R.host_seed + i);
	R.host_seed++;
	memset(&hc, 0, sizeof(hc));
	hc.keys = keys;
	hc.host_challenge = challenge;
	hc.host_challenge_len = sizeof(challenge);
	hc.kvn = kvn;
	hc.level = level;
	hc.mode = SCP_MODE_S8;
	hc.aid = aid;
	hc.aid_len = aid_len;
	R.open[ifc] = 0;
	assert_int_equal(scp_host_begin(&R.host[ifc], &hc, &w), 0);
	if (rig_raw(ifc, out, w.len) != SW_OK)
		return R.sw;
	w = wr_init(out, sizeof(out));
	rc = scp_host_init_update(&R.host[ifc], R.resp, R.n + 2, &w);
	if (rc != 0)
		return 0x0001; /* our host refused the card's answer */
	rw = w;
	if (rig_raw(ifc, out, rw.len) != SW_OK)
		return R.sw;
	assert_int_equal(scp_host_ext_auth(&R.host[ifc], R.resp, R.n + 2), 0);
	R.open[ifc] = 1;
	return SW_OK;
}

static inline uint16_t rig_open(enum se_iface ifc, uint8_t kvn, const struct scp_keys *keys,
				uint8_t level)
{
	return rig_open_aid(ifc, kvn, keys, level, se_wallet_aid, SE_WALLET_AID_LEN);
}

static inline uint16_t rig_open_server(enum se_iface ifc, uint8_t level)
{
	struct scp_keys k;

	rig_server_keys(&k);
	return rig_open(ifc, RIG_SERVER_KVN, &k, level);
}

static inline uint16_t rig_open_reader(enum se_iface ifc, uint8_t level)
{
	struct scp_keys k;

	rig_reader_keys(&k);
	return rig_open(ifc, RIG_READER_KVN, &k, level);
}

/* Sends a plain command, wrapped when a channel is open on ifc; R.resp/R.n get the
 * plain response data, R.sw the SW, R.authenticated whether an R-MAC covered it. */
static inline uint16_t rig_cmd(enum se_iface ifc, const uint8_t *cmd, size_t n)
{
	uint8_t wrapped[SE_CMD_MAX + 64], plain[SE_RESP_MAX];
	struct wr w = wr_init(wrapped, sizeof(wrapped));
	struct wr pw = wr_init(plain, sizeof(plain));
	struct scp_resp info;

	if (!R.open[ifc])
		return rig_raw(ifc, cmd, n);
	int rc = scp_host_wrap(&R.host[ifc], cmd, n, &w);

	if (rc != 0)
		fail_msg("our host cannot wrap this command (%zu bytes %02X%02X%02X%02X%02X): %s", n, cmd[0], cmd[1], cmd[2], cmd[3], n > 4 ? cmd[4] : 0, tb_errname(rc));
	if (rig_raw(ifc, wrapped, w.len) == 0 && R.rc == SE_PENDING_RELAY)
		return 0;
	assert_int_equal(scp_host_unwrap(&R.host[ifc], R.resp, R.n + 2, &info, &pw), 0);
	memcpy(R.resp, plain, pw.len);
	R.n = info.n;
	R.sw = info.sw;
	R.authenticated = info.authenticated;
	return R.sw;
}

static inline uint16_t rig_cmd_hex(enum se_iface ifc, const char *hex)
{
	uint8_t cmd[SE_CMD_MAX + 64];
	size_t n = hexbuf(hex, cmd, sizeof(cmd));

	return rig_cmd(ifc, cmd, n);
}

/* The data pages of the image, for exact old/new comparisons. */
static inline int rig_same(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(a[i] ^ b[i]);
	return d == 0;
}

#endif
