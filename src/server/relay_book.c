/* relay_book.c - a reader's record, proved by its channel, booked through the service
 * rules: payments from se receipts, orders, ticket uses, flag uses, online personal
 * authentication, refunds of payments (docs/flows.md, docs/services.md).
 * What stays true: each record is one savepoint of the caller's batch; a rule refusal
 * books nothing and is final (status 2), a replay answers status 1 and books nothing
 * again, and only a database failure spoils the batch (the reader retries later). */
#include <stdint.h>
#include <string.h>

#include "ct.h"
#include "err.h"
#include "hex.h"
#include "ledger.h"
#include "relay_book.h"
#include "rmsg.h"
#include "rules.h"

/* The RESULT info text (no stdio in a core): strings and decimals appended while they
 * fit, always NUL-terminated. */
struct info {
	char *p;
	size_t cap, len;
};

static struct info info_at(struct svc_rl_rec *x)
{
	struct info t = { x->info, sizeof(x->info), 0 };

	x->info[0] = '\0';
	return t;
}

static void info_s(struct info *t, const char *s)
{
	while (*s != '\0' && t->len + 1 < t->cap)
		t->p[t->len++] = *s++;
	t->p[t->len] = '\0';
}

static void info_u(struct info *t, uint64_t v)
{
	char d[21];
	size_t n = sizeof(d) - 1;

	d[n] = '\0';
	do {
		d[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	info_s(t, d + n);
}

static int book_fatal(int rc)
{
	return rc == TB_E_DB || rc == TB_E_DB_CONFLICT || rc == TB_E_NOMEM || rc == TB_E_IO;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A debit receipt of this record's se, verified by the sam (bad_receipt unset). */
static int book_receipt(const struct svc_rl_rec *x, const uint8_t *receipt,
			struct svc_receipt *rc)
{
	if (x->bad_receipt || svc_receipt_parse(receipt, SVC_RECEIPT_LEN, rc) != 0)
		return TB_E_SRV_RECEIPT;
	if (rc->kind != SVC_TX_DEBIT || !ct_eq(rc->serial, x->serial, SVC_SERIAL_LEN))
		return TB_E_SRV_RECEIPT;
	return 0;
}

/* The money request of a verified debit receipt, keyed by the receipt itself. */
static int book_req(const struct svc_receipt *rc, uint32_t reader, const struct svc_rl_rec *x,
		    int64_t now, struct ledger_req *rq)
{
	memset(rq, 0, sizeof(*rq));
	memcpy(rq->se, rc->serial, sizeof(rq->se));
	rq->reader = reader;
	rq->service = x->service;
	rq->amount = rc->amount;
	rq->time = x->time;
	rq->now = now;
	return ledger_key_se(rc->serial, rc->counter, rq->key);
}

static int book_pay(struct db *db, uint32_t reader, struct svc_rl_rec *x,
		    const uint8_t *receipt, int64_t now)
{
	struct svc_receipt rc;
	struct ledger_req rq;
	struct ledger_reply out;
	int r;

	if ((r = book_receipt(x, receipt, &rc)) != 0 || (r = book_req(&rc, reader, x, now, &rq)) != 0)
		return r;
	if ((r = ledger_pay(db, &rq, &out)) != 0)
		return r;
	x->status = out.replayed ? RMSG_ST_REPLAY : RMSG_ST_BOOKED;
	x->amount = rc.amount;
	x->balance = rc.balance;
	{
		struct info t = info_at(x);

		info_s(&t, "balance=");
		info_u(&t, rc.balance);
	}
	return 0;
}

/* receipt(33) || n(1) || n x (item u32 || qty u16): the order at the service's prices,
 * whose total must be what the se paid. */
static int book_order(struct db *db, uint32_t reader, struct svc_rl_rec *x,
		      const uint8_t *body, int64_t now)
{
	struct db_order_item items[RMSG_ITEMS_MAX];
	struct svc_receipt rc;
	struct ledger_req rq;
	struct ledger_reply out;
	struct db_applied ap;
	uint64_t total = 0;
	size_t n;
	int r;

	if ((r = book_receipt(x, body, &rc)) != 0)
		return r;
	n = body[SVC_RECEIPT_LEN];
	if (n == 0 || n > RMSG_ITEMS_MAX || x->len != SVC_RECEIPT_LEN + 1 + 6 * n)
		return TB_E_SRV_ITEM;
	memset(items, 0, sizeof(items));
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = body + SVC_RECEIPT_LEN + 1 + 6 * i;

		items[i].item = be32(p);
		items[i].qty = (uint32_t)p[4] << 8 | p[5];
	}
	memset(&rq, 0, sizeof(rq));
	if ((r = ledger_key_reader(reader, x->seq, rq.key)) != 0 ||
	    (r = srv_order_create(db, rq.key, x->serial, x->service, items, n, now, &ap,
				  &total)) != 0)
		return r;
	x->amount = rc.amount;
	x->balance = rc.balance;
	if (ap.replayed) {
		x->status = RMSG_ST_REPLAY;
		struct info t = info_at(x);

		info_s(&t, "order ");
		info_u(&t, ap.id);
		return 0;
	}
	if (total != rc.amount)
		return TB_E_SRV_AMOUNT;
	if ((r = book_req(&rc, reader, x, now, &rq)) != 0 ||
	    (r = srv_order_pay(db, ap.id, &rq, &out)) != 0)
		return r;
	x->status = RMSG_ST_BOOKED;
	{
		struct info t = info_at(x);

		info_s(&t, "order ");
		info_u(&t, ap.id);
		info_s(&t, " balance=");
		info_u(&t, rc.balance);
	}
	return 0;
}

/* the ticket record after its use (21): id(8) first */
static int book_ticket(struct db *db, uint32_t reader, struct svc_rl_rec *x,
		       const uint8_t *body, int64_t now)
{
	char key[DB_KEY_MAX];
	uint64_t id = (uint64_t)be32(body) << 32 | be32(body + 4);
	uint32_t left = 0;
	int replayed = 0, r;

	if (x->len != SVC_TICKET_LEN)
		return TB_E_SRV_UNKNOWN_TICKET;
	if ((r = ledger_key_reader(reader, x->seq, key)) != 0 ||
	    (r = srv_ticket_use(db, key, reader, id, now, &left, &replayed)) != 0)
		return r;
	x->status = replayed ? RMSG_ST_REPLAY : RMSG_ST_BOOKED;
	{
		struct info t = info_at(x);

		info_s(&t, "ticket ");
		info_u(&t, id);
		info_s(&t, " uses-left=");
		info_u(&t, left);
	}
	return 0;
}

/* nonce(16) || amount(4) || [receipt]: what the reader did offline on a flag (flow 3).
 * With a receipt it is a payment; without, an identity check kept in the history. */
static int book_flag(struct db *db, uint32_t reader, struct svc_rl_rec *x,
		     const uint8_t *body, int64_t now)
{
	struct db_event ev, old;
	uint64_t id = 0;
	int r;

	if (x->len == RMSG_FLAG_LEN_NO_RECEIPT + SVC_RECEIPT_LEN)
		return book_pay(db, reader, x, body + RMSG_FLAG_LEN_NO_RECEIPT, now);
	if (x->len != RMSG_FLAG_LEN_NO_RECEIPT)
		return TB_E_SRV_RECEIPT;
	/* Keyed by the token's nonce, not the reader's sequence: a flag is used once, so the
	 * same nonce from another reader (or from another se) is a copied or rolled-back flag,
	 * refused; from the same reader it is that reader's record sent again. */
	memset(&ev, 0, sizeof(ev));
	memcpy(ev.key, "F:", 2);
	if ((r = hex_encode(body, 16, HEX_PUBLIC, ev.key + 2, sizeof(ev.key) - 2)) != 0)
		return r;
	r = db->ops->history_find(db, ev.key, &old);
	if (r == 0) {
		if (old.reader != reader || !ct_eq(old.se, x->serial, sizeof(old.se)))
			return TB_E_SRV_FLAG_REUSED;
		x->status = RMSG_ST_REPLAY;
		memcpy(x->info, "identity check", sizeof("identity check"));
		return 0;
	}
	if (r != TB_E_DB_NOT_FOUND)
		return r;
	ev.time = x->time;
	ev.kind = DB_EV_PAUTH;
	ev.has_se = 1;
	memcpy(ev.se, x->serial, sizeof(ev.se));
	ev.reader = reader;
	ev.service = x->service;
	if ((r = db->ops->history_add(db, &ev, &id)) != 0)
		return r;
	x->status = RMSG_ST_BOOKED;
	memcpy(x->info, "identity check", sizeof("identity check"));
	return 0;
}

/* The attributes in p the names allow, as "k=v;k=v" in out (whole pairs that fit; a
 * byte that is not printable, or is ';', shows as '?'). */
static void pauth_info(const struct db_pauth *p, const char (*names)[DB_ATTR_NAME_MAX],
		       size_t nn, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < p->n_attrs; i++) {
		const struct db_attr *a = &p->attrs[i];
		size_t nl = strnlen(a->name, DB_ATTR_NAME_MAX), need;
		int visible = 0;

		for (size_t j = 0; j < nn && !visible; j++)
			visible = strcmp(a->name, names[j]) == 0;
		need = (len > 0) + nl + 1 + a->len;
		if (!visible || len + need >= cap)
			continue;
		if (len > 0)
			out[len++] = ';';
		memcpy(out + len, a->name, nl);
		len += nl;
		out[len++] = '=';
		for (size_t k = 0; k < a->len; k++)
			out[len++] = a->value[k] >= 0x20 && a->value[k] < 0x7F && a->value[k] != ';'
					     ? (char)a->value[k]
					     : '?';
		out[len] = '\0';
	}
}

/* id(16) || card nonce(8) || challenge(16) || proof(16), its proof checked before the
 * batch (x->pauth, against the key the sam opened from the vault). Answered with what the
 * reader's class may see, the view kept in the history under R:<reader>:<seq> (once: a
 * resent record answers again without a second row). */
static int book_pauth(struct db *db, uint32_t reader, struct svc_rl_rec *x, int64_t now)
{
	static struct db_pauth p; /* 2.7 KiB; one loop thread books at a time */
	char names[DB_ATTRS_MAX][DB_ATTR_NAME_MAX];
	struct db_event ev, old;
	struct db_reader r;
	size_t nn = 0;
	int replayed, rc;

	if (x->pauth == SVC_PA_NO_KEY)
		return TB_E_VAULT_NO_PAUTH;
	if (x->pauth != SVC_PA_OK)
		return TB_E_VAULT_PROOF;
	memset(&ev, 0, sizeof(ev));
	if ((rc = ledger_key_reader(reader, x->seq, ev.key)) != 0)
		return rc;
	rc = db->ops->history_find(db, ev.key, &old);
	if (rc != 0 && rc != TB_E_DB_NOT_FOUND)
		return rc;
	replayed = rc == 0;
	if (replayed && (old.kind != DB_EV_PAUTH || !ct_eq(old.se, x->serial, DB_SERIAL_LEN)))
		return TB_E_DB_CONFLICT;
	if ((rc = srv_reader_check(db, reader, &r)) != 0 || (rc = srv_se_check(db, x->serial, NULL)) != 0)
		return rc;
	rc = db->ops->pauth_get(db, x->serial, &p);
	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_VAULT_NO_PAUTH;
	if (rc == 0)
		rc = db->ops->pauth_visible_get(db, r.reader_class, names, DB_ATTRS_MAX, &nn);
	if (rc == 0 && !replayed) {
		ev.time = now;
		ev.kind = DB_EV_PAUTH;
		ev.has_se = 1;
		memcpy(ev.se, x->serial, sizeof(ev.se));
		ev.reader = reader;
		ev.service = x->service;
		rc = db->ops->history_add(db, &ev, NULL);
	}
	if (rc == 0) {
		pauth_info(&p, (const char(*)[DB_ATTR_NAME_MAX])names, nn, x->info, sizeof(x->info));
		x->status = replayed ? RMSG_ST_REPLAY : RMSG_ST_BOOKED;
	}
	ct_wipe(&p, sizeof(p)); /* personal data: not left behind */
	return rc;
}

/* Why ledger_refund would refuse the payment under paid (TB_E_SRV_REFUND), told apart for
 * the reader: 0 when it is a payment of this se and service with room for amount. */
static int refund_why(struct db *db, const struct svc_rl_rec *x, const char *paid,
		      uint32_t amount)
{
	struct db_transfer t;
	struct db_applied ap;
	int64_t done = 0;
	int rc = db->ops->transfer_get(db, paid, &t, &ap);

	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_REFUND_NOT_PAID;
	if (rc != 0)
		return rc;
	if (t.kind != DB_XFER_PAY || !t.has_se || !ct_eq(t.se, x->serial, DB_SERIAL_LEN) ||
	    t.service != x->service)
		return TB_E_REFUND_NOT_PAID;
	if ((rc = db->ops->refunded_sum(db, ap.id, &done)) != 0)
		return rc;
	return done + (int64_t)amount > (int64_t)t.amount ? TB_E_REFUND_OVER : 0;
}

/* paid key || amount(4): revenue -> this se's purse under R:<reader>:<seq>. The se gets
 * the money afterwards, through the server's own channel (svc_refund.c): "credit pending". */
static int book_refund(struct db *db, uint32_t reader, struct svc_rl_rec *x,
		       const uint8_t *body, int64_t now)
{
	char paid[DB_KEY_MAX];
	struct ledger_req rq;
	struct ledger_reply out;
	struct db_transfer t;
	struct db_applied ap;
	const char *key;
	size_t key_n;
	uint32_t amount;
	int r;

	if (rmsg_refund_dec(body, x->len, &key, &key_n, &amount) != 0 || key_n >= sizeof(paid))
		return TB_E_REFUND_NOT_PAID;
	memcpy(paid, key, key_n);
	paid[key_n] = '\0';
	memset(&rq, 0, sizeof(rq));
	if ((r = ledger_key_reader(reader, x->seq, rq.key)) != 0)
		return r;
	/* A resent record replays whatever the payment's room is now (ledger_refund). */
	r = db->ops->transfer_get(db, rq.key, &t, &ap);
	if (r == TB_E_DB_NOT_FOUND)
		r = refund_why(db, x, paid, amount);
	if (r != 0)
		return r;
	memcpy(rq.se, x->serial, sizeof(rq.se));
	rq.reader = reader;
	rq.service = x->service;
	rq.amount = amount;
	rq.time = x->time;
	rq.now = now;
	if ((r = ledger_refund(db, &rq, paid, &out)) != 0)
		return r;
	x->status = out.replayed ? RMSG_ST_REPLAY : RMSG_ST_BOOKED;
	x->amount = amount;
	x->balance = out.balance;
	{
		struct info t2 = info_at(x);

		info_s(&t2, "refund ");
		info_u(&t2, amount);
		info_s(&t2, ", credit pending");
	}
	return 0;
}

int relay_book(struct db *db, uint32_t reader, struct svc_rl_rec *x, const uint8_t *body,
	       int64_t now)
{
	int r, r2;

	x->status = RMSG_ST_REFUSED;
	if ((r = db_req_begin(db)) != 0)
		return r;
	switch (x->kind) {
	case RMSG_K_PAY:
		r2 = x->len == SVC_RECEIPT_LEN ? book_pay(db, reader, x, body, now) : TB_E_SRV_RECEIPT;
		break;
	case RMSG_K_ORDER:
		r2 = x->len > SVC_RECEIPT_LEN ? book_order(db, reader, x, body, now) : TB_E_SRV_ITEM;
		break;
	case RMSG_K_TICKET:
		r2 = book_ticket(db, reader, x, body, now);
		break;
	case RMSG_K_FLAG:
		r2 = book_flag(db, reader, x, body, now);
		break;
	case RMSG_K_PAUTH:
		r2 = book_pauth(db, reader, x, now);
		break;
	case RMSG_K_REFUND:
		r2 = book_refund(db, reader, x, body, now);
		break;
	default:
		r2 = TB_E_UNSUPPORTED;
		break;
	}
	r = db_req_end(db, r2 == 0);
	if (r2 != 0) {
		x->status = RMSG_ST_REFUSED;
		struct info t = info_at(x);

		info_s(&t, tb_strerror(r2));
		return book_fatal(r2) ? r2 : 0;
	}
	return r;
}

/* ------------------------------------------------- refund credits due --- */

/* "<prefix><transfer id, 16 hex>": C: the credit done, CB: the credit begun. */
static int xfer_key(const char *prefix, uint64_t xfer, char key[DB_KEY_MAX])
{
	size_t p = strlen(prefix);
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(xfer >> (56 - 8 * i));
	memcpy(key, prefix, p);
	return hex_encode(b, sizeof(b), HEX_PUBLIC, key + p, DB_KEY_MAX - p);
}

int relay_refund_due(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct relay_due *out)
{
	static struct db_event ev[RELAY_DUE_SCAN]; /* one loop thread books at a time */
	struct db_event old;
	char key[DB_KEY_MAX];
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = db->ops->history_by_se(db, serial, 0, ev, RELAY_DUE_SCAN, &n)) != 0)
		return rc;
	/* newest first: the last one found is the oldest due */
	for (size_t i = 0; i < n; i++) {
		if (ev[i].kind != DB_EV_REFUND || ev[i].key[0] != '\0' || ev[i].ref == 0 ||
		    ev[i].amount <= 0 || ev[i].amount > (int64_t)LEDGER_AMOUNT_MAX)
			continue;
		if ((rc = xfer_key("C:", ev[i].ref, key)) != 0)
			return rc;
		rc = db->ops->history_find(db, key, &old);
		if (rc == 0)
			continue;
		if (rc != TB_E_DB_NOT_FOUND)
			return rc;
		out->xfer = ev[i].ref;
		out->amount = (uint32_t)ev[i].amount;
		out->service = ev[i].service;
		out->reader = ev[i].reader;
	}
	return 0;
}

