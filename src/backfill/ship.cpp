/*-------------------------------------------------------------------------
 * ship.cpp
 *    The modern side of a backfill run (see ship.hpp).
 *
 * C++ objects (the chunk's COPY text, the statements) live in the
 * file-static `ship`, never on a stack; string building runs inside
 * pg_entry()/pg_string(), PostgreSQL calls outside (boundary.hpp).
 *
 * IDENTIFICATION  src/backfill/ship.cpp
 *-------------------------------------------------------------------------
 */
#include "backfill/ship.hpp"

#include "boundary/boundary.hpp"
#include "config/target_shape.hpp"
#include "core/copy_text.hpp"
#include "outbox/outbox.hpp"
#include "remote/connection.hpp"

extern "C" {
#include "miscadmin.h"
}

#include <string>

namespace pgdw::backfill {

/* Tries of a chunk's upsert that a deadlock or serialization failure
 * against the worker's transaction on the same keys may cost. */
constexpr int kUpsertTries = 5;

struct Ship {
	PGconn *conn = nullptr;
	std::string begin_copy;  /* BEGIN; SAVEPOINT; COPY target FROM STDIN */
	std::string stage_create, stage_copy, upsert;
	std::string rows;        /* the chunk's COPY text (target columns) */
	std::string staged;      /* the same with the staging fields */
	size_t sent = 0;         /* bytes of rows sent so far */
};
static Ship ship;

void
OpenShip(const config::TableConfig *cfg)
{
	CloseShip();
	pg_entry([&] {
		core::TargetShape shape = config::TargetShapeOf(*cfg);
		ship.begin_copy = "BEGIN; SAVEPOINT dw_fast; " + core::DirectCopySql(shape);
		ship.stage_create = core::StageCreateSql(shape);
		ship.stage_copy = core::StageCopySql(shape);
		ship.upsert = core::ApplyUpsertSql(shape);
	});
	PGconn *conn = remote::Connect(cfg->target_server, cfg->deliver_as);
	remote::CloseOnAbort(conn);
	ship.conn = conn;
}

void
CloseShip()
{
	/* After an abort the connection is closed already (CloseOnAbort). */
	if (ship.conn != nullptr && remote::IsOpen(ship.conn))
		remote::Disconnect(ship.conn); /* rolls back an open remote transaction */
	ship.conn = nullptr;
	pg_entry([&] {
		ship.rows.clear();
		ship.rows.shrink_to_fit();
		ship.staged.clear();
		ship.staged.shrink_to_fit();
	});
}

void
BeginShipChunk()
{
	if (ship.conn == nullptr)
		elog(ERROR, "backfill: no connection to the modern side");
	pg_entry([&] { ship.rows.clear(); });
	ship.sent = 0;
	remote::BeginCopy(ship.conn, ship.begin_copy.c_str());
}

void
ShipRow(const Datum *values, const bool *nulls, FmgrInfo *out, int ncolumns)
{
	for (int c = 0; c < ncolumns; c++) {
		if (nulls[c]) {
			pg_entry([&] {
				if (c > 0)
					ship.rows.push_back('\t');
				core::AppendCopyNull(ship.rows);
			});
			continue;
		}
		char *text = OutputFunctionCall(&out[c], values[c]);
		size_t len = strlen(text);
		pg_entry([&] {
			if (c > 0)
				ship.rows.push_back('\t');
			core::AppendCopyField(ship.rows, text, len);
		});
		pfree(text);
	}
	pg_entry([&] { ship.rows.push_back('\n'); });
}

void
ShipPending()
{
	if (ship.rows.size() > ship.sent) {
		remote::PutCopy(ship.conn, ship.rows.data() + ship.sent, ship.rows.size() - ship.sent);
		ship.sent = ship.rows.size();
	}
}

size_t
ShippedBytes()
{
	return ship.rows.size();
}

/* The chunk through staging and the upsert, in the remote transaction
 * (open, no savepoint); committed.  Retries what the worker's concurrent
 * transaction on the same keys may cause. */
static void
Upsert()
{
	static const char *const transient[] = {"40P01", "40001", nullptr};
	pg_entry([&] { core::PrependStageFields(ship.rows, 1, outbox::kInsert, ship.staged); });
	for (int attempt = 1;; attempt++) {
		remote::Exec(ship.conn, ship.stage_create.c_str());
		remote::BeginCopy(ship.conn, ship.stage_copy.c_str());
		remote::PutCopy(ship.conn, ship.staged.data(), ship.staged.size());
		remote::EndCopy(ship.conn);
		const char *sql = pg_string([&] { return ship.upsert + "; COMMIT"; });
		remote::SendCommand(ship.conn, sql);
		const char *state = attempt < kUpsertTries ? remote::WaitCommandTolerating(ship.conn, sql, transient)
		                                           : (remote::WaitCommand(ship.conn, sql), nullptr);
		if (state == nullptr)
			return;
		remote::Exec(ship.conn, "ROLLBACK; BEGIN");
		pg_usleep(10000L * attempt);
		CHECK_FOR_INTERRUPTS();
	}
}

void
CommitShipChunk()
{
	static const char *const tolerated[] = {"23505", "40P01", "40001", nullptr};
	remote::SendCopyEnd(ship.conn);
	if (remote::WaitCommandTolerating(ship.conn, "COPY", tolerated) == nullptr) {
		remote::Exec(ship.conn, "RELEASE SAVEPOINT dw_fast; COMMIT");
		return;
	}
	/* A key that is there already (or a lock conflict): the direct COPY is
	 * undone, the rest of the remote transaction goes on. */
	remote::Exec(ship.conn, "ROLLBACK TO SAVEPOINT dw_fast; RELEASE SAVEPOINT dw_fast");
	Upsert();
}

} // namespace pgdw::backfill
