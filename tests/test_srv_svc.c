/* test_srv_svc.c - the per-phone service engine (server/svc.h) driven by fake phone, sam
 * and db inputs: confirmations only after a zero commit outcome, failed commits never
 * confirm, a phone leaving frees its state once nothing refers to it, stray replies do nothing;
 * a refund's credit begun (committed) before its CREDIT and sent only when the begin says. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "server/relay_book.h"
#include "svc.h"

#define EV_MAX 64

/* What the engine asked for, in order. */
enum fake_ev { EV_APDU = 1, EV_SAM, EV_JOB, EV_TELL };

struct fake_rec {
	uint8_t ev;
	uint8_t kind;       /* sam kind or tell kind */
	uint32_t seq;       /* apdu */
	uint32_t handle;    /* sam */
	uint8_t apdu0;      /* apdu: first byte (CLA) */
	uint8_t ins;        /* apdu: INS */
	int rc;
	char id[SVC_BLOB_ID_MAX]; /* sam SEAL / OPENBLOB: the blob id */
	uint8_t cmd_ins;    /* sam STEP1 / WRAP: the plain command's INS */
	size_t n;           /* sam: data length */
};

struct fake {
	struct fake_rec r[EV_MAX];
	size_t n;
	int live;
	int sam_fail;
	int pauth_need;
};

static struct fake *fake_of(const struct svc *v)
{
	return v->user;
}

static void fake_add(struct svc *v, const struct fake_rec *r)
{
	struct fake *f = fake_of(v);

	assert_true(f->n < EV_MAX);
	f->r[f->n++] = *r;
}

static int fake_apdu(struct svc *v, uint32_t seq, const uint8_t *apdu, size_t n)
{
	struct fake_rec r = { .ev = EV_APDU, .seq = seq };

	assert_true(n >= 2);
	r.apdu0 = apdu[0];
	r.ins = apdu[1];
	fake_add(v, &r);
	return 0;
}

static int fake_sam(struct svc *v, const struct svc_sam_req *rq)
{
	struct fake_rec r = { .ev = EV_SAM, .kind = rq->kind, .handle = rq->handle, .n = rq->n };

	if (fake_of(v)->sam_fail)
		return TB_E_IO;
	if (rq->id != NULL)
		snprintf(r.id, sizeof(r.id), "%s", rq->id);
	if (rq->cmd != NULL && rq->cmd_n >= 2)
		r.cmd_ins = rq->cmd[1];
	fake_add(v, &r);
	return 0;
}

static void fake_job(struct svc *v)
{
	struct fake_rec r = { .ev = EV_JOB };

	fake_add(v, &r);
}

static void fake_tell(struct svc *v, const struct svc_tell *t)
{
	struct fake_rec r = { .ev = EV_TELL, .kind = t->kind, .rc = t->rc };

	fake_add(v, &r);
}

static int fake_live(const struct svc *v)
{
	return fake_of(v)->live;
}

static int fake_pauth_need(struct svc *v)
{
	return fake_of(v)->pauth_need;
}

static const uint8_t fake_aid[5] = { 0xF0, 0x01, 0x02, 0x03, 0x04 };

static const struct svc_io fake_io = {
	.aid = fake_aid, .aid_n = sizeof(fake_aid), .apdu = fake_apdu, .sam = fake_sam,
	.job = fake_job, .tell = fake_tell, .live = fake_live, .pauth_need = fake_pauth_need,
};

