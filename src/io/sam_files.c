/* sam_files.c - reading and durably writing the sam's key file and secret inputs.
 * What stays true: a key file on disk is always whole (create-exclusive or rename over),
 * every file written here is 0600 from its creation, and secret bytes read here stay
 * in the caller's buffer only. */
#include "sam_files.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/ct.h"
#include "lib/err.h"

static int read_fd(int fd, uint8_t *buf, size_t cap, size_t *n)
{
	size_t got = 0;

	for (;;) {
		ssize_t r;

		if (got == cap) {
			uint8_t extra;

			r = read(fd, &extra, 1);
			if (r == 0)
				break;
			if (r < 0 && errno == EINTR)
				continue;
			return r > 0 ? TB_E_NOSPACE : TB_E_IO;
		}
		r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return TB_E_IO;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	*n = got;
	return 0;
}

int sam_file_read(const char *path, uint8_t *buf, size_t cap, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc, saved;

	if (fd < 0)
		return TB_E_IO;
	rc = read_fd(fd, buf, cap, n);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

int sam_secret_read(const char *path, uint8_t *buf, size_t cap, size_t *n, int strip_newline)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;

	if (fd < 0)
		return TB_E_IO;
	if (fstat(fd, &st) != 0) {
		close(fd);
		return TB_E_IO;
	}
	if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		close(fd);
		return TB_E_INVAL;
	}
	rc = read_fd(fd, buf, cap, n);
	close(fd);
	if (rc != 0) {
		ct_wipe(buf, cap);
		return rc;
	}
	while (strip_newline && *n > 0 && (buf[*n - 1] == '\n' || buf[*n - 1] == '\r'))
		buf[--*n] = 0;
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return TB_E_IO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Syncs the directory holding path, so a new or renamed entry survives a crash. */
static int sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 1 : (size_t)(slash - path);
	int fd, rc;

	if (slash == NULL)
		memcpy(dir, ".", 2);
	else if (n == 0)
		memcpy(dir, "/", 2);
	else if (n < sizeof(dir)) {
		memcpy(dir, path, n);
		dir[n] = '\0';
	} else {
		errno = ENAMETOOLONG;
		return TB_E_IO;
	}
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return TB_E_IO;
	rc = fsync(fd) == 0 ? 0 : TB_E_IO;
	close(fd);
	return rc;
}

/* Writes and syncs a new file at path (O_EXCL), removing it again on failure. */
static int write_new(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600), saved;

	if (fd < 0)
		return TB_E_IO;
	if (fchmod(fd, 0600) != 0 || write_all(fd, p, n) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		(void)unlink(path);
		errno = saved;
		return TB_E_IO;
	}
	if (close(fd) != 0) {
		(void)unlink(path);
		return TB_E_IO;
	}
	return 0;
}

int sam_file_create(const char *path, const uint8_t *p, size_t n)
{
	int rc = write_new(path, p, n);

	return rc != 0 ? rc : sync_dir(path);
}

int sam_file_replace(const char *path, const uint8_t *p, size_t n)
{
	char tmp[PATH_MAX];
	int rc;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return TB_E_IO;
	}
	(void)unlink(tmp); /* left by a crash between write and rename */
	if ((rc = write_new(tmp, p, n)) != 0)
		return rc;
	if (rename(tmp, path) != 0) {
		int saved = errno;

		(void)unlink(tmp);
		errno = saved;
		return TB_E_IO;
	}
	return sync_dir(path);
}
