// What is particular to FileBackend: storage names, files and their permissions, records
// that outlive processes, damaged records, and processes that share or die holding leases.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>
#include <set>

#include "process.hpp"
#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::FileBackend;
using leaselock::FileBackendOptions;
using leaselock::Mode;
using leaselock::StorageError;
using leaselock::Token;

namespace {

using ManualFiles = leaselock::LockManager<leaselock::ManualClock, FileBackend>;
using SteadyFiles = leaselock::file_lock_manager;

// The names of the files in `dir`, sorted.
std::set<std::string> files_in(const std::filesystem::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir))
    names.insert(entry.path().filename().string());
  return names;
}

std::set<std::string> records_in(const std::filesystem::path& dir) {
  std::set<std::string> names;
  for (const std::string& name : files_in(dir))
    if (name != ".leaselock") names.insert(name);
  return names;
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_all(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// The message a StorageError thrown by `f` carries ("" if none was thrown).
template <class F>
std::string storage_error(F&& f) {
  try {
    f();
  } catch (const StorageError& e) {
    return e.what();
  }
  return "";
}

std::filesystem::path record_path(const std::filesystem::path& dir, std::string_view key) {
  return dir / leaselock::detail::file::record_name(key);
}

// The offset of the current slot's payload in a record file's bytes.
std::size_t current_payload(const std::string& bytes) {
  leaselock::detail::file::RecordHeader header;
  std::memcpy(&header, bytes.data(), sizeof header);
  const std::size_t capacity = static_cast<std::size_t>(header.layout >> 1);
  return header.slot_base + (header.layout & 1) * capacity +
         sizeof(leaselock::detail::file::SlotHeader);
}

// Waits (polling status(), at most 10 s) until one request of another process is queued
// on `key`, which `locks` holds.
template <class Manager>
void wait_for_queue(Manager& locks, const std::string& key) {
  for (int i = 0; i < 10000 && locks.status(key)->waiters == 0; ++i)
    std::this_thread::sleep_for(1ms);
  REQUIRE(locks.status(key)->waiters == 1);
}

}  // namespace

TEST_CASE("file: any key maps to a safe file name, and list() gives the key back") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  ManualFiles locks{FileBackend{dir}};
  const std::vector<std::string> keys = {"../escape",
                                         "/etc/passwd",
                                         "a/b/c",
                                         ".",
                                         "..",
                                         ".leaselock",
                                         "CON",
                                         "nul.txt",
                                         std::string("\x01\xff\n\t \\", 6),
                                         std::string(leaselock::max_key_size, 'k'),
                                         "Same",
                                         "same"};
  std::vector<ManualFiles::Lease> leases;
  for (const std::string& key : keys) {
    leases.push_back(locks.try_acquire(key, Mode::exclusive, 10s));
    REQUIRE(leases.back());
  }
  const auto records = records_in(dir);
  CHECK(records.size() == keys.size());  // one record per key, none shared
  for (const std::string& name : records) {
    CHECK(name.size() == 38);
    CHECK(name.find_first_not_of("0123456789abcdef") == 32);
    CHECK(name.substr(32) == ".lease");
  }
  CHECK(files_in(tmp.path()) == std::set<std::string>{"locks"});  // nothing escaped
  std::set<std::string> listed;
  for (const auto& info : locks.list()) listed.insert(info.key);
  CHECK(listed == std::set<std::string>(keys.begin(), keys.end()));
}

