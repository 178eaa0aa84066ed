// The conformance suite: the contract of DESIGN.md, checked the same way for every
// backend (TEST_CASE_TEMPLATE over LEASELOCK_BACKEND_SETUPS). Every TTL and timeout case
// runs on a ManualClock: deterministic, no sleeps.
#include <future>
#include <set>

#include "support.hpp"

using namespace std::chrono_literals;
using leaselock::Mode;
using leaselock::Token;
using test::Harness;

TEST_CASE_TEMPLATE("an exclusive lease excludes every other lease", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto writer = h.locks.try_acquire("doc", Mode::exclusive, 10s);
  REQUIRE(writer);
  CHECK_FALSE(h.locks.try_acquire("doc", Mode::exclusive, 10s));
  CHECK_FALSE(h.locks.try_acquire("doc", Mode::shared, 10s));
  CHECK(h.locks.try_acquire("other-doc", Mode::exclusive, 10s));
  CHECK(writer.release());
  CHECK(h.locks.try_acquire("doc", Mode::exclusive, 10s));
}

TEST_CASE_TEMPLATE("shared leases coexist and keep writers out", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto a = h.locks.try_acquire("doc", Mode::shared, 10s);
  auto b = h.locks.try_acquire("doc", Mode::shared, 10s);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a.token() != b.token());
  CHECK_FALSE(h.locks.try_acquire("doc", Mode::exclusive, 10s));
  auto info = h.locks.status("doc");
  REQUIRE(info);
  CHECK(info->mode == Mode::shared);
  CHECK(info->holders.size() == 2);
  CHECK(a.release());
  CHECK_FALSE(h.locks.try_acquire("doc", Mode::exclusive, 10s));
  CHECK(b.release());
  CHECK(h.locks.try_acquire("doc", Mode::exclusive, 10s));
}

TEST_CASE_TEMPLATE("fences strictly increase per key, also after the key was idle", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  std::uint64_t last = 0;
  for (int round = 0; round < 50; ++round) {
    // Alternate modes, let some expire instead of being released, and touch other keys
    // in between so the key's record is dropped and made anew.
    const Mode mode = round % 3 == 0 ? Mode::shared : Mode::exclusive;
    auto lease = h.locks.try_acquire("fenced", mode, 5s);
    REQUIRE(lease);
    CHECK(lease.fence() > last);
    last = lease.fence();
    if (round % 4 == 0) {
      h.clock.advance(5s);
      (void)lease.detach();
    }
    auto other = h.locks.try_acquire("key-" + std::to_string(round), Mode::exclusive, 1s);
    CHECK(other);
  }
  auto shared_a = h.locks.try_acquire("fenced", Mode::shared, 5s);
  auto shared_b = h.locks.try_acquire("fenced", Mode::shared, 5s);
  CHECK(shared_a.fence() > last);
  CHECK(shared_b.fence() > shared_a.fence());
}

TEST_CASE_TEMPLATE("a lease expires exactly at its TTL", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 30s);
  REQUIRE(lease);
  CHECK(lease.expires_at() == lease.acquired_at() + 30s);
  h.clock.advance(30s - 1ns);
  CHECK_FALSE(h.locks.try_acquire("job", Mode::shared, 1s));
  REQUIRE(h.locks.status("job"));
  h.clock.advance(1ns);
  CHECK_FALSE(h.locks.status("job"));  // expired leases stop counting at once
  auto next = h.locks.try_acquire("job", Mode::exclusive, 30s);
  REQUIRE(next);
  CHECK(next.fence() > lease.fence());
  // The expired holder can neither renew nor release the new holder's lease.
  CHECK_FALSE(lease.renew(30s));
  CHECK_FALSE(lease.release());
  CHECK(h.locks.status("job"));
}

TEST_CASE_TEMPLATE("an expired lease that nobody took cannot be renewed or released", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 10s);
  REQUIRE(lease);
  h.clock.advance(10s);
  CHECK_FALSE(h.locks.renew("job", lease.token(), 10s));
  CHECK_FALSE(h.locks.release("job", lease.token()));
  CHECK(h.locks.list().empty());
}

