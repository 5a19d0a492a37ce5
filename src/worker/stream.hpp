/*-------------------------------------------------------------------------
 * stream.hpp
 *    Delivery streams: the changes going to one foreign server, their
 *    connection, and their progress as the modern side records it.
 *
 * A stream's progress (done snapshot, open range, position in it) lives in
 * one row of _dualwrite.applied on the modern side, written in the same
 * remote transaction as each batch (see drain.hpp).  The worker reads it
 * back whenever it connects, so memory never has to be trusted across a
 * failure.
 *
 * IDENTIFICATION  src/worker/stream.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::worker {

/*
 * A stream is either a server's main stream (held_relid invalid: every
 * flagged table of that server that is not held) or a held table's own
 * stream (see holds.hpp), whose modern-side row starts at `start_*`.
 */
struct Stream {
	char server[NAMEDATALEN];
	Oid held_relid;       /* InvalidOid: the server's main stream */
	int64 hold_id;        /* names a held table's stream on the modern side */
	char *start_done, *start_cur; /* TopMemoryContext: a held stream's first progress */
	char start_lsn[32], start_txid[32];
	int start_seq;
	uint64 drained_round; /* the last round that drained it without failing */
	Oid userid;           /* whose user mapping */
	PGconn *conn;         /* kept across rounds; NULL after a failure */
	uint32 conn_gen;      /* bumps on reconnect: temp staging tables are gone */
	bool progress_known;  /* done/cur/pos read from the modern side */
	long long version;    /* of the progress row, as last read or written */
	char *done_snapshot;  /* TopMemoryContext */
	char *cur_snapshot;   /* TopMemoryContext; NULL when no range is open */
	char pos_lsn[32];
	char pos_txid[32];
	int pos_seq;
	bool dirty;           /* local _progress must be rewritten */
	uint32 failures;      /* consecutive failed rounds */
	TimestampTz retry_at; /* do not try before */
	uint32 recovered_after;     /* >0: the last round recovered after that many failures */
	uint32 unrecorded_failures; /* failed attempts not yet counted in _table_stats */
	char recorded_error[128];   /* the message _table_stats last got */
	TimestampTz recorded_at;    /* when */
};

/* Servers plus held tables of one database. */
constexpr int kMaxStreams = 64;
extern Stream streams[kMaxStreams];
extern Stream *current_stream; /* the stream a failure belongs to */

/* The main stream of `server`, created if new; FindStream() does not create. */
Stream *StreamFor(const char *server);
Stream *FindStream(const char *server);

/* The stream of held table `relid` (hold `hold_id`), created if new with
 * the given first progress. */
Stream *HeldStreamFor(const char *server, Oid relid, int64 hold_id, const char *done, const char *cur,
                      const char *lsn, const char *txid, int seq);

/* Close and forget a stream (a held table that rejoined, or was disabled). */
void ReleaseStream(Stream *s);

/* Write the stream's in-memory progress to the modern side now, as an
 * empty open range (done, done] (used when a held table rejoins). */
void WriteProgressNow(Stream *s);

/* Set the in-memory progress (strings copied to TopMemoryContext). */
void SetProgress(Stream *s, const char *done, const char *cur, const char *lsn, const char *txid, int seq);

/* Drop every connection if a server or user mapping changed since. */
void ApplyOptionChanges();

/* Connect if needed and read the stream's progress from the modern side. */
void EnsureConnected(Stream *s, const char *origin);

/* The key of this database's stream on the modern side. */
const char *Origin(const Stream *s);

/* "BEGIN; <progress check>; ": how every batch transaction starts. */
const char *BeginSql(Stream *s);

} // namespace pgdw::worker
