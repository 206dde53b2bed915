/* sam_client.c - the sam's clients (see sam_client.h): body encoders and decoders, the
 * blocking client, and the pipelined async client on a libevent bufferevent.
 * What stays true: replies are matched to requests strictly in order and by id, and a
 * reply that is not the one expected ends the connection (every waiting request then
 * gets TB_E_IO); request and reply buffers that may hold keys are wiped when dropped. */
#include "sam_client.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "lib/ct.h"
#include "lib/err.h"
#include "lib/frame.h"

/* ---------------------------------------------------------------- encoders --- */

/* Runs the writes of one body; on failure w is restored. */
#define ENC_BEGIN size_t enc_start = w->len; int enc_rc = 0
#define ENC(x) do { if (enc_rc == 0) enc_rc = (x); } while (0)
#define ENC_END do { if (enc_rc != 0) w->len = enc_start; return enc_rc; } while (0)

int sam_enc_scp_open(struct wr *w, uint8_t role, uint8_t kvn, const uint8_t serial[SAM_SERIAL_LEN],
		     uint8_t level, uint8_t challenge_len, const uint8_t *aid, size_t aid_len)
{
	ENC_BEGIN;
	if (aid_len > SCP_AID_MAX || (aid_len > 0 && aid == NULL))
		return TB_E_INVAL;
	ENC(wr_u8(w, role));
	ENC(wr_u8(w, kvn));
	ENC(wr_bytes(w, serial, SAM_SERIAL_LEN));
	ENC(wr_u8(w, level));
	ENC(wr_u8(w, challenge_len));
	ENC(wr_u8(w, (uint8_t)aid_len));
	ENC(wr_bytes(w, aid, aid_len));
	ENC_END;
}

int sam_enc_scp_open_given(struct wr *w, uint8_t role, uint8_t kvn,
			   const uint8_t serial[SAM_SERIAL_LEN], uint8_t level,
			   const uint8_t *challenge, size_t challenge_len, const uint8_t *aid,
			   size_t aid_len)
{
	ENC_BEGIN;
	if ((challenge_len != SCP_S8 && challenge_len != SCP_S16) || challenge == NULL ||
	    aid_len > SCP_AID_MAX || (aid_len > 0 && aid == NULL))
		return TB_E_INVAL;
	ENC(wr_u8(w, role));
	ENC(wr_u8(w, kvn));
	ENC(wr_bytes(w, serial, SAM_SERIAL_LEN));
	ENC(wr_u8(w, level));
	ENC(wr_u8(w, (uint8_t)(challenge_len | SAM_CHALLENGE_GIVEN)));
	ENC(wr_u8(w, (uint8_t)aid_len));
	ENC(wr_bytes(w, aid, aid_len));
	ENC(wr_bytes(w, challenge, challenge_len));
	ENC_END;
}

int sam_enc_scp_step(struct wr *w, uint32_t handle, const uint8_t *resp, size_t rn,
		     const uint8_t *cmd, size_t cn)
{
	ENC_BEGIN;
	if (rn > SAM_APDU_MAX || cn > SAM_APDU_MAX)
		return TB_E_INVAL;
	ENC(wr_u32be(w, handle));
	ENC(wr_u16be(w, (uint16_t)rn));
	ENC(wr_bytes(w, resp, rn));
	ENC(wr_bytes(w, cmd, cn));
	ENC_END;
}

int sam_enc_scp_handle(struct wr *w, uint32_t handle, const uint8_t *apdu, size_t n)
{
	ENC_BEGIN;
	if (n > SAM_APDU_MAX)
		return TB_E_INVAL;
	ENC(wr_u32be(w, handle));
	ENC(wr_bytes(w, apdu, n));
	ENC_END;
}

int sam_enc_scp_put_key(struct wr *w, uint32_t handle, uint8_t family, uint8_t kvn)
{
	ENC_BEGIN;
	ENC(wr_u32be(w, handle));
	ENC(wr_u8(w, family));
	ENC(wr_u8(w, kvn));
	ENC_END;
}

int sam_enc_sign(struct wr *w, uint8_t domain, const uint8_t *msg, size_t n)
{
	ENC_BEGIN;
	if (n > SAM_SIGN_MSG_MAX)
		return TB_E_INVAL;
	ENC(wr_u8(w, domain));
	ENC(wr_bytes(w, msg, n));
	ENC_END;
}

