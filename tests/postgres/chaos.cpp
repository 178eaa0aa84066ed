// The multi-host chaos test's two halves (tests/postgres/chaos.sh drives them):
//
//   leaselock_postgres_chaos worker --conninfo C --schema S --host H --seconds N --log FILE
//       one holder on a test host: takes shared and exclusive leases with short TTLs on a
//       few keys through postgres_lock_manager (server time), and writes a line per lease
//       with what it certainly saw in the server's time (server_time_log.hpp). Lost
//       connections, a restarting or unreachable server: it counts the error and goes on.
//   leaselock_postgres_chaos check --dir D --cut-host H [--min-leases N]
//       the invariant checker over every worker's log (D/*.log) and the driver's events
//       (D/events): no exclusive overlap, fences unique and in grant order, and work done
//       on every host, on the cut-off host before and after its cut, and after the
//       server's restart. Exit status 0 only if all holds.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "server_time_log.hpp"

using namespace std::chrono_literals;
namespace st = test::server_time;

namespace {

std::atomic<bool> stopping{false};

std::map<std::string, std::string> arguments(int argc, char** argv) {
  std::map<std::string, std::string> args;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strncmp(argv[i], "--", 2) != 0) throw std::invalid_argument(argv[i]);
    args[argv[i] + 2] = argv[i + 1];
  }
  return args;
}

std::string required(const std::map<std::string, std::string>& args, const std::string& name) {
  const auto it = args.find(name);
  if (it == args.end()) throw std::invalid_argument("missing --" + name);
  return it->second;
}

int worker(const std::map<std::string, std::string>& args) {
  const std::string conninfo = required(args, "conninfo");
  const std::string schema = required(args, "schema");
  const std::string host = required(args, "host");
  const std::string name = required(args, "name");  // unique per worker
  const auto seconds = std::chrono::seconds(std::stoi(required(args, "seconds")));
  const int keys = args.count("keys") ? std::stoi(args.at("keys")) : 4;
  std::ofstream log(required(args, "log"), std::ios::app);
  const auto until = std::chrono::steady_clock::now() + seconds;
  ::signal(SIGTERM, [](int) { stopping = true; });
  ::signal(SIGINT, [](int) { stopping = true; });

  // Its sessions carry the name `chaos_...`, which the driver's kills pick from.
  const std::string tagged = conninfo + " application_name=chaos_" + name;
  leaselock::PostgresBackendOptions options;
  options.schema = schema;
  options.pool_size = 2;
  options.connect_timeout = 1500ms;
  options.statement_timeout = 1500ms;
  options.max_sleep = 500ms;
  options.cleanup_interval = 2000ms;  // cleanup and its fence floors run under the chaos too
  st::ServerView view(tagged, schema, 1500ms);

  // The server may be restarting, or this host cut off: keep trying until the end.
  std::unique_ptr<leaselock::postgres_lock_manager> locks;
  std::size_t errors = 0;
  while (!locks && !stopping && std::chrono::steady_clock::now() < until) {
    try {
      locks = std::make_unique<leaselock::postgres_lock_manager>(
          leaselock::PostgresBackend{tagged, options});
      log << "hello " << host << ' ' << view.client_address() << std::endl;
    } catch (const leaselock::StorageError& error) {
      locks.reset();
      ++errors;
      std::this_thread::sleep_for(200ms);
    }
  }

  std::mt19937_64 random(std::random_device{}());
  std::size_t leases = 0;
  std::size_t timeouts = 0;
  while (locks && !stopping && std::chrono::steady_clock::now() < until) {
    const std::string key = "chaos/" + std::to_string(random() % static_cast<unsigned>(keys));
    const auto mode = random() % 3 == 0 ? leaselock::Mode::exclusive : leaselock::Mode::shared;
    const auto ttl = std::chrono::milliseconds(300 + random() % 700);
    const auto wait = std::chrono::milliseconds(random() % 800);
    // Mostly short holds; one in 16 outlives its TTL (the holder still thinks it holds:
    // the server must not), one in 10 is never released.
    const auto hold = random() % 16 == 0 ? ttl + 100ms : std::chrono::milliseconds(random() % 150);
    const bool release = random() % 10 != 0;
    try {
      const auto held = st::hold_one(*locks, view, host, key, mode, ttl, wait, release,
                                     [&] { std::this_thread::sleep_for(hold); });
      if (!held) {
        ++timeouts;
        continue;
      }
      ++leases;
      log << st::format(*held) << std::endl;
    } catch (const leaselock::StorageError& error) {
      ++errors;
      if (errors <= 20) log << "error " << host << ' ' << error.what() << std::endl;
      std::this_thread::sleep_for(50ms);
    }
  }
  log << "summary " << host << ' ' << leases << ' ' << timeouts << ' ' << errors << std::endl;
  return 0;
}

struct Events {
  std::map<std::string, st::Nanos> at;  // event name -> server time
  std::size_t kills = 0;                // sessions the driver terminated
};

Events read_events(const std::filesystem::path& file) {
  Events events;
  std::ifstream in(file);
  std::string tag;
  std::string name;
  st::Nanos value = 0;
  while (in >> tag >> name >> value) {
    if (tag == "event") events.at[name] = value;
    if (tag == "kill") events.kills += static_cast<std::size_t>(value);
  }
  return events;
}

