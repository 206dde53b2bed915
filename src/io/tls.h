/* tls.h - TLS 1.3 for the phone <-> server link: the server's certificate (made on the
 * first start, pinned by phones through its SHA-256 fingerprint), a server context, and a
 * client context that accepts exactly one pinned server certificate.
 *
 * tls.c is the one adapter that includes libssl and X.509 headers. Callers see an SSL
 * connection only as `struct ssl_st *`, a handle to give to libevent
 * (bufferevent_openssl_socket_new) or to the few calls below. Hashes go through the
 * crypto port (lib/crypto.h), the pin compare through ct_eq().
 *
 * Both contexts speak TLS 1.3 only, without session tickets or a session cache, and
 * with SSL_MODE_RELEASE_BUFFERS so an idle connection holds no record buffers. */
#ifndef TB_IO_TLS_H
#define TB_IO_TLS_H

#include <stddef.h>
#include <stdint.h>

#define TLS_FPR_LEN 32u     /* SHA-256 of the certificate's DER encoding */
#define TLS_FPR_HEX_LEN 65u /* 64 uppercase hex digits and a NUL */
#define TLS_CERT_FILE "cert.pem"
#define TLS_KEY_FILE "key.pem"
#define TLS_CN "tapbridge server"

struct ssl_st;
struct tls_server;
struct tls_client;

/* Loads DIR/cert.pem and DIR/key.pem (the key must not be readable by group or others),
 * or, when neither exists, makes a self-signed ECDSA P-256 certificate (CN
 * "tapbridge server", 10 years) and writes both files (mode 0600, each written to a
 * temporary name, synced and renamed; the key first). A key without its certificate
 * (a start cut between the two renames) gets a new certificate; a certificate without
 * its key is refused. *created is 1 when a certificate was made. The directory must
 * exist. On failure (TB_E_IO, TB_E_CRYPTO, TB_E_NOMEM) why gets a line for the operator
 * (NUL-terminated, may be cut at whylen) and *out is untouched. */
int tls_server_open(const char *dir, struct tls_server **out, int *created, char *why,
		    size_t whylen);
/* The certificate's fingerprint (what phone profiles pin). */
void tls_server_fingerprint(const struct tls_server *t, uint8_t fpr[TLS_FPR_LEN]);
/* A new server-side connection object, or NULL when out of memory. Owned by the caller
 * (libevent frees it with BEV_OPT_CLOSE_ON_FREE; otherwise tls_ssl_free). */
struct ssl_st *tls_server_ssl(struct tls_server *t);
/* Accepts NULL. Connections made from t must be freed first. */
void tls_server_free(struct tls_server *t);

/* A client context that accepts only a server whose certificate hashes to pin (copied).
 * No name or chain checks: the pin is the whole trust decision. TB_E_NOMEM, TB_E_CRYPTO. */
int tls_client_new(const uint8_t pin[TLS_FPR_LEN], struct tls_client **out);
struct ssl_st *tls_client_ssl(struct tls_client *c);
void tls_client_free(struct tls_client *c);

void tls_ssl_free(struct ssl_st *ssl);
/* Sends close_notify once, without waiting (best effort on a non-blocking socket). */
void tls_ssl_close_notify(struct ssl_st *ssl);
/* The fingerprint of the peer's certificate: 0, or TB_E_INVAL when it sent none. */
int tls_peer_fingerprint(struct ssl_st *ssl, uint8_t fpr[TLS_FPR_LEN]);
/* The negotiated protocol version ("TLSv1.3"), for logs and tests. */
const char *tls_ssl_version(const struct ssl_st *ssl);

/* Fingerprint text: 64 uppercase hex digits, no colons. */
int tls_fpr_hex(const uint8_t fpr[TLS_FPR_LEN], char out[TLS_FPR_HEX_LEN]);
/* Parses a fingerprint as printed ("SHA256:" prefix optional; colons, spaces and either
 * case accepted): 0, or TB_E_HEX / TB_E_INVAL (not 32 bytes); fpr is written on success only. */
int tls_fpr_parse(const char *s, uint8_t fpr[TLS_FPR_LEN]);

/* Text for an OpenSSL error code (bufferevent_get_openssl_error()), for log lines. */
const char *tls_err_text(unsigned long e, char *buf, size_t n);

/* ---- benchmarks and blocking clients (tapbridge bench; docs in bench.c) ---- */

/* Blocking use of a connection on a connected blocking socket fd (the SSL does not own
 * fd). Each: 0, or TB_E_CRYPTO (handshake or record failure), TB_E_IO (peer closed). */
int tls_ssl_connect_fd(struct ssl_st *ssl, int fd);
int tls_ssl_write_all(struct ssl_st *ssl, const uint8_t *p, size_t n);
int tls_ssl_read_n(struct ssl_st *ssl, uint8_t *p, size_t n);

/* Full TLS 1.3 handshakes over loopback TCP for `seconds`: a server thread accepting with
 * s, a client (the calling thread) connecting with c; each counts once the client has
 * read one byte the server sent after its handshake finished. *per_s on success;
 * TB_E_IO, TB_E_CRYPTO, TB_E_NOMEM. */
int tls_bench_handshakes(struct tls_server *s, struct tls_client *c, double seconds,
			 double *per_s);
/* The reference server of bench sessions: one bare libevent loop with OpenSSL's default
 * server context (TLS 1.3, DIR's certificate), echoing what it reads. Writes its port
 * (uint16_t, host order) to port_fd, then serves until the process is killed. release:
 * also SSL_MODE_RELEASE_BUFFERS. Returns only on failure (TB_E_IO, TB_E_CRYPTO,
 * TB_E_NOMEM). */
int tls_bench_bare_serve(const char *dir, int release, int port_fd);

#endif
