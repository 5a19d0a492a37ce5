#!/usr/bin/env bash
# test/bench/sync.sh - pg_dualwrite sync-mode benchmark (issue 7): what a
# synchronous, atomic dual write costs the writing application, next to the
# usual hand-made synchronous dual write and to pg_dualwrite's async mode.
#
#   sudo bash test/bench/sync.sh             (or as root; ~7 minutes with defaults)
#   BENCH_QUICK=1 bash test/bench/sync.sh    (~2 minute smoke run, 5 s runs)
#
# Starts two throwaway clusters on free loopback ports in a postgres-owned
# temp dir (LEGACY with shared_preload_libraries = 'pg_dualwrite', MODERN
# with max_prepared_transactions = 100), then for three pgbench workloads
#   insert  single-row INSERT transactions
#   mix     60/20/20 UPDATE / INSERT ON CONFLICT DO NOTHING / DELETE by random id
#   ten     10-row transactions: 10 single-row INSERTs, or 10 single-row UPDATEs
# measures, each run on a freshly created (and loaded) table:
#   none    no trigger
#   fdw     a PL/pgSQL AFTER ROW trigger writing each change through a
#           postgres_fdw foreign table of the modern table (the usual
#           hand-made synchronous dual write; not atomic)
#   async   pg_dualwrite async (outbox + worker, delivering concurrently)
#   sync    pg_dualwrite sync (2PC, dualwrite.sync_remote_commit = wait)
#   nowait  pg_dualwrite sync with dualwrite.sync_remote_commit = nowait
# and prints TPS and latency per cell, the ratio of each variant to "none"
# and of the sync variants to "fdw".  After every run that writes to MODERN
# the two tables are compared (count, sum(amount), sum of row-text hashes),
# with no prepared transaction left on MODERN: a benchmark that silently
# loses rows measures nothing.  Optionally (BENCH_SHIP=1, needs gcc and
# libpq-dev) a libpq client measures two ways to ship a 10-row sync
# transaction to MODERN: one prepared statement per row in a pipeline (what
# pg_dualwrite does) and one multi-row statement.
# Writes test/bench/results/sync-latest.txt (git-ignored); only the
# clusters this script started are stopped on exit.  The installed
# pg_dualwrite build is used (BENCH_BUILD=1 runs make && make install first).
# See test/bench/README.md ("Sync mode") for the meaning of every number.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
pgdw_fixed_locale   # C.UTF-8 whatever the caller's environment (TOOLCHAIN P22)

# ------------------------------------------------------------------ knobs
if [[ -n ${BENCH_QUICK:-} && ${BENCH_QUICK} != 0 ]]; then
	: "${BENCH_SECONDS:=5}" "${BENCH_ROUNDS:=1}" "${BENCH_SHIP_SECONDS:=3}"
fi
SECS=${BENCH_SECONDS:-20}
ROUNDS=${BENCH_ROUNDS:-1}
CLIENTS=${BENCH_CLIENTS:-4}
THREADS=${BENCH_THREADS:-2}
ROWS=${BENCH_ROWS:-100000}            # table size for mix and ten (and their id range)
SYNC_COMMIT=${BENCH_SYNC_COMMIT:-on}  # synchronous_commit of the pgbench sessions
WORKLOADS=${BENCH_WORKLOADS:-"insert mix ten"}
read -r -a VARIANTS <<<"${BENCH_VARIANTS:-none fdw async sync nowait}"
SHIP=${BENCH_SHIP:-1}
[[ -f $HERE/sync_ship.sh ]] || SHIP=0
SHIP_SECONDS=${BENCH_SHIP_SECONDS:-10}
SHIP_ROWS=${BENCH_SHIP_ROWS:-10}       # rows per shipped transaction
TIMEOUT=${BENCH_DELIVERY_TIMEOUT:-300s}
RESULTS=${BENCH_RESULTS_DIR:-$HERE/results}
declare -A VLABEL=([none]="(a) no trigger" [fdw]="(b) plpgsql + postgres_fdw"
	[async]="(c) pg_dualwrite async" [sync]="(d) pg_dualwrite sync" [nowait]="(e) sync, remote_commit=nowait")
