#include "kvnode/cluster/cluster_member.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/asio.h"
#include "common/log.h"
#include "common/mutex.h"
#include "common/zk/reconciler.h"
#include "common/zk/session.h"
#include "kvnode/cluster/map_reader.h"

namespace rangekv::kvnode {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kBackoffInitial{100};
constexpr milliseconds kBackoffMax{5000};
constexpr milliseconds kReconcileRetry{500};
constexpr milliseconds kSplitRetry{20};
// News (Node::ApplyNews) whose range waits for its parent's copy is
// applied again this often, this many times; the map reads take over then.
constexpr milliseconds kNewsRetry{3};
constexpr int kNewsRetries = 30;
// Request counts are looked at every second and each range's rate taken
// over the last three: a range this node just took over is reported a
// second later (the coordinator waits for that before its next move).
constexpr milliseconds kLoadPeriod{1000};
constexpr milliseconds kLoadSpan{3000};

// How long the once-a-second metrics wait for the replicator's report.
constexpr milliseconds kLagWait{200};
constexpr milliseconds kLostOwnersPeriod{50};
// Why a node that lost ZooKeeper answers RANGE_UNAVAILABLE.
constexpr const char* kDisconnectedReason =
    "disconnected from ZooKeeper; the session may expire any moment";
constexpr milliseconds kFirstWaitLog{1000};
constexpr milliseconds kMaxWaitLogSpacing{30000};
// Reads made on a split's or merge's hint serve the change that follows
// within this long (the drain takes at most a third of a lease); older
// ones are read again. Stale reads cost a failed multi, never a wrong one.
constexpr milliseconds kPrefetchFresh{1000};

// A range came or went between `was` and `now`, or one's figure moved by
// more than `floor` and by more than a quarter.
template <typename T>
bool FiguresMoved(const std::map<RangeId, T>& was, const std::map<RangeId, T>& now, T floor) {
  if (was.size() != now.size()) return true;
  for (const auto& [id, n] : now) {
    auto o = was.find(id);
    if (o == was.end()) return true;
    const T diff = n > o->second ? n - o->second : o->second - n;
    if (diff > floor && static_cast<uint64_t>(diff) * 4 > std::max<uint64_t>(n, o->second)) {
      return true;
    }
  }
  return false;
}

std::string Hex(int64_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << v;
  return os.str();
}

std::string Seconds(Clock::duration d) {
  std::ostringstream os;
  os.precision(1);
  os << std::fixed << std::chrono::duration<double>(d).count() << " s";
  return os.str();
}

std::string JoinIds(const std::vector<RangeId>& ids) {
  std::string s;
  for (RangeId id : ids) s += (s.empty() ? "" : ",") + std::to_string(id.value());
  return s.empty() ? "-" : s;
}

// Doubling delay between attempts, reset after a success.
class Backoff {
 public:
  milliseconds Next() {
    milliseconds d = next_;
    next_ = std::min(next_ * 2, kBackoffMax);
    return d;
  }
  void Reset() { next_ = kBackoffInitial; }

 private:
  milliseconds next_ = kBackoffInitial;
};

}  // namespace

class ClusterMember::Worker {
 public:
  Worker(MemberOptions options, Node& node, NodeMetrics* metrics, FatalCallback on_fatal)
      : options_(std::move(options)),
        node_(node),
        metrics_(metrics),
        on_fatal_(std::move(on_fatal)),
        reader_(options_.cluster, options_.self.id),
        call_timeout_(
            std::clamp(options_.session_timeout, milliseconds(2000), milliseconds(10000))),
        work_(io_.get_executor()) {
    // Until the node has opened its ranges (cluster_map.h "opening").
    options_.self.opening = true;
  }

  ~Worker() { Stop(); }