static const uint8_t serial[SVC_SERIAL_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t ok_resp[2] = { 0x90, 0x00 };
static const uint8_t ea[5] = { 0x84, 0x82, 0x33, 0x00, 0x00 };
static const uint8_t wrapped[5] = { 0x84, 0x32, 0x00, 0x00, 0x00 };

static void setup_svc(struct svc *v, struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->live = 1;
	svc_init(v, serial, f);
}

/* How many events of this kind (and tell/sam kind, 0 = any: so not for SVC_SAM_CLOSE). */
static size_t count(const struct fake *f, uint8_t ev, uint8_t kind)
{
	size_t c = 0;

	for (size_t i = 0; i < f->n; i++)
		if (f->r[i].ev == ev && (kind == 0 || f->r[i].kind == kind))
			c++;
	return c;
}

static const struct fake_rec *last(const struct fake *f)
{
	assert_true(f->n > 0);
	return &f->r[f->n - 1];
}

/* A receipt for serial: counter 5, credit of amount, balance 700. */
static void make_receipt(uint8_t out[SVC_RECEIPT_LEN], uint32_t amount)
{
	memset(out, 0, SVC_RECEIPT_LEN);
	memcpy(out, serial, SVC_SERIAL_LEN);
	out[11] = 5;                 /* counter */
	out[12] = SVC_TX_CREDIT;
	out[15] = (uint8_t)(amount >> 8);
	out[16] = (uint8_t)amount;
	out[19] = 0x02;              /* balance 700 = 0x2BC */
	out[20] = 0xBC;
	out[21] = 0x01;              /* kvn */
}

static int sam_ok(struct svc *v, uint8_t kind)
{
	struct svc_sam_reply r = { 0 };

	return svc_sam_done(v, &fake_io, kind, &r);
}

/* Drives a top-up up to the queued ledger job; the receipt MAC is verified. */
static void topup_to_commit(struct svc *v, struct fake *f)
{
	const struct svc_offer sv = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	uint8_t receipt[SVC_RECEIPT_LEN];
	struct svc_sam_reply r = { 0 };

	svc_select(v, &fake_io, &sv, 1, 1000, 5);
	assert_int_equal(last(f)->ev, EV_APDU);
	assert_int_equal(last(f)->ins, 0xA4);
	assert_int_equal(v->state, SV_SELECT);
	svc_se_resp(v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_OPEN);
	r.handle = 7;
	r.apdu = ea;
	r.apdu_n = sizeof(ea);
	assert_int_equal(svc_sam_done(v, &fake_io, SVC_SAM_OPEN, &r), 0);
	assert_int_equal(last(f)->seq, 2);
	svc_se_resp(v, &fake_io, 2, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_STEP1);
	memset(&r, 0, sizeof(r));
	r.ea = ea;
	r.ea_n = sizeof(ea);
	r.wrapped = wrapped;
	r.wrapped_n = sizeof(wrapped);
	assert_int_equal(svc_sam_done(v, &fake_io, SVC_SAM_STEP1, &r), 0);
	assert_int_equal(v->state, SV_EA);
	assert_int_equal(last(f)->seq, 4);
	svc_se_resp(v, &fake_io, 3, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_STEP2);
	svc_se_resp(v, &fake_io, 4, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_UNWRAP);
	assert_int_equal(sam_ok(v, SVC_SAM_STEP2), 0);
	make_receipt(receipt, 0x100);
	memset(&r, 0, sizeof(r));
	r.sw = 0x9000;
	r.authenticated = 1;
	r.data = receipt;
	r.n = sizeof(receipt);
	assert_int_equal(svc_sam_done(v, &fake_io, SVC_SAM_UNWRAP, &r), 0);
	assert_int_equal(last(f)->kind, SVC_SAM_VERIFY);
	assert_int_equal(v->state, SV_VERIFY);
	assert_int_equal(sam_ok(v, SVC_SAM_VERIFY), 0);
	assert_int_equal(last(f)->ev, EV_JOB);
	assert_int_equal(v->state, SV_COMMIT);
	assert_int_equal(v->counter, 5);
	assert_int_equal(v->balance, 700);
}

static void test_topup_confirms_after_commit(void **state)
{
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	topup_to_commit(&v, &f);
	/* no confirmation, no NOTICE of any kind, before the commit outcome */
	assert_int_equal(count(&f, EV_TELL, SVC_T_TOPPED_UP), 0);
	assert_int_equal(count(&f, EV_TELL, 0), 1); /* the start log line only */
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(last(&f)->ev, EV_TELL);
	assert_int_equal(last(&f)->kind, SVC_T_TOPPED_UP);
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_CLOSE);
	assert_int_equal(f.r[f.n - 2].handle, 7);
	assert_int_equal(v.state, SV_IDLE);
	assert_int_equal(v.has_handle, 0);
}

static void test_topup_failed_commit(void **state)
{
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	topup_to_commit(&v, &f);
	assert_int_equal(svc_job_done(&v, &fake_io, TB_E_DB, 0), 0);
	assert_int_equal(count(&f, EV_TELL, SVC_T_TOPPED_UP), 0);
	assert_int_equal(last(&f)->kind, SVC_T_TOPUP_LOST); /* the session ends with an ERROR */
	assert_int_equal(last(&f)->rc, TB_E_DB);
	assert_int_equal(f.r[f.n - 2].ev, EV_SAM); /* the channel closed first */
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_CLOSE);
	assert_int_equal(f.r[f.n - 2].handle, 7);
	assert_int_equal(v.state, SV_IDLE);
}

static void test_ticket_commit_first(void **state)
{
	const struct svc_offer sv = { .id = 4, .kind = DB_SVC_TICKET };
	struct svc_sam_reply r = { .sw = 0x9000, .authenticated = 1 };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	assert_int_equal(v.state, SV_ISSUE);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(count(&f, EV_APDU, 0), 0); /* nothing to the se before the row */
	assert_int_equal(strncmp(v.key, "I:0102030405060708:", 19), 0);
	assert_int_equal(strlen(v.key), 35);
	assert_int_equal(v.valid_until, 1000 + SVC_TICKET_DAYS);
	v.ticket = 42;
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(last(&f)->ev, EV_APDU);
	assert_int_equal(count(&f, EV_TELL, SVC_T_TICKET_ISSUED), 0);
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	r.handle = 9;
	r.apdu = ea;
	r.apdu_n = sizeof(ea);
	r.ea = ea;
	r.ea_n = sizeof(ea);
	r.wrapped = wrapped;
	r.wrapped_n = sizeof(wrapped);
	svc_sam_done(&v, &fake_io, SVC_SAM_OPEN, &r);
	svc_se_resp(&v, &fake_io, 2, ok_resp, sizeof(ok_resp));
	svc_sam_done(&v, &fake_io, SVC_SAM_STEP1, &r);
	svc_se_resp(&v, &fake_io, 3, ok_resp, sizeof(ok_resp));
	svc_se_resp(&v, &fake_io, 4, ok_resp, sizeof(ok_resp));
	assert_int_equal(count(&f, EV_TELL, SVC_T_TICKET_ISSUED), 0);
	r.data = NULL;
	r.n = 0;
	svc_sam_done(&v, &fake_io, SVC_SAM_UNWRAP, &r);
	assert_int_equal(last(&f)->kind, SVC_T_TICKET_ISSUED);
	assert_int_equal(v.state, SV_IDLE);
}

