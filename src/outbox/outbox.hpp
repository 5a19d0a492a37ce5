/*-------------------------------------------------------------------------
 * outbox.hpp
 *    The local outbox: three rotating tables dualwrite._outbox_0.._2 that
 *    capture appends to in the writing transaction, and that the worker
 *    drains and then truncates (space comes back without VACUUM, as in PgQ).
 *
 * Each change is one row (txid, lsn, seq, ts, relid, op, layout, data):
 *  - txid: the top-level transaction id (xid8).  The worker drains by
 *    snapshot ranges: the changes whose transaction is committed in
 *    snapshot S(k) and not in S(k-1).  A transaction that commits late is
 *    simply in a later range; nothing relies on ids growing in commit order.
 *  - lsn, seq: the WAL insert position when captured, then a per-backend
 *    counter.  For one key this is commit order: a second transaction can
 *    change a row only after the first one committed (row lock), i.e. after
 *    the first one's commit record, so it reads a larger WAL position.
 *  - ts: transaction start time (for lag), relid: the table (a partition for
 *    partitioned tables), op: I U D T, layout: the image's layout
 *    fingerprint (outbox/layout.hpp), data: the heap tuple image with
 *    external TOAST values inlined (they could vanish before delivery).
 *  - The T rows of one TRUNCATE statement share one lsn (their txid is
 *    the same and seq consecutive), so they sort next to each other and the
 *    worker applies them as one TRUNCATE: tables that reference each other
 *    on the modern side can only be truncated together.
 *
 * No index: capture pays for none, the worker reads whole generations.
 *
 * IDENTIFICATION  src/outbox/outbox.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::outbox {

constexpr int kGenerations = 3;

/* Attribute numbers of an outbox table, as created by the install script. */
enum Attr { kTxid = 1, kLsn, kSeq, kTs, kRelid, kOp, kLayout, kData, kNatts = kData };

/* Change kinds. */
constexpr char kInsert = 'I';
constexpr char kUpdate = 'U';
constexpr char kDelete = 'D';
constexpr char kTruncate = 'T';

/* OID of dualwrite._outbox_<gen> (cached; raises if the extension is gone). */
Oid GenerationRelid(uint32 gen);

/* Where an appended change is: its generation and heap position (sync
 * mode reads its own transaction's changes back from there). */
struct Position {
	uint32 gen;
	ItemPointerData tid;
	int32 seq; /* its capture_seq: the row at tid is checked to be this one */
};

/* Append one row change (I U D) of `source` to the current generation. */
Position Append(Relation source, char op, HeapTuple tuple);

/* Append the TRUNCATE of `source` (a flagged table), grouped with the
 * other tables the same TRUNCATE statement truncates (see above). */
Position AppendTruncate(Relation source);

/* Append a delete of every row of `leaf` (a partition truncated on its
 * own: the modern table need not be partitioned the same way).  The
 * caller holds AccessExclusiveLock, so every writer has finished. */
void AppendDeleteAll(Relation leaf, void (*note)(Relation, const Position &) = nullptr);

} // namespace pgdw::outbox
