/* srv_svc_text.c - what the phone hears of the engine (server/svc.h), and each outcome's log
 * line: NOTICEs, ERRORs that end the session, "<op>_<what>" events; a portal lock's pending
 * mark cleared once applied. What stays true: no key or APDU data in a text or log line. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "io/srv_net.h"
#include "io/srv_svc_int.h"
#include "lib/err.h"
#include "server/db.h"

static const char *const svc_op_log[] = { "", "topup", "ticket", "flag", "arm", "permit",
					  "backup", "restore", "lock", "unlock", "refund" };
static const char *const svc_op_text[] = { "", "top-up", "ticket", "flag", "relay", "permit",
					   "backup", "restore", "lock", "unlock", "refund" };

static void svc_notice(struct srv_session *s, const char *text)
{
	(void)srv_send(s, PROTO_NOTICE, (const uint8_t *)text, strlen(text));
}

/* Log event names per operation: "<op>_<what>". */
static void svc_log(const struct svc *v, struct srv_session *s, const char *what,
		    const char *detail)
{
	char ev[32];

	(void)snprintf(ev, sizeof(ev), "%s_%s", svc_op_log[v->op], what);
	srv_log(s, ev, "%s", detail);
}

/* The log line of an outcome (none for those that are plain answers). */
static void svc_tell_log(const struct svc *v, struct srv_session *s, const struct svc_tell *t,
			 long long us)
{
	char text[96];

	text[0] = '\0';
	switch (t->kind) {
	case SVC_T_START:
		if (v->op == SVC_OP_TOPUP)
			(void)snprintf(text, sizeof(text), "service=%u amount=%u", v->service,
				       v->amount);
		else
			(void)snprintf(text, sizeof(text), "service=%u", v->service);
		svc_log(v, s, "start", text);
		return;
	case SVC_T_FAILED:
		(void)snprintf(text, sizeof(text), "why=%s", t->why);
		svc_log(v, s, "failed", text);
		return;
	case SVC_T_REFUSED:
		(void)snprintf(text, sizeof(text), "sw=%04X", t->sw);
		svc_log(v, s, "refused", text);
		return;
	case SVC_T_TICKET_ISSUED:
		(void)snprintf(text, sizeof(text), "service=%u ticket=%llu us=%lld", v->service,
			       (unsigned long long)v->ticket, us);
		svc_log(v, s, "done", text);
		return;
	case SVC_T_FLAG_SET:
		(void)snprintf(text, sizeof(text), "service=%u pauth_key=%d us=%lld", v->service,
			       v->pauth_reg, us);
		svc_log(v, s, "done", text);
		return;
	case SVC_T_BACKUP_STORED:
		(void)snprintf(text, sizeof(text), "tickets=%zu counter=%u us=%lld", v->bk.n,
			       v->bk.counter, us);
		svc_log(v, s, "done", text);
		return;
	case SVC_T_RESTORED:
	case SVC_T_RESTORED_BEFORE:
		(void)snprintf(text, sizeof(text), "tickets=%u credited=%d again=%d us=%lld",
			       v->stored, v->moved > 0 && !v->skip_credit,
			       t->kind == SVC_T_RESTORED_BEFORE, us);
		svc_log(v, s, "done", text);
		return;
	case SVC_T_OP_RULE:
		(void)snprintf(text, sizeof(text), "err=%d", t->rc);
		svc_log(v, s, "refused", text);
		return;
	case SVC_T_REKEY_START:
		srv_log(s, "rekey_start", "op=%s", svc_op_log[v->op]);
		return;
	case SVC_T_REKEYED: /* the se's key versions: public, like the KVN in a receipt */
		srv_log(s, "rekey_done", "server=%02X>%02X reader=%02X>%02X us=%lld", v->rk_server,
			v->rk_new_server, v->rk_reader, v->rk_new_reader, us);
		return;
	case SVC_T_OP_LOST:
		(void)snprintf(text, sizeof(text), "err=%d", t->rc);
		svc_log(v, s, "unrecorded", text);
		return;
	case SVC_T_TICKET_REFUSED:
		(void)snprintf(text, sizeof(text), "sw=%04X ticket=%llu revoked=%d", t->sw,
			       (unsigned long long)v->ticket, t->rc == 0);
		svc_log(v, s, "refused", text);
		return;
	case SVC_T_TICKET_LOST:
	case SVC_T_TICKET_RULE:
	case SVC_T_TOPUP_LOST:
		(void)snprintf(text, sizeof(text), "err=%d", t->rc);
		svc_log(v, s, "unrecorded", text);
		return;
	case SVC_T_TOPPED_UP:
		(void)snprintf(text, sizeof(text), "service=%u amount=%u counter=%u replayed=%d "
			       "us=%lld", v->service, v->amount, v->counter, t->replayed, us);
		svc_log(v, s, "done", text);
		return;
	case SVC_T_REFUNDED:
		(void)snprintf(text, sizeof(text), "service=%u amount=%u reader=%u counter=%u "
			       "us=%lld", v->service, v->amount, v->rf_reader, v->counter, us);
		svc_log(v, s, "done", text);
		return;
	default:
		return;
	}
}

