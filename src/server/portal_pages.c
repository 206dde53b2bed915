/* portal_pages.c - the customer's pages: wallet (state, balance, service menu), tickets,
 * history (pages and CSV), lock and unlock, personal data. Every page reads the
 * session's own se only: no page takes a serial from the request. What stays true: a
 * write is one db request in a batch of its own, committed before the page says it
 * happened; the balance shown is the ledger's, which holds only what the se confirmed. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "ledger.h"
#include "portal_int.h"
#include "rules.h"

#define SVC_SCAN 256u      /* service ids looked at, as the server's menu */
#define SVC_NAMES 16u      /* service names cached per page */
#define TICKETS_MAX 128u   /* tickets shown */

struct svc_names {
	size_t n;
	uint32_t id[SVC_NAMES];
	char name[SVC_NAMES][DB_NAME_MAX];
};

static const char *svc_name(struct db *db, struct svc_names *c, uint32_t id)
{
	struct db_service sv;

	if (id == 0)
		return "-";
	for (size_t i = 0; i < c->n; i++)
		if (c->id[i] == id)
			return c->name[i];
	if (c->n == SVC_NAMES || db->ops->service_get(db, id, &sv) != 0)
		return "?";
	c->id[c->n] = id;
	memcpy(c->name[c->n], sv.name, DB_NAME_MAX);
	c->name[c->n][DB_NAME_MAX - 1] = '\0';
	return c->name[c->n++];
}

/* Runs fn(db, arg) as the one request of a batch of its own. code_refusals: the
 * refusals of an unlock code keep their writes (the count of wrong codes). */
static int one_request(struct db *db, int (*fn)(struct db *, void *), void *arg, int code_refusals)
{
	int rc = db_batch_begin(db), end, keep;

	if (rc != 0)
		return rc;
	rc = db_req_begin(db);
	if (rc != 0) {
		db_batch_abort(db);
		return rc;
	}
	rc = fn(db, arg);
	keep = rc == 0 || (code_refusals && (rc == TB_E_PORTAL_CODE || rc == TB_E_PORTAL_TRIES));
	end = db_req_end(db, keep);
	if (end != 0 && keep)
		rc = end;
	end = db_batch_commit(db);
	return end != 0 ? end : rc;
}

struct lock_op {
	const uint8_t *se;
	int lock;
	int64_t now;
};

static int lock_fn(struct db *db, void *arg)
{
	const struct lock_op *o = arg;
	struct db_se se;
	uint8_t pend;
	int rc = db->ops->se_get(db, o->se, &se);

	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_UNKNOWN_SE;
	if (rc != 0)
		return rc;
	if (se.state == DB_SE_LOST)
		return TB_E_SRV_LOST;
	if (se.state == (o->lock ? DB_SE_LOCKED : DB_SE_ACTIVE))
		return 0; /* already there: nothing to record */
	rc = o->lock ? srv_se_lock(db, o->se, 0, o->now) : srv_se_unlock(db, o->se, 0, o->now);
	/* Undoing a change the se has not seen yet leaves nothing for it to do. */
	if (o->lock)
		pend = se.pending == DB_SE_UNLOCK_PENDING ? DB_SE_PENDING_NONE : DB_SE_LOCK_PENDING;
	else
		pend = se.pending == DB_SE_LOCK_PENDING ? DB_SE_PENDING_NONE : DB_SE_UNLOCK_PENDING;
	if (rc == 0)
		rc = db->ops->se_set_pending(db, o->se, pend, o->now);
	return rc;
}

int pt_set_lock(struct db *db, const uint8_t se[DB_SERIAL_LEN], int lock, int64_t now)
{
	struct lock_op o = { se, lock, now };

	return one_request(db, lock_fn, &o, 0);
}

/* ------------------------------------------------------------ wallet --- */

static const char *state_class(const struct db_se *se)
{
	if (se->state == DB_SE_ACTIVE && se->pending == DB_SE_PENDING_NONE)
		return "st st-ok";
	return se->state == DB_SE_LOST ? "st st-bad" : "st st-warn";
}

