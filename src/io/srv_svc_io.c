/* srv_svc_io.c - the engine of server/svc.h on the server's loop: its APDUs, sam requests,
 * db work and texts turned into srv_net frames, sam_client calls and one db batch per loop
 * turn (the texts: srv_svc_text.c; the vault's db work: srv_svc_vault.c; the relay's frames
 * and records: srv_svc_relay.c).
 * What stays true: the engine hears a db outcome only after its batch committed (or failed as
 * a whole); texts and log lines carry no keys or APDU data. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "io/db_io.h"
#include "io/sam_client.h"
#include "io/srv_net.h"
#include "io/srv_svc_int.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "se/se.h"
#include "lib/rmsg.h"
#include "server/ledger.h"
#include "server/relay_book.h"
#include "server/rules.h"

#define SVC_CHALLENGE_LEN 8u

/* A sam call waiting for its reply: which engine request it answers. */
struct svc_call {
	struct srv_svc *v;
	uint8_t kind;              /* enum svc_sam_kind */
	struct svc_call *prev, *next;
};

int64_t svc_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------ engine adapter --- */

struct srv_svc *svc_of(const struct svc *v)
{
	return v->user;
}

static void svc_free(struct srv_svc *x)
{
	if (x->all_prev != NULL)
		x->all_prev->all_next = x->all_next;
	else
		x->h->all = x->all_next;
	if (x->all_next != NULL)
		x->all_next->all_prev = x->all_prev;
	free(x);
}

/* The live session of v, or NULL once it has ended. */
struct srv_session *svc_sess(const struct svc *v)
{
	struct srv_svc *x = svc_of(v);

	return v->gone ? NULL : srv_session_get(x->h->srv, x->ref);
}

static int svc_io_live(const struct svc *v)
{
	return svc_sess(v) != NULL;
}

static int svc_io_apdu(struct svc *v, uint32_t seq, const uint8_t *apdu, size_t n)
{
	struct proto_msg m = { .type = PROTO_SE_APDU };
	struct srv_session *s = svc_sess(v);

	if (s == NULL)
		return TB_E_INTERNAL;
	m.u.apdu.seq = seq;
	m.u.apdu.data = apdu;
	m.u.apdu.n = n;
	return srv_send_msg(s, &m);
}

static void svc_call_unlink(struct srv_svc_host *d, struct svc_call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
}

/* The reply decoded for the request it answers; undecodable = failed. */
static void svc_decode(uint8_t kind, int err, const uint8_t *b, size_t n,
		       struct svc_sam_reply *r)
{
	struct sam_open_reply o;
	struct sam_step_reply st;
	struct sam_unwrap_reply u;

	memset(r, 0, sizeof(*r));
	r->err = err;
	if (err != 0)
		return;
	if (kind == SVC_SAM_OPEN || kind == SVC_SAM_R_OPEN || kind == SVC_SAM_RK_OPEN) {
		r->err = sam_dec_scp_open(b, n, &o);
		r->handle = o.handle;
		r->apdu = o.apdu;
		r->apdu_n = o.n;
	} else if (kind == SVC_SAM_STEP1 || kind == SVC_SAM_R_STEP1 || kind == SVC_SAM_RK_STEP1) {
		r->err = sam_dec_scp_step(b, n, &st);
		if (r->err == 0 && st.state != SAM_SS_EA_SPEC)
			r->err = TB_E_INTERNAL;
		r->ea = st.ea;
		r->ea_n = st.ea_n;
		r->wrapped = st.wrapped;
		r->wrapped_n = st.wrapped_n;
	} else if (kind == SVC_SAM_UNWRAP || kind == SVC_SAM_R_UNWRAP || kind == SVC_SAM_RK_UNWRAP) {
		r->err = sam_dec_scp_unwrap(b, n, &u);
		r->sw = u.sw;
		r->authenticated = u.authenticated;
		r->data = u.data;
		r->n = u.n;
	} else {
		r->data = b;
		r->n = n;
	}
}

static const struct svc_io srv_svc_engine_io;

