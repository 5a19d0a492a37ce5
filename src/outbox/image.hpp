/*-------------------------------------------------------------------------
 * image.hpp
 *    Reading a captured row image back, for whoever ships it: the worker
 *    (COPY text of a batch) and sync mode (parameters of a pipeline).
 *
 * An image is decoded only with the TupleDesc it was captured under (the
 * layout fingerprint is checked), and its values are turned into text
 * under pinned output settings, so the modern side reads back exactly the
 * value the legacy side holds (SPEC: data it must carry exactly).
 *
 * IDENTIFICATION  src/outbox/image.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw::outbox {

/* Deform `image` (an outbox data value, detoasted) of relation `relid`
 * into values/nulls (desc->natts entries).  The values point into a
 * palloc'd copy in the current memory context. */
void DeformImage(Oid relid, TupleDesc desc, const bytea *image, uint32 layout, Datum *values, bool *nulls);

/* The output settings every shipped text is made under (DateStyle ISO,
 * IntervalStyle postgres, extra_float_digits 3, TimeZone UTC, bytea hex):
 *  PinTextOutputForProcess: for the worker, once;
 *  PinTextOutput / UnpinTextOutput: around a sync backend's shipping, in a
 *  GUC nest level of its own, so the session's own settings come back. */
void PinTextOutputForProcess();
int PinTextOutput();
void UnpinTextOutput(int nest_level);

} // namespace pgdw::outbox
