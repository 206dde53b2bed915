/* ledger.c - e-money rules: every movement is one transfer whose postings sum to zero,
 * keyed by the record that caused it. The rules check before they write (no negative
 * purse, known and active parties); the database checks again (its CHECK and its
 * sum-zero rule), so a bug here cannot mint or lose money, only be refused. */
#include <string.h>

#include "bytes.h"
#include "ct.h"
#include "err.h"
#include "hex.h"
#include "ledger.h"
#include "rules.h"

/* tag, then hex of a, then ":" and hex of b when bn > 0. */
static int fmt_key(char *out, size_t cap, const char *tag, const uint8_t *a, size_t an,
		   const uint8_t *b, size_t bn)
{
	size_t tn = strlen(tag), need = tn + 2 * an + (bn > 0 ? 1 + 2 * bn : 0) + 1;
	size_t at = tn + 2 * an;

	if (need > cap)
		return TB_E_NOSPACE;
	memcpy(out, tag, tn);
	if (hex_encode(a, an, HEX_PUBLIC, out + tn, cap - tn) != 0)
		return TB_E_INTERNAL;
	if (bn > 0) {
		out[at] = ':';
		if (hex_encode(b, bn, HEX_PUBLIC, out + at + 1, cap - at - 1) != 0)
			return TB_E_INTERNAL;
	}
	return 0;
}

static void be32(uint32_t v, uint8_t out[4])
{
	struct wr w = wr_init(out, 4);

	(void)wr_u32be(&w, v);
}

int ledger_key_reader(uint32_t reader, uint32_t seq, char key[DB_KEY_MAX])
{
	uint8_t r[4], q[4];

	be32(reader, r);
	be32(seq, q);
	return fmt_key(key, DB_KEY_MAX, "R:", r, 4, q, 4);
}

int ledger_key_se(const uint8_t serial[DB_SERIAL_LEN], uint32_t counter, char key[DB_KEY_MAX])
{
	uint8_t c[4];

	be32(counter, c);
	return fmt_key(key, DB_KEY_MAX, "S:", serial, DB_SERIAL_LEN, c, 4);
}

int ledger_key_move(const uint8_t serial[DB_SERIAL_LEN], char key[DB_KEY_MAX])
{
	return fmt_key(key, DB_KEY_MAX, "M:", serial, DB_SERIAL_LEN, NULL, 0);
}

int ledger_name_purse(const uint8_t serial[DB_SERIAL_LEN], char name[DB_NAME_MAX])
{
	return fmt_key(name, DB_NAME_MAX, "P:", serial, DB_SERIAL_LEN, NULL, 0);
}

int ledger_name_revenue(uint32_t service, char name[DB_NAME_MAX])
{
	uint8_t s[4];

	be32(service, s);
	return fmt_key(name, DB_NAME_MAX, "V:", s, 4, NULL, 0);
}

/* ------------------------------------------------------------ helpers --- */

/* The account `name`, opened (empty) when missing. */
static int account_use(struct db *db, uint8_t kind, const char *name, struct db_account *a)
{
	int rc = db->ops->account_get(db, name, a);

	if (rc == 0)
		return a->kind == kind ? 0 : TB_E_DB_CONFLICT;
	if (rc != TB_E_DB_NOT_FOUND)
		return rc;
	memset(a, 0, sizeof(*a));
	rc = db->ops->account_open(db, kind, name, &a->id);
	if (rc != 0)
		return rc;
	a->kind = kind;
	memcpy(a->name, name, strlen(name) + 1);
	return 0;
}

static int req_ok(const struct ledger_req *rq)
{
	size_t n = strnlen(rq->key, DB_KEY_MAX);

	if (n == 0 || n == DB_KEY_MAX)
		return TB_E_INVAL;
	if (rq->amount == 0 || rq->amount > LEDGER_AMOUNT_MAX)
		return TB_E_SRV_AMOUNT;
	return 0;
}

/* A rule's refusal, as opposed to a failure of the database. */
static int is_refusal(int rc)
{
	return rc <= TB_E_SRV_AMOUNT && rc >= TB_E_SRV_UNKNOWN_ORDER;
}