static int menu_rows(struct pt_ctx *c, const struct db_se *se)
{
	struct db_service sv;
	struct db_ticket t[8];
	size_t shown = 0, nt = 0;
	int rc = 0;

	for (uint32_t id = 1; id <= SVC_SCAN && rc == 0 && shown < 32; id++) {
		char detail[96], num[PT_NUM_LEN];
		const char *state;

		rc = c->db->ops->service_get(c->db, id, &sv);
		if (rc == TB_E_DB_NOT_FOUND) {
			rc = 0;
			continue;
		}
		if (rc != 0)
			break;
		shown++;
		detail[0] = '\0';
		if (sv.kind == DB_SVC_EMONEY && sv.n_prices > 0 && sv.prices[0].item == 1) {
			pt_udec(sv.prices[0].price, num);
			pt_join(detail, sizeof(detail), "Top-up of ", num, " from the phone");
		} else if (sv.kind == DB_SVC_TICKET &&
			   c->db->ops->tickets_of_se(c->db, se->serial, 0, t, 8, &nt) == 0) {
			pt_udec(nt, num);
			pt_join(detail, sizeof(detail), num, nt == 8 ? "+" : "",
				nt == 1 ? " ticket issued" : " tickets issued");
		} else if (sv.kind == DB_SVC_PAUTH) {
			pt_join(detail, sizeof(detail), "See Personal data", NULL, NULL);
		}
		state = se->state == DB_SE_ACTIVE ? "Available" : "Blocked while the wallet is locked";
		{
			const struct pt_val v[] = { PV("name", sv.name), PV("kind", pt_svc_kind_name(sv.kind)),
						    PV("state", state), PV("detail", detail) };

			rc = pt_emit(c->rs->body, "<tr><td>{{name}}<div class=\"mut\">{{kind}}</div></td>"
				     "<td>{{state}}<div class=\"mut\">{{detail}}</div></td></tr>\n", v, 4);
		}
	}
	if (rc == 0 && shown == 0)
		rc = pt_emit(c->rs->body, "<tr><td colspan=\"2\">No services yet.</td></tr>\n", NULL, 0);
	return rc;
}

