/* server.c - `tapbridge server`: the service server on one libevent loop (TLS 1.3 phone
 * sessions, the HTTP layer) and, with --db and --sam, the services: the menu from the
 * database; the e-money top-up into the se's purse, ticket issuance and the authenticity
 * flag, each one secured command through an SCP03 level-33 session the sam opens,
 * tunnelled through the phone (SE_APDU / SE_RESP).
 * What stays true: a confirmation (NOTICE "topped up ...", "ticket N issued") leaves only
 * after its ledger or ticket rows are committed, and commits are grouped: all the db work that one
 * loop turn produced goes into one batch (one fsync), then every reply of that batch is
 * sent. Without --db the server says plainly that it has no services. The certificate is
 * made once and its fingerprint printed at every start; SIGINT/SIGTERM end every session
 * with an ERROR and exit 0. Log lines carry no keys, APDU data or personal data. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/event.h>

#include "cmd.h"
#include "io/db_io.h"
#include "io/sam_client.h"
#include "io/srv_http.h"
#include "io/srv_net.h"
#include "io/tls.h"
#include "lib/ct.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "se/se.h"
#include "server/ledger.h"
#include "server/proto.h"
#include "server/rules.h"
#include "server/svc_cmd.h"

#define SRVD_LISTEN_DEFAULT "127.0.0.1:8443"
#define SRVD_HTTP_DEFAULT "127.0.0.1:8080"
#define SRVD_POLL_MS 50u
#define SRVD_SAM_INFLIGHT 4096u
#define SRVD_SVC_SCAN 256u       /* service ids 1..this are looked up at start */
#define SVC_TOPUP_ITEM 1u        /* e-money: price item 1 is the top-up amount */
#define SVC_CHALLENGE_LEN 8u
#define SVC_TICKET_DAYS 86400    /* a phone-issued ticket: valid now .. now + 1 day */
#define SVC_FLAG_SECONDS 300     /* a flag is valid this long after it is set */

/* What a session's channel to the se is for. */
enum svc_op { SVC_OP_TOPUP = 1, SVC_OP_TICKET = 2, SVC_OP_FLAG = 3 };
static const char *const svc_op_log[] = { "", "topup", "ticket", "flag" };
static const char *const svc_op_text[] = { "", "top-up", "ticket", "flag" };

/* Where a session's top-up is (one at a time per session). */
enum svc_state {
	SV_IDLE = 0,
	SV_ISSUE,      /* ticket: its db row queued for this loop turn's batch */
	SV_SIGN,       /* flag: the token at the sam's SIGN */
	SV_REVOKE,     /* ticket the se refused: its row's revocation queued for the batch */
	SV_SELECT,     /* SE_APDU SELECT wallet sent */
	SV_OPENING,    /* SCP_OPEN at the sam */
	SV_IU,         /* SE_APDU INITIALIZE UPDATE sent */
	SV_STEP1,      /* SCP_STEP (IU response + CREDIT) at the sam */
	SV_EA,         /* SE_APDU EXTERNAL AUTHENTICATE and wrapped CREDIT sent */
	SV_CREDIT,     /* EA response given to the sam; waiting for the CREDIT response */
	SV_UNWRAP,     /* SCP_UNWRAP at the sam */
	SV_VERIFY,     /* RECEIPT_VERIFY at the sam */
	SV_COMMIT,     /* ledger work queued for this loop turn's batch */
};

struct srvd;
struct svc_call;

/* One phone session's service state. Freed when the session has ended and nothing
 * (sam request, queued db work) refers to it any more. */
struct svc {
	struct srvd *d;
	struct srv_ref ref;
	uint8_t serial[PROTO_SERIAL_LEN];
	int gone;
	unsigned refs;           /* sam requests in flight + queued db work */
	uint8_t state;           /* enum svc_state */
	uint8_t op;              /* enum svc_op */
	uint8_t cmd[SVC_CMD_MAX];/* the secured command (CREDIT, TICKET STORE, FLAG SET) */
	uint8_t token[SVC_TOKEN_LEN]; /* flag: the token, waiting for its signature */
	size_t cmd_n;
	char key[DB_KEY_MAX];    /* ticket: its idempotency key */
	int64_t valid_from, valid_until;
	uint64_t ticket;         /* ticket: the id the db gave it */
	uint16_t sw;             /* ticket: the se's refusal, told after the revocation */
	uint32_t service;
	uint32_t amount;
	uint32_t seq;            /* the last SE_APDU seq sent */
	uint32_t acked;          /* the last seq answered by an SE_RESP (they come in order) */
	uint32_t handle;         /* sam session, valid while has_handle */
	int has_handle;
	int64_t t0_us;           /* SELECT arrived */
	/* the receipt */
	uint32_t counter, balance;
	/* the db job */
	struct svc *next_job;
	struct svc *all_prev, *all_next; /* every svc not freed yet (freed at exit) */
	int job_rc;
	struct ledger_reply job_out;
};

struct srvd_service {
	uint32_t id;
	uint8_t kind;
	char name[DB_NAME_MAX];
	uint32_t item1;          /* price item 1, 0 = none: the top-up amount (e-money), the
	                          * flag's offline limit (personal auth) */
};

struct srvd {
	struct event_base *base;
	struct srv *srv;
	struct event *sig_int, *sig_term, *drain, *flush;
	unsigned drain_left_ms;
	FILE *log;
	struct db *db;
	struct sam_client *sam;
	size_t nsvc;
	struct srvd_service svc[PROTO_MENU_MAX];
	struct svc *jobs, **jobs_tail;
	struct svc *all;
	struct svc_call *calls;    /* sam calls waiting for their reply */
	size_t njobs;
	/* group-commit figures */
	uint64_t batches, batched, batch_max, commit_fail;
};

