/* svc_vault.c - the engine's vault part, over svc.c's channel: backup (purse and tickets
 * sealed by the sam into vault slot 1), restore onto the replacement of a lost se, and a fresh
 * personal-auth key sealed for slot 2. No I/O. What stays true: a restore credits at most once
 * and opens only the lost se's own backup; a key's plain copy is wiped on every path. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "hex.h"
#include "svc_int.h"

/* ------------------------------------------------------------ the vault --- */

int svc_blob_id(char *out, const char *what, const uint8_t serial[SVC_SERIAL_LEN], int slot)
{
	size_t w = strlen(what), n = w + 1 + 2 * SVC_SERIAL_LEN;

	/* what ":" hex [":" slot digit]: no stdio in a core */
	if (slot > 9 || n + (slot >= 0 ? 2 : 0) >= SVC_BLOB_ID_MAX)
		return TB_E_NOSPACE;
	memcpy(out, what, w);
	out[w] = ':';
	if (hex_encode(serial, SVC_SERIAL_LEN, HEX_PUBLIC, out + w + 1, SVC_BLOB_ID_MAX - w - 1) != 0)
		return TB_E_INTERNAL;
	if (slot >= 0) {
		out[n++] = ':';
		out[n++] = (char)('0' + slot);
		out[n] = '\0';
	}
	return 0;
}

/* Backup (op 3): GET BALANCE then TICKET LIST in one channel, sealed, put in the vault.
 * Restore (op 4): the db finds the lost se and its backup first (SVC_PH_R_FIND). */
void svc_vault_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		     uint8_t op, int64_t now_s, int64_t now_us)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd)), wn = wr_init(v->next, sizeof(v->next));

	v->op = op == SVC_SEL_BACKUP ? SVC_OP_BACKUP : SVC_OP_RESTORE;
	v->service = sv->id;
	v->amount = 0;
	v->t0_us = now_us;
	v->valid_from = now_s;
	memset(&v->bk, 0, sizeof(v->bk));
	memset(v->new_id, 0, sizeof(v->new_id));
	v->blob_n = 0;
	v->moved = v->c0 = 0;
	v->pending = v->done_before = v->skip_credit = 0;
	v->rkind = v->tnext = v->stored = 0;
	svc_tell_kind(v, io, SVC_T_START);
	if (v->op == SVC_OP_RESTORE) {
		svc_queue_phase(v, io, SVC_PH_R_FIND);
		return;
	}
	if (svc_cmd_read(&w, 0x30) != 0 || svc_cmd_read(&wn, 0x42) != 0) {
		svc_fail(v, io, "backup");
		return;
	}
	v->cmd_n = w.len;
	v->next_n = wn.len;
	memcpy(v->bk.serial, v->serial, sizeof(v->bk.serial));
	svc_channel_start(v, io);
}

/* Backup: the purse (first answer), then the tickets (second): sealed under the blob id
 * vault:<serial>:1 once the channel is closed. */
static void svc_backup_unwrap(struct svc *v, const struct svc_io *io,
			      const struct svc_sam_reply *r)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_SEAL };
	uint8_t plain[SVC_BACKUP_MAX];
	struct wr w = wr_init(plain, sizeof(plain));
	char id[SVC_BLOB_ID_MAX];

	if (v->icmd == 1) {
		if (svc_purse_parse(r->data, r->n, &v->bk.balance, &v->bk.counter) != 0) {
			svc_fail(v, io, "purse");
			return;
		}
		memcpy(v->cmd, v->next, v->next_n);
		v->cmd_n = v->next_n;
		svc_chan_next(v, io);
		return;
	}
	if (svc_tickets_parse(r->data, r->n, &v->bk) != 0 || svc_backup_put(&w, &v->bk) != 0 ||
	    svc_blob_id(id, "vault", v->serial, SVC_SLOT_BACKUP) != 0) {
		svc_fail(v, io, "tickets");
		return;
	}
	svc_close_handle(v, io);
	rq.id = id;
	rq.data = plain;
	rq.n = w.len;
	if (svc_sam_call(v, io, &rq) != 0) {
		svc_fail(v, io, "sam");
		return;
	}
	v->state = SV_SEAL;
}

