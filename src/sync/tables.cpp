/*-------------------------------------------------------------------------
 * tables.cpp
 *    The per-backend cache of sync tables: each flagged table's delivery
 *    shape, failure policy and the SQL of its prepared statements, built
 *    once and kept until a relcache invalidation of the table (enable,
 *    disable, set_mode, pause, ALTER TABLE all send one) or a full reset.
 *
 * IDENTIFICATION  src/sync/tables.cpp
 *-------------------------------------------------------------------------
 */
#include "sync/internal.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"
#include "config/target_shape.hpp"
#include "core/apply_sql.hpp"

extern "C" {
#include "catalog/partition.h"
#include "utils/inval.h"
}

namespace pgdw::sync {

struct Entry {
	Oid relid;
	bool valid;
	bool flagged; /* false: known not to be flagged (a partition lookup, or disabled) */
	MemoryContext cxt;
	Table table;
};

static constexpr int kMaxEntries = 256;
static Entry entries[kMaxEntries];
static int nentries = 0;
static uint32 version = 0; /* makes prepared statement names unique per shape */
static bool callback_registered = false;
/* The last partition looked up (rows of one statement share it). */
static Oid last_rel = InvalidOid, last_root = InvalidOid;

static void
Invalidate(Datum, Oid relid)
{
	last_rel = InvalidOid; /* an ATTACH or DETACH may have moved it */
	for (int i = 0; i < nentries; i++)
		if (relid == InvalidOid || entries[i].relid == relid)
			entries[i].valid = false;
}

extern "C" {
static void
relcache_callback(Datum arg, Oid relid)
{
	Invalidate(arg, relid); /* cannot fail */
}
}

static Entry *
Slot(Oid relid)
{
	for (int i = 0; i < nentries; i++)
		if (entries[i].relid == relid)
			return &entries[i];
	Entry *e = nullptr;
	if (nentries < kMaxEntries)
		e = &entries[nentries++];
	else
		for (int i = 0; i < nentries && e == nullptr; i++)
			if (!entries[i].valid)
				e = &entries[i];
	if (e == nullptr) {
		e = &entries[0]; /* full of valid entries: evict one (rebuilt on use) */
	}
	if (e->cxt != nullptr)
		MemoryContextDelete(e->cxt);
	memset(e, 0, sizeof(*e));
	e->relid = relid;
	return e;
}

static void
Build(Entry *e)
{
	if (e->cxt != nullptr)
		MemoryContextReset(e->cxt);
	else
		e->cxt = AllocSetContextCreate(CacheMemoryContext, "pg_dualwrite sync table", ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(e->cxt);
	int n = 0;
	config::TableConfig **cfgs = config::LoadAll(&n, e->relid);
	e->flagged = n == 1 && cfgs[0]->sync;
	memset(&e->table, 0, sizeof(e->table));
	if (e->flagged) {
		Table &t = e->table;
		t.relid = e->relid;
		t.cfg = cfgs[0];
		t.policy = t.cfg->sync_failure != nullptr ? guc::SyncFailureByName(t.cfg->sync_failure) : -1;
		if (t.cfg->problem == nullptr) {
			core::TargetShape shape;
			char *up = nullptr, *del = nullptr, *trunc = nullptr;
			pg_entry([&] { shape = config::TargetShapeOf(*t.cfg); });
			up = pg_string([&] { return core::RowUpsertSql(shape); });
			del = pg_string([&] { return core::RowDeleteSql(shape); });
			trunc = pg_string([&] { return core::QualifiedTarget(shape); });
			t.upsert_sql = up;
			t.delete_sql = del;
			t.truncate_target = trunc;
			t.nkeys = static_cast<int>(shape.key.size());
			version++;
			snprintf(t.upsert_name, NAMEDATALEN, "pgdw_u_%u_%u", t.relid, version);
			snprintf(t.delete_name, NAMEDATALEN, "pgdw_d_%u_%u", t.relid, version);
		}
	}
	MemoryContextSwitchTo(old);
	e->valid = true;
}

static void
EnsureCallback()
{
	if (!callback_registered) {
		CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
		callback_registered = true;
	}
}

Table *
TableFor(Oid relid)
{
	EnsureCallback();
	Entry *e = Slot(relid);
	if (!e->valid)
		Build(e);
	return e->flagged ? &e->table : nullptr;
}

Oid
FlaggedRoot(Relation rel)
{
	if (!rel->rd_rel->relispartition)
		return RelationGetRelid(rel);
	EnsureCallback();
	if (RelationGetRelid(rel) == last_rel)
		return last_root;
	List *ancestors = get_partition_ancestors(RelationGetRelid(rel));
	Oid root = ancestors != NIL ? llast_oid(ancestors) : RelationGetRelid(rel);
	list_free(ancestors);
	last_rel = RelationGetRelid(rel);
	last_root = root;
	return root;
}

} // namespace pgdw::sync
