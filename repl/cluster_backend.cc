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

}  // namespace rangekv::repl
