/* db_sql_records.c - the server's other records over db_sql: tickets, e-commerce orders,
 * personal-auth records and who may see them, usage history. Creations are idempotent
 * by key like transfers; every refusal is found before the first write. */
#include <string.h>

#include "lib/ct.h"
#include "lib/err.h"
#include "db_sql.h"

/* ------------------------------------------------------------ tickets --- */

/* Columns: id, se, service, valid_from, valid_until, uses_left, state. */
static int ticket_cols(struct db_sql *s, struct db_ticket *t)
{
	memset(t, 0, sizeof(*t));
	t->id = (uint64_t)col_int(s, 0);
	t->service = (uint32_t)col_int(s, 2);
	t->valid_from = col_int(s, 3);
	t->valid_until = col_int(s, 4);
	t->uses_left = (uint32_t)col_int(s, 5);
	t->state = (uint8_t)col_int(s, 6);
	return col_fixed(s, 1, t->se, DB_SERIAL_LEN);
}

static int ticket_read(struct db_sql *s, enum db_stmt st, const struct dv *p, struct db_ticket *t)
{
	int rc = sql_row(s, st, p, 1);

	if (rc != 0)
		return rc;
	rc = ticket_cols(s, t);
	sql_done(s);
	return rc;
}

int dbs_ticket_issue(struct db *db, const char *key, const struct db_ticket *t,
		     struct db_applied *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_T(key), DV_B(t->se, DB_SERIAL_LEN), DV_I(t->service),
				DV_I(t->valid_from), DV_I(t->valid_until), DV_I(t->uses_left),
				DV_I(t->state) };
	const struct dv k[] = { DV_T(key) };
	struct db_ticket old;
	int rc;

	if (!str_ok(key, DB_KEY_MAX, 1) || t->service == 0 || t->valid_until <= t->valid_from ||
	    t->state < DB_TICKET_VALID || t->state > DB_TICKET_REVOKED)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_se_known(s, t->se);
	if (rc != 0)
		return sql_leave(s, rc);
	rc = sql_row(s, ST_TICKET_ADD, p, 7);
	if (rc == 0) {
		memset(out, 0, sizeof(*out));
		out->id = (uint64_t)col_int(s, 0);
		sql_done(s);
	} else if (rc == TB_E_DB_NOT_FOUND) { /* the key exists: replay or conflict */
		rc = ticket_read(s, ST_TICKET_BY_KEY, k, &old);
		if (rc == 0 && (!ct_eq(old.se, t->se, DB_SERIAL_LEN) || old.service != t->service ||
				old.valid_from != t->valid_from || old.valid_until != t->valid_until))
			rc = TB_E_DB_CONFLICT;
		if (rc == 0) {
			memset(out, 0, sizeof(*out));
			out->id = old.id;
			out->replayed = 1;
		}
	}
	return sql_leave(s, rc);
}

int dbs_ticket_get(struct db *db, uint64_t id, struct db_ticket *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(id) };
	struct db_ticket t;
	int rc;

	if (id > INT64_MAX)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = ticket_read(s, ST_TICKET_GET, p, &t);
	if (rc == 0)
		*out = t;
	return sql_leave(s, rc);
}

int dbs_ticket_update(struct db *db, uint64_t id, uint32_t uses_left, uint8_t state)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(id), DV_I(uses_left), DV_I(state) };
	int rc;

	if (id > INT64_MAX || state < DB_TICKET_VALID || state > DB_TICKET_REVOKED)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_TICKET_UPD, p, 3);
	if (rc == 0)
		sql_done(s);
	return sql_leave(s, rc);
}

int dbs_tickets_of_se(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint64_t after,
		      struct db_ticket *out, size_t cap, size_t *n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(after), DV_I(cap) };
	size_t got = 0;
	int rc;

	if (after > INT64_MAX || cap > INT32_MAX || (cap > 0 && out == NULL))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_run(s, ST_TICKETS_SE, p, 3);
	while (rc == 0 && got < cap && (rc = sql_next(s)) == 1)
		rc = ticket_cols(s, &out[got++]);
	sql_done(s);
	if (rc == 0)
		*n = got;
	return sql_leave(s, rc);
}

/* ------------------------------------------------------------- orders --- */

