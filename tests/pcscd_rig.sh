#!/usr/bin/env bash
# pcscd_rig.sh start|stop|restart|status - a pcscd of our own with the vpcd reader, inside the
# network namespace tb_pcsc (vpcd listens on 0.0.0.0:35963/35964: only there). PC/SC
# clients reach it from anywhere through /run/pcscd/pcscd.comm; the card connects from
# inside the namespace. State (pid, log) in $TB_PCSC_STATE (default /tmp/tb_pcsc_state).
# Exit codes of start: 0 up; 77 cannot run here (not root, tools missing: the caller
# skips); 3 another pcscd is running (not ours: we refuse to touch it); 1 other failure.
# start first stops a rig of ours left by a killed run (our pid file, or namespace tb_pcsc);
# restart replaces pcscd only, keeping the namespace (a card inside it stays there).
set -uo pipefail

NS=tb_pcsc
PORT=35963
STATE=${TB_PCSC_STATE:-/tmp/tb_pcsc_state}
PIDFILE=$STATE/pcscd.pid
LOG=$STATE/pcscd.log
SOCK=/run/pcscd/pcscd.comm

say() { echo "pcscd_rig: $*" >&2; }

# Our pcscd, by the pid we recorded, only while that pid is still a pcscd.
our_pid() {
	local pid
	[ -f "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "pcscd" ] || return 1
	echo "$pid"
}

kill_pcscd() {
	local pid i
	if pid=$(our_pid); then
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 1 50); do # up to 5 s, then no more asking
			[ -d "/proc/$pid" ] || break
			sleep 0.1
		done
		if [ -d "/proc/$pid" ]; then
			say "pcscd $pid ignored SIGTERM: killing it"
			kill -KILL "$pid" 2>/dev/null
			for i in $(seq 1 50); do
				[ -d "/proc/$pid" ] || break
				sleep 0.1
			done
		fi
	fi
	rm -f "$PIDFILE"
}

stop() {
	kill_pcscd
	if ip netns list 2>/dev/null | grep -qw "^$NS"; then
		ip netns del "$NS" 2>/dev/null || say "could not delete namespace $NS"
	fi
	return 0
}

start() {
	local pid i other owner
	[ "$(id -u)" -eq 0 ] || { say "SKIP: needs root (network namespace)"; return 77; }
	for t in ip ss pcscd; do
		command -v "$t" >/dev/null || { say "SKIP: $t not installed (tools/deps.sh)"; return 77; }
	done
	[ -f /etc/reader.conf.d/vpcd ] || { say "SKIP: vsmartcard-vpcd not installed (tools/deps.sh)"; return 77; }
	mkdir -p "$STATE" || return 1
	# A rig whose owner (the test that started it) still runs is in use: refuse.
	# One whose owner is gone was left by a killed run: ours to clean.
	if our_pid >/dev/null || ip netns list 2>/dev/null | grep -qw "^$NS"; then
		owner=$(cat "$STATE/owner" 2>/dev/null || true)
		if [ -n "$owner" ] && [ -d "/proc/$owner" ]; then
			say "REFUSED: the pcscd rig is in use by process $owner; only one pcscd fits on a machine."
			return 3
		fi
		say "stopping a rig left over from an earlier run"
		stop
	fi
	other=$(pidof pcscd || true)
	if [ -n "$other" ]; then
		say "REFUSED: another pcscd is running (pid $other) and owns $SOCK; only one pcscd fits on a machine. Stop it first."
		return 3
	fi
	if ! ip netns add "$NS" 2>/dev/null; then
		say "SKIP: cannot create network namespace $NS (ip netns add failed)"
		return 77
	fi
	ip -n "$NS" link set lo up || { stop; return 1; }
	echo "$PPID" >"$STATE/owner"
	start_pcscd
}

# In the existing namespace (a card thread inside it keeps it across restarts).
start_pcscd() {
	local pid i
	mkdir -p "$STATE" || return 1
	# ip netns exec execs pcscd: $! is pcscd's own pid. pcscd removes a stale
	# socket by itself when the pid in /run/pcscd/pcscd.pid is dead.
	ip netns exec "$NS" pcscd -f >"$LOG" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$PIDFILE"
	for i in $(seq 1 200); do # poll up to 10 s; about 0.5 s usually
		if ! [ -d "/proc/$pid" ]; then
			say "pcscd exited at start; its log:"; tail -n 20 "$LOG" >&2
			stop; return 1
		fi
		if ip netns exec "$NS" ss -ltn 2>/dev/null | grep -q ":$PORT "; then
			[ -S "$SOCK" ] && { say "up: pcscd $pid in namespace $NS, vpcd on :$PORT"; return 0; }
		fi
		sleep 0.05
	done
	say "pcscd did not listen on :$PORT within 10 s; its log:"; tail -n 20 "$LOG" >&2
	stop
	return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
restart) # pcscd only, in the same namespace: a "pcscd restarted" for the card
	ip netns list 2>/dev/null | grep -qw "^$NS" || { say "no namespace $NS: start first"; exit 1; }
	kill_pcscd; start_pcscd ;;
status) if pid=$(our_pid); then echo "running: pcscd $pid"; else echo "not running"; exit 1; fi ;;
*) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
