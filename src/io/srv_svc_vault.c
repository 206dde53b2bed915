/* srv_svc_vault.c - the vault's db work for the service adapter: backup stored, restore's
 * three steps (find the lost se, re-issue its tickets, record the run done), a personal-auth
 * key stored, and the engine's two vault look-ups. What stays true: each step runs inside its
 * own request of the loop turn's batch; a rerun of a restore re-issues nothing twice. */
#include <stdio.h>
#include <string.h>

#include "io/srv_svc_int.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "server/db.h"
#include "server/ledger.h"
#include "server/rules.h"

/* The se has a personal-auth record and no key in the vault (slot 2) yet. */
int svc_io_pauth_need(struct svc *v)
{
	static struct db_pauth p; /* one loop thread */
	struct db *db = svc_of(v)->h->db;
	uint8_t sealed[SVC_SEALED_MAX];
	uint64_t version = 0;
	size_t n = 0;
	int rc = db->ops->pauth_get(db, v->serial, &p);

	ct_wipe(&p, sizeof(p));
	if (rc != 0)
		return 0;
	rc = db->ops->blob_get(db, v->serial, SVC_SLOT_PAUTH, &version, sealed, sizeof(sealed), &n);
	return rc == TB_E_DB_NOT_FOUND;
}

int svc_io_blob(struct svc *v, const uint8_t serial[SVC_SERIAL_LEN], uint32_t slot,
		uint8_t *buf, size_t cap, size_t *n)
{
	uint64_t version = 0;

	return srv_vault_get(svc_of(v)->h->db, serial, serial, slot, &version, buf, cap, n);
}

/* ------------------------------------------- the vault: backup, restore, keys --- */

/* "<what>:<serial hex>" into key (DB_KEY_MAX). */
static int svc_key(char key[DB_KEY_MAX], const char *what, const uint8_t serial[8])
{
	char hex[17];

	if (hex_encode(serial, 8, HEX_PUBLIC, hex, sizeof(hex)) != 0)
		return TB_E_INTERNAL;
	return (size_t)snprintf(key, DB_KEY_MAX, "%s:%s", what, hex) < DB_KEY_MAX ? 0 : TB_E_NOSPACE;
}

/* The lost se v replaces: the deny list's lost ses, paged, whose replaced_by is v. */
static int svc_find_lost(struct db *db, struct svc *v)
{
	uint8_t page[32][DB_SERIAL_LEN], after[DB_SERIAL_LEN];
	uint64_t version = 0;
	size_t n = 0;
	int first = 1, rc;

	do {
		rc = db->ops->deny_list(db, first ? NULL : after, page, 32, &n, &version);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			struct db_se se;

			if ((rc = db->ops->se_get(db, page[i], &se)) != 0)
				break;
			if (se.state == DB_SE_LOST && se.has_replaced_by &&
			    ct_eq(se.replaced_by, v->serial, DB_SERIAL_LEN)) {
				memcpy(v->old, se.serial, sizeof(v->old));
				return 0;
			}
		}
		if (rc == 0 && n > 0)
			memcpy(after, page[n - 1], sizeof(after));
		first = 0;
	} while (rc == 0 && n == 32);
	return rc != 0 ? rc : TB_E_VAULT_NO_LOST;
}

/* Restore, first: the lost se, whether a run was done or begun, the moved balance, the
 * lost se's sealed backup (srv_vault_get lets the replacement read it). Reads only. */
static int svc_restore_find(struct db *db, struct svc *v)
{
	char key[DB_KEY_MAX];
	struct db_event ev;
	struct db_transfer t;
	struct db_applied ap;
	uint64_t version = 0;
	int rc = svc_find_lost(db, v);

	if (rc == 0 && (rc = svc_key(key, "RESTORED", v->serial)) == 0 &&
	    (rc = db->ops->history_find(db, key, &ev)) == 0) {
		v->done_before = 1;
		return 0;
	}
	if (rc == TB_E_DB_NOT_FOUND && (rc = svc_key(key, "RESTORE", v->serial)) == 0) {
		rc = db->ops->history_find(db, key, &ev);
		v->pending = rc == 0;
		v->c0 = rc == 0 ? (uint32_t)ev.ref : 0;
		rc = rc == TB_E_DB_NOT_FOUND ? 0 : rc;
	}
	if (rc == 0 && (rc = ledger_key_move(v->old, key)) == 0) {
		rc = db->ops->transfer_get(db, key, &t, &ap);
		v->moved = rc == 0 ? t.amount : 0;
		rc = rc == TB_E_DB_NOT_FOUND ? 0 : rc;
	}
	if (rc == 0)
		rc = srv_vault_get(db, v->serial, v->old, SVC_SLOT_BACKUP, &version, v->blob,
				   sizeof(v->blob), &v->blob_n);
	if (rc == TB_E_DB_NOT_FOUND)
		rc = TB_E_VAULT_NO_BACKUP;
	if (rc == TB_E_NOSPACE)
		rc = TB_E_VAULT_BLOB;
	return rc;
}

/* Restore, before the se is touched: each backed-up ticket still valid in the db for the
 * lost se is re-issued to this one (key RI:<old id>, so a second run gets the same id),
 * and the run is marked begun with the se's purse counter (history RESTORE:<serial>). */