declare -A WLABEL=([insert]="W1 insert" [mix]="W2 mix" [ten]="W3 10-row")

export PGTZ=UTC PGDATESTYLE=ISO,YMD   # same text output on both sides

BENCH_TAG=sync-bench
# shellcheck source=lib.sh
. "$HERE/lib.sh"

for v in SECS ROUNDS CLIENTS THREADS ROWS SHIP_SECONDS SHIP_ROWS; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer"
done
(( ROWS % 10 == 0 && ROWS >= 100 )) || die "BENCH_ROWS must be a multiple of 10, at least 100"
(( SHIP_ROWS <= 1000 && SHIP_ROWS <= ROWS )) || die "BENCH_SHIP_ROWS must be at most 1000 and BENCH_ROWS"
for v in "${VARIANTS[@]}"; do [[ -n ${VLABEL[$v]:-} ]] || die "unknown variant $v (none fdw async sync nowait)"; done
for wl in $WORKLOADS; do [[ -n ${WLABEL[$wl]:-} ]] || die "unknown workload $wl (insert mix ten)"; done

# ------------------------------------------------------------------ set-up
bench_require_build
[[ -f $("$PG_CONFIG" --pkglibdir)/postgres_fdw.so ]] || die "postgres_fdw is not installed (postgresql-15 ships it)"

CHECKS=()
OTHERS=$(pgrep -c -f '/prove |/pg_regress |/pg_isolation_regress |/pgbench ' 2>/dev/null || true)
[[ ${OTHERS:-0} -gt 0 ]] && CHECKS+=("WARNING: $OTHERS test/bench processes (prove, pg_regress, pgbench) were running at the start: absolute numbers are disturbed")
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_setup pg_dualwrite-syncbench sync-
pgdw_cluster_init "$LEGACY" "${BENCH_COMMON_CONF[@]}" "shared_preload_libraries = 'pg_dualwrite'"
pgdw_cluster_init "$MODERN" "${BENCH_COMMON_CONF[@]}" "max_prepared_transactions = 100"
pgdw_cluster_start "$LEGACY"
pgdw_cluster_start "$MODERN"
LPORT=$(pgdw_port "$LEGACY")
MPORT=$(pgdw_port "$MODERN")
say "legacy on 127.0.0.1:$LPORT (pg_dualwrite preloaded), modern on 127.0.0.1:$MPORT"

lsql() { local db=$1; shift; pgdw_psql "$LEGACY" "$db" "$@"; }
msql() { local db=$1; shift; pgdw_psql "$MODERN" "$db" "$@"; }
lval() { local db=$1; shift; pgdw_psql "$LEGACY" "$db" -At "$@"; }
mval() { local db=$1; shift; pgdw_psql "$MODERN" "$db" -At "$@"; }

# The same narrow OLTP row as test/bench/run.sh.
COLS="id, customer, amount, status, note, updated_at"
table_ddl() {   # table_ddl NAME legacy|modern
	local idtype="bigserial"; [[ $2 == modern ]] && idtype="bigint"
	printf 'CREATE TABLE public.%s (id %s PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL,
	status text NOT NULL, note text, updated_at timestamptz NOT NULL DEFAULT now());\n' "$1" "$idtype"
}
# ROWS rows, identical on both sides (fixed updated_at).
load_sql() {   # load_sql NAME
	printf "INSERT INTO public.%s (%s) SELECT g, g %% 1000, g * 0.01, 'new', 'order note ' || g,
	'2026-01-01 00:00:00+00' FROM generate_series(1, %d) g;\n" "$1" "$COLS" "$ROWS"
}