static int64_t srvd_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void srvd_notice(struct srv_session *s, const char *text)
{
	(void)srv_send(s, PROTO_NOTICE, (const uint8_t *)text, strlen(text));
}

static const struct srvd_service *srvd_find(const struct srvd *d, uint32_t id)
{
	for (size_t i = 0; i < d->nsvc; i++)
		if (d->svc[i].id == id)
			return &d->svc[i];
	return NULL;
}

/* The services of the database (ids 1..SRVD_SVC_SCAN, at most a MENU's worth). */
static int srvd_load_services(struct srvd *d)
{
	struct db_service s;

	d->nsvc = 0;
	for (uint32_t id = 1; id <= SRVD_SVC_SCAN && d->nsvc < PROTO_MENU_MAX; id++) {
		int rc = d->db->ops->service_get(d->db, id, &s);
		struct srvd_service *o;

		if (rc == TB_E_DB_NOT_FOUND)
			continue;
		if (rc != 0)
			return rc;
		o = &d->svc[d->nsvc++];
		o->id = s.id;
		o->kind = s.kind;
		memcpy(o->name, s.name, sizeof(o->name));
		o->name[sizeof(o->name) - 1] = '\0';
		o->item1 = 0;
		for (size_t k = 0; k < s.n_prices; k++)
			if (s.prices[k].item == SVC_TOPUP_ITEM)
				o->item1 = s.prices[k].price;
	}
	return 0;
}

/* ------------------------------------------------------------ sessions --- */

static void svc_free(struct svc *v)
{
	if (v->all_prev != NULL)
		v->all_prev->all_next = v->all_next;
	else
		v->d->all = v->all_next;
	if (v->all_next != NULL)
		v->all_next->all_prev = v->all_prev;
	free(v);
}

static void svc_put(struct svc *v)
{
	if (v->refs > 0)
		v->refs--;
	if (v->gone && v->refs == 0)
		svc_free(v);
}

/* The live session of v, or NULL once it has ended. */
static struct srv_session *svc_sess(struct svc *v)
{
	return v->gone ? NULL : srv_session_get(v->d->srv, v->ref);
}

typedef void (*svc_cb)(struct svc *v, struct srv_session *s, int err, const uint8_t *b, size_t n);
static int svc_call(struct svc *v, uint8_t type, const uint8_t *body, size_t n, svc_cb fn);

/* Ends the sam session of v, if any (fire and forget). */
static void svc_close_handle(struct svc *v)
{
	uint8_t body[8];
	struct wr w = wr_init(body, sizeof(body));

	if (!v->has_handle)
		return;
	v->has_handle = 0;
	if (sam_enc_scp_handle(&w, v->handle, NULL, 0) != 0)
		return;
	(void)svc_call(v, SAM_SCP_CLOSE, body, w.len, NULL);
}

/* Log event names and phone texts per operation: "<op>_<what>", "<text> ...". */
static void svc_log(const struct svc *v, struct srv_session *s, const char *what,
		    const char *detail)
{
	char ev[32];

	(void)snprintf(ev, sizeof(ev), "%s_%s", svc_op_log[v->op], what);
	srv_log(s, ev, "%s", detail);
}

static const char *svc_text(const struct svc *v)
{
	return svc_op_text[v->op];
}

/* The operation cannot go on: the session ends with an error (the sam or our side failed). */
static void svc_fail(struct svc *v, const char *why)
{
	struct srv_session *s = svc_sess(v);
	char text[64];

	svc_close_handle(v);
	v->state = SV_IDLE;
	if (s != NULL) {
		(void)snprintf(text, sizeof(text), "why=%s", why);
		svc_log(v, s, "failed", text);
		(void)snprintf(text, sizeof(text), "%s failed", svc_text(v));
		srv_close_with_error(s, PROTO_ERR_INTERNAL, text);
	}
}

static void svc_queue_job(struct svc *v);

/* The se refused (a status word): the phone hears it, the session goes on. A ticket the
 * se refused was never stored (an error status word changes nothing in the se): its row,
 * committed before, is revoked first, and the phone hears it after that commit. */
static void svc_refused(struct svc *v, struct srv_session *s, uint16_t sw)
{
	char text[64], swx[8];

	svc_close_handle(v);
	v->state = SV_IDLE;
	if (v->op == SVC_OP_TICKET) {
		v->sw = sw;
		v->state = SV_REVOKE;
		svc_queue_job(v);
		return;
	}
	(void)snprintf(swx, sizeof(swx), "sw=%04X", sw);
	svc_log(v, s, "refused", swx);
	(void)snprintf(text, sizeof(text), "%s refused by the se (%04X)", svc_text(v), sw);
	srvd_notice(s, text);
}

static int svc_send_apdu(struct svc *v, struct srv_session *s, const uint8_t *apdu, size_t n)
{
	struct proto_msg m = { .type = PROTO_SE_APDU };

	m.u.apdu.seq = ++v->seq;
	m.u.apdu.data = apdu;
	m.u.apdu.n = n;
	return srv_send_msg(s, &m);
}

struct svc_call {
	struct svc *v;
	svc_cb fn;
	struct svc_call *prev, *next;
};

static void svc_call_unlink(struct srvd *d, struct svc_call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
}

static void svc_on_open(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			size_t n);

/* sam replies for a session: the callback runs only while the session lives. */
static void svc_sam_reply(void *arg, int err, const uint8_t *b, size_t n)
{
	struct svc_call *c = arg;
	struct svc *v = c->v;
	svc_cb fn = c->fn;
	struct srv_session *s;

	svc_call_unlink(v->d, c);
	free(c);
	s = svc_sess(v);
	if (s != NULL && fn != NULL)
		fn(v, s, err, b, n);
	else if (err == 0 && fn == svc_on_open) {
		struct sam_open_reply o;

		/* opened for a phone that left meanwhile: close it at once */
		if (sam_dec_scp_open(b, n, &o) == 0) {
			v->handle = o.handle;
			v->has_handle = 1;
			svc_close_handle(v);
		}
	}
	svc_put(v);
}

