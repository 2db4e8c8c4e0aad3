#include "tests/fault/fault_workload.h"

#include <algorithm>
#include <random>
#include <sstream>

namespace rangekv::testing {
namespace {

using lincheck::Completion;
using lincheck::History;
using lincheck::OpKind;
using lincheck::Operation;
using lincheck::Outcome;

bool IsWrite(OpKind k) { return k != OpKind::kGet; }

// A write that took effect with a known version.
bool Acked(const Operation& op) {
  return IsWrite(op.kind) && op.outcome.completion == Completion::kOk && op.outcome.found;
}

}  // namespace

Outcome OutcomeOfWriteError(const Status& st) {
  switch (st.code()) {
    case Code::kCasFailed: return Outcome::CasFailed();
    case Code::kNotOwner:
    case Code::kStaleEpoch:
    case Code::kRangeUnavailable:
    case Code::kNotEnoughReplicas:
    case Code::kBadRequest:
    case Code::kTooLarge:
    case Code::kCrossRange: return Outcome::Failed();
    default: return Outcome::Indeterminate();
  }
}

Workload::Workload(ReplCluster& cluster, lincheck::HistoryRecorder& recorder,
                   WorkloadOptions options)
    : cluster_(cluster),
      recorder_(recorder),
      options_(options),
      slot_ops_(new std::atomic<uint64_t>[static_cast<size_t>(options.key_slots)]) {
  for (int i = 0; i < options_.key_slots; ++i) slot_ops_[i].store(0);
}

Workload::~Workload() { Stop(); }

Status Workload::Start() {
  for (int i = 0; i < options_.threads; ++i) {
    RANGEKV_ASSIGN_OR_RETURN(std::unique_ptr<Client> c,
                             cluster_.NewClient(options_.request_timeout));
    clients_.push_back(std::move(c));
  }
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this, i] { Run(i); });
  return Status::Ok();
}

void Workload::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  clients_.clear();
}

std::vector<std::string> Workload::Keys() const {
  std::lock_guard<std::mutex> l(mu_);
  return {keys_.begin(), keys_.end()};
}

std::string Workload::SlotKey(int slot, int generation) {
  return SpreadKey(slot, "f") + "." + std::to_string(generation);
}

std::string Workload::PickKey(uint64_t r) {
  int slot = static_cast<int>(r % static_cast<uint64_t>(options_.key_slots));
  uint64_t n = slot_ops_[slot].fetch_add(1);
  std::string key = SlotKey(slot, static_cast<int>(n / static_cast<uint64_t>(options_.ops_per_key)));
  std::lock_guard<std::mutex> l(mu_);
  keys_.insert(key);
  return key;
}

void Workload::Run(int index) {
  Client& client = *clients_[static_cast<size_t>(index)];
  const uint64_t me = static_cast<uint64_t>(index) + 1;
  std::mt19937_64 rng(options_.seed * 1000003u + me);
  std::map<std::string, uint64_t> seen;  // key -> version this thread last saw (0: absent)
  uint64_t counter = 0;
  while (!stop_.load()) {
    std::string key = PickKey(rng());
    int dice = static_cast<int>(rng() % 100);
    std::string value = "c" + std::to_string(me) + "." + std::to_string(++counter);
    if (dice < options_.get_pct) {
      auto h = recorder_.InvokeGet(me, key);
      Result<std::optional<VersionedValue>> r = client.Get(key);
      if (!r.ok()) {
        recorder_.Complete(h, Outcome::Failed());
      } else if (!r->has_value()) {
        recorder_.Complete(h, Outcome::GetNotFound());
        seen[key] = 0;
      } else {
        recorder_.Complete(h, Outcome::GetFound((*r)->value, (*r)->version));
        seen[key] = (*r)->version;
      }
      continue;
    }
    lincheck::HistoryRecorder::Handle h = 0;
    Result<uint64_t> r = Status(Code::kInternal, "no op");
    bool is_delete = false;
    if (dice < options_.get_pct + options_.put_pct) {
      h = recorder_.InvokePut(me, key, value);
      r = client.Put(key, value);
    } else if (dice < options_.get_pct + options_.put_pct + options_.cas_pct) {
      auto it = seen.find(key);
      uint64_t expected = it == seen.end() ? 0 : it->second;
      h = recorder_.InvokeCas(me, key, expected, value);
      r = client.Cas(key, expected, value);
    } else {
      is_delete = true;
      h = recorder_.InvokeDelete(me, key);
      r = client.Delete(key);
    }
    if (r.ok()) {
      recorder_.Complete(h, Outcome::Written(*r));
      // After a delete the key reads as absent, which a cas expresses as 0.
      seen[key] = is_delete ? 0 : *r;
    } else {
      recorder_.Complete(h, OutcomeOfWriteError(r.status()));
    }
  }
}

// ---- reading a finished history ----

OutcomeCounts CountOutcomes(const History& h) {
  OutcomeCounts out;
  for (const Operation& op : h) {
    std::string o;
    switch (op.outcome.completion) {
      case Completion::kOk:
        if (op.kind == OpKind::kCas && !op.outcome.found) {
          o = "cas_failed";
        } else if (op.kind == OpKind::kGet) {
          o = op.outcome.found ? "found" : "not_found";
        } else {
          o = "ok";
        }
        break;
      case Completion::kFailed: o = "failed"; break;
      case Completion::kIndeterminate: o = "indeterminate"; break;
      case Completion::kPending: o = "pending"; break;
    }
    ++out[lincheck::OpKindName(op.kind)][o];
  }
  return out;
}

