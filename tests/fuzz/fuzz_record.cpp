// libFuzzer target for what FileBackend reads from disk and derives from keys:
//   - detail::file::decode() on any bytes: never reads out of bounds, and whatever it
//     accepts encodes back to exactly the same bytes (so nothing is silently changed);
//     tests/fuzz/corpus holds well-formed records to start from;
//   - detail::file::record_name() on any key: always 32 hex digits + ".lease", accepted
//     by is_record_name(), the same for the same key.
// Built by the "fuzz" preset (clang, -fsanitize=fuzzer,address,undefined) and run for a
// bounded time by ctest there; run longer by hand with build/fuzz/tests/fuzz/fuzz_record
// -max_total_time=600.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <leaselock/detail/file/codec.hpp>

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace leaselock::detail;
  // The bytes as a key.
  const std::string_view key(reinterpret_cast<const char*>(data), size);
  const std::string name = file::record_name(key);
  require(file::is_record_name(name));
  require(name == file::record_name(key));
  require(name.find('/') == std::string::npos && name[0] != '.');

  // The bytes as a record payload (copied, so reads past the end are caught exactly).
  std::vector<unsigned char> payload(data, data + size);
  Record record;
  std::vector<file::ProcessIdentity> ids;
  if (file::decode(payload.data(), payload.size(), record, ids) != nullptr) return 0;
  require(ids.size() == record.holders.size() + record.waiters.size());
  require(file::encoded_size(record) == size);
  std::vector<unsigned char> again(size);
  file::encode(
      record, [&](std::size_t i, const leaselock::Token&) { return ids[i]; }, again.data());
  require(again == payload);  // every byte comes back as it was
  return 0;
}
