/* svc.c - the per-phone service engine: SELECT, the SCP03 channel through the phone (one
 * or several secured commands), the sam's steps and the db work, as decisions over struct
 * svc with no I/O; the vault (backup, restore, personal-auth keys) is in svc_vault.c, the
 * flag in svc_flag.c, arm, permit and lock in svc_arm.c.
 * What stays true: a confirmation is told only after its commit outcome is 0 (a ticket's
 * only after its committed record is stored in the se); a failed commit never confirms;
 * v->cmd (a personal-auth key, in PAUTH SET) is wiped once the sam has it. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "hex.h"
#include "svc_int.h"

void svc_tell_kind(struct svc *v, const struct svc_io *io, uint8_t kind)
{
	struct svc_tell t = { .kind = kind };

	io->tell(v, &t);
}

static int svc_live(const struct svc *v, const struct svc_io *io)
{
	return !v->gone && io->live(v);
}

int svc_sam_call(struct svc *v, const struct svc_io *io, const struct svc_sam_req *rq)
{
	int rc = io->sam(v, rq);

	if (rc == 0)
		v->refs++;
	return rc;
}

/* 1 when nothing refers to v any more after dropping one reference. */
static int svc_put(struct svc *v)
{
	if (v->refs > 0)
		v->refs--;
	return v->gone && v->refs == 0;
}

/* Ends the sam session of v, if any (fire and forget). */
void svc_close_handle(struct svc *v, const struct svc_io *io)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_CLOSE };

	if (!v->has_handle)
		return;
	v->has_handle = 0;
	rq.handle = v->handle;
	(void)svc_sam_call(v, io, &rq);
}

/* The operation cannot go on: the session ends with an error (the sam or our side failed). */
void svc_fail(struct svc *v, const struct svc_io *io, const char *why)
{
	struct svc_tell t = { .kind = SVC_T_FAILED, .why = why };

	svc_close_handle(v, io);
	ct_wipe(v->cmd, sizeof(v->cmd));
	ct_wipe(v->next, sizeof(v->next));
	v->state = SV_IDLE;
	v->phase = SVC_PH_NONE;
	if (svc_live(v, io))
		io->tell(v, &t);
}

static void svc_queue_job(struct svc *v, const struct svc_io *io)
{
	v->refs++;
	io->job(v);
}

void svc_queue_rjob(struct svc *v, const struct svc_io *io)
{
	v->refs++;
	io->rjob(v);
}

int svc_put_ref(struct svc *v)
{
	return svc_put(v);
}

/* The se refused (a status word): the phone hears it, the session goes on. A ticket the
 * se refused was never stored (an error status word changes nothing in the se): its row,
 * committed before, is revoked first, and the phone hears it after that commit. */
void svc_refused(struct svc *v, const struct svc_io *io, uint16_t sw)
{
	struct svc_tell t = { .kind = SVC_T_REFUSED, .sw = sw };

	svc_close_handle(v, io);
	v->state = SV_IDLE;
	if (v->op == SVC_OP_TICKET) {
		v->sw = sw;
		v->state = SV_REVOKE;
		svc_queue_job(v, io);
		return;
	}
	io->tell(v, &t);
}

int svc_send_apdu(struct svc *v, const struct svc_io *io, const uint8_t *apdu, size_t n)
{
	return io->apdu(v, ++v->seq, apdu, n);
}

/* A db rule refused (the session goes on) or the db lost the work (it ends). */
static int svc_db_lost(int rc)
{
	return rc == TB_E_DB || rc == TB_E_DB_CONSTRAINT || rc == TB_E_DB_CONFLICT ||
	       rc == TB_E_NOMEM;
}

void svc_tell_rc(struct svc *v, const struct svc_io *io, int rc)
{
	struct svc_tell t = { .kind = svc_db_lost(rc) ? SVC_T_OP_LOST : SVC_T_OP_RULE, .rc = rc };

	v->state = SV_IDLE;
	io->tell(v, &t);
}

/* The channel's next command (in v->cmd) to the sam for wrapping; v->cmd is wiped once
 * the sam has it. Its SE_APDU goes when the wrapped form comes back (svc_on_wrap). */
void svc_chan_next(struct svc *v, const struct svc_io *io)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_WRAP, .handle = v->handle, .cmd = v->cmd,
				  .cmd_n = v->cmd_n };
	int rc = svc_sam_call(v, io, &rq);

	ct_wipe(v->cmd, sizeof(v->cmd));
	if (rc != 0) {
		svc_fail(v, io, "sam");
		return;
	}
	v->state = SV_WRAP;
}

