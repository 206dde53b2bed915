/* svc_int.h - internal to src/server/svc*.c: the steps the engine's parts share (svc.c: the
 * channel, sam replies, commit outcomes; svc_vault.c: backup, restore, personal-auth keys;
 * svc_relay.c: the relay; svc_flag.c: the flag; svc_arm.c: arm, permit, lock). The API is
 * svc.h; nothing outside src/server/svc*.c includes this.
 * Each takes the session and the svc_io it runs on, as svc.h's calls do. */
#ifndef TB_SERVER_SVC_INT_H
#define TB_SERVER_SVC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "svc.h"

/* svc.c: a sam request (rc 0: v holds a reference until its reply); a relay job queued. */
int svc_sam_call(struct svc *v, const struct svc_io *io, const struct svc_sam_req *rq);
void svc_queue_rjob(struct svc *v, const struct svc_io *io);

/* svc.c: what the phone hears; the session's end with an error; the se's refusal. */
void svc_tell_kind(struct svc *v, const struct svc_io *io, uint8_t kind);
/* svc.c: an SE_APDU with the session's next seq (0 or the adapter's error). */
int svc_send_apdu(struct svc *v, const struct svc_io *io, const uint8_t *apdu, size_t n);
void svc_fail(struct svc *v, const struct svc_io *io, const char *why);
void svc_refused(struct svc *v, const struct svc_io *io, uint16_t sw);
/* svc.c: a db outcome rc told (a rule's refusal, or work the db lost). */
void svc_tell_rc(struct svc *v, const struct svc_io *io, int rc);
/* svc.c: the channel: the sam session closed; SELECT then SCP_OPEN for v->cmd; the next
 * command in v->cmd (wiped once the sam has it); the db work of phase queued. */
void svc_close_handle(struct svc *v, const struct svc_io *io);
void svc_credit_start(struct svc *v, const struct svc_io *io);
void svc_channel_start(struct svc *v, const struct svc_io *io);
void svc_chan_next(struct svc *v, const struct svc_io *io);
void svc_queue_phase(struct svc *v, const struct svc_io *io, uint8_t phase);
/* svc.c: a CREDIT's receipt checked and sent to the sam. */
void svc_receipt_check(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);

/* svc_flag.c: the flag started (SIGN asked, and a personal-auth key sealed when one is
 * due); the SIGN reply; a flag's SIGN or SEAL reply in (the channel starts after both). */
void svc_flag_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		    int64_t now_s, int64_t now_us);
void svc_on_sign(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_flag_ready(struct svc *v, const struct svc_io *io);

/* svc_arm.c: arm the relay (op SVC_SEL_USE) or store a permit (another op); the lock's
 * start is svc_lock_start (svc.h). */
void svc_arm_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		   uint8_t op, int64_t now_s, int64_t now_us);

/* svc_vault.c: backup or restore started (op: SVC_SEL_BACKUP or SVC_SEL_RESTORE); a fresh
 * personal-auth key sealed (0, or the error). */
void svc_vault_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		     uint8_t op, int64_t now_s, int64_t now_us);
int svc_pauth_key_start(struct svc *v, const struct svc_io *io);
/* svc_vault.c: an unwrapped answer of a backup or restore channel; a restore's next step. */
void svc_vault_unwrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_restore_next(struct svc *v, const struct svc_io *io);
/* svc_vault.c: the SEAL_BLOB and OPEN_BLOB replies; the outcome of v->phase's db work. */
void svc_on_seal(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_on_openblob(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_phase_done(struct svc *v, const struct svc_io *io, int rc);

/* svc_refund.c: a refund credit's purse read (the channel's first answer, 9000). */
void svc_refund_purse(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);

/* svc_rekey.c: the se answered INITIALIZE UPDATE for the current KVN with 6A88: re-key it
 * (a channel of its own on the ISD), then start the operation's channel again; an SE_RESP
 * in a re-key state; the re-key's sam replies. */
void svc_rekey_start(struct svc *v, const struct svc_io *io);
void svc_rekey_resp(struct svc *v, const struct svc_io *io, const uint8_t *resp, size_t n,
		    uint16_t sw);
void svc_rk_on_open(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_rk_on_step1(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_rk_on_step2(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_rk_on_unwrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);
void svc_rk_on_put_key(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r);

#endif