static int svc_call(struct svc *v, uint8_t type, const uint8_t *body, size_t n, svc_cb fn)
{
	struct svc_call *c = malloc(sizeof(*c));
	int rc;

	if (c == NULL)
		return TB_E_NOMEM;
	c->v = v;
	c->fn = fn;
	c->prev = NULL;
	c->next = v->d->calls;
	if (c->next != NULL)
		c->next->prev = c;
	v->d->calls = c;
	v->refs++;
	rc = sam_client_call(v->d->sam, type, body, n, svc_sam_reply, c);
	if (rc != 0) {
		v->refs--;
		svc_call_unlink(v->d, c);
		free(c);
	}
	return rc;
}

/* ------------------------------------------------------------- top-up --- */

static void svc_on_verify(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			  size_t n)
{
	(void)b;
	(void)n;
	if (err != 0) {
		svc_fail(v, "receipt MAC");
		return;
	}
	(void)s;
	v->state = SV_COMMIT;
	svc_queue_job(v);
}

/* TICKET STORE or FLAG SET answered 9000 under the R-MAC. A ticket's row was committed
 * before the channel opened, so this is its confirmation; a flag has no row. */
static void svc_stored(struct svc *v, struct srv_session *s, const struct sam_unwrap_reply *u)
{
	char text[80];
	long long us = (long long)(srvd_now_us() - v->t0_us);

	if (!u->authenticated || u->n != 0) {
		svc_fail(v, "store");
		return;
	}
	svc_close_handle(v);
	v->state = SV_IDLE;
	if (v->op == SVC_OP_TICKET) {
		(void)snprintf(text, sizeof(text), "service=%u ticket=%llu us=%lld", v->service,
			       (unsigned long long)v->ticket, us);
		svc_log(v, s, "done", text);
		(void)snprintf(text, sizeof(text), "ticket %llu issued",
			       (unsigned long long)v->ticket);
	} else {
		(void)snprintf(text, sizeof(text), "service=%u us=%lld", v->service, us);
		svc_log(v, s, "done", text);
		(void)snprintf(text, sizeof(text), "flag set until %lld", (long long)v->valid_until);
	}
	srvd_notice(s, text);
}

static void svc_on_unwrap(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			  size_t n)
{
	uint8_t body[128];
	struct wr w = wr_init(body, sizeof(body));
	struct sam_unwrap_reply u;
	struct svc_receipt rc;

	if (err != 0 || sam_dec_scp_unwrap(b, n, &u) != 0) {
		svc_fail(v, "unwrap");
		return;
	}
	if (u.sw != 0x9000) {
		svc_refused(v, s, u.sw);
		return;
	}
	if (v->op != SVC_OP_TOPUP) {
		svc_stored(v, s, &u);
		return;
	}
	/* The R-MAC proved the receipt to us already; the receipt MAC is what lets it be
	 * checked again later, so it is verified before it becomes a ledger row. */
	if (!u.authenticated || svc_receipt_parse(u.data, u.n, &rc) != 0 ||
	    !ct_eq(rc.serial, v->serial, sizeof(rc.serial)) || rc.kind != SVC_TX_CREDIT ||
	    rc.amount != v->amount) {
		svc_fail(v, "receipt");
		return;
	}
	v->counter = rc.counter;
	v->balance = rc.balance;
	if (sam_enc_receipt(&w, rc.kvn, v->serial, rc.mac, sizeof(rc.mac), u.data,
			    SVC_RECEIPT_BODY) != 0 ||
	    svc_call(v, SAM_RECEIPT_VERIFY, body, w.len, svc_on_verify) != 0) {
		svc_fail(v, "sam");
		return;
	}
	v->state = SV_VERIFY;
}

static void svc_on_step2(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			 size_t n)
{
	(void)s;
	(void)b;
	(void)n;
	if (err != 0)
		svc_fail(v, "external authenticate");
}

static void svc_on_step1(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			 size_t n)
{
	struct sam_step_reply st;

	if (err != 0 || sam_dec_scp_step(b, n, &st) != 0 || st.state != SAM_SS_EA_SPEC ||
	    st.ea == NULL || st.wrapped == NULL) {
		svc_fail(v, "initialize update");
		return;
	}
	/* EXTERNAL AUTHENTICATE and the CREDIT go together: one round trip fewer. */
	if (svc_send_apdu(v, s, st.ea, st.ea_n) != 0 ||
	    svc_send_apdu(v, s, st.wrapped, st.wrapped_n) != 0) {
		svc_fail(v, "send");
		return;
	}
	v->state = SV_EA;
}

static void svc_on_open(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			size_t n)
{
	struct sam_open_reply o;

	if (err != 0 || sam_dec_scp_open(b, n, &o) != 0) {
		svc_fail(v, "open");
		return;
	}
	v->handle = o.handle;
	v->has_handle = 1;
	if (svc_send_apdu(v, s, o.apdu, o.n) != 0) {
		svc_fail(v, "send");
		return;
	}
	v->state = SV_IU;
}

/* The channel for v->cmd starts: SELECT wallet (plain), then SCP_OPEN at its answer. */
static void svc_channel_start(struct svc *v, struct srv_session *s)
{
	uint8_t apdu[6 + SE_WALLET_AID_LEN] = { 0x00, 0xA4, 0x04, 0x00, SE_WALLET_AID_LEN };

	memcpy(apdu + 5, se_wallet_aid, SE_WALLET_AID_LEN);
	apdu[5 + SE_WALLET_AID_LEN] = 0x00;
	if (svc_send_apdu(v, s, apdu, sizeof(apdu)) != 0) {
		svc_fail(v, "send");
		return;
	}
	v->state = SV_SELECT;
}

