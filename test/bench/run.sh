#!/usr/bin/env bash
# test/bench/run.sh - pg_dualwrite benchmark: capture cost and delivery speed.
#
#   sudo bash test/bench/run.sh            (or as root; ~15 minutes with defaults)
#   BENCH_QUICK=1 bash test/bench/run.sh   (~2 minute smoke run, small sizes)
#
# Starts two throwaway clusters on free loopback ports in a postgres-owned
# temp dir (LEGACY with shared_preload_libraries = 'pg_dualwrite' and
# wal_level = logical, MODERN plain), runs
#   1. capture: pgbench throughput for single-row INSERTs and a 60/20/20
#      UPDATE/INSERT/DELETE mix on a 100k-row table, with synchronous_commit
#      off and on, for: no trigger / a PL/pgSQL outbox trigger / pg_dualwrite;
#      variants interleaved round-robin, medians, ratio to "no trigger";
#   2. delivery (a) backlog drain: N changes captured while MODERN is down,
#      drain rate from the first arrival, next to a piped COPY legacy->modern;
#   3. delivery (b) continuous: N rows in 1,000-row transactions, seconds
#      until all are on MODERN, next to native logical replication;
# prints a table and writes it to test/bench/results/latest.txt (git-ignored)
# together with details, perf profiles and the server logs.
# Only the clusters this script started are stopped on exit.  The installed
# pg_dualwrite build is used (BENCH_BUILD=1 runs make && make install first).
# See test/bench/README.md for what each number means and all the knobs.

set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/cluster.sh
. "$ROOT/test/lib/cluster.sh"
pgdw_fixed_locale   # C.UTF-8 whatever the caller's environment (TOOLCHAIN P22)

# ------------------------------------------------------------------ knobs
if [[ -n ${BENCH_QUICK:-} && ${BENCH_QUICK} != 0 ]]; then
	: "${BENCH_SECONDS:=3}" "${BENCH_ROUNDS:=1}" "${BENCH_DRAIN_ROWS:=100000}"
	: "${BENCH_CONT_ROWS:=100000}" "${BENCH_PERF_SECONDS:=2}"
fi
SECS=${BENCH_SECONDS:-10}
ROUNDS=${BENCH_ROUNDS:-3}
CLIENTS=${BENCH_CLIENTS:-4}
THREADS=${BENCH_THREADS:-2}
MIX_ROWS=${BENCH_MIX_ROWS:-100000}
SYNC_MODES=${BENCH_SYNC_MODES:-"off on"}
WORKLOADS=${BENCH_WORKLOADS:-"insert mix"}
CAPTURE_DELIVERY=${BENCH_CAPTURE_DELIVERY:-concurrent}   # or: paused
DRAIN_ROWS=${BENCH_DRAIN_ROWS:-1000000}
DRAIN_TXNS=${BENCH_DRAIN_TXNS:-10}
CONT_ROWS=${BENCH_CONT_ROWS:-1000000}
CONT_TXN_ROWS=${BENCH_CONT_TXN_ROWS:-1000}
CONT_CLIENTS=${BENCH_CONT_CLIENTS:-1}
PERF_SECONDS=${BENCH_PERF_SECONDS:-5}
TIMEOUT=${BENCH_DELIVERY_TIMEOUT:-600s}   # give up waiting for a delivery after this
if [[ -z ${BENCH_PERF:-} ]]; then
	if pgdw_is_root && command -v perf >/dev/null 2>&1; then BENCH_PERF=1; else BENCH_PERF=0; fi
fi
RESULTS=${BENCH_RESULTS_DIR:-$HERE/results}
VARIANTS=(none plpgsql dualwrite)
declare -A VLABEL=([none]="no trigger" [plpgsql]="plpgsql outbox" [dualwrite]="pg_dualwrite")
declare -A VDB=([none]=bench_none [plpgsql]=bench_plpgsql [dualwrite]=bench_dw)

export PGTZ=UTC PGDATESTYLE=ISO,YMD   # same text output on both sides

BENCH_TAG=bench
# shellcheck source=lib.sh
. "$HERE/lib.sh"
now() { printf '%s\n' "$EPOCHREALTIME"; }

for v in DRAIN_ROWS DRAIN_TXNS CONT_ROWS CONT_TXN_ROWS CONT_CLIENTS; do
	[[ ${!v} =~ ^[0-9]+$ && ${!v} -gt 0 ]] || die "$v must be a positive integer"
done
(( DRAIN_ROWS % DRAIN_TXNS == 0 )) || die "BENCH_DRAIN_ROWS must be a multiple of BENCH_DRAIN_TXNS"
(( CONT_ROWS % (CONT_TXN_ROWS * CONT_CLIENTS) == 0 )) ||
	die "BENCH_CONT_ROWS must be a multiple of BENCH_CONT_TXN_ROWS * BENCH_CONT_CLIENTS"
[[ $CAPTURE_DELIVERY == concurrent || $CAPTURE_DELIVERY == paused ]] ||
	die "BENCH_CAPTURE_DELIVERY must be concurrent or paused"