/* A history row of d for this se under key (kind CREDIT): the mark (amount, ref = the
 * receipt's counter) or the begin (amount 0, ref = the counter before the CREDIT). */
static int credit_row(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
		      const struct relay_due *d, const char key[DB_KEY_MAX], int64_t amount,
		      uint32_t ref, int64_t now)
{
	struct db_event ev;

	memset(&ev, 0, sizeof(ev));
	memcpy(ev.key, key, DB_KEY_MAX);
	ev.time = now;
	ev.kind = DB_EV_CREDIT;
	ev.has_se = 1;
	memcpy(ev.se, serial, sizeof(ev.se));
	ev.reader = d->reader;
	ev.service = d->service;
	ev.amount = amount;
	ev.ref = ref;
	return db->ops->history_add(db, &ev, NULL);
}

int relay_refund_credited(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
			  const struct relay_due *d, uint32_t counter, int64_t now, int *replayed)
{
	struct db_event old;
	char key[DB_KEY_MAX];
	int rc, r2;

	*replayed = 0;
	if ((rc = xfer_key("C:", d->xfer, key)) != 0)
		return rc;
	if ((rc = db_req_begin(db)) != 0)
		return rc;
	r2 = db->ops->history_find(db, key, &old);
	if (r2 == 0)
		*replayed = 1;
	else if (r2 == TB_E_DB_NOT_FOUND)
		r2 = credit_row(db, serial, d, key, d->amount, counter, now);
	rc = db_req_end(db, r2 == 0);
	return r2 != 0 ? r2 : rc;
}

