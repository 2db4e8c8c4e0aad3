#include "coordinator/coordinator.h"

#include <cstdio>
#include <future>

#include "common/log.h"
#include "common/zk/jute.h"
#include "coordinator/coordinator_internal.h"
#include "coordinator/election.h"
#include "coordinator/zk_await.h"

namespace rangekv::coordinator {

using internal::IsNodeExists;
using internal::IsNoNode;
using std::chrono::milliseconds;

namespace internal {
std::string HexId(int64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(id));
  return buf;
}
}  // namespace internal

// Calls the Reconciler's `done` exactly once when the reconcile coroutine
// ends, including when its frame is destroyed without running (spawned
// just as the executor shut down): otherwise the Reconciler would wait for
// it forever.
class Coordinator::DoneGuard {
 public:
  explicit DoneGuard(zk::Reconciler::Done done) : done_(std::move(done)) {}
  DoneGuard(DoneGuard&& other) noexcept : done_(std::exchange(other.done_, nullptr)) {}
  DoneGuard& operator=(DoneGuard&&) = delete;
  ~DoneGuard() {
    if (done_) done_();
  }

 private:
  zk::Reconciler::Done done_;
};

const char* RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kStandby:
      return "standby";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

Result<std::unique_ptr<Coordinator>> Coordinator::Create(asio::any_io_executor executor,
                                                         CoordinatorOptions options) {
  if (!cluster::IsValidNodeId(options.cluster)) {
    return Status(Code::kBadRequest, "bad cluster name '" + options.cluster + "'");
  }
  if (options.id.empty()) return Status(Code::kBadRequest, "empty coordinator id");
  auto c = std::make_unique<Coordinator>(executor, std::move(options));
  // The probe's callback opens the session: it must run on our strand.
  RANGEKV_ASSIGN_OR_RETURN(c->probe_, ZkProbe::Create(c->strand_, c->options_.zk));
  zk::ReconcilerOptions ro;
  ro.channel.connect_string = c->options_.zk;
  ro.channel.watch_paths = {c->paths_.root()};
  ro.channel.session_timeout = c->options_.session_timeout;
  ro.channel.backoff_max = milliseconds(3000);  // one failure line per few seconds
  if (c->options_.zk_auth) ro.channel.auth = c->options_.zk_auth->self;
  ro.period = c->options_.reconcile_period;
  Coordinator* self = c.get();
  RANGEKV_ASSIGN_OR_RETURN(
      c->reconciler_,
      zk::Reconciler::Create(
          executor, ro, [self](const zk::ReconcileTriggers& t, zk::Reconciler::Done done) {
            LOG_DEBUG("reconcile: " << t.events << " events, " << t.resyncs << " resyncs, "
                                    << t.timer_ticks << " ticks, " << t.explicit_requests
                                    << " requests");
            asio::co_spawn(self->strand_, self->Reconcile(DoneGuard(std::move(done))),
                           zkawait::LogExceptions("reconcile"));
          }));
  return c;
}

Coordinator::Coordinator(asio::any_io_executor executor, CoordinatorOptions options)
    : options_(std::move(options)),
      paths_(options_.cluster),
      strand_(asio::make_strand(executor)),
      recheck_timer_(strand_),
      detector_(options_.detector),
      detector_timer_(strand_) {}

Coordinator::~Coordinator() = default;

void Coordinator::Start() {
  asio::post(strand_, [this] {
    LOG_INFO("coordinator " << options_.id << " for cluster " << options_.cluster << " ("
                            << paths_.root() << ") on ZooKeeper " << options_.zk);
    StartProbe(milliseconds(0));
    if (detector_.enabled()) {
      pinger_ = std::make_unique<NodePinger>(options_.tls);
      ArmDetector();
    }
  });
}

