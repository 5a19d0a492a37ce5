/*
 * test/bench/ship_bench.c - two ways to ship one sync transaction's rows to
 * the modern database, measured from a libpq client (used by sync_ship.sh).
 *
 *   ship_bench CONNINFO STRATEGY SECONDS CLIENTS ROWS_PER_TXN TABLE_ROWS
 *
 * Every transaction is what pg_dualwrite's sync mode sends for a
 * ROWS_PER_TXN-row legacy transaction (src/sync/ship.cpp): one pipeline
 * (one round trip) of BEGIN, the rows, PREPARE TRANSACTION 'gid', then a
 * second round trip for COMMIT PREPARED 'gid' (sync_remote_commit = wait).
 * Only the way the rows travel differs:
 *   rows      one execution of a prepared single-row upsert per row
 *             (INSERT ... VALUES ($1..$6) ON CONFLICT (id) DO UPDATE SET ...,
 *             the statement pg_dualwrite prepares: core::RowUpsertSql)
 *   multirow  one execution of a prepared multi-row upsert of all the rows
 *             (INSERT ... SELECT * FROM unnest($1::bigint[], ...) ON CONFLICT ...)
 * The rows update existing keys of public.ship (TABLE_ROWS rows), in
 * ascending key order, so clients never deadlock.  Each client is a
 * process with its own connection.  Every result is checked (a failed or
 * short statement stops the run with exit status 1).  Prints one line:
 *   txns=N rows=N seconds=S tps=X lat_avg_ms=Y
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
fail(PGconn *conn, const char *what, PGresult *res)
{
	fprintf(stderr, "ship_bench: %s: %s%s\n", what, res ? PQresultErrorMessage(res) : "", PQerrorMessage(conn));
	exit(1);
}

/* Read one query's result (then its NULL terminator) in pipeline mode;
 * returns the affected row count. */
static long
expect(PGconn *conn, const char *what, ExecStatusType want)
{
	PGresult *res = PQgetResult(conn);
	if (res == NULL || PQresultStatus(res) != want)
		fail(conn, what, res);
	long n = atol(PQcmdTuples(res));
	PQclear(res);
	res = PQgetResult(conn);
	if (res != NULL)
		fail(conn, "extra result", res);
	return n;
}

struct Totals {
	long txns, rows;
	double busy_s;
};