TEST_CASE("file: two backends on one directory share leases, fences and waiting") {
  test::TempDir tmp;
  leaselock::ManualClock clock;
  ManualFiles a{FileBackend{tmp.sub("locks")}, clock, "a"};
  ManualFiles b{FileBackend{tmp.sub("locks")}, clock, "b"};
  auto held = a.try_acquire("shared/file", Mode::exclusive, 10s);
  REQUIRE(held);
  CHECK_FALSE(b.try_acquire("shared/file", Mode::shared, 10s));
  REQUIRE(b.status("shared/file"));
  CHECK(b.status("shared/file")->holders.at(0).owner == "a");
  auto waiter = std::async(std::launch::async,
                           [&] { return b.try_acquire("shared/file", Mode::exclusive, 10s, 5s); });
  test::wait_for_sleepers(clock, 1);
  const auto fence = held.fence();
  CHECK(held.release());
  const auto next = waiter.get();
  REQUIRE(next);
  CHECK(next.fence() > fence);
}

TEST_CASE("file: idle records are removed and fences survive every process") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  std::uint64_t last = 0;
  {
    ManualFiles locks{FileBackend{dir}};
    for (int i = 0; i < 3; ++i) {
      auto lease = locks.try_acquire("fenced", Mode::exclusive, 10s);
      REQUIRE(lease);
      CHECK(lease.fence() > last);
      last = lease.fence();
    }
  }
  CHECK(records_in(dir).empty());  // the backend removed its idle record on the way out
  for (int restart = 0; restart < 3; ++restart) {
    test::Child child([&](auto report) {
      ManualFiles locks{FileBackend{dir}};
      auto lease = locks.try_acquire("fenced", Mode::exclusive, 10s);
      report(std::to_string(lease.fence()));
      return lease ? 0 : 1;
    });
    const std::uint64_t fence = std::stoull(child.next_line());
    CHECK(child.wait() == 0);
    CHECK(fence > last);
    last = fence;
    CHECK(records_in(dir).empty());
  }
}

TEST_CASE("file: remove_idle() removes records nobody holds, keeps held ones") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  leaselock::ManualClock clock;
  ManualFiles locks{FileBackend{dir}, clock};
  auto kept = locks.try_acquire("kept", Mode::shared, 100s);
  auto lapsed = locks.try_acquire("lapsed", Mode::exclusive, 10s);
  const Token token = lapsed.detach();
  clock.advance(10s);
  {
    ManualFiles other{FileBackend{dir}, clock};
    CHECK(other.backend().remove_idle() == 1);  // "lapsed": its only lease ran out
  }
  CHECK(records_in(dir) == std::set<std::string>{leaselock::detail::file::record_name("kept")});
  CHECK_FALSE(locks.release("lapsed", token));
  auto again = locks.try_acquire("lapsed", Mode::exclusive, 10s);
  REQUIRE(again);
  CHECK(again.fence() > 1);
}

TEST_CASE("file: a lease whose record another process removed releases cleanly") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  leaselock::ManualClock clock;
  ManualFiles locks{FileBackend{dir}, clock};
  auto lease = locks.try_acquire("k", Mode::exclusive, 10s);
  const auto fence = lease.fence();
  clock.advance(10s);
  ManualFiles other{FileBackend{dir}, clock};
  CHECK(other.backend().remove_idle() == 1);
  CHECK_FALSE(lease.release());  // its record is gone: not held, no crash
  auto next = locks.try_acquire("k", Mode::exclusive, 10s);
  REQUIRE(next);
  CHECK(next.fence() > fence);
  CHECK_FALSE(other.try_acquire("k", Mode::exclusive, 10s));  // both see the new record
}

