#!/usr/bin/env bash
# check_flows_bad.sh SRC BIN - the negative tests of issue 6 with the real processes, on
# the rig of `make demo` (tools/demo-lib.sh) over the direct contactless link (TB_LINK=
# direct: no pcscd, no lock): a throwaway deployment with sam, server, gateway and se, a
# second se of the same deployment, a clone se and a fake server from a second
# deployment, then a phone and a reader per tap. Each case asserts what the parties
# print, the server's ledger and history (`tapbridge admin ledger / history`), the se's
# balance (phone `balance`) and the reader's outbox (its state file). Test seams used:
# `tapbridge reader --now` and `tapbridge phone --fault` (docs/phone.md).
# Prints `ok - ...` / `not ok - ...`; exit 1 on any failure. docs/flows.md, "Negative
# tests", lists the cases.
set -uo pipefail
src=${1:?usage: check_flows_bad.sh SRC BIN}
bin=${2:?usage: check_flows_bad.sh SRC BIN}
TB_WHO=check_flows_bad
TB_SRC=$(cd "$src" && pwd)
TB_LINK=direct
. "$TB_SRC/tools/demo-lib.sh"

pass=0
failed=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
notok() { echo "not ok - $*"; failed=$((failed + 1)); }
# check WHAT CMD...: ok when CMD succeeds.
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else notok "$what${WHY:+ ($WHY)}"; fi
	WHY=""
}
finish() {
	tb_stop_all
	[ -z "$TB_LEFT" ] && ok "everything stopped, nothing left running" ||
		notok "still running after the stop:$TB_LEFT"
	[ $((SECONDS - t0)) -lt 90 ] && ok "under 90 s" || notok "took $((SECONDS - t0)) s"
	echo "# $pass passed, $failed failed ($((SECONDS - t0)) s)"
	[ "$failed" -eq 0 ]
	exit $?
}
WHY=""
t0=$SECONDS

S1=$TB_SE_SERIAL        # the se of the deployment, its phone and its link
S2=5345000000000002     # a second se of the same deployment (flag clone target)

# ------------------------------------------------------------------ helpers ---

# se_guard WHERE: se 1 (the stack's se) must still run between the cases; when it does
# not, say so with the end of its log (a crash must be seen, not hidden by later cases).
se_guard() {
	tb_alive "$TB_SE_PID" && return 0
	notok "se 1 is gone $1: $(tail -n 5 "$TB_SE_LOG" 2>/dev/null | tr '\n' '|')"
	return 1
}

# A port below the ephemeral range (32768..) that no socket uses in any state: the
# many client connections of a run (and of other runs) cannot hold it.
free_port() { tb_free_port; }

# start_se NAME IMAGE LINK: an se process; XSE_PID, XSE_PORT. A failed listen is retried
# on another port (the se reports a taken port as an I/O error, not "in use").
start_se() {
	local name=$1 img=$2 link=$3 try log
	for try in 1 2 3 4; do
		XSE_PORT=$(free_port) || return 1
		log=$TB_LOG/$name-$try.log
		tb_spawn "$name-$try" "$name" "$TB_BIN" se --image "$img" --listen \
			"tcp:127.0.0.1:$XSE_PORT" --link "$link"
		XSE_PID=$TB_LAST_PID
		tb_wait_line "$log" '^tapbridge se: serial ' 20 0 "$XSE_PID" >/dev/null && return 0
		tb_stop "$XSE_PID"
		grep -q -e '--listen' "$log" || break
	done
	tb_err "se $name did not start: $(tail -n3 "$log")"
	return 1
}

# ph_start ADDR PIN LINK [PHONE_ARGS...]: a phone reading commands from a fifo (as
# tb_phone_start, any server, any se); tb_phone_do drives it.
ph_start() {
	local addr=$1 pin=$2 link=$3 fifo
	shift 3
	TB_PHONE_N=$((TB_PHONE_N + 1))
	fifo=$TB_TMP/phone-$TB_PHONE_N.fifo
	mkfifo "$fifo" || return 1
	exec {TB_PHONE_FD}<>"$fifo"
	TB_PHONE_LOG=$TB_LOG/phone-$TB_PHONE_N.log
	tb_spawn "phone-$TB_PHONE_N" phone "$TB_BIN" phone --server "$addr" --pin "$pin" \
		--link "$link" --script "$fifo" --trace "$@"
	TB_PHONE_PID=$TB_LAST_PID
}