/* The portal's lock or unlock is in the se: the pending mark goes (a small write of its
 * own: no money moves, and the se is the truth about its lock), the phone is told. */
static void svc_lock_applied(const struct svc *v, struct srv_session *s)
{
	struct db *db = svc_of(v)->h->db;
	int rc = db->ops->se_set_pending(db, v->serial, DB_SE_PENDING_NONE, (int64_t)time(NULL));

	srv_log(s, v->op == SVC_OP_LOCK ? "lock_applied" : "unlock_applied", "cleared=%d", rc == 0);
	svc_notice(s, v->op == SVC_OP_LOCK ? "wallet locked (as asked on the portal)"
					   : "wallet unlocked (as asked on the portal)");
}

/* What the phone hears: a NOTICE, or an ERROR that ends the session. */
void svc_io_tell(struct svc *v, const struct svc_tell *t)
{
	struct srv_session *s = svc_sess(v);
	char text[96];

	if (s == NULL)
		return;
	svc_tell_log(v, s, t, (long long)(svc_now_us() - v->t0_us));
	text[0] = '\0';
	switch (t->kind) {
	case SVC_T_FAILED:
		(void)snprintf(text, sizeof(text), "%s failed", svc_op_text[v->op]);
		srv_close_with_error(s, PROTO_ERR_INTERNAL, text);
		return;
	case SVC_T_TICKET_LOST:
		srv_close_with_error(s, PROTO_ERR_INTERNAL, "ticket not recorded");
		return;
	case SVC_T_TOPUP_LOST:
		srv_close_with_error(s, PROTO_ERR_INTERNAL, "top-up not recorded");
		return;
	case SVC_T_OP_LOST:
		(void)snprintf(text, sizeof(text), "%s not recorded", svc_op_text[v->op]);
		srv_close_with_error(s, PROTO_ERR_INTERNAL, text);
		return;
	case SVC_T_OP_RULE:
		(void)snprintf(text, sizeof(text), "%s refused (%s)", svc_op_text[v->op],
			       tb_strerror(t->rc));
		break;
	case SVC_T_BACKUP_STORED:
		(void)snprintf(text, sizeof(text), "backup stored (balance %u, %zu tickets)",
			       v->bk.balance, v->bk.n);
		break;
	case SVC_T_RESTORED:
		(void)snprintf(text, sizeof(text), "restored: balance %u, %u tickets", v->balance,
			       v->stored);
		break;
	case SVC_T_RESTORED_BEFORE:
		svc_notice(s, "restored already");
		return;
	case SVC_T_RESP_UNASKED:
		srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP without SE_APDU");
		return;
	case SVC_T_RESP_UNEXPECTED:
		srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP not expected now");
		return;
	case SVC_T_REFUSED:
		if (v->op == SVC_OP_LOCK && t->sw == 0x6A81) {
			svc_lock_applied(v, s); /* locked already (the phone's own lock) */
			return;
		}
		(void)snprintf(text, sizeof(text), "%s refused by the se (%04X)",
			       svc_op_text[v->op], t->sw);
		break;
	case SVC_T_TICKET_REFUSED:
		(void)snprintf(text, sizeof(text), "ticket refused by the se (%04X)", t->sw);
		break;
	case SVC_T_TICKET_RULE:
		(void)snprintf(text, sizeof(text), "ticket refused (%s)", tb_strerror(t->rc));
		break;
	case SVC_T_TICKET_ISSUED:
		(void)snprintf(text, sizeof(text), "ticket %llu issued",
			       (unsigned long long)v->ticket);
		break;
	case SVC_T_FLAG_SET:
		(void)snprintf(text, sizeof(text), "flag set until %lld", (long long)v->valid_until);
		break;
	case SVC_T_TOPPED_UP:
		(void)snprintf(text, sizeof(text), "topped up %u, balance %u", v->amount, v->balance);
		break;
	case SVC_T_REFUNDED:
		(void)snprintf(text, sizeof(text), "refund %u at reader %u, balance %u", v->amount,
			       v->rf_reader, v->balance);
		break;
	case SVC_T_ARMED:
		svc_notice(s, "service available: tap the reader");
		return;
	case SVC_T_PERMIT:
		svc_notice(s, "permit stored");
		return;
	case SVC_T_LOCK_APPLIED:
		svc_lock_applied(v, s);
		return;
	case SVC_T_RELAY_REFUSED:
		srv_log(s, "relay_refused", "why=\"%s\"", t->why);
		(void)snprintf(text, sizeof(text), "reader exchange refused: %s", t->why);
		break;
	case SVC_T_RELAYED:
		svc_relayed_text(v, s, t->rec, text, sizeof(text));
		break;
	case SVC_T_NO_SERVICE:
		svc_notice(s, "no such service");
		return;
	case SVC_T_BUSY:
		svc_notice(s, "busy with the service selected before");
		return;
	case SVC_T_UNAVAILABLE:
		svc_notice(s, "service not available from the phone yet");
		return;
	default: /* SVC_T_START: the log line only */
		return;
	}
	svc_notice(s, text);
}