static void test_ticket_failed_commit(void **state)
{
	const struct svc_offer sv = { .id = 4, .kind = DB_SVC_TICKET };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	assert_int_equal(svc_job_done(&v, &fake_io, TB_E_DB, 0), 0);
	assert_int_equal(last(&f)->kind, SVC_T_TICKET_LOST);
	assert_int_equal(count(&f, EV_APDU, 0), 0);
	assert_int_equal(count(&f, EV_TELL, SVC_T_TICKET_ISSUED), 0);
	assert_int_equal(v.state, SV_IDLE);
	/* a rule's refusal is told, the session goes on */
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	assert_int_equal(svc_job_done(&v, &fake_io, TB_E_SRV_LIMIT, 0), 0);
	assert_int_equal(last(&f)->kind, SVC_T_TICKET_RULE);
	assert_int_equal(count(&f, EV_APDU, 0), 0);
}

/* The se refuses the ticket record: the row is revoked (a job) before the phone hears. */
static void test_ticket_refused_revokes(void **state)
{
	const struct svc_offer sv = { .id = 4, .kind = DB_SVC_TICKET };
	const uint8_t bad[2] = { 0x6A, 0x82 };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	svc_job_done(&v, &fake_io, 0, 0);
	svc_se_resp(&v, &fake_io, 1, bad, sizeof(bad));
	assert_int_equal(v.state, SV_REVOKE);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(count(&f, EV_TELL, SVC_T_TICKET_REFUSED), 0);
	svc_job_done(&v, &fake_io, 0, 0);
	assert_int_equal(last(&f)->kind, SVC_T_TICKET_REFUSED);
	assert_int_equal(last(&f)->rc, 0);
}

static void test_leave_frees(void **state)
{
	const struct svc_offer sv = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	struct svc_sam_reply r = { .handle = 11, .apdu = ea, .apdu_n = sizeof(ea) };
	struct svc v;
	struct fake f;
	size_t n;

	(void)state;
	/* idle: at once */
	setup_svc(&v, &f);
	assert_int_equal(svc_leave(&v, &fake_io), 1);
	/* with SCP_OPEN in flight: after its reply, and the channel it opened is closed */
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	f.live = 0;
	assert_int_equal(svc_leave(&v, &fake_io), 0);
	n = f.n;
	assert_int_equal(svc_sam_done(&v, &fake_io, SVC_SAM_OPEN, &r), 0);
	assert_int_equal(f.n, n + 1);
	assert_int_equal(last(&f)->kind, SVC_SAM_CLOSE);
	assert_int_equal(last(&f)->handle, 11);
	assert_int_equal(count(&f, EV_APDU, 0), 1); /* no IU for a phone that left */
	assert_int_equal(sam_ok(&v, SVC_SAM_CLOSE), 1);
	/* with the ledger job queued: after its outcome, nothing told, the channel closed */
	setup_svc(&v, &f);
	topup_to_commit(&v, &f);
	f.live = 0;
	assert_int_equal(svc_leave(&v, &fake_io), 0);
	assert_int_equal(last(&f)->kind, SVC_SAM_CLOSE);
	n = count(&f, EV_TELL, 0);
	assert_int_equal(sam_ok(&v, SVC_SAM_CLOSE), 0);
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 1);
	assert_int_equal(count(&f, EV_TELL, 0), n);
	assert_int_equal(v.refs, 0);
}

