#include "kvnode/server/node.h"

#include <algorithm>
#include <set>

#include "common/log.h"

namespace rangekv::kvnode {
namespace {

constexpr int64_t kSlowOpenMs = 100;
// How long news of a split or merge patches the maps applied (node.h).
constexpr std::chrono::seconds kNewsLifetime{30};

std::string RangeName(RangeId id) { return "range " + std::to_string(id.value()); }

int64_t MsSince(MonoClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(MonoClock::now() - start).count();
}

}  // namespace

std::string NewLife(Env& env) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(env.RandomU64()));
  return buf;
}

Node::Node(std::unique_ptr<DataDir> dir, NodeConfig config, Mode mode)
    : dir_(std::move(dir)),
      config_(std::move(config)),
      env_(config_.env != nullptr ? *config_.env : DefaultEnv()),
      life_(NewLife(env_)),
      mode_(mode) {
  if (mode_ == Mode::kCluster) {
    parking_ = std::make_unique<WriteParking>(env_);
    remover_ = std::make_unique<DirRemover>(env_);
  }
  Publish(RoutingTable::Unavailable(dir_->node_id(), std::string(kNotYetJoined)));
}

Node::~Node() {
  Status st = Close();
  if (!st.ok()) LOG_ERROR("closing node: " << st.ToString());
}

Result<std::unique_ptr<Node>> Node::OpenStandalone(const NodeConfig& config) {
  RANGEKV_ASSIGN_OR_RETURN(
      std::unique_ptr<DataDir> dir,
      DataDir::Open(config.env != nullptr ? *config.env : DefaultEnv(), config.data_dir, config.id,
                    NodeId(std::string(kDefaultStandaloneNodeId))));
  std::unique_ptr<Node> node(new Node(std::move(dir), config, Mode::kStandalone));
  cluster::RangeInfo whole;
  whole.id = kStandaloneRange;
  whole.owner = node->id();
  auto store = node->OpenStore(whole);
  if (!store.ok()) return store.status();
  RangeRoute route;
  route.id = kStandaloneRange;
  route.owner = node->id();
  auto slot = std::make_shared<RangeSlot>(kStandaloneRange, std::move(*store));
  slot->OpenAll();  // no replication: one node is the whole truth
  route.slot = slot;
  {
    MutexLock lock(node->control_mu_);  // uncontended (not shared yet), but slots_ is guarded
    node->slots_.emplace(kStandaloneRange, std::move(slot));
  }
  node->Publish(RoutingTable::Build(node->id(), {std::move(route)}));
  return node;
}

Result<std::unique_ptr<Node>> Node::OpenCluster(const NodeConfig& config) {
  if (!config.id) return Status(Code::kBadRequest, "a cluster node needs an id (--id)");
  RANGEKV_ASSIGN_OR_RETURN(
      std::unique_ptr<DataDir> dir,
      DataDir::Open(config.env != nullptr ? *config.env : DefaultEnv(), config.data_dir,
                    config.id, *config.id));
  std::unique_ptr<Node> node(new Node(std::move(dir), config, Mode::kCluster));
  // Durably before anything else: a crash right after this start must not
  // make the next one (same boot, so no longer "rebooted") look trusted.
  if (node->suspect()) RANGEKV_RETURN_IF_ERROR(node->dir_->SetSuspect(true));
  Node* raw = node.get();
  node->replicator_ = std::make_unique<Replicator>(
      node->id(), node->life(), config.replication,
      [raw](RangeId id) { return raw->StoreOptionsFor(id); }, &node->env_, config.transport);
  return node;
}

bool Node::SuspectNow() {
  const bool now = suspect() && !(replicator_ && replicator_->AllCaughtUp());
  if (!now && (copies_lost_.load() || (replicator_ && replicator_->lost_records()))) {
    ClearCopyingMarkers();
  }
  if (Status st = dir_->SetSuspect(now); !st.ok()) {
    LOG_WARN("updating " << dir_->path() << "/" << kSuspectFileName << ": " << st.ToString());
  }
  return now;
}

