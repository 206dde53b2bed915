/* se.c - `tapbridge se`: the secure element process. One libevent loop wires the se
 * core to its transports (contactless: pcscd's vpcd driver and/or a direct socket;
 * the IC_I/F link to the phone) and runs the relay between them.
 * What stays true: every command gets exactly one answer on the transport it came
 * from, except one made stale by a power event, which gets none; a relayed ENVELOPE is
 * answered by the phone, or failed (no phone, phone gone, phone gave up, timeout);
 * after every core call the phone is told what the core queued, when it is there. */
#include <signal.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "cmd.h"
#include "io/framed.h"
#include "io/se_link.h"
#include "io/se_listen.h"
#include "io/store_file.h"
#include "io/vpcd.h"
#include "lib/crypto.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/sw.h"
#include "se/se.h"

#define SED_RELAY_TIMEOUT_MS 5000u
#define SED_RELAY_TIMEOUT_MAX_MS 600000u

enum sed_port { SED_NONE = 0, SED_VPCD, SED_LISTEN };

static const char *const sed_port_name[] = { "-", "vpcd", "listen" };

struct sed {
	struct event_base *base;
	struct se se;                /* the core: no heap of its own, lives here */
	struct se_config cfg;
	struct store_file sf;
	int sf_open;
	struct vpcd *vpcd;
	struct se_listen *listen;
	struct se_link *link;
	struct event *relay_timer;
	struct event *sig_int, *sig_term;
	enum sed_port relay_port;    /* the transport whose ENVELOPE waits for the phone */
	uint32_t relay_id;           /* names that relay to the phone */
	unsigned relay_timeout_ms;
	int trace;
	uint8_t resp[SE_RESP_MAX];
};

static struct sed D;

static uint32_t sed_now(void)
{
	return (uint32_t)time(NULL);
}

static int sed_rng(void *ctx, uint8_t *out, size_t n)
{
	(void)ctx;
	return crypto_random(out, n);
}

/* --trace: headers and status words only, never data. */
static void sed_trace_cmd(const char *where, const uint8_t *cmd, size_t n)
{
	if (!D.trace)
		return;
	if (n >= 4)
		fprintf(stderr, "se %s> %02X %02X %02X %02X (%zu bytes)\n", where, cmd[0], cmd[1],
			cmd[2], cmd[3], n);
	else
		fprintf(stderr, "se %s> (%zu bytes)\n", where, n);
}

static void sed_trace_resp(const char *where, const uint8_t *resp, size_t n)
{
	if (D.trace && n >= 2)
		fprintf(stderr, "se %s< %02X%02X (%zu bytes)\n", where, resp[n - 2], resp[n - 1], n);
}

static void sed_port_reply(enum sed_port port, const uint8_t *resp, size_t n)
{
	int rc = TB_E_INVAL;

	sed_trace_resp(sed_port_name[port], resp, n);
	if (port == SED_VPCD)
		rc = vpcd_reply(D.vpcd, resp, n);
	else if (port == SED_LISTEN)
		rc = se_listen_reply(D.listen, resp, n);
	if (rc != 0)
		fprintf(stderr, "tapbridge se: %s: reply not sent: %s\n", sed_port_name[port],
			tb_strerror(rc));
}

/* Tells the phone everything the core queued; without a phone the core keeps it. */
static void sed_pump(void)
{
	struct se_event ev;
	int rc;

	while (se_link_connected(D.link) && se_next_event(&D.se, &ev)) {
		if ((rc = se_link_event(D.link, &ev, D.relay_id)) != 0)
			fprintf(stderr, "tapbridge se: link: event %d not sent: %s\n", (int)ev.kind,
				tb_strerror(rc));
	}
}

static void sed_relay_end(void)
{
	D.relay_port = SED_NONE;
	evtimer_del(D.relay_timer);
}

