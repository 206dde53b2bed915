#!/usr/bin/env bash
# fuzz.sh BUILD SECONDS - runs every libFuzzer target in BUILD for SECONDS each,
# seeded from fuzz/corpus/NAME (read only; new inputs go to BUILD/fuzz-work/NAME),
# and prints one line per target with its exec count. Exits 1 on any finding.
set -uo pipefail
build=${1:?usage: fuzz.sh BUILD SECONDS}
secs=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
status=0
for bin in "$build"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin"); short=${name#fuzz_}
	work="$build/fuzz-work/$short"; mkdir -p "$work" "$build/fuzz-artifacts"
	log="$build/fuzz-artifacts/$short.log"
	"$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$short-" \
		"$work" "$src/fuzz/corpus/$short" >"$log" 2>&1
	rc=$?
	execs=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -Eo '[0-9]+$' | tail -1)
	cov=$(grep -Eo 'cov: [0-9]+' "$log" | tail -1)
	if [ $rc -eq 0 ]; then
		echo "fuzz $short: ${execs:-?} execs in ${secs}s, ${cov:-cov: ?}, no finding"
	else
		echo "fuzz $short: FINDING (exit $rc) after ${execs:-?} execs; see $log"; status=1
	fi
done
exit $status
