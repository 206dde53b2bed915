/* reader_files.c - the reader's key file parser (from memory; the loader only reads the
 * file) and its durable state file (reader_files.h). What stays true: a state save is
 * all or nothing on disk (temp + fsync + rename + directory fsync) and returns 0 only
 * when durable; key material is wiped from every temporary buffer on every path. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/bytes.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "reader_files.h"

#define KF_LINE_MAX READER_KEYS_LINE_MAX
#define KF_FILE_MAX READER_KEYS_FILE_MAX

enum kf_field { KF_ENC, KF_MAC, KF_DEK, KF_ID, KF_KVN, KF_TERM, KF_TKVN, KF_TKEYLEN, KF_FLAG, KF_N };
static const char *const kf_names[KF_N] = { "enc", "mac", "dek", "id", "kvn", "terminal",
					    "terminal-kvn", "terminal-keylen", "flag-pub" };

static int kf_hex(const char *v, uint8_t *out, size_t cap, size_t *n)
{
	return hex_decode(v, strlen(v), out, cap, n) == 0 ? 0 : TB_E_RDR_KEYFILE;
}

static int kf_num(const char *v, int base, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	unsigned long x;

	if (*v == '\0' || *v == '-' || *v == '+')
		return TB_E_RDR_KEYFILE;
	errno = 0;
	x = strtoul(v, &end, base);
	if (errno != 0 || *end != '\0' || x > max)
		return TB_E_RDR_KEYFILE;
	*out = x;
	return 0;
}

static int kf_set(struct rdr_keys *k, enum kf_field f, const char *v, size_t lens[3])
{
	unsigned long x = 0;
	size_t n = 0;
	int rc;

	switch (f) {
	case KF_ENC:
		return kf_hex(v, k->rs.enc, SCP_KEY_MAX, &lens[0]);
	case KF_MAC:
		return kf_hex(v, k->rs.mac, SCP_KEY_MAX, &lens[1]);
	case KF_DEK:
		return kf_hex(v, k->rs.dek, SCP_KEY_MAX, &lens[2]);
	case KF_ID:
		rc = kf_num(v, 10, 0xFFFFFFFFul, &x);
		k->id = (uint32_t)x;
		return rc;
	case KF_KVN:
	case KF_TKVN:
		if (strlen(v) != 2 || (rc = kf_num(v, 16, 0xFE, &x)) || x == 0)
			return TB_E_RDR_KEYFILE;
		*(f == KF_KVN ? &k->kvn : &k->terminal_kvn) = (uint8_t)x;
		return 0;
	case KF_TERM:
		rc = kf_hex(v, k->terminal, sizeof(k->terminal), &n);
		return rc == 0 && n == sizeof(k->terminal) ? 0 : TB_E_RDR_KEYFILE;
	case KF_TKEYLEN:
		if ((rc = kf_num(v, 10, 32, &x)) || (x != 16 && x != 24 && x != 32))
			return TB_E_RDR_KEYFILE;
		k->terminal_keylen = x;
		return 0;
	case KF_FLAG:
		rc = kf_hex(v, k->flag_pub, sizeof(k->flag_pub), &n);
		if (rc != 0 || n != sizeof(k->flag_pub) || k->flag_pub[0] != 0x04)
			return TB_E_RDR_KEYFILE;
		k->has_flag_pub = 1;
		return 0;
	default:
		return TB_E_RDR_KEYFILE;
	}
}

/* One line: "name value" (value without spaces), or blank / comment. */
static int kf_line(char *s, struct rdr_keys *k, int seen[KF_N], size_t lens[3])
{
	char *name, *val, *rest, *save = NULL;
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	name = strtok_r(s, " \t", &save);
	if (name == NULL || name[0] == '#')
		return 0;
	val = strtok_r(NULL, " \t", &save);
	rest = strtok_r(NULL, " \t", &save);
	if (val == NULL || (rest != NULL && rest[0] != '#'))
		return TB_E_RDR_KEYFILE;
	for (int f = 0; f < KF_N; f++) {
		if (strcmp(name, kf_names[f]) == 0) {
			if (seen[f])
				return TB_E_RDR_KEYFILE;
			seen[f] = 1;
			return kf_set(k, (enum kf_field)f, val, lens);
		}
	}
	return TB_E_RDR_KEYFILE;
}

/* Takes the next line of r, without its LF, into s as a C string. The bounds are the
 * ones fgets into KF_LINE_MAX bytes had: a line that does not fit with its LF and NUL
 * is refused, and so is a NUL byte (it would hide the rest of the line). */
static int kf_take_line(struct rd *r, char s[KF_LINE_MAX])
{
	const uint8_t *nl = memchr(r->p, '\n', r->n), *p = NULL;
	size_t len = nl != NULL ? (size_t)(nl - r->p) : r->n;

	if (len > KF_LINE_MAX - 2 || rd_bytes(r, len, &p) != 0 || memchr(p, '\0', len) != NULL)
		return TB_E_RDR_KEYFILE;
	if (nl != NULL)
		(void)rd_skip(r, 1);
	memcpy(s, p, len);
	s[len] = '\0';
	return 0;
}

