/* rules.c - the service rules besides money: se life (active, locked, lost and
 * replaced), reader contact, tickets, orders, personal auth, the vault. Each rule
 * refuses with a TB_E_SRV_* before it writes; the history records what was done. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "ledger.h"
#include "rules.h"

int srv_se_check(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_se *out)
{
	struct db_se se;
	int rc = db->ops->se_get(db, serial, &se);

	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_UNKNOWN_SE;
	if (rc != 0)
		return rc;
	if (out != NULL)
		*out = se;
	if (se.state == DB_SE_LOCKED)
		return TB_E_SRV_LOCKED;
	if (se.state == DB_SE_LOST)
		return TB_E_SRV_LOST;
	return 0;
}

int srv_reader_check(struct db *db, uint32_t id, struct db_reader *out)
{
	struct db_reader r;
	int rc;

	if (id == 0)
		return TB_E_SRV_UNKNOWN_READER;
	rc = db->ops->reader_get(db, id, &r);
	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_UNKNOWN_READER;
	if (rc != 0)
		return rc;
	if (r.state != DB_READER_ACTIVE)
		return TB_E_SRV_READER_REVOKED;
	if (out != NULL)
		*out = r;
	return 0;
}

int srv_service_check(struct db *db, uint32_t id, unsigned kinds, struct db_service *out)
{
	struct db_service sv;
	int rc;

	if (id == 0)
		return TB_E_SRV_UNKNOWN_SERVICE;
	rc = db->ops->service_get(db, id, &sv);
	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_UNKNOWN_SERVICE;
	if (rc != 0)
		return rc;
	if (sv.kind >= 32 || !(kinds & SRV_KIND(sv.kind)))
		return TB_E_SRV_KIND;
	if (out != NULL)
		*out = sv;
	return 0;
}

static int event(struct db *db, uint8_t kind, const uint8_t se[DB_SERIAL_LEN], uint32_t reader,
		 uint32_t service, int64_t amount, uint64_t ref, int64_t now)
{
	struct db_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.time = now;
	ev.kind = kind;
	ev.has_se = 1;
	memcpy(ev.se, se, DB_SERIAL_LEN);
	ev.reader = reader;
	ev.service = service;
	ev.amount = amount;
	ev.ref = ref;
	return db->ops->history_add(db, &ev, NULL);
}

/* ------------------------------------------------------------ se life --- */

int srv_se_register(struct db *db, const uint8_t serial[DB_SERIAL_LEN], int64_t now)
{
	char name[DB_NAME_MAX];
	struct db_se se;
	uint64_t id;
	int rc;

	memset(&se, 0, sizeof(se));
	memcpy(se.serial, serial, DB_SERIAL_LEN);
	se.state = DB_SE_ACTIVE;
	se.created = now;
	se.changed = now;
	rc = db->ops->se_add(db, &se);
	if (rc == 0)
		rc = ledger_name_purse(serial, name);
	if (rc == 0)
		rc = db->ops->account_open(db, DB_ACCT_PURSE, name, &id);
	return rc;
}

static int se_lock_state(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t reader,
			 int64_t now, uint8_t from, uint8_t to, uint8_t ev_kind)
{
	struct db_se se;
	int rc = srv_se_check(db, serial, &se);

	if (rc != 0 && rc != TB_E_SRV_LOCKED)
		return rc;
	if (reader != 0) {
		rc = srv_reader_check(db, reader, NULL);
		if (rc != 0)
			return rc;
	}
	if (se.state != from)
		return 0; /* already there */
	rc = db->ops->se_set_state(db, serial, to, NULL, now);
	if (rc == 0)
		rc = event(db, ev_kind, serial, reader, 0, 0, 0, now);
	return rc;
}

int srv_se_lock(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t reader, int64_t now)
{
	return se_lock_state(db, serial, reader, now, DB_SE_ACTIVE, DB_SE_LOCKED, DB_EV_LOCK);
}

int srv_se_unlock(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t reader, int64_t now)
{
	return se_lock_state(db, serial, reader, now, DB_SE_LOCKED, DB_SE_ACTIVE, DB_EV_UNLOCK);
}

