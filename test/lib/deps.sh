#!/usr/bin/env bash
# test/lib/deps.sh - install what pg_dualwrite's build and tests need on
# Debian 12, idempotently.  Run as root; as anyone else it only checks and,
# when something is missing, prints the apt-get command to run and exits 1.
#
# Output: one line per step; apt's own output goes to $PGDW_DEPS_LOG
# (default /tmp/pg_dualwrite-deps.log).
set -euo pipefail

PACKAGES=(
	make g++ cmake pkg-config
	postgresql-15 postgresql-client-15 postgresql-server-dev-15 libpq-dev
	libssl-dev libgtest-dev
	perl libipc-run-perl     # prove + PostgreSQL::Test::* (TAP)
	util-linux diffutils     # runuser; cmp/diff (normally already there)
)
LOG=${PGDW_DEPS_LOG:-/tmp/pg_dualwrite-deps.log}
CREATECLUSTER_CONF=/etc/postgresql-common/createcluster.d/pg_dualwrite.conf

say() { printf 'deps: %s\n' "$*"; }

installed() {
	[[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]
}

if ! command -v dpkg-query >/dev/null 2>&1 || [[ ! -r /etc/debian_version ]]; then
	say "not a Debian system; install by hand: ${PACKAGES[*]} (PostgreSQL 15 with server headers)"
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done

if [[ ${#missing[@]} -eq 0 ]]; then
	say "all ${#PACKAGES[@]} packages present"
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	say "missing packages: ${missing[*]}"
	echo "Run as root:"
	echo "  mkdir -p /etc/postgresql-common/createcluster.d && echo 'create_main_cluster = false' > $CREATECLUSTER_CONF"
	echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	exit 1
fi

# Before postgresql-common is configured: no auto-created (and started)
# "main" cluster on port 5432.
if ! grep -qsx 'create_main_cluster *= *false' /etc/postgresql-common/createcluster.d/*.conf; then
	mkdir -p /etc/postgresql-common/createcluster.d
	echo 'create_main_cluster = false' >"$CREATECLUSTER_CONF"
	say "wrote $CREATECLUSTER_CONF (create_main_cluster = false)"
fi

export DEBIAN_FRONTEND=noninteractive
: >"$LOG"
say "apt-get update (log: $LOG)"
if ! apt-get update >>"$LOG" 2>&1; then
	tail -n 20 "$LOG"; say "apt-get update failed"; exit 1
fi
say "installing ${#missing[@]} packages: ${missing[*]}"
if ! apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; then
	tail -n 30 "$LOG"; say "apt-get install failed (full log: $LOG)"; exit 1
fi
say "done"
