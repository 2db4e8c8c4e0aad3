// kvnode/replication/replication_internal.h — the Leader and Follower roles
// of kvnode/replication/replicator.h (read that header first). Everything
// here runs on the replication thread only.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/exec.h"
#include "common/fs.h"
#include "kvnode/replication/replicator.h"

namespace rangekv::kvnode::replication {

using Clock = MonoClock;
using std::chrono::milliseconds;

inline std::string Name(RangeId id) { return "range " + std::to_string(id.value()); }

// The answer to an operator's request that succeeded (transfer, split).
inline proto::Response Pong(uint64_t id) {
  proto::Response r;
  r.id = id;
  r.kind = proto::Response::Kind::kPong;
  return r;
}

// An ISR change that failed without reaching ZooKeeper. UNAVAILABLE and
// TIMEOUT leave the outcome unknown: the change may have been written.
inline bool SurelyNotWritten(const Status& st) {
  return !st.ok() && st.code() != Code::kUnavailable && st.code() != Code::kTimeout;
}

// What the roles share: the executors, options, the transport.
class Context {
 public:
  Context(Env& env, exec::Executor& exec, exec::Executor& background, NodeId self,
          std::string life, ReplicationOptions options, Replicator::StoreOptionsFn store_options)
      : env(env),
        exec(exec),
        background(background),
        self(std::move(self)),
        life(std::move(life)),
        options(options),
        store_options(std::move(store_options)),
        started(Clock::now()) {}

  // Sends req to the node at address; done runs on this thread.
  void Send(const std::string& address, proto::Request req, milliseconds timeout,
            std::function<void(Result<proto::Response>)> done) {
    req.id = next_id_++;
    transport->Send(address, std::move(req), timeout, std::move(done));
  }
  // done runs on this thread with the outcome (never when no changer is
  // set: the node is stopping).
  void RequestIsrChange(const IsrChange& change, std::function<void(Status)> done) {
    if (!isr_changer) return;
    exec::Executor& here = exec;
    isr_changer(change, [&here, done = std::move(done)](Status st) {
      here.Post([done, st = std::move(st)] { done(st); });
    });
  }
  // The hint that a split or merge of `range` (and `right`) follows as
  // soon as the fenced logs are committed (IsrChange::prefetch).
  void PrefetchChange(RangeId range, RangeId right = RangeId(0)) {
    if (!isr_changer) return;
    IsrChange hint;
    hint.range = range;
    hint.merge_right = right;
    hint.prefetch = true;
    isr_changer(hint, nullptr);
  }
  fs::FileSystem& fs() { return env.fs(); }
  // A failpoint (ReplicationOptions::step_hook).
  void Step(std::string_view step, RangeId range) const {
    if (options.step_hook) options.step_hook(step, range);
  }

  Env& env;
  exec::Executor& exec;        // this thread
  exec::Executor& background;  // slow jobs (snapshot installs)
  std::unique_ptr<ReplicationTransport> transport;
  const NodeId self;
  const std::string life;  // this process (cluster_map.h)
  const ReplicationOptions options;
  const Replicator::StoreOptionsFn store_options;
  const Clock::time_point started;  // a restarted process knows no earlier promise
  Replicator::IsrChangeFn isr_changer;
  Replicator::NewsFn news_listener;
  int min_insync = 1;
  // Completed as owner (metrics; read from other threads).
  std::atomic<uint64_t> splits_done{0};
  std::atomic<uint64_t> transfers_done{0};
  std::atomic<uint64_t> merges_done{0};
  // Snapshot bytes this process copied from owners (new, moved or rebuilt
  // copies of ranges).
  std::atomic<uint64_t> copied_bytes{0};
  // The copies this node makes share one byte budget (--move-rate): the
  // earliest its next snapshot chunk may be asked for (this thread only).
  Clock::time_point copy_paced_until{};

 private:
  uint64_t next_id_ = 1;
};

// Progress of one other replica, as the owner sees it: of one copy of the
// range in one process of it (life, copy); a new one starts over.
struct Progress {
  std::string life;
  uint64_t copy = 0;
  Seq acked{0};                    // every record <= acked is durable there
  bool fetched = false;            // sent at least one fetch to this leader
  Clock::time_point last_fetch{};
  Clock::time_point caught_up_at{};  // last time it had acked the whole log
  std::optional<Clock::time_point> answered_at;  // when its last answer left
  Seq end_at_answer{0};            // the owner's log end when that answer left
  Seq hwm_told{0};                 // the commit point its last answer carried
  uint64_t news_told = 0;          // the Leader's news_seq_ its answers carried
  Clock::time_point lease_until{};
  Clock::time_point isr_request_at{};  // last ISR change asked for it
  // When the map last showed it leave the ISR: it is added again only
  // after a fetch that arrived later (a dead replica's last ack may equal
  // an idle log's end, and its znode outlives it).
  Clock::time_point left_isr_at{};
};

class Leader {
 public:
  Leader(Context& ctx, HeldRange range, Clock::time_point serve_after);
  ~Leader();
  Leader(const Leader&) = delete;
  Leader& operator=(const Leader&) = delete;