cluster::NodeInfo Node::WithSuspicion(cluster::NodeInfo self, bool suspect) const {
  self.suspect = suspect;
  self.log_ends.clear();
  if (!suspect) return self;
  for (const RangeRoute& r : routing()->ranges()) {
    std::shared_ptr<RangeStore> store = r.slot ? r.slot->store() : nullptr;
    if (!store) continue;
    const LogPosition last = store->last();
    self.log_ends[r.id] = cluster::LogEnd{last.epoch, last.seq};
  }
  return self;
}

void Node::ClearCopyingMarkers() {
  const std::string ranges = dir_->RangesDir();
  auto names = env_.fs().ListDir(ranges);
  if (!names.ok()) return;  // tried again on the next call
  for (const std::string& name : *names) {
    if (name.size() <= 8 || name.compare(name.size() - 8, 8, ".copying") != 0) continue;
    if (Status st = env_.fs().Remove(fs::JoinPath(ranges, name)); !st.ok()) {
      LOG_WARN("removing " << fs::JoinPath(ranges, name) << ": " << st.ToString());
    }
  }
}

StoreOptions Node::StoreOptionsFor(RangeId id) const {
  StoreOptions opts;
  opts.dir = dir_->RangeDir(id);
  opts.env = &env_;
  // Replicated: gated from Open, so nothing uncommitted is ever applied.
  opts.commit_gate = mode_ == Mode::kCluster;
  opts.fsync = config_.fsync;
  opts.batch_interval = config_.fsync_interval;
  if (config_.segment_bytes != 0) opts.segment_bytes = config_.segment_bytes;
  if (config_.snapshot_after_bytes != 0) opts.snapshot_after_bytes = config_.snapshot_after_bytes;
  if (config_.keep_log_records != 0) opts.keep_records_below_snapshot = config_.keep_log_records;
  return opts;
}

std::map<RangeId, Node::OwnedCounts> Node::OwnedRequestCounts() const {
  std::map<RangeId, OwnedCounts> out;
  for (const RangeRoute& r : routing()->ranges()) {
    if (!r.slot || r.owner != id()) continue;
    OwnedCounts& c = out[r.id];
    c.requests = r.slot->requests();
    c.mergeable = r.slot->mergeable();
    if (auto store = r.slot->store()) {
      const StoreStats st = store->Stats();
      c.keys = st.keys;
      c.bytes = st.bytes;
    }
  }
  return out;
}

Route Node::RouteKey(RangeId requested, Epoch epoch, std::string_view key,
                     Access access) const {
  return routing()->ForKey(requested, epoch, key, access);
}

Route Node::RouteBatch(RangeId requested, Epoch epoch,
                       const std::vector<proto::WriteOp>& ops) const {
  return routing()->ForBatch(requested, epoch, ops);
}

Result<std::shared_ptr<RangeStore>> Node::OpenStore(const cluster::RangeInfo& r, StoreSeed* seed) {
  StoreOptions opts = StoreOptionsFor(r.id);
  auto start = MonoClock::now();
  auto store =
      seed ? RangeStore::Open(r.id, r.bounds, opts, seed) : RangeStore::Open(r.id, r.bounds, opts);
  if (!store.ok()) return store.status().WithContext(RangeName(r.id) + " in " + opts.dir);
  if ((*store)->cut_tail_at_open()) tail_cut_.store(true);
  // The store logs what it recovered; the time it took matters when it is long.
  int64_t ms = MsSince(start);
  if (ms >= kSlowOpenMs) {
    LOG_INFO(RangeName(r.id) << " " << r.bounds.ToString() << ": opened in " << ms << " ms");
  } else {
    LOG_DEBUG(RangeName(r.id) << " " << r.bounds.ToString() << ": opened in " << ms << " ms");
  }
  return std::shared_ptr<RangeStore>(std::move(*store));
}

