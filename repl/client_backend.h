// repl/client_backend.h — Backend over one rangekv node via rangekv::Client.
//
// Lifetime: owns its Client; destroying the backend closes the connections.
// The client reconnects by itself after the node goes away, so a lost
// connection shows up as UNAVAILABLE on the commands issued meanwhile and
// later commands work again once the node is back.
#pragma once

#include <memory>
#include <string>

#include "repl/backend.h"

namespace rangekv::repl {

class ClientBackend : public Backend {
 public:
  // Connects to address ("host:port"). UNAVAILABLE when the node cannot be
  // reached within options.connect_timeout; BAD_REQUEST for a malformed
  // address.
  static Result<std::unique_ptr<ClientBackend>> Connect(const std::string& address,
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
  std::string Describe() const override { return description_; }

 protected:
  // The data commands are the same in both modes: ClusterBackend adds the
  // cluster commands over the same Client.
  ClientBackend(std::string description, std::unique_ptr<Client> client)
      : description_(std::move(description)), client_(std::move(client)) {}

  std::string description_;
  std::unique_ptr<Client> client_;
};

}  // namespace rangekv::repl
