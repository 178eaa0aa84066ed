// leaselock/detail/posix/sigbus_guard.hpp — reading a file mapping that may have been cut.
//
// Touching a page of a MAP_SHARED mapping that lies beyond the end of its file raises
// SIGBUS, which kills the process. A record file cut short by someone else must not do
// that to a process that merely has it mapped, so FileBackend probes the pages it is
// about to use: probe_pages() reads one byte of each, and a SIGBUS raised on one of them
// makes it return false instead (a handler, installed once, jumps back; it passes every
// other SIGBUS to the disposition that was there before). Before it jumps, the handler
// puts back the signal mask the probing thread had: a handler runs with SIGBUS (and
// whatever its sa_mask names, which a wrapping runtime such as ThreadSanitizer fills)
// blocked, and a SIGBUS raised while it is blocked kills the process, so the next cut
// page would. A file cut between the probe and the use, a few instructions later, still
// raises SIGBUS.
#pragma once

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstddef>

namespace leaselock::detail::posix {

struct PageProbe {
  sigjmp_buf jump;
  const volatile unsigned char* begin;
  const volatile unsigned char* end;
};

inline thread_local PageProbe* current_page_probe = nullptr;

inline struct sigaction& previous_sigbus_action() noexcept {
  static struct sigaction previous {};
  return previous;
}

inline void on_sigbus(int signal, siginfo_t* info, void* context) {
  PageProbe* probe = current_page_probe;
  const auto* address = static_cast<const volatile unsigned char*>(info->si_addr);
  if (probe && address >= probe->begin && address < probe->end) {
    // The mask the thread had when the page faulted (the kernel saved it in the context).
    ::pthread_sigmask(SIG_SETMASK, &static_cast<const ucontext_t*>(context)->uc_sigmask, nullptr);
    siglongjmp(probe->jump, 1);
  }
  struct sigaction& previous = previous_sigbus_action();
  if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
    previous.sa_sigaction(signal, info, context);
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);
  } else {
    // Not ours: put the old disposition back; the faulting access repeats and gets it.
    ::sigaction(SIGBUS, &previous, nullptr);
  }
}

/// Installs the handler (once per process; later calls do nothing).
inline void install_sigbus_guard() noexcept {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_sigaction = on_sigbus;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    return ::sigaction(SIGBUS, &action, &previous_sigbus_action()) == 0;
  }();
  (void)installed;
}

/// Reads one byte of every page of [base, base + size); false if one of them is beyond
/// the end of its file. install_sigbus_guard() must have been called.
inline bool probe_pages(const void* base, std::size_t size) noexcept {
  if (size == 0) return true;
  static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  PageProbe probe;
  probe.begin = static_cast<const volatile unsigned char*>(base);
  probe.end = probe.begin + size;
  PageProbe* const outer = current_page_probe;
  if (sigsetjmp(probe.jump, 0) != 0) {
    current_page_probe = outer;
    return false;
  }
  current_page_probe = &probe;
  for (std::size_t offset = 0; offset < size; offset += page) (void)probe.begin[offset];
  (void)probe.begin[size - 1];
  current_page_probe = outer;
  return true;
}

}  // namespace leaselock::detail::posix
