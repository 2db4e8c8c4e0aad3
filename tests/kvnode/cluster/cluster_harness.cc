#include "tests/kvnode/cluster/cluster_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

namespace rangekv::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The port of the log's "serving on 127.0.0.1:PORT" line, once it appears.
std::optional<int> ServingPort(const std::string& log) {
  const std::string kServing = "serving on 127.0.0.1:";
  size_t at = log.find(kServing);
  if (at == std::string::npos) return std::nullopt;
  size_t digits = at + kServing.size();
  size_t end = log.find_first_not_of("0123456789", digits);
  if (end == digits || end == std::string::npos) return std::nullopt;  // line not complete yet
  return std::stoi(log.substr(digits, end - digits));
}

}  // namespace

std::vector<std::string> KvnodeProc::Argv(const Options& o) {
  port_ = o.port != 0 ? o.port : FreePort();
  std::vector<std::string> argv = {BuildPath("kvnode/kvnode"),
                                   "--listen",
                                   "127.0.0.1:" + std::to_string(port_),
                                   "--data",
                                   o.data_dir,
                                   "--io-threads",
                                   "2"};
  if (!o.id.empty()) argv.insert(argv.end(), {"--id", o.id});
  if (o.standalone) argv.push_back("--standalone");
  if (!o.zk.empty()) argv.insert(argv.end(), {"--zk", o.zk});
  if (!o.cluster.empty()) argv.insert(argv.end(), {"--cluster", o.cluster});
  if (o.admin_port != 0) {
    argv.insert(argv.end(), {"--admin", "127.0.0.1:" + std::to_string(o.admin_port)});
  }
  if (o.session_timeout_ms != 0) {
    argv.insert(argv.end(), {"--session-timeout-ms", std::to_string(o.session_timeout_ms)});
  }
  argv.insert(argv.end(), o.extra_args.begin(), o.extra_args.end());
  return argv;
}

void KvnodeProc::Launch(const Options& o, const std::string& log_path) {
  log_path_ = log_path;
  process_ = Process::Start(Argv(o), log_path);
}

bool KvnodeProc::Start(const Options& o, const std::string& log_path, std::string* why) {
  size_t before = ReadFile(log_path).size();  // the log is appended across restarts
  Launch(o, log_path);
  std::optional<int> port;
  bool up = WaitFor(
      [&] {
        std::string text = ReadFile(log_path_);
        port = ServingPort(text.substr(std::min(before, text.size())));
        return port.has_value() || !process_.running();
      },
      kProcTimeout);
  if (!up || !port) {
    *why = "kvnode did not start: " + log();
    return false;
  }
  return true;
}

size_t KvnodeProc::LogCount(const std::string& text) const {
  std::string all = log();
  size_t n = 0;
  for (size_t at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
  return n;
}

Result<proto::Response> KvnodeProc::Call(const proto::Request& req) {
  RANGEKV_ASSIGN_OR_RETURN(WireClient c, WireClient::Connect(port_));
  return c.Call(req);
}

ClusterAdmin::ClusterAdmin(const std::string& connect, const std::string& cluster)
    : paths_(cluster) {
  zk::SessionOptions so;
  so.connect_string = connect;
  so.session_timeout = std::chrono::milliseconds(10000);
  auto s = zk::Session::Open(so, io_.executor());
  if (!s.ok() || !(*s)->WaitConnected(std::chrono::seconds(10)).ok()) return;
  session_ = std::move(*s);
}

ClusterAdmin::~ClusterAdmin() { session_.reset(); }

Status ClusterAdmin::Bootstrap(const cluster::ClusterConfig& config,
                               const std::vector<cluster::RangeInfo>& ranges) {
  for (const std::string& p :
       {std::string("/rangekv"), paths_.root(), paths_.nodes(), paths_.ranges()}) {
    auto c = session_->Create(p, "");
    if (!c.ok() && zk::ZkErrorOf(c.status()) != zk::ZkError::kNodeExists) return c.status();
  }
  RANGEKV_RETURN_IF_ERROR(
      session_->Create(paths_.config(), cluster::EncodeConfig(config)).status());
  for (const auto& r : ranges) {
    RANGEKV_RETURN_IF_ERROR(session_->Create(paths_.range(r.id), cluster::EncodeRange(r)).status());
  }
  return Status::Ok();
}

Result<std::pair<cluster::RangeInfo, zk::ZnodeVersion>> ClusterAdmin::GetRange(RangeId id) {
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> d, session_->Get(paths_.range(id)));
  if (!d) return Status(Code::kBadRequest, "no range znode " + paths_.range(id));
  RANGEKV_ASSIGN_OR_RETURN(cluster::RangeInfo info, cluster::DecodeRange(d->data));
  return std::make_pair(std::move(info), d->stat.version);
}

