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
 * with an ERROR and exit 0. Log lines carry no keys, APDU data or personal data.
 * The per-phone decisions are the engine's (server/svc.c), run on this loop by
 * io/srv_svc_io.c; this file holds the command, the menu and the frame dispatch. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "cmd.h"
#include "io/db_io.h"
#include "io/portal_io.h"
#include "io/sam_client.h"
#include "io/srv_http.h"
#include "io/srv_net.h"
#include "io/srv_svc_io.h"
#include "io/tls.h"
#include "lib/err.h"
#include "server/proto.h"

#define SRVD_LISTEN_DEFAULT "127.0.0.1:8443"
#define SRVD_HTTP_DEFAULT "127.0.0.1:8080"
#define SRVD_POLL_MS 50u
#define SRVD_SAM_INFLIGHT 4096u
#define SRVD_SVC_SCAN 256u       /* service ids 1..this are looked up at start */
#define SVC_TOPUP_ITEM 1u        /* e-money: price item 1 is the top-up amount */

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
	struct srv_svc_host host;  /* the phone sessions' services (io/srv_svc_io.h) */
	struct portal_srv *portal; /* NULL: no portal (--portal off) */
};

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

/* ------------------------------------------------------------ handlers --- */

static void srvd_hello(struct srv_session *s, const struct proto_hello *h, void *arg)
{
	struct srvd *d = arg;
	struct proto_msg menu = { .type = PROTO_MENU };
	struct db_se se;
	struct srv_svc *x;
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
	if (rc != 0 || (x = srv_svc_open(&d->host, s, h->serial)) == NULL) {
		srv_close_with_error(s, PROTO_ERR_INTERNAL, NULL);
		return;
	}
	srv_session_set_user(s, x);
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
	/* The next reader channel's host challenge waits at the phone: one round trip less
	 * while the phone is at a reader. */
	srv_svc_stage(x);
	/* A lock or unlock asked for on the portal takes effect now, at this contact. */
	if (se.pending == DB_SE_LOCK_PENDING || se.pending == DB_SE_UNLOCK_PENDING)
		srv_svc_lock(x, se.pending == DB_SE_LOCK_PENDING);
}

/* The se's usage history, newest first, one page (a read: no batch, no confirmation). */
/* A one-time portal login link for this phone's se, over its authenticated session (the
 * link itself is the credential: it goes nowhere else and is never logged). */
static void srvd_portal_link(struct srvd *d, struct srv_session *s)
{
	char url[PROTO_NOTICE_MAX + 1];
	int rc;

	if (d->portal == NULL) {
		srvd_notice(s, "the portal is not open on this server");
		return;
	}
	rc = portal_customer_link(d->portal, srv_session_serial(s), url, sizeof(url));
	if (rc != 0) {
		srvd_notice(s, "no portal link now, try again");
		return;
	}
	srv_log(s, "portal_link", "ttl=%u", PORTAL_LINK_TTL_S);
	(void)srv_send(s, PROTO_PORTAL_LINK, (const uint8_t *)url, strlen(url));
}

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
	struct srv_svc *x = srv_session_user(s);
	struct proto_msg out = { .type = 0 };
	const struct srvd_service *sv;
	struct svc_offer o;

	switch (m->type) {
	case PROTO_HISTORY_REQ:
		srvd_history(d, s, &m->u.history_req);
		break;
	case PROTO_PORTAL_REQ:
		srvd_portal_link(d, s);
		break;
	case PROTO_SELECT:
		if (x == NULL) {
			srvd_notice(s, "no such service");
			break;
		}
		if ((sv = srvd_find(d, m->u.select.service)) != NULL) {
			o.id = sv->id;
			o.kind = sv->kind;
			o.item1 = sv->item1;
		}
		srv_svc_select_op(x, sv != NULL ? &o : NULL, m->u.select.op);
		break;
	case PROTO_RELAY_UP:
		if (x != NULL) {
			srv_svc_relay_up(x, &m->u.relay_up);
			break;
		}
		/* no services: the phone fails the relay in the se */
		out.type = PROTO_RELAY_DOWN;
		out.u.relay_down.relay = m->u.relay_up.relay;
		out.u.relay_down.status = PROTO_RELAY_FAIL;
		out.u.relay_down.data = NULL;
		out.u.relay_down.n = 0;
		(void)srv_send_msg(s, &out);
		break;
	case PROTO_SE_RESP:
		if (x == NULL) {
			srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP without SE_APDU");
			break;
		}
		srv_svc_se_resp(x, &m->u.apdu);
		break;
	default: /* PONG: nothing to do */
		break;
	}
	return 0;
}

