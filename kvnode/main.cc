// kvnode — the rangekv storage node. Flags: kvnode/server/node_options.h.
//
// Exit codes: 0 after SIGTERM/SIGINT with stores closed cleanly; 1 when
// closing the stores failed; 2 for bad flags, a data directory or address
// that cannot be used, a standalone node's store that cannot be opened
// (corrupt), or (cluster mode) a node id that another live node has
// registered, or ZooKeeper refusing to let it register (credentials). In
// cluster mode a range that cannot be opened is logged and answered
// RANGE_UNAVAILABLE; the node stays up. Every error is one line on stderr.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/metrics/metrics.h"
#include "common/mutex.h"
#include "common/net/tls.h"
#include "common/zk/auth.h"
#include "kvnode/cluster/cluster_member.h"
#include "kvnode/server/metrics.h"
#include "kvnode/server/node.h"
#include "kvnode/server/node_options.h"
#include "kvnode/server/request_handler.h"
#include "kvnode/server/server.h"

namespace rangekv::kvnode {
namespace {

constexpr int kExitStopped = 0;
constexpr int kExitCloseFailed = 1;
constexpr int kExitBadStart = 2;

// Raised by the cluster member when the node cannot go on (see FatalStop).
constexpr int kFatalSignal = SIGUSR1;

// Blocks the stop signals in this thread and every thread started later
// (they inherit the mask), so only the sigwait in Serve() receives them.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, kFatalSignal);
  sigaddset(&set, SIGHUP);  // reload the TLS files
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // Peers that vanish must not kill the process; Asio reports EPIPE instead.
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// The reason the member thread gave up, handed to main: the status is
// stored, then kFatalSignal wakes main's sigwait.
class FatalStop {
 public:
  void Raise(const Status& st) EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      status_ = st;
    }
    ::kill(::getpid(), kFatalSignal);
  }
  Status status() EXCLUDES(mu_) {
    MutexLock lock(mu_);
    return status_;
  }

 private:
  Mutex mu_;
  Status status_ GUARDED_BY(mu_);
};

int CannotStart(const Status& st) {
  LOG_ERROR("cannot start: " << st.ToString());
  return kExitBadStart;
}

// What others dial for an address bound here: `advertise` when given, else
// the bound address with a wildcard host replaced by this host's name.
std::string Advertised(const std::optional<HostPort>& advertise, const std::string& bound) {
  if (advertise) return FormatHostPort(*advertise);
  auto hp = ParseHostPort(bound);
  if (!hp.ok() || !IsWildcardHost(hp->host)) return bound;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0) hp->host = name;
  return FormatHostPort(*hp);
}

uint64_t WallClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