  Epoch epoch() const { return range_.info.epoch; }
  const std::shared_ptr<RangeSlot>& slot() const { return range_.slot; }
  // Same epoch, new ISR / replicas / min-insync.
  void Update(HeldRange range);
  void OnFetch(proto::Request req, Replicator::Reply reply);
  void OnSnapshot(proto::Request req, Replicator::Reply reply);
  // A transfer of the range to req.transfer_to (leader_handoff.cc).
  void OnTransfer(proto::Request req, Replicator::Reply reply);
  // A split of the range at req.ops[0].key (leader_split.cc).
  void OnSplit(proto::Request req, Replicator::Reply reply);
  // An operator's request (transfer, split) at req.epoch (0: any): refused
  // with STALE_EPOCH when this leader is at another, else start(done) runs
  // and the request is answered pong or with the error start returned or
  // done got.
  void OnOperatorRequest(const proto::Request& req, Replicator::Reply reply,
                         const std::function<Status(std::function<void(Status)>)>& start);
  void OnLog();
  void Tick();
  proto::RangeStatus Report() const;
  const cluster::RangeInfo& info() const { return range_.info; }

  // This leader's part in a merge (leader_merge.cc; MergeRun drives it).
  // Why it cannot be fenced for a merge now, or OK.
  Status MergeCheck() const;
  // Fences writes (kMerging; reads go on) or lifts the fence.
  void SetMergeFence(bool on);
  // The log's end once every record the store took is written and
  // committed; nullopt while some are not.
  std::optional<Seq> MergePoint() const;
  // ZooKeeper holds the merge: this leader never writes again (the range
  // is gone from the map; its role ends at the next Update).
  void MergeWritten();
  // The merge's outcome is unknown: the ownership is given up (a new
  // epoch follows, as after an unknown split).
  void MergeUnknown();
  // Tells every replica, in the answer to its parked fetch (at once) or to
  // its next one, the range znodes a split or merge of this range wrote
  // (Replicator "news"); for kNewsFor, once per replica copy.
  void ShareNews(const cluster::ClusterMap::Written& wrote);
  // Small, cold and unchanged for merge_delay, serving writes: a range
  // that merges with a neighbour by itself (ReplicationOptions). As last
  // judged (once a second, CheckAutoSplit).
  bool Mergeable() const { return range_.slot->mergeable(); }

