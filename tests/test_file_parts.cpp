// The parts FileBackend is made of, each on its own: the slots of a record file (on plain
// memory), the mapping cache (on plain nodes), the index of other processes' parties, the
// lock directory and its meta file.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <leaselock/detail/file/directory.hpp>
#include <leaselock/detail/file/foreign.hpp>
#include <leaselock/detail/file/mapping_cache.hpp>
#include <leaselock/detail/file/meta_file.hpp>
#include <leaselock/detail/file/slots.hpp>

#include "support.hpp"

namespace file = leaselock::detail::file;
using leaselock::Mode;
using leaselock::StorageError;
using leaselock::Token;
using leaselock::detail::Holder;
using leaselock::detail::Record;

namespace {

// A record file's bytes in plain memory, with its slots empty and a file `size` long.
struct SlotMemory {
  std::vector<unsigned char> bytes = std::vector<unsigned char>(file::kMapSize);
  file::RecordSlots slots;

  SlotMemory() {
    slots.base = bytes.data();
    slots.header = ::new (bytes.data()) file::RecordHeader{};
    slots.slot_base = file::align64(file::kKeyOffset + 8);
    slots.header->layout = file::kInitialSlot << 1;
    slots.verified_size = slots.slot_base + 2 * file::kInitialSlot;
  }
  // Another process's view of the same bytes.
  file::RecordSlots view() const {
    file::RecordSlots other;
    other.base = slots.base;
    other.header = slots.header;
    other.slot_base = slots.slot_base;
    other.verified_size = slots.verified_size;
    return other;
  }
};

Record with_holders(std::size_t count) {
  Record record;
  record.last_fence = count;
  for (std::size_t i = 0; i < count; ++i)
    record.holders.push_back(
        Holder{Token::generate(), Mode::shared, i + 1, 1, 1000, "owner-" + std::to_string(i)});
  return record;
}

const auto self_of = [](std::size_t, const Token&) {
  return leaselock::detail::posix::self_identity();
};

}  // namespace

TEST_CASE("file parts: a published slot is what the next reader loads, through growth") {
  SlotMemory memory;
  std::size_t grown_to = 0;
  const auto grow = [&](std::size_t size) {
    grown_to = size;
    memory.slots.verified_size = size;
  };
  file::RecordSlots reader = memory.view();
  for (std::size_t holders : {1u, 3u, 40u, 41u, 2u}) {
    memory.slots.record = with_holders(holders);
    REQUIRE(file::publish(memory.slots, self_of, grow));
    reader.verified_size = memory.slots.verified_size;
    bool decoded_now = false;
    const char* error = file::load_current(
        reader, [](std::size_t) {}, decoded_now);
    REQUIRE(error == nullptr);
    CHECK(decoded_now);
    REQUIRE(reader.record.holders.size() == holders);
    CHECK(reader.record.holders.back().owner == memory.slots.record.holders.back().owner);
    CHECK(reader.generation == memory.slots.generation);
    // Nothing new: loading again decodes nothing.
    CHECK(file::load_current(
              reader, [](std::size_t) {}, decoded_now) == nullptr);
    CHECK_FALSE(decoded_now);
  }
  CHECK(grown_to > memory.slots.slot_base + 2 * file::kInitialSlot);  // 40 holders grew it
}

TEST_CASE(
    "file parts: a damaged slot or layout is reported, and a slot beyond the known size is "
    "checked") {
  SlotMemory memory;
  memory.slots.record = with_holders(2);
  REQUIRE(file::publish(memory.slots, self_of, [](std::size_t) { FAIL("no growth needed"); }));
  const std::uint64_t layout = memory.slots.header->layout;
  const std::size_t payload =
      memory.slots.slot_base + (layout & 1) * (layout >> 1) + sizeof(file::SlotHeader);
  bool decoded_now = false;
  {
    file::RecordSlots reader = memory.view();
    memory.bytes[payload + 40] ^= 0x10;
    CHECK(std::string(file::load_current(
              reader, [](std::size_t) {}, decoded_now)) == "record checksum mismatch");
    CHECK_FALSE(reader.decoded);
    memory.bytes[payload + 40] ^= 0x10;
  }
  {
    file::RecordSlots reader = memory.view();
    memory.slots.header->layout = (std::uint64_t{file::kMapSize} << 1) | 1;
    CHECK(std::string(file::load_current(
              reader, [](std::size_t) {}, decoded_now)) == "bad slot layout");
    memory.slots.header->layout = layout;
  }
  {
    file::RecordSlots reader = memory.view();
    reader.verified_size = 0;
    std::size_t asked = 0;
    REQUIRE(file::load_current(
                reader, [&](std::size_t n) { asked = n; }, decoded_now) == nullptr);
    CHECK(asked == memory.slots.slot_base + 2 * file::kInitialSlot);
  }
}

TEST_CASE("file parts: a record too large for the mapping is refused with nothing changed") {
  SlotMemory memory;
  memory.slots.record = with_holders(1);
  REQUIRE(file::publish(memory.slots, self_of,
                        [&](std::size_t size) { memory.slots.verified_size = size; }));
  const std::uint64_t generation = memory.slots.generation;
  const std::uint64_t layout = memory.slots.header->layout;
  memory.slots.record = with_holders(1);
  memory.slots.record.holders[0].owner.assign(file::kMapSize, 'o');
  CHECK_FALSE(file::publish(memory.slots, self_of, [](std::size_t) { FAIL("must not grow"); }));
  CHECK(memory.slots.generation == generation);
  CHECK(memory.slots.header->layout == layout);
  CHECK(memory.slots.header->generation == generation);
}