TEST_CASE("file: files are owner-only by default, group-shared as an option") {
  test::TempDir tmp;
  {
    ManualFiles locks{FileBackend{tmp.sub("private")}};
    auto lease = locks.try_acquire("k", Mode::exclusive, 10s);
    struct stat st {};
    REQUIRE(::stat(tmp.sub("private").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0700);
    REQUIRE(::stat(record_path(tmp.sub("private"), "k").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    REQUIRE(::stat((tmp.sub("private") / ".leaselock").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
  }
  FileBackendOptions group;
  group.group_shared = true;
  ManualFiles locks{FileBackend{tmp.sub("group"), group}};
  auto lease = locks.try_acquire("k", Mode::exclusive, 10s);
  struct stat st {};
  REQUIRE(::stat(tmp.sub("group").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 02770);
  REQUIRE(::stat(record_path(tmp.sub("group"), "k").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("file: unsafe or unusable directories are refused with the reason") {
  test::TempDir tmp;
  const auto directory = [&](const std::string& name, mode_t mode) {
    std::filesystem::create_directory(tmp.sub(name));
    ::chmod(tmp.sub(name).c_str(), mode);
    return tmp.sub(name);
  };
  const auto refusal = [](const std::filesystem::path& dir) {
    return storage_error([&] { FileBackend{dir}; });
  };
  const auto missing = tmp.sub("no/such/parent");
  CHECK(refusal(missing) == "leaselock: cannot create lock directory '" + missing.string() +
                                "': No such file or directory");
  // Only the last component is ever created, never its parents (README: "Which directory").
  CHECK_FALSE(std::filesystem::exists(tmp.sub("no")));
  const auto open = directory("open", 0777);
  CHECK(refusal(open) ==
        "leaselock: lock directory '" + open.string() +
            "' is writable by others; use a directory only its owner (or group) can write");
  const auto group = directory("group", 0770);
  CHECK(refusal(group) == "leaselock: lock directory '" + group.string() +
                              "' is writable by its group; pass group_shared = true to share it");
  FileBackendOptions shared;
  shared.group_shared = true;
  CHECK_NOTHROW(FileBackend(group, shared));
  const auto link = tmp.sub("link");
  std::filesystem::create_directory_symlink(group, link);
  CHECK(refusal(link) == "leaselock: lock directory '" + link.string() +
                             "' is a symbolic link; refusing to follow it");
  const auto file = tmp.sub("file");
  write_all(file, "x");
  CHECK(refusal(file) ==
        "leaselock: cannot open lock directory '" + file.string() + "': Not a directory");
  CHECK(refusal("") == "leaselock: the lock directory path is empty: Invalid argument");
}

TEST_CASE("file: a read-only lock directory is refused") {
  test::TempDir tmp;
  const auto dir = tmp.sub("readonly");
  std::filesystem::create_directory(dir);
  // Root may write anywhere: the check runs as an unprivileged user then.
  test::Child child([&](auto report) {
    if (::geteuid() == 0) {
      if (::chown(tmp.path().c_str(), 65534, 65534) != 0 ||
          ::chown(dir.c_str(), 65534, 65534) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)
        return 2;
    }
    ::chmod(dir.c_str(), 0500);
    report(storage_error([&] { FileBackend{dir}; }));
    return 0;
  });
  CHECK(child.next_line() ==
        "leaselock: cannot open '" + (dir / ".leaselock").string() + "': Permission denied");
  CHECK(child.wait() == 0);
}

TEST_CASE("file: symbolic links planted in the directory are never followed") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  const auto victim = tmp.sub("victim");
  write_all(victim, "precious");
  ManualFiles locks{FileBackend{dir}};
  const auto planted = record_path(dir, "target");
  std::filesystem::create_symlink(victim, planted);
  CHECK(storage_error([&] { (void)locks.try_acquire("target", Mode::exclusive, 10s); }) ==
        "leaselock: '" + planted.string() + "' is a symbolic link; refusing to follow it");
  CHECK(storage_error([&] { (void)locks.status("target"); }) ==
        "leaselock: '" + planted.string() + "' is a symbolic link; refusing to follow it");
  CHECK(read_all(victim) == "precious");

  const auto dir2 = tmp.sub("locks2");
  std::filesystem::create_directory(dir2);
  ::chmod(dir2.c_str(), 0700);
  std::filesystem::create_symlink(victim, dir2 / ".leaselock");
  CHECK(storage_error([&] { FileBackend{dir2}; }) ==
        "leaselock: '" + (dir2 / ".leaselock").string() +
            "' is a symbolic link; refusing to follow it");
  CHECK(read_all(victim) == "precious");
}

TEST_CASE("file: damaged records are reported, never taken for free, and left untouched") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  ManualFiles locks{FileBackend{dir}};
  auto lease = locks.try_acquire("damaged", Mode::exclusive, 10s);
  REQUIRE(lease);
  const auto path = record_path(dir, "damaged");
  const std::string good = read_all(path);
  const auto expect = [&](const std::string& bytes, const std::string& why) {
    write_all(path, bytes);
    std::vector<std::string> reported;
    FileBackendOptions options;
    options.on_damaged_record = [&](const StorageError& e) { reported.push_back(e.what()); };
    ManualFiles other{FileBackend{dir, options}};  // a process that has not read the record yet
    const std::string message = "leaselock: record file '" + path.string() + "' is corrupt (" +
                                why + "); it was left untouched — move it away to free the key";
    CHECK(storage_error([&] { (void)other.try_acquire("damaged", Mode::exclusive, 10s); }) ==
          message);
    CHECK(storage_error([&] { (void)other.status("damaged"); }) == message);
    // list() goes on without it, and says which file it left out and why.
    CHECK(storage_error([&] {
            for (const auto& info : other.list()) CHECK(info.key != "damaged");
          }) == "");
    CHECK(reported == std::vector<std::string>{message});
    CHECK(read_all(path) == bytes);
  };
  SUBCASE("a flipped bit in the record") {
    std::string bytes = good;
    bytes[current_payload(bytes) + 40] ^= 0x10;
    expect(bytes, "record checksum mismatch");
  }
  SUBCASE("a flipped bit in the key") {
    std::string bytes = good;
    bytes[leaselock::detail::file::kKeyOffset] ^= 0x01;
    expect(bytes, "header checksum mismatch");
  }
  SUBCASE("truncated") {
    expect(good.substr(0, 100), "truncated: 100 bytes, shorter than its header");
  }
  SUBCASE("another format version") {
    std::string bytes = good;
    bytes[8] = 3;
    expect(bytes, "format 3, this build reads format 2");
  }
  SUBCASE("not a record at all") {
    std::string bytes = good;
    bytes.replace(0, 8, "garbage!");
    expect(bytes, "bad magic");
  }
  SUBCASE("written with another clock") {
    std::string bytes = good;
    leaselock::detail::file::RecordHeader header;
    std::memcpy(&header, bytes.data(), sizeof header);
    leaselock::detail::file::store_name(header.clock, "system_clock");
    header.header_check = leaselock::detail::file::header_check(
        header, bytes.data() + leaselock::detail::file::kKeyOffset);
    std::memcpy(&bytes[0], &header, offsetof(leaselock::detail::file::RecordHeader, mutex));
    write_all(path, bytes);
    ManualFiles other{FileBackend{dir}};
    const std::string message = "leaselock: record file '" + path.string() +
                                "' was written with system_clock; this manager's clock is "
                                "ManualClock";
    CHECK(storage_error([&] { (void)other.try_acquire("damaged", Mode::exclusive, 10s); }) ==
          message);
    CHECK(read_all(path) == bytes);
  }
  SUBCASE("another key's record under this key's name") {
    auto other_lease = locks.try_acquire("other", Mode::exclusive, 10s);
    expect(read_all(record_path(dir, "other")), "its key does not match its name");
  }
  write_all(path, good);
  CHECK(lease.release());
}

TEST_CASE("file: a damaged directory file is reported") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  { ManualFiles locks{FileBackend{dir}}; }
  const auto meta = dir / ".leaselock";
  std::string bytes = read_all(meta);
  bytes.replace(0, 8, "not mine");
  write_all(meta, bytes);
  CHECK(storage_error([&] { FileBackend{dir}; }) ==
        "leaselock: '" + meta.string() + "' is not a leaselock directory file (bad magic)");
  write_all(meta, bytes.substr(0, 100));
  CHECK(storage_error([&] { FileBackend{dir}; }) ==
        "leaselock: '" + meta.string() + "' is truncated");
  CHECK(read_all(meta) == bytes.substr(0, 100));
}

TEST_CASE("file: a directory is used with one clock") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles steady{FileBackend{dir}};
  using SystemFiles = leaselock::LockManager<std::chrono::system_clock, FileBackend>;
  CHECK(storage_error([&] { SystemFiles system{FileBackend{dir}}; }) ==
        "leaselock: lock directory '" + dir.string() +
            "' is used with steady_clock; this manager's clock is system_clock");
}

TEST_CASE("file: a SIGKILLed holder's lease is reclaimed at once, a live one's is not") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  test::Child holder([&](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    auto lease = mine.acquire("job", Mode::exclusive, 1h);
    report(std::to_string(lease.fence()));
    ::pause();
    return 0;
  });
  const std::uint64_t fence = std::stoull(holder.next_line());
  // Alive: refused, also after waiting (it is checked, and found alive).
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h, 50ms));
  REQUIRE(locks.status("job"));
  CHECK(locks.list().size() == 1);
  holder.kill_and_wait_for_zombie();  // dead, not yet reaped: it can hold nothing
  CHECK_FALSE(locks.status("job"));   // shown as free at once ...
  CHECK(locks.list().empty());
  auto lease = locks.try_acquire("job", Mode::exclusive, 1h);  // ... and taken at once
  REQUIRE(lease);  // at once, not at the TTL an hour away
  CHECK(lease.fence() > fence);
}

TEST_CASE("file: a waiter in another process gets a dead holder's lease") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  test::Child holder([&](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    auto lease = mine.acquire("job", Mode::exclusive, 1h);
    report("holding");
    ::pause();
    return 0;
  });
  REQUIRE(holder.next_line() == "holding");
  test::Child waiter([&](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    report("waiting");
    auto lease = mine.try_acquire("job", Mode::exclusive, 1h, 60s);
    report(lease ? "granted" : "timed out");
    return 0;
  });
  REQUIRE(waiter.next_line() == "waiting");
  holder.kill_and_wait_for_zombie();
  CHECK(waiter.next_line() == "granted");
  CHECK(waiter.wait() == 0);
}

TEST_CASE("file: a dead waiter does not block the queue") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  auto held = locks.try_acquire("q", Mode::exclusive, 1h);
  REQUIRE(held);
  test::Child waiter([&](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    report("queueing");
    auto lease = mine.acquire("q", Mode::exclusive, 1h);
    return 0;
  });
  REQUIRE(waiter.next_line() == "queueing");
  wait_for_queue(locks, "q");  // its request is queued
  waiter.kill_and_wait_for_zombie();
  CHECK(held.release());
  auto next = locks.try_acquire("q", Mode::exclusive, 1h);
  CHECK(next);
}

