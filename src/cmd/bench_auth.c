/* bench_auth.c - the sam half of `tapbridge bench auth`: a real sam process (development
 * KEK file in a temporary directory) and in-process cards playing the SCP03 card role,
 * BENCH_CONC handshakes in flight on one pipelined connection. A handshake counts only
 * once the card accepted EXTERNAL AUTHENTICATE and the sam verified the card's R-MAC. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "bench.h"
#include "io/sam_client.h"
#include "lib/apdu.h"
#include "lib/crypto.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/scp03.h"
#include "sam/sam.h"

#define BENCH_CONC 64

static const uint8_t isd_aid[8] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static const uint8_t cmd_get[] = { 0x80, 0xCA, 0x00, 0x66, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0x00 };

struct card {
	struct scp_card c;
	struct scp_keys keys;
	uint8_t kvn;
	uint32_t counter;
};

struct hs;

struct run {
	struct event_base *base;
	struct sam_client *c;
	struct hs *hs;
	double t_end;
	long started, done;
	int failed;
};

struct hs {
	struct run *r;
	struct card card;
	uint8_t serial[SAM_SERIAL_LEN];
	uint32_t handle;
	int checks;
};

static int card_init(struct card *m, const uint8_t serial[SAM_SERIAL_LEN],
		     const struct scp_keys *k, uint8_t kvn)
{
	struct scp_card_config cc;

	memset(m, 0, sizeof(*m));
	memset(&cc, 0, sizeof(cc));
	cc.i = 0x70;
	memcpy(cc.kdd + 2, serial, SAM_SERIAL_LEN);
	cc.aid = isd_aid;
	cc.aid_len = sizeof(isd_aid);
	m->keys = *k;
	m->kvn = kvn;
	m->counter = 5;
	return scp_card_init(&m->c, &cc);
}

/* The card: one command in, one response out; its application echoes the data. */
static int card_apdu(struct card *m, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
		     size_t *rn)
{
	uint8_t plain[600], app[600], challenge[SCP_S16];
	struct scp_card_result res;
	struct wr w = wr_init(resp, cap);
	struct apdu a;
	int rc;

	if ((rc = scp_card_command(&m->c, cmd, n, &res, &w)) != 0)
		return rc;
	if (res.action == SCP_CARD_NEED_KEYS) {
		w = wr_init(resp, cap);
		if ((rc = crypto_random(challenge, sizeof(challenge))) != 0 ||
		    (rc = scp_card_supply_keys(&m->c, m->kvn, &m->keys, m->counter, challenge,
					       m->c.challenge_len, &res, &w)) != 0)
			return rc;
	}
	if (res.action == SCP_CARD_PERSIST) {
		m->counter = res.counter;
		w = wr_init(resp, cap);
		if ((rc = scp_card_counter_saved(&m->c, &res, &w)) != 0)
			return rc;
	}
	if (res.action == SCP_CARD_DELIVER) {
		struct wr aw = wr_init(app, sizeof(app));

		if (w.len > sizeof(plain))
			return TB_E_NOSPACE;
		memcpy(plain, w.p, w.len);
		if ((rc = apdu_parse(plain, w.len, &a)) != 0 ||
		    (rc = apdu_resp_encode(a.data, a.nc, 0x9000, &aw)) != 0)
			return rc;
		w = wr_init(resp, cap);
		if ((rc = scp_card_respond(&m->c, app, aw.len, &w)) != 0)
			return rc;
	}
	if (res.auth == SCP_CARD_AUTH_FAILED)
		return TB_E_INTERNAL;
	*rn = w.len;
	return 0;
}

static void hs_start(struct hs *h);

static void hs_fail(struct hs *h, const char *what, int err)
{
	if (h->r->failed++ == 0)
		fprintf(stderr, "bench auth: handshake failed at %s: %s\n", what, tb_errname(err));
	event_base_loopbreak(h->r->base);
}

static void on_close(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;

	(void)b;
	(void)n;
	if (err != 0 || h->checks != 2) {
		hs_fail(h, "close", err);
		return;
	}
	h->r->done++;
	if (bench_now() < h->r->t_end)
		hs_start(h);
	else if (h->r->done == h->r->started)
		event_base_loopbreak(h->r->base);
}

