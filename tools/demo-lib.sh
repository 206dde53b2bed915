#!/usr/bin/env bash
# demo-lib.sh - the flows rig, sourced by tools/demo.sh (`make demo`) and tests/check_flows.sh.
# It makes a throwaway deployment in a temporary folder, starts every party as a separate
# process on loopback (sam, server, gateway, pcscd+vpcd or the direct link, se, then a phone
# and a reader per tap), runs the five flows of docs (FLOWS) and renders a transcript.
# What stays true: every process it starts runs in a session of its own (setsid), is
# recorded in TB_PIDS and is stopped by tb_cleanup (EXIT/INT/TERM traps), which also stops
# the pcscd rig when this script started it; every wait has a timeout; nothing is left
# running and the temporary folder is removed (TB_KEEP=1 keeps it).
#
# Tunables (environment): DELAY_MS (gateway delay each way, default 0), TB_LINK
# (auto|pcsc|direct, default auto: pcscd when it can run, else the direct link),
# TB_TAP_TIMEOUT (seconds a tap may take, default 20), TB_KEEP, TB_SERVER_ARGS (more
# `tapbridge server` flags, split at blanks; with `--portal HOST:PORT` the rig waits for
# the portal too and sets TB_PORTAL_URL).

TB_SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TB_SRC=${TB_SRC:-$(cd "$TB_SELF_DIR/.." && pwd)}

# The texts the parties print that the rig waits for (the server's notices are in
# src/io/srv_svc_io.c; the phone prints its screen lines with the prefix "phone: ").
TB_RE_MENU=${TB_RE_MENU:-'phone: .*(menu|service)'}
TB_RE_TOPUP='topped up [0-9]+, balance [0-9]+'
TB_RE_TICKET='ticket [0-9]+ issued'
TB_RE_FLAG='flag set until'
TB_RE_AVAILABLE='service available: tap the reader'
TB_RE_PERMIT='permit stored'
TB_RE_ARMED=${TB_RE_ARMED:-'phone: .*armed'}
TB_RE_BALANCE=${TB_RE_BALANCE:-'phone: .*balance'}
TB_RE_HISTORY_END=${TB_RE_HISTORY_END:-'phone: .*(history|no usage)'}
TB_PCSC_READER="Virtual PCD 00 00"
TB_VPCD_PORT=35963
TB_SE_SERIAL=5345000000000001

TB_PIDS=()
TB_FILTERS=()
TB_PCSC_STARTED=0
TB_CLEANED=0
TB_STOPPED=0
TB_LEFT=""
TB_PHONE_PID=""
TB_PHONE_FD=""
TB_PHONE_N=0
TB_TAP_N=0
# Results, one entry per flow step (index = step number).
TB_R_FLOW=() TB_R_SVC=() TB_R_RES=() TB_R_RTTS=() TB_R_MS=() TB_R_READER=() TB_R_PHONE=()
TB_R_RC=() TB_R_ENV=() TB_R_NOTICE=()

tb_err() {
	echo "${TB_WHO:-demo}: $*" >&2
	[ -n "${TB_EVENTS:-}" ] && [ -f "$TB_EVENTS" ] && tb_note "error: $*"
	return 0
}