int pt_home(struct pt_ctx *c)
{
	char serial[2 * DB_SERIAL_LEN + 1], bal[PT_NUM_LEN], since[PT_TIME_LEN];
	struct db_se se;
	int64_t balance = 0;
	int rc = c->db->ops->se_get(c->db, c->s->se, &se);

	if (rc == 0)
		rc = ledger_balance(c->db, c->s->se, &balance);
	if (rc != 0)
		return rc;
	pt_serial(se.serial, serial);
	pt_dec("", balance, bal);
	pt_time(se.pending_since, since);
	{
		const struct pt_val v[] = { PV("serial", serial), PV("bal", bal),
					    PV("state", pt_se_state(&se)), PV("cls", state_class(&se)),
					    PV("since", since) };

		rc = pt_page_open(c, "Your wallet");
		if (rc == 0)
			rc = pt_emit(c->rs->body,
				     "<div class=\"card\"><div class=\"mut\">Wallet {{serial}}</div>"
				     "<span class=\"{{cls}}\" id=\"state\">{{state}}</span></div>\n"
				     "<div class=\"card\"><div class=\"mut\">Confirmed balance</div>"
				     "<div class=\"big\" id=\"balance\">{{bal}}</div>"
				     "<p class=\"mut\">Only what your phone's secure element has confirmed "
				     "is counted. A top-up it has not confirmed yet is <b>pending</b> and "
				     "is not in this figure; payments at a reader that was offline appear "
				     "once that reader reports them.</p></div>\n", v, 5);
		if (rc == 0 && se.pending != DB_SE_PENDING_NONE)
			rc = pt_emit(c->rs->body,
				     "<p class=\"msg\" id=\"pending\">{{state}} since {{since}}: it takes "
				     "effect in your phone at its next contact with the server.</p>\n", v, 5);
	}
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<h2>Services</h2><div class=\"tw\"><table id=\"menu\">"
			     "<tr><th>Service</th><th>State</th></tr>\n", NULL, 0);
	if (rc == 0)
		rc = menu_rows(c, &se);
	if (rc == 0)
		rc = pt_emit(c->rs->body, "</table></div>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

/* ----------------------------------------------------------- tickets --- */

static const char *ticket_state(const struct db_ticket *t, int64_t now)
{
	if (t->state == DB_TICKET_REVOKED)
		return "Revoked";
	if (t->state == DB_TICKET_SPENT || t->uses_left == 0)
		return "Used";
	if (now >= t->valid_until)
		return "Expired";
	if (now < t->valid_from)
		return "Not yet valid";
	return "Valid";
}

int pt_tickets(struct pt_ctx *c)
{
	static struct db_ticket t[TICKETS_MAX];
	struct svc_names names = { 0 };
	size_t n = 0;
	int rc = c->db->ops->tickets_of_se(c->db, c->s->se, 0, t, TICKETS_MAX, &n);

	if (rc == 0)
		rc = pt_page_open(c, "Tickets");
	if (rc == 0 && n == 0)
		rc = pt_emit(c->rs->body, "<p id=\"none\">No tickets.</p>\n", NULL, 0);
	if (rc == 0 && n > 0)
		rc = pt_emit(c->rs->body, "<div class=\"tw\"><table id=\"tickets\"><tr><th>Ticket</th>"
			     "<th>Valid</th><th class=\"n\">Uses left</th><th>State</th></tr>\n",
			     NULL, 0);
	for (size_t i = n; rc == 0 && i-- > 0;) { /* newest first */
		char id[PT_NUM_LEN], from[PT_TIME_LEN], until[PT_TIME_LEN], uses[PT_NUM_LEN];
		const struct pt_val v[] = { PV("id", id), PV("svc", svc_name(c->db, &names, t[i].service)),
					    PV("from", from), PV("until", until), PV("uses", uses),
					    PV("state", ticket_state(&t[i], c->rq->now)) };

		pt_udec(t[i].id, id);
		pt_udec(t[i].uses_left, uses);
		pt_time(t[i].valid_from, from);
		pt_time(t[i].valid_until, until);
		rc = pt_emit(c->rs->body, "<tr><td>#{{id}}<div class=\"mut\">{{svc}}</div></td>"
			     "<td>{{from}}<div class=\"mut\">until {{until}}</div></td>"
			     "<td class=\"n\">{{uses}}</td><td>{{state}}</td></tr>\n", v, 6);
	}
	if (rc == 0 && n > 0)
		rc = pt_emit(c->rs->body, "</table></div>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

/* ----------------------------------------------------------- history --- */

/* Only money that moved in or out of the purse has an amount here: a ticket's count or
 * an order's total is not money (the order's payment is its own Payment row). */
static void amount_text(const struct db_event *e, char out[PT_NUM_LEN])
{
	if (e->amount == 0)
		memcpy(out, "", 1);
	else if (e->kind == DB_EV_PAY)
		pt_dec("\xE2\x88\x92", e->amount, out); /* U+2212 minus */
	else if (e->kind == DB_EV_TOPUP || e->kind == DB_EV_REFUND || e->kind == DB_EV_MOVE)
		pt_dec("+", e->amount, out);
	else
		memcpy(out, "", 1);
}

static void reader_text(uint32_t reader, char out[PT_NUM_LEN])
{
	if (reader == 0)
		memcpy(out, "phone / server", 15);
	else
		pt_dec("reader ", reader, out);
}

/* "" or a decimal id 1..INT64_MAX: 0 and *before set; else TB_E_PORTAL_REQUEST. */
static int parse_before(const char *s, uint64_t *before)
{
	uint64_t v = 0;

	*before = 0;
	if (s == NULL)
		return 0;
	if (*s == '\0' || strlen(s) > 19)
		return TB_E_PORTAL_REQUEST;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return TB_E_PORTAL_REQUEST;
		v = v * 10u + (uint64_t)(*s - '0');
	}
	if (v == 0 || v > INT64_MAX)
		return TB_E_PORTAL_REQUEST;
	*before = v;
	return 0;
}

int pt_history(struct pt_ctx *c)
{
	static struct db_event ev[PORTAL_HISTORY_PAGE + 1];
	struct svc_names names = { 0 };
	uint64_t before = 0;
	size_t n = 0;
	int rc;

	if (parse_before(c->f_before, &before) != 0)
		return pt_message(c, 400, "Bad request", "That page of the history does not exist.");
	rc = c->db->ops->history_by_se(c->db, c->s->se, before, ev, PORTAL_HISTORY_PAGE + 1, &n);
	if (rc == 0)
		rc = pt_page_open(c, "Usage history");
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<p><a href=\"/history.csv\" download>Download all as CSV"
			     "</a></p>\n", NULL, 0);
	if (rc == 0 && n == 0)
		rc = pt_emit(c->rs->body, "<p id=\"none\">Nothing yet.</p>\n", NULL, 0);
	if (rc == 0 && n > 0)
		rc = pt_emit(c->rs->body, "<div class=\"tw\"><table id=\"history\"><tr><th>When</th>"
			     "<th>What</th><th class=\"n\">Amount</th></tr>\n", NULL, 0);
	for (size_t i = 0; rc == 0 && i < n && i < PORTAL_HISTORY_PAGE; i++) {
		char when[PT_TIME_LEN], amt[PT_NUM_LEN], rdr[PT_NUM_LEN];
		const struct pt_val v[] = { PV("when", when), PV("what", pt_kind_name(ev[i].kind)),
					    PV("svc", svc_name(c->db, &names, ev[i].service)),
					    PV("rdr", rdr), PV("amt", amt) };

		pt_time(ev[i].time, when);
		amount_text(&ev[i], amt);
		reader_text(ev[i].reader, rdr);
		rc = pt_emit(c->rs->body, "<tr><td>{{when}}</td><td>{{what}}<div class=\"mut\">{{svc}}"
			     " &middot; {{rdr}}</div></td><td class=\"n\">{{amt}}</td></tr>\n", v, 5);
	}
	if (rc == 0 && n > 0)
		rc = pt_emit(c->rs->body, "</table></div>\n<div class=\"pager\">", NULL, 0);
	if (rc == 0 && before != 0)
		rc = pt_emit(c->rs->body, "<a href=\"/history\">Newest</a>", NULL, 0);
	if (rc == 0 && n > PORTAL_HISTORY_PAGE) {
		char next[PT_NUM_LEN];
		const struct pt_val v[] = { PV("next", next) };

		pt_udec(ev[PORTAL_HISTORY_PAGE - 1].id, next);
		rc = pt_emit(c->rs->body, "<a href=\"/history?before={{next}}\" id=\"older\">Older"
			     "</a>", v, 1);
	}
	if (rc == 0 && n > 0)
		rc = pt_emit(c->rs->body, "</div>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

#define CSV_ROWS 64u
#define CSV_ROW_MAX 512u   /* room one row needs at most */

int portal_csv_more(struct db *db, struct portal_resp *rs)
{
	static struct db_event ev[CSV_ROWS];
	struct svc_names names = { 0 };
	size_t n = 0;
	int rc = 0;

	rs->more = 0;
	while (rc == 0 && wr_room(rs->body) >= CSV_ROWS * CSV_ROW_MAX) {
		rc = db->ops->history_by_se(db, rs->csv_se, rs->cursor, ev, CSV_ROWS, &n);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			char id[PT_NUM_LEN], when[PT_TIME_LEN], amt[PT_NUM_LEN], rdr[PT_NUM_LEN];

			pt_udec(ev[i].id, id);
			pt_time(ev[i].time, when);
			pt_dec("", ev[i].kind == DB_EV_PAY ? -ev[i].amount : ev[i].amount, amt);
			pt_udec(ev[i].reader, rdr);
			rc = pt_csv_field(rs->body, id, 0);
			if (rc == 0)
				rc = pt_csv_field(rs->body, when, 0);
			if (rc == 0)
				rc = pt_csv_field(rs->body, pt_kind_name(ev[i].kind), 0);
			if (rc == 0)
				rc = pt_csv_field(rs->body, svc_name(db, &names, ev[i].service), 0);
			if (rc == 0)
				rc = pt_csv_field(rs->body, rdr, 0);
			if (rc == 0)
				rc = pt_csv_field(rs->body, amt, 1);
			rs->cursor = ev[i].id;
		}
		if (rc != 0 || n < CSV_ROWS)
			return rc;
	}
	rs->more = 1;
	return 0;
}

int pt_history_csv(struct pt_ctx *c)
{
	struct portal_resp *rs = c->rs;
	int rc = pt_csv_field(rs->body, "id", 0);

	rs->status = 200;
	rs->content_type = "text/csv; charset=utf-8";
	rs->disposition = "attachment; filename=\"tapbridge-history.csv\"";
	rc = rc != 0 ? rc : pt_csv_field(rs->body, "time (UTC)", 0);
	rc = rc != 0 ? rc : pt_csv_field(rs->body, "what", 0);
	rc = rc != 0 ? rc : pt_csv_field(rs->body, "service", 0);
	rc = rc != 0 ? rc : pt_csv_field(rs->body, "reader (0: phone or server)", 0);
	rc = rc != 0 ? rc : pt_csv_field(rs->body, "amount", 1);
	memcpy(rs->csv_se, c->s->se, DB_SERIAL_LEN);
	rs->cursor = 0;
	return rc != 0 ? rc : portal_csv_more(c->db, rs);
}

/* ------------------------------------------------------ lock, unlock --- */

int pt_wallet(struct pt_ctx *c)
{
	char since[PT_TIME_LEN];
	struct db_se se;
	int rc;

	/* the state texts are read from se only after the lookup filled it */
	memset(&se, 0, sizeof(se));
	if ((rc = c->db->ops->se_get(c->db, c->s->se, &se)) != 0)
		return rc;
	const struct pt_val v[] = { PV("state", pt_se_state(&se)), PV("cls", state_class(&se)),
				    PV("csrf", c->csrf), PV("since", since) };

	pt_time(se.pending_since, since);
	rc = pt_page_open(c, "Lock or unlock");
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<div class=\"card\">Wallet: <span class=\"{{cls}}\" "
			     "id=\"state\">{{state}}</span></div>\n", v, 4);
	if (rc == 0 && se.pending == DB_SE_LOCK_PENDING)
		rc = pt_emit(c->rs->body, "<p class=\"msg\" id=\"pending\">Lock asked for at {{since}}. "
			     "The server refuses this wallet from now on; your phone locks itself at its "
			     "next contact with the server.</p>\n", v, 4);
	if (rc == 0 && se.pending == DB_SE_UNLOCK_PENDING)
		rc = pt_emit(c->rs->body, "<p class=\"msg\" id=\"pending\">Unlocked at the server at "
			     "{{since}}; your phone unlocks itself at its next contact.</p>\n", v, 4);
	if (rc == 0 && se.state == DB_SE_ACTIVE)
		rc = pt_emit(c->rs->body, "<form method=\"post\" action=\"/lock\">"
			     "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
			     "<p>Lost your phone? Locking stops payments and top-ups with this wallet. "
			     "To unlock you need a code from the operator.</p>"
			     "<button type=\"submit\" class=\"danger\" id=\"lock\">Lock my wallet</button>"
			     "</form>\n", v, 4);
	if (rc == 0 && se.state == DB_SE_LOCKED)
		rc = pt_emit(c->rs->body, "<form method=\"post\" action=\"/unlock\">"
			     "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
			     "<label for=\"code\">Unlock code from the operator</label>"
			     "<input type=\"text\" id=\"code\" name=\"code\" inputmode=\"numeric\" "
			     "autocomplete=\"one-time-code\" maxlength=\"16\">"
			     "<p><button type=\"submit\" id=\"unlock\">Unlock</button></p></form>\n", v, 4);
	if (rc == 0 && se.state == DB_SE_LOST)
		rc = pt_emit(c->rs->body, "<p>This wallet was reported lost; its balance moved to its "
			     "replacement.</p>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

int pt_lock(struct pt_ctx *c)
{
	int rc = pt_set_lock(c->db, c->s->se, 1, c->rq->now);

	if (rc == TB_E_SRV_LOST)
		return pt_message(c, 409, "Not locked", "This wallet was reported lost.");
	if (rc != 0)
		return rc;
	pt_redirect(c, "/wallet");
	return 0;
}

struct unlock_op {
	const uint8_t *se;
	const char *code;
	int64_t now;
	uint32_t left;
};

static int unlock_fn(struct db *db, void *arg)
{
	struct unlock_op *o = arg;
	struct lock_op l = { o->se, 0, o->now };
	int rc = portal_code_check(db, o->se, o->code, o->now, &o->left);

	return rc != 0 ? rc : lock_fn(db, &l);
}

int pt_unlock(struct pt_ctx *c)
{
	struct unlock_op o = { c->s->se, c->f_code, c->rq->now, 0 };
	char text[160], num[PT_NUM_LEN];
	int rc;

	/* Both refusals keep the count of wrong codes. */
	rc = one_request(c->db, unlock_fn, &o, 1);
	if (rc == TB_E_PORTAL_CODE) {
		pt_udec(o.left, num);
		pt_join(text, sizeof(text), "The code is wrong, expired or was never set. ", num,
			o.left == 1 ? " try left for this code." : " tries left for this code.");
		return pt_message(c, 403, "Not unlocked", text);
	}
	if (rc == TB_E_PORTAL_TRIES)
		return pt_message(c, 403, "Not unlocked", "Too many wrong codes: this code no longer "
				  "works. Ask the operator for a new one.");
	if (rc == TB_E_SRV_LOST)
		return pt_message(c, 409, "Not unlocked", "This wallet was reported lost.");
	if (rc != 0)
		return rc;
	pt_redirect(c, "/wallet");
	return 0;
}

/* ----------------------------------------------------- personal data --- */

int pt_personal(struct pt_ctx *c)
{
	static struct db_pauth pa;
	int rc = c->db->ops->pauth_get(c->db, c->s->se, &pa);
	const struct pt_val v[] = { PV("id", pa.identifier), PV("csrf", c->csrf) };

	if (rc == TB_E_DB_NOT_FOUND) {
		rc = pt_page_open(c, "Personal data");
		if (rc == 0)
			rc = pt_emit(c->rs->body, "<p id=\"none\">The personal-authentication service "
				     "holds no data about you.</p>\n", NULL, 0);
		return rc == 0 ? pt_page_close(c) : rc;
	}
	if (rc == 0)
		rc = pt_page_open(c, "Personal data");
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<p>What the personal-authentication service holds about "
			     "you. Readers see only the items their class is allowed to.</p>"
			     "<div class=\"tw\"><table id=\"pauth\"><tr><th>Item</th><th>Value</th></tr>"
			     "<tr><td>Identifier</td><td>{{id}}</td></tr>\n", v, 2);
	for (size_t i = 0; rc == 0 && i < pa.n_attrs; i++) {
		const struct pt_val a[] = { PV("n", pa.attrs[i].name),
					    { "v", (const char *)pa.attrs[i].value, pa.attrs[i].len } };

		rc = pt_emit(c->rs->body, "<tr><td>{{n}}</td><td>{{v}}</td></tr>\n", a, 2);
	}
	if (rc == 0)
		rc = pt_emit(c->rs->body, "</table></div>\n<h2>Delete</h2>"
			     "<form method=\"post\" action=\"/personal/delete\">"
			     "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
			     "<p><label><input type=\"checkbox\" name=\"confirm\" value=\"yes\" "
			     "id=\"confirm\"> Delete my personal data from the server. Readers can no "
			     "longer check who I am.</label></p>"
			     "<button type=\"submit\" class=\"danger\" id=\"delete\">Delete</button>"
			     "</form>\n", v, 2);
	ct_wipe(&pa, sizeof(pa));
	return rc == 0 ? pt_page_close(c) : rc;
}

struct del_op {
	const uint8_t *se;
	int64_t now;
};

static int del_fn(struct db *db, void *arg)
{
	const struct del_op *o = arg;
	struct db_event ev;
	int rc = db->ops->pauth_delete(db, o->se);

	if (rc != 0)
		return rc;
	memset(&ev, 0, sizeof(ev));
	ev.time = o->now;
	ev.kind = DB_EV_PAUTH_DELETE;
	ev.has_se = 1;
	memcpy(ev.se, o->se, DB_SERIAL_LEN);
	return db->ops->history_add(db, &ev, NULL);
}

int pt_personal_delete(struct pt_ctx *c)
{
	struct del_op o = { c->s->se, c->rq->now };
	int rc;

	if (c->f_confirm == NULL || strcmp(c->f_confirm, "yes") != 0)
		return pt_message(c, 400, "Not deleted", "Tick the box to confirm the deletion.");
	rc = one_request(c->db, del_fn, &o, 0);
	if (rc == TB_E_DB_NOT_FOUND)
		return pt_message(c, 404, "Nothing to delete", "The personal-authentication service "
				  "holds no data about you.");
	if (rc != 0)
		return rc;
	return pt_message(c, 200, "Deleted", "Your personal data was deleted from the server. "
			  "The usage history records that it happened.");
}
