/* test_relay_book.c - booking relayed reader records (src/server/relay_book.c) against a
 * SQLite database: a payment once and its replay, a receipt the sam refused, a credit
 * receipt or another se's receipt, an order whose total does not match, a ticket used up,
 * an identity check kept once, an unknown reader; online personal authentication: the
 * proof of a real se core checked against its key (svc_pauth_check), the attributes the
 * reader's class may see, a replay, a failed proof, no key, deleted personal data;
 * refunds: booked once, a replay, more than paid, another se's payment, a lost se, and
 * the credits due to the se (relay_refund_due / relay_refund_credited), each begun at the
 * se's counter and never sent twice (relay_refund_decide / relay_refund_begin). */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "err.h"
#include "io/db_io.h"
#include "rmsg.h"
#include "server/ledger.h"
#include "server/relay_book.h"
#include "server/rules.h"
#include "se_rig.h"

static const uint8_t SE_A[8] = { 0x20, 0, 0, 0, 0, 0, 0, 0x0A };
static const uint8_t SE_B[8] = { 0x20, 0, 0, 0, 0, 0, 0, 0x0B };
enum { RDR = 7, SVC_MONEY = 1, SVC_TICKET = 2, SVC_SHOP = 4 };

static char g_path[64];

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A receipt as the se writes it (the MAC is the sam's business: bad_receipt says). */
static void receipt(uint8_t r[33], const uint8_t serial[8], uint32_t counter, uint8_t kind,
		    uint32_t amount, uint32_t bal)
{
	memset(r, 0, 33);
	memcpy(r, serial, 8);
	be32(r + 8, counter);
	r[12] = kind;
	be32(r + 13, amount);
	be32(r + 17, bal);
	r[21] = 0x11;
}

static int in_batch(struct db *db, struct svc_rl_rec *x, const uint8_t *body, uint32_t reader)
{
	int rc;

	assert_int_equal(db_batch_begin(db), 0);
	rc = relay_book(db, reader, x, body, 5000);
	assert_int_equal(db_batch_commit(db), 0);
	return rc;
}

static struct svc_rl_rec rec(uint8_t kind, uint32_t seq, uint32_t service, const uint8_t se[8],
			     size_t len)
{
	struct svc_rl_rec x;

	memset(&x, 0, sizeof(x));
	x.kind = kind;
	x.seq = seq;
	x.time = 4000;
	x.service = service;
	memcpy(x.serial, se, 8);
	x.len = (uint16_t)len;
	return x;
}

static int setup(void **state)
{
	static const struct db_price shop[] = { { 1, 300 }, { 2, 450 } };
	struct db_reader r = { RDR, 0x31, 1, DB_READER_ACTIVE, 0 };
	struct db_service sv;
	struct ledger_req rq;
	struct ledger_reply rep;
	struct db *db = NULL;
	int rc;

	snprintf(g_path, sizeof(g_path), "test_relay_book-%d.db", (int)getpid());
	unlink(g_path);
	assert_int_equal(db_open(g_path, &db), 0);
	assert_int_equal(db->ops->reader_add(db, &r), 0);
	memset(&sv, 0, sizeof(sv));
	sv.id = SVC_MONEY;
	sv.kind = DB_SVC_EMONEY;
	snprintf(sv.name, sizeof(sv.name), "purse");
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	sv.id = SVC_TICKET;
	sv.kind = DB_SVC_TICKET;
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	sv.id = SVC_SHOP;
	sv.kind = DB_SVC_ECOMMERCE;
	sv.n_prices = 2;
	memcpy(sv.prices, shop, sizeof(shop));
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(srv_se_register(db, SE_A, 1), 0);
	assert_int_equal(srv_se_register(db, SE_B, 1), 0);
	memset(&rq, 0, sizeof(rq));
	memcpy(rq.se, SE_A, 8);
	rq.service = SVC_MONEY;
	rq.amount = 1000;
	rq.time = rq.now = 1;
	assert_int_equal(ledger_key_se(SE_A, 1, rq.key), 0);
	rc = ledger_topup(db, &rq, &rep);
	assert_int_equal(db_req_end(db, rc == 0), 0);
	assert_int_equal(rc, 0);
	assert_int_equal(db_batch_commit(db), 0);
	*state = db;
	return 0;
}

static int teardown(void **state)
{
	db_close(*state);
	unlink(g_path);
	return 0;
}

static int64_t bal(struct db *db, const uint8_t se[8])
{
	int64_t b = -1;

	assert_int_equal(ledger_balance(db, se, &b), 0);
	return b;
}

static void test_pay_once(void **state)
{
	struct db *db = *state;
	uint8_t r[33];
	struct svc_rl_rec x = rec(RMSG_K_PAY, 1, SVC_MONEY, SE_A, 33);

	receipt(r, SE_A, 2, 0x02, 300, 700);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_int_equal(x.amount, 300);
	assert_string_equal(x.info, "balance=700");
	assert_int_equal(bal(db, SE_A), 700);
	/* the same receipt again (a RESULT lost on the way): booked before, nothing moves */
	x = rec(RMSG_K_PAY, 2, SVC_MONEY, SE_A, 33);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REPLAY);
	assert_int_equal(bal(db, SE_A), 700);
}

