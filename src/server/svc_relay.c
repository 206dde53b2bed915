/* svc_relay.c - the server's end of a reader channel carried by the relay (docs/flows.md):
 * a host challenge staged at the phone, the reader's AUTH and DATA through the sam's host
 * role (reader <-> server key set, level 33), its records booked in the loop turn's batch,
 * the RESULT wrapped for the reader. No I/O: struct svc_io carries everything out.
 * What stays true: a RESULT (the reader's confirmation) leaves only after the records'
 * commit; a staged challenge answers one AUTH only; a record is booked on data the R-MAC
 * proved and, for money, a receipt the sam verified; a personal-auth proof is checked
 * against the key the sam opens from the vault, and that key is wiped at once. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "rmsg.h"
#include "svc_int.h"

static void rl_close(struct svc *v, const struct svc_io *io)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_R_CLOSE };

	if (!v->rl.has_handle)
		return;
	v->rl.has_handle = 0;
	rq.handle = v->rl.handle;
	(void)svc_sam_call(v, io, &rq);
}

static int rl_live(const struct svc *v, const struct svc_io *io)
{
	return !v->gone && io->live(v);
}

/* An 8F answer: the reader shows the reason; the exchange is over. */
static void rl_refuse(struct svc *v, const struct svc_io *io, uint8_t code, const char *why)
{
	uint8_t b[2 + RMSG_REASON_MAX];

	if (strlen(why) > RMSG_REASON_MAX)
		why = "refused";
	struct wr w = wr_init(b, sizeof(b));
	struct svc_tell t = { .kind = SVC_T_RELAY_REFUSED, .why = why };

	rl_close(v, io);
	v->rl.state = RL_IDLE;
	if (!rl_live(v, io))
		return;
	if (rmsg_refuse_enc(&w, code, why, strlen(why)) == 0)
		(void)io->relay_down(v, v->rl.relay, b, w.len);
	io->tell(v, &t);
	svc_relay_stage(v, io);
}

/* The staged-form INITIALIZE UPDATE for the challenge hc (P1 00: the reader's set). */
static void rl_iu(const struct svc *v, uint8_t apdu[14])
{
	static const uint8_t head[5] = { 0x80, 0x50, 0x00, 0x00, SVC_RL_CHALLENGE };

	memcpy(apdu, head, sizeof(head));
	memcpy(apdu + 5, v->rl.hc, SVC_RL_CHALLENGE);
	apdu[13] = 0x00;
}

void svc_relay_stage(struct svc *v, const struct svc_io *io)
{
	uint8_t apdu[14];

	if (crypto_random(v->rl.hc, sizeof(v->rl.hc)) != 0)
		return;
	rl_iu(v, apdu);
	if (io->stage(v, apdu, sizeof(apdu)) == 0)
		v->rl.staged = 1;
}

/* HELLO without a stage at the phone: a fresh challenge, answered now (a round trip). */
static void rl_hello(struct svc *v, const struct svc_io *io)
{
	uint8_t apdu[14], b[1 + 14];
	struct wr w = wr_init(b, sizeof(b));

	if (crypto_random(v->rl.hc, sizeof(v->rl.hc)) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "random");
		return;
	}
	rl_iu(v, apdu);
	v->rl.staged = 1;
	if (rmsg_ans_hello_enc(&w, apdu, sizeof(apdu)) == 0)
		(void)io->relay_down(v, v->rl.relay, b, w.len);
}

