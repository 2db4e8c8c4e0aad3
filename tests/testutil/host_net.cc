#include "tests/testutil/host_net.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

namespace fs = std::filesystem;

std::string FindTool(const char* name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    std::string p = std::string(dir) + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

const std::string& Ip() {
  static const std::string path = FindTool("ip");
  return path;
}

const std::string& NftTool() {
  static const std::string path = FindTool("nft");
  return path;
}

Status RunTool(std::vector<std::string> argv, const std::string& stdin_data = "") {
  RunResult r = Run(argv, stdin_data, std::chrono::seconds(10));
  if (r.exit_code == 0) return Status::Ok();
  std::string cmd;
  for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  return Status(Code::kUnavailable, cmd + ": exit " + std::to_string(r.exit_code) + ": " + r.err);
}

Status RunIp(std::vector<std::string> args) {
  args.insert(args.begin(), Ip());
  return RunTool(std::move(args));
}

bool LinkExists(const std::string& name) { return fs::exists("/sys/class/net/" + name); }

// Namespaces named rkt<K>-* left by a test that died before its
// destructor: their root veth is gone with them only if nothing holds them.
void RemoveStaleNamespaces(int k) {
  std::error_code ec;
  const std::string prefix = "rkt" + std::to_string(k) + "-";
  for (const auto& e : fs::directory_iterator("/run/netns", ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) (void)RunIp({"netns", "del", name});
  }
}

// Serialises subnet picking between tests that start at the same moment.
class CreateLock {
 public:
  CreateLock() : fd_(::open("/tmp/rangekv-hostnet.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0600)) {
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~CreateLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  CreateLock(const CreateLock&) = delete;
  CreateLock& operator=(const CreateLock&) = delete;

 private:
  int fd_;
};

}  // namespace

std::string HostNet::Unavailable() {
  if (::geteuid() != 0) return "not root (network namespaces need CAP_SYS_ADMIN)";
  if (Ip().empty()) return "no `ip` program (Debian package iproute2; run scripts/setup)";
  if (NftTool().empty()) return "no `nft` program (Debian package nftables; run scripts/setup)";
  const std::string probe = "rkt-probe-" + std::to_string(::getpid());
  Status st = RunIp({"netns", "add", probe});
  if (!st.ok()) return "cannot make a network namespace: " + st.message();
  st = RunTool({Ip(), "netns", "exec", probe, NftTool(), "list", "tables"});
  (void)RunIp({"netns", "del", probe});
  if (!st.ok()) return "nftables does not work in a network namespace: " + st.message();
  return "";
}

Result<std::unique_ptr<HostNet>> HostNet::Create(LinkMode mode) {
  CreateLock lock;
  const int start = static_cast<int>(::getpid() % 200);
  for (int i = 0; i < 250; ++i) {
    const int k = 1 + (start + i) % 250;
    if (LinkExists("rkt" + std::to_string(k))) continue;  // a live HostNet holds this subnet
    RemoveStaleNamespaces(k);
    std::unique_ptr<HostNet> net(new HostNet(k, mode));
    RANGEKV_RETURN_IF_ERROR(mode == LinkMode::kBridge ? net->CreateSwitch() : net->StartEmulator());
    const std::string link = "rkt" + std::to_string(k);
    RANGEKV_RETURN_IF_ERROR(RunIp({"addr", "add", net->Address(kTestHost) + "/24", "dev", link}));
    RANGEKV_RETURN_IF_ERROR(RunIp({"link", "set", link, "up"}));
    return net;
  }
  return Status(Code::kUnavailable, "no free 198.19.K.0/24 for test hosts");
}

Status HostNet::CreateSwitch() {
  const std::string sw = Namespace("sw");
  RANGEKV_RETURN_IF_ERROR(RunIp({"netns", "add", sw}));
  created_switch_ = true;
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "add", "br0", "type", "bridge"}));
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "set", "br0", "up"}));
  const std::string link = "rkt" + std::to_string(subnet_);
  RANGEKV_RETURN_IF_ERROR(
      RunIp({"link", "add", link, "type", "veth", "peer", "name", "up0", "netns", sw}));
  created_link_ = true;
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", sw, "link", "set", "up0", "master", "br0"}));
  return RunIp({"-n", sw, "link", "set", "up0", "up"});
}

Status HostNet::StartEmulator() {
  emulator_dir_ = std::make_unique<TempDir>();
  emulator_ = Process::Start({BuildPath("tests/link_emulator")},
                             emulator_dir_->Sub("link_emulator.log"), /*stdin_pipe=*/true);
  return Emulator("add " + TapOf(kTestHost));
}

Status HostNet::Emulator(const std::string& command) {
  const bool add = command.rfind("add ", 0) == 0;
  const std::string log = emulator_dir_->Sub("link_emulator.log");
  const std::string n = std::to_string(add ? 0 : ++emulator_commands_);
  const std::string ok = add ? "added " + command.substr(4) + "\n" : "done " + n + "\n";
  const std::string bad = add ? "error add" : "error " + n + ":";
  emulator_.WriteStdin(command + "\n");
  std::string text;
  bool answered = WaitFor(
      [&] {
        text = ReadFile(log);
        return text.find(ok) != std::string::npos || text.find(bad) != std::string::npos ||
               !emulator_.running();
      },
      std::chrono::seconds(10));
  if (answered && text.find(ok) != std::string::npos) return Status::Ok();
  return Status(Code::kUnavailable, "link_emulator: " + command + ": " + text);
}

