/* fuzz_sam_req.c - request frames (lib/frame.h, cut by the sam's per-type limits) to the
 * sam core on two connections, the first byte choosing whether each says HELLO first.
 * It must never crash, every reply must be one frame within the reply limits, and no
 * reply may carry a key the sam holds (masters, signing scalar, blob keys). */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "frame.h"
#include "sam.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sam_keystore ks;
static struct sam_session slots[4];
static uint8_t out[SAM_REPLY_FRAME_MAX], rbuf[SAM_REQ_MAX];
static uint32_t req_limits[FRAME_TYPES], reply_limits[FRAME_TYPES];

/* Fixed keys that look random, so no input can match them by chance. */
static void seed_keys(void)
{
	if (sam_keys_generate(&ks, 16) != 0)
		abort();
	for (uint8_t f = 1; f <= SAM_FAMILIES; f++) {
		uint8_t label[2] = { 'K', f }, h[CRYPTO_SHA256_LEN];

		(void)crypto_sha256(label, sizeof(label), h);
		memcpy(ks.k[f - 1][0].key, h, SAM_KEY_LEN);
	}
	if (crypto_p256_public(ks.k[SAM_FAM_SIGN - 1][0].key, ks.k[SAM_FAM_SIGN - 1][0].pub) != 0)
		abort();
	sam_request_limits(req_limits);
	sam_reply_limits(reply_limits);
}

static void check_reply(const struct sam *s, const uint8_t *p, size_t n)
{
	uint32_t len;

	if (n < FRAME_HDR_LEN + SAM_ID_LEN)
		abort();
	len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (len != n - 4 || len > reply_limits[p[4]])
		abort();
	for (size_t f = 0; f < SAM_FAMILIES; f++)
		for (size_t v = 0; v < SAM_VERSIONS; v++)
			for (size_t i = 0; s->ks.k[f][v].present && i + SAM_KEY_LEN <= n; i++)
				if (p[i] == s->ks.k[f][v].key[0] &&
				    ct_eq(p + i, s->ks.k[f][v].key, SAM_KEY_LEN))
					abort(); /* a key left the sam */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t hello[5] = { 0, 0, 0, 0, SAM_PROTO_VERSION };
	struct sam_config cfg = { SAM_CAP_PERSO | SAM_CAP_KEYS, NULL, NULL };
	static struct sam s;
	struct sam_conn c[2];
	struct frame_rd f;
	size_t off = 1, k = 0;

	if (ks.current[0] == 0)
		seed_keys();
	if (size < 1)
		return 0;
	if (sam_init(&s, &cfg, &ks, slots, 4) != 0 ||
	    frame_rd_init(&f, rbuf, sizeof(rbuf), sizeof(rbuf) + 1, req_limits) != 0)
		abort();
	for (int i = 0; i < 2; i++) {
		struct wr w = wr_init(out, sizeof(out));

		sam_conn_open(&s, &c[i]);
		if ((data[0] >> i) & 1 && sam_request(&s, &c[i], SAM_HELLO, hello, 5, &w) != 0)
			abort();
	}
	while (off < size && frame_rd_state(&f) >= 0) {
		off += frame_rd_push(&f, data + off, size - off);
		if (frame_rd_state(&f) == FRAME_READY) {
			struct sam_conn *conn = &c[(data[0] >> 2 >> (k++ % 6)) & 1];
			struct wr w = wr_init(out, sizeof(out));
			const uint8_t *p;
			uint8_t type;
			size_t n;

			(void)frame_rd_take(&f, &type, &p, &n);
			if (sam_request(&s, conn, type, p, n, &w) == 0)
				check_reply(&s, out, w.len);
			else if (w.len != 0 || conn->state != SAM_CS_CLOSED || conn->nsessions != 0)
				abort();
		}
	}
	sam_conn_close(&s, &c[0]);
	sam_conn_close(&s, &c[1]);
	if (s.used != 0)
		abort();
	return 0;
}
