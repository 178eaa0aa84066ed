// leaselock/detail/csprng.hpp — a fast per-thread cryptographic random generator.
//
// ChaCha with 12 rounds in counter mode, keyed with 32 bytes from the operating system
// (detail/platform.hpp: getrandom on Linux). Twelve rounds keep a wide margin over the best known
// attack (on 7 rounds) at 60% of ChaCha20's cost. Fast key erasure: every refill first replaces the
// key with fresh keystream, so a memory dump never reveals tokens that were handed out before it. A
// refill makes kBlocks blocks at once; the generator reseeds after fork(2) so a child never repeats
// its parent's stream. One instance per thread: no locks on the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include <leaselock/detail/platform.hpp>

namespace leaselock::detail {

/// Zeroes memory in a way the optimizer may not drop (the barrier says the zeroes may
/// be read).
inline void wipe(void* data, std::size_t size) noexcept {
#if defined(__GNUC__)  // GCC, Clang: memset, then a barrier that says the zeroes are read
  std::memset(data, 0, size);
  __asm__ __volatile__("" : : "r"(data) : "memory");
#else  // elsewhere: stores through a volatile pointer, which may not be dropped
  volatile unsigned char* bytes = static_cast<volatile unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = 0;
#endif
}

/// Four 32-bit lanes with the operators ChaCha needs (+, ^, |, shifts by a count, + a
/// scalar to every lane, lane access): the portable form of a 4 x 32-bit vector.
struct PlainLanes {
  std::uint32_t lane[4];

  std::uint32_t& operator[](std::size_t i) noexcept { return lane[i]; }
  PlainLanes& operator+=(const PlainLanes& b) noexcept { return *this = *this + b; }
  template <class Op>
  static PlainLanes each(const PlainLanes& a, const PlainLanes& b, Op op) noexcept {
    return {{op(a.lane[0], b.lane[0]), op(a.lane[1], b.lane[1]), op(a.lane[2], b.lane[2]),
             op(a.lane[3], b.lane[3])}};
  }
  friend PlainLanes operator+(PlainLanes a, PlainLanes b) noexcept {
    return each(a, b, [](std::uint32_t x, std::uint32_t y) { return x + y; });
  }
  friend PlainLanes operator+(PlainLanes a, std::uint32_t s) noexcept {
    return a + PlainLanes{{s, s, s, s}};
  }
  friend PlainLanes operator^(PlainLanes a, PlainLanes b) noexcept {
    return each(a, b, [](std::uint32_t x, std::uint32_t y) { return x ^ y; });
  }
  friend PlainLanes operator|(PlainLanes a, PlainLanes b) noexcept {
    return each(a, b, [](std::uint32_t x, std::uint32_t y) { return x | y; });
  }
  friend PlainLanes operator<<(PlainLanes a, int bits) noexcept {
    return each(a, a, [bits](std::uint32_t x, std::uint32_t) { return x << bits; });
  }
  friend PlainLanes operator>>(PlainLanes a, int bits) noexcept {
    return each(a, a, [bits](std::uint32_t x, std::uint32_t) { return x >> bits; });
  }
};

#if defined(__GNUC__)  // GCC, Clang: a native vector (SSE2 on x86-64, NEON on ARM)
typedef std::uint32_t VectorLanes __attribute__((vector_size(16)));
using Lanes = VectorLanes;
#else
using Lanes = PlainLanes;
#endif

/// Four consecutive ChaCha blocks — block counters `counter` to `counter + 3` in state
/// words 12-13, `nonce` in words 14-15 (the original 64/64 layout) — computed at once,
/// one block per lane of `Vec` (Lanes: a native vector where the compiler has one). The
/// output is interleaved: word w of block l is out[w * 4 + l]; as random bytes, any fixed
/// order is as good as another.
template <int Rounds, class Vec = Lanes>
void chacha_four_blocks(const std::uint32_t (&key)[8], std::uint64_t counter, std::uint64_t nonce,
                        std::uint32_t* out) noexcept {
  static_assert(sizeof(Vec) == 16, "four 32-bit lanes");
  const auto rotl = [](Vec v, int bits) { return (v << bits) | (v >> (32 - bits)); };
  const auto quarter_round = [&](Vec& a, Vec& b, Vec& c, Vec& d) {
    a += b;
    d = rotl(d ^ a, 16);
    c += d;
    b = rotl(b ^ c, 12);
    a += b;
    d = rotl(d ^ a, 8);
    c += d;
    b = rotl(b ^ c, 7);
  };
  static constexpr std::uint32_t kConstants[4] = {0x61707865u, 0x3320646eu, 0x79622d32u,
                                                  0x6b206574u};
  Vec input[16];
  for (std::size_t w = 0; w < 4; ++w) input[w] = Vec{} + kConstants[w];
  for (std::size_t w = 0; w < 8; ++w) input[4 + w] = Vec{} + key[w];
  for (unsigned l = 0; l < 4; ++l) {
    input[12][l] = static_cast<std::uint32_t>(counter + l);
    input[13][l] = static_cast<std::uint32_t>((counter + l) >> 32);
  }
  input[14] = Vec{} + static_cast<std::uint32_t>(nonce);
  input[15] = Vec{} + static_cast<std::uint32_t>(nonce >> 32);
  Vec x[16];
  for (std::size_t w = 0; w < 16; ++w) x[w] = input[w];
  for (int double_round = 0; double_round < Rounds / 2; ++double_round) {
    quarter_round(x[0], x[4], x[8], x[12]);
    quarter_round(x[1], x[5], x[9], x[13]);
    quarter_round(x[2], x[6], x[10], x[14]);
    quarter_round(x[3], x[7], x[11], x[15]);
    quarter_round(x[0], x[5], x[10], x[15]);
    quarter_round(x[1], x[6], x[11], x[12]);
    quarter_round(x[2], x[7], x[8], x[13]);
    quarter_round(x[3], x[4], x[9], x[14]);
  }
  for (std::size_t w = 0; w < 16; ++w) {
    const Vec sum = x[w] + input[w];
    std::memcpy(out + w * 4, &sum, sizeof sum);
  }
  wipe(x, sizeof x);
  wipe(input, sizeof input);
}

class ChaChaGenerator {
 public:
  ChaChaGenerator() { reseed(); }
  ChaChaGenerator(const ChaChaGenerator&) = delete;
  ChaChaGenerator& operator=(const ChaChaGenerator&) = delete;
  ~ChaChaGenerator() {
    wipe(buffer_, sizeof buffer_);
    wipe(key_, sizeof key_);
  }

