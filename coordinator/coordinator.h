// coordinator/coordinator.h — the kvcoord process: a ZooKeeper session,
// leader election, bootstrap of a new cluster and the level-triggered
// reconcile loop that keeps the range map in line with the live nodes.
//
// ZooKeeper layout and data formats: common/cluster_map.h. Election:
// coordinator/election.h. Decisions: coordinator/planner.h (pure).
//
// Life of a coordinator:
//
//   Start ─► Probing ──TCP ok──► Session open ──connected──► reconciling
//              ▲  (ZooKeeper unreachable: retry with       │  (standby or leader)
//              │   backoff, one log line per few seconds)  │
//              └─────────────── session expired ◄──────────┘
//   Stop (any state): stop the watch, end the reconcile in progress, close
//   the session (the leader znode goes away at once, so a standby takes over
//   without waiting for expiry).
//
// One reconcile (zk::Reconciler runs it on every watch event under R, on
// every (re)connect and on a timer; it coalesces bursts):
//   1. Sync, so this session's server has seen what the watch reported.
//   2. Create /rangekv, R and R/coordinator if missing (every coordinator:
//      the election needs them).
//   3. Election: make sure this session has a candidate znode; lead iff the
//      lowest candidate belongs to this session. Logs "became leader" /
//      "standing by" on changes.
//   4. Leader only, once per term: create R/nodes, R/ranges, and R/config
//      from the flags if it is missing (an existing config wins; a
//      difference is logged as a warning).
//   5. Read config, live nodes (R/nodes children whose data decodes) and
//      every range znode with its version. Note when each node was first
//      seen missing (every coordinator, so a standby that takes over knows
//      too): that gives the planner how long each dead node has been dead
//      (a node never seen live counts as dead since we became leader) and
//      the failover window logged with each promotion.
//   6. Leader only: PlanReconcile, then write: the bootstrap as one multi,
//      each other change as its own multi {check our leader znode, set the
//      range at the version read}. So only a coordinator that still holds
//      the lowest candidate znode writes, and a range changed since the
//      read is not overwritten. A failed check (CAS conflict) is counted
//      and logged; the change that caused it triggers the next reconcile
//      (no retry loop).
//
// Threads: all state lives on one strand of the executor given to Create;
// the ZooKeeper session posts its completions there. The executor may run
// on any number of threads. Public methods are thread-safe.
//
// Ending a session (Stop, or an expiry): the reconcile coroutines reach
// ZooKeeper only through zkawait::Calls (coordinator/zk_await.h), which is
// closed first, so a reconcile waiting on ZooKeeper resumes with an error
// and ends instead of being left suspended. Stop then waits, at most
// kStopDrain, until no reconcile runs and no request is in flight, and only
// then closes the session: no coroutine frame outlives Stop, and the C
// client holds no completion of ours when it closes.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/asio.h"
#include "common/cluster_map.h"
#include "common/mutex.h"
#include "common/zk/reconciler.h"
#include "common/zk/session.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/failure_detector.h"
#include "coordinator/log_limiter.h"
#include "coordinator/node_pinger.h"
#include "coordinator/planner.h"
#include "coordinator/zk_probe.h"
#include "rangekv/status.h"

