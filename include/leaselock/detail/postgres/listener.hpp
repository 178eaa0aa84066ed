// leaselock/detail/postgres/listener.hpp — the one listening connection of a
// PostgresBackend, and the waiters it wakes.
//
// A thread holds a connection that LISTENs on the schema's channel. Every change a waiter
// may wait for is announced with pg_notify(channel, a notice: notice.hpp) in the same
// transaction; the thread wakes the waiters it concerns at once, handing a waiter the
// grant the notice carries for it. Notifications are a hint: on
// any connection loss the thread reconnects with backoff (10 ms doubling to 1 s), listens
// again and then wakes every waiter, which re-reads its record. A waiter also wakes at
// its holders' expiry and at least every few seconds.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include <leaselock/detail/parker.hpp>
#include <leaselock/detail/postgres/connection.hpp>
#include <leaselock/detail/postgres/notice.hpp>

namespace leaselock::detail::postgres {

class Listener {
 public:
  Listener(std::string conninfo, std::string channel_identifier,
           std::chrono::milliseconds connect_timeout)
      : conninfo_(std::move(conninfo)),
        channel_(std::move(channel_identifier)),
        timeout_(connect_timeout) {}
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  ~Listener() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    if (thread_.joinable()) {
      const char byte = 1;
      [[maybe_unused]] const auto written = ::write(stop_pipe_[1], &byte, 1);
      thread_.join();
    }
    for (int fd : stop_pipe_)
      if (fd >= 0) ::close(fd);
  }

  /// Starts the thread on first use and waits until it listens; StorageError with the
  /// last connection error if it cannot within the connect timeout.
  void ensure_listening() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!thread_.joinable()) {
      if (::pipe2(stop_pipe_, O_CLOEXEC | O_NONBLOCK) != 0)
        throw StorageError("leaselock: PostgresBackend: pipe2 failed", "postgresql", errno);
      thread_ = std::thread([this] { run(); });
    }
    // Not at the first error: the thread reconnects with backoff meanwhile (a killed
    // session, a restarting server), and the error may be an earlier connection's.
    if (!changed_.wait_for(lock, timeout_ + std::chrono::milliseconds(500),
                           [&] { return listening_; })) {
      const std::string error = error_.empty() ? "the listening connection did not start" : error_;
      throw StorageError(error, "postgresql");
    }
  }

  /// A waiter with the token of hash `token_hash` for the key of hash `key_hash`,
  /// registered for as long as it lives.
  class Sleeper {
   public:
    Sleeper(Listener& listener, std::uint64_t key_hash, std::uint64_t token_hash, Parker& parker)
        : listener_(listener), key_hash_(key_hash), token_hash_(token_hash), parker_(parker) {
      listener_.add(*this);
    }
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;
    ~Sleeper() { listener_.remove(*this); }

    /// The grant a notification announced for this waiter since the last call, if any.
    std::optional<GrantHint> take_grant() {
      std::lock_guard<std::mutex> lock(listener_.sleepers_mutex_);
      return std::exchange(grant_, std::nullopt);
    }

   private:
    friend class Listener;
    Listener& listener_;
    const std::uint64_t key_hash_;
    const std::uint64_t token_hash_;
    Parker& parker_;
    std::optional<GrantHint> grant_;  // guarded by the listener's sleepers_mutex_
  };

  /// How many times the listening connection was (re)established.
  std::uint64_t connections() const noexcept { return connections_.load(); }

 private:
  using Map = std::unordered_multimap<std::uint64_t, Sleeper*>;

  void add(Sleeper& sleeper) {
    std::lock_guard<std::mutex> lock(sleepers_mutex_);
    sleepers_.emplace(sleeper.key_hash_, &sleeper);
  }
  void remove(Sleeper& sleeper) noexcept {
    std::lock_guard<std::mutex> lock(sleepers_mutex_);
    const auto range = sleepers_.equal_range(sleeper.key_hash_);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second != &sleeper) continue;
      sleepers_.erase(it);
      return;
    }
  }
  // Wakes the waiters `notice` concerns, handing each the grant it carries for it.
  void wake(const Notice& notice) noexcept {
    std::lock_guard<std::mutex> lock(sleepers_mutex_);
    const auto range = sleepers_.equal_range(notice.key_hash);
    for (auto it = range.first; it != range.second; ++it) {
      Sleeper& sleeper = *it->second;
      bool concerned = notice.everyone;
      for (const Notice::Waiter& waiter : notice.waiters) {
        if (waiter.token_hash != sleeper.token_hash_) continue;
        concerned = true;
        if (waiter.grant) sleeper.grant_ = waiter.grant;
      }
      if (concerned) sleeper.parker_.unpark();
    }
  }
  void wake_all() noexcept {
    std::lock_guard<std::mutex> lock(sleepers_mutex_);
    for (auto& entry : sleepers_) entry.second->parker_.unpark();
  }

  bool stopping() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_;
  }

  // Sleeps for `delay` unless told to stop. Returns false when stopping.
  bool pause(std::chrono::milliseconds delay) {
    pollfd fd{stop_pipe_[0], POLLIN, 0};
    ::poll(&fd, 1, static_cast<int>(delay.count()));
    return !stopping();
  }

  void run() {
    std::chrono::milliseconds backoff(10);
    while (!stopping()) {
      try {
        Connection conn(conninfo_, timeout_);
        conn.run("LISTEN " + channel_, std::chrono::steady_clock::now() + timeout_);
        // Whatever was announced while nobody listened: the waiters registered by now
        // re-read. Before listening_ is set: a waiter let through by it registers after
        // LISTEN and misses nothing, so it is not woken for nothing.
        wake_all();
        {
          std::lock_guard<std::mutex> lock(mutex_);
          listening_ = true;
        }
        changed_.notify_all();
        ++connections_;
        backoff = std::chrono::milliseconds(10);
        receive(conn);
      } catch (const std::exception& error) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = error.what();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        listening_ = false;
      }
      changed_.notify_all();
      if (!pause(backoff)) break;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }
  }

  // Until the connection breaks or the listener stops.
  void receive(Connection& conn) {
    for (;;) {
      pollfd fds[2] = {{conn.socket(), POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      // A quiet connection is checked every second (a dead server shows as an error).
      const int ready = ::poll(fds, 2, 1000);
      if (stopping()) return;
      if (ready < 0 && errno != EINTR) return;
      if (PQconsumeInput(conn.raw()) == 0 || PQstatus(conn.raw()) != CONNECTION_OK) {
        std::lock_guard<std::mutex> lock(mutex_);
        error_ = "leaselock: PostgreSQL at " + conn.server() +
                 ": listening connection lost: " + libpq_message(PQerrorMessage(conn.raw()));
        return;
      }
      while (PGnotify* note = PQnotifies(conn.raw())) {
        const std::optional<Notice> notice = parse_notice(note->extra ? note->extra : "");
        PQfreemem(note);
        if (notice) {
          wake(*notice);
        } else {
          wake_all();  // not ours to read: whoever it concerns re-reads
        }
      }
    }
  }

  const std::string conninfo_;
  const std::string channel_;
  const std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool stop_ = false;
  bool listening_ = false;
  std::string error_;
  int stop_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<std::uint64_t> connections_{0};
  std::mutex sleepers_mutex_;
  Map sleepers_;
};

}  // namespace leaselock::detail::postgres
