/* server.c - `tapbridge server`: the service server's transport on one libevent loop
 * (TLS 1.3 phone sessions, the HTTP layer), with placeholder handlers until the services
 * are wired in: they say plainly that there are no services yet, never pretend otherwise.
 * What stays true: the certificate is made once and its fingerprint printed at every
 * start; SIGINT/SIGTERM end every session with an ERROR and exit 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "cmd.h"
#include "io/srv_http.h"
#include "io/srv_net.h"
#include "io/tls.h"
#include "lib/err.h"
#include "server/proto.h"

#define SRVD_LISTEN_DEFAULT "127.0.0.1:8443"
#define SRVD_HTTP_DEFAULT "127.0.0.1:8080"
#define SRVD_POLL_MS 50u

struct srvd {
	struct event_base *base;
	struct srv *srv;
	struct event *sig_int, *sig_term, *drain;
	unsigned drain_left_ms;
};

static void srvd_notice(struct srv_session *s, const char *text)
{
	(void)srv_send(s, PROTO_NOTICE, (const uint8_t *)text, strlen(text));
}

static void srvd_hello(struct srv_session *s, const struct proto_hello *h, void *arg)
{
	struct proto_msg menu = { .type = PROTO_MENU };

	(void)h;
	(void)arg;
	menu.u.menu.n = 0;
	(void)srv_send_msg(s, &menu);
	srvd_notice(s, "server has no services yet");
}

static int srvd_frame(struct srv_session *s, const struct proto_msg *m, void *arg)
{
	struct proto_msg out = { .type = 0 };

	(void)arg;
	switch (m->type) {
	case PROTO_HISTORY_REQ:
		out.type = PROTO_HISTORY;
		out.u.history.more = 0;
		out.u.history.n = 0;
		(void)srv_send_msg(s, &out);
		break;
	case PROTO_SELECT:
		srvd_notice(s, "no such service");
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
		srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP without SE_APDU");
		break;
	default: /* PONG: nothing to do */
		break;
	}
	return 0;
}

static const struct srv_handlers srvd_handlers = { srvd_hello, srvd_frame, NULL };

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
		"                        [--max-sessions N] [--idle SECONDS] [--quiet]\n"
		"  --state DIR        certificate and key (made on the first start)\n"
		"  --listen HOST:PORT phones, TLS 1.3 (default " SRVD_LISTEN_DEFAULT ")\n"
		"  --http HOST:PORT   the HTTP layer (default " SRVD_HTTP_DEFAULT "), or off\n"
		"  --max-sessions N   phone sessions at once (default 20000)\n"
		"  --idle SECONDS     close a session silent this long (default 300)\n"
		"  --quiet            no per-session log lines on stderr\n");
}

/* Reads the flags into cfg and the addresses; 0, or the exit status. */
static int srvd_args(int argc, char **argv, const char **state, const char **listen,
		     const char **http, struct srv_config *cfg)
{
	const char *max = NULL, *idle = NULL;
	int help = 0, quiet = 0;
	uint32_t v;
	const struct arg_opt opts[] = {
		{ "--state", state, NULL },      { "--listen", listen, NULL },
		{ "--http", http, NULL },        { "--max-sessions", &max, NULL },
		{ "--idle", &idle, NULL },       { "--quiet", NULL, &quiet },
		{ "--help", NULL, &help },
	};

	if (args_parse("server", argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != 0)
		return 2;
	if (help) {
		srvd_usage(stdout);
		return -1;
	}
	if (*state == NULL) {
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
	const char *state = NULL, *listen = NULL, *http = NULL;
	char bound[SRV_ADDR_MAX];
	struct srv_config cfg;
	struct tls_server *tls = NULL;
	struct srv_http *web = NULL;
	struct srvd d = { 0 };
	int rc = srvd_args(argc, argv, &state, &listen, &http, &cfg), status = 1;

	if (rc != 0)
		return rc < 0 ? 0 : rc;
	signal(SIGPIPE, SIG_IGN);
	if (srvd_tls(state, &tls) != 0)
		goto out;
	d.base = event_base_new();
	if (d.base == NULL || srv_new(d.base, tls, &cfg, &srvd_handlers, &d, &d.srv) != 0)
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
	srv_http_free(web);
	srv_free(d.srv);
	if (d.base != NULL) {
		event_base_loop(d.base, EVLOOP_NONBLOCK); /* see srv_free() */
		event_base_free(d.base);
	}
	tls_server_free(tls);
	return status;
}
