/* phone_frames.c - the phone adapter's translation between frames and the phone core:
 * its server actions into proto_msg, the server's and the se's frames into ph_srv_* and
 * ph_se_* calls. What stays true: nothing reaches the core that did not decode
 * completely; a frame that does not ends its link, in the core and for the caller. */
#include "phone_frames.h"

#include <stdio.h>
#include <string.h>

#include "io/se_link.h"
#include "lib/bytes.h"
#include "lib/err.h"

/* ---- the core's actions to the server ---- */

int pn_act_msg(const struct ph_act *a, const uint8_t serial[PH_SERIAL_LEN], struct proto_msg *m)
{
	static const char app[] = "tapbridge-phone/1";

	memset(m, 0, sizeof(*m));
	switch (a->kind) {
	case PH_ACT_SRV_HELLO:
		m->type = PROTO_HELLO;
		m->u.hello.version = PROTO_VERSION;
		memcpy(m->u.hello.serial, serial, PROTO_SERIAL_LEN);
		m->u.hello.app = (const uint8_t *)app;
		m->u.hello.app_len = sizeof(app) - 1;
		break;
	case PH_ACT_SRV_SELECT:
		m->type = PROTO_SELECT;
		m->u.select.service = a->a;
		m->u.select.op = a->op;
		break;
	case PH_ACT_SRV_SE_RESP:
		m->type = PROTO_SE_RESP;
		m->u.apdu.seq = a->a;
		m->u.apdu.data = a->data;
		m->u.apdu.n = a->n;
		break;
	case PH_ACT_SRV_RELAY_UP:
		m->type = PROTO_RELAY_UP;
		m->u.relay_up.relay = a->a;
		m->u.relay_up.service = a->b;
		m->u.relay_up.data = a->data;
		m->u.relay_up.n = a->n;
		break;
	case PH_ACT_SRV_HISTORY_REQ:
		m->type = PROTO_HISTORY_REQ;
		m->u.history_req.max = (uint8_t)a->a;
		break;
	case PH_ACT_SRV_PORTAL_REQ:
		m->type = PROTO_PORTAL_REQ;
		break;
	case PH_ACT_SRV_PING:
	case PH_ACT_SRV_PONG:
		m->type = a->kind == PH_ACT_SRV_PING ? PROTO_PING : PROTO_PONG;
		memcpy(m->u.ping.token, a->token, PROTO_PING_LEN);
		break;
	case PH_ACT_SRV_BYE:
		m->type = PROTO_BYE;
		break;
	default:
		return 0;
	}
	return 1;
}

/* ---- the server's frames ---- */

int pn_srv_in(struct ph *ph, struct pn_frame_buf *b, uint8_t type, const uint8_t *p, size_t len,
	      uint64_t now, char *why, size_t whylen)
{
	struct proto_msg *m = &b->msg;
	int rc = proto_decode(type, p, len, m);

	if (rc != 0) {
		snprintf(why, whylen, "malformed %s frame from the server (%s)",
			 proto_type_name(type) != NULL ? proto_type_name(type) : "?", tb_strerror(rc));
		return ph_srv_closed(ph, why);
	}
	switch (type) {
	case PROTO_MENU:
		for (size_t i = 0; i < m->u.menu.n; i++) {
			b->items[i].id = m->u.menu.items[i].id;
			b->items[i].kind = m->u.menu.items[i].kind;
			b->items[i].state = m->u.menu.items[i].state;
			b->items[i].name = m->u.menu.items[i].name;
			b->items[i].name_len = m->u.menu.items[i].name_len;
		}
		return ph_srv_menu(ph, b->items, m->u.menu.n);
	case PROTO_SE_APDU:
		return ph_srv_se_apdu(ph, m->u.apdu.seq, m->u.apdu.data, m->u.apdu.n);
	case PROTO_RELAY_DOWN:
		return ph_srv_relay_down(ph, m->u.relay_down.relay, m->u.relay_down.status,
					 m->u.relay_down.data, m->u.relay_down.n);
	case PROTO_HISTORY:
		for (size_t i = 0; i < m->u.history.n; i++) {
			const struct proto_hist_rec *h = &m->u.history.recs[i];

			b->recs[i] = (struct ph_hist_rec){ h->id, h->time, h->kind, h->service,
							   h->reader, h->amount, h->balance };
		}
		return ph_srv_history(ph, m->u.history.more, b->recs, m->u.history.n);
	case PROTO_NOTICE:
		return ph_srv_notice(ph, m->u.notice.p, m->u.notice.n);
	case PROTO_PORTAL_LINK:
		return ph_srv_portal_link(ph, m->u.notice.p, m->u.notice.n);
	case PROTO_ERROR:
		return ph_srv_error(ph, m->u.error.code, m->u.error.reason, m->u.error.n);
	case PROTO_PING:
		return ph_srv_ping(ph, m->u.ping.token);
	case PROTO_BYE:
		return ph_srv_bye(ph);
	case PROTO_STAGE:
		return ph_srv_stage(ph, m->u.stage.apdu, m->u.stage.n);
	case PROTO_PONG: /* timed at its arrival: the ping command's round trip */
		return ph_srv_pong(ph, m->u.ping.token, now);
	default:
		return 0;
	}
}

/* ---- the se's frames ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int pn_se_in(struct ph *ph, uint8_t type, const uint8_t *p, size_t len, int *bad)
{
	struct rd r = rd_init(p, len);
	uint32_t id = 0, svc = 0, amount = 0, balance = 0, counter = 0;
	uint16_t bitmap = 0;
	uint8_t kind = 0;

	switch (type) {
	case SE_LINK_T_RESPONSE:
		if (len >= 2)
			return ph_se_response(ph, p, len);
		break;
	case SE_LINK_T_RELAY:
		if (rd_u32be(&r, &id) == 0 && rd_u32be(&r, &svc) == 0 && rd_left(&r) >= 1)
			return ph_se_relay(ph, id, svc, p + 8, len - 8);
		break;
	case SE_LINK_T_TRANSACTION:
		if (len == 13 && rd_u8(&r, &kind) == 0) {
			amount = be32(p + 1);
			balance = be32(p + 5);
			counter = be32(p + 9);
			return ph_se_transaction(ph, kind, amount, balance, counter);
		}
		break;
	case SE_LINK_T_DISABLE:
		if (rd_u16be(&r, &bitmap) == 0 && rd_end(&r) == 0)
			return ph_se_disable(ph, bitmap);
		break;
	case SE_LINK_T_LOCKED:
	case SE_LINK_T_UNLOCKED:
		if (len == 0)
			return ph_se_locked(ph, type == SE_LINK_T_LOCKED);
		break;
	case SE_LINK_T_EVENTS_LOST:
		if (rd_u32be(&r, &counter) == 0 && rd_end(&r) == 0)
			return ph_se_lost(ph, counter);
		break;
	default:
		break;
	}
	*bad = 1;
	return ph_se_closed(ph, "malformed frame from the se");
}