say "creating the databases"
lsql postgres -c "CREATE DATABASE bench"
msql postgres -c "CREATE DATABASE bench_modern"
lsql bench >/dev/null <<SQL
CREATE EXTENSION pg_dualwrite;
CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '$MPORT', dbname 'bench_modern');
CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user 'postgres');
CREATE EXTENSION postgres_fdw;
CREATE SERVER modern_fdw FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', port '$MPORT', dbname 'bench_modern');
CREATE USER MAPPING FOR PUBLIC SERVER modern_fdw OPTIONS (user 'postgres');
CREATE SCHEMA remote;
SQL

ensure_worker() {   # the database's delivery (and resolver) worker must run
	local i pid
	for ((i = 0; i < 150; i++)); do
		pid=$(lval bench -c "SELECT pid FROM dualwrite.workers WHERE datname = current_database() AND pid IS NOT NULL")
		[[ -n $pid ]] && return 0
		(( i >= 10 && i % 10 == 0 )) && lval bench -c "SELECT dualwrite._wake()" >/dev/null
		sleep 0.1
	done
	lsql bench -c "SELECT * FROM dualwrite.workers" >&2 || true
	pgdw_server_log_tail "$LEGACY" >&2
	die "no pg_dualwrite worker for database bench after 15 s"
}
ensure_worker

# The hand-made synchronous dual write: per table, a PL/pgSQL AFTER ROW
# trigger with static statements on a postgres_fdw foreign table of the
# modern copy (postgres_fdw opens one remote transaction per local one and
# commits it at local pre-commit: not atomic, and one round trip per row).
fdw_sql() {   # fdw_sql TABLE
	cat <<SQL
CREATE FOREIGN TABLE remote.$1 (id bigint NOT NULL, customer int NOT NULL, amount numeric(12,2) NOT NULL,
    status text NOT NULL, note text, updated_at timestamptz NOT NULL)
    SERVER modern_fdw OPTIONS (schema_name 'public', table_name '$1');
CREATE FUNCTION public.${1}_dual() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO remote.$1 ($COLS)
        VALUES (NEW.id, NEW.customer, NEW.amount, NEW.status, NEW.note, NEW.updated_at);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE remote.$1 SET id = NEW.id, customer = NEW.customer, amount = NEW.amount,
            status = NEW.status, note = NEW.note, updated_at = NEW.updated_at
        WHERE id = OLD.id;
    ELSE
        DELETE FROM remote.$1 WHERE id = OLD.id;
    END IF;
    RETURN NULL;
END \$\$;
CREATE TRIGGER dual AFTER INSERT OR UPDATE OR DELETE ON public.$1
    FOR EACH ROW EXECUTE FUNCTION public.${1}_dual();
SQL
}

# A fresh table for one run: dropped and created again on both sides,
# loaded with ROWS identical rows for mix and ten (empty for insert), the
# capture set up as the variant wants, vacuumed, checkpoint on both sides.
fresh_table() {   # fresh_table VARIANT WORKLOAD
	local v=$1 wl=$2 t=v_$1 sql
	if [[ $(lval bench -c "SELECT count(*) FROM dualwrite.tables WHERE tbl = to_regclass('public.$t')") == 1 ]]; then
		lsql bench -c "SELECT dualwrite.disable('public.$t')" >/dev/null
	fi
	sql="DROP FOREIGN TABLE IF EXISTS remote.$t; DROP TABLE IF EXISTS public.$t; DROP FUNCTION IF EXISTS public.${t}_dual();
	$(table_ddl "$t" legacy)"
	[[ $wl != insert ]] && sql+="$(load_sql "$t") SELECT setval('public.${t}_id_seq', $ROWS);"
	lsql bench -q -c "SET client_min_messages = warning" -c "$sql" >/dev/null
	if [[ $v != none ]]; then
		sql="DROP TABLE IF EXISTS public.$t; $(table_ddl "$t" modern)"
		[[ $wl != insert ]] && sql+="$(load_sql "$t")"
		msql bench_modern -q -c "SET client_min_messages = warning" -c "$sql"
		msql bench_modern -c "VACUUM ANALYZE public.$t"
	fi
	case $v in
		fdw) lsql bench -c "$(fdw_sql "$t")" >/dev/null ;;
		async) lsql bench -c "SELECT dualwrite.enable('public.$t', mode => 'async', target_server => 'modern')" >/dev/null ;;
		sync | nowait) lsql bench -c "SELECT dualwrite.enable('public.$t', mode => 'sync', target_server => 'modern',
			sync_failure => 'error')" >/dev/null ;;
	esac
	lsql bench -c "VACUUM ANALYZE public.$t"
	lsql postgres -c "CHECKPOINT"
	msql postgres -c "CHECKPOINT"
}

