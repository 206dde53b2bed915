#!/usr/bin/env bash
# pg_rig.sh start DIR [BASEPORT] | stop DIR - a throwaway PostgreSQL cluster for tests.
# start: a fresh cluster in DIR/data (initdb as the postgres user when we are root:
# initdb refuses root), listening on 127.0.0.1 only (no unix socket) on the first free
# port from BASEPORT (default 55432) up; prints the URL to use on stdout and writes the
# port to DIR/port. A cluster left in DIR by a killed run is stopped and wiped first.
# Exit codes of start: 0 up; 77 cannot run here (no PostgreSQL binaries, no postgres
# user to run them as: the caller skips); 1 other failure (reason on stderr).
# stop: pg_ctl stop -m fast (if running), then DIR is removed. Always exits 0.
set -uo pipefail

say() { echo "pg_rig: $*" >&2; }

bindir() {
	local d
	if command -v pg_config >/dev/null && d=$(pg_config --bindir 2>/dev/null) && [ -x "$d/initdb" ]; then
		echo "$d"; return 0
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
	done
	return 1
}

# Runs a PostgreSQL tool as the user that owns the cluster.
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
	local dir=$1 bin
	[ -n "$dir" ] || return 0
	if [ -f "$dir/data/postmaster.pid" ] && bin=$(bindir); then
		as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
			say "pg_ctl stop failed in $dir (already gone?)"
	fi
	rm -rf "$dir"
	return 0
}

start() {
	local dir=$1 base=${2:-55432} bin port
	bin=$(bindir) || { say "SKIP: no PostgreSQL server binaries (initdb, pg_ctl): apt-get install postgresql"; return 77; }
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || { say "SKIP: running as root and there is no postgres user to run initdb as"; return 77; }
		command -v runuser >/dev/null || { say "SKIP: runuser missing"; return 77; }
	fi
	[ -d "$dir" ] && stop "$dir"
	mkdir -p "$dir" || return 1
	[ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
	if ! as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1; then
		say "initdb failed:"; cat "$dir/initdb.log" >&2; return 1
	fi
	for port in $(seq "$base" $((base + 200))); do
		port_busy "$port" && continue
		# A rig started at the same moment may take the port first: then the next one.
		if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=''" \
			start >/dev/null 2>&1; then
			echo "$port" >"$dir/port"
			echo "postgresql://postgres@127.0.0.1:$port/postgres"
			return 0
		fi
		grep -q "could not bind\|Address already in use" "$dir/log" 2>/dev/null || {
			say "pg_ctl start failed:"; tail -20 "$dir/log" >&2; return 1; }
	done
	say "no free port in $base..$((base + 200))"
	return 1
}

case "${1:-}" in
start) start "${2:?usage: pg_rig.sh start DIR [BASEPORT]}" "${3:-}" ;;
stop) stop "${2:?usage: pg_rig.sh stop DIR}" ;;
*) echo "usage: pg_rig.sh start DIR [BASEPORT] | stop DIR" >&2; exit 2 ;;
esac