static void svc_topup_start(struct svc *v, struct srv_session *s, const struct srvd_service *sv)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));

	v->op = SVC_OP_TOPUP;
	v->service = sv->id;
	v->amount = sv->item1;
	v->t0_us = srvd_now_us();
	if (svc_cmd_credit(&w, v->amount) != 0) {
		svc_fail(v, "credit");
		return;
	}
	v->cmd_n = w.len;
	srv_log(s, "topup_start", "service=%u amount=%u", sv->id, sv->item1);
	svc_channel_start(v, s);
}

/* A ticket: its db row first (the db gives the id the se's record carries), committed in
 * this loop turn's batch; the channel opens only after the commit (svc_ticket_issued). */
static void svc_ticket_start(struct svc *v, struct srv_session *s, const struct srvd_service *sv)
{
	uint8_t nonce[8];
	char hex[17];
	int64_t now = (int64_t)time(NULL);

	v->op = SVC_OP_TICKET;
	if (crypto_random(nonce, sizeof(nonce)) != 0 ||
	    hex_encode(v->serial, sizeof(v->serial), HEX_PUBLIC, hex, sizeof(hex)) != 0) {
		svc_fail(v, "random");
		return;
	}
	v->service = sv->id;
	v->amount = 0;
	v->t0_us = srvd_now_us();
	v->valid_from = now;
	v->valid_until = now + SVC_TICKET_DAYS;
	(void)snprintf(v->key, sizeof(v->key), "I:%s:%02X%02X%02X%02X%02X%02X%02X%02X", hex,
		       nonce[0], nonce[1], nonce[2], nonce[3], nonce[4], nonce[5], nonce[6],
		       nonce[7]);
	srv_log(s, "ticket_start", "service=%u", sv->id);
	v->state = SV_ISSUE;
	svc_queue_job(v);
}

/* The signature of the flag token (key-version(1) signature(64)): FLAG SET carries both. */
static void svc_on_sign(struct svc *v, struct srv_session *s, int err, const uint8_t *b,
			size_t n)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));

	if (err != 0 || n != 1 + SVC_SIG_LEN || svc_cmd_flag_set(&w, v->token, b + 1) != 0) {
		svc_fail(v, "sign");
		return;
	}
	v->cmd_n = w.len;
	svc_channel_start(v, s);
}

/* The authenticity flag (flow 3): token 01 || serial || service || expiry || nonce(16) ||
 * offline limit, signed by the sam in domain 1, stored by FLAG SET through the channel. */
static void svc_flag_start(struct svc *v, struct srv_session *s, const struct srvd_service *sv)
{
	struct wr w = wr_init(v->token, sizeof(v->token));
	uint8_t body[SVC_TOKEN_LEN + 8];
	struct wr b = wr_init(body, sizeof(body));
	struct svc_token tk;

	v->op = SVC_OP_FLAG;
	v->service = sv->id;
	v->t0_us = srvd_now_us();
	v->valid_until = (int64_t)time(NULL) + SVC_FLAG_SECONDS;
	memcpy(tk.serial, v->serial, sizeof(tk.serial));
	tk.service = sv->id;
	tk.expiry = (uint32_t)v->valid_until;
	tk.limit = sv->item1;
	if (crypto_random(tk.nonce, sizeof(tk.nonce)) != 0 || svc_token_put(&w, &tk) != 0 ||
	    sam_enc_sign(&b, SAM_SIGN_FLAG, v->token, sizeof(v->token)) != 0 ||
	    svc_call(v, SAM_SIGN, body, b.len, svc_on_sign) != 0) {
		svc_fail(v, "sign");
		return;
	}
	srv_log(s, "flag_start", "service=%u", sv->id);
	v->state = SV_SIGN;
}

/* The ticket's row is durable: its record goes to the se. The db's validity is
 * [from, until); the se's is [not_before, not_after], so not_after = until - 1. */
static void svc_ticket_issued(struct svc *v, struct srv_session *s)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd));
	struct svc_ticket tk = { .id = v->ticket, .service = v->service, .uses = 1 };

	tk.not_before = (uint32_t)v->valid_from;
	tk.not_after = (uint32_t)(v->valid_until - 1);
	if (svc_cmd_ticket_store(&w, &tk) != 0) {
		svc_fail(v, "ticket record");
		return;
	}
	v->cmd_n = w.len;
	svc_channel_start(v, s);
}

/* One SE_RESP in the channel's order (the same for every operation). */
static void svc_se_resp(struct svc *v, struct srv_session *s, const struct proto_apdu *a)
{
	uint8_t body[SAM_APDU_MAX + 64];
	struct wr w = wr_init(body, sizeof(body));
	uint16_t sw = (uint16_t)(a->data[a->n - 2] << 8 | a->data[a->n - 1]);
	int rc = 0;

	switch (v->state) {
	case SV_SELECT:
		if (sw != 0x9000) {
			svc_refused(v, s, sw);
			return;
		}
		rc = sam_enc_scp_open(&w, SAM_FAM_SE_SERVER, 0, v->serial, 0x33, SVC_CHALLENGE_LEN,
				      se_wallet_aid, SE_WALLET_AID_LEN);
		if (rc == 0)
			rc = svc_call(v, SAM_SCP_OPEN, body, w.len, svc_on_open);
		v->state = SV_OPENING;
		break;
	case SV_IU:
		if (sw != 0x9000) {
			svc_refused(v, s, sw);
			return;
		}
		rc = sam_enc_scp_step(&w, v->handle, a->data, a->n, v->cmd, v->cmd_n);
		if (rc == 0)
			rc = svc_call(v, SAM_SCP_STEP, body, w.len, svc_on_step1);
		v->state = SV_STEP1;
		break;
	case SV_EA:
		rc = sam_enc_scp_step(&w, v->handle, a->data, a->n, NULL, 0);
		if (rc == 0)
			rc = svc_call(v, SAM_SCP_STEP, body, w.len, svc_on_step2);
		v->state = SV_CREDIT;
		break;
	case SV_CREDIT:
		/* Pipelined behind the EA step: the sam answers in order. */
		rc = sam_enc_scp_handle(&w, v->handle, a->data, a->n);
		if (rc == 0)
			rc = svc_call(v, SAM_SCP_UNWRAP, body, w.len, svc_on_unwrap);
		v->state = SV_UNWRAP;
		break;
	default:
		srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP not expected now");
		return;
	}
	if (rc != 0)
		svc_fail(v, "sam");
}

