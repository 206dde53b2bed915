/* fuzz_tlv.c - the BER-TLV reader on arbitrary bytes (depth-limited walk, BER
 * and strict), and the builder: whatever parses is rebuilt and must parse back
 * to the same elements, byte for byte when the input was strict (minimal). */
#include <stdbool.h>
#include <stdlib.h>

#include "err.h"
#include "tlv.h"

#define FUZZ_MAX 4096

struct rec {
	uint8_t b[8 * FUZZ_MAX]; /* an element costs at most 10 bytes + its value */
	size_t n;
};
static struct rec in_rec, out_rec;
static uint8_t out[FUZZ_MAX];

/* Appends depth, tag, constructed and a primitive's value: equal records mean
 * equal elements whatever the length encoding. */
static int record(void *ctx, const struct tlv *t, unsigned depth, size_t off)
{
	struct rec *r = ctx;
	struct wr w = { r->b, sizeof(r->b), r->n };

	(void)off;
	if (wr_u8(&w, (uint8_t)depth) || wr_u32be(&w, t->tag) || wr_u8(&w, t->constructed) ||
	    (!t->constructed && (wr_u32be(&w, (uint32_t)t->val.n) || wr_bytes(&w, t->val.p, t->val.n))))
		abort();
	r->n = w.len;
	return 0;
}

/* Only called on walked input, so recursion stays within TLV_MAX_DEPTH. */
static void rebuild(struct rd level, struct wr *w)
{
	while (rd_left(&level) > 0) {
		struct tlv t;
		struct tlv_mark m;

		if (tlv_next(&level, &t) != 0)
			abort();
		if (!t.constructed) {
			if (tlv_put(w, t.tag, t.val.p, t.val.n) != 0)
				abort();
			continue;
		}
		if (tlv_open(w, t.tag, &m) != 0)
			abort();
		rebuild(t.val, w);
		if (tlv_close(w, &m) != 0)
			abort();
	}
}

/* Plain data, no secrets; tools/layout.sh keeps memcmp out of fuzz/ too. */
static bool same(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++) {
		if (a[i] != b[i])
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wr w = wr_init(out, sizeof(out)); /* minimal never outgrows the input */
	int strict, ber;

	if (size > FUZZ_MAX)
		return 0;
	in_rec.n = out_rec.n = 0;
	strict = tlv_walk_ex(data, size, TLV_MAX_DEPTH, TLV_STRICT, NULL, NULL, NULL);
	ber = tlv_walk_ex(data, size, TLV_MAX_DEPTH, TLV_BER, record, &in_rec, NULL);
	/* Strict accepts a subset of BER, refusing only non-minimal forms. */
	if (ber != 0 ? strict == 0 : strict != 0 && strict != TB_E_TLV_LEN_FORM && strict != TB_E_TLV_TAG)
		abort();
	if (ber != 0)
		return 0;
	rebuild(rd_init(data, size), &w);
	if (tlv_walk_ex(out, w.len, TLV_MAX_DEPTH, TLV_BER, record, &out_rec, NULL) != 0)
		abort();
	if (!same(in_rec.b, in_rec.n, out_rec.b, out_rec.n))
		abort();
	if (strict == 0 && !same(out, w.len, data, size))
		abort();
	return 0;
}
