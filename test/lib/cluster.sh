# test/lib/cluster.sh - shared shell helpers for pg_dualwrite's test scripts.
#
# Source it from bash:   . "$(dirname "$0")/lib/cluster.sh"
#
# Running servers as root is impossible, so every server-side command goes
# through pgdw_as_pg, which runs it as the `postgres` OS user when we are root
# and directly otherwise.  A throwaway cluster lives in one directory that the
# server's user owns:
#
#   DIR/data          the data directory
#   DIR/server.log    the server log
#   DIR/port          the TCP port (also the name of the unix socket, in DIR)
#
# Typical use:
#   tmp=$(pgdw_mktemp)                        # postgres-owned temp dir
#   trap 'pgdw_stop_all; rm -rf "$tmp"' EXIT
#   pgdw_cluster_init "$tmp/legacy" "shared_preload_libraries = 'pg_dualwrite'"
#   pgdw_cluster_start "$tmp/legacy"
#   pgdw_psql "$tmp/legacy" postgres -c 'SELECT 1'
#   pgdw_cluster_stop "$tmp/legacy"
#
# Servers listen on 127.0.0.1 only, on a free port above 20000 and below the
# kernel's ephemeral range, with trust authentication for local connections.
# pgdw_stop_all stops every cluster this shell started (and nothing else).

# Guard against double sourcing.
if [[ -n ${PGDW_CLUSTER_SH_LOADED:-} ]]; then return 0; fi
PGDW_CLUSTER_SH_LOADED=1

: "${PG_CONFIG:=/usr/lib/postgresql/15/bin/pg_config}"
: "${PGDW_PG_USER:=postgres}"
if [[ -x $PG_CONFIG ]]; then
	PGDW_BINDIR=$("$PG_CONFIG" --bindir)
else
	PGDW_BINDIR=/usr/lib/postgresql/15/bin
fi
export PG_CONFIG PGDW_BINDIR

# pgdw_fixed_locale: the same locale whatever the caller's environment (a
# minimal root shell or a container has no LANG/LC_*: initdb would make
# SQL_ASCII clusters and psql would talk SQL_ASCII, TOOLCHAIN P22).  Exports
# LC_ALL and LANG = C.UTF-8 where the C library has it, else C.  Clusters
# made here are -E UTF8 --locale=C anyway (pgdw_cluster_init).
pgdw_fixed_locale() {
	if locale -a 2>/dev/null | grep -ixE 'c\.utf-?8' >/dev/null; then
		export LC_ALL=C.UTF-8 LANG=C.UTF-8
	else
		export LC_ALL=C LANG=C
	fi
	unset LANGUAGE
}

PGDW_STARTED_CLUSTERS=()   # DIRs started by this shell, for pgdw_stop_all
PGDW_USED_PORTS=" "        # ports handed out by pgdw_free_port in this shell

# pgdw_is_root: true when running as uid 0.
pgdw_is_root() { [[ $(id -u) -eq 0 ]]; }

# pgdw_as_pg CMD ARGS...: run a command as the server's OS user (root only
# switches user; anyone else runs the command as themselves).  The
# environment is kept; PATH gets the PostgreSQL bindir first.  The current
# directory must be one that user can enter (cd into a pgdw_mktemp dir first).
pgdw_as_pg() {
	if pgdw_is_root; then
		runuser -u "$PGDW_PG_USER" -- env PATH="$PGDW_BINDIR:$PATH" "$@"
	else
		env PATH="$PGDW_BINDIR:$PATH" "$@"
	fi
}

# pgdw_mktemp [PREFIX]: make a temp dir owned by the server's OS user; print it.
pgdw_mktemp() {
	local d
	d=$(mktemp -d "${TMPDIR:-/tmp}/${1:-pgdw}.XXXXXX") || return 1
	chmod 755 "$d"
	if pgdw_is_root; then chown "$PGDW_PG_USER:" "$d" || return 1; fi
	printf '%s\n' "$d"
}

# pgdw_free_port [VAR]: pick a TCP port that is free on 127.0.0.1 right now
# and was not handed out before by this shell; store it in VAR, or print it
# when no VAR is given ($(pgdw_free_port) runs in a subshell and so cannot
# remember the ports it handed out: prefer the VAR form).  Ports come from
# 20000-31999, below Linux's default ephemeral range, so outgoing connections
# do not grab them between now and the server's start.
pgdw_free_port() {
	local _pgdw_p _pgdw_try
	for _pgdw_try in $(seq 1 50); do
		_pgdw_p=$(perl -MIO::Socket::INET -e '
			for (1..200) {
				my $p = 20000 + int(rand(12000));
				my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $p,
					Proto => "tcp", Listen => 1, ReuseAddr => 0) or next;
				close $s; print "$p\n"; exit 0;
			}
			exit 1;') || return 1
		if [[ $PGDW_USED_PORTS != *" $_pgdw_p "* && ! -e "${TMPDIR:-/tmp}/.s.PGSQL.$_pgdw_p" ]]; then
			PGDW_USED_PORTS+="$_pgdw_p "
			if [[ -n ${1:-} ]]; then printf -v "$1" "%s" "$_pgdw_p"; else printf "%s\n" "$_pgdw_p"; fi
			return 0
		fi
	done
	echo "pgdw_free_port: no free port found" >&2
	return 1
}

