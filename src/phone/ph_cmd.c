/* ph_cmd.c - the phone's user commands (ph_parse.c reads the command line): starting a
 * command, and ending it when its answer comes (a NOTICE, a HISTORY, the se's response)
 * or its time runs out. What stays true: one command at a time; each ends exactly once,
 * OK or FAILED, and a failure always leaves an "error: ..." line on the screen. */
#include <string.h>

#include "err.h"
#include "ph_int.h"

#define LOCAL_WAIT_MS 5000u
#define QUIT_WAIT_MS 2000u
#define PING_MARK 0x70u /* token[0] of the ping command's PINGs ('p'); the idle ones have 0 */

/* ---- screens ---- */

static const char *kind_name(uint8_t k)
{
	static const char *const names[] = { NULL, "personal-auth", "e-money", "e-commerce", "ticket" };

	return k < sizeof(names) / sizeof(names[0]) && names[k] != NULL ? names[k] : "service";
}

static const char *state_name(uint8_t s)
{
	return s == 1 ? "[offered]" : s == 2 ? "[ready]" : s == 3 ? "[blocked]" : "[?]";
}

void ph_menu_show(struct ph *ph, const char *prefix)
{
	struct ph_line l;

	if (ph->menu_n == 0) {
		(void)ph_say(ph, prefix, " empty");
		return;
	}
	for (size_t i = 0; i < ph->menu_n; i++) {
		ln_init(&l);
		ln_str(&l, prefix);
		ln_str(&l, " ");
		ln_u64(&l, ph->menu[i].id);
		ln_str(&l, " ");
		ln_str(&l, kind_name(ph->menu[i].kind));
		ln_str(&l, " ");
		ln_str(&l, state_name(ph->menu[i].state));
		ln_str(&l, " ");
		ln_mem(&l, ph->menu[i].name, ph->menu[i].name_len);
		(void)ln_put(ph, &l);
	}
}

static const char *event_name(uint8_t k)
{
	static const char *const names[] = { NULL, "se-credited", "top-up", "pay", "refund", "lock",
					     "unlock", "lost", "replace", "ticket-issued",
					     "ticket-used", "order", "personal-auth", "vault", "move" };

	return k < sizeof(names) / sizeof(names[0]) && names[k] != NULL ? names[k] : "other";
}

int ph_srv_history(struct ph *ph, uint8_t more, const struct ph_hist_rec *recs, size_t n)
{
	struct ph_line l;

	if (n > PH_HISTORY_MAX || (recs == NULL && n > 0))
		return TB_E_INVAL;
	if (n == 0)
		(void)ph_say(ph, "history empty", NULL);
	for (size_t i = 0; i < n; i++) {
		const struct ph_hist_rec *r = &recs[i];

		ln_init(&l);
		ln_str(&l, "history ");
		ln_u64(&l, r->id);
		ln_str(&l, " ");
		ln_str(&l, event_name(r->kind));
		ln_str(&l, " service ");
		ln_u64(&l, r->service);
		ln_str(&l, " reader ");
		ln_u64(&l, r->reader);
		ln_str(&l, " amount ");
		ln_i64(&l, r->amount);
		/* 0: the server keeps no balance for this event (docs/protocol.md) */
		if (r->balance != 0) {
			ln_str(&l, " balance ");
			ln_i64(&l, r->balance);
		}
		ln_str(&l, " time ");
		ln_time(&l, r->time);
		(void)ln_put(ph, &l);
	}
	if (more)
		(void)ph_say(ph, "history more: older records exist", NULL);
	ph_cmd_on_history(ph);
	return 0;
}

/* ---- running ---- */

enum ph_cmd_state ph_cmd_state(const struct ph *ph)
{
	return ph->cmd_state;
}

void ph_cmd_finish(struct ph *ph, int ok)
{
	if (ph->cmd_state != PH_CMD_RUNNING)
		return;
	ph->cmd_state = ok ? PH_CMD_OK : PH_CMD_FAILED;
}

static void fail(struct ph *ph, const char *a, const char *b)
{
	(void)ph_say(ph, a, b);
	ph_cmd_finish(ph, 0);
}

/* The first unclaimed notice that starts with prefix ("" matches any): its index, or -1. */
static int notice_find(const struct ph *ph, const char *prefix)
{
	size_t pl = strlen(prefix);

	for (size_t i = 0; i < ph->notice_n; i++)
		if (strncmp(ph->notice[i], prefix, pl) == 0)
			return (int)i;
	return -1;
}