int srv_se_lost(struct db *db, const uint8_t old[DB_SERIAL_LEN], const uint8_t repl[DB_SERIAL_LEN],
		int64_t now, struct ledger_reply *moved)
{
	struct db_se se;
	int rc;

	if (ct_eq(old, repl, DB_SERIAL_LEN))
		return TB_E_INVAL;
	rc = srv_se_check(db, old, &se);
	if (rc == TB_E_SRV_LOST) {
		if (!se.has_replaced_by || !ct_eq(se.replaced_by, repl, DB_SERIAL_LEN))
			return TB_E_SRV_STATE;
		return ledger_move(db, old, repl, now, moved); /* the replay */
	}
	if (rc != 0 && rc != TB_E_SRV_LOCKED)
		return rc;
	rc = srv_se_check(db, repl, NULL);
	if (rc == 0)
		rc = db->ops->se_set_state(db, old, DB_SE_LOST, repl, now);
	if (rc == 0)
		rc = event(db, DB_EV_LOST, old, 0, 0, 0, 0, now);
	if (rc == 0)
		rc = event(db, DB_EV_REPLACE, repl, 0, 0, 0, 0, now);
	if (rc == 0)
		rc = ledger_move(db, old, repl, now, moved);
	return rc;
}

int srv_reader_contact(struct db *db, uint32_t id, uint32_t key_version, int64_t now,
		       uint64_t *deny_version)
{
	struct db_reader r;
	size_t n;
	int rc = srv_reader_check(db, id, &r);

	if (rc != 0)
		return rc;
	if (key_version < r.key_version)
		return TB_E_SRV_KEY_VERSION;
	r.key_version = key_version;
	r.last_contact = now;
	rc = db->ops->reader_update(db, &r);
	if (rc == 0)
		rc = db->ops->deny_list(db, NULL, NULL, 0, &n, deny_version);
	return rc;
}

/* ------------------------------------------------------------ tickets --- */

int srv_ticket_issue(struct db *db, const struct srv_ticket_req *rq, struct db_applied *out)
{
	struct db_ticket t;
	int rc;

	if (strnlen(rq->key, DB_KEY_MAX) == 0 || strnlen(rq->key, DB_KEY_MAX) == DB_KEY_MAX ||
	    rq->valid_until <= rq->valid_from || rq->uses == 0)
		return TB_E_INVAL;
	rc = srv_se_check(db, rq->se, NULL);
	if (rc == 0)
		rc = srv_service_check(db, rq->service, SRV_KIND(DB_SVC_TICKET), NULL);
	if (rc != 0)
		return rc;
	memset(&t, 0, sizeof(t));
	memcpy(t.se, rq->se, DB_SERIAL_LEN);
	t.service = rq->service;
	t.valid_from = rq->valid_from;
	t.valid_until = rq->valid_until;
	t.uses_left = rq->uses;
	t.state = DB_TICKET_VALID;
	rc = db->ops->ticket_issue(db, rq->key, &t, out);
	if (rc == 0 && !out->replayed)
		rc = event(db, DB_EV_TICKET_ISSUE, rq->se, 0, rq->service, rq->uses, out->id, rq->now);
	return rc;
}

static int ticket_usable(const struct db_ticket *t, int64_t now)
{
	if (t->state != DB_TICKET_VALID)
		return TB_E_SRV_USED;
	if (now < t->valid_from || now >= t->valid_until)
		return TB_E_SRV_EXPIRED;
	if (t->uses_left == 0)
		return TB_E_SRV_USED;
	return 0;
}

