/* gateway.c - `tapbridge gateway`: the gateway between the phones' wireless line and the
 * network, a TCP relay (io/gateway.h) that can add delay and loss to emulate a mobile
 * network. Runs until SIGINT or SIGTERM; SIGUSR1 logs a stats line to stderr. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "cmd.h"
#include "io/gateway.h"
#include "lib/err.h"

static void gw_usage(void)
{
	fprintf(stderr, "usage: tapbridge gateway --listen HOST:PORT --to HOST:PORT "
		"[--delay-ms N] [--loss PERCENT] [--rto-ms N] [--seed N]\n");
}

static void gw_stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

static void gw_usr1_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	gw_stats(arg);
}

int cmd_gateway(int argc, char **argv)
{
	const char *listen = NULL, *to = NULL, *delay = NULL, *loss = NULL, *rto = NULL;
	const char *seed = NULL;
	const struct arg_opt opts[] = {
		{ "--listen", &listen, NULL }, { "--to", &to, NULL },
		{ "--delay-ms", &delay, NULL }, { "--loss", &loss, NULL },
		{ "--rto-ms", &rto, NULL }, { "--seed", &seed, NULL },
	};
	struct gw_opts o = { 0, 0, GW_RTO_MS_DEFAULT, 1, stderr };
	struct event_config *cfg = NULL;
	struct event_base *base = NULL;
	struct event *ev[3] = { NULL, NULL, NULL };
	struct gw *g = NULL;
	char bound[GW_ADDR_MAX];
	uint32_t seed32 = 1;
	int rc, status = 1;

	if (args_parse("gateway", argc, argv, opts, sizeof(opts) / sizeof(opts[0])) != 0) {
		gw_usage();
		return 2;
	}
	if (listen == NULL || to == NULL ||
	    (delay != NULL && args_u32(delay, 0, GW_DELAY_MS_MAX, &o.delay_ms) != 0) ||
	    (loss != NULL && args_u32(loss, 0, 100, &o.loss_pct) != 0) ||
	    (rto != NULL && args_u32(rto, 0, GW_DELAY_MS_MAX, &o.rto_ms) != 0) ||
	    (seed != NULL && args_u32(seed, 0, UINT32_MAX, &seed32) != 0)) {
		fprintf(stderr, "tapbridge gateway: --listen and --to are required; --delay-ms and "
			"--rto-ms are 0..%u, --loss 0..100\n", GW_DELAY_MS_MAX);
		gw_usage();
		return 2;
	}
	o.seed = seed32;
	(void)signal(SIGPIPE, SIG_IGN);
	/* Precise timers (timerfd): without them epoll rounds each hold up to the next ms. */
	cfg = event_config_new();
	if (cfg == NULL || event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER) != 0 ||
	    (base = event_base_new_with_config(cfg)) == NULL)
		goto out;
	rc = gw_new(base, listen, to, &o, &g, bound);
	if (rc != 0) {
		fprintf(stderr, "tapbridge gateway: --listen %s --to %s: %s\n", listen, to,
			tb_strerror(rc));
		status = rc == TB_E_INVAL ? 2 : 1;
		goto out;
	}
	ev[0] = evsignal_new(base, SIGINT, gw_stop_cb, base);
	ev[1] = evsignal_new(base, SIGTERM, gw_stop_cb, base);
	ev[2] = evsignal_new(base, SIGUSR1, gw_usr1_cb, g);
	for (int i = 0; i < 3; i++)
		if (ev[i] == NULL || event_add(ev[i], NULL) != 0)
			goto out;
	printf("gateway listening %s -> %s\n", bound, to);
	fflush(stdout);
	if (event_base_dispatch(base) < 0)
		goto out;
	gw_stats(g);
	status = 0;
out:
	gw_free(g);
	for (int i = 0; i < 3; i++)
		if (ev[i] != NULL)
			event_free(ev[i]);
	if (base != NULL)
		event_base_free(base);
	if (cfg != NULL)
		event_config_free(cfg);
	return status;
}
