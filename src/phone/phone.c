/* phone.c - the phone core's session: the se's host interface (its APDUs answered in
 * order, so one queue says whose each response is), the server's frames, and the relay
 * between them. What stays true: every SE_APDU's response goes back with its seq and
 * nothing else does; a relay HELLO is answered from a STAGE at most once, and every
 * relay the se announced ends with exactly one RELAY ANSWER or RELAY FAIL from us
 * unless the se dropped it first. */
#include <string.h>

#include "err.h"
#include "ph_int.h"

const uint8_t ph_wallet_aid[PH_WALLET_AID_LEN] = { 0xF0, 0x54, 0x41, 0x50, 0x42, 0x52,
						   0x49, 0x44, 0x47, 0x45, 0x01 };

/* GET DATA 00 45: the se's serial for HELLO (`45 08 serial`). */
static const uint8_t get_serial[] = { 0x00, 0xCA, 0x00, 0x45, 0x00 };

#define RELAY_HELLO 0x01u
#define RELAY_HELLO_LEN 6u
#define RELAY_HELLO_ANSWER 0x81u

int ph_init(struct ph *ph, const struct ph_config *cfg, uint64_t now)
{
	struct ph_act a = { .kind = PH_ACT_SE_POWER, .op = 0x02 };

	if (ph == NULL || cfg == NULL)
		return TB_E_INVAL;
	memset(ph, 0, sizeof(*ph));
	ph->cfg = *cfg;
	if (ph->cfg.relay_wait_ms == 0)
		ph->cfg.relay_wait_ms = PH_RELAY_WAIT_MS;
	ph->now = ph->last_sent = now;
	ph->srv_open = ph->se_open = 1;
	/* A new session starts on a reset host interface: nothing an earlier phone left
	 * open in the se carries over. */
	(void)ph_act_push(ph, &a);
	return ph_se_send(ph, PH_Q_SERIAL, 0, get_serial, sizeof(get_serial));
}

int ph_se_send(struct ph *ph, uint8_t kind, uint32_t seq, const uint8_t *apdu, size_t n)
{
	struct ph_act a = { .kind = PH_ACT_SE_APDU, .data = apdu, .n = n };

	if (!ph->se_open)
		return TB_E_IO;
	if (ph->qn >= PH_QUEUE_MAX || ph->act_n >= PH_ACT_MAX) {
		ph->act_err = TB_E_NOSPACE;
		return TB_E_NOSPACE;
	}
	ph->q[ph->qn].kind = kind;
	ph->q[ph->qn].seq = seq;
	ph->qn++;
	return ph_act_push(ph, &a);
}

int ph_srv_send(struct ph *ph, const struct ph_act *a)
{
	if (!ph->srv_open)
		return TB_E_IO;
	ph->last_sent = ph->now;
	return ph_act_push(ph, a);
}

int ph_ready(const struct ph *ph)
{
	return (ph->hello_sent && ph->menu_seen) || !ph->srv_open || !ph->se_open;
}

int ph_srv_up(const struct ph *ph)
{
	return ph->srv_open;
}

/* ---- the relay ---- */

static void relay_end(struct ph *ph, int fail)
{
	if (fail) {
		struct ph_act a = { .kind = PH_ACT_SE_RELAY_FAIL, .a = ph->relay_id };

		(void)ph_act_push(ph, &a);
	}
	ph->relay_pending = 0;
}

static void srv_gone(struct ph *ph);

/* Test seam: a copy of p with its middle byte flipped, for an action to carry. */
static const uint8_t *fault_flip(struct ph *ph, const uint8_t *p, size_t n, const char *what,
				 uint64_t nth)
{
	struct ph_line l;

	memcpy(ph->fault_buf, p, n);
	ph->fault_buf[n / 2] ^= 0x01u;
	ln_init(&l);
	ln_str(&l, "fault: flipped byte ");
	ln_u64(&l, n / 2);
	ln_str(&l, what);
	ln_u64(&l, nth);
	(void)ln_put(ph, &l);
	return ph->fault_buf;
}