TEST_CASE_TEMPLATE("renew extends from now and needs the token", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 10s);
  REQUIRE(lease);
  h.clock.advance(9s);
  CHECK_FALSE(h.locks.renew("job", Token::generate(), 60s));  // a stranger's token
  REQUIRE(lease.renew(10s));
  CHECK(lease.expires_at() == h.clock.now() + 10s);
  h.clock.advance(9s);
  CHECK(h.locks.status("job"));
  CHECK(h.locks.status("job")->holders.at(0).expires_at == lease.expires_at());
  h.clock.advance(1s);
  CHECK_FALSE(h.locks.status("job"));
}

TEST_CASE_TEMPLATE("release is idempotent and needs the token", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto lease = h.locks.try_acquire("job", Mode::exclusive, 10s);
  REQUIRE(lease);
  CHECK_FALSE(h.locks.release("job", Token::generate()));
  CHECK_FALSE(h.locks.release("other", lease.token()));
  CHECK(h.locks.status("job"));
  CHECK(h.locks.release("job", lease.token()));
  CHECK_FALSE(h.locks.release("job", lease.token()));
  CHECK_FALSE(lease.release());  // the guard's own release now finds nothing
  CHECK_FALSE(h.locks.status("job"));
}

TEST_CASE_TEMPLATE("a waiter is woken by a release", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto holder = h.locks.try_acquire("k", Mode::exclusive, 1h);
  REQUIRE(holder);
  auto waiter = std::async(std::launch::async,
                           [&] { return h.locks.try_acquire("k", Mode::exclusive, 10s, 1h); });
  test::wait_for_sleepers(h.clock, 1);
  CHECK(h.locks.status("k")->waiters == 1);
  const auto released_at = h.clock.now();
  CHECK(holder.release());
  auto lease = waiter.get();
  REQUIRE(lease);
  CHECK(lease.fence() > holder.fence());
  CHECK(lease.acquired_at() == released_at);  // no manual time passed: woken by the release
}

TEST_CASE_TEMPLATE("a waiter is woken by the holder's expiry", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto holder = h.locks.try_acquire("k", Mode::exclusive, 10s);
  REQUIRE(holder);
  const auto expiry = holder.expires_at();
  auto waiter = std::async(std::launch::async,
                           [&] { return h.locks.try_acquire("k", Mode::shared, 10s, 1min); });
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(10s);
  auto lease = waiter.get();
  REQUIRE(lease);
  CHECK(lease.acquired_at() == expiry);
}

TEST_CASE_TEMPLATE("a wait times out at its deadline with an empty lease", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  test::RecordingObserver events;
  h.locks.set_observer(&events);
  auto holder = h.locks.try_acquire("k", Mode::exclusive, 1h);
  REQUIRE(holder);
  auto waiter = std::async(std::launch::async,
                           [&] { return h.locks.try_acquire("k", Mode::exclusive, 10s, 5s); });
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(4s);
  test::wait_for_sleepers(h.clock, 1);  // still asleep: its deadline is at 5 s
  CHECK(waiter.wait_for(0s) == std::future_status::timeout);
  h.clock.advance(1s);
  auto lease = waiter.get();
  CHECK_FALSE(lease);
  CHECK(h.locks.status("k")->waiters == 0);  // its place in the queue is gone
  REQUIRE(events.count(leaselock::LockEventKind::timed_out) == 1);
  for (const auto& e : events.entries())
    if (e.kind == leaselock::LockEventKind::timed_out) CHECK(e.waited == 5s);
  h.locks.set_observer(nullptr);
}

TEST_CASE_TEMPLATE("a deadline in the past or a negative wait means one try", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  h.clock.advance(1h);
  auto holder = h.locks.try_acquire("k", Mode::exclusive, 1h);
  CHECK_FALSE(h.locks.try_acquire("k", Mode::exclusive, 1s, -5s));
  CHECK_FALSE(h.locks.try_acquire_until("k", Mode::exclusive, 1s, h.clock.now() - 1min));
  CHECK(h.locks.try_acquire_until("free", Mode::exclusive, 1s, h.clock.now() - 1min));
  CHECK(h.clock.sleepers() == 0);
}