static void
client(const char *conninfo, int multirow, double seconds, int nrows, long table_rows, int me, struct Totals *out)
{
	PGconn *conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK)
		fail(conn, "connect", NULL);
	PGresult *res;
	if (multirow)
		res = PQprepare(conn, "up",
		                "INSERT INTO public.ship AS t (id, customer, amount, status, note, updated_at) "
		                "SELECT * FROM unnest($1::bigint[], $2::int[], $3::numeric[], $4::text[], $5::text[], "
		                "$6::timestamptz[]) ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer, "
		                "amount = EXCLUDED.amount, status = EXCLUDED.status, note = EXCLUDED.note, "
		                "updated_at = EXCLUDED.updated_at",
		                6, NULL);
	else
		res = PQprepare(conn, "up",
		                "INSERT INTO public.ship AS t (id, customer, amount, status, note, updated_at) "
		                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET customer = EXCLUDED.customer, "
		                "amount = EXCLUDED.amount, status = EXCLUDED.status, note = EXCLUDED.note, "
		                "updated_at = EXCLUDED.updated_at",
		                6, NULL);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail(conn, "prepare", res);
	PQclear(res);

	srandom(getpid());
	long stride = table_rows / nrows;
	double start = now_s(), end = start + seconds;
	long txns = 0, rows = 0;
	double busy = 0;
	char gid[64], sql[128];
	char vals[6][64];
	/* multirow: the six arrays as text literals */
	size_t cap = (size_t) nrows * 64 + 16;
	char *arr[6];
	for (int c = 0; c < 6; c++)
		arr[c] = malloc(cap);
	while (now_s() < end) {
		double t0 = now_s();
		long base = 1 + random() % stride;
		snprintf(gid, sizeof(gid), "shipbench_%d_%ld", me, txns);
		if (!PQenterPipelineMode(conn))
			fail(conn, "pipeline", NULL);
		if (!PQsendQueryParams(conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
			fail(conn, "send BEGIN", NULL);
		if (multirow) {
			for (int c = 0; c < 6; c++)
				strcpy(arr[c], "{");
		}
		for (int k = 0; k < nrows; k++) {
			long id = base + k * stride;
			snprintf(vals[0], 64, "%ld", id);
			snprintf(vals[1], 64, "%ld", id % 1000);
			snprintf(vals[2], 64, "%ld.%02ld", id / 100 + txns % 1000, id % 100);
			snprintf(vals[3], 64, "shipped");
			snprintf(vals[4], 64, "note %ld", txns);
			snprintf(vals[5], 64, "2026-12-02 12:00:00+00");
			if (multirow) {
				for (int c = 0; c < 6; c++) {
					if (k > 0)
						strcat(arr[c], ",");
					if (c >= 3)
						strcat(arr[c], "\"");
					strcat(arr[c], vals[c]);
					if (c >= 3)
						strcat(arr[c], "\"");
				}
			} else {
				const char *p[6] = {vals[0], vals[1], vals[2], vals[3], vals[4], vals[5]};
				if (!PQsendQueryPrepared(conn, "up", 6, p, NULL, NULL, 0))
					fail(conn, "send row", NULL);
			}
		}
		if (multirow) {
			const char *p[6];
			for (int c = 0; c < 6; c++) {
				strcat(arr[c], "}");
				p[c] = arr[c];
			}
			if (!PQsendQueryPrepared(conn, "up", 6, p, NULL, NULL, 0))
				fail(conn, "send rows", NULL);
		}
		snprintf(sql, sizeof(sql), "PREPARE TRANSACTION '%s'", gid);
		if (!PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0) || !PQpipelineSync(conn))
			fail(conn, "send PREPARE", NULL);
		expect(conn, "BEGIN", PGRES_COMMAND_OK);
		long got = 0;
		for (int s = 0; s < (multirow ? 1 : nrows); s++)
			got += expect(conn, "upsert", PGRES_COMMAND_OK);
		if (got != nrows) {
			fprintf(stderr, "ship_bench: %ld rows upserted, expected %d\n", got, nrows);
			exit(1);
		}
		expect(conn, "PREPARE TRANSACTION", PGRES_COMMAND_OK);
		res = PQgetResult(conn);
		if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC)
			fail(conn, "sync", res);
		PQclear(res);
		if (!PQexitPipelineMode(conn))
			fail(conn, "exit pipeline", NULL);
		snprintf(sql, sizeof(sql), "COMMIT PREPARED '%s'", gid);
		res = PQexec(conn, sql);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			fail(conn, "COMMIT PREPARED", res);
		PQclear(res);
		busy += now_s() - t0;
		txns++;
		rows += got;
	}
	out->txns = txns;
	out->rows = rows;
	out->busy_s = busy;
	PQfinish(conn);
}

int
main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: ship_bench CONNINFO rows|multirow SECONDS CLIENTS ROWS_PER_TXN TABLE_ROWS\n");
		return 2;
	}
	const char *conninfo = argv[1];
	int multirow = strcmp(argv[2], "multirow") == 0;
	if (!multirow && strcmp(argv[2], "rows") != 0) {
		fprintf(stderr, "ship_bench: strategy must be rows or multirow\n");
		return 2;
	}
	double seconds = atof(argv[3]);
	int clients = atoi(argv[4]), nrows = atoi(argv[5]);
	long table_rows = atol(argv[6]);
	if (seconds <= 0 || clients < 1 || nrows < 1 || nrows > 1000 || table_rows < nrows) {
		fprintf(stderr, "ship_bench: bad arguments\n");
		return 2;
	}
	struct Totals *t = mmap(NULL, sizeof(struct Totals) * clients, PROT_READ | PROT_WRITE,
	                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(t, 0, sizeof(struct Totals) * clients);
	double start = now_s();
	for (int i = 0; i < clients; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			client(conninfo, multirow, seconds, nrows, table_rows, i, &t[i]);
			_exit(0);
		}
	}
	int failed = 0, st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
	double wall = now_s() - start;
	if (failed)
		return 1;
	long txns = 0, rows = 0;
	double busy = 0;
	for (int i = 0; i < clients; i++) {
		txns += t[i].txns;
		rows += t[i].rows;
		busy += t[i].busy_s;
	}
	printf("txns=%ld rows=%ld seconds=%.3f tps=%.1f lat_avg_ms=%.3f\n", txns, rows, wall, txns / wall,
	       txns > 0 ? 1000.0 * busy / txns : 0.0);
	return 0;
}