/* Restore, the channel's answers: the purse read (then the tickets are re-issued in the
 * db), the CREDIT's receipt (verified like a top-up's), each TICKET STORE (6A89: stored
 * by an earlier run of this restore). */
static void svc_restore_unwrap(struct svc *v, const struct svc_io *io,
			       const struct svc_sam_reply *r)
{
	uint32_t bal = 0, ctr = 0;

	if (v->rkind == 2 && (r->sw == 0x9000 || r->sw == 0x6A89)) {
		if (r->sw == 0x9000 && (!r->authenticated || r->n != 0)) {
			svc_fail(v, io, "store");
			return;
		}
		v->stored++;
		svc_restore_next(v, io);
		return;
	}
	if (r->sw != 0x9000) {
		svc_refused(v, io, r->sw);
		return;
	}
	if (v->rkind == 1) {
		svc_receipt_check(v, io, r);
		return;
	}
	if (svc_purse_parse(r->data, r->n, &bal, &ctr) != 0) {
		svc_fail(v, io, "purse");
		return;
	}
	/* A run that began before at another counter may have credited already: never twice
	 * (an operator settles the rare case where something else moved the purse). */
	if (v->pending && ctr != v->c0)
		v->skip_credit = 1;
	if (!v->pending)
		v->c0 = ctr;
	v->balance = bal;
	v->counter = ctr;
	svc_queue_phase(v, io, SVC_PH_R_TICKETS); /* the channel stays open meanwhile */
}

void svc_vault_unwrap(struct svc *v, const struct svc_io *io,
		      const struct svc_sam_reply *r)
{
	if (v->op == SVC_OP_RESTORE) {
		svc_restore_unwrap(v, io, r);
		return;
	}
	if (r->sw != 0x9000) {
		svc_refused(v, io, r->sw);
		return;
	}
	if (!r->authenticated) {
		svc_fail(v, io, "backup");
		return;
	}
	svc_backup_unwrap(v, io, r);
}

/* Restore: the credit of the moved balance, then each re-issued ticket, then the record. */
void svc_restore_next(struct svc *v, const struct svc_io *io)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));
	struct svc_ticket tk;

	if (v->rkind == 0 && v->moved > 0 && !v->skip_credit) {
		v->amount = v->moved;
		v->rkind = 1;
		if (svc_cmd_credit(&w, v->moved) != 0) {
			svc_fail(v, io, "credit");
			return;
		}
		v->cmd_n = w.len;
		svc_chan_next(v, io);
		return;
	}
	while (v->tnext < v->bk.n && v->new_id[v->tnext] == 0)
		v->tnext++;
	if (v->tnext >= v->bk.n) {
		svc_close_handle(v, io);
		svc_queue_phase(v, io, SVC_PH_R_DONE);
		return;
	}
	tk = v->bk.t[v->tnext];
	tk.id = v->new_id[v->tnext++];
	v->rkind = 2;
	if (svc_cmd_ticket_store(&w, &tk) != 0) {
		svc_fail(v, io, "ticket record");
		return;
	}
	v->cmd_n = w.len;
	svc_chan_next(v, io);
}

/* A fresh personal-auth id and key: PAUTH SET (80 60 00 00 id || key) is the channel's
 * first command, and the sam seals id || key for the vault (slot 2) meanwhile. The key
 * lives in v->cmd only, until the sam has wrapped it. */
int svc_pauth_key_start(struct svc *v, const struct svc_io *io)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_SEAL };
	uint8_t plain[SVC_PAUTH_ID_LEN + SVC_PAUTH_KEY_LEN];
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));
	char id[SVC_BLOB_ID_MAX];
	int rc;

	v->blob_n = 0;
	rc = crypto_random(plain, sizeof(plain));
	if (rc == 0)
		rc = svc_blob_id(id, "pauth", v->serial, -1);
	if (rc == 0)
		rc = svc_cmd_pauth_set(&w, plain, plain + SVC_PAUTH_ID_LEN);
	if (rc == 0) {
		v->cmd_n = w.len;
		memcpy(v->pauth_id, plain, sizeof(v->pauth_id));
		rq.id = id;
		rq.data = plain;
		rq.n = sizeof(plain);
		rc = svc_sam_call(v, io, &rq);
	}
	ct_wipe(plain, sizeof(plain));
	if (rc == 0)
		v->sam_wait++;
	return rc;
}

