#include "repl/cluster_backend.h"

#include <algorithm>
#include <thread>

#include "common/escape.h"
#include "repl/node_call.h"

namespace rangekv::repl {

std::map<uint64_t, RangeProgress> ProgressFromRangeStatus(
    const std::vector<proto::RangeStatus>& status) {
  std::map<uint64_t, RangeProgress> out;
  for (const proto::RangeStatus& s : status) {
    if (!s.owner) continue;
    RangeProgress& p = out[s.range.value()];
    p.hwm = s.hwm.value();
    p.keys = s.keys;
    p.bytes = s.bytes;
    p.requests_per_sec = s.requests_per_sec;
    for (const proto::ReplicaProgress& r : s.replicas) {
      const uint64_t last = s.last_seq.value(), acked = r.acked.value();
      p.lag.push_back(RangeProgress::Lag{r.node_id, last > acked ? last - acked : 0});
    }
  }
  return out;
}

Result<std::unique_ptr<ClusterBackend>> ClusterBackend::Connect(const std::string& zookeeper,
                                                                const std::string& cluster,
                                                                ClientOptions options) {
  RANGEKV_ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
                           Client::Connect(zookeeper, cluster, options));
  return std::unique_ptr<ClusterBackend>(
      new ClusterBackend(zookeeper, cluster, options.zk_auth_file, std::move(client)));
}

std::map<uint64_t, RangeProgress> ClusterBackend::Progress(
    const std::vector<RangeStatus>& ranges) {
  std::map<std::string, std::string> owners;  // live owner id -> address
  for (const auto& r : ranges) {
    if (r.owner && !r.owner_address.empty()) owners.emplace(*r.owner, r.owner_address);
  }
  std::map<uint64_t, RangeProgress> out;
  for (const auto& [id, address] : owners) {
    auto answer = QueryOwnerRangeStatus(id, address);
    if (!answer) continue;
    // A node reports what it believes it owns; the map has the last word.
    for (const auto& r : ranges) {
      if (r.owner != id) continue;
      if (auto it = answer->find(r.id); it != answer->end()) out[r.id] = std::move(it->second);
    }
  }
  return out;
}

std::optional<std::map<uint64_t, RangeProgress>> ClusterBackend::QueryOwnerRangeStatus(
    const std::string& /*owner_id*/, const std::string& owner_address) {
  proto::Request req;
  req.id = 1;
  req.kind = proto::OpKind::kRangeStatus;
  Result<proto::Response> resp = CallNode(owner_address, req, kStatusTimeout);
  if (!resp.ok() || resp->kind != proto::Response::Kind::kRangeStatus) return std::nullopt;
  return ProgressFromRangeStatus(resp->status);
}

