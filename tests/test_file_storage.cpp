// FileBackend on storage that fails under it: a full file system, and record files cut
// short by someone else. Each case runs in a child process, so that a SIGBUS shows as a
// failure here instead of killing the test run.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::FileBackend;
using leaselock::Mode;
using leaselock::StorageError;

namespace {

using ManualFiles = leaselock::LockManager<leaselock::ManualClock, FileBackend>;

constexpr int kCannotMount = 77;

// In a child: a mount namespace of its own (and, if not root, a user namespace) with a
// tmpfs of `size` at `where`. False if the system allows neither.
bool mount_small_tmpfs(const std::string& where, const std::string& size) {
  if (::geteuid() != 0) {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return false;
    const auto write_file = [](const char* path, const std::string& text) {
      std::ofstream out(path);
      out << text;
      return static_cast<bool>(out.flush());
    };
    write_file("/proc/self/setgroups", "deny");
    if (!write_file("/proc/self/uid_map", std::to_string(uid) + " " + std::to_string(uid) + " 1") ||
        !write_file("/proc/self/gid_map", std::to_string(gid) + " " + std::to_string(gid) + " 1"))
      return false;
  } else if (::unshare(CLONE_NEWNS) != 0) {
    return false;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  const std::string options = "size=" + size + ",mode=0700";
  return ::mount("leaselock-test", where.c_str(), "tmpfs", 0, options.c_str()) == 0;
}

// Writes `path` until the file system is full.
void fill(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  std::vector<char> block(4096, 'f');
  while (fd >= 0 && ::write(fd, block.data(), block.size()) > 0) {
  }
  while (fd >= 0 && ::write(fd, block.data(), 1) > 0) {
  }
  if (fd >= 0) ::close(fd);
}

std::vector<std::string> temporaries_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    if (entry.path().filename().string().rfind(".tmp-", 0) == 0)
      names.push_back(entry.path().filename().string());
  return names;
}

// Runs `body(report)` in a child with a full small tmpfs at `where`; checks it ended
// normally and returns what it reported. Skips, saying so, where no tmpfs can be mounted.
template <class Body>
std::vector<std::string> on_full_tmpfs(const std::string& where, Body&& body) {
  test::Child child([&](const auto& report) {
    if (!mount_small_tmpfs(where, "1m")) return kCannotMount;
    return body(report);
  });
  std::vector<std::string> lines;
  for (std::string line = child.next_line(); !line.empty(); line = child.next_line())
    lines.push_back(line);
  const int code = child.wait();
  if (code == kCannotMount) {
    // Root can always mount a tmpfs in a mount namespace of its own: that must work.
    if (::geteuid() == 0) FAIL("cannot mount a tmpfs as root: " << std::strerror(errno));
    MESSAGE(
        "SKIPPED: cannot mount a small tmpfs here (no user namespaces, not root); "
        "the full-file-system cases did not run");
    WARN_MESSAGE(false, "full-file-system test skipped");
    return {};
  }
  CHECK_MESSAGE(code == 0, "the child ended with " << code << " (135 is SIGBUS)");
  return lines;
}

}  // namespace

std::string outcome(const StorageError& e) {
  return e.code().value() == ENOSPC ? "ENOSPC" : std::string("other error: ") + e.what();
}

TEST_CASE(
    "file: a full file system gives StorageError, never SIGBUS, and leaves nothing half-made") {
  test::TempDir temp;
  const std::string where = temp.path().string();
  const auto lines = on_full_tmpfs(where, [&](const auto& report) {
    const auto dir = std::filesystem::path(where) / "locks";
    leaselock::ManualClock clock;
    ManualFiles locks{FileBackend{dir}, clock};
    auto held = locks.try_acquire("held", Mode::shared, 1h);
    if (!held) return 1;
    fill(where + "/filler");
    // A new record: its file cannot be allocated.
    try {
      (void)locks.try_acquire("new key", Mode::exclusive, 1h);
      report("new key: acquired on a full file system");
    } catch (const StorageError& e) {
      report("new key: " + outcome(e));
    }
    // A record that must grow (holders with long owners), under its mutex.
    std::vector<leaselock::Lease<leaselock::ManualClock>> more;
    try {
      for (int i = 0; i < 8; ++i)
        more.push_back(locks.try_acquire("held", Mode::shared, 1h, 0s, std::string(200, 'o')));
      report("growth: grew on a full file system");
    } catch (const StorageError& e) {
      report("growth: " + outcome(e));
    }
    const auto status = locks.status("held");
    report(std::string("holders as granted: ") +
           (status && status->holders.size() == 1 + more.size() ? "yes" : "no"));
    // A new directory: its meta file cannot be allocated.
    const auto other = std::filesystem::path(where) / "other";
    try {
      FileBackend backend{other};
      report("meta: created on a full file system");
    } catch (const StorageError& e) {
      report("meta: " + outcome(e));
    }
    report("other left behind: " + std::to_string(std::filesystem::exists(other)));
    report("temporaries: " + std::to_string(temporaries_in(dir).size()));
    // With room again, everything works.
    std::filesystem::remove(where + "/filler");
    auto fresh = locks.try_acquire("new key", Mode::exclusive, 1h);
    more.push_back(locks.try_acquire("held", Mode::shared, 1h, 0s, std::string(200, 'o')));
    report(std::string("with room: ") + (fresh && more.back() ? "acquired" : "refused"));
    return 0;
  });
  if (lines.empty()) return;  // skipped, and said so
  CHECK(lines == std::vector<std::string>{
                     "new key: ENOSPC", "growth: ENOSPC", "holders as granted: yes", "meta: ENOSPC",
                     "other left behind: 0", "temporaries: 0", "with room: acquired"});
}

