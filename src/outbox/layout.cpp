/*-------------------------------------------------------------------------
 * layout.cpp
 *    Row image layout fingerprints (see layout.hpp).
 *
 * Plain PostgreSQL code: frames hold only trivially destructible locals.
 *
 * IDENTIFICATION  src/outbox/layout.cpp
 *-------------------------------------------------------------------------
 */
#include "outbox/layout.hpp"

extern "C" {
#include "utils/lsyscache.h"
}

namespace pgdw::outbox {

static inline uint32
Mix(uint32 h, uint32 byte)
{
	return (h ^ byte) * 16777619u;
}

uint32
LayoutFingerprint(TupleDesc desc, int natts)
{
	uint32 h = 2166136261u;
	int n = Min(natts, desc->natts);
	for (int i = 0; i < n; i++) {
		Form_pg_attribute att = TupleDescAttr(desc, i);
		uint16 len = static_cast<uint16>(att->attlen);
		h = Mix(h, len & 0xff);
		h = Mix(h, len >> 8);
		h = Mix(h, att->attbyval ? 1 : 0);
		h = Mix(h, static_cast<uint8>(att->attalign));
	}
	/* An image with more attributes than the descriptor never matches. */
	return Mix(h, natts > desc->natts ? 0xff : 0);
}

int
ImageNatts(const bytea *image)
{
	if (VARSIZE_ANY_EXHDR(image) < SizeofHeapTupleHeader)
		return -1;
	HeapTupleHeaderData header;
	memcpy(&header, VARDATA_ANY(image), SizeofHeapTupleHeader);
	return HeapTupleHeaderGetNatts(&header);
}

void
CheckImageLayout(Oid relid, TupleDesc desc, const bytea *image, uint32 fingerprint)
{
	int natts = ImageNatts(image);
	if (natts >= 0 && natts <= desc->natts && LayoutFingerprint(desc, natts) == fingerprint)
		return;
	char *name = get_rel_name(relid);
	ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
	                errmsg("a captured change of table \"%s\" was made under a different column layout",
	                       name != nullptr ? name : "?"),
	                errdetail("The change was captured before a column type change rewrote the table; it "
	                          "cannot be decoded with the table's current columns."),
	                errhint("Apply the change on the modern side by hand, then call dualwrite.disable() and "
	                        "dualwrite.enable() for the table and reconcile it.")));
}

} // namespace pgdw::outbox
