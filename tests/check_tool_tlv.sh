#!/usr/bin/env bash
# check_tool_tlv.sh - `tapbridge tool tlv decode`: the exact dump of a good nested
# input, and for bad inputs the elements before the error, the error line with
# its offset, and the exit code. Usage: check_tool_tlv.sh SRCDIR TAPBRIDGE
set -euo pipefail

src=${1:?source dir}
bin=${2:?tapbridge binary}
[ -d "$src" ] || { echo "no source dir $src"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0

# run NAME WANT_RC WANT_STDOUT WANT_STDERR ARGS...: runs the tool, diffs both
# streams and checks the exit code.
run() {
	local name=$1 want_rc=$2 want_out=$3 want_err=$4 rc=0
	shift 4
	"$bin" tool tlv "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
	if [ "$rc" != "$want_rc" ]; then
		echo "FAIL $name: exit $rc, want $want_rc"
		failed=1
	fi
	if ! diff -u <(printf '%s' "$want_out") "$tmp/out" >"$tmp/diff"; then
		echo "FAIL $name: stdout differs"
		cat "$tmp/diff"
		failed=1
	fi
	if [ -n "$want_err" ] && ! diff -u <(printf '%s\n' "$want_err") "$tmp/err" >"$tmp/diff"; then
		echo "FAIL $name: stderr differs"
		cat "$tmp/diff"
		failed=1
	fi
	if [ -z "$want_err" ] && [ "$want_rc" = 0 ] && [ -s "$tmp/err" ]; then
		echo "FAIL $name: unexpected stderr: $(cat "$tmp/err")"
		failed=1
	fi
}

zeros=$(printf '00%.0s' $(seq 130))

# A GET STATUS entry, then an FCI with 81-form lengths, ASCII, an empty value
# and a 3-byte tag.
good="E3134F08A0000001510000009F700107C5039E8000\
6F81A28408A000000151000000A5819550064D41535445529F6E00DF81010141538182$zeros"
run good 0 "E3 (constructed, 19 bytes)
  4F (8 bytes) A000000151000000
  9F70 (1 byte) 07
  C5 (3 bytes) 9E8000
6F (constructed, 162 bytes)
  84 (8 bytes) A000000151000000
  A5 (constructed, 149 bytes)
    50 (6 bytes) 4D4153544552 \"MASTER\"
    9F6E (0 bytes)
    DF8101 (1 byte) 41 \"A\"
    53 (130 bytes) $zeros
" "" decode "$good"

# Hex split over arguments, with spaces and colons, decodes the same.
run split 0 "4F (2 bytes) 4142 \"AB\"
" "" decode "4F 02" "41:42"

# Non-minimal length: BER accepts it, --strict does not.
run ber 0 "4F (1 byte) 41 \"A\"
" "" decode 4F810141
run strict 1 "" "error: TLV length longer than 3 bytes or not minimal at offset 0" \
	decode --strict 4F810141

run trunc-length 1 "E3 (constructed, 5 bytes)
  4F (3 bytes) 010203
" "error: TLV length field truncated at offset 7" decode E3054F030102039F7082

run past-end 1 "E3 (constructed, 10 bytes)
  50 (5 bytes) 4D41535445 \"MASTE\"
" "error: TLV length runs past the end of the data at offset 9" decode E30A50054D415354459F7001

run indefinite 1 "4F (1 byte) 00
" "error: TLV indefinite length not allowed at offset 3" decode 4F0100E38000000000

run long-form 1 "" "error: TLV length longer than 3 bytes or not minimal at offset 0" \
	decode 4F84000000010041

# Nine levels: eight E0 around a 4F; the limit is eight.
run too-deep 1 "E0 (constructed, 16 bytes)
  E0 (constructed, 14 bytes)
    E0 (constructed, 12 bytes)
      E0 (constructed, 10 bytes)
        E0 (constructed, 8 bytes)
          E0 (constructed, 6 bytes)
            E0 (constructed, 4 bytes)
              E0 (constructed, 2 bytes)
" "error: TLV nesting too deep at offset 16" decode E010E00EE00CE00AE008E006E004E0024F00

run eight-deep 0 "E0 (constructed, 14 bytes)
  E0 (constructed, 12 bytes)
    E0 (constructed, 10 bytes)
      E0 (constructed, 8 bytes)
        E0 (constructed, 6 bytes)
          E0 (constructed, 4 bytes)
            E0 (constructed, 2 bytes)
              4F (0 bytes)
" "" decode E00EE00CE00AE008E006E004E0024F00

run tag-4-bytes 1 "4F (0 bytes)
" "error: TLV tag longer than 3 bytes or malformed at offset 2" decode 4F009F81810100

run tag-cut 1 "" "error: input ends before the item does at offset 0" decode 9F81

run bad-hex 1 "" "error: not a valid hex string" decode E3G1
run odd-hex 1 "" "error: not a valid hex string" decode E30

run usage-none 2 "" "" 
run usage-verb 2 "" "" frob 4F00
run usage-nohex 2 "" "" decode
run usage-flag 2 "" "" decode --bogus 4F00
grep -q '^usage: tapbridge tool tlv decode' "$tmp/err" || { echo "FAIL usage text"; failed=1; }

if [ "$failed" != 0 ]; then
	echo "check_tool_tlv: FAILED"
	exit 1
fi
echo "check_tool_tlv: all passed"
