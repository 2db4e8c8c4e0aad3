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

#include "repl/client_backend.h"

namespace rangekv::repl {

class ClusterBackend : public ClientBackend {
 public:
  // UNAVAILABLE when ZooKeeper cannot be reached within
  // options.connect_timeout; BAD_REQUEST for a bad connect string or name.
  static Result<std::unique_ptr<ClusterBackend>> Connect(const std::string& zookeeper,
                                                         const std::string& cluster,
                                                         ClientOptions options);

  Result<std::vector<NodeStatus>> Nodes() override { return client_->Nodes(); }
  Result<std::vector<RangeStatus>> Ranges() override { return client_->Ranges(); }
  Result<RangeStatus> Locate(std::string_view key) override { return client_->Locate(key); }
  Result<ClusterIdentity> Identity() override { return ClusterIdentity{cluster_, zookeeper_}; }

 private:
  ClusterBackend(std::string zookeeper, std::string cluster, std::unique_ptr<Client> client)
      : ClientBackend("cluster " + cluster + " via " + zookeeper, std::move(client)),
        zookeeper_(std::move(zookeeper)),
        cluster_(std::move(cluster)) {}

  std::string zookeeper_;
  std::string cluster_;
};

}  // namespace rangekv::repl
