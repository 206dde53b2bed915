/* reader.c - `tapbridge reader`: the shop terminal (IC_R/W 15). Wires the reader core
 * (src/reader) to a card port (PC/SC, or the se's direct contactless socket), its key
 * file and its durable state directory, and prints the core's lines. It has no network
 * path to the server: everything online goes through the se's relay.
 * What stays true: the exit status is 0 only when every tap ended in "reader: done". */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "io/framed.h"
#include "io/pcsc.h"
#include "io/reader_files.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/frame.h"
#include "reader/rdr.h"

#define RD_LINK_MAX (1u + 1100u)     /* N of the direct link's frames (docs/protocol.md) */
#define RD_RESP_TIMEOUT_MS 30000     /* one APDU, a relayed ENVELOPE included */
#define RD_REMOVE_WAIT_MS 1000

struct rd_port {
	struct pcsc *pcsc;
	struct framed_addr addr;     /* --connect */
	int fd;                      /* --connect: the connection of this tap, or -1 */
};

static struct {
	struct rdr_keys keys;
	struct rdr_store store;
	struct rdr r;
	struct rdr_cfg cfg;
	const char *state_dir;
	struct rd_port port;
	uint8_t fbuf[RD_LINK_MAX];
} G;

static long long rd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rd_say(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
	fflush(stdout);
}

static int rd_save(void *ctx, const struct rdr_store *s)
{
	(void)ctx;
	return reader_state_save(G.state_dir, s);
}

/* ----------------------------------------------- the direct contactless link --- */

static int link_connect(const struct framed_addr *a)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int fd = -1, one = 1;

	if (a->is_unix) {
		struct sockaddr_un sa;

		memset(&sa, 0, sizeof(sa));
		sa.sun_family = AF_UNIX;
		memcpy(sa.sun_path, a->path, sizeof(sa.sun_path) - 1);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
			close(fd);
			fd = -1;
		}
		return fd;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", (unsigned)a->port);
	if (getaddrinfo(a->host, port, &hints, &res) != 0)
		return -1;
	for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Sends one APDU frame, reads the RESPONSE frame. */
static int link_xmit(int fd, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap, size_t *got)
{
	uint8_t out[FRAME_HDR_LEN + RD_LINK_MAX];
	struct wr w = wr_init(out, sizeof(out));
	struct frame_rd f;
	long long end = rd_now_ms() + RD_RESP_TIMEOUT_MS;
	const uint8_t *payload = NULL;
	size_t pn = 0;
	uint8_t type = 0;

	if (frame_write(&w, 0x01, cmd, n, RD_LINK_MAX) != 0 || reader_fd_write_all(fd, out, w.len) != 0 ||
	    frame_rd_init(&f, G.fbuf, sizeof(G.fbuf), RD_LINK_MAX, NULL) != 0)
		return TB_E_IO;
	while (frame_rd_state(&f) == FRAME_NEED_MORE) {
		struct pollfd pf = { fd, POLLIN, 0 };
		uint8_t buf[512];
		long long left = end - rd_now_ms();
		ssize_t k;
		size_t off = 0;

		if (left <= 0 || poll(&pf, 1, (int)left) != 1)
			return TB_E_IO;
		k = read(fd, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return TB_E_IO;
		/* The se answers one APDU with one frame: bytes past it would be a protocol error. */
		off = frame_rd_push(&f, buf, (size_t)k);
		if (off != (size_t)k)
			return TB_E_IO;
	}
	if (frame_rd_take(&f, &type, &payload, &pn) != 0 || type != 0x81 || pn < 2 || pn > cap)
		return TB_E_IO;
	memcpy(resp, payload, pn);
	*got = pn;
	return 0;
}

/* ------------------------------------------------------------- the port --- */

static int port_xmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
		     size_t *got)
{
	struct rd_port *p = ctx;

	if (p->pcsc != NULL)
		return pcsc_xmit(p->pcsc, cmd, n, resp, cap, got);
	return link_xmit(p->fd, cmd, n, resp, cap, got);
}

/* 0 with a card in the field, TB_E_RDR_CARD after timeout_ms. */
static int port_wait(struct rd_port *p, int timeout_ms)
{
	long long end = rd_now_ms() + timeout_ms;

	if (p->pcsc != NULL)
		return pcsc_wait_card(p->pcsc, timeout_ms);
	for (;;) {
		struct timespec ts = { 0, 50 * 1000000L };

		p->fd = link_connect(&p->addr);
		if (p->fd >= 0)
			return 0;
		if (rd_now_ms() >= end)
			return TB_E_RDR_CARD;
		nanosleep(&ts, NULL);
	}
}

