#include "repl/cluster_backend.h"

namespace rangekv::repl {

Result<std::unique_ptr<ClusterBackend>> ClusterBackend::Connect(const std::string& zookeeper,
                                                                const std::string& cluster,
                                                                ClientOptions options) {
  RANGEKV_ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
                           Client::Connect(zookeeper, cluster, options));
  return std::unique_ptr<ClusterBackend>(
      new ClusterBackend(zookeeper, cluster, std::move(client)));
}

Result<std::optional<VersionedValue>> ClusterBackend::Get(std::string_view key) {
  return client_->Get(key);
}

Result<uint64_t> ClusterBackend::Put(std::string_view key, std::string_view value) {
  return client_->Put(key, value);
}

Result<uint64_t> ClusterBackend::Delete(std::string_view key) { return client_->Delete(key); }

Result<uint64_t> ClusterBackend::Cas(std::string_view key, uint64_t expected_version,
                                    std::string_view value) {
  return client_->Cas(key, expected_version, value);
}

Result<ScanResult> ClusterBackend::Scan(std::string_view start,
                                       std::optional<std::string_view> end, uint32_t limit) {
  return client_->Scan(start, end, limit);
}

Result<uint64_t> ClusterBackend::Batch(std::vector<BatchOp> ops) {
  return client_->Batch(std::move(ops));
}

Status ClusterBackend::Ping() { return client_->Ping(); }

}  // namespace rangekv::repl
