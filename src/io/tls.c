/* tls.c - the server certificate, TLS 1.3 contexts and certificate pinning (see tls.h).
 * The one adapter that includes libssl and X.509 headers. What stays true: a key file is
 * never overwritten, a file is only ever seen whole (temporary name, sync, rename), and a
 * client context accepts no certificate but the pinned one. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/crypto.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"

#define TLS_CERT_DAYS 3652
#define TLS_PATH_MAX 4096

struct tls_server {
	SSL_CTX *ctx;
	uint8_t fpr[TLS_FPR_LEN];
};

struct tls_client {
	SSL_CTX *ctx;
	uint8_t pin[TLS_FPR_LEN];
};

static void tls_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void tls_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* The first queued OpenSSL error as text (the queue is cleared). */
static const char *tls_ossl_text(char *buf, size_t n)
{
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	return e != 0 ? tls_err_text(e, buf, n) : "no detail";
}

const char *tls_err_text(unsigned long e, char *buf, size_t n)
{
	const char *r = ERR_reason_error_string(e);

	if (r != NULL)
		snprintf(buf, n, "%s", r);
	else
		ERR_error_string_n(e, buf, n);
	return buf;
}

static int tls_cert_fpr(X509 *x, uint8_t fpr[TLS_FPR_LEN])
{
	unsigned char *der = NULL;
	int len = i2d_X509(x, &der);
	int rc;

	if (len <= 0)
		return TB_E_CRYPTO;
	rc = crypto_sha256(der, (size_t)len, fpr);
	OPENSSL_free(der);
	return rc;
}

/* ---- files ---- */

static int tls_path(char *out, const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(out, TLS_PATH_MAX, "%s/%s%s", dir, name, suffix);

	return n > 0 && n < TLS_PATH_MAX ? 0 : TB_E_INVAL;
}

static int tls_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int tls_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return TB_E_IO;
	rc = fsync(fd) == 0 ? 0 : TB_E_IO;
	close(fd);
	return rc;
}

/* Writes one PEM file whole: DIR/NAME.tmp (0600), sync, rename to DIR/NAME, sync DIR. */
static int tls_write_pem(const char *dir, const char *name, EVP_PKEY *key, X509 *cert)
{
	char tmp[TLS_PATH_MAX], path[TLS_PATH_MAX];
	FILE *f = NULL;
	int fd = -1, rc = TB_E_IO, ok;

	if (tls_path(tmp, dir, name, ".tmp") != 0 || tls_path(path, dir, name, "") != 0)
		return TB_E_INVAL;
	(void)unlink(tmp); /* left by a start that was cut: never seen as the real file */
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	f = fdopen(fd, "w");
	if (f == NULL)
		goto out;
	fd = -1;
	ok = key != NULL ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
			 : PEM_write_X509(f, cert);
	if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0)
		goto out;
	if (fclose(f) != 0) {
		f = NULL;
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0)
		goto out;
	rc = tls_sync_dir(dir);
out:
	if (f != NULL)
		fclose(f);
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		(void)unlink(tmp);
	return rc;
}

static int tls_read_key(const char *path, EVP_PKEY **out, char *why, size_t whylen)
{
	struct stat st;
	FILE *f = fopen(path, "re");
	EVP_PKEY *key = NULL;
	char e[120];

	if (f == NULL) {
		tls_why(why, whylen, "%s: %s", path, strerror(errno));
		return TB_E_IO;
	}
	if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077) != 0) {
		tls_why(why, whylen, "%s: readable by group or others (chmod 600)", path);
		fclose(f);
		return TB_E_IO;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL) {
		tls_why(why, whylen, "%s: not a PEM private key (%s)", path, tls_ossl_text(e, sizeof(e)));
		return TB_E_CRYPTO;
	}
	*out = key;
	return 0;
}

static int tls_read_cert(const char *path, X509 **out, char *why, size_t whylen)
{
	FILE *f = fopen(path, "re");
	X509 *x;
	char e[120];

	if (f == NULL) {
		tls_why(why, whylen, "%s: %s", path, strerror(errno));
		return TB_E_IO;
	}
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (x == NULL) {
		tls_why(why, whylen, "%s: not a PEM certificate (%s)", path, tls_ossl_text(e, sizeof(e)));
		return TB_E_CRYPTO;
	}
	*out = x;
	return 0;
}

/* ---- the self-signed certificate ---- */

static int tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return TB_E_CRYPTO;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : TB_E_CRYPTO;
}