/* The db work of v->phase, in this loop turn's batch. */
void svc_queue_phase(struct svc *v, const struct svc_io *io, uint8_t phase)
{
	v->phase = phase;
	v->state = SV_JOB;
	svc_queue_job(v, io);
}

/* The channel for v->cmd starts: SELECT wallet (plain), then SCP_OPEN at its answer. */
void svc_channel_start(struct svc *v, const struct svc_io *io)
{
	uint8_t apdu[6 + SVC_AID_MAX] = { 0x00, 0xA4, 0x04, 0x00, (uint8_t)io->aid_n };

	if (io->aid_n <= SVC_AID_MAX)
		memcpy(apdu + 5, io->aid, io->aid_n); /* Le 00 follows: the array is zeroed */
	v->icmd = 0;
	if (io->aid_n > SVC_AID_MAX || svc_send_apdu(v, io, apdu, 6 + io->aid_n) != 0) {
		svc_fail(v, io, "send");
		return;
	}
	v->state = SV_SELECT;
}

/* ---------------------------------------------------------- sam replies --- */

static void svc_on_verify(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_VERIFY)
		return;
	if (r->err != 0) {
		svc_fail(v, io, "receipt MAC");
		return;
	}
	/* a restore's credit is no ledger row (the money moved with srv_se_lost): on */
	if (v->op == SVC_OP_RESTORE) {
		svc_restore_next(v, io);
		return;
	}
	v->state = SV_COMMIT;
	svc_queue_job(v, io);
}

/* TICKET STORE or FLAG SET answered 9000 under the R-MAC. A ticket's row was committed
 * before the channel opened, so this is its confirmation; a flag has no row. */
static void svc_stored(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (!r->authenticated || r->n != 0) {
		svc_fail(v, io, "store");
		return;
	}
	svc_close_handle(v, io);
	v->state = SV_IDLE;
	if (v->op == SVC_OP_FLAG && v->pauth_reg) {
		/* the se holds the key now: the vault and the identifier follow (then told) */
		svc_queue_phase(v, io, SVC_PH_PAUTH);
		return;
	}
	svc_tell_kind(v, io, v->op == SVC_OP_TICKET ? SVC_T_TICKET_ISSUED
			     : v->op == SVC_OP_ARM  ? SVC_T_ARMED
			     : v->op == SVC_OP_PERMIT ? SVC_T_PERMIT
			     : v->op == SVC_OP_LOCK || v->op == SVC_OP_UNLOCK ? SVC_T_LOCK_APPLIED
						      : SVC_T_FLAG_SET);
}

/* A CREDIT's receipt (top-up, restore): R-MAC authenticated, this se's, a credit of the
 * amount asked; its MAC goes to the sam. */
void svc_receipt_check(struct svc *v, const struct svc_io *io,
		       const struct svc_sam_reply *r)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_VERIFY };
	struct svc_receipt rc;

	/* The R-MAC proved the receipt to us already; the receipt MAC is what lets it be
	 * checked again later, so it is verified before it becomes a ledger row. */
	if (!r->authenticated || svc_receipt_parse(r->data, r->n, &rc) != 0 ||
	    !ct_eq(rc.serial, v->serial, sizeof(rc.serial)) || rc.kind != SVC_TX_CREDIT ||
	    rc.amount != v->amount) {
		svc_fail(v, io, "receipt");
		return;
	}
	v->counter = rc.counter;
	v->balance = rc.balance;
	rq.kvn = rc.kvn;
	rq.serial = v->serial;
	rq.mac = rc.mac;
	rq.mac_n = sizeof(rc.mac);
	rq.data = r->data;
	rq.n = SVC_RECEIPT_BODY;
	if (svc_sam_call(v, io, &rq) != 0) {
		svc_fail(v, io, "sam");
		return;
	}
	v->state = SV_VERIFY;
}

static void svc_on_unwrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_UNWRAP)
		return;
	if (r->err != 0) {
		svc_fail(v, io, "unwrap");
		return;
	}
	v->icmd++;
	if (v->op == SVC_OP_BACKUP || v->op == SVC_OP_RESTORE) {
		svc_vault_unwrap(v, io, r);
		return;
	}
	if (r->sw != 0x9000) {
		svc_refused(v, io, r->sw);
		return;
	}
	if (v->op == SVC_OP_FLAG && v->pauth_reg && v->icmd == 1) {
		/* PAUTH SET done: FLAG SET is the channel's next command */
		if (!r->authenticated || r->n != 0) {
			svc_fail(v, io, "personal-auth key");
			return;
		}
		memcpy(v->cmd, v->next, v->next_n);
		v->cmd_n = v->next_n;
		svc_chan_next(v, io);
		return;
	}
	if (v->op == SVC_OP_REFUND && v->icmd == 1) {
		/* the purse first: the credit is recorded begun at its counter */
		svc_refund_purse(v, io, r);
		return;
	}
	if (v->op != SVC_OP_TOPUP && v->op != SVC_OP_REFUND) {
		svc_stored(v, io, r);
		return;
	}
	svc_receipt_check(v, io, r);
}