TEST_CASE_TEMPLATE("FIFO: a queued writer is not overtaken by later readers", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto reader = h.locks.try_acquire("k", Mode::shared, 1h);
  REQUIRE(reader);
  auto writer = std::async(std::launch::async,
                           [&] { return h.locks.try_acquire("k", Mode::exclusive, 10s, 1h); });
  test::wait_for_sleepers(h.clock, 1);
  // A new reader would fit beside the current one, but a writer is queued first.
  CHECK_FALSE(h.locks.try_acquire("k", Mode::shared, 10s));
  auto late_reader = std::async(std::launch::async,
                                [&] { return h.locks.try_acquire("k", Mode::shared, 10s, 1h); });
  test::wait_for_sleepers(h.clock, 2);
  CHECK(h.locks.status("k")->waiters == 2);
  CHECK(reader.release());
  auto w = writer.get();
  REQUIRE(w);
  CHECK(h.locks.status("k")->mode == Mode::exclusive);
  CHECK(w.release());
  auto r = late_reader.get();
  REQUIRE(r);
  CHECK(r.fence() > w.fence());
}

TEST_CASE_TEMPLATE("queued readers are granted together", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto writer = h.locks.try_acquire("k", Mode::exclusive, 1h);
  std::vector<std::future<typename Harness<Setup>::Manager::Lease>> readers;
  for (int i = 0; i < 3; ++i) {
    readers.push_back(std::async(std::launch::async,
                                 [&] { return h.locks.try_acquire("k", Mode::shared, 10s, 1h); }));
  }
  test::wait_for_sleepers(h.clock, 3);
  CHECK(writer.release());
  std::set<std::uint64_t> fences;
  std::vector<typename Harness<Setup>::Manager::Lease> held;
  for (auto& r : readers) {
    auto lease = r.get();
    REQUIRE(lease);
    fences.insert(lease.fence());
    held.push_back(std::move(lease));
  }
  CHECK(fences.size() == 3);
  CHECK(h.locks.status("k")->holders.size() == 3);
}

TEST_CASE_TEMPLATE("a waiter that times out lets those behind it in", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto reader = h.locks.try_acquire("k", Mode::shared, 1h);
  auto writer = std::async(std::launch::async,
                           [&] { return h.locks.try_acquire("k", Mode::exclusive, 10s, 5s); });
  test::wait_for_sleepers(h.clock, 1);
  auto late_reader = std::async(std::launch::async,
                                [&] { return h.locks.try_acquire("k", Mode::shared, 10s, 1h); });
  test::wait_for_sleepers(h.clock, 2);
  h.clock.advance(5s);
  CHECK_FALSE(writer.get());
  auto r = late_reader.get();
  REQUIRE(r);  // fits beside the first reader once the writer left the queue
  CHECK(h.locks.status("k")->holders.size() == 2);
}

TEST_CASE_TEMPLATE("a waiter's timeout never takes another waiter out of the queue", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  // Queue tickets start again at 1 when a key's record is dropped and made anew. `first`
  // is woken with a grant that lapses before it runs, its record is dropped, and
  // `second` queues on the new record with ticket 1: first's timeout must leave it queued.
  Harness<Setup, test::GatedClock> h;
  std::future<bool> first, second;
  // On the way out, a failed REQUIRE included: the gate open and every deadline passed,
  // so that no thread stays at the gate or asleep (the futures wait for their threads).
  struct Unblock {
    test::GatedClock& clock;
    ~Unblock() {
      clock.open();
      clock.advance(1000s);
    }
  } unblock{h.clock};
  auto holder = h.locks.try_acquire("k", Mode::exclusive, 1h);
  h.clock.close();
  first = std::async(std::launch::async, [&] {
    return static_cast<bool>(h.locks.try_acquire("k", Mode::exclusive, 1s, 5s));
  });
  test::wait_for_sleepers(h.clock, 1);
  CHECK(holder.release());  // hands "k" to `first`, which is held at the gate
  h.clock.wait_for_held(1);
  h.clock.advance(2s);  // its grant lapses before it can see it
  CHECK_FALSE(h.locks.status("k"));
  CHECK(h.locks.try_acquire("k", Mode::exclusive, 1s).release());
  CHECK(h.locks.backend().remove_idle() == 1);  // the record is dropped
  auto blocker = h.locks.try_acquire("k", Mode::exclusive, 1h);
  REQUIRE(blocker);
  second = std::async(std::launch::async, [&] {
    return static_cast<bool>(h.locks.try_acquire("k", Mode::exclusive, 1s, 100s));
  });
  test::wait_for_sleepers(h.clock, 2);  // first at the gate, and second
  h.clock.advance(5s);                  // past first's deadline, long before second's
  h.clock.open();
  CHECK_FALSE(first.get());
  const auto info = h.locks.status("k");
  REQUIRE(info);
  const bool second_queued = info->waiters == 1;
  CHECK(second_queued);
  CHECK(blocker.release());                   // hands "k" to `second`
  if (!second_queued) h.clock.advance(100s);  // left out of the queue, it would sleep on
  CHECK(second.get());
}