static int svc_restore_tickets(struct db *db, struct svc *v, int64_t now)
{
	struct db_event ev;
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < v->bk.n; k++) {
		struct svc_ticket *bt = &v->bk.t[k];
		struct srv_ticket_req rq;
		struct db_applied ap;
		struct db_ticket t;
		int r2;

		v->new_id[k] = 0;
		if (bt->uses == 0 || db->ops->ticket_get(db, bt->id, &t) != 0 ||
		    !ct_eq(t.se, v->old, DB_SERIAL_LEN) || t.state != DB_TICKET_VALID ||
		    now >= t.valid_until || t.uses_left == 0)
			continue;
		memset(&rq, 0, sizeof(rq));
		(void)snprintf(rq.key, sizeof(rq.key), "RI:%016llX", (unsigned long long)bt->id);
		memcpy(rq.se, v->serial, sizeof(rq.se));
		rq.service = t.service;
		rq.valid_from = t.valid_from;
		rq.valid_until = t.valid_until;
		rq.uses = t.uses_left < bt->uses ? t.uses_left : bt->uses;
		rq.now = now;
		r2 = srv_ticket_issue(db, &rq, &ap);
		if (r2 == TB_E_DB || r2 == TB_E_DB_CONSTRAINT)
			rc = r2;
		if (r2 != 0)
			continue; /* a rule's refusal: that ticket stays behind */
		v->new_id[k] = ap.id;
		bt->service = t.service;
		bt->not_before = (uint32_t)t.valid_from;
		bt->not_after = (uint32_t)(t.valid_until - 1);
		bt->uses = (uint8_t)rq.uses;
	}
	if (rc != 0 || v->pending)
		return rc;
	memset(&ev, 0, sizeof(ev));
	if ((rc = svc_key(ev.key, "RESTORE", v->serial)) != 0)
		return rc;
	ev.time = now;
	ev.kind = DB_EV_VAULT;
	ev.has_se = 1;
	memcpy(ev.se, v->serial, sizeof(ev.se));
	ev.amount = v->moved;
	ev.ref = v->c0;
	return db->ops->history_add(db, &ev, NULL);
}

/* Restore, after the se holds the money and the tickets: the lost se's re-issued tickets
 * revoked, the run recorded done (history RESTORED:<serial>, ref = the credit receipt's
 * counter, whose key S:<serial>:<counter> so names the receipt; a next run does nothing). */
static int svc_restore_done(struct db *db, struct svc *v, int64_t now)
{
	struct db_event ev;
	int rc = 0;

	for (size_t k = 0; rc == 0 && k < v->bk.n; k++) {
		struct db_ticket t;

		if (v->new_id[k] == 0 || db->ops->ticket_get(db, v->bk.t[k].id, &t) != 0 ||
		    t.state != DB_TICKET_VALID)
			continue;
		rc = db->ops->ticket_update(db, v->bk.t[k].id, t.uses_left, DB_TICKET_REVOKED);
	}
	if (rc != 0)
		return rc;
	memset(&ev, 0, sizeof(ev));
	if ((rc = svc_key(ev.key, "RESTORED", v->serial)) != 0)
		return rc;
	ev.time = now;
	ev.kind = DB_EV_MOVE;
	ev.has_se = 1;
	memcpy(ev.se, v->serial, sizeof(ev.se));
	ev.amount = v->moved > 0 && !v->skip_credit ? v->moved : 0;
	ev.ref = v->counter;
	return db->ops->history_add(db, &ev, NULL);
}

/* The personal-auth key the se now holds: sealed into vault slot 2, its id as the
 * personal-auth record's identifier. */
static int svc_pauth_store(struct db *db, struct svc *v, int64_t now)
{
	static struct db_pauth p; /* one loop thread */
	int rc = srv_vault_put(db, v->serial, SVC_SLOT_PAUTH, (uint64_t)now, v->blob, v->blob_n,
			       now);

	if (rc == 0)
		rc = db->ops->pauth_get(db, v->serial, &p);
	if (rc == 0)
		rc = hex_encode(v->pauth_id, sizeof(v->pauth_id), HEX_PUBLIC, p.identifier,
				sizeof(p.identifier));
	if (rc == 0)
		rc = db->ops->pauth_put(db, &p);
	ct_wipe(&p, sizeof(p));
	return rc;
}

/* The db work of the engine's v->phase, inside its own request of the batch. */
int svc_phase_job(struct srv_svc_host *d, struct svc *v, int64_t now)
{
	int rc, r2;

	if ((rc = db_req_begin(d->db)) != 0)
		return rc;
	switch (v->phase) {
	case SVC_PH_BACKUP:
		r2 = srv_vault_put(d->db, v->serial, SVC_SLOT_BACKUP, v->version, v->blob, v->blob_n,
				   now);
		break;
	case SVC_PH_R_FIND:
		r2 = svc_restore_find(d->db, v);
		break;
	case SVC_PH_R_TICKETS:
		r2 = svc_restore_tickets(d->db, v, now);
		break;
	case SVC_PH_R_DONE:
		r2 = svc_restore_done(d->db, v, now);
		break;
	case SVC_PH_PAUTH:
		r2 = svc_pauth_store(d->db, v, now);
		if (r2 != 0 && d->log != NULL)
			fprintf(d->log, "srv event=pauth_key_unrecorded err=%d\n", r2);
		break;
	default:
		r2 = TB_E_INTERNAL;
		break;
	}
	rc = db_req_end(d->db, r2 == 0);
	return r2 != 0 ? r2 : rc;
}
