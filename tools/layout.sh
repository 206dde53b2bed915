#!/usr/bin/env bash
# layout.sh ROOT - checks the layout rules of STYLE.md section 1 over ROOT/src
# (and memcmp over src, tests, fuzz). Prints each violation; exits 1 if any.
#  - a core (src/lib, src/se, src/reader, src/phone, src/server, src/sam) includes no
#    I/O, database, PC/SC, libevent or OpenSSL header; OpenSSL only in src/lib/crypto.c;
#  - a core includes only src/lib and its own folder; parties never include each other;
#  - memcmp only in the files listed in tools/memcmp-allow.txt (MACs, cryptograms and
#    secrets go through ct_eq).
set -u
root=${1:?usage: layout.sh ROOT}
allow_file=${2:-$root/tools/memcmp-allow.txt}
bad=0
cores="lib se reader phone server sam"
parties="se reader phone server sam"
# Headers no core may include: sockets and files, databases, PC/SC, libevent, OpenSSL, PKCS#11.
forbidden='^(stdio\.h|unistd\.h|fcntl\.h|poll\.h|dirent\.h|termios\.h|pthread\.h|sys/.*|netinet/.*|arpa/.*|netdb\.h|event2?/.*|event\.h|sqlite3\.h|libpq-fe\.h|winscard\.h|pcsclite\.h|wintypes\.h|PCSC/.*|openssl/.*|p11-kit/.*|pkcs11\.h)$'

report() { echo "layout: $*"; bad=1; }

for core in $cores; do
	dir="$root/src/$core"
	[ -d "$dir" ] || continue
	while IFS= read -r f; do
		rel=${f#"$root"/}
		while IFS= read -r line; do
			hdr=$(printf '%s' "$line" | sed -E 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]+)[>"].*/\1/')
			if printf '%s' "$hdr" | grep -Eq "$forbidden"; then
				if [ "$rel" = "src/lib/crypto.c" ] && printf '%s' "$hdr" | grep -q '^openssl/'; then
					continue
				fi
				report "$rel includes <$hdr>: not allowed in a core"
			fi
			# Quoted includes with a folder must stay in lib or the core's own folder.
			case "$hdr" in
			*/*)
				top=$(printf '%s' "$hdr" | sed -E 's#^(\.\./)*##; s#/.*##')
				if printf '%s' "$line" | grep -q '"'; then
					if [ "$top" != "lib" ] && [ "$top" != "$core" ]; then
						report "$rel includes \"$hdr\": a core includes only src/lib and src/$core"
					fi
				fi
				;;
			esac
		done < <(grep -E '^[[:space:]]*#[[:space:]]*include' "$f")
	done < <(find "$dir" -name '*.[ch]' | sort)
done

# Parties never include each other, from anywhere under src/ (adapters and mains may
# wire several parties, but a party's own folder never names another party).
for p in $parties; do
	dir="$root/src/$p"
	[ -d "$dir" ] || continue
	for q in $parties; do
		[ "$p" = "$q" ] && continue
		hits=$(grep -EnH "^[[:space:]]*#[[:space:]]*include[[:space:]]*\"(\.\./)*$q/" -r "$dir" --include='*.[ch]' || true)
		[ -n "$hits" ] && report "src/$p includes src/$q: $hits"
	done
done

# memcmp outside the allow-list.
allowed=""
[ -f "$allow_file" ] && allowed=$(grep -Ev '^[[:space:]]*(#|$)' "$allow_file")
while IFS= read -r hit; do
	[ -z "$hit" ] && continue
	file=${hit%%:*}
	rel=${file#"$root"/}
	if ! printf '%s\n' "$allowed" | grep -qxF "$rel"; then
		report "memcmp in $rel (compare MACs and secrets with ct_eq; add plain data compares to tools/memcmp-allow.txt)"
	fi
done < <(grep -rlE '\b(memcmp|bcmp)[[:space:]]*\(' "$root/src" "$root/tests" "$root/fuzz" --include='*.[ch]' 2>/dev/null | sed 's/$/:/')

exit $bad