TEST_CASE_TEMPLATE("durations of any unit saturate instead of overflowing", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  using std::chrono::hours;
  Harness<Setup> h;
  using time_point = typename Harness<Setup>::Manager::time_point;
  // A TTL too long for 64-bit nanoseconds is clamped: the lease practically never expires.
  auto forever = h.locks.try_acquire("ttl-max", Mode::exclusive, hours::max());
  REQUIRE(forever);
  CHECK(forever.expires_at() == time_point::max());
  auto huge = h.locks.try_acquire("ttl-huge", Mode::exclusive, hours(302321639));
  REQUIRE(huge);
  CHECK(huge.expires_at() == time_point::max());
  h.clock.advance(hours(24 * 365 * 100));
  CHECK(h.locks.status("ttl-max"));
  CHECK(h.locks.status("ttl-huge"));
  CHECK(forever.renew(std::chrono::seconds::max()));
  CHECK(h.locks.renew("ttl-huge", huge.token(), hours::max()));
  // Fractional and coarse units are taken as they are.
  auto fractional =
      h.locks.try_acquire("fractional", Mode::shared, std::chrono::duration<double>(1.5));
  REQUIRE(fractional);
  CHECK(fractional.expires_at() == fractional.acquired_at() + 1500ms);
  CHECK_THROWS_WITH_AS(
      (void)h.locks.try_acquire("tiny", Mode::shared, std::chrono::duration<double>(1e-12)),
      "leaselock: ttl must be > 0", std::invalid_argument);
  CHECK_FALSE(h.locks.status("tiny"));
  // An endless wait, as a duration or as a deadline, is endless.
  auto blocker = h.locks.try_acquire("busy", Mode::exclusive, 1h);
  auto by_duration = std::async(std::launch::async, [&] {
    return static_cast<bool>(h.locks.try_acquire("busy", Mode::exclusive, 1h, hours::max()));
  });
  test::wait_for_sleepers(h.clock, 1);  // it waits instead of giving up at once
  CHECK(blocker.release());
  CHECK(by_duration.get());  // and its lease went with the temporary
  blocker = h.locks.try_acquire("busy", Mode::exclusive, 1h);
  REQUIRE(blocker);
  using Clock = typename Harness<Setup>::Manager::clock_type;
  auto by_deadline = std::async(std::launch::async, [&] {
    const auto never = std::chrono::time_point<Clock, hours>::max();
    return static_cast<bool>(h.locks.try_acquire_until("busy", Mode::exclusive, 1h, never));
  });
  test::wait_for_sleepers(h.clock, 1);
  CHECK(blocker.release());
  CHECK(by_deadline.get());
}

TEST_CASE_TEMPLATE("acquire waits as long as it takes", Setup, LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto holder = h.locks.try_acquire("k", Mode::exclusive, 100h);
  auto waiter =
      std::async(std::launch::async, [&] { return h.locks.acquire("k", Mode::exclusive, 10s); });
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(99h);
  test::wait_for_sleepers(h.clock, 1);
  h.clock.advance(1h);
  auto lease = waiter.get();
  REQUIRE(lease);
  CHECK(lease.acquired_at() == holder.expires_at());  // at the holder's expiry, not before
}

