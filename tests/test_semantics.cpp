// The pure lock semantics (detail/semantics.hpp), driven directly: no backend, no
// threads, no clock — just records, requests and instants.
#include <leaselock/detail/semantics.hpp>

#include "support.hpp"

namespace sem = leaselock::detail;
using leaselock::Mode;
using leaselock::Token;

namespace {

sem::Request request(Mode mode, sem::Nanos ttl, std::string_view owner = "o") {
  return sem::Request{mode, ttl, Token::generate(), owner};
}

}  // namespace

TEST_CASE("try_grant: compatibility, fences and expiry") {
  sem::Record record;
  const auto r1 = request(Mode::shared, 100);
  const auto r2 = request(Mode::shared, 50);
  const auto w = request(Mode::exclusive, 10);
  auto g1 = sem::try_grant(record, r1, 0, nullptr);
  auto g2 = sem::try_grant(record, r2, 10, nullptr);
  REQUIRE(g1);
  REQUIRE(g2);
  CHECK(g1->fence == 1);
  CHECK(g2->fence == 2);
  CHECK(g2->expires_at == 60);
  CHECK_FALSE(sem::try_grant(record, w, 59, nullptr));
  sem::ExpiredList expired;
  CHECK_FALSE(sem::try_grant(record, w, 60, &expired));  // r2 expired, r1 still holds
  REQUIRE(expired.size() == 1);
  CHECK(expired[0].token == r2.token);
  auto g3 = sem::try_grant(record, w, 100, &expired);
  REQUIRE(g3);
  CHECK(g3->fence == 3);
  CHECK(expired.size() == 2);
  CHECK(record.holders.size() == 1);
}

TEST_CASE("a TTL that would overflow saturates to practically forever") {
  sem::Record record;
  auto g = sem::try_grant(record, request(Mode::exclusive, sem::kForever), 1000, nullptr);
  REQUIRE(g);
  CHECK(g->expires_at == sem::kForever);
}

TEST_CASE("release hands the key to the queue head in FIFO order") {
  sem::Record record;
  const auto holder = request(Mode::exclusive, 100);
  REQUIRE(sem::try_grant(record, holder, 0, nullptr));
  auto first = request(Mode::shared, 10);
  auto second = request(Mode::shared, 10);
  auto third = request(Mode::exclusive, 10);
  std::uint64_t t1 = sem::enqueue(record, first, 1000);
  std::uint64_t t2 = sem::enqueue(record, second, 1000);
  std::uint64_t t3 = sem::enqueue(record, third, 1000);
  CHECK(sem::poll(record, t1, first, 1000, 5, nullptr).kind == sem::Poll::waiting);
  const auto version = record.version;
  CHECK(sem::release(record, holder.token, 5, nullptr) == sem::Released::released);
  CHECK(record.version > version);
  // Both readers were granted together by the release; the writer still waits.
  CHECK(sem::find_holder(record, first.token));
  CHECK(sem::find_holder(record, second.token));
  CHECK_FALSE(sem::find_holder(record, third.token));
  CHECK(sem::poll(record, t1, first, 1000, 5, nullptr).kind == sem::Poll::granted);
  CHECK(sem::poll(record, t2, second, 1000, 5, nullptr).kind == sem::Poll::granted);
  const auto waiting = sem::poll(record, t3, third, 1000, 5, nullptr);
  CHECK(waiting.kind == sem::Poll::waiting);
  CHECK(waiting.wake_at == 15);  // the readers' expiry comes before the deadline
  const auto granted = sem::poll(record, t3, third, 1000, 15, nullptr);
  CHECK(granted.kind == sem::Poll::granted);
  CHECK(granted.grant.acquired_at == 15);
  CHECK(granted.grant.fence == 4);
}

TEST_CASE("a new request does not overtake the queue, even when it would fit") {
  sem::Record record;
  REQUIRE(sem::try_grant(record, request(Mode::shared, 100), 0, nullptr));
  auto writer = request(Mode::exclusive, 10);
  std::uint64_t ticket = sem::enqueue(record, writer, 1000);
  CHECK_FALSE(sem::try_grant(record, request(Mode::shared, 100), 1, nullptr));
  CHECK(sem::poll(record, ticket, writer, 1000, 1, nullptr).wake_at == 100);
}

