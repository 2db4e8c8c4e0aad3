#include "tests/kvnode/replication/repl_cluster.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "common/zk/errors.h"

namespace rangekv::testing {
namespace {

namespace fs = std::filesystem;

// A node's port on a host of its own: the host has its own address, so one
// fixed port serves every node and survives restarts.
constexpr int kHostPort = 7000;

// The port of the first "serving on HOST:PORT" line in text, once the line
// is complete.
std::optional<int> ServingPort(const std::string& text, const std::string& host) {
  const std::string kServing = "serving on " + host + ":";
  size_t at = text.find(kServing);
  if (at == std::string::npos) return std::nullopt;
  size_t digits = at + kServing.size();
  size_t end = text.find_first_not_of("0123456789", digits);
  if (end == digits || end == std::string::npos) return std::nullopt;
  return std::stoi(text.substr(digits, end - digits));
}

std::string Tail(const std::string& text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  size_t from = text.size() - max_bytes;
  size_t nl = text.find('\n', from);
  return "[... " + std::to_string(from) + " bytes ...]\n" +
         text.substr(nl == std::string::npos ? from : nl + 1);
}

bool IsFinal(Code c) {
  return c == Code::kBadRequest || c == Code::kTooLarge || c == Code::kCrossRange ||
         c == Code::kCasFailed;
}

}  // namespace

ReplCluster::ReplCluster(std::string name) : name_(std::move(name)), paths_(name_) {}

ReplCluster::~ReplCluster() {
  client_.reset();
  for (auto& [id, n] : nodes_) {
    n.conn.reset();
    if (n.process.pid() > 0) {
      n.process.Signal(SIGCONT);  // a paused node would not die of SIGTERM
      n.process.Kill();
    }
  }
  if (coord_.pid() > 0) coord_.Stop(std::chrono::milliseconds(3000));
  session_.reset();
  if (ensemble_) ensemble_->Stop();
  const char* print = std::getenv("RANGEKV_PRINT_LOGS");
  if (::testing::Test::HasFailure() || (print && *print == '1')) DumpLogs();
  if (const char* keep = std::getenv("RANGEKV_KEEP_LOGS"); keep && *keep) {
    std::string test = "cluster";
    if (auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
      test = std::string(info->test_suite_name()) + "." + info->name();
    }
    fs::path to = fs::path(keep) / test;
    std::error_code ec;
    fs::create_directories(to, ec);
    fs::copy_file(coord_log_, to / "kvcoord.log", fs::copy_options::overwrite_existing, ec);
    for (const auto& [id, n] : nodes_) {
      fs::copy_file(n.log_path, to / (id + ".log"), fs::copy_options::overwrite_existing, ec);
    }
  }
  zk_.Stop();
}

Status ReplCluster::Start(int n_nodes, int rf, int ranges, std::vector<std::string> coord_flags) {
  ReplClusterOptions o;
  o.nodes = n_nodes;
  o.rf = rf;
  o.ranges = ranges;
  o.coord_flags = std::move(coord_flags);
  return Start(o);
}

Status ReplCluster::Start(const ReplClusterOptions& options) {
  options_ = options;
  if (options_.tls) {
    if (options_.hosts) {
      return Status(Code::kBadRequest, "tls with hosts: the test certificates name 127.0.0.1 only");
    }
    if (std::string why = MakeTestCerts(dir_.Sub("tls")); !why.empty()) {
      return Status(Code::kUnavailable, "no test PKI: " + why);
    }
  }
  if (options_.hosts) {
    RANGEKV_ASSIGN_OR_RETURN(net_,
                             HostNet::Create(options_.emulated_links ? HostNet::LinkMode::kEmulated
                                                                     : HostNet::LinkMode::kBridge));
    ensemble_ = std::make_unique<ZkEnsemble>(*net_, 3);
    RANGEKV_RETURN_IF_ERROR(ensemble_->Start());
    RANGEKV_RETURN_IF_ERROR(net_->AddHost(kCoordHost).status());
    RANGEKV_RETURN_IF_ERROR(CreateChroot());
  } else if (!zk_.Start()) {
    return Status(Code::kUnavailable, "ZooKeeper did not start: " + zk_.log());
  }

  zk::SessionOptions so;
  so.connect_string = zk_connect();
  so.session_timeout = std::chrono::milliseconds(10000);
  RANGEKV_ASSIGN_OR_RETURN(session_, zk::Session::Open(so, io_.executor()));
  RANGEKV_RETURN_IF_ERROR(session_->WaitConnected(std::chrono::seconds(10)));

  std::vector<std::string> argv = {BuildPath("coordinator/kvcoord"),
                                   "--zk",
                                   zk_connect(),
                                   "--cluster",
                                   name_,
                                   "--id",
                                   name_ + "-coord",
                                   "--session-timeout-ms",
                                   std::to_string(options_.coord_session_timeout.count()),
                                   "--rf",
                                   std::to_string(options_.rf),
                                   "--ranges",
                                   std::to_string(options_.ranges)};
  if (options_.min_insync > 0) {
    argv.insert(argv.end(), {"--min-insync", std::to_string(options_.min_insync)});
  }
  const std::vector<std::string> tls = TlsFlags("node");
  argv.insert(argv.end(), tls.begin(), tls.end());
  argv.insert(argv.end(), options_.coord_flags.begin(), options_.coord_flags.end());
  coord_log_ = dir_.Sub("kvcoord.log");
  if (net_) argv = net_->Wrap(kCoordHost, std::move(argv));
  coord_ = Process::Start(argv, coord_log_);
  bool leader = WaitFor(
      [&] {
        return ReadFile(coord_log_).find("became leader") != std::string::npos ||
               !coord_.running();
      },
      kStartTimeout);
  if (!leader || !coord_.running()) {
    return Status(Code::kUnavailable, "kvcoord did not become leader: " + ReadFile(coord_log_));
  }
  for (int i = 1; i <= options_.nodes; ++i) {
    RANGEKV_RETURN_IF_ERROR(StartNewNode("n" + std::to_string(i)));
  }
  return Status::Ok();
}

Status ReplCluster::LaunchNode(Node& n) {
  n.conn.reset();
  n.port = net_ ? kHostPort : FreePort();
  const std::string host = HostOf(n.id);
  std::vector<std::string> argv = {BuildPath("kvnode/kvnode"),
                                   "--id",
                                   n.id,
                                   "--listen",
                                   host + ":" + std::to_string(n.port),
                                   "--zk",
                                   zk_connect(),
                                   "--cluster",
                                   name_,
                                   "--data",
                                   n.data_dir,
                                   "--io-threads",
                                   "2",
                                   "--session-timeout-ms",
                                   std::to_string(options_.node_session_timeout.count())};
  if (options_.lease.count() > 0) {
    argv.insert(argv.end(), {"--lease-ms", std::to_string(options_.lease.count())});
  }
  if (options_.isr_lag.count() > 0) {
    argv.insert(argv.end(), {"--isr-lag-ms", std::to_string(options_.isr_lag.count())});
  }
  if (n.replaces) argv.insert(argv.end(), {"--replace", *n.replaces});
  const std::vector<std::string> tls = TlsFlags("node");
  argv.insert(argv.end(), tls.begin(), tls.end());
  argv.insert(argv.end(), options_.node_flags.begin(), options_.node_flags.end());
  argv.insert(argv.end(), n.extra_flags.begin(), n.extra_flags.end());

  {  // the log is appended across restarts; "serving on" counts only after this mark
    std::ofstream mark(n.log_path, std::ios::app);
    mark << "==== test harness: starting " << n.id << " on port " << n.port << " ====\n";
  }
  size_t before = ReadFile(n.log_path).size();
  if (net_) argv = net_->Wrap(n.id, std::move(argv));
  n.process = Process::Start(argv, n.log_path);
  std::optional<int> port;
  bool up = WaitFor(
      [&] {
        std::string text = ReadFile(n.log_path);
        port = ServingPort(text.substr(std::min(before, text.size())), host);
        return port.has_value() || !n.process.running();
      },
      kStartTimeout);
  if (!up || !port) {
    return Status(Code::kUnavailable,
                  "kvnode " + n.id + " did not start:\n" + Tail(ReadFile(n.log_path), 8192));
  }
  return Status::Ok();
}

Status ReplCluster::StartNewNode(const std::string& id, std::optional<std::string> replaces,
                                 std::vector<std::string> extra_flags) {
  if (nodes_.count(id)) return Status(Code::kBadRequest, "node " + id + " exists already");
  Node& n = nodes_[id];
  n.id = id;
  n.data_dir = dir_.Sub("data-" + id);
  n.log_path = dir_.Sub(id + ".log");
  n.replaces = std::move(replaces);
  n.extra_flags = std::move(extra_flags);
  if (net_) RANGEKV_RETURN_IF_ERROR(net_->AddHost(id).status());
  return LaunchNode(n);
}

ReplCluster::Node& ReplCluster::GetNode(const std::string& id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) {
    ADD_FAILURE() << "no node " << id;
    static Node none;
    return none;
  }
  return it->second;
}

