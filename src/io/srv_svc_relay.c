/* srv_svc_relay.c - the relay's part of the server's service adapter: RELAY_DOWN and STAGE
 * frames, the reader check, relayed records queued for and booked in the loop turn's batch,
 * and the NOTICE a booked record gives. What stays true: a record is booked only inside the
 * batch, so the reader's RESULT follows its commit; texts and log lines carry no APDU data. */
#include <stdio.h>

#include <event2/event.h>

#include "io/srv_net.h"
#include "io/srv_svc_int.h"
#include "lib/err.h"
#include "lib/rmsg.h"
#include "server/db.h"
#include "server/relay_book.h"
#include "server/rules.h"

static const char *const svc_rec_name[] = { "", "pay", "order", "ticket", "personal-auth",
					    "flag", "refund" };

/* A booked reader record as the phone shows it, and its log line. */
void svc_relayed_text(const struct svc *v, struct srv_session *s,
		      const struct svc_rl_rec *x, char *text, size_t cap)
{
	const char *name = x->kind < 7 ? svc_rec_name[x->kind] : "record";
	long long us = (long long)(svc_now_us() - v->rl.t0_us);

	srv_log(s, "relay_done", "reader=%u kind=%s seq=%u status=%u exchanges=%u us=%lld",
		v->rl.reader, name, x->seq, x->status, v->rl.exchanges, us);
	if (x->status == 2)
		(void)snprintf(text, cap, "reader %u: %s refused (%s)", v->rl.reader, name, x->info);
	else if (x->kind == RMSG_K_PAY || (x->kind == RMSG_K_FLAG && x->amount > 0))
		(void)snprintf(text, cap, "paid %u at reader %u, balance %lld%s", x->amount,
			       v->rl.reader, (long long)x->balance, x->status == 1 ? " (again)" : "");
	else if (x->kind == RMSG_K_ORDER)
		(void)snprintf(text, cap, "order paid %u at reader %u, balance %lld", x->amount,
			       v->rl.reader, (long long)x->balance);
	else
		(void)snprintf(text, cap, "reader %u: %s recorded (%s)", v->rl.reader, name, x->info);
}

int svc_io_relay_down(struct svc *v, uint32_t relay, const uint8_t *answer, size_t n)
{
	struct proto_msg m = { .type = PROTO_RELAY_DOWN };
	struct srv_session *s = svc_sess(v);

	if (s == NULL)
		return TB_E_INTERNAL;
	m.u.relay_down.relay = relay;
	m.u.relay_down.status = PROTO_RELAY_ANSWER;
	m.u.relay_down.data = answer;
	m.u.relay_down.n = n;
	return srv_send_msg(s, &m);
}

int svc_io_stage(struct svc *v, const uint8_t *apdu, size_t n)
{
	struct srv_session *s = svc_sess(v);

	return s == NULL ? TB_E_INTERNAL : srv_send(s, PROTO_STAGE, apdu, n);
}

int svc_io_reader_ok(struct svc *v, uint32_t reader)
{
	struct db_reader r;

	return srv_reader_check(svc_of(v)->h->db, reader, &r);
}

void svc_io_rjob(struct svc *v)
{
	struct srv_svc *x = svc_of(v);
	struct srv_svc_host *d = x->h;

	x->next_rjob = NULL;
	*d->rjobs_tail = x;
	d->rjobs_tail = &x->next_rjob;
	d->njobs++;
	if (!event_pending(d->flush, EV_TIMEOUT, NULL))
		event_active(d->flush, EV_TIMEOUT, 0);
}

/* A relayed REQUEST's records, each in its own request of the batch, and the deny list
 * the reader gets with the RESULT. 0, or a db failure that spoils the batch. */
int svc_relay_book(struct srv_svc_host *d, struct svc *v, int64_t now)
{
	uint64_t version = 0;
	int rc = 0;

	for (size_t i = 0; i < v->rl.nrec && rc == 0; i++)
		rc = relay_book(d->db, v->rl.reader, &v->rl.rec[i], v->rl.req + v->rl.rec[i].off,
				now);
	v->rl.ndeny = 0;
	if (rc == 0 && d->db->ops->deny_list(d->db, NULL, v->rl.deny, 32, &v->rl.ndeny,
					      &version) != 0)
		v->rl.ndeny = 0;
	v->rl.due_xfer = 0;
	if (rc == 0) {
		/* a read in a request of its own: a failure only leaves the credit for later */
		struct relay_due due;
		int dr = db_req_begin(d->db);

		if (dr == 0) {
			dr = relay_refund_due(d->db, v->serial, &due);
			(void)db_req_end(d->db, 0);
		}
		if (dr == 0 && due.xfer != 0) {
			v->rl.due_xfer = due.xfer;
			v->rl.due_amount = due.amount;
			v->rl.due_service = due.service;
			v->rl.due_reader = due.reader;
		}
	}
	return rc;
}