Result<std::shared_ptr<RangeStore>> Node::OpenRangeStore(const cluster::RangeInfo& r,
                                                         const cluster::ClusterMap& map,
                                                         ApplyReport& report) {
  RANGEKV_ASSIGN_OR_RETURN(std::optional<SeedRecipe> recipe,
                           RangeStore::PendingSeed(env_.fs(), dir_->RangeDir(r.id)));
  if (!recipe) return OpenStore(r);
  auto start = MonoClock::now();
  auto stashed = unopened_seeds_.find(r.id);
  if (stashed == unopened_seeds_.end() || stashed->second.at() != recipe->at) {
    Result<StoreSeed> seed = MakeSeed(*recipe, map, report);
    if (!seed.ok()) return seed.status().WithContext(RangeName(r.id) + "'s seed");
    stashed = unopened_seeds_.insert_or_assign(r.id, std::move(*seed)).first;
  }
  const int64_t copied_ms = MsSince(start);
  const size_t keys = stashed->second.keys();
  auto store = OpenStore(r, &stashed->second);
  if (store.ok() || !stashed->second.usable()) unopened_seeds_.erase(stashed);
  if (store.ok()) {
    LOG_INFO(RangeName(r.id) << " " << r.bounds.ToString() << ": opened from " << keys
                             << " keys taken from the local copies at seq " << recipe->at.value()
                             << " in " << copied_ms << " ms (+" << MsSince(start) - copied_ms
                             << " ms to open); its first snapshot follows");
    if (config_.replication.step_hook) config_.replication.step_hook("seed.opened", r.id);
  }
  return store;
}

Result<StoreSeed> Node::MakeSeed(const SeedRecipe& recipe, const cluster::ClusterMap& map,
                                 ApplyReport& report) {
  std::vector<std::shared_ptr<RangeStore>> held;
  std::vector<RangeStore*> stores;
  // A merge has two sources, a split one (store_seed.h).
  if (recipe.sources.size() > 2) return Status(Code::kInternal, "a seed of more than two sources");
  bool gone[2] = {false, false};
  for (const SeedSource& src : recipe.sources) {
    std::shared_ptr<RangeStore> store = ParentStore(map, src.range, src.span, report);
    if (!store) {
      return Status(Code::kCorruption, "no copy of its source " + RangeName(src.range) + " here");
    }
    if (!store->Holds(src.span)) {
      // Taken by a build of this range that did not open (its files hold
      // the keys, this process's map no longer does), or the source was
      // narrowed here before this range was built from it (simulation
      // seed 1460: a restart reopened the parent after the split, its
      // bounds narrowed): the seed can never be taken. Copied from the
      // replicas, like a damaged copy.
      return Status(Code::kCorruption,
                    RangeName(src.range) + (store->gave_away()
                                                ? " gave its keys to an earlier build of this range"
                                                : " no longer holds " + src.span.ToString()));
    }
    if (store->committed() < src.at) {
      // The split or merge record in the map proves every ISR member held
      // the source's log through src.at durably, and the owner saw it
      // committed: apply it (after a restart, the commit point on disk
      // may lag behind).
      store->Commit(src.at);
      report.retry_soon = true;
      return Status(Code::kRangeUnavailable, RangeName(src.range) + " has applied " +
                                                 std::to_string(store->committed().value()) +
                                                 " of " + std::to_string(src.at.value()));
    }
    gone[stores.size()] = SourceGone(map, src.range);
    stores.push_back(store.get());
    held.push_back(std::move(store));
  }
  return RangeStore::TakeSeed(recipe, stores, std::span<const bool>(gone, stores.size()));
}

// A merged range's source that nothing else here will build from: the
// merged range may take all of its keys (RangeStore::TakeSeed). A split's
// parent is still in the map: it gives only the span split off.
bool Node::SourceGone(const cluster::ClusterMap& map, RangeId source) const {
  if (map.ranges.count(source)) return false;
  for (const auto& [id, r] : map.ranges) {
    if (r.split_parent == source && ShouldDerive(r)) return false;
  }
  return true;
}

std::set<RangeId> Node::SeedSources() const {
  std::set<RangeId> out;
  auto names = env_.fs().ListDir(dir_->RangesDir());
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    if (name.size() <= 5 || name.compare(name.size() - 5, 5, ".seed") != 0) continue;
    const std::string range_dir = fs::JoinPath(dir_->RangesDir(), name.substr(0, name.size() - 5));
    auto recipe = ReadSeedMarker(env_.fs(), range_dir);
    if (!recipe.ok()) {
      LOG_WARN(range_dir << ": " << recipe.status().ToString());
      continue;
    }
    if (!*recipe) continue;
    for (const SeedSource& src : (*recipe)->sources) out.insert(src.range);
  }
  return out;
}

