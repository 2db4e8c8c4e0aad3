#include "repl/client_backend.h"

namespace rangekv::repl {

Result<std::unique_ptr<ClientBackend>> ClientBackend::Connect(const std::string& address,
                                                              ClientOptions options) {
  RANGEKV_ASSIGN_OR_RETURN(std::unique_ptr<Client> client,
                           Client::ConnectNode(address, options));
  return std::unique_ptr<ClientBackend>(new ClientBackend(address, std::move(client)));
}

Result<std::optional<VersionedValue>> ClientBackend::Get(std::string_view key) {
  CallOptions o;
  o.consistency = consistency_;
  return client_->Get(key, o);
}

Result<uint64_t> ClientBackend::Put(std::string_view key, std::string_view value) {
  return client_->Put(key, value);
}

Result<uint64_t> ClientBackend::Delete(std::string_view key) { return client_->Delete(key); }

Result<uint64_t> ClientBackend::Cas(std::string_view key, uint64_t expected_version,
                                    std::string_view value) {
  return client_->Cas(key, expected_version, value);
}

Result<ScanResult> ClientBackend::Scan(std::string_view start,
                                       std::optional<std::string_view> end, uint32_t limit) {
  CallOptions o;
  o.consistency = consistency_;
  return client_->Scan(start, end, limit, o);
}

Result<uint64_t> ClientBackend::Batch(std::vector<BatchOp> ops) {
  return client_->Batch(std::move(ops));
}

Status ClientBackend::Ping() { return client_->Ping(); }

}  // namespace rangekv::repl
