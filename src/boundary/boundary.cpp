/*-------------------------------------------------------------------------
 * boundary.cpp
 *    PG_TRY-to-exception and exception-to-ereport conversion.
 *
 * IDENTIFICATION  src/boundary/boundary.cpp
 *-------------------------------------------------------------------------
 */
#include "boundary/boundary.hpp"

namespace pgdw {

const char *
PgError::what() const noexcept
{
	return (edata_ != nullptr && edata_->message != nullptr) ? edata_->message : "PostgreSQL error";
}

void
PgCallImpl(void (*fn)(void *), void *arg)
{
	MemoryContext caller_context = CurrentMemoryContext;
	/* volatile: written in PG_CATCH, read after the longjmp (elog.h) */
	ErrorData *volatile edata = nullptr;

	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		/* Copy the error into the caller's context before flushing it. */
		MemoryContextSwitchTo(caller_context);
		edata = CopyErrorData();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != nullptr)
		throw PgError(edata);
}

void
RaiseBoundaryFailure(const BoundaryFailure &f)
{
	if (f.edata != nullptr)
		ReThrowError(f.edata); /* keeps SQLSTATE, detail, hint, context */
	if (f.out_of_memory)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg_internal("pg_dualwrite internal error: %s", f.message)));
	pg_unreachable();
}

} // namespace pgdw