  Status Start();
  void Stop() EXCLUDES(mu_);
  // Any thread: queue an ISR change for the member thread (never blocks).
  void QueueIsrChange(IsrChange change, std::function<void(Status)> done) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    if (change.prefetch) {
      prefetch_wanted_ = RangesOf(change);
      cv_.NotifyAll();
      return;
    }
    isr_changes_.emplace_back(std::move(change), std::move(done));
    reconcile_wanted_ = true;
    cv_.NotifyAll();
  }
  // Any thread: news of a split or merge (Replicator::NewsFn) for the news
  // thread (never blocks).
  void QueueNews(RangeId from, cluster::ClusterMap::Written news) EXCLUDES(mu_) {
    MutexLock lock(mu_);
    news_.emplace_back(from, std::move(news));
    cv_.NotifyAll();
  }

 private:
  // ---- on the news thread ----
  // Applies news as it comes (Node::ApplyNews): the member thread is most
  // likely reading the map when it does, and the new ranges' writes wait.
  void RunNews() EXCLUDES(mu_);
  void ApplyNews(RangeId from, cluster::ClusterMap::Written news) EXCLUDES(mu_);

  // ---- on the io thread ----
  void OnSessionState(uint64_t gen, zk::SessionState state) EXCLUDES(mu_);
  void OnReconcile() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    reconcile_wanted_ = true;
    cv_.NotifyAll();
  }
  bool Connected() EXCLUDES(mu_);  // any thread

  // ---- on the member thread ----
  void Run();
  void Step() EXCLUDES(mu_);
  enum class WakeOn { kSessionChange, kAnyEvent };
  // Sleeps until `until`, stop, a session state change, and with kAnyEvent
  // also a reconcile request.
  void WaitEvent(Clock::time_point until, WakeOn wake = WakeOn::kSessionChange) EXCLUDES(mu_);
  bool Stopping() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return stop_;
  }
  Status OpenSession() EXCLUDES(mu_);
  // Waits for the session to connect, logging with growing spacing; stops
  // serving as soon as a connection that was up is lost.
  void WaitConnecting(Clock::time_point since, bool ever_connected);
  void LoseSession(zk::SessionState state);
  void Suspend(const std::string& reason);
  // Creates R/nodes/<id>; sets *fatal when another live node holds the id.
  Status Register(bool* fatal);
  // Another incarnation holds our id: UNAVAILABLE while its session may
  // still expire (a wiped disk restarted quickly), fatal once it outlived
  // twice the session timeout (a second process with the same id).
  Status RivalRegistration(int64_t session, const std::string& address, bool* fatal);
  Status EnsureParents();
  void Reconcile() EXCLUDES(mu_);
  // Node::Apply of a map read, and what follows it (Applied).
  void ApplyMap(const cluster::ClusterMap& map, Clock::time_point start);
  void Applied(const ApplyReport& report, Clock::time_point start);
  void ApplyIsrChanges() EXCLUDES(mu_);
  Status ApplyIsrChange(const IsrChange& change);
  // What a split's or merge's multi is conditioned on: read early when the
  // owner hinted at it (IsrChange::prefetch; *early), else now.
  static std::vector<RangeId> RangesOf(const IsrChange& c);
  void Prefetch() EXCLUDES(mu_);
  Result<ChangeReads> ReadsFor(const IsrChange& c, bool* early);
  // A split or a merge, tried again once with fresh reads when its multi
  // failed on a version it read early.
  Status ApplyRangeChange(const IsrChange& change);
  // *early: its reads were the prefetched ones.
  Status ApplySplit(const IsrChange& change, bool* early);
  Status ApplyMerge(const IsrChange& change, bool* early);
  Result<RangeId> NewRangeId(const ChangeReads& got);
  zk::ZkOp CounterOp(const ChangeReads& got, RangeId taken) const;
  void SyncSuspect();
  void SyncLoad();
  void SyncLostOwners();
  void AddReplicaLags(std::map<RangeId, NodeMetrics::OwnedRange>& owned);
  void PublishOpened();

  MemberOptions options_;  // self.suspect changes once every range caught up
  Node& node_;
  NodeMetrics* const metrics_;
  const FatalCallback on_fatal_;
  MapReader reader_;
  const milliseconds call_timeout_;

  // Shared between the io thread and the member thread.
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool reconcile_wanted_ GUARDED_BY(mu_) = true;
  uint64_t session_gen_ GUARDED_BY(mu_) = 0;  // callbacks of older sessions are ignored
  zk::SessionState state_ GUARDED_BY(mu_) = zk::SessionState::kConnecting;
  Clock::time_point state_since_ GUARDED_BY(mu_);
  bool ever_connected_ GUARDED_BY(mu_) = false;  // this session was connected once
  // Asked by the replicator, with where the outcome goes.
  std::vector<std::pair<IsrChange, std::function<void(Status)>>> isr_changes_ GUARDED_BY(mu_);
  std::deque<std::pair<RangeId, cluster::ClusterMap::Written>> news_ GUARDED_BY(mu_);
  std::optional<std::vector<RangeId>> prefetch_wanted_ GUARDED_BY(mu_);

  // Member thread only.
  std::unique_ptr<zk::Session> session_;
  bool registered_ = false;
  bool serving_ = false;
  bool was_connected_ = false;  // the state seen by the previous Step
  int64_t session_id_ = 0;      // of session_, read when it connected
  Backoff backoff_;
  Clock::time_point next_wait_log_;
  milliseconds wait_log_spacing_ = kFirstWaitLog;
  bool suspended_for_disconnect_ = false;
  std::optional<Clock::time_point> reconcile_retry_at_;
  // The reads of the last prefetch hint, for the change that follows it.
  struct Prefetched {
    std::vector<RangeId> ranges;
    ChangeReads reads;
    Clock::time_point at;
  };
  std::optional<Prefetched> prefetched_;
  // Load reports (cluster_map.h "load"): when the counts were last looked at.
  Clock::time_point load_at_{};
  // Per owned range: (when, request count) at the looks of the last
  // kLoadSpan, oldest first.
  std::map<RangeId, std::deque<std::pair<Clock::time_point, uint64_t>>> load_looks_;
  std::string last_read_error_;
  // Another incarnation's registration of our id, and since when we have
  // seen that session hold it (a wiped or replaced data directory restarted
  // before its previous process's session expired).
  int64_t rival_session_ = 0;
  Clock::time_point rival_since_;

  // Declared last: the io thread and reconciler go first at destruction.
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<zk::Reconciler> reconciler_;
  std::thread io_thread_;
  std::thread thread_;
  std::thread news_thread_;
  bool stopped_ = false;
};

Status ClusterMember::Worker::Start() {
  zk::ReconcilerOptions ro;
  ro.channel.connect_string = options_.zk_connect;
  ro.channel.watch_paths = {reader_.paths().root()};
  ro.channel.session_timeout = options_.session_timeout;
  if (options_.auth) ro.channel.auth = options_.auth->self;
  ro.period = options_.reconcile_period;
  auto reconciler = zk::Reconciler::Create(
      io_.get_executor(), std::move(ro),
      [this](const zk::ReconcileTriggers&, zk::Reconciler::Done done) {
        OnReconcile();
        done();  // coalescing continues in reconcile_wanted_; the member thread re-reads
      },
      [this](const zk::WatchEvent& ev) {
        if (metrics_ != nullptr) metrics_->CountWatchEvent(ev.type);
      });
  if (!reconciler.ok()) return reconciler.status();
  reconciler_ = std::move(*reconciler);
  io_thread_ = std::thread([this] { io_.run(); });
  reconciler_->Start();
  thread_ = std::thread([this] { Run(); });
  news_thread_ = std::thread([this] { RunNews(); });
  return Status::Ok();
}