TEST_CASE("file: a process killed inside a record update leaves the record whole") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  auto first = locks.try_acquire("torn", Mode::exclusive, 1h);
  const auto fence = first.fence();
  REQUIRE(first.release());
  test::Child crasher([&](auto report) {
    SteadyFiles mine{FileBackend{dir}};
    mine.backend().update("torn", [&](leaselock::detail::Record& record) {
      // Half-way through a change, holding the record's mutex.
      record.last_fence += 1000;
      record.holders.push_back(leaselock::detail::Holder{Token::generate(), Mode::exclusive,
                                                         record.last_fence, 0,
                                                         leaselock::detail::kForever, "torn"});
      report("inside");
      ::pause();
      return true;
    });
    return 0;
  });
  REQUIRE(crasher.next_line() == "inside");
  crasher.kill_and_wait_for_zombie();
  // The mutex was left owner-dead; the record is the one before the change.
  auto lease = locks.try_acquire("torn", Mode::exclusive, 1h);
  REQUIRE(lease);
  CHECK(lease.fence() == fence + 1);
  CHECK(locks.status("torn")->holders.size() == 1);
}

TEST_CASE("file: a record grows with its holders, and a full one is refused cleanly") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  ManualFiles locks{FileBackend{dir}};
  const std::string owner(leaselock::max_owner_size, 'o');
  std::vector<ManualFiles::Lease> readers;
  for (int i = 0; i < 300; ++i) {
    readers.push_back(locks.try_acquire("crowded", Mode::shared, 10s, {}, owner));
    REQUIRE(readers.back());
  }
  {
    ManualFiles other{FileBackend{dir}};  // reads the grown file from scratch
    REQUIRE(other.status("crowded"));
    CHECK(other.status("crowded")->holders.size() == 300);
    CHECK_FALSE(other.try_acquire("crowded", Mode::exclusive, 10s));
  }
  // Up to the record's limit; the request that does not fit is refused, the rest kept.
  std::string error;
  while (error.empty() && readers.size() < 5000) {
    error = storage_error(
        [&] { readers.push_back(locks.try_acquire("crowded", Mode::shared, 10s, {}, owner)); });
  }
  const std::size_t held = readers.size();
  CHECK(held > 1000);
  CHECK(error.rfind("leaselock: record file '" + record_path(dir, "crowded").string() +
                        "' is full: " + std::to_string(held + 1) + " holders and 0 waiters need ",
                    0) == 0);
  CHECK(locks.status("crowded")->holders.size() == held);
  readers.clear();
  CHECK_FALSE(locks.status("crowded"));
  CHECK(locks.try_acquire("crowded", Mode::exclusive, 10s));
}