/* AUTH: the reader's INITIALIZE UPDATE response to the staged challenge. */
static void rl_auth(struct svc *v, const struct svc_io *io, const struct rmsg *a)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_R_OPEN };
	uint8_t serial[SVC_SERIAL_LEN] = { 0 };
	int rc;

	if (!v->rl.staged) {
		rl_refuse(v, io, RMSG_REFUSE_NO_STAGE, "no staged challenge");
		return;
	}
	v->rl.staged = 0; /* one AUTH per challenge, whatever happens next */
	if ((rc = io->reader_ok(v, a->reader_id)) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_UNKNOWN_READER, rc == TB_E_SRV_READER_REVOKED ? "reader revoked"
										  : "unknown reader");
		return;
	}
	v->rl.reader = a->reader_id;
	for (int i = 0; i < 4; i++)
		serial[4 + i] = (uint8_t)(a->reader_id >> (24 - 8 * i));
	if (a->a_n > sizeof(v->rl.req)) {
		rl_refuse(v, io, RMSG_REFUSE_MALFORMED, "malformed");
		return;
	}
	memcpy(v->rl.req, a->a, a->a_n); /* kept until the sam opened the session */
	v->rl.req_n = a->a_n;
	memcpy(v->rl.rec[0].serial, serial, sizeof(serial));
	rq.serial = v->rl.rec[0].serial;
	rq.data = v->rl.hc;
	rq.n = sizeof(v->rl.hc);
	if (svc_sam_call(v, io, &rq) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "sam");
		return;
	}
	v->rl.state = RL_OPEN;
}

static void rl_data(struct svc *v, const struct svc_io *io, const struct rmsg *d)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_R_STEP2, .handle = v->rl.handle };
	uint8_t sw[2] = { (uint8_t)(d->ea_sw >> 8), (uint8_t)d->ea_sw };

	rq.data = sw;
	rq.n = sizeof(sw);
	if (svc_sam_call(v, io, &rq) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "sam");
		return;
	}
	/* pipelined: the sam answers in order, so the EA step is done when this comes */
	rq.kind = SVC_SAM_R_UNWRAP;
	rq.data = d->a;
	rq.n = d->a_n;
	if (svc_sam_call(v, io, &rq) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "sam");
		return;
	}
	v->rl.state = RL_STEP2;
}

void svc_relay_up(struct svc *v, const struct svc_io *io, uint32_t relay, uint32_t service,
		  const uint8_t *p, size_t n, int64_t now_us)
{
	struct rmsg m;

	v->rl.relay = relay;
	v->rl.service = service;
	if (rmsg_up_dec(p, n, &m) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_MALFORMED, "malformed relay message");
		return;
	}
	if (m.type == RMSG_HELLO && v->rl.state == RL_IDLE) {
		v->rl.t0_us = now_us;
		rl_hello(v, io);
	} else if (m.type == RMSG_AUTH && v->rl.state == RL_IDLE) {
		if (v->rl.t0_us == 0)
			v->rl.t0_us = now_us;
		v->rl.exchanges = 0;
		rl_auth(v, io, &m);
	} else if (m.type == RMSG_DATA && v->rl.state == RL_WAIT_DATA) {
		rl_data(v, io, &m);
	} else {
		rl_refuse(v, io, RMSG_REFUSE_MALFORMED, "relay message out of order");
		return;
	}
	v->rl.exchanges++;
}

/* ------------------------------------------------------------ the sam --- */

static void rl_on_open(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_R_STEP1 };
	static const uint8_t get_request[] = { RMSG_CLA, RMSG_INS_GET_REQUEST, 0x00, 0x00, 0x00 };

	if (r->err != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "sam");
		return;
	}
	v->rl.handle = r->handle;
	v->rl.has_handle = 1;
	rq.handle = r->handle;
	rq.data = v->rl.req;
	rq.n = v->rl.req_n;
	rq.cmd = get_request;
	rq.cmd_n = sizeof(get_request);
	if (svc_sam_call(v, io, &rq) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "sam");
		return;
	}
	v->rl.state = RL_STEP1;
}

static void rl_on_step1(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	uint8_t b[RMSG_MAX];
	struct wr w = wr_init(b, sizeof(b));

	/* A card cryptogram that does not verify: the reader is not who it says. */
	if (r->err != 0 || r->ea == NULL || r->wrapped == NULL) {
		rl_refuse(v, io, RMSG_REFUSE_AUTH, "reader not authenticated");
		return;
	}
	if (rmsg_ans_auth_enc(&w, r->ea, r->ea_n, r->wrapped, r->wrapped_n) != 0 ||
	    io->relay_down(v, v->rl.relay, b, w.len) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "answer");
		return;
	}
	v->rl.state = RL_WAIT_DATA;
}

