/* store_file.c - page store over a file. Every page is read or written whole
 * with pread/pwrite at page * SE_PAGE_SIZE; sync is fsync, the journal's barrier. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "store_file.h"

static int sf_read(void *ctx, uint16_t page, uint8_t buf[SE_PAGE_SIZE])
{
	struct store_file *sf = ctx;
	off_t off = (off_t)page * SE_PAGE_SIZE;
	ssize_t got;

	if (page >= SE_PAGE_COUNT)
		return TB_E_STORE;
	do {
		got = pread(sf->fd, buf, SE_PAGE_SIZE, off);
	} while (got < 0 && errno == EINTR);
	return got == SE_PAGE_SIZE ? 0 : TB_E_STORE;
}

static int sf_write(void *ctx, uint16_t page, const uint8_t buf[SE_PAGE_SIZE])
{
	struct store_file *sf = ctx;
	off_t off = (off_t)page * SE_PAGE_SIZE;
	ssize_t put;

	if (page >= SE_PAGE_COUNT)
		return TB_E_STORE;
	do {
		put = pwrite(sf->fd, buf, SE_PAGE_SIZE, off);
	} while (put < 0 && errno == EINTR);
	return put == SE_PAGE_SIZE ? 0 : TB_E_STORE;
}

static int sf_sync(void *ctx)
{
	struct store_file *sf = ctx;
	return fdatasync(sf->fd) == 0 ? 0 : TB_E_STORE;
}

static void sf_bind(struct store_file *sf, int fd)
{
	sf->fd = fd;
	sf->store.ctx = sf;
	sf->store.read = sf_read;
	sf->store.write = sf_write;
	sf->store.sync = sf_sync;
}

int store_file_open(struct store_file *sf, const char *path)
{
	struct stat st;
	int fd = open(path, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return TB_E_IO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != SE_IMAGE_SIZE) {
		close(fd);
		return TB_E_IO;
	}
	sf_bind(sf, fd);
	return 0;
}

int store_file_create(struct store_file *sf, const char *path)
{
	uint8_t page[SE_PAGE_SIZE];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return TB_E_IO;
	sf_bind(sf, fd);
	memset(page, 0xFF, sizeof(page));
	for (uint16_t p = 0; p < SE_PAGE_COUNT; p++) {
		if (sf_write(sf, p, page) != 0)
			goto fail;
	}
	if (sf_sync(sf) != 0)
		goto fail;
	return 0;
fail:
	close(fd);
	unlink(path);
	sf->fd = -1;
	return TB_E_IO;
}

void store_file_close(struct store_file *sf)
{
	if (sf->fd >= 0)
		close(sf->fd);
	sf->fd = -1;
}
