#!/usr/bin/env bash
# test/demo.sh - pg_dualwrite end to end, in about a minute.
#
#   sudo bash test/demo.sh        (or as root without sudo)
#
# Installs what is missing (test/lib/deps.sh), builds and installs the
# extension, then, in a temp dir, starts two throwaway clusters on free
# loopback ports: LEGACY (shared_preload_libraries = 'pg_dualwrite') and
# MODERN (plain).  It creates public.orders on both, flags it on legacy, runs
# a pgbench workload of inserts, updates (some change the primary key),
# deletes and small multi-statement transactions on legacy while printing
# dualwrite.status, waits for delivery, and compares both tables row by row.
# Then a second table in sync mode takes 5 s of transfers and is compared
# right after the last commit, without waiting for any delivery.
# Prints PASS and exits 0 when they are identical; FAIL and exits 1 if not.
# The clusters are stopped and the temp dir removed on exit, also on failure.
#
# Knobs: PGDW_DEMO_SECONDS (10), PGDW_DEMO_CLIENTS (4), PGDW_SKIP_DEPS=1,
#        PGDW_SKIP_BUILD=1 (use the installed build), PGDW_KEEP_TMP=1.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
pgdw_fixed_locale   # C.UTF-8 whatever the caller's environment (TOOLCHAIN P22)

SECONDS_TO_RUN=${PGDW_DEMO_SECONDS:-10}
CLIENTS=${PGDW_DEMO_CLIENTS:-4}
export PGTZ=UTC PGOPTIONS="-c DateStyle=ISO,YMD"   # same text output on both sides

