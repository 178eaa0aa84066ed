// leaselock/detail/platform.hpp — the one place that picks the operating-system layer.
//
// The in-process library (LockManager, InProcessBackend, ManualClock, Lease, NamedMutex)
// needs a few things from the system: random bytes to key the token generator, a
// counter that changes in a child after fork(), a default owner name, this process's
// id and whether another process exists (HolderProcess). They come from
// detail/posix/ on POSIX systems and from detail/portable/ (the C++ standard library
// alone) elsewhere, such as Windows. Code outside this header says detail::platform::.
//
// LEASELOCK_HAS_FILE_BACKEND is 1 where backends/file.hpp compiles (Linux: futexes,
// robust process-shared mutexes, /proc), else 0; leaselock.hpp includes FileBackend only
// where it is 1.
#pragma once

// Two choices: where random bytes come from, and where the process calls (fork
// generation, default owner) come from.
#if defined(__linux__)
#include <leaselock/detail/posix/fork.hpp>
#include <leaselock/detail/posix/process.hpp>
#include <leaselock/detail/posix/random.hpp>
#define LEASELOCK_HAS_FILE_BACKEND 1
namespace leaselock::detail {
namespace random_layer = posix;   // getrandom(2), else /dev/urandom
namespace process_layer = posix;  // pthread_atfork, getpid, gethostname, kill(pid, 0)
}  // namespace leaselock::detail

#elif defined(__unix__) || defined(__APPLE__)  // other POSIX systems: no getrandom(2)
#include <leaselock/detail/portable/random.hpp>
#include <leaselock/detail/posix/fork.hpp>
#include <leaselock/detail/posix/process.hpp>
#define LEASELOCK_HAS_FILE_BACKEND 0
namespace leaselock::detail {
namespace random_layer = portable;  // std::random_device
namespace process_layer = posix;
}  // namespace leaselock::detail

#else  // Windows and anything else: the standard library alone (no fork there)
#include <leaselock/detail/portable/fork.hpp>
#include <leaselock/detail/portable/process.hpp>
#include <leaselock/detail/portable/random.hpp>
#define LEASELOCK_HAS_FILE_BACKEND 0
namespace leaselock::detail {
namespace random_layer = portable;
namespace process_layer = portable;
}  // namespace leaselock::detail
#endif

namespace leaselock::detail::platform {
using process_layer::current_pid;
using process_layer::fork_generation;
using process_layer::process_exists;
using process_layer::process_owner;
using random_layer::fill_random;
}  // namespace leaselock::detail::platform