bool Node::InIsrAsThisCopy(const cluster::RangeInfo& r) const {
  if (std::find(r.isr.begin(), r.isr.end(), id()) == r.isr.end()) return false;
  const std::string granted = r.IsrIncarnation(id());
  return granted.empty() || granted == dir_->incarnation();
}

Result<std::shared_ptr<RangeStore>> Node::RebuildStore(const cluster::RangeInfo& r,
                                                      const Status& damage) {
  const std::string dir = dir_->RangeDir(r.id);
  const std::string aside = dir + ".damaged";
  fs::FileSystem& fs = env_.fs();
  LOG_ERROR(RangeName(r.id) << ": " << damage.ToString() << "; moving its files to " << aside
                            << " and copying the range again from its replicas");
  RANGEKV_RETURN_IF_ERROR(MarkCopying(fs, dir));  // first: whatever happens next, not in sync
  RANGEKV_RETURN_IF_ERROR(fs.RemoveAll(aside));
  RANGEKV_RETURN_IF_ERROR(fs.Rename(dir, aside));
  RANGEKV_RETURN_IF_ERROR(fs.SyncDir(fs::DirName(dir)));
  return OpenStore(r);
}

Status Node::CloseStore(RangeId id, RangeStore& store) {
  Status st = store.Close();
  if (!st.ok()) {
    LOG_ERROR(RangeName(id) << ": closing its store: " << st.ToString());
  } else {
    LOG_INFO(RangeName(id) << ": closed");
  }
  return st;
}

ApplyReport Node::Apply(const cluster::ClusterMap& map) {
  MutexLock lock(control_mu_);
  const MonoClock::time_point now = MonoClock::now();
  std::erase_if(
      news_, [&](const News& n) { return map.ShowsNews(n.wrote) || now - n.at >= kNewsLifetime; });
  last_map_ = map;
  if (news_.empty()) return ApplyLocked(map);
  return ApplyLocked(PatchedLastMap());
}

ApplyReport Node::ApplyNews(cluster::ClusterMap::Written news) {
  MutexLock lock(control_mu_);
  ApplyReport none;
  none.served = routing()->served();
  if (!last_map_) return none;
  if (news.empty()) {
    if (news_.empty()) return none;
  } else {
    auto same = [&](const News& n) { return n.wrote == news; };
    if (last_map_->ShowsNews(news) || std::any_of(news_.begin(), news_.end(), same)) return none;
    news_.push_back(News{MonoClock::now(), std::move(news)});
  }
  return ApplyLocked(PatchedLastMap());
}

bool Node::NewsOutstanding() const {
  MutexLock lock(control_mu_);
  return !news_.empty();
}

cluster::ClusterMap Node::PatchedLastMap() const {
  cluster::ClusterMap patched = *last_map_;
  for (const News& n : news_) patched.PatchNews(n.wrote);
  return patched;
}