static void svc_sam_reply(void *arg, int err, const uint8_t *b, size_t n)
{
	struct svc_call *c = arg;
	struct srv_svc *x = c->v;
	uint8_t kind = c->kind;
	struct svc_sam_reply r;

	svc_call_unlink(x->h, c);
	free(c);
	svc_decode(kind, err, b, n, &r);
	if (svc_sam_done(&x->core, &srv_svc_engine_io, kind, &r))
		svc_free(x);
	/* An opened personal-auth key, or an opened backup: not left in the client's read
	 * buffer (which the sam client owns and reuses; its bytes are ours to clear here). */
	if ((kind == SVC_SAM_R_OPENBLOB || kind == SVC_SAM_OPENBLOB) && b != NULL)
		ct_wipe((uint8_t *)(uintptr_t)b, n);
}

/* The request in the sam's encoding. */
static int svc_encode(const struct svc_sam_req *rq, struct wr *w, uint8_t *type)
{
	switch (rq->kind) {
	case SVC_SAM_CLOSE:
	case SVC_SAM_R_CLOSE:
		*type = SAM_SCP_CLOSE;
		return sam_enc_scp_handle(w, rq->handle, NULL, 0);
	case SVC_SAM_OPEN:
		*type = SAM_SCP_OPEN;
		return sam_enc_scp_open(w, SAM_FAM_SE_SERVER, 0, rq->serial, 0x33, SVC_CHALLENGE_LEN,
					se_wallet_aid, SE_WALLET_AID_LEN);
	case SVC_SAM_RK_OPEN: /* the se names its KVN; rq->data: the ISD's aid */
		*type = SAM_SCP_OPEN;
		return sam_enc_scp_open(w, SAM_FAM_SE_SERVER, SAM_KVN_CARD, rq->serial, 0x33,
					SVC_CHALLENGE_LEN, rq->data, rq->n);
	case SVC_SAM_PUT_KEY:
		*type = SAM_SCP_PUT_KEY;
		return sam_enc_scp_put_key(w, rq->handle, rq->family, rq->kvn);
	case SVC_SAM_R_OPEN:
		*type = SAM_SCP_OPEN;
		return sam_enc_scp_open_given(w, SAM_FAM_READER_SERVER, 0, rq->serial, 0x33, rq->data,
					      rq->n, rmsg_reader_aid, RMSG_READER_AID_LEN);
	case SVC_SAM_R_WRAP:
		*type = SAM_SCP_WRAP;
		return sam_enc_scp_handle(w, rq->handle, rq->data, rq->n);
	case SVC_SAM_STEP1:
	case SVC_SAM_STEP2:
	case SVC_SAM_RK_STEP1:
	case SVC_SAM_RK_STEP2:
	case SVC_SAM_R_STEP1:
	case SVC_SAM_R_STEP2:
		*type = SAM_SCP_STEP;
		return sam_enc_scp_step(w, rq->handle, rq->data, rq->n, rq->cmd, rq->cmd_n);
	case SVC_SAM_UNWRAP:
	case SVC_SAM_RK_UNWRAP:
	case SVC_SAM_R_UNWRAP:
		*type = SAM_SCP_UNWRAP;
		return sam_enc_scp_handle(w, rq->handle, rq->data, rq->n);
	case SVC_SAM_VERIFY:
	case SVC_SAM_R_VERIFY:
		*type = SAM_RECEIPT_VERIFY;
		return sam_enc_receipt(w, rq->kvn, rq->serial, rq->mac, rq->mac_n, rq->data, rq->n);
	case SVC_SAM_SIGN:
		*type = SAM_SIGN;
		return sam_enc_sign(w, SAM_SIGN_FLAG, rq->data, rq->n);
	case SVC_SAM_WRAP:
		*type = SAM_SCP_WRAP;
		return sam_enc_scp_handle(w, rq->handle, rq->cmd, rq->cmd_n);
	case SVC_SAM_SEAL:
	case SVC_SAM_OPENBLOB:
	case SVC_SAM_R_OPENBLOB:
		*type = rq->kind == SVC_SAM_SEAL ? SAM_SEAL_BLOB : SAM_OPEN_BLOB;
		if (rq->id == NULL)
			return TB_E_INTERNAL;
		return sam_enc_blob(w, (const uint8_t *)rq->id, strlen(rq->id), rq->data, rq->n);
	default:
		return TB_E_INTERNAL;
	}
}