/* A random positive 127-bit serial, as RFC 5280 asks of issuers (unique, <= 20 bytes). */
static int tls_set_serial(X509 *x)
{
	uint8_t rnd[16];
	BIGNUM *bn = NULL;
	int rc = TB_E_CRYPTO;

	if (crypto_random(rnd, sizeof(rnd)) != 0)
		return TB_E_CRYPTO;
	rnd[0] = (uint8_t)((rnd[0] & 0x7F) | 0x40);
	bn = BN_bin2bn(rnd, (int)sizeof(rnd), NULL);
	if (bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL)
		rc = 0;
	BN_free(bn);
	return rc;
}

static int tls_make_cert(EVP_PKEY *key, X509 **out)
{
	X509 *x = X509_new();
	X509_NAME *name;
	int rc = TB_E_CRYPTO;

	if (x == NULL)
		return TB_E_NOMEM;
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || tls_set_serial(x) != 0 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), TLS_CERT_DAYS, 0, NULL) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)TLS_CN,
					-1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, key))
		goto out;
	if (tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    tls_add_ext(x, NID_key_usage, "critical,digitalSignature") != 0 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth") != 0 ||
	    tls_add_ext(x, NID_subject_alt_name, "DNS:tapbridge-server") != 0 ||
	    tls_add_ext(x, NID_subject_key_identifier, "hash") != 0)
		goto out;
	if (X509_sign(x, key, EVP_sha256()) <= 0)
		goto out;
	*out = x;
	x = NULL;
	rc = 0;
out:
	X509_free(x);
	return rc;
}

/* Loads or makes the key and certificate (see tls.h for the cases). */
static int tls_load_or_make(const char *dir, EVP_PKEY **keyp, X509 **certp, int *created,
			    char *why, size_t whylen)
{
	char kpath[TLS_PATH_MAX], cpath[TLS_PATH_MAX], e[120];
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc, have_key, have_cert;

	if (tls_path(kpath, dir, TLS_KEY_FILE, "") != 0 || tls_path(cpath, dir, TLS_CERT_FILE, "") != 0) {
		tls_why(why, whylen, "%s: path too long", dir);
		return TB_E_INVAL;
	}
	have_key = tls_exists(kpath);
	have_cert = tls_exists(cpath);
	*created = 0;
	if (have_cert && !have_key) {
		tls_why(why, whylen, "%s exists without %s: restore the key or remove both", cpath, kpath);
		return TB_E_IO;
	}
	if (have_key) {
		rc = tls_read_key(kpath, &key, why, whylen);
	} else {
		key = EVP_EC_gen("P-256");
		rc = key != NULL ? tls_write_pem(dir, TLS_KEY_FILE, key, NULL) : TB_E_CRYPTO;
		if (rc != 0)
			tls_why(why, whylen, "%s: cannot create the key (%s)", kpath,
				key != NULL ? strerror(errno) : tls_ossl_text(e, sizeof(e)));
	}
	if (rc != 0)
		goto out;
	if (have_cert) {
		rc = tls_read_cert(cpath, &cert, why, whylen);
	} else {
		rc = tls_make_cert(key, &cert);
		if (rc == 0)
			rc = tls_write_pem(dir, TLS_CERT_FILE, NULL, cert);
		if (rc != 0)
			tls_why(why, whylen, "%s: cannot create the certificate (%s)", cpath,
				rc == TB_E_IO ? strerror(errno) : tls_ossl_text(e, sizeof(e)));
		*created = rc == 0;
	}
	if (rc != 0)
		goto out;
	*keyp = key;
	*certp = cert;
	key = NULL;
	cert = NULL;
out:
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

/* ---- contexts ---- */

/* What both sides share: TLS 1.3 only, no resumption state, no idle record buffers. */
static SSL_CTX *tls_ctx_new(const SSL_METHOD *method)
{
	SSL_CTX *ctx = SSL_CTX_new(method);

	if (ctx == NULL)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_num_tickets(ctx, 0)) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* Frames carry their own lengths, so a close without close_notify cannot cut a
	 * frame unnoticed: report it as an end of stream, not as a protocol error. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_IGNORE_UNEXPECTED_EOF);
	return ctx;
}

int tls_server_open(const char *dir, struct tls_server **out, int *created, char *why,
		    size_t whylen)
{
	struct tls_server *t = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int rc, made = 0;
	char e[120];

	if (dir == NULL || out == NULL) {
		tls_why(why, whylen, "no state directory");
		return TB_E_INVAL;
	}
	rc = tls_load_or_make(dir, &key, &cert, &made, why, whylen);
	if (rc != 0)
		goto out;
	rc = TB_E_NOMEM;
	t = calloc(1, sizeof(*t));
	if (t == NULL || (t->ctx = tls_ctx_new(TLS_server_method())) == NULL)
		goto out;
	rc = TB_E_CRYPTO;
	if (SSL_CTX_use_certificate(t->ctx, cert) != 1 || SSL_CTX_use_PrivateKey(t->ctx, key) != 1 ||
	    SSL_CTX_check_private_key(t->ctx) != 1) {
		tls_why(why, whylen, "%s: key does not fit the certificate (%s)", dir,
			tls_ossl_text(e, sizeof(e)));
		goto out;
	}
	if (tls_cert_fpr(cert, t->fpr) != 0)
		goto out;
	if (created != NULL)
		*created = made;
	*out = t;
	t = NULL;
	rc = 0;
out:
	if (rc == TB_E_NOMEM)
		tls_why(why, whylen, "out of memory");
	tls_server_free(t);
	EVP_PKEY_free(key);
	X509_free(cert);
	return rc;
}