  /// Fills `out` with 16 random bytes.
  void fill16(unsigned char* out) {
    if (generation_ != platform::fork_generation()) reseed();
    if (used_ + 16 > sizeof buffer_) refill();
    unsigned char* const source = reinterpret_cast<unsigned char*>(buffer_) + used_;
    std::memcpy(out, source, 16);
    wipe(source, 16);
    used_ += 16;
  }

 private:
  static constexpr int kRounds = 12;
  static constexpr std::size_t kBlocks = 16;
  static constexpr std::size_t kWordsPerBlock = 16;
  static constexpr std::size_t kKeyBytes = 32;

  void refill() noexcept {
    for (std::size_t b = 0; b < kBlocks; b += 4, counter_ += 4)
      chacha_four_blocks<kRounds>(key_, counter_, 0, buffer_ + b * kWordsPerBlock);
    // Fast key erasure: the first 32 bytes become the next key and are never handed out.
    std::memcpy(key_, buffer_, kKeyBytes);
    wipe(buffer_, kKeyBytes);
    used_ = kKeyBytes;
  }

  void reseed() {
    platform::fill_random(key_, kKeyBytes);
    counter_ = 0;
    generation_ = platform::fork_generation();
    refill();
  }

  std::uint32_t buffer_[kBlocks * kWordsPerBlock] = {};
  std::uint32_t key_[8] = {};
  std::uint64_t counter_ = 0;
  std::size_t used_ = sizeof buffer_;
  unsigned long generation_ = 0;
};

/// The calling thread's generator.
inline ChaChaGenerator& thread_generator() {
  thread_local ChaChaGenerator generator;
  return generator;
}

}  // namespace leaselock::detail
