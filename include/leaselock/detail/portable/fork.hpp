// leaselock/detail/portable/fork.hpp — the fork generation where processes do not fork.
//
// Only for platforms without fork(2) (Windows): a process never becomes a copy of
// another, so the per-thread random generators never need to reseed.
#pragma once

namespace leaselock::detail::portable {

/// Always 0: there is no fork().
inline unsigned long fork_generation() noexcept { return 0; }

}  // namespace leaselock::detail::portable