const ReplCluster::Node& ReplCluster::GetNode(const std::string& id) const {
  return const_cast<ReplCluster*>(this)->GetNode(id);
}

void ReplCluster::KillNode(const std::string& id) {
  Node& n = GetNode(id);
  n.conn.reset();
  n.process.Signal(SIGCONT);
  n.process.Kill();
}

int ReplCluster::StopNode(const std::string& id) {
  Node& n = GetNode(id);
  n.conn.reset();
  return n.process.Stop();
}

Status ReplCluster::RestartNode(const std::string& id) {
  Node& n = GetNode(id);
  if (n.process.running()) return Status(Code::kBadRequest, "node " + id + " still runs");
  return LaunchNode(n);
}

void ReplCluster::WipeNode(const std::string& id) {
  Node& n = GetNode(id);
  EXPECT_FALSE(n.process.running()) << "wiping the data of running node " << id;
  std::error_code ec;
  fs::remove_all(n.data_dir, ec);
  EXPECT_FALSE(ec) << ec.message();
}

void ReplCluster::PauseNode(const std::string& id) {
  Node& n = GetNode(id);
  n.process.Signal(SIGSTOP);
  EXPECT_TRUE(n.process.WaitStopped(std::chrono::seconds(5))) << id << " did not stop";
}

