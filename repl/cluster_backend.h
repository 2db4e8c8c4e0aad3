// repl/cluster_backend.h — Backend over a cluster via rangekv::Client::Connect.
//
// Lifetime: owns its Client. The client follows the cluster map in
// ZooKeeper, so a node that restarts elsewhere (new address in its znode)
// is found again without restarting the shell; commands issued while its
// ranges have no live owner fail with UNAVAILABLE / RANGE_UNAVAILABLE after
// the request deadline.
#pragma once

#include <memory>
#include <string>

#include "repl/backend.h"

namespace rangekv::repl {

class ClusterBackend : public Backend {
 public:
  // UNAVAILABLE when ZooKeeper cannot be reached within
  // options.connect_timeout; BAD_REQUEST for a bad connect string or name.
  static Result<std::unique_ptr<ClusterBackend>> Connect(const std::string& zookeeper,
                                                         const std::string& cluster,
                                                         ClientOptions options);

  Result<std::optional<VersionedValue>> Get(std::string_view key) override;
  Result<uint64_t> Put(std::string_view key, std::string_view value) override;
  Result<uint64_t> Delete(std::string_view key) override;
  Result<uint64_t> Cas(std::string_view key, uint64_t expected_version,
                       std::string_view value) override;
  Result<ScanResult> Scan(std::string_view start, std::optional<std::string_view> end,
                          uint32_t limit) override;
  Result<uint64_t> Batch(std::vector<BatchOp> ops) override;
  Status Ping() override;
  Result<std::vector<NodeStatus>> Nodes() override { return client_->Nodes(); }
  Result<std::vector<RangeStatus>> Ranges() override { return client_->Ranges(); }
  Result<RangeStatus> Locate(std::string_view key) override { return client_->Locate(key); }
  Result<ClusterIdentity> Identity() override { return ClusterIdentity{cluster_, zookeeper_}; }
  std::string Describe() const override { return "cluster " + cluster_ + " via " + zookeeper_; }

 private:
  ClusterBackend(std::string zookeeper, std::string cluster, std::unique_ptr<Client> client)
      : zookeeper_(std::move(zookeeper)),
        cluster_(std::move(cluster)),
        client_(std::move(client)) {}

  std::string zookeeper_;
  std::string cluster_;
  std::unique_ptr<Client> client_;
};

}  // namespace rangekv::repl