static void port_leave(struct rd_port *p)
{
	if (p->pcsc != NULL) {
		(void)pcsc_release(p->pcsc, RD_REMOVE_WAIT_MS);
		return;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* ----------------------------------------------------------- arguments --- */

static int parse_items(const char *s, struct rdr_cfg *cfg)
{
	char buf[1024], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *it = strtok_r(buf, ",", &save); it != NULL; it = strtok_r(NULL, ",", &save)) {
		char *q = strchr(it, ':'), *pr = q != NULL ? strchr(q + 1, ':') : NULL;
		uint32_t id, qty, price;

		if (q == NULL || pr == NULL || cfg->n_items >= RMSG_ITEMS_MAX)
			return -1;
		*q = *pr = '\0';
		if (args_u32(it, 0, UINT32_MAX, &id) || args_u32(q + 1, 1, 65535, &qty) ||
		    args_u32(pr + 1, 0, UINT32_MAX, &price))
			return -1;
		cfg->items[cfg->n_items].id = id;
		cfg->items[cfg->n_items].qty = (uint16_t)qty;
		cfg->items[cfg->n_items].price = price;
		cfg->n_items++;
	}
	return cfg->n_items > 0 ? 0 : -1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tapbridge reader --keys FILE --state DIR (--pcsc NAME | --connect tcp:HOST:PORT)\n"
		"         --app pay|gate|id|checkout|refund [--amount N] [--items ID:QTY:PRICE,...]\n"
		"         [--refund-key S:<serial>:<counter>]\n"
		"         [--ticket-service N] [--service N] [--taps N] [--timeout S]\n"
		"         [--flow-order online-first|offline-first] [--now UNIX-SECONDS]\n"
		"  --pcsc \"\" takes the first PC/SC reader; --now is a test seam: the reader's\n"
		"  clock (flag expiry) reads this time instead of the system's\n");
}

static int bad(const char *what)
{
	fprintf(stderr, "tapbridge reader: %s\n", what);
	usage();
	return 2;
}

struct rd_args {
	const char *keys, *state, *pcsc, *connect, *app, *amount, *items, *tsvc, *svc, *taps,
		*timeout, *order, *now, *refund_key;
	uint32_t n_taps, timeout_s;
	int64_t now_s;               /* --now, else -1: the system clock */
};

static int parse_cfg(struct rd_args *a, struct rdr_cfg *cfg)
{
	static const char *const apps[] = { "pay", "gate", "id", "checkout", "refund" };

	memset(cfg, 0, sizeof(*cfg));
	if (a->keys == NULL || a->state == NULL || a->app == NULL)
		return bad("--keys, --state and --app are needed");
	if ((a->pcsc == NULL) == (a->connect == NULL))
		return bad("give one of --pcsc and --connect");
	for (size_t i = 0; i < 5; i++)
		if (strcmp(a->app, apps[i]) == 0)
			cfg->app = (enum rdr_app)(i + 1);
	if (cfg->app == 0)
		return bad("--app must be pay, gate, id, checkout or refund");
	if (a->amount != NULL && args_u32(a->amount, 1, UINT32_MAX, &cfg->amount))
		return bad("--amount must be a number 1..4294967295");
	if ((cfg->app == RDR_APP_PAY || cfg->app == RDR_APP_REFUND) && a->amount == NULL)
		return bad("--app pay and --app refund need --amount");
	if (cfg->app == RDR_APP_REFUND) {
		uint8_t b[RMSG_REFUND_LEN_MAX];
		struct wr w = wr_init(b, sizeof(b));
		size_t kn = a->refund_key != NULL ? strlen(a->refund_key) : 0;

		if (kn == 0 || rmsg_refund_enc(&w, a->refund_key, kn, cfg->amount) != 0)
			return bad("--app refund needs --refund-key KEY (the payment's receipt key "
				   "S:<serial>:<counter>, 1..47 printable characters)");
		memcpy(cfg->refund_key, a->refund_key, kn + 1);
	}
	if (a->items != NULL && parse_items(a->items, cfg))
		return bad("--items: ID:QTY:PRICE,... (at most 16, qty 1..65535)");
	if (cfg->app == RDR_APP_CHECKOUT && cfg->n_items == 0)
		return bad("--app checkout needs --items");
	if ((a->tsvc != NULL && args_u32(a->tsvc, 1, UINT32_MAX, &cfg->ticket_service)) ||
	    (a->svc != NULL && args_u32(a->svc, 0, UINT32_MAX, &cfg->service)))
		return bad("--ticket-service / --service must be numbers");
	if (a->order != NULL && strcmp(a->order, "online-first") == 0)
		cfg->order = RDR_ONLINE_FIRST;
	else if (a->order != NULL && strcmp(a->order, "offline-first") != 0)
		return bad("--flow-order must be online-first or offline-first");
	a->n_taps = 1;
	a->timeout_s = 30;
	if ((a->taps != NULL && args_u32(a->taps, 1, 1000000, &a->n_taps)) ||
	    (a->timeout != NULL && args_u32(a->timeout, 1, 86400, &a->timeout_s)))
		return bad("--taps 1.. and --timeout 1..86400 (seconds)");
	a->now_s = -1;
	if (a->now != NULL) {
		uint32_t v;

		if (args_u32(a->now, 1, UINT32_MAX, &v))
			return bad("--now must be seconds since 1970 (1..4294967295)");
		a->now_s = v;
	}
	return 0;
}