void ClusterMember::Worker::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (reconciler_) reconciler_->Stop();
  {
    MutexLock lock(mu_);
    stop_ = true;
    cv_.NotifyAll();
  }
  if (thread_.joinable()) thread_.join();  // closes the session on its way out
  if (news_thread_.joinable()) news_thread_.join();
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

// Runs on the session's I/O thread. Losing the connection stops serving
// here, at once, not when the worker thread next looks: the worker may be
// inside a ZooKeeper call that waits out a timeout longer than the
// session, and the server may expire the session (letting other nodes own
// our ranges) a third of its timeout after the client notices.
void ClusterMember::Worker::OnSessionState(uint64_t gen, zk::SessionState state) {
  bool lost = false;
  {
    MutexLock lock(mu_);
    if (gen != session_gen_ || state == state_) return;
    lost = state_ == zk::SessionState::kConnected;
    state_ = state;
    state_since_ = Clock::now();
    if (state == zk::SessionState::kConnected) ever_connected_ = true;
    // The worker may never see the disconnect (it was busy, the link came
    // back): a read of the map then resumes serving.
    if (lost) reconcile_wanted_ = true;
    cv_.NotifyAll();
  }
  if (lost) node_.Suspend(kDisconnectedReason);
}

bool ClusterMember::Worker::Connected() {
  MutexLock lock(mu_);
  return state_ == zk::SessionState::kConnected;
}

void ClusterMember::Worker::WaitEvent(Clock::time_point until, WakeOn wake) {
  MutexLock lock(mu_);
  zk::SessionState state = state_;
  uint64_t gen = session_gen_;
  cv_.WaitUntil(lock, until, [&] {
    mu_.AssertHeld();  // WaitUntil calls the predicate with the lock held
    return stop_ || state_ != state || session_gen_ != gen ||
           (wake == WakeOn::kAnyEvent && (reconcile_wanted_ || prefetch_wanted_));
  });
}

void ClusterMember::Worker::RunNews() {
  for (;;) {
    std::pair<RangeId, cluster::ClusterMap::Written> next;
    {
      MutexLock lock(mu_);
      cv_.Wait(lock, [&] {
        mu_.AssertHeld();
        return stop_ || !news_.empty();
      });
      if (stop_) return;
      next = std::move(news_.front());
      news_.pop_front();
    }
    ApplyNews(next.first, std::move(next.second));
  }
}

void ClusterMember::Worker::ApplyNews(RangeId from, cluster::ClusterMap::Written news) {
  const Clock::time_point start = Clock::now();
  ApplyReport report = node_.ApplyNews(std::move(news));
  for (int i = 0; i < kNewsRetries && report.retry_soon && node_.NewsOutstanding(); ++i) {
    {
      MutexLock lock(mu_);
      if (cv_.WaitFor(lock, kNewsRetry, [&] {
            mu_.AssertHeld();
            return stop_ || !news_.empty();
          })) {
        return;  // stopping, or newer news: applied with it
      }
    }
    report = node_.ApplyNews({});
  }
  if (report.opened.empty() && report.closed.empty() && report.failed.empty()) return;
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  LOG_INFO("news of range " << from.value() << " from its owner: serving " << report.served
                            << " ranges (opened " << JoinIds(report.opened) << ", closed "
                            << JoinIds(report.closed) << ", failed " << JoinIds(report.failed)
                            << (report.derived.empty() ? "" : ", built " + JoinIds(report.derived))
                            << ") in " << ms << " ms");
}

void ClusterMember::Worker::Run() {
  while (!Stopping()) Step();
  if (session_) {
    if (session_id_ != 0) LOG_INFO("closing ZooKeeper session " << Hex(session_id_));
    session_.reset();  // the server deletes our ephemeral znode now
  }
  if (metrics_ != nullptr) metrics_->SetSessionState(zk::SessionState::kClosed);
}

void ClusterMember::Worker::Step() {
  if (!session_) {
    if (Status st = OpenSession(); !st.ok()) {
      milliseconds delay = backoff_.Next();
      LOG_WARN("cannot open a ZooKeeper session to " << options_.zk_connect << ": " << st.ToString()
                                                     << "; retrying in " << delay.count() << " ms");
      WaitEvent(Clock::now() + delay);
      return;
    }
  }
  zk::SessionState state;
  Clock::time_point since;
  bool ever_connected;
  {
    MutexLock lock(mu_);
    state = state_;
    since = state_since_;
    ever_connected = ever_connected_;
  }
  if (metrics_ != nullptr) metrics_->SetSessionState(state);
  bool reconnected = state == zk::SessionState::kConnected && !was_connected_;
  was_connected_ = state == zk::SessionState::kConnected;
  if (state != zk::SessionState::kConnected) {
    if (state == zk::SessionState::kConnecting) {
      WaitConnecting(since, ever_connected);
    } else {
      LoseSession(state);
    }
    return;
  }
  if (reconnected) {
    // Whatever happened while disconnected was not seen: re-read (and resume
    // serving if the disconnect suspended it).
    suspended_for_disconnect_ = false;
    wait_log_spacing_ = kFirstWaitLog;
    session_id_ = session_->session_id();
    LOG_INFO("connected to ZooKeeper (session " << Hex(session_id_) << ", timeout "
                                                << session_->negotiated_timeout().count()
                                                << " ms)");
    MutexLock lock(mu_);
    reconcile_wanted_ = true;
  }
  if (!registered_) {
    bool fatal = false;
    Status st = Register(&fatal);
    // A refusal does not pass by itself: these credentials will never
    // register this node.
    if (fatal || zk::IsZkRefusal(st)) {
      on_fatal_(st);
      MutexLock lock(mu_);
      stop_ = true;  // nothing more to do; main stops the process
      return;
    }
    if (!st.ok()) {
      milliseconds delay = backoff_.Next();
      LOG_WARN("registering node " << options_.self.id.str() << ": " << st.ToString()
                                   << "; retrying in " << delay.count() << " ms");
      WaitEvent(Clock::now() + delay);
      return;
    }
    registered_ = true;
    backoff_.Reset();
    MutexLock lock(mu_);
    reconcile_wanted_ = true;
  }
  Prefetch();
  bool wanted;
  {
    MutexLock lock(mu_);
    wanted = reconcile_wanted_;
    reconcile_wanted_ = false;
  }
  if (wanted || (reconcile_retry_at_ && Clock::now() >= *reconcile_retry_at_)) {
    ApplyIsrChanges();
    Reconcile();
    SyncSuspect();
    SyncLoad();
    SyncLostOwners();
    return;
  }
  SyncSuspect();
  SyncLoad();
  SyncLostOwners();
  // Looks again soon whether it has caught up, a store failed, or an
  // owner's stream was lost (that report is what a failover waits for).
  Clock::time_point until = Clock::now() + kLostOwnersPeriod;
  WaitEvent(std::min(until, reconcile_retry_at_.value_or(until)), WakeOn::kAnyEvent);
}

