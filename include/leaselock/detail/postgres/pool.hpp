// leaselock/detail/postgres/pool.hpp — the connections a PostgresBackend runs its
// operations on: at most `size` of them, each lent to one thread at a time.
//
// An operation borrows a connection for its whole length (ConnectionPool::Lent) and gives
// it back at the end; one that broke is closed instead, which frees its place. When every
// place is taken, a borrower waits for one to be given back. A connection the server
// closed while it lay idle (a restart, a terminated session) is dropped before it is lent.
// Getting a connection is retried with backoff (10 ms doubling to 1 s) for up to the
// connect timeout, so that an operation begun while the server restarts waits for it.
// The listening connection (listener.hpp) is not one of these.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/storage_error.hpp>

namespace leaselock::detail::postgres {

/// Idle connections to one server, and the count of those open (idle or lent), which
/// never exceeds the size. Thread-safe.
class ConnectionPool {
 public:
  /// Opens nothing yet: the first borrow() connects.
  ConnectionPool(std::string conninfo, std::size_t size, std::chrono::milliseconds connect_timeout,
                 bool prepared_statements)
      : conninfo_(std::move(conninfo)),
        size_(size),
        connect_timeout_(connect_timeout),
        prepared_statements_(prepared_statements) {}
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  /// A connection lent to one thread for as long as this object lives; given back to
  /// the pool (or closed, if it broke) when it goes.
  class Lent {
   public:
    // An idle connection, or a new one: retried with backoff for up to the connect
    // timeout, so that an operation begun while the server restarts waits for it.
    explicit Lent(ConnectionPool& pool) : pool_(pool) { reconnect(); }
    Lent(const Lent&) = delete;
    Lent& operator=(const Lent&) = delete;
    ~Lent() { pool_.give_back(std::move(conn_)); }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }
    // A fresh connection in place of a broken one, retried with backoff for up to the
    // connect timeout.
    void replace() {
      conn_.reset();
      std::lock_guard<std::mutex> lock(pool_.mutex_);
      --pool_.open_;
      pool_.changed_.notify_one();
    }
    void reconnect() {
      const auto give_up = std::chrono::steady_clock::now() + pool_.connect_timeout_;
      std::chrono::milliseconds backoff(10);
      for (;;) {
        try {
          conn_ = pool_.borrow();
          return;
        } catch (const StorageError&) {
          if (std::chrono::steady_clock::now() + backoff >= give_up) throw;
        }
        std::this_thread::sleep_for(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      }
    }

   private:
    ConnectionPool& pool_;
    std::unique_ptr<Connection> conn_;
  };

  /// An idle connection, or a new one once a place is free (waits for one); one try at
  /// connecting, which throws StorageError if it fails within the connect timeout.
  std::unique_ptr<Connection> borrow() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
    // One the server closed while it lay idle (a restart, a terminated session) is
    // dropped before a statement goes out on it: that statement's outcome would be
    // taken for unknown.
    while (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      if (!conn->closed_while_idle()) return conn;
      --open_;
    }
    ++open_;
    lock.unlock();
    try {
      return std::make_unique<Connection>(conninfo_, connect_timeout_, prepared_statements_);
    } catch (...) {
      lock.lock();
      --open_;
      changed_.notify_one();
      throw;
    }
  }

  /// Takes back a borrowed connection: kept idle, or closed if it broke.
  void give_back(std::unique_ptr<Connection> conn) noexcept {
    if (!conn) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (conn->broken()) {
      conn.reset();
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
    changed_.notify_one();
  }

 private:
  const std::string conninfo_;
  const std::size_t size_;
  const std::chrono::milliseconds connect_timeout_;
  const bool prepared_statements_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
};

}  // namespace leaselock::detail::postgres
