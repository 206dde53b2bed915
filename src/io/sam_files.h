/* sam_files.h - the sam's files: the sealed key file (created once, then replaced
 * atomically on every key change) and the secret inputs it needs at start (a development
 * KEK file, a PKCS#11 PIN file), which must not be readable by group or others.
 * Functions return 0 or TB_E_*; on TB_E_IO errno says why. */
#ifndef TB_IO_SAM_FILES_H
#define TB_IO_SAM_FILES_H

#include <stddef.h>
#include <stdint.h>

/* Reads a whole file of at most cap bytes. TB_E_IO, TB_E_NOSPACE (larger than cap). */
int sam_file_read(const char *path, uint8_t *buf, size_t cap, size_t *n);

/* Reads a secret file of at most cap bytes, refusing (TB_E_INVAL) one that group or
 * others may read or that is not a regular file. A trailing newline is dropped when
 * strip_newline is set (PIN files). buf is wiped on failure. */
int sam_secret_read(const char *path, uint8_t *buf, size_t cap, size_t *n, int strip_newline);

/* Creates path (mode 0600) with n bytes; never replaces an existing file (TB_E_IO with
 * errno EEXIST). The data and the directory entry are synced before it returns. */
int sam_file_create(const char *path, const uint8_t *p, size_t n);

/* Replaces path atomically: writes path.tmp (0600), syncs it, renames it over path,
 * syncs the directory. A crash leaves the old or the new file, never a mix. */
int sam_file_replace(const char *path, const uint8_t *p, size_t n);

#endif