# ------------------------------------------------------------------ set-up
bench_require_build

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
bench_on_exit() { [[ -n ${POLL_PID:-} ]] && kill "$POLL_PID" 2>/dev/null; }
bench_setup pg_dualwrite-bench ""
pgdw_cluster_init "$LEGACY" "${BENCH_COMMON_CONF[@]}" "shared_preload_libraries = 'pg_dualwrite'" \
	"wal_level = logical" "dualwrite.retry_backoff_max = 5000"
pgdw_cluster_init "$MODERN" "${BENCH_COMMON_CONF[@]}"
pgdw_cluster_start "$LEGACY"
pgdw_cluster_start "$MODERN"
LPORT=$(pgdw_port "$LEGACY")
MPORT=$(pgdw_port "$MODERN")
say "legacy on 127.0.0.1:$LPORT (pg_dualwrite preloaded), modern on 127.0.0.1:$MPORT"

lsql() { local db=$1; shift; pgdw_psql "$LEGACY" "$db" "$@"; }
msql() { local db=$1; shift; pgdw_psql "$MODERN" "$db" "$@"; }
lval() { local db=$1; shift; pgdw_psql "$LEGACY" "$db" -At "$@"; }
mval() { local db=$1; shift; pgdw_psql "$MODERN" "$db" -At "$@"; }

# One table shape for everything: a typical narrow OLTP row.
table_ddl() {   # table_ddl NAME legacy|modern
	local idtype="bigserial"; [[ $2 == modern ]] && idtype="bigint"
	printf 'CREATE TABLE public.%s (id %s PRIMARY KEY, customer int NOT NULL, amount numeric(12,2) NOT NULL,
	status text NOT NULL, note text, updated_at timestamptz NOT NULL DEFAULT now());\n' "$1" "$idtype"
}
dw_setup_sql() {   # dw_setup_sql MODERN_DB: extension + server + mapping
	cat <<SQL
CREATE EXTENSION pg_dualwrite;
CREATE SERVER modern FOREIGN DATA WRAPPER dualwrite OPTIONS (host '127.0.0.1', port '$MPORT', dbname '$1');
CREATE USER MAPPING FOR PUBLIC SERVER modern OPTIONS (user 'postgres');
SQL
}

say "creating databases and tables"
for db in bench_none bench_plpgsql bench_dw bench_delivery; do lsql postgres -c "CREATE DATABASE $db"; done
for db in modern_capture modern_delivery; do msql postgres -c "CREATE DATABASE $db"; done
for db in bench_none bench_plpgsql bench_dw; do
	lsql "$db" -c "$(table_ddl ins legacy) $(table_ddl mix legacy)"