static void rl_on_step2(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (r->err != 0)
		rl_refuse(v, io, RMSG_REFUSE_AUTH, "reader not authenticated");
}

/* The receipt of a money record, if it has one (PAY, ORDER, FLAG with a payment). */
static const uint8_t *rl_receipt(const struct svc *v, const struct svc_rl_rec *x)
{
	if (x->kind == RMSG_K_PAY || x->kind == RMSG_K_ORDER)
		return x->len >= SVC_RECEIPT_LEN ? v->rl.req + x->off : NULL;
	if (x->kind == RMSG_K_FLAG && x->len == RMSG_FLAG_LEN_NO_RECEIPT + SVC_RECEIPT_LEN)
		return v->rl.req + x->off + RMSG_FLAG_LEN_NO_RECEIPT;
	return NULL;
}

int svc_pauth_check(const uint8_t serial[SVC_SERIAL_LEN], const uint8_t *body, size_t n,
		    const uint8_t *plain, size_t pn)
{
	uint8_t key[SVC_PAUTH_KEY_LEN], tag[16];
	struct crypto_part parts[3];
	int rc, ok;

	if (pn != SVC_PAUTH_ID_LEN + SVC_PAUTH_KEY_LEN)
		return TB_E_VAULT_BLOB;
	if (n != RMSG_PAUTH_LEN)
		return TB_E_VAULT_PROOF;
	memcpy(key, plain + SVC_PAUTH_ID_LEN, sizeof(key));
	/* proof = AES-CMAC(key, serial || card nonce(8) || challenge(16)) (docs/se.md) */
	parts[0] = (struct crypto_part){ serial, SVC_SERIAL_LEN };
	parts[1] = (struct crypto_part){ body + SVC_PAUTH_ID_LEN, 8 };
	parts[2] = (struct crypto_part){ body + SVC_PAUTH_ID_LEN + 8, 16 };
	rc = crypto_cmac_parts(key, sizeof(key), parts, 3, tag);
	ok = ct_eq(plain, body, SVC_PAUTH_ID_LEN) & ct_eq(tag, body + RMSG_PAUTH_LEN - 16, 16);
	ct_wipe(key, sizeof(key));
	ct_wipe(tag, sizeof(tag));
	if (rc != 0)
		return rc;
	return ok ? 0 : TB_E_VAULT_PROOF;
}

/* A PAUTH record: its se's sealed key (vault slot 2) to the sam's OPEN_BLOB; the proof is
 * checked when it comes back (rl_on_openblob). No key: SVC_PA_NO_KEY. */
static void rl_pauth_open(struct svc *v, const struct svc_io *io, size_t i)
{
	struct svc_rl_rec *x = &v->rl.rec[i];
	struct svc_sam_req rq = { .kind = SVC_SAM_R_OPENBLOB };
	uint8_t sealed[SVC_SEALED_MAX];
	char id[SVC_BLOB_ID_MAX];
	size_t n = 0;

	x->pauth = SVC_PA_NO_KEY;
	if (x->len != RMSG_PAUTH_LEN) {
		x->pauth = SVC_PA_FAILED;
		return;
	}
	if (io->blob == NULL ||
	    io->blob(v, x->serial, SVC_SLOT_PAUTH, sealed, sizeof(sealed), &n) != 0 ||
	    svc_blob_id(id, "pauth", x->serial, -1) != 0)
		return;
	rq.id = id;
	rq.data = sealed;
	rq.n = n;
	if (svc_sam_call(v, io, &rq) != 0)
		return;
	x->pauth = SVC_PA_NONE;
	v->rl.vorder[v->rl.vsent++] = (uint8_t)i;
	v->rl.verifying++;
}

