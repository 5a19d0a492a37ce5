/*-------------------------------------------------------------------------
 * result.hpp
 *    Results of the modern side, checked before they are read.
 *
 * A server is whatever listens at the host and port of a foreign server:
 * a fake or broken one may answer a catalog query with fewer columns, no
 * row, binary values or text where a boolean belongs.  PQgetvalue() on a
 * column a result does not have returns NULL, so every result is checked
 * against the shape its reader expects (status, columns, rows, format)
 * before anything reads it, and every value a reader interprets is checked
 * as it is read.  A mismatch is a clear error naming the server and the
 * query ("server \"x\" returned an unexpected result for ..."), raised after
 * the result is cleared; SQLSTATE 08P01 (protocol violation), so the worker
 * retries with backoff like any other trouble of the connection.
 *
 * Like connection.hpp: these raise PostgreSQL errors; callers hold only
 * trivially destructible locals.
 *
 * IDENTIFICATION  src/remote/result.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::remote {

/* Most rows any result we read may have (our queries return a row per
 * column or per index column of one table at most). */
constexpr int kMaxResultRows = 100000;

/* What a result must look like. */
struct Shape {
	const char *what; /* for messages: "the target table query" */
	int columns;      /* exactly this many, all in text format */
	int min_rows;
	int max_rows; /* at most kMaxResultRows */
};

/* Query() whose result has `shape`; the caller PQclears it. */
PGresult *QueryShaped(PGconn *conn, const char *sql, const Shape &shape);
/* WaitQuery() whose result has `shape` (the query was sent with SendCommand). */
PGresult *WaitQueryShaped(PGconn *conn, const char *sql, const Shape &shape);

/* Check a result (NULL: none) against `shape`; on a mismatch it is cleared
 * and the error raised. */
void CheckShape(PGconn *conn, PGresult *res, const Shape &shape);

/* Checked values of a result that passed CheckShape (row and column in
 * range); on a bad value the result is cleared and the error raised.
 * ValueText(): NULL only if `nullable` (else an error); ValueBool(): 't' or 'f';
 * ValueChar(): one byte; ValueOid(): digits. */
const char *ValueText(PGconn *conn, PGresult *res, int row, int col, const Shape &shape, bool nullable = false);
bool ValueBool(PGconn *conn, PGresult *res, int row, int col, const Shape &shape);
char ValueChar(PGconn *conn, PGresult *res, int row, int col, const Shape &shape);
const char *ValueOid(PGconn *conn, PGresult *res, int row, int col, const Shape &shape);

} // namespace pgdw::remote
