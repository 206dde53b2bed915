/* tlv.c - BER-TLV reader and builder (rules in tlv.h).
 * Reads work on a copy of the reader that is stored back only on success, and
 * every write checks the room it needs first: a failure changes nothing. */
#include <string.h>

#include "err.h"
#include "tlv.h"

#define TLV_TAG_MAX_BYTES 3
#define TLV_LEN_MAX_BYTES 3

static int read_tag(struct rd *r, unsigned flags, uint32_t *tag)
{
	uint8_t b;
	uint32_t v;

	if (rd_u8(r, &b) != 0)
		return TB_E_TRUNC;
	v = b;
	if ((b & 0x1F) == 0x1F) {
		for (size_t i = 1;; i++) {
			/* i bytes read and the last one still says "more". */
			if (i == TLV_TAG_MAX_BYTES)
				return TB_E_TLV_TAG;
			if (rd_u8(r, &b) != 0)
				return TB_E_TRUNC;
			if (i == 1 && b == 0x80 && (flags & TLV_STRICT))
				return TB_E_TLV_TAG;
			v = (v << 8) | b;
			if ((b & 0x80) == 0)
				break;
		}
	}
	*tag = v;
	return 0;
}

static int read_len(struct rd *r, unsigned flags, size_t *len)
{
	/* Smallest value that needs 1, 2, 3 length bytes after 8X. */
	static const uint32_t min_long[TLV_LEN_MAX_BYTES + 1] = { 0, 0x80, 0x100, 0x10000 };
	uint8_t b;
	uint32_t v = 0;
	size_t k;

	if (rd_u8(r, &b) != 0)
		return TB_E_TLV_LEN_TRUNC;
	if (b < 0x80) {
		*len = b;
		return 0;
	}
	if (b == 0x80)
		return TB_E_TLV_INDEFINITE;
	k = b & 0x7Fu;
	if (k > TLV_LEN_MAX_BYTES)
		return TB_E_TLV_LEN_FORM;
	for (size_t i = 0; i < k; i++) {
		if (rd_u8(r, &b) != 0)
			return TB_E_TLV_LEN_TRUNC;
		v = (v << 8) | b;
	}
	if ((flags & TLV_STRICT) && v < min_long[k])
		return TB_E_TLV_LEN_FORM;
	*len = v;
	return 0;
}

int tlv_read(struct rd *r, unsigned flags, struct tlv *out)
{
	struct rd cur = *r;
	struct tlv t;
	size_t len;
	int rc;

	rc = read_tag(&cur, flags, &t.tag);
	if (rc != 0)
		return rc;
	rc = read_len(&cur, flags, &len);
	if (rc != 0)
		return rc;
	t.hdr_len = r->n - cur.n;
	if (rd_sub(&cur, len, &t.val) != 0)
		return TB_E_TLV_LEN_PAST_END;
	t.constructed = (r->p[0] & 0x20) != 0;
	*out = t;
	*r = cur;
	return 0;
}

int tlv_next(struct rd *r, struct tlv *out)
{
	return tlv_read(r, TLV_BER, out);
}

int tlv_expect(struct rd *r, unsigned flags, uint32_t tag, struct tlv *out)
{
	struct rd cur = *r;
	struct tlv t;
	int rc = tlv_read(&cur, flags, &t);

	if (rc != 0)
		return rc;
	if (t.tag != tag)
		return TB_E_TLV_NOT_FOUND;
	*out = t;
	*r = cur;
	return 0;
}

int tlv_enter(struct rd *r, unsigned flags, uint32_t tag, struct rd *inner)
{
	struct rd cur = *r;
	struct tlv t;
	int rc = tlv_expect(&cur, flags, tag, &t);

	if (rc != 0)
		return rc;
	if (!t.constructed)
		return TB_E_TLV_NOT_CONSTRUCTED;
	*inner = t.val;
	*r = cur;
	return 0;
}

int tlv_find(const struct rd *level, unsigned flags, uint32_t tag, struct tlv *out)
{
	struct rd cur = *level;
	struct tlv t, found = { 0 };
	bool have = false;

	while (rd_left(&cur) > 0) {
		int rc = tlv_read(&cur, flags, &t);
		if (rc != 0)
			return rc;
		if (!have && t.tag == tag) {
			found = t;
			have = true;
		}
	}
	if (!have)
		return TB_E_TLV_NOT_FOUND;
	*out = found;
	return 0;
}

int tlv_walk(const uint8_t *p, size_t n, unsigned max_depth, tlv_visit_fn fn, void *ctx)
{
	return tlv_walk_ex(p, n, max_depth, TLV_BER, fn, ctx, NULL);
}

/* Iterative with a fixed stack, so hostile nesting costs no C stack: level d
 * holds what is left of the value being read at depth d. */