Status ClusterMember::Worker::OpenSession() {
  zk::SessionOptions so;
  so.connect_string = options_.zk_connect;
  so.session_timeout = options_.session_timeout;
  so.blocking_timeout = call_timeout_;
  if (options_.auth) {
    so.auth = options_.auth->self;
    so.acl = zk::ClusterAcl(reader_.paths().root(), *options_.auth);
  }
  if (metrics_ != nullptr) {
    so.on_refused = [counter = metrics_->zk_refused()](const Status&) { counter.Inc(); };
  }
  uint64_t gen;
  {
    MutexLock lock(mu_);
    gen = ++session_gen_;
    state_ = zk::SessionState::kConnecting;
    state_since_ = Clock::now();
    ever_connected_ = false;
  }
  auto s = zk::Session::Open(so, io_.get_executor(),
                             [this, gen](zk::SessionState st) { OnSessionState(gen, st); });
  if (!s.ok()) return s.status();
  session_ = std::move(*s);
  next_wait_log_ = Clock::now() + wait_log_spacing_;
  LOG_INFO("connecting to ZooKeeper at " << options_.zk_connect << " (cluster " << options_.cluster
                                         << ")");
  return Status::Ok();
}

void ClusterMember::Worker::WaitConnecting(Clock::time_point since, bool ever_connected) {
  Clock::time_point now = Clock::now();
  // OnSessionState stopped serving when the connection was lost (the C
  // client notices a silent one after 2/3 of the timeout, so the server may
  // expire the session a third later and give our ranges away); the member
  // records it here: its log line, metrics and serving_.
  if (ever_connected && serving_ && !suspended_for_disconnect_) {
    suspended_for_disconnect_ = true;
    Suspend("disconnected from ZooKeeper for " + Seconds(now - since) +
            "; the session may expire any moment");
  }
  if (now >= next_wait_log_) {
    LOG_WARN((ever_connected ? "lost the connection to ZooKeeper at "
                             : "ZooKeeper not reachable yet at ")
             << options_.zk_connect << " (" << Seconds(now - since) << "); still trying");
    wait_log_spacing_ = std::min(wait_log_spacing_ * 2, kMaxWaitLogSpacing);
    next_wait_log_ = now + wait_log_spacing_;
  }
  WaitEvent(next_wait_log_);
}

void ClusterMember::Worker::LoseSession(zk::SessionState state) {
  LOG_WARN("ZooKeeper session " << Hex(session_id_) << " "
                                << (state == zk::SessionState::kExpired ? "expired" : "ended")
                                << " (" << zk::SessionStateName(state)
                                << "); opening a new one and registering again");
  Suspend("ZooKeeper session " + std::string(zk::SessionStateName(state)) + "; rejoining");
  session_.reset();  // an expired handle closes without network I/O
  session_id_ = 0;
  registered_ = false;
  was_connected_ = false;
  reconcile_retry_at_.reset();
}

void ClusterMember::Worker::Suspend(const std::string& reason) {
  node_.Suspend(reason);
  if (serving_) LOG_WARN("not serving any range: " << reason);
  serving_ = false;
  if (metrics_ != nullptr) {
    metrics_->SetJoined(false);
    metrics_->SetRangesServed(0);
  }
}

Status ClusterMember::Worker::EnsureParents() {
  const cluster::Paths& p = reader_.paths();
  for (const std::string& path : {std::string("/rangekv"), p.root(), p.nodes()}) {
    auto created = session_->Create(path, "");
    if (!created.ok() && zk::ZkErrorOf(created.status()) != zk::ZkError::kNodeExists) {
      return created.status();
    }
  }
  return Status::Ok();
}