int sam_enc_blob(struct wr *w, const uint8_t *id, size_t idn, const uint8_t *data, size_t n)
{
	ENC_BEGIN;
	if (idn == 0 || idn > SAM_BLOB_ID_MAX || n > SAM_BLOB_MAX + SAM_BLOB_OVERHEAD)
		return TB_E_INVAL;
	ENC(wr_u8(w, (uint8_t)idn));
	ENC(wr_bytes(w, id, idn));
	ENC(wr_bytes(w, data, n));
	ENC_END;
}

int sam_enc_receipt(struct wr *w, uint8_t kvn, const uint8_t serial[SAM_SERIAL_LEN],
		    const uint8_t *mac, size_t macn, const uint8_t *body, size_t n)
{
	ENC_BEGIN;
	if (macn < 4 || macn > 16 || n == 0 || n > SAM_RECEIPT_BODY_MAX)
		return TB_E_INVAL;
	ENC(wr_u8(w, kvn));
	ENC(wr_bytes(w, serial, SAM_SERIAL_LEN));
	ENC(wr_u8(w, (uint8_t)macn));
	ENC(wr_bytes(w, mac, macn));
	ENC(wr_bytes(w, body, n));
	ENC_END;
}

int sam_enc_derive(struct wr *w, uint8_t role, uint8_t kvn, const uint8_t serial[SAM_SERIAL_LEN])
{
	ENC_BEGIN;
	ENC(wr_u8(w, role));
	ENC(wr_u8(w, kvn));
	ENC(wr_bytes(w, serial, SAM_SERIAL_LEN));
	ENC_END;
}

/* ---------------------------------------------------------------- decoders --- */

int sam_dec_scp_open(const uint8_t *b, size_t n, struct sam_open_reply *r)
{
	struct rd rd = rd_init(b, n);
	struct sam_open_reply t;

	if (rd_u32be(&rd, &t.handle) || rd_u8(&rd, &t.kvn) || rd_left(&rd) < 5)
		return TB_E_SAM_PROTO;
	t.n = rd_left(&rd);
	(void)rd_bytes(&rd, t.n, &t.apdu);
	*r = t;
	return 0;
}

int sam_dec_scp_step(const uint8_t *b, size_t n, struct sam_step_reply *r)
{
	struct rd rd = rd_init(b, n);
	struct sam_step_reply t;
	uint16_t ea_n;

	memset(&t, 0, sizeof(t));
	if (rd_u8(&rd, &t.state) || rd_u16be(&rd, &ea_n) ||
	    (ea_n > 0 && rd_bytes(&rd, ea_n, &t.ea)))
		return TB_E_SAM_PROTO;
	t.ea_n = ea_n;
	t.wrapped_n = rd_left(&rd);
	if (t.wrapped_n > 0)
		(void)rd_bytes(&rd, t.wrapped_n, &t.wrapped);
	*r = t;
	return 0;
}

int sam_dec_scp_unwrap(const uint8_t *b, size_t n, struct sam_unwrap_reply *r)
{
	struct rd rd = rd_init(b, n);
	struct sam_unwrap_reply t;
	uint8_t auth;

	memset(&t, 0, sizeof(t));
	if (rd_u16be(&rd, &t.sw) || rd_u8(&rd, &auth) || auth > 1)
		return TB_E_SAM_PROTO;
	t.authenticated = auth;
	t.n = rd_left(&rd);
	if (t.n > 0)
		(void)rd_bytes(&rd, t.n, &t.data);
	*r = t;
	return 0;
}

int sam_dec_hello(const uint8_t *b, size_t n, struct sam_hello *h)
{
	struct rd rd = rd_init(b, n);
	struct sam_hello t;

	if (rd_u8(&rd, &t.version) || rd_u8(&rd, &t.caps) || rd_u32be(&rd, &t.sessions) ||
	    rd_u8(&rd, &t.sign_version) || rd_copy(&rd, t.pub, SAM_PUB_LEN) || rd_end(&rd))
		return TB_E_SAM_PROTO;
	*h = t;
	return 0;
}

/* ------------------------------------------------------------ the socket --- */

static int sam_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd;

	if (path == NULL || strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return TB_E_INVAL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return TB_E_IO;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return TB_E_IO;
	}
	return fd;
}