# pgdw_cluster_init DIR [CONF_LINE...]: initdb a cluster in DIR/data (DIR is
# created, owned by the server's user) with a free port, and append each
# CONF_LINE to postgresql.conf.  Output goes to DIR/initdb.log.
pgdw_cluster_init() {
	local dir=$1; shift
	local port line
	mkdir -p "$dir" || return 1
	if pgdw_is_root; then chown "$PGDW_PG_USER:" "$dir" || return 1; fi
	pgdw_free_port port || return 1
	pgdw_as_pg sh -c 'echo "$1" > "$2/port"' sh "$port" "$dir" || return 1
	if ! pgdw_as_pg "$PGDW_BINDIR/initdb" -D "$dir/data" -U postgres -A trust \
		-E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1; then
		echo "pgdw_cluster_init: initdb failed in $dir/data:" >&2
		tail -n 20 "$dir/initdb.log" >&2
		return 1
	fi
	{
		echo ""
		echo "# added by test/lib/cluster.sh"
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $port"
		echo "unix_socket_directories = '$dir'"
		echo "fsync = off"
		echo "log_line_prefix = '%m [%p] %q%a '"
		for line in "$@"; do echo "$line"; done
	} | pgdw_as_pg sh -c 'cat >> "$1"' sh "$dir/data/postgresql.conf"
}

# pgdw_cluster_conf DIR CONF_LINE...: append settings to DIR's postgresql.conf
# (restart or reload yourself).
pgdw_cluster_conf() {
	local dir=$1; shift
	printf '%s\n' "$@" | pgdw_as_pg sh -c 'cat >> "$1"' sh "$dir/data/postgresql.conf"
}

# pgdw_port DIR: print the cluster's port.
pgdw_port() { cat "$1/port"; }

# pgdw_cluster_start DIR: start the cluster, wait until it accepts connections.
pgdw_cluster_start() {
	local dir=$1
	if ! pgdw_as_pg "$PGDW_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
		-w -t 60 start >/dev/null; then
		echo "pgdw_cluster_start: could not start $dir; server log tail:" >&2
		tail -n 30 "$dir/server.log" >&2
		return 1
	fi
	local d
	for d in "${PGDW_STARTED_CLUSTERS[@]}"; do [[ $d == "$dir" ]] && return 0; done
	PGDW_STARTED_CLUSTERS+=("$dir")
}

# pgdw_cluster_restart DIR
pgdw_cluster_restart() {
	pgdw_as_pg "$PGDW_BINDIR/pg_ctl" -D "$1/data" -l "$1/server.log" -w -t 60 \
		-m fast restart >/dev/null
}

# pgdw_cluster_stop DIR [MODE]: stop the cluster (MODE: fast by default);
# a no-op when it is not running.
pgdw_cluster_stop() {
	local dir=$1 mode=${2:-fast}
	[[ -f $dir/data/postmaster.pid ]] || return 0
	pgdw_as_pg "$PGDW_BINDIR/pg_ctl" -D "$dir/data" -w -t 60 -m "$mode" stop \
		>/dev/null 2>&1 ||
		pgdw_as_pg "$PGDW_BINDIR/pg_ctl" -D "$dir/data" -w -t 30 -m immediate stop \
			>/dev/null 2>&1 || true
}

# pgdw_stop_all: stop every cluster started by this shell (for EXIT traps).
pgdw_stop_all() {
	local d
	for d in "${PGDW_STARTED_CLUSTERS[@]}"; do pgdw_cluster_stop "$d"; done
	PGDW_STARTED_CLUSTERS=()
}

# pgdw_connstr DIR [DB]: a libpq connection string for the cluster over TCP.
pgdw_connstr() {
	printf 'host=127.0.0.1 port=%s dbname=%s user=postgres\n' "$(pgdw_port "$1")" "${2:-postgres}"
}

# pgdw_psql DIR DB PSQL_ARGS...: run psql against the cluster (quiet,
# stop on error, no psqlrc).
pgdw_psql() {
	local dir=$1 db=$2; shift 2
	pgdw_as_pg "$PGDW_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 \
		-h "$dir" -p "$(pgdw_port "$dir")" -U postgres -d "$db" "$@"
}

# pgdw_server_log_tail DIR [N]: print the last N (40) lines of the server log.
pgdw_server_log_tail() {
	echo "---- last ${2:-40} lines of $1/server.log ----"
	tail -n "${2:-40}" "$1/server.log" 2>/dev/null || true
}
