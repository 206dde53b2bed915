/* fuzz_reader_keys.c - the reader's key file parser (reader_keys_parse) on arbitrary
 * text. What parses keeps every field within its limits (one key length 16/24/32 and
 * nothing past it, KVNs 01..FE, an uncompressed flag key or none); a refused file
 * leaves the output as it was and names a line that exists, or none. */
#include <stdlib.h>
#include <string.h>

#include "reader_files.h"

static struct rdr_keys k, canary;
static const uint8_t zero[SCP_KEY_MAX + RDR_FLAG_PUB_LEN];

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len, lines = 1;
	unsigned line = 0xFFFFFFFFu;

	memset(&k, 0xA5, sizeof(k));
	memset(&canary, 0xA5, sizeof(canary));
	if (reader_keys_parse((const char *)data, size, &k, &line) != 0) {
		for (size_t i = 0; i < size; i++)
			lines += data[i] == '\n';
		check(memcmp(&k, &canary, sizeof(k)) == 0 && line <= lines);
		return 0;
	}
	len = k.rs.len;
	check(line == 0 && (len == 16 || len == 24 || len == 32));
	check(memcmp(k.rs.enc + len, zero, SCP_KEY_MAX - len) == 0 &&
	      memcmp(k.rs.mac + len, zero, SCP_KEY_MAX - len) == 0 &&
	      memcmp(k.rs.dek + len, zero, SCP_KEY_MAX - len) == 0);
	check(k.kvn >= 1 && k.kvn <= 0xFE && k.terminal_kvn >= 1 && k.terminal_kvn <= 0xFE);
	check(k.terminal_keylen == 16 || k.terminal_keylen == 24 || k.terminal_keylen == 32);
	check(k.has_flag_pub ? k.flag_pub[0] == 0x04
			     : memcmp(k.flag_pub, zero, RDR_FLAG_PUB_LEN) == 0 && k.has_flag_pub == 0);
	return 0;
}
