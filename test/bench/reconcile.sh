#!/usr/bin/env bash
# test/bench/reconcile.sh - reconcile speed and traffic next to a naive
# dump-and-diff of both tables, and checksum throughput (issue 8; not a
# timed test: run on demand, it prints figures and ratios).
#
#   flock /tmp/pgdw.lock sh -c 'make -s install && bash test/bench/reconcile.sh'
#   RECONCILE_ROWS=200000 RECONCILE_BACKFILL=0 bash test/bench/reconcile.sh   (quick)
#
# Two throwaway clusters (test/lib/cluster.sh, test/bench/lib.sh): LEGACY
# preloads pg_dualwrite, MODERN is plain.  A table t of RECONCILE_ROWS rows
# (bigint key, int, 60-byte text, numeric, timestamptz, jsonb, float8) is
# loaded on both sides before enable(), so not through delivery.  Then:
#   a) equal tables: reconcile (seconds, bytes_transferred) next to the
#      anchor: COPY (SELECT * FROM t ORDER BY id) TO STDOUT of both tables
#      into files, then diff(1) of the two files
#   b) the same with 10 differences planted on MODERN (4 missing, 3 extra,
#      3 changed); both must see exactly those 10 keys
#   c) 1,000 rows updated on LEGACY, delivered, then a second reconcile:
#      incremental when the installed build has reconcile(..., full) (it
#      compares only the changed keys), else a full one, marked as such
#   d) checksum throughput on LEGACY: dualwrite.row_checksum, the whole
#      table figure (table_checksum, what reconcile computes locally), next
#      to a plain scan (sum(pg_column_size(t.*))) and the built-in sha256
#      over t::text; the plain-SQL figure (checksum_sql) on MODERN
#   e) backfill rows/s next to a plain COPY between two clusters:
#      test/bench/backfill.sh is run as it is and its table is shown
#      (RECONCILE_BACKFILL=0 leaves it out)
# Each figure is the median of RECONCILE_REPEAT runs.  The table is printed
# and written to test/bench/results/reconcile-latest.txt (git-ignored),
# followed by every single measurement.  The installed pg_dualwrite build
# is used (BENCH_BUILD=1 builds and installs first); only the clusters this
# script started are stopped on exit.  See test/bench/README.md ("Reconcile").

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
pgdw_fixed_locale

ROWS=${RECONCILE_ROWS:-1000000}
REPEAT=${RECONCILE_REPEAT:-3}
CHANGED=${RECONCILE_CHANGED:-1000}        # rows changed on legacy for c)
BACKFILL=${RECONCILE_BACKFILL:-1}
BACKFILL_ROWS=${RECONCILE_BACKFILL_ROWS:-1000000}
RESULTS=${BENCH_RESULTS_DIR:-$HERE/results}
BENCH_TAG=reconcile-bench
export PGTZ=UTC
# shellcheck source=lib.sh
. "$HERE/lib.sh"
bench_require_build
(( ROWS >= 1000 && CHANGED <= ROWS / 2 )) || die "RECONCILE_ROWS must be >= 1000 and >= 2 * RECONCILE_CHANGED"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_setup pg_dualwrite-reconcilebench reconcile-

pgdw_cluster_init "$LEGACY" "shared_preload_libraries = 'pg_dualwrite'" "${BENCH_COMMON_CONF[@]}" \
	"synchronous_commit = off" "max_parallel_workers_per_gather = 0"
pgdw_cluster_init "$MODERN" "${BENCH_COMMON_CONF[@]}" "synchronous_commit = off" "max_parallel_workers_per_gather = 0"
pgdw_cluster_start "$LEGACY"
pgdw_cluster_start "$MODERN"
L() { pgdw_psql "$LEGACY" postgres "$@"; }
M() { pgdw_psql "$MODERN" postgres "$@"; }
now() { date +%s.%N; }
DETAILS=()   # every single measurement, for the results file
note() { DETAILS+=("$*"); say "$*"; }

# Keys are even (2, 4, ..., 2N), so extra rows can be planted inside the
# legacy key range (odd keys), not only before and after it.
DDL="CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL, b text, n numeric(14,2), ts timestamptz, j jsonb, f float8)"
LOAD="INSERT INTO t SELECT 2 * g, g % 1000, left(repeat(md5(g::text), 2), 60), (g % 100000) * 1.25,
	timestamptz '2020-01-01' + g * interval '1 s', jsonb_build_object('k', g, 'tag', 'row'), g / 7.0
	FROM generate_series(1, $ROWS) g"