namespace rangekv::coordinator {

namespace zkawait {
class Calls;
}

enum class Role : uint8_t {
  kNone,     // no ZooKeeper session yet, or between sessions
  kStandby,  // connected; another coordinator leads
  kLeader,   // connected; this coordinator leads and writes
};
const char* RoleName(Role role);

// Counters for metrics (coordinator/metrics_export.h). All monotonic but
// last_failover_ms. A write that makes several changes to one range counts
// once, under its kind (planner.h).
struct CoordinatorStats {
  uint64_t reconciles_started = 0;  // reconcile runs that reached ZooKeeper
  uint64_t reconciles = 0;          // ... and ended (one runs while they differ)
  uint64_t reconcile_failures = 0;  // runs cut short by a ZooKeeper error
  uint64_t elections_won = 0;       // times this coordinator became leader
  uint64_t leadership_lost = 0;     // times it stopped leading while running
  uint64_t writes = 0;              // successful writes (a bootstrap multi counts once)
  uint64_t cas_conflicts = 0;       // writes refused because a version changed
  uint64_t write_failures = 0;      // writes that failed otherwise
  uint64_t ranges_created = 0;      // by bootstrap
  uint64_t ranges_marked_unavailable = 0;
  uint64_t ranges_marked_active = 0;
  uint64_t owners_assigned = 0;
  uint64_t ranges_repaired = 0;
  uint64_t promotions = 0;         // an ISR member took over from a dead owner
  uint64_t isr_shrinks = 0;        // dead members removed from an ISR
  uint64_t replicas_replaced = 0;  // dead replicas swapped for live nodes
  uint64_t replicas_added = 0;     // ranges brought back up to rf
  uint64_t balance_moves = 0;      // owners asked to hand a range over (or asks dropped)
  uint64_t replica_moves = 0;      // replica moves started, advanced, ended or dropped
  uint64_t failovers_timed = 0;    // promotions whose failover window is known
  uint64_t last_failover_ms = 0;   // the latest known window (a gauge)
  uint64_t sessions_opened = 0;
  uint64_t session_expiries = 0;
  uint64_t zk_refused = 0;    // requests ZooKeeper refused for want of rights
  uint64_t nodes_failed = 0;  // failure detector verdicts (failure_detector.h)
  // Gauges, from the latest map read (leader or standby alike):
  uint64_t ranges = 0;                   // valid range records
  uint64_t ranges_under_replicated = 0;  // fewer in-sync replicas than rf
  uint64_t ranges_under_min_insync = 0;  // fewer than min-insync: its writes wait
  uint64_t replica_moves_in_flight = 0;  // moves under way (move_replica set)
  std::map<RangeId, size_t> isr_sizes;   // per valid range
};

class Coordinator {
 public:
  // kBadRequest for options that cannot work (connect string, cluster
  // name, empty id). Does not touch the network until Start.
  static Result<std::unique_ptr<Coordinator>> Create(asio::any_io_executor executor,
                                                     CoordinatorOptions options);
  // Stop() must have returned before (the destructor does not block).
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Starts probing ZooKeeper, then the session and the reconcile loop.
  void Start();
  // Stops the loop, ends a reconcile in progress (its ZooKeeper call fails
  // with kUnavailable), waits at most kStopDrain for it and for requests in
  // flight, and closes the session (the leader znode and with it leadership
  // go at once). Blocks until done: call it from a thread that does not run
  // the executor, while the executor still runs.
  void Stop();
  static constexpr std::chrono::milliseconds kStopDrain{2000};

  Role role() const EXCLUDES(stats_mu_);
  CoordinatorStats stats() const EXCLUDES(stats_mu_);
  // The failover windows (ms: old owner's znode first seen missing ->
  // promotion written) numbered from *seen on (0-based, in the order of
  // stats().failovers_timed), of the last kKeptWindows; sets *seen to the
  // count so far. For the metrics exporter.
  std::vector<double> FailoverWindowsSince(uint64_t* seen) const EXCLUDES(stats_mu_);
  static constexpr size_t kKeptWindows = 256;

  // Internal; public only for make_unique. Use Create.
  Coordinator(asio::any_io_executor executor, CoordinatorOptions options);

 private:
  class DoneGuard;

  // Session lifecycle (on strand_).
  void StartProbe(std::chrono::milliseconds delay);
  void OpenSession();
  void OnSessionState(zk::SessionState state);
  void DropSession(const std::string& why);
  // Logs `why` and calls options_.on_fatal, once.
  void Fatal(const Status& why);
  // Closes calls_ (every waiting reconcile resumes with `why`), then the
  // session.
  void CloseSession(const std::string& why);
  // Runs on_quiet_ once no reconcile runs and no request is in flight.
  void MaybeQuiet();

  // The reconcile steps (coroutines on strand_; see the header comment).
  asio::awaitable<void> Reconcile(DoneGuard guard);
  asio::awaitable<Status> ReconcileWith(zkawait::Calls& z);
  asio::awaitable<Status> EnsurePath(zkawait::Calls& z, const std::string& path);
  asio::awaitable<Result<bool>> Elect(zkawait::Calls& z);
  asio::awaitable<Status> PrepareAsLeader(zkawait::Calls& z);
  asio::awaitable<Status> ReadConfig(zkawait::Calls& z, cluster::ClusterConfig* config);
  asio::awaitable<Status> ReadNodes(zkawait::Calls& z, ClusterSnapshot* snap);
  asio::awaitable<Status> ReadRanges(zkawait::Calls& z, ClusterSnapshot* snap);
  // The nodes being decommissioned (R/draining; none while it is missing).
  asio::awaitable<Status> ReadDraining(zkawait::Calls& z, ClusterSnapshot* snap);
  asio::awaitable<void> Execute(zkawait::Calls& z, const Plan& plan);
  asio::awaitable<bool> Write(zkawait::Calls& z, const RangeWrite& w);
  asio::awaitable<bool> Bootstrap(zkawait::Calls& z, const std::vector<cluster::RangeInfo>& ranges);
  asio::awaitable<bool> OnWriteFailure(zkawait::Calls& z, const Status& st,
                                       const std::string& what);