static int svc_io_sam(struct svc *v, const struct svc_sam_req *rq)
{
	struct srv_svc *x = svc_of(v);
	struct srv_svc_host *d = x->h;
	uint8_t body[SAM_APDU_MAX + 64], type = 0;
	struct wr w = wr_init(body, sizeof(body));
	struct svc_call *c;
	int rc;

	rc = svc_encode(rq, &w, &type);
	if (rc == 0 && (c = malloc(sizeof(*c))) == NULL)
		rc = TB_E_NOMEM;
	if (rc != 0) {
		ct_wipe(body, w.len);
		return rc;
	}
	c->v = x;
	c->kind = rq->kind;
	c->prev = NULL;
	c->next = d->calls;
	if (c->next != NULL)
		c->next->prev = c;
	d->calls = c;
	rc = sam_client_call(d->sam, type, body, w.len, svc_sam_reply, c);
	ct_wipe(body, w.len); /* a PAUTH SET, a key to seal: the client has its copy */
	if (rc != 0) {
		svc_call_unlink(d, c);
		free(c);
	}
	return rc;
}

static void svc_io_job(struct svc *v)
{
	struct srv_svc *x = svc_of(v);
	struct srv_svc_host *d = x->h;

	x->next_job = NULL;
	*d->jobs_tail = x;
	d->jobs_tail = &x->next_job;
	d->njobs++;
	/* The flush runs at the lowest priority: after everything else of this turn. */
	if (!event_pending(d->flush, EV_TIMEOUT, NULL))
		event_active(d->flush, EV_TIMEOUT, 0);
}

static const struct svc_io srv_svc_engine_io = {
	.aid = se_wallet_aid,
	.aid_n = SE_WALLET_AID_LEN,
	.apdu = svc_io_apdu,
	.sam = svc_io_sam,
	.job = svc_io_job,
	.tell = svc_io_tell,
	.live = svc_io_live,
	.relay_down = svc_io_relay_down,
	.stage = svc_io_stage,
	.reader_ok = svc_io_reader_ok,
	.rjob = svc_io_rjob,
	.pauth_need = svc_io_pauth_need,
	.blob = svc_io_blob,
};

/* ------------------------------------------------------ group commit --- */

/* The se's purse is the source of truth: what it held before this credit (the receipt's
 * balance less its amount) and the ledger's purse must agree. When the se holds more and
 * the receipt before this one (counter - 1) is not in the ledger, credits the se applied
 * were never recorded (the server died before their commit): the difference is booked as
 * a top-up under that receipt's key, once (the key is UNIQUE). Inside the request: it
 * commits with this receipt or not at all. 0, or a TB_E_DB* that spoils the request. */
static int svc_reconcile(struct srv_svc_host *d, struct svc *v, const struct ledger_req *rq)
{
	struct ledger_req gap = *rq;
	struct ledger_reply out;
	struct db_transfer t;
	struct db_applied ap;
	int64_t have = 0, before = (int64_t)v->balance - (int64_t)v->amount;
	int rc;

	if (v->counter <= 1 || before <= 0)
		return 0;
	if ((rc = ledger_balance(d->db, v->serial, &have)) != 0)
		return rc;
	if (before <= have || before - have > (int64_t)LEDGER_AMOUNT_MAX)
		return 0;
	if ((rc = ledger_key_se(v->serial, v->counter - 1, gap.key)) != 0)
		return rc;
	rc = d->db->ops->transfer_get(d->db, gap.key, &t, &ap);
	if (rc != TB_E_DB_NOT_FOUND)
		return rc == 0 ? 0 : rc;
	gap.amount = (uint32_t)(before - have);
	rc = ledger_topup(d->db, &gap, &out);
	if (rc == 0 && d->log != NULL)
		fprintf(d->log, "srv event=reconciled amount=%u counter=%u\n", gap.amount,
			v->counter - 1);
	/* A refusal (limits, a locked se) leaves the gap for later; db failures spoil. */
	return rc == TB_E_DB || rc == TB_E_DB_CONSTRAINT ? rc : 0;
}

