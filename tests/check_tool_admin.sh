#!/usr/bin/env bash
# check_tool_admin.sh SRC BIN - `tapbridge admin` personalises se images: se-init makes a
# 32768-byte image and never overwrites one; se-keys / se-config refuse bad input
# (hex, lengths, KVN, role) with a non-zero exit and the image byte for byte unchanged;
# keys come from flags or a keys file and never show in the output; an image a running
# se holds is refused; se-info shows what the image holds.
set -uo pipefail
src=${1:?usage: check_tool_admin.sh SRC BIN}
bin=${2:?usage: check_tool_admin.sh SRC BIN}
[ -d "$src" ] || { echo "FAIL: no source dir $src"; exit 1; }
fail=0; pass=0
dir=$(mktemp -d)
se_pid=""
cleanup() {
	if [ -n "$se_pid" ]; then kill "$se_pid" 2>/dev/null; wait "$se_pid" 2>/dev/null; fi
	rm -rf "$dir"
}
trap cleanup EXIT
img=$dir/se.img
K16=000102030405060708090A0B0C0D0E0F
M16=101112131415161718191A1B1C1D1E1F
D16=202122232425262728292A2B2C2D2E2F

ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

out=""; rc=0
run() { rc=0; out=$("$bin" admin "$@" 2>&1) || rc=$?; }

# expect_refused WHAT ARGS...: non-zero exit, and the image unchanged.
expect_refused() {
	local what=$1; shift
	local before after
	before=$(sha256sum "$img" | cut -d' ' -f1)
	run "$@"
	after=$(sha256sum "$img" | cut -d' ' -f1)
	if [ "$rc" -eq 0 ]; then
		bad "$what: exit 0 for: admin $*"; printf '%s\n' "$out" | sed 's/^/  | /'
	elif [ "$before" != "$after" ]; then
		bad "$what: the image changed"
	elif ! grep -q . <<<"$out"; then
		bad "$what: no message"
	else
		ok "$what refused (exit $rc): $(head -n1 <<<"$out")"
	fi
}

# --- se-init
run se-init --image "$img" --serial 0102030405060708
if [ "$rc" -eq 0 ] && [ "$(stat -c %s "$img")" -eq 32768 ]; then
	ok "se-init made a 32768-byte image"
else
	bad "se-init: exit $rc, $(stat -c %s "$img" 2>/dev/null) bytes: $out"
fi
expect_refused "se-init over an existing image" se-init --image "$img" --serial 1111111111111111
for s in 01020304050607 010203040506070809 01020304050607GG "" "zz"; do
	run se-init --image "$dir/other.img" --serial "$s"
	if [ "$rc" -ne 0 ] && [ ! -e "$dir/other.img" ]; then
		ok "se-init --serial '$s' refused (exit $rc), no file made"
	else
		bad "se-init --serial '$s': exit $rc, file $(ls "$dir/other.img" 2>&1)"
	fi
done
run se-init --image "$dir/other.img"
[ "$rc" -eq 2 ] && ok "se-init without --serial: usage (2)" || bad "se-init without --serial: exit $rc"
run se-info --image "$img"
grep -qx "serial 0102030405060708" <<<"$out" && grep -qx "personalised no" <<<"$out" &&
	grep -qx "key set FF default AES-128 failures 0 counter 0" <<<"$out" &&
	ok "se-info of a blank image" || { bad "se-info of a blank image"; printf '%s\n' "$out"; }

# --- se-keys: every bad argument leaves the image as it was
expect_refused "kvn not hex" se-keys --image "$img" --kvn 3G --enc $K16 --mac $M16 --dek $D16
expect_refused "kvn two bytes" se-keys --image "$img" --kvn 3030 --enc $K16 --mac $M16 --dek $D16
expect_refused "kvn 00" se-keys --image "$img" --kvn 00 --enc $K16 --mac $M16 --dek $D16
expect_refused "kvn FF (the factory set)" se-keys --image "$img" --kvn FF --enc $K16 --mac $M16 --dek $D16
expect_refused "enc not hex" se-keys --image "$img" --kvn 30 --enc ${K16:0:30}XY --mac $M16 --dek $D16
expect_refused "mac 15 bytes" se-keys --image "$img" --kvn 30 --enc $K16 --mac ${M16:0:30} --dek $D16
expect_refused "dek 33 bytes" se-keys --image "$img" --kvn 30 --enc $K16 --mac $M16 --dek ${D16}${D16}00
expect_refused "keys of different lengths" se-keys --image "$img" --kvn 30 --enc $K16 --mac $M16 --dek ${D16}0011223344556677
expect_refused "no dek" se-keys --image "$img" --kvn 30 --enc $K16 --mac $M16
expect_refused "bad role" se-keys --image "$img" --kvn 30 --enc $K16 --mac $M16 --dek $D16 --role admin
expect_refused "unknown flag" se-keys --image "$img" --kvn 30 --enc $K16 --mac $M16 --dek $D16 --force
expect_refused "a flag twice" se-keys --image "$img" --kvn 30 --kvn 31 --enc $K16 --mac $M16 --dek $D16
printf 'enc %s\nmac %s\nmac %s\ndek %s\n' $K16 $M16 $M16 $D16 >"$dir/twice.keys"
expect_refused "keys file with a key twice" se-keys --image "$img" --kvn 30 --keys-file "$dir/twice.keys"
printf 'enc %s\nkey %s\n' $K16 $M16 >"$dir/unknown.keys"
expect_refused "keys file with an unknown line" se-keys --image "$img" --kvn 30 --keys-file "$dir/unknown.keys"
expect_refused "keys file missing" se-keys --image "$img" --kvn 30 --keys-file "$dir/none.keys"
expect_refused "not an image" se-keys --image "$dir/twice.keys" --kvn 30 --enc $K16 --mac $M16 --dek $D16
run se-info --image "$img"
grep -qx "personalised no" <<<"$out" && ok "still in the factory state after the refusals" ||
	bad "the refusals changed the image state"