int Serve(const NodeOptions& o) {
  sigset_t stop_signals = BlockStopSignals();  // before any thread exists
  const uint64_t started_ms = WallClockMs();
  // Cheap checks first: a bad address fails before the stores are recovered.
  // TLS: the server side for clients and other nodes' fetches, the client
  // side (the same certificate) for this node's fetches from owners.
  std::shared_ptr<net::TlsContext> tls_server, tls_client;
  if (!o.tls_ca.empty()) {
    const net::TlsFiles files{o.tls_ca, o.tls_cert, o.tls_key};
    auto s = net::TlsContext::Load(files, net::TlsContext::Role::kServer);
    if (!s.ok()) return CannotStart(s.status());
    auto c = net::TlsContext::Load(files, net::TlsContext::Role::kClient);
    if (!c.ok()) return CannotStart(c.status());
    tls_server = *s;
    tls_client = *c;
  }
  auto zk_auth = zk::LoadAuthFileFlag(o.zk_auth_file);
  if (!zk_auth.ok()) return CannotStart(zk_auth.status());
  metrics::Registry registry;
  NodeMetrics node_metrics(registry);
  auto server = Server::Bind(ServerOptions{o.listen, o.io_threads, kDefaultMaxFrame, tls_server,
                                           node_metrics.refused_connections()});
  if (!server.ok()) return CannotStart(server.status());
  std::unique_ptr<metrics::HttpEndpoint> admin;
  if (o.admin) {
    auto endpoint = metrics::HttpEndpoint::Start(o.admin->host, o.admin->port, registry);
    if (!endpoint.ok()) return CannotStart(endpoint.status());
    admin = std::move(*endpoint);
  }
  NodeConfig config{o.data_dir, o.id, o.fsync, o.fsync_interval, {}};
  config.replication.lease = o.lease;
  config.replication.isr_lag_timeout = o.isr_lag;
  config.replication.split_bytes = o.split_bytes;
  config.replication.split_qps = o.split_qps;
  config.replication.snapshot_bytes_per_sec = o.move_rate_bytes;
  config.replication.split_load_window = o.split_load_window;
  config.replication.merge_delay = o.merge_delay;
  config.replication.tls = tls_client;
  config.segment_bytes = o.segment_bytes;
  config.snapshot_after_bytes = o.snapshot_after_bytes;
  config.keep_log_records = o.keep_log_records;
  bool cluster = o.mode == NodeMode::kCluster;
  auto node = cluster ? Node::OpenCluster(config) : Node::OpenStandalone(config);
  if (!node.ok()) return CannotStart(node.status());
  RequestHandler handler(**node, &node_metrics);
  // Other nodes' fetches are answered on the replication thread itself
  // (connection.h, "Fetch connections move"); they are closed below before
  // the Node's Close ends that thread.
  if ((*node)->replicator() != nullptr && (*node)->replicator()->io_context() != nullptr) {
    (*server)->ServeFetchesOn(*(*node)->replicator()->io_context());
  }
  if (Status st = (*server)->Start(handler); !st.ok()) {
    (*server)->Stop();  // threads that did start must end before the handler goes
    return CannotStart(st);
  }
  const std::string address = Advertised(o.advertise, (*server)->local_address());
  const std::string admin_address =
      admin ? Advertised(o.advertise_admin, admin->address()) : std::string();
  LOG_INFO("node " << (*node)->id().str() << ": data " << o.data_dir << ", fsync "
                   << FsyncPolicyName(o.fsync) << ", " << (*server)->io_threads()
                   << " I/O threads, "
                   << (cluster ? "cluster " + o.cluster + " via ZooKeeper " + o.zk
                               : "standalone range " + std::to_string(kStandaloneRange.value())));
  if (admin) LOG_INFO("metrics on http://" << admin->address() << "/metrics");
  LOG_INFO("serving on " << (*server)->local_address()
                         << (cluster && address != (*server)->local_address()
                                 ? ", advertised as " + address
                                 : std::string())
                         << (tls_server ? " (TLS, mutual certificates)" : ""));

  FatalStop fatal;
  std::unique_ptr<ClusterMember> member;
  // The member exists only after Start; ISR changes asked before that wait.
  auto member_at = std::make_shared<std::atomic<ClusterMember*>>(nullptr);
  if (cluster) {
    MemberOptions mo;
    mo.zk_connect = o.zk;
    mo.cluster = o.cluster;
    mo.session_timeout = o.session_timeout;
    mo.auth = *zk_auth;
    mo.self = cluster::NodeInfo{(*node)->id(), address, admin_address, started_ms,
                                (*node)->data_dir().incarnation()};
    mo.self.replaces = o.replaces;
    mo.self.life = (*node)->life();
    mo.self.suspect = (*node)->suspect();
    (*node)->replicator()->SetIsrChanger([member_at](IsrChange c, std::function<void(Status)> done) {
      if (ClusterMember* m = member_at->load()) {
        m->QueueIsrChange(std::move(c), std::move(done));
      } else if (done) {
        done(Status(Code::kUnavailable, "the node is not in the cluster (yet or any more)"));
      }
    });
    (*node)->replicator()->SetNewsListener(
        [member_at](RangeId from, cluster::ClusterMap::Written news) {
          if (ClusterMember* m = member_at->load()) m->QueueNews(from, std::move(news));
        });
    auto started = ClusterMember::Start(mo, **node, &node_metrics,
                                        [&fatal](const Status& st) { fatal.Raise(st); });
    if (!started.ok()) {
      (*server)->Stop();
      return CannotStart(started.status());
    }
    member = std::move(*started);
    member_at->store(member.get());
  } else {
    node_metrics.SetRangesServed((*node)->range_count());
    node_metrics.SetJoined(true);
  }

  int sig = SIGTERM;
  while (true) {
    (void)sigwait(&stop_signals, &sig);  // fails only for an invalid set
    if (sig != SIGHUP) break;
    if (!tls_server) {
      LOG_INFO("SIGHUP: no TLS files to reload");
      continue;
    }
    Status st = tls_server->Reload();
    if (st.ok()) st = tls_client->Reload();
    if (st.ok()) {
      LOG_INFO("SIGHUP: TLS files reloaded; new connections use them");
    } else {
      LOG_WARN("SIGHUP: " << st.message() << "; keeping the files loaded before");
    }
  }
  Status why = sig == kFatalSignal ? fatal.status() : Status();
  if (why.ok()) {
    LOG_INFO("received " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << "; shutting down");
  } else {
    LOG_ERROR(why.message());
  }
  Status closed;
  if (cluster) {
    // Leave the cluster first: closing the session removes our node znode at
    // once, so the coordinator promotes other in-sync replicas now instead
    // of after the session timeout. No ISR change is asked from here on
    // (a stopping owner must not drop its replicas from the ISR).
    (*node)->replicator()->SetIsrChanger(nullptr);
    (*node)->replicator()->SetNewsListener(nullptr);
    member_at->store(nullptr);
    member.reset();
    // Writes still waiting for their replicas can no longer be committed
    // here: closing the stores answers them UNAVAILABLE (outcome unknown to
    // the client; the new owner may still commit them), so the drain below
    // does not wait for acknowledgements that cannot come. Fetch
    // connections moved to the replication thread close before it ends.
    (*server)->CloseFetches();
    closed = (*node)->Close();
    (*server)->Stop();
  } else {
    (*server)->Stop();  // drains in-flight requests first
    closed = (*node)->Close();  // joins the store threads: no completion outlives the server
  }
  server->reset();
  if (!why.ok()) return kExitBadStart;
  if (!closed.ok()) {
    LOG_ERROR("closing stores: " << closed.ToString());
    return kExitCloseFailed;
  }
  LOG_INFO("stopped");
  return kExitStopped;
}

int Main(int argc, char** argv) {
  log::SetProgram("kvnode");
  auto parsed = ParseNodeArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::fprintf(stderr, "kvnode: %s (see kvnode --help)\n", parsed.status().message().c_str());
    return kExitBadStart;
  }
  if (parsed->action == ParseAction::kShowHelp) {
    std::fputs(NodeUsage().c_str(), stdout);
    return kExitStopped;
  }
  log::SetLevel(parsed->options.log_level);
  return Serve(parsed->options);
}

}  // namespace
}  // namespace rangekv::kvnode

int main(int argc, char** argv) { return rangekv::kvnode::Main(argc, argv); }
