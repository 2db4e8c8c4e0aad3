#include "tests/sim/sim_scenario.h"

#include <algorithm>
#include <cstdlib>

#include "common/fs.h"
#include "common/log.h"

namespace rangekv::sim {
namespace {

std::string Ms(Nanos t) { return std::to_string(t / kMilli) + " ms"; }

bool AllRangesOwned(const Cluster& c) {
  cluster::ClusterMap map = c.MapNow();
  if (map.ranges.empty()) return false;
  for (const auto& [id, r] : map.ranges) {
    if (!r.owner || !map.live_nodes.count(*r.owner)) return false;
  }
  return true;
}

bool IsWrite(lincheck::OpKind kind) { return kind != lincheck::OpKind::kGet; }

}  // namespace

std::vector<std::string> SpreadKeys(int n) {
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    keys.push_back(std::string(1, static_cast<char>(i * 256 / n + 7)) + "k" + std::to_string(i));
  }
  return keys;
}

Scenario::Scenario(uint64_t seed, const ClusterParams& params, bool verbose, uint64_t max_events)
    : world_(seed), max_events_(max_events) {
  world_.SetEventBudget(max_events);
  fs::ForbidPosixForTesting(true);
  log::SetLevel(verbose ? (std::getenv("KVSIM_DEBUG") ? log::Level::kDebug : log::Level::kInfo)
                        : log::Level::kOff);
  InstallSimLogPrefix(world_);
  cluster_ = std::make_unique<Cluster>(world_, params);
  checker_ = std::make_unique<Checker>(*cluster_);
  cluster_->observer.on_read = [this](const std::string& node, RangeId range, Epoch epoch) {
    checker_->OnRead(node, range, epoch);
  };
  world_.SetAfterEvent([this] { checker_->AfterEvent(); });
  cluster_->zk.AddWatcher([this] {
    if (checker_) checker_->OnMapChange();
  });
}

Scenario::~Scenario() {
  world_.SetAfterEvent(nullptr);
  reader_.reset();
  clients_.clear();
  checker_.reset();
  cluster_.reset();
  log::SetLineHeadForTesting(nullptr);
  fs::ForbidPosixForTesting(false);
}

bool Scenario::Boot(const std::function<Nanos(int)>& delay) {
  for (auto& co : cluster_->coordinators) co->Start();
  for (size_t i = 0; i < cluster_->nodes.size(); ++i) {
    SimNode* n = cluster_->nodes[i].get();
    world_.After(delay ? delay(static_cast<int>(i)) : 0, nullptr, [n] { n->Start(); });
  }
  return RunUntil(20 * kSecond, [this] { return AllRangesOwned(*cluster_); });
}

void Scenario::StartClients(int clients, Nanos until, const std::vector<std::string>& keys) {
  for (int i = 0; i < clients; ++i) {
    clients_.push_back(std::make_unique<SimClient>(*cluster_, static_cast<int>(clients_.size()) + 1,
                                                   keys, history_));
    clients_.back()->Run(until);
  }
}

bool Scenario::ClientsIdle() const {
  return std::all_of(clients_.begin(), clients_.end(), [](auto& c) { return c->idle(); });
}

bool Scenario::RunUntil(Nanos max, const std::function<bool()>& pred) {
  if (pred()) return true;
  world_.RunUntil(world_.now() + max, pred);
  return pred();
}

void Scenario::HealAll() {
  cluster_->net.HealAll();
  for (auto& n : cluster_->nodes) {
    cluster_->fs.SetSyncFailure(n->data_dir(), 0);
    if (!n->up()) n->Start();
  }
  for (auto& co : cluster_->coordinators) {
    if (!co->up()) co->Start();
  }
}

