#!/usr/bin/env bash
# check_layout.sh SRC - the layout rules hold for the tree, and the checker itself
# catches each kind of violation in a scratch tree (so a broken checker cannot pass).
set -uo pipefail
src=${1:?usage: check_layout.sh SRC [BIN]}
fail=0; pass=0

if bash "$src/tools/layout.sh" "$src"; then
	echo "ok: the tree follows the layout rules"; pass=$((pass + 1))
else
	echo "FAIL: the tree breaks the layout rules (above)"; fail=$((fail + 1))
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
expect_violation() { # name file content
	local name=$1 file=$2 content=$3
	rm -rf "$scratch/t"; mkdir -p "$scratch/t/src/lib" "$scratch/t/src/se" "$scratch/t/src/io" "$scratch/t/tools"
	: > "$scratch/t/tools/memcmp-allow.txt"
	mkdir -p "$(dirname "$scratch/t/$file")"
	printf '%s\n' "$content" > "$scratch/t/$file"
	if bash "$src/tools/layout.sh" "$scratch/t" >/dev/null; then
		echo "FAIL: checker missed: $name"; fail=$((fail + 1))
	else
		echo "ok: checker catches $name"; pass=$((pass + 1))
	fi
}
expect_violation "a socket header in the se core" src/se/x.c '#include <sys/socket.h>'
expect_violation "OpenSSL outside crypto.c" src/lib/tlv.c '#include <openssl/evp.h>'
expect_violation "libevent in a core" src/server/x.c '#include <event2/event.h>'
expect_violation "sqlite in a core" src/server/db.c '#include <sqlite3.h>'
expect_violation "PC/SC in the reader core" src/reader/x.c '#include <winscard.h>'
expect_violation "a party including another" src/se/x.c '#include "reader/rdr.h"'
expect_violation "a core including an adapter" src/phone/x.c '#include "../io/net.h"'
expect_violation "memcmp outside the allow-list" src/lib/x.c 'int f(const void *a, const void *b) { return memcmp(a, b, 8); }'
# And an adapter may use I/O: no violation expected.
rm -rf "$scratch/t"; mkdir -p "$scratch/t/src/io" "$scratch/t/tools"; : > "$scratch/t/tools/memcmp-allow.txt"
printf '#include <sys/socket.h>\n#include <openssl/ssl.h>\n' > "$scratch/t/src/io/net.c"
if bash "$src/tools/layout.sh" "$scratch/t" >/dev/null; then
	echo "ok: adapters may include I/O headers"; pass=$((pass + 1))
else
	echo "FAIL: checker flags an adapter"; fail=$((fail + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