/* ------------------------------------------------------ group commit --- */

static void svc_queue_job(struct svc *v)
{
	struct srvd *d = v->d;

	v->refs++;
	v->next_job = NULL;
	*d->jobs_tail = v;
	d->jobs_tail = &v->next_job;
	d->njobs++;
	/* The flush runs at the lowest priority: after everything else of this turn. */
	if (!event_pending(d->flush, EV_TIMEOUT, NULL))
		event_active(d->flush, EV_TIMEOUT, 0);
}

/* A ticket's row committed (rc 0), refused by a rule, or lost with its batch; or the
 * revocation of a row the se refused (done or not, the phone hears the refusal). */
static void svc_ticket_done(struct svc *v, struct srv_session *s, int rc)
{
	char text[96];

	if (v->state == SV_REVOKE) {
		v->state = SV_IDLE;
		(void)snprintf(text, sizeof(text), "sw=%04X ticket=%llu revoked=%d", v->sw,
			       (unsigned long long)v->ticket, rc == 0);
		svc_log(v, s, "refused", text);
		(void)snprintf(text, sizeof(text), "ticket refused by the se (%04X)", v->sw);
		srvd_notice(s, text);
		return;
	}
	if (rc == 0) {
		svc_ticket_issued(v, s);
		return;
	}
	v->state = SV_IDLE;
	(void)snprintf(text, sizeof(text), "err=%d", rc);
	svc_log(v, s, "unrecorded", text);
	if (rc == TB_E_DB || rc == TB_E_DB_CONSTRAINT || rc == TB_E_DB_CONFLICT || rc == TB_E_NOMEM) {
		srv_close_with_error(s, PROTO_ERR_INTERNAL, "ticket not recorded");
		return;
	}
	(void)snprintf(text, sizeof(text), "ticket refused (%s)", tb_strerror(rc));
	srvd_notice(s, text);
}

static void svc_job_done(struct svc *v, int rc)
{
	struct srv_session *s = svc_sess(v);
	char text[96];
	int64_t us = srvd_now_us() - v->t0_us;

	if (s == NULL) {
		svc_close_handle(v);
		return;
	}
	if (v->op == SVC_OP_TICKET) {
		svc_ticket_done(v, s, rc);
		return;
	}
	if (rc != 0) {
		/* The se holds the credit; the ledger will record its receipt S:<serial>:<counter>
		 * when it is seen again (docs/protocol-phone.md: reconciliation). */
		srv_log(s, "topup_unrecorded", "err=%d", rc);
		svc_close_handle(v);
		v->state = SV_IDLE;
		srv_close_with_error(s, PROTO_ERR_INTERNAL, "top-up not recorded");
		return;
	}
	srv_log(s, "topup_done", "service=%u amount=%u counter=%u replayed=%d us=%lld", v->service,
		v->amount, v->counter, v->job_out.replayed, (long long)us);
	(void)snprintf(text, sizeof(text), "topped up %u, balance %u", v->amount, v->balance);
	svc_close_handle(v);
	v->state = SV_IDLE;
	srvd_notice(s, text);
}

/* The se's purse is the source of truth: what it held before this credit (the receipt's
 * balance less its amount) and the ledger's purse must agree. When the se holds more and
 * the receipt before this one (counter - 1) is not in the ledger, credits the se applied
 * were never recorded (the server died before their commit): the difference is booked as
 * a top-up under that receipt's key, once (the key is UNIQUE). Inside the request: it
 * commits with this receipt or not at all. 0, or a TB_E_DB* that spoils the request. */
static int svc_reconcile(struct srvd *d, struct svc *v, const struct ledger_req *rq)
{
	struct ledger_req gap = *rq;
	struct ledger_reply out;
	struct db_transfer t;
	struct db_applied ap;
	int64_t have = 0, before = (int64_t)v->balance - (int64_t)v->amount;
	int rc;

	if (v->counter <= 1 || before <= 0)
		return 0;
	if ((rc = ledger_balance(d->db, v->serial, &have)) != 0)
		return rc;
	if (before <= have || before - have > (int64_t)LEDGER_AMOUNT_MAX)
		return 0;
	if ((rc = ledger_key_se(v->serial, v->counter - 1, gap.key)) != 0)
		return rc;
	rc = d->db->ops->transfer_get(d->db, gap.key, &t, &ap);
	if (rc != TB_E_DB_NOT_FOUND)
		return rc == 0 ? 0 : rc;
	gap.amount = (uint32_t)(before - have);
	rc = ledger_topup(d->db, &gap, &out);
	if (rc == 0 && d->log != NULL)
		fprintf(d->log, "srv event=reconciled amount=%u counter=%u\n", gap.amount,
			v->counter - 1);
	/* A refusal (limits, a locked se) leaves the gap for later; db failures spoil. */
	return rc == TB_E_DB || rc == TB_E_DB_CONSTRAINT ? rc : 0;
}

/* The revocation of a ticket the se refused, inside its own request of the batch. */
static int svc_ticket_revoke(struct srvd *d, struct svc *v)
{
	struct db_ticket t;
	int rc, r2;

	if ((rc = db_req_begin(d->db)) != 0)
		return rc;
	r2 = d->db->ops->ticket_get(d->db, v->ticket, &t);
	if (r2 == 0)
		r2 = d->db->ops->ticket_update(d->db, v->ticket, t.uses_left, DB_TICKET_REVOKED);
	rc = db_req_end(d->db, r2 == 0);
	return r2 != 0 ? r2 : rc;
}

