// cli/libpq_on_demand.cpp — libpq, loaded the first time the command uses PostgreSQL.
//
// Linking libpq makes every start of the command load it and its own libraries (TLS,
// Kerberos, LDAP: about 25 shared objects, several milliseconds) — most of the cost of a
// `leaselock run` over a lock directory, which never needs them. So the command is not
// linked with libpq: this file defines the libpq functions PostgresBackend and the
// command call, each forwarding to the same function of libpq.so.5, opened with
// dlopen() on the first call. The declarations come from libpq-fe.h, so a signature
// that differs does not compile; a libpq function the backend starts to use and this
// list lacks fails the link, naming it: add it here.
#include <dlfcn.h>

#include <string>

#include <libpq-fe.h>

#include <leaselock/storage_error.hpp>

#ifndef LEASELOCK_CLI_LIBPQ
#define LEASELOCK_CLI_LIBPQ "libpq.so.5"
#endif

namespace {

void* libpq() {
  static void* const handle = [] {
    void* opened = ::dlopen(LEASELOCK_CLI_LIBPQ, RTLD_NOW | RTLD_LOCAL);
    if (!opened) {
      const char* why = ::dlerror();
      throw leaselock::StorageError(
          std::string("leaselock: PostgreSQL: cannot load " LEASELOCK_CLI_LIBPQ ": ") +
              (why ? why : "not found") + " (install libpq: apt-get install libpq5)",
          LEASELOCK_CLI_LIBPQ);
    }
    return opened;
  }();
  return handle;
}

template <class Function>
Function* find(const char* name) {
  void* const found = ::dlsym(libpq(), name);
  if (!found)
    throw leaselock::StorageError(
        std::string("leaselock: PostgreSQL: " LEASELOCK_CLI_LIBPQ " has no ") + name +
            " (a libpq that is too old)",
        LEASELOCK_CLI_LIBPQ);
  return reinterpret_cast<Function*>(found);
}

}  // namespace

// RESULT NAME PARAMETERS: defines NAME, which calls libpq's NAME with ARGUMENTS.
#define LEASELOCK_FORWARD(result, name, parameters, arguments)                         \
  extern "C" result name parameters {                                                  \
    static auto* const function = find<std::remove_pointer_t<decltype(&name)>>(#name); \
    return function arguments;                                                         \
  }

LEASELOCK_FORWARD(PGconn*, PQconnectStart, (const char* conninfo), (conninfo))
LEASELOCK_FORWARD(PostgresPollingStatusType, PQconnectPoll, (PGconn * conn), (conn))
LEASELOCK_FORWARD(ConnStatusType, PQstatus, (const PGconn* conn), (conn))
LEASELOCK_FORWARD(void, PQfinish, (PGconn * conn), (conn))
LEASELOCK_FORWARD(PQnoticeProcessor, PQsetNoticeProcessor,
                  (PGconn * conn, PQnoticeProcessor processor, void* argument),
                  (conn, processor, argument))
LEASELOCK_FORWARD(int, PQsetnonblocking, (PGconn * conn, int argument), (conn, argument))
LEASELOCK_FORWARD(char*, PQhost, (const PGconn* conn), (conn))
LEASELOCK_FORWARD(char*, PQport, (const PGconn* conn), (conn))
LEASELOCK_FORWARD(char*, PQdb, (const PGconn* conn), (conn))
LEASELOCK_FORWARD(int, PQsocket, (const PGconn* conn), (conn))
LEASELOCK_FORWARD(char*, PQerrorMessage, (const PGconn* conn), (conn))
LEASELOCK_FORWARD(int, PQsendQuery, (PGconn * conn, const char* query), (conn, query))
LEASELOCK_FORWARD(int, PQsendQueryParams,
                  (PGconn * conn, const char* command, int count, const Oid* types,
                   const char* const* values, const int* lengths, const int* formats,
                   int result_format),
                  (conn, command, count, types, values, lengths, formats, result_format))
LEASELOCK_FORWARD(int, PQsendPrepare,
                  (PGconn * conn, const char* name, const char* query, int count, const Oid* types),
                  (conn, name, query, count, types))
LEASELOCK_FORWARD(int, PQsendQueryPrepared,
                  (PGconn * conn, const char* name, int count, const char* const* values,
                   const int* lengths, const int* formats, int result_format),
                  (conn, name, count, values, lengths, formats, result_format))
LEASELOCK_FORWARD(int, PQflush, (PGconn * conn), (conn))
LEASELOCK_FORWARD(int, PQisBusy, (PGconn * conn), (conn))
LEASELOCK_FORWARD(int, PQconsumeInput, (PGconn * conn), (conn))
LEASELOCK_FORWARD(PGresult*, PQgetResult, (PGconn * conn), (conn))
LEASELOCK_FORWARD(PGnotify*, PQnotifies, (PGconn * conn), (conn))
LEASELOCK_FORWARD(void, PQclear, (PGresult * result), (result))
LEASELOCK_FORWARD(ExecStatusType, PQresultStatus, (const PGresult* result), (result))
LEASELOCK_FORWARD(char*, PQresultErrorField, (const PGresult* result, int field), (result, field))
LEASELOCK_FORWARD(char*, PQresultErrorMessage, (const PGresult* result), (result))
LEASELOCK_FORWARD(int, PQntuples, (const PGresult* result), (result))
LEASELOCK_FORWARD(int, PQgetisnull, (const PGresult* result, int row, int column),
                  (result, row, column))
LEASELOCK_FORWARD(char*, PQgetvalue, (const PGresult* result, int row, int column),
                  (result, row, column))
LEASELOCK_FORWARD(int, PQgetlength, (const PGresult* result, int row, int column),
                  (result, row, column))
LEASELOCK_FORWARD(void, PQfreemem, (void* pointer), (pointer))
LEASELOCK_FORWARD(PQconninfoOption*, PQconninfoParse, (const char* conninfo, char** error),
                  (conninfo, error))
LEASELOCK_FORWARD(void, PQconninfoFree, (PQconninfoOption * options), (options))