static int order_read(struct db_sql *s, enum db_stmt st, const struct dv *p, struct db_order *o)
{
	int rc = sql_row(s, st, p, 1);

	if (rc != 0)
		return rc;
	memset(o, 0, sizeof(*o));
	o->id = (uint64_t)col_int(s, 0);
	rc = col_fixed(s, 1, o->se, DB_SERIAL_LEN);
	o->service = (uint32_t)col_int(s, 2);
	o->total = (uint64_t)col_int(s, 3);
	o->state = (uint8_t)col_int(s, 4);
	o->created = col_int(s, 5);
	sql_done(s);
	if (rc == 0) {
		const struct dv q[] = { DV_I(o->id) };

		rc = sql_run(s, ST_ITEMS_GET, q, 1);
	}
	while (rc == 0 && (rc = sql_next(s)) == 1) {
		if (o->n_items == DB_ITEMS_MAX) {
			sql_done(s);
			return TB_E_DB;
		}
		o->items[o->n_items].item = (uint32_t)col_int(s, 0);
		o->items[o->n_items].qty = (uint32_t)col_int(s, 1);
		o->items[o->n_items].price = (uint32_t)col_int(s, 2);
		o->n_items++;
		rc = 0;
	}
	if (rc == 0)
		sql_done(s);
	return rc;
}

static int same_order(const struct db_order *a, const struct db_order *b)
{
	if (!ct_eq(a->se, b->se, DB_SERIAL_LEN) || a->service != b->service ||
	    a->total != b->total || a->n_items != b->n_items)
		return 0;
	for (size_t i = 0; i < a->n_items; i++)
		if (a->items[i].item != b->items[i].item || a->items[i].qty != b->items[i].qty ||
		    a->items[i].price != b->items[i].price)
			return 0;
	return 1;
}

static int order_write(struct db_sql *s, const char *key, const struct db_order *o, uint64_t *id)
{
	const struct dv p[] = { DV_T(key), DV_B(o->se, DB_SERIAL_LEN), DV_I(o->service),
				DV_I(o->total), DV_I(o->state), DV_I(o->created) };
	int rc = sql_row(s, ST_ORDER_ADD, p, 6);

	if (rc != 0)
		return rc;
	*id = (uint64_t)col_int(s, 0);
	sql_done(s);
	for (size_t i = 0; rc == 0 && i < o->n_items; i++) {
		const struct dv q[] = { DV_I(*id), DV_I(i + 1), DV_I(o->items[i].item),
					DV_I(o->items[i].qty), DV_I(o->items[i].price) };

		rc = sql_exec(s, ST_ITEM_ADD, q, 5, NULL);
	}
	return rc;
}

int dbs_order_create(struct db *db, const char *key, const struct db_order *o,
		     struct db_applied *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv k[] = { DV_T(key) };
	struct db_order old;
	uint64_t id = 0;
	int rc;

	if (!str_ok(key, DB_KEY_MAX, 1) || o->service == 0 || o->n_items == 0 ||
	    o->n_items > DB_ITEMS_MAX || o->total > INT64_MAX || o->state < DB_ORDER_OPEN ||
	    o->state > DB_ORDER_REFUNDED)
		return TB_E_INVAL;
	for (size_t i = 0; i < o->n_items; i++)
		if (o->items[i].qty == 0)
			return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_se_known(s, o->se);
	if (rc != 0)
		return sql_leave(s, rc);
	rc = order_write(s, key, o, &id);
	if (rc == 0) {
		memset(out, 0, sizeof(*out));
		out->id = id;
		out->created = o->created;
	} else if (rc == TB_E_DB_NOT_FOUND && id == 0) { /* the key exists */
		rc = order_read(s, ST_ORDER_BY_KEY, k, &old);
		if (rc == 0 && !same_order(o, &old))
			rc = TB_E_DB_CONFLICT;
		if (rc == 0) {
			memset(out, 0, sizeof(*out));
			out->id = old.id;
			out->replayed = 1;
			out->created = old.created;
		}
	}
	return sql_leave(s, rc);
}

int dbs_order_get(struct db *db, uint64_t id, struct db_order *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(id) };
	struct db_order o;
	int rc;

	if (id > INT64_MAX)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = order_read(s, ST_ORDER_GET, p, &o);
	if (rc == 0)
		*out = o;
	return sql_leave(s, rc);
}

int dbs_order_set_state(struct db *db, uint64_t id, uint8_t from, uint8_t to)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(id), DV_I(from), DV_I(to) };
	const struct dv q[] = { DV_I(id) };
	int rc;

	if (id > INT64_MAX || to < DB_ORDER_OPEN || to > DB_ORDER_REFUNDED)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_ORDER_SET, p, 3);
	if (rc == 0) {
		sql_done(s);
	} else if (rc == TB_E_DB_NOT_FOUND) {
		rc = sql_row(s, ST_ORDER_GET, q, 1);
		if (rc == 0) {
			sql_done(s);
			rc = TB_E_DB_CONFLICT;
		}
	}
	return sql_leave(s, rc);
}