int ph_se_relay(struct ph *ph, uint32_t id, uint32_t service, const uint8_t *p, size_t n)
{
	struct ph_act a = { .kind = PH_ACT_SRV_RELAY_UP, .a = id, .b = service, .data = p, .n = n };
	struct ph_line l;

	if (p == NULL || n == 0 || n > PH_RELAY_MAX)
		return TB_E_INVAL;
	/* A new relay means the se gave up on the one before (timeout, power): forget it. */
	ph->relay_pending = 0;
	if (n == RELAY_HELLO_LEN && p[0] == RELAY_HELLO) {
		ph->exchange_ups = 0;
		if (ph->stage_n > 0) {
			struct ph_act ans = { .kind = PH_ACT_SE_RELAY_ANSWER, .a = id };

			ph->hello_answer[0] = RELAY_HELLO_ANSWER;
			memcpy(ph->hello_answer + 1, ph->stage, ph->stage_n);
			ans.data = ph->hello_answer;
			ans.n = 1 + ph->stage_n;
			ph->stage_n = 0;
			ph->stat_local++;
			if (ph->cfg.trace)
				(void)ph_say(ph, "relay hello answered from the stage", NULL);
			return ph_act_push(ph, &ans);
		}
	}
	if (!ph->srv_open) {
		struct ph_act f = { .kind = PH_ACT_SE_RELAY_FAIL, .a = id };

		(void)ph_say(ph, "error: relay failed: no server session", NULL);
		return ph_act_push(ph, &f);
	}
	ph->relay_pending = 1;
	ph->relay_id = id;
	ph->relay_since = ph->now;
	ph->exchange_ups++;
	ph->stat_ups++;
	if (ph->cfg.trace) {
		ln_init(&l);
		ln_str(&l, "relay up ");
		ln_u64(&l, ph->exchange_ups);
		(void)ln_put(ph, &l);
	}
	if (ph->cfg.fault_flip_up != 0 && ph->stat_ups == ph->cfg.fault_flip_up)
		a.data = fault_flip(ph, p, n, " of relay up ", ph->stat_ups);
	if (ph->cfg.fault_drop_after != 0 && ph->stat_ups == ph->cfg.fault_drop_after) {
		/* Not pending: no RELAY ANSWER and no RELAY FAIL; the se times the relay out. */
		ph->relay_pending = 0;
		ph->fault_dropping = 1;
		ph->fault_drop_id = id;
		(void)ph_say(ph, "fault: this relay will not be answered", NULL);
	}
	return ph_srv_send(ph, &a);
}

int ph_srv_relay_down(struct ph *ph, uint32_t relay, uint8_t status, const uint8_t *p, size_t n)
{
	struct ph_act a = { .kind = PH_ACT_SE_RELAY_ANSWER, .a = relay, .data = p, .n = n };
	int rc;

	if (n > PH_RELAY_MAX || (p == NULL && n > 0) || status > 1)
		return TB_E_INVAL;
	if (ph->fault_dropping && relay == ph->fault_drop_id) {
		ph->fault_dropping = 0;
		(void)ph_say(ph, "fault: relay answer dropped, closing the server session", NULL);
		srv_gone(ph);
		return 0;
	}
	if (!ph->relay_pending || relay != ph->relay_id) {
		if (ph->cfg.trace)
			(void)ph_say(ph, "relay answer for a relay that is over: dropped", NULL);
		return 0;
	}
	ph->stat_rtts++;
	if (status != 0) {
		(void)ph_say(ph, "error: relay refused by the server", NULL);
		relay_end(ph, 1);
		return 0;
	}
	ph->relay_pending = 0;
	if (n > 0 && ++ph->fault_downs == ph->cfg.fault_flip_down)
		a.data = fault_flip(ph, p, n, " of relay down ", ph->fault_downs);
	if ((rc = ph_act_push(ph, &a)) != 0)
		return rc;
	/* The server's last answer of a reader exchange (RESULT or a refusal): one arming
	 * serves one tap, so the relay is disarmed (SELECT wallet, then 80 6C 03). */
	if (n > 0 && (p[0] == PH_RELAY_END_RESULT || p[0] == PH_RELAY_END_REFUSE)) {
		static const uint8_t disarm[] = { 0x80, 0x6C, 0x03, 0x00 };

		if ((rc = ph_se_send(ph, PH_Q_DISARM, 0, ph_wallet_select, PH_WALLET_SELECT_LEN)) == 0)
			rc = ph_se_send(ph, PH_Q_DISARM, 0, disarm, sizeof(disarm));
		if (rc == 0)
			(void)ph_say(ph, "relay done: disarmed", NULL);
	}
	return rc;
}

int ph_srv_stage(struct ph *ph, const uint8_t *apdu, size_t n)
{
	if (apdu == NULL || n == 0 || n > PH_STAGE_MAX)
		return TB_E_INVAL;
	memcpy(ph->stage, apdu, n);
	ph->stage_n = n;
	if (ph->cfg.trace)
		(void)ph_say(ph, "staged a reader challenge", NULL);
	return 0;
}

