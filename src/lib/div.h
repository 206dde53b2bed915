/* div.h - key diversification shared by the sam and the reader: a device's SCP03 key set
 * from a 32-byte family key and the device serial, and the terminal key a reader holds for
 * the se-reader family. One SP 800-108 counter-mode KDF with AES-CMAC per key
 * (docs/sam.md, "Diversification"); outputs are written whole or wiped. */
#ifndef TB_LIB_DIV_H
#define TB_LIB_DIV_H

#include <stddef.h>
#include <stdint.h>

#include "scp03.h"

#define DIV_KEY_LEN 32u
#define DIV_SERIAL_LEN 8u

/* The key set of `role` (1 se-server, 2 se-reader, 3 reader-server) for `serial`, keys of
 * keylen (16/24/32) bytes, from `key` (a master, or for role 2 the terminal key). */
int div_device_keys(const uint8_t key[DIV_KEY_LEN], uint8_t role, uint8_t version,
		    size_t keylen, const uint8_t serial[DIV_SERIAL_LEN], struct scp_keys *out);

/* The terminal key of the se-reader family's master of `version`: what a reader's key
 * store holds to derive any se's reader key set (the master itself never leaves the sam). */
int div_terminal_key(const uint8_t master[DIV_KEY_LEN], uint8_t version,
		     uint8_t out[DIV_KEY_LEN]);

#endif