TEST_CASE("a timed-out waiter leaves the queue and unblocks those behind") {
  sem::Record record;
  REQUIRE(sem::try_grant(record, request(Mode::shared, 1000), 0, nullptr));
  auto writer = request(Mode::exclusive, 10);
  auto reader = request(Mode::shared, 10);
  std::uint64_t tw = sem::enqueue(record, writer, 50);
  std::uint64_t tr = sem::enqueue(record, reader, 500);
  CHECK(sem::poll(record, tw, writer, 50, 49, nullptr).kind == sem::Poll::waiting);
  CHECK(sem::poll(record, tw, writer, 50, 50, nullptr).kind == sem::Poll::timed_out);
  CHECK(record.waiters.empty());
  CHECK(sem::poll(record, tr, reader, 500, 50, nullptr).kind == sem::Poll::granted);
}

TEST_CASE("a grant that lapsed before its waiter saw it is retried, not lost") {
  sem::Record record;
  const auto holder = request(Mode::exclusive, 10);
  REQUIRE(sem::try_grant(record, holder, 0, nullptr));
  auto waiter = request(Mode::exclusive, 5);
  std::uint64_t ticket = sem::enqueue(record, waiter, 1000);
  REQUIRE(sem::release(record, holder.token, 1, nullptr) == sem::Released::released);
  REQUIRE(sem::find_holder(record, waiter.token));  // granted at 1, expires at 6
  // The waiter only looks at 20: its grant expired unseen; it is granted anew.
  const std::uint64_t old_ticket = ticket;
  const auto poll = sem::poll(record, ticket, waiter, 1000, 20, nullptr);
  CHECK(poll.kind == sem::Poll::granted);
  CHECK(poll.grant.acquired_at == 20);
  CHECK(poll.grant.fence == 3);
  CHECK(ticket == old_ticket);
}

TEST_CASE("renew: only the live holder, and shortening wakes waiters") {
  sem::Record record;
  const auto holder = request(Mode::exclusive, 100);
  REQUIRE(sem::try_grant(record, holder, 0, nullptr));
  CHECK_FALSE(sem::renew(record, Token::generate(), 100, 10, nullptr));
  const auto version = record.version;
  CHECK(sem::renew(record, holder.token, 200, 10, nullptr) == 210);
  CHECK(record.version == version);  // longer: nothing for waiters to see
  CHECK(sem::renew(record, holder.token, 5, 10, nullptr) == 15);
  CHECK(record.version > version);  // shorter: waiters must recompute when to wake
  CHECK_FALSE(sem::renew(record, holder.token, 5, 15, nullptr));
  CHECK(record.idle());
}

TEST_CASE("release of an expired lease reports it expired") {
  sem::Record record;
  const auto holder = request(Mode::exclusive, 10);
  REQUIRE(sem::try_grant(record, holder, 0, nullptr));
  sem::ExpiredList expired;
  CHECK(sem::release(record, holder.token, 10, &expired) == sem::Released::expired);
  CHECK(expired.size() == 1);
  CHECK(sem::release(record, holder.token, 10, &expired) == sem::Released::not_held);
  CHECK(record.idle());
}

