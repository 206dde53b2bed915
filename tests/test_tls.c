/* test_tls.c - the server certificate and the TLS contexts (io/tls.h): the first open
 * makes a P-256 self-signed certificate whose fingerprint (checked here with OpenSSL's own
 * digest, not the crypto port) stays the same across reloads; the key file is 0600 and
 * refused when others can read it; a certificate without its key is refused, a key
 * without its certificate gets a new one; a pinned client accepts the right fingerprint,
 * rejects a wrong one; a TLS 1.2 client is refused. Handshakes run over BIO pairs. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "err.h"
#include "tls.h"
#include "vec.h"

struct dir {
	char path[64];
	char key[96];
	char cert[96];
};

static void dir_make(struct dir *d)
{
	strcpy(d->path, "/tmp/tb_tls_XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->key, sizeof(d->key), "%s/%s", d->path, TLS_KEY_FILE);
	snprintf(d->cert, sizeof(d->cert), "%s/%s", d->path, TLS_CERT_FILE);
}

static void dir_remove(const struct dir *d)
{
	(void)unlink(d->key);
	(void)unlink(d->cert);
	(void)rmdir(d->path);
}

static struct tls_server *open_ok(const struct dir *d, int want_created, uint8_t fpr[TLS_FPR_LEN])
{
	struct tls_server *t = NULL;
	char why[256] = "";
	int created = -1;

	if (tls_server_open(d->path, &t, &created, why, sizeof(why)) != 0)
		fail_msg("tls_server_open: %s", why);
	assert_int_equal(created, want_created);
	tls_server_fingerprint(t, fpr);
	return t;
}

/* The fingerprint as a phone would compute it: SHA-256 of the DER, by OpenSSL. */
static void file_fingerprint(const char *path, uint8_t fpr[TLS_FPR_LEN])
{
	FILE *f = fopen(path, "r");
	X509 *x;
	unsigned int n = 0;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_digest(x, EVP_sha256(), fpr, &n), 1);
	assert_int_equal(n, TLS_FPR_LEN);
	X509_free(x);
}

