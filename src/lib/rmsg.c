/* rmsg.c - codecs of the reader <-> server relay messages and of REQUEST / RESULT
 * (rmsg.h). What stays true: decoders read only through struct rd and consume exactly
 * the input; every encoder validates all fields before the first byte is written, so
 * a failed call leaves the writer as it was. */
#include <string.h>

#include "err.h"
#include "rmsg.h"

const uint8_t rmsg_reader_aid[RMSG_READER_AID_LEN] = { 0xF0, 'T', 'A', 'P', 'B', 'R',
						      'I',  'D', 'G', 'E', 0x02 };

void rmsg_reader_serial(uint32_t reader_id, uint8_t serial[8])
{
	memset(serial, 0, 4);
	serial[4] = (uint8_t)(reader_id >> 24);
	serial[5] = (uint8_t)(reader_id >> 16);
	serial[6] = (uint8_t)(reader_id >> 8);
	serial[7] = (uint8_t)reader_id;
}

void rmsg_reader_kdd(uint32_t reader_id, uint8_t kdd[10])
{
	kdd[0] = kdd[1] = 0x00;
	rmsg_reader_serial(reader_id, kdd + 2);
}

static int text_ok(const char *s, size_t n, size_t min, size_t max)
{
	if (n < min || n > max || (n > 0 && s == NULL))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7E)
			return 0;
	return 1;
}

