/* phone_sim.h - a scripted phone for tests (header-only, static inline): a blocking TLS
 * 1.3 client pinned to the server's certificate that speaks the phone session protocol
 * (server/proto.h), and the IC_I/F link to its se (`tapbridge se --link PATH`), so that
 * every SE_APDU the server sends reaches the se unchanged and its response goes back as
 * SE_RESP. No cmocka in here: every call returns a status, so forked or threaded phones
 * (the kill test) can use it too.
 *
 * Returns: 1 (a frame), 0 (the peer closed), -1 (timeout or a socket/TLS error). */
#ifndef TB_TEST_PHONE_SIM_H
#define TB_TEST_PHONE_SIM_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "io/se_link.h"
#include "io/tls.h"
#include "lib/frame.h"
#include "server/proto.h"

struct phone {
	int fd;                 /* TCP to the server */
	SSL *ssl;
	int link;               /* unix socket to the se, -1 when none */
	uint8_t type;           /* the last frame received */
	size_t n;
	uint8_t buf[PROTO_PHONE_IN_MAX];
	unsigned apdus;         /* SE_APDUs pumped to the se */
	char notice[PROTO_NOTICE_MAX + 1];
	uint16_t err_code;      /* the last ERROR's code */
	uint8_t stage[PROTO_STAGE_MAX]; /* the last STAGE (phone_recv keeps it) */
	size_t stage_n;
};

static inline int phone_link_write(int fd, uint8_t type, const uint8_t *b, size_t n);

static inline void phone_init(struct phone *p)
{
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	p->link = -1;
}

static inline void phone_close(struct phone *p)
{
	if (p->ssl != NULL)
		SSL_free(p->ssl);
	if (p->fd >= 0)
		close(p->fd);
	if (p->link >= 0)
		close(p->link);
	p->ssl = NULL;
	p->fd = -1;
	p->link = -1;
}

