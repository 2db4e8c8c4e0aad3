#include "tests/testutil/zk_ensemble.h"

#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "tests/testutil/zk_server.h"

namespace rangekv::testing {

ZkEnsemble::ZkEnsemble(HostNet& net, int servers) : net_(net) {
  for (int i = 1; i <= servers && added_.ok(); ++i) {
    std::string host = "zk" + std::to_string(i);
    Result<std::string> addr = net_.AddHost(host);
    if (!addr.ok()) {
      added_ = addr.status();
      break;
    }
    hosts_.push_back(host);
  }
  servers_.resize(hosts_.size());
}

ZkEnsemble::~ZkEnsemble() { Stop(); }

Status ZkEnsemble::Start(std::chrono::milliseconds timeout) {
  RANGEKV_RETURN_IF_ERROR(added_);
  for (size_t i = 0; i < hosts_.size(); ++i) {
    const std::string sub = dir_.Sub(hosts_[i]);
    std::filesystem::create_directories(sub + "/data");
    std::ofstream(sub + "/data/myid") << (i + 1) << "\n";
    std::ofstream cfg(sub + "/zoo.cfg");
    // A follower gives up on a silent leader after syncLimit ticks (2 s):
    // that, not the session timeout, bounds a cut-off leader's stall.
    cfg << "tickTime=500\ninitLimit=20\nsyncLimit=4\n"
        << "dataDir=" << sub << "/data\n"
        << "clientPort=" << kClientPort << "\n"
        << "clientPortAddress=" << net_.Address(hosts_[i]) << "\n"
        << "minSessionTimeout=1000\nmaxSessionTimeout=20000\nmaxClientCnxns=0\n"
        << "admin.enableServer=false\n"
        << "4lw.commands.whitelist=ruok,srvr,stat,mntr\n";
    for (size_t j = 0; j < hosts_.size(); ++j) {
      cfg << "server." << (j + 1) << "=" << net_.Address(hosts_[j]) << ":2888:3888\n";
    }
    cfg.close();
    Launch(i);
  }
  if (WaitFor([&] { return Serving(); }, timeout, std::chrono::milliseconds(100))) {
    return Status::Ok();
  }
  return Status(Code::kUnavailable, "the ZooKeeper ensemble did not form:\n" + log());
}

void ZkEnsemble::Launch(size_t i) {
  const std::string sub = dir_.Sub(hosts_[i]);
  servers_[i] = Process::Start(
      net_.Wrap(hosts_[i], {"/usr/bin/java", "-Xmx128m", "-XX:+UseSerialGC",
                            "-XX:TieredStopAtLevel=1", "-Dzookeeper.jmx.log4j.disable=true", "-cp",
                            "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar",
                            "org.apache.zookeeper.server.quorum.QuorumPeerMain", sub + "/zoo.cfg"}),
      sub + "/zk.log");
}

size_t ZkEnsemble::IndexOf(const std::string& host) const {
  return static_cast<size_t>(std::find(hosts_.begin(), hosts_.end(), host) - hosts_.begin());
}

std::string ZkEnsemble::Leader() const {
  for (const std::string& host : hosts_) {
    std::string srvr = ZkFourLetter(net_.Address(host), kClientPort, "srvr");
    if (srvr.find("Mode: leader") != std::string::npos) return host;
  }
  return "";
}

void ZkEnsemble::Kill(const std::string& host) {
  size_t i = IndexOf(host);
  if (i < servers_.size()) servers_[i].Kill();
}

Status ZkEnsemble::Restart(const std::string& host) {
  size_t i = IndexOf(host);
  if (i >= servers_.size()) return Status(Code::kBadRequest, "no ZooKeeper server on " + host);
  if (servers_[i].running()) return Status(Code::kBadRequest, host + " still runs");
  Launch(i);
  return Status::Ok();
}

Status ZkEnsemble::Pause(const std::string& host) {
  size_t i = IndexOf(host);
  if (i >= servers_.size()) return Status(Code::kBadRequest, "no ZooKeeper server on " + host);
  servers_[i].Signal(SIGSTOP);
  if (servers_[i].WaitStopped(std::chrono::seconds(5))) return Status::Ok();
  servers_[i].Signal(SIGCONT);
  return Status(Code::kUnavailable, host + " did not stop");
}

Status ZkEnsemble::Resume(const std::string& host) {
  size_t i = IndexOf(host);
  if (i >= servers_.size()) return Status(Code::kBadRequest, "no ZooKeeper server on " + host);
  servers_[i].Signal(SIGCONT);
  return Status::Ok();
}

bool ZkEnsemble::Serving() const {
  bool leader = false;
  for (const std::string& host : hosts_) {
    std::string srvr = ZkFourLetter(net_.Address(host), kClientPort, "srvr");
    if (srvr.find("Mode: leader") != std::string::npos) {
      leader = true;
    } else if (srvr.find("Mode: follower") == std::string::npos) {
      return false;
    }
  }
  return leader;
}

void ZkEnsemble::Stop() {
  for (Process& p : servers_) {
    if (p.pid() > 0) p.Stop(std::chrono::milliseconds(5000));
  }
}

std::vector<std::string> ZkEnsemble::hosts() const { return hosts_; }

std::string ZkEnsemble::connect_string() const {
  std::string out;
  for (const std::string& host : hosts_) {
    out += (out.empty() ? "" : ",") + net_.Address(host) + ":" + std::to_string(kClientPort);
  }
  return out;
}

std::string ZkEnsemble::log() const {
  std::string out;
  for (const std::string& host : hosts_) {
    out += "==== " + host + " ====\n" + ReadFile(dir_.Sub(host) + "/zk.log");
  }
  return out;
}

}  // namespace rangekv::testing