static void test_cert_made_and_reloaded(void **state)
{
	struct dir d;
	uint8_t f1[TLS_FPR_LEN], f2[TLS_FPR_LEN], ff[TLS_FPR_LEN];
	struct tls_server *t;
	struct stat st;
	FILE *f;
	X509 *x;
	EVP_PKEY *pub;
	char cn[64];
	BASIC_CONSTRAINTS *bc;

	(void)state;
	dir_make(&d);
	t = open_ok(&d, 1, f1);
	tls_server_free(t);
	assert_int_equal(stat(d.key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(stat(d.cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	file_fingerprint(d.cert, ff);
	assert_memory_equal(f1, ff, TLS_FPR_LEN);

	t = open_ok(&d, 0, f2);
	tls_server_free(t);
	assert_memory_equal(f1, f2, TLS_FPR_LEN);

	/* What was made: self-signed X.509 v3, CN "tapbridge server", P-256, not a CA. */
	f = fopen(d.cert, "r");
	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	assert_int_equal(X509_get_version(x), 2);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn,
					      sizeof(cn)) > 0);
	assert_string_equal(cn, TLS_CN);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
	pub = X509_get0_pubkey(x);
	assert_non_null(pub);
	assert_true(EVP_PKEY_is_a(pub, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pub), 256);
	assert_int_equal(X509_verify(x, pub), 1);
	bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_true(X509_cmp_current_time(X509_get0_notAfter(x)) > 0);
	X509_free(x);
	dir_remove(&d);
}

static void test_key_readable_by_others(void **state)
{
	struct dir d;
	uint8_t fpr[TLS_FPR_LEN];
	struct tls_server *t = NULL;
	char why[256] = "";

	(void)state;
	dir_make(&d);
	tls_server_free(open_ok(&d, 1, fpr));
	assert_int_equal(chmod(d.key, 0640), 0);
	assert_int_equal(tls_server_open(d.path, &t, NULL, why, sizeof(why)), TB_E_IO);
	assert_null(t);
	assert_non_null(strstr(why, "chmod 600"));
	assert_int_equal(chmod(d.key, 0600), 0);
	tls_server_free(open_ok(&d, 0, fpr));
	dir_remove(&d);
}

static void test_cert_without_key(void **state)
{
	struct dir d;
	uint8_t fpr[TLS_FPR_LEN];
	struct tls_server *t = NULL;
	char why[256] = "";
	struct stat st;

	(void)state;
	dir_make(&d);
	tls_server_free(open_ok(&d, 1, fpr));
	assert_int_equal(unlink(d.key), 0);
	assert_int_equal(tls_server_open(d.path, &t, NULL, why, sizeof(why)), TB_E_IO);
	assert_null(t);
	assert_non_null(strstr(why, "without"));
	/* Nothing was made in its place: the pinned certificate is not silently replaced. */
	assert_int_equal(stat(d.key, &st), -1);
	dir_remove(&d);
}

static void test_key_without_cert(void **state)
{
	struct dir d;
	uint8_t f1[TLS_FPR_LEN], f2[TLS_FPR_LEN], k1[256], k2[256];
	FILE *f;
	size_t n1, n2;

	(void)state;
	dir_make(&d);
	tls_server_free(open_ok(&d, 1, f1));
	f = fopen(d.key, "r");
	n1 = fread(k1, 1, sizeof(k1), f);
	fclose(f);
	assert_int_equal(unlink(d.cert), 0);
	tls_server_free(open_ok(&d, 1, f2));
	assert_memory_not_equal(f1, f2, TLS_FPR_LEN); /* a new serial and time */
	f = fopen(d.key, "r");
	n2 = fread(k2, 1, sizeof(k2), f);
	fclose(f);
	assert_int_equal(n1, n2);
	assert_memory_equal(k1, k2, n1); /* the key was kept */
	dir_remove(&d);
}

static void test_garbage_files(void **state)
{
	struct dir d;
	uint8_t fpr[TLS_FPR_LEN];
	struct tls_server *t = NULL;
	char why[256] = "";
	int fd;

	(void)state;
	dir_make(&d);
	tls_server_free(open_ok(&d, 1, fpr));
	fd = open(d.cert, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "not a certificate\n", 18), 18);
	close(fd);
	assert_int_equal(tls_server_open(d.path, &t, NULL, why, sizeof(why)), TB_E_CRYPTO);
	assert_null(t);
	dir_remove(&d);
	assert_int_equal(tls_server_open("/nonexistent/tb", &t, NULL, why, sizeof(why)), TB_E_IO);
	assert_null(t);
}

/* Runs both handshakes over a BIO pair until both finish or one fails. */
static int handshake(SSL *c, SSL *s)
{
	BIO *cb = NULL, *sb = NULL;

	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (int i = 0; i < 50; i++) {
		int rc = SSL_do_handshake(c), rs = SSL_do_handshake(s);
		int ec = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(c, rc);
		int es = rs == 1 ? SSL_ERROR_NONE : SSL_get_error(s, rs);

		if (rc == 1 && rs == 1)
			return 1;
		if ((ec != SSL_ERROR_NONE && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE) ||
		    (es != SSL_ERROR_NONE && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE))
			return 0;
	}
	return 0;
}

static void test_pinning(void **state)
{
	struct dir d;
	uint8_t fpr[TLS_FPR_LEN], peer[TLS_FPR_LEN];
	struct tls_server *t;
	struct tls_client *right = NULL, *wrong = NULL;
	SSL *c, *s;

	(void)state;
	dir_make(&d);
	t = open_ok(&d, 1, fpr);

	assert_int_equal(tls_client_new(fpr, &right), 0);
	c = tls_client_ssl(right);
	s = tls_server_ssl(t);
	assert_int_equal(handshake(c, s), 1);
	assert_string_equal(tls_ssl_version(c), "TLSv1.3");
	assert_int_equal(SSL_get_verify_result(c), X509_V_OK);
	assert_int_equal(tls_peer_fingerprint(c, peer), 0);
	assert_memory_equal(peer, fpr, TLS_FPR_LEN);
	assert_int_equal(tls_peer_fingerprint(s, peer), TB_E_INVAL); /* no client certificate */
	tls_ssl_free(c);
	tls_ssl_free(s);

	for (size_t bit = 0; bit < 8 * TLS_FPR_LEN; bit += 37) {
		uint8_t bad[TLS_FPR_LEN];

		memcpy(bad, fpr, sizeof(bad));
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_int_equal(tls_client_new(bad, &wrong), 0);
		c = tls_client_ssl(wrong);
		s = tls_server_ssl(t);
		assert_int_equal(handshake(c, s), 0);
		assert_int_equal(SSL_get_verify_result(c), X509_V_ERR_CERT_REJECTED);
		tls_ssl_free(c);
		tls_ssl_free(s);
		tls_client_free(wrong);
	}
	tls_client_free(right);
	tls_server_free(t);
	dir_remove(&d);
}

static void test_tls12_refused(void **state)
{
	struct dir d;
	uint8_t fpr[TLS_FPR_LEN];
	struct tls_server *t;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *c, *s;

	(void)state;
	dir_make(&d);
	t = open_ok(&d, 1, fpr);
	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	c = SSL_new(ctx);
	s = tls_server_ssl(t);
	assert_int_equal(handshake(c, s), 0);
	assert_int_equal(SSL_is_init_finished(s), 0);
	SSL_free(c);
	SSL_free(s);
	/* The same client allowed 1.3 gets through: the refusal was the version. */
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION), 1);
	c = SSL_new(ctx);
	s = tls_server_ssl(t);
	assert_int_equal(handshake(c, s), 1);
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(ctx);
	tls_server_free(t);
	dir_remove(&d);
}

