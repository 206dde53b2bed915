#!/usr/bin/env bash
# check_bench.sh SRC BIN - `tapbridge bench` smoke test: short ledger and auth runs print
# their lines in the documented format (the figures are not checked: machines differ).
set -uo pipefail
bin=${2:?usage: check_bench.sh SRC BIN}
fail=0; pass=0
num='[0-9]+(\.[0-9]+)?'
line() { # name unit
	echo "^bench $1 ours=$num $2 ref=$num $2 ratio=$num\$"
}

check() { # name: runs it, checks its lines
	local name=$1 out
	if ! out=$("$bin" bench "$name" --seconds 0.5); then
		echo "FAIL: bench $name exited non-zero"; fail=$((fail + 1)); return
	fi
	echo "$out"
	case $name in
	auth) grep -Eq "$(line auth handshakes/s)" <<<"$out" ;;
	ledger) grep -Eq "$(line ledger payments/s)" <<<"$out" &&
		grep -Eq "$(line ledger-pg payments/s)|^bench ledger-pg skipped: .+" <<<"$out" ;;
	esac
	if [ $? -eq 0 ] && ! grep -Evq '^bench [a-z-]+ ' <<<"$out"; then
		echo "ok: bench $name prints its line"; pass=$((pass + 1))
	else
		echo "FAIL: bench $name output is not in the format"; fail=$((fail + 1))
	fi
}

check ledger
check auth
if "$bin" bench nosuch >/dev/null 2>&1; then
	echo "FAIL: an unknown benchmark name is accepted"; fail=$((fail + 1))
else
	echo "ok: an unknown benchmark name is refused"; pass=$((pass + 1))
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