ApplyReport Node::ApplyLocked(const cluster::ClusterMap& map) {
  ApplyReport report;
  if (mode_ != Mode::kCluster || closed_) {
    LOG_ERROR("node " << id().str() << ": cluster map ignored (standalone or closed node)");
    report.served = routing()->served();
    return report;
  }
  report.listed = map.ranges.size();
  std::vector<RangeRoute> routes;
  std::vector<HeldRange> held;
  std::set<RangeId> kept;
  std::set<RangeId> busy_parents;
  split_lost_.clear();
  const std::map<RangeId, Status> waiting = DeriveSplits(map, report, &busy_parents);
  // Ranges still to write their first snapshot are built from these again
  // after a crash: they keep every key, as they are.
  const std::set<RangeId> seed_sources = SeedSources();
  busy_parents.insert(seed_sources.begin(), seed_sources.end());
  for (const auto& [rid, r] : map.ranges) {
    RangeRoute route{r.id,    r.bounds,     r.epoch, r.owner, "",
                     r.state, r.generation, nullptr, Status()};
    if (r.owner) {
      if (const cluster::NodeInfo* n = map.Node(*r.owner)) route.owner_address = n->address;
    }
    bool holds = r.owner == id() ||
                 std::find(r.replicas.begin(), r.replicas.end(), id()) != r.replicas.end();
    if (holds && waiting.count(rid)) {
      route.unavailable = waiting.at(rid);  // built at a later Apply
    } else if (holds) {
      kept.insert(rid);
      // A parent keeps every key (its store as it is) until the ranges
      // split off it are built here, and durable.
      route.slot = HoldRange(r, map, report, &route.unavailable, !busy_parents.count(rid));
      if (route.slot) {
        HeldRange h{r, route.slot, route.owner_address, {}};
        for (const NodeId& n : r.replicas) {
          if (const cluster::NodeInfo* info = map.Node(n)) h.live.emplace(n, *info);
        }
        held.push_back(std::move(h));
      }
    }
    routes.push_back(std::move(route));
  }
  if (replicator_) {
    // Untrusted before the roles change: no Leader may exist, even for a
    // moment, on a copy that was just lost (it would answer fetches from
    // an empty log at the range's epoch).
    for (RangeId rid : report.rebuilt) replicator_->MarkUntrusted(rid);
    replicator_->Update(std::move(held), map.config ? map.config->min_insync : 1);
    if (!report.rebuilt.empty()) {
      // Suspect until caught up, durably: a node that lost a copy is no
      // candidate for ownership, in this life or the next.
      copies_lost_.store(true);
      if (Status st = dir_->SetSuspect(true); !st.ok()) {
        LOG_WARN("marking " << dir_->path() << " suspect: " << st.ToString());
      }
    }
  }
  auto table = RoutingTable::Build(id(), std::move(routes), &report.overlapping);
  report.served = table->served();
  Publish(std::move(table));
  NarrowPending();
  // Only now, with no new request able to reach them, close what moved away.
  for (auto it = slots_.begin(); it != slots_.end();) {
    if (kept.count(it->first)) {
      ++it;
      continue;
    }
    auto store = it->second->store();
    auto merging = merge_parents_.find(it->first);
    if (store && (merging == merge_parents_.end() || merging->second != store)) {
      (void)CloseStore(it->first, *store);  // logged
      if (store->base_pending()) {
        // Not held here any more, and its base never reached the disk: no
        // longer a copy, and its sources need not keep their keys for it
        // (opened again, it is copied anew).
        const std::string dir = dir_->RangeDir(it->first);
        if (Status st = RemoveSeedMarker(env_.fs(), dir); !st.ok()) {
          LOG_WARN(RangeName(it->first) << ": " << st.ToString());
        }
      }
    }
    report.closed.push_back(it->first);
    open_errors_.erase(it->first);
    it = slots_.erase(it);
  }
  DropMergedParents(map, seed_sources);
  DropRangesLeft(map, seed_sources);
  for (auto it = unopened_seeds_.begin(); it != unopened_seeds_.end();) {
    it = kept.count(it->first) || waiting.count(it->first) ? std::next(it)
                                                           : unopened_seeds_.erase(it);
  }
  // Applied again soon while a range's base is only in memory: its
  // sources narrow (or go) once it is durable.
  for (const auto& [rid, slot] : slots_) {
    std::shared_ptr<RangeStore> store = slot->store();
    report.retry_soon = report.retry_soon || (store && store->base_pending());
  }
  for (const auto& [rid, store] : merge_parents_) {
    report.retry_soon = report.retry_soon || store->base_pending();
  }
  return report;
}