static void rl_verified(struct svc *v, const struct svc_io *io)
{
	if (v->rl.verifying > 0)
		return;
	v->rl.state = RL_JOB;
	svc_queue_rjob(v, io);
}

/* The REQUEST, proved by the R-MAC: copied, parsed, its receipts sent to the sam. */
static void rl_on_unwrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	struct rmsg_record recs[SVC_RL_RECORDS];
	size_t n = 0;

	if (r->err != 0 || !r->authenticated || r->sw != 0x9000) {
		rl_refuse(v, io, RMSG_REFUSE_AUTH, "request not authenticated");
		return;
	}
	if (r->n > sizeof(v->rl.req) ||
	    rmsg_request_dec(r->data, r->n, recs, SVC_RL_RECORDS, &n) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_MALFORMED, "malformed request");
		return;
	}
	memcpy(v->rl.req, r->data, r->n);
	v->rl.req_n = r->n;
	v->rl.nrec = n;
	v->rl.verifying = 0;
	v->rl.vsent = 0;
	v->rl.vdone = 0;
	for (size_t i = 0; i < n; i++) {
		struct svc_rl_rec *x = &v->rl.rec[i];
		struct svc_sam_req rq = { .kind = SVC_SAM_R_VERIFY };
		struct svc_receipt rc;
		const uint8_t *receipt;

		memset(x, 0, sizeof(*x));
		x->kind = recs[i].kind;
		x->seq = recs[i].seq;
		x->time = recs[i].time;
		x->service = recs[i].service;
		memcpy(x->serial, recs[i].serial, sizeof(x->serial));
		x->off = (uint16_t)(recs[i].body - r->data);
		x->len = (uint16_t)recs[i].body_n;
		if (x->kind == RMSG_K_PAUTH) {
			rl_pauth_open(v, io, i);
			continue;
		}
		if ((receipt = rl_receipt(v, x)) == NULL)
			continue;
		if (svc_receipt_parse(receipt, SVC_RECEIPT_LEN, &rc) != 0) {
			x->bad_receipt = 1;
			continue;
		}
		/* The receipt MAC is keyed from the se's SERVER key set; a reader's session
		 * names its own (se-reader) KVN in the receipt, so that one means "current". */
		rq.kvn = (rc.kvn & 0xF0) == 0x10 ? rc.kvn : 0;
		rq.serial = rc.serial;
		rq.mac = receipt + SVC_RECEIPT_BODY;
		rq.mac_n = SVC_RECEIPT_MAC_LEN;
		rq.data = receipt;
		rq.n = SVC_RECEIPT_BODY;
		if (svc_sam_call(v, io, &rq) != 0) {
			x->bad_receipt = 1;
			continue;
		}
		v->rl.vorder[v->rl.vsent++] = (uint8_t)i;
		v->rl.verifying++;
	}
	v->rl.state = RL_VERIFY;
	rl_verified(v, io);
}

/* Verify replies come in request order: vorder says which record each one is for. */
static void rl_on_verify(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->rl.vdone < v->rl.vsent) {
		if (r->err != 0)
			v->rl.rec[v->rl.vorder[v->rl.vdone]].bad_receipt = 1;
		v->rl.vdone++;
	}
	if (v->rl.verifying > 0)
		v->rl.verifying--;
	rl_verified(v, io);
}

/* The opened key of a PAUTH record (in the same order as the verifies): the proof checked,
 * the opened bytes wiped by the adapter after this call. */
static void rl_on_openblob(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->rl.vdone < v->rl.vsent) {
		struct svc_rl_rec *x = &v->rl.rec[v->rl.vorder[v->rl.vdone]];

		x->pauth = r->err == 0 && svc_pauth_check(x->serial, v->rl.req + x->off, x->len,
							   r->data, r->n) == 0
				   ? SVC_PA_OK
				   : SVC_PA_FAILED;
		v->rl.vdone++;
	}
	if (v->rl.verifying > 0)
		v->rl.verifying--;
	rl_verified(v, io);
}