Result<cluster::RangeInfo> ClusterAdmin::MoveRange(RangeId id, const NodeId& to) {
  RANGEKV_ASSIGN_OR_RETURN(auto current, GetRange(id));
  cluster::RangeInfo next = current.first;
  next.owner = to;
  next.epoch = next.epoch.Next();
  next.replicas = {to};
  next.isr = {to};
  RANGEKV_RETURN_IF_ERROR(
      session_->Set(paths_.range(id), cluster::EncodeRange(next), current.second).status());
  return next;
}

Status ClusterAdmin::UpdateRange(const cluster::RangeInfo& info) {
  RANGEKV_ASSIGN_OR_RETURN(auto current, GetRange(info.id));
  return session_->Set(paths_.range(info.id), cluster::EncodeRange(info), current.second).status();
}

Result<std::optional<ClusterAdmin::NodeZnode>> ClusterAdmin::GetNode(const NodeId& id) {
  RANGEKV_ASSIGN_OR_RETURN(std::optional<zk::ZnodeData> d, session_->Get(paths_.node(id)));
  if (!d) return std::optional<NodeZnode>();
  RANGEKV_ASSIGN_OR_RETURN(cluster::NodeInfo info, cluster::DecodeNode(d->data));
  return std::optional<NodeZnode>(NodeZnode{std::move(info), d->stat.ephemeral_owner});
}

Status ClusterAdmin::SetRaw(const std::string& path, const std::string& data) {
  return session_->Set(path, data).status();
}

std::vector<cluster::RangeInfo> FourRanges(const std::vector<NodeId>& owners) {
  std::vector<KeyRange> split = cluster::InitialSplit(4);
  std::vector<cluster::RangeInfo> out;
  for (size_t i = 0; i < split.size(); ++i) {
    cluster::RangeInfo r;
    r.id = RangeId(i + 1);
    r.bounds = split[i];
    r.epoch = Epoch(5);
    r.owner = owners[i % owners.size()];
    r.replicas = {*r.owner};
    r.isr = {*r.owner};
    out.push_back(std::move(r));
  }
  return out;
}

std::string KeyIn(int range, const std::string& suffix) {
  // InitialSplit(4) starts ranges at 0x00, 0x40, 0x80, 0xc0.
  return std::string(1, static_cast<char>(0x40 * (range - 1) + 0x10)) + suffix;
}

std::optional<HttpReply> HttpGet(int port, const std::string& path,
                                 std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  std::string reply;
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
            ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
                static_cast<ssize_t>(request.size());
  while (ok) {  // HTTP/1.0: the server closes after the reply
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      ok = false;
      break;
    }
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) ok = false;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t sp = reply.find(' ');
  size_t body = reply.find("\r\n\r\n");
  if (!ok || sp == std::string::npos || body == std::string::npos) return std::nullopt;
  return HttpReply{std::atoi(reply.c_str() + sp + 1), reply.substr(body + 4)};
}

std::optional<double> MetricValue(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n')
      return std::strtod(text.c_str() + at + series.size(), nullptr);
    at += series.size();
  }
  return std::nullopt;
}

}  // namespace rangekv::testing