Status ClusterMember::Worker::RivalRegistration(int64_t session, const std::string& address,
                                               bool* fatal) {
  const Clock::time_point now = Clock::now();
  if (session != rival_session_) {
    rival_session_ = session;
    rival_since_ = now;
  }
  // A process that died leaves its znode for one session timeout (the
  // server's clock, which runs with ours); a duplicate keeps it forever.
  const auto grace = 2 * session_->negotiated_timeout() + std::chrono::seconds(1);
  if (now - rival_since_ >= grace) {
    *fatal = true;
    return Status(Code::kBadRequest, "node id " + options_.self.id.str() +
                                         " is already registered by a live node at " + address);
  }
  return Status(Code::kUnavailable,
                "node id " + options_.self.id.str() + " is registered by another process at " +
                    address + " (session " + Hex(session) + "); waiting up to " +
                    std::to_string(std::chrono::duration_cast<milliseconds>(grace).count() / 1000) +
                    " s for that session to expire");
}

Status ClusterMember::Worker::Register(bool* fatal) {
  RANGEKV_RETURN_IF_ERROR(EnsureParents());
  const std::string path = reader_.paths().node(options_.self.id);
  const std::string data = cluster::EncodeNode(options_.self);
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto created = session_->Create(path, data, zk::CreateMode::kEphemeral);
    if (created.ok()) {
      LOG_INFO("registered " << path << " at " << options_.self.address << " (session "
                             << Hex(session_id_) << ")");
      return Status::Ok();
    }
    if (zk::ZkErrorOf(created.status()) != zk::ZkError::kNodeExists) return created.status();
    RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> existing, session_->Get(path));
    if (!existing) continue;  // vanished meanwhile: create again
    if (existing->stat.ephemeral_owner == session_id_) {
      // Our own create went through although its reply was lost.
      if (existing->data != data) RANGEKV_RETURN_IF_ERROR(session_->Set(path, data).status());
      return Status::Ok();
    }
    auto other = cluster::DecodeNode(existing->data);
    if (other.ok() && other->incarnation == options_.self.incarnation) {
      LOG_INFO("replacing " << path << " left by this data directory's previous process (session "
                            << Hex(existing->stat.ephemeral_owner) << ", at " << other->address
                            << ")");
      Status deleted = session_->Delete(path, existing->stat.version);
      if (!deleted.ok() && zk::ZkErrorOf(deleted) != zk::ZkError::kNoNode) return deleted;
      continue;
    }
    return RivalRegistration(existing->stat.ephemeral_owner,
                             other.ok() ? other->address : "an unknown address (" + path + ")",
                             fatal);
  }
  return Status(Code::kUnavailable, path + " keeps changing while registering");
}

void ClusterMember::Worker::Reconcile() {
  Clock::time_point start = Clock::now();
  auto read = reader_.Read(*session_, call_timeout_);
  if (!read.ok()) {
    if (metrics_ != nullptr) metrics_->CountReconcile(ReconcileResult::kFailed);
    if (read.status().ToString() != last_read_error_) {
      last_read_error_ = read.status().ToString();
      LOG_WARN("reading the cluster map: " << last_read_error_ << "; retrying");
    }
    reconcile_retry_at_ = Clock::now() + kReconcileRetry;
    return;
  }
  last_read_error_.clear();
  reconcile_retry_at_.reset();
  if (!read->self_owner || *read->self_owner != session_id_) {
    LOG_WARN(reader_.paths().node(options_.self.id)
             << (read->self_owner ? " belongs to another session" : " is gone")
             << "; registering again");
    registered_ = false;
    MutexLock lock(mu_);
    reconcile_wanted_ = true;
    return;
  }
  ApplyMap(read->map, start);
}

void ClusterMember::Worker::ApplyMap(const cluster::ClusterMap& map, Clock::time_point start) {
  ApplyReport report = node_.Apply(map);
  // A map read before the connection was lost must not resume serving
  // after OnSessionState stopped it.
  if (!Connected()) node_.Suspend(kDisconnectedReason);
  Applied(report, start);
}

void ClusterMember::Worker::Applied(const ApplyReport& report, Clock::time_point start) {
  // A range split off waits for its parent's copy to apply the split
  // point: the same map is applied again shortly.
  if (report.retry_soon) reconcile_retry_at_ = Clock::now() + kSplitRetry;
  if (options_.self.opening) PublishOpened();
  if (metrics_ != nullptr) {
    metrics_->CountReconcile(ReconcileResult::kOk);
    metrics_->SetRangesServed(report.served);
    metrics_->SetJoined(true);
  }
  auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - start).count();
  if (!report.overlapping.empty()) {
    LOG_WARN("cluster map: ranges " << JoinIds(report.overlapping)
                                    << " overlap others and are not routed");
  }
  if (!serving_ || !report.opened.empty() || !report.closed.empty() || !report.failed.empty()) {
    LOG_INFO((serving_ ? "cluster map changed" : "joined cluster " + options_.cluster)
             << ": serving " << report.served << " of " << report.listed << " ranges (opened "
             << JoinIds(report.opened) << ", closed " << JoinIds(report.closed) << ", failed "
             << JoinIds(report.failed)
             << (report.derived.empty() ? "" : ", built from a split " + JoinIds(report.derived))
             << ") in " << took << " ms");
  }
  serving_ = true;
}

void ClusterMember::Worker::ApplyIsrChanges() {
  std::vector<std::pair<IsrChange, std::function<void(Status)>>> changes;
  {
    MutexLock lock(mu_);
    changes.swap(isr_changes_);
  }
  std::vector<cluster::ClusterMap::Written> made;
  for (auto& [c, done] : changes) {
    Status st = ApplyIsrChange(c);
    if (st.ok() && c.wrote && !c.wrote->empty()) made.push_back(*c.wrote);
    if (!st.ok()) {
      LOG_WARN("range " << c.range.value() << ": ISR "
                        << (c.split    ? "split asked by "
                            : c.merge  ? "merge asked by "
                            : c.resign ? "resignation of "
                            : c.add    ? "add "
                                       : "removal of ")
                        << c.node.str() << " not written: " << st.ToString()
                        << " (asked again if it still applies)");
    }
    if (done) done(st);
  }
  // The owner opens what its split or merge made without waiting to read
  // the map back (a read takes 8-20 ms on a loaded machine, and writes to
  // the new range wait for it): the znodes as it wrote them are news to
  // its own node as to its replicas (Node::ApplyNews). The full read
  // follows at once.
  for (cluster::ClusterMap::Written& w : made) {
    const Clock::time_point start = Clock::now();
    ApplyReport report = node_.ApplyNews(std::move(w));
    if (report.listed != 0) Applied(report, start);
  }
}