/* A ticket's row, inside its own request of the batch. */
static int svc_ticket_job(struct srvd *d, struct svc *v, int64_t now)
{
	struct srv_ticket_req rq;
	struct db_applied out;
	int rc, r2;

	if (v->state == SV_REVOKE)
		return svc_ticket_revoke(d, v);
	memset(&rq, 0, sizeof(rq));
	memcpy(rq.key, v->key, sizeof(rq.key));
	memcpy(rq.se, v->serial, sizeof(rq.se));
	rq.service = v->service;
	rq.valid_from = v->valid_from;
	rq.valid_until = v->valid_until;
	rq.uses = 1;
	rq.now = now;
	if ((rc = db_req_begin(d->db)) != 0)
		return rc;
	r2 = srv_ticket_issue(d->db, &rq, &out);
	rc = db_req_end(d->db, r2 == 0);
	if (r2 != 0)
		return r2;
	if (rc == 0)
		v->ticket = out.id;
	return rc;
}

static void srvd_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srvd *d = arg;
	struct svc *list = d->jobs, *v, *next;
	size_t n = d->njobs;
	int64_t now = (int64_t)time(NULL);
	int rc;

	(void)fd;
	(void)what;
	d->jobs = NULL;
	d->jobs_tail = &d->jobs;
	d->njobs = 0;
	if (list == NULL)
		return;
	rc = db_batch_begin(d->db);
	for (v = list; v != NULL; v = v->next_job) {
		struct ledger_req rq;

		v->job_rc = rc;
		if (rc != 0)
			continue;
		if (v->op == SVC_OP_TICKET) {
			v->job_rc = svc_ticket_job(d, v, now);
			continue;
		}
		memset(&rq, 0, sizeof(rq));
		memcpy(rq.se, v->serial, sizeof(rq.se));
		rq.service = v->service;
		rq.amount = v->amount;
		rq.time = now;
		rq.now = now;
		v->job_rc = ledger_key_se(v->serial, v->counter, rq.key);
		if (v->job_rc == 0 && (v->job_rc = db_req_begin(d->db)) == 0) {
			int r2 = svc_reconcile(d, v, &rq);

			if (r2 == 0)
				r2 = ledger_topup(d->db, &rq, &v->job_out);
			v->job_rc = db_req_end(d->db, r2 == 0);
			if (r2 != 0)
				v->job_rc = r2;
		}
	}
	if (rc == 0)
		rc = db_batch_commit(d->db);
	d->batches++;
	d->batched += n;
	if (n > d->batch_max)
		d->batch_max = n;
	if (rc != 0) {
		d->commit_fail++;
		if (d->log != NULL)
			fprintf(d->log, "srv event=commit_failed batch=%zu err=%d\n", n, rc);
	}
	/* Only now, with the batch durable (or refused as a whole), do the replies go. */
	for (v = list; v != NULL; v = next) {
		next = v->next_job;
		svc_job_done(v, rc != 0 ? rc : v->job_rc);
		svc_put(v);
	}
}

/* ------------------------------------------------------------ handlers --- */

static void srvd_hello(struct srv_session *s, const struct proto_hello *h, void *arg)
{
	struct srvd *d = arg;
	struct proto_msg menu = { .type = PROTO_MENU };
	struct db_se se;
	struct svc *v;
	int rc;

	if (d->db == NULL) {
		menu.u.menu.n = 0;
		(void)srv_send_msg(s, &menu);
		srvd_notice(s, "server has no services yet");
		return;
	}
	rc = d->db->ops->se_get(d->db, h->serial, &se);
	if (rc == TB_E_DB_NOT_FOUND) {
		srv_close_with_error(s, PROTO_ERR_UNKNOWN_SE, NULL);
		return;
	}
	if (rc != 0 || (v = calloc(1, sizeof(*v))) == NULL) {
		srv_close_with_error(s, PROTO_ERR_INTERNAL, NULL);
		return;
	}
	v->d = d;
	v->ref = srv_session_ref(s);
	v->all_next = d->all;
	if (d->all != NULL)
		d->all->all_prev = v;
	d->all = v;
	memcpy(v->serial, h->serial, sizeof(v->serial));
	srv_session_set_user(s, v);
	menu.u.menu.n = d->nsvc;
	for (size_t i = 0; i < d->nsvc; i++) {
		struct proto_menu_item *it = &menu.u.menu.items[i];

		it->id = d->svc[i].id;
		it->kind = d->svc[i].kind;
		it->state = se.state == DB_SE_ACTIVE ? PROTO_SVC_OFFERED : PROTO_SVC_BLOCKED;
		it->name = (const uint8_t *)d->svc[i].name;
		it->name_len = strlen(d->svc[i].name);
	}
	(void)srv_send_msg(s, &menu);
}

/* The se's usage history, newest first, one page (a read: no batch, no confirmation). */
static void srvd_history(struct srvd *d, struct srv_session *s, const struct proto_history_req *q)
{
	static struct db_event ev[PROTO_HISTORY_MAX + 1];
	struct proto_msg out = { .type = PROTO_HISTORY };
	size_t n = 0, want = q->max;

	out.u.history.more = 0;
	out.u.history.n = 0;
	if (d->db != NULL &&
	    d->db->ops->history_by_se(d->db, srv_session_serial(s), q->before, ev, want + 1, &n) == 0) {
		out.u.history.more = n > want;
		out.u.history.n = n > want ? want : n;
		for (size_t i = 0; i < out.u.history.n; i++) {
			struct proto_hist_rec *r = &out.u.history.recs[i];

			r->id = ev[i].id;
			r->time = ev[i].time;
			r->kind = ev[i].kind;
			r->service = ev[i].service;
			r->reader = ev[i].reader;
			r->amount = ev[i].amount;
			r->balance = 0; /* not kept per event */
		}
	}
	(void)srv_send_msg(s, &out);
}