  // [check(our candidate znode at its version), op]: a write that only
  // succeeds while we still hold the lowest candidate znode.
  std::vector<zk::ZkOp> AsLeader(std::optional<zk::ZkOp> op = std::nullopt) const;
  void SetRole(Role role, const std::string& leader) EXCLUDES(stats_mu_);
  // Leader -> kNone with a log line; the next reconcile elects again.
  void LoseLeadership(const std::string& why);
  void LogNotes(const std::vector<std::string>& notes);
  // A valid record read or written: its epoch into known_epochs_, the
  // record into last_valid_.
  void Remember(const cluster::RangeInfo& r);
  // Updates missing_since_ from the live nodes, and fills snap->dead_for.
  void TrackLiveness(ClusterSnapshot* snap);
  // The health gauges of stats() (ranges under rf, under min-insync, ...)
  // from what this reconcile read.
  void RecordHealth(const ClusterSnapshot& snap) EXCLUDES(stats_mu_);
  void LogPromotion(const RangeWrite& w, const std::string& what) EXCLUDES(stats_mu_);
  // Reconciles again after `after` (Plan::recheck_after), unless an earlier
  // recheck is already armed.
  void ArmRecheck(std::chrono::milliseconds after);
  // The failure detector's timer (coordinator_detector.cc): pings and
  // verdicts, the leader's only.
  void ArmDetector();
  void DetectorTick();
  template <typename F>
  void UpdateStats(F&& f) EXCLUDES(stats_mu_) {
    MutexLock lock(stats_mu_);
    f(stats_);
  }

  const CoordinatorOptions options_;
  const cluster::Paths paths_;
  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer recheck_timer_;
  std::optional<std::chrono::steady_clock::time_point> recheck_at_;  // armed for
  std::shared_ptr<ZkProbe> probe_;
  // On strand_; the pinger from Start (none when the detector is off).
  FailureDetector detector_;
  asio::steady_timer detector_timer_;
  std::unique_ptr<NodePinger> pinger_;
  std::unique_ptr<zk::Reconciler> reconciler_;

  // On strand_ only.
  std::unique_ptr<zk::Session> session_;
  std::shared_ptr<zkawait::Calls> calls_;  // session_'s calls; closed before it goes
  int running_reconciles_ = 0;             // Reconcile frames past their first check
  std::function<void()> on_quiet_;         // set by Stop while it drains
  bool stopping_ = false;
  bool connected_ = false;
  bool reconciler_started_ = false;
  bool fatal_raised_ = false;
  bool reconciled_once_ = false;    // a run has succeeded: refusals are no longer fatal
  bool base_ready_ = false;         // /rangekv, R, R/coordinator exist (this session)
  bool leader_setup_done_ = false;  // R/nodes, R/ranges exist (this term)
  std::string my_candidate_;        // name of the candidate znode this session created
  std::string leader_candidate_;    // when leading: our lowest candidate's name
  zk::ZnodeVersion leader_version_{0};
  std::string last_leader_;  // id of the leader last logged
  std::optional<cluster::ClusterConfig> warned_config_;
  std::map<RangeId, Epoch> known_epochs_;
  // When this coordinator last asked each range's owner to move it for
  // balance (planner.h, kBalanceCooldown). Lost on a failover: the next
  // leader may move a range sooner, no harm done.
  std::map<RangeId, std::chrono::steady_clock::time_point> balance_asked_;
  // The last valid record of each range read or written: whom a damaged
  // znode's data is with.
  std::map<RangeId, cluster::RangeInfo> last_valid_;
  std::set<NodeId> seen_live_;  // nodes seen live at least once (and still relevant)
  std::map<NodeId, std::chrono::steady_clock::time_point> missing_since_;
  std::chrono::steady_clock::time_point leader_since_{};
  std::set<std::string> active_notes_;
  LogLimiter notes_limiter_{std::chrono::seconds(30)};
  LogLimiter warn_limiter_{std::chrono::seconds(5)};

  mutable Mutex stats_mu_;
  CoordinatorStats stats_ GUARDED_BY(stats_mu_);
  std::deque<double> windows_ GUARDED_BY(stats_mu_);  // the last kKeptWindows failover windows, ms
  // Written only on strand_ (SetRole); read through role() there too.
  Role role_ GUARDED_BY(stats_mu_) = Role::kNone;
};

}  // namespace rangekv::coordinator