/* Claims notices 0..i: a later wait sees only what came after. */
static void notice_claim(struct ph *ph, size_t i)
{
	size_t k = i + 1;

	memmove(ph->notice[0], ph->notice[k], sizeof(ph->notice[0]) * (ph->notice_n - k));
	ph->notice_n -= k;
}

/* SELECT wallet (no Le), sent before every local command: the host interface may have
 * another application selected. */
const uint8_t ph_wallet_select[PH_WALLET_SELECT_LEN] = { 0x00, 0xA4, 0x04, 0x00,
							  PH_WALLET_AID_LEN, 0xF0, 0x54,
							  0x41, 0x50, 0x42, 0x52, 0x49,
							  0x44, 0x47, 0x45, 0x01 };

static int local_start(struct ph *ph, const uint8_t *cmd, size_t n)
{
	if (!ph->se_open) {
		fail(ph, "error: no se link", NULL);
		return 0;
	}
	memcpy(ph->local_cmd, cmd, n);
	ph->local_n = n;
	ph->cmd_deadline = ph->now + LOCAL_WAIT_MS;
	return ph_se_send(ph, PH_Q_SELECT, 0, ph_wallet_select, sizeof(ph_wallet_select));
}

static int start_local(struct ph *ph, const struct ph_cmd *c)
{
	uint8_t apdu[16];
	size_t n = 0;

	switch (c->kind) {
	case PH_CMD_ARM:
		memcpy(apdu, "\x80\x6C\x02\x00\x04", 5);
		apdu[5] = (uint8_t)(c->arg >> 24);
		apdu[6] = (uint8_t)(c->arg >> 16);
		apdu[7] = (uint8_t)(c->arg >> 8);
		apdu[8] = (uint8_t)c->arg;
		n = 9;
		break;
	case PH_CMD_BALANCE:
		memcpy(apdu, "\x80\x30\x00\x00\x00", 5);
		n = 5;
		break;
	default: /* PH_CMD_LOCK */
		memcpy(apdu, "\x80\x90\x00\x00", 4);
		n = 4;
		break;
	}
	return local_start(ph, apdu, n);
}

static int start_server(struct ph *ph, const struct ph_cmd *c)
{
	struct ph_act a = { .kind = PH_ACT_NONE };

	if (!ph->srv_open) {
		fail(ph, "error: no server session", NULL);
		return 0;
	}
	ph->cmd_deadline = ph->now + PH_CMD_WAIT_MS;
	if (c->kind == PH_CMD_SELECT) {
		a.kind = PH_ACT_SRV_SELECT;
		a.a = c->arg;
		a.op = c->op;
		ph->notice_n = 0; /* what this SELECT answers comes after it */
	} else if (c->kind == PH_CMD_HISTORY) {
		a.kind = PH_ACT_SRV_HISTORY_REQ;
		a.a = c->arg;
	} else if (c->kind == PH_CMD_PORTAL) {
		a.kind = PH_ACT_SRV_PORTAL_REQ;
		ph->notice_n = 0; /* a NOTICE now is the server saying no */
	} else { /* PH_CMD_QUIT */
		a.kind = PH_ACT_SRV_BYE;
		ph->quit_sent = 1;
		ph->cmd_deadline = ph->now + QUIT_WAIT_MS;
	}
	return ph_srv_send(ph, &a);
}

/* One PING of the ping command: its token names it (mark, count), its clock starts. */
static int ping_send(struct ph *ph)
{
	struct ph_act a = { .kind = PH_ACT_SRV_PING };
	uint32_t k = ++ph->ping_count;

	a.token[0] = PING_MARK;
	a.token[4] = (uint8_t)(k >> 24);
	a.token[5] = (uint8_t)(k >> 16);
	a.token[6] = (uint8_t)(k >> 8);
	a.token[7] = (uint8_t)k;
	ph->ping_at = ph->now;
	ph->cmd_deadline = ph->now + PH_CMD_WAIT_MS;
	return ph_srv_send(ph, &a);
}

/* The PONG of the ping command's last PING (any other is an idle one's): its round trip
 * on the screen, then the next PING or the end. */