int srv_ticket_use(struct db *db, const char *key, uint32_t reader, uint64_t ticket,
		   int64_t now, uint32_t *uses_left, int *replayed)
{
	struct db_event ev;
	struct db_ticket t;
	int rc;

	if (key == NULL || strnlen(key, DB_KEY_MAX) == 0 || strnlen(key, DB_KEY_MAX) == DB_KEY_MAX)
		return TB_E_INVAL;
	rc = db->ops->history_find(db, key, &ev);
	if (rc == 0) { /* seen: the same use again, or another record under its key */
		if (ev.kind != DB_EV_TICKET_USE || ev.ref != ticket || ev.reader != reader)
			return TB_E_DB_CONFLICT;
		rc = db->ops->ticket_get(db, ticket, &t);
		if (rc == 0) {
			*uses_left = t.uses_left;
			*replayed = 1;
		}
		return rc;
	}
	if (rc != TB_E_DB_NOT_FOUND)
		return rc;
	rc = srv_reader_check(db, reader, NULL);
	if (rc == 0) {
		rc = db->ops->ticket_get(db, ticket, &t);
		if (rc == TB_E_DB_NOT_FOUND)
			rc = TB_E_SRV_UNKNOWN_TICKET;
	}
	if (rc == 0)
		rc = srv_se_check(db, t.se, NULL);
	if (rc == 0)
		rc = ticket_usable(&t, now);
	if (rc != 0)
		return rc;
	t.uses_left--;
	rc = db->ops->ticket_update(db, ticket, t.uses_left,
				    t.uses_left == 0 ? DB_TICKET_SPENT : DB_TICKET_VALID);
	if (rc != 0)
		return rc;
	memset(&ev, 0, sizeof(ev));
	ev.time = now;
	ev.kind = DB_EV_TICKET_USE;
	ev.has_se = 1;
	memcpy(ev.se, t.se, DB_SERIAL_LEN);
	ev.reader = reader;
	ev.service = t.service;
	ev.amount = 1;
	ev.ref = ticket;
	memcpy(ev.key, key, strlen(key) + 1);
	rc = db->ops->history_add(db, &ev, NULL);
	if (rc == 0) {
		*uses_left = t.uses_left;
		*replayed = 0;
	}
	return rc;
}

/* ------------------------------------------------------------- orders --- */

static int price_of(const struct db_service *sv, uint32_t item, uint32_t *price)
{
	for (size_t i = 0; i < sv->n_prices; i++)
		if (sv->prices[i].item == item) {
			*price = sv->prices[i].price;
			return 0;
		}
	return TB_E_SRV_ITEM;
}

int srv_order_create(struct db *db, const char *key, const uint8_t se[DB_SERIAL_LEN],
		     uint32_t service, const struct db_order_item *items, size_t n, int64_t now,
		     struct db_applied *out, uint64_t *total)
{
	struct db_service sv;
	struct db_order o;
	uint64_t sum = 0;
	int rc;

	if (key == NULL || strnlen(key, DB_KEY_MAX) == 0 || strnlen(key, DB_KEY_MAX) == DB_KEY_MAX ||
	    n == 0 || n > DB_ITEMS_MAX || items == NULL)
		return TB_E_INVAL;
	rc = srv_se_check(db, se, NULL);
	if (rc == 0)
		rc = srv_service_check(db, service, SRV_KIND(DB_SVC_ECOMMERCE), &sv);
	if (rc != 0)
		return rc;
	memset(&o, 0, sizeof(o));
	for (size_t i = 0; i < n; i++) {
		o.items[i] = items[i];
		rc = price_of(&sv, items[i].item, &o.items[i].price);
		if (rc != 0)
			return rc;
		if (items[i].qty == 0 || items[i].qty > LEDGER_AMOUNT_MAX)
			return TB_E_SRV_AMOUNT;
		sum += (uint64_t)o.items[i].price * items[i].qty; /* < 2^52 per line */
		if (sum > LEDGER_AMOUNT_MAX)
			return TB_E_SRV_AMOUNT;
	}
	memcpy(o.se, se, DB_SERIAL_LEN);
	o.service = service;
	o.total = sum;
	o.state = DB_ORDER_OPEN;
	o.created = now;
	o.n_items = n;
	rc = db->ops->order_create(db, key, &o, out);
	if (rc == 0 && !out->replayed)
		rc = event(db, DB_EV_ORDER, se, 0, service, (int64_t)sum, out->id, now);
	if (rc == 0)
		*total = sum;
	return rc;
}

int srv_order_pay(struct db *db, uint64_t order, const struct ledger_req *rq,
		  struct ledger_reply *out)
{
	struct db_transfer t;
	struct db_applied ap;
	struct db_order o;
	int rc = db->ops->order_get(db, order, &o);