// The ranges are open: whether this node may lack acknowledged records is
// known now (cluster_map.h "opening", "suspect").
void ClusterMember::Worker::PublishOpened() {
  cluster::NodeInfo opened = options_.self;
  opened.opening = false;
  opened = node_.WithSuspicion(std::move(opened), node_.suspect());
  auto set = session_->Set(reader_.paths().node(options_.self.id), cluster::EncodeNode(opened));
  if (!set.ok()) return;  // again after the next reconcile
  options_.self = opened;
  if (opened.suspect) {
    LOG_WARN("this node may lack records it acknowledged (a reboot after an unclean stop with "
             "fsync batch/never, a damaged log end, or a range copy being made again): suspect "
             "until every range caught up");
  }
}

// A suspect node (cluster_map.h) says so in its znode, with where its logs
// end, until every range it holds has caught up with its owner; it becomes
// suspect again when a store fails.
void ClusterMember::Worker::SyncSuspect() {
  if (options_.self.opening || !registered_) return;
  const bool now = node_.SuspectNow();
  cluster::NodeInfo updated = node_.WithSuspicion(options_.self, now);
  if (updated == options_.self) return;
  const bool changed = now != options_.self.suspect;
  auto set = session_->Set(reader_.paths().node(options_.self.id), cluster::EncodeNode(updated));
  if (!set.ok()) return;  // again after the next reconcile
  options_.self = updated;
  if (!changed) return;  // only where the logs end moved
  if (now) {
    LOG_WARN("a store failed and was reopened: suspect until every range has caught up");
  } else {
    LOG_INFO("every range caught up with its owner: no longer suspect");
  }
}

// The owners whose stream this node lost, in its znode (cluster_map.h
// "unreachable"), for the coordinator's failure detector.
void ClusterMember::Worker::SyncLostOwners() {
  Replicator* r = node_.replicator();
  if (options_.self.opening || !registered_ || r == nullptr) return;
  std::vector<NodeId> lost = r->LostOwners();
  if (lost == options_.self.unreachable) return;
  cluster::NodeInfo updated = options_.self;
  updated.unreachable = std::move(lost);
  auto set = session_->Set(reader_.paths().node(options_.self.id), cluster::EncodeNode(updated));
  if (!set.ok()) return;  // again at the next step
  std::string names;
  for (const NodeId& n : updated.unreachable) names += (names.empty() ? "" : ",") + n.str();
  LOG_INFO(names.empty() ? std::string("every owner's stream is back")
                         : "lost the stream of owner(s) " + names);
  options_.self = std::move(updated);
}

// The owner's view of how far its other replicas are behind, per owned
// range (the answer to a rangeStatus request, asked of this process's own
// replicator; left 0 when it does not answer within kLagWait).
void ClusterMember::Worker::AddReplicaLags(std::map<RangeId, NodeMetrics::OwnedRange>& owned) {
  Replicator* r = node_.replicator();
  if (r == nullptr || owned.empty()) return;
  struct Answer {
    Mutex mu;
    CondVar cv;
    std::optional<proto::Response> resp GUARDED_BY(mu);
  };
  auto answer = std::make_shared<Answer>();
  r->HandleStatus(0, [answer](proto::Response resp) {
    MutexLock lock(answer->mu);
    answer->resp = std::move(resp);
    answer->cv.NotifyAll();
  });
  proto::Response got;
  {
    MutexLock lock(answer->mu);
    if (!answer->cv.WaitFor(lock, kLagWait,
                            [&]() REQUIRES(answer->mu) { return answer->resp.has_value(); })) {
      return;
    }
    got = std::move(*answer->resp);
  }
  for (const proto::RangeStatus& s : got.status) {
    auto it = owned.find(s.range);
    if (!s.owner || it == owned.end()) continue;
    for (const proto::ReplicaProgress& p : s.replicas) {
      const uint64_t behind =
          s.last_seq.value() > p.acked.value() ? s.last_seq.value() - p.acked.value() : 0;
      it->second.max_lag_records = std::max(it->second.max_lag_records, behind);
    }
  }
}

