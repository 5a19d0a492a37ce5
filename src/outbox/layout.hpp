/*-------------------------------------------------------------------------
 * layout.hpp
 *    The physical layout fingerprint recorded with every captured row
 *    image, and checked by the worker before it decodes one.
 *
 * Images are raw heap tuples decoded later with the table's descriptor of
 * that time.  That is safe exactly when every attribute the image holds
 * has the same physical shape (length, by-value, alignment) in both
 * descriptors: ADD COLUMN (the image simply has fewer attributes), DROP
 * COLUMN (pg_attribute keeps the dropped column's shape) and binary-
 * coercible type changes keep it; ALTER COLUMN TYPE with a rewrite does
 * not, and decoding an int image as text reads garbage lengths and
 * crashes.  The table_rewrite guard refuses such DDL while changes are
 * pending; this fingerprint is the second line of defence: a mismatch
 * stops the table with an error, never a crash.
 *
 * The fingerprint covers the first `natts` attributes only (the image's
 * own attribute count), so adding columns never invalidates old images.
 *
 * IDENTIFICATION  src/outbox/layout.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::outbox {

/* FNV-1a over (attlen, attbyval, attalign) of attributes 1..natts. */
uint32 LayoutFingerprint(TupleDesc desc, int natts);

/* Number of attributes stored in an image (its header's natts). */
int ImageNatts(const bytea *image);

/* Raise (ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE, naming the table) if
 * `image` was captured under a layout that `desc` cannot decode. */
void CheckImageLayout(Oid relid, TupleDesc desc, const bytea *image, uint32 fingerprint);

} // namespace pgdw::outbox
