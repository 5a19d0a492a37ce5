# test/bench/lib.sh - what the benchmark scripts (run.sh, sync.sh) share.
# Sourced after test/lib/cluster.sh, with BENCH_TAG (the log prefix), ROOT,
# PG_CONFIG and RESULTS set.  Nothing here runs on its own.

say() { printf '[%s %s] %s\n' "$BENCH_TAG" "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$BENCH_TAG" "$*" >&2; exit 1; }
calc() { awk "BEGIN { printf \"%.6f\", $1 }" /dev/null; }   # calc 'EXPR' -> number
fmt() { awk -v v="$2" "BEGIN { printf \"$1\", v }" /dev/null; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
	if (NR == 0) { print "nan"; exit }
	if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# BENCH_BUILD=1 builds and installs first; either way pg_dualwrite must be installed.
bench_require_build() {
	if [[ ${BENCH_BUILD:-0} == 1 ]]; then
		say "building and installing pg_dualwrite"
		make -C "$ROOT" -s -j"$(nproc)" >/dev/null && make -C "$ROOT" -s install >/dev/null || die "build failed"
	fi
	[[ -f $("$PG_CONFIG" --pkglibdir)/pg_dualwrite.so ]] || die "pg_dualwrite is not installed (make install, or BENCH_BUILD=1)"
}

# The postgresql.conf lines both benchmark clusters share.
BENCH_COMMON_CONF=("fsync = on" "shared_buffers = 1GB" "max_wal_size = 4GB" "checkpoint_timeout = 30min"
	"max_connections = 60" "log_min_messages = warning" "log_checkpoints = off")

# bench_setup NAME LOGPREFIX: a postgres-owned temp dir in TMP (cd'ed into),
# LEGACY and MODERN paths in it, and an exit trap that stops exactly the
# clusters started, copies their logs to RESULTS/LOGPREFIX{legacy,modern}.log
# and removes the dir (BENCH_KEEP_TMP keeps it).  A caller's bench_on_exit
# function, if defined, runs first.
bench_setup() {
	TMP=$(pgdw_mktemp "$1") || die "cannot create a temp dir"
	BENCH_LOG_PREFIX=$2
	mkdir -p "$RESULTS"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
	cd "$TMP" || die "cannot enter $TMP"   # the postgres user must be able to use the current directory
	LEGACY=$TMP/legacy
	MODERN=$TMP/modern
	say "temp dir $TMP; results go to $RESULTS"
}

bench_cleanup() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	declare -F bench_on_exit >/dev/null && bench_on_exit
	if [[ ${#PGDW_STARTED_CLUSTERS[@]} -gt 0 ]]; then
		say "stopping the clusters"
		pgdw_stop_all
	fi
	for c in legacy modern; do
		[[ -f $TMP/$c/server.log ]] && cp "$TMP/$c/server.log" "$RESULTS/$BENCH_LOG_PREFIX$c.log"
	done
	if [[ -n ${BENCH_KEEP_TMP:-} ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