/* The next command wrapped: to the se through the phone. */
static void svc_on_wrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_WRAP)
		return;
	if (r->err != 0 || r->data == NULL || r->n == 0) {
		svc_fail(v, io, "wrap");
		return;
	}
	if (svc_send_apdu(v, io, r->data, r->n) != 0) {
		svc_fail(v, io, "send");
		return;
	}
	v->state = SV_NEXT;
}

static void svc_on_step2(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (r->err != 0)
		svc_fail(v, io, "external authenticate");
}

static void svc_on_step1(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (r->err != 0 || r->ea == NULL || r->wrapped == NULL) {
		svc_fail(v, io, "initialize update");
		return;
	}
	/* EXTERNAL AUTHENTICATE and the command go together: one round trip fewer. */
	if (svc_send_apdu(v, io, r->ea, r->ea_n) != 0 ||
	    svc_send_apdu(v, io, r->wrapped, r->wrapped_n) != 0) {
		svc_fail(v, io, "send");
		return;
	}
	v->state = SV_EA;
}

static void svc_on_open(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (r->err != 0) {
		svc_fail(v, io, "open");
		return;
	}
	v->handle = r->handle;
	v->has_handle = 1;
	if (svc_send_apdu(v, io, r->apdu, r->apdu_n) != 0) {
		svc_fail(v, io, "send");
		return;
	}
	v->state = SV_IU;
}

typedef void (*svc_reply_fn)(struct svc *v, const struct svc_io *io,
			     const struct svc_sam_reply *r);

static const svc_reply_fn svc_replies[SVC_SAM_KINDS] = {
	[SVC_SAM_OPEN] = svc_on_open,     [SVC_SAM_STEP1] = svc_on_step1,
	[SVC_SAM_STEP2] = svc_on_step2,   [SVC_SAM_UNWRAP] = svc_on_unwrap,
	[SVC_SAM_VERIFY] = svc_on_verify, [SVC_SAM_SIGN] = svc_on_sign,
	[SVC_SAM_WRAP] = svc_on_wrap,     [SVC_SAM_SEAL] = svc_on_seal,
	[SVC_SAM_OPENBLOB] = svc_on_openblob,
	[SVC_SAM_RK_OPEN] = svc_rk_on_open,   [SVC_SAM_RK_STEP1] = svc_rk_on_step1,
	[SVC_SAM_RK_STEP2] = svc_rk_on_step2, [SVC_SAM_RK_UNWRAP] = svc_rk_on_unwrap,
	[SVC_SAM_PUT_KEY] = svc_rk_on_put_key,
};

int svc_sam_done(struct svc *v, const struct svc_io *io, uint8_t kind,
		 const struct svc_sam_reply *r)
{
	svc_reply_fn fn = kind < SVC_SAM_KINDS ? svc_replies[kind] : NULL;

	if (kind >= SVC_SAM_R_OPEN && kind < SVC_SAM_KINDS) {
		svc_relay_sam(v, io, kind, r);
		return svc_put(v);
	}
	if (svc_live(v, io)) {
		if (fn != NULL)
			fn(v, io, r);
	} else if ((kind == SVC_SAM_OPEN || kind == SVC_SAM_RK_OPEN) && r->err == 0) {
		/* opened for a phone that left meanwhile: close it at once */
		v->handle = r->handle;
		v->has_handle = 1;
		svc_close_handle(v, io);
	}
	return svc_put(v);
}

/* ------------------------------------------------------------- starts --- */

/* A CREDIT of v->amount through the channel (a top-up). */
void svc_credit_start(struct svc *v, const struct svc_io *io)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));

	if (svc_cmd_credit(&w, v->amount) != 0) {
		svc_fail(v, io, "credit");
		return;
	}
	v->cmd_n = w.len;
	svc_tell_kind(v, io, SVC_T_START);
	svc_channel_start(v, io);
}

