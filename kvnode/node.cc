#include "kvnode/node.h"

#include <algorithm>

#include "common/escape.h"
#include "common/log.h"

namespace rangekv::kvnode {
namespace {

// Keys may be 4 KiB of binary; error messages show a readable prefix.
std::string ShortKey(std::string_view key) {
  constexpr size_t kShown = 64;
  if (key.size() <= kShown) return QuoteIfNeeded(key);
  return QuoteIfNeeded(key.substr(0, kShown)) + "...";
}

}  // namespace

Node::Node(std::unique_ptr<DataDir> dir, std::vector<std::unique_ptr<RangeStore>> ranges)
    : dir_(std::move(dir)), ranges_(std::move(ranges)) {}

Node::~Node() {
  Status st = Close();
  if (!st.ok()) LOG_ERROR("closing node: " << st.ToString());
}

Result<std::unique_ptr<Node>> Node::OpenStandalone(const NodeConfig& config) {
  RANGEKV_ASSIGN_OR_RETURN(
      std::unique_ptr<DataDir> dir,
      DataDir::Open(config.data_dir, config.id, NodeId(std::string(kDefaultStandaloneNodeId))));
  StoreOptions opts;
  opts.dir = dir->RangeDir(kStandaloneRange);
  opts.fsync = config.fsync;
  opts.batch_interval = config.fsync_interval;
  auto store = RangeStore::Open(kStandaloneRange, KeyRange(), opts);
  if (!store.ok()) {
    return store.status().WithContext("range " + std::to_string(kStandaloneRange.value()) + " in " +
                                      opts.dir);
  }
  std::vector<std::unique_ptr<RangeStore>> ranges;
  ranges.push_back(std::move(*store));
  return std::unique_ptr<Node>(new Node(std::move(dir), std::move(ranges)));
}

Result<RangeStore*> Node::RangeForKey(RangeId requested, std::string_view key) const {
  // The last range starting at or before key is the only one that can hold it.
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), key,
                             [](std::string_view k, const std::unique_ptr<RangeStore>& r) {
                               return k < std::string_view(r->bounds().start());
                             });
  if (it == ranges_.begin() || !(*std::prev(it))->bounds().Contains(key)) {
    return Status(Code::kNotOwner,
                  "node " + id().str() + " serves no range holding key " + ShortKey(key));
  }
  RangeStore* store = std::prev(it)->get();
  if (requested.value() != 0 && requested != store->id()) {
    return Status(Code::kNotOwner, "key " + ShortKey(key) + " is in range " +
                                       std::to_string(store->id().value()) + ", not range " +
                                       std::to_string(requested.value()));
  }
  return store;
}

Result<RangeStore*> Node::RangeForBatch(RangeId requested,
                                        const std::vector<proto::WriteOp>& ops) const {
  if (ops.empty()) return Status(Code::kBadRequest, "empty batch");
  RANGEKV_ASSIGN_OR_RETURN(RangeStore * store, RangeForKey(requested, ops.front().key));
  for (const auto& op : ops) {
    if (!store->bounds().Contains(op.key)) {
      return Status(Code::kCrossRange, "batch keys " + ShortKey(ops.front().key) + " and " +
                                           ShortKey(op.key) + " are in different ranges");
    }
  }
  return store;
}

Status Node::Close() {
  if (closed_) return Status::Ok();
  closed_ = true;
  Status first;
  for (auto& r : ranges_) {
    Status st = r->Close();
    if (!st.ok() && first.ok()) first = st.WithContext("range " + std::to_string(r->id().value()));
  }
  return first;
}

}  // namespace rangekv::kvnode