/* ------------------------------------------------------ personal auth --- */

/* Byte order of names, the same on both back ends (database collations differ). */
static void attrs_sort(struct db_attr *a, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(a[j - 1].name, a[j].name) > 0; j--) {
			struct db_attr t = a[j];

			a[j] = a[j - 1];
			a[j - 1] = t;
		}
}

static void names_sort(char (*a)[DB_ATTR_NAME_MAX], size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(a[j - 1], a[j]) > 0; j--) {
			char t[DB_ATTR_NAME_MAX];

			memcpy(t, a[j], sizeof(t));
			memcpy(a[j], a[j - 1], sizeof(t));
			memcpy(a[j - 1], t, sizeof(t));
		}
}

/* n names at first, first + stride, ...: each set, NUL-terminated, no two alike. */
static int names_ok(const char *first, size_t n, size_t stride)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = first + i * stride;

		if (!str_ok(name, DB_ATTR_NAME_MAX, 1))
			return 0;
		for (size_t j = 0; j < i; j++)
			if (strcmp(first + j * stride, name) == 0)
				return 0;
	}
	return 1;
}

int dbs_pauth_put(struct db *db, const struct db_pauth *pa)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(pa->se, DB_SERIAL_LEN), DV_T(pa->identifier) };
	int rc;

	if (!str_ok(pa->identifier, DB_NAME_MAX, 1) || pa->n_attrs > DB_ATTRS_MAX ||
	    !names_ok(pa->attrs[0].name, pa->n_attrs, sizeof(pa->attrs[0])))
		return TB_E_INVAL;
	for (size_t i = 0; i < pa->n_attrs; i++)
		if (pa->attrs[i].len > DB_ATTR_VALUE_MAX)
			return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_se_known(s, pa->se);
	if (rc == 0)
		rc = sql_exec(s, ST_PAUTH_PUT, p, 2, NULL);
	if (rc == 0)
		rc = sql_exec(s, ST_PATTR_DEL, p, 1, NULL);
	for (size_t i = 0; rc == 0 && i < pa->n_attrs; i++) {
		const struct dv q[] = { DV_B(pa->se, DB_SERIAL_LEN), DV_T(pa->attrs[i].name),
					DV_B(pa->attrs[i].value, pa->attrs[i].len) };

		rc = sql_exec(s, ST_PATTR_ADD, q, 3, NULL);
	}
	return sql_leave(s, rc);
}

int dbs_pauth_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_pauth *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN) };
	struct db_pauth pa;
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	memset(&pa, 0, sizeof(pa));
	memcpy(pa.se, serial, DB_SERIAL_LEN);
	rc = sql_row(s, ST_PAUTH_GET, p, 1);
	if (rc == 0) {
		rc = col_text(s, 0, pa.identifier, sizeof(pa.identifier));
		sql_done(s);
	}
	if (rc == 0)
		rc = sql_run(s, ST_PATTR_GET, p, 1);
	while (rc == 0 && (rc = sql_next(s)) == 1) {
		struct db_attr *a = &pa.attrs[pa.n_attrs];

		if (pa.n_attrs == DB_ATTRS_MAX) {
			rc = TB_E_NOSPACE;
			break;
		}
		rc = col_text(s, 0, a->name, DB_ATTR_NAME_MAX);
		if (rc == 0)
			rc = col_blob(s, 1, a->value, DB_ATTR_VALUE_MAX, &a->len);
		pa.n_attrs++;
	}
	sql_done(s);
	if (rc == 0) {
		attrs_sort(pa.attrs, pa.n_attrs);
		*out = pa;
	}
	ct_wipe(&pa, sizeof(pa)); /* personal data */
	return sql_leave(s, rc);
}

int dbs_pauth_visible_set(struct db *db, uint32_t reader_class,
			  const char (*names)[DB_ATTR_NAME_MAX], size_t n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(reader_class) };
	int rc;

	if (n > DB_ATTRS_MAX || (n > 0 && names == NULL) ||
	    (n > 0 && !names_ok(names[0], n, DB_ATTR_NAME_MAX)))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_exec(s, ST_VIS_DEL, p, 1, NULL);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		const struct dv q[] = { DV_I(reader_class), DV_T(names[i]) };

		rc = sql_exec(s, ST_VIS_ADD, q, 2, NULL);
	}
	return sql_leave(s, rc);
}

