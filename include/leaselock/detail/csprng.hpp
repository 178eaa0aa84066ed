// leaselock/detail/csprng.hpp — a fast per-thread cryptographic random generator.
//
// ChaCha20 in counter mode, keyed with 32 bytes from the operating system (getrandom),
// with fast key erasure: every refill first replaces the key with fresh keystream, so a
// memory dump never reveals tokens that were handed out before it. A refill makes
// kBlocks blocks at once; the generator reseeds after fork(2) so a child never repeats
// its parent's stream. One instance per thread: no locks on the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <leaselock/detail/posix/fork.hpp>
#include <leaselock/detail/posix/random.hpp>

namespace leaselock::detail {

class ChaCha20Generator {
 public:
  ChaCha20Generator() { reseed(); }
  ChaCha20Generator(const ChaCha20Generator&) = delete;
  ChaCha20Generator& operator=(const ChaCha20Generator&) = delete;
  ~ChaCha20Generator() {
    wipe(buffer_, sizeof buffer_);
    wipe(key_, sizeof key_);
  }

  /// Fills `out` with 16 random bytes.
  void fill16(unsigned char* out) {
    if (generation_ != posix::fork_generation()) reseed();
    if (used_ + 16 > sizeof buffer_) refill();
    unsigned char* const source = reinterpret_cast<unsigned char*>(buffer_) + used_;
    std::memcpy(out, source, 16);
    wipe(source, 16);
    used_ += 16;
  }

 private:
  static constexpr std::size_t kBlocks = 8;
  static constexpr std::size_t kWordsPerBlock = 16;
  static constexpr std::size_t kKeyBytes = 32;

  static void wipe(void* data, std::size_t size) noexcept {
    volatile unsigned char* bytes = static_cast<volatile unsigned char*>(data);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = 0;
  }

  static constexpr std::uint32_t rotl(std::uint32_t value, int bits) noexcept {
    return (value << bits) | (value >> (32 - bits));
  }

  static void quarter_round(std::uint32_t* x, int a, int b, int c, int d) noexcept {
    x[a] += x[b];
    x[d] = rotl(x[d] ^ x[a], 16);
    x[c] += x[d];
    x[b] = rotl(x[b] ^ x[c], 12);
    x[a] += x[b];
    x[d] = rotl(x[d] ^ x[a], 8);
    x[c] += x[d];
    x[b] = rotl(x[b] ^ x[c], 7);
  }

  void block(std::uint32_t* out) noexcept {
    std::uint32_t input[kWordsPerBlock] = {0x61707865u, 0x3320646eu, 0x79622d32u, 0x6b206574u};
    std::memcpy(input + 4, key_, kKeyBytes);
    input[12] = static_cast<std::uint32_t>(counter_);
    input[13] = static_cast<std::uint32_t>(counter_ >> 32);
    input[14] = 0;
    input[15] = 0;
    ++counter_;
    std::uint32_t x[kWordsPerBlock];
    std::memcpy(x, input, sizeof x);
    for (int round = 0; round < 10; ++round) {
      quarter_round(x, 0, 4, 8, 12);
      quarter_round(x, 1, 5, 9, 13);
      quarter_round(x, 2, 6, 10, 14);
      quarter_round(x, 3, 7, 11, 15);
      quarter_round(x, 0, 5, 10, 15);
      quarter_round(x, 1, 6, 11, 12);
      quarter_round(x, 2, 7, 8, 13);
      quarter_round(x, 3, 4, 9, 14);
    }
    for (std::size_t i = 0; i < kWordsPerBlock; ++i) out[i] = x[i] + input[i];
  }

  void refill() noexcept {
    for (std::size_t b = 0; b < kBlocks; ++b) block(buffer_ + b * kWordsPerBlock);
    // Fast key erasure: the first 32 bytes become the next key and are never handed out.
    std::memcpy(key_, buffer_, kKeyBytes);
    wipe(buffer_, kKeyBytes);
    used_ = kKeyBytes;
  }

  void reseed() {
    posix::fill_random(key_, kKeyBytes);
    counter_ = 0;
    generation_ = posix::fork_generation();
    refill();
  }

  std::uint32_t buffer_[kBlocks * kWordsPerBlock] = {};
  std::uint32_t key_[kKeyBytes / 4] = {};
  std::uint64_t counter_ = 0;
  std::size_t used_ = sizeof buffer_;
  unsigned long generation_ = 0;
};

/// The calling thread's generator.
inline ChaCha20Generator& thread_generator() {
  thread_local ChaCha20Generator generator;
  return generator;
}

}  // namespace leaselock::detail
