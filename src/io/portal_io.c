/* portal_io.c - the portal's HTTPS adapter (see portal_io.h): evhttp over OpenSSL
 * bufferevents on the server's loop, one request at a time into the core and its
 * answer out with the security headers. What stays true: every request gets exactly
 * one reply carrying those headers; the log line names the route, never the path,
 * query, cookie or serial. */
#include "portal_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "lib/crypto.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "tls.h"

#define PORTAL_BACKLOG 64
#define PORTAL_BUF (2u * PORTAL_BODY_MIN)

static const char csp[] = "default-src 'none'; style-src 'self'; img-src 'self'; "
			  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

struct portal_srv {
	struct portal core;
	struct evhttp *http;
	struct tls_server *tls;
	struct db *db;
	FILE *log;
	char base_url[PORTAL_URL_MAX];
	uint8_t *buf;                /* the response body buffer, PORTAL_BUF bytes */
};

static void now_times(int64_t *s, int64_t *ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	*s = (int64_t)ts.tv_sec;
	*ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct bufferevent *portal_bevcb(struct event_base *base, void *arg)
{
	struct portal_srv *ps = arg;
	struct ssl_st *ssl = tls_server_ssl(ps->tls);
	struct bufferevent *bev;

	if (ssl == NULL)
		return NULL;
	bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		tls_ssl_free(ssl);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

static uint8_t method_of(struct evhttp_request *req)
{
	switch (evhttp_request_get_command(req)) {
	case EVHTTP_REQ_GET: return PORTAL_GET;
	case EVHTTP_REQ_POST: return PORTAL_POST;
	case EVHTTP_REQ_HEAD: return PORTAL_HEAD;
	default: return PORTAL_OTHER;
	}
}

static const char *method_name(uint8_t m)
{
	return m == PORTAL_GET ? "GET" : m == PORTAL_POST ? "POST" : m == PORTAL_HEAD ? "HEAD" : "OTHER";
}

static int add_headers(struct evkeyvalq *h, const struct portal_resp *rs)
{
	int rc = 0;

	rc |= evhttp_add_header(h, "Content-Type", rs->content_type);
	rc |= evhttp_add_header(h, "Content-Security-Policy", csp);
	rc |= evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	rc |= evhttp_add_header(h, "Referrer-Policy", "no-referrer");
	rc |= evhttp_add_header(h, "Cache-Control", "no-store");
	rc |= evhttp_add_header(h, "X-Frame-Options", "DENY");
	rc |= evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
	rc |= evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
	rc |= evhttp_add_header(h, "Strict-Transport-Security", "max-age=31536000");
	if (rs->set_cookie[0] != '\0')
		rc |= evhttp_add_header(h, "Set-Cookie", rs->set_cookie);
	if (rs->location[0] != '\0')
		rc |= evhttp_add_header(h, "Location", rs->location);
	if (rs->allow != NULL)
		rc |= evhttp_add_header(h, "Allow", rs->allow);
	if (rs->disposition != NULL)
		rc |= evhttp_add_header(h, "Content-Disposition", rs->disposition);
	return rc == 0 ? 0 : TB_E_NOMEM;
}

/* The request target as sent, split at the first '?' (libevent's URI parser would
 * read "//op" as an authority and hand over an empty path). A path longer than the
 * portal takes is passed on as "" (refused as malformed). The query, or NULL. */
static const char *split_target(const char *target, char path[PORTAL_PATH_MAX + 2],
				const char **out)
{
	size_t n = target != NULL ? strcspn(target, "?") : 0;

	*out = path;
	path[0] = '\0';
	if (target == NULL || n > PORTAL_PATH_MAX)
		return NULL;
	memcpy(path, target, n);
	path[n] = '\0';
	return target[n] == '?' ? target + n + 1 : NULL;
}

static void portal_gencb(struct evhttp_request *req, void *arg)
{
	struct portal_srv *ps = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req), *out = NULL;
	struct wr w = wr_init(ps->buf, PORTAL_BUF);
	struct portal_resp rs;
	struct portal_req rq;
	char path[PORTAL_PATH_MAX + 2];
	int rc;

	memset(&rq, 0, sizeof(rq));
	memset(&rs, 0, sizeof(rs));
	rs.body = &w;
	rq.method = method_of(req);
	rq.query = split_target(evhttp_request_get_uri(req), path, &rq.path);
	rq.cookie = evhttp_find_header(in, "Cookie");
	rq.origin = evhttp_find_header(in, "Origin");
	rq.fetch_site = evhttp_find_header(in, "Sec-Fetch-Site");
	rq.host = evhttp_find_header(in, "Host");
	rq.content_type = evhttp_find_header(in, "Content-Type");
	rq.body_n = evbuffer_get_length(body);
	rq.body = rq.body_n > 0 ? evbuffer_pullup(body, -1) : NULL;
	if (rq.body == NULL)
		rq.body_n = 0;
	now_times(&rq.now, &rq.now_ms);
	rc = portal_handle(&ps->core, ps->db, &rq, &rs);
	out = evbuffer_new();
	if (out == NULL || add_headers(evhttp_request_get_output_headers(req), &rs) != 0 ||
	    evbuffer_add(out, w.p, w.len) != 0)
		goto fail;
	while (rs.more) { /* a CSV export larger than the buffer */
		w.len = 0;
		if (portal_csv_more(ps->db, &rs) != 0 || evbuffer_add(out, w.p, w.len) != 0)
			goto fail;
	}
	evhttp_send_reply(req, rs.status, NULL, out);
	evbuffer_free(out);
	if (ps->log != NULL)
		fprintf(ps->log, "portal event=request method=%s route=%s status=%d%s%s\n",
			method_name(rq.method), rs.log_route, rs.status, rc != 0 ? " err=" : "",
			rc != 0 ? tb_strerror(rc) : "");
	ct_wipe(ps->buf, w.len);
	return;
fail:
	if (out != NULL)
		evbuffer_free(out);
	ct_wipe(ps->buf, PORTAL_BUF);
	evhttp_send_error(req, 500, NULL);
	if (ps->log != NULL)
		fprintf(ps->log, "portal event=request method=%s route=%s status=500 err=reply\n",
			method_name(rq.method), rs.log_route);
}

/* ------------------------------------------------------------ files --- */

int portal_key_load(const char *state_dir, uint8_t key[PORTAL_KEY_LEN])
{
	char path[4096];
	uint8_t k[PORTAL_KEY_LEN + 1];
	struct stat st;
	ssize_t n;
	int fd, rc = TB_E_IO;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, PORTAL_KEY_FILE) >= sizeof(path))
		return TB_E_INVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (crypto_random(k, PORTAL_KEY_LEN) != 0 || write(fd, k, PORTAL_KEY_LEN) != PORTAL_KEY_LEN ||
		    fsync(fd) != 0) {
			close(fd);
			(void)unlink(path);
			goto out;
		}
		close(fd);
	} else if (errno != EEXIST) {
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	n = read(fd, k, sizeof(k));
	if (fstat(fd, &st) == 0 && (st.st_mode & 077) == 0 && n == PORTAL_KEY_LEN) {
		memcpy(key, k, PORTAL_KEY_LEN);
		rc = 0;
	}
	close(fd);
out:
	ct_wipe(k, sizeof(k));
	return rc;
}