/* ---- the se's host interface ---- */

static int serial_in(struct ph *ph, const uint8_t *resp, size_t n)
{
	struct ph_act a = { .kind = PH_ACT_SRV_HELLO };

	if (n != 2 + 2 + PH_SERIAL_LEN || resp[0] != 0x45 || resp[1] != PH_SERIAL_LEN ||
	    resp[n - 2] != 0x90 || resp[n - 1] != 0x00) {
		(void)ph_say(ph, "error: the se did not give its serial (GET DATA 00 45)", NULL);
		ph->se_open = 0;
		ph_cmd_on_session_end(ph);
		return TB_E_IO;
	}
	memcpy(ph->serial, resp + 2, PH_SERIAL_LEN);
	ph->have_serial = 1;
	ph->hello_sent = 1;
	return ph_srv_send(ph, &a);
}

int ph_se_response(struct ph *ph, const uint8_t *resp, size_t n)
{
	struct ph_q q;

	if (resp == NULL || n < 2)
		return TB_E_INVAL;
	if (ph->qn == 0) {
		(void)ph_say(ph, "error: the se answered an APDU nobody sent: dropped", NULL);
		return 0;
	}
	q = ph->q[0];
	memmove(ph->q, ph->q + 1, (ph->qn - 1) * sizeof(ph->q[0]));
	ph->qn--;
	switch (q.kind) {
	case PH_Q_SRV: {
		struct ph_act a = { .kind = PH_ACT_SRV_SE_RESP, .a = q.seq, .data = resp, .n = n };

		return ph->srv_open ? ph_srv_send(ph, &a) : 0;
	}
	case PH_Q_SERIAL:
		return serial_in(ph, resp, n);
	case PH_Q_DISARM: /* best effort: a relay that expired or was never armed is fine */
		return 0;
	default:
		ph_cmd_on_local(ph, q.kind, resp, n);
		return 0;
	}
}

int ph_srv_se_apdu(struct ph *ph, uint32_t seq, const uint8_t *apdu, size_t n)
{
	if (apdu == NULL || n < 4)
		return TB_E_INVAL;
	if (!ph->se_open) {
		(void)ph_say(ph, "error: the server sent an APDU but the se is gone", NULL);
		return TB_E_IO;
	}
	return ph_se_send(ph, PH_Q_SRV, seq, apdu, n);
}

/* ---- the se's events ---- */

int ph_se_transaction(struct ph *ph, uint8_t kind, uint32_t amount, uint32_t balance,
		      uint32_t counter)
{
	struct ph_line l;

	ln_init(&l);
	ln_str(&l, kind == 1 ? "se says credit " : kind == 2 ? "se says debit " : "se says transaction ");
	ln_u64(&l, amount);
	ln_str(&l, ", balance ");
	ln_u64(&l, balance);
	ln_str(&l, ", counter ");
	ln_u64(&l, counter);
	return ln_put(ph, &l);
}

int ph_se_disable(struct ph *ph, uint16_t bitmap)
{
	struct ph_line l;

	ln_init(&l);
	ln_str(&l, "se says disable ");
	ln_hex(&l, bitmap, 4);
	return ln_put(ph, &l);
}

int ph_se_locked(struct ph *ph, int locked)
{
	return ph_say(ph, locked ? "se says locked" : "se says unlocked", NULL);
}

int ph_se_lost(struct ph *ph, uint32_t count)
{
	struct ph_line l;

	ln_init(&l);
	ln_str(&l, "se says events lost ");
	ln_u64(&l, count);
	return ln_put(ph, &l);
}

int ph_se_closed(struct ph *ph, const char *why)
{
	if (!ph->se_open)
		return 0;
	ph->se_open = 0;
	ph->qn = 0;
	ph->relay_pending = 0;
	(void)ph_say(ph, "error: the se link closed: ", why != NULL ? why : "closed");
	ph_cmd_on_session_end(ph);
	return 0;
}

/* ---- the server's frames ---- */

