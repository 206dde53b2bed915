#!/usr/bin/env bash
# deps.sh - installs the Debian packages tapbridge needs that are missing.
# The list is the one in the README; nothing is installed when all are present.
set -euo pipefail

PKGS="cmake make gcc clang libclang-rt-14-dev pkg-config libssl-dev libcmocka-dev libjansson-dev python3 libevent-dev pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools iproute2 libsqlite3-dev postgresql libpq-dev softhsm2 libp11-kit-dev chromium fonts-dejavu-core"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y --no-install-recommends $missing
