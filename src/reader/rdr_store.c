/* rdr_store.c - the reader's persistent store: its codec (the state file's bytes), the
 * deny list check and the outbox steps. What stays true: a decoded store has distinct
 * record seqs, all below next_seq, so a seq is never given out twice; changes go to
 * r->scratch and replace *r->st only after io->save succeeded. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "rdr_int.h"

static const uint8_t store_magic[4] = { 'T', 'B', 'R', 'S' };
#define STORE_VERSION 0x01u

void rdr_store_init(struct rdr_store *s)
{
	memset(s, 0, sizeof(*s));
	s->next_seq = 1;
}

static void rec_view(const struct rdr_rec *src, struct rmsg_record *v)
{
	v->kind = src->kind;
	v->seq = src->seq;
	v->time = src->time;
	v->service = src->service;
	memcpy(v->serial, src->serial, RMSG_SERIAL_LEN);
	v->body = src->body;
	v->body_n = src->body_n;
}

int rdr_store_enc(struct wr *w, const struct rdr_store *s)
{
	struct wr t;
	int rc = 0;

	if (w == NULL || s == NULL)
		return TB_E_INVAL;
	if (s->deny_n > RDR_DENY_MAX || s->n > RDR_OUTBOX_MAX)
		return TB_E_INVAL;
	t = *w;
	if ((rc = wr_bytes(&t, store_magic, 4)) || (rc = wr_u8(&t, STORE_VERSION)) ||
	    (rc = wr_u32be(&t, s->next_seq)) || (rc = wr_u32be(&t, s->card_counter)) ||
	    (rc = wr_u8(&t, (uint8_t)s->deny_n)))
		return rc;
	for (size_t i = 0; i < s->deny_n && rc == 0; i++)
		rc = wr_bytes(&t, s->deny[i], RMSG_SERIAL_LEN);
	if (rc == 0)
		rc = wr_u16be(&t, (uint16_t)s->n);
	for (size_t i = 0; i < s->n && rc == 0; i++) {
		struct rmsg_record v;

		rec_view(&s->rec[i], &v);
		rc = rmsg_record_enc(&t, &v);
	}
	if (rc == 0)
		*w = t;
	return rc;
}

/* Decodes the state file into s, or only checks it when s is NULL (the first of two
 * passes: *out is written only once the whole file is known to be good). */
static int store_body(struct rd *r, struct rdr_store *s)
{
	uint32_t seqs[RDR_OUTBOX_MAX], next_seq, counter;
	uint8_t magic[4], version, dn, serial[RMSG_SERIAL_LEN];
	uint16_t count;
	int rc;

	if ((rc = rd_copy(r, magic, 4)) || (rc = rd_u8(r, &version)))
		return rc;
	if (!ct_eq(magic, store_magic, 4) || version != STORE_VERSION)
		return TB_E_RDR_STATE;
	if ((rc = rd_u32be(r, &next_seq)) || (rc = rd_u32be(r, &counter)) || (rc = rd_u8(r, &dn)))
		return rc;
	if (next_seq == 0 || dn > RDR_DENY_MAX || counter > SCP_COUNTER_LAST)
		return TB_E_RDR_STATE;
	for (size_t i = 0; i < dn; i++) {
		if ((rc = rd_copy(r, serial, RMSG_SERIAL_LEN)))
			return rc;
		if (s != NULL)
			memcpy(s->deny[i], serial, RMSG_SERIAL_LEN);
	}
	if ((rc = rd_u16be(r, &count)))
		return rc;
	if (count > RDR_OUTBOX_MAX)
		return TB_E_RDR_STATE;
	for (size_t i = 0; i < count; i++) {
		struct rmsg_record v;

		if ((rc = rmsg_record_dec(r, &v)))
			return rc;
		if (v.seq >= next_seq)
			return TB_E_RDR_STATE;
		for (size_t j = 0; j < i; j++)
			if (seqs[j] == v.seq)
				return TB_E_RDR_STATE;
		seqs[i] = v.seq;
		if (s != NULL) {
			struct rdr_rec *d = &s->rec[i];

			d->kind = v.kind;
			d->seq = v.seq;
			d->time = v.time;
			d->service = v.service;
			memcpy(d->serial, v.serial, RMSG_SERIAL_LEN);
			memcpy(d->body, v.body, v.body_n);
			d->body_n = v.body_n;
		}
	}
	if ((rc = rd_end(r)))
		return rc;
	if (s != NULL) {
		s->next_seq = next_seq;
		s->card_counter = counter;
		s->deny_n = dn;
		s->n = count;
	}
	return 0;
}

int rdr_store_dec(const uint8_t *b, size_t n, struct rdr_store *out)
{
	struct rd r = rd_init(b, n);
	int rc;

	if (out == NULL || (n > 0 && b == NULL))
		return TB_E_INVAL;
	if ((rc = store_body(&r, NULL)))
		return rc;
	r = rd_init(b, n);
	rdr_store_init(out);
	return store_body(&r, out);
}

int rdr_denied(const struct rdr_store *s, const uint8_t serial[RMSG_SERIAL_LEN])
{
	int hit = 0;

	for (size_t i = 0; i < s->deny_n; i++)
		hit |= ct_eq(s->deny[i], serial, RMSG_SERIAL_LEN);
	return hit;
}

int rdr_commit(struct rdr *r)
{
	int rc = r->io->save(r->io->ctx, &r->scratch);

	if (rc != 0) {
		rdr_say(r, "reader: state not saved");
		return rc;
	}
	*r->st = r->scratch;
	return 0;
}

int rdr_outbox_add(struct rdr *r, struct rdr_rec *recs, size_t n)
{
	int rc;

	if (r->st->n + n > RDR_OUTBOX_MAX || n > 2 || r->st->next_seq > UINT32_MAX - n) {
		rdr_say(r, "reader: refused: outbox full (report it online first)");
		return TB_E_RDR_FULL;
	}
	r->scratch = *r->st;
	for (size_t i = 0; i < n; i++) {
		recs[i].seq = r->scratch.next_seq++;
		r->scratch.rec[r->scratch.n++] = recs[i];
	}
	if ((rc = rdr_commit(r)))
		return rc;
	for (size_t i = 0; i < n; i++)
		r->tap_seq[r->tap_n++] = recs[i].seq;
	return 0;
}