int tlv_walk_ex(const uint8_t *p, size_t n, unsigned max_depth, unsigned flags,
		tlv_visit_fn fn, void *ctx, size_t *err_off)
{
	struct rd stack[TLV_MAX_DEPTH];
	unsigned d = 0;
	size_t off = 0;
	int rc = 0;

	if (max_depth == 0 || max_depth > TLV_MAX_DEPTH || (p == NULL && n > 0))
		return TB_E_INVAL;
	stack[0] = rd_init(p, n);
	for (;;) {
		struct tlv t;

		if (rd_left(&stack[d]) == 0) {
			if (d == 0)
				break;
			d--;
			continue;
		}
		off = (size_t)(stack[d].p - p);
		rc = tlv_read(&stack[d], flags, &t);
		if (rc == 0 && fn != NULL)
			rc = fn(ctx, &t, d, off);
		if (rc != 0)
			goto out;
		if (t.constructed && t.val.n > 0) {
			if (d + 1 >= max_depth) {
				off = (size_t)(t.val.p - p);
				rc = TB_E_TLV_DEPTH;
				goto out;
			}
			stack[++d] = t.val;
		}
	}
	return 0;
out:
	if (err_off != NULL)
		*err_off = off;
	return rc;
}

size_t tlv_tag_size(uint32_t tag)
{
	if (tag <= 0xFFu)
		return (tag & 0x1Fu) != 0x1Fu ? 1 : 0;
	if (tag <= 0xFFFFu)
		return ((tag >> 8) & 0x1Fu) == 0x1Fu && (tag & 0x80u) == 0 ? 2 : 0;
	if (tag <= 0xFFFFFFu)
		return ((tag >> 16) & 0x1Fu) == 0x1Fu && (tag & 0x8000u) != 0 &&
				       (tag & 0x80u) == 0 ? 3 : 0;
	return 0;
}

/* Bytes of the minimal length field for n, 0 when n cannot be encoded. */
static size_t len_size(size_t n)
{
	if (n < 0x80)
		return 1;
	if (n <= 0xFF)
		return 2;
	if (n <= 0xFFFF)
		return 3;
	if (n <= TLV_MAX_LEN)
		return 4;
	return 0;
}

static void put_be(uint8_t *dst, size_t v, size_t k)
{
	for (size_t i = 0; i < k; i++)
		dst[i] = (uint8_t)(v >> (8 * (k - 1 - i)));
}

/* The length field for n in exactly ll = len_size(n) bytes. */
static void put_len(uint8_t *dst, size_t n, size_t ll)
{
	if (ll == 1) {
		dst[0] = (uint8_t)n;
		return;
	}
	dst[0] = (uint8_t)(0x80u | (ll - 1));
	put_be(dst + 1, n, ll - 1);
}

int tlv_put_header(struct wr *w, uint32_t tag, size_t n)
{
	size_t ts = tlv_tag_size(tag), ll = len_size(n);
	uint8_t *p;

	if (ts == 0)
		return TB_E_TLV_TAG;
	if (ll == 0)
		return TB_E_TLV_LEN_FORM;
	if (wr_reserve(w, ts + ll, &p) != 0)
		return TB_E_NOSPACE;
	put_be(p, tag, ts);
	put_len(p + ts, n, ll);
	return 0;
}

int tlv_put(struct wr *w, uint32_t tag, const uint8_t *v, size_t n)
{
	size_t ts = tlv_tag_size(tag), ll = len_size(n);

	if (ts == 0)
		return TB_E_TLV_TAG;
	if (ll == 0)
		return TB_E_TLV_LEN_FORM;
	if (n > 0 && v == NULL)
		return TB_E_INVAL;
	if (ts + ll + n > wr_room(w))
		return TB_E_NOSPACE;
	if (tlv_put_header(w, tag, n) != 0 || wr_bytes(w, v, n) != 0)
		return TB_E_INTERNAL; /* room was checked above */
	return 0;
}

int tlv_open(struct wr *w, uint32_t tag, struct tlv_mark *m)
{
	size_t start = w->len;
	int rc = tlv_put_header(w, tag, 0);

	if (rc != 0)
		return rc;
	m->start = start;
	m->len_at = w->len - 1;
	return 0;
}

int tlv_close(struct wr *w, struct tlv_mark *m)
{
	size_t val, n, ll;

	if (m->len_at >= w->len || m->start >= m->len_at)
		return TB_E_INVAL;
	val = m->len_at + 1;
	n = w->len - val;
	ll = len_size(n);
	if (ll == 0)
		return TB_E_TLV_LEN_FORM;
	if (ll - 1 > wr_room(w))
		return TB_E_NOSPACE;
	if (ll > 1 && n > 0)
		memmove(w->p + val + (ll - 1), w->p + val, n);
	put_len(w->p + m->len_at, n, ll);
	w->len += ll - 1;
	m->len_at = SIZE_MAX;
	return 0;
}