 private:
  struct Waiter {
    proto::Request req;
    Replicator::Reply reply;
    Clock::time_point deadline;
  };
  void Begin();
  bool InIsr(const NodeId& n) const;
  int IsrAfterRemovals() const;  // the ISR's size once asked removals land
  // The members the commit point and the read lease wait for: the ISR of
  // the map plus those this owner asked ZooKeeper to add (once asked, one
  // may be in ZooKeeper's ISR before the map here says so, and may be
  // promoted: it must hold everything committed).
  std::vector<NodeId> Counted() const;
  // Accepts the fetch's copy of the replica, or says why not.
  Status CheckCopy(const proto::FetchArgs& f, Progress& p);
  void RecomputeCommit();
  void RefreshAdmission();
  // Answers a fetch with records if there are any (or at the deadline).
  bool TryAnswer(Waiter& w, bool at_deadline);
  // Answers every waiting fetch that has records or news of the commit point.
  void AnswerWaiters();
  void Answer(const std::string& replica, proto::Response resp, const Replicator::Reply& reply);
  void CheckIsr();
  // The handoff of a transfer (leader_handoff.cc): writes and reads stop,
  // every record is committed and held by the target, then the owner asks
  // ZooKeeper to make the target owner at the next epoch.
  struct Handoff {
    NodeId target;
    std::string life;  // the target's process, as the map shows it live
    Clock::time_point deadline;
    std::function<void(Status)> done;
    bool asked = false;
    Clock::time_point since{};  // fetches of the target count from here
  };
  bool HandingOff() const { return handoff_.has_value() || handed_off_; }
  // A split (leader_split.cc): writes stop, every record is committed, the
  // owner asks ZooKeeper for the split at that seq, and writes resume once
  // the map (and the store) show the narrowed range.
  struct SplitFence {
    std::string key;
    uint64_t generation = 0;  // the range's generation when asked
    Clock::time_point deadline;
    std::function<void(Status)> done;
    Clock::time_point fenced{};  // for the log: where a pause went
    Clock::time_point asked_at{};
    Seq at{0};            // the split point, once asked
    bool asked = false;
    bool written = false;  // ZooKeeper holds the split
  };
  void CheckSplit();
  void EndSplit(Status st);
  // Starts a split at key (what OnSplit checks); the error when it cannot.
  Status StartSplit(const std::string& key, std::function<void(Status)> done);
  // A split by size or load, when one is due (at most once a second).
  void CheckAutoSplit();
  bool JudgeMergeable(Clock::time_point now);
  Clock::time_point next_auto_check_{};
  uint64_t load_count_ = 0;                     // slot's requests() at the last check
  uint32_t last_qps_ = 0;                       // requests a second, last check
  void CheckHandoff();
  void EndHandoff(Status st);
  // Starts a handoff to target (what OnTransfer checks); the error when it
  // cannot. done gets the outcome.
  Status StartTransfer(const NodeId& target, std::function<void(Status)> done);
  // A move the coordinator asked for (RangeInfo::move_to).
  void CheckMoveAsked();
  Clock::time_point next_move_try_{};
  void ResignAfterHandoff();

  Context& ctx_;
  HeldRange range_;
  std::shared_ptr<RangeStore> store_;
  std::shared_ptr<bool> alive_;
  const Clock::time_point serve_after_;
  Seq takeover_last_{0};  // the log's end when this leadership began
  Seq commit_point_{0};   // highest commit point handed to the store
  bool begun_ = false;
  bool begin_failed_ = false;
  bool deposed_ = false;
  std::map<NodeId, Progress> progress_;
  // Members this owner asked to add, until the map shows them in the ISR
  // or the request is known not to have been written.
  std::set<NodeId> pending_adds_;
  // Members this owner asked to remove, until the map no longer shows them
  // or the request is known not to have been written: they no longer count
  // toward min-insync when deciding whether another may go.
  std::set<NodeId> pending_removes_;
  std::vector<Waiter> waiters_;
  std::optional<SnapshotExport> export_;
  // The log's last seq when the store last handed export_ over. The store
  // judges an export fresh by bytes (RangeSnapshots::Export) and may hand
  // the same one back: counting records from here, not from its replay
  // point, the owner does not ask again until as many more are written.
  Seq export_checked_at_{0};
  // An export is being prepared on the store's snapshot worker (it may take
  // a whole snapshot); its result arrives through OnExported.
  bool exporting_ = false;
  std::optional<Status> export_error_;
  Clock::time_point created_;
  std::optional<Handoff> handoff_;
  std::optional<SplitFence> split_;
  bool merging_ = false;  // fenced for a merge (MergeRun)
  // The last news (ShareNews), its number (a replica's Progress::news_told
  // says whether it was told) and until when it is told.
  std::vector<proto::RangeNews> news_;
  uint64_t news_seq_ = 0;
  Clock::time_point news_until_{};
  // The handoff was written, or may have been: this owner never serves
  // again at this epoch.
  bool handed_off_ = false;
  // The handoff's outcome is unknown: the ownership is given up instead.
  bool must_resign_ = false;
  Clock::time_point resign_at_{};
};

class Follower {
 public:
  Follower(Context& ctx, HeldRange range, Clock::time_point not_before);
  ~Follower();
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  void Update(HeldRange range);
  // The end of the promise made on receiving the owner's last answer, and
  // the epoch of the owner it was made to.
  Clock::time_point promise_until() const { return promise_until_; }
  // A promise this process made earlier (another role, or the parent of a
  // range split off): kept as if made here, so a later owner of a newer
  // epoch is not followed before it runs out.
  void KeepPromise(Clock::time_point until, Epoch epoch) {
    if (until > promise_until_) {
      promise_until_ = until;
      promise_epoch_ = epoch;
    }
  }
  Epoch promise_epoch() const { return promise_epoch_; }
  const std::shared_ptr<RangeSlot>& slot() const { return range_.slot; }
  // It has held, since it started, every record the owner had committed
  // when it last answered, in the copy the slot holds now (a copy reopened
  // or rebuilt after an I/O error has to catch up again).
  bool caught_up() const;
  proto::RangeStatus Report() const;
  // The owner this follows, when its stream is lost (cluster_map.h
  // "unreachable"): the last fetch to it failed and none has been answered
  // since, or the one in flight has waited well past its long poll.
  std::optional<NodeId> LostOwner(Clock::time_point now) const;

