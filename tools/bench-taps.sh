#!/usr/bin/env bash
# bench-taps.sh BIN - the tap benchmark of issue 6, run by `tapbridge bench taps` (and so
# by `make bench`): one throwaway deployment on the rig of `make demo` (tools/demo-lib.sh)
# with the gateway holding every chunk 25 ms each way (a 50 ms round trip, a typical LTE
# figure). The reference R is the median round trip of a plain PING/PONG through the same
# gateway and the phone's TLS session (`ping N`, docs/phone.md), measured before and after
# the taps; each flow then taps K times, and its time is the median of the reader's
# `reader: stats ... tap-ms=T` over the taps that went through. Prints, in this order,
#   bench tap-flowN ours=T ms ref=R ms ratio=T/R        (N = 1..5; flow 3's ref is R too)
#   # targets: ... (flows 1 2 4 5 within R + 40 ms, flow 3 under 40 ms: met or not)
# on stdout; progress and reasons on stderr. Exit 0 when every flow had a tap that went
# through and nothing was left running (a target missed is a result, not a failure).
# Tunables: TB_BENCH_TAPS (K, default 10), TB_BENCH_PINGS (round trips per reference
# measurement, default 20), TB_BENCH_DELAY_MS (default 25), TB_LINK, TB_KEEP (demo-lib.sh).
set -uo pipefail
TB_WHO="bench taps"
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/demo-lib.sh"

bin=${1:?usage: bench-taps.sh BIN}
K=${TB_BENCH_TAPS:-10}
P=${TB_BENCH_PINGS:-20}
DELAY_MS=${TB_BENCH_DELAY_MS:-25}
export DELAY_MS
say() { echo "bench taps: $*" >&2; }
for v in K P DELAY_MS; do
	[[ ${!v} =~ ^[0-9]+$ ]] && [ "${!v}" -ge 1 ] && [ "${!v}" -le 1000 ] ||
		{ say "$v=${!v}: want a number 1..1000"; exit 2; }
done

# The tap amounts are small so a few top-ups carry K rounds (service 1 tops up 1000).
PAY=100 ORDER_ITEMS=3:1:120 ORDER_SUM=120
TOPUPS=$(((K * (2 * PAY + ORDER_SUM) + 999) / 1000 + 1))

