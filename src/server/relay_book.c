/* relay_book.c - a reader's record, proved by its channel, booked through the service
 * rules: payments from se receipts, orders, ticket uses, flag uses (docs/flows.md).
 * What stays true: each record is one savepoint of the caller's batch; a rule refusal
 * books nothing and is final (status 2), a replay answers status 1 and books nothing
 * again, and only a database failure spoils the batch (the reader retries later). */
#include <stdio.h>
#include <string.h>

#include "ct.h"
#include "err.h"
#include "ledger.h"
#include "relay_book.h"
#include "rmsg.h"
#include "rules.h"

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

static int book_pay(struct db *db, uint32_t reader, struct svc_rl_rec *x,
		    const uint8_t *receipt, int64_t now)
{
	struct svc_receipt rc;
	struct ledger_req rq;
	struct ledger_reply out;
	int r;

	if ((r = book_receipt(x, receipt, &rc)) != 0)
		return r;
	memset(&rq, 0, sizeof(rq));
	if ((r = ledger_key_se(rc.serial, rc.counter, rq.key)) != 0)
		return r;
	memcpy(rq.se, rc.serial, sizeof(rq.se));
	rq.reader = reader;
	rq.service = x->service;
	rq.amount = rc.amount;
	rq.time = x->time;
	rq.now = now;
	if ((r = ledger_pay(db, &rq, &out)) != 0)
		return r;
	x->status = out.replayed ? RMSG_ST_REPLAY : RMSG_ST_BOOKED;
	x->amount = rc.amount;
	x->balance = rc.balance;
	(void)snprintf(x->info, sizeof(x->info), "balance=%u", rc.balance);
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
		(void)snprintf(x->info, sizeof(x->info), "order %llu", (unsigned long long)ap.id);
		return 0;
	}
	if (total != rc.amount)
		return TB_E_SRV_AMOUNT;
	if ((r = ledger_key_se(rc.serial, rc.counter, rq.key)) != 0)
		return r;
	memcpy(rq.se, rc.serial, sizeof(rq.se));
	rq.reader = reader;
	rq.service = x->service;
	rq.amount = rc.amount;
	rq.time = x->time;
	rq.now = now;
	if ((r = srv_order_pay(db, ap.id, &rq, &out)) != 0)
		return r;
	x->status = RMSG_ST_BOOKED;
	(void)snprintf(x->info, sizeof(x->info), "order %llu balance=%u",
		       (unsigned long long)ap.id, rc.balance);
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
	(void)snprintf(x->info, sizeof(x->info), "ticket %llu uses-left=%u",
		       (unsigned long long)id, left);
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
	memset(&ev, 0, sizeof(ev));
	if ((r = ledger_key_reader(reader, x->seq, ev.key)) != 0)
		return r;
	r = db->ops->history_find(db, ev.key, &old);
	if (r == 0) {
		x->status = RMSG_ST_REPLAY;
		(void)snprintf(x->info, sizeof(x->info), "identity check");
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
	(void)snprintf(x->info, sizeof(x->info), "identity check");
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
	default: /* PAUTH online: the server holds no verifier for the proof yet */
		r2 = TB_E_UNSUPPORTED;
		break;
	}
	r = db_req_end(db, r2 == 0);
	if (r2 != 0) {
		x->status = RMSG_ST_REFUSED;
		(void)snprintf(x->info, sizeof(x->info), "%s", tb_strerror(r2));
		return book_fatal(r2) ? r2 : 0;
	}
	return r;
}