static void test_pay_refusals(void **state)
{
	struct db *db = *state;
	uint8_t r[33];
	struct svc_rl_rec x = rec(RMSG_K_PAY, 3, SVC_MONEY, SE_A, 33);

	receipt(r, SE_A, 3, 0x02, 100, 900);
	x.bad_receipt = 1; /* the sam refused its MAC */
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	receipt(r, SE_A, 3, 0x01, 100, 1100); /* a credit is no payment */
	x = rec(RMSG_K_PAY, 4, SVC_MONEY, SE_A, 33);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	receipt(r, SE_B, 3, 0x02, 100, 0); /* another se's receipt in this se's record */
	x = rec(RMSG_K_PAY, 5, SVC_MONEY, SE_A, 33);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	receipt(r, SE_B, 3, 0x02, 100, 0); /* SE_B's ledger purse is empty: never negative */
	x = rec(RMSG_K_PAY, 6, SVC_MONEY, SE_B, 33);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_non_null(strstr(x.info, "balance too low"));
	receipt(r, SE_A, 3, 0x02, 100, 900); /* an unknown reader */
	x = rec(RMSG_K_PAY, 7, SVC_MONEY, SE_A, 33);
	assert_int_equal(in_batch(db, &x, r, 99), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_int_equal(bal(db, SE_A), 1000);
	assert_int_equal(bal(db, SE_B), 0);
	/* online personal authentication without a checked proof: refused, never booked */
	x = rec(RMSG_K_PAUTH, 8, SVC_MONEY, SE_A, 56);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_string_equal(x.info, "proof failed");
}

/* A REFUND record's body: key || amount. */
static size_t refund_body(uint8_t *b, const char *key, uint32_t amount)
{
	size_t n = strlen(key);

	memcpy(b, key, n);
	be32(b + n, amount);
	return n + 4;
}

static void test_refund(void **state)
{
	struct db *db = *state;
	uint8_t r[33], b[64];
	char paid[DB_KEY_MAX], other[DB_KEY_MAX];
	struct svc_rl_rec x = rec(RMSG_K_PAY, 1, SVC_MONEY, SE_A, 33);
	struct relay_due due;
	struct db_event ev[8];
	size_t n = 0, refunds = 0;
	int replayed = -1;

	receipt(r, SE_A, 2, 0x02, 300, 700);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_int_equal(ledger_key_se(SE_A, 2, paid), 0);
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_int_equal(due.xfer, 0); /* nothing refunded yet */

	/* 120 of the 300 back: revenue -> purse, once */
	x = rec(RMSG_K_REFUND, 2, SVC_MONEY, SE_A, refund_body(b, paid, 120));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_string_equal(x.info, "refund 120, credit pending");
	assert_int_equal(bal(db, SE_A), 820);
	assert_int_equal(in_batch(db, &x, b, RDR), 0); /* the same record again */
	assert_int_equal(x.status, RMSG_ST_REPLAY);
	assert_int_equal(bal(db, SE_A), 820);
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 8, &n), 0);
	for (size_t i = 0; i < n; i++)
		refunds += ev[i].kind == DB_EV_REFUND && ev[i].amount == 120 && ev[i].reader == RDR;
	assert_int_equal(refunds, 1);

	/* 181 more would be 301 of 300: refused, nothing moves */
	x = rec(RMSG_K_REFUND, 3, SVC_MONEY, SE_A, refund_body(b, paid, 181));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_string_equal(x.info, "more than was paid");
	/* the payment named for another se, another service, a key that is no payment */
	x = rec(RMSG_K_REFUND, 4, SVC_MONEY, SE_B, refund_body(b, paid, 10));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_string_equal(x.info, "not a payment of this se");
	x = rec(RMSG_K_REFUND, 5, SVC_SHOP, SE_A, refund_body(b, paid, 10));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_int_equal(ledger_key_se(SE_A, 1, other), 0); /* the top-up */
	x = rec(RMSG_K_REFUND, 6, SVC_MONEY, SE_A, refund_body(b, other, 10));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_string_equal(x.info, "not a payment of this se");
	x = rec(RMSG_K_REFUND, 7, SVC_MONEY, SE_A, 3); /* a body too short for any key */
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_int_equal(bal(db, SE_A), 820);
	assert_int_equal(bal(db, SE_B), 0);

	/* the se's credit is due once; marked, it is due no more (and a second mark replays) */
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_true(due.xfer != 0);
	assert_int_equal(due.amount, 120);
	assert_int_equal(due.service, SVC_MONEY);
	assert_int_equal(due.reader, RDR);
	assert_int_equal(relay_refund_due(db, SE_B, &due), 0);
	assert_int_equal(due.xfer, 0);
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(relay_refund_credited(db, SE_A, &due, 4, 5000, &replayed), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(replayed, 0);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(relay_refund_credited(db, SE_A, &due, 4, 5000, &replayed), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(replayed, 1);
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_int_equal(due.xfer, 0);

	/* a second partial refund is due on its own; the rest of the payment is 180 */
	x = rec(RMSG_K_REFUND, 8, SVC_MONEY, SE_A, refund_body(b, paid, 180));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_int_equal(due.amount, 180);
	assert_int_equal(bal(db, SE_A), 1000);

	/* a lost se gets no refund */
	x = rec(RMSG_K_PAY, 9, SVC_MONEY, SE_A, 33);
	receipt(r, SE_A, 5, 0x02, 50, 950);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db->ops->se_set_state(db, SE_A, DB_SE_LOST, NULL, 5000), 0);
	assert_int_equal(db_req_end(db, 1), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(ledger_key_se(SE_A, 5, paid), 0);
	x = rec(RMSG_K_REFUND, 10, SVC_MONEY, SE_A, refund_body(b, paid, 50));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_int_equal(bal(db, SE_A), 950);
}

/* The rule alone: a credit marked done is never sent; one never begun is sent; one begun is
 * sent again only while the se's counter is the one it began at. */
static void test_refund_decide(void **state)
{
	(void)state;
	assert_int_equal(relay_refund_decide(0, 0, 0, 7), RELAY_CREDIT_SEND);
	assert_int_equal(relay_refund_decide(0, 1, 7, 7), RELAY_CREDIT_SEND);
	assert_int_equal(relay_refund_decide(0, 1, 7, 8), RELAY_CREDIT_APPLIED);
	assert_int_equal(relay_refund_decide(0, 1, 7, 6), RELAY_CREDIT_APPLIED);
	assert_int_equal(relay_refund_decide(0, 1, 0, 1), RELAY_CREDIT_APPLIED);
	assert_int_equal(relay_refund_decide(1, 0, 0, 7), RELAY_CREDIT_DONE);
	assert_int_equal(relay_refund_decide(1, 1, 7, 7), RELAY_CREDIT_DONE);
	assert_int_equal(relay_refund_decide(1, 1, 7, 9), RELAY_CREDIT_DONE);
}

static uint8_t begin_at(struct db *db, const struct relay_due *d, uint32_t counter)
{
	uint8_t step = 0xEE;

	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(relay_refund_begin(db, SE_A, d, counter, 5000, &step), 0);
	assert_int_equal(db_batch_commit(db), 0);
	return step;
}

/* A refund's credit through its rows: begun (CB:, ref = the counter read), begun again at
 * the same counter (the CREDIT never arrived: sent again, no second row), the counter moved
 * (the CREDIT was applied and its mark lost: marked done at c0 + 1, not sent), done (nothing
 * sent); a second refund credited as usual. One mark per refund, never a second credit. */
static void test_refund_begin(void **state)
{
	struct db *db = *state;
	uint8_t r[33], b[64];
	char paid[DB_KEY_MAX], key[DB_KEY_MAX];
	struct svc_rl_rec x = rec(RMSG_K_PAY, 1, SVC_MONEY, SE_A, 33);
	struct relay_due due, due2;
	struct db_event ev[16], cb;
	size_t n = 0, marks = 0, begins = 0;
	int replayed = -1;

	receipt(r, SE_A, 2, 0x02, 300, 700);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(ledger_key_se(SE_A, 2, paid), 0);
	x = rec(RMSG_K_REFUND, 2, SVC_MONEY, SE_A, refund_body(b, paid, 120));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_true(due.xfer != 0);

	/* first attempt: the purse read counter 2, the begin recorded before any CREDIT */
	assert_int_equal(begin_at(db, &due, 2), RELAY_CREDIT_SEND);
	snprintf(key, sizeof(key), "CB:%016llX", (unsigned long long)due.xfer);
	assert_int_equal(db->ops->history_find(db, key, &cb), 0);
	assert_int_equal(cb.kind, DB_EV_CREDIT);
	assert_int_equal(cb.ref, 2);
	assert_int_equal(cb.amount, 0);
	assert_int_equal(cb.reader, RDR);
	assert_memory_equal(cb.se, SE_A, 8);
	assert_int_equal(relay_refund_due(db, SE_A, &due2), 0); /* begun is not done */
	assert_int_equal(due2.xfer, due.xfer);
	/* the phone left before the CREDIT: the counter is still 2, so it goes again */
	assert_int_equal(begin_at(db, &due, 2), RELAY_CREDIT_SEND);
	assert_int_equal(db->ops->history_find(db, key, &cb), 0);
	assert_int_equal(cb.ref, 2); /* the begin keeps its counter */
	/* the se applied it (counter 3) and the mark was lost: taken as applied, marked */
	assert_int_equal(begin_at(db, &due, 3), RELAY_CREDIT_APPLIED);
	snprintf(key, sizeof(key), "C:%016llX", (unsigned long long)due.xfer);
	assert_int_equal(db->ops->history_find(db, key, &cb), 0);
	assert_int_equal(cb.kind, DB_EV_CREDIT);
	assert_int_equal(cb.ref, 3); /* c0 + 1: the counter the CREDIT's receipt had */
	assert_int_equal(cb.amount, 120);
	assert_int_equal(relay_refund_due(db, SE_A, &due2), 0);
	assert_int_equal(due2.xfer, 0);
	/* found again (a stale due): nothing to send, at any counter */
	assert_int_equal(begin_at(db, &due, 3), RELAY_CREDIT_DONE);
	assert_int_equal(begin_at(db, &due, 2), RELAY_CREDIT_DONE);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(relay_refund_credited(db, SE_A, &due, 3, 5000, &replayed), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(replayed, 1);

	/* a second refund: begun at 5, its CREDIT's receipt counter 6 marked; then done */
	x = rec(RMSG_K_REFUND, 3, SVC_MONEY, SE_A, refund_body(b, paid, 80));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(relay_refund_due(db, SE_A, &due2), 0);
	assert_true(due2.xfer != 0 && due2.xfer != due.xfer);
	assert_int_equal(due2.amount, 80);
	assert_int_equal(begin_at(db, &due2, 5), RELAY_CREDIT_SEND);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(relay_refund_credited(db, SE_A, &due2, 6, 5000, &replayed), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(replayed, 0);
	assert_int_equal(begin_at(db, &due2, 6), RELAY_CREDIT_DONE);
	assert_int_equal(relay_refund_due(db, SE_A, &due2), 0);
	assert_int_equal(due2.xfer, 0);

	/* one mark per refund (its amount), one begin each (amount 0); the ledger untouched */
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 16, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (ev[i].kind != DB_EV_CREDIT)
			continue;
		marks += strncmp(ev[i].key, "C:", 2) == 0 && ev[i].amount > 0;
		begins += strncmp(ev[i].key, "CB:", 3) == 0 && ev[i].amount == 0;
	}
	assert_int_equal(marks, 2);
	assert_int_equal(begins, 2);
	assert_int_equal(bal(db, SE_A), 1000 - 300 + 120 + 80);
}

/* A begin spoiled with its batch leaves no row: the next attempt begins afresh. */
static void test_refund_begin_rollback(void **state)
{
	struct db *db = *state;
	uint8_t r[33], b[64], step = 0;
	char paid[DB_KEY_MAX];
	struct svc_rl_rec x = rec(RMSG_K_PAY, 1, SVC_MONEY, SE_A, 33);
	struct relay_due due;

	receipt(r, SE_A, 2, 0x02, 300, 700);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(ledger_key_se(SE_A, 2, paid), 0);
	x = rec(RMSG_K_REFUND, 2, SVC_MONEY, SE_A, refund_body(b, paid, 50));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(relay_refund_due(db, SE_A, &due), 0);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(relay_refund_begin(db, SE_A, &due, 2, 5000, &step), 0);
	assert_int_equal(step, RELAY_CREDIT_SEND);
	db->ops->batch_abort(db);
	/* begun at 2 was never durable: at counter 4 it is a first attempt, sent */
	assert_int_equal(begin_at(db, &due, 4), RELAY_CREDIT_SEND);
	assert_int_equal(begin_at(db, &due, 4), RELAY_CREDIT_SEND);
	assert_int_equal(begin_at(db, &due, 5), RELAY_CREDIT_APPLIED);
}

static void test_order(void **state)
{
	struct db *db = *state;
	uint8_t b[33 + 1 + 12];
	struct svc_rl_rec x = rec(RMSG_K_ORDER, 10, SVC_SHOP, SE_A, sizeof(b));

	/* 2 x item 1 (300) + 1 x item 2 (450) = 1050 > what was paid (1000): refused */
	receipt(b, SE_A, 2, 0x02, 1000, 0);
	b[33] = 2;
	be32(b + 34, 1);
	b[38] = 0;
	b[39] = 2;
	be32(b + 40, 2);
	b[44] = 0;
	b[45] = 1;
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_int_equal(bal(db, SE_A), 1000);
	/* 1 x item 1 + 1 x item 2 = 750: paid */
	receipt(b, SE_A, 2, 0x02, 750, 250);
	b[39] = 1;
	x = rec(RMSG_K_ORDER, 11, SVC_SHOP, SE_A, sizeof(b));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_int_equal(bal(db, SE_A), 250);
	x = rec(RMSG_K_ORDER, 11, SVC_SHOP, SE_A, sizeof(b));
	assert_int_equal(in_batch(db, &x, b, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REPLAY);
	assert_int_equal(bal(db, SE_A), 250);
}

static void test_ticket_and_flag(void **state)
{
	struct db *db = *state;
	struct srv_ticket_req tq;
	struct db_applied ap;
	uint8_t t[21], f[20];
	struct svc_rl_rec x;
	int rc;

	memset(&tq, 0, sizeof(tq));
	snprintf(tq.key, sizeof(tq.key), "I:test:1");
	memcpy(tq.se, SE_A, 8);
	tq.service = SVC_TICKET;
	tq.valid_from = 4000;
	tq.valid_until = 9000;
	tq.uses = 1;
	tq.now = 4000;
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	rc = srv_ticket_issue(db, &tq, &ap);
	assert_int_equal(db_req_end(db, rc == 0), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(rc, 0);
	memset(t, 0, sizeof(t));
	be32(t, (uint32_t)(ap.id >> 32));
	be32(t + 4, (uint32_t)ap.id);
	x = rec(RMSG_K_TICKET, 20, SVC_TICKET, SE_A, sizeof(t));
	assert_int_equal(in_batch(db, &x, t, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	x = rec(RMSG_K_TICKET, 20, SVC_TICKET, SE_A, sizeof(t));
	assert_int_equal(in_batch(db, &x, t, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REPLAY);
	x = rec(RMSG_K_TICKET, 21, SVC_TICKET, SE_A, sizeof(t)); /* a second use: none left */
	assert_int_equal(in_batch(db, &x, t, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	/* a flag identity check: kept in the history once */
	memset(f, 0x5A, sizeof(f));
	x = rec(RMSG_K_FLAG, 30, SVC_TICKET, SE_A, sizeof(f));
	assert_int_equal(in_batch(db, &x, f, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	x = rec(RMSG_K_FLAG, 30, SVC_TICKET, SE_A, sizeof(f));
	assert_int_equal(in_batch(db, &x, f, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REPLAY);
	/* the same token's nonce from another reader, or for another se: a copied or
	 * rolled-back flag, refused (the first use stands alone in the history) */
	x = rec(RMSG_K_FLAG, 1, SVC_TICKET, SE_A, sizeof(f));
	assert_int_equal(in_batch(db, &x, f, RDR + 1), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_non_null(strstr(x.info, "flag used before"));
	x = rec(RMSG_K_FLAG, 31, SVC_TICKET, SE_B, sizeof(f));
	assert_int_equal(in_batch(db, &x, f, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	/* another nonce from the same reader is another check */
	f[0] ^= 1;
	x = rec(RMSG_K_FLAG, 32, SVC_TICKET, SE_A, sizeof(f));
	assert_int_equal(in_batch(db, &x, f, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
}

/* The se core's own PROVE checked by the server's verifier: the se holds id || key (set by
 * PAUTH SET through a level-33 server channel, as svc_cmd_pauth_set builds it), a reader
 * channel asks for the proof; the record body id || nonce || challenge || proof verifies
 * against the opened blob id || key, and not with one byte changed anywhere. */
static void test_pauth_check(void **state)
{
	uint8_t idkey[32], cmd[64], body[RMSG_PAUTH_LEN], prove[5 + 16];
	struct wr w = wr_init(cmd, sizeof(cmd));

	(void)state;
	for (size_t i = 0; i < sizeof(idkey); i++)
		idkey[i] = (uint8_t)(0x30 + 7 * i);
	rig_personalised();
	assert_int_equal(rig_select_wallet(SE_IF_HOST), 0x9000);
	assert_int_equal(rig_open_server(SE_IF_HOST, 0x33), 0x9000);
	assert_int_equal(svc_cmd_pauth_set(&w, idkey, idkey + 16), 0);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, w.len), 0x9000);
	assert_int_equal(rig_select_wallet(SE_IF_CONTACTLESS), 0x9000);
	assert_int_equal(rig_open_reader(SE_IF_CONTACTLESS, 0x33), 0x9000);
	memcpy(prove, "\x80\x62\x00\x00\x10", 5);
	for (size_t i = 0; i < 16; i++)
		prove[5 + i] = (uint8_t)(0xA0 + i);
	assert_int_equal(rig_cmd(SE_IF_CONTACTLESS, prove, sizeof(prove)), 0x9000);
	assert_int_equal(R.n, 40);
	memcpy(body, R.resp, 24);             /* id, card nonce */
	memcpy(body + 24, prove + 5, 16);     /* the challenge */
	memcpy(body + 40, R.resp + 24, 16);   /* the proof */
	assert_int_equal(svc_pauth_check(rig_serial, body, sizeof(body), idkey, 32), 0);
	for (size_t i = 0; i < sizeof(body); i++) {
		body[i] ^= 0x01;
		assert_int_equal(svc_pauth_check(rig_serial, body, sizeof(body), idkey, 32),
				 TB_E_VAULT_PROOF);
		body[i] ^= 0x01;
	}
	idkey[20] ^= 0x80; /* another key */
	assert_int_equal(svc_pauth_check(rig_serial, body, sizeof(body), idkey, 32), TB_E_VAULT_PROOF);
	idkey[20] ^= 0x80;
	assert_int_equal(svc_pauth_check(SE_A, body, sizeof(body), idkey, 32), TB_E_VAULT_PROOF);
	assert_int_equal(svc_pauth_check(rig_serial, body, sizeof(body), idkey, 31), TB_E_VAULT_BLOB);
	assert_int_equal(svc_pauth_check(rig_serial, body, sizeof(body) - 1, idkey, 32),
			 TB_E_VAULT_PROOF);
}

/* A checked proof is answered with the attributes the reader's class (1) may see, kept
 * once in the history; failed, no key, no personal data: refused with the reason. */
static void test_pauth_book(void **state)
{
	struct db *db = *state;
	static struct db_pauth p;
	const char vis[1][DB_ATTR_NAME_MAX] = { "name" };
	const char vis2[2][DB_ATTR_NAME_MAX] = { "age", "name" };
	struct db_event ev[8];
	uint8_t body[RMSG_PAUTH_LEN] = { 0 };
	struct svc_rl_rec x;
	size_t n = 0, views = 0;

	memset(&p, 0, sizeof(p));
	memcpy(p.se, SE_A, 8);
	snprintf(p.identifier, sizeof(p.identifier), "00112233445566778899AABBCCDDEEFF");
	p.n_attrs = 2;
	snprintf(p.attrs[0].name, sizeof(p.attrs[0].name), "age");
	memcpy(p.attrs[0].value, "42", 2);
	p.attrs[0].len = 2;
	snprintf(p.attrs[1].name, sizeof(p.attrs[1].name), "name");
	memcpy(p.attrs[1].value, "Alice;B\x01", 8);
	p.attrs[1].len = 8;
	assert_int_equal(db->ops->pauth_put(db, &p), 0);
	assert_int_equal(db->ops->pauth_visible_set(db, 1, vis, 1), 0);

	x = rec(RMSG_K_PAUTH, 40, SVC_MONEY, SE_A, sizeof(body));
	x.pauth = SVC_PA_OK;
	assert_int_equal(in_batch(db, &x, body, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_BOOKED);
	assert_string_equal(x.info, "name=Alice?B?"); /* ';' and control bytes masked */
	/* the RESULT lost: the record again answers the same, without a second view */
	x = rec(RMSG_K_PAUTH, 40, SVC_MONEY, SE_A, sizeof(body));
	x.pauth = SVC_PA_OK;
	assert_int_equal(in_batch(db, &x, body, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REPLAY);
	assert_string_equal(x.info, "name=Alice?B?");
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 8, &n), 0);
	for (size_t i = 0; i < n; i++)
		views += ev[i].kind == DB_EV_PAUTH;
	assert_int_equal(views, 1);
	/* the class sees more now */
	assert_int_equal(db->ops->pauth_visible_set(db, 1, vis2, 2), 0);
	x = rec(RMSG_K_PAUTH, 41, SVC_MONEY, SE_A, sizeof(body));
	x.pauth = SVC_PA_OK;
	assert_int_equal(in_batch(db, &x, body, RDR), 0);
	assert_string_equal(x.info, "age=42;name=Alice?B?");
	/* refusals */
	x = rec(RMSG_K_PAUTH, 42, SVC_MONEY, SE_A, sizeof(body));
	x.pauth = SVC_PA_FAILED;
	assert_int_equal(in_batch(db, &x, body, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_string_equal(x.info, "proof failed");
	x = rec(RMSG_K_PAUTH, 43, SVC_MONEY, SE_A, sizeof(body));
	x.pauth = SVC_PA_NO_KEY;
	assert_int_equal(in_batch(db, &x, body, RDR), 0);
	assert_string_equal(x.info, "personal data deleted");
	x = rec(RMSG_K_PAUTH, 44, SVC_MONEY, SE_B, sizeof(body)); /* no record for SE_B */
	x.pauth = SVC_PA_OK;
	assert_int_equal(in_batch(db, &x, body, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
	assert_string_equal(x.info, "personal data deleted");
	x = rec(RMSG_K_PAUTH, 45, SVC_MONEY, SE_A, sizeof(body)); /* an unknown reader */
	x.pauth = SVC_PA_OK;
	assert_int_equal(in_batch(db, &x, body, 99), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pay_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pay_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refund, setup, teardown),
		cmocka_unit_test(test_refund_decide),
		cmocka_unit_test_setup_teardown(test_refund_begin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refund_begin_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticket_and_flag, setup, teardown),
		cmocka_unit_test(test_pauth_check),
		cmocka_unit_test_setup_teardown(test_pauth_book, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