// The map of this client may lag a moment behind ZooKeeper (and a new
// owner may still be starting): retries while the answer says so, then
// waits until the map shows the new owner, so that `ranges` right after
// shows it too.
Status ClusterBackend::Transfer(uint64_t range, std::string_view node) {
  const auto deadline = std::chrono::steady_clock::now() + kTransferTimeout;
  const std::string name = "range " + std::to_string(range);
  auto owner_now = [&]() -> Result<RangeStatus> {
    RANGEKV_ASSIGN_OR_RETURN(std::vector<RangeStatus> ranges, Ranges());
    auto it = std::find_if(ranges.begin(), ranges.end(),
                           [range](const RangeStatus& r) { return r.id == range; });
    if (it == ranges.end()) return Status(Code::kBadRequest, "no " + name + " in the cluster map");
    return *it;
  };
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    RANGEKV_ASSIGN_OR_RETURN(RangeStatus r, owner_now());
    if (!r.owner || r.owner_address.empty()) {
      last = Status(Code::kRangeUnavailable, name + " has no live owner to hand it over");
    } else {
      const proto::Request req =
          proto::MakeTransfer(RangeId(range), Epoch(r.epoch), std::string(node));
      last = proto::TransferOutcome(CallNode(r.owner_address, req, kTransferTimeout));
      if (last.ok()) {
        return AwaitMap(
            [&]() -> Result<bool> {
              RANGEKV_ASSIGN_OR_RETURN(RangeStatus now, owner_now());
              return now.owner && *now.owner == node;
            },
            deadline);
      }
    }
    if (!NotNow(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return last;
}

// Like a transfer: asked again while the owner is not ready or this map is
// behind, then waits until the map shows a range starting at key.
Status ClusterBackend::Split(std::string_view key) {
  const auto deadline = std::chrono::steady_clock::now() + kTransferTimeout;
  Status last;
  bool asked = false;  // an earlier attempt's outcome may be unknown
  while (std::chrono::steady_clock::now() < deadline) {
    RANGEKV_ASSIGN_OR_RETURN(RangeStatus r, Locate(key));
    if (r.start == key) {
      if (asked) return Status::Ok();
      return Status(Code::kBadRequest, "range " + std::to_string(r.id) + " already starts at " +
                                           QuoteIfNeeded(key) + ": nothing to split");
    }
    if (!r.owner || r.owner_address.empty()) {
      last = Status(Code::kRangeUnavailable,
                    "range " + std::to_string(r.id) + " has no live owner to split it");
    } else {
      const proto::Request req = proto::MakeSplit(RangeId(r.id), Epoch(r.epoch), std::string(key));
      asked = true;
      last = proto::TransferOutcome(CallNode(r.owner_address, req, kTransferTimeout));
      if (last.ok()) {
        return AwaitMap(
            [&]() -> Result<bool> {
              RANGEKV_ASSIGN_OR_RETURN(RangeStatus now, Locate(key));
              return now.start == key;
            },
            deadline);
      }
    }
    if (!NotNow(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return last;
}

// Both ranges must have one owner: the right one is handed to the left's
// owner first (a transfer, like `transfer`). Then like a split: asked again
// while the owner is not ready or its map is behind, then waits until the
// map shows one range over both.
Status ClusterBackend::Merge(std::string_view key) {
  const auto deadline = std::chrono::steady_clock::now() + kTransferTimeout;
  Status last;
  bool moved = false;  // the owner's map may not show our transfer yet
  while (std::chrono::steady_clock::now() < deadline) {
    RANGEKV_ASSIGN_OR_RETURN(RangeStatus left, Locate(key));
    const std::string name = "range " + std::to_string(left.id);
    if (!left.end) {
      last =
          Status(Code::kBadRequest, name + " is the last range: nothing right of it to merge with");
      // A map read straddling a split (this client's own, just before) may
      // still show the range unbounded beside the range split off it.
      RANGEKV_ASSIGN_OR_RETURN(std::vector<RangeStatus> all, Ranges());
      const bool torn = std::any_of(all.begin(), all.end(),
                                    [&](const RangeStatus& r) { return r.start > left.start; });
      if (!torn) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    RANGEKV_ASSIGN_OR_RETURN(RangeStatus right, Locate(*left.end));
    if (!left.owner || left.owner_address.empty()) {
      last = Status(Code::kRangeUnavailable, name + " has no live owner to merge it");
    } else if (right.owner != left.owner) {
      RANGEKV_RETURN_IF_ERROR(Transfer(right.id, *left.owner));
      moved = true;
      continue;
    } else {
      const proto::Request req = proto::MakeMerge(RangeId(left.id), Epoch(left.epoch));
      last = proto::TransferOutcome(CallNode(left.owner_address, req, kTransferTimeout));
      const std::optional<std::string> end = right.end;
      if (last.ok()) {
        return AwaitMap(
            [&]() -> Result<bool> {
              RANGEKV_ASSIGN_OR_RETURN(RangeStatus now, Locate(key));
              return now.end == end;
            },
            deadline);
      }
      // Just handed over: the owner may not have read the map naming it yet.
      if (moved && last.code() == Code::kBadRequest &&
          last.message().find("not owned by this node") != std::string::npos) {
        last = Status(Code::kRangeUnavailable, last.message());
      }
    }
    if (!NotNow(last)) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return last;
}

// The owner or this client's map is not ready yet: ask again.
bool ClusterBackend::NotNow(const Status& st) {
  const Code c = st.code();
  return c == Code::kRangeUnavailable || c == Code::kNotOwner || c == Code::kStaleEpoch ||
         c == Code::kUnavailable;
}

Status ClusterBackend::AwaitMap(const std::function<Result<bool>()>& shown,
                                std::chrono::steady_clock::time_point deadline) {
  while (std::chrono::steady_clock::now() < deadline) {
    // An error (a map read mid-change) is only "not shown yet".
    Result<bool> yes = shown();
    if (yes.ok() && *yes) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return Status::Ok();  // written; this client's map is only slow to show it
}

}  // namespace rangekv::repl
