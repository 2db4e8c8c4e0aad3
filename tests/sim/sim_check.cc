#include "tests/sim/sim_check.h"

#include "common/log.h"
#include "kvnode/server/node.h"
#include "tests/sim/sim_node.h"

namespace rangekv::sim {
namespace {

std::string At(Nanos t) {
  return std::to_string((t - World::kEpochStart) / kMilli) + " ms";
}

// Every open store of a node, by range.
std::vector<std::shared_ptr<kvnode::RangeStore>> Stores(const SimNode& n) {
  std::vector<std::shared_ptr<kvnode::RangeStore>> out;
  kvnode::Node* node = n.node();
  if (node == nullptr) return out;
  for (const kvnode::RangeRoute& r : node->routing()->ranges()) {
    if (!r.slot) continue;
    if (auto store = r.slot->store()) out.push_back(std::move(store));
  }
  return out;
}

}  // namespace

void Checker::Violation(std::string what) {
  LOG_ERROR("VIOLATION: " << what);
  violations_.push_back(std::move(what));
}

size_t Checker::committed_records() const {
  size_t n = 0;
  for (const auto& [range, entries] : ledger_) n += entries.size();
  return n;
}

void Checker::AfterEvent() {
  for (const auto& node : c_.nodes) {
    if (!node->up()) continue;
    for (const auto& store : Stores(*node)) Scan(node->id(), store);
  }
}

void Checker::OnMapChange() {
  const cluster::ClusterMap map = c_.MapNow();
  if (map.ranges.empty()) return;  // not bootstrapped yet
  std::vector<const cluster::RangeInfo*> sorted;
  for (const auto& [id, r] : map.ranges) sorted.push_back(&r);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->bounds.start() < b->bounds.start();
  });
  std::optional<std::string> covered = std::string();  // every key below is covered
  for (const cluster::RangeInfo* r : sorted) {
    if (!covered || r->bounds.start() != *covered) {
      Violation("map at " + At(c_.world.now()) + ": range " + std::to_string(r->id.value()) + " " +
                r->bounds.ToString() + (covered ? " leaves a hole or overlaps before it"
                                                : " lies above an unbounded range"));
      return;
    }
    covered = r->bounds.end();
  }
  if (covered) Violation("map at " + At(c_.world.now()) + ": no range reaches the top");
  for (const auto& [id, r] : map.ranges) {
    auto [it, fresh] = versions_.try_emplace(id, r.generation, r.epoch);
    if (!fresh && std::make_pair(r.generation, r.epoch) < it->second) {
      Violation("range " + std::to_string(id.value()) + " went back to generation " +
                std::to_string(r.generation) + " epoch " + std::to_string(r.epoch.value()));
    }
    it->second = std::max(it->second, std::make_pair(r.generation, r.epoch));
  }
}

void Checker::Scan(const std::string& node, const std::shared_ptr<kvnode::RangeStore>& store) {
  Watched& w = watched_[{node, store->id()}];
  if (w.store.lock() != store) w = Watched{store, Seq(0)};
  const Seq committed = store->committed();
  if (committed <= w.seen) return;
  Seq from = std::max(w.seen.Next(), store->log_start());
  w.seen = committed;
  if (from > committed) return;
  auto read = store->ReadLog(from, 64u << 20);
  if (!read.ok() || read->below_log_start) return;
  const RangeId range = store->id();
  for (const kvnode::LogRecord& rec : read->records) {
    if (rec.seq > committed) break;
    auto [it, fresh] = ledger_[range].try_emplace(
        rec.seq, Entry{rec.bytes, rec.epoch, c_.world.now(), node});
    if (fresh) {
      auto [first, inserted] = first_commit_[range].try_emplace(rec.epoch, c_.world.now());
      (void)first;
      (void)inserted;
      continue;
    }
    if (it->second.bytes != rec.bytes) {
      Violation("range " + std::to_string(range.value()) + " seq " +
                std::to_string(rec.seq.value()) + ": " + node + " applied a record of epoch " +
                std::to_string(rec.epoch.value()) + " where " + it->second.node +
                " applied one of epoch " + std::to_string(it->second.epoch.value()) + " at " +
                At(it->second.at));
    }
  }
}

void Checker::OnRead(const std::string& node, RangeId range, Epoch epoch) {
  auto it = first_commit_.find(range);
  if (it == first_commit_.end()) return;
  for (auto e = it->second.upper_bound(epoch); e != it->second.end(); ++e) {
    if (e->second < c_.world.now()) {
      Violation(node + " served a linearizable read of range " + std::to_string(range.value()) +
                " as owner at epoch " + std::to_string(epoch.value()) + " after a record of epoch " +
                std::to_string(e->first.value()) + " was committed at " + At(e->second));
      return;
    }
  }
}

void Checker::CheckLogs() {
  struct Log {
    std::string node;
    std::map<Seq, kvnode::LogRecord> records;
  };
  std::map<RangeId, std::vector<Log>> logs;
  for (const auto& node : c_.nodes) {
    for (const auto& store : Stores(*node)) {
      auto read = store->ReadLog(store->log_start(), 1u << 30);
      if (!read.ok() || read->below_log_start) continue;
      Log log{node->id(), {}};
      for (kvnode::LogRecord& r : read->records) log.records.emplace(r.seq, std::move(r));
      logs[store->id()].push_back(std::move(log));
    }
  }
  for (const auto& [range, all] : logs) {
    for (size_t a = 0; a < all.size(); ++a) {
      for (size_t b = a + 1; b < all.size(); ++b) {
        for (const auto& [seq, ra] : all[a].records) {
          auto rb = all[b].records.find(seq);
          if (rb == all[b].records.end() || rb->second.epoch != ra.epoch) continue;
          if (rb->second.bytes != ra.bytes) {
            Violation("range " + std::to_string(range.value()) + " seq " +
                      std::to_string(seq.value()) + " epoch " + std::to_string(ra.epoch.value()) +
                      ": the logs of " + all[a].node + " and " + all[b].node + " differ");
            break;
          }
        }
      }
    }
  }
}

}  // namespace rangekv::sim