namespace {
struct Node : file::CacheLinks<Node> {
  std::string key;
};
// A node whose hash puts it in shard 0.
std::unique_ptr<Node> node(const std::string& key, std::uint64_t n) {
  auto fresh = std::make_unique<Node>();
  fresh->key = key;
  fresh->hash = n;
  return fresh;
}
}  // namespace

TEST_CASE(
    "file parts: the mapping cache keeps used nodes and pushes out the least recent idle one") {
  file::MappingCache<Node> cache(64);  // one busy mapping per shard
  std::vector<Node*> nodes;
  Node* victim = nullptr;
  for (std::uint64_t i = 0; i < file::MappingCache<Node>::kIdlePerShard + 1; ++i) {
    auto fresh = node("k" + std::to_string(i), i);
    nodes.push_back(cache.insert_ref(fresh, victim));
    CHECK(victim == nullptr);
    CHECK(nodes.back()->refs == 1);
  }
  CHECK(cache.find_ref("k0", 0) == nodes[0]);  // two users now
  CHECK(cache.release_ref(*nodes[0]) == nullptr);
  CHECK(nodes[0]->lru == file::kNoList);  // still in use
  for (std::size_t i = 0; i + 1 < nodes.size(); ++i) CHECK(cache.release_ref(*nodes[i]) == nullptr);
  // The fifth idle node of the shard pushes out the first one let go.
  CHECK(cache.release_ref(*nodes.back()) == nodes[0]);
  CHECK(cache.find_ref("k0", 0) == nullptr);
  delete nodes[0];
  // A second node for a key already cached is not inserted: the cached one is referenced.
  auto duplicate = node("k1", 1);
  CHECK(cache.insert_ref(duplicate, victim) == nodes[1]);
  CHECK(duplicate != nullptr);
  // Forgotten while in use: handed back at its last release.
  cache.forget(*nodes[1]);
  CHECK(cache.find_ref("k1", 1) == nullptr);
  CHECK(cache.release_ref(*nodes[1]) == nodes[1]);
  delete nodes[1];
  // A busy node (idle_hint false) goes to the busy list, one per shard here.
  Node* busy = cache.find_ref("k2", 2);
  busy->idle_hint = false;
  Node* other = cache.find_ref("k3", 3);
  other->idle_hint = false;
  CHECK(cache.release_ref(*busy) == nullptr);
  CHECK(cache.release_ref(*other) == busy);
  delete busy;
  std::size_t drained = 0;
  cache.drain([&](Node* m) {
    ++drained;
    delete m;
  });
  CHECK(drained == 2);  // k3 and k4
}

TEST_CASE("file parts: other processes' parties are indexed, looked up and reclaimed when dead") {
  using leaselock::detail::posix::ProcessIdentity;
  const ProcessIdentity self = leaselock::detail::posix::self_identity();
  ProcessIdentity dead = self;
  dead.boot = self.boot + 1;  // an earlier boot: certainly ended
  dead.pid = self.pid + 1;
  Record record = with_holders(3);
  file::ForeignParties foreign;
  CHECK(foreign.empty());
  foreign.index(record, {self, dead, self});
  CHECK_FALSE(foreign.empty());
  CHECK(foreign.identity_of(record.holders[1].token) == dead);
  CHECK(foreign.identity_of(record.holders[0].token) == self);
  CHECK(foreign.identity_of(Token::generate()) == self);
  Record copy = record;
  CHECK(foreign.reclaim(copy));
  REQUIRE(copy.holders.size() == 2);
  CHECK(copy.holders[0].token == record.holders[0].token);
  CHECK(copy.holders[1].token == record.holders[2].token);
  foreign.drop_departed(copy);
  CHECK(foreign.empty());
  CHECK_FALSE(foreign.reclaim(copy));
}

TEST_CASE("file parts: the lock directory lists record files only and refuses a symbolic link") {
  test::TempDir temp;
  const auto dir = temp.sub("locks");
  file::LockDirectory directory(dir, false);
  const std::string record = file::record_name("a key");
  std::ofstream(dir / record) << "x";
  std::ofstream(dir / "notes.txt") << "x";
  std::set<std::string> names;
  directory.for_each_record_name([&](const std::string& name) { names.insert(name); });
  CHECK(names == std::set<std::string>{record});
  ::chmod((dir / record).c_str(), 0600);
  CHECK(directory.exists(record));
  REQUIRE(::symlink("notes.txt", (dir / file::record_name("linked")).c_str()) == 0);
  struct stat st {};
  CHECK_THROWS_AS(directory.open_file(file::record_name("linked"), O_RDONLY, st), StorageError);
  CHECK(directory.open_file(file::record_name("missing"), O_RDONLY, st) == -1);
  REQUIRE(::symlink(dir.c_str(), temp.sub("link").c_str()) == 0);
  CHECK_THROWS_AS(file::LockDirectory(temp.sub("link"), false), StorageError);
}

TEST_CASE("file parts: the meta file's fence floor only rises, and its clock is fixed once") {
  test::TempDir temp;
  file::LockDirectory directory(temp.sub("locks"), false);
  int new_boots = 0;
  {
    file::MetaFile meta(directory, [&] { ++new_boots; });
    CHECK(new_boots == 1);  // a fresh file belongs to no boot yet
    CHECK(meta.fence_floor() == 0);
    meta.raise_fence_floor(7);
    meta.raise_fence_floor(3);
    CHECK(meta.fence_floor() == 7);
    meta.attach_clock("steady_clock");
    meta.attach_clock("steady_clock");
    CHECK_THROWS_AS(meta.attach_clock("system_clock"), StorageError);
  }
  file::MetaFile again(directory, [&] { ++new_boots; });
  CHECK(new_boots == 1);  // the same boot
  CHECK(again.fence_floor() == 7);
}
