// leaselock/mode.hpp — the two ways a key can be held.
//
// Mode::shared   — a reader: any number of shared holders may hold a key at once.
// Mode::exclusive — a writer: one holder, and nobody else, shared or exclusive.
#pragma once

#include <string_view>

namespace leaselock {

/// How a lease holds its key.
enum class Mode : unsigned char { shared, exclusive };

/// "shared" or "exclusive".
constexpr std::string_view to_string(Mode mode) noexcept {
  return mode == Mode::shared ? std::string_view{"shared"} : std::string_view{"exclusive"};
}

/// True when a lease in mode `wanted` may be granted beside a live lease in mode `held`.
constexpr bool compatible(Mode held, Mode wanted) noexcept {
  return held == Mode::shared && wanted == Mode::shared;
}

}  // namespace leaselock