int reader_keys_parse(const char *text, size_t n, struct rdr_keys *out, unsigned *line)
{
	struct rd r = rd_init((const uint8_t *)text, n);
	struct rdr_keys k;
	int seen[KF_N] = { 0 };
	size_t lens[3] = { 0, 0, 0 };
	char buf[KF_LINE_MAX];
	unsigned no = 0;
	int rc = 0;

	*line = 0;
	memset(&k, 0, sizeof(k));
	while (rc == 0 && rd_left(&r) > 0) {
		no++;
		rc = kf_take_line(&r, buf);
		if (rc == 0)
			rc = kf_line(buf, &k, seen, lens);
		if (rc != 0)
			*line = no;
	}
	for (int i = 0; rc == 0 && i < KF_N; i++)
		if (!seen[i] && i != KF_FLAG)
			rc = TB_E_RDR_KEYFILE;
	if (rc == 0 && (lens[0] != lens[1] || lens[1] != lens[2] ||
			(lens[0] != 16 && lens[0] != 24 && lens[0] != 32)))
		rc = TB_E_RDR_KEYFILE;
	if (rc == 0) {
		k.rs.len = lens[0];
		*out = k;
	}
	ct_wipe(&k, sizeof(k));
	ct_wipe(buf, sizeof(buf));
	return rc;
}

int reader_keys_load(const char *path, struct rdr_keys *out, unsigned *line)
{
	char buf[KF_FILE_MAX + 1];
	struct stat sb;
	size_t n = 0;
	FILE *f = NULL;
	int rc = 0;

	*line = 0;
	f = fopen(path, "r");
	if (f == NULL)
		return TB_E_IO;
	if (fstat(fileno(f), &sb) != 0 || (sb.st_mode & 077) != 0) {
		rc = TB_E_RDR_KEYFILE; /* keys readable by others: refuse, like ssh */
		goto out;
	}
	n = fread(buf, 1, sizeof(buf), f);
	if (ferror(f))
		rc = TB_E_IO;
	else if (n > KF_FILE_MAX)
		rc = TB_E_RDR_KEYFILE;
	else
		rc = reader_keys_parse(buf, n, out, line);
out:
	ct_wipe(buf, n);
	fclose(f);
	return rc;
}

static int dir_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(out, cap, "%s/%s", dir, name);

	return n > 0 && (size_t)n < cap ? 0 : TB_E_NOSPACE;
}

int reader_state_lock(const char *dir)
{
	char p[4096];
	struct flock fl;
	int fd;

	if (dir_path(p, sizeof(p), dir, READER_LOCK_FILE) != 0)
		return TB_E_IO;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return TB_E_IO;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(fd, F_SETLK, &fl) != 0) {
		close(fd);
		return TB_E_IO;
	}
	return fd;
}

int reader_state_load(const char *dir, struct rdr_store *out)
{
	static uint8_t buf[RDR_STORE_ENC_MAX + 1];
	char p[4096];
	size_t n = 0;
	FILE *f;
	int rc;

	if (dir_path(p, sizeof(p), dir, READER_STATE_FILE) != 0)
		return TB_E_IO;
	f = fopen(p, "rb");
	if (f == NULL) {
		if (errno != ENOENT)
			return TB_E_IO;
		rdr_store_init(out);
		return 0;
	}
	n = fread(buf, 1, sizeof(buf), f);
	rc = ferror(f) ? TB_E_IO : 0;
	fclose(f);
	if (rc == 0 && n > RDR_STORE_ENC_MAX)
		rc = TB_E_RDR_STATE;
	if (rc == 0)
		rc = rdr_store_dec(buf, n, out);
	return rc == TB_E_IO ? rc : (rc != 0 ? TB_E_RDR_STATE : 0);
}

int reader_fd_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return TB_E_IO;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

int reader_state_save(const char *dir, const struct rdr_store *s)
{
	static uint8_t buf[RDR_STORE_ENC_MAX];
	struct wr w = wr_init(buf, sizeof(buf));
	char tmp[4096], p[4096];
	int fd = -1, dfd = -1, rc;

	if ((rc = dir_path(tmp, sizeof(tmp), dir, READER_STATE_FILE ".tmp")) ||
	    (rc = dir_path(p, sizeof(p), dir, READER_STATE_FILE)) || (rc = rdr_store_enc(&w, s)))
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return TB_E_IO;
	rc = reader_fd_write_all(fd, buf, w.len);
	if (rc == 0 && fsync(fd) != 0)
		rc = TB_E_IO;
	if (close(fd) != 0 && rc == 0)
		rc = TB_E_IO;
	if (rc == 0 && rename(tmp, p) != 0)
		rc = TB_E_IO;
	if (rc != 0) {
		(void)unlink(tmp);
		return rc;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return TB_E_IO;
	if (fsync(dfd) != 0)
		rc = TB_E_IO;
	close(dfd);
	return rc;
}
