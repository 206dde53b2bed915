/* relay.c - relay mode: once armed for a service (by the server through its channel, or
 * by the phone with a one-time permit the server granted), an ENVELOPE from the reader
 * goes to the phone unchanged and the phone's answer comes back as its response.
 * What stays true: the se adds nothing to the payload and never relays unarmed; one
 * ENVELOPE is in flight at a time; arming is volatile (RAM), the permit persistent.
 *
 * 80 6C P1 00 (P2 00):  P1 00 arm (SERVER): service(4) expiry(4)
 *                       P1 01 grant a permit (SERVER): service(4) expiry(4)
 *                       P1 02 arm with the permit (the phone, plain): service(4)
 *                       P1 03 disarm (the phone or SERVER): no data */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "se_int.h"
#include "sw.h"

enum relay_op {
	RELAY_ARM = 0,
	RELAY_GRANT = 1,
	RELAY_ARM_PERMIT = 2,
	RELAY_DISARM = 3,
};

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void relay_drop(struct se *se)
{
	ct_wipe(se->relay.buf, se->relay.n);
	se->relay.n = 0;
	se->relay.pending = 0;
	se->relay.announce = 0;
}

static void relay_arm(struct se *se, uint32_t service, uint32_t expiry)
{
	se->relay.armed = 1;
	se->relay.service = service;
	se->relay.expiry = expiry;
}

static int relay_arm_permit(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	uint32_t service = next.permit_service, expiry = next.permit_expiry;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_HOST_PLAIN, 0)) || (rc = se_expect(c, RELAY_ARM_PERMIT, 0, 4)))
		return rc;
	if (!next.permit)
		return TB_E_SE_NOT_FOUND;
	if (be32(c->a->data) != next.permit_service)
		return TB_E_INVAL;
	if (c->now > next.permit_expiry)
		return TB_E_SE_EXPIRED;
	next.permit = 0;
	next.permit_service = 0;
	next.permit_expiry = 0;
	if ((rc = se_persist(c->se, &next, NULL, 0)) != 0)
		return rc;
	relay_arm(c->se, service, expiry);
	return 0;
}

int relay_control(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	uint32_t service, expiry;
	int rc;

	switch (c->a->p1) {
	case RELAY_ARM:
	case RELAY_GRANT:
		if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_WALLET)) ||
		    (rc = se_expect(c, c->a->p1, 0, 8)))
			return rc;
		service = be32(c->a->data);
		expiry = be32(c->a->data + 4);
		if (expiry < c->now)
			return TB_E_SE_EXPIRED;
		if (c->a->p1 == RELAY_ARM) {
			relay_arm(c->se, service, expiry);
			return 0;
		}
		next.permit = 1;
		next.permit_service = service;
		next.permit_expiry = expiry;
		return se_persist(c->se, &next, NULL, 0);
	case RELAY_ARM_PERMIT:
		return relay_arm_permit(c);
	case RELAY_DISARM:
		if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_HOST_PLAIN, SE_LEVEL_WALLET)) ||
		    (rc = se_expect(c, RELAY_DISARM, 0, 0)))
			return rc;
		c->se->relay.armed = 0;
		return 0;
	default:
		return TB_E_SE_P1P2;
	}
}

/* 80|00 C2 00 00 Lc payload [Le], contactless only. The reader need not have a session:
 * what it relays is protected end to end between the reader and the server. */
int relay_envelope(struct se_cmd *c)
{
	struct se *se = c->se;

	if (c->iface != SE_IF_CONTACTLESS)
		return TB_E_SE_STATE;
	if (c->a->p1 != 0 || c->a->p2 != 0)
		return TB_E_SE_P1P2;
	if (c->a->nc == 0)
		return TB_E_TRUNC;
	if (c->a->nc > SE_ENVELOPE_MAX)
		return TB_E_LEFTOVER;
	if (se->relay.armed && c->now > se->relay.expiry)
		se->relay.armed = 0;
	if (!se->relay.armed)
		return TB_E_SE_NOT_ARMED;
	memcpy(se->relay.buf, c->a->data, c->a->nc);
	se->relay.n = c->a->nc;
	se->relay.pending = 1;
	se->relay.announce = 1;
	return SE_PENDING_RELAY;
}

/* Ends the pending ENVELOPE with plain response data || sw through the contactless
 * interface's card role. */
static int relay_finish(struct se *se, const uint8_t *data, size_t n, uint16_t sw,
			struct wr *resp)
{
	struct wr out = wr_init(se->rbuf, sizeof(se->rbuf));
	int rc;

	if (n > 0)
		(void)wr_bytes(&out, data, n);
	(void)wr_u16be(&out, sw);
	rc = scp_card_respond(&se->ifs[SE_IF_CONTACTLESS].card, se->rbuf, out.len, resp);
	ct_wipe(se->rbuf, out.len);
	relay_drop(se);
	if (rc != 0)
		return wr_u16be(resp, SE_SW_RELAY_FAILED);
	return 0;
}

int se_relay_answer(struct se *se, const uint8_t *answer, size_t n, struct wr *resp)
{
	if (se == NULL || resp == NULL || (answer == NULL && n > 0))
		return TB_E_INVAL;
	if (!se->relay.pending)
		return TB_E_SE_STATE;
	if (n > SE_ENVELOPE_MAX)
		return TB_E_INVAL;
	if (wr_room(resp) < SE_RESP_MAX)
		return TB_E_NOSPACE;
	return relay_finish(se, answer, n, SW_OK, resp);
}

int se_relay_fail(struct se *se, struct wr *resp)
{
	if (se == NULL || resp == NULL)
		return TB_E_INVAL;
	if (!se->relay.pending)
		return TB_E_SE_STATE;
	if (wr_room(resp) < SE_RESP_MAX)
		return TB_E_NOSPACE;
	return relay_finish(se, NULL, 0, SE_SW_RELAY_FAILED, resp);
}
