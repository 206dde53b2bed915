/* reader_files.h - the reader's files: its key file (text, written by `tapbridge admin
 * reader-register`, mode 0600) and its state directory (the outbox, its sequence
 * counter, the card-role SCP03 counter and the deny list, in one file written durably:
 * temp file, fsync, rename, directory fsync). docs/reader.md. */
#ifndef TB_IO_READER_FILES_H
#define TB_IO_READER_FILES_H

#include <stddef.h>

#include "reader/rdr.h"

#define READER_STATE_FILE "reader.state"
#define READER_LOCK_FILE "reader.lock"
#define READER_KEYS_LINE_MAX 512u   /* a line, its LF and a NUL */
#define READER_KEYS_FILE_MAX 16384u

/* Parses a key file's text: n bytes at text (no NUL needed; a NUL byte is refused).
 * `name value` lines ending in LF (CR before it is ignored), `#` comments and blank
 * lines; a line over READER_KEYS_LINE_MAX - 2 bytes is refused. Names: enc, mac, dek
 * (hex, 16/24/32 bytes each, one length), id (decimal), kvn (hex), terminal (hex, 32
 * bytes), terminal-kvn (hex), terminal-keylen (decimal 16/24/32), flag-pub (hex, 65
 * bytes, optional: without it the reader refuses offline flag taps). An unknown or
 * repeated name, a bad value or a missing name: TB_E_RDR_KEYFILE, with the line number
 * (from 1) in *line, 0 when not about a line. *out is written only on success; wipe it
 * when done. Key bytes in the parser's temporaries are wiped; text is the caller's. */
int reader_keys_parse(const char *text, size_t n, struct rdr_keys *out, unsigned *line);

/* Reads the key file at path (at most READER_KEYS_FILE_MAX bytes) and parses it with
 * reader_keys_parse. A file group/world can read, or a larger one: TB_E_RDR_KEYFILE
 * with *line 0. TB_E_IO when it cannot be read. */
int reader_keys_load(const char *path, struct rdr_keys *out, unsigned *line);

/* Locks DIR (creating DIR/reader.lock) for this process: two readers never share one
 * state. Returns the lock's fd (keep it open), or TB_E_IO (in use, no such dir). */
int reader_state_lock(const char *dir);

/* Loads DIR/reader.state into *out; a missing file is a fresh store (seq 1, counter 0).
 * TB_E_RDR_STATE (malformed: the reader must not start and lose records), TB_E_IO. */
int reader_state_load(const char *dir, struct rdr_store *out);

/* Writes s as DIR/reader.state: DIR/reader.state.tmp, fsync, rename, fsync DIR. Returns
 * only when the new state is durable. TB_E_IO, TB_E_NOSPACE. */
int reader_state_save(const char *dir, const struct rdr_store *s);

/* Writes all n bytes to fd (a short write or EINTR goes on). 0 or TB_E_IO. */
int reader_fd_write_all(int fd, const uint8_t *p, size_t n);

#endif