static void test_fingerprint_text(void **state)
{
	uint8_t f[TLS_FPR_LEN], g[TLS_FPR_LEN];
	char hex[TLS_FPR_HEX_LEN], colons[3 * TLS_FPR_LEN + 8] = "SHA256:";

	(void)state;
	for (size_t i = 0; i < TLS_FPR_LEN; i++)
		f[i] = (uint8_t)(0xA0 + i);
	assert_int_equal(tls_fpr_hex(f, hex), 0);
	assert_int_equal(strlen(hex), 64);
	assert_string_equal(hex, "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF");
	assert_int_equal(tls_fpr_parse(hex, g), 0);
	assert_memory_equal(f, g, TLS_FPR_LEN);
	for (size_t i = 0; i < TLS_FPR_LEN; i++)
		snprintf(colons + strlen(colons), sizeof(colons) - strlen(colons), "%s%02x",
			 i ? ":" : "", f[i]);
	memset(g, 0, sizeof(g));
	assert_int_equal(tls_fpr_parse(colons, g), 0);
	assert_memory_equal(f, g, TLS_FPR_LEN);
	memset(g, 0x33, sizeof(g));
	assert_int_equal(tls_fpr_parse("A0A1", g), TB_E_INVAL);
	hex[63] = '\0';
	assert_int_equal(tls_fpr_parse(hex, g), TB_E_HEX);
	hex[63] = 'F';
	hex[10] = 'G';
	assert_int_equal(tls_fpr_parse(hex, g), TB_E_HEX);
	for (size_t i = 0; i < TLS_FPR_LEN; i++)
		assert_int_equal(g[i], 0x33); /* untouched on error */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cert_made_and_reloaded),
		cmocka_unit_test(test_key_readable_by_others),
		cmocka_unit_test(test_cert_without_key),
		cmocka_unit_test(test_key_without_cert),
		cmocka_unit_test(test_garbage_files),
		cmocka_unit_test(test_pinning),
		cmocka_unit_test(test_tls12_refused),
		cmocka_unit_test(test_fingerprint_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