done
msql modern_capture -c "$(table_ddl ins modern) $(table_ddl mix modern)"
# The typical hand-written outbox: bigserial key, to_jsonb of the row.
lsql bench_plpgsql <<'SQL'
CREATE TABLE outbox (id bigserial PRIMARY KEY, table_name text NOT NULL, op text NOT NULL,
                     row_data jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION outbox_capture() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO outbox (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(OLD));
    ELSE
        INSERT INTO outbox (table_name, op, row_data) VALUES (TG_TABLE_NAME, TG_OP, to_jsonb(NEW));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_capture AFTER INSERT OR UPDATE OR DELETE ON ins FOR EACH ROW EXECUTE FUNCTION outbox_capture();
CREATE TRIGGER outbox_capture AFTER INSERT OR UPDATE OR DELETE ON mix FOR EACH ROW EXECUTE FUNCTION outbox_capture();
SQL
{ dw_setup_sql modern_capture; echo "SELECT dualwrite.enable('public.ins', target_server => 'modern');
SELECT dualwrite.enable('public.mix', target_server => 'modern');"; } | lsql bench_dw >/dev/null

# Delivery: drain + continuous tables in their own database pair.
lsql bench_delivery -c "$(table_ddl drain legacy) $(table_ddl drain_plain legacy) $(table_ddl cont_dw legacy) $(table_ddl cont_lr legacy) $(table_ddl cont_plain legacy)"
msql modern_delivery -c "$(table_ddl drain modern) $(table_ddl drain_copy modern) $(table_ddl cont_dw modern) $(table_ddl cont_lr modern)"
{ dw_setup_sql modern_delivery; echo "SELECT dualwrite.enable('public.drain', target_server => 'modern');
SELECT dualwrite.enable('public.cont_dw', target_server => 'modern');
CREATE PUBLICATION bench_pub FOR TABLE cont_lr;"; } | lsql bench_delivery >/dev/null
# Each database with the extension must have its delivery worker.  Known
# launcher issue: a CREATE EXTENSION in a second database less than 5 s after
# the first one can be lost (the launcher skips the database inside its
# restart delay and then never rescans it), so wake the launcher until the
# worker shows up, and record it when that was needed.
ensure_worker() {   # ensure_worker DB
	local i pid
	for ((i = 0; i < 150; i++)); do
		pid=$(lval "$1" -c "SELECT pid FROM dualwrite.workers WHERE datname = current_database() AND pid IS NOT NULL")
		if [[ -n $pid ]]; then
			(( i >= 10 )) && CHECKS+=("launcher: the worker of $1 appeared only after $((i / 10)) s and dualwrite._wake() calls")
			return 0
		fi
		(( i >= 10 && i % 10 == 0 )) && lval "$1" -c "SELECT dualwrite._wake()" >/dev/null
		sleep 0.1
	done
	lsql "$1" -c "SELECT * FROM dualwrite.workers" >&2 || true
	pgdw_server_log_tail "$LEGACY" >&2
	die "no pg_dualwrite worker for database $1 after 15 s"
}
CHECKS=()
ensure_worker bench_dw
ensure_worker bench_delivery

# Pollers on MODERN (server-side loops: no process spawned per poll, cheap
# index probes; each statement in a PL/pgSQL loop sees a fresh snapshot).
msql modern_delivery <<'SQL'
-- wait until the table has a row; returns "epoch|rows at that moment"
CREATE FUNCTION bench_wait_first(tbl regclass, timeout interval, poll float8 DEFAULT 0.01) RETURNS text LANGUAGE plpgsql AS $$
DECLARE found bool; c bigint; deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    LOOP
        IF clock_timestamp() > deadline THEN RAISE EXCEPTION 'bench: no row in % after %', tbl, timeout; END IF;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', tbl) INTO found;
        IF found THEN
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO c;
            RETURN extract(epoch FROM clock_timestamp())::text || '|' || c;
        END IF;
        PERFORM pg_sleep(poll);
    END LOOP;
END $$;
-- wait until max(id) >= n and count(*) >= n; returns the epoch
CREATE FUNCTION bench_wait_all(tbl regclass, n bigint, timeout interval, poll float8 DEFAULT 0.05) RETURNS text LANGUAGE plpgsql AS $$
DECLARE m bigint; c bigint; deadline timestamptz := clock_timestamp() + timeout;
BEGIN
    LOOP
        IF clock_timestamp() > deadline THEN
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO c;
            RAISE EXCEPTION 'bench: only % of % rows in % after %', c, n, tbl, timeout;
        END IF;
        EXECUTE format('SELECT max(id) FROM %s', tbl) INTO m;
        IF m >= n THEN
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO c;
            IF c >= n THEN RETURN extract(epoch FROM clock_timestamp())::text; END IF;
        END IF;
        PERFORM pg_sleep(poll);
    END LOOP;
END $$;
SQL

# pgbench scripts
W=$TMP/workload
pgdw_as_pg mkdir -p "$W"
pgdw_as_pg sh -c 'cat > "$1"' sh "$W/insert.sql" <<'SQL'
\set c random(1, 100000)
INSERT INTO ins (customer, amount, status, note) VALUES (:c, :c * 0.01, 'new', 'order note ' || :c);
SQL
pgdw_as_pg sh -c 'cat > "$1"' sh "$W/mix_update.sql" <<SQL
\set id random(1, $MIX_ROWS)
UPDATE mix SET amount = amount + 1, status = 'updated', updated_at = now() WHERE id = :id;
SQL
pgdw_as_pg sh -c 'cat > "$1"' sh "$W/mix_insert.sql" <<SQL
\set id random(1, $MIX_ROWS)
INSERT INTO mix (id, customer, amount, status, note) VALUES (:id, :id, :id * 0.01, 'new', 'order note ' || :id)
    ON CONFLICT (id) DO NOTHING;
SQL
pgdw_as_pg sh -c 'cat > "$1"' sh "$W/mix_delete.sql" <<SQL
\set id random(1, $MIX_ROWS)
DELETE FROM mix WHERE id = :id;
SQL
for t in cont_dw cont_lr cont_plain; do
	pgdw_as_pg sh -c 'cat > "$1"' sh "$W/$t.sql" <<SQL
INSERT INTO $t (customer, amount, status, note)
SELECT g % 100000, (g % 100000) * 0.01, 'new', 'order note ' || g FROM generate_series(1, $CONT_TXN_ROWS) g;
SQL
done

# pgbench against LEGACY; prints the tps (without initial connection time).
run_pgbench() {   # run_pgbench DB SYNC LOGFILE PGBENCH_ARGS...
	local db=$1 sc=$2 log=$3; shift 3
	if ! pgdw_as_pg env PGOPTIONS="-c synchronous_commit=$sc" "$PGDW_BINDIR/pgbench" -n \
		-h "$LEGACY" -p "$LPORT" -U postgres "$@" "$db" >"$log" 2>&1; then
		cat "$log" >&2
		pgdw_server_log_tail "$LEGACY" >&2
		die "pgbench failed on $db"
	fi
	if grep -q '^number of failed transactions: [1-9]' "$log"; then
		grep '^number of failed' "$log" >&2
		die "pgbench reported failed transactions on $db"
	fi
	sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' "$log"
}

dw_wait() {   # dw_wait DB [TIMEOUT]: every captured change of DB applied on MODERN
	local ok
	ok=$(lval "$1" -c "SELECT dualwrite.wait_for_delivery('${2:-300s}')")
	if [[ $ok != t ]]; then
		lsql "$1" -c "SELECT * FROM dualwrite.status" -c "SELECT * FROM dualwrite.workers" >&2 || true
		pgdw_server_log_tail "$LEGACY" 60 >&2
		die "pg_dualwrite did not deliver the backlog of $1 within ${2:-300s}"
	fi
}

delivery_failed() {   # delivery_failed DB TABLE: report and stop
	echo "---- delivery of $2 did not complete; pg_dualwrite state in $1:" >&2
	lsql "$1" -c "SELECT * FROM dualwrite.status" -c "SELECT * FROM dualwrite.workers" >&2 || true
	pgdw_server_log_tail "$LEGACY" 60 >&2
	die "delivery of $2 did not complete within $TIMEOUT"
}

modern_up() { pgdw_cluster_start "$MODERN"; }
modern_down() { pgdw_cluster_stop "$MODERN" fast; }

# Make one capture run comparable to every other: no pg_dualwrite backlog
# anywhere, the workload's table freshly truncated (mix: reloaded with
# MIX_ROWS rows and vacuumed), outbox emptied, a checkpoint just taken.
reset_for_run() {   # reset_for_run VARIANT WORKLOAD
	local v=$1 wl=$2 db=${VDB[$1]} tbl
	tbl=$([[ $wl == insert ]] && echo ins || echo mix)
	dw_wait bench_dw
	if [[ $v == dualwrite ]]; then msql modern_capture -c "TRUNCATE $tbl"; fi
	lsql "$db" -c "TRUNCATE $tbl RESTART IDENTITY"
	if [[ $wl == mix ]]; then
		lsql "$db" -c "INSERT INTO mix (id, customer, amount, status, note)
			SELECT g, g, g * 0.01, 'new', 'order note ' || g FROM generate_series(1, $MIX_ROWS) g"
	fi
	if [[ $v == plpgsql ]]; then lsql "$db" -c "TRUNCATE outbox RESTART IDENTITY"; fi
	if [[ $v == dualwrite ]]; then dw_wait "$db"; fi
	lsql "$db" -c "VACUUM ANALYZE $tbl"
	if [[ $v == plpgsql ]]; then lsql "$db" -c "VACUUM ANALYZE outbox"; fi
	lsql postgres -c "CHECKPOINT"
}

RESULTS_TXT=$TMP/latest.txt
DETAILS=$TMP/details.txt
: >"$DETAILS"

# ------------------------------------------------------------------ 1. capture
declare -A TPS   # TPS[wl,sc,variant] = "tps tps tps"
capture_bench() {
	local wl sc r i v k order tps args
	local total=0 n=0
	for wl in $WORKLOADS; do for sc in $SYNC_MODES; do total=$((total + ROUNDS * 3)); done; done
	for wl in $WORKLOADS; do
		if [[ $wl == insert ]]; then
			args=(-f "$W/insert.sql")
		elif [[ $wl == mix ]]; then
			args=(-f "$W/mix_update.sql@60" -f "$W/mix_insert.sql@20" -f "$W/mix_delete.sql@20")
		else
			die "unknown workload $wl (BENCH_WORKLOADS: insert mix)"
		fi
		for sc in $SYNC_MODES; do
			for ((r = 0; r < ROUNDS; r++)); do
				# round-robin, starting with a different variant each round
				for ((i = 0; i < 3; i++)); do
					v=${VARIANTS[$(((r + i) % 3))]}
					n=$((n + 1))
					reset_for_run "$v" "$wl"
					[[ $v == dualwrite && $CAPTURE_DELIVERY == paused ]] && modern_down
					tps=$(run_pgbench "${VDB[$v]}" "$sc" "$TMP/pgbench.log" \
						-c "$CLIENTS" -j "$THREADS" -T "$SECS" "${args[@]}")
					[[ $v == dualwrite && $CAPTURE_DELIVERY == paused ]] && modern_up
					[[ -n $tps ]] || { cat "$TMP/pgbench.log" >&2; die "no tps in pgbench output"; }
					k="$wl,$sc,$v"
					TPS[$k]="${TPS[$k]:-} $tps"
					say "capture [$n/$total] $wl sync_commit=$sc round $((r + 1)) ${VLABEL[$v]}: $(fmt '%.0f' "$tps") tps"
					printf 'capture %s sync_commit=%s round=%d variant=%s tps=%s\n' \
						"$wl" "$sc" "$((r + 1))" "$v" "$tps" >>"$DETAILS"
				done
			done
		done
	done
	dw_wait bench_dw
	# the pg_dualwrite tables must be identical on both sides
	local t lsum msum
	for t in ins mix; do
		lsum=$(lval bench_dw -c "SELECT count(*), sum(hashtext(x::text)) FROM $t x")
		msum=$(mval modern_capture -c "SELECT count(*), sum(hashtext(x::text)) FROM $t x")
		if [[ $lsum == "$msum" ]]; then
			CHECKS+=("capture table $t: legacy and modern identical (count|hash $lsum)")
		else
			CHECKS+=("MISMATCH capture table $t: legacy $lsum, modern $msum")
		fi
	done
}

# ------------------------------------------------------------------ 2. drain
# One backlog pass: stop MODERN, capture DRAIN_ROWS rows in DRAIN_TXNS
# transactions, start MODERN, time the drain from the first arrival.
# With PERF=1 the worker and its MODERN backend are profiled instead
# (the numbers of that pass are perturbed and only reported as such).
drain_pass() {   # drain_pass PERF(0|1) -> sets D_CAPTURE_S D_FIRST_ROWS D_RATE D_WALL_S
	local perf=$1 per=$((DRAIN_ROWS / DRAIN_TXNS)) t0 t1 tup first out tend sql="" i
	dw_wait bench_delivery
	msql modern_delivery -c "TRUNCATE drain"
	lsql bench_delivery -c "TRUNCATE drain RESTART IDENTITY"
	lsql postgres -c "CHECKPOINT"
	msql postgres -c "CHECKPOINT"
	modern_down
	for ((i = 0; i < DRAIN_TXNS; i++)); do
		sql+="INSERT INTO drain (customer, amount, status, note) SELECT g % 100000, (g % 100000) * 0.01, 'new', 'order note ' || g FROM generate_series(1, $per) g;"$'\n'
	done
	t0=$(now)
	lsql bench_delivery <<<"$sql"
	t1=$(now)
	D_CAPTURE_S=$(calc "$t1 - $t0")
	if [[ $perf == 0 ]]; then   # the same inserts into a table without capture, for reference
		lsql bench_delivery -c "TRUNCATE drain_plain RESTART IDENTITY" -c "CHECKPOINT"
		t0=$(now)
		lsql bench_delivery <<<"${sql//INSERT INTO drain /INSERT INTO drain_plain }"
		t1=$(now)
		D_PLAIN_S=$(calc "$t1 - $t0")
		lsql bench_delivery -c "TRUNCATE drain_plain"
	fi
	lsql postgres -c "CHECKPOINT"
	modern_up
	tup=$(now)
	if [[ $perf == 1 ]]; then
		perf_profile
	fi
	out=$(mval modern_delivery -c "SELECT bench_wait_first('drain', '$TIMEOUT')") || delivery_failed bench_delivery drain
	first=${out%%|*}
	D_FIRST_ROWS=${out#*|}   # rows already there at the first arrival (about one batch)
	tend=$(mval modern_delivery -c "SELECT bench_wait_all('drain', $DRAIN_ROWS, '$TIMEOUT')") || delivery_failed bench_delivery drain
	wait   # the perf recorders, if any
	D_RATE=$(calc "($DRAIN_ROWS - $D_FIRST_ROWS) / ($tend - $first)")
	D_WALL_S=$(calc "$tend - $tup")
	D_DRAIN_S=$(calc "$tend - $first")
	D_WAIT_S=$(calc "$first - $tup")
}

# perf record the LEGACY delivery worker and the MODERN backend it feeds.
perf_profile() {
	local wpid="" mpid="" i
	wpid=$(lval bench_delivery -c "SELECT pid FROM dualwrite.workers WHERE datname = 'bench_delivery'")
	for ((i = 0; i < 1500; i++)); do   # up to ~30 s: the worker reconnects after its backoff
		mpid=$(mval postgres -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dualwrite'
			AND datname = 'modern_delivery' LIMIT 1")
		[[ -n $mpid ]] && break
		sleep 0.02
	done
	if [[ -z $wpid || -z $mpid ]]; then
		CHECKS+=("perf: could not find the worker ($wpid) or its modern backend ($mpid)")
		return 0
	fi
	PERF_NOTE="worker pid $wpid (legacy), modern backend pid $mpid, ${PERF_SECONDS}s from the worker's connect"
	perf record -F 999 -g -p "$wpid" -o "$TMP/perf-worker.data" -- sleep "$PERF_SECONDS" >"$TMP/perf-worker.log" 2>&1 &
	perf record -F 999 -g -p "$mpid" -o "$TMP/perf-modern.data" -- sleep "$PERF_SECONDS" >"$TMP/perf-modern.log" 2>&1 &
}

perf_reports() {
	local w
	for w in worker modern; do
		[[ -s $TMP/perf-$w.data ]] || { cat "$TMP/perf-$w.log" >>"$RESULTS/perf-$w.txt" 2>/dev/null; continue; }
		{
			echo "# $PERF_NOTE"
			perf script -i "$TMP/perf-$w.data" -F tid 2>/dev/null | wc -l |
				awk -v s="$PERF_SECONDS" '{ printf "# on-CPU share of the process while profiled: %.0f%% of one core (%d samples at 999 Hz over %s s)\n", 100 * $1 / (999 * s), $1, s }'
			echo "# flat profile (self time), perf report --no-children --sort dso,sym"
			perf report -i "$TMP/perf-$w.data" --stdio --no-children -g none --sort dso,sym \
				--percent-limit 0.5 2>/dev/null | grep -v '^$'
			echo
			echo "# inclusive (children) time, perf report --children --sort sym"
			perf report -i "$TMP/perf-$w.data" --stdio --children -g none --sort sym \
				--percent-limit 2 2>/dev/null | grep -v '^$'
			echo
			echo "# call graph (callee order, >= 2%)"
			perf report -i "$TMP/perf-$w.data" --stdio --no-children -g graph,2,callee \
				--percent-limit 2 2>/dev/null | head -300
		} >"$RESULTS/perf-$w.txt"
	done
}

drain_bench() {
	say "drain: capturing $DRAIN_ROWS rows in $DRAIN_TXNS transactions with modern stopped"
	drain_pass 0
	DR_CAPTURE_S=$D_CAPTURE_S DR_RATE=$D_RATE DR_WALL_S=$D_WALL_S DR_DRAIN_S=$D_DRAIN_S
	DR_WAIT_S=$D_WAIT_S DR_FIRST=$D_FIRST_ROWS DR_PLAIN_S=$D_PLAIN_S
	say "drain: captured in $(fmt '%.2f' "$DR_CAPTURE_S") s; first arrival $(fmt '%.2f' "$DR_WAIT_S") s after modern start; drained $(fmt '%.0f' "$DR_RATE") rows/s"
	local lsum msum
	dw_wait bench_delivery
	lsum=$(lval bench_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM drain x")
	msum=$(mval modern_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM drain x")
	if [[ $lsum == "$msum" ]]; then CHECKS+=("drain table: legacy and modern identical (count|hash $lsum)")
	else CHECKS+=("MISMATCH drain table: legacy $lsum, modern $msum"); fi

	say "drain: piped COPY of the same rows legacy -> modern"
	msql modern_delivery -c "TRUNCATE drain_copy"
	msql postgres -c "CHECKPOINT"
	local t0 t1 st
	t0=$(now)
	pgdw_as_pg "$PGDW_BINDIR/psql" -X -q -h "$LEGACY" -p "$LPORT" -U postgres -d bench_delivery \
		-c "COPY (SELECT * FROM drain) TO STDOUT" |
		pgdw_as_pg "$PGDW_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$MODERN" -p "$MPORT" -U postgres \
			-d modern_delivery -c "COPY drain_copy FROM STDIN"
	st=("${PIPESTATUS[@]}")
	t1=$(now)
	[[ ${st[0]} == 0 && ${st[1]} == 0 ]] || die "piped COPY failed (${st[*]})"
	COPY_S=$(calc "$t1 - $t0")
	COPY_RATE=$(calc "$DRAIN_ROWS / $COPY_S")
	msum=$(mval modern_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM drain_copy x")
	[[ $lsum == "$msum" ]] || CHECKS+=("MISMATCH piped COPY: legacy $lsum, modern $msum")
	say "drain: piped COPY $(fmt '%.2f' "$COPY_S") s = $(fmt '%.0f' "$COPY_RATE") rows/s"
	printf 'drain capture_s=%s plain_insert_s=%s wait_first_s=%s first_rows=%s drain_s=%s rate=%s wall_from_modern_start_s=%s copy_s=%s copy_rate=%s\n' \
		"$DR_CAPTURE_S" "$DR_PLAIN_S" "$DR_WAIT_S" "$DR_FIRST" "$DR_DRAIN_S" "$DR_RATE" "$DR_WALL_S" "$COPY_S" "$COPY_RATE" >>"$DETAILS"

	if [[ $BENCH_PERF == 1 ]]; then
		say "drain: second (untimed) pass with perf on the worker and the modern backend"
		drain_pass 1
		PERF_RATE=$D_RATE
		perf_reports
		say "drain: perf pass drained $(fmt '%.0f' "$PERF_RATE") rows/s (perturbed by perf)"
		printf 'drain_perf_pass rate=%s\n' "$PERF_RATE" >>"$DETAILS"
	fi
}

# ------------------------------------------------------------------ 3. continuous
cont_pass() {   # cont_pass TABLE -> CT_TOTAL_S CT_WRITE_S
	local t=$1 t0 t1 tend per_client=$((CONT_ROWS / CONT_TXN_ROWS / CONT_CLIENTS))
	# poller first (an index probe every 50 ms), then the writer
	mval modern_delivery -c "SELECT bench_wait_all('$t', $CONT_ROWS, '$TIMEOUT')" >"$TMP/poll.out" &
	POLL_PID=$!
	sleep 0.3
	t0=$(now)
	run_pgbench bench_delivery on "$TMP/pgbench-$t.log" -c "$CONT_CLIENTS" -j "$CONT_CLIENTS" \
		-t "$per_client" -f "$W/$t.sql" >/dev/null
	t1=$(now)
	wait "$POLL_PID" || delivery_failed bench_delivery "$t"
	POLL_PID=""
	tend=$(cat "$TMP/poll.out")
	CT_WRITE_S=$(calc "$t1 - $t0")
	CT_TOTAL_S=$(calc "$tend - $t0")
	CT_LAG_S=$(calc "$tend - $t1")   # after the last commit
}

# The same writes into a table that nothing replicates (no trigger, no
# publication): the bound for end to end on these shared cores.
plain_pass() {   # -> CP_WRITE_S
	local t0 t1 per_client=$((CONT_ROWS / CONT_TXN_ROWS / CONT_CLIENTS))
	lsql bench_delivery -c "TRUNCATE cont_plain RESTART IDENTITY" -c "CHECKPOINT"
	t0=$(now)
	run_pgbench bench_delivery on "$TMP/pgbench-cont_plain.log" -c "$CONT_CLIENTS" -j "$CONT_CLIENTS" \
		-t "$per_client" -f "$W/cont_plain.sql" >/dev/null
	t1=$(now)
	CP_WRITE_S=$(calc "$t1 - $t0")
	lsql bench_delivery -c "TRUNCATE cont_plain"
}

cont_bench() {
	local lsum msum
	dw_wait bench_delivery
	lsql bench_delivery -c "TRUNCATE cont_dw RESTART IDENTITY" -c "TRUNCATE cont_lr RESTART IDENTITY" -c "CHECKPOINT"
	msql modern_delivery -c "TRUNCATE cont_dw" -c "TRUNCATE cont_lr" -c "CHECKPOINT"
	dw_wait bench_delivery   # the captured TRUNCATE is delivered before the timed run
	say "continuous: the same writes with no replication"
	plain_pass
	say "continuous: no replication, writing took $(fmt '%.2f' "$CP_WRITE_S") s"
	lsql postgres -c "CHECKPOINT"
	say "continuous: pg_dualwrite, $CONT_ROWS rows in $CONT_TXN_ROWS-row transactions ($CONT_CLIENTS client(s))"
	cont_pass cont_dw
	CD_TOTAL_S=$CT_TOTAL_S CD_WRITE_S=$CT_WRITE_S CD_LAG_S=$CT_LAG_S
	say "continuous: pg_dualwrite all on modern after $(fmt '%.2f' "$CD_TOTAL_S") s (writing took $(fmt '%.2f' "$CD_WRITE_S") s)"
	dw_wait bench_delivery
	lsum=$(lval bench_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM cont_dw x")
	msum=$(mval modern_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM cont_dw x")
	if [[ $lsum == "$msum" ]]; then CHECKS+=("continuous table cont_dw: legacy and modern identical (count|hash $lsum)")
	else CHECKS+=("MISMATCH continuous cont_dw: legacy $lsum, modern $msum"); fi

	say "continuous: native logical replication of the same workload"
	lsql postgres -c "CHECKPOINT"
	msql modern_delivery -c "CHECKPOINT" -c "CREATE SUBSCRIPTION bench_sub
		CONNECTION 'host=127.0.0.1 port=$LPORT dbname=bench_delivery user=postgres'
		PUBLICATION bench_pub WITH (copy_data = false)" 2>&1 | grep -v 'created replication slot' || true
	local i ok=""
	for ((i = 0; i < 300; i++)); do
		ok=$(lval postgres -c "SELECT 1 FROM pg_stat_replication WHERE application_name = 'bench_sub' AND state = 'streaming'")
		[[ $ok == 1 ]] && break
		sleep 0.1
	done
	[[ $ok == 1 ]] || die "the logical replication subscription did not start streaming"
	cont_pass cont_lr
	CL_TOTAL_S=$CT_TOTAL_S CL_WRITE_S=$CT_WRITE_S CL_LAG_S=$CT_LAG_S
	say "continuous: logical replication all on modern after $(fmt '%.2f' "$CL_TOTAL_S") s (writing took $(fmt '%.2f' "$CL_WRITE_S") s)"
	lsum=$(lval bench_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM cont_lr x")
	msum=$(mval modern_delivery -c "SELECT count(*), sum(hashtext(x::text)) FROM cont_lr x")
	[[ $lsum == "$msum" ]] || CHECKS+=("MISMATCH logical replication cont_lr: legacy $lsum, modern $msum")
	msql modern_delivery -c "DROP SUBSCRIPTION bench_sub"
	printf 'continuous plain_write_s=%s dw_total_s=%s dw_write_s=%s dw_lag_s=%s lr_total_s=%s lr_write_s=%s lr_lag_s=%s\n' \
		"$CP_WRITE_S" "$CD_TOTAL_S" "$CD_WRITE_S" "$CD_LAG_S" "$CL_TOTAL_S" "$CL_WRITE_S" "$CL_LAG_S" >>"$DETAILS"
}

# ------------------------------------------------------------------ run
PERF_NOTE=""
[[ -n ${BENCH_SKIP_CAPTURE:-} ]] || capture_bench
if [[ -z ${BENCH_SKIP_DELIVERY:-} ]]; then
	drain_bench
	cont_bench
fi

# ------------------------------------------------------------------ report
report() {
	local wl sc v med base r
	echo "pg_dualwrite benchmark  $(date -u '+%Y-%m-%d %H:%M UTC')  $(nproc) cores, PostgreSQL $("$PGDW_BINDIR/postgres" -V | awk '{print $3}'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
	echo "settings: fsync=on shared_buffers=1GB max_wal_size=4GB checkpoint_timeout=30min; legacy wal_level=logical;"
	echo "          dualwrite.batch_size=10000 naptime=100ms (defaults), retry_backoff_max=5000ms"
	echo "load average (1/5/15 min) at start: $LOAD_START, at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the cores)"
	if [[ -z ${BENCH_SKIP_CAPTURE:-} ]]; then
		echo
		printf '%-46s' "capture (pgbench $CLIENTS clients, ${SECS}s, median of $ROUNDS)"
		for sc in $SYNC_MODES; do printf '%-24s' "sync_commit=$sc"; done; echo
		printf '%-46s' ""; for sc in $SYNC_MODES; do printf '%-24s' "   TPS     ratio"; done; echo
		for wl in $WORKLOADS; do
			for v in "${VARIANTS[@]}"; do
				if [[ $v == none ]]; then
					printf '  %-8s%-36s' "$([[ $wl == insert ]] && echo insert || echo mix)" "${VLABEL[$v]}"
				else
					printf '  %-8s%-36s' "" "${VLABEL[$v]}"
				fi
				for sc in $SYNC_MODES; do
					# shellcheck disable=SC2086
					med=$(median ${TPS[$wl,$sc,$v]})
					# shellcheck disable=SC2086
					base=$(median ${TPS[$wl,$sc,none]})
					r=$(calc "$med / $base")
					printf '%8.0f   %6.3f       ' "$med" "$r"
				done
				echo
			done
		done
		echo "  insert = single-row INSERT (bigserial key); mix = 60% UPDATE / 20% INSERT ON CONFLICT DO NOTHING /"
		echo "  20% DELETE by random id on a ${MIX_ROWS}-row table.  pg_dualwrite delivery during the runs: $CAPTURE_DELIVERY"
		if [[ $CAPTURE_DELIVERY == concurrent ]]; then
			echo "  (concurrent = the worker drains to modern while pgbench runs, on the same $(nproc) cores)."
		else
			echo "  (paused = modern is down during each pg_dualwrite run: capture path only; delivered after the run)."
		fi
	fi
	if [[ -z ${BENCH_SKIP_DELIVERY:-} ]]; then
		echo
		echo "delivery"
		printf '  %-22s pg_dualwrite %9.0f rows/s   piped COPY    %9.0f rows/s   ratio %.2fx\n' \
			"backlog drain $(human "$DRAIN_ROWS")" "$DR_RATE" "$COPY_RATE" "$(calc "$DR_RATE / $COPY_RATE")"
		printf '  %-22s pg_dualwrite %7.2f s (%6.0f rows/s)  logical repl %7.2f s (%6.0f rows/s)  ratio %.2fx\n' \
			"continuous $(human "$CONT_ROWS")" "$CD_TOTAL_S" "$(calc "$CONT_ROWS / $CD_TOTAL_S")" \
			"$CL_TOTAL_S" "$(calc "$CONT_ROWS / $CL_TOTAL_S")" "$(calc "$CL_TOTAL_S / $CD_TOTAL_S")"
		printf '  drain: %s rows captured with modern down in %.2f s (%.0f rows/s, %d transactions; the same\n' \
			"$DRAIN_ROWS" "$DR_CAPTURE_S" "$(calc "$DRAIN_ROWS / $DR_CAPTURE_S")" "$DRAIN_TXNS"
		printf '         inserts into a table without capture: %.2f s, throughput kept %.2f); first arrival\n' \
			"$DR_PLAIN_S" "$(calc "$DR_PLAIN_S / $DR_CAPTURE_S")"
		printf '         %.2f s after modern started (retry backoff); then %.2f s for the rest (%s rows were in the\n' \
			"$DR_WAIT_S" "$DR_DRAIN_S" "$DR_FIRST"
		printf '         first arrival, not counted); piped COPY %.2f s in one transaction.\n' "$COPY_S"
		printf '  continuous %-11s no replication %5.2f s   pg_dualwrite %.2fx of it (lag after the last commit %.2f s)   logical repl %.2fx (lag %.2f s)\n' \
			"$(human "$CONT_ROWS")" "$CP_WRITE_S" "$(calc "$CD_TOTAL_S / $CP_WRITE_S")" "$CD_LAG_S" \
			"$(calc "$CL_TOTAL_S / $CP_WRITE_S")" "$CL_LAG_S"
		printf '  continuous: the writing itself took %.2f s (pg_dualwrite table) / %.2f s (published table) / %.2f s (no replication), %d client(s),\n' \
			"$CD_WRITE_S" "$CL_WRITE_S" "$CP_WRITE_S" "$CONT_CLIENTS"
		echo "         synchronous_commit=on; times run from the start of writing until the last row is on modern."
		[[ -n ${PERF_RATE:-} ]] && printf '  perf pass (untimed, perturbed): drain %.0f rows/s; profiles in %s/perf-*.txt\n' "$PERF_RATE" "${RESULTS#"$ROOT"/}"
	fi
	echo
	echo "checks"
	local c
	for c in "${CHECKS[@]}"; do echo "  $c"; done
	local nerr
	nerr=$(grep -cE ' (ERROR|FATAL|PANIC|WARNING): ' "$LEGACY/server.log" || true)
	echo "  legacy server log: $nerr ERROR/FATAL/PANIC/WARNING lines (modern is stopped on purpose during the drain test$([[ $CAPTURE_DELIVERY == paused ]] && echo ' and the paused capture runs'))"
	grep -E ' (ERROR|FATAL|PANIC|WARNING): ' "$LEGACY/server.log" | sed -E 's/^[0-9-]+ [0-9:.]+ [A-Z]+ \[[0-9]+\] //' |
		sort | uniq -c | sort -rn | head -8 | sed 's/^/    /'
}
human() { awk -v n="$1" 'BEGIN { if (n >= 1000000 && n % 1000000 == 0) printf "%dM", n / 1000000;
	else if (n >= 1000 && n % 1000 == 0) printf "%dk", n / 1000; else printf "%d", n }'; }

report >"$RESULTS_TXT"
{ echo; echo "details (every run)"; sed 's/^/  /' "$DETAILS"; } >>"$RESULTS_TXT"
cp "$RESULTS_TXT" "$RESULTS/latest.txt"
echo
cat "$RESULTS_TXT"