# pgbench scripts, per workload, with TBL for the variant's table.
W=$TMP/workload
pgdw_as_pg mkdir -p "$W" "$TMP/pgl"
put() { pgdw_as_pg sh -c 'cat > "$1"' sh "$W/$1"; }
put insert.sql <<'SQL'
\set c random(1, 100000)
INSERT INTO TBL (customer, amount, status, note) VALUES (:c, :c * 0.01, 'new', 'order note ' || :c);
SQL
put mix_update.sql <<SQL
\set id random(1, $ROWS)
UPDATE TBL SET amount = amount + 1, status = 'updated', updated_at = now() WHERE id = :id;
SQL
put mix_insert.sql <<SQL
\set id random(1, $ROWS)
INSERT INTO TBL (id, customer, amount, status, note) VALUES (:id, :id, :id * 0.01, 'new', 'order note ' || :id)
    ON CONFLICT (id) DO NOTHING;
SQL
put mix_delete.sql <<SQL
\set id random(1, $ROWS)
DELETE FROM TBL WHERE id = :id;
SQL
{
	echo '\set c random(1, 100000)'
	echo 'BEGIN;'
	for k in 0 1 2 3 4 5 6 7 8 9; do
		echo "INSERT INTO TBL (customer, amount, status, note) VALUES (:c + $k, (:c + $k) * 0.01, 'new', 'order note ' || :c);"
	done
	echo 'END;'
} | put ten_insert.sql
{   # ten rows in ascending id order (spread over the table): no deadlock between clients
	echo "\\set id random(1, $((ROWS / 10)))"
	echo 'BEGIN;'
	for k in 0 1 2 3 4 5 6 7 8 9; do
		echo "UPDATE TBL SET amount = amount + 1, status = 'updated', updated_at = now() WHERE id = :id + $((k * ROWS / 10));"
	done
	echo 'END;'
} | put ten_update.sql
declare -A WARGS=([insert]="insert.sql" [mix]="mix_update.sql@60 mix_insert.sql@20 mix_delete.sql@20"
	[ten]="ten_insert.sql@50 ten_update.sql@50")