std::string FormatCounts(const OutcomeCounts& counts) {
  std::ostringstream o;
  for (const auto& [kind, by] : counts) {
    uint64_t total = 0;
    for (const auto& [name, n] : by) total += n;
    o << "  " << kind << ": " << total << " (";
    bool first = true;
    for (const auto& [name, n] : by) {
      o << (first ? "" : ", ") << name << " " << n;
      first = false;
    }
    o << ")\n";
  }
  return o.str();
}

size_t LongestKeyHistory(const History& h) {
  std::map<std::string, size_t> per;
  for (const Operation& op : h) {
    if (op.outcome.completion == Completion::kFailed) continue;
    if (op.kind == OpKind::kGet && op.outcome.completion != Completion::kOk) continue;
    ++per[op.key];
  }
  size_t longest = 0;
  for (const auto& [k, n] : per) longest = std::max(longest, n);
  return longest;
}

std::vector<std::string> CheckDurable(const History& h) {
  struct KeyView {
    const Operation* last_acked = nullptr;   // highest version
    const Operation* final_read = nullptr;   // latest invoked successful get
    std::map<std::string, const Operation*> by_value;  // put/cas value -> op (values are unique)
    std::vector<const Operation*> deletes;
  };
  std::map<std::string, KeyView> keys;
  for (const Operation& op : h) {
    KeyView& k = keys[op.key];
    if (op.kind == OpKind::kGet) {
      if (op.outcome.completion == Completion::kOk &&
          (!k.final_read || op.invoke_ns >= k.final_read->invoke_ns)) {
        k.final_read = &op;
      }
      continue;
    }
    if (op.kind == OpKind::kDelete) {
      k.deletes.push_back(&op);
    } else {
      k.by_value[op.value] = &op;
    }
    if (Acked(op) && (!k.last_acked || op.outcome.version > k.last_acked->outcome.version)) {
      k.last_acked = &op;
    }
  }
  // May the write `w` be what the final read shows, given W = last acked?
  auto may_show = [](const Operation* w, const Operation& last) {
    if (!w) return false;
    if (w == &last) return true;
    if (w->outcome.completion == Completion::kIndeterminate ||
        w->outcome.completion == Completion::kPending) {
      return true;
    }
    return Acked(*w) && w->outcome.version > last.outcome.version;
  };
  std::vector<std::string> bad;
  for (const auto& [key, k] : keys) {
    if (!k.last_acked) continue;
    const Operation& w = *k.last_acked;
    std::ostringstream why;
    if (!k.final_read) {
      why << "no successful read of the key after the run";
    } else if (k.final_read->invoke_ns < w.return_ns) {
      why << "the last read was invoked before the last acknowledged write returned";
    } else if (!k.final_read->outcome.found) {
      bool ok = std::any_of(k.deletes.begin(), k.deletes.end(),
                            [&](const Operation* d) { return may_show(d, w); });
      if (!ok) why << "reads as absent";
    } else {
      auto it = k.by_value.find(k.final_read->outcome.value);
      const Operation* shown = it == k.by_value.end() ? nullptr : it->second;
      if (!may_show(shown, w)) {
        why << "reads \"" << k.final_read->outcome.value << "\" v" << k.final_read->outcome.version
            << (shown ? ", written by an older acknowledged or a failed write" : ", never written");
      } else if (k.final_read->outcome.version < w.outcome.version) {
        why << "reads version " << k.final_read->outcome.version << " below the acknowledged "
            << w.outcome.version;
      }
    }
    if (!why.str().empty()) {
      bad.push_back("key \"" + key + "\": last acknowledged write " +
                    lincheck::DescribeOp(w, 0) + ": " + why.str());
    }
  }
  return bad;
}

std::optional<WriteStall> LongestWriteStall(const History& h, int64_t from_ns, int64_t until_ns,
                                            int64_t stop_ns,
                                            const std::function<bool(const std::string&)>& in_range) {
  std::vector<int64_t> done;
  std::vector<int64_t> asked;  // every write tried in the range, whatever came of it
  for (const Operation& op : h) {
    if (!in_range(op.key)) continue;
    if (Acked(op) && op.return_ns >= from_ns) done.push_back(op.return_ns);
    if (IsWrite(op.kind)) asked.push_back(op.invoke_ns);
  }
  if (done.empty()) return std::nullopt;
  std::sort(done.begin(), done.end());
  std::sort(asked.begin(), asked.end());
  // A gap counts from the first write tried after the previous success: a
  // range the workload seldom writes to is idle, not stalled.
  auto waited_since = [&](int64_t prev) {
    auto it = std::lower_bound(asked.begin(), asked.end(), prev);
    return it == asked.end() ? std::optional<int64_t>() : std::optional<int64_t>(*it);
  };
  WriteStall stall;
  int64_t prev = from_ns;
  bool back = false;
  for (int64_t t : done) {
    if (stop_ns != 0 && t >= stop_ns) break;
    stall.ns = std::max(stall.ns, t - std::max(prev, waited_since(prev).value_or(t)));
    prev = t;
    if (until_ns != 0 && t >= until_ns) {
      back = true;
      break;
    }
  }
  if (!back && stop_ns != 0 && until_ns != 0) {
    if (auto first = waited_since(prev); first && *first < stop_ns) {
      stall.ns = std::max(stall.ns, stop_ns - *first);
      stall.cut = true;
    }
  }
  return stall;
}

}  // namespace rangekv::testing