static void rl_on_wrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	int64_t t0;
	uint8_t b[RMSG_MAX];
	struct wr w = wr_init(b, sizeof(b));

	if (r->err != 0 || rmsg_ans_data_enc(&w, r->data, r->n) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "result");
		return;
	}
	(void)io->relay_down(v, v->rl.relay, b, w.len);
	rl_close(v, io);
	v->rl.state = RL_IDLE;
	for (size_t i = 0; i < v->rl.nrec; i++) {
		struct svc_tell t = { .kind = SVC_T_RELAYED, .rec = &v->rl.rec[i] };

		io->tell(v, &t);
	}
	t0 = v->rl.t0_us;
	v->rl.t0_us = 0;
	svc_relay_stage(v, io);
	svc_refund_start(v, io, t0); /* a refund booked for this se: credited now */
}

void svc_relay_sam(struct svc *v, const struct svc_io *io, uint8_t kind,
		   const struct svc_sam_reply *r)
{
	if (!rl_live(v, io)) {
		if (kind == SVC_SAM_R_OPEN && r->err == 0) {
			v->rl.handle = r->handle;
			v->rl.has_handle = 1;
		}
		rl_close(v, io);
		return;
	}
	switch (kind) {
	case SVC_SAM_R_OPEN:
		if (v->rl.state == RL_OPEN)
			rl_on_open(v, io, r);
		break;
	case SVC_SAM_R_STEP1:
		if (v->rl.state == RL_STEP1)
			rl_on_step1(v, io, r);
		break;
	case SVC_SAM_R_STEP2:
		if (v->rl.state == RL_STEP2)
			rl_on_step2(v, io, r);
		break;
	case SVC_SAM_R_UNWRAP:
		if (v->rl.state == RL_STEP2)
			rl_on_unwrap(v, io, r);
		break;
	case SVC_SAM_R_VERIFY:
		if (v->rl.state == RL_VERIFY)
			rl_on_verify(v, io, r);
		break;
	case SVC_SAM_R_OPENBLOB:
		if (v->rl.state == RL_VERIFY)
			rl_on_openblob(v, io, r);
		break;
	case SVC_SAM_R_WRAP:
		if (v->rl.state == RL_WRAP)
			rl_on_wrap(v, io, r);
		break;
	default: /* CLOSE */
		break;
	}
}

/* ------------------------------------------------------- commit outcome --- */

int svc_relay_job_done(struct svc *v, const struct svc_io *io, int rc)
{
	uint8_t cmd[5 + 255] = { RMSG_CLA, RMSG_INS_RESULT, 0x00, 0x00 };
	struct rmsg_result_item it[SVC_RL_RECORDS];
	struct wr w = wr_init(cmd + 5, sizeof(cmd) - 5);
	struct svc_sam_req rq = { .kind = SVC_SAM_R_WRAP, .handle = v->rl.handle };

	if (!rl_live(v, io)) {
		rl_close(v, io);
		return 0;
	}
	/* A lost batch: nothing was booked, the reader keeps its records for a later tap. */
	if (rc != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "not recorded, try again");
		return 0;
	}
	for (size_t i = 0; i < v->rl.nrec; i++) {
		it[i].seq = v->rl.rec[i].seq;
		it[i].status = v->rl.rec[i].status;
		it[i].info = v->rl.rec[i].info;
		it[i].info_n = strlen(v->rl.rec[i].info);
	}
	if (rmsg_result_enc(&w, it, v->rl.nrec, (const uint8_t(*)[8])v->rl.deny, v->rl.ndeny) != 0 ||
	    w.len > 255) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "result too large");
		return 0;
	}
	cmd[4] = (uint8_t)w.len;
	rq.cmd = cmd;
	rq.cmd_n = 5 + w.len;
	rq.data = cmd;
	rq.n = 5 + w.len;
	if (svc_sam_call(v, io, &rq) != 0) {
		rl_refuse(v, io, RMSG_REFUSE_INTERNAL, "sam");
		return 0;
	}
	v->rl.state = RL_WRAP;
	return 0;
}