TEST_CASE("a waiter is known by its token and ticket: an equal ticket may be another's") {
  // `first` queued with ticket 1 on a record that was dropped and made anew since;
  // `second`, queued on the new record, got ticket 1 again.
  sem::Record dropped;
  REQUIRE(sem::try_grant(dropped, request(Mode::exclusive, 1000), 0, nullptr));
  auto first = request(Mode::exclusive, 10);
  std::uint64_t first_ticket = sem::enqueue(dropped, first, 50);
  sem::Record record;
  REQUIRE(sem::try_grant(record, request(Mode::exclusive, 1000), 0, nullptr));
  auto second = request(Mode::exclusive, 10);
  const std::uint64_t second_ticket = sem::enqueue(record, second, 500);
  REQUIRE(first_ticket == second_ticket);
  // Timing out, `first` must not take `second` out of the queue.
  CHECK(sem::poll(record, first_ticket, first, 50, 50, nullptr).kind == sem::Poll::timed_out);
  REQUIRE(record.waiters.size() == 1);
  CHECK(record.waiters[0].token == second.token);
  CHECK_FALSE(sem::cancel(record, first.token, first_ticket, 50));
  CHECK(record.waiters.size() == 1);
  // Before its deadline, `first` sees it is not queued here and queues behind `second`.
  auto third = request(Mode::exclusive, 10);
  std::uint64_t third_ticket = sem::enqueue(dropped, third, 500);
  CHECK(sem::poll(record, third_ticket, third, 500, 60, nullptr).kind == sem::Poll::waiting);
  REQUIRE(record.waiters.size() == 2);
  CHECK(record.waiters[0].token == second.token);
  CHECK(record.waiters[1].token == third.token);
  CHECK(third_ticket == 2);
  CHECK(sem::cancel(record, second.token, second_ticket, 60));
  CHECK(record.waiters.size() == 1);
}

TEST_CASE("a queued request is never granted after its deadline") {
  sem::Record record;
  const auto holder = request(Mode::exclusive, 100);
  const auto late = request(Mode::exclusive, 10);
  const auto patient = request(Mode::exclusive, 10);
  REQUIRE(sem::try_grant(record, holder, 0, nullptr));
  sem::enqueue(record, late, /*deadline=*/50);  // its waiter never comes back
  sem::enqueue(record, patient, /*deadline=*/500);
  const std::uint64_t version = record.version;
  REQUIRE(sem::release(record, holder.token, 60, nullptr) == sem::Released::released);
  CHECK(record.version > version);
  CHECK_FALSE(sem::find_holder(record, late.token));  // overdue: left the queue
  CHECK(sem::find_holder(record, patient.token));     // the next one got it
  CHECK(record.waiters.empty());
  // At its deadline exactly, a request may still be granted.
  sem::Record edge;
  REQUIRE(sem::try_grant(edge, holder, 0, nullptr));
  sem::enqueue(edge, late, /*deadline=*/100);
  sem::refresh(edge, 100, nullptr);  // the holder expires at 100, the deadline is 100
  CHECK(sem::find_holder(edge, late.token));
}

TEST_CASE("a waiter that stops holding its place leaves the queue; one that holds it stays") {
  sem::Record record;
  const auto holder = request(Mode::exclusive, 100);
  const auto dead = request(Mode::exclusive, 10);
  const auto live = request(Mode::exclusive, 10);
  REQUIRE(sem::try_grant(record, holder, 0, nullptr));
  // Both wait without a deadline, each with a lease on its place until 30.
  sem::enqueue(record, dead, sem::kForever);
  sem::enqueue(record, live, sem::kForever);
  CHECK(sem::hold_place(record, dead.token, 30));
  CHECK(sem::hold_place(record, live.token, 30));
  CHECK(sem::queued_deadline(record, dead.token) == 30);
  const std::uint64_t version = record.version;
  CHECK(sem::hold_place(record, live.token, 50));  // the live one moves its lease on
  CHECK(record.version == version);                // which concerns nobody else
  sem::refresh(record, 30, nullptr);               // at its end exactly, a place still stands
  CHECK(record.waiters.size() == 2);
  sem::refresh(record, 31, nullptr);
  REQUIRE(record.waiters.size() == 1);  // the dead one left the queue
  CHECK(record.waiters.front().token == live.token);
  CHECK(record.version > version);  // and the one behind it, now first, is woken
  CHECK(sem::should_wake(record, live.token));
  CHECK_FALSE(sem::queued_deadline(record, dead.token));
  CHECK_FALSE(sem::hold_place(record, dead.token, 60));  // not queued: nothing to hold
  REQUIRE(sem::release(record, holder.token, 40, nullptr) == sem::Released::released);
  const sem::Holder* granted = sem::find_holder(record, live.token);
  REQUIRE(granted);
  CHECK(granted->fence == 2);  // the next grant after the holder's: none went to the dead one
  CHECK(record.waiters.empty());
}