# tb_init BIN: the binary (absolute), the temporary folder, the traps.
tb_init() {
	local bin=$1
	case "$bin" in /*) ;; *) bin=$PWD/$bin ;; esac
	TB_BIN=$bin
	[ -x "$TB_BIN" ] || { tb_err "no binary at $TB_BIN"; return 1; }
	TB_TMP=$(mktemp -d /tmp/tb_flows.XXXXXX) || return 1
	TB_DEP=$TB_TMP/dep
	TB_LOG=$TB_TMP/log
	TB_EVENTS=$TB_TMP/events
	mkdir -p "$TB_LOG" && : >"$TB_EVENTS"
	TB_DELAY=${DELAY_MS:-0}
	TB_TAP_TIMEOUT=${TB_TAP_TIMEOUT:-20}
	# ASan builds refuse a preloaded library ahead of their runtime (stdbuf's).
	export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
	export LC_ALL=C
	trap tb_cleanup EXIT
	trap 'tb_err "interrupted: stopping everything"; exit 130' INT
	trap 'tb_err "terminated: stopping everything"; exit 143' TERM
}

# A line for the transcript from the rig itself (headers, notes).
tb_note() {
	printf '%s\t=\t%s\n' "$EPOCHREALTIME" "$*" >>"$TB_EVENTS"
}

# The output filter of one process: each line to its raw log and, stamped and labelled,
# to the shared events file. It ends at end of file (the process gone), never on a signal.
tb__filter() {
	local label=$1 raw=$2 fpid=$3 line
	trap '' INT TERM
	echo "$BASHPID" >"$fpid"
	exec 3>>"$TB_EVENTS" 4>>"$raw"
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s\t%s\t%s\n' "$EPOCHREALTIME" "$label" "$line" >&3
		printf '%s\n' "$line" >&4
	done
}

# tb_spawn NAME LABEL CMD...: CMD in the background in a session of its own, its output
# (stdout and stderr, line-buffered) through the filter; TB_LAST_PID = its pid = its
# session and process group.
tb_spawn() {
	local name=$1 label=$2
	shift 2
	: >"$TB_LOG/$name.log"
	setsid stdbuf -oL -eL "$@" > >(tb__filter "$label" "$TB_LOG/$name.log" "$TB_LOG/$name.fpid") \
		2>&1 </dev/null &
	TB_LAST_PID=$!
	TB_PIDS+=("$TB_LAST_PID")
	TB_FILTERS+=("$TB_LOG/$name.fpid")
}

# 0 while pid is alive and not a zombie.
tb_alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

# tb_wait_exit PID SECS: its exit status, or 124 after stopping it when it outlived SECS.
tb_wait_exit() {
	local pid=$1 end=$((SECONDS + $2)) rc=0
	while tb_alive "$pid"; do
		if [ "$SECONDS" -ge "$end" ]; then
			tb_stop "$pid"
			return 124
		fi
		sleep 0.02
	done
	wait "$pid" 2>/dev/null || rc=$?
	return "$rc"
}

# tb_stop PID: SIGTERM to its process group, up to 5 s, then SIGKILL; reaped.
tb_stop() {
	local pid=$1 i
	[ -n "$pid" ] || return 0
	if tb_alive "$pid"; then
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 250); do
			tb_alive "$pid" || break
			sleep 0.02
		done
		if tb_alive "$pid"; then
			tb_err "pid $pid ignored SIGTERM: killing it"
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	# Anything else left in its session (a child it started).
	pkill -KILL -s "$pid" 2>/dev/null
	return 0
}

# tb_wait_line FILE REGEX SECS [FROM_LINE [PID]]: the first line after FROM_LINE matching
# REGEX (extended), printed; 1 after SECS, or as soon as PID is gone without it.
tb_wait_line() {
	local file=$1 re=$2 end=$((SECONDS + $3)) from=${4:-0} pid=${5:-} hit
	for (( ; ; )); do
		hit=$(tail -n "+$((from + 1))" "$file" 2>/dev/null | grep -E -m1 -- "$re") && {
			printf '%s\n' "$hit"
			return 0
		}
		if [ -n "$pid" ] && ! tb_alive "$pid"; then
			sleep 0.05 # the filter may still be writing its last lines
			hit=$(tail -n "+$((from + 1))" "$file" 2>/dev/null | grep -E -m1 -- "$re") && {
				printf '%s\n' "$hit"
				return 0
			}
			return 1
		fi
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.02
	done
}

tb_lines() { wc -l <"$1" 2>/dev/null || echo 0; }

# tb_stop_all: stops everything this rig started (newest first) and the pcscd rig,
# waits for the output filters; TB_LEFT = what is still running (empty: nothing).
tb_stop_all() {
	local i pid f fp left=""
	[ "$TB_STOPPED" = 1 ] && return 0
	TB_STOPPED=1
	[ -n "$TB_PHONE_FD" ] && exec {TB_PHONE_FD}>&- 2>/dev/null
	for ((i = ${#TB_PIDS[@]} - 1; i >= 0; i--)); do
		tb_stop "${TB_PIDS[i]}"
	done
	if [ "$TB_PCSC_STARTED" = 1 ]; then
		bash "$TB_SRC/tests/pcscd_rig.sh" stop 2>>"$TB_LOG/pcscd.log"
		TB_PCSC_STARTED=0
	fi
	for f in "${TB_FILTERS[@]}"; do
		fp=$(cat "$f" 2>/dev/null) || continue
		for i in $(seq 1 100); do
			[ -d "/proc/$fp" ] || break
			sleep 0.02
		done
	done
	for pid in "${TB_PIDS[@]}"; do
		if pgrep -s "$pid" >/dev/null 2>&1; then left="$left $pid"; fi
	done
	if [ -n "${TB_TMP:-}" ] && pgrep -f "$TB_TMP" >/dev/null 2>&1; then
		left="$left $(pgrep -f "$TB_TMP" | tr '\n' ' ')"
	fi
	TB_LEFT=$left
	if [ -n "$left" ]; then
		tb_err "still running after the stop:$left"
	fi
	return 0
}

# tb_cleanup (the EXIT trap): tb_stop_all, then the temporary folder removed.
tb_cleanup() {
	[ "$TB_CLEANED" = 1 ] && return 0
	TB_CLEANED=1
	trap '' INT TERM
	tb_stop_all
	if [ -n "${TB_TMP:-}" ] && [ -d "$TB_TMP" ]; then
		if [ -n "${TB_KEEP:-}" ]; then
			tb_err "kept $TB_TMP"
		else
			rm -rf "$TB_TMP"
		fi
	fi
	return 0
}

# ------------------------------------------------------------------ the parties ---

# 0 when `tapbridge NAME` exists (not the "not built yet" stub).
tb_have() {
	local out
	out=$("$TB_BIN" "$1" --help 2>&1)
	! grep -q -e 'is not built yet' -e 'unknown command' <<<"$out"
}

tb_admin() {
	local out rc=0
	out=$("$TB_BIN" admin "$@" 2>&1) || rc=$?
	printf '%s\n' "$out" >>"$TB_LOG/admin.log"
	if [ $rc -ne 0 ]; then
		tb_err "tapbridge admin $1 failed ($rc): $out"
		return $rc
	fi
	TB_ADMIN_OUT=$out
	return 0
}

# The deployment: sam keys, server, one se personalised for a phone, two readers and
# the four services. Reads the fingerprint phones pin.
tb_deploy() {
	tb_admin init --dir "$TB_DEP" || return 1
	TB_PIN=$(printf '%s\n' "$TB_ADMIN_OUT" | grep -Eo 'SHA256:[0-9A-F]{64}' | head -n1)
	[ -n "$TB_PIN" ] || { tb_err "admin init printed no fingerprint"; return 1; }
	tb_admin se-register --dir "$TB_DEP" --image "$TB_DEP/se.img" --serial "$TB_SE_SERIAL" &&
		tb_admin se-config --image "$TB_DEP/se.img" --max-balance 100000 &&
		tb_admin reader-register --dir "$TB_DEP" --id 7 --class 1 &&
		tb_admin reader-register --dir "$TB_DEP" --id 8 --class 1 &&
		tb_admin service-add --dir "$TB_DEP" --id 1 --kind e-money --name purse --price 1=1000 &&
		tb_admin service-add --dir "$TB_DEP" --id 2 --kind ticket --name transit &&
		tb_admin service-add --dir "$TB_DEP" --id 3 --kind personal-auth --name id-check \
			--price 1=500 &&
		tb_admin service-add --dir "$TB_DEP" --id 4 --kind e-commerce --name shop \
			--price 1=300 --price 2=450 --price 3=120 &&
		tb_admin pauth-set --dir "$TB_DEP" --se "$TB_SE_SERIAL" --attr name=Hanako \
			--attr age-over-20=yes --class 1 --visible age-over-20 || return 1
	mkdir -m 700 "$TB_DEP/r7" "$TB_DEP/r8" || return 1
	tb_note "deployment $TB_DEP: sam keys (development KEK), server certificate $TB_PIN,"
	tb_note "  se $TB_SE_SERIAL personalised (server and reader key sets), readers 7 and 8,"
	tb_note "  services 1 e-money \"purse\" (top-up 1000), 2 ticket \"transit\","
	tb_note "  3 personal-auth \"id-check\" (offline limit 500), 4 e-commerce \"shop\" (1=300 2=450 3=120);"
	tb_note "  personal data of the se's owner: name, age-over-20 (readers of class 1 may see age-over-20)"
	return 0
}

# A port below the kernel's ephemeral range (32768-60999: outgoing connections take
# those) that no socket uses in any state.
tb_free_port() {
	local p i
	for i in $(seq 1 64); do
		p=$((20000 + RANDOM % 12000))
		[ "$p" = "$TB_VPCD_PORT" ] && continue
		ss -Htan "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}

# The pcscd rig (tests/pcscd_rig.sh, pcscd + vpcd in namespace tb_pcsc) or the direct
# link; TB_MODE = pcsc | direct, TB_MODE_WHY = why not pcsc.
tb_pcsc_choose() {
	local rc=0
	TB_MODE=direct
	TB_MODE_WHY=""
	case "${TB_LINK:-auto}" in
	direct) TB_MODE_WHY="TB_LINK=direct"; return 0 ;;
	esac
	# Called directly from this shell: the rig records our pid as its owner.
	bash "$TB_SRC/tests/pcscd_rig.sh" start 2>>"$TB_LOG/pcscd.log" || rc=$?
	case $rc in
	0) TB_MODE=pcsc; TB_PCSC_STARTED=1 ;;
	77) TB_MODE_WHY="pcscd cannot run here ($(grep -o 'SKIP: .*' "$TB_LOG/pcscd.log" | tail -n1))" ;;
	3) TB_MODE_WHY="another pcscd is running (only one fits on a machine)" ;;
	*) TB_MODE_WHY="pcscd did not start (see its log)" ;;
	esac
	if [ "$TB_MODE" != pcsc ] && [ "${TB_LINK:-auto}" = pcsc ]; then
		tb_err "TB_LINK=pcsc but $TB_MODE_WHY"
		return 1
	fi
	return 0
}

# sam, server, gateway, pcscd+vpcd (or the direct link) and the se.
tb_start_stack() {
	local line ns=()
	tb_spawn sam sam "$TB_BIN" sam --socket "$TB_DEP/sam.sock" --keys "$TB_DEP/sam.keys" \
		--kek-file "$TB_DEP/sam.kek"
	TB_SAM_PID=$TB_LAST_PID
	for i in $(seq 1 1000); do
		[ -S "$TB_DEP/sam.sock" ] && break
		tb_alive "$TB_SAM_PID" || break
		sleep 0.02
	done
	[ -S "$TB_DEP/sam.sock" ] || { tb_err "the sam did not start: $(tail -n3 "$TB_LOG/sam.log")"; return 1; }

	local sargs=()
	read -r -a sargs <<<"${TB_SERVER_ARGS:-}"
	tb_spawn server server "$TB_BIN" server --state "$TB_DEP/state" --listen 127.0.0.1:0 \
		--http off --db "sqlite:$TB_DEP/srv.db" --sam "$TB_DEP/sam.sock" "${sargs[@]}"
	TB_SERVER_PID=$TB_LAST_PID
	line=$(tb_wait_line "$TB_LOG/server.log" '^listening phones ' 20 0 "$TB_SERVER_PID") ||
		{ tb_err "the server did not start: $(tail -n3 "$TB_LOG/server.log")"; return 1; }
	TB_SERVER_ADDR=${line#listening phones }
	TB_PORTAL_URL=""
	if [[ " ${sargs[*]} " == *" --portal "* ]]; then
		line=$(tb_wait_line "$TB_LOG/server.log" '^listening portal ' 20 0 "$TB_SERVER_PID") ||
			{ tb_err "the portal did not start: $(tail -n3 "$TB_LOG/server.log")"; return 1; }
		TB_PORTAL_URL=${line#listening portal }
	fi

	tb_spawn gateway gateway "$TB_BIN" gateway --listen 127.0.0.1:0 --to "$TB_SERVER_ADDR" \
		--delay-ms "$TB_DELAY"
	TB_GW_PID=$TB_LAST_PID
	line=$(tb_wait_line "$TB_LOG/gateway.log" '^gateway listening ' 20 0 "$TB_GW_PID") ||
		{ tb_err "the gateway did not start: $(tail -n3 "$TB_LOG/gateway.log")"; return 1; }
	line=${line#gateway listening }
	TB_GW_ADDR=${line%% *}

	tb_pcsc_choose || return 1
	[ "$TB_MODE" = pcsc ] && ns=(ip netns exec tb_pcsc)
	TB_NS=("${ns[@]}")
	# The se's direct-link port is picked here: another process may take it first.
	local try up=0
	for try in 1 2 3; do
		TB_SE_PORT=$(tb_free_port) || { tb_err "no free port"; return 1; }
		local se_args=(--image "$TB_DEP/se.img" --listen "tcp:127.0.0.1:$TB_SE_PORT"
			--link "$TB_DEP/se.link" --trace)
		[ "$TB_MODE" = pcsc ] && se_args+=(--vpcd "127.0.0.1:$TB_VPCD_PORT")
		tb_spawn "se-$try" se "${ns[@]}" "$TB_BIN" se "${se_args[@]}"
		TB_SE_PID=$TB_LAST_PID
		TB_SE_LOG=$TB_LOG/se-$try.log
		if tb_wait_line "$TB_SE_LOG" '^tapbridge se: serial ' 20 0 "$TB_SE_PID" >/dev/null; then
			up=1
			break
		fi
		tb_stop "$TB_SE_PID"
		grep -qi 'in use' "$TB_SE_LOG" || break
	done
	[ $up = 1 ] || { tb_err "the se did not start: $(tail -n3 "$TB_SE_LOG")"; return 1; }
	if [ "$TB_MODE" = pcsc ]; then
		tb_wait_line "$TB_SE_LOG" 'vpcd link up' 10 0 "$TB_SE_PID" >/dev/null ||
			{ tb_err "the se did not reach vpcd: $(tail -n3 "$TB_SE_LOG")"; return 1; }
		if command -v opensc-tool >/dev/null; then
			for i in $(seq 1 250); do
				opensc-tool -l 2>/dev/null | grep -q "Yes *$TB_PCSC_READER" && break
				sleep 0.02
			done
		fi
		tb_note "contactless: pcscd with vpcd (reader \"$TB_PCSC_READER\" in namespace tb_pcsc);"
		tb_note "  the direct link tcp:127.0.0.1:$TB_SE_PORT for reader 8 (flow 5)"
	else
		tb_note "contactless: the direct link tcp:127.0.0.1:$TB_SE_PORT for both readers:"
		tb_note "  PC/SC is not used because $TB_MODE_WHY"
	fi
	tb_note "server $TB_SERVER_ADDR, gateway $TB_GW_ADDR (delay ${TB_DELAY} ms each way)," \
		"se link $TB_DEP/se.link"
	return 0
}

# ---------------------------------------------------------------------- the phone ---

# tb_phone_start: a phone process reading its script from a fifo we hold open
# (read-write, so neither side blocks on open and a dead phone never blocks us).
tb_phone_start() {
	local fifo
	TB_PHONE_N=$((TB_PHONE_N + 1))
	fifo=$TB_TMP/phone-$TB_PHONE_N.fifo
	mkfifo "$fifo" || return 1
	exec {TB_PHONE_FD}<>"$fifo"
	TB_PHONE_LOG=$TB_LOG/phone-$TB_PHONE_N.log
	tb_spawn "phone-$TB_PHONE_N" phone "$TB_BIN" phone --server "$TB_GW_ADDR" --pin "$TB_PIN" \
		--link "$TB_DEP/se.link" --script "$fifo" --stats
	TB_PHONE_PID=$TB_LAST_PID
}

# tb_phone_do CMD [REGEX [SECS]]: the command to the phone; with REGEX waits for a
# phone line after it (TB_HIT = the line).
tb_phone_do() {
	local from
	from=$(tb_lines "$TB_PHONE_LOG")
	printf '%s\n' "$1" >&"$TB_PHONE_FD" 2>/dev/null || return 1
	[ -n "${2:-}" ] || return 0
	TB_HIT=$(tb_wait_line "$TB_PHONE_LOG" "$2" "${3:-10}" "$from" "$TB_PHONE_PID")
}

# tb_phone_end: quit, its exit (stopped after a few seconds), the fifo closed;
# TB_PHONE_RTTS = its relay round trips (stats line), or empty.
tb_phone_end() {
	local secs=${1:-5} line
	[ -n "$TB_PHONE_PID" ] || return 0
	printf 'quit\n' >&"$TB_PHONE_FD" 2>/dev/null
	tb_wait_exit "$TB_PHONE_PID" "$secs"
	TB_PHONE_RC=$?
	exec {TB_PHONE_FD}>&-
	TB_PHONE_FD=""
	TB_PHONE_PID=""
	sleep 0.05
	line=$(grep -Eo 'stats relay-rtts=[0-9]+' "$TB_PHONE_LOG" | tail -n1)
	TB_PHONE_RTTS=${line#stats relay-rtts=}
}

# tb_phone_session "CMD|REGEX" ...: one phone session running those commands in order;
# 1 (and TB_WHY) at the first that does not answer.
tb_phone_session() {
	local step cmd re
	TB_WHY=""
	tb_phone_start || { TB_WHY="phone did not start"; return 1; }
	for step in "$@"; do
		cmd=${step%%|*}
		re=${step#*|}
		[ "$re" = "$step" ] && re=""
		if ! tb_phone_do "$cmd" "$re" 15; then
			TB_WHY="phone: no answer to '$cmd' ($(tb_last_words "$TB_PHONE_LOG"))"
			tb_phone_end 2
			return 1
		fi
	done
	tb_phone_end
	return 0
}

# The last line a party said, for a failure reason.
tb_last_words() {
	local l
	l=$(grep -v 'stats ' "$1" 2>/dev/null | grep -v '^se ' | tail -n1)
	printf '%s' "${l:-nothing}" | tr -d '\r' | cut -c1-120
}

# --------------------------------------------------------------------- the reader ---

# tb_reader_args RID: TB_RARGS = the reader's transport and key options.
tb_reader_args() {
	local rid=$1
	TB_RPRE=()
	TB_RARGS=(--keys "$TB_DEP/reader-$rid.keys" --state "$TB_DEP/r$rid")
	if [ "$rid" = 7 ] && [ "$TB_MODE" = pcsc ]; then
		TB_RARGS+=(--pcsc "$TB_PCSC_READER")
	else
		TB_RARGS+=(--connect "tcp:127.0.0.1:$TB_SE_PORT")
		TB_RPRE=("${TB_NS[@]}")  # the se's tcp socket lives in its namespace
	fi
}

# tb_step FLOW SERVICE RID NOTICE PHONE_STEPS... -- READER_ARGS...
# One tap. With PHONE_STEPS ("CMD|REGEX", the last one leaves the se armed for the
# reader) a phone runs them, then serves the relay (`wait-notice NOTICE`, then `serve 1`
# so the relay's last answer, which follows the notice, is still carried); the reader
# taps; the step is ok when the reader ends in "done" and the phone got the notice
# starting with NOTICE. Without PHONE_STEPS (flow 3) no phone runs: ok when the reader
# ends in "done" and refused nothing. Records the result and the summary figures.
tb_step() {
	local flow=$1 svc=$2 rid=$3 notice=$4 n res="" rc=0 line env="" ms="" rtts="" st
	local rlog="" from=0 seen
	shift 4
	local psteps=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do psteps+=("$1"); shift; done
	[ "${1:-}" = -- ] && shift
	n=${#TB_R_FLOW[@]}
	TB_R_FLOW[n]=$flow TB_R_SVC[n]=$svc TB_R_NOTICE[n]="" TB_R_PHONE[n]="" TB_R_READER[n]=""
	TB_TAP_N=$((TB_TAP_N + 1))
	TB_PHONE_RTTS=""

	if ! tb_have reader; then
		res="failed: tapbridge reader is not built yet"
	elif [ ${#psteps[@]} -gt 0 ] && ! tb_have phone; then
		res="failed: tapbridge phone is not built yet"
	fi
	if [ -z "$res" ] && [ ${#psteps[@]} -gt 0 ]; then
		tb_phone_start
		TB_R_PHONE[n]=$TB_PHONE_LOG
		for st in "${psteps[@]}"; do
			local cmd=${st%%|*} re=${st#*|}
			[ "$re" = "$st" ] && re=""
			if ! tb_phone_do "$cmd" "$re" 15; then
				res="failed: phone: no answer to '$cmd' ($(tb_last_words "$TB_PHONE_LOG"))"
				break
			fi
		done
		from=$(tb_lines "$TB_PHONE_LOG")
		[ -z "$res" ] && tb_phone_do "wait-notice $notice $TB_TAP_TIMEOUT" && tb_phone_do "serve 1"
	fi
	if [ -z "$res" ]; then
		rlog=$TB_LOG/reader-$TB_TAP_N.log
		tb_reader_args "$rid"
		tb_spawn "reader-$TB_TAP_N" "reader $rid" "${TB_RPRE[@]}" "$TB_BIN" reader \
			"${TB_RARGS[@]}" --timeout 10 "$@"
		TB_R_READER[n]=$rlog
		tb_wait_exit "$TB_LAST_PID" "$TB_TAP_TIMEOUT"
		rc=$?
		tb_wait_line "$rlog" 'stats envelopes=' 2 0 >/dev/null
		line=$(grep -Eo 'stats envelopes=[0-9]+ tap-ms=[0-9]+' "$rlog" | tail -n1)
		if [ -n "$line" ]; then
			env=${line#stats envelopes=}
			env=${env%% *}
			ms=${line##*tap-ms=}
		fi
		if [ $rc -eq 124 ]; then
			res="failed: the reader took more than $TB_TAP_TIMEOUT s"
		elif [ $rc -ne 0 ]; then
			res="failed: reader exit $rc ($(tb_last_words "$rlog"))"
		elif [ ${#psteps[@]} -eq 0 ] && seen=$(grep -m1 'refused' "$rlog"); then
			res="failed: $seen"
		fi
		if [ -n "$TB_PHONE_PID" ]; then
			# The server's notices precede the relay's last answer: they are there
			# by the time the reader is done.
			if line=$(tb_wait_line "$TB_PHONE_LOG" "notice $notice" 2 "$from" "$TB_PHONE_PID"); then
				TB_R_NOTICE[n]=${line#phone: notice }
			else
				if [ -z "$res" ]; then
					seen=$(tail -n "+$((from + 1))" "$TB_PHONE_LOG" |
						grep -E -m1 'notice (.*refused|.*at reader|reader [0-9]+:)')
					seen=${seen#phone: notice }
					res="failed: ${seen:-no notice \"$notice\" at the phone}"
				fi
				# Still in its wait-notice: no stats from it, the envelopes say.
				tb_stop "$TB_PHONE_PID"
				exec {TB_PHONE_FD}>&-
				TB_PHONE_PID="" TB_PHONE_FD=""
			fi
		fi
	fi
	if [ -n "$TB_PHONE_PID" ]; then
		tb_phone_end 3
		rtts=$TB_PHONE_RTTS
	fi
	if [ -z "$rtts" ]; then
		# Without the phone's count: the reader's envelopes less the HELLO the phone
		# answers from its stage.
		if [ -n "$env" ] && [ "$env" -gt 0 ]; then rtts=$((env - 1)); else rtts=0; fi
	fi
	TB_R_RC[n]=$rc TB_R_ENV[n]=${env:-0} TB_R_RTTS[n]=$rtts TB_R_MS[n]=${ms:-0}
	TB_R_RES[n]=${res:-ok}
	tb_note "result: flow $flow $svc ${TB_R_RES[n]} tap-rtts=$rtts tap-ms=${ms:-0}"
	[ -z "$res" ]
}

# ---------------------------------------------------------------------- the flows ---

tb_flow_setup() {
	TB_SETUP_RES=ok
	tb_note "== setup: the phone tops up its purse twice and takes two tickets =="
	if ! tb_have phone; then
		TB_SETUP_RES="failed: tapbridge phone is not built yet"
	elif ! tb_phone_session "menu|$TB_RE_MENU" "topup 1|$TB_RE_TOPUP" "topup 1|$TB_RE_TOPUP" \
		"select 2|$TB_RE_TICKET" "select 2|$TB_RE_TICKET" "balance|$TB_RE_BALANCE"; then
		TB_SETUP_RES="failed: $TB_WHY"
	fi
	tb_note "setup $TB_SETUP_RES"
}

tb_flow_1() {
	tb_note "== flow 1: e-money payment, phone first (use at a reader now) =="
	tb_step 1 e-money 7 "paid 300 at reader 7" "use 1|$TB_RE_AVAILABLE" -- \
		--app pay --amount 300 --flow-order online-first
	tb_flow_1_refund 100 "${TB_R_PHONE[$((${#TB_R_FLOW[@]} - 1))]}"
	tb_note "== flow 1: ticket at the gate, phone first =="
	tb_step 1 ticket 7 "reader 7: ticket recorded" "use 2|$TB_RE_AVAILABLE" -- \
		--app gate --ticket-service 2 --flow-order online-first
}

# tb_flow_1_refund AMOUNT PHONE_LOG: part of the flow 1 payment of 300 given back at
# reader 7 (--app refund, online only). Its key S:<serial>:<counter> is the se's receipt
# of that debit: the phone showed the se's counter ("se says debit 300, ..., counter C").
# The server books the refund, then credits the se through its own channel on the same
# phone session: the notice "refund AMOUNT at reader 7, balance B" comes after that.
tb_flow_1_refund() {
	local amount=$1 plog=$2 c key
	tb_note "== flow 1: e-money refund of $amount of that payment at reader 7 =="
	c=$(grep -Eo 'se says debit 300, balance [0-9]+, counter [0-9]+' "$plog" 2>/dev/null |
		tail -n1)
	c=${c##* }
	[ -n "$c" ] && key=$(printf 'S:%s:%08X' "$TB_SE_SERIAL" "$c") || key=none
	TB_REFUND_KEY=$key
	tb_step 1 refund 7 "refund $amount at reader 7" "use 1|$TB_RE_AVAILABLE" -- \
		--app refund --amount "$amount" --refund-key "$key" --flow-order online-first
}

tb_flow_2() {
	tb_note "== flow 2: e-money payment, reader first (offline, then the relay the phone armed) =="
	tb_step 2 e-money 7 "paid 250 at reader 7" "permit 1|$TB_RE_PERMIT" "arm 1|$TB_RE_ARMED" -- \
		--app pay --amount 250 --flow-order offline-first
}

# The flag (the personal-auth service selected on the phone), then taps with no relay.
tb_flow_3() {
	tb_note "== flow 3: authenticity flag, identity at a reader with no network =="
	if tb_have phone && ! tb_phone_session "select 3|$TB_RE_FLAG"; then
		tb_note "flag not set: $TB_WHY"
	fi
	tb_step 3 personal-auth 7 "" -- --app id
	tb_note "== flow 3: e-money payment within the flag's offline limit, no network =="
	if tb_have phone && ! tb_phone_session "select 3|$TB_RE_FLAG"; then
		tb_note "flag not set: $TB_WHY"
	fi
	tb_step 3 e-money 7 "" -- --app pay --amount 400 --service 1 --flow-order offline-first
}

tb_flow_4() {
	tb_note "== flow 4: e-commerce checkout, service picked on the phone =="
	tb_step 4 e-commerce 7 "order paid 750 at reader 7" "permit 4|$TB_RE_PERMIT" \
		"arm 4|$TB_RE_ARMED" -- --app checkout --items 1:1:300,2:1:450 --flow-order offline-first
	# The se's key was registered when the flag was set (flow 3): the server checks the
	# se's proof and tells the reader only what its class may see.
	tb_note "== flow 4: personal authentication online, service picked on the phone =="
	tb_step 4 personal-auth 7 "reader 7: personal-auth recorded" "permit 3|$TB_RE_PERMIT" \
		"arm 3|$TB_RE_ARMED" -- --app id --flow-order offline-first
}

tb_flow_5() {
	tb_note "== flow 5: ticket at a gate over the direct link (reader 8) =="
	tb_step 5 ticket 8 "reader 8: ticket recorded" "permit 2|$TB_RE_PERMIT" "arm 2|$TB_RE_ARMED" -- \
		--app gate --ticket-service 2 --flow-order offline-first
}

tb_flow_final() {
	tb_note "== final balances and usage history (as the phone shows them) =="
	TB_FINAL_RES=ok
	TB_FINAL_PHONE=""
	if ! tb_have phone; then
		TB_FINAL_RES="failed: tapbridge phone is not built yet"
	elif ! tb_phone_session "balance|$TB_RE_BALANCE" "history 16|$TB_RE_HISTORY_END"; then
		TB_FINAL_RES="failed: $TB_WHY"
	fi
	TB_FINAL_PHONE=$TB_PHONE_LOG
}

# tb_portal_shots OUTDIR: the phone asks for its portal link (`portal`) and headless
# Chromium, a 390x844 phone screen (tests/util/portal_browser.py over the DevTools pipe),
# signs in with it and saves OUTDIR/portal-home.png and OUTDIR/portal-history.png; their
# paths go into the transcript. Without a portal, Chromium or python3 it says so and
# returns 0: the screenshots are a bonus, never a failure of the flows.
tb_portal_shots() {
	local out=$1 exe="" link py=${TB_PYTHON:-python3} l n=0
	tb_note "== the portal on a phone screen (the phone's one-time link in headless Chromium) =="
	rm -f "$out/portal-home.png" "$out/portal-history.png"
	if [ -z "${TB_PORTAL_URL:-}" ]; then
		tb_note "the server runs without --portal: no portal screenshots"
		return 0
	fi
	if [ -n "${CHROMIUM:-}" ] && [ -x "$CHROMIUM" ]; then exe=$CHROMIUM; else
		exe=$(command -v chromium || command -v chromium-browser || command -v google-chrome)
	fi
	if [ -z "$exe" ]; then
		tb_note "chromium not found: no portal screenshots"
		return 0
	fi
	if ! command -v "$py" >/dev/null; then
		tb_note "$py not found: no portal screenshots"
		return 0
	fi
	if ! tb_have phone || ! tb_phone_session "portal|phone: (portal link|error)"; then
		tb_note "no portal link from the phone (${TB_WHY:-phone not built}): no portal screenshots"
		return 0
	fi
	link=$(grep -Eo 'portal link https://[^ ]+' "$TB_PHONE_LOG" | tail -n1)
	link=${link#portal link }
	if [ -z "$link" ]; then
		tb_note "no portal link from the phone ($(tb_last_words "$TB_PHONE_LOG")): no portal screenshots"
		return 0
	fi
	CHROMIUM=$exe "$py" "$TB_SRC/tests/util/portal_browser.py" shoot "$link" "$out" \
		>"$TB_LOG/portal-shots.out" 2>"$TB_LOG/portal-shots.err"
	while IFS= read -r l; do
		[ -f "$l" ] || continue
		tb_note "portal screenshot ($([ $n = 0 ] && echo wallet || echo history) page, 390x844 phone screen): $l"
		n=$((n + 1))
	done <"$TB_LOG/portal-shots.out"
	[ $n -gt 0 ] || tb_note "no portal screenshots: $(tail -n1 "$TB_LOG/portal-shots.err" | cut -c1-160)"
	return 0
}

# Every flow with the four services (TB_FLOWS: the order, default "3 1 2 4 5": flow 3
# needs an se with no relay armed, and an armed relay stays armed until its expiry).
# Results in TB_R_*; TB_SETUP_RES / TB_FINAL_RES for the phone-only sessions.
tb_run_flows() {
	local f
	tb_flow_setup
	for f in ${TB_FLOWS:-3 1 2 4 5}; do "tb_flow_$f"; done
	tb_flow_final
	return 0
}

# The server's books for the se, into the transcript as "admin:" lines.
tb_books() {
	local l
	if "$TB_BIN" admin ledger --dir "$TB_DEP" --se "$TB_SE_SERIAL" >"$TB_LOG/ledger.txt" 2>&1; then
		TB_LEDGER_RC=0
	else
		TB_LEDGER_RC=$?
	fi
	"$TB_BIN" admin history --dir "$TB_DEP" --se "$TB_SE_SERIAL" >"$TB_LOG/history.txt" 2>&1
	tb_note "the server's books (tapbridge admin ledger / history --se $TB_SE_SERIAL):"
	while IFS= read -r l; do tb_note "  admin: $l"; done <"$TB_LOG/ledger.txt"
	while IFS= read -r l; do tb_note "  admin: $l"; done <"$TB_LOG/history.txt"
}

# ------------------------------------------------------------------ the transcript ---

# tb_render: the events in time order, one line per party line worth reading:
# screen lines of the phone and the readers, the server's notable events, the se's
# authentications (from its --trace: EXTERNAL AUTHENTICATE and its status word),
# the gateway's line summaries. Unfiltered raw logs stay in $TB_LOG.
tb_render() {
	sort -s -t "$(printf '\t')" -k1,1g "$TB_EVENTS" | awk -F '\t' '
	function out(s) { print s }
	{
		who = $2; line = $0; sub(/^[^\t]*\t[^\t]*\t/, "", line)
		if (who == "=") { if (line ~ /^== /) out(""); out(line); next }
		if (who == "phone") {
			# a used one-time link is no secret, but a transcript has no need of it
			if (line ~ /^phone: portal link /) sub(/t=[0-9A-Fa-f]+/, "t=(one-time token)", line)
			if (line ~ /^phone: /) out(line); else if (line !~ /^$/) out("phone (log): " line)
			next
		}
		if (who ~ /^reader /) {
			if (line ~ /^reader: /) { sub(/^reader: /, "", line); out(who ": " line) }
			else if (line !~ /^$/) out(who " (log): " line)
			next
		}
		if (who == "se") {
			if (match(line, /^se [a-z]+> /)) {
				split(line, f, " "); port = substr(f[2], 1, length(f[2]) - 1)
				pend[port] = (f[4] == "82") ? f[5] : ""
				next
			}
			if (match(line, /^se [a-z]+< /)) {
				split(line, f, " "); port = substr(f[2], 1, length(f[2]) - 1)
				if (pend[port] != "") {
					peer = (port == "host") ? "the server (through the phone link)" : \
					       (port == "vpcd") ? "a reader (contactless, PC/SC vpcd)" : \
					       "a reader (contactless, direct link)"
					res = (f[3] == "9000") ? "ok" : "FAILED " f[3]
					out("se: SCP03 authentication of " peer ", security level " pend[port] ": " res)
				}
				pend[port] = ""
				next
			}
			sub(/^tapbridge se: /, "", line); out("se: " line); next
		}
		if (who == "server") {
			if (line ~ /event=(tls|open|close|bye|stats|[a-z_]*_start)( |$)/ || line ~ /^srv http /) next
			if (line ~ /^created certificate/) next
			if (line ~ /event=relay_done/) {
				r = line; sub(/.*event=relay_done /, "", r)
				out("server: reader channel (SCP03, through se and phone) authenticated; booked " r)
				next
			}
			sub(/^srv session=/, "session ", line); sub(/^srv /, "", line)
			sub(/^tapbridge server: /, "", line)
			out("server: " line); next
		}
		if (who == "gateway") { if (line ~ /^gw line=/) out("gateway: " line); next }
		if (who == "sam") { if (line ~ /(error|fail|refus)/) out("sam: " line); next }
		out(who ": " line)
	}'
}

# The summary in the exact form of the issue: one line per flow and service that ran. A
# refund is an e-money operation; a flow and service that ran more than once (flow 1's
# payment and its refund) make one line: ok only if every run was (else the first
# failure), with the largest round-trip count and tap time of its runs.
tb_summary() {
	local i j svc key res rtts ms seen=" "
	for i in "${!TB_R_FLOW[@]}"; do
		svc=${TB_R_SVC[i]}
		[ "$svc" = refund ] && svc=e-money
		key="${TB_R_FLOW[i]}/$svc"
		case "$seen" in *" $key "*) continue ;; esac
		seen="$seen$key "
		res=ok rtts=0 ms=0
		for j in "${!TB_R_FLOW[@]}"; do
			local s2=${TB_R_SVC[j]}
			[ "$s2" = refund ] && s2=e-money
			[ "${TB_R_FLOW[j]}/$s2" = "$key" ] || continue
			[ "$res" = ok ] && [ "${TB_R_RES[j]}" != ok ] && res=${TB_R_RES[j]}
			[[ "${TB_R_RTTS[j]}" =~ ^[0-9]+$ ]] && [ "${TB_R_RTTS[j]}" -gt "$rtts" ] && rtts=${TB_R_RTTS[j]}
			[[ "${TB_R_MS[j]}" =~ ^[0-9]+$ ]] && [ "${TB_R_MS[j]}" -gt "$ms" ] && ms=${TB_R_MS[j]}
		done
		printf 'flow %s %s %s tap-rtts=%s tap-ms=%s\n' "${TB_R_FLOW[i]}" "$svc" "$res" "$rtts" "$ms"
	done
}

tb_all_ok() {
	local r
	for r in "${TB_R_RES[@]}"; do [ "$r" = ok ] || return 1; done
	return 0
}