static void test_stray_replies_ignored(void **state)
{
	const struct svc_offer sv = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	struct svc_sam_reply r = { .sw = 0x9000, .authenticated = 1 };
	struct svc v;
	struct fake f;
	size_t n;
	uint8_t st;

	(void)state;
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	n = f.n;
	st = v.state;
	/* an unknown kind, and a CLOSE's reply: nothing happens */
	assert_int_equal(svc_sam_done(&v, &fake_io, 200, &r), 0);
	assert_int_equal(svc_sam_done(&v, &fake_io, SVC_SAM_KINDS, &r), 0);
	assert_int_equal(svc_sam_done(&v, &fake_io, SVC_SAM_CLOSE, &r), 0);
	assert_int_equal(f.n, n);
	assert_int_equal(v.state, st);
	/* late: an answer after the phone left tells nothing and sends nothing */
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	f.live = 0;
	assert_int_equal(svc_leave(&v, &fake_io), 0);
	n = f.n;
	assert_int_equal(svc_sam_done(&v, &fake_io, SVC_SAM_UNWRAP, &r), 1);
	assert_int_equal(f.n, n);
	/* an SE_RESP nobody asked for ends the session, the state stays */
	setup_svc(&v, &f);
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(&f)->kind, SVC_T_RESP_UNASKED);
	assert_int_equal(count(&f, EV_SAM, 0), 0);
}

static void test_select_answers(void **state)
{
	const struct svc_offer em = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	const struct svc_offer ec = { .id = 5, .kind = DB_SVC_ECOMMERCE };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, NULL, 1, 1000, 5);
	assert_int_equal(last(&f)->kind, SVC_T_NO_SERVICE);
	svc_select(&v, &fake_io, &ec, 1, 1000, 5);
	assert_int_equal(last(&f)->kind, SVC_T_UNAVAILABLE);
	svc_select(&v, &fake_io, &em, 0, 1000, 5);
	assert_int_equal(last(&f)->kind, SVC_T_UNAVAILABLE);
	svc_select(&v, &fake_io, &em, 1, 1000, 5);
	svc_select(&v, &fake_io, &em, 1, 1000, 5);
	assert_int_equal(last(&f)->kind, SVC_T_BUSY);
	/* a sam that cannot be asked fails the operation */
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(&f)->kind, SVC_SAM_OPEN);
	setup_svc(&v, &f);
	f.sam_fail = 1;
	svc_select(&v, &fake_io, &em, 1, 1000, 5);
	svc_se_resp(&v, &fake_io, 1, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(&f)->kind, SVC_T_FAILED);
	assert_int_equal(v.state, SV_IDLE);
	assert_int_equal(v.refs, 0);
}

/* ------------------------------------------------- several commands per channel --- */

/* From the SELECT's SE_APDU to the first command's UNWRAP at the sam (STEP2 answered). */
static void open_channel(struct svc *v, struct fake *f, uint8_t first_ins)
{
	struct svc_sam_reply r = { .handle = 7, .apdu = ea, .apdu_n = sizeof(ea) };

	assert_int_equal(last(f)->ins, 0xA4);
	svc_se_resp(v, &fake_io, v->seq, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_OPEN);
	svc_sam_done(v, &fake_io, SVC_SAM_OPEN, &r);
	svc_se_resp(v, &fake_io, v->seq, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_STEP1);
	assert_int_equal(last(f)->cmd_ins, first_ins);
	memset(&r, 0, sizeof(r));
	r.ea = ea;
	r.ea_n = sizeof(ea);
	r.wrapped = wrapped;
	r.wrapped_n = sizeof(wrapped);
	svc_sam_done(v, &fake_io, SVC_SAM_STEP1, &r);
	assert_int_equal(v->state, SV_EA);
	svc_se_resp(v, &fake_io, v->seq - 1, ok_resp, sizeof(ok_resp));
	svc_se_resp(v, &fake_io, v->seq, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_UNWRAP);
	assert_int_equal(sam_ok(v, SVC_SAM_STEP2), 0);
}

/* The first (or a next) command's response, unwrapped by the sam. */
static void unwrapped(struct svc *v, uint16_t sw, const uint8_t *data, size_t n)
{
	struct svc_sam_reply r = { .sw = sw, .authenticated = sw == 0x9000, .data = data, .n = n };

	assert_int_equal(v->state, SV_UNWRAP);
	svc_sam_done(v, &fake_io, SVC_SAM_UNWRAP, &r);
}

/* The engine asked the sam to wrap the next command (ins): its SE_APDU goes, the
 * phone's SE_RESP comes back, the sam is asked to unwrap it. */
static void next_command(struct svc *v, struct fake *f, uint8_t ins)
{
	static const uint8_t w2[6] = { 0x84, 0x00, 0x00, 0x00, 0x01, 0xAA };
	struct svc_sam_reply r = { .data = w2, .n = sizeof(w2) };
	uint32_t seq;

	assert_int_equal(last(f)->ev, EV_SAM);
	assert_int_equal(last(f)->kind, SVC_SAM_WRAP);
	assert_int_equal(last(f)->cmd_ins, ins);
	assert_int_equal(last(f)->handle, 7);
	assert_int_equal(v->state, SV_WRAP);
	svc_sam_done(v, &fake_io, SVC_SAM_WRAP, &r);
	assert_int_equal(last(f)->ev, EV_APDU);
	assert_int_equal(last(f)->apdu0, 0x84);
	seq = last(f)->seq;
	assert_int_equal(v->state, SV_NEXT);
	svc_se_resp(v, &fake_io, seq, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(f)->kind, SVC_SAM_UNWRAP);
}