/* Type, length and id of one request frame. */
static void frame_head(uint8_t hdr[FRAME_HDR_LEN + SAM_ID_LEN], uint8_t type, uint32_t id,
		       size_t n)
{
	uint32_t len = (uint32_t)(1u + SAM_ID_LEN + n);

	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
	hdr[4] = type;
	hdr[5] = (uint8_t)(id >> 24);
	hdr[6] = (uint8_t)(id >> 16);
	hdr[7] = (uint8_t)(id >> 8);
	hdr[8] = (uint8_t)id;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------- blocking --- */

static int io_all(int fd, uint8_t *p, size_t n, int writing)
{
	while (n > 0) {
		ssize_t r = writing ? send(fd, p, n, MSG_NOSIGNAL) : read(fd, p, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return TB_E_IO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int sam_sync_connect(struct sam_sync *s, const char *path)
{
	uint8_t v = SAM_PROTO_VERSION, reply[8 + SAM_PUB_LEN];
	size_t rn = 0;
	int rc;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if ((rc = sam_connect(path)) < 0)
		return rc;
	s->fd = rc;
	s->next_id = 1;
	sam_reply_limits(s->limits);
	if ((rc = sam_sync_call(s, SAM_HELLO, &v, 1, reply, sizeof(reply), &rn)) != 0 ||
	    (rc = sam_dec_hello(reply, rn, &s->hello)) != 0) {
		sam_sync_close(s);
		return rc;
	}
	return 0;
}

static int sync_fail(struct sam_sync *s, int rc)
{
	sam_sync_close(s);
	return rc;
}

int sam_sync_call(struct sam_sync *s, uint8_t type, const uint8_t *body, size_t n,
		  uint8_t *reply, size_t cap, size_t *rn)
{
	uint8_t hdr[FRAME_HDR_LEN + SAM_ID_LEN], code[4];
	uint32_t id, len;
	size_t blen;

	if (s->fd < 0)
		return TB_E_IO;
	if (n > SAM_REQ_MAX - SAM_ID_LEN || (n > 0 && body == NULL))
		return TB_E_INVAL;
	id = s->next_id++;
	frame_head(hdr, type, id, n);
	if (io_all(s->fd, hdr, sizeof(hdr), 1) != 0 ||
	    (n > 0 && io_all(s->fd, (uint8_t *)body, n, 1) != 0))
		return sync_fail(s, TB_E_IO);
	if (io_all(s->fd, hdr, sizeof(hdr), 0) != 0)
		return sync_fail(s, TB_E_IO);
	len = be32(hdr);
	if (len < 1u + SAM_ID_LEN || len > s->limits[hdr[4]] || be32(hdr + 5) != id ||
	    (hdr[4] != SAM_REPLY(type) && hdr[4] != SAM_ERROR))
		return sync_fail(s, TB_E_SAM_PROTO);
	blen = len - 1u - SAM_ID_LEN;
	if (hdr[4] == SAM_ERROR) {
		if (blen != sizeof(code) || io_all(s->fd, code, sizeof(code), 0) != 0 ||
		    (int)be32(code) >= 0)
			return sync_fail(s, TB_E_SAM_PROTO);
		return (int)be32(code);
	}
	if (blen > cap)
		return sync_fail(s, TB_E_NOSPACE);
	if (blen > 0 && io_all(s->fd, reply, blen, 0) != 0)
		return sync_fail(s, TB_E_IO);
	*rn = blen;
	return 0;
}

void sam_sync_close(struct sam_sync *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* ------------------------------------------------------------------- async --- */

struct pending {
	uint32_t id;
	uint8_t type;
	sam_reply_fn cb;
	void *arg;
};

struct sam_client {
	struct bufferevent *bev;
	struct sam_hello hello;
	struct pending *ring;
	uint32_t cap, head, count;
	uint32_t next_id;
	int closed;
	void (*on_close)(void *arg, int err);
	void *close_arg;
	uint32_t limits[FRAME_TYPES];
	struct frame_rd rd;
	uint8_t buf[];                /* SAM_REPLY_MAX: the reply being received */
};

static void client_end(struct sam_client *c, int err)
{
	if (c->closed)
		return;
	c->closed = 1;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	while (c->count > 0) {
		struct pending p = c->ring[c->head];

		c->head = (c->head + 1) % c->cap;
		c->count--;
		p.cb(p.arg, TB_E_IO, NULL, 0);
	}
	if (c->on_close != NULL)
		c->on_close(c->close_arg, err);
}

/* One whole reply: it must answer the oldest waiting request. */
static int client_reply(struct sam_client *c, uint8_t type, const uint8_t *p, size_t n)
{
	struct pending q;

	if (c->count == 0 || n < SAM_ID_LEN)
		return TB_E_SAM_PROTO;
	q = c->ring[c->head];
	if (be32(p) != q.id || (type != SAM_REPLY(q.type) && type != SAM_ERROR) ||
	    (type == SAM_ERROR && n != SAM_ID_LEN + 4))
		return TB_E_SAM_PROTO;
	c->head = (c->head + 1) % c->cap;
	c->count--;
	if (type == SAM_ERROR)
		q.cb(q.arg, (int)be32(p + SAM_ID_LEN), NULL, 0);
	else
		q.cb(q.arg, 0, p + SAM_ID_LEN, n - SAM_ID_LEN);
	return 0;
}

static void client_read_cb(struct bufferevent *bev, void *arg)
{
	struct sam_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!c->closed) {
		int st = frame_rd_state(&c->rd);

		if (st == FRAME_READY) {
			const uint8_t *p = NULL;
			uint8_t type = 0;
			size_t n = 0;

			(void)frame_rd_take(&c->rd, &type, &p, &n);
			if (client_reply(c, type, p, n) != 0) {
				client_end(c, TB_E_SAM_PROTO);
				return;
			}
			continue;
		}
		if (st < 0) {
			client_end(c, st);
			return;
		}
		{
			struct evbuffer_iovec v;

			if (evbuffer_get_length(in) == 0 || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			(void)evbuffer_drain(in, frame_rd_push(&c->rd, v.iov_base, v.iov_len));
		}
	}
}

static void client_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		client_end(arg, TB_E_IO);
}

int sam_client_new(struct event_base *base, const char *path, uint32_t max_inflight,
		   struct sam_client **out)
{
	struct sam_sync s;
	struct sam_client *c;
	int rc, fd;

	*out = NULL;
	if (base == NULL || max_inflight == 0 || max_inflight > (1u << 20))
		return TB_E_INVAL;
	if ((rc = sam_sync_connect(&s, path)) != 0)
		return rc;
	fd = s.fd;
	c = calloc(1, sizeof(*c) + SAM_REPLY_MAX);
	if (c == NULL || (c->ring = calloc(max_inflight, sizeof(*c->ring))) == NULL) {
		free(c);
		sam_sync_close(&s);
		return TB_E_NOMEM;
	}
	c->cap = max_inflight;
	c->next_id = s.next_id;
	c->hello = s.hello;
	sam_reply_limits(c->limits);
	(void)frame_rd_init(&c->rd, c->buf, SAM_REPLY_MAX, SAM_REPLY_MAX + 1u, c->limits);
	if (evutil_make_socket_nonblocking(fd) != 0 ||
	    (c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		close(fd);
		free(c->ring);
		free(c);
		return TB_E_NOMEM;
	}
	bufferevent_setcb(c->bev, client_read_cb, NULL, client_event_cb, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0) {
		sam_client_free(c);
		return TB_E_IO;
	}
	*out = c;
	return 0;
}

const struct sam_hello *sam_client_hello(const struct sam_client *c)
{
	return &c->hello;
}

int sam_client_call(struct sam_client *c, uint8_t type, const uint8_t *body, size_t n,
		    sam_reply_fn cb, void *arg)
{
	uint8_t hdr[FRAME_HDR_LEN + SAM_ID_LEN];
	struct pending *q;

	if (c == NULL || cb == NULL || n > SAM_REQ_MAX - SAM_ID_LEN || (n > 0 && body == NULL))
		return TB_E_INVAL;
	if (c->closed)
		return TB_E_IO;
	if (c->count == c->cap)
		return TB_E_NOSPACE;
	q = &c->ring[(c->head + c->count) % c->cap];
	q->id = c->next_id++;
	q->type = type;
	q->cb = cb;
	q->arg = arg;
	frame_head(hdr, type, q->id, n);
	if (bufferevent_write(c->bev, hdr, sizeof(hdr)) != 0 ||
	    (n > 0 && bufferevent_write(c->bev, body, n) != 0)) {
		/* Out of memory, maybe half a frame queued: the stream is unusable. This
		 * one time the other requests' callbacks run from inside a call. */
		client_end(c, TB_E_NOMEM);
		return TB_E_IO;
	}
	c->count++;
	return 0;
}

size_t sam_client_inflight(const struct sam_client *c)
{
	return c != NULL ? c->count : 0;
}

void sam_client_on_close(struct sam_client *c, void (*fn)(void *arg, int err), void *arg)
{
	c->on_close = fn;
	c->close_arg = arg;
}

void sam_client_free(struct sam_client *c)
{
	if (c == NULL)
		return;
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	free(c->ring);
	ct_wipe(c->buf, SAM_REPLY_MAX);
	free(c);
}
