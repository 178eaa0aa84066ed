// leaselock/detail/postgres/connection.hpp — one libpq connection, used by one thread at
// a time: connecting within a deadline, statements with bound parameters and a deadline
// of their own, and errors that name the server and carry libpq's message.
//
// Every statement goes out with PQsendQueryPrepared / PQsendQueryParams and is waited
// for with poll(2) on the connection's socket, so that a server that stops answering
// costs at most the deadline, never a hang. Parameters and results are binary.
#pragma once

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <libpq-fe.h>

#include <leaselock/storage_error.hpp>

namespace leaselock::detail::postgres {

using SteadyTime = std::chrono::steady_clock::time_point;

/// Where a failed statement leaves the operation.
enum class Failure {
  refused,  // the server refused the statement: nothing was applied
  retry,    // a transient refusal (deadlock, serialization): nothing applied, try again
  unknown,  // the connection broke after the statement went out: it may have been applied
};

/// A StorageError that also says whether the statement may have been applied.
class StatementError : public StorageError {
 public:
  StatementError(const std::string& what, const std::string& server, Failure failure)
      : StorageError(what, server), failure_(failure) {}
  Failure failure() const noexcept { return failure_; }

 private:
  Failure failure_;
};

/// libpq's message without its trailing newline.
inline std::string libpq_message(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text.empty() ? std::string("unknown libpq error") : text;
}

/// Big-endian integers, as PostgreSQL's binary format has them.
inline void put_be(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}
inline std::uint64_t get_be(const char* p, int bytes) noexcept {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

/// Bound parameters, all binary.
class Params {
 public:
  Params& i64(std::int64_t value) { return add(20, be(static_cast<std::uint64_t>(value), 8)); }
  Params& i32(std::int32_t value) { return add(23, be(static_cast<std::uint32_t>(value), 4)); }
  Params& boolean(bool value) { return add(16, std::string(1, value ? '\1' : '\0')); }
  Params& bytes(std::string_view value) { return add(17, std::string(value)); }
  Params& text(std::string_view value) { return add(25, std::string(value)); }
  /// A timestamptz: microseconds since 2000-01-01 UTC.
  Params& timestamptz(std::int64_t micros) {
    return add(1184, be(static_cast<std::uint64_t>(micros), 8));
  }
  Params& null(unsigned type) {
    types_.push_back(type);
    values_.emplace_back();
    nulls_.push_back(true);
    return *this;
  }

  int count() const noexcept { return static_cast<int>(types_.size()); }
  const unsigned* types() const noexcept { return types_.data(); }

  /// Pointers for libpq: valid while this object is unchanged.
  void pointers(std::vector<const char*>& values, std::vector<int>& lengths,
                std::vector<int>& formats) const {
    values.clear();
    lengths.clear();
    formats.assign(types_.size(), 1);
    for (std::size_t i = 0; i < values_.size(); ++i) {
      values.push_back(nulls_[i] ? nullptr : values_[i].data());
      lengths.push_back(static_cast<int>(values_[i].size()));
    }
  }

 private:
  static std::string be(std::uint64_t value, int bytes) {
    std::string out;
    put_be(out, value, bytes);
    return out;
  }
  Params& add(unsigned type, std::string value) {
    types_.push_back(type);
    values_.push_back(std::move(value));
    nulls_.push_back(false);
    return *this;
  }

  std::vector<unsigned> types_;
  std::vector<std::string> values_;
  std::vector<bool> nulls_;
};

/// A result, freed on destruction.
class Result {
 public:
  Result() noexcept = default;
  explicit Result(PGresult* result) noexcept : result_(result) {}
  Result(Result&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}
  Result& operator=(Result&& other) noexcept {
    std::swap(result_, other.result_);
    return *this;
  }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  ~Result() {
    if (result_) PQclear(result_);
  }

  PGresult* raw() const noexcept { return result_; }

  int rows() const noexcept { return PQntuples(result_); }
  bool null(int row, int column) const noexcept { return PQgetisnull(result_, row, column) != 0; }
  std::string_view bytes(int row, int column) const noexcept {
    return {PQgetvalue(result_, row, column),
            static_cast<std::size_t>(PQgetlength(result_, row, column))};
  }
  std::int64_t i64(int row, int column) const noexcept {
    const std::string_view v = bytes(row, column);
    if (v.size() == 4) return static_cast<std::int32_t>(get_be(v.data(), 4));
    return v.size() == 8 ? static_cast<std::int64_t>(get_be(v.data(), 8)) : 0;
  }
  bool boolean(int row, int column) const noexcept {
    const std::string_view v = bytes(row, column);
    return v.size() == 1 && v[0] != 0;
  }

 private:
  PGresult* result_ = nullptr;
};

/// One connection. Not thread-safe: the pool lends it to one thread at a time.
class Connection {
 public:
  /// Connects within `timeout`; StorageError naming the server and libpq's message
  /// otherwise. With `prepared_statements` false, run_prepared() sends its SQL text every
  /// time instead (for a pooler that does not keep named statements across transactions).
  Connection(const std::string& conninfo, std::chrono::milliseconds timeout,
             bool prepared_statements = true)
      : prepared_statements_(prepared_statements) {
    const SteadyTime deadline = std::chrono::steady_clock::now() + timeout;
    conn_ = PQconnectStart(conninfo.c_str());
    if (!conn_) throw StorageError("leaselock: PostgreSQL: out of memory connecting", "postgresql");
    if (PQstatus(conn_) == CONNECTION_BAD) fail_connect("could not connect");
    PostgresPollingStatusType status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
      if (status == PGRES_POLLING_FAILED) fail_connect("could not connect");
      const short events = status == PGRES_POLLING_READING ? POLLIN : POLLOUT;
      if (!wait_socket(events, deadline))
        fail_connect("could not connect within " + std::to_string(timeout.count()) + " ms");
      status = PQconnectPoll(conn_);
    }
    server_ = describe_server();
    PQsetNoticeProcessor(
        conn_, [](void*, const char*) {}, nullptr);  // notices are not errors
    if (PQsetnonblocking(conn_, 1) != 0) fail_connect("could not make the connection non-blocking");
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() {
    if (conn_) PQfinish(conn_);
  }

  /// "host:port/database" of this connection, for messages.
  const std::string& server() const noexcept { return server_; }
  bool broken() const noexcept { return broken_ || PQstatus(conn_) != CONNECTION_OK; }
  PGconn* raw() noexcept { return conn_; }
  int socket() const noexcept { return PQsocket(conn_); }

  /// Runs a prepared statement (preparing it on first use) and returns its only result.
  Result run_prepared(const char* name, const std::string& sql, const Params& params,
                      SteadyTime deadline) {
    if (!prepared_statements_) return run(sql, deadline, params);
    if (!is_prepared(name)) {
      prepare(name, sql, params, deadline);
      prepared_.emplace_back(name);
    }
    params.pointers(values_, lengths_, formats_);
    const int sent = PQsendQueryPrepared(conn_, name, params.count(), values_.data(),
                                         lengths_.data(), formats_.data(), 1);
    return finish(sent, deadline, "");
  }

  /// Runs SQL text (schema set-up, LISTEN, transaction control) with bound parameters.
  Result run(const std::string& sql, SteadyTime deadline, const Params& params = Params{}) {
    params.pointers(values_, lengths_, formats_);
    const int sent = PQsendQueryParams(conn_, sql.c_str(), params.count(), params.types(),
                                       values_.data(), lengths_.data(), formats_.data(), 1);
    return finish(sent, deadline, sql);
  }

  /// Runs several statements of SQL text, with no parameters and no results (schema set-up).
  void run_script(const std::string& sql, SteadyTime deadline) {
    finish(PQsendQuery(conn_, sql.c_str()), deadline, sql);
  }

  /// Waits until the socket is ready for `events` or the deadline passes.
  bool wait_socket(short events, SteadyTime deadline) const {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() < 0) return false;
      pollfd fd{PQsocket(conn_), events, 0};
      const int ready = ::poll(&fd, 1, static_cast<int>(left.count()) + 1);
      if (ready > 0) return true;
      if (ready < 0 && errno != EINTR) return false;
    }
  }