static void be32_put(uint8_t *p, uint32_t x)
{
	p[0] = (uint8_t)(x >> 24);
	p[1] = (uint8_t)(x >> 16);
	p[2] = (uint8_t)(x >> 8);
	p[3] = (uint8_t)x;
}

/* Backup: GET BALANCE rides with EXTERNAL AUTHENTICATE, TICKET LIST is wrapped after its
 * answer; the channel closes before SEAL_BLOB, the vault job comes after the seal, and
 * "backup stored" only after its commit. */
static void test_backup_two_commands(void **state)
{
	const struct svc_offer sv = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	uint8_t purse[12] = { 0 }, list[21] = { 0 };
	const uint8_t sealed[40] = { 1 };
	struct svc_sam_reply r = { .data = sealed, .n = sizeof(sealed) };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	be32_put(purse, 700);
	be32_put(purse + 4, 9);
	list[7] = 42;
	list[20] = 1;
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_BACKUP, 1, 1000, 5);
	assert_int_equal(v.op, SVC_OP_BACKUP);
	open_channel(&v, &f, 0x30);
	unwrapped(&v, 0x9000, purse, sizeof(purse));
	next_command(&v, &f, 0x42);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_SEAL), 0);
	unwrapped(&v, 0x9000, list, sizeof(list));
	assert_int_equal(last(&f)->kind, SVC_SAM_SEAL);
	assert_string_equal(last(&f)->id, "vault:0102030405060708:1");
	assert_int_equal(last(&f)->n, SVC_BACKUP_HDR + 21);
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_CLOSE);
	assert_int_equal(v.state, SV_SEAL);
	svc_sam_done(&v, &fake_io, SVC_SAM_SEAL, &r);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(v.phase, SVC_PH_BACKUP);
	assert_int_equal(v.blob_n, sizeof(sealed));
	assert_true(v.version == ((uint64_t)9 << 32 | 1000));
	assert_int_equal(count(&f, EV_TELL, SVC_T_BACKUP_STORED), 0);
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(last(&f)->kind, SVC_T_BACKUP_STORED);
	assert_int_equal(v.bk.balance, 700);
	assert_int_equal(v.bk.n, 1);
	assert_int_equal(v.bk.t[0].id, 42);
	assert_int_equal(v.state, SV_IDLE);
	assert_int_equal(sam_ok(&v, SVC_SAM_CLOSE), 0);
	assert_int_equal(v.refs, 0);
	/* a rule's refusal is told and the session goes on; a lost commit ends it */
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_BACKUP, 1, 1001, 5);
	open_channel(&v, &f, 0x30);
	unwrapped(&v, 0x9000, purse, sizeof(purse));
	next_command(&v, &f, 0x42);
	unwrapped(&v, 0x9000, list, sizeof(list));
	svc_sam_done(&v, &fake_io, SVC_SAM_SEAL, &r);
	svc_job_done(&v, &fake_io, TB_E_DB_STALE, 0);
	assert_int_equal(last(&f)->kind, SVC_T_OP_RULE);
	assert_int_equal(last(&f)->rc, TB_E_DB_STALE);
}

/* An error status word to a next command: told, the channel closed, nothing sealed. */
static void test_next_command_refused(void **state)
{
	const struct svc_offer sv = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	uint8_t purse[12] = { 0 };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_BACKUP, 1, 1000, 5);
	open_channel(&v, &f, 0x30);
	unwrapped(&v, 0x9000, purse, sizeof(purse));
	next_command(&v, &f, 0x42);
	unwrapped(&v, 0x6A81, NULL, 0);
	assert_int_equal(last(&f)->kind, SVC_T_REFUSED);
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_CLOSE);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_SEAL), 0);
	assert_int_equal(v.state, SV_IDLE);
	/* an SE_RESP now is unexpected: the session ends */
	svc_se_resp(&v, &fake_io, v.seq + 1, ok_resp, sizeof(ok_resp));
	assert_int_equal(last(&f)->kind, SVC_T_RESP_UNASKED);
	/* a WRAP the sam refuses fails the operation */
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_BACKUP, 1, 1000, 5);
	open_channel(&v, &f, 0x30);
	unwrapped(&v, 0x9000, purse, sizeof(purse));
	{
		struct svc_sam_reply r = { .err = TB_E_SCP_CLOSED };

		svc_sam_done(&v, &fake_io, SVC_SAM_WRAP, &r);
	}
	assert_int_equal(last(&f)->kind, SVC_T_FAILED);
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* The flag of an se with a personal-auth record and no key yet: the key is sealed
 * (pauth:<serial>) while the token is signed; PAUTH SET goes first, FLAG SET second;
 * the key is gone from the engine once the sam has the command; the vault job comes
 * before "flag set". */