TEST_CASE("file: with liveness checks off, a dead holder's lease frees itself at its TTL") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  FileBackendOptions options;
  options.liveness_check = 0ms;
  leaselock::ManualClock clock;  // this process's time; the child's starts at 0 too
  ManualFiles locks{FileBackend{dir, options}, clock};
  test::Child holder([&](auto report) {
    ManualFiles mine{FileBackend{dir}};
    auto lease = mine.try_acquire("job", Mode::exclusive, 1h);
    report(lease ? "holding" : "refused");
    ::pause();
    return 0;
  });
  REQUIRE(holder.next_line() == "holding");
  holder.kill_and_wait_for_zombie();
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));  // dead, but not checked
  clock.advance(1h - 1ns);
  CHECK_FALSE(locks.try_acquire("job", Mode::exclusive, 1h));
  clock.advance(1ns);
  CHECK(locks.try_acquire("job", Mode::exclusive, 1h));
}

TEST_CASE("file: remove_idle() removes temporary files of dead creators, not fresh ones") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  ManualFiles locks{FileBackend{dir}};
  test::Child gone([](auto) { return 0; });
  const pid_t dead = gone.pid();
  REQUIRE(gone.wait() == 0);
  const auto old_tmp = dir / (".tmp-" + std::to_string(dead) + "-0123456789abcdef");
  const auto new_tmp = dir / (".tmp-" + std::to_string(dead) + "-fedcba9876543210");
  const auto live_tmp = dir / (".tmp-" + std::to_string(::getpid()) + "-0000000000000000");
  for (const auto& path : {old_tmp, new_tmp, live_tmp}) write_all(path, "");
  const timespec old_times[2] = {{::time(nullptr) - 3600, 0}, {::time(nullptr) - 3600, 0}};
  REQUIRE(::utimensat(AT_FDCWD, old_tmp.c_str(), old_times, 0) == 0);
  REQUIRE(::utimensat(AT_FDCWD, live_tmp.c_str(), old_times, 0) == 0);
  CHECK(locks.backend().remove_idle() == 1);
  CHECK(files_in(dir) == std::set<std::string>{".leaselock", new_tmp.filename().string(),
                                               live_tmp.filename().string()});
}