void ReplCluster::ResumeNode(const std::string& id) { GetNode(id).process.Signal(SIGCONT); }

bool ReplCluster::Running(const std::string& id) { return GetNode(id).process.running(); }

std::vector<std::string> ReplCluster::NodeIds() const {
  std::vector<std::string> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

int ReplCluster::Port(const std::string& id) const { return GetNode(id).port; }

std::string ReplCluster::Address(const std::string& id) const {
  return HostOf(id) + ":" + std::to_string(Port(id));
}

std::string ReplCluster::HostOf(const std::string& id) const {
  return net_ ? net_->Address(id) : "127.0.0.1";
}

std::string ReplCluster::zk_connect() const {
  return ensemble_ ? ensemble_->connect_string() + kHostsChroot : zk_.connect_string();
}

Status ReplCluster::CreateChroot() {
  zk::SessionOptions so;
  so.connect_string = ensemble_->connect_string();
  so.session_timeout = std::chrono::milliseconds(10000);
  RANGEKV_ASSIGN_OR_RETURN(auto session, zk::Session::Open(so, io_.executor()));
  RANGEKV_RETURN_IF_ERROR(session->WaitConnected(std::chrono::seconds(10)));
  return session->Create(kHostsChroot, "").status();
}

std::vector<std::string> ReplCluster::ZkHosts() const {
  return ensemble_ ? ensemble_->hosts() : std::vector<std::string>{};
}

std::string ReplCluster::DataDir(const std::string& id) const { return GetNode(id).data_dir; }

std::string ReplCluster::NodeLog(const std::string& id) const {
  return ReadFile(GetNode(id).log_path);
}

bool ReplCluster::NodeLogHas(const std::string& id, const std::string& text) const {
  return NodeLog(id).find(text) != std::string::npos;
}

std::string ReplCluster::CoordLog() const { return ReadFile(coord_log_); }

// ---- the map ----

Result<cluster::ClusterMap> ReplCluster::ReadMap() {
  if (!session_) return Status(Code::kUnavailable, "no ZooKeeper session");
  cluster::ClusterMap map;
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> config, session_->Get(paths_.config()));
  if (config) {
    RANGEKV_ASSIGN_OR_RETURN(cluster::ClusterConfig c, cluster::DecodeConfig(config->data));
    map.config = c;
  }
  auto nodes = session_->Children(paths_.nodes());
  if (nodes.ok()) {
    for (const std::string& name : *nodes) {
      RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> d,
                               session_->Get(paths_.nodes() + "/" + name));
      if (!d) continue;  // gone between the two reads
      auto info = cluster::DecodeNode(d->data);
      if (info.ok()) map.live_nodes.emplace(info->id, *info);
    }
  } else if (zk::ZkErrorOf(nodes.status()) != zk::ZkError::kNoNode) {
    return nodes.status();
  }
  auto ranges = session_->Children(paths_.ranges());
  if (ranges.ok()) {
    for (const std::string& name : *ranges) {
      auto id = cluster::Paths::ParseRangeName(name);
      if (!id) continue;
      RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> d, session_->Get(paths_.range(*id)));
      if (!d) continue;
      RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo info, cluster::DecodeRange(d->data));
      map.ranges.emplace(*id, std::move(info));
    }
  } else if (zk::ZkErrorOf(ranges.status()) != zk::ZkError::kNoNode) {
    return ranges.status();
  }
  return map;
}

