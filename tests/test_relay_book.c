/* test_relay_book.c - booking relayed reader records (src/server/relay_book.c) against a
 * SQLite database: a payment once and its replay, a receipt the sam refused, a credit
 * receipt or another se's receipt, an order whose total does not match, a ticket used up,
 * an identity check kept once, an unknown reader, online personal auth refused. */
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
	/* online personal authentication: refused, never booked */
	x = rec(RMSG_K_PAUTH, 8, SVC_MONEY, SE_A, 56);
	assert_int_equal(in_batch(db, &x, r, RDR), 0);
	assert_int_equal(x.status, RMSG_ST_REFUSED);
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
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pay_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pay_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ticket_and_flag, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