TEST_CASE("file: a stale mapping of a removed and re-created record never grants twice") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  ManualFiles a{FileBackend{dir}, {}, "a"};
  ManualFiles b{FileBackend{dir}, {}, "b"};
  ManualFiles c{FileBackend{dir}, {}, "c"};
  // a maps the record and keeps the mapping after releasing.
  CHECK(a.try_acquire("k", Mode::exclusive, 10s).release());
  const auto path = record_path(dir, "k");
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);
  CHECK(b.backend().remove_idle() == 1);                 // b unlinks it ...
  auto held = c.try_acquire("k", Mode::exclusive, 10s);  // ... and c makes a new one
  REQUIRE(held);
  struct stat after {};
  REQUIRE(::stat(path.c_str(), &after) == 0);
  CHECK(after.st_ino != before.st_ino);
  // a still maps the unlinked file: it must see the new record, held by c.
  CHECK_FALSE(a.try_acquire("k", Mode::exclusive, 10s));
  CHECK_FALSE(a.try_acquire("k", Mode::shared, 10s));
  REQUIRE(a.status("k"));
  CHECK(a.status("k")->holders.at(0).owner == "c");
}

TEST_CASE("file: a waiter in another process is woken by the release, not by polling") {
  test::TempDir tmp;
  const auto dir = tmp.sub("locks");
  SteadyFiles locks{FileBackend{dir}};
  auto held = locks.try_acquire("wake", Mode::exclusive, 1h);
  REQUIRE(held);
  test::Child waiter([&](auto report) {
    FileBackendOptions no_checks;
    no_checks.liveness_check = 0ms;  // nothing but the release can wake it before 60 s
    SteadyFiles mine{FileBackend{dir, no_checks}};
    report("waiting");
    auto lease = mine.try_acquire("wake", Mode::exclusive, 1h, 60s);
    report(lease ? "granted " + std::to_string(lease.fence()) : "timed out");
    return 0;
  });
  REQUIRE(waiter.next_line() == "waiting");
  wait_for_queue(locks, "wake");
  const auto fence = held.fence();
  CHECK(held.release());
  CHECK(waiter.next_line() == "granted " + std::to_string(fence + 1));
  CHECK(waiter.wait() == 0);
}