Result<cluster::RangeInfo> ReplCluster::ReadRange(RangeId id) {
  if (!session_) return Status(Code::kUnavailable, "no ZooKeeper session");
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> d, session_->Get(paths_.range(id)));
  if (!d) return Status(Code::kRangeUnavailable, "no znode " + paths_.range(id));
  return cluster::DecodeRange(d->data);
}

bool ReplCluster::Settled(const cluster::ClusterMap& map) {
  // Bootstrapped: it creates every range in one multi (later splits add
  // ranges, merges take them away).
  if (map.ranges.empty()) return false;
  for (const auto& [rid, r] : map.ranges) {
    if (r.state != cluster::RangeState::kActive || !r.owner || !map.Node(*r.owner)) return false;
    if (r.replicas.size() != static_cast<size_t>(options_.rf)) return false;
    std::set<NodeId> replicas(r.replicas.begin(), r.replicas.end());
    std::set<NodeId> isr(r.isr.begin(), r.isr.end());
    if (replicas != isr) return false;
    for (const NodeId& n : r.replicas) {
      if (!map.Node(n)) return false;
    }
    if (!nodes_.count(r.owner->str())) return false;
    std::optional<proto::RangeStatus> s = RangeStatusOf(r.owner->str(), rid);
    if (!s || !s->owner || s->epoch != r.epoch) return false;
  }
  return true;
}

bool ReplCluster::WaitAllActive(std::chrono::milliseconds timeout, cluster::ClusterMap* last) {
  cluster::ClusterMap seen;
  bool ok = WaitFor(
      [&] {
        auto map = ReadMap();
        if (!map.ok()) return false;
        seen = std::move(*map);
        return Settled(seen);
      },
      timeout, std::chrono::milliseconds(50));
  if (last) *last = std::move(seen);
  return ok;
}