/* A refused record may still be the replay of one applied before the cause of the
 * refusal (a lock, a spent balance): then the first answer stands. */
static int replay_or(struct db *db, uint8_t kind, const struct ledger_req *rq, int refusal,
		     struct ledger_reply *out)
{
	struct db_transfer t;
	struct db_applied ap;
	int rc;

	if (!is_refusal(refusal))
		return refusal;
	rc = db->ops->transfer_get(db, rq->key, &t, &ap);
	if (rc == TB_E_DB_NOT_FOUND)
		return refusal;
	if (rc != 0)
		return rc;
	if (t.kind != kind || t.amount != rq->amount || !t.has_se ||
	    !ct_eq(t.se, rq->se, DB_SERIAL_LEN) || t.reader != rq->reader ||
	    t.service != rq->service || t.rec_time != rq->time)
		return TB_E_DB_CONFLICT;
	out->transfer_id = ap.id;
	out->replayed = 1;
	out->balance = ap.result;
	return 0;
}

/* Reader (when one took the record), se, service: the order of the refusals. */
static int parties_check(struct db *db, const struct ledger_req *rq, unsigned kinds)
{
	int rc = 0;

	if (rq->reader != 0)
		rc = srv_reader_check(db, rq->reader, NULL);
	if (rc == 0)
		rc = srv_se_check(db, rq->se, NULL);
	if (rc == 0)
		rc = srv_service_check(db, rq->service, kinds, NULL);
	return rc;
}

static void transfer_init(struct db_transfer *t, uint8_t kind, const struct ledger_req *rq)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->key, rq->key, sizeof(t->key));
	t->kind = kind;
	t->amount = rq->amount;
	t->has_se = 1;
	memcpy(t->se, rq->se, DB_SERIAL_LEN);
	t->reader = rq->reader;
	t->service = rq->service;
	t->rec_time = rq->time;
	t->now = rq->now;
	t->n_legs = 2;
}

/* Applies t; a fresh one gets its history row. */
static int apply(struct db *db, const struct db_transfer *t, uint8_t ev_kind,
		 struct ledger_reply *out)
{
	struct db_applied ap;
	struct db_event ev;
	int rc = db->ops->transfer_apply(db, t, &ap);

	if (rc != 0)
		return rc;
	if (!ap.replayed) {
		memset(&ev, 0, sizeof(ev));
		ev.time = t->now;
		ev.kind = ev_kind;
		ev.has_se = t->has_se;
		memcpy(ev.se, t->se, DB_SERIAL_LEN);
		ev.reader = t->reader;
		ev.service = t->service;
		ev.amount = t->amount;
		ev.ref = ap.id; /* the key stays in the transfer: no second unique index */
		rc = db->ops->history_add(db, &ev, NULL);
		if (rc != 0)
			return rc;
	}
	out->transfer_id = ap.id;
	out->replayed = ap.replayed;
	out->balance = ap.result;
	return 0;
}

/* -------------------------------------------------------------- rules --- */

int ledger_topup(struct db *db, const struct ledger_req *rq, struct ledger_reply *out)
{
	char pname[DB_NAME_MAX];
	struct db_account purse, flt;
	struct db_transfer t;
	int rc = req_ok(rq);

	if (rc != 0)
		return rc;
	rc = parties_check(db, rq, SRV_KIND(DB_SVC_EMONEY));
	if (rc == 0)
		rc = ledger_name_purse(rq->se, pname);
	if (rc == 0)
		rc = account_use(db, DB_ACCT_PURSE, pname, &purse);
	if (rc == 0 && purse.balance > LEDGER_BALANCE_MAX - (int64_t)rq->amount)
		rc = TB_E_SRV_LIMIT;
	if (rc != 0)
		return replay_or(db, DB_XFER_TOPUP, rq, rc, out);
	rc = account_use(db, DB_ACCT_FLOAT, LEDGER_FLOAT, &flt);
	if (rc != 0)
		return rc;
	transfer_init(&t, DB_XFER_TOPUP, rq);
	t.legs[0].account = flt.id;
	t.legs[0].amount = -(int64_t)rq->amount;
	t.legs[1].account = purse.id;
	t.legs[1].amount = rq->amount;
	t.result = purse.balance + rq->amount;
	return apply(db, &t, DB_EV_TOPUP, out);
}