/* A refund's credit, in its own request of the batch: begun at the purse counter read
 * (or found applied) before the CREDIT is sent; marked done once its receipt verified. */
static int svc_refund_job(struct srv_svc_host *d, struct svc *v, int64_t now)
{
	struct relay_due due = { .xfer = v->rf_xfer, .amount = v->amount, .service = v->service,
				 .reader = v->rf_reader };
	int replayed = 0;

	if (v->state == SV_JOB)
		return relay_refund_begin(d->db, v->serial, &due, v->c0, now, &v->rf_step);
	return relay_refund_credited(d->db, v->serial, &due, v->counter, now, &replayed);
}

/* The revocation of a ticket the se refused, inside its own request of the batch. */
static int svc_ticket_revoke(struct srv_svc_host *d, struct svc *v)
{
	struct db_ticket t;
	int rc, r2;

	if ((rc = db_req_begin(d->db)) != 0)
		return rc;
	r2 = d->db->ops->ticket_get(d->db, v->ticket, &t);
	if (r2 == 0)
		r2 = d->db->ops->ticket_update(d->db, v->ticket, t.uses_left, DB_TICKET_REVOKED);
	rc = db_req_end(d->db, r2 == 0);
	return r2 != 0 ? r2 : rc;
}

/* A ticket's row, inside its own request of the batch. */
static int svc_ticket_job(struct srv_svc_host *d, struct svc *v, int64_t now)
{
	struct srv_ticket_req rq;
	struct db_applied out;
	int rc, r2;

	if (v->state == SV_REVOKE)
		return svc_ticket_revoke(d, v);
	memset(&rq, 0, sizeof(rq));
	memcpy(rq.key, v->key, sizeof(rq.key));
	memcpy(rq.se, v->serial, sizeof(rq.se));
	rq.service = v->service;
	rq.valid_from = v->valid_from;
	rq.valid_until = v->valid_until;
	rq.uses = 1;
	rq.now = now;
	if ((rc = db_req_begin(d->db)) != 0)
		return rc;
	r2 = srv_ticket_issue(d->db, &rq, &out);
	rc = db_req_end(d->db, r2 == 0);
	if (r2 != 0)
		return r2;
	if (rc == 0)
		v->ticket = out.id;
	return rc;
}

