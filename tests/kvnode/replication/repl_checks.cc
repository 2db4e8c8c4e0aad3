#include "tests/kvnode/replication/repl_checks.h"

#include <algorithm>
#include <sstream>

#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

constexpr int kMaxReported = 5;

std::string Printable(const std::string& s) {
  std::ostringstream o;
  for (unsigned char ch : s) {
    if (ch >= 0x20 && ch < 0x7f) {
      o << ch;
    } else {
      static const char* kHex = "0123456789abcdef";
      o << "\\x" << kHex[ch >> 4] << kHex[ch & 15];
    }
  }
  return o.str();
}

std::string Brief(const std::string& value) {
  return value.size() <= 40 ? Printable(value)
                            : Printable(value.substr(0, 40)) + "...(" +
                                  std::to_string(value.size()) + " bytes)";
}

std::string ValueOf(const std::string& tag, int i, size_t value_bytes) {
  std::string v = tag + "-value-" + std::to_string(i) + "-";
  if (v.size() < value_bytes) v.append(value_bytes - v.size(), static_cast<char>('a' + i % 26));
  return v;
}

}  // namespace

Status WriteSpread(Client& client, int from, int count, const std::string& tag,
                   size_t value_bytes, Dataset* out) {
  for (int i = from; i < from + count; ++i) {
    std::string key = SpreadKey(i, tag);
    std::string value = ValueOf(tag, i, value_bytes);
    Result<uint64_t> v = PutRetry(client, key, value);
    if (!v.ok()) {
      return Status(v.status().code(),
                    "put " + Printable(key) + ": " + v.status().ToString());
    }
    (*out)[key] = AckedWrite{value, *v};
  }
  return Status::Ok();
}

std::string KeyInRange(const cluster::RangeInfo& r, const std::string& suffix) {
  // "\x01" sorts after the empty start of the first range and below every
  // start of the initial split's other ranges.
  std::string prefix = r.bounds.start().empty() ? std::string(1, '\x01') : r.bounds.start();
  return prefix + suffix;
}

Status WriteInRange(Client& client, const cluster::RangeInfo& range, int from, int count,
                    const std::string& tag, size_t value_bytes, Dataset* out) {
  for (int i = from; i < from + count; ++i) {
    std::string key = KeyInRange(range, tag + "-" + std::to_string(i));
    if (!range.bounds.Contains(key)) {
      return Status(Code::kInternal, "key " + Printable(key) + " outside " + Describe(range));
    }
    std::string value = ValueOf(tag, i, value_bytes);
    Result<uint64_t> v = PutRetry(client, key, value);
    if (!v.ok()) {
      return Status(v.status().code(),
                    "put " + Printable(key) + ": " + v.status().ToString());
    }
    (*out)[key] = AckedWrite{value, *v};
  }
  return Status::Ok();
}

Dataset InRange(const Dataset& data, const cluster::RangeInfo& r) {
  Dataset out;
  for (const auto& [k, w] : data) {
    if (r.bounds.Contains(k)) out.emplace(k, w);
  }
  return out;
}

uint64_t MaxVersion(const Dataset& data) {
  uint64_t m = 0;
  for (const auto& [k, w] : data) m = std::max(m, w.version);
  return m;
}

::testing::AssertionResult CheckCaughtUp(ReplCluster& c, RangeId range,
                                         std::chrono::milliseconds timeout, uint64_t at_least) {
  std::string why;
  bool ok = WaitFor(
      [&] {
        auto info = c.ReadRange(range);
        if (!info.ok()) {
          why = "range znode: " + info.status().ToString();
          return false;
        }
        if (!info->owner) {
          why = "no owner: " + Describe(*info);
          return false;
        }
        const std::string owner = info->owner->str();
        std::optional<proto::RangeStatus> os = c.RangeStatusOf(owner, range);
        if (!os) {
          why = "owner " + owner + " does not report the range; " + Describe(*info);
          return false;
        }
        std::ostringstream w;
        w << Describe(*info) << "\n  " << owner << ": " << Describe(*os);
        why = w.str();
        if (!os->owner || os->epoch != info->epoch || os->hwm != os->last_seq ||
            os->last_seq.value() < at_least) {
          return false;
        }
        bool all = true;
        for (const NodeId& n : info->replicas) {
          if (n.str() == owner) continue;
          auto p = std::find_if(os->replicas.begin(), os->replicas.end(),
                                [&](const proto::ReplicaProgress& rp) { return rp.node_id == n.str(); });
          if (p == os->replicas.end() || p->acked != os->last_seq || !p->in_isr) all = false;
          std::optional<proto::RangeStatus> rs = c.RangeStatusOf(n.str(), range);
          why += "\n  " + n.str() + ": " + (rs ? Describe(*rs) : std::string("no report"));
          if (!rs || rs->owner || rs->last_seq != os->last_seq || rs->hwm != os->hwm) all = false;
        }
        return all;
      },
      timeout, std::chrono::milliseconds(50));
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "range " << range.value() << " not caught up within "
                                       << timeout.count() << " ms; last seen:\n"
                                       << why;
}

::testing::AssertionResult CheckStaleReads(ReplCluster& c, const std::string& node,
                                           const Dataset& data,
                                           const std::optional<cluster::RangeInfo>& range) {
  auto map = c.ReadMap();
  if (!map.ok()) return ::testing::AssertionFailure() << "map: " << map.status().ToString();
  int bad = 0;
  size_t read = 0;
  std::ostringstream diffs;
  for (const auto& [key, want] : data) {
    if (range && !range->bounds.Contains(key)) continue;
    const cluster::RangeInfo* r = map->Locate(key);
    if (!r) return ::testing::AssertionFailure() << "no range holds " << Printable(key);
    ++read;
    auto got = c.StaleGet(node, r->id, key);
    std::string diff;
    if (!got.ok()) {
      diff = got.status().ToString();
    } else if (got->kind == proto::Response::Kind::kError) {
      diff = "error " + got->error.ToString();
    } else if (got->kind != proto::Response::Kind::kFound) {
      diff = "not found";
    } else if (got->found.value != want.value || got->found.version != want.version) {
      diff = "value " + Brief(got->found.value) + " v" + std::to_string(got->found.version);
    }
    if (diff.empty()) continue;
    if (++bad <= kMaxReported) {
      diffs << "\n  " << Printable(key) << " (range " << r->id.value() << "): want "
            << Brief(want.value) << " v" << want.version << ", got " << diff;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess() << read << " keys";
  return ::testing::AssertionFailure() << node << ": " << bad << " of " << read
                                       << " stale reads differ:" << diffs.str();
}

::testing::AssertionResult CheckClientReads(Client& client, const Dataset& data,
                                            ReadConsistency consistency) {
  int bad = 0;
  std::ostringstream diffs;
  CallOptions o;
  o.consistency = consistency;
  for (const auto& [key, want] : data) {
    auto got = client.Get(key, o);
    std::string diff;
    if (!got.ok()) {
      diff = got.status().ToString();
    } else if (!got->has_value()) {
      diff = "not found";
    } else if ((*got)->value != want.value || (*got)->version != want.version) {
      diff = "value " + Brief((*got)->value) + " v" + std::to_string((*got)->version);
    }
    if (diff.empty()) continue;
    if (++bad <= kMaxReported) {
      diffs << "\n  " << Printable(key) << ": want " << Brief(want.value) << " v" << want.version
            << ", got " << diff;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << data.size()
                                       << " client reads differ:" << diffs.str();
}

}  // namespace rangekv::testing