static void test_flag_registers_key(void **state)
{
	const struct svc_offer sv = { .id = 5, .kind = DB_SVC_PAUTH, .item1 = 100 };
	uint8_t sig[1 + SVC_SIG_LEN] = { 1 };
	const uint8_t sealed[62] = { 1 };
	struct svc_sam_reply r = { .data = sealed, .n = sizeof(sealed) };
	struct svc v;
	struct fake f;

	(void)state;
	setup_svc(&v, &f);
	f.pauth_need = 1;
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	assert_int_equal(v.pauth_reg, 1);
	assert_int_equal(f.r[f.n - 3].kind, SVC_SAM_SEAL);
	assert_string_equal(f.r[f.n - 3].id, "pauth:0102030405060708");
	assert_int_equal(f.r[f.n - 3].n, 32);
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_SIGN);
	assert_int_equal(last(&f)->kind, SVC_T_START);
	svc_sam_done(&v, &fake_io, SVC_SAM_SEAL, &r);
	assert_int_equal(count(&f, EV_APDU, 0), 0); /* the signature is still due */
	r.data = sig;
	r.n = sizeof(sig);
	svc_sam_done(&v, &fake_io, SVC_SAM_SIGN, &r);
	open_channel(&v, &f, 0x60);
	assert_true(all_zero(v.cmd, sizeof(v.cmd)));
	unwrapped(&v, 0x9000, NULL, 0);
	next_command(&v, &f, 0x64);
	unwrapped(&v, 0x9000, NULL, 0);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(v.phase, SVC_PH_PAUTH);
	assert_int_equal(v.blob_n, sizeof(sealed));
	assert_int_equal(count(&f, EV_TELL, SVC_T_FLAG_SET), 0);
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(last(&f)->kind, SVC_T_FLAG_SET);
	/* without a record to register: one command, as before */
	setup_svc(&v, &f);
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	assert_int_equal(v.pauth_reg, 0);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_SEAL), 0);
	svc_sam_done(&v, &fake_io, SVC_SAM_SIGN, &r);
	open_channel(&v, &f, 0x64);
	unwrapped(&v, 0x9000, NULL, 0);
	assert_int_equal(last(&f)->kind, SVC_T_FLAG_SET);
	/* a seal the sam refuses: failed, and the late signature starts nothing */
	setup_svc(&v, &f);
	f.pauth_need = 1;
	svc_select(&v, &fake_io, &sv, 1, 1000, 5);
	{
		struct svc_sam_reply bad = { .err = TB_E_SAM_KEY };

		svc_sam_done(&v, &fake_io, SVC_SAM_SEAL, &bad);
	}
	assert_int_equal(last(&f)->kind, SVC_T_FAILED);
	svc_sam_done(&v, &fake_io, SVC_SAM_SIGN, &r);
	assert_int_equal(count(&f, EV_APDU, 0), 0);
}

static const uint8_t old_serial[SVC_SERIAL_LEN] = { 9, 9, 9, 9, 9, 9, 9, 1 };

/* Restore: the db finds the lost se (job), the sam opens its backup, the purse is read,
 * the tickets re-issued (job), CREDIT of the moved balance with its receipt verified,
 * TICKET STORE of each, the run recorded (job), then "restored". */
