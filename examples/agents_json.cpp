// Agent processes edit one shared JSON state file at once — what leaselock is for. Each
// agent is a process (fork): it reads state.json, parses it, "thinks" a moment, and writes
// it back through a temp file + rename, as an editor does.
//
// Round 1, no coordination: two agents read the same state and the later write wins, so
// edits get lost. Round 2, each process takes an exclusive lease on the file's path from its
// own file_lock_manager (all share one lock directory) for each edit: none lost. The file
// carries the fence of its last writer, and a writer refuses to write over a newer fence,
// the way real storage should. On the way, round 2
//   - kills (SIGKILL) an agent while it holds the lease: a waiting agent takes the lease
//     over within milliseconds, long before the lease's TTL, and no completed edit is lost;
//   - stalls an agent past its lease's TTL: another agent takes the lease and writes, and
//     when the stalled one resumes, the file's newer fence refuses its write — this is how
//     storage shuts out a stale holder.
//
// Run: ./agents_json [agents >= 2] [edits-per-agent]      (4 agents x 100 edits by default)
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <leaselock/leaselock.hpp>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC: the same in every process

constexpr auto kTtl = 2000ms;      // the agents' leases
constexpr auto kStallTtl = 150ms;  // the lease of the agent that stalls
constexpr int kMaxThinkMicros = 200;
constexpr std::size_t kVictim = 1;  // agent-2 is killed while it holds the lease

// ---------------------------------------------------------------------------------------
// The shared state and its JSON form:
//   {"edits": {"agent-1": 12, "agent-2": 7}, "total": 19, "fence": 23}

struct State {
  std::map<std::string, std::uint64_t> edits;  // the edits the file credits each agent with
  std::uint64_t total = 0;                     // all edits the file has seen
  std::uint64_t fence = 0;                     // the fence of the lease that wrote it last
};

void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string to_json(const State& state) {
  std::string out = "{\"edits\": {";
  const char* separator = "";
  for (const auto& [name, count] : state.edits) {
    out += separator;
    append_json_string(out, name);
    out += ": " + std::to_string(count);
    separator = ", ";
  }
  out += "}, \"total\": " + std::to_string(state.total);
  out += ", \"fence\": " + std::to_string(state.fence) + "}\n";
  return out;
}

