#include "repl/format.h"

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "common/escape.h"
#include "repl/command.h"

namespace rangekv::repl {

std::string FormatWord(std::string_view bytes) { return QuoteIfNeeded(bytes); }

std::string FormatError(const Status& status) {
  std::string text = "(error) " + status.ToString();
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text + "\n";
}

std::string FormatValue(std::string_view value) { return FormatWord(value) + "\n"; }

std::string FormatVersioned(const VersionedValue& v) {
  return std::to_string(v.version) + " " + FormatWord(v.value) + "\n";
}

std::string FormatScan(const ScanResult& result) {
  std::string out;
  for (const KeyValue& kv : result.entries) {
    out += FormatWord(kv.key);
    out += ' ';
    out += FormatWord(kv.value);
    out += '\n';
  }
  out += "(" + std::to_string(result.entries.size()) + " keys";
  out += result.more ? ", more)\n" : ")\n";
  return out;
}

std::string FormatHelp(std::string_view topic) {
  constexpr size_t kUsageWidth = 40;
  std::string out;
  for (const CommandSpec& spec : AllCommands()) {
    if (!topic.empty() && spec.name != topic) continue;
    std::string line(spec.usage);
    line.resize(std::max(line.size() + 2, kUsageWidth), ' ');
    out += line + std::string(spec.summary) + "\n";
  }
  if (topic.empty()) {
    out += "keys and values: bare words, or \"double quoted\" with escapes "
           "\\n \\t \\r \\\\ \\\" \\xHH (also \\0 \\a \\b \\f \\v)\n";
  }
  return out;
}

}  // namespace rangekv::repl

namespace rangekv::repl {
namespace {

std::string FormatEnd(const std::optional<std::string>& end) {
  if (!end) return "+inf";
  if (*end == "+inf") return Quote(*end);
  return FormatWord(*end);
}

std::string FormatBounds(const RangeStatus& r) {
  return "[" + FormatWord(r.start) + ", " + FormatEnd(r.end) + ")";
}

std::string JoinIds(const std::vector<std::string>& ids) {
  if (ids.empty()) return "-";
  std::string out;
  for (const auto& id : ids) {
    if (!out.empty()) out += ',';
    out += id;
  }
  return out;
}

}  // namespace

std::string FormatNodes(const std::vector<NodeStatus>& nodes,
                        const std::vector<RangeStatus>* ranges,
                        const std::map<uint64_t, RangeProgress>& progress) {
  std::string out;
  const std::vector<RangeStatus> none;
  for (const auto& n : nodes) {
    const char* state = n.draining ? " draining" : n.up ? " up" : " down";
    size_t owned = 0, held = 0;
    uint64_t bytes = 0, qps = 0;
    bool bytes_known = ranges != nullptr, qps_known = ranges != nullptr;
    for (const auto& r : ranges != nullptr ? *ranges : none) {
      auto p = progress.find(r.id);
      const bool is_owner = r.owner == n.id;
      if (is_owner) {
        ++owned;
        if (p != progress.end()) qps += p->second.requests_per_sec;
        qps_known = qps_known && p != progress.end();
      }
      if (std::find(r.replicas.begin(), r.replicas.end(), n.id) == r.replicas.end()) continue;
      ++held;
      if (p != progress.end()) bytes += p->second.bytes;
      bytes_known = bytes_known && p != progress.end();
    }
    auto count = [&](size_t v) { return ranges != nullptr ? std::to_string(v) : "-"; };
    out += n.id + " " + (n.address.empty() ? "-" : n.address) + state + " owned " + count(owned) +
           " held " + count(held) + " bytes " + (bytes_known ? std::to_string(bytes) : "-") +
           " req/s " + (qps_known ? std::to_string(qps) : "-") + "\n";
  }
  if (nodes.empty()) out = "(no nodes)\n";
  return out;
}

std::string FormatRanges(const std::vector<RangeStatus>& ranges,
                         const std::map<uint64_t, RangeProgress>& progress) {
  if (ranges.empty()) return "(no ranges)\n";
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"range", "bounds", "epoch", "owner", "isr", "replicas", "state", "hwm", "lag",
                  "keys", "bytes", "req/s"});
  for (const auto& r : ranges) {
    std::string hwm = "-", lag = "-", keys = "-", bytes = "-", qps = "-";
    if (auto it = progress.find(r.id); it != progress.end()) {
      hwm = std::to_string(it->second.hwm);
      keys = std::to_string(it->second.keys);
      bytes = std::to_string(it->second.bytes);
      qps = std::to_string(it->second.requests_per_sec);
      std::vector<std::string> parts;
      for (const auto& l : it->second.lag) {
        parts.push_back(l.node + ":" + std::to_string(l.records));
      }
      lag = JoinIds(parts);
    }
    rows.push_back({std::to_string(r.id), FormatBounds(r), std::to_string(r.epoch),
                    r.owner.value_or("-"), JoinIds(r.isr), JoinIds(r.replicas),
                    RangeHealthName(r.state), hwm, lag, keys, bytes, qps});
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      line += row[c];
      if (c + 1 < row.size()) line.append(width[c] + 2 - row[c].size(), ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string FormatLocate(const RangeStatus& r) {
  std::string owner = "-";
  if (r.owner) owner = *r.owner + " " + (r.owner_address.empty() ? "(down)" : r.owner_address);
  return "range " + std::to_string(r.id) + " " + FormatBounds(r) + " owner " + owner + "\n";
}

namespace {

// Bytes of a hex key from a history event; nullopt when it is not hex.
std::optional<std::string> KeyOfHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (char c : hex.substr(i, 2)) {
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    out += static_cast<char>(v);
  }
  return out;
}

std::vector<std::string> Words(std::string_view event) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t colon = event.find(':', pos);
    out.emplace_back(event.substr(pos, colon == std::string_view::npos ? event.npos : colon - pos));
    if (colon == std::string_view::npos) return out;
    pos = colon + 1;
  }
}

