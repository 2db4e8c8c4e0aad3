#include "kvnode/cluster/map_reader.h"

#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "common/log.h"
#include "common/mutex.h"

namespace rangekv::kvnode {
namespace {

using GetResult = Result<std::optional<zk::ZnodeData>>;

bool IsNoNode(const Status& st) { return zk::ZkErrorOf(st) == zk::ZkError::kNoNode; }

using Names = Result<std::vector<std::string>>;

// The answers of `calls` async calls, kept in State under one lock and
// waited for once. Shared: completions may outlive a timed-out wait.
template <typename State>
class Gather {
 public:
  explicit Gather(int calls, State state = State()) : left_(calls), state_(std::move(state)) {}
  // A completion: fn(state) under the lock, then one call fewer.
  template <typename Fn>
  void Complete(Fn&& fn) {
    MutexLock lock(mu_);
    fn(state_);
    if (--left_ == 0) cv_.NotifyAll();
  }
  // The state once every call completed; nullopt after `timeout`.
  std::optional<State> Wait(std::chrono::milliseconds timeout) {
    MutexLock lock(mu_);
    if (!cv_.WaitFor(lock, timeout, [&] {
          mu_.AssertHeld();  // WaitFor calls the predicate with the lock held
          return left_ == 0;
        })) {
      return std::nullopt;
    }
    return std::move(state_);
  }