int ph_srv_menu(struct ph *ph, const struct ph_menu_item *items, size_t n)
{
	int first = !ph->menu_seen;

	if (n > PH_MENU_MAX || (items == NULL && n > 0))
		return TB_E_INVAL;
	for (size_t i = 0; i < n; i++)
		if (items[i].name == NULL || items[i].name_len == 0 || items[i].name_len > PH_NAME_MAX)
			return TB_E_INVAL;
	for (size_t i = 0; i < n; i++) {
		ph->menu[i].id = items[i].id;
		ph->menu[i].kind = items[i].kind;
		ph->menu[i].state = items[i].state;
		ph->menu[i].name_len = (uint8_t)items[i].name_len;
		memcpy(ph->menu[i].name, items[i].name, items[i].name_len);
		ph->menu[i].name[items[i].name_len] = '\0';
	}
	ph->menu_n = n;
	ph->menu_seen = 1;
	/* The first MENU is shown by the `menu` command; later ones changed something. */
	if (!first)
		ph_menu_show(ph, "menu");
	return 0;
}

int ph_srv_notice(struct ph *ph, const uint8_t *text, size_t n)
{
	struct ph_line l;

	if (text == NULL || n == 0 || n > PH_NOTICE_MAX)
		return TB_E_INVAL;
	ln_init(&l);
	ln_str(&l, "notice ");
	ln_mem(&l, (const char *)text, n);
	(void)ln_put(ph, &l);
	if (ph->notice_n == PH_NOTICES) { /* the oldest unclaimed one goes */
		memmove(ph->notice[0], ph->notice[1], sizeof(ph->notice[0]) * (PH_NOTICES - 1));
		ph->notice_n--;
	}
	memcpy(ph->notice[ph->notice_n], text, n);
	ph->notice[ph->notice_n][n] = '\0';
	ph->notice_n++;
	ph_cmd_on_notice(ph);
	return 0;
}

/* The server is gone: a pending relay cannot be answered any more. */
static void srv_gone(struct ph *ph)
{
	struct ph_act c = { .kind = PH_ACT_CLOSE };

	if (ph->relay_pending)
		relay_end(ph, 1);
	ph->srv_open = 0;
	(void)ph_act_push(ph, &c);
	ph_cmd_on_session_end(ph);
}

int ph_srv_error(struct ph *ph, uint16_t code, const uint8_t *reason, size_t n)
{
	struct ph_line l;

	if (!ph->srv_open)
		return 0;
	ln_init(&l);
	ln_str(&l, "error: the server ended the session: ");
	ln_u64(&l, code);
	ln_str(&l, " ");
	if (reason != NULL)
		ln_mem(&l, (const char *)reason, n);
	(void)ln_put(ph, &l);
	srv_gone(ph);
	return 0;
}

int ph_srv_bye(struct ph *ph)
{
	if (!ph->srv_open)
		return 0;
	if (!ph->quit_sent)
		(void)ph_say(ph, "the server said goodbye", NULL);
	srv_gone(ph);
	return 0;
}

int ph_srv_closed(struct ph *ph, const char *why)
{
	if (!ph->srv_open)
		return 0;
	if (!ph->quit_sent)
		(void)ph_say(ph, "error: the server session ended: ", why != NULL ? why : "closed");
	srv_gone(ph);
	return 0;
}

int ph_srv_ping(struct ph *ph, const uint8_t token[8])
{
	struct ph_act a = { .kind = PH_ACT_SRV_PONG };

	memcpy(a.token, token, 8);
	return ph_srv_send(ph, &a);
}

int ph_srv_pong(struct ph *ph, const uint8_t token[8], uint64_t now)
{
	if (token == NULL)
		return TB_E_INVAL;
	if (now > ph->now)
		ph->now = now;
	ph_cmd_on_pong(ph, token);
	return 0;
}

/* ---- time ---- */

int ph_tick(struct ph *ph, uint64_t now)
{
	if (now > ph->now)
		ph->now = now;
	if (ph->relay_pending && ph->now - ph->relay_since >= ph->cfg.relay_wait_ms) {
		(void)ph_say(ph, "error: relay failed: no answer from the server in time", NULL);
		relay_end(ph, 1);
	}
	if (ph->srv_open && ph->hello_sent && !ph->quit_sent && ph->now - ph->last_sent >= PH_PING_MS) {
		struct ph_act a = { .kind = PH_ACT_SRV_PING };
		uint32_t c = ++ph->ping_count;

		a.token[4] = (uint8_t)(c >> 24);
		a.token[5] = (uint8_t)(c >> 16);
		a.token[6] = (uint8_t)(c >> 8);
		a.token[7] = (uint8_t)c;
		(void)ph_srv_send(ph, &a);
	}
	ph_cmd_tick(ph);
	return ph->act_err;
}