TEST_CASE_TEMPLATE("status and list report live holders, owners and waiters", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto a = h.locks.try_acquire("alpha", Mode::shared, 10s, 0s, "agent-a");
  auto b = h.locks.try_acquire("alpha", Mode::shared, 20s, 0s, "agent-b");
  auto c = h.locks.try_acquire("beta/../x", Mode::exclusive, 5s);
  auto info = h.locks.status("alpha");
  REQUIRE(info);
  CHECK(info->key == "alpha");
  CHECK(info->waiters == 0);
  REQUIRE(info->holders.size() == 2);
  std::set<std::string> owners;
  for (const auto& holder : info->holders) {
    owners.insert(holder.owner);
    CHECK((holder.token == a.token() || holder.token == b.token()));
    CHECK(holder.mode == Mode::shared);
    CHECK(holder.acquired_at == h.clock.now());
  }
  CHECK(owners == std::set<std::string>{"agent-a", "agent-b"});
  CHECK(h.locks.status("beta/../x")->holders.at(0).owner == h.locks.owner());
  CHECK_FALSE(h.locks.status("gamma"));

  auto keys = [&] {
    std::set<std::string> found;
    for (const auto& lock : h.locks.list()) found.insert(lock.key);
    return found;
  };
  CHECK(keys() == std::set<std::string>{"alpha", "beta/../x"});
  h.clock.advance(5s);  // c expires
  CHECK(keys() == std::set<std::string>{"alpha"});
  h.clock.advance(5s);  // a expires
  CHECK(h.locks.status("alpha")->holders.size() == 1);
  h.clock.advance(10s);
  CHECK(keys().empty());
}