void srv_svc_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_svc_host *d = arg;
	struct srv_svc *list = d->jobs, *rlist = d->rjobs, *x, *next;
	size_t n = d->njobs;
	int64_t now = (int64_t)time(NULL);
	int rc;

	(void)fd;
	(void)what;
	d->jobs = NULL;
	d->jobs_tail = &d->jobs;
	d->rjobs = NULL;
	d->rjobs_tail = &d->rjobs;
	d->njobs = 0;
	if (list == NULL && rlist == NULL)
		return;
	rc = db_batch_begin(d->db);
	for (x = rlist; x != NULL; x = x->next_rjob)
		x->job_rc = rc != 0 ? rc : svc_relay_book(d, &x->core, now);
	for (x = list; x != NULL; x = x->next_job) {
		struct svc *v = &x->core;
		struct ledger_req rq;

		x->job_rc = rc;
		if (rc != 0)
			continue;
		if (v->op == SVC_OP_TICKET) {
			x->job_rc = svc_ticket_job(d, v, now);
			continue;
		}
		if (v->op == SVC_OP_REFUND) {
			x->job_rc = svc_refund_job(d, v, now);
			continue;
		}
		if (v->state == SV_JOB) {
			x->job_rc = svc_phase_job(d, v, now);
			continue;
		}
		memset(&rq, 0, sizeof(rq));
		memcpy(rq.se, v->serial, sizeof(rq.se));
		rq.service = v->service;
		rq.amount = v->amount;
		rq.time = now;
		rq.now = now;
		x->job_rc = ledger_key_se(v->serial, v->counter, rq.key);
		if (x->job_rc == 0 && (x->job_rc = db_req_begin(d->db)) == 0) {
			int r2 = svc_reconcile(d, v, &rq);

			if (r2 == 0)
				r2 = ledger_topup(d->db, &rq, &x->job_out);
			x->job_rc = db_req_end(d->db, r2 == 0);
			if (r2 != 0)
				x->job_rc = r2;
		}
	}
	if (rc == 0)
		rc = db_batch_commit(d->db);
	d->batches++;
	d->batched += n;
	if (n > d->batch_max)
		d->batch_max = n;
	if (rc != 0) {
		d->commit_fail++;
		if (d->log != NULL)
			fprintf(d->log, "srv event=commit_failed batch=%zu err=%d\n", n, rc);
	}
	/* Only now, with the batch durable (or refused as a whole), do the replies go. */
	for (x = rlist; x != NULL; x = next) {
		next = x->next_rjob;
		(void)svc_relay_job_done(&x->core, &srv_svc_engine_io, rc != 0 ? rc : x->job_rc);
		if (svc_put_ref(&x->core))
			svc_free(x);
	}
	for (x = list; x != NULL; x = next) {
		next = x->next_job;
		if (svc_job_done(&x->core, &srv_svc_engine_io, rc != 0 ? rc : x->job_rc,
				 x->job_out.replayed))
			svc_free(x);
	}
}

/* ---------------------------------------------------------- the host --- */

void srv_svc_host_init(struct srv_svc_host *h)
{
	memset(h, 0, sizeof(*h));
	h->jobs_tail = &h->jobs;
	h->rjobs_tail = &h->rjobs;
}

void srv_svc_host_release(struct srv_svc_host *h)
{
	while (h->calls != NULL) {
		struct svc_call *c = h->calls;

		h->calls = c->next;
		free(c);
	}
	while (h->all != NULL)
		svc_free(h->all);
}

struct srv_svc *srv_svc_open(struct srv_svc_host *h, struct srv_session *s,
			     const uint8_t serial[PROTO_SERIAL_LEN])
{
	struct srv_svc *x = calloc(1, sizeof(*x));

	if (x == NULL)
		return NULL;
	svc_init(&x->core, serial, x);
	x->h = h;
	x->ref = srv_session_ref(s);
	x->all_next = h->all;
	if (h->all != NULL)
		h->all->all_prev = x;
	h->all = x;
	return x;
}

void srv_svc_select(struct srv_svc *x, const struct svc_offer *o)
{
	srv_svc_select_op(x, o, SVC_SEL_DEFAULT);
}

void srv_svc_select_op(struct srv_svc *x, const struct svc_offer *o, uint8_t op)
{
	svc_select_op(&x->core, &srv_svc_engine_io, o, op, x->h->sam != NULL, (int64_t)time(NULL),
		      svc_now_us());
}

void srv_svc_lock(struct srv_svc *x, int lock)
{
	if (x->h->sam != NULL)
		svc_lock_start(&x->core, &srv_svc_engine_io, lock, svc_now_us());
}

void srv_svc_stage(struct srv_svc *x)
{
	if (x->h->sam != NULL)
		svc_relay_stage(&x->core, &srv_svc_engine_io);
}

void srv_svc_relay_up(struct srv_svc *x, const struct proto_relay_up *r)
{
	svc_relay_up(&x->core, &srv_svc_engine_io, r->relay, r->service, r->data, r->n,
		     svc_now_us());
}

void srv_svc_se_resp(struct srv_svc *x, const struct proto_apdu *a)
{
	svc_se_resp(&x->core, &srv_svc_engine_io, a->seq, a->data, a->n);
}

void srv_svc_leave(struct srv_svc *x)
{
	if (svc_leave(&x->core, &srv_svc_engine_io))
		svc_free(x);
}
