#!/usr/bin/env bash
# test/bench/backfill.sh - backfill speed next to a plain COPY between the
# same two clusters (not a timed test; run on demand).
#
#   flock /tmp/pgdw.lock sh -c 'make install && bash test/bench/backfill.sh'
#   BACKFILL_ROWS=200000 bash test/bench/backfill.sh      (quick)
#
# Two throwaway clusters (test/lib/cluster.sh): LEGACY preloads pg_dualwrite,
# MODERN is plain.  A table of BACKFILL_ROWS rows (bigint key, int, 60-byte
# text, timestamptz) exists on LEGACY before enable(); MODERN has the same
# table with the same primary key, empty.
#   copy      COPY (SELECT * FROM t) TO STDOUT on LEGACY piped into
#             COPY t_copy FROM STDIN on MODERN (same primary key)
#   backfill  CALL dualwrite.backfill('t') (each chunk streamed to MODERN by
#             COPY, committed there first) and dualwrite.wait_for_delivery()
#             (nothing left to deliver: the CALL's end is the end)
# Prints seconds and rows/s of each and the ratio backfill/copy; also the
# time the CALL alone took.
# The installed pg_dualwrite build is used.  Only the clusters this script
# started are stopped on exit.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
pgdw_fixed_locale

ROWS=${BACKFILL_ROWS:-1000000}
BATCH=${BACKFILL_BATCH:-10000}            # backfill chunk (rows)
WORKER_BATCH=${BACKFILL_WORKER_BATCH:-10000}   # dualwrite.batch_size
export PGTZ=UTC

tmp=$(pgdw_mktemp)
trap 'pgdw_stop_all; rm -rf "$tmp"' EXIT
pgdw_cluster_init "$tmp/legacy" "shared_preload_libraries = 'pg_dualwrite'" \
	"dualwrite.batch_size = $WORKER_BATCH" "dualwrite.naptime = 50" "shared_buffers = 256MB" \
	"max_wal_size = 4GB" "synchronous_commit = off"
pgdw_cluster_init "$tmp/modern" "shared_buffers = 256MB" "max_wal_size = 4GB" "synchronous_commit = off"
pgdw_cluster_start "$tmp/legacy"
pgdw_cluster_start "$tmp/modern"
L() { pgdw_psql "$tmp/legacy" postgres "$@"; }
M() { pgdw_psql "$tmp/modern" postgres "$@"; }
now() { date +%s.%N; }

DDL="CREATE TABLE %s (id bigint PRIMARY KEY, a int NOT NULL, b text, c timestamptz);"
# shellcheck disable=SC2059
L -c "$(printf "$DDL" t)" \
	-c "INSERT INTO t SELECT g, g % 1000, repeat(md5(g::text), 2), timestamptz '2020-01-01' + g * interval '1 s' FROM generate_series(1, $ROWS) g" \
	-c "VACUUM ANALYZE t" -c "CHECKPOINT"
# shellcheck disable=SC2059
M -c "$(printf "$DDL" t)" -c "$(printf "$DDL" t_copy)"

echo "== plain COPY legacy -> modern, $ROWS rows"
t0=$(now)
L -c "COPY (SELECT * FROM t) TO STDOUT" | M -c "COPY t_copy FROM STDIN"
t1=$(now)
copy_s=$(echo "$t1 - $t0" | bc -l)

L -c "CREATE EXTENSION pg_dualwrite" \
	-c "CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite OPTIONS (host '$tmp/modern', port '$(pgdw_port "$tmp/modern")', dbname 'postgres')" \
	-c "CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user 'postgres')" \
	-c "SET dualwrite.target_server = 'modern'" -c "SELECT dualwrite.enable('t')" >/dev/null
for _ in $(seq 1 100); do
	[[ $(L -At -c "SELECT count(*) FROM dualwrite.workers WHERE state IS NOT NULL") -ge 1 ]] && break
	L -c "SELECT dualwrite._wake()" >/dev/null; sleep 0.1
done
L -c "CHECKPOINT"

echo "== backfill, $ROWS rows (chunks of $BATCH, worker batches of $WORKER_BATCH)"
t0=$(now)
L -c "CALL dualwrite.backfill('t', batch_size => $BATCH)" 2>&1 | grep -v '^HINT' || true
t1=$(now)
L -At -c "SELECT dualwrite.wait_for_delivery('600 s')" | grep -qx t || { echo "not delivered in 600 s"; exit 1; }
t2=$(now)
n=$(M -At -c "SELECT count(*) FROM t")
[[ $n -eq $ROWS ]] || { echo "modern has $n rows, expected $ROWS"; exit 1; }
call_s=$(echo "$t1 - $t0" | bc -l)
bf_s=$(echo "$t2 - $t0" | bc -l)

printf '\n%-34s %10s %12s\n' "" "seconds" "rows/s"
printf '%-34s %10.2f %12.0f\n' "plain COPY legacy -> modern" "$copy_s" "$(echo "$ROWS / $copy_s" | bc -l)"
printf '%-34s %10.2f %12.0f\n' "backfill, until all on modern" "$bf_s" "$(echo "$ROWS / $bf_s" | bc -l)"
printf '%-34s %10.2f %12.0f\n' "  of which the CALL" "$call_s" "$(echo "$ROWS / $call_s" | bc -l)"
printf 'ratio backfill / plain COPY (rows/s): %.2f\n' "$(echo "$copy_s / $bf_s" | bc -l)"