TEST_CASE_TEMPLATE("bad input gets a clear error and changes nothing", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  auto held = h.locks.try_acquire("kept", Mode::exclusive, 10s);
  REQUIRE(held);
  const std::string too_long(leaselock::max_key_size + 1, 'k');
  const std::string with_nul("a\0b", 3);
  auto message = [](auto&& fn) {
    try {
      fn();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK(message([&] { (void)h.locks.try_acquire("", Mode::exclusive, 1s); }) ==
        "leaselock: key is empty");
  CHECK(message([&] { (void)h.locks.try_acquire(with_nul, Mode::exclusive, 1s); }) ==
        "leaselock: key contains a NUL byte");
  CHECK(message([&] { (void)h.locks.try_acquire(too_long, Mode::exclusive, 1s); }) ==
        "leaselock: key is 4097 bytes, over the limit of 4096");
  CHECK(message([&] { (void)h.locks.try_acquire("k", Mode::exclusive, 0s); }) ==
        "leaselock: ttl must be > 0");
  CHECK(message([&] { (void)h.locks.try_acquire("k", Mode::exclusive, -1s); }) ==
        "leaselock: ttl must be > 0");
  CHECK(message([&] { (void)h.locks.acquire("kept", Mode::exclusive, 0s); }) ==
        "leaselock: ttl must be > 0");
  CHECK(message([&] { (void)h.locks.renew("kept", held.token(), 0s); }) ==
        "leaselock: ttl must be > 0");
  CHECK(message([&] { (void)held.renew(0s); }) == "leaselock: ttl must be > 0");
  CHECK(message([&] { (void)h.locks.release("", held.token()); }) == "leaselock: key is empty");
  CHECK(message([&] { (void)h.locks.status(with_nul); }) == "leaselock: key contains a NUL byte");
  CHECK(message([&] {
          (void)h.locks.try_acquire("k", Mode::exclusive, 1s, 0s, std::string(300, 'o'));
        }) == "leaselock: owner is 300 bytes, over the limit of 256");
  CHECK(message([&] { (void)Token::from_string("not-a-token"); }) ==
        "leaselock: unparseable token (expected 32 hex digits, got 11 characters)");
  CHECK(message([&] { (void)h.locks.try_acquire_all({}, 1s); }) ==
        "leaselock: try_acquire_all needs at least one key");
  CHECK(message([&] {
          (void)h.locks.try_acquire_all({{"ok", Mode::exclusive}, {"", Mode::shared}}, 1s);
        }) == "leaselock: key is empty");
  // Nothing changed: the lease is still held, and no other key appeared.
  auto locks = h.locks.list();
  REQUIRE(locks.size() == 1);
  CHECK(locks[0].key == "kept");
  CHECK(locks[0].holders.at(0).token == held.token());
  CHECK(held.renew(10s));
}

TEST_CASE_TEMPLATE("keys are any bytes but NUL, up to the documented limit", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  const std::string longest(leaselock::max_key_size, '/');
  std::string binary;
  for (int c = 1; c < 256; ++c) binary.push_back(static_cast<char>(c));
  for (const std::string& key : {longest, binary, std::string("../../etc/passwd"),
                                 std::string("/abs/path"), std::string("."), std::string("k")}) {
    auto lease = h.locks.try_acquire(key, Mode::exclusive, 10s);
    REQUIRE(lease);
    CHECK(lease.key() == key);
    CHECK_FALSE(h.locks.try_acquire(key, Mode::exclusive, 10s));
    REQUIRE(h.locks.status(key));
    CHECK(h.locks.status(key)->key == key);
  }
  CHECK(h.locks.list().empty());  // every guard above released at the end of its iteration
}

TEST_CASE_TEMPLATE("a lease guard releases on scope exit and moves", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  {
    auto lease = h.locks.try_acquire("k", Mode::exclusive, 10s);
    REQUIRE(lease);
    auto moved = std::move(lease);
    CHECK_FALSE(lease);  // NOLINT(bugprone-use-after-move): checks the moved-from state
    CHECK(moved);
    CHECK(h.locks.status("k"));
    typename Harness<Setup>::Manager::Lease assigned;
    assigned = std::move(moved);
    CHECK(assigned);
    CHECK(h.locks.status("k"));
  }
  CHECK_FALSE(h.locks.status("k"));
  // Move-assigning over a held lease releases the old one first.
  auto first = h.locks.try_acquire("a", Mode::exclusive, 10s);
  first = h.locks.try_acquire("b", Mode::exclusive, 10s);
  CHECK_FALSE(h.locks.status("a"));
  CHECK(h.locks.status("b"));
}

TEST_CASE_TEMPLATE("a detached lease crosses a call boundary by key and token", Setup,
                   LEASELOCK_BACKEND_SETUPS) {
  Harness<Setup> h;
  std::string token_text;
  std::uint64_t fence = 0;
  {
    auto lease = h.locks.try_acquire("file.txt", Mode::exclusive, 30s);
    REQUIRE(lease);
    fence = lease.fence();
    token_text = lease.detach().to_string();
    CHECK_FALSE(lease);
  }
  CHECK(h.locks.status("file.txt"));  // still held after the guard went away
  const Token token = Token::from_string(token_text);
  CHECK(h.locks.renew("file.txt", token, 30s));
  {
    auto adopted = h.locks.adopt("file.txt", token);
    REQUIRE(adopted);
    CHECK(adopted.fence() == fence);
    CHECK(adopted.mode() == Mode::exclusive);
    CHECK_FALSE(h.locks.adopt("file.txt", Token::generate()));
    token_text = adopted.detach().to_string();
  }
  CHECK(h.locks.release("file.txt", Token::from_string(token_text)));
  CHECK_FALSE(h.locks.status("file.txt"));
}

TEST_CASE_TEMPLATE("the observer sees every kind of event", Setup, LEASELOCK_BACKEND_SETUPS) {
  using Kind = leaselock::LockEventKind;
  Harness<Setup> h;
  test::RecordingObserver events;
  h.locks.set_observer(&events);
  auto a = h.locks.try_acquire("k", Mode::exclusive, 10s, 0s, "agent-a");
  const auto a_fence = a.fence();
  CHECK(a.renew(20s));
  CHECK(a.release());
  auto b = h.locks.try_acquire("k", Mode::exclusive, 10s);
  CHECK_FALSE(h.locks.try_acquire("k", Mode::shared, 10s));
  h.clock.advance(10s);
  auto c = h.locks.try_acquire("k", Mode::shared, 10s);  // finds b expired
  REQUIRE(c);
  const auto seen = events.entries();
  std::vector<Kind> kinds;
  for (const auto& e : seen) kinds.push_back(e.kind);
  CHECK(kinds == std::vector<Kind>{Kind::acquired, Kind::renewed, Kind::released, Kind::acquired,
                                   Kind::timed_out, Kind::expired, Kind::acquired});
  CHECK(seen.at(0).owner == "agent-a");
  CHECK(seen.at(0).fence == a_fence);
  CHECK(seen.at(2).fence == a_fence);
  CHECK(seen.at(5).fence == b.fence());
  CHECK(seen.at(6).mode == Mode::shared);
  h.locks.set_observer(nullptr);
}
