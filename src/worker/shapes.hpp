/*-------------------------------------------------------------------------
 * shapes.hpp
 *    What a round delivers: one Target per flagged table (its modern shape
 *    and staging SQL) and one Source per captured relation (the table, or
 *    each leaf partition, with what decoding its row images needs).
 *
 * Built afresh at the start of every round from dualwrite.tables, so DDL
 * and configuration changes take effect at the next round.  C++ members
 * live in the file-static `targets`, never on a stack (drain.cpp).
 *
 * IDENTIFICATION  src/worker/shapes.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "config/catalog.hpp"
#include "core/apply_sql.hpp"
#include "worker/stream.hpp"

namespace pgdw::worker {

/* One flagged table's staging state. */
struct Target {
	const config::TableConfig *cfg; /* round_context */
	core::TargetShape shape;
	std::string stage_create, copy_sql, direct_copy_sql, delete_sql, upsert_sql;
	std::string buf;   /* COPY text of the current batch */
	int64 rows;        /* rows in buf */
	bool has_delete;   /* buf holds a delete */
	bool only_inserts; /* buf holds inserts only: try the direct COPY */
	uint32 stage_gen;  /* conn_gen the staging table was created under */
	int64 applied;     /* committed on the modern side this round */
	Stream *stream;
	/* incremental reconcile (worker/tracking.hpp) */
	bool tracked;       /* record the keys applied this round */
	int64 dedupe_above; /* a key recorded with a higher seq need not be again */
	std::string keys;   /* keys staged this round, '\n'-separated */
	bool keys_overflow; /* more than fit in memory: the record is incomplete */
};

/* One captured relation (the flagged table, or one of its partitions). */
struct Source {
	Oid relid;
	int target;          /* index in targets */
	TupleDesc desc;      /* a copy (round_context): a relcache entry's may be freed by any
	                      * invalidation the round accepts (TOOLCHAIN P23); NULL for the
	                      * partitioned root, which only ever has T changes */
	AttrNumber *attnums; /* per sent column, attnum in this relation */
	FmgrInfo *out;       /* output function per sent column */
	Datum *values;
	bool *nulls;
};

extern std::vector<Target> targets;
extern Source *sources; /* round_context */
extern int nsources;

/* Build targets and sources for every flagged table (and partition);
 * palloc in the current context, which must live for the round. */
void LoadShapes(config::TableConfig **cfgs, int n);

Source *FindSource(Oid relid);

} // namespace pgdw::worker