void Coordinator::Stop() {
  // Two steps on the strand, with a bounded wait in between on this thread:
  // a reconcile resumes (with an error) and ends through the strand, and the
  // requests it left in flight complete there too.
  std::promise<void> quiet;
  asio::post(strand_, [this, &quiet] {
    stopping_ = true;
    probe_->Cancel();
    reconciler_->Stop();
    recheck_timer_.cancel();
    detector_timer_.cancel();
    if (calls_) calls_->Close(Status(Code::kUnavailable, "coordinator stopping"));
    on_quiet_ = [&quiet] { quiet.set_value(); };
    MaybeQuiet();
  });
  const bool drained = quiet.get_future().wait_for(kStopDrain) == std::future_status::ready;
  // Its last answers go to the strand ahead of the step below.
  if (pinger_) pinger_->Stop();
  std::promise<void> stopped;
  asio::post(strand_, [this, &stopped, drained] {
    on_quiet_ = nullptr;  // `quiet` goes when Stop returns
    if (calls_) calls_->OnIdle(nullptr);
    if (!drained) {
      LOG_WARN("closing the ZooKeeper session with "
               << running_reconciles_ << " reconcile(s) running and "
               << (calls_ ? calls_->in_flight() : 0) << " request(s) in flight after "
               << kStopDrain.count() << " ms");
    }
    if (role() == Role::kLeader) LOG_INFO("stepping down: shutting down");
    SetRole(Role::kNone, "");
    // Closing the session deletes our candidate znode at once.
    CloseSession("coordinator stopping");
    stopped.set_value();
  });
  stopped.get_future().wait();
}

void Coordinator::MaybeQuiet() {
  if (!on_quiet_ || running_reconciles_ > 0) return;
  if (calls_ && calls_->in_flight() > 0) {
    calls_->OnIdle([this] { MaybeQuiet(); });
    return;
  }
  std::function<void()> f = std::move(on_quiet_);
  on_quiet_ = nullptr;
  f();
}

Role Coordinator::role() const {
  MutexLock lock(stats_mu_);
  return role_;
}

CoordinatorStats Coordinator::stats() const {
  MutexLock lock(stats_mu_);
  return stats_;
}

std::vector<double> Coordinator::FailoverWindowsSince(uint64_t* seen) const {
  MutexLock lock(stats_mu_);
  const uint64_t total = stats_.failovers_timed;
  const uint64_t first_kept = total - windows_.size();
  std::vector<double> out;
  for (uint64_t i = std::max(*seen, first_kept); i < total; ++i) {
    out.push_back(windows_[i - first_kept]);
  }
  *seen = total;
  return out;
}

// ---- session lifecycle ----

void Coordinator::StartProbe(milliseconds delay) {
  if (stopping_) return;
  probe_->Start(delay, [this] { OpenSession(); });
}

void Coordinator::OpenSession() {
  if (stopping_) return;
  zk::SessionOptions so;
  so.connect_string = options_.zk;
  so.session_timeout = options_.session_timeout;
  if (options_.zk_auth) {
    so.auth = options_.zk_auth->self;
    so.acl = zk::ClusterAcl(paths_.root(), *options_.zk_auth);
  }
  so.on_refused = [this](const Status&) {
    UpdateStats([](CoordinatorStats& st) { ++st.zk_refused; });
  };
  auto s = zk::Session::Open(so, strand_, [this](zk::SessionState st) { OnSessionState(st); });
  if (!s.ok()) {
    LOG_WARN("cannot open a ZooKeeper session: " << s.status().ToString() << "; retrying");
    return StartProbe(milliseconds(2000));
  }
  session_ = std::move(s).value();
  calls_ = zkawait::Calls::Create(*session_);
  UpdateStats([](CoordinatorStats& st) { ++st.sessions_opened; });
}

void Coordinator::OnSessionState(zk::SessionState state) {
  if (stopping_ || !session_) return;
  switch (state) {
    case zk::SessionState::kConnected:
      connected_ = true;
      LOG_INFO("connected to ZooKeeper: session "
               << internal::HexId(session_->session_id()) << ", timeout "
               << session_->negotiated_timeout().count() << " ms");
      if (!reconciler_started_) {
        reconciler_started_ = true;
        reconciler_->Start();
      }
      reconciler_->TriggerNow();
      break;
    case zk::SessionState::kConnecting:
      if (connected_) {
        LOG_WARN(
            "lost the ZooKeeper connection; reconnecting (the session survives if a "
            "server hears from us within "
            << session_->negotiated_timeout().count() << " ms)");
      }
      connected_ = false;
      break;
    case zk::SessionState::kAuthFailed:
      // The same credentials would be refused again: a new session cannot help.
      Fatal(zk::ZkStatus(zk::jute::kErrAuthFailed, "credentials of " + options_.zk_auth_file));
      break;
    case zk::SessionState::kExpired:
    case zk::SessionState::kClosed:
      UpdateStats([](CoordinatorStats& st) { ++st.session_expiries; });
      // Not from inside the Session's own callback: post the teardown.
      asio::post(strand_, [this, state] {
        DropSession(std::string("ZooKeeper session ") + zk::SessionStateName(state));
      });
      break;
  }
}

