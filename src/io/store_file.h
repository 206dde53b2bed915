/* store_file.h - the se's EEPROM image as a file: the page store of se/store.h
 * over pread/pwrite/fsync. The file has exactly SE_IMAGE_SIZE bytes; a file of
 * any other size is refused, so a wrong path cannot be "formatted" by accident. */
#ifndef TB_IO_STORE_FILE_H
#define TB_IO_STORE_FILE_H

#include "se/store.h"

struct store_file {
	int fd;
	struct se_store store; /* pass &sf->store to the core */
};

/* Opens an existing image (TB_E_IO when missing or not SE_IMAGE_SIZE bytes). */
int store_file_open(struct store_file *sf, const char *path);
/* Creates a new image filled with 0xFF (erased EEPROM); TB_E_IO if it exists. */
int store_file_create(struct store_file *sf, const char *path);
void store_file_close(struct store_file *sf);

#endif