static int open_files(const struct rd_args *a)
{
	unsigned line = 0;
	int rc = reader_keys_load(a->keys, &G.keys, &line);

	if (rc != 0) {
		if (line > 0)
			fprintf(stderr, "reader: key file %s, line %u: %s\n", a->keys, line, tb_strerror(rc));
		else
			fprintf(stderr, "reader: key file %s: %s (all of enc mac dek id kvn terminal "
				"terminal-kvn terminal-keylen, mode 0600)\n", a->keys, tb_strerror(rc));
		return 1;
	}
	if (reader_state_lock(a->state) < 0) {
		fprintf(stderr, "reader: state dir %s cannot be locked (missing, or another reader "
			"uses it)\n", a->state);
		return 1;
	}
	if ((rc = reader_state_load(a->state, &G.store)) != 0) {
		fprintf(stderr, "reader: state %s/%s: %s\n", a->state, READER_STATE_FILE,
			tb_strerror(rc));
		return 1;
	}
	return 0;
}

static int open_port(const struct rd_args *a)
{
	G.port.fd = -1;
	if (a->connect != NULL) {
		if (framed_addr_parse(a->connect, &G.port.addr) != 0) {
			fprintf(stderr, "reader: --connect wants tcp:HOST:PORT or unix:PATH\n");
			return 2;
		}
		return 0;
	}
	if (pcsc_open(a->pcsc[0] != '\0' ? a->pcsc : NULL, &G.port.pcsc) != 0) {
		fprintf(stderr, "reader: no PC/SC service (is pcscd running?)\n");
		return 1;
	}
	return 0;
}

int cmd_reader(int argc, char **argv)
{
	struct rd_args a;
	const struct arg_opt opts[] = {
		{ "--keys", &a.keys, NULL },      { "--state", &a.state, NULL },
		{ "--pcsc", &a.pcsc, NULL },      { "--connect", &a.connect, NULL },
		{ "--app", &a.app, NULL },        { "--amount", &a.amount, NULL },
		{ "--items", &a.items, NULL },    { "--ticket-service", &a.tsvc, NULL },
		{ "--service", &a.svc, NULL },    { "--taps", &a.taps, NULL },
		{ "--timeout", &a.timeout, NULL }, { "--flow-order", &a.order, NULL },
		{ "--now", &a.now, NULL },        { "--refund-key", &a.refund_key, NULL },
	};
	const struct rdr_io io = { port_xmit, rd_save, rd_say, &G.port };
	uint32_t envelopes = 0;
	long long tap_ms = 0;
	int rc, failed = 0;

	memset(&a, 0, sizeof(a));
	if (args_parse("reader", argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != 0)
		return 2;
	if ((rc = parse_cfg(&a, &G.cfg)) != 0)
		return rc;
	G.state_dir = a.state;
	if ((rc = open_files(&a)) != 0 || (rc = open_port(&a)) != 0) {
		ct_wipe(&G.keys, sizeof(G.keys));
		return rc;
	}
	for (uint32_t t = 0; t < a.n_taps; t++) {
		long long t0;

		rd_say(NULL, "reader: tap your phone");
		if (port_wait(&G.port, (int)a.timeout_s * 1000) != 0) {
			rd_say(NULL, "reader: no card");
			failed = 1;
			break;
		}
		t0 = rd_now_ms();
		rc = rdr_tap(&G.r, &G.keys, &G.cfg, &io, &G.store,
			     a.now_s >= 0 ? a.now_s : (int64_t)time(NULL));
		tap_ms = rd_now_ms() - t0;
		envelopes += G.r.envelopes;
		if (rc != 0)
			failed = 1;
		port_leave(&G.port);
	}
	printf("reader: stats envelopes=%u tap-ms=%lld\n", envelopes, tap_ms);
	fflush(stdout);
	pcsc_free(G.port.pcsc);
	ct_wipe(&G.keys, sizeof(G.keys));
	ct_wipe(&G.r, sizeof(G.r));
	return failed ? 1 : 0;
}