void tls_server_fingerprint(const struct tls_server *t, uint8_t fpr[TLS_FPR_LEN])
{
	memcpy(fpr, t->fpr, TLS_FPR_LEN);
}

struct ssl_st *tls_server_ssl(struct tls_server *t)
{
	return SSL_new(t->ctx);
}

void tls_server_free(struct tls_server *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* Replaces chain building and name checks: the leaf's DER hash is the trust decision. */
static int tls_pin_verify(X509_STORE_CTX *xs, void *arg)
{
	const struct tls_client *c = arg;
	X509 *leaf = X509_STORE_CTX_get0_cert(xs);
	uint8_t fpr[TLS_FPR_LEN];

	if (leaf == NULL || tls_cert_fpr(leaf, fpr) != 0) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	if (!ct_eq(fpr, c->pin, TLS_FPR_LEN)) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	X509_STORE_CTX_set_error(xs, X509_V_OK);
	return 1;
}

int tls_client_new(const uint8_t pin[TLS_FPR_LEN], struct tls_client **out)
{
	struct tls_client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return TB_E_NOMEM;
	c->ctx = tls_ctx_new(TLS_client_method());
	if (c->ctx == NULL) {
		free(c);
		return TB_E_CRYPTO;
	}
	memcpy(c->pin, pin, TLS_FPR_LEN);
	SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(c->ctx, tls_pin_verify, c);
	*out = c;
	return 0;
}

struct ssl_st *tls_client_ssl(struct tls_client *c)
{
	return SSL_new(c->ctx);
}

void tls_client_free(struct tls_client *c)
{
	if (c == NULL)
		return;
	SSL_CTX_free(c->ctx);
	ct_wipe(c->pin, sizeof(c->pin));
	free(c);
}

void tls_ssl_free(struct ssl_st *ssl)
{
	SSL_free(ssl);
}

void tls_ssl_close_notify(struct ssl_st *ssl)
{
	if (ssl == NULL)
		return;
	if ((SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN) == 0 && SSL_is_init_finished(ssl))
		(void)SSL_shutdown(ssl);
	ERR_clear_error();
}

int tls_peer_fingerprint(struct ssl_st *ssl, uint8_t fpr[TLS_FPR_LEN])
{
	X509 *x = SSL_get0_peer_certificate(ssl);

	if (x == NULL)
		return TB_E_INVAL;
	return tls_cert_fpr(x, fpr);
}

const char *tls_ssl_version(const struct ssl_st *ssl)
{
	return SSL_get_version(ssl);
}

int tls_fpr_hex(const uint8_t fpr[TLS_FPR_LEN], char out[TLS_FPR_HEX_LEN])
{
	return hex_encode(fpr, TLS_FPR_LEN, HEX_PUBLIC, out, TLS_FPR_HEX_LEN);
}

int tls_fpr_parse(const char *s, uint8_t fpr[TLS_FPR_LEN])
{
	uint8_t tmp[TLS_FPR_LEN + 1];
	size_t n;
	int rc;

	if (s == NULL)
		return TB_E_INVAL;
	if (strncmp(s, "SHA256:", 7) == 0)
		s += 7;
	rc = hex_decode(s, strlen(s), tmp, sizeof(tmp), &n);
	if (rc == TB_E_NOSPACE || (rc == 0 && n != TLS_FPR_LEN))
		return TB_E_INVAL;
	if (rc != 0)
		return rc;
	memcpy(fpr, tmp, TLS_FPR_LEN);
	return 0;
}

/* ---- blocking use and benchmarks ---- */

int tls_ssl_connect_fd(struct ssl_st *ssl, int fd)
{
	int rc = SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1 ? 0 : TB_E_CRYPTO;

	ERR_clear_error();
	return rc;
}

int tls_ssl_write_all(struct ssl_st *ssl, const uint8_t *p, size_t n)
{
	size_t done = 0;

	while (done < n) {
		size_t w = 0;

		if (SSL_write_ex(ssl, p + done, n - done, &w) != 1) {
			ERR_clear_error();
			return TB_E_IO;
		}
		done += w;
	}
	return 0;
}

int tls_ssl_read_n(struct ssl_st *ssl, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		size_t r = 0;

		if (SSL_read_ex(ssl, p + got, n - got, &r) != 1) {
			int e = SSL_get_error(ssl, 0);

			ERR_clear_error();
			return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? TB_E_IO
										     : TB_E_CRYPTO;
		}
		got += r;
	}
	return 0;
}