# pgbench against LEGACY for one cell; sets R_TPS R_LAT R_P95 R_TXNS.
run_pgbench() {   # run_pgbench VARIANT WORKLOAD TAG
	local v=$1 wl=$2 tag=$3 t=v_$1 f args=() opts="-c synchronous_commit=$SYNC_COMMIT" log=$TMP/pgbench-$3.log
	for f in ${WARGS[$wl]}; do
		pgdw_as_pg sh -c 'sed "s/TBL/$2/g" "$1" > "$3"' sh "$W/${f%@*}" "$t" "$W/$t-${f%@*}"
		args+=(-f "$W/$t-$f")
	done
	[[ $v == nowait ]] && opts+=" -c dualwrite.sync_remote_commit=nowait"
	pgdw_as_pg rm -f "$TMP"/pgl/"$tag".*
	if [[ $v == sync || $v == nowait ]]; then   # who is connected to modern mid-run (look, do not assume)
		( sleep "$(calc "$SECS / 2")"
		  mval postgres -c "SELECT string_agg(a || ' x' || n, ', ' ORDER BY a) FROM (SELECT coalesce(nullif(application_name, ''),
			'(none)') AS a, count(*) AS n FROM pg_stat_activity WHERE datname = 'bench_modern' GROUP BY 1) s" \
			>"$TMP/appnames-$tag" 2>&1 || true ) &
	fi
	if ! pgdw_as_pg env PGOPTIONS="$opts" "$PGDW_BINDIR/pgbench" -n -h "$LEGACY" -p "$LPORT" -U postgres \
		-c "$CLIENTS" -j "$THREADS" -T "$SECS" -l --log-prefix="$TMP/pgl/$tag" "${args[@]}" bench >"$log" 2>&1; then
		cat "$log" >&2
		pgdw_server_log_tail "$LEGACY" >&2
		die "pgbench failed ($tag)"
	fi
	if grep -q '^number of failed transactions: [1-9]' "$log"; then
		cat "$log" >&2
		pgdw_server_log_tail "$LEGACY" >&2
		die "pgbench reported failed transactions ($tag)"
	fi
	wait   # the mid-run sampler, if any
	R_TPS=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log")
	R_LAT=$(sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' "$log")
	R_TXNS=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$log")
	[[ -n $R_TPS && -n $R_LAT && -n $R_TXNS ]] || { cat "$log" >&2; die "cannot parse the pgbench output ($tag)"; }
	# 95th percentile from the per-transaction logs (3rd field: latency in us)
	R_P95=$(cat "$TMP"/pgl/"$tag".* | awk '{ print $3 }' | sort -n |
		awk '{ a[NR] = $1 } END { i = int(NR * 0.95); if (i < 1) i = 1; printf "%.3f", a[i] / 1000 }')
}

