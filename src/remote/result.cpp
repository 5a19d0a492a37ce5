/*-------------------------------------------------------------------------
 * result.cpp
 *    Shape checks of remote results (see result.hpp).
 *
 * Frames here hold only trivially destructible locals and call PostgreSQL
 * directly; a result is always cleared before its error is raised.
 *
 * IDENTIFICATION  src/remote/result.cpp
 *-------------------------------------------------------------------------
 */
#include "remote/result.hpp"

#include "remote/connection.hpp"

namespace pgdw::remote {

[[noreturn]] static void
RaiseUnexpected(PGconn *conn, PGresult *res, const Shape &shape, const char *detail)
{
	if (res != nullptr)
		PQclear(res);
	ereport(ERROR, (errcode(ERRCODE_PROTOCOL_VIOLATION),
	                errmsg("server \"%s\" returned an unexpected result for %s", ServerName(conn), shape.what),
	                errdetail_internal("%s", detail),
	                errhint("Check that the server is the modern PostgreSQL database (host, port).")));
	pg_unreachable();
}

static const char *
RowRange(const Shape &shape)
{
	if (shape.min_rows == shape.max_rows)
		return psprintf("%d row%s", shape.min_rows, shape.min_rows == 1 ? "" : "s");
	return psprintf("%d to %d rows", shape.min_rows, shape.max_rows);
}

void
CheckShape(PGconn *conn, PGresult *res, const Shape &shape)
{
	if (res == nullptr)
		RaiseUnexpected(conn, res, shape, "It returned no result at all.");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		RaiseUnexpected(conn, res, shape,
		                psprintf("Expected rows, got a result of status %s.", PQresStatus(PQresultStatus(res))));
	int columns = PQnfields(res), rows = PQntuples(res);
	int max_rows = Min(shape.max_rows, kMaxResultRows);
	if (columns != shape.columns)
		RaiseUnexpected(conn, res, shape,
		                psprintf("Expected %d column%s, got %d.", shape.columns, shape.columns == 1 ? "" : "s",
		                         columns));
	if (rows < shape.min_rows || rows > max_rows)
		RaiseUnexpected(conn, res, shape,
		                psprintf("Expected %s, got %d.",
		                         RowRange(Shape{shape.what, shape.columns, shape.min_rows, max_rows}), rows));
	for (int c = 0; c < columns; c++)
		if (PQfformat(res, c) != 0)
			RaiseUnexpected(conn, res, shape, psprintf("Column %d is in binary format; text was asked for.", c + 1));
}

PGresult *
QueryShaped(PGconn *conn, const char *sql, const Shape &shape)
{
	PGresult *res = Query(conn, sql);
	CheckShape(conn, res, shape);
	return res;
}

PGresult *
WaitQueryShaped(PGconn *conn, const char *sql, const Shape &shape)
{
	PGresult *res = WaitQuery(conn, sql);
	CheckShape(conn, res, shape);
	return res;
}

const char *
ValueText(PGconn *conn, PGresult *res, int row, int col, const Shape &shape, bool nullable)
{
	if (row < 0 || row >= PQntuples(res) || col < 0 || col >= PQnfields(res))
		RaiseUnexpected(conn, res, shape, psprintf("It has no row %d, column %d.", row + 1, col + 1));
	if (PQgetisnull(res, row, col)) {
		if (nullable)
			return nullptr;
		RaiseUnexpected(conn, res, shape, psprintf("Column %d of row %d is null.", col + 1, row + 1));
	}
	return PQgetvalue(res, row, col);
}

bool
ValueBool(PGconn *conn, PGresult *res, int row, int col, const Shape &shape)
{
	const char *v = ValueText(conn, res, row, col, shape);
	if (strcmp(v, "t") != 0 && strcmp(v, "f") != 0)
		RaiseUnexpected(conn, res, shape,
		                psprintf("Column %d of row %d is not a boolean (\"%.20s\").", col + 1, row + 1, v));
	return v[0] == 't';
}

char
ValueChar(PGconn *conn, PGresult *res, int row, int col, const Shape &shape)
{
	const char *v = ValueText(conn, res, row, col, shape);
	if (strlen(v) != 1)
		RaiseUnexpected(conn, res, shape,
		                psprintf("Column %d of row %d is not a single character (\"%.20s\").", col + 1, row + 1, v));
	return v[0];
}

const char *
ValueOid(PGconn *conn, PGresult *res, int row, int col, const Shape &shape)
{
	const char *v = ValueText(conn, res, row, col, shape);
	size_t len = strlen(v);
	if (len == 0 || len > 10 || strspn(v, "0123456789") != len)
		RaiseUnexpected(conn, res, shape,
		                psprintf("Column %d of row %d is not an OID (\"%.20s\").", col + 1, row + 1, v));
	return v;
}

} // namespace pgdw::remote