static void srvd_close(struct srv_session *s, uint16_t code, void *arg)
{
	struct srv_svc *x = srv_session_user(s);

	(void)code;
	(void)arg;
	if (x == NULL)
		return;
	srv_session_set_user(s, NULL);
	srv_svc_leave(x);
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
		"                        [--db URL [--sam PATH] [--portal HOST:PORT]]\n"
		"                        [--max-sessions N] [--idle SECONDS] [--quiet]\n"
		"  --state DIR        certificate and key (made on the first start)\n"
		"  --listen HOST:PORT phones, TLS 1.3 (default " SRVD_LISTEN_DEFAULT ")\n"
		"  --http HOST:PORT   the HTTP layer (default " SRVD_HTTP_DEFAULT "), or off\n"
		"  --db URL           the services' database (sqlite:PATH, postgresql://...);\n"
		"                     without it the server offers no services\n"
		"  --sam PATH         the sam's socket (secure channels to the se, receipts)\n"
		"  --portal HOST:PORT the customer/operator web portal, HTTPS (default off)\n"
		"  --max-sessions N   phone sessions at once (default 20000)\n"
		"  --idle SECONDS     close a session silent this long (default 300)\n"
		"  --quiet            no per-session log lines on stderr\n");
}

/* Reads the flags into cfg and the addresses; 0, or the exit status. */
static int srvd_args(int argc, char **argv, const char **state, const char **listen,
		     const char **http, const char **db, const char **sam, const char **portal,
		     struct srv_config *cfg)
{
	const char *max = NULL, *idle = NULL;
	int help = 0, quiet = 0;
	uint32_t v;
	const struct arg_opt opts[] = {
		{ "--state", state, NULL },      { "--listen", listen, NULL },
		{ "--http", http, NULL },        { "--max-sessions", &max, NULL },
		{ "--idle", &idle, NULL },       { "--quiet", NULL, &quiet },
		{ "--help", NULL, &help },       { "--db", db, NULL },
		{ "--sam", sam, NULL },          { "--portal", portal, NULL },
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
	const char *portal = NULL;
	struct portal_srv *web_portal = NULL;
	char bound[SRV_ADDR_MAX];
	struct srv_config cfg;
	struct tls_server *tls = NULL;
	struct srv_http *web = NULL;
	struct srvd d = { 0 };
	int rc = srvd_args(argc, argv, &state, &listen, &http, &db, &sam, &portal, &cfg), status = 1;

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	signal(SIGPIPE, SIG_IGN);
	if (srvd_tls(state, &tls) != 0)
		goto out;
	d.log = cfg.log;
	srv_svc_host_init(&d.host);
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
	d.flush = event_new(d.base, -1, 0, srv_svc_flush_cb, &d.host);
	if (d.flush == NULL || event_priority_set(d.flush, 2) != 0)
		goto out;
	if (sam != NULL && (rc = sam_client_new(d.base, sam, SRVD_SAM_INFLIGHT, &d.sam)) != 0) {
		fprintf(stderr, "tapbridge server: --sam %s: %s\n", sam, tb_strerror(rc));
		goto out;
	}
	if (srv_new(d.base, tls, &cfg, &srvd_handlers, &d, &d.srv) != 0)
		goto out;
	d.host.srv = d.srv;
	d.host.db = d.db;
	d.host.sam = d.sam;
	d.host.log = d.log;
	d.host.flush = d.flush;
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
	if (portal != NULL && strcmp(portal, "off") != 0) {
		struct portal_cfg pc = { portal, state, NULL, tls, d.db, cfg.log };

		if (d.db == NULL) {
			fprintf(stderr, "tapbridge server: --portal needs --db\n");
			goto out;
		}
		if ((rc = portal_start(d.base, &pc, &web_portal, bound)) != 0) {
			fprintf(stderr, "tapbridge server: portal on %s: %s\n", portal, tb_strerror(rc));
			goto out;
		}
		d.portal = web_portal;
		printf("listening portal https://%s\n", bound);
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
	portal_stop(web_portal);
	srv_http_free(web);
	srv_free(d.srv);
	sam_client_free(d.sam);
	srv_svc_host_release(&d.host);
	if (d.db != NULL && d.log != NULL)
		fprintf(d.log, "srv event=stats batches=%llu batched=%llu batch_max=%llu "
			"commit_failed=%llu\n", (unsigned long long)d.host.batches,
			(unsigned long long)d.host.batched, (unsigned long long)d.host.batch_max,
			(unsigned long long)d.host.commit_fail);
	db_close(d.db);
	if (d.base != NULL) {
		event_base_loop(d.base, EVLOOP_NONBLOCK); /* see srv_free() */
		event_base_free(d.base);
	}
	tls_server_free(tls);
	return status;
}

