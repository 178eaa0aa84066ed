// bench/bench_mcp.cpp — what a lock costs an agent through `leaselock mcp`.
//
//   build/release/bench/bench_mcp [--quick] [PATH/TO/leaselock]
//
// Over stdio (the server a child process on pipes) and over HTTP (one keep-alive
// connection to `--http 127.0.0.1:0`): the round trip of a ping — the transport and JSON
// framing alone, the baseline — beside the round trips of lock_file and unlock_file, and
// their ratio (medians per call, the calls interleaved). Then calls per second with 4
// clients (stdio: 4 servers, as 4 agents run them; HTTP: 4 connections to one server),
// each locking and unlocking its own file, beside 1 client in the same run (medians of
// alternating windows).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_common.hpp"

namespace {

using bench::fmt;
using bench::median;
using bench::mono_ns;
namespace fs = std::filesystem;

#ifdef LEASELOCK_CLI_PATH
const char* const kDefaultBinary = LEASELOCK_CLI_PATH;
#else
const char* const kDefaultBinary = "leaselock";
#endif

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_mcp: %s\n", what.c_str());
  std::exit(1);
}

// A server child process; stdin/stdout on pipes, stderr on a pipe we read for the port.
struct Server {
  pid_t pid = -1;
  int to = -1, from = -1, err = -1;
  ~Server() {
    if (to >= 0) ::close(to);
    if (from >= 0) ::close(from);
    if (err >= 0) ::close(err);
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

std::unique_ptr<Server> spawn(const std::string& binary, const std::vector<std::string>& args) {
  int in[2], out[2], err[2];
  if (::pipe(in) || ::pipe(out) || ::pipe(err)) die("pipe failed");
  auto server = std::make_unique<Server>();
  server->pid = ::fork();
  if (server->pid < 0) die("fork failed");
  if (server->pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) ::close(fd);
    std::vector<char*> argv{const_cast<char*>(binary.c_str())};
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  server->to = in[1];
  server->from = out[0];
  server->err = err[0];
  return server;
}

// Reads from `fd` into `buffer` until `done(buffer)` says how much is one message.
template <class Done>
std::string read_until(int fd, std::string& buffer, Done&& done) {
  char chunk[65536];
  for (;;) {
    if (const std::size_t end = done(buffer)) {
      std::string message = buffer.substr(0, end);
      buffer.erase(0, end);
      return message;
    }
    const ssize_t got = ::read(fd, chunk, sizeof chunk);
    if (got <= 0) die("the server closed the connection");
    buffer.append(chunk, static_cast<std::size_t>(got));
  }
}

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t wrote = ::write(fd, data.data() + done, data.size() - done);
    if (wrote <= 0) die("write failed");
    done += static_cast<std::size_t>(wrote);
  }
}

std::string field(const std::string& message, const std::string& name) {
  const std::string start = "\"" + name + "\":\"";
  const auto at = message.find(start);
  if (at == std::string::npos) return {};
  const auto from = at + start.size();
  return message.substr(from, message.find('"', from) - from);
}

// One JSON-RPC conversation: over a stdio server's pipes or an HTTP connection.
class Channel {
 public:
  virtual ~Channel() = default;
  virtual std::string call(const std::string& request) = 0;

  void initialize() {
    const std::string answer = call(
        R"({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}})");
    if (answer.find("protocolVersion") == std::string::npos) die("initialize failed: " + answer);
    notify(R"({"jsonrpc":"2.0","method":"notifications/initialized"})");
  }
  virtual void notify(const std::string& message) = 0;

  void ping() { call(R"({"jsonrpc":"2.0","id":1,"method":"ping"})"); }
  std::string lock(const std::string& path) {
    const std::string answer = call(
        R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"lock_file","arguments":{"path":")" +
        path + R"(","ttl_seconds":30}}})");
    std::string id = field(answer, "lock_id");
    if (id.empty()) die("lock_file failed: " + answer);
    return id;
  }
  void unlock(const std::string& path, const std::string& id) {
    const std::string answer = call(
        R"({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"unlock_file","arguments":{"path":")" +
        path + R"(","lock_id":")" + id + R"("}}})");
    if (answer.find("\"released\":true") == std::string::npos) die("unlock failed: " + answer);
  }
};

