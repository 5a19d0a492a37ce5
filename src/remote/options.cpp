/*-------------------------------------------------------------------------
 * options.cpp
 *    Which libpq options a dualwrite server or user mapping may carry, and which only a superuser may set (the wrapper's validator and the checks before connecting).
 *
 * Frames here hold only trivially destructible locals and call PostgreSQL
 * directly; a PGresult is always cleared before its error is raised.
 *
 * IDENTIFICATION  src/remote/options.cpp
 *-------------------------------------------------------------------------
 */
#include <sys/ioctl.h>

#include "remote/internal.hpp"

#include "boundary/boundary.hpp"
#include "config/guc.hpp"

extern "C" {
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "mb/pg_wchar.h"
#include "storage/fd.h"
#include "utils/elog.h"
#include "utils/syscache.h"
}

namespace pgdw::remote {
/* libpq keywords that a server or user mapping may set. */
bool
IsLibpqOption(const char *keyword, bool *is_user_option)
{
	static PQconninfoOption *defaults = nullptr;
	if (defaults == nullptr) {
		defaults = PQconndefaults();
		if (defaults == nullptr)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
			                errdetail("Could not get libpq's default connection options.")));
	}
	/* Options we always set ourselves, or that make no sense here. */
	static const char *const reserved[] = {"client_encoding", "application_name", "fallback_application_name", "replication",
	                                       "dbname_is_connstring", nullptr};
	for (int i = 0; reserved[i] != nullptr; i++)
		if (strcmp(keyword, reserved[i]) == 0)
			return false;
	for (PQconninfoOption *opt = defaults; opt->keyword != nullptr; opt++) {
		if (strcmp(opt->keyword, keyword) != 0)
			continue;
		/* Debug options ("D") are not for users; credentials belong to the mapping. */
		if (strchr(opt->dispchar, 'D') != nullptr)
			return false;
		*is_user_option = strcmp(keyword, "user") == 0 || strcmp(keyword, "password") == 0 ||
		                  strcmp(keyword, "sslpassword") == 0 || strcmp(keyword, "sslcert") == 0 ||
		                  strcmp(keyword, "sslkey") == 0;
		return true;
	}
	return false;
}

/*
 * Options only a superuser may set (postgres_fdw and dblink's reasoning):
 * they make libpq read files of the legacy server (its password file,
 * service file, certificates and keys), choose how it authenticates, or
 * pass arbitrary settings to the remote session.  In a non-superuser's
 * hands they would lend the legacy server's own credentials and files.
 */
const char *const kSuperuserOnlyOptions[] = {"passfile",   "service", "options",     "sslkey",
                                                    "sslcert",    "sslrootcert", "sslcrl", "sslcrldir",
                                                    "requirepeer", "krbsrvname", "gsslib", nullptr};

/* Of those, the ones that stand for the legacy server's own stored
 * credentials: no non-superuser delivering role uses them, whoever set them. */
const char *const kServerCredentialOptions[] = {"passfile", "service", nullptr};

bool
InList(const char *const *list, const char *name)
{
	for (int i = 0; list[i] != nullptr; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* An option's value in a DefElem list, or nullptr. */
const char *
FindOption(List *options, const char *name)
{
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		if (strcmp(def->defname, name) == 0)
			return defGetString(def);
	}
	return nullptr;
}

/*
 * Does a server with these options connect through a Unix-domain socket?
 * Yes when no hostaddr is given and host is missing or empty (libpq's
 * default socket, or PGHOST of the legacy server) or one of its
 * comma-separated entries is empty or a path ('/...', or '@...' for an
 * abstract socket).  A local socket lets peer and trust authentication log
 * in as the legacy server's operating-system user.
 */
bool
UsesLocalSocket(List *server_options)
{
	const char *hostaddr = FindOption(server_options, "hostaddr");
	if (hostaddr != nullptr && hostaddr[0] != '\0')
		return false;
	const char *host = FindOption(server_options, "host");
	if (host == nullptr || host[0] == '\0')
		return true;
	for (const char *p = host;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0' || *p == ',' || *p == '/' || *p == '@')
			return true;
		p = strchr(p, ',');
		if (p == nullptr)
			return false;
		p++;
	}
}

/* Refuse the options of `catalog` that only a superuser may set. */
static void
CheckSuperuserOnlyOptions(List *options, Oid catalog)
{
	if (superuser())
		return;
	const char *object = catalog == UserMappingRelationId ? "a user mapping" : "a server";
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		if (InList(kSuperuserOnlyOptions, def->defname))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			                errmsg("permission denied to set option \"%s\" of %s of the dualwrite wrapper",
			                       def->defname, object),
			                errdetail("Only superusers may set passfile, service, options, sslkey, sslcert, "
			                          "sslrootcert, sslcrl, sslcrldir, requirepeer, krbsrvname, gsslib and a "
			                          "Unix-domain socket host: they make the legacy server use its own files "
			                          "or credentials."),
			                errhint("Ask a superuser to set it, or leave it out.")));
	}
	if (catalog == ForeignServerRelationId && UsesLocalSocket(options))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		                errmsg("permission denied to connect a server of the dualwrite wrapper through a "
		                       "Unix-domain socket"),
		                errdetail("Only superusers may give a socket directory as host, or leave host and hostaddr "
		                          "out: a local socket can log in as the legacy server's own operating-system "
		                          "user."),
		                errhint("Give host (a name or an IP address) and port of the modern database.")));
}

void
ValidateOptions(List *options, Oid catalog)
{
	ListCell *lc;
	foreach (lc, options) {
		DefElem *def = static_cast<DefElem *>(lfirst(lc));
		bool user_option = false;
		bool known = IsLibpqOption(def->defname, &user_option);
		bool ok = known && ((catalog == UserMappingRelationId) == user_option);
		if (catalog != ForeignServerRelationId && catalog != UserMappingRelationId)
			ok = false;
		if (!ok)
			ereport(ERROR,
			        (errcode(ERRCODE_FDW_INVALID_OPTION_NAME), errmsg("invalid option \"%s\"", def->defname),
			         catalog == UserMappingRelationId
			             ? errhint("A user mapping of the dualwrite wrapper takes user, password, sslpassword, "
			                       "sslcert and sslkey.")
			         : catalog == ForeignServerRelationId
			             ? errhint("A dualwrite server takes libpq connection options such as host, port and dbname; "
			                       "credentials go in the user mapping.")
			             : errhint("The dualwrite wrapper takes options only on servers and user mappings.")));
		if (strcmp(def->defname, "connect_timeout") == 0) {
			const char *v = defGetString(def);
			if (strspn(v, "0123456789") != strlen(v) || strlen(v) == 0)
				ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				                errmsg("invalid value for option \"connect_timeout\": \"%s\"", v),
				                errhint("Give a whole number of seconds.")));
		}
	}
	CheckSuperuserOnlyOptions(options, catalog);
}


} // namespace pgdw::remote