int check(const std::map<std::string, std::string>& args) {
  const std::filesystem::path dir = required(args, "dir");
  const std::string cut_host = required(args, "cut-host");
  const std::size_t min_leases =
      args.count("min-leases") ? std::stoul(args.at("min-leases")) : std::size_t{10};
  const Events events = read_events(dir / "events");
  std::vector<st::Held> all;
  std::map<std::string, std::set<std::string>> addresses;  // host -> client addresses seen
  std::map<std::string, std::size_t> errors;
  std::map<std::string, std::size_t> timeouts;
  std::map<std::string, std::size_t> workers;
  std::map<std::string, std::size_t> error_kinds;  // the first errors each worker logged
  std::size_t unreadable = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".log") continue;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string tag;
      std::string host;
      words >> tag >> host;
      if (tag == "lease") {
        if (auto held = st::parse(line)) {
          all.push_back(*held);
        } else {
          ++unreadable;
        }
      } else if (tag == "hello") {
        std::string address;
        words >> address;
        addresses[host].insert(address);
      } else if (tag == "error") {
        std::string kind;
        std::getline(words, kind);
        for (char& c : kind)
          if (c >= '0' && c <= '9') c = '#';
        ++error_kinds[kind];
      } else if (tag == "summary") {
        std::size_t leases = 0;
        std::size_t t = 0;
        std::size_t e = 0;
        words >> leases >> t >> e;
        timeouts[host] += t;
        errors[host] += e;
        ++workers[host];
      }
    }
  }
  bool ok = true;
  const auto fail = [&](const std::string& what) {
    std::cout << "FAILED: " << what << '\n';
    ok = false;
  };
  for (const char* name : {"restart_begin", "restart_end", "cut_begin", "cut_end"})
    if (!events.at.count(name)) fail(std::string("the driver recorded no ") + name);
  if (!ok) return 1;
  const st::Nanos restart_end = events.at.at("restart_end");
  const st::Nanos cut_begin = events.at.at("cut_begin");
  const st::Nanos cut_end = events.at.at("cut_end");

  const st::Report report = st::check(all);
  std::map<std::string, std::size_t> per_host;
  std::map<std::string, std::size_t> after_restart;
  std::size_t cut_before = 0;
  std::size_t cut_after = 0;
  std::size_t exclusive = 0;
  for (const st::Held& h : all) {
    if (!h.has_interval()) continue;
    ++per_host[h.host];
    if (h.mode == leaselock::Mode::exclusive) ++exclusive;
    if (h.asked > restart_end) ++after_restart[h.host];
    if (h.host == cut_host && h.got < cut_begin) ++cut_before;
    if (h.host == cut_host && h.asked > cut_end) ++cut_after;
  }
  std::cout << "leases: " << report.leases << " (" << report.intervals << " with a known interval, "
            << exclusive << " of them exclusive)\n"
            << "sessions killed: " << events.kills
            << ", server restart: " << (restart_end - events.at.at("restart_begin")) / 1000000
            << " ms, host " << cut_host << " cut off for " << (cut_end - cut_begin) / 1000000
            << " ms\n";
  std::set<std::string> all_addresses;
  for (const auto& [host, count] : per_host) {
    std::cout << "  " << host << ": " << count << " leases (" << after_restart[host]
              << " after the restart), " << timeouts[host] << " timeouts, " << errors[host]
              << " errors, " << workers[host] << " workers, address";
    for (const auto& a : addresses[host]) std::cout << ' ' << a;
    std::cout << '\n';
  }
  std::cout << "  " << cut_host << " before its cut: " << cut_before << ", after: " << cut_after
            << '\n'
            << "violations: " << report.violations() << " (overlaps " << report.overlaps
            << ", repeated fences " << report.repeated_fences << ", fence order "
            << report.order_errors << ")\n";
  for (const auto& example : report.examples) std::cout << "  " << example << '\n';
  std::cout << "errors the workers saw (the first of each worker):\n";
  for (const auto& [kind, count] : error_kinds) std::cout << "  " << count << "x" << kind << '\n';

  if (report.violations() != 0) fail("invariants violated");
  if (unreadable != 0) fail(std::to_string(unreadable) + " unreadable lease lines");
  if (per_host.size() < 2 || !per_host.count(cut_host)) fail("fewer than two hosts did work");
  for (const auto& [host, count] : per_host) {
    if (count < min_leases) fail(host + " held fewer than " + std::to_string(min_leases));
    if (after_restart[host] == 0) fail(host + " held nothing after the server restart");
    if (addresses[host].size() != 1) fail(host + " did not connect from one address");
    for (const auto& a : addresses[host]) {
      if (all_addresses.count(a)) fail(host + " shares its address " + a + " with another");
      all_addresses.insert(a);
    }
  }
  if (cut_before == 0 || cut_after == 0) fail(cut_host + " did no work before or after its cut");
  if (events.kills == 0) fail("no session was killed");
  std::cout << (ok ? "OK" : "FAILED") << '\n';
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "worker") return worker(arguments(argc, argv));
    if (mode == "check") return check(arguments(argc, argv));
  } catch (const std::exception& error) {
    std::cerr << "leaselock_postgres_chaos: " << error.what() << '\n';
    return 2;
  }
  std::cerr << "usage: leaselock_postgres_chaos worker|check --option value...\n";
  return 2;
}