void ph_cmd_on_pong(struct ph *ph, const uint8_t token[8])
{
	uint32_t k = (uint32_t)token[4] << 24 | (uint32_t)token[5] << 16 |
		     (uint32_t)token[6] << 8 | token[7];
	struct ph_line l;

	if (ph->cmd_state != PH_CMD_RUNNING || ph->cmd.kind != PH_CMD_PING ||
	    token[0] != PING_MARK || k != ph->ping_count)
		return;
	ln_init(&l);
	ln_str(&l, "ping rtt-ms=");
	ln_u64(&l, ph->now - ph->ping_at);
	(void)ln_put(ph, &l);
	if (--ph->cmd.arg == 0)
		ph_cmd_finish(ph, 1);
	else
		(void)ping_send(ph);
}

int ph_cmd_start(struct ph *ph, const struct ph_cmd *c)
{
	int i;

	if (ph == NULL || c == NULL || ph->cmd_state == PH_CMD_RUNNING)
		return TB_E_INVAL;
	ph->cmd = *c;
	ph->cmd_state = PH_CMD_RUNNING;
	switch (c->kind) {
	case PH_CMD_MENU:
		if (!ph->menu_seen) {
			fail(ph, "error: no menu from the server", NULL);
			return 0;
		}
		ph_menu_show(ph, "menu");
		ph_cmd_finish(ph, 1);
		return 0;
	case PH_CMD_SELECT:
	case PH_CMD_HISTORY:
	case PH_CMD_PORTAL:
		return start_server(ph, c);
	case PH_CMD_QUIT:
		if (!ph->srv_open) {
			ph_cmd_finish(ph, 1);
			return 0;
		}
		return start_server(ph, c);
	case PH_CMD_ARM:
	case PH_CMD_BALANCE:
	case PH_CMD_LOCK:
		return start_local(ph, c);
	case PH_CMD_WAIT_NOTICE:
		if ((i = notice_find(ph, c->text)) >= 0) {
			notice_claim(ph, (size_t)i);
			ph_cmd_finish(ph, 1);
			return 0;
		}
		ph->cmd_deadline = ph->now + c->ms;
		return 0;
	case PH_CMD_SERVE:
	case PH_CMD_SLEEP:
		ph->cmd_deadline = ph->now + c->ms;
		ph_cmd_tick(ph);
		return 0;
	case PH_CMD_PING:
		if (!ph->srv_open) {
			fail(ph, "error: no server session", NULL);
			return 0;
		}
		return ping_send(ph);
	default:
		ph->cmd_state = PH_CMD_FAILED;
		return TB_E_INVAL;
	}
}

static const char *serve_prefix(const struct ph *ph)
{
	if (ph->cmd.text[0] != '\0')
		return ph->cmd.text;
	return ph->cfg.until_notice;
}

void ph_cmd_on_notice(struct ph *ph)
{
	const char *pre;
	int i;

	if (ph->cmd_state != PH_CMD_RUNNING)
		return;
	switch (ph->cmd.kind) {
	case PH_CMD_SELECT:
		notice_claim(ph, ph->notice_n - 1);
		ph_cmd_finish(ph, 1);
		break;
	case PH_CMD_PORTAL: /* the server has no link for us (no portal, or it failed) */
		notice_claim(ph, ph->notice_n - 1);
		ph_cmd_finish(ph, 0);
		break;
	case PH_CMD_WAIT_NOTICE:
		if ((i = notice_find(ph, ph->cmd.text)) >= 0) {
			notice_claim(ph, (size_t)i);
			ph_cmd_finish(ph, 1);
		}
		break;
	case PH_CMD_SERVE:
		pre = serve_prefix(ph);
		if (pre != NULL && (i = notice_find(ph, pre)) >= 0) {
			notice_claim(ph, (size_t)i);
			ph_cmd_finish(ph, 1);
		}
		break;
	default:
		break;
	}
}

int ph_srv_portal_link(struct ph *ph, const uint8_t *url, size_t n)
{
	struct ph_line l;

	if (url == NULL || n == 0 || n > PH_NOTICE_MAX)
		return TB_E_INVAL;
	ln_init(&l);
	ln_str(&l, "portal link ");
	ln_mem(&l, (const char *)url, n);
	(void)ln_put(ph, &l);
	if (ph->cmd_state == PH_CMD_RUNNING && ph->cmd.kind == PH_CMD_PORTAL)
		ph_cmd_finish(ph, 1);
	return 0;
}

void ph_cmd_on_history(struct ph *ph)
{
	if (ph->cmd_state == PH_CMD_RUNNING && ph->cmd.kind == PH_CMD_HISTORY)
		ph_cmd_finish(ph, 1);
}