# --- se-keys that work
run se-keys --image "$img" --kvn 30 --enc $K16 --mac $M16 --dek $D16
if [ "$rc" -eq 0 ] && grep -q "key set 30 written (server, AES-128)" <<<"$out"; then
	ok "se-keys: the first set is the server's by default"
else
	bad "se-keys kvn 30: exit $rc: $out"
fi
if grep -qi -e "$K16" -e "$M16" -e "$D16" <<<"$out"; then bad "se-keys printed a key"; else ok "no key in the output"; fi
printf '# reader keys, AES-256\nenc %s%s\n\n  mac\t%s%s\ndek %s%s\n' $K16 $K16 $M16 $M16 $D16 $D16 >"$dir/reader.keys"
run se-keys --image "$img" --kvn 31 --keys-file "$dir/reader.keys"
[ "$rc" -eq 0 ] && grep -q "key set 31 written (reader, AES-256)" <<<"$out" &&
	ok "se-keys --keys-file: a later set is a reader's by default" || bad "se-keys --keys-file: exit $rc: $out"
run se-keys --image "$img" --kvn 32 --enc $K16 --mac $M16 --dek $D16 --role server
[ "$rc" -eq 0 ] && grep -q "key set 32 written (server, AES-128)" <<<"$out" && ok "se-keys --role server" ||
	bad "se-keys --role server: exit $rc: $out"
run se-keys --image "$img" --kvn 30 --enc $M16 --mac $K16 --dek $D16
[ "$rc" -eq 0 ] && grep -q "key set 30 written (server" <<<"$out" && ok "replacing set 30 keeps its role" ||
	bad "replacing set 30: exit $rc: $out"
run se-keys --image "$img" --kvn 33 --enc $K16 --mac $M16 --dek $D16
[ "$rc" -eq 0 ] && ok "a fourth key set fills the last slot" || bad "a fourth key set: exit $rc: $out"
expect_refused "a fifth key set (no free slot)" se-keys --image "$img" --kvn 34 --enc $K16 --mac $M16 --dek $D16
run se-info --image "$img"
want="serial 0102030405060708
personalised yes
maximum balance 100000
lockout 10
key set 30 server AES-128 failures 0 counter 0
key set 31 reader AES-256 failures 0 counter 0
key set 32 server AES-128 failures 0 counter 0
key set 33 reader AES-128 failures 0 counter 0
balance 0
transactions 0
wallet unlocked"
[ "$out" = "$want" ] && ok "se-info after personalisation" || { bad "se-info after personalisation"; printf '%s\n' "$out"; }

# --- se-config
expect_refused "lockout 0" se-config --image "$img" --lockout 0
expect_refused "lockout 256" se-config --image "$img" --lockout 256
expect_refused "max balance not a number" se-config --image "$img" --max-balance 12x
expect_refused "se-config without a value" se-config --image "$img"
run se-config --image "$img" --max-balance 5000 --lockout 3
run se-info --image "$img"
grep -qx "maximum balance 5000" <<<"$out" && grep -qx "lockout 3" <<<"$out" && ok "se-config" ||
	{ bad "se-config"; printf '%s\n' "$out"; }

# --- an image a running se holds is not touched
"$bin" se --image "$img" --listen "unix:$dir/cl.sock" >"$dir/se.log" 2>&1 &
se_pid=$!
for _ in $(seq 1 200); do grep -q "tapbridge se: serial" "$dir/se.log" 2>/dev/null && break; sleep 0.02; done
expect_refused "se-keys while the se runs" se-keys --image "$img" --kvn 31 --enc $K16 --mac $M16 --dek $D16
kill "$se_pid"; wait "$se_pid"; se_rc=$?; se_pid=""
[ "$se_rc" -eq 0 ] && ok "the se stopped cleanly on SIGTERM" || bad "the se exited $se_rc on SIGTERM"

# --- usage
run frobnicate
[ "$rc" -eq 2 ] && ok "unknown admin command: exit 2" || bad "unknown admin command: exit $rc"
run
[ "$rc" -eq 2 ] && ok "admin alone: usage, exit 2" || bad "admin alone: exit $rc"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