void Coordinator::Fatal(const Status& why) {
  if (fatal_raised_) return;
  fatal_raised_ = true;
  LOG_ERROR("cannot go on: " << why.message());
  if (options_.on_fatal) options_.on_fatal(why);
}

void Coordinator::DropSession(const std::string& why) {
  if (stopping_ || !session_) return;
  LOG_WARN(why << "; opening a new session");
  LoseLeadership(why);
  CloseSession(why);  // expired: closing does no network I/O
  connected_ = false;
  base_ready_ = false;
  my_candidate_.clear();
  StartProbe(milliseconds(0));
}

void Coordinator::CloseSession(const std::string& why) {
  if (calls_) calls_->Close(Status(Code::kUnavailable, why));
  session_.reset();
  calls_.reset();
}

// ---- reconcile ----

asio::awaitable<void> Coordinator::Reconcile([[maybe_unused]] DoneGuard guard) {
  if (stopping_ || !session_ || session_->state() != zk::SessionState::kConnected) co_return;
  // This session's calls: once they are closed (Stop, expiry) the pending
  // one and every later one fail at once, so this run ends; the Session
  // itself may be gone by then, and is no longer touched.
  std::shared_ptr<zkawait::Calls> calls = calls_;
  ++running_reconciles_;
  UpdateStats([](CoordinatorStats& c) { ++c.reconciles_started; });
  Status st = co_await ReconcileWith(*calls);
  const bool cut = calls->closed();  // by Stop or an expiry, not a failure to report
  UpdateStats([&](CoordinatorStats& c) {
    ++c.reconciles;
    if (!st.ok() && !cut) ++c.reconcile_failures;
  });
  if (st.ok()) reconciled_once_ = true;
  if (!st.ok() && !cut && !reconciled_once_ && zk::IsZkRefusal(st)) {
    // At start-up a refusal is a configuration error that retrying cannot
    // fix; later (an ACL changed by hand) it is counted and retried.
    Fatal(st);
  }
  uint64_t held = 0;
  if (!st.ok() && !cut && warn_limiter_.Allow("reconcile", &held)) {
    LOG_WARN("reconcile failed: " << st.ToString()
                                  << (held ? " (" + std::to_string(held) + " more since)" : "")
                                  << "; retried on the next change or tick");
  }
  // Not in a destructor: after Stop nothing may touch `this`, and every
  // run ends here before Stop closes the session.
  --running_reconciles_;
  MaybeQuiet();
}