# ph_stop: the phone stopped (it may be in a long `serve`), the fifo closed.
ph_stop() {
	[ -n "$TB_PHONE_PID" ] && tb_stop "$TB_PHONE_PID"
	[ -n "$TB_PHONE_FD" ] && exec {TB_PHONE_FD}>&-
	TB_PHONE_PID="" TB_PHONE_FD=""
}

# ph_run ADDR PIN LINK "CMD|REGEX"...: one phone session; 1 and WHY at the first
# command whose REGEX does not show. The phone's log stays in TB_PHONE_LOG.
ph_run() {
	local addr=$1 pin=$2 link=$3 step
	shift 3
	ph_start "$addr" "$pin" "$link" || { WHY="the phone did not start"; return 1; }
	for step in "$@"; do
		if ! tb_phone_do "${step%%|*}" "${step#*|}" 15; then
			WHY="phone: no '${step#*|}' after '${step%%|*}' ($(tb_last_words "$TB_PHONE_LOG"))"
			ph_stop
			return 1
		fi
	done
	tb_phone_end 3
	return 0
}

# The se's balance as a phone of the deployment reads it (BAL), or empty.
se_balance() {
	BAL=""
	ph_run "$TB_GW_ADDR" "$TB_PIN" "${1:-$TB_DEP/se.link}" "balance|$TB_RE_BALANCE" || return 1
	BAL=$(grep -Eo '^phone: balance [0-9]+' "$TB_PHONE_LOG" | tail -n1)
	BAL=${BAL##* }
}

# tap NAME KEYS PORT READER_ARGS...: one reader process (state dir r7) against the se
# listening on PORT; RLOG, RRC.
TAPN=0
tap() {
	local name=$1 keys=$2 port=$3
	shift 3
	TAPN=$((TAPN + 1))
	RLOG=$TB_LOG/reader-$TAPN-$name.log
	tb_spawn "reader-$TAPN-$name" "reader $name" "$TB_BIN" reader --keys "$keys" \
		--state "$TB_DEP/r7" --connect "tcp:127.0.0.1:$port" --timeout 5 "$@"
	tb_wait_exit "$TB_LAST_PID" 25
	RRC=$?
}

# relay_tap NAME AMOUNT [PHONE_ARGS...]: flow 2 at reader 7 (keys RKEYS, default its
# own): a phone of the deployment takes a permit for service 1 and arms the se, serves
# the relay; the reader pays AMOUNT offline-first. PLOG = the phone's log from the tap
# on; RRC / RLOG the reader's. 1 when the phone could not arm.
relay_tap() {
	local name=$1 amount=$2 from
	shift 2
	ph_start "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se.link" "$@" || return 1
	if ! tb_phone_do "permit 1" "$TB_RE_PERMIT" 15 || ! tb_phone_do "arm 1" "$TB_RE_ARMED" 10; then
		WHY="phone: $(tb_last_words "$TB_PHONE_LOG")"
		ph_stop
		return 1
	fi
	from=$(tb_lines "$TB_PHONE_LOG")
	tb_phone_do "serve 30"
	tap "$name" "${RKEYS:-$TB_DEP/reader-7.keys}" "$TB_SE_PORT" --app pay --amount "$amount" \
		--flow-order offline-first
	# A RESULT or refusal disarms the se right after its answer: let that land.
	tb_wait_line "$TB_PHONE_LOG" 'relay done: disarmed|error:' 1 "$from" >/dev/null
	sleep 0.1
	ph_stop
	PLOG=$TB_TMP/plog-$TAPN
	tail -n "+$((from + 1))" "$TB_PHONE_LOG" >"$PLOG"
	return 0
}

# A clean relayed tap of AMOUNT: the reader ends in "done".
clean_tap() {
	relay_tap "$1" "$2" && [ "$RRC" = 0 ] && grep -q '^reader: done$' "$RLOG"
}

# The reader's state file: magic(4) version(1) next_seq(4) counter(4) deny_n(1)
# deny(8 each) count(2) records.
outbox() {
	local b
	[ -f "$TB_DEP/r7/reader.state" ] || { echo 0; return; }
	read -r -a b <<<"$(od -An -tu1 -v "$TB_DEP/r7/reader.state" | tr -s ' \n' ' ')"
	local at=$((14 + 8 * b[13]))
	echo $((b[at] * 256 + b[at + 1]))
}

# How often reader 7's history holds a payment of AMOUNT (kind 3 pay).
booked() {
	"$TB_BIN" admin history --dir "${2:-$TB_DEP}" --reader 7 2>/dev/null |
		grep -Ec " kind 3 service [0-9]+ reader 7 amount -?$1 "
}
# The purse of S1 in the deployment's ledger.
purse() {
	"$TB_BIN" admin ledger --dir "${1:-$TB_DEP}" --se "$S1" 2>/dev/null | awk '$1 == "purse" { print $3 }'
}
nbooked() { # AMOUNT WANT [DEP]
	local n
	n=$(booked "$1" "${3:-}")
	[ "$n" = "$2" ] || { WHY="the history holds $n payments of $1, want $2"; return 1; }
}
reader_says() { grep -Eq -- "$1" "$RLOG" || { WHY="reader: $(tb_last_words "$RLOG")"; return 1; }; }
reader_failed() {
	[ "$RRC" = 1 ] && ! grep -q '^reader: done$' "$RLOG" ||
		{ WHY="reader exit $RRC: $(tb_last_words "$RLOG")"; return 1; }
}
outbox_is() {
	local n
	n=$(outbox)
	[ "$n" = "$1" ] || { WHY="the outbox holds $n, want $1"; return 1; }
}
purse_is() {
	local p
	p=$(purse "${2:-}")
	[ "${p:-none}" = "$1" ] || { WHY="purse ${p:-none}, want $1"; return 1; }
}
balance_is() {
	se_balance "${2:-}"
	[ "$BAL" = "$1" ] || { WHY="the se says balance ${BAL:-?}, want $1"; return 1; }
}
server_says() { # REGEX [LOG]: a line of the server's log since mark_server
	tail -n "+$((SMARK + 1))" "${2:-$TB_LOG/server.log}" | grep -Eq -- "$1" ||
		{ WHY="no '$1' in the server's log"; return 1; }
}
mark_server() { SMARK=$(tb_lines "$TB_LOG/server.log"); }
phone_says() { grep -Eq -- "$1" "$PLOG" || { WHY="phone: $(grep -v '^se ' "$PLOG" | tail -n1)"; return 1; }; }

# --------------------------------------------------------------- the stack ---

tb_init "$bin" || { notok "the rig starts"; exit 1; }
if tb_deploy && tb_admin se-register --dir "$TB_DEP" --image "$TB_DEP/se2.img" --serial "$S2"; then
	ok "deployment: sam keys, se $S1 and se $S2, readers 7 and 8, four services"
else
	notok "deployment"
	finish
fi
# The second deployment: its own sam masters; the same se serial and reader id
# registered there (a clone se image, a reader key file of the wrong deployment).
D2=$TB_TMP/dep2
if tb_admin init --dir "$D2" && tb_admin se-register --dir "$D2" --image "$D2/se.img" --serial "$S1" &&
	tb_admin reader-register --dir "$D2" --id 7 --class 1 &&
	tb_admin service-add --dir "$D2" --id 1 --kind e-money --name purse --price 1=1000; then
	D2_PIN=$(grep -Eo 'SHA256:[0-9A-F]{64}' "$TB_LOG/admin.log" | tail -n1)
	ok "second deployment: the same se serial and reader id under other sam masters"
else
	notok "second deployment"
	finish
fi
if tb_start_stack; then ok "sam, server, gateway, se started (contactless: $TB_MODE)"; else
	notok "the stack starts"
	finish
fi
for p in phone reader; do tb_have $p || { notok "tapbridge $p is not built"; finish; }; done

if ph_run "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se.link" "menu|$TB_RE_MENU" "topup 1|$TB_RE_TOPUP" \
	"topup 1|$TB_RE_TOPUP" "topup 1|$TB_RE_TOPUP"; then
	ok "setup: three top-ups of 1000"
else
	notok "setup: $WHY"
	finish
fi
BAL0=3000
check "setup: the ledger's purse is 3000" purse_is 3000

# ------------------------------------------------- 5: expired and used flags ---
# (first: the flag taps need an se that no relay armed)

k7=$TB_DEP/reader-7.keys
if ph_run "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se.link" "select 3|$TB_RE_FLAG"; then
	until=$(grep -Eo 'flag set until [0-9]+' "$TB_PHONE_LOG" | tail -n1)
	until=${until##* }
	tap flag-expired "$k7" "$TB_SE_PORT" --app pay --amount 150 --service 1 --now $((until + 1))
	check "5 expired flag: the reader (clock at its expiry + 1 s) refuses it" \
		reader_says '^reader: refused: flag expired$'
	check "5 expired flag: the tap fails, no record in the outbox" eval 'reader_failed && outbox_is 0'
	tap flag-pay "$k7" "$TB_SE_PORT" --app pay --amount 150 --service 1
	check "5 the same flag before its expiry pays 150 offline (control)" \
		reader_says '^reader: paid 150 \(offline flag\)$'
	check "5 ... and keeps FLAG + PAY in the outbox" outbox_is 2
	tap flag-used "$k7" "$TB_SE_PORT" --app pay --amount 150 --service 1
	check "5 consumed flag: a second tap is refused" reader_says '^reader: refused: offline and no flag'
	check "5 consumed flag: the tap fails, nothing added to the outbox" \
		eval 'reader_failed && outbox_is 2'
	check "5 the se paid 150 once (balance 2850), the ledger not yet (3000)" \
		eval 'balance_is 2850 && purse_is 3000'
else
	notok "5: the flag was not set: $WHY"
fi

# ------------------------------------------------------ 4: a cloned flag ---
se_guard "before case 4"

# The flag page (data page 7 of the se image, docs/se.md) of se 1 copied into se 2's image,
# verbatim, then with the token's serial rewritten to se 2's.
copy_flag() {
	dd if="$TB_DEP/se.img" of="$TB_DEP/se2.img" bs=128 skip=7 seek=7 count=1 conv=notrunc \
		status=none || return 1
	[ -z "${1:-}" ] && return 0
	printf '%s' "$1" | xxd -r -p | dd of="$TB_DEP/se2.img" bs=1 seek=$((7 * 128 + 3)) \
		conv=notrunc status=none
}
if ph_run "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se.link" "select 3|$TB_RE_FLAG"; then
	copy_flag
	if start_se se2 "$TB_DEP/se2.img" "$TB_DEP/se2.link"; then
		tap flag-clone "$k7" "$XSE_PORT" --app id
		check "4 cloned flag (se 1's token in se 2): the reader's serial check refuses it" \
			eval 'reader_says "^reader: refused: the flag is not this se.s$" && reader_failed'
		tb_stop "$XSE_PID"
	else
		notok "4: se 2 with the copied flag did not start"
	fi
	copy_flag "$S2"
	if start_se se2b "$TB_DEP/se2.img" "$TB_DEP/se2.link"; then
		tap flag-forged "$k7" "$XSE_PORT" --app id
		check "4 cloned flag with se 2's serial written in: the signature check refuses it" \
			eval 'reader_says "^reader: refused: flag signature does not verify$" && reader_failed'
		tb_stop "$XSE_PID"
	else
		notok "4: se 2 with the rewritten flag did not start"
	fi
	check "4 nothing added to the outbox by the clones" outbox_is 2
	tap flag-orig "$k7" "$TB_SE_PORT" --app id
	check "4 the original flag still works on se 1 (control)" \
		reader_says '^reader: identity confirmed \(offline flag\)$'
	check "4 ... its FLAG record kept for the next relayed tap" outbox_is 3
else
	notok "4: the flag was not set: $WHY"
fi

# ------------------------------------------------- 3: an se with wrong keys ---
se_guard "before case 3"

if start_se se-clone "$D2/se.img" "$TB_DEP/se-clone.link"; then
	clone_port=$XSE_PORT clone_pid=$XSE_PID
	tap se-clone "$k7" "$clone_port" --app pay --amount 130
	check "3 clone se (serial $S1, keys of another deployment): the reader refuses it" \
		eval 'reader_says "^reader: se not authenticated" && reader_failed'
	check "3 ... and books nothing offline (outbox unchanged)" outbox_is 3
	mark_server
	if ph_run "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se-clone.link" "topup 1|$TB_RE_TOPUP"; then
		notok "3 the server refuses the clone se: it topped it up"
	else
		check "3 the server refuses the clone se: no top-up, its sam fails the card cryptogram" \
			server_says 'topup_failed why=initialize update'
	fi
	check "3 ... the ledger's purse unchanged (3000)" purse_is 3000
	tb_stop "$clone_pid"
else
	notok "3: the clone se did not start"
fi

# ---------------------------------------------------- 2: a fake server ---
se_guard "before case 2"

tb_spawn sam2 sam2 "$TB_BIN" sam --socket "$D2/sam.sock" --keys "$D2/sam.keys" --kek-file "$D2/sam.kek"
for i in $(seq 1 500); do [ -S "$D2/sam.sock" ] && break; sleep 0.02; done
tb_spawn server2 server2 "$TB_BIN" server --state "$D2/state" --listen 127.0.0.1:0 --http off \
	--db "sqlite:$D2/srv.db" --sam "$D2/sam.sock"
S2_PID=$TB_LAST_PID
if line=$(tb_wait_line "$TB_LOG/server2.log" '^listening phones ' 20 0 "$S2_PID"); then
	FAKE=${line#listening phones }
	SMARK=0
	if ph_run "$FAKE" "$D2_PIN" "$TB_DEP/se.link" "topup 1|$TB_RE_TOPUP"; then
		notok "2 fake server: the se took its top-up"
	else
		check "2 fake server (other sam masters, se $S1 registered there): no channel with the se, no top-up" \
			server_says 'topup_failed why=initialize update' "$TB_LOG/server2.log"
	fi
	# A permit from the real server, then a phone that relays to the fake one.
	if ph_run "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se.link" "permit 1|$TB_RE_PERMIT"; then
		ph_start "$FAKE" "$D2_PIN" "$TB_DEP/se.link"
		from=$(tb_lines "$TB_PHONE_LOG")
		if tb_phone_do "arm 1" "$TB_RE_ARMED" 10; then
			tb_phone_do "serve 30"
			tap fake-server "$k7" "$TB_SE_PORT" --app pay --amount 120 --flow-order offline-first
			sleep 0.2
			ph_stop
			# The fake server's sam fails the reader's card cryptogram before it could send an
			# EXTERNAL AUTHENTICATE: a forged one is case 7, flip-relay-down=1.
			check "2 fake server: the reader never authenticates it, no 'done'" \
				eval 'reader_says "^reader: server refused: reader not authenticated$" && reader_failed'
			check "2 ... the fake server could not authenticate reader 7" \
				server_says 'relay_refused why="reader not authenticated"' "$TB_LOG/server2.log"
			check "2 ... the reader keeps its record (outbox 4)" outbox_is 4
		else
			notok "2 fake server: the phone could not arm: $(tb_last_words "$TB_PHONE_LOG")"
			ph_stop
		fi
	else
		notok "2 fake server: no permit from the real server: $WHY"
	fi
	check "2 ... the fake server booked nothing" eval 'nbooked 120 0 "$D2" && purse_is 0 "$D2"'
	check "2 ... the real server booked nothing (purse 3000, no 120)" eval 'purse_is 3000 && nbooked 120 0'
	check "2 ... the se paid 120 offline (balance 2730)" balance_is 2730
else
	notok "2: the fake server did not start: $(tail -n2 "$TB_LOG/server2.log")"
fi

# --------------------------------------------------- 1: wrong reader keys ---
se_guard "before case 1"

# reader 7's key file with the reader <-> server keys of the other deployment.
bad_keys=$TB_TMP/reader-7-wrong.keys
{
	grep -Ev '^(enc|mac|dek) ' "$k7"
	grep -E '^(enc|mac|dek) ' "$D2/reader-7.keys"
} >"$bad_keys"
chmod 600 "$bad_keys"
mark_server
if RKEYS=$bad_keys relay_tap wrong-keys 101; then
	check "1 wrong reader keys: the server refuses the reader" \
		eval 'reader_says "^reader: server refused: reader not authenticated" && reader_failed'
	check "1 ... the server says so" server_says 'reader not authenticated'
	check "1 ... nothing booked, the reader keeps its record (outbox 5)" \
		eval 'nbooked 101 0 && purse_is 3000 && outbox_is 5'
else
	notok "1 wrong reader keys: no relay: $WHY"
fi
if clean_tap clean-1 102; then ok "1 the next clean tap is done"; else
	notok "1 the next clean tap: $(tb_last_words "$RLOG")"
fi
check "1 ... and books every kept record once (150, 120, 101, 102), the outbox empty" \
	eval 'nbooked 150 1 && nbooked 120 1 && nbooked 101 1 && nbooked 102 1 && outbox_is 0'
check "1 ... the ledger's purse is the se's balance (2527)" \
	eval 'purse_is 2527 && balance_is 2527'

# --------------------------------------------- 7: a phone changes a byte ---
se_guard "before case 7"

# fault AMOUNT READER_REGEX SERVER_REGEX BOOKED: after the faulted tap.
fault_case() {
	local f=$1 amount=$2 rre=$3 sre=$4 want=$5 nb=$(($(outbox) + 1)) tag="7 $1"
	mark_server
	if ! relay_tap "$f" "$amount" --fault "$f"; then
		notok "$tag: no relay: $WHY"
		return
	fi
	check "$tag: the phone flipped the byte" phone_says '^phone: fault: flipped byte'
	check "$tag: the reader fails with '$rre'" eval 'reader_says "$rre" && reader_failed'
	[ -n "$sre" ] && check "$tag: the server says '$sre'" server_says "$sre"
	check "$tag: booked $want time(s), the reader keeps its record" \
		eval 'nbooked $amount $want && outbox_is $nb'
	if clean_tap "clean-$f" $((amount + 1)); then ok "$tag: the next clean tap is done"; else
		notok "$tag: the next clean tap: $(tb_last_words "$RLOG")"
	fi
	[ "$want" = 1 ] && check "$tag: ... which is told the record was booked before" \
		reader_says "^reader: paid $amount \\(booked before\\)"
	check "$tag: ... $amount and $((amount + 1)) booked exactly once, the outbox empty" \
		eval 'nbooked $amount 1 && nbooked $((amount + 1)) 1 && outbox_is 0'
}
fault_case flip-relay-up=1 171 '^reader: server refused: reader not authenticated' \
	'reader not authenticated' 0
fault_case flip-relay-up=2 173 '^reader: server refused: request not authenticated' \
	'request not authenticated' 0
fault_case flip-relay-down=1 175 '^reader: server not authenticated' '' 0
fault_case flip-relay-down=2 177 '^reader: server not authenticated' '' 1

# ------------------------------------------- 8: a phone drops the relay ---
se_guard "before case 8"

drop_case() {
	local f=$1 amount=$2 want=$3 nb=$(($(outbox) + 1)) tag="8 $1"
	if ! relay_tap "$f" "$amount" --fault "$f"; then
		notok "$tag: no relay: $WHY"
		return
	fi
	check "$tag: the phone dropped the answer and closed its session" \
		phone_says '^phone: fault: relay answer dropped'
	check "$tag: the reader's relay fails (the se timed it out)" \
		eval 'reader_says "^reader: relay failed" && reader_failed'
	check "$tag: booked $want time(s), the reader keeps its record" \
		eval 'nbooked $amount $want && outbox_is $nb'
	if clean_tap "clean-$f" $((amount + 1)); then ok "$tag: the next clean tap is done"; else
		notok "$tag: the next clean tap: $(tb_last_words "$RLOG")"
	fi
	[ "$want" = 1 ] && check "$tag: ... which is told the record was booked before" \
		reader_says "^reader: paid $amount \\(booked before\\)"
	check "$tag: ... $amount and $((amount + 1)) booked exactly once, the outbox empty" \
		eval 'nbooked $amount 1 && nbooked $((amount + 1)) 1 && outbox_is 0'
}
drop_case drop-relay-after=1 181 0
drop_case drop-relay-after=2 183 1

# 2527 - (171..178) - (181..184) = 2527 - 1396 - 730
BAL_END=$((2527 - 171 - 172 - 173 - 174 - 175 - 176 - 177 - 178 - 181 - 182 - 183 - 184))
check "7/8 the ledger's purse is the se's balance ($BAL_END), the audit sums to zero" \
	eval 'purse_is $BAL_END && balance_is $BAL_END &&
		"$TB_BIN" admin ledger --dir "$TB_DEP" --se "$S1" | grep -q "^sum 0$"'

# ------------------------------------------------------ 6: a locked wallet ---
se_guard "before case 6"
# (last: only the server unlocks)

if ph_run "$TB_GW_ADDR" "$TB_PIN" "$TB_DEP/se.link" "permit 1|$TB_RE_PERMIT" "arm 1|$TB_RE_ARMED" \
	"lock|phone: locked"; then
	ok "6 the phone locks its wallet (relay armed before)"
	tap locked "$k7" "$TB_SE_PORT" --app pay --amount 190
	check "6 locked wallet: the reader refuses the tap" \
		eval 'reader_says "^reader: refused: wallet locked$" && reader_failed'
	check "6 ... nothing booked, nothing in the outbox, the purse unchanged" \
		eval 'nbooked 190 0 && outbox_is 0 && purse_is $BAL_END'
else
	notok "6 lock: $WHY"
fi

finish