  /// Whether the server closed this connection while nothing was asked of it (a
  /// restart, a terminated session): its socket is readable. An idle connection that
  /// does not listen is sent nothing else worth keeping it for; it counts as broken.
  bool closed_while_idle() noexcept {
    if (broken()) return true;
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    if (::poll(&fd, 1, 0) == 0) return false;
    broken_ = true;
    return true;
  }

  /// Marks the connection unusable (it is dropped when returned to the pool).
  void poison() noexcept { broken_ = true; }

 private:
  [[noreturn]] void fail_connect(const std::string& what) {
    const std::string server = describe_server();
    const std::string message = libpq_message(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw StorageError("leaselock: PostgreSQL at " + server + ": " + what + ": " + message, server);
  }

  std::string describe_server() const {
    const char* host = PQhost(conn_);
    const char* port = PQport(conn_);
    const char* db = PQdb(conn_);
    std::string text = host && *host ? host : "localhost";
    if (port && *port) text += ":" + std::string(port);
    if (db && *db) text += "/" + std::string(db);
    return text;
  }

  bool is_prepared(const char* name) const noexcept {
    for (const std::string& p : prepared_)
      if (p == name) return true;
    return false;
  }

  void prepare(const char* name, const std::string& sql, const Params& params,
               SteadyTime deadline) {
    const int sent = PQsendPrepare(conn_, name, sql.c_str(), params.count(), params.types());
    finish(sent, deadline, sql);
  }

  // Flushes what was sent, waits for the result, drains the rest; throws on failure.
  Result finish(int sent, SteadyTime deadline, const std::string& what) {
    if (!sent) fail(Failure::refused, "could not send");  // nothing reached the server
    for (;;) {
      const int flushed = PQflush(conn_);
      if (flushed == 0) break;
      if (flushed < 0 || !wait_socket(POLLOUT, deadline))
        fail(Failure::unknown, "could not send the statement");
    }
    Result result;
    bool have = false;
    for (;;) {
      while (PQisBusy(conn_) == 0) {
        PGresult* next = PQgetResult(conn_);
        if (!next) {
          if (!have) fail(Failure::unknown, "no result");
          return check(std::move(result), what);
        }
        const auto failed = [](PGresult* r) {
          const ExecStatusType status = PQresultStatus(r);
          return status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK;
        };
        if (!have || (failed(next) && !failed(result.raw()))) {  // the first error counts
          result = Result(next);
          have = true;
        } else {
          PQclear(next);
        }
      }
      if (!wait_socket(POLLIN, deadline)) {
        broken_ = true;
        fail(Failure::unknown, "no answer before the deadline");
      }
      if (PQconsumeInput(conn_) == 0) fail(Failure::unknown, "connection lost");
    }
  }

  Result check(Result result, const std::string& what) {
    PGresult* raw = result.raw();
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return result;
    const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    const std::string sqlstate = state ? state : "";
    // The server's primary message (and detail), without its CONTEXT lines.
    const char* primary = PQresultErrorField(raw, PG_DIAG_MESSAGE_PRIMARY);
    const char* detail = PQresultErrorField(raw, PG_DIAG_MESSAGE_DETAIL);
    std::string message = primary ? std::string(primary) : libpq_message(PQresultErrorMessage(raw));
    if (detail) message += " (" + std::string(detail) + ")";
    if (!sqlstate.empty()) message += " [SQLSTATE " + sqlstate + "]";
    Failure failure = Failure::refused;
    if (sqlstate == "40001" || sqlstate == "40P01") failure = Failure::retry;
    if (PQstatus(conn_) != CONNECTION_OK || sqlstate.rfind("08", 0) == 0 ||
        sqlstate.rfind("57P", 0) == 0) {
      broken_ = true;
      failure = Failure::unknown;
    }
    (void)what;
    throw StatementError("leaselock: PostgreSQL at " + server_ + ": " + message, server_, failure);
  }

  [[noreturn]] void fail(Failure failure, const std::string& what) {
    broken_ = true;
    throw StatementError("leaselock: PostgreSQL at " + server_ + ": " + what + ": " +
                             libpq_message(PQerrorMessage(conn_)),
                         server_, failure);
  }

  PGconn* conn_ = nullptr;
  std::string server_;
  bool broken_ = false;
  bool prepared_statements_ = true;
  std::vector<std::string> prepared_;
  std::vector<const char*> values_;
  std::vector<int> lengths_;
  std::vector<int> formats_;
};

}  // namespace leaselock::detail::postgres
