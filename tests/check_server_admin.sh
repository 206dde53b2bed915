#!/usr/bin/env bash
# check_server_admin.sh SRC BIN - `tapbridge admin`'s server-side commands over a
# deployment directory: init (sam keys, certificate, database, config; never twice),
# se-register (key sets derived by the deployment's sam written into the image, the se in
# the database), reader-register (key file 0600, no key in the output), service-add
# (repeated --price, bad kinds refused), ledger (audit exit 0), history, rotate, deny-list
# (signed). No key material may appear on stdout or stderr.
set -uo pipefail
src=${1:?usage: check_server_admin.sh SRC BIN}
bin=${2:?usage: check_server_admin.sh SRC BIN}
[ -d "$src" ] || { echo "FAIL: no source dir $src"; exit 1; }
fail=0; pass=0
top=$(mktemp -d)
trap 'rm -rf "$top"' EXIT
d=$top/dep
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
out=""; rc=0; all=""
run() { rc=0; out=$("$bin" admin "$@" 2>&1) || rc=$?; all="$all$out"$'\n'; }

run init --dir "$d"
[ $rc -eq 0 ] && [ -f "$d/sam.keys" ] && [ -f "$d/state/cert.pem" ] && [ -f "$d/srv.db" ] &&
	grep -q '^server: tapbridge server' "$d/tapbridge.conf" && ok "init" || bad "init: $out"
echo "$out" | grep -q '^fingerprint SHA256:[0-9A-F]\{64\}$' && ok "init prints the fingerprint" || bad "fingerprint"
run init --dir "$d"
[ $rc -ne 0 ] && ok "init refuses an existing deployment" || bad "init twice"

run se-register --dir "$d" --image "$top/se.img" --serial 5345000000000001
[ $rc -eq 0 ] && ok "se-register" || bad "se-register: $out"
run se-info --image "$top/se.img"
echo "$out" | grep -q 'key set 11 server' && echo "$out" | grep -q 'key set 21 reader' &&
	ok "the image holds the derived server and reader key sets" || bad "se-info: $out"
run se-register --dir "$d" --image "$top/se2.img" --serial 5345000000000001
[ $rc -ne 0 ] && ok "se-register refuses a serial registered before" || bad "se twice"
run se-register --dir "$d" --image "$top/se3.img" --serial 53450000
[ $rc -eq 2 ] && ok "se-register refuses a short serial" || bad "short serial rc=$rc"

run reader-register --dir "$d" --id 7 --class 1
[ $rc -eq 0 ] && [ "$(stat -c %a "$d/reader-7.keys")" = 600 ] &&
	[ "$(grep -c '^\(enc\|mac\|dek\) [0-9A-F]\{32\}$' "$d/reader-7.keys")" = 3 ] &&
	ok "reader-register writes a 0600 key file" || bad "reader-register: $out"
grep -q '^terminal [0-9A-F]\{64\}$' "$d/reader-7.keys" && grep -q '^terminal-kvn 2[0-9A-F]$' "$d/reader-7.keys" &&
	grep -q '^flag-pub 04[0-9A-F]\{128\}$' "$d/reader-7.keys" && grep -q '^id 7$' "$d/reader-7.keys" &&
	ok "the reader key file holds its id, terminal key and the flag public key" ||
	bad "reader key file: $(sed 's/[0-9A-F]\{16,\}/HEX/g' "$d/reader-7.keys")"

run service-add --dir "$d" --id 1 --kind e-money --name top-up --price 1=500
[ $rc -eq 0 ] && ok "service-add e-money" || bad "service-add: $out"
run service-add --dir "$d" --id 2 --kind ticket --name transit --price 1=250 --price 2=900
[ $rc -eq 0 ] && echo "$out" | grep -q '2 prices' && ok "service-add with two prices" || bad "prices: $out"
run service-add --dir "$d" --id 3 --kind lottery --name x
[ $rc -eq 2 ] && ok "service-add refuses an unknown kind" || bad "kind rc=$rc"
run service-add --dir "$d" --id 1 --kind e-money --name again
[ $rc -ne 0 ] && ok "service-add refuses an id in use" || bad "id twice"

run ledger --dir "$d" --se 5345000000000001
[ $rc -eq 0 ] && echo "$out" | grep -q '^sum 0$' && echo "$out" | grep -q '^purse 5345000000000001 0$' &&
	ok "ledger: audit and purse" || bad "ledger: $out"
run history --dir "$d" --se 5345000000000001
[ $rc -eq 0 ] && ok "history" || bad "history: $out"
run history --dir "$d"
[ $rc -eq 2 ] && ok "history wants --se or --reader" || bad "history usage rc=$rc"
run deny-list --dir "$d" --reader 7
[ $rc -eq 0 ] && echo "$out" | grep -q '^signature 01 [0-9A-F]\{128\}$' && ok "deny-list signed" || bad "deny-list: $out"
run deny-list --dir "$d" --reader 8
[ $rc -ne 0 ] && ok "deny-list refuses an unknown reader" || bad "deny-list unknown reader"
run rotate --dir "$d"
[ $rc -eq 0 ] && echo "$out" | grep -q 'version 12' && ok "rotate" || bad "rotate: $out"

# A deployment whose KEK lives in a PKCS#11 token (SoftHSM2): init, then a command that
# starts the deployment's sam (reader-register) finds the token from sam.kek-args.
mod=/usr/lib/softhsm/libsofthsm2.so
if [ -f "$mod" ] && command -v softhsm2-util >/dev/null; then
	mkdir -p "$top/hsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$top/hsm/tokens" >"$top/hsm/conf"
	export SOFTHSM2_CONF=$top/hsm/conf
	(umask 077; printf '1234' >"$top/hsm/pin")
	softhsm2-util --init-token --free --label tb-admin --pin 1234 --so-pin 5678 >/dev/null
	run init --dir "$top/p11" --pkcs11 "$mod" --token-label tb-admin --pin-file "$top/hsm/pin"
	[ $rc -eq 0 ] && [ ! -e "$top/p11/sam.kek" ] && grep -q -- '--pkcs11' "$top/p11/tapbridge.conf" &&
		ok "init --pkcs11 keeps the KEK in the token" || bad "init --pkcs11: $out"
	run reader-register --dir "$top/p11" --id 3
	[ $rc -eq 0 ] && ok "a token deployment's sam starts for admin commands" || bad "p11 reader-register: $out"
	printf '9999' >"$top/hsm/pin"
	run reader-register --dir "$top/p11" --id 4
	[ $rc -ne 0 ] && ok "a wrong token PIN stops the sam" || bad "wrong PIN accepted"
	run init --dir "$top/p12" --pkcs11 "$mod"
	[ $rc -eq 2 ] && ok "init --pkcs11 wants --token-label and --pin-file" || bad "p11 usage rc=$rc"
else
	bad "SoftHSM2 is not installed (make deps installs softhsm2)"
fi

# No key of the reader file anywhere in what the commands printed.
for k in $(awk '/^(enc|mac|dek) /{print $2}' "$d/reader-7.keys"); do
	case "$all" in *"$k"*) bad "a reader key was printed";; esac
done
ok "no reader key in the output"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