	if (rc == TB_E_DB_NOT_FOUND)
		return TB_E_SRV_UNKNOWN_ORDER;
	if (rc != 0)
		return rc;
	if (!ct_eq(o.se, rq->se, DB_SERIAL_LEN) || o.service != rq->service)
		return TB_E_SRV_STATE;
	if (o.total != rq->amount)
		return TB_E_SRV_AMOUNT;
	if (o.state == DB_ORDER_PAID) { /* paid: only the payment that paid it replays */
		rc = db->ops->transfer_get(db, rq->key, &t, &ap);
		if (rc == TB_E_DB_NOT_FOUND)
			return TB_E_SRV_STATE;
		if (rc != 0)
			return rc;
		if (t.kind != DB_XFER_PAY || !ct_eq(t.se, rq->se, DB_SERIAL_LEN) ||
		    t.amount != rq->amount || t.service != rq->service)
			return TB_E_DB_CONFLICT;
		out->transfer_id = ap.id;
		out->replayed = 1;
		out->balance = ap.result;
		return 0;
	}
	if (o.state != DB_ORDER_OPEN)
		return TB_E_SRV_STATE;
	rc = ledger_pay(db, rq, out);
	if (rc == 0)
		rc = db->ops->order_set_state(db, order, DB_ORDER_OPEN, DB_ORDER_PAID);
	return rc;
}

/* ------------------------------------------------------ personal auth --- */

int srv_pauth_view(struct db *db, const uint8_t se[DB_SERIAL_LEN], uint32_t reader, int64_t now,
		   struct db_pauth *out)
{
	char names[DB_ATTRS_MAX][DB_ATTR_NAME_MAX];
	struct db_reader r;
	size_t n = 0, kept = 0;
	int rc = srv_reader_check(db, reader, &r);

	if (rc == 0)
		rc = srv_se_check(db, se, NULL);
	if (rc == 0)
		rc = db->ops->pauth_visible_get(db, r.reader_class, names, DB_ATTRS_MAX, &n);
	if (rc == 0)
		rc = db->ops->pauth_get(db, se, out);
	if (rc != 0)
		return rc;
	/* Keep only what this reader class may see; the rest is wiped, not just hidden. */
	for (size_t i = 0; i < out->n_attrs; i++) {
		int visible = 0;

		for (size_t j = 0; j < n && !visible; j++)
			visible = strcmp(out->attrs[i].name, names[j]) == 0;
		if (visible)
			out->attrs[kept++] = out->attrs[i];
	}
	for (size_t i = kept; i < out->n_attrs; i++)
		ct_wipe(&out->attrs[i], sizeof(out->attrs[i]));
	out->n_attrs = kept;
	return event(db, DB_EV_PAUTH, se, reader, 0, 0, 0, now);
}

/* -------------------------------------------------------------- vault --- */

int srv_vault_put(struct db *db, const uint8_t se[DB_SERIAL_LEN], uint32_t slot, uint64_t version,
		  const uint8_t *data, size_t n, int64_t now)
{
	int rc = srv_se_check(db, se, NULL);

	if (rc != 0)
		return rc;
	return db->ops->blob_put(db, se, slot, version, data, n, now);
}

int srv_vault_get(struct db *db, const uint8_t requester[DB_SERIAL_LEN],
		  const uint8_t owner[DB_SERIAL_LEN], uint32_t slot, uint64_t *version,
		  uint8_t *buf, size_t cap, size_t *n)
{
	struct db_se own;
	int rc = srv_se_check(db, requester, NULL);

	if (rc != 0)
		return rc;
	if (!ct_eq(requester, owner, DB_SERIAL_LEN)) {
		rc = db->ops->se_get(db, owner, &own);
		if (rc == TB_E_DB_NOT_FOUND)
			return TB_E_SRV_NOT_OWNER;
		if (rc != 0)
			return rc;
		if (own.state != DB_SE_LOST || !own.has_replaced_by ||
		    !ct_eq(own.replaced_by, requester, DB_SERIAL_LEN))
			return TB_E_SRV_NOT_OWNER;
	}
	return db->ops->blob_get(db, owner, slot, version, buf, cap, n);
}
