// cli/mcp/stdio.cpp — the stdio transport: one JSON-RPC message per line each way.
//
// stdout carries nothing but responses and notifications, one per line, each written
// whole under one lock; logs go to stderr. Requests are answered on the reading thread,
// except lock_file calls that may wait: they run on a thread of their own, so that the
// reader goes on (pings, other calls, and notifications/cancelled, which withdraws a
// wait at once). When stdin closes, pending waits are withdrawn and the server exits.
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "transports.hpp"

namespace leaselock::cli::mcp {

namespace {

class StdioServer {
 public:
  StdioServer(Protocol& protocol, std::size_t max_message)
      : protocol_(protocol), max_(max_message) {}

  int run() {
    std::string buffer;
    std::string line;
    bool discarding = false;  // inside a line over the limit
    char chunk[65536];
    for (;;) {
      const ssize_t got = ::read(STDIN_FILENO, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      std::size_t start = 0;
      for (std::size_t i = 0; i < static_cast<std::size_t>(got); ++i) {
        if (chunk[i] != '\n') continue;
        if (!discarding) {
          buffer.append(chunk + start, i - start);
          line.swap(buffer);
          buffer.clear();
          on_line(line);
        }
        discarding = false;
        start = i + 1;
      }
      if (!discarding) {
        buffer.append(chunk + start, static_cast<std::size_t>(got) - start);
        if (buffer.size() > max_) {
          buffer.clear();
          discarding = true;
          send(too_large_response(max_));
        }
      }
    }
    if (!discarding && !buffer.empty()) on_line(buffer);
    shut_down();
    return 0;
  }

 private:
  void on_line(std::string& line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    json message;
    if (!parse_message(line, message)) {
      send(error_response(nullptr, rpc_code::parse_error, "Parse error: not valid JSON"));
      return;
    }
    Incoming in = classify(std::move(message));
    switch (in.kind) {
      case Incoming::Kind::invalid:
        send(error_response(in.id, rpc_code::invalid_request, "Invalid Request: " + in.problem));
        return;
      case Incoming::Kind::response: return;  // we send no requests: nothing to match
      case Incoming::Kind::notification: on_notification(in); return;
      case Incoming::Kind::request: break;
    }
    if (in.method == "initialize") {
      answer(in, [&] { return protocol_.initialize(in, session_); });
      return;
    }
    if (may_wait(in)) {
      start_waiter(std::move(in));
      return;
    }
    const Exchange exchange{[this](const json& note) { send(note); }, {}};
    answer(in, [&] { return protocol_.handle(in, &session_, exchange); });
  }

  void on_notification(const Incoming& in) {
    if (in.method == "notifications/initialized") {
      session_.initialized_notified = true;
    } else if (in.method == "notifications/cancelled") {
      const auto id = in.params.find("requestId");
      if (id == in.params.end()) return;
      std::lock_guard<std::mutex> lock(waiters_mutex_);
      const auto found = waiters_.find(id_key(*id));
      if (found != waiters_.end()) found->second->store(true);
    }
    // Other notifications need nothing from this server.
  }

  template <class Fn>
  void answer(const Incoming& in, Fn&& fn) {
    try {
      send(result_response(in.id, fn()));
    } catch (const RpcError& error) {
      send(error_response(in.id, error));
    } catch (const Cancelled&) {
      // A cancelled request gets no response.
    } catch (const std::exception& error) {
      send(error_response(in.id, rpc_code::internal_error, error.what()));
    }
  }

  void start_waiter(Incoming in) {
    auto cancelled = std::make_shared<std::atomic<bool>>(false);
    const std::string key = id_key(in.id);
    {
      std::lock_guard<std::mutex> lock(waiters_mutex_);
      waiters_[key] = cancelled;
      reap_locked();
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread thread(
        [this, in = std::move(in), cancelled, key, done, session = session_]() mutable {
          const Exchange exchange{[this](const json& note) { send(note); },
                                  [cancelled] { return cancelled->load(); }};
          answer(in, [&] { return protocol_.handle(in, &session, exchange); });
          std::lock_guard<std::mutex> lock(waiters_mutex_);
          const auto found = waiters_.find(key);
          if (found != waiters_.end() && found->second == cancelled) waiters_.erase(found);
          done->store(true);
        });
    std::lock_guard<std::mutex> lock(waiters_mutex_);
    threads_.push_back({std::move(thread), std::move(done)});
  }

  // Joins the threads that have finished. waiters_mutex_ held.
  void reap_locked() {
    for (auto it = threads_.begin(); it != threads_.end();) {
      if (it->done->load()) {
        it->thread.join();
        it = threads_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void shut_down() {
    std::vector<Worker> threads;
    {
      std::lock_guard<std::mutex> lock(waiters_mutex_);
      // Nobody is left to receive a lock_id: withdraw every wait.
      for (auto& waiter : waiters_) waiter.second->store(true);
      threads.swap(threads_);
    }
    for (Worker& worker : threads) worker.thread.join();
  }

  void send(const json& message) {
    std::string text = dump(message);
    text += '\n';
    std::lock_guard<std::mutex> lock(out_mutex_);
    write_all(STDOUT_FILENO, text, /*socket=*/false);
  }

  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };

  Protocol& protocol_;
  const std::size_t max_;
  Session session_;
  std::mutex out_mutex_;
  std::mutex waiters_mutex_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> waiters_;
  std::vector<Worker> threads_;
};

}  // namespace

int serve_stdio(Protocol& protocol, const TransportLimits& limits) {
  StdioServer server(protocol, limits.max_message);
  return server.run();
}

}  // namespace leaselock::cli::mcp
