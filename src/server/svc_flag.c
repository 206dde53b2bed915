/* svc_flag.c - the authenticity flag (flow 3): its token signed by the sam, then FLAG SET
 * (after PAUTH SET when a personal-auth key is registered) through the server's channel.
 * What stays true: the channel starts only once the SIGN (and, registering, SEAL) reply is in. */
#include <string.h>

#include "crypto.h"
#include "svc_int.h"

/* Both the signature and (registering) the sealed key are in: the channel starts. */
void svc_flag_ready(struct svc *v, const struct svc_io *io)
{
	if (--v->sam_wait == 0)
		svc_channel_start(v, io);
}

/* The signature of the flag token (key-version(1) signature(64)): FLAG SET carries both.
 * Registering a personal-auth key, FLAG SET is the second command, after PAUTH SET. */
void svc_on_sign(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	uint8_t *dst = v->pauth_reg ? v->next : v->cmd;
	struct wr w = wr_init(dst, SVC_CMD_MAX);

	if (v->state != SV_SIGN)
		return;
	if (r->err != 0 || r->n != 1 + SVC_SIG_LEN ||
	    svc_cmd_flag_set(&w, v->token, r->data + 1) != 0) {
		svc_fail(v, io, "sign");
		return;
	}
	if (v->pauth_reg)
		v->next_n = w.len;
	else
		v->cmd_n = w.len;
	svc_flag_ready(v, io);
}

/* The authenticity flag (flow 3): token 01 || serial || service || expiry || nonce(16) ||
 * offline limit, signed by the sam in domain 1, stored by FLAG SET through the channel. */
void svc_flag_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		    int64_t now_s, int64_t now_us)
{
	struct wr w = wr_init(v->token, sizeof(v->token));
	struct svc_sam_req rq = { .kind = SVC_SAM_SIGN, .data = v->token, .n = sizeof(v->token) };
	struct svc_token tk;

	v->op = SVC_OP_FLAG;
	v->service = sv->id;
	v->t0_us = now_us;
	v->valid_until = now_s + SVC_FLAG_SECONDS;
	memcpy(tk.serial, v->serial, sizeof(tk.serial));
	tk.service = sv->id;
	tk.expiry = (uint32_t)v->valid_until;
	tk.limit = sv->item1;
	v->pauth_reg = io->pauth_need != NULL && io->pauth_need(v) == 1;
	v->sam_wait = 1;
	if (v->pauth_reg && svc_pauth_key_start(v, io) != 0) {
		svc_fail(v, io, "personal-auth key");
		return;
	}
	if (crypto_random(tk.nonce, sizeof(tk.nonce)) != 0 || svc_token_put(&w, &tk) != 0 ||
	    svc_sam_call(v, io, &rq) != 0) {
		svc_fail(v, io, "sign");
		return;
	}
	svc_tell_kind(v, io, SVC_T_START);
	v->state = SV_SIGN;
}