say() { printf '[demo] %s\n' "$*"; }
die() { printf '[demo] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- set-up
if [[ -z ${PGDW_SKIP_DEPS:-} ]]; then
	say "checking packages"
	bash "$ROOT/test/lib/deps.sh" | sed 's/^/       /'
fi

TMP=$(pgdw_mktemp pg_dualwrite-demo) || die "cannot create a temp dir"
cleanup() {
	local rc=$?
	set +e
	if [[ ${#PGDW_STARTED_CLUSTERS[@]} -gt 0 ]]; then
		say "stopping the clusters"
		pgdw_stop_all
	fi
	if [[ -n ${PGDW_KEEP_TMP:-} ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${PGDW_SKIP_BUILD:-} ]]; then
	say "building and installing pg_dualwrite (log: make.log in the temp dir)"
	if ! { make -C "$ROOT" -j"$(nproc)" && make -C "$ROOT" install; } >"$TMP/make.log" 2>&1; then
		tail -n 40 "$TMP/make.log"
		die "build failed"
	fi
fi
cd "$TMP"   # the postgres user must be able to use the current directory

LEGACY=$TMP/legacy
MODERN=$TMP/modern
say "creating the legacy cluster (shared_preload_libraries = 'pg_dualwrite')"
pgdw_cluster_init "$LEGACY" "shared_preload_libraries = 'pg_dualwrite'" \
	"dualwrite.naptime = 100" "max_connections = 50"
say "creating the modern cluster (plain PostgreSQL)"
pgdw_cluster_init "$MODERN" "max_connections = 50" "max_prepared_transactions = 20"
pgdw_cluster_start "$LEGACY"
pgdw_cluster_start "$MODERN"
LPORT=$(pgdw_port "$LEGACY")
MPORT=$(pgdw_port "$MODERN")
say "legacy listens on 127.0.0.1:$LPORT, modern on 127.0.0.1:$MPORT"

legacy() { pgdw_psql "$LEGACY" legacy "$@"; }
modern() { pgdw_psql "$MODERN" modern "$@"; }

pgdw_psql "$LEGACY" postgres -c "CREATE DATABASE legacy"
pgdw_psql "$MODERN" postgres -c "CREATE DATABASE modern"

ORDERS_DDL="CREATE TABLE public.orders (
	id         bigint PRIMARY KEY,
	customer   text,
	amount     numeric(12,2),
	status     text,
	note       text,
	updated_at timestamptz
)"
say "creating public.orders (empty) on both sides"
legacy -c "$ORDERS_DDL"
modern -c "$ORDERS_DDL"

say "legacy: CREATE EXTENSION, CREATE SERVER modern, USER MAPPING, dualwrite.enable('public.orders')"
legacy <<SQL
CREATE EXTENSION pg_dualwrite;
CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite
	OPTIONS (host '127.0.0.1', port '$MPORT', dbname 'modern');
CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user 'postgres');
SET dualwrite.target_server = 'modern';
\o /dev/null
SELECT dualwrite.enable('public.orders');
SQL

say "seeding 1000 orders on legacy"
legacy -c "INSERT INTO orders
	SELECT g, 'customer ' || (g % 97), (g % 1000) * 1.25, 'new',
	       CASE WHEN g % 10 = 0 THEN NULL ELSE 'seed \"' || g || E'\"\\n café' END, now()
	FROM generate_series(1, 1000) AS g"

# ---------------------------------------------------------------- workload
# Ids 1..20000 are shared by all clients.  Primary-key changes and the
# multi-statement transactions use ids in a range owned by the client
# (1000000 * (client_id + 1) + ...), so no statement can fail with a
# unique violation or a deadlock (pgbench would abort the client).
W=$TMP/workload
mkdir -p "$W"
cat >"$W/insert.sql" <<'SQL'
\set id random(1, 20000)
INSERT INTO orders (id, customer, amount, status, note, updated_at)
VALUES (:id, 'customer ' || (:id % 97), (:id % 1000) * 1.25, 'new',
        CASE WHEN :id % 10 = 0 THEN NULL ELSE 'order "' || :id || E'"\n it''s ünïcode' END, now())
ON CONFLICT (id) DO NOTHING;
SQL
cat >"$W/update.sql" <<'SQL'
\set id random(1, 20000)
UPDATE orders SET amount = amount + 1.05, status = 'paid', updated_at = now() WHERE id = :id;
SQL
cat >"$W/delete.sql" <<'SQL'
\set id random(1, 20000)
DELETE FROM orders WHERE id = :id;
SQL
cat >"$W/pkchange.sql" <<'SQL'
\set id random(1, 20000)
\set newid 1000000 * (:client_id + 1) + random(1, 999999)
UPDATE orders SET id = :newid, status = 'moved', updated_at = now()
WHERE id = :id AND NOT EXISTS (SELECT 1 FROM orders WHERE id = :newid);
SQL
cat >"$W/txn.sql" <<'SQL'
\set a 1000000 * (:client_id + 1) + random(1, 999999)
BEGIN;
DELETE FROM orders WHERE id IN (:a, -:a);
INSERT INTO orders VALUES (:a, 'batch', 10.00, 'new', 'two rows, one transaction', now());
INSERT INTO orders VALUES (-:a, 'batch', 20.00, 'new', NULL, now());
UPDATE orders SET status = 'shipped', note = NULL WHERE id = :a;
COMMIT;
SQL
if pgdw_is_root; then chown -R "$PGDW_PG_USER:" "$W"; fi

say "pgbench on legacy: $CLIENTS clients for ${SECONDS_TO_RUN}s (insert 35%, update 35%, delete 15%, pk change 10%, 4-statement transaction 5%)"
pgdw_as_pg pgbench -n -h "$LEGACY" -p "$LPORT" -U postgres -c "$CLIENTS" -j 2 -T "$SECONDS_TO_RUN" \
	-f "$W/insert.sql@35" -f "$W/update.sql@35" -f "$W/delete.sql@15" \
	-f "$W/pkchange.sql@10" -f "$W/txn.sql@5" legacy >"$TMP/pgbench.log" 2>&1 &
BENCH_PID=$!
next=$((SECONDS + 2))
while kill -0 "$BENCH_PID" 2>/dev/null; do
	sleep 0.2
	[[ $SECONDS -ge $next ]] || continue
	next=$((SECONDS + 2))
	kill -0 "$BENCH_PID" 2>/dev/null || break
	say "dualwrite.status at $(date +%T):"
	legacy -P pager=off -c "SELECT * FROM dualwrite.status" | sed 's/^/       /' || true
done
BENCH_RC=0
wait "$BENCH_PID" || BENCH_RC=$?
grep -E '^(number of transactions actually processed|number of failed|tps)' "$TMP/pgbench.log" |
	sed 's/^/       pgbench: /' || true
if [[ $BENCH_RC -ne 0 ]] || grep -q 'aborted' "$TMP/pgbench.log"; then
	say "WARNING: pgbench reported errors (exit $BENCH_RC):"
	grep -iE 'error|abort' "$TMP/pgbench.log" | head -n 10 | sed 's/^/       /'
fi

# ---------------------------------------------------------------- verify
say "waiting for delivery: SELECT dualwrite.wait_for_delivery('120s')"
DELIVERED=$(legacy -At -c "SELECT dualwrite.wait_for_delivery('120s')") || DELIVERED="an error"
say "wait_for_delivery returned ${DELIVERED}"
legacy -P pager=off -c "SELECT * FROM dualwrite.status" | sed 's/^/       /'

say "comparing legacy and modern row by row (COPY ... ORDER BY id)"
legacy -c "COPY (SELECT * FROM orders ORDER BY id) TO STDOUT" >"$TMP/legacy.copy"
modern -c "COPY (SELECT * FROM orders ORDER BY id) TO STDOUT" >"$TMP/modern.copy"
LROWS=$(wc -l <"$TMP/legacy.copy")
MROWS=$(wc -l <"$TMP/modern.copy")
say "legacy has $LROWS rows, modern has $MROWS rows"

say "dualwrite.workers:"
legacy -P pager=off -c "SELECT * FROM dualwrite.workers" | sed 's/^/       /'

# ---------------------------------------------------------------- sync mode
# A second table in sync mode: each transfer commits on both sides or on
# neither (two-phase commit), so the modern side is compared right after the
# workload, without waiting for any delivery.
ACCOUNTS_DDL="CREATE TABLE public.accounts (id int PRIMARY KEY, balance bigint NOT NULL)"
say "sync mode: public.accounts, dualwrite.enable('public.accounts', mode => 'sync')"
legacy -c "$ACCOUNTS_DDL"
modern -c "$ACCOUNTS_DDL"
legacy -q -c "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g"
modern -q -c "INSERT INTO accounts SELECT g, 1000 FROM generate_series(1, 100) g"
legacy -q -o /dev/null -c "SELECT dualwrite.enable('public.accounts', mode => 'sync', target_server => 'modern')"
cat >"$W/transfer.sql" <<'SQL'
\set a random(1, 100)
\set b 1 + (:a + random(0, 98)) % 100
\set n random(1, 50)
UPDATE accounts SET balance = balance + CASE WHEN id = :a THEN -:n ELSE :n END WHERE id IN (:a, :b);
SQL
chmod 644 "$W/transfer.sql"
say "pgbench on legacy: $CLIENTS clients for 5s of transfers between 100 accounts (sync)"
SYNC_RC=0
pgdw_as_pg pgbench -n -h "$LEGACY" -p "$LPORT" -U postgres -c "$CLIENTS" -j 2 -T 5 \
	-f "$W/transfer.sql" legacy >"$TMP/pgbench-sync.log" 2>&1 || SYNC_RC=$?
grep -E '^(number of transactions actually processed|tps)' "$TMP/pgbench-sync.log" | sed 's/^/       pgbench: /' || true
legacy -c "COPY (SELECT * FROM accounts ORDER BY id) TO STDOUT" >"$TMP/legacy-sync.copy"
modern -c "COPY (SELECT * FROM accounts ORDER BY id) TO STDOUT" >"$TMP/modern-sync.copy"
SYNC_SUM=$(modern -At -c "SELECT sum(balance) FROM accounts")
say "right after the last commit: modern total balance $SYNC_SUM (100000 expected), prepared transactions left: $(modern -At -c 'SELECT count(*) FROM pg_prepared_xacts')"
legacy -P pager=off -c "SELECT table_name, mode, sync_transactions, sync_fallbacks, in_doubt FROM dualwrite.status WHERE mode = 'sync'" | sed 's/^/       /'
SYNC_OK=0
if [[ $SYNC_RC -eq 0 ]] && cmp -s "$TMP/legacy-sync.copy" "$TMP/modern-sync.copy" && [[ $SYNC_SUM == 100000 ]]; then
	SYNC_OK=1
	say "sync mode: both sides identical at commit"
else
	say "sync mode: the sides differ (or pgbench failed, exit $SYNC_RC)"
	diff "$TMP/legacy-sync.copy" "$TMP/modern-sync.copy" | head -n 10 | sed 's/^/       /' || true
fi

if [[ $DELIVERED == t ]] && cmp -s "$TMP/legacy.copy" "$TMP/modern.copy" && [[ $SYNC_OK == 1 ]]; then
	say "PASS: both sides hold the same $LROWS rows"
	exit 0
fi
if ! cmp -s "$TMP/legacy.copy" "$TMP/modern.copy"; then
	say "first differences (< legacy, > modern):"
	diff "$TMP/legacy.copy" "$TMP/modern.copy" | head -n 20 | sed 's/^/       /' || true
fi
say "legacy server log tail:"
tail -n 20 "$LEGACY/server.log" | sed 's/^/       /' || true
say "FAIL: legacy and modern differ (or delivery did not finish)"
exit 1