class StdioChannel final : public Channel {
 public:
  StdioChannel(const std::string& binary, const fs::path& dir)
      : server_(spawn(binary, {"mcp", "--dir", dir.string()})) {
    initialize();
  }
  std::string call(const std::string& request) override {
    write_all(server_->to, request + "\n");
    return read_until(server_->from, buffer_, [](const std::string& b) -> std::size_t {
      const auto nl = b.find('\n');
      return nl == std::string::npos ? 0 : nl + 1;
    });
  }
  void notify(const std::string& message) override { write_all(server_->to, message + "\n"); }

 private:
  std::unique_ptr<Server> server_;
  std::string buffer_;
};

class HttpChannel final : public Channel {
 public:
  explicit HttpChannel(unsigned short port) : port_(port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      die("cannot connect to the HTTP server");
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    initialize();
  }
  ~HttpChannel() override { ::close(fd_); }

  std::string call(const std::string& request) override {
    write_all(fd_, head(request.size()) + request);
    return response();
  }
  void notify(const std::string& message) override {
    write_all(fd_, head(message.size()) + message);
    response();
  }

 private:
  std::string head(std::size_t length) const {
    std::string text = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port_) +
                       "\r\nContent-Type: application/json\r\nAccept: application/json, "
                       "text/event-stream\r\nMCP-Protocol-Version: 2025-11-25\r\n";
    if (!session_.empty()) text += "Mcp-Session-Id: " + session_ + "\r\n";
    return text + "Content-Length: " + std::to_string(length) + "\r\n\r\n";
  }
  std::string response() {
    const std::string message = read_until(fd_, buffer_, [](const std::string& b) -> std::size_t {
      const auto end = b.find("\r\n\r\n");
      if (end == std::string::npos) return 0;
      const auto at = b.find("Content-Length: ");
      const std::size_t length = at < end ? std::stoul(b.substr(at + 16)) : 0;
      return b.size() >= end + 4 + length ? end + 4 + length : 0;
    });
    const auto at = message.find("Mcp-Session-Id: ");
    if (at != std::string::npos) session_ = message.substr(at + 16, 32);
    return message.substr(message.find("\r\n\r\n") + 4);
  }

  unsigned short port_;
  int fd_;
  std::string session_;
  std::string buffer_;
};

struct Config {
  int reps = 7;
  int calls = 2000;  // per repetition, per measured operation
  double seconds = 0.5;
};

struct RoundTrips {
  double ping_us, lock_us, unlock_us;
};

// Per-call medians, the calls interleaved (ping, lock_file, ping, unlock_file, ...) so
// that whatever else the machine does weighs on the baseline and the tools alike.
RoundTrips round_trips(Channel& channel, const Config& cfg) {
  std::vector<double> ping, lock, unlock;
  const std::size_t n = static_cast<std::size_t>(cfg.reps) * static_cast<std::size_t>(cfg.calls);
  ping.reserve(2 * n);
  lock.reserve(n);
  unlock.reserve(n);
  const auto us = [](std::int64_t from, std::int64_t to) {
    return static_cast<double>(to - from) / 1000.0;
  };
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t t0 = mono_ns();
    channel.ping();
    const std::int64_t t1 = mono_ns();
    const std::string id = channel.lock("/srv/project/src/main.cpp");
    const std::int64_t t2 = mono_ns();
    channel.ping();
    const std::int64_t t3 = mono_ns();
    channel.unlock("/srv/project/src/main.cpp", id);
    const std::int64_t t4 = mono_ns();
    ping.push_back(us(t0, t1));
    lock.push_back(us(t1, t2));
    ping.push_back(us(t2, t3));
    unlock.push_back(us(t3, t4));
  }
  return {median(ping), median(lock), median(unlock)};
}

