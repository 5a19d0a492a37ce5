# Makefile for pg_dualwrite (PGXS). Authoritative for build and install.
# Tests are run by test/run-tests.sh (they need a postgres-owned temp dir
# when run as root); see README.md.

EXTENSION   = pg_dualwrite
EXTVERSION  = 1.0
MODULE_big  = pg_dualwrite
SRCS        = $(sort $(wildcard src/*.cpp src/*/*.cpp))
OBJS        = $(SRCS:.cpp=.o)
DATA        = $(EXTENSION)--$(EXTVERSION).sql

PG_CONFIG  ?= /usr/lib/postgresql/15/bin/pg_config

# pg_regress suite: one file per feature, in a meaningful order.
REGRESS      = setup enable_errors capture_async ddl_guards truncate_partitions large_rows outbox_rotation idle_cost layout_mismatch holds least_privilege data_types privileges boundary status_view disable check backfill remote_options checksums reconcile reconcile_figures pause whole_transactions sync
# UTF8 and the C locale whatever the caller's environment: with no LANG/LC_*
# (a minimal root shell, a container) the temp instance would be SQL_ASCII
# (TOOLCHAIN P22).  pg_regress passes --no-locale to initdb and creates the
# test database with ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'.
REGRESS_OPTS = --load-extension=pg_dualwrite --encoding=UTF8 --no-locale

# pg_isolation_regress suite: test/isolation/specs/*.spec (see run-tests.sh).
ISOLATION_OPTS = --load-extension=pg_dualwrite --encoding=UTF8 --no-locale

# Header edits must rebuild the objects that include them (TOOLCHAIN P10).
override autodepend = yes
# The .bc (JIT bitcode) files would need clang; we do not ship them (P2-P4).
override with_llvm = no

PG_CPPFLAGS  = -I$(srcdir)/src -I$(shell $(PG_CONFIG) --includedir)
# -Wno-register: PostgreSQL 15's s_lock.h and arch-x86.h use `register` (P3).
PG_CXXFLAGS  = -std=c++17 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register
ifdef ERROR_ON_WARNING
PG_CXXFLAGS += -Werror
endif
# libpq for the remote side, libcrypto for checksums, libstdc++ explicitly (P8).
SHLIB_LINK   = -L$(shell $(PG_CONFIG) --libdir) -lpq -lcrypto -lstdc++

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)


# CI guard: no undefined C++ symbol may remain in the shared library (P8).
check-link: $(shlib)
	@if ldd -r $(shlib) 2>&1 | grep -q 'undefined symbol: _Z'; then \
	  ldd -r $(shlib) | grep 'undefined symbol: _Z'; echo "check-link: FAILED"; exit 1; \
	else echo "check-link: no undefined C++ symbols in $(shlib)"; fi

# For test/run-tests.sh: `make -s print-REGRESS` prints a variable.
print-%:
	@echo '$($*)'