int portal_url_load(const char *state_dir, char url[PORTAL_URL_MAX])
{
	char path[4096];
	FILE *f;

	url[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, PORTAL_URL_FILE) >= sizeof(path))
		return TB_E_INVAL;
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	if (fgets(url, PORTAL_URL_MAX, f) == NULL)
		url[0] = '\0';
	url[strcspn(url, "\r\n")] = '\0';
	fclose(f);
	return 0;
}

static int url_save(const char *state_dir, const char *url)
{
	char path[4096], tmp[4200];
	FILE *f;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", state_dir, PORTAL_URL_FILE) >= sizeof(path))
		return TB_E_INVAL;
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return TB_E_IO;
	if (fprintf(f, "%s\n", url) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		return TB_E_IO;
	return 0;
}

/* ------------------------------------------------------------ start --- */

int portal_start(struct event_base *base, const struct portal_cfg *cfg, struct portal_srv **out,
		 char bound[SRV_ADDR_MAX])
{
	struct portal_srv *ps = NULL;
	struct evconnlistener *lst = NULL;
	struct sockaddr_storage ss;
	socklen_t blen = sizeof(ss);
	uint8_t key[PORTAL_KEY_LEN];
	char addr[SRV_ADDR_MAX];
	int len = (int)sizeof(ss), rc = TB_E_INVAL;
	int64_t now, now_ms;

	if (base == NULL || cfg == NULL || cfg->listen == NULL || cfg->state_dir == NULL ||
	    cfg->tls == NULL || cfg->db == NULL || out == NULL ||
	    srv_addr_parse(cfg->listen, (struct sockaddr *)&ss, &len) != 0)
		return TB_E_INVAL;
	rc = TB_E_NOMEM;
	ps = calloc(1, sizeof(*ps));
	if (ps == NULL || (ps->buf = malloc(PORTAL_BUF)) == NULL || (ps->http = evhttp_new(base)) == NULL)
		goto out;
	if ((rc = portal_key_load(cfg->state_dir, key)) != 0)
		goto out;
	now_times(&now, &now_ms);
	portal_init(&ps->core, key, now_ms);
	ct_wipe(key, sizeof(key));
	ps->tls = cfg->tls;
	ps->db = cfg->db;
	ps->log = cfg->log;
	evhttp_set_max_headers_size(ps->http, PORTAL_HEADERS_MAX);
	evhttp_set_max_body_size(ps->http, PORTAL_HTTP_BODY_MAX);
	evhttp_set_allowed_methods(ps->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
					     EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
					     EVHTTP_REQ_PATCH);
	evhttp_set_timeout(ps->http, PORTAL_TIMEOUT_S);
	evhttp_set_bevcb(ps->http, portal_bevcb, ps);
	evhttp_set_gencb(ps->http, portal_gencb, ps);
	rc = TB_E_IO;
	lst = evconnlistener_new_bind(base, NULL, NULL,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				      PORTAL_BACKLOG, (struct sockaddr *)&ss, len);
	if (lst == NULL)
		goto out;
	if (evhttp_bind_listener(ps->http, lst) == NULL) {
		evconnlistener_free(lst);
		goto out;
	}
	if (getsockname(evconnlistener_get_fd(lst), (struct sockaddr *)&ss, &blen) != 0 ||
	    srv_addr_text((struct sockaddr *)&ss, addr) != 0)
		goto out;
	if ((size_t)snprintf(ps->base_url, sizeof(ps->base_url), "%s",
			     cfg->public_url != NULL ? cfg->public_url : "") >= sizeof(ps->base_url))
		goto out;
	if (cfg->public_url == NULL)
		snprintf(ps->base_url, sizeof(ps->base_url), "https://%s", addr);
	if (url_save(cfg->state_dir, ps->base_url) != 0)
		goto out;
	if (bound != NULL)
		memcpy(bound, addr, SRV_ADDR_MAX);
	*out = ps;
	ps = NULL;
	rc = 0;
out:
	portal_stop(ps);
	return rc;
}

void portal_stop(struct portal_srv *ps)
{
	if (ps == NULL)
		return;
	if (ps->http != NULL)
		evhttp_free(ps->http);
	portal_wipe(&ps->core);
	if (ps->buf != NULL) {
		ct_wipe(ps->buf, PORTAL_BUF);
		free(ps->buf);
	}
	free(ps);
}

int portal_customer_link(struct portal_srv *ps, const uint8_t se[DB_SERIAL_LEN], char *url,
			 size_t cap)
{
	char tok[PORTAL_LINK_HEX];
	int64_t now, now_ms;
	int rc;

	now_times(&now, &now_ms);
	rc = portal_link_make(ps->core.key, PORTAL_CUSTOMER, se, now_ms, PORTAL_LINK_TTL_S, tok);
	if (rc == 0 && (size_t)snprintf(url, cap, "%s/login?t=%s", ps->base_url, tok) >= cap)
		rc = TB_E_NOSPACE;
	ct_wipe(tok, sizeof(tok));
	return rc;
}