median() { sort -n | awk '{ v[NR] = $1 } END {
	if (NR == 0) exit 1
	if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# ping_rtts: P PING/PONG round trips in one phone session; their ms, one a line, appended
# to $TB_TMP/rtts. 1 when fewer came back.
ping_rtts() {
	local got
	tb_phone_start || return 1
	tb_phone_do "ping $P" 'phone: (ping rtt-ms=|error)' 15
	tb_phone_end $((5 + P))
	grep -Eo '^phone: ping rtt-ms=[0-9]+' "$TB_PHONE_LOG" | sed 's/.*=//' >>"$TB_TMP/rtts"
	got=$(grep -c '^phone: ping rtt-ms=' "$TB_PHONE_LOG")
	[ "$got" = "$P" ] || { say "only $got of $P PONGs ($(tb_last_words "$TB_PHONE_LOG"))"; return 1; }
}

# One tap of each flow, as in docs/flows.md (tools/demo-lib.sh tb_flow_N, with small
# amounts and a fresh ticket for each gate tap).
bench_flow_1() {
	tb_step 1 e-money 7 "paid $PAY at reader 7" "use 1|$TB_RE_AVAILABLE" -- \
		--app pay --amount "$PAY" --flow-order online-first
}
bench_flow_2() {
	tb_step 2 e-money 7 "paid $PAY at reader 7" "permit 1|$TB_RE_PERMIT" "arm 1|$TB_RE_ARMED" -- \
		--app pay --amount "$PAY" --flow-order offline-first
}
bench_flow_3() {
	tb_phone_session "select 3|$TB_RE_FLAG" || say "flag not set: $TB_WHY"
	tb_step 3 personal-auth 7 "" -- --app id
}
bench_flow_4() {
	tb_step 4 e-commerce 7 "order paid $ORDER_SUM at reader 7" "permit 4|$TB_RE_PERMIT" \
		"arm 4|$TB_RE_ARMED" -- --app checkout --items "$ORDER_ITEMS" --flow-order offline-first
}
bench_flow_5() {
	tb_step 5 ticket 8 "reader 8: ticket recorded" "select 2|$TB_RE_TICKET" \
		"permit 2|$TB_RE_PERMIT" "arm 2|$TB_RE_ARMED" -- \
		--app gate --ticket-service 2 --flow-order offline-first
}

tb_init "$bin" || exit 1
: >"$TB_TMP/rtts"
tb_have phone && tb_have reader || { say "tapbridge phone and reader are needed"; exit 1; }
say "deployment in $TB_TMP, gateway delay $DELAY_MS ms each way, $K taps per flow"
tb_deploy || { say "the deployment could not be made"; exit 1; }
tb_start_stack || { say "the parties did not start"; exit 1; }
say "contactless: $TB_MODE${TB_MODE_WHY:+ ($TB_MODE_WHY)}"
steps=("menu|$TB_RE_MENU")
for ((i = 0; i < TOPUPS; i++)); do steps+=("topup 1|$TB_RE_TOPUP"); done
tb_phone_session "${steps[@]}" || { say "setup: $TB_WHY"; exit 1; }
ping_rtts || exit 1

t0=$SECONDS
for ((i = 1; i <= K; i++)); do
	# Flow 3 first in each round: its taps need an se with no relay armed.
	for f in 3 1 2 4 5; do
		"bench_flow_$f"
		n=$((${#TB_R_FLOW[@]} - 1))
		say "round $i/$K flow $f: ${TB_R_RES[n]} tap-ms=${TB_R_MS[n]} tap-rtts=${TB_R_RTTS[n]}"
	done
done
say "taps done in $((SECONDS - t0)) s"
ping_rtts || exit 1
tb_stop_all

R=$(median <"$TB_TMP/rtts")
say "reference: $(wc -l <"$TB_TMP/rtts") PING/PONG round trips, median $R ms, range" \
	"$(sort -n "$TB_TMP/rtts" | sed -n '1p;$p' | tr '\n' ' ')ms"
rc=0
met="" missed=""
for f in 1 2 3 4 5; do
	ms=() bad=0 why=""
	for i in "${!TB_R_FLOW[@]}"; do
		[ "${TB_R_FLOW[i]}" = "$f" ] || continue
		if [ "${TB_R_RES[i]}" = ok ]; then ms+=("${TB_R_MS[i]}"); else
			bad=$((bad + 1))
			why=${TB_R_RES[i]}
		fi
	done
	[ $bad -eq 0 ] || say "flow $f: $bad of $K taps failed (last: $why)"
	if [ ${#ms[@]} -eq 0 ]; then
		echo "bench tap-flow$f skipped: no tap went through ($why)"
		rc=1
		continue
	fi
	T=$(printf '%s\n' "${ms[@]}" | median)
	say "flow $f: tap-ms over ${#ms[@]} taps: $(printf '%s\n' "${ms[@]}" | sort -n | tr '\n' ' ')"
	awk -v f="$f" -v t="$T" -v r="$R" 'BEGIN {
		printf "bench tap-flow%s ours=%.0f ms ref=%.0f ms ratio=%.3f\n", f, t, r, (r > 0 ? t / r : 0) }'
	if [ "$f" = 3 ]; then
		awk -v t="$T" 'BEGIN { exit !(t < 40) }' && met="$met flow3" || missed="$missed flow3"
	else
		awk -v t="$T" -v r="$R" 'BEGIN { exit !(t <= r + 40) }' && met="$met flow$f" ||
			missed="$missed flow$f"
	fi
done
awk -v r="$R" -v m="${met# }" -v x="${missed# }" -v k="$K" -v mode="$TB_MODE" -v d="$DELAY_MS" 'BEGIN {
	printf "# targets (gateway %s ms each way, R = %.0f ms, %s taps per flow, contactless %s): " \
		"flows 1 2 4 5 within R + 40 = %.0f ms, flow 3 under 40 ms; met: %s; NOT met: %s\n",
		d, r, k, mode, r + 40, m == "" ? "none" : m, x == "" ? "none" : x }'
[ -z "$TB_LEFT" ] || rc=1
exit $rc