// Reads exactly what to_json writes — an object with "edits" (an object of string keys and
// integers), "total" and "fence", in any order, each once — with JSON's whitespace, string
// escapes and integer syntax (non-negative, up to 2^64 - 1). Anything else is rejected.
class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  std::optional<State> state() {
    State state;
    bool has_edits = false, has_total = false, has_fence = false;
    const bool ok = object([&](const std::string& key) {
      if (key == "edits" && !has_edits) {
        has_edits = true;
        return object([&](const std::string& name) {
          std::uint64_t count = 0;
          return integer(count) && state.edits.emplace(name, count).second;
        });
      }
      if (key == "total" && !has_total) {
        has_total = true;
        return integer(state.total);
      }
      if (key == "fence" && !has_fence) {
        has_fence = true;
        return integer(state.fence);
      }
      return false;  // an unknown or repeated key
    });
    skip_space();
    if (!ok || pos_ != text_.size() || !has_edits || !has_total || !has_fence) return {};
    return state;
  }

 private:
  // '{' [string ':' value (',' string ':' value)*] '}'; member(key) reads the value.
  template <class Member>
  bool object(Member&& member) {
    skip_space();
    if (!eat('{')) return false;
    skip_space();
    if (eat('}')) return true;
    for (;;) {
      std::string key;
      skip_space();
      if (!string(key)) return false;
      skip_space();
      if (!eat(':')) return false;
      skip_space();
      if (!member(key)) return false;
      skip_space();
      if (eat('}')) return true;
      if (!eat(',')) return false;
    }
  }

  bool string(std::string& out) {
    if (!eat('"')) return false;
    while (pos_ < text_.size()) {
      const char c = text_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // must have been escaped
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ == text_.size()) return false;
      switch (text_[pos_++]) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {  // \u00XX: what to_json writes for control characters; ASCII only
          unsigned code = 0;
          for (int i = 0; i < 4; ++i) {
            if (pos_ == text_.size()) return false;
            const char h = text_[pos_++];
            const int digit = h >= '0' && h <= '9'   ? h - '0'
                              : h >= 'a' && h <= 'f' ? h - 'a' + 10
                              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                     : -1;
            if (digit < 0) return false;
            code = code * 16 + static_cast<unsigned>(digit);
          }
          if (code >= 0x80) return false;  // never written here: not supported
          out += static_cast<char>(code);
          break;
        }
        default: return false;
      }
    }
    return false;  // no closing quote
  }

  bool integer(std::uint64_t& out) {
    const std::size_t start = pos_;
    out = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      const auto digit = static_cast<std::uint64_t>(text_[pos_] - '0');
      if (out > (UINT64_MAX - digit) / 10) return false;  // overflow
      out = out * 10 + digit;
      ++pos_;
    }
    const std::size_t length = pos_ - start;
    return length == 1 || (length > 1 && text_[start] != '0');  // no leading zeros
  }

  bool eat(char c) {
    if (pos_ == text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

State load(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  std::optional<State> state = JsonReader(text.str()).state();
  if (!state) throw std::runtime_error(file.string() + " is not a state file: " + text.str());
  return std::move(*state);
}

// Replaces the whole file (temp + rename: a reader never sees half a file). A writer that
// holds a lease passes its fence, and the write is refused (false) when the file already
// carries a newer fence: a newer holder wrote it, so this one's lease ran out. (A real store
// makes this check and the write one atomic step, e.g. a conditional update; a plain file
// cannot, so here the check re-reads the file just before the rename.)
bool store(const fs::path& file, const State& state, std::uint64_t fence = 0) {
  if (fence != 0 && load(file).fence > fence) return false;
  const fs::path temp = file.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << to_json(state);
    out.close();
    if (!out) throw std::runtime_error("cannot write " + temp.string());
  }
  fs::rename(temp, file);
  return true;
}

// ---------------------------------------------------------------------------------------
// Processes and pipes.

std::int64_t to_ns(Clock::time_point t) {
  return static_cast<std::int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

std::int64_t now_ns() { return to_ns(Clock::now()); }

double ms_between(std::int64_t from_ns, std::int64_t to_ns) {
  return static_cast<double>(to_ns - from_ns) / 1e6;
}

[[noreturn]] void throw_errno(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

struct Pipe {
  int read_end = -1;
  int write_end = -1;
};

Pipe make_pipe() {
  int fds[2];
  if (::pipe(fds) != 0) throw_errno("pipe");
  return Pipe{fds[0], fds[1]};
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void write_all(int fd, const void* data, std::size_t size) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("write to pipe");
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Reads exactly `size` bytes; false if the pipe ends first (the writer exited).
bool read_all(int fd, void* data, std::size_t size) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = ::read(fd, bytes, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("read from pipe");
    if (n == 0) return false;
    bytes += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Blocks until every write end of the pipe is closed: a gate the parent opens for all.
void wait_for_gate(int fd) {
  char byte;
  while (read_all(fd, &byte, 1)) {
  }
}

// The parent's children: whatever has not been reaped when this goes away (an error) is
// killed and reaped, by pid.
class Children {
 public:
  Children() = default;
  Children(const Children&) = delete;
  Children& operator=(const Children&) = delete;
  ~Children() {
    for (const pid_t pid : pids_) {
      ::kill(pid, SIGKILL);
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }

  // Runs body() in a child process that first closes `close_fds` (the other processes'
  // pipe ends) and ends with body's return value as exit status. The child only returns
  // through _exit: no destructor of the parent's objects runs in it.
  template <class Body>
  pid_t spawn(const std::vector<int>& close_fds, const std::string& name, Body&& body) {
    std::fflush(nullptr);  // or the child would inherit, and later print, buffered output
    const pid_t pid = ::fork();
    if (pid < 0) throw_errno("fork");
    if (pid == 0) {
      for (const int fd : close_fds) ::close(fd);
      int code = 3;
      try {
        code = body();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
      } catch (...) {
        std::fprintf(stderr, "%s: unknown error\n", name.c_str());
      }
      ::_exit(code);
    }
    pids_.push_back(pid);
    return pid;
  }

  // Waits for `pid` to end; returns its wait status.
  int reap(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
      if (errno != EINTR) throw_errno("waitpid");
    }
    for (auto it = pids_.begin(); it != pids_.end(); ++it) {
      if (*it == pid) {
        pids_.erase(it);
        break;
      }
    }
    return status;
  }

 private:
  std::vector<pid_t> pids_;
};

bool exited_ok(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

// ---------------------------------------------------------------------------------------
// The agents.

struct Setup {
  fs::path file;       // the shared state
  fs::path lock_dir;   // the FileBackend's lock directory
  std::string key;     // the lease's key: the file's path
  std::size_t agents;  // agent processes per round
  std::size_t edits;   // edits per agent
};

std::string agent_name(std::size_t index) { return "agent-" + std::to_string(index + 1); }

// What an agent tells the parent when it is done.
struct Summary {
  std::uint64_t completed = 0;     // edits written to the file
  std::uint64_t refused = 0;       // writes refused because the file had a newer fence
  std::uint64_t acquisitions = 0;  // Acquisition records that follow
};
struct Acquisition {
  std::uint64_t fence = 0;
  std::int64_t at_ns = 0;  // when acquire() returned
};
// What the victim and the stalling agent tell the parent while they hold the lease.
struct Holding {
  std::uint64_t fence = 0;
  std::uint64_t completed = 0;
  std::int64_t acquired_ns = 0;
  std::int64_t expires_ns = 0;
};

class Thinker {
 public:
  Thinker() : random_(static_cast<std::uint32_t>(::getpid()) ^ 0x9e3779b9u) {}
  // The agent "thinks" between reading and writing, for 0-200 us.
  void think() { std::this_thread::sleep_for(std::chrono::microseconds(delay_(random_))); }

 private:
  std::minstd_rand random_;
  std::uniform_int_distribution<int> delay_{0, kMaxThinkMicros};
};

// One edit on a state just read: one more for `name`; the writer's fence goes in too.
bool finish_edit(const fs::path& file, State state, const std::string& name, std::uint64_t fence) {
  state.edits[name] += 1;
  state.total += 1;
  if (fence != 0) state.fence = fence;
  return store(file, state, fence);
}

void send_summary(int fd, const Summary& summary, const std::vector<Acquisition>& acquisitions) {
  write_all(fd, &summary, sizeof summary);
  write_all(fd, acquisitions.data(), acquisitions.size() * sizeof(Acquisition));
}

// Round 1: read, think, write; nothing keeps two agents from doing it at once.
int unguarded_agent(const Setup& setup, std::size_t index, int start_gate, int report) {
  wait_for_gate(start_gate);
  Thinker thinker;
  Summary summary;
  for (std::size_t i = 0; i < setup.edits; ++i) {
    State state = load(setup.file);
    thinker.think();
    if (finish_edit(setup.file, std::move(state), agent_name(index), 0)) ++summary.completed;
  }
  send_summary(report, summary, {});
  return 0;
}

struct GuardedPipes {
  int start_gate = -1;   // read: opens when all agents exist
  int victim_gate = -1;  // read: opens once the victim holds the lease
  int report = -1;       // write: this agent's Summary
  int holding = -1;      // write (the victim only): Holding, once it holds the lease
};

// Round 2: the same edit, under an exclusive lease on the file's path. This agent's own
// FileBackend and LockManager: a child of fork() never uses its parent's.
int guarded_agent(const Setup& setup, std::size_t index, const GuardedPipes& pipes) {
  const std::string name = agent_name(index);
  leaselock::file_lock_manager locks{leaselock::FileBackend{setup.lock_dir}, {}, name};
  const bool victim = index == kVictim;
  wait_for_gate(pipes.start_gate);
  Thinker thinker;
  Summary summary;
  std::vector<Acquisition> acquisitions;
  for (std::size_t i = 0; i < setup.edits; ++i) {
    // Staged so that every other agent waits for the lease when the victim dies: nobody
    // makes its last edit before the victim holds the lease.
    if (!victim && i + 1 == setup.edits) wait_for_gate(pipes.victim_gate);

    auto lease = locks.acquire(setup.key, leaselock::Mode::exclusive, kTtl);
    acquisitions.push_back({lease.fence(), now_ns()});
    State state = load(setup.file);
    if (victim && i == setup.edits / 2) {
      // Mid-edit, holding the lease: tell the parent, which kills this process.
      const Holding holding{lease.fence(), summary.completed, to_ns(lease.acquired_at()),
                            to_ns(lease.expires_at())};
      write_all(pipes.holding, &holding, sizeof holding);
      std::this_thread::sleep_for(30s);
      return 4;  // never killed
    }
    thinker.think();
    if (finish_edit(setup.file, std::move(state), name, lease.fence())) {
      ++summary.completed;
    } else {
      ++summary.refused;
    }
  }  // each edit's lease is released at the end of its iteration
  summary.acquisitions = acquisitions.size();
  send_summary(pipes.report, summary, acquisitions);
  return 0;
}

// ---------------------------------------------------------------------------------------
// The rounds, run by the parent.

struct Outcome {
  std::map<std::string, std::uint64_t> completed;  // per agent: edits it made
  bool ok = true;                                  // every agent behaved
};

std::uint64_t sum(const std::map<std::string, std::uint64_t>& counts) {
  std::uint64_t total = 0;
  for (const auto& entry : counts) total += entry.second;
  return total;
}

// Edits an agent made that the file does not credit it with.
std::uint64_t lost_edits(const Outcome& outcome, const State& state) {
  std::uint64_t lost = 0;
  for (const auto& [name, made] : outcome.completed) {
    const auto it = state.edits.find(name);
    const std::uint64_t credited = it == state.edits.end() ? 0 : it->second;
    if (credited < made) lost += made - credited;
  }
  return lost;
}

// The file must add up: its total is the sum of its credits, and it credits nobody with
// more edits than they made. (Checks the file's own consistency; loss is counted apart.)
bool consistent(const Outcome& outcome, const State& state) {
  for (const auto& [name, credited] : state.edits) {
    const auto it = outcome.completed.find(name);
    if (it == outcome.completed.end() || credited > it->second) return false;
  }
  return sum(state.edits) == state.total;
}

Outcome round_without_leases(const Setup& setup, Children& children) {
  store(setup.file, State{});
  Pipe start = make_pipe();
  std::vector<Pipe> reports;
  for (std::size_t i = 0; i < setup.agents; ++i) reports.push_back(make_pipe());

  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < setup.agents; ++i) {
    std::vector<int> others{start.write_end};
    for (std::size_t j = 0; j < setup.agents; ++j) {
      others.push_back(reports[j].read_end);
      if (j != i) others.push_back(reports[j].write_end);
    }
    const int start_gate = start.read_end, report = reports[i].write_end;
    pids.push_back(children.spawn(others, agent_name(i), [&setup, i, start_gate, report] {
      return unguarded_agent(setup, i, start_gate, report);
    }));
  }
  close_fd(start.read_end);
  for (Pipe& pipe : reports) close_fd(pipe.write_end);
  close_fd(start.write_end);  // all agents start now

  Outcome outcome;
  for (std::size_t i = 0; i < setup.agents; ++i) {
    Summary summary;
    if (read_all(reports[i].read_end, &summary, sizeof summary)) {
      outcome.completed[agent_name(i)] = summary.completed;
    } else {
      outcome.ok = false;
    }
    close_fd(reports[i].read_end);
    if (!exited_ok(children.reap(pids[i]))) outcome.ok = false;
  }
  return outcome;
}

// The kill: the victim holds the lease and waits; everybody else waits for the lease. The
// parent shows status(), kills the victim, and later finds who took the lease over, when.
Outcome guarded_agents(const Setup& setup, Children& children) {
  Pipe start = make_pipe(), victim_gate = make_pipe(), holding = make_pipe();
  std::vector<Pipe> reports;
  for (std::size_t i = 0; i < setup.agents; ++i) reports.push_back(make_pipe());

  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < setup.agents; ++i) {
    std::vector<int> others{start.write_end, victim_gate.write_end, holding.read_end};
    if (i != kVictim) others.push_back(holding.write_end);
    for (std::size_t j = 0; j < setup.agents; ++j) {
      others.push_back(reports[j].read_end);
      if (j != i) others.push_back(reports[j].write_end);
    }
    const GuardedPipes pipes{start.read_end, victim_gate.read_end, reports[i].write_end,
                             i == kVictim ? holding.write_end : -1};
    pids.push_back(children.spawn(others, agent_name(i),
                                  [&setup, i, pipes] { return guarded_agent(setup, i, pipes); }));
  }
  close_fd(start.read_end);
  close_fd(victim_gate.read_end);
  close_fd(holding.write_end);
  for (Pipe& pipe : reports) close_fd(pipe.write_end);
  close_fd(start.write_end);  // all agents start now

  const std::string victim = agent_name(kVictim);
  Holding held;
  if (!read_all(holding.read_end, &held, sizeof held)) {
    throw std::runtime_error(victim + " ended before it held the lease");
  }
  close_fd(victim_gate.write_end);  // the others may make their last edit now

  {
    // The parent's view, through its own manager on the same lock directory.
    leaselock::file_lock_manager observer{leaselock::FileBackend{setup.lock_dir}, {}, "parent"};
    std::optional<leaselock::file_lock_manager::LockInfo> info;
    const auto give_up = Clock::now() + 2s;
    do {
      info = observer.status(setup.key);
      if (info && info->waiters + 1 >= setup.agents) break;
      std::this_thread::sleep_for(1ms);
    } while (Clock::now() < give_up);
    if (info && !info->holders.empty()) {
      const auto& holder = info->holders.front();
      std::printf(
          "  %s holds the lease mid-edit; status(): held by %s, fence %llu, expires in %.0f ms, "
          "%zu waiting\n",
          victim.c_str(), holder.owner.c_str(), static_cast<unsigned long long>(holder.fence),
          std::chrono::duration<double, std::milli>(holder.expires_at - Clock::now()).count(),
          info->waiters);
    } else {
      std::printf("  %s holds the lease mid-edit (fence %llu); status() shows no holder!\n",
                  victim.c_str(), static_cast<unsigned long long>(held.fence));
    }
  }

  const std::int64_t killed_ns = now_ns();
  if (::kill(pids[kVictim], SIGKILL) != 0) throw_errno("kill");
  const int victim_status = children.reap(pids[kVictim]);  // reaped: its pid is gone now
  std::printf("  kill -9 %s (pid %ld)\n", victim.c_str(), static_cast<long>(pids[kVictim]));

  Outcome outcome;
  outcome.ok = WIFSIGNALED(victim_status) && WTERMSIG(victim_status) == SIGKILL;
  outcome.completed[victim] = held.completed;
  std::optional<std::pair<std::string, Acquisition>> successor;  // the next fence after it
  std::uint64_t refused = 0;
  for (std::size_t i = 0; i < setup.agents; ++i) {
    if (i == kVictim) {
      close_fd(reports[i].read_end);
      continue;
    }
    Summary summary;
    std::vector<Acquisition> acquisitions;
    if (read_all(reports[i].read_end, &summary, sizeof summary)) {
      acquisitions.resize(summary.acquisitions);
      if (!read_all(reports[i].read_end, acquisitions.data(),
                    acquisitions.size() * sizeof(Acquisition))) {
        outcome.ok = false;
      }
      outcome.completed[agent_name(i)] = summary.completed;
      refused += summary.refused;
      if (summary.completed != setup.edits) outcome.ok = false;
    } else {
      outcome.ok = false;
    }
    for (const Acquisition& a : acquisitions) {
      if (a.fence > held.fence && (!successor || a.fence < successor->second.fence)) {
        successor = std::make_pair(agent_name(i), a);
      }
    }
    close_fd(reports[i].read_end);
    if (!exited_ok(children.reap(pids[i]))) outcome.ok = false;
  }
  close_fd(holding.read_end);

  const double ttl_ms = std::chrono::duration<double, std::milli>(kTtl).count();
  if (!successor) {
    std::printf("  nobody took the lease after %s died!\n", victim.c_str());
    outcome.ok = false;
  } else {
    const double after_ms = ms_between(killed_ns, successor->second.at_ns);
    const double ttl_left_ms = ms_between(killed_ns, held.expires_ns);
    std::printf(
        "  %s took the lease over %.1f ms after the kill (fence %llu); its TTL had %.0f ms to "
        "go\n",
        successor->first.c_str(), after_ms,
        static_cast<unsigned long long>(successor->second.fence), ttl_left_ms);
    if (after_ms < 0) {
      std::printf("  ... which is BEFORE the kill: two agents held the lease at once!\n");
      outcome.ok = false;
    } else if (after_ms >= ttl_ms / 2) {
      std::printf("  ... which is not far below the %.0f ms TTL!\n", ttl_ms);
      outcome.ok = false;
    }
  }
  if (refused > 0) {
    std::printf("  %llu writes refused as stale: two agents held the lease at once!\n",
                static_cast<unsigned long long>(refused));
    outcome.ok = false;
  }
  return outcome;
}

// The stale holder: agent-paused takes the lease with a short TTL, reads the file and stalls
// (a long GC pause, a stopped process) past its TTL. agent-late gets the lease once that
// TTL ran out and writes. When agent-paused resumes, the file's newer fence refuses its
// write — the edit of agent-late stays.
void stale_holder(const Setup& setup, Children& children, Outcome& outcome) {
  const std::string paused = "agent-paused", late = "agent-late";
  Pipe holding = make_pipe(), resume = make_pipe(), late_gate = make_pipe();
  Pipe paused_report = make_pipe(), late_report = make_pipe();
  const std::vector<int> all{holding.read_end,       holding.write_end,       resume.read_end,
                             resume.write_end,       late_gate.read_end,      late_gate.write_end,
                             paused_report.read_end, paused_report.write_end, late_report.read_end,
                             late_report.write_end};
  const auto all_but = [&all](std::vector<int> keep) {
    std::vector<int> others;
    for (const int fd : all) {
      bool kept = false;
      for (const int k : keep) kept = kept || k == fd;
      if (!kept) others.push_back(fd);
    }
    return others;
  };

  const pid_t paused_pid = children.spawn(
      all_but({holding.write_end, resume.read_end, paused_report.write_end}), paused, [&] {
        leaselock::file_lock_manager locks{leaselock::FileBackend{setup.lock_dir}, {}, paused};
        auto lease = locks.acquire(setup.key, leaselock::Mode::exclusive, kStallTtl);
        State state = load(setup.file);
        const Holding held{lease.fence(), 0, to_ns(lease.acquired_at()), to_ns(lease.expires_at())};
        write_all(holding.write_end, &held, sizeof held);
        wait_for_gate(resume.read_end);  // stalled until the parent resumes it
        const std::uint64_t stored = finish_edit(setup.file, std::move(state), paused, held.fence);
        const std::uint64_t report[2] = {stored, load(setup.file).fence};
        write_all(paused_report.write_end, report, sizeof report);
        return 0;
      });
  const pid_t late_pid =
      children.spawn(all_but({late_gate.read_end, late_report.write_end}), late, [&] {
        leaselock::file_lock_manager locks{leaselock::FileBackend{setup.lock_dir}, {}, late};
        wait_for_gate(late_gate.read_end);
        auto lease = locks.acquire(setup.key, leaselock::Mode::exclusive, kTtl);
        const Acquisition acquired{lease.fence(), now_ns()};
        State state = load(setup.file);
        Thinker().think();
        const std::uint64_t stored = finish_edit(setup.file, std::move(state), late, lease.fence());
        write_all(late_report.write_end, &acquired, sizeof acquired);
        write_all(late_report.write_end, &stored, sizeof stored);
        return 0;
      });
  for (int* fd : {&holding.write_end, &resume.read_end, &late_gate.read_end,
                  &paused_report.write_end, &late_report.write_end}) {
    close_fd(*fd);
  }

  Holding held;
  if (!read_all(holding.read_end, &held, sizeof held)) {
    throw std::runtime_error(paused + " ended before it held the lease");
  }
  std::printf("  %s takes the lease (fence %llu, TTL %lld ms), reads the file and stalls (alive)\n",
              paused.c_str(), static_cast<unsigned long long>(held.fence),
              static_cast<long long>(kStallTtl.count()));
  outcome.completed[paused] = 0;

  close_fd(late_gate.write_end);  // agent-late asks for the lease now
  Acquisition acquired;
  std::uint64_t late_stored = 0;
  if (read_all(late_report.read_end, &acquired, sizeof acquired) &&
      read_all(late_report.read_end, &late_stored, sizeof late_stored)) {
    outcome.completed[late] = late_stored;
    std::printf(
        "  %s gets the lease %.0f ms later, when that TTL runs out, and writes with fence %llu\n",
        late.c_str(), ms_between(held.acquired_ns, acquired.at_ns),
        static_cast<unsigned long long>(acquired.fence));
    if (late_stored != 1 || acquired.fence <= held.fence || acquired.at_ns < held.expires_ns) {
      std::printf("  ... while %s's lease was still running!\n", paused.c_str());
      outcome.ok = false;
    }
  } else {
    outcome.ok = false;
  }
  if (!exited_ok(children.reap(late_pid))) outcome.ok = false;

  close_fd(resume.write_end);  // agent-paused resumes
  std::uint64_t report[2] = {0, 0};
  if (read_all(paused_report.read_end, report, sizeof report)) {
    std::printf("  %s resumes and writes with fence %llu: %s (the file has fence %llu)\n",
                paused.c_str(), static_cast<unsigned long long>(held.fence),
                report[0] ? "WRITTEN over a newer edit!" : "refused as stale",
                static_cast<unsigned long long>(report[1]));
    outcome.completed[paused] = report[0];
    if (report[0] != 0) outcome.ok = false;
  } else {
    outcome.ok = false;
  }
  if (!exited_ok(children.reap(paused_pid))) outcome.ok = false;
  for (int* fd : {&holding.read_end, &paused_report.read_end, &late_report.read_end}) {
    close_fd(*fd);
  }
}

// A fresh directory for the state file and the lock directory, 0700, removed at the end.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/leaselock-agents-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw_errno("mkdtemp");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::optional<std::size_t> parse_count(const char* text, std::size_t min, std::size_t max) {
  char* end = nullptr;
  errno = 0;
  const unsigned long value = std::strtoul(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || value < min || value > max) {
    return {};
  }
  return static_cast<std::size_t>(value);
}

int run(std::size_t agents, std::size_t edits) {
  const TempDir dir;
  Children children;  // declared after dir: any child left is killed before dir goes
  const fs::path file = dir.path() / "state.json";
  const Setup setup{file, dir.path() / "locks", file.string(), agents, edits};
  const std::uint64_t expected = static_cast<std::uint64_t>(agents) * edits;

  std::printf("%zu agent processes each make %zu edits to %s\n", agents, edits, file.c_str());
  std::printf("(read the JSON, think 0-%d us, write it back via a temp file + rename)\n\n",
              kMaxThinkMicros);

  std::printf("round 1: no leases\n");
  const Outcome first = round_without_leases(setup, children);
  const State after_first = load(file);
  std::printf("  the file credits");
  for (std::size_t i = 0; i < agents; ++i) {
    const auto it = after_first.edits.find(agent_name(i));
    std::printf("%s %s with %llu", i == 0 ? "" : ",", agent_name(i).c_str(),
                static_cast<unsigned long long>(it == after_first.edits.end() ? 0 : it->second));
  }
  std::printf(" of their %zu edits\n", edits);
  const std::uint64_t made_first = sum(first.completed);
  std::printf("without leases : %6llu edits kept, %6llu lost\n\n",
              static_cast<unsigned long long>(after_first.total),
              static_cast<unsigned long long>(lost_edits(first, after_first)));
  if (!first.ok || made_first != expected || !consistent(first, after_first)) {
    std::printf("round 1 went wrong: an agent failed or the file does not add up\n");
    return 1;
  }

  std::printf("round 2: each agent takes an exclusive lease on the file's path for each edit\n");
  std::printf("(TTL %lld ms) from its own file_lock_manager on %s\n",
              static_cast<long long>(kTtl.count()), setup.lock_dir.c_str());
  store(file, State{});
  Outcome second = guarded_agents(setup, children);
  stale_holder(setup, children, second);
  const State after_second = load(file);
  const std::uint64_t lost = lost_edits(second, after_second);
  std::printf("with leaselock : %6llu edits kept, %6llu lost (last fence %llu)\n",
              static_cast<unsigned long long>(after_second.total),
              static_cast<unsigned long long>(lost),
              static_cast<unsigned long long>(after_second.fence));
  std::printf(
      "  (%s made %llu edits before it was killed; its unfinished edit never reached the "
      "file)\n",
      agent_name(kVictim).c_str(),
      static_cast<unsigned long long>(second.completed[agent_name(kVictim)]));
  const bool adds_up = consistent(second, after_second);
  if (!adds_up) std::printf("round 2: the file does not add up: %s", to_json(after_second).c_str());
  if (!second.ok) std::printf("round 2 went wrong: see above\n");
  return lost == 0 && adds_up && second.ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<std::size_t> agents = argc > 1 ? parse_count(argv[1], 2, 64) : 4;
  const std::optional<std::size_t> edits = argc > 2 ? parse_count(argv[2], 1, 100000) : 100;
  if (argc > 3 || !agents || !edits) {
    std::fprintf(stderr, "usage: %s [agents, 2-64] [edits-per-agent, 1-100000]\n", argv[0]);
    return 2;
  }
  try {
    return run(*agents, *edits);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agents_json: %s\n", e.what());
    return 1;
  }
}
