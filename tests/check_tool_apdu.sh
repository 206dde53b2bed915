#!/usr/bin/env bash
# check_tool_apdu.sh SRC BIN - `tapbridge tool apdu decode` prints the fields of good
# command and response APDUs line by line, one `error:` line with the offset for bad
# ones (exit 1), and usage errors exit 2. The output lines checked here are stable.
set -euo pipefail
src=${1:?usage: check_tool_apdu.sh SRC BIN}
bin=${2:?usage: check_tool_apdu.sh SRC BIN}
[ -d "$src" ] || { echo "FAIL: no source dir $src"; exit 1; }
fail=0; pass=0
out=""; rc=0

run() { # args...: runs the tool, keeps stdout+stderr in $out and the status in $rc
	rc=0
	out=$("$bin" tool apdu "$@" 2>&1) || rc=$?
}

# expect WANT_RC LINE... -- ARGS...: the exit status and each LINE (a fixed whole line).
expect() {
	local want_rc=$1; shift
	local lines=()
	while [ "$1" != "--" ]; do lines+=("$1"); shift; done
	shift
	run "$@"
	local ok=1
	if [ "$rc" -ne "$want_rc" ]; then
		echo "FAIL: tool apdu $* exited $rc, want $want_rc"; ok=0
	fi
	for l in "${lines[@]}"; do
		if ! grep -qxF -- "$l" <<<"$out"; then
			echo "FAIL: tool apdu $*: missing line '$l'"; ok=0
		fi
	done
	if [ "$ok" -eq 1 ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		printf '  output was:\n%s\n' "$out" | sed 's/^/  | /'
	fi
}

# Good commands: every case, short and extended.
expect 0 "case 1" "cla 80  ins CA  p1 00  p2 66" -- decode 80CA0066
expect 0 "case 2 short" "le 256 (00)" -- decode 80CA006600
expect 0 "case 2 short" "le 16 (10)" -- decode 80CA9F7F10
expect 0 "case 3 short" "lc 6  data BF3E035C015A" -- decode 80CA006606BF3E035C015A
expect 0 "case 4 short" "cla 80  ins CA  p1 00  p2 66" "lc 6  data BF3E035C015A" "le 256 (00)" \
	-- decode "80 CA 00 66 06 BF3E035C015A 00"
expect 0 "case 2 extended" "le 65536 (000000)" -- decode 00B00000000000
expect 0 "case 2 extended" "le 257 (000101)" -- decode 00B00000000101
expect 0 "case 3 extended" "lc 3  data 010203" -- decode "00D6000000000301 0203"
expect 0 "case 4 extended" "lc 3  data 010203" "le 65536 (0000)" -- decode 00D600000000030102030000
expect 0 "case 4 short" "cla 00  ins A4  p1 04  p2 00" "lc 8  data A000000151000000" "le 256 (00)" \
	-- decode 00a4040008a00000015100000000
# A case 2 extended line must not also say short.
run decode 00B00000000000
if grep -q "short" <<<"$out"; then echo "FAIL: case 2E printed 'short'"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
# Case 1 has no lc or le line.
run decode 80CA0066
if grep -Eq "^(lc|le) " <<<"$out"; then echo "FAIL: case 1 printed lc/le"; fail=$((fail + 1)); else pass=$((pass + 1)); fi

# Bad commands: the error, its name and the offset.
expect 1 "error: at offset 2: APDU shorter than its 4-byte header (TB_E_APDU_SHORT)" -- decode 80CA
expect 1 "error: at offset 0: APDU shorter than its 4-byte header (TB_E_APDU_SHORT)" -- decode ""
expect 1 "error: at offset 4: APDU Lc does not match the data (TB_E_APDU_LC)" -- decode 80CA006605BF3E
expect 1 "error: at offset 4: APDU Lc does not match the data (TB_E_APDU_LC)" -- decode 80CA006602AABBCCDD
expect 1 "error: at offset 13: APDU Le field malformed (TB_E_APDU_LE)" -- decode 80CA0066000006BF3E035C015A00
expect 1 "error: at offset 4: APDU length fields malformed (TB_E_APDU_FORM)" -- decode 80CA00660000
expect 1 "error: at offset 4: APDU length fields malformed (TB_E_APDU_FORM)" -- decode 80CA0066000000AA
expect 1 "error: at character 9: not a valid hex string (TB_E_HEX)" -- decode 80CA00660
expect 1 "error: at character 1: not a valid hex string (TB_E_HEX)" -- decode 8G
expect 1 "error: at character 1: not a valid hex string (TB_E_HEX)" -- decode "8 0"
# Exactly one line on errors, and it goes to stdout.
run decode 80CA006605BF3E
if [ "$(wc -l <<<"$out")" -ne 1 ]; then echo "FAIL: more than one error line"; fail=$((fail + 1)); else pass=$((pass + 1)); fi
stdout_only=$("$bin" tool apdu decode 80CA 2>/dev/null || true)
if grep -q '^error: ' <<<"$stdout_only"; then pass=$((pass + 1)); else echo "FAIL: error line not on stdout"; fail=$((fail + 1)); fi
# A long extended command: 1000 data bytes (Lc 0003E8), Le 0400.
data=$(head -c 1000 /dev/zero | od -An -v -tx1 | tr -d ' \n' | tr a-f A-F)
expect 0 "case 4 extended" "lc 1000  data $data" "le 1024 (0400)" -- decode "80E2000000 03E8 $data 0400"

# Responses.
expect 0 "nr 3  data 6F10A0" "sw 9000  success" -- decode --response 6F10A09000
expect 0 "nr 0" "sw 6A82  file or application not found" -- decode --response 6A82
expect 0 "sw 63C2  verification failed, 2 tries left" -- decode --response 63C2
expect 0 "sw 6110  16 more bytes available (GET RESPONSE)" -- decode --response 6110
expect 0 "sw 6C20  wrong Le; exact length is 32" -- decode --response 6C20
expect 1 "error: at offset 1: response APDU shorter than SW1 SW2 (TB_E_APDU_RESP)" -- decode --response 90
expect 1 "error: at character 2: not a valid hex string (TB_E_HEX)" -- decode --response 90x0

# Usage errors exit 2.
expect 2 --
expect 2 -- decode
expect 2 -- encode 80CA0066
expect 2 -- decode --response
expect 2 -- decode --bogus 9000
expect 2 -- decode 80CA0066 extra
expect 0 -- --help

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