// Every second: the requests a second of each range this node owns (over
// the last three seconds), in its znode when they changed much (the
// coordinator balances owners by them; cluster_map.h "load"), and in the
// node's metrics with the range's keys and bytes.
void ClusterMember::Worker::SyncLoad() {
  const Clock::time_point now = Clock::now();
  if (!registered_ || options_.self.opening || now - load_at_ < kLoadPeriod) return;
  load_at_ = now;
  const std::map<RangeId, Node::OwnedCounts> counts = node_.OwnedRequestCounts();
  std::map<RangeId, uint32_t> load;
  std::map<RangeId, uint64_t> bytes;
  std::vector<RangeId> mergeable;
  std::map<RangeId, NodeMetrics::OwnedRange> owned;
  for (auto it = load_looks_.begin(); it != load_looks_.end();) {
    it = counts.count(it->first) ? std::next(it) : load_looks_.erase(it);
  }
  for (const auto& [id, c] : counts) {
    owned[id] = {c.keys, c.bytes, 0};
    bytes[id] = c.bytes;
    if (c.mergeable) mergeable.push_back(id);
    const uint64_t n = c.requests;
    auto& looks = load_looks_[id];
    if (!looks.empty() && n < looks.back().second) looks.clear();  // a new slot
    looks.emplace_back(now, n);
    while (looks.size() > 2 && now - looks[1].first >= kLoadSpan) looks.pop_front();
    if (looks.size() < 2) continue;  // new: next time
    const double secs = std::chrono::duration<double>(now - looks.front().first).count();
    load[id] =
        static_cast<uint32_t>(std::min(4e9, static_cast<double>(n - looks.front().second) / secs));
    owned[id].requests_per_sec = load[id];
  }
  if (metrics_ != nullptr) {
    AddReplicaLags(owned);
    metrics_->SetOwnedRanges(owned);
    if (const Replicator* r = node_.replicator()) {
      metrics_->SetRangeChanges(r->splits_done(), r->transfers_done(), r->merges_done());
      metrics_->SetCopiedBytes(r->copied_bytes());
    }
    if (const WriteParking* p = node_.parking()) metrics_->SetParkedWrites(p->parked_total());
  }
  // Rewritten only when a range came or went, or its load moved by a
  // quarter (and 50 requests/s), or its bytes by a quarter (and 1 MiB): a
  // busy cluster's figures change all the time.
  const bool changed = mergeable != options_.self.mergeable ||
                       FiguresMoved(options_.self.load, load, uint32_t{50}) ||
                       FiguresMoved(options_.self.bytes, bytes, uint64_t{1} << 20);
  if (!changed) return;
  cluster::NodeInfo updated = options_.self;
  updated.load = std::move(load);
  updated.bytes = std::move(bytes);
  updated.mergeable = std::move(mergeable);
  auto set = session_->Set(reader_.paths().node(options_.self.id), cluster::EncodeNode(updated));
  if (set.ok()) options_.self = std::move(updated);
}

// A compare-and-set of the range znode: only while it still names this
// node as owner at the epoch the replicator led, so a stale request can
// never touch a newer owner's ISR.
Status ClusterMember::Worker::ApplyIsrChange(const IsrChange& c) {
  if (c.split || c.merge) return ApplyRangeChange(c);
  const std::string path = reader_.paths().range(c.range);
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> got, session_->Get(path));
  if (!got) return Status(Code::kRangeUnavailable, path + " is gone");
  RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo current, cluster::DecodeRange(got->data));
  RANGEKV_ASSIGN_OR_RETURN(std::optional<cluster::RangeInfo> changed,
                           kvnode::ApplyIsrChange(current, c, options_.self.id));
  if (!changed) return Status::Ok();
  const cluster::RangeInfo& r = *changed;
  RANGEKV_RETURN_IF_ERROR(
      session_->Set(path, cluster::EncodeRange(r), got->stat.version).status());
  if (c.transfer) {
    LOG_INFO("range " << c.range.value() << ": handed to " << c.node.str() << " at epoch "
                      << r.epoch.value());
    return Status::Ok();
  }
  LOG_INFO("range " << c.range.value() << " epoch " << c.epoch.value() << ": ISR now "
                    << [&] {
                         std::string s;
                         for (const NodeId& n : r.isr) s += (s.empty() ? "" : ",") + n.str();
                         return s;
                       }());
  return Status::Ok();
}

// A split's map change (docs/elastic.md §3): one multi, conditioned on the
// versions read, narrows the parent, creates the new range and moves the
// id counter on, so no reader ever sees a hole, an overlap or a reused id.
Status ClusterMember::Worker::ApplySplit(const IsrChange& c, bool* early) {
  const cluster::Paths& paths = reader_.paths();
  const std::string path = paths.range(c.range);
  RANGEKV_ASSIGN_OR_RETURN(ChangeReads got, ReadsFor(c, early));
  const std::optional<zk::ZnodeData>& parent = got.ranges[0];
  if (!parent) return Status(Code::kRangeUnavailable, path + " is gone");
  RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo current, cluster::DecodeRange(parent->data));
  RANGEKV_ASSIGN_OR_RETURN(RangeId child_id, NewRangeId(got));
  RANGEKV_ASSIGN_OR_RETURN(SplitRecords split,
                           MakeSplitRecords(current, c, options_.self.id, child_id));
  std::vector<zk::ZkOp> ops{
      zk::ZkOp::SetData(path, cluster::EncodeRange(split.parent), parent->stat.version),
      zk::ZkOp::Create(paths.range(child_id), cluster::EncodeRange(split.child)),
      CounterOp(got, child_id)};
  RANGEKV_RETURN_IF_ERROR(session_->Multi(ops).status());
  if (c.wrote) *c.wrote = {{c.range, split.parent}, {child_id, split.child}};
  LOG_INFO("range " << c.range.value() << " split at seq " << c.split_seq.value() << ": now "
                    << split.parent.bounds.ToString() << ", range " << child_id.value() << " "
                    << split.child.bounds.ToString() << " (generation "
                    << split.child.generation << ")");
  return Status::Ok();
}

Status ClusterMember::Worker::ApplyRangeChange(const IsrChange& c) {
  auto apply = [&](bool* early) { return c.split ? ApplySplit(c, early) : ApplyMerge(c, early); };
  bool early = false;
  Status st = apply(&early);
  // Read early, a version may have moved since: nothing was written (a
  // multi is all or nothing), so read again (the early reads are used up)
  // and try once more.
  if (!st.ok() && early && st.code() == Code::kCasFailed) st = apply(&early);
  return st;
}