uint8_t relay_refund_decide(int done, int begun, uint32_t c0, uint32_t counter)
{
	if (done)
		return RELAY_CREDIT_DONE;
	/* The CREDIT is the channel's command right after the purse read that gave c0: had
	 * the se applied it, its counter moved. An operator settles the rare case where the
	 * CREDIT never arrived and something else moved the purse (docs/services.md). */
	if (begun && counter != c0)
		return RELAY_CREDIT_APPLIED;
	return RELAY_CREDIT_SEND;
}

/* The C: and CB: rows of d: done, begun and at which counter. */
static int credit_state(struct db *db, const char done_key[DB_KEY_MAX],
			const char begin_key[DB_KEY_MAX], int *done, int *begun, uint32_t *c0)
{
	struct db_event old;
	int rc = db->ops->history_find(db, done_key, &old);

	*done = rc == 0;
	*begun = 0;
	*c0 = 0;
	if (rc != TB_E_DB_NOT_FOUND)
		return rc;
	rc = db->ops->history_find(db, begin_key, &old);
	if (rc == TB_E_DB_NOT_FOUND)
		return 0;
	*begun = rc == 0;
	*c0 = (uint32_t)old.ref;
	return rc;
}

int relay_refund_begin(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
		       const struct relay_due *d, uint32_t counter, int64_t now, uint8_t *step)
{
	char done_key[DB_KEY_MAX], begin_key[DB_KEY_MAX];
	int done = 0, begun = 0, rc, r2;
	uint32_t c0 = 0;
	uint8_t s = 0;

	*step = 0;
	if ((rc = xfer_key("C:", d->xfer, done_key)) != 0 ||
	    (rc = xfer_key("CB:", d->xfer, begin_key)) != 0)
		return rc;
	if ((rc = db_req_begin(db)) != 0)
		return rc;
	r2 = credit_state(db, done_key, begin_key, &done, &begun, &c0);
	if (r2 == 0) {
		s = relay_refund_decide(done, begun, c0, counter);
		if (s == RELAY_CREDIT_SEND && !begun)
			r2 = credit_row(db, serial, d, begin_key, 0, counter, now);
		else if (s == RELAY_CREDIT_APPLIED)
			r2 = credit_row(db, serial, d, done_key, d->amount, c0 + 1, now);
	}
	rc = db_req_end(db, r2 == 0);
	if (r2 == 0 && rc == 0)
		*step = s;
	return r2 != 0 ? r2 : rc;
}