struct tls_hs_srv {
	SSL_CTX *ctx;
	int lfd;
};

/* The server thread: accept, handshake, one byte, close; until the listener is shut. */
static void *tls_hs_serve(void *arg)
{
	struct tls_hs_srv *h = arg;
	int fd;

	while ((fd = accept(h->lfd, NULL, NULL)) >= 0) {
		SSL *ssl = SSL_new(h->ctx);

		if (ssl != NULL && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1)
			(void)SSL_write(ssl, "x", 1);
		SSL_free(ssl);
		ERR_clear_error();
		close(fd);
	}
	return NULL;
}

static double tls_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tls_loopback_listen(uint16_t *port)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/* One client handshake: 0 when the server's byte arrived. */
static int tls_hs_once(struct tls_client *c, uint16_t port)
{
	struct sockaddr_in a;
	SSL *ssl = NULL;
	uint8_t b;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = TB_E_IO;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	rc = TB_E_NOMEM;
	if ((ssl = SSL_new(c->ctx)) == NULL)
		goto out;
	if ((rc = tls_ssl_connect_fd(ssl, fd)) == 0)
		rc = tls_ssl_read_n(ssl, &b, 1);
out:
	SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	return rc;
}

int tls_bench_handshakes(struct tls_server *s, struct tls_client *c, double seconds,
			 double *per_s)
{
	struct tls_hs_srv h = { s->ctx, -1 };
	pthread_t th;
	uint16_t port = 0;
	double t0, t = 0;
	long n = 0;
	int rc = 0;

	if ((h.lfd = tls_loopback_listen(&port)) < 0)
		return TB_E_IO;
	if (pthread_create(&th, NULL, tls_hs_serve, &h) != 0) {
		close(h.lfd);
		return TB_E_NOMEM;
	}
	t0 = tls_now();
	while (rc == 0 && t < seconds) {
		if ((rc = tls_hs_once(c, port)) == 0)
			n++;
		t = tls_now() - t0;
	}
	(void)shutdown(h.lfd, SHUT_RDWR); /* wakes accept() in the server thread */
	pthread_join(th, NULL);
	close(h.lfd);
	if (rc == 0)
		*per_s = (double)n / t;
	return rc;
}

/* The bare reference loop: what a plain libevent + OpenSSL server holds per connection. */
static void tls_bare_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_write_buffer(bev, bufferevent_get_input(bev));
}

static void tls_bare_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void tls_bare_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			    int n, void *arg)
{
	SSL *ssl = SSL_new(arg);
	struct bufferevent *bev = NULL;
	int one = 1;

	(void)sa;
	(void)n;
	/* Without it each echo waits for a delayed ACK (40 ms per connection). */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (ssl != NULL)
		bev = bufferevent_openssl_socket_new(evconnlistener_get_base(l), fd, ssl,
						     BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
		return;
	}
	bufferevent_setcb(bev, tls_bare_read, NULL, tls_bare_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

int tls_bench_bare_serve(const char *dir, int release, int port_fd)
{
	char cert[TLS_PATH_MAX], key[TLS_PATH_MAX];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct event_base *base = event_base_new();
	struct evconnlistener *l = NULL;
	uint16_t port = 0;
	int lfd = -1, rc = TB_E_NOMEM;

	if (ctx == NULL || base == NULL)
		goto out;
	rc = TB_E_CRYPTO;
	if (tls_path(cert, dir, TLS_CERT_FILE, "") != 0 || tls_path(key, dir, TLS_KEY_FILE, "") != 0 ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto out;
	if (release)
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	rc = TB_E_IO;
	if ((lfd = tls_loopback_listen(&port)) < 0 || evutil_make_socket_nonblocking(lfd) != 0)
		goto out;
	l = evconnlistener_new(base, tls_bare_accept, ctx, LEV_OPT_CLOSE_ON_FREE, -1, lfd);
	if (l == NULL)
		goto out;
	lfd = -1;
	if (write(port_fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
		goto out;
	event_base_dispatch(base);
out:
	if (lfd >= 0)
		close(lfd);
	if (l != NULL)
		evconnlistener_free(l);
	if (base != NULL)
		event_base_free(base);
	SSL_CTX_free(ctx);
	return rc;
}