static void svc_topup_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
			    int64_t now_us)
{
	v->op = SVC_OP_TOPUP;
	v->service = sv->id;
	v->amount = sv->item1;
	v->t0_us = now_us;
	svc_credit_start(v, io);
}

/* A ticket: its db row first (the db gives the id the se's record carries), committed in
 * this loop turn's batch; the channel opens only after the commit (svc_ticket_issued). */
static void svc_ticket_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
			     int64_t now_s, int64_t now_us)
{
	uint8_t nonce[8];
	char *k = v->key;

	v->op = SVC_OP_TICKET;
	memcpy(k, "I:", 2);
	if (crypto_random(nonce, sizeof(nonce)) != 0 ||
	    hex_encode(v->serial, sizeof(v->serial), HEX_PUBLIC, k + 2, 2 * SVC_SERIAL_LEN + 1) != 0) {
		svc_fail(v, io, "random");
		return;
	}
	k[2 + 2 * SVC_SERIAL_LEN] = ':';
	if (hex_encode(nonce, sizeof(nonce), HEX_PUBLIC, k + 3 + 2 * SVC_SERIAL_LEN,
		       sizeof(v->key) - 3 - 2 * SVC_SERIAL_LEN) != 0) {
		svc_fail(v, io, "random");
		return;
	}
	v->service = sv->id;
	v->amount = 0;
	v->t0_us = now_us;
	v->valid_from = now_s;
	v->valid_until = now_s + SVC_TICKET_DAYS;
	svc_tell_kind(v, io, SVC_T_START);
	v->state = SV_ISSUE;
	svc_queue_job(v, io);
}

void svc_init(struct svc *v, const uint8_t serial[SVC_SERIAL_LEN], void *user)
{
	memset(v, 0, sizeof(*v));
	memcpy(v->serial, serial, sizeof(v->serial));
	v->user = user;
}

void svc_select(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		int has_sam, int64_t now_s, int64_t now_us)
{
	svc_select_op(v, io, sv, SVC_SEL_DEFAULT, has_sam, now_s, now_us);
}

void svc_select_op(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		   uint8_t op, int has_sam, int64_t now_s, int64_t now_us)
{
	if (sv == NULL) {
		svc_tell_kind(v, io, SVC_T_NO_SERVICE);
		return;
	}
	if (v->state != SV_IDLE) {
		svc_tell_kind(v, io, SVC_T_BUSY);
		return;
	}
	v->rekeyed = 0;
	if ((op == SVC_SEL_BACKUP || op == SVC_SEL_RESTORE) && has_sam)
		svc_vault_start(v, io, sv, op, now_s, now_us);
	else if (op == SVC_SEL_BACKUP || op == SVC_SEL_RESTORE)
		svc_tell_kind(v, io, SVC_T_UNAVAILABLE);
	else if (op != SVC_SEL_DEFAULT && has_sam)
		svc_arm_start(v, io, sv, op, now_s, now_us);
	else if (sv->kind == DB_SVC_EMONEY && sv->item1 > 0 && has_sam)
		svc_topup_start(v, io, sv, now_us);
	else if (sv->kind == DB_SVC_TICKET && has_sam)
		svc_ticket_start(v, io, sv, now_s, now_us);
	else if (sv->kind == DB_SVC_PAUTH && has_sam)
		svc_flag_start(v, io, sv, now_s, now_us);
	else
		svc_tell_kind(v, io, SVC_T_UNAVAILABLE);
}

/* ------------------------------------------------------------ the se --- */

/* The ticket's row is durable: its record goes to the se. The db's validity is
 * [from, until); the se's is [not_before, not_after], so not_after = until - 1. */
static void svc_ticket_issued(struct svc *v, const struct svc_io *io)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));
	struct svc_ticket tk = { .id = v->ticket, .service = v->service, .uses = 1 };

	tk.not_before = (uint32_t)v->valid_from;
	tk.not_after = (uint32_t)(v->valid_until - 1);
	if (svc_cmd_ticket_store(&w, &tk) != 0) {
		svc_fail(v, io, "ticket record");
		return;
	}
	v->cmd_n = w.len;
	svc_channel_start(v, io);
}

/* The sam request an awaited SE_RESP leads to, and the state after it (the caller let
 * only SV_SELECT, SV_IU, SV_EA, SV_CREDIT and SV_NEXT through). */