static void on_ea(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_step_reply st;

	if (err != 0 || sam_dec_scp_step(b, n, &st) != 0 || st.state != SAM_SS_DUE)
		hs_fail(h, "EA check", err);
	else
		h->checks++;
}

static void on_unwrap(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_unwrap_reply u;

	if (err != 0 || sam_dec_scp_unwrap(b, n, &u) != 0 || u.sw != 0x9000 || !u.authenticated)
		hs_fail(h, "unwrap", err);
	else
		h->checks++;
}

static int submit(struct hs *h, uint8_t type, const struct wr *w, sam_reply_fn cb)
{
	return sam_client_call(h->r->c, type, w->p, w->len, cb, h);
}

static void on_step(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_step_reply st;
	uint8_t body[700], ea_resp[128], r1[600];
	struct wr w;
	size_t ean = 0, r1n = 0;

	if (err != 0 || sam_dec_scp_step(b, n, &st) != 0 || st.ea == NULL || st.wrapped == NULL) {
		hs_fail(h, "step", err);
		return;
	}
	/* The card gets EA and the first command back to back, as through the phone. */
	if (card_apdu(&h->card, st.ea, st.ea_n, ea_resp, sizeof(ea_resp), &ean) != 0 ||
	    card_apdu(&h->card, st.wrapped, st.wrapped_n, r1, sizeof(r1), &r1n) != 0) {
		hs_fail(h, "card", TB_E_INTERNAL);
		return;
	}
	/* Three requests pipelined: confirm EA, unwrap, close. */
	w = wr_init(body, sizeof(body));
	err = sam_enc_scp_step(&w, h->handle, ea_resp, ean, NULL, 0);
	if (err == 0)
		err = submit(h, SAM_SCP_STEP, &w, on_ea);
	w = wr_init(body, sizeof(body));
	if (err == 0 && (err = sam_enc_scp_handle(&w, h->handle, r1, r1n)) == 0)
		err = submit(h, SAM_SCP_UNWRAP, &w, on_unwrap);
	w = wr_init(body, sizeof(body));
	if (err == 0 && (err = sam_enc_scp_handle(&w, h->handle, NULL, 0)) == 0)
		err = submit(h, SAM_SCP_CLOSE, &w, on_close);
	if (err != 0)
		hs_fail(h, "submit", err);
}

static void on_open(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_open_reply o;
	uint8_t body[700], resp[600];
	struct wr w = wr_init(body, sizeof(body));
	size_t rn = 0;

	if (err != 0 || sam_dec_scp_open(b, n, &o) != 0) {
		hs_fail(h, "open", err);
		return;
	}
	h->handle = o.handle;
	if (card_apdu(&h->card, o.apdu, o.n, resp, sizeof(resp), &rn) != 0) {
		hs_fail(h, "card", TB_E_INTERNAL);
		return;
	}
	err = sam_enc_scp_step(&w, h->handle, resp, rn, cmd_get, sizeof(cmd_get));
	if (err == 0)
		err = submit(h, SAM_SCP_STEP, &w, on_step);
	if (err != 0)
		hs_fail(h, "submit", err);
}

static void hs_start(struct hs *h)
{
	uint8_t body[64];
	struct wr w = wr_init(body, sizeof(body));
	int err;

	h->checks = 0;
	h->r->started++;
	err = sam_enc_scp_open(&w, SAM_FAM_SE_SERVER, 0, h->serial, 0x33, 8, isd_aid,
			       sizeof(isd_aid));
	if (err == 0)
		err = submit(h, SAM_SCP_OPEN, &w, on_open);
	if (err != 0)
		hs_fail(h, "submit", err);
}