int dbs_pauth_visible_get(struct db *db, uint32_t reader_class,
			  char (*names)[DB_ATTR_NAME_MAX], size_t cap, size_t *n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(reader_class) };
	size_t got = 0;
	int rc;

	if (cap > 0 && names == NULL)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_run(s, ST_VIS_GET, p, 1);
	while (rc == 0 && (rc = sql_next(s)) == 1) {
		if (got == cap) {
			rc = TB_E_NOSPACE;
			break;
		}
		rc = col_text(s, 0, names[got++], DB_ATTR_NAME_MAX);
	}
	sql_done(s);
	if (rc == 0) {
		names_sort(names, got);
		*n = got;
	}
	return sql_leave(s, rc);
}

/* ------------------------------------------------------------ history --- */

/* Columns: id, time, kind, se, reader, service, amount, ref, key. */
static int event_cols(struct db_sql *s, struct db_event *ev)
{
	int rc = 0;

	memset(ev, 0, sizeof(*ev));
	ev->id = (uint64_t)col_int(s, 0);
	ev->time = col_int(s, 1);
	ev->kind = (uint8_t)col_int(s, 2);
	if (!col_null(s, 3)) {
		ev->has_se = 1;
		rc = col_fixed(s, 3, ev->se, DB_SERIAL_LEN);
	}
	ev->reader = (uint32_t)col_int(s, 4);
	ev->service = (uint32_t)col_int(s, 5);
	ev->amount = col_int(s, 6);
	ev->ref = (uint64_t)col_int(s, 7);
	if (rc == 0)
		rc = col_text(s, 8, ev->key, sizeof(ev->key));
	return rc;
}

int dbs_history_add(struct db *db, const struct db_event *ev, uint64_t *id)
{
	struct db_sql *s = db_sql_of(db);
	struct dv p[] = { DV_I(ev->time), DV_I(ev->kind), DV_NUL, DV_I(ev->reader),
			  DV_I(ev->service), DV_I(ev->amount), DV_I(ev->ref), DV_NUL };
	int rc;

	if (ev->kind < DB_EV_CREDIT || ev->kind > DB_EV_PAUTH_DELETE || !str_ok(ev->key, DB_KEY_MAX, 0) ||
	    ev->ref > INT64_MAX)
		return TB_E_INVAL;
	if (ev->has_se) {
		p[2].type = DV_BLOB;
		p[2].p = ev->se;
		p[2].n = DB_SERIAL_LEN;
	}
	if (ev->key[0] != '\0') {
		p[7].type = DV_TEXT;
		p[7].p = ev->key;
	}
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_HIST_ADD, p, 8);
	if (rc == 0) {
		if (id != NULL)
			*id = (uint64_t)col_int(s, 0);
		sql_done(s);
	} else if (rc == TB_E_DB_NOT_FOUND) {
		rc = TB_E_DB_EXISTS;
	}
	return sql_leave(s, rc);
}

int dbs_history_find(struct db *db, const char *key, struct db_event *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_T(key) };
	struct db_event ev;
	int rc;

	if (!str_ok(key, DB_KEY_MAX, 1))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_HIST_FIND, p, 1);
	if (rc == 0) {
		rc = event_cols(s, &ev);
		sql_done(s);
		if (rc == 0)
			*out = ev;
	}
	return sql_leave(s, rc);
}

static int history_page(struct db *db, enum db_stmt st, struct dv who, uint64_t before,
			struct db_event *out, size_t cap, size_t *n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { who, DV_I(before == 0 ? INT64_MAX : (int64_t)before), DV_I(cap) };
	size_t got = 0;
	int rc;

	if (before > INT64_MAX || cap > INT32_MAX || (cap > 0 && out == NULL))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_run(s, st, p, 3);
	while (rc == 0 && got < cap && (rc = sql_next(s)) == 1)
		rc = event_cols(s, &out[got++]);
	sql_done(s);
	if (rc == 0)
		*n = got;
	return sql_leave(s, rc);
}

int dbs_history_by_se(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint64_t before,
		      struct db_event *out, size_t cap, size_t *n)
{
	const struct dv who = DV_B(serial, DB_SERIAL_LEN);

	return history_page(db, ST_HIST_SE, who, before, out, cap, n);
}

int dbs_history_by_reader(struct db *db, uint32_t reader, uint64_t before,
			  struct db_event *out, size_t cap, size_t *n)
{
	const struct dv who = DV_I(reader);

	return history_page(db, ST_HIST_READER, who, before, out, cap, n);
}