asio::awaitable<Status> Coordinator::ReconcileWith(zkawait::Calls& z) {
  COORD_CO_RETURN_IF_ERROR(co_await zkawait::Sync(z, "/"));
  if (!base_ready_) {
    COORD_CO_RETURN_IF_ERROR(co_await EnsurePath(z, "/rangekv"));
    COORD_CO_RETURN_IF_ERROR(co_await EnsurePath(z, paths_.root()));
    COORD_CO_RETURN_IF_ERROR(co_await EnsurePath(z, paths_.coordinator()));
    base_ready_ = true;
  }
  Result<bool> leading = co_await Elect(z);
  if (!leading.ok()) co_return leading.status();
  if (*leading) COORD_CO_RETURN_IF_ERROR(co_await PrepareAsLeader(z));
  ClusterSnapshot snap;
  COORD_CO_RETURN_IF_ERROR(co_await ReadConfig(z, &snap.config));
  COORD_CO_RETURN_IF_ERROR(co_await ReadNodes(z, &snap));
  detector_.Observe(snap.live_nodes);
  detector_.Exclude(&snap.live_nodes);  // failed: planned for as if gone
  COORD_CO_RETURN_IF_ERROR(co_await ReadRanges(z, &snap));
  COORD_CO_RETURN_IF_ERROR(co_await ReadDraining(z, &snap));
  for (const auto& [id, z] : snap.ranges) {
    if (!z.info) continue;
    Remember(*z.info);
  }
  TrackLiveness(&snap);
  RecordHealth(snap);
  if (!*leading || role() != Role::kLeader) co_return Status::Ok();
  snap.known_epochs = known_epochs_;
  snap.last_valid = last_valid_;
  snap.replace_after = options_.replace_after;
  snap.balance = options_.balance;
  snap.moves_per_node = options_.moves_per_node;
  snap.expect_nodes = options_.expect_nodes;
  const auto now = std::chrono::steady_clock::now();
  for (auto it = balance_asked_.begin(); it != balance_asked_.end();) {
    if (now - it->second >= kBalanceCooldown) {
      it = balance_asked_.erase(it);
    } else {
      snap.recently_moved.insert((it++)->first);
    }
  }
  Plan plan = PlanReconcile(snap);
  LogNotes(plan.notes);
  if (plan.recheck_after) ArmRecheck(*plan.recheck_after);
  if (!plan.empty()) co_await Execute(z, plan);
  co_return Status::Ok();
}

asio::awaitable<Status> Coordinator::EnsurePath(zkawait::Calls& z, const std::string& path) {
  Result<std::string> r = co_await zkawait::Create(z, path, "", zk::CreateMode::kPersistent);
  if (r.ok() || IsNodeExists(r.status())) co_return Status::Ok();
  co_return r.status();
}

asio::awaitable<Result<bool>> Coordinator::Elect(zkawait::Calls& z) {
  const std::string dir = paths_.coordinator();
  Result<std::vector<std::string>> children = co_await zkawait::Children(z, dir);
  if (!children.ok()) {
    if (IsNoNode(children.status())) base_ready_ = false;
    co_return children.status();
  }
  auto has = [&](const std::string& name) {
    return std::find(children->begin(), children->end(), name) != children->end();
  };
  if (my_candidate_.empty() || !has(my_candidate_)) {
    Result<std::string> created =
        co_await zkawait::Create(z, dir + "/" + std::string(kCandidatePrefix), options_.id,
                                 zk::CreateMode::kEphemeralSequential);
    if (!created.ok()) {
      if (IsNoNode(created.status())) base_ready_ = false;
      co_return created.status();
    }
    my_candidate_ = created->substr(created->rfind('/') + 1);
    children->push_back(my_candidate_);
  }
  std::optional<std::string> lowest = LowestCandidate(*children);
  if (!lowest) co_return false;  // cannot happen: ours is there
  auto got = co_await zkawait::Get(z, dir + "/" + *lowest);
  if (!got.ok()) co_return got.status();
  if (!got->has_value()) co_return false;  // it just went; its NodeDeleted re-runs us
  const zk::ZnodeData& d = **got;
  if (d.stat.ephemeral_owner == z.session_id()) {
    leader_candidate_ = *lowest;
    leader_version_ = d.stat.version;
    SetRole(Role::kLeader, options_.id);
    co_return true;
  }
  SetRole(Role::kStandby, d.data);
  co_return false;
}

void Coordinator::SetRole(Role role, const std::string& leader) {
  Role before;
  {
    MutexLock lock(stats_mu_);
    before = role_;
    role_ = role;
    if (role == Role::kLeader && before != Role::kLeader) ++stats_.elections_won;
    if (before == Role::kLeader && role == Role::kStandby) ++stats_.leadership_lost;
  }
  if (role == Role::kLeader && before != Role::kLeader) {
    LOG_INFO("became leader (candidate " << leader_candidate_ << ", session "
                                         << internal::HexId(session_ ? session_->session_id() : 0)
                                         << ")");
    leader_setup_done_ = false;
    leader_since_ = std::chrono::steady_clock::now();
    notes_limiter_.ResetAll();
    active_notes_.clear();
  } else if (role == Role::kStandby && (before != Role::kStandby || leader != last_leader_)) {
    if (before == Role::kLeader) LOG_WARN("lost leadership to " << leader);
    LOG_INFO("standing by (leader: " << leader << ", our candidate " << my_candidate_ << ")");
  }
  last_leader_ = role == Role::kNone ? std::string() : leader;
}

