/* portal_op.c - the operator's view: ledgers per service with the audit, the ses with
 * their state and the deny list, the readers with their last contact. Read-only except
 * lock and unlock of a se (the same rule as the customer's, without the code). */
#include <string.h>

#include "err.h"
#include "hex.h"
#include "ledger.h"
#include "portal_int.h"

#define OP_SVC_SCAN 256u
#define OP_ROWS 200u

int pt_op_home(struct pt_ctx *c)
{
	struct db_audit au;
	struct db_account acc;
	struct db_service sv;
	char t[8][PT_NUM_LEN];
	int rc = c->db->ops->ledger_audit(c->db, &au), ok;

	if (rc != 0)
		return rc;
	ok = au.postings_sum == 0 && au.unbalanced_transfers == 0 && au.short_transfers == 0 &&
	     au.balance_mismatches == 0 && au.negative_purses == 0;
	pt_udec(au.transfers, t[0]);
	pt_udec(au.postings, t[1]);
	pt_dec("", au.postings_sum, t[2]);
	pt_udec(au.unbalanced_transfers + au.short_transfers + au.balance_mismatches +
		au.negative_purses, t[3]);
	pt_dec("", c->db->ops->account_get(c->db, LEDGER_FLOAT, &acc) == 0 ? acc.balance : 0, t[4]);
	{
		const struct pt_val v[] = { PV("tr", t[0]), PV("po", t[1]), PV("sum", t[2]),
					    PV("bad", t[3]), PV("float", t[4]),
					    PV("audit", ok ? "Balanced" : "NOT BALANCED"),
					    PV("cls", ok ? "st st-ok" : "st st-bad") };

		rc = pt_page_open(c, "Ledgers");
		if (rc == 0)
			rc = pt_emit(c->rs->body, "<div class=\"card\">Audit: <span class=\"{{cls}}\" "
				     "id=\"audit\">{{audit}}</span><div class=\"mut\">{{tr}} transfers, "
				     "{{po}} postings, sum {{sum}}, {{bad}} faults</div></div>\n"
				     "<div class=\"tw\"><table id=\"ledgers\"><tr><th>Account</th>"
				     "<th class=\"n\">Balance</th></tr>\n<tr><td>Float (issued e-money, "
				     "negative)</td><td class=\"n\">{{float}}</td></tr>\n", v, 7);
	}
	for (uint32_t id = 1; rc == 0 && id <= OP_SVC_SCAN; id++) {
		char name[DB_NAME_MAX], bal[PT_NUM_LEN];

		rc = c->db->ops->service_get(c->db, id, &sv);
		if (rc == TB_E_DB_NOT_FOUND) {
			rc = 0;
			continue;
		}
		if (rc != 0 || (rc = ledger_name_revenue(id, name)) != 0)
			break;
		rc = c->db->ops->account_get(c->db, name, &acc);
		if (rc == TB_E_DB_NOT_FOUND)
			acc.balance = 0, rc = 0;
		pt_dec("", acc.balance, bal);
		{
			const struct pt_val v[] = { PV("svc", sv.name), PV("kind", pt_svc_kind_name(sv.kind)),
						    PV("acct", name), PV("bal", bal) };

			if (rc == 0)
				rc = pt_emit(c->rs->body, "<tr><td>{{svc}} revenue<div class=\"mut\">"
					     "{{kind}} &middot; {{acct}}</div></td><td class=\"n\">{{bal}}"
					     "</td></tr>\n", v, 4);
		}
	}
	if (rc == 0)
		rc = pt_emit(c->rs->body, "</table></div>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

int pt_op_ses(struct pt_ctx *c)
{
	static struct db_se se[OP_ROWS];
	static uint8_t deny[OP_ROWS][DB_SERIAL_LEN];
	char ver[PT_NUM_LEN];
	uint64_t version = 0;
	size_t n = 0, nd = 0;
	int rc = c->db->ops->se_list(c->db, NULL, se, OP_ROWS, &n);

	if (rc == 0)
		rc = c->db->ops->deny_list(c->db, NULL, deny, OP_ROWS, &nd, &version);
	if (rc == 0)
		rc = pt_page_open(c, "Secure elements");
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<div class=\"tw\"><table id=\"ses\"><tr><th>SE</th>"
			     "<th>State</th><th></th></tr>\n", NULL, 0);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char serial[2 * DB_SERIAL_LEN + 1], changed[PT_TIME_LEN];
		const int locked = se[i].state == DB_SE_LOCKED;
		const struct pt_val v[] = { PV("serial", serial), PV("state", pt_se_state(&se[i])),
					    PV("changed", changed), PV("csrf", c->csrf),
					    PV("act", locked ? "/op/unlock" : "/op/lock"),
					    PV("label", locked ? "Unlock" : "Lock") };

		pt_serial(se[i].serial, serial);
		pt_time(se[i].changed, changed);
		rc = pt_emit(c->rs->body, "<tr><td>{{serial}}</td><td>{{state}}<div class=\"mut\">"
			     "since {{changed}}</div></td><td>", v, 6);
		if (rc == 0 && se[i].state != DB_SE_LOST)
			rc = pt_emit(c->rs->body, "<form method=\"post\" action=\"{{act}}\">"
				     "<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
				     "<input type=\"hidden\" name=\"serial\" value=\"{{serial}}\">"
				     "<button type=\"submit\">{{label}}</button></form>", v, 6);
		if (rc == 0)
			rc = pt_emit(c->rs->body, "</td></tr>\n", NULL, 0);
	}
	pt_udec(version, ver);
	{
		const struct pt_val v[] = { PV("ver", ver) };

		if (rc == 0)
			rc = pt_emit(c->rs->body, "</table></div>\n<h2>Deny list</h2><p class=\"mut\">"
				     "Version {{ver}}: the locked and lost ses readers refuse.</p>"
				     "<ul id=\"deny\">\n", v, 1);
	}
	for (size_t i = 0; rc == 0 && i < nd; i++) {
		char serial[2 * DB_SERIAL_LEN + 1];
		const struct pt_val v[] = { PV("serial", serial) };

		pt_serial(deny[i], serial);
		rc = pt_emit(c->rs->body, "<li>{{serial}}</li>\n", v, 1);
	}
	if (rc == 0)
		rc = pt_emit(c->rs->body, nd == 0 ? "<li>(empty)</li></ul>\n" : "</ul>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

int pt_op_readers(struct pt_ctx *c)
{
	static struct db_reader r[OP_ROWS];
	size_t n = 0;
	int rc = c->db->ops->reader_list(c->db, 0, r, OP_ROWS, &n);

	if (rc == 0)
		rc = pt_page_open(c, "Readers");
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<div class=\"tw\"><table id=\"readers\"><tr><th>Reader</th>"
			     "<th>Last contact</th><th>Outbox backlog</th></tr>\n", NULL, 0);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char id[PT_NUM_LEN], cls[PT_NUM_LEN], kv[PT_NUM_LEN], kvhex[3], last[PT_TIME_LEN];
		uint8_t kvb;
		const struct pt_val v[] = { PV("id", id), PV("cls", cls), PV("last", last),
					    PV("state", r[i].state == DB_READER_ACTIVE ? "active" : "revoked"),
					    PV("kv", kv) };

		pt_udec(r[i].id, id);
		pt_dec("class ", r[i].reader_class, cls);
		kvb = (uint8_t)r[i].key_version;
		(void)hex_encode(&kvb, 1, HEX_PUBLIC, kvhex, sizeof(kvhex));
		pt_join(kv, sizeof(kv), "key version ", kvhex, NULL);
		pt_time(r[i].last_contact, last);
		rc = pt_emit(c->rs->body, "<tr><td>{{id}}<div class=\"mut\">{{state}}, {{cls}}, {{kv}}</div>"
			     "</td><td>{{last}}</td><td class=\"mut\">not reported</td></tr>\n", v, 5);
	}
	if (rc == 0)
		rc = pt_emit(c->rs->body, "</table></div>\n<p class=\"mut\">Readers do not report their "
			     "outbox backlog to the server yet: records they hold appear when they "
			     "upload them.</p>\n", NULL, 0);
	return rc == 0 ? pt_page_close(c) : rc;
}

static int op_set(struct pt_ctx *c, int lock)
{
	uint8_t se[DB_SERIAL_LEN];
	size_t n = 0;
	int rc;

	if (c->f_serial == NULL || strlen(c->f_serial) != 2 * DB_SERIAL_LEN ||
	    hex_decode(c->f_serial, 2 * DB_SERIAL_LEN, se, sizeof(se), &n) != 0 || n != sizeof(se))
		return pt_message(c, 400, "Bad request", "No such secure element.");
	rc = pt_set_lock(c->db, se, lock, c->rq->now);
	if (rc == TB_E_SRV_UNKNOWN_SE)
		return pt_message(c, 404, "Not found", "No such secure element.");
	if (rc == TB_E_SRV_LOST)
		return pt_message(c, 409, "Not changed", "That secure element was reported lost.");
	if (rc != 0)
		return rc;
	pt_redirect(c, "/op/ses");
	return 0;
}

int pt_op_lock(struct pt_ctx *c) { return op_set(c, 1); }
int pt_op_unlock(struct pt_ctx *c) { return op_set(c, 0); }