TEST_CASE("file: a process is dead only where that is certain") {
  using leaselock::detail::posix::certainly_dead;
  using leaselock::detail::posix::ProcessIdentity;
  const ProcessIdentity self = leaselock::detail::posix::self_identity();
  REQUIRE(self.boot != 0);
  REQUIRE(self.start_ticks != 0);
  CHECK_FALSE(certainly_dead(self));
  ProcessIdentity other = self;
  other.boot ^= 1;  // an earlier boot of this machine: everything of it has ended
  CHECK(certainly_dead(other));
  other = self;
  other.pid_namespace ^= 1;  // another PID namespace: its pids mean nothing here
  CHECK_FALSE(certainly_dead(other));
  other = self;
  other.start_ticks += 1;  // this pid, started at another time: a recycled pid
  CHECK(certainly_dead(other));
  other = self;
  other.start_ticks = 0;  // start time unknown: not certain
  other.pid = static_cast<std::uint32_t>(::getppid());
  CHECK_FALSE(certainly_dead(other));
  ProcessIdentity unknown;  // written by nobody we can identify
  CHECK_FALSE(certainly_dead(unknown));
  test::Child gone([](auto) { return 0; });
  REQUIRE(gone.wait() == 0);
  other = self;
  other.pid = static_cast<std::uint32_t>(gone.pid());
  CHECK(certainly_dead(other));  // reaped: no such process
  leaselock::detail::posix::ProcStat stat;
  REQUIRE(leaselock::detail::posix::parse_proc_stat(
      "42 (a) b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20", stat));
  CHECK(stat.state == 'S');
  CHECK(stat.start_ticks == 987654);
  CHECK_FALSE(leaselock::detail::posix::parse_proc_stat("42 (no closing paren S 1", stat));
}
