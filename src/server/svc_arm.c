/* svc_arm.c - the one-command channels: arm the relay (flow 1), store a one-time permit
 * (flows 2, 4, 5), and the portal's lock or unlock of the wallet.
 * What stays true: each puts one command in v->cmd and starts the channel; the phone hears
 * the outcome (svc.c, svc_stored) only after the se answered 9000 under the R-MAC. */
#include <stdint.h>

#include "svc_int.h"

/* Arm the relay for the service now (flow 1) or store a one-time permit (flows 2, 4, 5):
 * one secured command through the server's channel, like a ticket's. */
void svc_arm_start(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		   uint8_t op, int64_t now_s, int64_t now_us)
{
	int64_t until = now_s + (op == SVC_SEL_USE ? SVC_ARM_SECONDS : SVC_PERMIT_SECONDS);
	uint8_t *c = v->cmd;

	v->op = op == SVC_SEL_USE ? SVC_OP_ARM : SVC_OP_PERMIT;
	v->service = sv->id;
	v->amount = 0;
	v->t0_us = now_us;
	v->valid_until = until;
	c[0] = 0x80;
	c[1] = 0x6C;
	c[2] = op == SVC_SEL_USE ? 0x00 : 0x01;
	c[3] = 0x00;
	c[4] = 0x08;
	for (int i = 0; i < 4; i++) {
		c[5 + i] = (uint8_t)(sv->id >> (24 - 8 * i));
		c[9 + i] = (uint8_t)((uint64_t)until >> (24 - 8 * i));
	}
	v->cmd_n = 13;
	svc_tell_kind(v, io, SVC_T_START);
	svc_channel_start(v, io);
}

void svc_lock_start(struct svc *v, const struct svc_io *io, int lock, int64_t now_us)
{
	uint8_t *c = v->cmd;

	if (v->state != SV_IDLE)
		return;
	v->rekeyed = 0;
	v->op = lock ? SVC_OP_LOCK : SVC_OP_UNLOCK;
	v->service = 0;
	v->amount = 0;
	v->t0_us = now_us;
	c[0] = 0x80;
	c[1] = lock ? 0x90 : 0x92;
	c[2] = 0x00;
	c[3] = 0x00;
	v->cmd_n = 4;
	svc_tell_kind(v, io, SVC_T_START);
	svc_channel_start(v, io);
}