static int srvd_frame(struct srv_session *s, const struct proto_msg *m, void *arg)
{
	struct srvd *d = arg;
	struct svc *v = srv_session_user(s);
	struct proto_msg out = { .type = 0 };
	const struct srvd_service *sv;

	switch (m->type) {
	case PROTO_HISTORY_REQ:
		srvd_history(d, s, &m->u.history_req);
		break;
	case PROTO_SELECT:
		if (v == NULL || (sv = srvd_find(d, m->u.select.service)) == NULL) {
			srvd_notice(s, "no such service");
			break;
		}
		if (v->state != SV_IDLE) {
			srvd_notice(s, "busy with the service selected before");
			break;
		}
		if (sv->kind == DB_SVC_EMONEY && sv->item1 > 0 && d->sam != NULL)
			svc_topup_start(v, s, sv);
		else if (sv->kind == DB_SVC_TICKET && d->sam != NULL)
			svc_ticket_start(v, s, sv);
		else if (sv->kind == DB_SVC_PAUTH && d->sam != NULL)
			svc_flag_start(v, s, sv);
		else
			srvd_notice(s, "service not available from the phone yet");
		break;
	case PROTO_RELAY_UP: /* nothing to relay to: the phone fails the relay in the se */
		out.type = PROTO_RELAY_DOWN;
		out.u.relay_down.relay = m->u.relay_up.relay;
		out.u.relay_down.status = PROTO_RELAY_FAIL;
		out.u.relay_down.data = NULL;
		out.u.relay_down.n = 0;
		(void)srv_send_msg(s, &out);
		break;
	case PROTO_SE_RESP:
		if (v == NULL || v->acked == v->seq || m->u.apdu.seq != v->acked + 1 ||
		    m->u.apdu.n < 2) {
			srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP without SE_APDU");
			break;
		}
		v->acked++;
		svc_se_resp(v, s, &m->u.apdu);
		break;
	default: /* PONG: nothing to do */
		break;
	}
	return 0;
}

static void srvd_close(struct srv_session *s, uint16_t code, void *arg)
{
	struct svc *v = srv_session_user(s);

	(void)code;
	(void)arg;
	if (v == NULL)
		return;
	srv_session_set_user(s, NULL);
	svc_close_handle(v);
	v->gone = 1;
	v->refs++;
	svc_put(v);
}

static const struct srv_handlers srvd_handlers = { srvd_hello, srvd_frame, srvd_close };

/* After the shutdown: wait until every session has flushed its ERROR, within bounds. */
static void srvd_drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srvd *d = arg;

	(void)fd;
	(void)what;
	if (srv_count(d->srv) == 0 || d->drain_left_ms <= SRVD_POLL_MS) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	d->drain_left_ms -= SRVD_POLL_MS;
}

static void srvd_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct srvd *d = arg;
	struct timeval tv = { 0, (suseconds_t)(SRVD_POLL_MS * 1000u) };

	(void)what;
	if (d->drain != NULL && event_pending(d->drain, EV_TIMEOUT, NULL))
		return;
	fprintf(stderr, "tapbridge server: signal %d: shutting down\n", (int)sig);
	srv_shutdown(d->srv);
	d->drain = event_new(d->base, -1, EV_PERSIST, srvd_drain_cb, d);
	if (d->drain == NULL || event_add(d->drain, &tv) != 0)
		event_base_loopexit(d->base, NULL);
}

static void srvd_usage(FILE *f)
{
	fprintf(f,
		"usage: tapbridge server --state DIR [--listen HOST:PORT] [--http HOST:PORT|off]\n"
		"                        [--db URL [--sam PATH]]\n"
		"                        [--max-sessions N] [--idle SECONDS] [--quiet]\n"
		"  --state DIR        certificate and key (made on the first start)\n"
		"  --listen HOST:PORT phones, TLS 1.3 (default " SRVD_LISTEN_DEFAULT ")\n"
		"  --http HOST:PORT   the HTTP layer (default " SRVD_HTTP_DEFAULT "), or off\n"
		"  --db URL           the services' database (sqlite:PATH, postgresql://...);\n"
		"                     without it the server offers no services\n"
		"  --sam PATH         the sam's socket (secure channels to the se, receipts)\n"
		"  --max-sessions N   phone sessions at once (default 20000)\n"
		"  --idle SECONDS     close a session silent this long (default 300)\n"
		"  --quiet            no per-session log lines on stderr\n");
}