std::vector<RangeId> ClusterMember::Worker::RangesOf(const IsrChange& c) {
  std::vector<RangeId> ranges{c.range};
  if (c.merge_right.value() != 0) ranges.push_back(c.merge_right);
  return ranges;
}

// A hint that a split or merge follows as soon as the owner's logs drain
// (a millisecond or two): its reads now, so that only the multi remains.
void ClusterMember::Worker::Prefetch() {
  std::optional<std::vector<RangeId>> ranges;
  {
    MutexLock lock(mu_);
    ranges.swap(prefetch_wanted_);
  }
  if (!ranges) return;
  prefetched_.reset();
  auto got = ReadForChange(*session_, reader_.paths(), *ranges, call_timeout_);
  if (got.ok()) prefetched_ = Prefetched{std::move(*ranges), std::move(*got), Clock::now()};
}

// The multi is conditioned on every version read, so reads a moment older
// are as good, or make it fail with nothing written (then read again).
Result<ChangeReads> ClusterMember::Worker::ReadsFor(const IsrChange& c, bool* early) {
  std::vector<RangeId> ranges = RangesOf(c);
  std::optional<Prefetched> p;
  p.swap(prefetched_);
  *early = p && p->ranges == ranges && Clock::now() - p->at < kPrefetchFresh;
  if (*early) return std::move(p->reads);
  return ReadForChange(*session_, reader_.paths(), ranges, call_timeout_);
}

// The id the next new range takes (NextRangeId), from the counter and the
// range znodes as read.
Result<RangeId> ClusterMember::Worker::NewRangeId(const ChangeReads& got) {
  std::vector<RangeId> existing;
  for (const std::string& name : got.range_names) {
    if (auto id = cluster::Paths::ParseRangeName(name)) existing.push_back(*id);
  }
  return NextRangeId(got.counter ? std::optional<std::string>(got.counter->data) : std::nullopt,
                     existing);
}

// The multi's step that moves the id counter past `taken`, conditioned on
// the counter's version as read (created when there was none).
zk::ZkOp ClusterMember::Worker::CounterOp(const ChangeReads& got, RangeId taken) const {
  const cluster::Paths& paths = reader_.paths();
  const std::string next = std::to_string(taken.value() + 1);
  return got.counter ? zk::ZkOp::SetData(paths.next_range_id(), next, got.counter->stat.version)
                     : zk::ZkOp::Create(paths.next_range_id(), next);
}

// A merge's map change (docs/elastic.md §4): one multi, conditioned on the
// versions read, deletes both ranges and creates the merged one under a
// new id, so no reader ever sees a hole or an overlap.
Status ClusterMember::Worker::ApplyMerge(const IsrChange& c, bool* early) {
  const cluster::Paths& paths = reader_.paths();
  RANGEKV_ASSIGN_OR_RETURN(ChangeReads got, ReadsFor(c, early));
  const std::optional<zk::ZnodeData>& left = got.ranges[0];
  const std::optional<zk::ZnodeData>& right = got.ranges[1];
  if (!left || !right) return Status(Code::kStaleEpoch, "a range to merge is gone");
  RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo l, cluster::DecodeRange(left->data));
  RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo r, cluster::DecodeRange(right->data));
  RANGEKV_ASSIGN_OR_RETURN(RangeId merged_id, NewRangeId(got));
  RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo m,
                           MakeMergeRecord(l, r, c, options_.self.id, merged_id));
  std::vector<zk::ZkOp> ops{zk::ZkOp::Delete(paths.range(c.range), left->stat.version),
                            zk::ZkOp::Delete(paths.range(c.merge_right), right->stat.version),
                            zk::ZkOp::Create(paths.range(merged_id), cluster::EncodeRange(m)),
                            CounterOp(got, merged_id)};
  RANGEKV_RETURN_IF_ERROR(session_->Multi(ops).status());
  if (c.wrote) *c.wrote = {{c.range, std::nullopt}, {c.merge_right, std::nullopt}, {merged_id, m}};
  LOG_INFO("ranges " << c.range.value() << " (seq " << c.merge_left_seq.value() << ") and "
                     << c.merge_right.value() << " (seq " << c.merge_right_seq.value()
                     << ") merged into range " << merged_id.value() << " " << m.bounds.ToString()
                     << " (generation " << m.generation << ")");
  return Status::Ok();
}

// ---- ClusterMember ----

ClusterMember::ClusterMember(MemberOptions options, Node& node, NodeMetrics* metrics,
                             FatalCallback on_fatal)
    : worker_(std::make_unique<Worker>(std::move(options), node, metrics, std::move(on_fatal))) {}

ClusterMember::~ClusterMember() { Stop(); }

Result<std::unique_ptr<ClusterMember>> ClusterMember::Start(MemberOptions options, Node& node,
                                                            NodeMetrics* metrics,
                                                            FatalCallback on_fatal) {
  if (options.self.id != node.id()) {
    return Status(Code::kInternal,
                  "member id " + options.self.id.str() + " is not the node's " + node.id().str());
  }
  std::unique_ptr<ClusterMember> member(
      new ClusterMember(std::move(options), node, metrics, std::move(on_fatal)));
  RANGEKV_RETURN_IF_ERROR(member->worker_->Start());
  return member;
}

void ClusterMember::Stop() { worker_->Stop(); }

void ClusterMember::QueueIsrChange(IsrChange change, std::function<void(Status)> done) {
  worker_->QueueIsrChange(std::move(change), std::move(done));
}

void ClusterMember::QueueNews(RangeId from, cluster::ClusterMap::Written news) {
  worker_->QueueNews(from, std::move(news));
}

}  // namespace rangekv::kvnode