static void test_restore(void **state)
{
	const struct svc_offer sv = { .id = 3, .kind = DB_SVC_EMONEY, .item1 = 0x100 };
	struct svc_backup bk = { .balance = 0x100, .counter = 4, .n = 2 };
	uint8_t plain[SVC_BACKUP_MAX], purse[12] = { 0 }, receipt[SVC_RECEIPT_LEN];
	struct wr w = wr_init(plain, sizeof(plain));
	struct svc_sam_reply r = { 0 };
	struct svc v;
	struct fake f;

	(void)state;
	memcpy(bk.serial, old_serial, 8);
	bk.t[0] = (struct svc_ticket){ .id = 11, .service = 2, .not_before = 1, .not_after = 5,
				       .uses = 1 };
	bk.t[1] = (struct svc_ticket){ .id = 12, .service = 2, .not_before = 1, .not_after = 5,
				       .uses = 1 };
	assert_int_equal(svc_backup_put(&w, &bk), 0);
	setup_svc(&v, &f);
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_RESTORE, 1, 1000, 5);
	assert_int_equal(v.op, SVC_OP_RESTORE);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(v.phase, SVC_PH_R_FIND);
	assert_int_equal(count(&f, EV_APDU, 0), 0);
	/* what the adapter's job finds */
	memcpy(v.old, old_serial, 8);
	v.moved = 0x100;
	v.blob_n = 40;
	svc_job_done(&v, &fake_io, 0, 0);
	assert_int_equal(last(&f)->kind, SVC_SAM_OPENBLOB);
	assert_string_equal(last(&f)->id, "vault:0909090909090901:1");
	r.data = plain;
	r.n = w.len;
	svc_sam_done(&v, &fake_io, SVC_SAM_OPENBLOB, &r);
	assert_int_equal(v.bk.n, 2);
	open_channel(&v, &f, 0x30);
	be32_put(purse + 4, 4);
	unwrapped(&v, 0x9000, purse, sizeof(purse));
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(v.phase, SVC_PH_R_TICKETS);
	assert_int_equal(v.c0, 4);
	v.new_id[0] = 77; /* ticket 12 stayed behind (spent, say) */
	svc_job_done(&v, &fake_io, 0, 0);
	next_command(&v, &f, 0x32);
	make_receipt(receipt, 0x100);
	unwrapped(&v, 0x9000, receipt, sizeof(receipt));
	assert_int_equal(last(&f)->kind, SVC_SAM_VERIFY);
	assert_int_equal(sam_ok(&v, SVC_SAM_VERIFY), 0);
	next_command(&v, &f, 0x40);
	/* 6A89: stored by an earlier run of this restore, counted as stored */
	unwrapped(&v, 0x6A89, NULL, 0);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(v.phase, SVC_PH_R_DONE);
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_CLOSE);
	assert_int_equal(count(&f, EV_TELL, SVC_T_RESTORED), 0);
	svc_job_done(&v, &fake_io, 0, 0);
	assert_int_equal(last(&f)->kind, SVC_T_RESTORED);
	assert_int_equal(v.stored, 1);
	assert_int_equal(v.balance, 700);
	assert_int_equal(v.counter, 5);
	assert_int_equal(sam_ok(&v, SVC_SAM_CLOSE), 0);
	assert_int_equal(v.refs, 0);

	/* done before: told, nothing sent */
	setup_svc(&v, &f);
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_RESTORE, 1, 1000, 5);
	v.done_before = 1;
	svc_job_done(&v, &fake_io, 0, 0);
	assert_int_equal(last(&f)->kind, SVC_T_RESTORED_BEFORE);
	assert_int_equal(count(&f, EV_SAM, 0), 0);
	/* replaces nothing: the rule's refusal */
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_RESTORE, 1, 1000, 5);
	svc_job_done(&v, &fake_io, TB_E_VAULT_NO_LOST, 0);
	assert_int_equal(last(&f)->kind, SVC_T_OP_RULE);
	assert_int_equal(last(&f)->rc, TB_E_VAULT_NO_LOST);
	/* begun before at another counter: the credit is not made again */
	setup_svc(&v, &f);
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_RESTORE, 1, 1000, 5);
	memcpy(v.old, old_serial, 8);
	v.moved = 0x100;
	v.pending = 1;
	v.c0 = 3;
	svc_job_done(&v, &fake_io, 0, 0);
	r.data = plain;
	svc_sam_done(&v, &fake_io, SVC_SAM_OPENBLOB, &r);
	open_channel(&v, &f, 0x30);
	unwrapped(&v, 0x9000, purse, sizeof(purse));
	assert_int_equal(v.skip_credit, 1);
	v.new_id[1] = 78;
	svc_job_done(&v, &fake_io, 0, 0);
	next_command(&v, &f, 0x40);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_VERIFY), 0);
	/* a backup of another se: refused */
	setup_svc(&v, &f);
	svc_select_op(&v, &fake_io, &sv, SVC_SEL_RESTORE, 1, 1000, 5);
	memcpy(v.old, serial, 8);
	svc_job_done(&v, &fake_io, 0, 0);
	svc_sam_done(&v, &fake_io, SVC_SAM_OPENBLOB, &r);
	assert_int_equal(last(&f)->kind, SVC_T_OP_RULE);
	assert_int_equal(last(&f)->rc, TB_E_VAULT_BLOB);
}

/* ------------------------------------------------------- refund credit --- */

/* A refund of 0x100 at reader 7 found due after a relayed exchange: its credit starts. */
static void refund_due(struct svc *v)
{
	v->rl.due_xfer = 0x55;
	v->rl.due_amount = 0x100;
	v->rl.due_service = 3;
	v->rl.due_reader = 7;
	svc_refund_start(v, &fake_io, 5);
	assert_int_equal(v->op, SVC_OP_REFUND);
	assert_int_equal(v->rl.due_xfer, 0);
}

/* Up to the begin: the purse (counter) read first, then the db work, the channel open. */
static void refund_to_begin(struct svc *v, struct fake *f, uint32_t counter)
{
	uint8_t purse[12] = { 0 };

	setup_svc(v, f);
	refund_due(v);
	open_channel(v, f, 0x30);
	be32_put(purse, 0x1BC);
	be32_put(purse + 4, counter);
	unwrapped(v, 0x9000, purse, sizeof(purse));
	assert_int_equal(last(f)->ev, EV_JOB);
	assert_int_equal(v->state, SV_JOB);
	assert_int_equal(v->phase, SVC_PH_RF_BEGIN);
	assert_int_equal(v->c0, counter);
	assert_true(v->has_handle);
	/* no CREDIT before the begin is durable */
	assert_int_equal(count(f, EV_SAM, SVC_SAM_WRAP), 0);
}