/* The ENVELOPE in flight is answered SE_SW_RELAY_FAILED (through the reader's channel). */
static void sed_relay_fail_now(const char *why)
{
	enum sed_port port = D.relay_port;
	struct wr w = wr_init(D.resp, sizeof(D.resp));
	int rc;

	if (port == SED_NONE)
		return;
	sed_relay_end();
	if ((rc = se_relay_fail(&D.se, &w)) != 0) {
		fprintf(stderr, "tapbridge se: relay %u: %s\n", (unsigned)D.relay_id,
			tb_strerror(rc));
		return;
	}
	fprintf(stderr, "tapbridge se: relay %u failed: %s\n", (unsigned)D.relay_id, why);
	sed_port_reply(port, D.resp, w.len);
	sed_pump();
}

static void sed_relay_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	sed_relay_fail_now("the phone did not answer in time");
}

/* --------------------------------------------------------------- contactless --- */

static void sed_contactless(enum sed_port port, const uint8_t *cmd, size_t n)
{
	struct wr w = wr_init(D.resp, sizeof(D.resp));
	struct timeval tv;
	int rc;

	sed_trace_cmd(sed_port_name[port], cmd, n);
	rc = se_apdu(&D.se, SE_IF_CONTACTLESS, cmd, n, sed_now(), &w);
	if (rc == SE_PENDING_RELAY) {
		/* The answer waits for the phone; the loop goes on serving everything else. */
		D.relay_port = port;
		D.relay_id++;
		tv.tv_sec = (time_t)(D.relay_timeout_ms / 1000u);
		tv.tv_usec = (suseconds_t)(D.relay_timeout_ms % 1000u) * 1000;
		evtimer_add(D.relay_timer, &tv);
		if (!se_link_connected(D.link))
			sed_relay_fail_now("no phone connected");
		else
			sed_pump();
		return;
	}
	if (rc != 0) {
		fprintf(stderr, "tapbridge se: contactless: %s\n", tb_strerror(rc));
		w.len = 0;
		(void)wr_u16be(&w, SW_UNKNOWN);
	}
	sed_port_reply(port, D.resp, w.len);
	sed_pump();
}

/* Power and presence on a contactless transport. Both transports feed the one
 * contactless interface, as two readers in one field would. */
static void sed_field(enum sed_port port, int link_up, int off)
{
	enum sed_port had = D.relay_port;

	if (link_up)
		return; /* vpcd connected: the card is inserted, power comes next */
	se_power(&D.se, SE_IF_CONTACTLESS, off ? SE_POWER_OFF : SE_POWER_RESET);
	if (had == SED_NONE)
		return;
	/* The core dropped the relay. Its own transport must not answer the stale
	 * command; the other one still waits and gets the failure. */
	sed_relay_end();
	fprintf(stderr, "tapbridge se: relay %u dropped: %s power event\n", (unsigned)D.relay_id,
		sed_port_name[port]);
	if (had != port) {
		uint8_t sw[2] = { (uint8_t)(SE_SW_RELAY_FAILED >> 8), (uint8_t)SE_SW_RELAY_FAILED };

		sed_port_reply(had, sw, sizeof(sw));
	}
}

static void sed_vpcd_apdu(struct vpcd *v, const uint8_t *cmd, size_t n, void *arg)
{
	(void)v;
	(void)arg;
	sed_contactless(SED_VPCD, cmd, n);
}

static void sed_vpcd_event(struct vpcd *v, enum vpcd_event ev, void *arg)
{
	(void)v;
	(void)arg;
	if (ev == VPCD_EV_LINK_UP || ev == VPCD_EV_LINK_DOWN)
		fprintf(stderr, "tapbridge se: vpcd link %s\n", ev == VPCD_EV_LINK_UP ? "up" : "down");
	sed_field(SED_VPCD, ev == VPCD_EV_LINK_UP,
		  ev == VPCD_EV_LINK_DOWN || ev == VPCD_EV_POWER_OFF);
}

static void sed_listen_apdu(struct se_listen *l, const uint8_t *cmd, size_t n, void *arg)
{
	(void)l;
	(void)arg;
	sed_contactless(SED_LISTEN, cmd, n);
}