say "loading $ROWS rows on both sides"
t0=$(now)
L -c "$DDL" -c "$LOAD" -c "VACUUM ANALYZE t" -c "CHECKPOINT" & lpid=$!
M -c "$DDL" -c "$LOAD" -c "VACUUM ANALYZE t" -c "CHECKPOINT" & mpid=$!
wait "$lpid" || die "loading legacy failed"
wait "$mpid" || die "loading modern failed"
note "load of $ROWS rows on both sides (in parallel): $(fmt %.1f "$(calc "$(now) - $t0")") s"

L -c "CREATE EXTENSION pg_dualwrite" \
	-c "CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite OPTIONS (host '$MODERN', port '$(pgdw_port "$MODERN")', dbname 'postgres')" \
	-c "CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user 'postgres')" \
	-c "SET dualwrite.target_server = 'modern'" -c "SELECT dualwrite.enable('t')" >/dev/null
for _ in $(seq 1 100); do
	[[ $(L -At -c "SELECT count(*) FROM dualwrite.workers WHERE state IS NOT NULL") -ge 1 ]] && break
	L -c "SELECT dualwrite._wake()" >/dev/null; sleep 0.1
done

# The incremental API (reconcile(tbl, repair, full), reconcile_runs.mode):
# with it, a) and b) ask for full runs and c) is incremental.
INCR=$(L -At -c "SELECT EXISTS (SELECT FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace
	WHERE s.nspname = 'dualwrite' AND p.proname = 'reconcile' AND 'full' = ANY (p.proargnames))")
if [[ $INCR == t ]]; then
	FULL="dualwrite.reconcile('t', full => true)"; MODE_COL="mode"
else
	FULL="dualwrite.reconcile('t')"; MODE_COL="'full (not incremental yet)'"
fi
# last_run: "seconds_on_server|rows_compared|differences|bytes_transferred|mode" of the last run
last_run() {
	L -At -c "SELECT extract(epoch FROM finished_at - started_at), rows_compared, differences, bytes_transferred, $MODE_COL
		FROM dualwrite.reconcile_runs ORDER BY run_id DESC LIMIT 1"
}
field() { cut -d'|' -f"$2" <<<"$1"; }

# reconcile_keys FILE: one reconcile (full); its differences "id kind" sorted into FILE; prints seconds.
reconcile_keys() {
	local t0 t1
	t0=$(now)
	L -At -F ' ' -c "SELECT key->>'id', kind FROM $FULL" | sort >"$1"
	t1=$(now)
	calc "$t1 - $t0"
}

# anchor FILE: dump both tables ordered by key, diff them; the differing
# keys (sorted, unique) into FILE; prints "seconds bytes_legacy_dump bytes_modern_dump".
anchor() {
	local t0 t1
	t0=$(now)
	L -c "COPY (SELECT * FROM t ORDER BY id) TO STDOUT" >"$TMP/legacy.copy"
	M -c "COPY (SELECT * FROM t ORDER BY id) TO STDOUT" >"$TMP/modern.copy"
	{ diff "$TMP/legacy.copy" "$TMP/modern.copy" || [[ $? -eq 1 ]]; } | awk '/^[<>]/ { print $2 }' | sort -u >"$1"
	t1=$(now)
	echo "$(calc "$t1 - $t0") $(stat -c %s "$TMP/legacy.copy") $(stat -c %s "$TMP/modern.copy")"
	rm -f "$TMP/legacy.copy" "$TMP/modern.copy"
}

# ------------------------------------------------------------ a) equal tables
say "a) equal tables, $REPEAT x reconcile and $REPEAT x dump + diff"
ra_s=(); ra_b=(); aa_s=()
for i in $(seq 1 "$REPEAT"); do
	s=$(reconcile_keys "$TMP/ra.keys"); r=$(last_run)
	[[ ! -s $TMP/ra.keys && $(field "$r" 3) == 0 ]] || die "a) reconcile of equal tables reported: $(head -5 "$TMP/ra.keys")"
	ra_s+=("$s"); ra_b+=("$(field "$r" 4)")
	note "a) reconcile $i: $(fmt %.2f "$s") s (server $(fmt %.2f "$(field "$r" 1)") s), rows_compared $(field "$r" 2), 0 differences, $(field "$r" 4) bytes, $(field "$r" 5)"
	out=$(anchor "$TMP/aa.keys"); read -r s lb mb <<<"$out"
	[[ ! -s $TMP/aa.keys ]] || die "a) the dumps of the equal tables differ: $(head -5 "$TMP/aa.keys")"
	aa_s+=("$s"); dump_l=$lb; dump_m=$mb
	note "a) dump + diff $i: $(fmt %.2f "$s") s, dumps $lb + $mb bytes, no difference"