std::shared_ptr<RangeSlot> Node::HoldRange(const cluster::RangeInfo& r,
                                           const cluster::ClusterMap& map, ApplyReport& report,
                                           Status* unavailable, bool narrow) {
  const RangeId rid = r.id;
  auto it = slots_.find(rid);
  if (it != slots_.end()) {
    // A map older than what this node acted on (read before a split and
    // applied after it): the store stays as it is, never widened.
    if (r.generation < it->second->generation()) return it->second;
    it->second->RaiseGeneration(r.generation);
    std::shared_ptr<RangeStore> store = it->second->store();
    if (!narrow) return it->second;
    if (store && Narrow(*it->second, r, map)) return it->second;  // as is, or split
    LOG_INFO(RangeName(rid) << ": bounds changed to " << r.bounds.ToString() << "; reopening");
    if (store) (void)CloseStore(rid, *store);  // logged; the reopen below decides
    slots_.erase(it);
    report.closed.push_back(rid);
  }
  // A copy being made again (its marker survived a restart), or a range
  // directory missing or empty in a data directory that is not new while
  // the map counts this node's copy in the ISR (a directory deleted, a disk
  // replaced under it): the store that opens must not pass for the copy
  // the ISR counted.
  bool lost = false;
  if (mode_ == Mode::kCluster) {
    const std::string range_dir = dir_->RangeDir(rid);
    const bool empty = RangeDirEmpty(env_.fs(), range_dir);
    lost = IsCopying(env_.fs(), range_dir) || (empty && !dir_->created() && InIsrAsThisCopy(r)) ||
           (empty && split_lost_.count(rid));
    if (lost) {
      if (Status st = MarkCopying(env_.fs(), range_dir); !st.ok()) {
        LOG_WARN(RangeName(rid) << ": marking its copy as being made again: " << st.ToString());
      }
    }
  }
  auto store = OpenRangeStore(r, map, report);
  if (!store.ok() && store.status().code() == Code::kCorruption && mode_ == Mode::kCluster) {
    // The replicas hold the range: set the damaged copy aside and copy the
    // range again from them.
    store = RebuildStore(r, store.status());
    if (store.ok()) report.rebuilt.push_back(rid);
  } else if (store.ok() && lost) {
    LOG_ERROR(RangeName(rid) << ": the local copy was lost (" << CopyingMarkerPath(dir_->RangeDir(rid))
                             << "); copying the range again from its replicas");
    report.rebuilt.push_back(rid);
  }
  if (!store.ok()) {
    *unavailable = store.status();
    report.failed.push_back(rid);
    auto& last = open_errors_[rid];
    if (last != store.status().ToString()) {
      last = store.status().ToString();
      LOG_ERROR(RangeName(rid) << " cannot be served: " << last);
    }
    return nullptr;
  }
  open_errors_.erase(rid);
  report.opened.push_back(rid);
  auto slot = std::make_shared<RangeSlot>(rid, std::move(*store));
  slot->set_on_unfence([p = parking_.get()] { p->Wake(); });  // parking_ outlives slots
  slot->RaiseGeneration(r.generation);
  if (auto parent = slots_.find(r.split_parent);
      r.split_parent.value() != 0 && parent != slots_.end()) {
    slot->InheritLoad(*parent->second);
  }
  slots_.emplace(rid, slot);
  return slot;
}

void Node::Suspend(std::string reason) {
  MutexLock lock(control_mu_);
  if (closed_) return;
  // News must not bring a suspended node back: only the next Apply does.
  last_map_.reset();
  news_.clear();
  Publish(RoutingTable::Unavailable(id(), std::move(reason)));
}

Status Node::Close() {
  MutexLock lock(control_mu_);
  if (closed_) return Status::Ok();
  closed_ = true;
  Publish(RoutingTable::Unavailable(id(), "node is shutting down"));
  if (parking_) parking_->Close();  // parked writes get their refusal
  if (remover_) remover_->Close();
  if (replicator_) replicator_->Stop();
  Status first;
  for (auto& [rid, slot] : slots_) {
    std::shared_ptr<RangeStore> store = slot->store();
    if (!store) continue;
    Status st = store->Close();
    if (!st.ok() && first.ok()) first = st.WithContext(RangeName(rid));
  }
  slots_.clear();
  for (auto& [rid, store] : merge_parents_) {
    Status st = store->Close();
    if (!st.ok() && first.ok()) first = st.WithContext(RangeName(rid));
  }
  merge_parents_.clear();
  unopened_seeds_.clear();
  if (first.ok()) {
    // Everything is closed and fsynced: the next start may trust it.
    if (Status st = dir_->MarkClean(); !st.ok()) LOG_WARN("marking a clean stop: " << st.ToString());
  }
  return first;
}

}  // namespace rangekv::kvnode