static void sed_listen_event(struct se_listen *l, enum se_listen_event ev, void *arg)
{
	(void)l;
	(void)arg;
	/* A reader that connects brings a fresh field: the card powers up. */
	sed_field(SED_LISTEN, 0, ev == SE_LISTEN_EV_DOWN || ev == SE_LISTEN_EV_POWER_OFF);
}

/* --------------------------------------------------------------- the phone --- */

static void sed_link_up(struct se_link *l, void *arg)
{
	(void)l;
	(void)arg;
	fprintf(stderr, "tapbridge se: phone connected\n");
	sed_pump();
}

/* A new phone connection must not inherit the last one's host session. */
static void sed_link_down(struct se_link *l, void *arg)
{
	(void)l;
	(void)arg;
	fprintf(stderr, "tapbridge se: phone disconnected\n");
	se_power(&D.se, SE_IF_HOST, SE_POWER_OFF);
	sed_relay_fail_now("the phone disconnected");
}

static void sed_link_apdu(struct se_link *l, const uint8_t *cmd, size_t n, void *arg)
{
	struct wr w = wr_init(D.resp, sizeof(D.resp));
	int rc;

	(void)arg;
	sed_trace_cmd("host", cmd, n);
	rc = se_apdu(&D.se, SE_IF_HOST, cmd, n, sed_now(), &w);
	if (rc != 0) { /* the host interface never relays */
		fprintf(stderr, "tapbridge se: host: %s\n", tb_strerror(rc));
		w.len = 0;
		(void)wr_u16be(&w, SW_UNKNOWN);
	}
	sed_trace_resp("host", D.resp, w.len);
	if ((rc = se_link_response(l, D.resp, w.len)) != 0)
		fprintf(stderr, "tapbridge se: link: response not sent: %s\n", tb_strerror(rc));
	sed_pump();
}

static void sed_link_power(struct se_link *l, uint8_t what, void *arg)
{
	(void)l;
	(void)arg;
	se_power(&D.se, SE_IF_HOST, what == 0x00 ? SE_POWER_OFF : SE_POWER_RESET);
}

/* An answer for a relay that has ended (timeout, power event) is late: dropped. */
static int sed_relay_current(uint32_t id, const char *what)
{
	if (D.relay_port != SED_NONE && id == D.relay_id)
		return 1;
	fprintf(stderr, "tapbridge se: relay %s for %u ignored: not the pending relay\n", what,
		(unsigned)id);
	return 0;
}

static void sed_link_relay_answer(struct se_link *l, uint32_t id, const uint8_t *p, size_t n,
				  void *arg)
{
	enum sed_port port = D.relay_port;
	struct wr w = wr_init(D.resp, sizeof(D.resp));
	int rc;

	(void)l;
	(void)arg;
	if (!sed_relay_current(id, "answer"))
		return;
	sed_relay_end();
	if ((rc = se_relay_answer(&D.se, p, n, &w)) != 0) {
		fprintf(stderr, "tapbridge se: relay %u: %s\n", (unsigned)id, tb_strerror(rc));
		return;
	}
	sed_port_reply(port, D.resp, w.len);
	sed_pump();
}

static void sed_link_relay_fail(struct se_link *l, uint32_t id, void *arg)
{
	(void)l;
	(void)arg;
	if (sed_relay_current(id, "failure"))
		sed_relay_fail_now("the phone could not relay it");
}

/* -------------------------------------------------------------- the process --- */

static void sed_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	fprintf(stderr, "tapbridge se: signal %d: stopping\n", (int)sig);
	event_base_loopexit(D.base, NULL);
}

struct sed_opts {
	const char *image, *vpcd, *listen, *link, *link_tty, *timeout;
	int trace, help;
};

