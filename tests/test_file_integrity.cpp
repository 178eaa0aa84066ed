// What a damaged record file may do: never make a held key free, never give a fence twice
// or a lower one, never stop list() or remove_idle() for the other keys. Damage is
// detected and reported (StorageError), and the file left untouched.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::FileBackend;
using leaselock::Mode;
using leaselock::StorageError;

namespace {

using ManualFiles = leaselock::LockManager<leaselock::ManualClock, FileBackend>;
using leaselock::detail::file::RecordHeader;

std::filesystem::path record_path(const std::filesystem::path& dir, std::string_view key) {
  return dir / leaselock::detail::file::record_name(key);
}

// Flips bit `bit` of the file at `offset`, through the file (not a mapping of ours).
void flip_bit(const std::filesystem::path& path, std::size_t offset, unsigned bit) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  unsigned char byte = 0;
  REQUIRE(::pread(fd, &byte, 1, static_cast<off_t>(offset)) == 1);
  byte = static_cast<unsigned char>(byte ^ (1u << bit));
  REQUIRE(::pwrite(fd, &byte, 1, static_cast<off_t>(offset)) == 1);
  ::close(fd);
}

ino_t inode_of(const std::filesystem::path& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

// Someone else's request for `key`, which `holder_fence` holds exclusively: it must be
// refused or report the damage; a grant (or a status without the holder) is the failure.
void check_still_held(ManualFiles& locks, const std::string& key, std::uint64_t holder_fence) {
  try {
    auto other = locks.try_acquire(key, Mode::exclusive, 1h);
    CHECK_FALSE(other);
    if (other) CHECK(other.fence() > holder_fence);
  } catch (const StorageError&) {
  }
  try {
    const auto status = locks.status(key);
    REQUIRE(status);
    REQUIRE(status->holders.size() == 1);
    CHECK(status->holders[0].fence == holder_fence);
  } catch (const StorageError&) {
  }
}

struct Field {
  const char* name;
  std::size_t offset;
  std::size_t size;
};

}  // namespace

TEST_CASE("file: no flipped bit of a record header's state makes a held key free") {
  test::TempDir temp;
  const auto dir = temp.sub("locks");
  leaselock::ManualClock clock;
  ManualFiles holder{FileBackend{dir}, clock};
  {  // the slot that is not current keeps an older record, with the key free
    auto first = holder.try_acquire("key", Mode::exclusive, 1h);
    REQUIRE(first);
  }
  auto lease = holder.try_acquire("key", Mode::exclusive, 1h);
  REQUIRE(lease);
  const std::uint64_t fence = lease.fence();
  const auto path = record_path(dir, "key");
  const ino_t inode = inode_of(path);
  const Field fields[] = {
      {"layout", offsetof(RecordHeader, layout), sizeof(RecordHeader::layout)},
      {"removed", offsetof(RecordHeader, removed), sizeof(RecordHeader::removed)},
      {"generation", offsetof(RecordHeader, generation), sizeof(RecordHeader::generation)},
      {"generation_check", offsetof(RecordHeader, generation_check),
       sizeof(RecordHeader::generation_check)},
  };
  for (const Field& field : fields) {
    for (unsigned bit = 0; bit < 8 * field.size; ++bit) {
      CAPTURE(field.name);
      CAPTURE(bit);
      flip_bit(path, field.offset + bit / 8, bit % 8);
      check_still_held(holder, "key", fence);  // through its cached mapping
      {
        ManualFiles fresh{FileBackend{dir}, clock};  // maps the file afresh
        check_still_held(fresh, "key", fence);
      }
      flip_bit(path, field.offset + bit / 8, bit % 8);
      // The damaged file was left where it was, and works again once repaired.
      REQUIRE(std::filesystem::exists(path));
      CHECK(inode_of(path) == inode);
      const auto status = holder.status("key");
      REQUIRE(status);
      REQUIRE(status->holders.size() == 1);
      CHECK(status->holders[0].fence == fence);
    }
  }
  CHECK(lease.release());
  auto next = holder.try_acquire("key", Mode::exclusive, 1h);
  REQUIRE(next);
  CHECK(next.fence() == fence + 1);
}

TEST_CASE("file: a removed mark on a record that holds leases is reported, not acted on") {
  test::TempDir temp;
  const auto dir = temp.sub("locks");
  leaselock::ManualClock clock;
  ManualFiles holder{FileBackend{dir}, clock};
  auto lease = holder.try_acquire("key", Mode::exclusive, 1h);
  REQUIRE(lease);
  const auto path = record_path(dir, "key");
  // Exactly the mark a remover writes, but on a record with a holder and a fence above
  // the directory's floor: no remover wrote it.
  const std::uint32_t mark = leaselock::detail::file::kRemovedMark;
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, &mark, sizeof mark, offsetof(RecordHeader, removed)) == sizeof mark);
  ManualFiles fresh{FileBackend{dir}, clock};
  CHECK_THROWS_AS((void)fresh.try_acquire("key", Mode::exclusive, 1h), StorageError);
  CHECK_THROWS_AS((void)holder.try_acquire("key", Mode::exclusive, 1h), StorageError);
  CHECK(std::filesystem::exists(path));
  const std::uint32_t none = 0;
  REQUIRE(::pwrite(fd, &none, sizeof none, offsetof(RecordHeader, removed)) == sizeof none);
  ::close(fd);
  CHECK_FALSE(fresh.try_acquire("key", Mode::exclusive, 1h));
  CHECK(lease.release());
}

TEST_CASE("file: list() and remove_idle() report a damaged record and go on with the others") {
  test::TempDir temp;
  const auto dir = temp.sub("locks");
  leaselock::ManualClock clock;
  std::vector<std::string> reported;
  leaselock::FileBackendOptions options;
  options.on_damaged_record = [&](const StorageError& e) { reported.push_back(e.path().string()); };
  ManualFiles locks{FileBackend{dir, options}, clock};
  auto a = locks.try_acquire("a", Mode::exclusive, 1h);
  auto damaged = locks.try_acquire("damaged", Mode::exclusive, 1h);
  auto c = locks.try_acquire("c", Mode::shared, 1h);
  REQUIRE((a && damaged && c));
  { (void)locks.try_acquire("idle", Mode::exclusive, 1h); }
  const auto path = record_path(dir, "damaged");
  // Any damage the record's checks catch: a byte of its key.
  flip_bit(path, leaselock::detail::file::kKeyOffset, 0);
  std::set<std::string> listed;
  for (const auto& info : locks.list()) listed.insert(info.key);
  CHECK(listed == std::set<std::string>{"a", "c"});
  CHECK(reported == std::vector<std::string>{path.string()});
  reported.clear();
  CHECK(locks.backend().remove_idle() == 1);  // "idle"
  CHECK(reported == std::vector<std::string>{path.string()});
  CHECK(std::filesystem::exists(path));
  ManualFiles fresh{FileBackend{dir}, clock};  // maps it afresh, so checks its header
  CHECK_THROWS_AS((void)fresh.status("damaged"), StorageError);
  flip_bit(path, leaselock::detail::file::kKeyOffset, 0);
  CHECK(locks.list().size() == 3);
}