int ledger_pay(struct db *db, const struct ledger_req *rq, struct ledger_reply *out)
{
	char pname[DB_NAME_MAX], vname[DB_NAME_MAX];
	struct db_account purse, rev;
	struct db_transfer t;
	int rc = req_ok(rq);

	if (rc != 0)
		return rc;
	rc = parties_check(db, rq, SRV_KIND(DB_SVC_EMONEY) | SRV_KIND(DB_SVC_TICKET) |
				   SRV_KIND(DB_SVC_ECOMMERCE));
	if (rc == 0)
		rc = ledger_name_purse(rq->se, pname);
	if (rc == 0)
		rc = account_use(db, DB_ACCT_PURSE, pname, &purse);
	if (rc == 0 && purse.balance < (int64_t)rq->amount)
		rc = TB_E_SRV_FUNDS;
	if (rc != 0)
		return replay_or(db, DB_XFER_PAY, rq, rc, out);
	rc = ledger_name_revenue(rq->service, vname);
	if (rc == 0)
		rc = account_use(db, DB_ACCT_REVENUE, vname, &rev);
	if (rc != 0)
		return rc;
	transfer_init(&t, DB_XFER_PAY, rq);
	t.legs[0].account = purse.id;
	t.legs[0].amount = -(int64_t)rq->amount;
	t.legs[1].account = rev.id;
	t.legs[1].amount = rq->amount;
	t.result = purse.balance - rq->amount;
	return apply(db, &t, DB_EV_PAY, out);
}

/* The refunded payment: a PAY of this se at this service with room for amount. */
static int refund_target(struct db *db, const struct ledger_req *rq, const char *paid_key,
			 uint64_t *paid_id)
{
	struct db_transfer paid;
	struct db_applied ap;
	int64_t done = 0;
	int rc = db->ops->transfer_get(db, paid_key, &paid, &ap);

	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_REFUND;
	if (rc != 0)
		return rc;
	if (paid.kind != DB_XFER_PAY || !paid.has_se || !ct_eq(paid.se, rq->se, DB_SERIAL_LEN) ||
	    paid.service != rq->service)
		return TB_E_SRV_REFUND;
	rc = db->ops->refunded_sum(db, ap.id, &done);
	if (rc != 0)
		return rc;
	if (done + (int64_t)rq->amount > (int64_t)paid.amount)
		return TB_E_SRV_REFUND;
	*paid_id = ap.id;
	return 0;
}

int ledger_refund(struct db *db, const struct ledger_req *rq, const char *paid_key,
		  struct ledger_reply *out)
{
	char pname[DB_NAME_MAX], vname[DB_NAME_MAX];
	struct db_account purse, rev;
	struct db_transfer t;
	struct db_se se;
	uint64_t paid_id = 0;
	int rc = req_ok(rq);

	if (rc != 0)
		return rc;
	if (paid_key == NULL || strnlen(paid_key, DB_KEY_MAX) == DB_KEY_MAX)
		return TB_E_INVAL;
	if (rq->reader != 0)
		rc = srv_reader_check(db, rq->reader, NULL);
	/* Money may go back to a locked wallet; a lost one has handed its purse on. */
	rc = rc != 0 ? rc : srv_se_check(db, rq->se, &se);
	if (rc == TB_E_SRV_LOCKED)
		rc = 0;
	if (rc == 0)
		rc = refund_target(db, rq, paid_key, &paid_id);
	if (rc == 0)
		rc = ledger_name_purse(rq->se, pname);
	if (rc == 0)
		rc = ledger_name_revenue(rq->service, vname);
	if (rc == 0)
		rc = account_use(db, DB_ACCT_PURSE, pname, &purse);
	if (rc == 0 && purse.balance > LEDGER_BALANCE_MAX - (int64_t)rq->amount)
		rc = TB_E_SRV_LIMIT;
	if (rc != 0)
		return replay_or(db, DB_XFER_REFUND, rq, rc, out);
	rc = account_use(db, DB_ACCT_REVENUE, vname, &rev);
	if (rc != 0)
		return rc;
	transfer_init(&t, DB_XFER_REFUND, rq);
	t.refund_of = paid_id;
	t.legs[0].account = rev.id;
	t.legs[0].amount = -(int64_t)rq->amount;
	t.legs[1].account = purse.id;
	t.legs[1].amount = rq->amount;
	t.result = purse.balance + rq->amount;
	return apply(db, &t, DB_EV_REFUND, out);
}