HostNet::~HostNet() {
  if (emulator_.pid() > 0) {
    emulator_.CloseStdin();  // it exits, and its TAP devices go with it
    if (emulator_.Wait(std::chrono::seconds(5)) < 0) emulator_.Kill();
  }
  for (const auto& [name, addr] : hosts_) (void)RunIp({"netns", "del", Namespace(name)});
  if (created_link_) (void)RunIp({"link", "del", "rkt" + std::to_string(subnet_)});
  if (created_switch_) (void)RunIp({"netns", "del", Namespace("sw")});
}

std::string HostNet::Namespace(const std::string& host) const {
  return "rkt" + std::to_string(subnet_) + "-" + host;
}

std::string HostNet::TapOf(const std::string& host) const {
  if (host == kTestHost) return "rkt" + std::to_string(subnet_);
  for (size_t i = 0; i < hosts_.size(); ++i) {
    if (hosts_[i].first == host)
      return "rkt" + std::to_string(subnet_) + "t" + std::to_string(i + 1);
  }
  return "";
}

Status HostNet::MakePort(const std::string& ns, int index) {
  if (mode_ == LinkMode::kEmulated) {
    const std::string tap = "rkt" + std::to_string(subnet_) + "t" + std::to_string(index);
    RANGEKV_RETURN_IF_ERROR(Emulator("add " + tap));
    return RunIp({"link", "set", tap, "netns", ns, "name", "eth0"});
  }
  const std::string peer = "h" + std::to_string(index);
  RANGEKV_RETURN_IF_ERROR(RunIp({"link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name",
                                 peer, "netns", Namespace("sw")}));
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", Namespace("sw"), "link", "set", peer, "master", "br0"}));
  return RunIp({"-n", Namespace("sw"), "link", "set", peer, "up"});
}

Result<std::string> HostNet::AddHost(const std::string& name) {
  if (name == kTestHost || name == "sw" || !Address(name).empty()) {
    return Status(Code::kBadRequest, "host name taken: " + name);
  }
  const int i = static_cast<int>(hosts_.size()) + 1;
  if (i >= 254) return Status(Code::kBadRequest, "too many hosts");
  const std::string ns = Namespace(name);
  const std::string addr = "198.19." + std::to_string(subnet_) + "." + std::to_string(i);
  RANGEKV_RETURN_IF_ERROR(RunIp({"netns", "add", ns}));
  hosts_.emplace_back(name, addr);
  RANGEKV_RETURN_IF_ERROR(MakePort(ns, i));
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"}));
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", ns, "link", "set", "eth0", "up"}));
  RANGEKV_RETURN_IF_ERROR(RunIp({"-n", ns, "link", "set", "lo", "up"}));
  RANGEKV_RETURN_IF_ERROR(Nft(name,
                              "add table inet rkt\n"
                              "add chain inet rkt in { type filter hook input priority 0; }\n"
                              "add chain inet rkt out { type filter hook output priority 0; }\n"));
  return addr;
}

std::string HostNet::Address(const std::string& host) const {
  if (host == kTestHost) return "198.19." + std::to_string(subnet_) + ".254";
  for (const auto& [name, addr] : hosts_) {
    if (name == host) return addr;
  }
  return "";
}

std::vector<std::string> HostNet::Wrap(const std::string& host,
                                       std::vector<std::string> argv) const {
  argv.insert(argv.begin(), {Ip(), "netns", "exec", Namespace(host)});
  return argv;
}

std::vector<std::string> HostNet::Hosts() const {
  std::vector<std::string> out;
  for (const auto& [name, addr] : hosts_) out.push_back(name);
  return out;
}

Status HostNet::Nft(const std::string& host, const std::string& script) {
  return RunTool({Ip(), "netns", "exec", Namespace(host), NftTool(), "-f", "-"}, script);
}

Status HostNet::Cut(const std::string& from, const std::string& to) {
  const std::string from_addr = Address(from), to_addr = Address(to);
  if (from_addr.empty() || to_addr.empty() || from == to) {
    return Status(Code::kBadRequest, "cannot cut " + from + " -> " + to);
  }
  if (to != kTestHost) return Nft(to, "add rule inet rkt in ip saddr " + from_addr + " drop\n");
  return Nft(from, "add rule inet rkt out ip daddr " + to_addr + " drop\n");
}

Status HostNet::CutBoth(const std::string& a, const std::string& b) {
  RANGEKV_RETURN_IF_ERROR(Cut(a, b));
  return Cut(b, a);
}

Status HostNet::SetDelay(const std::string& from, const std::string& to, int ms, int jitter_ms) {
  if (mode_ != LinkMode::kEmulated) return Status(Code::kBadRequest, "links are not emulated");
  return Emulator("delay " + TapOf(from) + " " + TapOf(to) + " " + std::to_string(ms) + " " +
                  std::to_string(jitter_ms));
}

Status HostNet::SetLoss(const std::string& from, const std::string& to, double percent) {
  if (mode_ != LinkMode::kEmulated) return Status(Code::kBadRequest, "links are not emulated");
  return Emulator("loss " + TapOf(from) + " " + TapOf(to) + " " + std::to_string(percent));
}

Status HostNet::SetDelayAll(int ms, int jitter_ms) {
  if (mode_ != LinkMode::kEmulated) return Status(Code::kBadRequest, "links are not emulated");
  return Emulator("delayall " + std::to_string(ms) + " " + std::to_string(jitter_ms));
}

Status HostNet::ClearLinks() {
  if (mode_ != LinkMode::kEmulated) return Status(Code::kBadRequest, "links are not emulated");
  return Emulator("clear");
}

Status HostNet::Heal() {
  Status first = Status::Ok();
  for (const auto& [name, addr] : hosts_) {
    Status st = Nft(name, "flush chain inet rkt in\nflush chain inet rkt out\n");
    if (first.ok() && !st.ok()) first = st;
  }
  return first;
}

}  // namespace rangekv::testing