static int svc_resp_step(struct svc *v, const struct svc_io *io, const uint8_t *resp, size_t n)
{
	struct svc_sam_req rq = { .handle = v->handle, .data = resp, .n = n, .serial = v->serial };
	int rc;

	switch (v->state) {
	case SV_SELECT:
		rq.kind = SVC_SAM_OPEN;
		rq.data = NULL;
		rq.n = 0;
		v->state = SV_OPENING;
		break;
	case SV_IU:
		rq.kind = SVC_SAM_STEP1;
		rq.cmd = v->cmd;
		rq.cmd_n = v->cmd_n;
		v->state = SV_STEP1;
		rc = svc_sam_call(v, io, &rq);
		ct_wipe(v->cmd, sizeof(v->cmd)); /* the sam has it (a PAUTH SET holds a key) */
		return rc;
	case SV_EA:
		rq.kind = SVC_SAM_STEP2;
		v->state = SV_CREDIT;
		break;
	default: /* SV_CREDIT: pipelined behind the EA step, the sam answers in order;
		  * SV_NEXT: a next command's response */
		rq.kind = SVC_SAM_UNWRAP;
		v->state = SV_UNWRAP;
		break;
	}
	return svc_sam_call(v, io, &rq);
}

void svc_se_resp(struct svc *v, const struct svc_io *io, uint32_t seq, const uint8_t *resp,
		 size_t n)
{
	uint16_t sw;

	if (v->acked == v->seq || seq != v->acked + 1 || n < 2) {
		svc_tell_kind(v, io, SVC_T_RESP_UNASKED);
		return;
	}
	v->acked++;
	sw = (uint16_t)(resp[n - 2] << 8 | resp[n - 1]);
	if (v->state >= SV_RK_OPEN) {
		svc_rekey_resp(v, io, resp, n, sw);
		return;
	}
	/* No key set of the current KVN: an se personalised before a rotation (once). */
	if (v->state == SV_IU && sw == 0x6A88 && !v->rekeyed) {
		svc_rekey_start(v, io);
		return;
	}
	if (v->state != SV_SELECT && v->state != SV_IU && v->state != SV_EA &&
	    v->state != SV_CREDIT && v->state != SV_NEXT) {
		svc_tell_kind(v, io, SVC_T_RESP_UNEXPECTED);
		return;
	}
	if ((v->state == SV_SELECT || v->state == SV_IU) && sw != 0x9000) {
		svc_refused(v, io, sw);
		return;
	}
	if (svc_resp_step(v, io, resp, n) != 0)
		svc_fail(v, io, "sam");
}

/* ------------------------------------------------------- commit outcome --- */

/* A ticket's row committed (rc 0), refused by a rule, or lost with its batch; or the
 * revocation of a row the se refused (done or not, the phone hears the refusal). */
static void svc_ticket_done(struct svc *v, const struct svc_io *io, int rc)
{
	struct svc_tell t = { .kind = SVC_T_TICKET_REFUSED, .sw = v->sw, .rc = rc };

	if (v->state == SV_REVOKE) {
		v->state = SV_IDLE;
		io->tell(v, &t);
		return;
	}
	if (rc == 0) {
		svc_ticket_issued(v, io);
		return;
	}
	v->state = SV_IDLE;
	if (svc_db_lost(rc))
		t.kind = SVC_T_TICKET_LOST;
	else
		t.kind = SVC_T_TICKET_RULE;
	io->tell(v, &t);
}

int svc_job_done(struct svc *v, const struct svc_io *io, int rc, int replayed)
{
	struct svc_tell t = { .kind = SVC_T_TOPPED_UP, .rc = rc, .replayed = replayed };

	if (!svc_live(v, io)) {
		svc_close_handle(v, io);
		return svc_put(v);
	}
	if (v->op == SVC_OP_TICKET) {
		svc_ticket_done(v, io, rc);
		return svc_put(v);
	}
	if (v->op == SVC_OP_REFUND) {
		svc_refund_done(v, io, rc);
		return svc_put(v);
	}
	if (v->state == SV_JOB) {
		svc_phase_done(v, io, rc);
		return svc_put(v);
	}
	/* A lost commit: the se holds the credit; the ledger records its receipt
	 * S:<serial>:<counter> when it is seen again (docs/protocol-phone.md). */
	if (rc != 0)
		t.kind = SVC_T_TOPUP_LOST;
	svc_close_handle(v, io);
	v->state = SV_IDLE;
	io->tell(v, &t);
	return svc_put(v);
}

int svc_leave(struct svc *v, const struct svc_io *io)
{
	svc_close_handle(v, io);
	ct_wipe(v->cmd, sizeof(v->cmd));
	ct_wipe(v->next, sizeof(v->next));
	v->gone = 1;
	v->refs++;
	return svc_put(v);
}