 private:
  Mutex mu_;
  CondVar cv_;
  int left_ GUARDED_BY(mu_);
  State state_ GUARDED_BY(mu_);
};

// Sync(root), then the children of both paths (a missing path has none),
// sent back to back: one round trip, not three. A session's requests are
// served in order, so the reads see everything the sync does.
Status SyncAndList(zk::Session& session, const std::string& root, const std::string& a,
                   const std::string& b, std::chrono::milliseconds timeout,
                   std::vector<std::string>* a_names, std::vector<std::string>* b_names) {
  struct Answers {
    Status synced;
    std::optional<Names> lists[2];
  };
  auto g = std::make_shared<Gather<Answers>>(3);
  session.AsyncSync(root,
                    [g](Status st) { g->Complete([&](Answers& s) { s.synced = std::move(st); }); });
  for (int i = 0; i < 2; ++i) {
    session.AsyncChildren(i == 0 ? a : b, [g, i](Names r) {
      g->Complete([&](Answers& s) { s.lists[i].emplace(std::move(r)); });
    });
  }
  std::optional<Answers> got = g->Wait(timeout);
  if (!got) {
    return Status(Code::kTimeout, "listing the cluster map took longer than " +
                                      std::to_string(timeout.count()) + " ms");
  }
  if (!got->synced.ok() && !IsNoNode(got->synced)) return got->synced;
  std::vector<std::string>* outs[2] = {a_names, b_names};
  for (int i = 0; i < 2; ++i) {
    Names& r = *got->lists[i];
    if (r.ok()) {
      *outs[i] = std::move(*r);
    } else if (!IsNoNode(r.status())) {
      return r.status();
    }
  }
  return Status::Ok();
}

// Gets every path with async calls and one wait: a map of 256 ranges costs
// one round trip, not 256. Results come back in the order of paths.
Result<std::vector<GetResult>> GetAll(zk::Session& session, const std::vector<std::string>& paths,
                                      std::chrono::milliseconds timeout) {
  using Results = std::vector<std::optional<GetResult>>;
  auto g = std::make_shared<Gather<Results>>(static_cast<int>(paths.size()), Results(paths.size()));
  for (size_t i = 0; i < paths.size(); ++i) {
    session.AsyncGet(paths[i], [g, i](GetResult r) {
      g->Complete([&](Results& s) { s[i].emplace(std::move(r)); });
    });
  }
  std::optional<Results> got = g->Wait(timeout);
  if (!got) {
    return Status(Code::kTimeout, "reading " + std::to_string(paths.size()) +
                                      " znodes took longer than " +
                                      std::to_string(timeout.count()) + " ms");
  }
  std::vector<GetResult> out;
  out.reserve(paths.size());
  for (auto& r : *got) out.push_back(std::move(*r));
  return out;
}

}  // namespace

Result<ChangeReads> ReadForChange(zk::Session& session, const cluster::Paths& paths,
                                  const std::vector<RangeId>& ranges,
                                  std::chrono::milliseconds timeout) {
  struct Answers {
    std::vector<std::optional<GetResult>> gets;  // the ranges, then the counter
    std::optional<Names> names;
  };
  std::vector<std::string> to_get;
  for (RangeId id : ranges) to_get.push_back(paths.range(id));
  to_get.push_back(paths.next_range_id());
  Answers empty;
  empty.gets.resize(to_get.size());
  auto g = std::make_shared<Gather<Answers>>(static_cast<int>(to_get.size()) + 1, std::move(empty));
  for (size_t i = 0; i < to_get.size(); ++i) {
    session.AsyncGet(to_get[i], [g, i](GetResult r) {
      g->Complete([&](Answers& s) { s.gets[i].emplace(std::move(r)); });
    });
  }
  session.AsyncChildren(paths.ranges(), [g](Names r) {
    g->Complete([&](Answers& s) { s.names.emplace(std::move(r)); });
  });
  std::optional<Answers> got = g->Wait(timeout);
  if (!got) {
    return Status(Code::kTimeout, "reading the znodes of a range change took longer than " +
                                      std::to_string(timeout.count()) + " ms");
  }
  ChangeReads out;
  for (size_t i = 0; i < to_get.size(); ++i) {
    GetResult& r = *got->gets[i];
    if (!r.ok()) return r.status();
    if (i < ranges.size()) {
      out.ranges.push_back(std::move(*r));
    } else {
      out.counter = std::move(*r);
    }
  }
  if (!got->names->ok()) return got->names->status();
  out.range_names = std::move(**got->names);
  return out;
}

MapReader::MapReader(std::string cluster, NodeId self) : paths_(cluster), self_(std::move(self)) {}

void MapReader::ReportGarbage(const std::string& path, const zk::ZnodeStat& stat,
                              const std::string& why) {
  auto [it, fresh] = garbage_.try_emplace(path, stat.mzxid);
  if (!fresh && it->second == stat.mzxid) return;
  it->second = stat.mzxid;
  LOG_WARN("cluster map: ignoring " << path << " (version " << stat.version.value()
                                    << "): " << why);
}

Result<MapRead> MapReader::Read(zk::Session& session, std::chrono::milliseconds timeout) {
  for (int again = 0;; ++again) {
    bool torn = false;
    Result<MapRead> read = ReadOnce(session, timeout, &torn);
    if (!read.ok() || !torn || again == kTornRereads) return read;
  }
}

Result<MapRead> MapReader::ReadOnce(zk::Session& session, std::chrono::milliseconds timeout,
                                    bool* torn) {
  std::vector<std::string> node_names;
  std::vector<std::string> range_names;
  RANGEKV_RETURN_IF_ERROR(SyncAndList(session, paths_.root(), paths_.nodes(), paths_.ranges(),
                                      timeout, &node_names, &range_names));
  std::vector<std::string> paths = {paths_.config()};
  for (const auto& n : node_names) paths.push_back(paths_.nodes() + "/" + n);
  std::vector<std::optional<RangeId>> range_ids;
  std::set<std::string> seen;  // every znode looked at, to forget garbage that is gone
  for (const auto& n : range_names) {
    std::optional<RangeId> id = cluster::Paths::ParseRangeName(n);
    if (!id) {
      seen.insert(paths_.ranges() + "/" + n);
      ReportGarbage(paths_.ranges() + "/" + n, zk::ZnodeStat{}, "not a range id");
      continue;
    }
    range_ids.push_back(id);
    paths.push_back(paths_.range(*id));
  }
  RANGEKV_ASSIGN_OR_RETURN(std::vector<GetResult> got, GetAll(session, paths, timeout));

  MapRead out;
  size_t at = 0;
  // Config.
  if (!got[at].ok()) return got[at].status();
  if (const auto& d = *got[at]) {
    auto c = cluster::DecodeConfig(d->data);
    if (c.ok()) {
      out.map.config = *c;
      ClearGarbage(paths[at]);
    } else {
      ReportGarbage(paths[at], d->stat, c.status().message());
    }
  }
  ++at;
  // Live nodes.
  for (const auto& name : node_names) {
    const std::string& path = paths[at];
    const GetResult& r = got[at++];
    if (!r.ok()) return r.status();
    if (!*r) continue;  // gone since Children
    const zk::ZnodeData& d = **r;
    if (name == self_.str()) out.self_owner = d.stat.ephemeral_owner;
    auto info = cluster::DecodeNode(d.data);
    if (!info.ok() || info->id.str() != name) {
      ReportGarbage(path, d.stat,
                    info.ok() ? "holds node id " + info->id.str() : info.status().message());
      continue;
    }
    ClearGarbage(path);
    out.map.live_nodes.emplace(info->id, std::move(*info));
  }
  // Ranges.
  std::map<RangeId, cluster::RangeInfo> valid;
  for (const auto& id : range_ids) {
    const std::string& path = paths[at];
    const GetResult& r = got[at++];
    if (!r.ok()) return r.status();
    if (!*r) {
      *torn = true;  // deleted since Children
      continue;
    }
    const zk::ZnodeData& d = **r;
    auto info = cluster::DecodeRange(d.data);
    if (info.ok() && info->id == *id) {
      ClearGarbage(path);
      valid.emplace(*id, *info);
      out.map.ranges.emplace(*id, std::move(*info));
      continue;
    }
    auto last = last_valid_.find(*id);
    std::string why =
        info.ok() ? "holds range id " + std::to_string(info->id.value()) : info.status().message();
    if (last != last_valid_.end()) {
      why += "; keeping its last valid version (epoch " +
             std::to_string(last->second.epoch.value()) + ")";
      valid.emplace(*id, last->second);
      out.map.ranges.emplace(*id, last->second);
    }
    ReportGarbage(path, d.stat, why);
  }
  last_valid_ = std::move(valid);  // ranges deleted from ZooKeeper are forgotten
  seen.insert(paths.begin(), paths.end());
  std::erase_if(garbage_, [&](const auto& entry) { return !seen.count(entry.first); });
  return out;
}

}  // namespace rangekv::kvnode