void Coordinator::LoseLeadership(const std::string& why) {
  if (role() == Role::kLeader) {
    LOG_WARN("lost leadership: " << why);
    UpdateStats([](CoordinatorStats& st) { ++st.leadership_lost; });
  }
  SetRole(Role::kNone, "");
}

void Coordinator::LogNotes(const std::vector<std::string>& notes) {
  std::set<std::string> now(notes.begin(), notes.end());
  for (const std::string& gone : active_notes_) {
    if (!now.count(gone)) notes_limiter_.Reset(gone);
  }
  active_notes_ = now;
  for (const std::string& note : notes) {
    if (notes_limiter_.Allow(note)) LOG_INFO(note);
  }
}

void Coordinator::RecordHealth(const ClusterSnapshot& snap) {
  uint64_t ranges = 0, under_rf = 0, under_min = 0, moves = 0;
  std::map<RangeId, size_t> isr_sizes;
  for (const auto& [id, z] : snap.ranges) {
    if (!z.info) continue;
    const size_t isr = z.info->isr.size();
    ++ranges;
    under_rf += isr < static_cast<size_t>(snap.config.rf) ? 1 : 0;
    under_min += isr < static_cast<size_t>(snap.config.min_insync) ? 1 : 0;
    moves += z.info->move_replica ? 1 : 0;
    isr_sizes[id] = isr;
  }
  UpdateStats([&](CoordinatorStats& s) {
    s.ranges = ranges;
    s.ranges_under_replicated = under_rf;
    s.ranges_under_min_insync = under_min;
    s.replica_moves_in_flight = moves;
    s.isr_sizes = std::move(isr_sizes);
  });
}

void Coordinator::TrackLiveness(ClusterSnapshot* snap) {
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, node] : snap->live_nodes) {
    seen_live_.insert(id);
    missing_since_.erase(id);
  }
  // Nodes the map still names: only those can matter for a decision.
  std::set<NodeId> named;
  for (const auto& [rid, z] : snap->ranges) {
    if (!z.info) continue;
    if (z.info->owner) named.insert(*z.info->owner);
    named.insert(z.info->replicas.begin(), z.info->replicas.end());
    named.insert(z.info->isr.begin(), z.info->isr.end());
  }
  for (auto it = seen_live_.begin(); it != seen_live_.end();) {
    if (snap->live_nodes.count(*it)) {
      ++it;
    } else if (!named.count(*it)) {
      missing_since_.erase(*it);
      it = seen_live_.erase(it);
    } else {
      missing_since_.emplace(*it, now);  // keeps the first sighting
      ++it;
    }
  }
  for (const NodeId& id : named) {
    if (snap->live_nodes.count(id)) continue;
    auto since = missing_since_.find(id);
    // Never seen live by us: dead at least since we lead (the clock that
    // matters for replacing it), else since now.
    auto from = since != missing_since_.end() ? since->second
                : role() == Role::kLeader     ? leader_since_
                                              : now;
    snap->dead_for[id] = std::chrono::duration_cast<milliseconds>(now - from);
  }
}

void Coordinator::ArmRecheck(milliseconds after) {
  const auto at = std::chrono::steady_clock::now() + after;
  if (recheck_at_ && *recheck_at_ <= at) return;
  recheck_at_ = at;
  recheck_timer_.expires_at(at);
  recheck_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // re-armed earlier, or stopping: `this` may be going
    recheck_at_.reset();
    if (!stopping_) reconciler_->TriggerNow();
  });
}

void Coordinator::Remember(const cluster::RangeInfo& r) {
  Epoch& known = known_epochs_[r.id];
  if (r.epoch > known) known = r.epoch;
  last_valid_[r.id] = r;
}

}  // namespace rangekv::coordinator
