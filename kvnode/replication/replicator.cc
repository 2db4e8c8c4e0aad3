#include "kvnode/replication/replicator.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <future>
#include <set>

#include "common/asio_executor.h"
#include "common/log.h"
#include "common/mutex.h"
#include "kvnode/replication/replication_internal.h"

namespace rangekv::kvnode {
namespace replication {

constexpr milliseconds kTick{50};
// How often a merge looks whether both logs are committed (only while one
// runs): the fence lasts about one commit round trip.
constexpr milliseconds kMergePoll{2};

}  // namespace replication

Result<std::optional<cluster::RangeInfo>> ApplyIsrChange(const cluster::RangeInfo& current,
                                                         const IsrChange& c, const NodeId& self) {
  cluster::RangeInfo r = current;
  const bool in_isr = std::find(r.isr.begin(), r.isr.end(), c.node) != r.isr.end();
  if (c.resign) {
    // Any member may leave, at any epoch: it only ever makes commits wait.
    if (c.node != self) return std::optional<cluster::RangeInfo>();
    if (c.keep_isr ? r.owner != self : (!in_isr && r.owner != self)) {
      return std::optional<cluster::RangeInfo>();
    }
    if (!c.keep_isr) r.RemoveFromIsr(self);
    if (r.owner == self) {
      r.owner.reset();
      r.owner_life.clear();
    }
    return std::optional<cluster::RangeInfo>(std::move(r));
  }
  if (current.owner != self || current.epoch != c.epoch) {
    return Status(Code::kStaleEpoch, "the range moved on (epoch " +
                                         std::to_string(current.epoch.value()) + ")");
  }
  const bool replica = std::find(r.replicas.begin(), r.replicas.end(), c.node) != r.replicas.end();
  if (c.transfer) {
    if (!in_isr || c.node == self) {
      return Status(Code::kBadRequest, c.node.str() + " is not another in-sync replica of range " +
                                           std::to_string(r.id.value()));
    }
    r.owner = c.node;
    r.owner_life = c.life;
    r.epoch = c.epoch.Next();
    r.handoff_from = c.epoch;
    r.move_to.reset();  // done (or overtaken by this operator's choice)
    r.AddHistory({"handed", self.str() + ">" + c.node.str(), std::to_string(r.epoch.value())});
    r.state = cluster::RangeState::kActive;
    return std::optional<cluster::RangeInfo>(std::move(r));
  }
  if (c.add) {
    if (in_isr || !replica) return std::optional<cluster::RangeInfo>();
    r.AddToIsr(c.node, c.incarnation);
  } else {
    if (!in_isr || c.node == self) return std::optional<cluster::RangeInfo>();
    r.RemoveFromIsr(c.node);
  }
  return std::optional<cluster::RangeInfo>(std::move(r));
}

Result<SplitRecords> MakeSplitRecords(const cluster::RangeInfo& current, const IsrChange& c,
                                      const NodeId& self, RangeId child_id) {
  if (current.owner != self || current.epoch != c.epoch) {
    return Status(Code::kStaleEpoch, "the range moved on (epoch " +
                                         std::to_string(current.epoch.value()) + ")");
  }
  const KeyRange& b = current.bounds;
  if (!b.Contains(c.split_key) || c.split_key == b.start()) {
    return Status(Code::kBadRequest, "range " + std::to_string(current.id.value()) + " is " +
                                         b.ToString() + ": a split key must lie inside it, after "
                                         "its start");
  }
  SplitRecords out{current, current};
  // The part split off is built from the parent; the parent keeps how it
  // was made (a replica that has not built it yet builds it with the
  // span the merge gave it, SpanAtSplit, and this part from that).
  out.child.merge_left = out.child.merge_right = RangeId(0);
  out.child.merge_left_seq = out.child.merge_right_seq = Seq(0);
  out.child.merge_key.clear();
  out.parent.bounds = KeyRange(b.start(), c.split_key);
  out.parent.generation = current.generation + 1;
  out.child.id = child_id;
  out.child.bounds = KeyRange(c.split_key, b.end());
  out.child.generation = current.generation + 1;
  out.child.split_parent = current.id;
  out.child.split_seq = c.split_seq;
  const std::string key = cluster::ToHex(c.split_key);
  const std::string seq = std::to_string(c.split_seq.value());
  out.parent.AddHistory({"split", key, std::to_string(child_id.value()), seq});
  out.child.history.clear();
  out.child.AddHistory({"split-from", std::to_string(current.id.value()), key, seq});
  return out;
}

Status CheckMergeable(const cluster::RangeInfo& left, const cluster::RangeInfo& right) {
  auto refuse = [&](const std::string& why) {
    return Status(Code::kBadRequest, "ranges " + std::to_string(left.id.value()) + " and " +
                                         std::to_string(right.id.value()) + " " + why);
  };
  if (!left.bounds.end() || *left.bounds.end() != right.bounds.start()) {
    return refuse("are not neighbours");
  }
  if (left.owner != right.owner || left.owner_life != right.owner_life) {
    return refuse("have different owners (transfer one to the other's owner first)");
  }
  auto sorted = [](std::vector<NodeId> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (sorted(left.replicas) != sorted(right.replicas)) return refuse("have different replicas");
  if (sorted(left.isr) != sorted(right.isr)) {
    return refuse("have different in-sync replicas (retry once both have caught up)");
  }
  for (const NodeId& n : left.isr) {
    if (left.IsrIncarnation(n) != right.IsrIncarnation(n)) {
      return refuse("hold different copies on " + n.str());
    }
  }
  return Status::Ok();
}

Result<cluster::RangeInfo> MakeMergeRecord(const cluster::RangeInfo& left,
                                           const cluster::RangeInfo& right, const IsrChange& c,
                                           const NodeId& self, RangeId merged_id) {
  if (left.owner != self || left.epoch != c.epoch || right.owner != self ||
      right.epoch != c.merge_right_epoch) {
    return Status(Code::kStaleEpoch, "the ranges moved on (epochs " +
                                         std::to_string(left.epoch.value()) + " and " +
                                         std::to_string(right.epoch.value()) + ")");
  }
  RANGEKV_RETURN_IF_ERROR(CheckMergeable(left, right));
  cluster::RangeInfo m = left;
  m.id = merged_id;
  m.bounds = KeyRange(left.bounds.start(), right.bounds.end());
  m.epoch = std::max(left.epoch, right.epoch);
  m.generation = std::max(left.generation, right.generation) + 1;
  m.handoff_from = Epoch(0);
  m.split_parent = RangeId(0);
  m.split_seq = Seq(0);
  m.move_to.reset();
  m.merge_left = left.id;
  m.merge_left_seq = c.merge_left_seq;
  m.merge_right = right.id;
  m.merge_right_seq = c.merge_right_seq;
  m.merge_key = right.bounds.start();
  m.AddHistory({"merged-from",
                std::to_string(left.id.value()) + "@" + std::to_string(c.merge_left_seq.value()),
                std::to_string(right.id.value()) + "@" + std::to_string(c.merge_right_seq.value()),
                cluster::ToHex(m.merge_key)});
  return m;
}

Result<RangeId> NextRangeId(const std::optional<std::string>& counter,
                            const std::vector<RangeId>& existing) {
  uint64_t next = 1;
  for (RangeId id : existing) next = std::max(next, id.value() + 1);
  if (!counter) return RangeId(next);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(counter->data(), counter->data() + counter->size(), v);
  if (counter->empty() || ec != std::errc() || p != counter->data() + counter->size() || v == 0) {
    return Status(Code::kBadRequest, "next_range_id holds '" + *counter + "', not a range id");
  }
  // Never below an id in use, whatever the counter says.
  return RangeId(std::max(v, next));
}

namespace {
proto::Response NotOwnedHere(uint64_t id, RangeId range) {
  return proto::Response::Error(
      id, Status(Code::kNotOwner, "range " + std::to_string(range.value()) + " is not owned here"));
}
}  // namespace

using replication::Clock;
using replication::Follower;
using replication::Leader;

class Replicator::Impl {
  friend class Replicator;

 public:
  // A promise a follower of this process made: until when, and the epoch of
  // the owner it was made to.
  struct Promise {
    Clock::time_point until{};
    Epoch epoch{0};
  };

  Impl(NodeId self, std::string life, ReplicationOptions options, StoreOptionsFn store_options,
       Env& env, const TransportFactory& transport)
      : exec_(env.NewExecutor("replication")),
        background_(env.NewExecutor("replication-io")),
        ctx_(env, *exec_, *background_, std::move(self), std::move(life), options,
             std::move(store_options)),
        ticker_(exec_->NewTimer()),
        merge_timer_(exec_->NewTimer()) {
    ctx_.transport =
        transport ? transport(*exec_) : replication::NewTcpTransport(*exec_, options.tls);
    exec_->Post([this] { Tick(); });
  }
  ~Impl() { Stop(); }

  void Stop() EXCLUDES(accept_mu_) {
    {
      MutexLock lock(accept_mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    RunHere([this] {
      MutexLock lock(accept_mu_);
      accepting_ = false;  // an Update racing with Stop returns at once from now on
      merge_.reset();
      merge_timer_->Cancel();
      roles_.clear();
      ticker_->Cancel();
      ctx_.transport->CloseAll();
    });
    // An install in progress finishes (its store is then closed with the
    // others); the main executor lets the connections answer their pending
    // requests with posted handlers, then ends.
    background_->Stop();
    exec_->Stop();
  }

  void SetIsrChanger(IsrChangeFn fn) {
    RunHere([&] { ctx_.isr_changer = std::move(fn); });
  }
  void SetNewsListener(NewsFn fn) {
    RunHere([&] { ctx_.news_listener = std::move(fn); });
  }

  void Update(std::vector<HeldRange> held, int min_insync) {
    RunHere([&] { Apply(std::move(held), min_insync); });
  }

  // True once Stop has begun.
  bool stopped() EXCLUDES(accept_mu_) {
    MutexLock lock(accept_mu_);
    return stopped_;
  }

  // Posts fn to the replication thread, or runs refused() here once Stop
  // has begun (a handler posted after the thread ends would never run, and
  // its request would never be answered).
  void PostOr(std::function<void()> fn, const std::function<void()>& refused) EXCLUDES(accept_mu_) {
    {
      MutexLock lock(accept_mu_);
      if (accepting_) {
        exec_->Post(std::move(fn));
        return;
      }
    }
    refused();
  }

  struct Role {
    std::unique_ptr<Leader> leader;
    std::unique_ptr<Follower> follower;
  };
  std::map<RangeId, Role> roles_;

  boost::asio::io_context* io_context() {
    auto* asio_exec = dynamic_cast<exec::AsioExecutor*>(exec_.get());
    return asio_exec != nullptr ? &asio_exec->io() : nullptr;
  }

 private:
  // Runs fn on the replication thread and waits for it; does nothing once
  // Stop has begun (the thread may be gone).
  void RunHere(std::function<void()> fn) EXCLUDES(accept_mu_) {
    if (exec_->RunningHere()) return fn();
    std::promise<void> done;
    {
      MutexLock lock(accept_mu_);
      if (!accepting_) return;
      exec_->Post([&] {
        fn();
        done.set_value();
      });
    }
    done.get_future().wait();
  }

  void Apply(std::vector<HeldRange> held, int min_insync) {
    ctx_.min_insync = std::max(1, min_insync);
    std::map<RangeId, HeldRange> now;
    for (HeldRange& h : held) {
      if (h.slot && h.slot->store()) now.emplace(h.info.id, std::move(h));
    }
    for (auto it = roles_.begin(); it != roles_.end();) {
      if (!now.count(it->first)) {
        End(it->first, it->second);
        it = roles_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [id, h] : now) {
      Role& role = roles_[id];
      // A slot replaced under a role (its store reopened) gets a new role:
      // nothing may keep using the old store (or run it without the gate).
      if ((role.leader && role.leader->slot() != h.slot) ||
          (role.follower && role.follower->slot() != h.slot)) {
        End(id, role);
      }
      const bool named = h.info.owner == ctx_.self;
      // The grant is to this process (cluster_map.h); a copy this node lost
      // is not led until it has caught up again.
      const bool granted = h.info.owner_life.empty() || h.info.owner_life == ctx_.life;
      // Not at an epoch given up after a store failure (a new one follows).
      auto no_lead = no_lead_epoch_.find(id);
      const bool given_up = no_lead != no_lead_epoch_.end() && h.info.epoch <= no_lead->second;
      if (named && (!granted || untrusted_.count(id) || given_up || recovering_.count(id))) {
        End(id, role);  // neither leads nor follows: waits for the map to move on
        // A copy this node lost must not stay named owner: leave again (the
        // owner may have added it back before it knew).
        if (granted && (untrusted_.count(id) || given_up)) Resign(id, given_up);
        continue;
      }
      if (named) {
        if (role.leader && role.leader->epoch() == h.info.epoch) {
          role.leader->Update(std::move(h));
          continue;
        }
        Clock::time_point serve_after = Clock::now();
        End(id, role);
        InheritPromise(id, h.info);
        ForgetVoidPromise(id, h.info);
        if (auto p = promised_.find(id); p != promised_.end()) {
          serve_after = std::max(serve_after, p->second.until);
        }
        role.leader = std::make_unique<Leader>(ctx_, std::move(h), serve_after);
      } else {
        role.leader.reset();
        if (role.follower) {
          role.follower->Update(std::move(h));
        } else {
          Clock::time_point not_before = Clock::now();
          InheritPromise(id, h.info);
          ForgetVoidPromise(id, h.info);
          // A promise binds against newer owners only: following the owner
          // it was made to, at its epoch (a range split off its parent),
          // keeps it.
          if (auto p = promised_.find(id); p != promised_.end() && p->second.epoch < h.info.epoch) {
            not_before = std::max(not_before, p->second.until);
          }
          role.follower = std::make_unique<Follower>(ctx_, std::move(h), not_before);
          if (auto p = promised_.find(id); p != promised_.end()) {
            role.follower->KeepPromise(p->second.until, p->second.epoch);
          }
        }
      }
    }
  }

  // A range split off a parent holds data the parent's owner served under
  // the leases this process promised it: the new range keeps those
  // promises (a newer owner of it must not serve before they run out).
  // Only once, at the first role this process takes for the range: the
  // promises made to the parent's owner after the split cover the
  // parent's keys alone, and taking them again at each later role made
  // every move of the range wait out the parent's lease.
  //
  // A merged range holds the data of both ranges merged, so it keeps the
  // promises made for either. They were made to the owner of both, which
  // the merged range's record names at its epoch: they count as made at
  // that epoch (its followers start at once; a newer owner waits them out).
  void InheritPromise(RangeId id, const cluster::RangeInfo& info) {
    if ((info.split_parent.value() == 0 && !info.merged()) || !inherited_.insert(id).second) {
      return;
    }
    Promise inherited;
    if (info.merged()) {
      for (RangeId from : {info.merge_left, info.merge_right}) {
        const Promise p = PromiseOf(from);
        if (p.until > inherited.until) inherited = Promise{p.until, info.epoch};
      }
    } else {
      inherited = PromiseOf(info.split_parent);
    }
    Promise& mine = promised_[id];
    if (inherited.until > mine.until) mine = inherited;
  }

  // The latest promise this process made for range id, in a role ended or
  // running.
  Promise PromiseOf(RangeId id) const {
    Promise out;
    if (auto p = promised_.find(id); p != promised_.end()) out = p->second;
    if (auto r = roles_.find(id); r != roles_.end() && r->second.follower) {
      const Follower& f = *r->second.follower;
      if (f.promise_until() > out.until) out = Promise{f.promise_until(), f.promise_epoch()};
    }
    return out;
  }

  // A promise to an owner that has handed the range over itself protects
  // nothing (cluster_map.h "handoff_from"), now or in any later role.
  void ForgetVoidPromise(RangeId id, const cluster::RangeInfo& info) {
    auto p = promised_.find(id);
    if (p != promised_.end() && info.HandedOverFrom(p->second.epoch)) promised_.erase(p);
  }

  // Ends a range's role, remembering what its follower promised (a later
  // role of this process keeps that promise).
  void End(RangeId id, Role& role) {
    if (role.follower) {
      Promise& p = promised_[id];
      if (role.follower->promise_until() > p.until) {
        p = Promise{role.follower->promise_until(), role.follower->promise_epoch()};
      }
      if (role.follower->caught_up()) caught_up_.insert(id);
    }
    role.follower.reset();
    role.leader.reset();
  }

  // A store that hit an I/O error takes no more writes and its log may
  // lack its last records: it is closed and opened again (recovery keeps
  // what the disk holds). The node is suspect until it has caught up; an
  // owner gives up the ownership (a new epoch must follow a log that may
  // have lost records). A copy that does not open again is set aside and
  // copied anew (MarkUntrusted).
  void RecoverIfFailed(RangeId id, Role& role, const std::shared_ptr<RangeSlot>& slot) {
    std::shared_ptr<RangeStore> old = slot->store();
    if (!old || old->health().ok() || recovering_.count(id)) return;
    LOG_ERROR("range " << id.value() << ": " << old->health().ToString()
                       << "; reopening its store");
    recovering_.insert(id);
    lost_records_.store(true);
    caught_up_.erase(id);
    if (role.leader) {
      no_lead_epoch_[id] = role.leader->epoch();
      End(id, role);
      Resign(id, /*keep_isr=*/true);
    }
    StoreOptions opts = ctx_.store_options(id);
    fs::FileSystem& fs = ctx_.fs();
    const KeyRange bounds = old->bounds();
    // Acknowledged (to an owner, or to writers) up to here, if durable.
    const Seq had = old->durable();
    background_->Post([this, id, slot, old, opts, bounds, had, &fs] {
      (void)old->Close();
      // No files where the open store had its copy: an earlier attempt set
      // them aside and failed after. The empty store that opens now is not
      // that copy.
      bool rebuilt = RangeDirEmpty(fs, opts.dir) || IsCopying(fs, opts.dir);
      Result<std::unique_ptr<RangeStore>> fresh = RangeStore::Open(id, bounds, opts);
      if (!fresh.ok() && fresh.status().code() == Code::kCorruption) {
        const std::string aside = opts.dir + ".damaged";
        Status st = MarkCopying(fs, opts.dir);
        if (st.ok()) st = fs.RemoveAll(aside);
        if (st.ok()) st = fs.Rename(opts.dir, aside);
        if (st.ok()) st = fs.SyncDir(fs::DirName(opts.dir));
        fresh = st.ok() ? RangeStore::Open(id, bounds, opts) : Result<std::unique_ptr<RangeStore>>(st);
        rebuilt = fresh.ok();
      }
      if (fresh.ok() && !rebuilt && (*fresh)->last().seq < had) {
        // The reopened log ends below what this copy had made durable
        // (and so may have acknowledged): it is no longer the copy the ISR
        // counts, here or after a restart.
        LOG_ERROR("range " << id.value() << ": reopened at seq " << (*fresh)->last().seq.value()
                           << ", below the " << had.value()
                           << " it had made durable; copying the range again");
        if (Status st = MarkCopying(fs, opts.dir); !st.ok()) {
          LOG_WARN("range " << id.value() << ": " << st.ToString());
        }
        rebuilt = true;
      }
      std::shared_ptr<RangeStore> store =
          fresh.ok() ? std::shared_ptr<RangeStore>(std::move(*fresh)) : nullptr;
      exec_->Post([this, id, slot, store, rebuilt, st = fresh.status()] {
        recovering_.erase(id);
        if (!store) {
          LOG_ERROR("range " << id.value() << ": cannot open its store again: " << st.ToString());
          return;  // the next tick tries again (the old store still fails)
        }
        store->SetCommitGate(true);
        slot->set_store(store);
        if (rebuilt) MarkUntrusted(id);
      });
    });
  }

  void MarkUntrusted(RangeId id) {
    untrusted_.insert(id);
    caught_up_.erase(id);
    auto it = roles_.find(id);
    if (it != roles_.end() && it->second.leader) End(id, it->second);
    Resign(id);
  }

  // Leaves the ISR and the ownership (keep_isr: the ownership only); at
  // most once a second per range.
  void Resign(RangeId id, bool keep_isr = false) {
    Clock::time_point& last = resigned_at_[id];
    if (Clock::now() - last < std::chrono::seconds(1)) return;
    last = Clock::now();
    ctx_.RequestIsrChange(
        {id, Epoch(0), ctx_.self, false, true, "", keep_isr}, [id, keep_isr](Status st) {
          if (!st.ok()) {
            LOG_WARN("range " << id.value() << ": leaving its ISR: " << st.ToString());
          } else {
            LOG_INFO("range " << id.value() << ": gave up its ownership"
                              << (keep_isr ? "" : " and its ISR place"));
          }
        });
  }

  bool AllCaughtUp() {
    bool all = true;
    for (auto& [id, role] : roles_) {
      if (role.follower && role.follower->caught_up()) {
        caught_up_.insert(id);
        untrusted_.erase(id);
      }
      all = all && (role.leader != nullptr || caught_up_.count(id) != 0);
    }
    return all;
  }

  std::vector<NodeId> LostOwners() {
    std::set<NodeId> lost;
    const Clock::time_point now = Clock::now();
    for (auto& [id, role] : roles_) {
      if (!role.follower) continue;
      if (auto owner = role.follower->LostOwner(now)) lost.insert(*owner);
    }
    return {lost.begin(), lost.end()};
  }

  Leader* LeaderOf(RangeId id) {
    auto it = roles_.find(id);
    return it == roles_.end() ? nullptr : it->second.leader.get();
  }

  // A merge of req.range with its right neighbour (leader_merge.cc); both
  // must be owned here.
  void StartMerge(const proto::Request& req, Reply reply) {
    const uint64_t rid = req.id;
    auto fail = [&](Code code, const std::string& why) {
      reply(proto::Response::Error(rid, Status(code, why)));
    };
    Leader* left = LeaderOf(req.range);
    if (!left) return reply(NotOwnedHere(rid, req.range));
    const cluster::RangeInfo& l = left->info();
    if (req.epoch.value() != 0 && req.epoch != l.epoch) {
      return fail(Code::kStaleEpoch, replication::Name(l.id) + ": owned at epoch " +
                                         std::to_string(l.epoch.value()) + ", not " +
                                         std::to_string(req.epoch.value()));
    }
    // First whether it serves writes as its map says: right after a split
    // of this range its map may still show the bounds from before.
    if (Status st = left->MergeCheck(); !st.ok()) return fail(st.code(), st.message());
    if (!l.bounds.end()) {
      return fail(Code::kBadRequest, replication::Name(l.id) + " " + l.bounds.ToString() +
                                         " is the last range: nothing right of it to merge with");
    }
    if (merge_) return fail(Code::kRangeUnavailable, "a merge is already under way here; retry");
    RangeId right{0};
    for (const auto& [id, role] : roles_) {
      if (role.leader && role.leader->info().bounds.start() == *l.bounds.end()) right = id;
    }
    if (right.value() == 0) {
      return fail(Code::kBadRequest, replication::Name(l.id) + " " + l.bounds.ToString() +
                                         ": the range right of it is not owned by this node "
                                         "(transfer it here first)");
    }
    auto shared = std::make_shared<Reply>(std::move(reply));
    merge_ = std::make_unique<replication::MergeRun>(
        ctx_, [this](RangeId id) { return LeaderOf(id); }, l.id, right,
        [shared, rid](Status st) {
          (*shared)(st.ok() ? replication::Pong(rid) : proto::Response::Error(rid, std::move(st)));
        });
    if (Status st = merge_->Start(); !st.ok()) {
      merge_.reset();
      return (*shared)(proto::Response::Error(rid, std::move(st)));
    }
    PollMerge();
  }

  // Two neighbours led here, both mergeable (Leader::Mergeable) and fit to
  // merge, merge by themselves; at most one merge at a time.
  void CheckAutoMerge() {
    if (merge_ || ctx_.options.merge_delay.count() == 0) return;
    for (const auto& [id, role] : roles_) {
      if (!role.leader || !role.leader->Mergeable() || !role.leader->info().bounds.end()) continue;
      const cluster::RangeInfo& l = role.leader->info();
      for (const auto& [rid, other] : roles_) {
        if (!other.leader || other.leader->info().bounds.start() != *l.bounds.end()) continue;
        if (!other.leader->Mergeable() || !CheckMergeable(l, other.leader->info()).ok()) break;
        const RangeId left = l.id;
        const RangeId right = rid;  // a structured binding cannot be captured (clang 14)
        merge_ = std::make_unique<replication::MergeRun>(
            ctx_, [this](RangeId r) { return LeaderOf(r); }, left, right,
            [left, right](Status st) {
              if (st.ok()) {
                LOG_INFO("ranges " << left.value() << " and " << right.value()
                                   << " merged: both small and cold");
              }
            });
        if (!merge_->Start().ok()) {
          merge_.reset();
          continue;
        }
        PollMerge();
        return;
      }
    }
  }

  void PollMerge() {
    if (merge_ && merge_->Poll()) merge_.reset();
    if (merge_)
      merge_timer_->ExpiresAt(Clock::now() + replication::kMergePoll, [this] { PollMerge(); });
  }

  void Tick() {
    if (stopped()) return;
    if (Clock::now() >= next_merge_check_) {
      next_merge_check_ = Clock::now() + std::chrono::seconds(1);
      CheckAutoMerge();
    }
    for (auto& [id, role] : roles_) {
      if (role.leader) role.leader->Tick();
      if (role.follower && role.follower->caught_up()) {
        caught_up_.insert(id);
        untrusted_.erase(id);
      }
      const std::shared_ptr<RangeSlot>& slot =
          role.leader ? role.leader->slot() : role.follower ? role.follower->slot() : nullptr;
      if (slot) RecoverIfFailed(id, role, slot);
    }
    ticker_->ExpiresAt(Clock::now() + replication::kTick, [this] { Tick(); });
  }

  std::unique_ptr<exec::Executor> exec_;
  std::unique_ptr<exec::Executor> background_;
  replication::Context ctx_;
  // Per range: the latest promise a follower of this process made, and the
  // epoch of the owner it was made to.
  std::map<RangeId, Promise> promised_;
  // Ranges split off a parent whose promises this process took (once).
  std::set<RangeId> inherited_;
  std::set<RangeId> untrusted_;  // local copy lost: not led until caught up
  std::set<RangeId> caught_up_;  // a follower caught up since the start
  std::set<RangeId> recovering_;  // a failed store being reopened
  std::map<RangeId, Epoch> no_lead_epoch_;  // given up after a store failure
  std::atomic<bool> lost_records_{false};
  std::map<RangeId, Clock::time_point> resigned_at_;
  std::unique_ptr<exec::Timer> ticker_;
  std::unique_ptr<replication::MergeRun> merge_;  // one at a time
  Clock::time_point next_merge_check_{};
  std::unique_ptr<exec::Timer> merge_timer_;
  Mutex accept_mu_;
  bool stopped_ GUARDED_BY(accept_mu_) = false;
  bool accepting_ GUARDED_BY(accept_mu_) = true;
};

Replicator::Replicator(NodeId self, std::string self_life, ReplicationOptions options,
                       StoreOptionsFn store_options, Env* env, TransportFactory transport)
    : impl_(std::make_unique<Impl>(std::move(self), std::move(self_life), options,
                                   std::move(store_options), env != nullptr ? *env : DefaultEnv(),
                                   transport)) {}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() { impl_->Stop(); }

boost::asio::io_context* Replicator::io_context() { return impl_->io_context(); }

void Replicator::SetIsrChanger(IsrChangeFn fn) { impl_->SetIsrChanger(std::move(fn)); }
void Replicator::SetNewsListener(NewsFn fn) { impl_->SetNewsListener(std::move(fn)); }

void Replicator::Update(std::vector<HeldRange> held, int min_insync) {
  impl_->Update(std::move(held), min_insync);
}

std::string CopyingMarkerPath(const std::string& range_dir) { return range_dir + ".copying"; }

Status MarkCopying(fs::FileSystem& fs, const std::string& range_dir) {
  const std::string parent = fs::DirName(range_dir);
  const std::string name = range_dir.substr(parent.empty() ? 0 : parent.size() + 1);
  return fs.WriteFileAtomically(parent, name + ".copying", "");
}

bool RangeDirEmpty(fs::FileSystem& fs, const std::string& range_dir) {
  auto files = fs.ListDir(range_dir);
  // An error: no directory. A prepared directory a crash took back holds
  // nothing either.
  return !files.ok() || files->empty() || PreparedDirLost(fs, range_dir, *files);
}

bool IsCopying(fs::FileSystem& fs, const std::string& range_dir) {
  auto kind = fs.IsDirectory(CopyingMarkerPath(range_dir));
  return !kind.ok() || kind->has_value();
}

void Replicator::MarkUntrusted(RangeId range) {
  impl_->RunHere([&] { impl_->MarkUntrusted(range); });
}

bool Replicator::lost_records() const { return impl_->lost_records_.load(); }
uint64_t Replicator::splits_done() const { return impl_->ctx_.splits_done.load(); }
uint64_t Replicator::transfers_done() const { return impl_->ctx_.transfers_done.load(); }
uint64_t Replicator::merges_done() const { return impl_->ctx_.merges_done.load(); }
uint64_t Replicator::copied_bytes() const { return impl_->ctx_.copied_bytes.load(); }

bool Replicator::AllCaughtUp() {
  bool all = false;
  impl_->RunHere([&] { all = impl_->AllCaughtUp(); });
  return all;
}

std::vector<NodeId> Replicator::LostOwners() {
  std::vector<NodeId> lost;
  impl_->RunHere([&] { lost = impl_->LostOwners(); });
  return lost;
}

namespace {
proto::Response Stopping(uint64_t id) {
  return proto::Response::Error(id, Status(Code::kUnavailable, "node is shutting down"));
}
}  // namespace

namespace {
// Hands a request for range R to R's leader on the replication thread (or
// answers it at once when there is none, or when the replicator stops).
template <typename Method>
void ToLeader(Replicator::Impl* impl, proto::Request req, Replicator::Reply reply, Method method) {
  const uint64_t id = req.id;
  auto shared = std::make_shared<Replicator::Reply>(std::move(reply));
  impl->PostOr(
      [impl, req = std::move(req), shared, method]() mutable {
        auto it = impl->roles_.find(req.range);
        if (it == impl->roles_.end() || !it->second.leader) {
          return (*shared)(NotOwnedHere(req.id, req.range));
        }
        ((*it->second.leader).*method)(std::move(req), std::move(*shared));
      },
      [id, shared] { (*shared)(Stopping(id)); });
}
}  // namespace

void Replicator::HandleFetch(proto::Request req, Reply reply) {
  ToLeader(impl_.get(), std::move(req), std::move(reply), &Leader::OnFetch);
}

void Replicator::HandleTransfer(proto::Request req, Reply reply) {
  ToLeader(impl_.get(), std::move(req), std::move(reply), &Leader::OnTransfer);
}

void Replicator::HandleSplit(proto::Request req, Reply reply) {
  ToLeader(impl_.get(), std::move(req), std::move(reply), &Leader::OnSplit);
}

void Replicator::HandleMerge(proto::Request req, Reply reply) {
  Impl* impl = impl_.get();
  const uint64_t id = req.id;
  auto shared = std::make_shared<Reply>(std::move(reply));
  impl->PostOr([impl, req = std::move(req), shared] { impl->StartMerge(req, std::move(*shared)); },
               [id, shared] { (*shared)(Stopping(id)); });
}

void Replicator::HandleSnapshot(proto::Request req, Reply reply) {
  ToLeader(impl_.get(), std::move(req), std::move(reply), &Leader::OnSnapshot);
}

void Replicator::HandleStatus(uint64_t id, Reply reply) {
  Impl* impl = impl_.get();
  auto shared = std::make_shared<Reply>(std::move(reply));
  impl->PostOr(
      [impl, id, shared] {
        proto::Response r;
        r.id = id;
        r.kind = proto::Response::Kind::kRangeStatus;
        for (auto& [rid, role] : impl->roles_) {
          if (role.leader) r.status.push_back(role.leader->Report());
          if (role.follower) r.status.push_back(role.follower->Report());
        }
        (*shared)(std::move(r));
      },
      [id, shared] { (*shared)(Stopping(id)); });
}

}  // namespace rangekv::kvnode