/* Reads the flags into cfg and the addresses; 0, or the exit status. */
static int srvd_args(int argc, char **argv, const char **state, const char **listen,
		     const char **http, const char **db, const char **sam, struct srv_config *cfg)
{
	const char *max = NULL, *idle = NULL;
	int help = 0, quiet = 0;
	uint32_t v;
	const struct arg_opt opts[] = {
		{ "--state", state, NULL },      { "--listen", listen, NULL },
		{ "--http", http, NULL },        { "--max-sessions", &max, NULL },
		{ "--idle", &idle, NULL },       { "--quiet", NULL, &quiet },
		{ "--help", NULL, &help },       { "--db", db, NULL },
		{ "--sam", sam, NULL },
	};

	if (args_parse("server", argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != 0)
		return 2;
	if (help) {
		srvd_usage(stdout);
		return -1;
	}
	if (*state == NULL || (*sam != NULL && *db == NULL)) {
		srvd_usage(stderr);
		return 2;
	}
	srv_config_default(cfg);
	if (max != NULL && args_u32(max, 1, SRV_SESSIONS_LIMIT, &v) != 0) {
		fprintf(stderr, "tapbridge server: --max-sessions: 1..%u\n", SRV_SESSIONS_LIMIT);
		return 2;
	}
	if (max != NULL)
		cfg->max_sessions = v;
	if (idle != NULL && args_u32(idle, 1, 86400, &v) != 0) {
		fprintf(stderr, "tapbridge server: --idle: 1..86400 seconds\n");
		return 2;
	}
	if (idle != NULL)
		cfg->idle_ms = v * 1000u;
	if (quiet)
		cfg->log = NULL;
	if (*listen == NULL)
		*listen = SRVD_LISTEN_DEFAULT;
	if (*http == NULL)
		*http = SRVD_HTTP_DEFAULT;
	return 0;
}

/* Makes the state directory (0700) when missing, then loads or makes the certificate
 * and prints its fingerprint. */
static int srvd_tls(const char *state, struct tls_server **tls)
{
	char why[512], hex[TLS_FPR_HEX_LEN];
	uint8_t fpr[TLS_FPR_LEN];
	int created = 0, rc;

	if (mkdir(state, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "tapbridge server: %s: %s\n", state, strerror(errno));
		return TB_E_IO;
	}
	rc = tls_server_open(state, tls, &created, why, sizeof(why));
	if (rc != 0) {
		fprintf(stderr, "tapbridge server: %s\n", why);
		return rc;
	}
	tls_server_fingerprint(*tls, fpr);
	if (tls_fpr_hex(fpr, hex) != 0)
		return TB_E_INTERNAL;
	if (created)
		printf("created certificate %s/%s\n", state, TLS_CERT_FILE);
	printf("fingerprint SHA256:%s\n", hex);
	return 0;
}

int cmd_server(int argc, char **argv)
{
	const char *state = NULL, *listen = NULL, *http = NULL, *db = NULL, *sam = NULL;
	char bound[SRV_ADDR_MAX];
	struct srv_config cfg;
	struct tls_server *tls = NULL;
	struct srv_http *web = NULL;
	struct srvd d = { 0 };
	int rc = srvd_args(argc, argv, &state, &listen, &http, &db, &sam, &cfg), status = 1;

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	signal(SIGPIPE, SIG_IGN);
	if (srvd_tls(state, &tls) != 0)
		goto out;
	d.log = cfg.log;
	d.jobs_tail = &d.jobs;
	if (db != NULL && (rc = db_open(db, &d.db)) != 0) {
		fprintf(stderr, "tapbridge server: --db: %s: %s\n", tb_strerror(rc), db_open_error());
		goto out;
	}
	if (d.db != NULL && (rc = srvd_load_services(&d)) != 0) {
		fprintf(stderr, "tapbridge server: services: %s\n", tb_strerror(rc));
		goto out;
	}
	/* Three priorities: libevent's default (1) for I/O, 2 for the group commit, which
	 * so runs after everything else that was ready in the same loop turn. */
	d.base = event_base_new();
	if (d.base == NULL || event_base_priority_init(d.base, 3) != 0)
		goto out;
	d.flush = event_new(d.base, -1, 0, srvd_flush_cb, &d);
	if (d.flush == NULL || event_priority_set(d.flush, 2) != 0)
		goto out;
	if (sam != NULL && (rc = sam_client_new(d.base, sam, SRVD_SAM_INFLIGHT, &d.sam)) != 0) {
		fprintf(stderr, "tapbridge server: --sam %s: %s\n", sam, tb_strerror(rc));
		goto out;
	}
	if (srv_new(d.base, tls, &cfg, &srvd_handlers, &d, &d.srv) != 0)
		goto out;
	/* Signals are caught before the "listening" lines: whoever reads them may signal. */
	d.drain_left_ms = cfg.close_ms + 1000u;
	d.sig_int = evsignal_new(d.base, SIGINT, srvd_signal_cb, &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, srvd_signal_cb, &d);
	if (d.sig_int == NULL || d.sig_term == NULL || event_add(d.sig_int, NULL) != 0 ||
	    event_add(d.sig_term, NULL) != 0)
		goto out;
	if (srv_listen(d.srv, listen, bound) != 0) {
		fprintf(stderr, "tapbridge server: cannot listen on %s: %s\n", listen, strerror(errno));
		goto out;
	}
	printf("listening phones %s\n", bound);
	if (strcmp(http, "off") != 0) {
		if (srv_http_new(d.base, http, cfg.log, &web, bound) != 0) {
			fprintf(stderr, "tapbridge server: cannot listen on %s: %s\n", http, strerror(errno));
			goto out;
		}
		printf("listening http %s\n", bound);
	}
	fflush(stdout);
	if (event_base_dispatch(d.base) == 0)
		status = 0;
out:
	if (d.sig_int != NULL)
		event_free(d.sig_int);
	if (d.sig_term != NULL)
		event_free(d.sig_term);
	if (d.drain != NULL)
		event_free(d.drain);
	if (d.flush != NULL)
		event_free(d.flush);
	srv_http_free(web);
	srv_free(d.srv);
	sam_client_free(d.sam);
	while (d.calls != NULL) {
		struct svc_call *c = d.calls;

		d.calls = c->next;
		free(c);
	}
	while (d.all != NULL)
		svc_free(d.all);
	if (d.db != NULL && d.log != NULL)
		fprintf(d.log, "srv event=stats batches=%llu batched=%llu batch_max=%llu "
			"commit_failed=%llu\n", (unsigned long long)d.batches,
			(unsigned long long)d.batched, (unsigned long long)d.batch_max,
			(unsigned long long)d.commit_fail);
	db_close(d.db);
	if (d.base != NULL) {
		event_base_loop(d.base, EVLOOP_NONBLOCK); /* see srv_free() */
		event_base_free(d.base);
	}
	tls_server_free(tls);
	return status;
}