std::optional<cluster::RangeInfo> ReplCluster::WaitRange(
    RangeId range, const std::function<bool(const cluster::RangeInfo&)>& pred,
    std::chrono::milliseconds timeout, cluster::RangeInfo* last) {
  cluster::RangeInfo seen;
  bool ok = WaitFor(
      [&] {
        auto r = ReadRange(range);
        if (!r.ok()) return false;
        seen = std::move(*r);
        return pred(seen);
      },
      timeout, std::chrono::milliseconds(20));
  if (last) *last = seen;
  if (!ok) return std::nullopt;
  return seen;
}

cluster::RangeInfo ReplCluster::WaitOwnerChange(RangeId range, const std::string& old_owner,
                                                std::chrono::milliseconds timeout) {
  cluster::RangeInfo last;
  WaitRange(
      range,
      [&](const cluster::RangeInfo& r) {
        if (!r.owner || r.owner->str() == old_owner) return false;
        if (r.state != cluster::RangeState::kActive) return false;
        auto live = session_->Exists(paths_.node(*r.owner));
        return live.ok() && live->has_value();
      },
      timeout, &last);
  return last;
}

std::optional<cluster::RangeInfo> ReplCluster::WaitIsr(
    RangeId range, const std::function<bool(const std::vector<NodeId>&)>& pred,
    std::chrono::milliseconds timeout, cluster::RangeInfo* last) {
  return WaitRange(
      range, [&](const cluster::RangeInfo& r) { return pred(r.isr); }, timeout, last);
}

// ---- one node ----

Result<proto::Response> ReplCluster::CallNode(const std::string& id, const proto::Request& req,
                                              std::chrono::milliseconds timeout) {
  Node& n = GetNode(id);
  if (!n.conn) {
    const WireTls tls{TlsFile("ca.crt"), TlsFile("client.crt"), TlsFile("client.key")};
    RANGEKV_ASSIGN_OR_RETURN(WireClient c, WireClient::Connect(HostOf(id), n.port, timeout,
                                                               options_.tls ? &tls : nullptr));
    n.conn.emplace(std::move(c));
  }
  Result<proto::Response> r = n.conn->Call(req, timeout);
  if (!r.ok()) n.conn.reset();  // a late answer must not be taken for the next call's
  return r;
}

Result<std::vector<proto::RangeStatus>> ReplCluster::RangeStatus(const std::string& id) {
  static uint64_t next_id = 1;
  proto::Request req;
  req.id = next_id++;
  req.kind = proto::OpKind::kRangeStatus;
  RANGEKV_ASSIGN_OR_RETURN(proto::Response resp, CallNode(id, req));
  if (resp.kind == proto::Response::Kind::kError) return resp.error;
  if (resp.kind != proto::Response::Kind::kRangeStatus) {
    return Status(Code::kInternal, "rangeStatus answered with another kind");
  }
  return std::move(resp.status);
}

std::optional<proto::RangeStatus> ReplCluster::RangeStatusOf(const std::string& id,
                                                             RangeId range) {
  auto all = RangeStatus(id);
  if (!all.ok()) return std::nullopt;
  for (proto::RangeStatus& s : *all) {
    if (s.range == range) return std::move(s);
  }
  return std::nullopt;
}

Result<proto::Response> ReplCluster::StaleGet(const std::string& id, RangeId range,
                                              const std::string& key) {
  static uint64_t next_id = 1u << 30;
  proto::Request req = GetRequest(next_id++, key);
  req.range = range;
  req.consistency = proto::Consistency::kStale;
  return CallNode(id, req);
}

Result<std::unique_ptr<Client>> ReplCluster::NewClient(std::chrono::milliseconds request_timeout) {
  ClientOptions o;
  o.request_timeout = request_timeout;
  o.connect_timeout = std::chrono::milliseconds(5000);
  if (options_.tls) {
    o.tls_ca = TlsFile("ca.crt");
    o.tls_cert = TlsFile("client.crt");
    o.tls_key = TlsFile("client.key");
  }
  return Client::Connect(zk_connect(), name_, o);
}

