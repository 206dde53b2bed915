#!/usr/bin/env bash
# demo.sh BIN - the body of `make demo`: a throwaway deployment in a temporary folder,
# every party a separate process on loopback, the five flows with the four services, and
# a transcript (each party's screen lines in time order, the authentications, the final
# balances and usage history, the tap-phase round trips), saved as
# demo-out/transcript.txt under the current directory. It stops everything it started.
# DELAY_MS=N: the gateway holds every chunk N ms each way. TB_LINK=direct skips PC/SC.
# After the flows the server's portal (--portal) is opened with the phone's one-time link in
# headless Chromium at a phone's size: demo-out/portal-home.png and portal-history.png
# (no Chromium: said in the transcript, not a failure). TB_SERVER_ARGS overrides the flags.
# Exit 0 when every flow ran ok and nothing was left running.
set -uo pipefail
TB_WHO=demo
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/demo-lib.sh"

bin=${1:-build/release/tapbridge}
out_dir=$PWD/demo-out
TB_SERVER_ARGS=${TB_SERVER_ARGS---portal 127.0.0.1:0}
tb_init "$bin" || exit 1
mkdir -p "$out_dir" || exit 1
say() { echo "demo: $*" >&2; }

fail_early() {
	say "$*"
	tb_stop_all
	{
		tb_render
		echo
		echo "demo stopped early: $*"
		echo "the logs: $TB_LOG (removed at exit; TB_KEEP=1 keeps them)"
	} | tee "$out_dir/transcript.txt"
	exit 1
}

tb_note "== tapbridge demo $(date -u '+%Y-%m-%d %H:%M:%S UTC'), gateway delay ${TB_DELAY} ms each way =="
missing=""
tb_have phone || missing="$missing phone"
tb_have reader || missing="$missing reader"
[ -z "$missing" ] || tb_note "not built yet:$missing (the flows that need them are reported failed)"

say "making a throwaway deployment in $TB_TMP"
tb_deploy || fail_early "the deployment could not be made (see above)"
say "starting sam, server, gateway, pcscd+vpcd (or the direct link) and the se"
tb_start_stack || fail_early "the parties did not start (see above)"
[ "$TB_MODE" = pcsc ] || say "PC/SC is not used ($TB_MODE_WHY): the readers use the direct link"
say "running the flows"
tb_run_flows
tb_books
say "the portal on a phone screen (headless Chromium)"
tb_portal_shots "$out_dir"

say "stopping everything"
tb_note "== stopping everything the demo started =="
tb_stop_all
rendered=$(tb_render)
{
	printf '%s\n' "$rendered"
	if [ -z "$TB_LEFT" ]; then
		echo "everything the demo started is stopped: nothing of it is running"
	else
		echo "STILL RUNNING after the stop (pids):$TB_LEFT"
	fi
	echo
	echo "== authentications =="
	printf '%s\n' "$rendered" | grep -E 'SCP03|authenticat' | grep -v '^== ' ||
		echo "(none happened)"
	echo
	echo "== contactless transport =="
	if [ "$TB_MODE" = pcsc ]; then
		echo "PC/SC through pcscd and vpcd for reader 7, the direct link for reader 8"
	else
		echo "the direct link for both readers: PC/SC not used because $TB_MODE_WHY"
	fi
	echo
	echo "== summary =="
	tb_summary
	shots=$(printf '%s\n' "$rendered" | grep -E 'portal screenshot|no portal screenshots' |
		sed 's/^/portal: /')
	printf '%s\n' "${shots:-portal: no portal screenshots}"
} >"$out_dir/transcript.txt"
cat "$out_dir/transcript.txt"
say "transcript saved as $out_dir/transcript.txt"
[ -z "$TB_LEFT" ] && [ "$TB_SETUP_RES" = ok ] && tb_all_ok
