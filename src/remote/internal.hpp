/*-------------------------------------------------------------------------
 * internal.hpp
 *    What the files of src/remote share and nobody else uses: option
 *    rules (options.cpp), the bounded, interruptible wait and result loop
 *    (calls.cpp), used by connecting (connection.cpp).
 *
 * IDENTIFICATION  src/remote/internal.hpp
 *-------------------------------------------------------------------------
 */
#pragma once

#include "remote/connection.hpp"

namespace pgdw::remote {

/* options.cpp: libpq keywords a server or mapping may set, and the rules
 * for non-superusers. */
bool IsLibpqOption(const char *keyword, bool *is_user_option);
extern const char *const kSuperuserOnlyOptions[];
extern const char *const kServerCredentialOptions[];
bool InList(const char *const *list, const char *name);
const char *FindOption(List *options, const char *name);
bool UsesLocalSocket(List *server_options);

/* calls.cpp: every public call starts a deadline and a byte count; waits
 * are interruptible and bounded by them. */
void StartCall();
void CountIncoming(PGconn *conn);
void WaitSocket(PGconn *conn, int io_events, TimestampTz deadline, const char *what);
void NoticeReceiver(void *arg, const PGresult *res);
[[noreturn]] void RaiseRemoteError(PGconn *conn, PGresult *res, const char *sql);
void Send(PGconn *conn, const char *sql);
PGresult *CollectResults(PGconn *conn, const char *sql);

} // namespace pgdw::remote
