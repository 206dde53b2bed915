/* apdu.c - ISO/IEC 7816-4 command and response APDUs, cases 1-4, short and extended.
 * Parsing reads through struct rd only and fills the caller's struct on success alone;
 * encoding checks the whole length first, so a failed encode writes nothing. */
#include "apdu.h"
#include "err.h"

enum apdu_case apdu_case_of(const struct apdu *a)
{
	if (a->nc == 0)
		return a->ne == 0 ? APDU_CASE_1 : APDU_CASE_2;
	return a->ne == 0 ? APDU_CASE_3 : APDU_CASE_4;
}

/* Where a failure was found: the error and the byte offset it points at. */
struct apdu_fail {
	int rc;
	size_t at;
};

static int apdu_fail_at(struct apdu_fail *f, int rc, size_t at)
{
	f->rc = rc;
	f->at = at;
	return rc;
}

/* Body after the header when byte 4 is a non-zero short Lc (cases 3S and 4S). */
static int apdu_body_short(struct rd *r, struct apdu *a, struct apdu_fail *f)
{
	uint8_t lc, le;
	const uint8_t *data;

	if (rd_u8(r, &lc) != 0 || rd_bytes(r, lc, &data) != 0)
		return apdu_fail_at(f, TB_E_APDU_LC, 4);
	a->nc = lc;
	a->data = data;
	if (rd_left(r) == 0)
		return 0;
	/* Anything but exactly one Le byte means Lc does not describe the body. */
	if (rd_left(r) > 1)
		return apdu_fail_at(f, TB_E_APDU_LC, 4);
	if (rd_u8(r, &le) != 0)
		return apdu_fail_at(f, TB_E_INTERNAL, 5u + lc);
	a->ne = le == 0 ? APDU_MAX_NE_SHORT : le;
	return 0;
}

/* Body after the header when byte 4 is 00 and more than one byte follows it:
 * the extended form (2E: 00 Le Le; 3E: 00 Lc Lc data; 4E: 00 Lc Lc data Le Le). */
static int apdu_body_ext(struct rd *r, struct apdu *a, struct apdu_fail *f)
{
	uint8_t zero;
	uint16_t x, le;
	const uint8_t *data;

	/* 6 bytes with byte 4 = 00: a short Lc of 0, or a cut extended length. */
	if (rd_left(r) < 3)
		return apdu_fail_at(f, TB_E_APDU_FORM, 4);
	if (rd_u8(r, &zero) != 0 || rd_u16be(r, &x) != 0)
		return apdu_fail_at(f, TB_E_INTERNAL, 4);
	a->extended = 1;
	if (rd_left(r) == 0) {
		a->ne = x == 0 ? APDU_MAX_NE_EXT : x;
		return 0;
	}
	if (x == 0)
		return apdu_fail_at(f, TB_E_APDU_FORM, 4);
	if (rd_bytes(r, x, &data) != 0)
		return apdu_fail_at(f, TB_E_APDU_LC, 4);
	a->nc = x;
	a->data = data;
	if (rd_left(r) == 0)
		return 0;
	/* One byte where an extended Le needs two. */
	if (rd_left(r) == 1)
		return apdu_fail_at(f, TB_E_APDU_LE, 7u + x);
	if (rd_left(r) > 2)
		return apdu_fail_at(f, TB_E_APDU_LC, 4);
	if (rd_u16be(r, &le) != 0)
		return apdu_fail_at(f, TB_E_INTERNAL, 7u + x);
	a->ne = le == 0 ? APDU_MAX_NE_EXT : le;
	return 0;
}