static void sw_fail(struct ph *ph, const char *what, const uint8_t *resp, size_t n)
{
	struct ph_line l;

	ln_init(&l);
	ln_str(&l, "error: ");
	ln_str(&l, what);
	ln_str(&l, " refused by the se (");
	ln_hex(&l, (uint64_t)resp[n - 2] << 8 | resp[n - 1], 4);
	ln_str(&l, ")");
	(void)ln_put(ph, &l);
	ph_cmd_finish(ph, 0);
}

static void local_done(struct ph *ph, const uint8_t *resp, size_t n)
{
	struct ph_line l;
	int ok = n >= 2 && resp[n - 2] == 0x90 && resp[n - 1] == 0x00;

	switch (ph->cmd.kind) {
	case PH_CMD_ARM:
		if (!ok)
			return sw_fail(ph, "arm", resp, n);
		ln_init(&l);
		ln_str(&l, "armed service ");
		ln_u64(&l, ph->cmd.arg);
		ln_str(&l, ": tap the reader");
		(void)ln_put(ph, &l);
		break;
	case PH_CMD_BALANCE:
		if (!ok)
			return sw_fail(ph, "balance", resp, n);
		if (n != 14) {
			fail(ph, "error: the se's balance answer has the wrong length", NULL);
			return;
		}
		ln_init(&l);
		ln_str(&l, "balance ");
		ln_u64(&l, (uint64_t)resp[0] << 24 | (uint64_t)resp[1] << 16 | (uint64_t)resp[2] << 8 |
				   resp[3]);
		(void)ln_put(ph, &l);
		break;
	default: /* PH_CMD_LOCK */
		if (!ok)
			return sw_fail(ph, "lock", resp, n);
		(void)ph_say(ph, "locked", NULL);
		break;
	}
	ph_cmd_finish(ph, 1);
}

void ph_cmd_on_local(struct ph *ph, uint8_t kind, const uint8_t *resp, size_t n)
{
	int running = ph->cmd_state == PH_CMD_RUNNING &&
		      (ph->cmd.kind == PH_CMD_ARM || ph->cmd.kind == PH_CMD_BALANCE ||
		       ph->cmd.kind == PH_CMD_LOCK);

	if (!running)
		return; /* its command timed out already */
	if (kind == PH_Q_SELECT) {
		if (n < 2 || resp[n - 2] != 0x90 || resp[n - 1] != 0x00)
			return sw_fail(ph, "SELECT wallet", resp, n);
		(void)ph_se_send(ph, PH_Q_LOCAL, 0, ph->local_cmd, ph->local_n);
		return;
	}
	local_done(ph, resp, n);
}

void ph_cmd_on_session_end(struct ph *ph)
{
	if (ph->cmd_state != PH_CMD_RUNNING)
		return;
	switch (ph->cmd.kind) {
	case PH_CMD_QUIT:
		ph_cmd_finish(ph, 1);
		break;
	case PH_CMD_SELECT:
	case PH_CMD_HISTORY:
	case PH_CMD_WAIT_NOTICE:
	case PH_CMD_PING:
	case PH_CMD_PORTAL:
		fail(ph, "error: the session ended before the server answered", NULL);
		break;
	case PH_CMD_ARM:
	case PH_CMD_BALANCE:
	case PH_CMD_LOCK:
		if (!ph->se_open)
			fail(ph, "error: the se link ended before the se answered", NULL);
		break;
	default:
		break;
	}
}

void ph_cmd_tick(struct ph *ph)
{
	struct ph_line l;

	if (ph->cmd_state != PH_CMD_RUNNING || ph->now < ph->cmd_deadline)
		return;
	switch (ph->cmd.kind) {
	case PH_CMD_SERVE:
	case PH_CMD_SLEEP:
	case PH_CMD_QUIT:
		ph_cmd_finish(ph, 1);
		break;
	case PH_CMD_WAIT_NOTICE:
		ln_init(&l);
		ln_str(&l, "error: no notice \"");
		ln_str(&l, ph->cmd.text);
		ln_str(&l, "\" within ");
		ln_u64(&l, ph->cmd.ms / 1000u);
		ln_str(&l, " s");
		(void)ln_put(ph, &l);
		ph_cmd_finish(ph, 0);
		break;
	case PH_CMD_ARM:
	case PH_CMD_BALANCE:
	case PH_CMD_LOCK:
		fail(ph, "error: the se did not answer in time", NULL);
		break;
	default:
		fail(ph, "error: no answer from the server in time", NULL);
		break;
	}
}