 private:
  void Schedule(Clock::time_point at);
  void SendFetch();
  void OnFetched(Result<proto::Response> r);
  void OnAppended(Result<Seq> durable, Seq hwm, size_t bytes);
  // When the next chunk of a copy may be asked for (the node's budget),
  // after `bytes` that were asked for at `asked`.
  Clock::time_point PaceCopy(size_t bytes, Clock::time_point asked);
  // Hands a split's or merge's news (Replicator::NewsFn) to the node.
  void TellNews(const std::vector<proto::RangeNews>& news);
  void Retry(const Status& why);
  void StartSnapshot();
  // The copy a previous life of this node left in snap_path_, when it is
  // of the owner's snapshot this follower would copy (follower_copy.cc).
  bool ResumeCopy();
  void SaveCopyIdentity();
  void FetchChunk();
  void OnChunk(Result<proto::Response> r);
  void InstallSnapshot();
  void OnInstalled(Result<std::shared_ptr<RangeStore>> fresh);
  void RefreshStaleOk();

  Context& ctx_;
  HeldRange range_;
  std::shared_ptr<bool> alive_;
  std::unique_ptr<exec::Timer> timer_;
  bool in_flight_ = false;
  Clock::time_point not_before_;
  Clock::time_point promise_until_{};
  Epoch promise_epoch_{0};
  Seq hwm_{0};
  bool caught_up_ = false;
  uint64_t copy_ = 0;  // the store instance caught_up_ speaks of
  std::string last_error_;
  int quick_retries_ = 0;  // NOT_OWNER retries left at the short delay
  // Snapshot copy in progress.
  bool snapshotting_ = false;
  bool restart_copy_ = false;  // an install failed: copy again when the timer fires
  proto::SnapshotChunk snap_;  // replay_from/end/epoch/total of the copy, data unused
  uint64_t snap_offset_ = 0;
  std::unique_ptr<fs::AppendFile> snap_file_;
  std::string snap_path_;
  Clock::time_point asked_at_{};  // when the last fetch or chunk was asked for
  // The fetch in flight: when it was sent, and to which owner.
  std::optional<std::pair<Clock::time_point, NodeId>> fetch_sent_;
  // Bumped when the map names a new owner while a fetch is in flight to
  // the old one: that fetch is abandoned, its answer ignored.
  uint64_t fetch_gen_ = 0;
  bool stream_lost_ = false;      // the last fetch to the owner failed (transport)
  bool resume_tried_ = false;     // a copy is resumed at most once per follower
  bool installing_ = false;  // on the background executor
};

// A merge of two adjacent ranges this process owns (docs/elastic.md §4),
// on the replication thread: fence both, wait until both logs are
// committed, ask ZooKeeper for the merge, end with the outcome. The
// leaders are looked up by id at every step (a role may end meanwhile).
class MergeRun {
 public:
  using Lookup = std::function<Leader*(RangeId)>;
  MergeRun(Context& ctx, Lookup lookup, RangeId left, RangeId right,
           std::function<void(Status)> done);
  ~MergeRun();
  // Fences both; the error (nothing changed, done never called) when one
  // cannot be fenced.
  Status Start();
  // Takes the next step when it can; true once finished (done has run).
  bool Poll();

 private:
  Status Check() const;
  void Finish(Status st);
  void Ask(Leader& left, Leader& right, Seq left_at, Seq right_at);

  Context& ctx_;
  Lookup lookup_;
  const RangeId left_;
  const RangeId right_;
  std::function<void(Status)> done_;
  Clock::time_point deadline_{};
  bool asked_ = false;
  bool finished_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The production transport: one pipelined TCP connection per peer (common/net),
// on the Asio executor `exec` (an exec::AsioExecutor).
std::unique_ptr<ReplicationTransport> NewTcpTransport(exec::Executor& exec,
                                                      std::shared_ptr<net::TlsContext> tls);

// Splits a fetch answer's bytes into whole records. CORRUPTION when they
// do not parse.
Result<std::vector<LogRecord>> SplitRecords(const std::string& bytes);

}  // namespace rangekv::kvnode::replication