int apdu_parse_at(const uint8_t *buf, size_t n, struct apdu *out, size_t *where)
{
	struct rd r = rd_init(buf, n);
	struct apdu a = { 0 };
	struct apdu_fail f = { 0, 0 };
	const uint8_t *hdr;
	uint8_t b4;
	int rc = 0;

	if (buf == NULL && n > 0) {
		rc = apdu_fail_at(&f, TB_E_INVAL, 0);
		goto out;
	}
	if (rd_bytes(&r, 4, &hdr) != 0) {
		rc = apdu_fail_at(&f, TB_E_APDU_SHORT, n);
		goto out;
	}
	a.cla = hdr[0];
	a.ins = hdr[1];
	a.p1 = hdr[2];
	a.p2 = hdr[3];
	if (rd_left(&r) == 0)
		goto out; /* case 1 */
	if (rd_peek(&r, &b4) != 0) {
		rc = apdu_fail_at(&f, TB_E_INTERNAL, 4);
		goto out;
	}
	if (rd_left(&r) == 1) {
		/* Case 2S: a lone fifth byte is always Le, and 00 there means 256. */
		(void)rd_skip(&r, 1);
		a.ne = b4 == 0 ? APDU_MAX_NE_SHORT : b4;
	} else if (b4 != 0) {
		rc = apdu_body_short(&r, &a, &f);
	} else {
		rc = apdu_body_ext(&r, &a, &f);
	}
out:
	if (rc == 0) {
		*out = a;
	} else if (where != NULL) {
		*where = f.at;
	}
	return rc;
}

int apdu_parse(const uint8_t *buf, size_t n, struct apdu *out)
{
	return apdu_parse_at(buf, n, out, NULL);
}

/* Writes Lc or Le: one byte short (256 -> 00), two bytes extended (65536 -> 0000). */
static void apdu_put_len(struct wr *w, size_t v, int ext)
{
	if (ext)
		(void)wr_u16be(w, (uint16_t)(v & 0xFFFFu));
	else
		(void)wr_u8(w, (uint8_t)(v & 0xFFu));
}

int apdu_encode(const struct apdu *a, struct wr *w)
{
	int ext;
	size_t total;

	if (a->nc > APDU_MAX_NC_EXT || a->ne > APDU_MAX_NE_EXT || (a->nc > 0 && a->data == NULL))
		return TB_E_INVAL;
	ext = a->extended || a->nc > APDU_MAX_NC_SHORT || a->ne > APDU_MAX_NE_SHORT;
	total = 4 + a->nc;
	if (a->nc > 0)
		total += ext ? 3 : 1;
	if (a->ne > 0)
		total += ext ? (a->nc > 0 ? 2 : 3) : 1;
	if (total > wr_room(w))
		return TB_E_NOSPACE;
	/* From here on every write fits. */
	(void)wr_u8(w, a->cla);
	(void)wr_u8(w, a->ins);
	(void)wr_u8(w, a->p1);
	(void)wr_u8(w, a->p2);
	if (ext && (a->nc > 0 || a->ne > 0))
		(void)wr_u8(w, 0x00);
	if (a->nc > 0) {
		apdu_put_len(w, a->nc, ext);
		(void)wr_bytes(w, a->data, a->nc);
	}
	if (a->ne > 0)
		apdu_put_len(w, a->ne, ext);
	return 0;
}

int apdu_resp_parse(const uint8_t *buf, size_t n, struct apdu_resp *out)
{
	struct rd r = rd_init(buf, n);
	const uint8_t *data;
	uint16_t sw;

	if (buf == NULL && n > 0)
		return TB_E_INVAL;
	if (n < 2)
		return TB_E_APDU_RESP;
	if (rd_bytes(&r, n - 2, &data) != 0 || rd_u16be(&r, &sw) != 0)
		return TB_E_INTERNAL;
	out->data = n > 2 ? data : NULL;
	out->n = n - 2;
	out->sw = sw;
	return 0;
}

int apdu_resp_encode(const uint8_t *data, size_t n, uint16_t sw, struct wr *w)
{
	if (n > 0 && data == NULL)
		return TB_E_INVAL;
	if (n > wr_room(w) || wr_room(w) - n < 2)
		return TB_E_NOSPACE;
	(void)wr_bytes(w, data, n);
	(void)wr_u16be(w, sw);
	return 0;
}