/* The card of h->serial, personalised with the keys the sam derives for it. */
static int card_for(struct sam_sync *s, struct hs *h)
{
	uint8_t body[16], reply[128];
	struct wr w = wr_init(body, sizeof(body));
	struct scp_keys k;
	size_t rn = 0;
	int rc;

	memset(&k, 0, sizeof(k));
	rc = sam_enc_derive(&w, SAM_FAM_SE_SERVER, 0, h->serial);
	if (rc == 0)
		rc = sam_sync_call(s, SAM_DERIVE_DEVICE_KEYS, body, w.len, reply, sizeof(reply), &rn);
	if (rc == 0 && rn != 3 + 3 * 16)
		rc = TB_E_SAM_PROTO;
	if (rc == 0) {
		k.len = reply[2];
		memcpy(k.enc, reply + 3, 16);
		memcpy(k.mac, reply + 19, 16);
		memcpy(k.dek, reply + 35, 16);
		rc = card_init(&h->card, h->serial, &k, reply[1]);
	}
	ct_wipe(&k, sizeof(k));
	ct_wipe(reply, sizeof(reply));
	return rc;
}

static int sam_wait(pid_t pid, const char *sock)
{
	struct sockaddr_un sa;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, sock, strlen(sock) + 1);
	for (int t = 0; t < 1000; t++) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

		if (fd < 0)
			return -1;
		ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
		close(fd);
		if (ok)
			return 0;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return -1;
		usleep(10000);
	}
	return -1;
}

/* Starts the sam on dir/sam.sock with a fresh key file: its pid, or -1. */
static pid_t sam_up(const char *self, const char *dir, char sock[BENCH_PATH_MAX])
{
	char keys[BENCH_PATH_MAX], kek[BENCH_PATH_MAX], log[BENCH_PATH_MAX];
	char *init[] = { (char *)self, "sam", "--init", "--keys", keys, "--kek-file", kek, NULL };
	char *serve[] = { (char *)self, "sam", "--socket", sock, "--keys", keys, "--kek-file", kek,
			  "--allow-perso", "--sessions", "1024", NULL };
	pid_t pid;
	int st = 0;

	snprintf(keys, sizeof(keys), "%s/sam.keys", dir);
	snprintf(kek, sizeof(kek), "%s/kek", dir);
	snprintf(log, sizeof(log), "%s/sam.log", dir);
	snprintf(sock, BENCH_PATH_MAX, "%s/sam.sock", dir);
	pid = bench_spawn(init, log);
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench auth: sam --init failed (see %s)\n", log);
		return -1;
	}
	pid = bench_spawn(serve, log);
	if (pid < 0 || sam_wait(pid, sock) != 0) {
		fprintf(stderr, "bench auth: the sam did not start (see %s)\n", log);
		bench_stop(pid);
		return -1;
	}
	return pid;
}

int bench_auth_sam(const char *self, const char *dir, double seconds, double *per_s)
{
	static struct hs hs[BENCH_CONC];
	char sock[BENCH_PATH_MAX];
	struct run r;
	struct sam_sync s;
	double t0;
	int rc = 1;
	pid_t pid = sam_up(self, dir, sock);

	if (pid < 0)
		return 1;
	memset(&r, 0, sizeof(r));
	memset(hs, 0, sizeof(hs));
	if (sam_sync_connect(&s, sock) != 0)
		goto out;
	for (int i = 0; i < BENCH_CONC; i++) {
		hs[i].r = &r;
		memset(hs[i].serial, 0x5A, sizeof(hs[i].serial));
		hs[i].serial[7] = (uint8_t)i;
		if (card_for(&s, &hs[i]) != 0)
			break;
		if (i == BENCH_CONC - 1)
			rc = 0;
	}
	sam_sync_close(&s);
	if (rc != 0 || (r.base = event_base_new()) == NULL ||
	    sam_client_new(r.base, sock, 4 * BENCH_CONC, &r.c) != 0) {
		fprintf(stderr, "bench auth: cannot set up the cards or the client\n");
		rc = 1;
		goto out;
	}
	t0 = bench_now();
	r.t_end = t0 + seconds;
	for (int i = 0; i < BENCH_CONC; i++)
		hs_start(&hs[i]);
	event_base_dispatch(r.base);
	if (r.failed == 0 && r.done > 0)
		*per_s = (double)r.done / (bench_now() - t0);
	else
		rc = 1;
out:
	sam_client_free(r.c);
	if (r.base != NULL)
		event_base_free(r.base);
	for (int i = 0; i < BENCH_CONC; i++)
		ct_wipe(&hs[i].card, sizeof(hs[i].card));
	bench_stop(pid);
	return rc;
}