std::vector<std::string> ReplCluster::ClientTlsFlags() const { return TlsFlags("client"); }

std::vector<std::string> ReplCluster::TlsFlags(const std::string& who) const {
  if (!options_.tls) return {};
  std::vector<std::string> flags = {"--tls-ca", TlsFile("ca.crt")};
  flags.insert(flags.end(), {"--tls-cert", TlsFile(who + ".crt")});
  flags.insert(flags.end(), {"--tls-key", TlsFile(who + ".key")});
  return flags;
}

Client& ReplCluster::client(std::chrono::milliseconds request_timeout) {
  if (!client_) {
    auto c = NewClient(request_timeout);
    if (!c.ok()) {
      // Nothing sensible to hand back. An exception (unlike abort) unwinds
      // to GoogleTest, so the destructors still end every process.
      ADD_FAILURE() << "smart client did not connect: " << c.status().ToString();
      throw std::runtime_error("smart client did not connect");
    }
    client_ = std::move(*c);
  }
  return *client_;
}

void ReplCluster::DumpLogs(size_t max_bytes) const {
  std::cerr << "==== kvcoord log ====\n" << Tail(ReadFile(coord_log_), max_bytes);
  for (const auto& [id, n] : nodes_) {
    std::cerr << "==== " << id << " log ====\n" << Tail(ReadFile(n.log_path), max_bytes);
  }
  if (ensemble_) std::cerr << "==== ZooKeeper ensemble ====\n" << Tail(ensemble_->log(), max_bytes);
}

// ---- helpers ----

std::string SpreadKey(int i, const std::string& tag) {
  auto first = static_cast<unsigned char>((static_cast<unsigned>(i) * 97u + 13u) & 0xffu);
  return std::string(1, static_cast<char>(first)) + tag + "-" + std::to_string(i);
}

int64_t MsSince(ReplClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ReplClock::now() - t).count();
}

Result<uint64_t> PutRetry(Client& c, const std::string& key, const std::string& value,
                          std::chrono::milliseconds timeout) {
  ReplClock::time_point deadline = ReplClock::now() + timeout;
  Status last;
  while (true) {
    Result<uint64_t> r = c.Put(key, value);
    if (r.ok() || IsFinal(r.status().code())) return r;
    last = r.status();
    if (ReplClock::now() >= deadline) return last;
    // The client already backs off inside one call; this only avoids a
    // tight loop on an error it returns at once.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::string Join(const std::vector<NodeId>& ids) {
  std::string out;
  for (const NodeId& n : ids) out += (out.empty() ? "" : ",") + n.str();
  return out;
}

bool Contains(const std::vector<NodeId>& ids, const std::string& id) {
  return std::any_of(ids.begin(), ids.end(), [&](const NodeId& n) { return n.str() == id; });
}

std::string Describe(const cluster::RangeInfo& r) {
  std::ostringstream o;
  o << "range " << r.id.value() << " epoch " << r.epoch.value() << " owner "
    << (r.owner ? r.owner->str() : "-") << " replicas " << Join(r.replicas) << " isr "
    << Join(r.isr) << " " << cluster::RangeStateName(r.state);
  return o.str();
}

std::string Describe(const proto::RangeStatus& s) {
  std::ostringstream o;
  o << "range " << s.range.value() << " epoch " << s.epoch.value()
    << (s.owner ? " owner" : " replica") << " last_seq " << s.last_seq.value() << " hwm "
    << s.hwm.value();
  for (const proto::ReplicaProgress& p : s.replicas) {
    o << " [" << p.node_id << " acked " << p.acked.value() << (p.in_isr ? " isr" : "") << "]";
  }
  return o.str();
}

}  // namespace rangekv::testing
