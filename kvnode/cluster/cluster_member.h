// kvnode/cluster/cluster_member.h — a kvnode's life in the cluster: its ZooKeeper
// session, its ephemeral node znode, and following the range assignments of
// the cluster map (docs/design.md §3-4; layout and formats in common/cluster_map.h).
//
// What it does, level-triggered (docs/design.md §4: watches are triggers, not the
// truth):
//
//   1. Session: open a zk::Session; while ZooKeeper cannot be reached (closed
//      port, unresolvable host) log with growing spacing and keep trying —
//      never exit, never hang silently. The node serves nothing meanwhile
//      (RANGE_UNAVAILABLE "not yet joined").
//   2. Register: create the ephemeral R/nodes/<id> holding NodeInfo (address,
//      admin address, start time, incarnation). If it exists:
//        - same incarnation: the znode of this data directory's previous
//          process (kill -9 and restart within the session timeout):
//          delete it and create ours;
//        - other incarnation: a wiped or replaced data directory restarted
//          before its previous process's session expired, or a second
//          process with this id. Wait (logging why) for the znode to go;
//          if the same session still holds it after twice the session
//          timeout, fatal: "node id X is already registered by a live node
//          at ADDR" (main exits 2).
//   3. Reconcile, on every watch event (zk::Reconciler on R: persistent
//      recursive watch, coalesced), every 5 s, and after each
//      (re-)registration: Sync R, re-read nodes/ and ranges/, then
//      Node::Apply (open / close stores, swap the routing table). A range
//      znode that does not decode is logged once per znode version and
//      ignored: the range keeps its last valid version, if one was seen.
//      If our own node znode is gone or belongs to another session, go back
//      to step 2.
//   4. Session loss: a session reported expired (e.g. after SIGSTOP past
//      the timeout), or a lost connection, suspends serving at once
//      (RANGE_UNAVAILABLE, stores stay open). The C client notices a
//      silent server only after two thirds of the timeout, so the server
//      may expire the session, and others own our ranges, from a third of
//      the timeout after the last exchange: suspending when the loss is
//      noticed keeps that third as a margin for clock rates. A reconnect
//      within the timeout resumes after a re-read, an expired session is
//      replaced by a new one, then steps 2-3 run again.
//
// Session states as the member sees them:
//
//   none --open--> connecting --> connected --register--> registered --reconcile--> serving
//    ^  (retry,       |  ^           |                                                |
//    |   backoff)     |  +-----------+ (connection lost, resumed within the timeout) |
//    +-- expired / auth failed  (disconnected: suspend at once) <--------------------+
//
// Threads: every blocking step (ZooKeeper calls, Node::Apply's disk I/O)
// runs on the member's own thread, never on an Asio thread. Session
// callbacks and the Reconciler run on a private one-thread io_context and
// only hand work to the member thread (under a mutex, with a condition
// variable). So requests never wait for ZooKeeper or the disk.
//
// Lifetime: Start() returns at once; the node must outlive the member. Stop()
// (or the destructor) stops the watch, ends the member thread (waiting for a
// step in progress, bounded by the ZooKeeper call timeout), and closes the
// session, which deletes the ephemeral znode at once. Stores are not closed
// here: Node::Close does that.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/cluster_map.h"
#include "common/zk/auth.h"
#include "kvnode/server/metrics.h"
#include "kvnode/server/node.h"
#include "kvnode/server/node_options.h"
#include "rangekv/status.h"

namespace rangekv::kvnode {

struct MemberOptions {
  std::string zk_connect;  // as --zk
  std::string cluster{kDefaultClusterName};
  std::chrono::milliseconds session_timeout{6000};
  std::chrono::milliseconds reconcile_period{5000};
  cluster::NodeInfo self;  // what R/nodes/<id> holds; self.id == node's id
  // ZooKeeper credentials (--zk-auth-file); with them every znode the node
  // creates gets the cluster's ACL (zk::ClusterAcl). None: anonymous, open.
  std::optional<zk::AuthFile> auth;
};

class ClusterMember {
 public:
  // Called once, on the member thread, when the member cannot go on (another
  // live node has our id, or ZooKeeper refuses to let it register). The member thread ends
  // afterwards; call Stop().
  using FatalCallback = std::function<void(const Status&)>;

  // Starts the member thread and the watch. metrics may be null.
  // BAD_REQUEST for options the watch channel refuses (connect string).
  static Result<std::unique_ptr<ClusterMember>> Start(MemberOptions options, Node& node,
                                                      NodeMetrics* metrics, FatalCallback on_fatal);
  ~ClusterMember();  // Stop()
  ClusterMember(const ClusterMember&) = delete;
  ClusterMember& operator=(const ClusterMember&) = delete;

  // Idempotent. Must not be called from the FatalCallback.
  void Stop();

  // Asks for an ISR change (from the replicator, any thread, never blocks):
  // the member thread writes it as a compare-and-set of the range znode
  // (kvnode::ApplyIsrChange decides it), then re-reads the map; done gets
  // the outcome on the member thread.
  void QueueIsrChange(IsrChange change, std::function<void(Status)> done);
  // Any thread, never blocks: news of a split or merge of range `from`
  // from its owner (Replicator::NewsFn), applied by a thread of the
  // member's own (Node::ApplyNews) while the member thread may be reading
  // the map.
  void QueueNews(RangeId from, cluster::ClusterMap::Written news);

 private:
  ClusterMember(MemberOptions options, Node& node, NodeMetrics* metrics, FatalCallback on_fatal);
  class Worker;
  std::unique_ptr<Worker> worker_;
};

}  // namespace rangekv::kvnode