/* Writes hdr then the parts, all or nothing. */
static int put_all(struct wr *w, const uint8_t *hdr, size_t hn, const uint8_t *a, size_t an,
		   const uint8_t *b, size_t bn)
{
	if (w == NULL || (an > 0 && a == NULL) || (bn > 0 && b == NULL))
		return TB_E_INVAL;
	if (hn + an + bn > RMSG_MAX)
		return TB_E_RMSG_FIELD;
	if (wr_room(w) < hn + an + bn)
		return TB_E_NOSPACE;
	(void)wr_bytes(w, hdr, hn);
	(void)wr_bytes(w, a, an);
	(void)wr_bytes(w, b, bn);
	return 0;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int rmsg_hello_enc(struct wr *w, uint32_t reader_id)
{
	uint8_t h[6] = { RMSG_HELLO, RMSG_VERSION };

	be32(h + 2, reader_id);
	return put_all(w, h, sizeof(h), NULL, 0, NULL, 0);
}

int rmsg_auth_enc(struct wr *w, uint32_t reader_id, const uint8_t *iu_resp, size_t n)
{
	uint8_t h[6] = { RMSG_AUTH };

	if (n < RMSG_IU_RESP_MIN || n > RMSG_IU_RESP_MAX)
		return TB_E_RMSG_FIELD;
	be32(h + 1, reader_id);
	h[5] = (uint8_t)n;
	return put_all(w, h, sizeof(h), iu_resp, n, NULL, 0);
}

int rmsg_data_enc(struct wr *w, uint16_t ea_sw, const uint8_t *resp, size_t n)
{
	uint8_t h[3] = { RMSG_DATA, (uint8_t)(ea_sw >> 8), (uint8_t)ea_sw };

	if (n < 2)
		return TB_E_RMSG_FIELD;
	return put_all(w, h, sizeof(h), resp, n, NULL, 0);
}

int rmsg_ans_hello_enc(struct wr *w, const uint8_t *iu_cmd, size_t n)
{
	uint8_t h[1] = { RMSG_ANS_HELLO };

	if (n < RMSG_IU_CMD_MIN || n > RMSG_IU_CMD_MAX)
		return TB_E_RMSG_FIELD;
	return put_all(w, h, sizeof(h), iu_cmd, n, NULL, 0);
}

int rmsg_ans_auth_enc(struct wr *w, const uint8_t *ea, size_t ea_n, const uint8_t *get_req,
		      size_t get_req_n)
{
	uint8_t h[2] = { RMSG_ANS_AUTH, (uint8_t)ea_n };

	if (ea_n < RMSG_EA_MIN || ea_n > RMSG_EA_MAX || get_req_n < RMSG_APDU_MIN)
		return TB_E_RMSG_FIELD;
	return put_all(w, h, sizeof(h), ea, ea_n, get_req, get_req_n);
}

int rmsg_ans_data_enc(struct wr *w, const uint8_t *result_cmd, size_t n)
{
	uint8_t h[1] = { RMSG_ANS_DATA };

	if (n < RMSG_APDU_MIN)
		return TB_E_RMSG_FIELD;
	return put_all(w, h, sizeof(h), result_cmd, n, NULL, 0);
}

int rmsg_refuse_enc(struct wr *w, uint8_t code, const char *reason, size_t n)
{
	uint8_t h[2] = { RMSG_ANS_REFUSE, code };

	if (code < RMSG_REFUSE_UNKNOWN_READER || code > RMSG_REFUSE_INTERNAL)
		return TB_E_RMSG_FIELD;
	if (!text_ok(reason, n, 1, RMSG_REASON_MAX))
		return TB_E_RMSG_TEXT;
	return put_all(w, h, sizeof(h), (const uint8_t *)reason, n, NULL, 0);
}

/* The rest of r as one field of min.. bytes. */
static int take_rest(struct rd *r, size_t min, const uint8_t **p, size_t *n)
{
	size_t k = rd_left(r);

	if (k < min)
		return k == 0 ? TB_E_TRUNC : TB_E_RMSG_FIELD;
	*n = k;
	return rd_bytes(r, k, p);
}

static int up_body(struct rd *r, uint8_t type, struct rmsg *m)
{
	uint8_t v, len;
	int rc;

	switch (type) {
	case RMSG_HELLO:
		if ((rc = rd_u8(r, &v)) || (rc = rd_u32be(r, &m->reader_id)))
			return rc;
		return v == RMSG_VERSION ? 0 : TB_E_RMSG_FIELD;
	case RMSG_AUTH:
		if ((rc = rd_u32be(r, &m->reader_id)) || (rc = rd_u8(r, &len)))
			return rc;
		if (len < RMSG_IU_RESP_MIN || len > RMSG_IU_RESP_MAX)
			return TB_E_RMSG_FIELD;
		m->a_n = len;
		return rd_bytes(r, len, &m->a);
	case RMSG_DATA:
		if ((rc = rd_u16be(r, &m->ea_sw)))
			return rc;
		return take_rest(r, 2, &m->a, &m->a_n);
	default:
		return TB_E_RMSG_TYPE;
	}
}

static int down_body(struct rd *r, uint8_t type, struct rmsg *m)
{
	uint8_t len;
	int rc;

	switch (type) {
	case RMSG_ANS_HELLO:
		if ((rc = take_rest(r, RMSG_IU_CMD_MIN, &m->a, &m->a_n)))
			return rc;
		return m->a_n <= RMSG_IU_CMD_MAX ? 0 : TB_E_RMSG_FIELD;
	case RMSG_ANS_AUTH:
		if ((rc = rd_u8(r, &len)))
			return rc;
		if (len < RMSG_EA_MIN || len > RMSG_EA_MAX)
			return TB_E_RMSG_FIELD;
		m->a_n = len;
		if ((rc = rd_bytes(r, len, &m->a)))
			return rc;
		return take_rest(r, RMSG_APDU_MIN, &m->b, &m->b_n);
	case RMSG_ANS_DATA:
		return take_rest(r, RMSG_APDU_MIN, &m->a, &m->a_n);
	case RMSG_ANS_REFUSE:
		if ((rc = rd_u8(r, &m->code)))
			return rc;
		if (m->code < RMSG_REFUSE_UNKNOWN_READER || m->code > RMSG_REFUSE_INTERNAL)
			return TB_E_RMSG_FIELD;
		if ((rc = take_rest(r, 1, &m->a, &m->a_n)))
			return rc;
		return text_ok((const char *)m->a, m->a_n, 1, RMSG_REASON_MAX) ? 0 : TB_E_RMSG_TEXT;
	default:
		return TB_E_RMSG_TYPE;
	}
}

static int msg_dec(const uint8_t *b, size_t n, struct rmsg *out, int down)
{
	struct rd r = rd_init(b, n);
	struct rmsg m;
	int rc;

	if (out == NULL || (n > 0 && b == NULL))
		return TB_E_INVAL;
	if (n > RMSG_MAX)
		return TB_E_RMSG_FIELD;
	memset(&m, 0, sizeof(m));
	if ((rc = rd_u8(&r, &m.type)))
		return rc;
	rc = down ? down_body(&r, m.type, &m) : up_body(&r, m.type, &m);
	if (rc == 0)
		rc = rd_end(&r);
	if (rc == 0)
		*out = m;
	return rc;
}

int rmsg_up_dec(const uint8_t *b, size_t n, struct rmsg *out)
{
	return msg_dec(b, n, out, 0);
}

int rmsg_down_dec(const uint8_t *b, size_t n, struct rmsg *out)
{
	return msg_dec(b, n, out, 1);
}

/* ------------------------------------------------------------- records --- */

/* A refund's key: printable ASCII without the space (keys never hold one). */
static int refund_key_ok(const uint8_t *k, size_t n)
{
	if (n < 1 || n > RMSG_REFUND_KEY_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (k[i] < 0x21 || k[i] > 0x7E)
			return 0;
	return 1;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* 0, TB_E_RMSG_FIELD (length, amount 0) or TB_E_RMSG_TEXT (the key's bytes). */
static int refund_check(const uint8_t *body, size_t n)
{
	if (n < RMSG_REFUND_LEN_MIN || n > RMSG_REFUND_LEN_MAX || body == NULL)
		return TB_E_RMSG_FIELD;
	if (!refund_key_ok(body, n - 4))
		return TB_E_RMSG_TEXT;
	return get_be32(body + n - 4) == 0 ? TB_E_RMSG_FIELD : 0;
}

int rmsg_refund_enc(struct wr *w, const char *key, size_t key_n, uint32_t amount)
{
	uint8_t a[4];

	if (w == NULL || (key_n > 0 && key == NULL))
		return TB_E_INVAL;
	if (key_n < 1 || key_n > RMSG_REFUND_KEY_MAX || amount == 0)
		return TB_E_RMSG_FIELD;
	if (!refund_key_ok((const uint8_t *)key, key_n))
		return TB_E_RMSG_TEXT;
	if (wr_room(w) < key_n + 4)
		return TB_E_NOSPACE;
	be32(a, amount);
	(void)wr_bytes(w, (const uint8_t *)key, key_n);
	(void)wr_bytes(w, a, sizeof(a));
	return 0;
}

int rmsg_refund_dec(const uint8_t *body, size_t n, const char **key, size_t *key_n,
		    uint32_t *amount)
{
	int rc;

	if (key == NULL || key_n == NULL || amount == NULL)
		return TB_E_INVAL;
	if ((rc = refund_check(body, n)) != 0)
		return rc;
	*key = (const char *)body;
	*key_n = n - 4;
	*amount = get_be32(body + n - 4);
	return 0;
}

static int body_fits(uint8_t kind, const uint8_t *body, size_t n)
{
	switch (kind) {
	case RMSG_K_PAY:
		return n == RMSG_RECEIPT_LEN;
	case RMSG_K_ORDER: {
		size_t items;

		if (n < RMSG_RECEIPT_LEN + 1u)
			return 0;
		items = body[RMSG_RECEIPT_LEN];
		return items >= 1 && items <= RMSG_ITEMS_MAX &&
		       n == RMSG_RECEIPT_LEN + 1u + items * RMSG_ITEM_LEN;
	}
	case RMSG_K_TICKET:
		return n == RMSG_TICKET_LEN;
	case RMSG_K_PAUTH:
		return n == RMSG_PAUTH_LEN;
	case RMSG_K_FLAG:
		return n == RMSG_FLAG_LEN_NO_RECEIPT ||
		       n == RMSG_FLAG_LEN_NO_RECEIPT + RMSG_RECEIPT_LEN;
	case RMSG_K_REFUND:
		return refund_check(body, n) == 0;
	default:
		return 0;
	}
}

static int record_ok(const struct rmsg_record *r)
{
	if (r->seq == 0 || (r->body_n > 0 && r->body == NULL))
		return 0;
	return body_fits(r->kind, r->body, r->body_n);
}

static size_t record_len(const struct rmsg_record *r)
{
	return RMSG_RECORD_HDR + r->body_n;
}

/* After record_ok() and a room check: cannot fail. */
static void record_put(struct wr *w, const struct rmsg_record *r)
{
	(void)wr_u8(w, r->kind);
	(void)wr_u32be(w, r->seq);
	(void)wr_u64be(w, (uint64_t)r->time);
	(void)wr_u32be(w, r->service);
	(void)wr_bytes(w, r->serial, RMSG_SERIAL_LEN);
	(void)wr_u16be(w, (uint16_t)r->body_n);
	(void)wr_bytes(w, r->body, r->body_n);
}

int rmsg_record_enc(struct wr *w, const struct rmsg_record *r)
{
	if (w == NULL || r == NULL)
		return TB_E_INVAL;
	if (!record_ok(r))
		return TB_E_RMSG_FIELD;
	if (wr_room(w) < record_len(r))
		return TB_E_NOSPACE;
	record_put(w, r);
	return 0;
}

int rmsg_record_dec(struct rd *r, struct rmsg_record *out)
{
	struct rd t;
	struct rmsg_record v;
	uint64_t time;
	uint16_t len;
	int rc;

	if (r == NULL || out == NULL)
		return TB_E_INVAL;
	t = *r;
	memset(&v, 0, sizeof(v));
	if ((rc = rd_u8(&t, &v.kind)) || (rc = rd_u32be(&t, &v.seq)) || (rc = rd_u64be(&t, &time)) ||
	    (rc = rd_u32be(&t, &v.service)) || (rc = rd_copy(&t, v.serial, RMSG_SERIAL_LEN)) ||
	    (rc = rd_u16be(&t, &len)))
		return rc;
	v.time = (int64_t)time;
	v.body_n = len;
	if ((rc = rd_bytes(&t, len, &v.body)))
		return rc;
	if (!record_ok(&v))
		return TB_E_RMSG_FIELD;
	*out = v;
	*r = t;
	return 0;
}

int rmsg_request_enc(struct wr *w, const struct rmsg_record *r, size_t n)
{
	size_t need = 1;

	if (w == NULL || (n > 0 && r == NULL))
		return TB_E_INVAL;
	if (n > RMSG_RECORDS_MAX)
		return TB_E_RMSG_FIELD;
	for (size_t i = 0; i < n; i++) {
		if (!record_ok(&r[i]))
			return TB_E_RMSG_FIELD;
		need += record_len(&r[i]);
	}
	if (wr_room(w) < need)
		return TB_E_NOSPACE;
	(void)wr_u8(w, (uint8_t)n);
	for (size_t i = 0; i < n; i++)
		record_put(w, &r[i]);
	return 0;
}

int rmsg_request_dec(const uint8_t *b, size_t n, struct rmsg_record *out, size_t max,
		     size_t *count)
{
	struct rmsg_record tmp[RMSG_RECORDS_MAX];
	struct rd r = rd_init(b, n);
	uint8_t k;
	int rc;

	if (out == NULL || count == NULL || (n > 0 && b == NULL))
		return TB_E_INVAL;
	if ((rc = rd_u8(&r, &k)))
		return rc;
	if (k > RMSG_RECORDS_MAX || k > max)
		return TB_E_RMSG_FIELD;
	for (size_t i = 0; i < k; i++)
		if ((rc = rmsg_record_dec(&r, &tmp[i])))
			return rc;
	if ((rc = rd_end(&r)))
		return rc;
	memcpy(out, tmp, k * sizeof(tmp[0]));
	*count = k;
	return 0;
}

int rmsg_result_enc(struct wr *w, const struct rmsg_result_item *it, size_t n,
		    const uint8_t (*deny)[RMSG_SERIAL_LEN], size_t deny_n)
{
	size_t need = 2 + deny_n * RMSG_SERIAL_LEN;

	if (w == NULL || (n > 0 && it == NULL) || (deny_n > 0 && deny == NULL))
		return TB_E_INVAL;
	if (n > RMSG_RECORDS_MAX || deny_n > RMSG_DENY_MAX)
		return TB_E_RMSG_FIELD;
	for (size_t i = 0; i < n; i++) {
		if (it[i].status > RMSG_ST_REFUSED)
			return TB_E_RMSG_FIELD;
		if (!text_ok(it[i].info, it[i].info_n, 0, RMSG_INFO_MAX))
			return TB_E_RMSG_TEXT;
		need += 6 + it[i].info_n;
	}
	if (wr_room(w) < need)
		return TB_E_NOSPACE;
	(void)wr_u8(w, (uint8_t)n);
	for (size_t i = 0; i < n; i++) {
		(void)wr_u32be(w, it[i].seq);
		(void)wr_u8(w, it[i].status);
		(void)wr_u8(w, (uint8_t)it[i].info_n);
		(void)wr_bytes(w, (const uint8_t *)it[i].info, it[i].info_n);
	}
	(void)wr_u8(w, (uint8_t)deny_n);
	for (size_t i = 0; i < deny_n; i++)
		(void)wr_bytes(w, deny[i], RMSG_SERIAL_LEN);
	return 0;
}

static int result_item(struct rd *r, struct rmsg_result_item *it)
{
	const uint8_t *p;
	uint8_t len;
	int rc;

	if ((rc = rd_u32be(r, &it->seq)) || (rc = rd_u8(r, &it->status)) || (rc = rd_u8(r, &len)))
		return rc;
	if (it->status > RMSG_ST_REFUSED || len > RMSG_INFO_MAX)
		return TB_E_RMSG_FIELD;
	if ((rc = rd_bytes(r, len, &p)))
		return rc;
	it->info = (const char *)p;
	it->info_n = len;
	return text_ok(it->info, len, 0, RMSG_INFO_MAX) ? 0 : TB_E_RMSG_TEXT;
}

int rmsg_result_dec(const uint8_t *b, size_t n, struct rmsg_result_item *out, size_t max,
		    size_t *count, const uint8_t **deny, size_t *deny_n)
{
	struct rmsg_result_item tmp[RMSG_RECORDS_MAX];
	struct rd r = rd_init(b, n);
	const uint8_t *d;
	uint8_t k, dn;
	int rc;

	if (out == NULL || count == NULL || deny == NULL || deny_n == NULL || (n > 0 && b == NULL))
		return TB_E_INVAL;
	if ((rc = rd_u8(&r, &k)))
		return rc;
	if (k > RMSG_RECORDS_MAX || k > max)
		return TB_E_RMSG_FIELD;
	memset(tmp, 0, sizeof(tmp));
	for (size_t i = 0; i < k; i++)
		if ((rc = result_item(&r, &tmp[i])))
			return rc;
	if ((rc = rd_u8(&r, &dn)))
		return rc;
	if (dn > RMSG_DENY_MAX)
		return TB_E_RMSG_FIELD;
	if ((rc = rd_bytes(&r, (size_t)dn * RMSG_SERIAL_LEN, &d)) || (rc = rd_end(&r)))
		return rc;
	memcpy(out, tmp, k * sizeof(tmp[0]));
	*count = k;
	*deny = dn > 0 ? d : NULL;
	*deny_n = dn;
	return 0;
}