int ledger_move(struct db *db, const uint8_t from[DB_SERIAL_LEN], const uint8_t to[DB_SERIAL_LEN],
		int64_t now, struct ledger_reply *out)
{
	char key[DB_KEY_MAX], fname[DB_NAME_MAX], tname[DB_NAME_MAX];
	struct db_account src, dst;
	struct db_transfer t;
	struct db_applied ap;
	struct db_event ev;
	struct db_se old;
	int rc;

	rc = ledger_key_move(from, key);
	if (rc == 0)
		rc = db->ops->transfer_get(db, key, NULL, &ap);
	if (rc == 0) {
		out->transfer_id = ap.id;
		out->replayed = 1;
		out->balance = ap.result;
		return 0;
	}
	if (rc != TB_E_DB_NOT_FOUND)
		return rc;
	rc = db->ops->se_get(db, from, &old);
	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_UNKNOWN_SE;
	if (rc != 0)
		return rc;
	if (old.state != DB_SE_LOST || !old.has_replaced_by ||
	    !ct_eq(old.replaced_by, to, DB_SERIAL_LEN))
		return TB_E_SRV_STATE;
	rc = srv_se_check(db, to, NULL);
	if (rc == 0)
		rc = ledger_name_purse(from, fname);
	if (rc == 0)
		rc = ledger_name_purse(to, tname);
	if (rc == 0)
		rc = db->ops->account_get(db, fname, &src);
	if (rc == TB_E_DB_NOT_FOUND || (rc == 0 && src.balance == 0)) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	if (rc == 0 && (src.balance < 0 || src.balance > UINT32_MAX))
		rc = TB_E_INTERNAL;
	if (rc == 0)
		rc = account_use(db, DB_ACCT_PURSE, tname, &dst);
	if (rc != 0)
		return rc;
	memset(&t, 0, sizeof(t));
	memcpy(t.key, key, sizeof(t.key));
	t.kind = DB_XFER_MOVE;
	t.amount = (uint32_t)src.balance;
	t.has_se = 1;
	memcpy(t.se, to, DB_SERIAL_LEN);
	t.rec_time = now;
	t.now = now;
	t.n_legs = 2;
	t.legs[0].account = src.id;
	t.legs[0].amount = -src.balance;
	t.legs[1].account = dst.id;
	t.legs[1].amount = src.balance;
	t.result = dst.balance + src.balance;
	rc = apply(db, &t, DB_EV_MOVE, out);
	if (rc != 0 || out->replayed)
		return rc;
	/* The old se's history shows the money leaving too. */
	memset(&ev, 0, sizeof(ev));
	ev.time = now;
	ev.kind = DB_EV_MOVE;
	ev.has_se = 1;
	memcpy(ev.se, from, DB_SERIAL_LEN);
	ev.amount = -src.balance;
	ev.ref = out->transfer_id;
	return db->ops->history_add(db, &ev, NULL);
}

int ledger_balance(struct db *db, const uint8_t serial[DB_SERIAL_LEN], int64_t *balance)
{
	char name[DB_NAME_MAX];
	struct db_account a;
	int rc = ledger_name_purse(serial, name);

	if (rc == 0)
		rc = db->ops->account_get(db, name, &a);
	if (rc == TB_E_DB_NOT_FOUND) {
		*balance = 0;
		return 0;
	}
	if (rc == 0)
		*balance = a.balance;
	return rc;
}
