/*-------------------------------------------------------------------------
 * shapes.cpp
 *    Targets and sources of a round (see shapes.hpp).
 *
 * IDENTIFICATION  src/worker/shapes.cpp
 *-------------------------------------------------------------------------
 */
#include "worker/shapes.hpp"

#include "boundary/boundary.hpp"
#include "config/target_shape.hpp"
#include "remote/connection.hpp"
#include "worker/holds.hpp"

extern "C" {
#include "catalog/pg_inherits.h"
#include "utils/acl.h"
}

namespace pgdw::worker {

std::vector<Target> targets;
Source *sources = nullptr;
int nsources = 0;

/* Build targets and sources for every flagged table (and partition). */
void
LoadShapes(config::TableConfig **cfgs, int n)
{
	targets.clear();
	targets.resize(n);
	/* Partitioned tables contribute one source per leaf partition. */
	List **per_table = static_cast<List **>(palloc0(sizeof(List *) * (n + 1)));
	int total = 0;
	for (int i = 0; i < n; i++) {
		per_table[i] = find_all_inheritors(cfgs[i]->relid, AccessShareLock, nullptr);
		total += list_length(per_table[i]);
	}
	sources = static_cast<Source *>(palloc0(sizeof(Source) * (total + 1)));
	nsources = 0;
	for (int i = 0; i < n; i++) {
		Target &t = targets[i];
		t.cfg = cfgs[i];
		const Hold *hold = FindHold(cfgs[i]->relid);
		t.stream = hold == nullptr ? StreamFor(cfgs[i]->target_server)
		                           : HeldStreamFor(hold->server, hold->relid, hold->hold_id, hold->done, hold->cur,
		                                           hold->lsn, hold->txid, hold->seq);
		if (hold != nullptr) {
			/* The server's own stream must run too (the held table rejoins
			 * it), even when every table of the server is held. */
			Stream *main = StreamFor(hold->server);
			if (main->userid != cfgs[i]->deliver_as) {
				remote::Disconnect(main->conn);
				main->conn = nullptr;
				main->progress_known = false;
				main->userid = cfgs[i]->deliver_as;
			}
		}
		/* The server's delivering role, read every round: a new one (or a
		 * dropped one) reconnects, and Connect() fails this stream alone. */
		if (t.stream->userid != cfgs[i]->deliver_as || !config::RoleExists(cfgs[i]->deliver_as)) {
			remote::Disconnect(t.stream->conn);
			t.stream->conn = nullptr;
			t.stream->progress_known = false;
			t.stream->userid = cfgs[i]->deliver_as;
		}
		if (t.cfg->problem != nullptr) {
			/* Sends nothing: its changes are read (so its stream cannot move
			 * past them) and hold the table (apply.cpp). */
			ListCell *lc;
			foreach (lc, per_table[i]) {
				Source &src = sources[nsources++];
				src.relid = lfirst_oid(lc);
				src.target = i;
				src.desc = nullptr;
			}
			continue;
		}
		pg_entry([&] {
			t.shape = config::TargetShapeOf(*t.cfg);
			t.stage_create = core::StageCreateSql(t.shape);
			t.copy_sql = core::StageCopySql(t.shape);
			t.direct_copy_sql = core::DirectCopySql(t.shape);
			t.delete_sql = core::ApplyDeleteSql(t.shape);
			t.upsert_sql = core::ApplyUpsertSql(t.shape);
		});
		ListCell *lc;
		foreach (lc, per_table[i]) {
			Oid relid = lfirst_oid(lc);
			Relation rel = table_open(relid, AccessShareLock); /* kept to transaction end */
			if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE) {
				/* Rows live in the leaves; the flagged table itself has
				 * its TRUNCATEs (a sub-partition's are row deletes). */
				if (relid == cfgs[i]->relid) {
					Source &root = sources[nsources++];
					root.relid = relid;
					root.target = i;
					root.desc = nullptr;
				}
				table_close(rel, NoLock);
				continue;
			}
			Source &src = sources[nsources++];
			src.relid = relid;
			src.target = i;
			src.desc = CreateTupleDescCopyConstr(RelationGetDescr(rel)); /* keeps missing values */
			int ncols = t.cfg->ncolumns;
			src.attnums = static_cast<AttrNumber *>(palloc(sizeof(AttrNumber) * ncols));
			src.out = static_cast<FmgrInfo *>(palloc(sizeof(FmgrInfo) * ncols));
			src.values = static_cast<Datum *>(palloc(sizeof(Datum) * src.desc->natts));
			src.nulls = static_cast<bool *>(palloc(sizeof(bool) * src.desc->natts));
			for (int c = 0; c < ncols; c++) {
				/* Partitions may order columns differently: match by name. */
				AttrNumber attnum = get_attnum(relid, t.cfg->columns[c].legacy_name);
				if (attnum == InvalidAttrNumber) {
					/* A partition that does not fit its table's shape: the
					 * table's problem, not the round's. */
					const_cast<config::TableConfig *>(t.cfg)->problem =
					    psprintf("column \"%s\" of table %s is missing in partition %s", t.cfg->columns[c].legacy_name,
					             t.cfg->target_display, get_rel_name(relid));
					src.desc = nullptr;
					break;
				}
				src.attnums[c] = attnum;
				Oid outfunc;
				bool varlena;
				getTypeOutputInfo(TupleDescAttr(src.desc, attnum - 1)->atttypid, &outfunc, &varlena);
				fmgr_info_cxt(outfunc, &src.out[c], CurrentMemoryContext);
			}
			table_close(rel, NoLock);
		}
	}
}

Source *
FindSource(Oid relid)
{
	for (int i = 0; i < nsources; i++)
		if (sources[i].relid == relid)
			return &sources[i];
	return nullptr;
}

} // namespace pgdw::worker