// Tool calls per second (lock_file and unlock_file each count) from `clients` threads,
// each on its own channel and its own file, for cfg.seconds.
double calls_per_second(const std::vector<std::unique_ptr<Channel>>& channels, std::size_t clients,
                        const Config& cfg) {
  std::atomic<bool> stop{false};
  std::vector<long> counts(clients, 0);
  std::vector<std::thread> threads;
  const std::int64_t start = mono_ns();
  for (std::size_t c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      const std::string path = "/srv/project/file-" + std::to_string(c);
      while (!stop.load(std::memory_order_relaxed)) {
        channels[c]->unlock(path, channels[c]->lock(path));
        counts[c] += 2;
      }
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(cfg.seconds));
  stop = true;
  for (auto& thread : threads) thread.join();
  long total = 0;
  for (long count : counts) total += count;
  return static_cast<double>(total) / (static_cast<double>(mono_ns() - start) / 1e9);
}

unsigned short read_port(Server& server) {
  std::string buffer;
  const std::string line = read_until(server.err, buffer, [](const std::string& b) -> std::size_t {
    const auto nl = b.find('\n');
    return nl == std::string::npos ? 0 : nl + 1;
  });
  const auto at = line.find("127.0.0.1:");
  if (at == std::string::npos) die("the HTTP server did not start: " + line);
  return static_cast<unsigned short>(std::stoul(line.substr(at + 10)));
}

void print_round_trips(const char* transport, const RoundTrips& r) {
  std::printf("| %s | ping (baseline) | %s µs | 1.00× |\n", transport,
              fmt("%.1f", r.ping_us).c_str());
  std::printf("| %s | lock_file | %s µs | %s× |\n", transport, fmt("%.1f", r.lock_us).c_str(),
              fmt("%.2f", r.lock_us / r.ping_us).c_str());
  std::printf("| %s | unlock_file | %s µs | %s× |\n", transport, fmt("%.1f", r.unlock_us).c_str(),
              fmt("%.2f", r.unlock_us / r.ping_us).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string binary = kDefaultBinary;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      cfg.reps = 3;
      cfg.calls = 200;
      cfg.seconds = 0.3;
    } else if (!arg.empty() && arg[0] != '-') {
      binary = arg;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [PATH/TO/leaselock]\n", argv[0]);
      return 2;
    }
  }
  ::signal(SIGPIPE, SIG_IGN);
  const fs::path dir = fs::temp_directory_path() / ("bench-mcp-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  utsname uts{};
  ::uname(&uts);
  std::printf(
      "machine: %ld CPUs online, %s, Linux %s; %d x %d calls of each kind, medians; load "
      "average (1, 5 min): %s\n\n",
      ::sysconf(_SC_NPROCESSORS_ONLN), bench::cpu_model().c_str(), uts.release, cfg.reps, cfg.calls,
      bench::loadavg().c_str());

  std::printf("| transport | call | round trip | vs ping |\n|---|---|---|---|\n");
  {
    StdioChannel stdio(binary, dir / "locks");
    print_round_trips("stdio", round_trips(stdio, cfg));
  }
  const auto http_server =
      spawn(binary, {"mcp", "--dir", (dir / "locks").string(), "--http", "127.0.0.1:0"});
  const unsigned short port = read_port(*http_server);
  {
    HttpChannel http(port);
    print_round_trips("HTTP", round_trips(http, cfg));
  }

  std::printf("\n| transport | clients | tool calls/s | vs 1 client |\n|---|---|---|---|\n");
  for (const bool use_http : {false, true}) {
    std::vector<std::unique_ptr<Channel>> channels;
    for (int c = 0; c < 4; ++c) {
      if (use_http) {
        channels.push_back(std::make_unique<HttpChannel>(port));
      } else {
        channels.push_back(std::make_unique<StdioChannel>(binary, dir / "locks"));
      }
    }
    std::vector<double> one, four;
    for (int rep = 0; rep < cfg.reps; ++rep) {
      one.push_back(calls_per_second(channels, 1, cfg));
      four.push_back(calls_per_second(channels, 4, cfg));
    }
    const char* name = use_http ? "HTTP (one server)" : "stdio (a server each)";
    std::printf("| %s | 1 | %s | 1.00× |\n", name, fmt("%.0f", median(one)).c_str());
    std::printf("| %s | 4 | %s | %s× |\n", name, fmt("%.0f", median(four)).c_str(),
                fmt("%.2f", median(four) / median(one)).c_str());
  }
  fs::remove_all(dir);
  return 0;
}