// "a>b" as "a to b" ("-" for none).
std::string Move(const std::string& w) {
  const size_t gt = w.find('>');
  if (gt == std::string::npos) return w;
  const std::string from = w.substr(0, gt);
  return (from == "-" ? std::string("no owner") : from) + " to " + w.substr(gt + 1);
}

std::string DescribeEvent(const std::string& event) {
  const std::vector<std::string> w = Words(event);
  auto key = [&](const std::string& hex) {
    auto k = KeyOfHex(hex);
    return k ? QuoteIfNeeded(*k) : hex;
  };
  if (w[0] == "split" && w.size() == 4) {
    return "split at " + key(w[1]) + ": the right part became range " + w[2] + " (at seq " + w[3] +
           ")";
  }
  if (w[0] == "split-from" && w.size() == 4) {
    return "created by a split of range " + w[1] + " at " + key(w[2]) + " (at seq " + w[3] + ")";
  }
  if (w[0] == "merged-from" && w.size() == 4) {
    auto range_at = [](const std::string& id_at) {
      const size_t at = id_at.find('@');
      return at == std::string::npos
                 ? id_at
                 : "range " + id_at.substr(0, at) + " (at seq " + id_at.substr(at + 1) + ")";
    };
    return "created by merging " + range_at(w[1]) + " and " + range_at(w[2]) + ", which met at " +
           key(w[3]);
  }
  if (w[0] == "handed" && w.size() == 3) {
    return "handed over by its owner from " + Move(w[1]) + " (epoch " + w[2] + ")";
  }
  if (w[0] == "promoted" && w.size() == 3) {
    return "owner changed by the coordinator from " + Move(w[1]) + " (epoch " + w[2] + ")";
  }
  return event;
}

}  // namespace

std::string FormatHistory(const RangeStatus& range) {
  std::string out;
  if (range.history.empty()) return "created with the cluster (no split or move recorded)\n";
  for (const std::string& e : range.history) out += DescribeEvent(e) + "\n";
  return out;
}

std::string FormatStatus(std::string_view cluster, std::string_view zookeeper,
                         const std::vector<NodeStatus>& nodes,
                         const std::vector<RangeStatus>& ranges,
                         const std::map<uint64_t, RangeProgress>& progress) {
  size_t up = 0, active = 0, unavailable = 0, ownerless = 0;
  for (const auto& n : nodes) up += n.up ? 1 : 0;
  for (const auto& r : ranges) {
    (r.state == RangeHealth::kActive ? active : unavailable) += 1;
    ownerless += r.owner ? 0 : 1;
  }
  std::string out;
  out += "cluster: " + std::string(cluster) + "\n";
  out += "zookeeper: " + std::string(zookeeper) + "\n";
  out += "nodes: " + std::to_string(up) + " up, " + std::to_string(nodes.size() - up) + " down\n";
  out += "ranges: " + std::to_string(ranges.size()) + " total, " + std::to_string(active) +
         " active, " + std::to_string(unavailable) + " unavailable, " + std::to_string(ownerless) +
         " without owner\n";
  // Ranges owned per node (every node listed, 0 included): how evenly the
  // owners' work is spread.
  std::map<std::string, size_t> owned;
  for (const auto& n : nodes) owned[n.id] = 0;
  for (const auto& r : ranges) {
    if (r.owner) ++owned[*r.owner];
  }
  if (!owned.empty()) {
    out += "owned:";
    for (const auto& [id, n] : owned) out += " " + id + " " + std::to_string(n);
    out += "\n";
  }
  // Requests a second per node, as its owned ranges report them, and each
  // node's share: whether the requests (not only the ranges) are spread.
  std::map<std::string, uint64_t> qps;
  uint64_t total = 0;
  for (const auto& n : nodes) qps[n.id] = 0;
  for (const auto& r : ranges) {
    auto p = progress.find(r.id);
    if (!r.owner || p == progress.end()) continue;
    qps[*r.owner] += p->second.requests_per_sec;
    total += p->second.requests_per_sec;
  }
  if (!progress.empty() && !qps.empty()) {
    out += "load:";
    for (const auto& [id, q] : qps) {
      out += " " + id + " " + std::to_string(q) + " req/s";
      if (total > 0) out += " (" + std::to_string((q * 100 + total / 2) / total) + "%)";
    }
    out += "\n";
  }
  for (const auto& r : ranges) {
    if (!r.move) continue;
    out += "moving: range " + std::to_string(r.id) + " " + r.move->from + " -> " + r.move->to;
    auto p = progress.find(r.id);
    std::string how = "copying";
    if (p != progress.end()) {
      for (const auto& l : p->second.lag) {
        if (l.node == r.move->to) how = std::to_string(l.records) + " records behind";
      }
    }
    out += " (" + r.move->to + " " + how;
    if (p != progress.end()) out += ", " + std::to_string(p->second.bytes) + " bytes";
    out += ")\n";
  }
  return out;
}

}  // namespace rangekv::repl