TEST_CASE("file: a record file cut short never kills a process that has it mapped") {
  test::TempDir temp;
  const auto dir = temp.sub("locks");
  test::Child child([&](const auto& report) {
    leaselock::ManualClock clock;
    std::optional<ManualFiles> locks;
    locks.emplace(FileBackend{dir}, clock);
    { (void)locks->try_acquire("idle victim", Mode::exclusive, 1h); }    // cached, idle
    auto held = locks->try_acquire("held victim", Mode::exclusive, 1h);  // pinned
    if (!held) return 1;
    const auto cut = [&](std::string_view key, off_t size) {
      return ::truncate((dir / leaselock::detail::file::record_name(key)).c_str(), size) == 0;
    };
    if (!cut("idle victim", 0) || !cut("held victim", 100)) return 2;
    int granted = 0;
    for (int i = 0; i < 300; ++i)  // other keys, enough to push the victims out of the cache
      granted +=
          static_cast<bool>(locks->try_acquire("other " + std::to_string(i), Mode::exclusive, 1h));
    report("other keys granted: " + std::to_string(granted));
    for (const char* key : {"idle victim", "held victim"}) {
      try {
        (void)locks->try_acquire(key, Mode::exclusive, 1h);
        report(std::string(key) + ": granted");
      } catch (const StorageError&) {
        report(std::string(key) + ": StorageError");
      }
    }
    (void)held.release();  // reports the damage (false), never throws
    locks.reset();         // retires every mapping, the damaged ones too
    report("destroyed");
    return 0;
  });
  std::vector<std::string> lines;
  for (std::string line = child.next_line(); !line.empty(); line = child.next_line())
    lines.push_back(line);
  CHECK_MESSAGE(child.wait() == 0, "135 is SIGBUS");
  CHECK(lines == std::vector<std::string>{"other keys granted: 300", "idle victim: StorageError",
                                          "held victim: StorageError", "destroyed"});
}

TEST_CASE("file: the limit of keys in use per process is named, and unused mappings make room") {
  test::TempDir temp;
  leaselock::ManualClock clock;
  ManualFiles locks{FileBackend{temp.sub("locks")}, clock};
  auto& limit = leaselock::detail::file::record_mapping_limit();
  struct Restore {
    std::atomic<std::size_t>& limit;
    std::size_t saved;
    ~Restore() { limit.store(saved); }
  } restore{limit, limit.load()};
  limit.store(leaselock::detail::file::mapped_records().load() + 40);
  // Keys used and let go: their mappings stay cached until room is needed.
  for (int i = 0; i < 30; ++i)
    REQUIRE(locks.try_acquire("passing " + std::to_string(i), Mode::exclusive, 1h));
  std::vector<leaselock::Lease<leaselock::ManualClock>> held;
  for (int i = 0; i < 40; ++i) {
    held.push_back(locks.try_acquire("held " + std::to_string(i), Mode::exclusive, 1h));
    REQUIRE(held.back());
  }
  std::string message;
  try {
    (void)locks.try_acquire("one too many", Mode::exclusive, 1h);
  } catch (const StorageError& e) {
    message = e.what();
  }
  CHECK(message.find("too many keys in use") != std::string::npos);
  CHECK(message.find("vm.max_map_count") != std::string::npos);
  CHECK(locks.list().size() == 40);  // listing maps nothing
  CHECK(locks.status("held 0"));
  held.pop_back();  // one key less in use
  CHECK(locks.try_acquire("one too many", Mode::exclusive, 1h));
}
