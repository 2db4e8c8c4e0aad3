// client/src/cluster_view.h — the smart client's copy of the cluster map.
//
// A ClusterView holds one zk::Session (reads) and one zk::Reconciler (a
// persistent recursive watch on /rangekv/<cluster> plus a 5 s timer) and
// keeps the latest ClusterMap it read. Each reconcile run is level-triggered
// (docs/design.md §4): Sync the root, then re-read
//
//   | read                          | into                         |
//   |-------------------------------|------------------------------|
//   | children of R/nodes, each Get | ClusterMap::live_nodes       |
//   | children of R/ranges, each Get| ClusterMap::ranges           |
//   | Get R/config                  | ClusterMap::config           |
//
// and replaces the map as a whole (readers never see half a run). A run
// that read across a split (a hole the previous map did not have) is read
// again before it is published (Torn). A missing
// nodes/ or ranges/ parent reads as empty; a record that does not decode is
// logged and skipped. A run that fails part-way keeps the previous map; the
// next trigger retries. Open refuses a cluster whose root does not appear
// within its timeout, naming the clusters that ZooKeeper holds; a root
// deleted later reads as an empty map. When the read session has expired
// (ZooKeeper unreachable for longer than the session timeout), the next run
// opens a new one first.
//
// Threads: ZooKeeper work runs on a private io_context with its own thread,
// never on the client's I/O threads. Open blocks (caller's thread) for the
// session and the first map; everything else is thread-safe and non-blocking.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "common/asio.h"
#include "common/cluster_map.h"
#include "common/mutex.h"
#include "common/protocol.h"
#include "common/zk/reconciler.h"
#include "common/zk/session.h"
#include "rangekv/status.h"

namespace rangekv::client_internal {

// Corrects map from a node's NOT_OWNER or STALE_EPOCH answer that carries
// the range's layout (hint.bounds): the range takes the hinted bounds,
// owner and epoch unless map already knows it at a newer (generation,
// epoch); other ranges of an older generation that overlap those bounds
// are cut back to what lies outside them, or dropped (a hole is routed
// after a re-read, never guessed). The owner's address joins the live
// nodes when map does not know the node. True when map changed.
bool ApplyHint(cluster::ClusterMap& map, const proto::OwnerHint& hint);

class ClusterView {
 public:
  // Connects to ZooKeeper and reads the first map. UNAVAILABLE when the
  // session or the first read does not complete within timeout; BAD_REQUEST
  // for a bad connect string or cluster name, or for a cluster that does not
  // exist in that ZooKeeper by the timeout; UNAUTHENTICATED at once when
  // ZooKeeper refuses `auth` or lets it not read the map. Never call on an
  // Asio thread.
  static Result<std::unique_ptr<ClusterView>> Open(std::string_view zk_connect,
                                                   std::string_view cluster,
                                                   std::chrono::milliseconds timeout,
                                                   std::optional<zk::ZkAuth> auth = std::nullopt);
  // A view of a fixed map with no ZooKeeper behind it, for tests of the
  // Router: Refresh does nothing; Replace publishes another map.
  static std::unique_ptr<ClusterView> Fixed(cluster::ClusterMap map);
  void Replace(cluster::ClusterMap map) EXCLUDES(mu_);
  ~ClusterView();
  ClusterView(const ClusterView&) = delete;
  ClusterView& operator=(const ClusterView&) = delete;

  // The latest map (never null after Open succeeded).
  std::shared_ptr<const cluster::ClusterMap> Current() const EXCLUDES(mu_);
  // Asks for a re-read soon (coalesced). Non-blocking.
  void Refresh();
  // Publishes the current map corrected by hint (ApplyHint), until the
  // next read replaces it. Non-blocking.
  void Learn(const proto::OwnerHint& hint) EXCLUDES(mu_);
  // Completed reads so far.
  uint64_t generation() const EXCLUDES(mu_);
  // Called with the previous and the new map each time a read of
  // ZooKeeper (or Replace) publishes one, never for a map Learn patched;
  // on the thread that publishes. Setting it waits for a call under way;
  // nullptr ends the calls.
  using ReadListener =
      std::function<void(const cluster::ClusterMap& before, const cluster::ClusterMap& after)>;
  void SetReadListener(ReadListener fn) EXCLUDES(listener_mu_);

 private:
  ClusterView(std::string cluster);
  static constexpr std::chrono::milliseconds kExistsPoll{50};
  // OK once R exists; BAD_REQUEST naming the clusters that do exist when it
  // still does not at the deadline. Blocking (Open only).
  Status AwaitClusterExists(std::string_view cluster, const std::string& zk,
                            std::chrono::steady_clock::time_point deadline);
  struct ReadState;
  void Reconcile(zk::Reconciler::Done done) EXCLUDES(mu_);
  void WarnReadFailed(const Status& e) EXCLUDES(mu_);
  // read: the map comes from ZooKeeper (or Replace), not from Learn.
  void Publish(std::shared_ptr<cluster::ClusterMap> map, bool read) EXCLUDES(mu_, listener_mu_);
  // A read that leaves a hole where the published map had none is taken
  // for one that straddled a split (znodes are read one by one) and read
  // again, up to kMaxTornReads times in a row; then it is published (a
  // hole an operator made stays a hole).
  bool Torn(const cluster::ClusterMap& read) EXCLUDES(mu_);
  static constexpr int kMaxTornReads = 3;

  cluster::Paths paths_;
  zk::SessionOptions session_options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<zk::Session> session_;  // replaced only on io_
  std::unique_ptr<zk::Reconciler> reconciler_;

  mutable Mutex mu_;
  CondVar cv_;
  std::shared_ptr<const cluster::ClusterMap> map_ GUARDED_BY(mu_);
  uint64_t generation_ GUARDED_BY(mu_) = 0;
  bool reading_ GUARDED_BY(mu_) = false;  // a reconcile run is in flight
  Status refused_ GUARDED_BY(mu_);        // the latest read ZooKeeper refused (ZNOAUTH)
  int torn_reads_ GUARDED_BY(mu_) = 0;    // reads in a row not published (Torn)
  // Failed map reads are logged once per kReadWarnEvery, with how many
  // were not (a ZooKeeper server going away fails dozens in a second).
  std::chrono::steady_clock::time_point read_warned_at_ GUARDED_BY(mu_){};
  uint64_t read_failures_unlogged_ GUARDED_BY(mu_) = 0;
  Mutex listener_mu_;                     // held while the listener runs
  ReadListener listener_ GUARDED_BY(listener_mu_);
};

}  // namespace rangekv::client_internal