static void sed_usage(FILE *f)
{
	fprintf(f,
		"usage: tapbridge se --image FILE [--vpcd HOST[:PORT]] [--listen tcp:HOST:PORT|unix:PATH]\n"
		"                    [--link PATH | --link-tty DEVICE] [--relay-timeout-ms N] [--trace]\n"
		"  at least one contactless transport (--vpcd, --listen); --link is the unix socket\n"
		"  the se listens on for its phone. Stops cleanly on SIGINT/SIGTERM.\n");
}

static int sed_parse(int argc, char **argv, struct sed_opts *o)
{
	const struct arg_opt opts[] = {
		{ "--image", &o->image, NULL },       { "--vpcd", &o->vpcd, NULL },
		{ "--listen", &o->listen, NULL },     { "--link", &o->link, NULL },
		{ "--link-tty", &o->link_tty, NULL }, { "--relay-timeout-ms", &o->timeout, NULL },
		{ "--trace", NULL, &o->trace },       { "--help", NULL, &o->help },
	};
	uint32_t ms = SED_RELAY_TIMEOUT_MS;
	struct framed_addr addr;
	uint16_t port;

	memset(o, 0, sizeof(*o));
	if (args_parse("se", argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != 0)
		return 2;
	if (o->help) {
		sed_usage(stdout);
		return 1;
	}
	if (o->image == NULL || (o->vpcd == NULL && o->listen == NULL) ||
	    (o->link != NULL && o->link_tty != NULL)) {
		sed_usage(stderr);
		return 2;
	}
	if (o->listen != NULL && framed_addr_parse(o->listen, &addr) != 0) {
		fprintf(stderr, "tapbridge se: --listen wants tcp:HOST:PORT or unix:PATH\n");
		return 2;
	}
	if (o->vpcd != NULL && vpcd_parse_target(o->vpcd, addr.host, sizeof(addr.host), &port) != 0) {
		fprintf(stderr, "tapbridge se: --vpcd wants HOST[:PORT]\n");
		return 2;
	}
	if (o->timeout != NULL && args_u32(o->timeout, 1, SED_RELAY_TIMEOUT_MAX_MS, &ms) != 0) {
		fprintf(stderr, "tapbridge se: --relay-timeout-ms wants 1..%u\n",
			SED_RELAY_TIMEOUT_MAX_MS);
		return 2;
	}
	D.relay_timeout_ms = ms;
	D.trace = o->trace;
	return 0;
}

static int sed_transports(const struct sed_opts *o, char *vpcd_where, size_t cap)
{
	static const struct vpcd_handler vh = { sed_vpcd_apdu, sed_vpcd_event };
	static const struct se_listen_handler lh = { sed_listen_apdu, sed_listen_event };
	static const struct se_link_handler kh = { sed_link_up, sed_link_down, sed_link_apdu,
						   sed_link_power, sed_link_relay_answer,
						   sed_link_relay_fail };
	struct se_link_config kc = { o->link, o->link_tty };
	struct vpcd_config vc;
	char host[256];
	int rc;

	if ((o->link != NULL || o->link_tty != NULL) &&
	    (rc = se_link_new(D.base, &kc, &kh, NULL, &D.link)) != 0) {
		fprintf(stderr, "tapbridge se: --link%s %s: %s\n", o->link != NULL ? "" : "-tty",
			o->link != NULL ? o->link : o->link_tty, tb_strerror(rc));
		return rc;
	}
	errno = 0;
	if (o->listen != NULL && (rc = se_listen_new(D.base, o->listen, &lh, NULL, &D.listen)) != 0) {
		fprintf(stderr, "tapbridge se: --listen %s: %s%s%s\n", o->listen, tb_strerror(rc),
			rc == TB_E_IO && errno != 0 ? ": " : "",
			rc == TB_E_IO && errno != 0 ? strerror(errno) : "");
		return rc;
	}
	if (o->vpcd == NULL)
		return 0;
	memset(&vc, 0, sizeof(vc));
	vc.host = host;
	if ((rc = vpcd_parse_target(o->vpcd, host, sizeof(host), &vc.port)) != 0 ||
	    (rc = vpcd_new(D.base, &vc, &vh, NULL, &D.vpcd)) != 0) {
		fprintf(stderr, "tapbridge se: --vpcd %s: %s\n", o->vpcd, tb_strerror(rc));
		return rc;
	}
	(void)snprintf(vpcd_where, cap, "%s:%u", host, (unsigned)vc.port);
	return 0;
}

static int sed_start(const struct sed_opts *o)
{
	char serial[2 * SE_SERIAL_LEN + 1], atr[2 * VPCD_ATR_MAX + 1], where[300] = "";
	int rc;

	if ((rc = store_file_open(&D.sf, o->image)) != 0) {
		fprintf(stderr, "tapbridge se: --image %s: %s (make one with `tapbridge admin "
				"se-init`)\n", o->image, tb_strerror(rc));
		return rc;
	}
	D.sf_open = 1;
	if (image_lock(D.sf.fd) != 0) {
		fprintf(stderr, "tapbridge se: %s is in use by another process\n", o->image);
		return TB_E_IO;
	}
	D.cfg.rng = sed_rng;
	if ((rc = se_init(&D.se, &D.cfg, &D.sf.store)) != 0) {
		fprintf(stderr, "tapbridge se: %s: %s\n", o->image, tb_strerror(rc));
		return rc;
	}
	D.base = event_base_new();
	if (D.base == NULL)
		return TB_E_IO;
	D.relay_timer = evtimer_new(D.base, sed_relay_timeout_cb, NULL);
	D.sig_int = evsignal_new(D.base, SIGINT, sed_signal_cb, NULL);
	D.sig_term = evsignal_new(D.base, SIGTERM, sed_signal_cb, NULL);
	if (D.relay_timer == NULL || D.sig_int == NULL || D.sig_term == NULL ||
	    evsignal_add(D.sig_int, NULL) != 0 || evsignal_add(D.sig_term, NULL) != 0)
		return TB_E_IO;
	if ((rc = sed_transports(o, where, sizeof(where))) != 0)
		return rc;
	(void)hex_encode(D.se.img.serial, SE_SERIAL_LEN, HEX_PUBLIC, serial, sizeof(serial));
	(void)hex_encode(vpcd_atr_default, VPCD_ATR_DEFAULT_LEN, HEX_PUBLIC, atr, sizeof(atr));
	printf("tapbridge se: serial %s, ATR %s, contactless%s%s%s%s, link %s%s, relay timeout %u ms\n",
	       serial, atr, o->vpcd != NULL ? " vpcd " : "", where,
	       o->listen != NULL ? " listen " : "", o->listen != NULL ? o->listen : "",
	       o->link != NULL ? "unix:" : o->link_tty != NULL ? "tty:" : "none",
	       o->link != NULL ? o->link : o->link_tty != NULL ? o->link_tty : "",
	       D.relay_timeout_ms);
	fflush(stdout);
	return 0;
}

static void sed_stop(void)
{
	vpcd_free(D.vpcd);
	se_listen_free(D.listen);
	se_link_free(D.link);
	if (D.relay_timer != NULL)
		event_free(D.relay_timer);
	if (D.sig_int != NULL)
		event_free(D.sig_int);
	if (D.sig_term != NULL)
		event_free(D.sig_term);
	if (D.base != NULL)
		event_base_free(D.base);
	if (D.sf_open)
		store_file_close(&D.sf);
	ct_wipe(&D, sizeof(D));
}

int cmd_se(int argc, char **argv)
{
	struct sed_opts o;
	int rc;

	memset(&D, 0, sizeof(D));
	if ((rc = sed_parse(argc, argv, &o)) != 0)
		return rc == 1 ? 0 : rc;
	signal(SIGPIPE, SIG_IGN); /* a peer that hangs up is an error code, not a death */
	rc = sed_start(&o) == 0 && event_base_dispatch(D.base) >= 0 ? 0 : 1;
	sed_stop();
	return rc;
}