/* Only the link to the se (no server): for reading the se's own state. 0 or -1. */
static inline int phone_link_open(struct phone *p, const char *link_path)
{
	struct sockaddr_un su;
	struct timeval tv = { 5, 0 };

	phone_init(p);
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	if (strlen(link_path) >= sizeof(su.sun_path))
		return -1;
	memcpy(su.sun_path, link_path, strlen(link_path) + 1);
	p->link = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->link < 0 || connect(p->link, (struct sockaddr *)&su, sizeof(su)) != 0) {
		phone_close(p);
		return -1;
	}
	setsockopt(p->link, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

/* TLS to 127.0.0.1:port with the pinned client context; link_path (may be NULL): the
 * se's IC_I/F socket. 0, or -1 (everything closed). */
static inline int phone_open(struct phone *p, struct tls_client *tc, uint16_t port,
			     const char *link_path, unsigned timeout_ms)
{
	struct sockaddr_in a;
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000) };
	int one = 1;

	phone_init(p);
	if (link_path != NULL) {
		struct sockaddr_un su;

		memset(&su, 0, sizeof(su));
		su.sun_family = AF_UNIX;
		if (strlen(link_path) >= sizeof(su.sun_path))
			return -1;
		memcpy(su.sun_path, link_path, strlen(link_path) + 1);
		p->link = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (p->link < 0 || connect(p->link, (struct sockaddr *)&su, sizeof(su)) != 0)
			goto fail;
		setsockopt(p->link, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	/* A new server session starts on a reset host interface (whatever an earlier,
	 * broken-off one left open in the se). */
	if (p->link >= 0) {
		uint8_t reset = 0x02;

		if (phone_link_write(p->link, SE_LINK_T_POWER, &reset, 1) != 0)
			goto fail;
	}
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->fd < 0)
		goto fail;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(p->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(p->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(p->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(p->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto fail;
	p->ssl = tls_client_ssl(tc);
	if (p->ssl == NULL)
		goto fail;
	SSL_set_fd(p->ssl, p->fd);
	if (SSL_connect(p->ssl) != 1)
		goto fail;
	return 0;
fail:
	phone_close(p);
	return -1;
}

static inline int phone_raw(struct phone *p, const uint8_t *b, size_t n)
{
	return SSL_write(p->ssl, b, (int)n) == (int)n ? 0 : -1;
}

static inline int phone_send(struct phone *p, const struct proto_msg *m)
{
	uint8_t f[FRAME_HDR_LEN + PROTO_SRV_IN_MAX];
	struct wr w = wr_init(f, sizeof(f));

	if (proto_frame_put(&w, m) != 0)
		return -1;
	return phone_raw(p, f, w.len);
}

static inline int phone_read(struct phone *p, uint8_t *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int k = SSL_read(p->ssl, b + got, (int)(n - got));

		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		if (SSL_get_error(p->ssl, k) == SSL_ERROR_ZERO_RETURN)
			return 0;
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : 0;
	}
	return 1;
}

/* One frame into p->type / p->buf / p->n. */
/* The next frame; a STAGE (the reader channel's pre-staged challenge) is kept in
 * p->stage, not returned: these tests are about the frames that answer them. */
static inline int phone_recv(struct phone *p)
{
	uint8_t h[FRAME_HDR_LEN];
	uint32_t len;
	int rc;

	for (;;) {
		if ((rc = phone_read(p, h, sizeof(h))) != 1)
			return rc;
		len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		if (len < 1 || len - 1 > sizeof(p->buf))
			return -1;
		p->type = h[4];
		p->n = len - 1;
		if (p->n > 0 && (rc = phone_read(p, p->buf, p->n)) != 1)
			return rc;
		if (p->type != PROTO_STAGE || p->n > sizeof(p->stage))
			return 1;
		memcpy(p->stage, p->buf, p->n);
		p->stage_n = p->n;
	}
}

static inline int phone_link_write(int fd, uint8_t type, const uint8_t *b, size_t n)
{
	uint8_t f[FRAME_HDR_LEN + SE_CMD_MAX];

	if (n > SE_CMD_MAX)
		return -1;
	f[0] = (uint8_t)((n + 1) >> 24);
	f[1] = (uint8_t)((n + 1) >> 16);
	f[2] = (uint8_t)((n + 1) >> 8);
	f[3] = (uint8_t)(n + 1);
	f[4] = type;
	memcpy(f + FRAME_HDR_LEN, b, n);
	n += FRAME_HDR_LEN;
	for (size_t off = 0; off < n;) {
		ssize_t k = write(fd, f + off, n - off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	return 0;
}

static inline int phone_link_read(int fd, uint8_t *b, size_t n)
{
	while (n > 0) {
		ssize_t k = read(fd, b, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* A frame to the se (type SE_LINK_T_*) and, for an APDU, its RESPONSE (data || SW) in
 * resp; event frames on the way are skipped. 0 or -1. */
static inline int phone_link(struct phone *p, uint8_t type, const uint8_t *cmd, size_t n,
			     uint8_t *resp, size_t cap, size_t *rn)
{
	uint8_t h[FRAME_HDR_LEN], junk[SE_RESP_MAX + 16];

	if (p->link < 0 || phone_link_write(p->link, type, cmd, n) != 0)
		return -1;
	if (type != SE_LINK_T_APDU)
		return 0;
	for (;;) {
		uint32_t len;

		if (phone_link_read(p->link, h, sizeof(h)) != 0)
			return -1;
		len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
		if (len < 1 || len - 1 > sizeof(junk))
			return -1;
		if (h[4] != SE_LINK_T_RESPONSE) {
			if (phone_link_read(p->link, junk, len - 1) != 0)
				return -1;
			continue;
		}
		if (len - 1 > cap)
			return -1;
		*rn = len - 1;
		return phone_link_read(p->link, resp, len - 1);
	}
}

/* HELLO with serial; the MENU decoded into *menu (pointing into p->buf). 1, 0, -1; the
 * server's ERROR (p->err_code) is 0 too. */
static inline int phone_hello(struct phone *p, const uint8_t serial[PROTO_SERIAL_LEN],
			      struct proto_menu *menu)
{
	struct proto_msg m = { .type = PROTO_HELLO };
	struct proto_msg in;
	int rc;

	m.u.hello.version = PROTO_VERSION;
	memcpy(m.u.hello.serial, serial, PROTO_SERIAL_LEN);
	m.u.hello.app = (const uint8_t *)"phone-sim/1";
	m.u.hello.app_len = 11;
	if (phone_send(p, &m) != 0)
		return -1;
	if ((rc = phone_recv(p)) != 1)
		return rc;
	if (p->type == PROTO_ERROR) {
		p->err_code = p->n >= 2 ? (uint16_t)(p->buf[0] << 8 | p->buf[1]) : 0;
		return 0;
	}
	if (p->type != PROTO_MENU || proto_decode(p->type, p->buf, p->n, &in) != 0)
		return -1;
	*menu = in.u.menu;
	return 1;
}

/* Pumps SE_APDUs to the se until a NOTICE (text in p->notice) or an ERROR (p->err_code)
 * comes: returns PROTO_NOTICE or PROTO_ERROR, 0 (closed), -1 (timeout, link failed). */
static inline int phone_pump(struct phone *p)
{
	for (;;) {
		struct proto_msg in, out = { .type = PROTO_SE_RESP };
		uint8_t resp[SE_RESP_MAX + 16];
		size_t rn = 0;
		int rc = phone_recv(p);

		if (rc != 1)
			return rc;
		if (p->type == PROTO_NOTICE) {
			memcpy(p->notice, p->buf, p->n);
			p->notice[p->n] = '\0';
			return PROTO_NOTICE;
		}
		if (p->type == PROTO_ERROR) {
			p->err_code = p->n >= 2 ? (uint16_t)(p->buf[0] << 8 | p->buf[1]) : 0;
			return PROTO_ERROR;
		}
		if (p->type != PROTO_SE_APDU)
			continue;
		if (proto_decode(p->type, p->buf, p->n, &in) != 0 ||
		    phone_link(p, SE_LINK_T_APDU, in.u.apdu.data, in.u.apdu.n, resp, sizeof(resp),
			       &rn) != 0)
			return -1;
		p->apdus++;
		out.u.apdu.seq = in.u.apdu.seq;
		out.u.apdu.data = resp;
		out.u.apdu.n = rn;
		if (phone_send(p, &out) != 0)
			return -1;
	}
}

/* SELECT service, then phone_pump(). */
static inline int phone_select(struct phone *p, uint32_t service)
{
	struct proto_msg m = { .type = PROTO_SELECT };

	m.u.select.service = service;
	if (phone_send(p, &m) != 0)
		return -1;
	return phone_pump(p);
}

#endif