# After a run: the modern copy must be exactly the legacy table.
sides_sum() {   # sides_sum legacy|modern TABLE
	local q="SELECT count(*), coalesce(sum(amount), 0), coalesce(sum(hashtext(x::text)::numeric), 0) FROM public.$2 x"
	if [[ $1 == legacy ]]; then lval bench -c "$q"; else mval bench_modern -c "$q"; fi
}
verify_run() {   # verify_run VARIANT TAG
	local v=$1 tag=$2 t=v_$1 i n ok lsum msum info
	case $v in
		async)
			ok=$(lval bench -c "SELECT dualwrite.wait_for_delivery('$TIMEOUT')")
			[[ $ok == t ]] || { lsql bench -c "SELECT * FROM dualwrite.status" >&2; die "async delivery did not complete ($tag)"; } ;;
		sync | nowait)
			# nowait: COMMIT PREPARED may still be on its way; every PREPARE happened before its local commit
			for ((i = 0; i < 600; i++)); do
				n=$(mval postgres -c "SELECT count(*) FROM pg_prepared_xacts")
				[[ $n == 0 ]] && break
				sleep 0.1
			done
			[[ $n == 0 ]] || CHECKS+=("FAIL $tag: $n prepared transactions still on modern 60 s after the run")
			# nothing may be queued either (policy error: no fallback to the outbox)
			ok=$(lval bench -c "SELECT dualwrite.wait_for_delivery('$TIMEOUT')")
			[[ $ok == t ]] || CHECKS+=("FAIL $tag: changes of the sync table still queued")
			info=$(lval bench -c "SELECT transactions, fallbacks, backlog FROM dualwrite._sync_info('public.$t')")
			SYNC_INFO[$tag]=$info
			[[ ${info#*|} == "0|f" ]] || CHECKS+=("FAIL $tag: sync fallbacks/backlog $info (transactions|fallbacks|backlog)")
			# insert and ten: every transaction writes, so each is one sync transaction
			if [[ $tag == insert-* || $tag == ten-* ]] && [[ ${info%%|*} != "$R_TXNS" ]]; then
				CHECKS+=("FAIL $tag: ${info%%|*} sync transactions counted, pgbench committed $R_TXNS")
			fi ;;
	esac
	lsum=$(sides_sum legacy "$t")
	msum=$(sides_sum modern "$t")
	if [[ $lsum == "$msum" ]]; then
		VERIFIED[$tag]="ok ${lsum%%|*} rows"
	else
		VERIFIED[$tag]="MISMATCH"
		CHECKS+=("MISMATCH $tag: legacy count|sum|hash $lsum, modern $msum")
	fi
}

RESULTS_TXT=$TMP/sync-latest.txt
DETAILS=$TMP/details.txt
: >"$DETAILS"

# ------------------------------------------------------------------ capture cells
APPNAMES_RUN=()
declare -A TPS=() LAT=() P95=() VERIFIED=() SYNC_INFO=()   # [wl,v] = "x x x" (rounds); VERIFIED/SYNC_INFO by tag
NV=${#VARIANTS[@]}
total=0; for wl in $WORKLOADS; do total=$((total + ROUNDS * NV)); done
n=0
for wl in $WORKLOADS; do
	for ((r = 0; r < ROUNDS; r++)); do
		for ((i = 0; i < NV; i++)); do   # round-robin, starting with a different variant each round
			v=${VARIANTS[$(((r + i) % NV))]}
			n=$((n + 1))
			tag="$wl-$v-$((r + 1))"
			fresh_table "$v" "$wl"
			run_pgbench "$v" "$wl" "$tag"
			k="$wl,$v"
			TPS[$k]="${TPS[$k]:-} $R_TPS"; LAT[$k]="${LAT[$k]:-} $R_LAT"; P95[$k]="${P95[$k]:-} $R_P95"
			[[ $v != none ]] && verify_run "$v" "$tag"
			[[ -f $TMP/appnames-$tag ]] && APPNAMES_RUN+=("$tag: $(cat "$TMP/appnames-$tag")")
			say "[$n/$total] ${WLABEL[$wl]} ${VLABEL[$v]}: $(fmt '%.0f' "$R_TPS") tps, latency avg $R_LAT ms p95 $R_P95 ms ${VERIFIED[$tag]:-}"
			printf 'run %s tps=%s lat_avg_ms=%s lat_p95_ms=%s txns=%s verified=%s sync_info=%s\n' "$tag" "$R_TPS" \
				"$R_LAT" "$R_P95" "$R_TXNS" "${VERIFIED[$tag]:-n/a}" "${SYNC_INFO[$tag]:-n/a}" >>"$DETAILS"
		done
	done
done
# What the connections on MODERN look like (application_name), for the record.
APPNAMES=$(mval postgres -c "SELECT string_agg(DISTINCT coalesce(nullif(application_name, ''), '(none)'), ', ')
	FROM pg_stat_activity WHERE datname = 'bench_modern' AND pid <> pg_backend_pid()")

# ------------------------------------------------------------------ shipping strategies
# shellcheck source=sync_ship.sh disable=SC2034
[[ $SHIP == 1 ]] && . "$HERE/sync_ship.sh"

# ------------------------------------------------------------------ report
report() {
	local wl v k tps lat p95 base fdw first
	echo "pg_dualwrite sync-mode benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, PostgreSQL $("$PGDW_BINDIR/postgres" -V | awk '{print $3}'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
	echo "settings: fsync=on shared_buffers=1GB max_wal_size=4GB checkpoint_timeout=30min; modern max_prepared_transactions=100;"
	echo "          pgbench -c $CLIENTS -j $THREADS -T $SECS, synchronous_commit=$SYNC_COMMIT, median of $ROUNDS round(s), fresh table per run"
	echo "load average (1/5/15 min) at start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the cores)"
	echo
	printf '  %-11s %-32s %8s %9s %9s %8s %8s\n' "workload" "variant" "TPS" "lat avg" "lat p95" "/ (a)" "/ (b)"
	printf '  %-11s %-32s %8s %9s %9s %8s %8s\n' "" "" "" "ms" "ms" "" ""
	for wl in $WORKLOADS; do
		# shellcheck disable=SC2086
		base=$(median ${TPS[$wl,none]:-})
		# shellcheck disable=SC2086
		fdw=$(median ${TPS[$wl,fdw]:-})
		first=${WLABEL[$wl]}
		for v in none fdw async sync nowait; do
			k="$wl,$v"
			[[ -n ${TPS[$k]:-} ]] || continue
			# shellcheck disable=SC2086
			tps=$(median ${TPS[$k]}); lat=$(median ${LAT[$k]}); p95=$(median ${P95[$k]})
			printf '  %-11s %-32s %8.0f %9.2f %9.2f' "$first" "${VLABEL[$v]}" "$tps" "$lat" "$p95"
			first=""
			if [[ $base != nan ]]; then printf ' %8.3f' "$(calc "$tps / $base")"; else printf ' %8s' "-"; fi
			if [[ ($v == sync || $v == nowait) && $fdw != nan ]]; then printf ' %8.3f' "$(calc "$tps / $fdw")"; else printf ' %8s' ""; fi
			echo
		done
	done
	echo "  W1 insert = one single-row INSERT per transaction (bigserial key); W2 mix = 60% UPDATE / 20% INSERT ON"
	echo "  CONFLICT DO NOTHING / 20% DELETE by random id on a ${ROWS}-row table; W3 10-row = BEGIN, 10 single-row"
	echo "  INSERTs (50%) or 10 single-row UPDATEs by id (50%), COMMIT, on a ${ROWS}-row table."
	echo "  / (a) = TPS ratio to no trigger; / (b) = TPS ratio of the pg_dualwrite sync variants to the hand-made"
	echo "  PL/pgSQL + postgres_fdw dual write (> 1: pg_dualwrite sync is faster).  async delivers concurrently."
	[[ -n ${SHIP_REPORT:-} ]] && { echo; printf '%s\n' "$SHIP_REPORT"; }
	echo
	echo "checks"
	local tag nbad=0 c
	for tag in $(printf '%s\n' "${!VERIFIED[@]}" | sort); do
		[[ ${VERIFIED[$tag]} == ok* ]] || nbad=$((nbad + 1))
	done
	echo "  modern = legacy (count, sum(amount), sum of row-text hashes) after ${#VERIFIED[@]} runs that write to modern: $(( ${#VERIFIED[@]} - nbad )) identical, $nbad different"
	echo "  connections on modern at the end (application_name): ${APPNAMES:-none}"
	echo "  connections on modern in the middle of the sync runs (application_name x count):"
	for c in "${APPNAMES_RUN[@]}"; do echo "    $c"; done
	for c in "${CHECKS[@]}"; do echo "  $c"; done
	local nerr
	nerr=$(grep -cE ' (ERROR|FATAL|PANIC|WARNING): ' "$LEGACY/server.log" || true)
	echo "  legacy server log: $nerr ERROR/FATAL/PANIC/WARNING lines"
	grep -E ' (ERROR|FATAL|PANIC|WARNING): ' "$LEGACY/server.log" | sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //' |
		sort | uniq -c | sort -rn | head -8 | sed 's/^/    /' || true
	nerr=$(grep -cE ' (ERROR|FATAL|PANIC|WARNING): ' "$MODERN/server.log" || true)
	echo "  modern server log: $nerr ERROR/FATAL/PANIC/WARNING lines"
	grep -E ' (ERROR|FATAL|PANIC|WARNING): ' "$MODERN/server.log" | sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //' |
		sort | uniq -c | sort -rn | head -8 | sed 's/^/    /' || true
}

report >"$RESULTS_TXT"
{ echo; echo "details (every run)"; sed 's/^/  /' "$DETAILS"; } >>"$RESULTS_TXT"
cp "$RESULTS_TXT" "$RESULTS/sync-latest.txt"
echo
cat "$RESULTS_TXT"
if grep -qE '^  (FAIL|MISMATCH)' "$RESULTS_TXT"; then die "some checks failed (see above)"; fi