done

# ------------------------------------------------------- b) 10 planted differences
# spread over the key range; the keys of legacy are 2 .. 2N
k() { awk -v n="$ROWS" -v f="$1" 'BEGIN { printf "%d", 2 * int(n * f) }'; }
MISSING="$(k 0.05), $(k 0.30), $(k 0.55), $(k 0.90)"
EXTRA="1, $(( $(k 0.20) + 1 )), $(( 2 * ROWS + 1 ))"          # before, inside, after the legacy keys
CH_B=$(k 0.15); CH_N=$(k 0.45); CH_J=$(k 0.80)
{
	for x in ${MISSING//,/}; do echo "$x missing"; done
	for x in ${EXTRA//,/}; do echo "$x extra"; done
	for x in $CH_B $CH_N $CH_J; do echo "$x different"; done
} | sort >"$TMP/expected.keys"
M -c "CREATE TABLE plant_saved AS SELECT * FROM t WHERE id IN ($MISSING, $CH_B, $CH_N, $CH_J)" \
	-c "DELETE FROM t WHERE id IN ($MISSING)" \
	-c "INSERT INTO t (id, a, b) SELECT x, 0, 'extra row' FROM unnest(ARRAY[$EXTRA]::bigint[]) x" \
	-c "UPDATE t SET b = b || '!' WHERE id = $CH_B" \
	-c "UPDATE t SET n = n + 0.01 WHERE id = $CH_N" \
	-c "UPDATE t SET j = j || '{\"tag\": \"changed\"}' WHERE id = $CH_J"
say "b) 10 differences planted on modern, $REPEAT x reconcile and $REPEAT x dump + diff"
rb_s=(); rb_b=(); ab_s=()
for i in $(seq 1 "$REPEAT"); do
	s=$(reconcile_keys "$TMP/rb.keys"); r=$(last_run)
	cmp -s "$TMP/rb.keys" "$TMP/expected.keys" ||
		die "b) reconcile found other differences than the 10 planted: $(diff "$TMP/expected.keys" "$TMP/rb.keys" | head -20)"
	[[ $(field "$r" 3) == 10 ]] || die "b) reconcile_runs.differences = $(field "$r" 3), expected 10"
	rb_s+=("$s"); rb_b+=("$(field "$r" 4)")
	note "b) reconcile $i: $(fmt %.2f "$s") s (server $(fmt %.2f "$(field "$r" 1)") s), rows_compared $(field "$r" 2), 10 differences (the planted ones), $(field "$r" 4) bytes"
	out=$(anchor "$TMP/ab.keys"); read -r s lb mb <<<"$out"
	cut -d' ' -f1 "$TMP/expected.keys" | sort -u | cmp -s - "$TMP/ab.keys" ||
		die "b) the dump diff sees other keys than the 10 planted: $(tr '\n' ' ' <"$TMP/ab.keys")"
	ab_s+=("$s"); dumpb_l=$lb; dumpb_m=$mb
	note "b) dump + diff $i: $(fmt %.2f "$s") s, dumps $lb + $mb bytes, the 10 planted keys"
done
# undo the plant behind pg_dualwrite's back; a full run proves it and is
# the baseline of the incremental runs of c)
M -c "DELETE FROM t WHERE id IN ($EXTRA, $CH_B, $CH_N, $CH_J)" -c "INSERT INTO t SELECT * FROM plant_saved" -c "DROP TABLE plant_saved"
s=$(reconcile_keys "$TMP/base.keys")
[[ ! -s $TMP/base.keys ]] || die "after undoing the plant, reconcile still reports: $(head -5 "$TMP/base.keys")"
note "c) baseline full reconcile after undoing the plant: $(fmt %.2f "$s") s, 0 differences"

# ----------------------------------------- c) reconcile after CHANGED legacy changes
say "c) $REPEAT x ($CHANGED rows updated on legacy, delivered, reconcile)"
rc_s=(); rc_b=(); rc_n=(); rc_mode=
STEP=$(( ROWS / CHANGED ))
for i in $(seq 1 "$REPEAT"); do
	# another set of CHANGED keys each time, spread over the table
	L -c "UPDATE t SET a = a + 1, ts = ts + interval '1 s' WHERE id IN (SELECT 2 * g FROM generate_series($i, $ROWS, $STEP) g LIMIT $CHANGED)"
	t0=$(now)
	[[ $(L -At -c "SELECT dualwrite.wait_for_delivery('600 s')") == t ]] || die "c) the $CHANGED changes were not delivered in 600 s"
	d_s=$(calc "$(now) - $t0")
	t0=$(now)
	n=$(L -At -c "SELECT count(*) FROM dualwrite.reconcile('t')")
	s=$(calc "$(now) - $t0"); r=$(last_run)
	[[ $n == 0 ]] || die "c) reconcile after delivered changes reported $n differences"
	rc_s+=("$s"); rc_b+=("$(field "$r" 4)"); rc_n+=("$(field "$r" 2)"); rc_mode=$(field "$r" 5)
	note "c) run $i: delivery wait $(fmt %.2f "$d_s") s; reconcile $(fmt %.2f "$s") s (server $(fmt %.2f "$(field "$r" 1)") s), mode $(field "$r" 5), rows_compared $(field "$r" 2), 0 differences, $(field "$r" 4) bytes"
done

# ------------------------------------------------------ d) checksum throughput
DATA_BYTES=$(L -At -c "SELECT sum(pg_column_size(t.*)) FROM t t")
TABLE_BYTES=$(L -At -c "SELECT pg_table_size('t')")
MODERN_SQL=$(L -At -c "SELECT dualwrite.checksum_sql('t')")
# timed QUERY-SIDE SQL: wall seconds of one statement
timed() {
	local t0 side=$1; shift
	t0=$(now)
	"$side" -At -c "$1" >/dev/null
	calc "$(now) - $t0"
}
declare -A D
D_NAMES=(scan row_checksum sha256 table_checksum checksum_sql)
declare -A D_SQL=(
	[scan]="SELECT sum(pg_column_size(t.*)) FROM t t"
	[row_checksum]="SELECT sum(length(dualwrite.row_checksum(t))) FROM t t"
	[sha256]="SELECT sum(length(sha256(convert_to(t::text, 'UTF8')))) FROM t t"
	[table_checksum]="SELECT row_count FROM dualwrite.table_checksum('t')"
	[checksum_sql]="$MODERN_SQL")
declare -A D_SIDE=([scan]=L [row_checksum]=L [sha256]=L [table_checksum]=L [checksum_sql]=M)
say "d) checksum throughput, $REPEAT x each (data $DATA_BYTES bytes by pg_column_size, table $TABLE_BYTES bytes)"
for name in "${D_NAMES[@]}"; do "${D_SIDE[$name]}" -At -c "${D_SQL[$name]}" >/dev/null; done   # warm the caches
for i in $(seq 1 "$REPEAT"); do
	for name in "${D_NAMES[@]}"; do   # interleaved, so load changes hit all alike
		s=$(timed "${D_SIDE[$name]}" "${D_SQL[$name]}")
		D[$name]+="$s "
		note "d) $name $i: $(fmt %.3f "$s") s"
	done
done

# ------------------------------------------------------------ e) backfill
BF_OUT=""
if [[ $BACKFILL == 1 ]]; then
	say "e) test/bench/backfill.sh with BACKFILL_ROWS=$BACKFILL_ROWS"
	BF_OUT=$(BACKFILL_ROWS=$BACKFILL_ROWS bash "$HERE/backfill.sh" 2>&1) || die "backfill.sh failed: $BF_OUT"
fi

# ------------------------------------------------------------------ report
med() { median "$@"; }
mb() { calc "$1 / 1000000"; }
ra=$(med "${ra_s[@]}"); aa=$(med "${aa_s[@]}"); rb=$(med "${rb_s[@]}"); ab=$(med "${ab_s[@]}"); rc=$(med "${rc_s[@]}")
rab=$(med "${ra_b[@]}"); rbb=$(med "${rb_b[@]}"); rcb=$(med "${rc_b[@]}"); rcn=$(med "${rc_n[@]}")
ad=$(( dump_l + dump_m )); bd=$(( dumpb_l + dumpb_m ))
# shellcheck disable=SC2086
d_med() { med ${D[$1]}; }
{
	echo "pg_dualwrite reconcile benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, PostgreSQL $("$PGDW_BINDIR/postgres" -V | awk '{print $3}'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
	echo "table t: $ROWS rows (id bigint PK, int, 60-char text, numeric, timestamptz, jsonb, float8), $(fmt %.0f "$(mb "$DATA_BYTES")") MB of row data, $(fmt %.0f "$(mb "$TABLE_BYTES")") MB on disk; median of $REPEAT"
	echo "settings: shared_buffers=1GB, synchronous_commit=off, no parallel query; both clusters on this machine (loopback)"
	echo "load average (1/5/15 min) at start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the cores)"
	echo
	printf '  %-44s %9s %14s %10s\n' "" "seconds" "bytes moved" "ratio"
	printf '  %-44s %9.2f %14d %10s\n' "a) reconcile, equal tables" "$ra" "$rab" ""
	printf '  %-44s %9.2f %14d %10s\n' "   dump both ordered by key + diff" "$aa" "$ad" ""
	printf '  %-44s %9s %14s %10s\n' "   reconcile / dump+diff" "$(fmt %.2f "$(calc "$ra / $aa")")" "$(fmt %.6f "$(calc "$rab / $ad")")" ""
	printf '  %-44s %9.2f %14d %10s\n' "b) reconcile, 10 differences" "$rb" "$rbb" ""
	printf '  %-44s %9.2f %14d %10s\n' "   dump both ordered by key + diff" "$ab" "$bd" ""
	printf '  %-44s %9s %14s %10s\n' "   reconcile / dump+diff" "$(fmt %.2f "$(calc "$rb / $ab")")" "$(fmt %.6f "$(calc "$rbb / $bd")")" ""
	printf '  %-44s %9.2f %14d   rows_compared %s\n' "c) reconcile after $CHANGED legacy changes" "$rc" "$rcb" "$rcn"
	if [[ $rc_mode == incremental ]]; then
		printf '  %-44s %9s\n' "   (incremental) / a) full, equal tables" "$(fmt %.3f "$(calc "$rc / $ra")")"
	else
		printf '     mode: %s\n' "$rc_mode"
	fi
	echo "  bytes moved: reconcile = dualwrite.reconcile_runs.bytes_transferred (SQL sent + result values; no protocol"
	echo "  overhead); dump+diff = both COPY dumps (legacy $dump_l + modern $dump_m bytes): run from a third host,"
	echo "  both cross the network; run on legacy's host, only the modern dump ($dump_m) would."
	echo "  dump+diff: the two COPY dumps one after the other, then diff(1); its keys are compared with reconcile's."
	echo
	printf '  %-44s %9s %12s %10s %9s\n' "d) on legacy (server wall time)" "seconds" "rows/s" "MB/s" "/ scan"
	sc=$(d_med scan)
	for name in "${D_NAMES[@]}"; do
		s=$(d_med "$name")
		case $name in
			scan) label="plain scan: sum(pg_column_size(t.*))" ;;
			row_checksum) label="sum(length(dualwrite.row_checksum(t)))" ;;
			sha256) label="built-in sha256(convert_to(t::text))" ;;
			table_checksum) label="dualwrite.table_checksum('t') (C++ figure)" ;;
			checksum_sql) label="on MODERN: checksum_sql('t') (plain SQL)" ;;
		esac
		printf '  %-44s %9.3f %12.0f %10.1f %9.2f\n' "$label" "$s" "$(calc "$ROWS / $s")" "$(calc "$DATA_BYTES / 1000000 / $s")" "$(calc "$s / $sc")"
	done
	echo "  MB = row data by sum(pg_column_size(t.*)) = $DATA_BYTES bytes (pg_table_size $TABLE_BYTES)."
	echo
	if [[ $BACKFILL == 1 ]]; then
		echo "e) test/bench/backfill.sh, BACKFILL_ROWS=$BACKFILL_ROWS (its own clusters and table):"
		sed -n '/seconds/,$p' <<<"$BF_OUT" | sed 's/^/  /'
	else
		echo "e) backfill rows/s next to a plain COPY: run test/bench/backfill.sh (RECONCILE_BACKFILL=0 left it out)"
	fi
	echo
	echo "checks: a) reconcile and dump+diff found nothing in $REPEAT runs each; b) both found exactly the 10 planted"
	echo "  keys (reconcile: also the kinds, 4 missing, 3 extra, 3 different) in $REPEAT runs each; after undoing the"
	echo "  plant a full run found nothing; c) every reconcile after the delivered changes found nothing."
} >"$RESULTS/reconcile-latest.txt"
{
	echo
	echo "every measurement:"
	printf '  %s\n' "${DETAILS[@]}"
} >>"$RESULTS/reconcile-latest.txt"
sed '/^every measurement:/,$d' "$RESULTS/reconcile-latest.txt"
say "written to $RESULTS/reconcile-latest.txt"