/* A refund's credit: GET BALANCE rides with EXTERNAL AUTHENTICATE, the begin (job) commits
 * before the CREDIT is wrapped, the receipt is verified, the mark (job) commits, then told.
 * The begin's step decides: sent, or (begun at another counter) taken as applied with no
 * CREDIT. A lost begin, a purse read not under the R-MAC and the se's refusal send no
 * CREDIT or mark nothing. */
static void test_refund_credit(void **state)
{
	uint8_t purse[12] = { 0 }, receipt[SVC_RECEIPT_LEN];
	struct svc_sam_reply r = { .sw = 0x9000, .data = purse, .n = sizeof(purse) };
	struct svc v;
	struct fake f;

	(void)state;
	refund_to_begin(&v, &f, 4);
	v.rf_step = RELAY_CREDIT_SEND; /* what the adapter's job decided */
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(v.phase, SVC_PH_NONE);
	next_command(&v, &f, 0x32);
	make_receipt(receipt, 0x100);
	unwrapped(&v, 0x9000, receipt, sizeof(receipt));
	assert_int_equal(last(&f)->kind, SVC_SAM_VERIFY);
	assert_int_equal(sam_ok(&v, SVC_SAM_VERIFY), 0);
	assert_int_equal(last(&f)->ev, EV_JOB);
	assert_int_equal(v.state, SV_COMMIT);
	assert_int_equal(count(&f, EV_TELL, SVC_T_REFUNDED), 0);
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(last(&f)->kind, SVC_T_REFUNDED);
	assert_int_equal(v.counter, 5);
	assert_int_equal(v.balance, 700);
	assert_int_equal(v.state, SV_IDLE);
	assert_int_equal(sam_ok(&v, SVC_SAM_CLOSE), 0);
	assert_int_equal(v.refs, 0);

	/* begun at 4 before, the se at 5 now: applied, its mark lost; told, no CREDIT */
	refund_to_begin(&v, &f, 5);
	v.rf_step = RELAY_CREDIT_APPLIED;
	assert_int_equal(svc_job_done(&v, &fake_io, 0, 0), 0);
	assert_int_equal(last(&f)->kind, SVC_T_REFUNDED);
	assert_int_equal(f.r[f.n - 2].kind, SVC_SAM_CLOSE);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_WRAP), 0);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_VERIFY), 0);
	assert_int_equal(count(&f, EV_JOB, 0), 1);
	assert_int_equal(v.state, SV_IDLE);
	assert_int_equal(v.balance, 0x1BC);
	assert_int_equal(sam_ok(&v, SVC_SAM_CLOSE), 0);
	assert_int_equal(v.refs, 0);
	/* marked done meanwhile (another session): the same, nothing sent */
	refund_to_begin(&v, &f, 5);
	v.rf_step = RELAY_CREDIT_DONE;
	svc_job_done(&v, &fake_io, 0, 0);
	assert_int_equal(last(&f)->kind, SVC_T_REFUNDED);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_WRAP), 0);

	/* the begin lost with its batch: the session ends, no CREDIT (the refund stays due) */
	refund_to_begin(&v, &f, 4);
	svc_job_done(&v, &fake_io, TB_E_DB, 0);
	assert_int_equal(last(&f)->kind, SVC_T_OP_LOST);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_WRAP), 0);
	assert_int_equal(v.has_handle, 0);
	assert_int_equal(v.state, SV_IDLE);

	/* a purse answer not under the R-MAC: failed, nothing recorded */
	setup_svc(&v, &f);
	refund_due(&v);
	open_channel(&v, &f, 0x30);
	svc_sam_done(&v, &fake_io, SVC_SAM_UNWRAP, &r);
	assert_int_equal(last(&f)->kind, SVC_T_FAILED);
	assert_int_equal(count(&f, EV_JOB, 0), 0);

	/* the se refuses the CREDIT: told, no receipt, no mark (the refund stays due) */
	refund_to_begin(&v, &f, 4);
	v.rf_step = RELAY_CREDIT_SEND;
	svc_job_done(&v, &fake_io, 0, 0);
	next_command(&v, &f, 0x32);
	unwrapped(&v, 0x6A84, NULL, 0);
	assert_int_equal(last(&f)->kind, SVC_T_REFUSED);
	assert_int_equal(count(&f, EV_JOB, 0), 1);
	assert_int_equal(count(&f, EV_SAM, SVC_SAM_VERIFY), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topup_confirms_after_commit),
		cmocka_unit_test(test_topup_failed_commit),
		cmocka_unit_test(test_ticket_commit_first),
		cmocka_unit_test(test_ticket_failed_commit),
		cmocka_unit_test(test_ticket_refused_revokes),
		cmocka_unit_test(test_leave_frees),
		cmocka_unit_test(test_stray_replies_ignored),
		cmocka_unit_test(test_select_answers),
		cmocka_unit_test(test_backup_two_commands),
		cmocka_unit_test(test_next_command_refused),
		cmocka_unit_test(test_flag_registers_key),
		cmocka_unit_test(test_restore),
		cmocka_unit_test(test_refund_credit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
