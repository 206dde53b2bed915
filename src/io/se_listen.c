/* se_listen.c - the direct contactless link (see se_listen.h): frames in, APDUs and
 * power events up, responses out. What stays true: at most one APDU is unanswered,
 * and a response is only ever sent for the APDU it answers. */
#include "se_listen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "framed.h"
#include "lib/err.h"
#include "lib/frame.h"
#include "se/se.h"

struct se_listen {
	struct event_base *base;
	struct se_listen_handler h;
	void *arg;
	struct framed_listener *listener;
	struct framed *conn;
	int pending; /* an APDU waits for se_listen_reply() */
	uint32_t max_by_type[FRAME_TYPES];
};

static void sl_emit(struct se_listen *l, enum se_listen_event ev)
{
	if (ev != SE_LISTEN_EV_UP)
		l->pending = 0; /* stale from now on */
	if (l->h.event != NULL)
		l->h.event(l, ev, l->arg);
}

static int sl_frame(struct framed *c, uint8_t type, const uint8_t *p, size_t n, void *arg)
{
	static const enum se_listen_event power_ev[3] = { SE_LISTEN_EV_POWER_OFF,
							  SE_LISTEN_EV_POWER_ON,
							  SE_LISTEN_EV_RESET };
	struct se_listen *l = arg;

	(void)c;
	if (type == SE_LISTEN_T_POWER) {
		if (n != 1 || p[0] > SE_LISTEN_POWER_RESET)
			return TB_E_INVAL;
		sl_emit(l, power_ev[p[0]]);
		return 0;
	}
	/* Only APDU frames get here besides POWER (the type table refuses the rest). */
	if (n == 0 || l->pending)
		return TB_E_INVAL; /* an empty APDU, or one before the last was answered */
	l->pending = 1;
	l->h.apdu(l, p, n, l->arg);
	return 0;
}

static void sl_closed(struct framed *c, int err, void *arg)
{
	struct se_listen *l = arg;

	(void)c;
	if (err != TB_E_IO)
		fprintf(stderr, "tapbridge se: listen: reader link closed: %s\n", tb_strerror(err));
	l->conn = NULL;
	sl_emit(l, SE_LISTEN_EV_DOWN);
}

static const struct framed_handler sl_framed = { sl_frame, sl_closed };

static void sl_accept(int fd, void *arg)
{
	struct se_listen *l = arg;
	struct framed_config cfg;
	struct framed *c;

	if (l->conn != NULL) { /* a new reader: the old one has left the field */
		framed_free(l->conn);
		l->conn = NULL;
		sl_emit(l, SE_LISTEN_EV_DOWN);
	}
	cfg.max_in = 1u + SE_CMD_MAX;
	cfg.max_by_type = l->max_by_type;
	cfg.max_out = 1u + SE_RESP_MAX;
	if (framed_new(l->base, fd, &cfg, &sl_framed, l, &c) != 0) {
		fprintf(stderr, "tapbridge se: listen: cannot take a connection\n");
		return;
	}
	l->conn = c;
	l->pending = 0;
	sl_emit(l, SE_LISTEN_EV_UP);
}

int se_listen_new(struct event_base *base, const char *spec, const struct se_listen_handler *h,
		  void *arg, struct se_listen **out)
{
	struct framed_addr a;
	struct se_listen *l;
	int rc;

	if (base == NULL || h == NULL || h->apdu == NULL || out == NULL)
		return TB_E_INVAL;
	if ((rc = framed_addr_parse(spec, &a)) != 0)
		return rc;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return TB_E_NOMEM;
	l->base = base;
	l->h = *h;
	l->arg = arg;
	l->max_by_type[SE_LISTEN_T_APDU] = 1u + SE_CMD_MAX;
	l->max_by_type[SE_LISTEN_T_POWER] = 2u;
	if ((rc = framed_listen(base, &a, sl_accept, l, &l->listener)) != 0) {
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int se_listen_reply(struct se_listen *l, const uint8_t *resp, size_t n)
{
	int rc;

	if (l == NULL || (resp == NULL && n > 0) || !l->pending || l->conn == NULL)
		return TB_E_INVAL;
	if (n < 2)
		return TB_E_APDU_RESP;
	if ((rc = framed_send(l->conn, SE_LISTEN_T_RESPONSE, resp, n)) != 0)
		return rc;
	l->pending = 0;
	return 0;
}

int se_listen_connected(const struct se_listen *l)
{
	return l != NULL && l->conn != NULL;
}

void se_listen_free(struct se_listen *l)
{
	if (l == NULL)
		return;
	framed_free(l->conn);
	framed_listener_free(l->listener);
	free(l);
}
