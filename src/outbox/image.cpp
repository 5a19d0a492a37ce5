/*-------------------------------------------------------------------------
 * image.cpp
 *    Reading captured row images back (see image.hpp).
 *
 * IDENTIFICATION  src/outbox/image.cpp
 *-------------------------------------------------------------------------
 */
#include "outbox/image.hpp"

#include "outbox/layout.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace pgdw::outbox {

void
DeformImage(Oid relid, TupleDesc desc, const bytea *image, uint32 layout, Datum *values, bool *nulls)
{
	/* Never decode an image with a layout it was not captured under. */
	CheckImageLayout(relid, desc, image, layout);
	/* Deform from a MAXALIGNed copy: offsets inside the image assume it. */
	uint32 len = VARSIZE_ANY_EXHDR(image);
	char *aligned = static_cast<char *>(palloc(len));
	memcpy(aligned, VARDATA_ANY(image), len);
	HeapTupleData tup;
	tup.t_len = len;
	tup.t_data = reinterpret_cast<HeapTupleHeader>(aligned);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = relid;
	heap_deform_tuple(&tup, desc, values, nulls);
}

/* search_path too: output functions of extension types may look names up. */
static const char *const kSettings[][2] = {
    {"DateStyle", "ISO, YMD"}, {"IntervalStyle", "postgres"}, {"extra_float_digits", "3"},
    {"TimeZone", "UTC"},       {"bytea_output", "hex"},       {"search_path", "pg_catalog, pg_temp"},
};

void
PinTextOutputForProcess()
{
	for (const auto &s : kSettings)
		SetConfigOption(s[0], s[1], PGC_SUSET, PGC_S_OVERRIDE);
}

int
PinTextOutput()
{
	int level = NewGUCNestLevel();
	for (const auto &s : kSettings)
		(void) set_config_option(s[0], s[1], PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
UnpinTextOutput(int nest_level)
{
	AtEOXact_GUC(true, nest_level);
}

} // namespace pgdw::outbox
