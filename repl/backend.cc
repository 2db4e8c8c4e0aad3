#include "repl/backend.h"

namespace rangekv::repl {
namespace {

Status NeedsZk(std::string_view command) {
  return Status(Code::kBadRequest, "'" + std::string(command) +
                                       "' needs --zk (kvrepl --zk CONNECT [--cluster NAME])");
}

}  // namespace

Result<std::vector<NodeStatus>> Backend::Nodes() { return NeedsZk("nodes"); }
Result<std::vector<RangeStatus>> Backend::Ranges() { return NeedsZk("ranges"); }
Result<RangeStatus> Backend::Locate(std::string_view) { return NeedsZk("locate"); }
Result<Backend::ClusterIdentity> Backend::Identity() { return NeedsZk("status"); }
Status Backend::Transfer(uint64_t, std::string_view) { return NeedsZk("transfer"); }
Status Backend::Move(uint64_t, std::string_view, std::string_view) { return NeedsZk("move"); }
Status Backend::Decommission(std::string_view) { return NeedsZk("decommission"); }
Status Backend::Recommission(std::string_view) { return NeedsZk("recommission"); }
Status Backend::Split(std::string_view) { return NeedsZk("split"); }
Status Backend::Merge(std::string_view) { return NeedsZk("merge"); }
std::map<uint64_t, RangeProgress> Backend::Progress(const std::vector<RangeStatus>&) {
  return {};
}

}  // namespace rangekv::repl