void Scenario::FinalReads(const std::vector<std::string>& keys, Nanos start_delay, Nanos settle,
                          std::vector<std::string>* problems) {
  reader_ = std::make_unique<SimClient>(*cluster_, 0, keys, history_);
  const Nanos deadline = world_.now() + settle;
  size_t succeeded = 0;
  size_t finished = 0;
  std::function<void(size_t)> read = [&](size_t i) {
    if (i == keys.size()) return;
    reader_->Read(keys[i], deadline, [&, i](bool ok) {
      ++finished;
      if (ok) ++succeeded;
      read(i + 1);
    });
  };
  world_.After(start_delay, nullptr, [&] { read(0); });
  world_.RunUntil(deadline + kSecond, [&] { return finished == keys.size(); });
  if (succeeded == keys.size()) return;
  problems->push_back("liveness: " + std::to_string(keys.size() - succeeded) +
                      " final reads did not succeed within " + Ms(settle) +
                      " of healing every fault");
  cluster::ClusterMap map = cluster_->MapNow();
  for (const auto& [id, n] : map.live_nodes) {
    problems->push_back("  node " + id.str() + (n.suspect ? " suspect" : "") +
                        (n.opening ? " opening" : ""));
  }
  for (const auto& [id, r] : map.ranges) {
    std::string isr;
    for (const NodeId& m : r.isr) isr += (isr.empty() ? "" : ",") + m.str();
    problems->push_back("  range " + std::to_string(id.value()) + " owner " +
                        (r.owner ? r.owner->str() : "-") + " epoch " +
                        std::to_string(r.epoch.value()) + " isr " + isr + " " +
                        cluster::RangeStateName(r.state));
  }
}

void Scenario::Check(std::vector<std::string>* problems) {
  if (world_.budget_spent()) {
    problems->push_back("watchdog: the run took more than " + std::to_string(max_events_) +
                        " events (a livelock?); it stopped at " +
                        Ms(world_.now() - World::kEpochStart));
  }
  checker_->CheckLogs();
  for (const std::string& v : checker_->violations()) problems->push_back(v);
  lincheck::CheckOptions co;
  co.max_states = 2'000'000;
  lincheck::CheckResult lin = lincheck::Check(history_, co);
  if (lin.verdict == lincheck::Verdict::kViolation) {
    problems->push_back("linearizability: " + lin.Explain());
  } else if (lin.verdict == lincheck::Verdict::kUnknown) {
    problems->push_back("linearizability: unknown (search budget): " + lin.Explain());
  }
}

uint64_t Scenario::client_ops() const {
  uint64_t n = 0;
  for (auto& c : clients_) n += c->ops();
  return n;
}

size_t Scenario::AcknowledgedWrites(Nanos from, Nanos to) const {
  size_t n = 0;
  for (const lincheck::Operation& op : history_) {
    if (!IsWrite(op.kind) || op.outcome.completion != lincheck::Completion::kOk) continue;
    if (op.kind == lincheck::OpKind::kCas && !op.outcome.found) continue;
    if (op.invoke_ns >= from && op.return_ns <= to) ++n;
  }
  return n;
}

Nanos Scenario::LongestWriteGap(Nanos from, Nanos to) const {
  std::vector<Nanos> acks = {from, to};
  for (const lincheck::Operation& op : history_) {
    if (!IsWrite(op.kind) || op.outcome.completion != lincheck::Completion::kOk) continue;
    if (op.kind == lincheck::OpKind::kCas && !op.outcome.found) continue;
    if (op.return_ns > from && op.return_ns < to) acks.push_back(op.return_ns);
  }
  std::sort(acks.begin(), acks.end());
  Nanos gap = 0;
  for (size_t i = 1; i < acks.size(); ++i) gap = std::max(gap, acks[i] - acks[i - 1]);
  return gap;
}

cluster::RangeInfo Scenario::Range(RangeId id) const {
  cluster::ClusterMap map = cluster_->MapNow();
  auto it = map.ranges.find(id);
  return it == map.ranges.end() ? cluster::RangeInfo{} : it->second;
}

std::shared_ptr<kvnode::RangeStore> Scenario::Store(const std::string& node, RangeId id) {
  kvnode::Node* n = cluster_->Node(node)->node();
  if (n == nullptr) return nullptr;
  for (const kvnode::RangeRoute& r : n->routing()->ranges()) {
    if (r.id == id && r.slot) return r.slot->store();
  }
  return nullptr;
}

void Scenario::CutBoth(const std::string& a, const std::string& b, bool cut) {
  cluster_->net.SetCut(a, b, cut);
  cluster_->net.SetCut(b, a, cut);
}

}  // namespace rangekv::sim