/* SEAL_BLOB answered: the backup goes to the vault, or (flag) the key waits for FLAG SET. */
void svc_on_seal(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_SEAL && v->state != SV_SIGN)
		return;
	if (r->err != 0 || r->data == NULL || r->n == 0 || r->n > sizeof(v->blob)) {
		svc_fail(v, io, "seal");
		return;
	}
	memcpy(v->blob, r->data, r->n);
	v->blob_n = r->n;
	if (v->op == SVC_OP_FLAG) {
		svc_flag_ready(v, io);
		return;
	}
	/* The counter orders backups of different purse states; the time, those of one. */
	v->version = (uint64_t)v->bk.counter << 32 | (uint32_t)v->valid_from;
	svc_queue_phase(v, io, SVC_PH_BACKUP);
}

/* The lost se's backup, opened: its tickets are what the restore may re-issue. */
void svc_on_openblob(struct svc *v, const struct svc_io *io,
		     const struct svc_sam_reply *r)
{
	struct svc_backup bk;
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));

	if (v->state != SV_OPENBLOB)
		return;
	if (r->err != 0 || svc_backup_get(r->data, r->n, &bk) != 0 ||
	    !ct_eq(bk.serial, v->old, sizeof(bk.serial))) {
		svc_tell_rc(v, io, r->err == TB_E_AEAD || r->err == 0 ? TB_E_VAULT_BLOB : r->err);
		return;
	}
	v->bk = bk;
	if (svc_cmd_read(&w, 0x30) != 0) {
		svc_fail(v, io, "restore");
		return;
	}
	v->cmd_n = w.len;
	v->rkind = 0;
	svc_channel_start(v, io);
}

static void svc_restore_found(struct svc *v, const struct svc_io *io)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_OPENBLOB, .data = v->blob, .n = v->blob_n };
	char id[SVC_BLOB_ID_MAX];

	if (v->done_before) {
		v->state = SV_IDLE;
		svc_tell_kind(v, io, SVC_T_RESTORED_BEFORE);
		return;
	}
	if (svc_blob_id(id, "vault", v->old, SVC_SLOT_BACKUP) != 0) {
		svc_fail(v, io, "restore");
		return;
	}
	rq.id = id;
	if (svc_sam_call(v, io, &rq) != 0) {
		svc_fail(v, io, "sam");
		return;
	}
	v->state = SV_OPENBLOB;
}

/* The outcome of the db work of v->phase (svc_job_done). */
void svc_phase_done(struct svc *v, const struct svc_io *io, int rc)
{
	uint8_t ph = v->phase;

	v->phase = SVC_PH_NONE;
	if (rc != 0 && ph != SVC_PH_PAUTH) {
		svc_close_handle(v, io);
		svc_tell_rc(v, io, rc);
		return;
	}
	switch (ph) {
	case SVC_PH_BACKUP:
		v->state = SV_IDLE;
		svc_tell_kind(v, io, SVC_T_BACKUP_STORED);
		break;
	case SVC_PH_R_FIND:
		svc_restore_found(v, io);
		break;
	case SVC_PH_R_TICKETS:
		svc_restore_next(v, io);
		break;
	case SVC_PH_R_DONE:
		v->state = SV_IDLE;
		svc_tell_kind(v, io, SVC_T_RESTORED);
		break;
	default: /* SVC_PH_PAUTH: the flag is set whatever the vault said (a key the vault
		  * lacks is replaced at the next SELECT) */
		v->state = SV_IDLE;
		svc_tell_kind(v, io, SVC_T_FLAG_SET);
		break;
	}
}
