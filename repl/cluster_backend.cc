#include "repl/cluster_backend.h"

#include "repl/node_call.h"

namespace rangekv::repl {

std::map<uint64_t, RangeProgress> ProgressFromRangeStatus(
    const std::vector<proto::RangeStatus>& status) {
  std::map<uint64_t, RangeProgress> out;
  for (const proto::RangeStatus& s : status) {
    if (!s.owner) continue;
    RangeProgress& p = out[s.range.value()];
    p.hwm = s.hwm.value();
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
      new ClusterBackend(zookeeper, cluster, std::move(client)));
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

}  // namespace rangekv::repl
