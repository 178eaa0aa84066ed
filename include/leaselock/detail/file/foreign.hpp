// leaselock/detail/file/foreign.hpp — the holders and waiters of a record that belong to
// other processes, and reclaiming those whose process has certainly ended.
//
// Each holder and waiter of a record file is stored with its process
// (detail/posix/identity.hpp). Most records have none of other processes, so a process
// keeps, per record, only the (token, process) pairs that are not its own, sorted by
// token; a token it does not find is its own (or a request it just made).
#pragma once

#include <algorithm>
#include <utility>
#include <vector>

#include <leaselock/detail/posix/identity.hpp>
#include <leaselock/detail/semantics.hpp>
#include <leaselock/token.hpp>

namespace leaselock::detail::file {

class ForeignParties {
 public:
  bool empty() const noexcept { return parties_.empty(); }

  /// Indexes the parties of a freshly decoded record (`ids` gives each one's process,
  /// holders first).
  void index(const Record& record, const std::vector<posix::ProcessIdentity>& ids) {
    const auto& self = posix::self_identity();
    parties_.clear();
    std::size_t i = 0;
    for (const Holder& h : record.holders)
      if (const auto& id = ids[i++]; id != self) parties_.emplace_back(h.token, id);
    for (const Waiter& w : record.waiters)
      if (const auto& id = ids[i++]; id != self) parties_.emplace_back(w.token, id);
    std::sort(parties_.begin(), parties_.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
  }

  /// The process of a holder or waiter: another process as stored, or this one (for a
  /// token the record did not have: a request this process just made).
  const posix::ProcessIdentity& identity_of(const Token& token) const noexcept {
    if (!parties_.empty()) {
      const auto it = std::lower_bound(parties_.begin(), parties_.end(), token,
                                       [](const auto& p, const Token& t) { return p.first < t; });
      if (it != parties_.end() && it->first == token) return it->second;
    }
    return posix::self_identity();
  }

  /// Makes `id` the process of the party with `token` (a lease bound to it).
  void bind(const Token& token, const posix::ProcessIdentity& id) {
    const auto it = std::lower_bound(parties_.begin(), parties_.end(), token,
                                     [](const auto& p, const Token& t) { return p.first < t; });
    const bool found = it != parties_.end() && it->first == token;
    if (id == posix::self_identity()) {
      if (found) parties_.erase(it);
    } else if (found) {
      it->second = id;
    } else {
      parties_.emplace(it, token, id);
    }
  }

  /// After `record` was written: forgets the parties that are no longer in it.
  void drop_departed(const Record& record) {
    if (parties_.empty()) return;
    const auto gone = [&](const auto& p) {
      return !find_holder(record, p.first) &&
             std::none_of(record.waiters.begin(), record.waiters.end(),
                          [&](const Waiter& w) { return w.token == p.first; });
    };
    parties_.erase(std::remove_if(parties_.begin(), parties_.end(), gone), parties_.end());
  }

  /// Removes from `record` the holders and waiters whose process has certainly ended.
  /// Returns true if it removed any.
  bool reclaim(Record& record) const {
    if (parties_.empty()) return false;
    const auto& self = posix::self_identity();
    std::vector<std::pair<posix::ProcessIdentity, bool>> verdicts;
    const auto departed = [&](const Token& token) {
      const auto& id = identity_of(token);
      if (id == self) return false;
      for (const auto& v : verdicts)
        if (v.first == id) return v.second;
      const bool dead = posix::certainly_dead(id);
      verdicts.emplace_back(id, dead);
      return dead;
    };
    return remove_departed(record, departed) > 0;
  }

 private:
  std::vector<std::pair<Token, posix::ProcessIdentity>> parties_;
};

}  // namespace leaselock::detail::file
