/*-------------------------------------------------------------------------
 * boundary.hpp
 *    The single crossing between PostgreSQL's longjmp errors and C++
 *    exceptions.  Every PostgreSQL entry point of pg_dualwrite (SQL
 *    functions, triggers, the background-worker mains, callbacks) runs its
 *    body through pg_entry(); C++ code that owns objects with destructors
 *    calls error-capable PostgreSQL functions only through pg_call().
 *
 * The rules this file enforces (STYLE.md section 6):
 *  - no C++ exception leaves an extern "C" function: pg_entry catches them
 *    all and raises the PostgreSQL error only after every C++ scope closed;
 *  - no ereport(ERROR) longjmps over a live destructor: pg_call catches the
 *    error with PG_TRY, copies the ErrorData (SQLSTATE, detail, hint and
 *    context intact) and throws PgError, which unwinds normally;
 *  - PG_TRY is never left by throw: the lambda given to pg_call must not
 *    throw (it only calls PostgreSQL).
 *
 * Code whose frames hold only trivially destructible locals (the capture
 * trigger, the worker's drain loop) may call PostgreSQL directly: a longjmp
 * over such frames skips nothing.  Those files say so in their header.
 *
 * IDENTIFICATION  src/boundary/boundary.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "pg/pg.hpp"

namespace pgdw {

/* A PostgreSQL error in flight through C++ frames. */
class PgError : public std::exception {
public:
	explicit PgError(ErrorData *edata) noexcept : edata_(edata) {}
	const char *what() const noexcept override;
	ErrorData *edata() const noexcept { return edata_; }

private:
	ErrorData *edata_; /* palloc'd by CopyErrorData in the caller's context */
};

/* Run fn(arg) under PG_TRY; an ERROR becomes a thrown PgError. */
void PgCallImpl(void (*fn)(void *), void *arg);

template <typename F>
inline void
pg_call(F &&f)
{
	using Fn = std::remove_reference_t<F>;
	PgCallImpl([](void *a) { (*static_cast<Fn *>(a))(); }, static_cast<void *>(&f));
}

/* What a failed C++ body left behind, to be raised once its scope closed. */
struct BoundaryFailure {
	ErrorData *edata = nullptr; /* a PostgreSQL error: rethrown as is */
	bool out_of_memory = false; /* std::bad_alloc */
	char message[512] = {0};    /* any other C++ exception */
};

/* Raise the failure as a PostgreSQL ERROR (never returns). */
[[noreturn]] void RaiseBoundaryFailure(const BoundaryFailure &f);

/*
 * Run a C++ body from a PostgreSQL entry point.  Returns its result, or
 * raises the PostgreSQL error it failed with after all C++ scopes of the
 * body have been left.
 */
template <typename F>
inline auto
pg_entry(F &&body) -> decltype(body())
{
	BoundaryFailure failure;
	try {
		return body();
	} catch (const PgError &e) {
		failure.edata = e.edata();
	} catch (const std::bad_alloc &) {
		failure.out_of_memory = true;
	} catch (const std::exception &e) {
		strlcpy(failure.message, e.what(), sizeof(failure.message));
	} catch (...) {
		strlcpy(failure.message, "unknown C++ exception", sizeof(failure.message));
	}
	RaiseBoundaryFailure(failure);
}

/*
 * Copy a std::string produced by C++ code into palloc'd memory of the
 * current context, converting any C++ failure into a PostgreSQL ERROR.
 * Use this to hand SQL text built by core/ to PostgreSQL APIs.
 */
template <typename F>
inline char *
pg_string(F &&build)
{
	return pg_entry([&]() -> char * {
		std::string s = build();
		char *out = static_cast<char *>(MemoryContextAllocExtended(CurrentMemoryContext, s.size() + 1,
		                                                           MCXT_ALLOC_NO_OOM));
		if (out == nullptr)
			throw std::bad_alloc();
		memcpy(out, s.data(), s.size());
		out[s.size()] = '\0';
		return out;
	});
}

} // namespace pgdw
