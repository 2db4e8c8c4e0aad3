#include "common/cluster_map.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>

#include "common/escape.h"

namespace rangekv::cluster {

std::string ToHex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 0xf];
  }
  return out;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = HexDigit(hex[i]), lo = HexDigit(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi << 4 | lo);
  }
  return out;
}

// "field value" lines after a "<kind> <version>" first line.
class Record {
 public:
  static Result<Record> Parse(std::string_view data, std::string_view kind) {
    Record r;
    bool first = true;
    while (!data.empty()) {
      size_t nl = data.find('\n');
      std::string_view line = data.substr(0, nl);
      data = nl == std::string_view::npos ? std::string_view() : data.substr(nl + 1);
      if (line.empty()) continue;
      size_t sp = line.find(' ');
      std::string_view field = line.substr(0, sp);
      std::string_view value = sp == std::string_view::npos ? "" : line.substr(sp + 1);
      if (first) {
        if (field != kind || value != "1") {
          return Status(Code::kBadRequest, "not a " + std::string(kind) + " 1 record");
        }
        first = false;
        continue;
      }
      r.fields_.emplace(std::string(field), std::string(value));
    }
    if (first) return Status(Code::kBadRequest, "empty " + std::string(kind) + " record");
    return r;
  }

  Result<std::string> Text(const std::string& field) const {
    auto it = fields_.find(field);
    if (it == fields_.end()) return Status(Code::kBadRequest, "missing field '" + field + "'");
    return it->second;
  }

  Result<int64_t> Int(const std::string& field) const {
    RANGEKV_ASSIGN_OR_RETURN(std::string s, Text(field));
    int64_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v < 0) {
      return Status(Code::kBadRequest, "field '" + field + "' is not a number: " + s);
    }
    return v;
  }

  Result<std::vector<NodeId>> Ids(const std::string& field) const {
    RANGEKV_ASSIGN_OR_RETURN(std::string s, Text(field));
    std::vector<NodeId> ids;
    if (s.empty() || s == "-") return ids;
    size_t pos = 0;
    while (pos <= s.size()) {
      size_t comma = s.find(',', pos);
      std::string id = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
      if (!IsValidNodeId(id)) return Status(Code::kBadRequest, "bad node id in '" + field + "'");
      ids.emplace_back(std::move(id));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    return ids;
  }

 private:
  std::map<std::string, std::string> fields_;
};

// A token: 1..64 printable characters, no comma or space.
bool IsToken(std::string_view v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v) {
    if (c <= ' ' || c > '~' || c == ',') return false;
  }
  return true;
}

// An optional token field: "" when absent or "-".
Result<std::string> OptionalToken(const Record& r, const std::string& field) {
  auto v = r.Text(field);
  if (!v.ok() || *v == "-") return std::string();
  if (!IsToken(*v)) return Status(Code::kBadRequest, "field '" + field + "' is not a token");
  return *v;
}

Result<std::string> rec_life(const Record& r) { return OptionalToken(r, "life"); }

std::string JoinIds(const std::vector<NodeId>& ids) {
  if (ids.empty()) return "-";
  std::string s;
  for (const auto& id : ids) {
    if (!s.empty()) s += ',';
    s += id.str();
  }
  return s;
}

}  // namespace

const char* RangeStateName(RangeState s) {
  return s == RangeState::kActive ? "active" : "unavailable";
}

bool RangeInfo::HandedOverFrom(Epoch e) const {
  return e.value() != 0 && handoff_from == e && epoch == e.Next();
}

void RangeInfo::AddHistory(const std::vector<std::string>& words) {
  std::string event;
  for (const std::string& w : words) event += (event.empty() ? "" : ":") + w;
  history.push_back(std::move(event));
  if (history.size() > kHistoryMax) {
    history.erase(history.begin(), history.end() - static_cast<std::ptrdiff_t>(kHistoryMax));
  }
}

bool IsValidNodeId(std::string_view id) {
  if (id.empty() || id.size() > 64 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status CheckInitialSplits(const std::vector<std::string>& keys) {
  if (keys.size() > 255) return Status(Code::kBadRequest, "at most 255 split keys (256 ranges)");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) return Status(Code::kBadRequest, "a split key is empty");
    if (i > 0 && !(keys[i - 1] < keys[i])) {
      return Status(Code::kBadRequest, "split keys are not strictly ascending at " +
                                           QuoteIfNeeded(keys[i]) + " (after " +
                                           QuoteIfNeeded(keys[i - 1]) + ")");
    }
  }
  return Status::Ok();
}

std::string EncodeConfig(const ClusterConfig& c) {
  std::string s = "rangekv-config 1\nrf " + std::to_string(c.rf) + "\nmin_insync " +
                  std::to_string(c.min_insync) + "\ninitial_ranges " +
                  std::to_string(c.initial_ranges) + "\n";
  if (c.initial_splits.empty()) return s;
  s += "initial_splits ";
  for (size_t i = 0; i < c.initial_splits.size(); ++i) {
    s += (i ? "," : "") + ToHex(c.initial_splits[i]);
  }
  return s + "\n";
}

namespace {
Result<std::vector<std::string>> DecodeSplits(const Record& r) {
  std::vector<std::string> keys;
  auto text = r.Text("initial_splits");
  if (!text.ok() || text->empty() || *text == "-") return keys;
  size_t pos = 0;
  while (true) {
    const size_t comma = text->find(',', pos);
    auto key = FromHex(text->substr(pos, comma == std::string::npos ? comma : comma - pos));
    if (!key) return Status(Code::kBadRequest, "field 'initial_splits' is not hex keys");
    keys.push_back(std::move(*key));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (Status st = CheckInitialSplits(keys); !st.ok()) {
    return Status(Code::kBadRequest, "field 'initial_splits': " + st.message());
  }
  return keys;
}
}  // namespace

Result<ClusterConfig> DecodeConfig(std::string_view data) {
  RANGEKV_ASSIGN_OR_RETURN(Record r, Record::Parse(data, "rangekv-config"));
  ClusterConfig c;
  RANGEKV_ASSIGN_OR_RETURN(int64_t rf, r.Int("rf"));
  RANGEKV_ASSIGN_OR_RETURN(int64_t min_insync, r.Int("min_insync"));
  RANGEKV_ASSIGN_OR_RETURN(int64_t ranges, r.Int("initial_ranges"));
  if (rf < 1 || rf > 16 || min_insync < 1 || min_insync > rf || ranges < 1 || ranges > 256) {
    return Status(Code::kBadRequest,
                  "config out of bounds (rf 1..16, min_insync 1..rf, "
                  "initial_ranges 1..256)");
  }
  c.rf = static_cast<int>(rf);
  c.min_insync = static_cast<int>(min_insync);
  c.initial_ranges = static_cast<int>(ranges);
  RANGEKV_ASSIGN_OR_RETURN(c.initial_splits, DecodeSplits(r));
  if (!c.initial_splits.empty() &&
      c.initial_ranges != static_cast<int>(c.initial_splits.size()) + 1) {
    return Status(Code::kBadRequest, "initial_ranges is not the count of initial_splits + 1");
  }
  return c;
}

namespace {
std::string EncodeLogEnds(const std::map<RangeId, LogEnd>& ends) {
  if (ends.empty()) return "";
  std::string out = "log_ends ";
  for (const auto& [range, end] : ends) {
    if (out.back() != ' ') out += ',';
    out += std::to_string(range.value()) + ":" + std::to_string(end.epoch.value()) + ":" +
           std::to_string(end.seq.value());
  }
  return out + "\n";
}

// One unsigned decimal number, all of s.
std::optional<uint64_t> ParseU64(std::string_view s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "" or absent: none. Anything malformed makes the record invalid.
Result<std::map<RangeId, LogEnd>> DecodeLogEnds(const Record& r) {
  std::map<RangeId, LogEnd> ends;
  auto text = r.Text("log_ends");
  if (!text.ok() || text->empty() || *text == "-") return ends;
  std::string_view rest = *text;
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    const size_t c1 = item.find(':');
    const size_t c2 = c1 == std::string_view::npos ? c1 : item.find(':', c1 + 1);
    if (c2 == std::string_view::npos) break;
    auto range = ParseU64(item.substr(0, c1));
    auto epoch = ParseU64(item.substr(c1 + 1, c2 - c1 - 1));
    auto seq = ParseU64(item.substr(c2 + 1));
    if (!range || !epoch || !seq || !ends.emplace(RangeId(*range), LogEnd{Epoch(*epoch), Seq(*seq)}).second) {
      break;
    }
    if (comma == std::string_view::npos) return ends;
    rest = rest.substr(comma + 1);
  }
  return Status(Code::kBadRequest, "field 'log_ends' is not <range>:<epoch>:<seq>,...: " + *text);
}

// "<field> <range>:<n>,...\n" in ascending range order; "" when empty.
template <typename T>
std::string EncodeFigures(const char* field, const std::map<RangeId, T>& figures) {
  if (figures.empty()) return "";
  std::string out = std::string(field) + " ";
  for (const auto& [range, n] : figures) {
    if (out.back() != ' ') out += ',';
    out += std::to_string(range.value()) + ":" + std::to_string(n);
  }
  return out + "\n";
}

// "<field> a,b,c\n" of a list (each item as `text` writes it); "" for an
// empty list, so a record without any reads as before the field existed.
template <typename T, typename Text>
std::string EncodeList(const char* field, const std::vector<T>& items, Text text) {
  if (items.empty()) return "";
  std::string out = std::string(field) + " ";
  for (const T& item : items) out += (out.back() == ' ' ? "" : ",") + text(item);
  return out + "\n";
}

// What EncodeList wrote; "" or absent: none. parse gives nullopt for an
// item that is not valid, which makes the record invalid.
template <typename T, typename Parse>
Result<std::vector<T>> DecodeList(const Record& r, const char* field, const char* item,
                                  Parse parse) {
  std::vector<T> items;
  auto text = r.Text(field);
  if (!text.ok() || text->empty()) return items;
  std::string_view rest = *text;
  while (true) {
    const size_t comma = rest.find(',');
    std::optional<T> got = parse(rest.substr(0, comma));
    if (!got) {
      return Status(Code::kBadRequest,
                    std::string("field '") + field + "' is not <" + item + ">,...: " + *text);
    }
    items.push_back(std::move(*got));
    if (comma == std::string_view::npos) return items;
    rest = rest.substr(comma + 1);
  }
}

std::string EncodeMergeable(const std::vector<RangeId>& ids) {
  return EncodeList("mergeable", ids, [](RangeId id) { return std::to_string(id.value()); });
}

Result<std::vector<RangeId>> DecodeMergeable(const Record& r) {
  return DecodeList<RangeId>(r, "mergeable", "range",
                             [](std::string_view s) -> std::optional<RangeId> {
                               auto id = ParseU64(s);
                               if (!id || *id == 0) return std::nullopt;
                               return RangeId(*id);
                             });
}

std::string EncodeUnreachable(const std::vector<NodeId>& ids) {
  return EncodeList("unreachable", ids, [](const NodeId& id) { return id.str(); });
}

Result<std::vector<NodeId>> DecodeUnreachable(const Record& r) {
  return DecodeList<NodeId>(r, "unreachable", "node",
                            [](std::string_view s) -> std::optional<NodeId> {
                              const std::string id(s);
                              if (!IsValidNodeId(id)) return std::nullopt;
                              return NodeId(id);
                            });
}

// What EncodeFigures wrote; "" or absent: none. Anything malformed (or a
// figure above T's range) makes the record invalid.
template <typename T>
Result<std::map<RangeId, T>> DecodeFigures(const Record& r, const char* field, const char* unit) {
  std::map<RangeId, T> figures;
  auto text = r.Text(field);
  if (!text.ok() || text->empty() || *text == "-") return figures;
  std::string_view rest = *text;
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    const size_t colon = item.find(':');
    if (colon == std::string_view::npos) break;
    auto range = ParseU64(item.substr(0, colon));
    auto n = ParseU64(item.substr(colon + 1));
    if (!range || !n || *n > std::numeric_limits<T>::max() ||
        !figures.emplace(RangeId(*range), static_cast<T>(*n)).second) {
      break;
    }
    if (comma == std::string_view::npos) return figures;
    rest = rest.substr(comma + 1);
  }
  return Status(Code::kBadRequest,
                std::string("field '") + field + "' is not <range>:<" + unit + ">,...: " + *text);
}
}  // namespace

LogEnd NodeInfo::LogEndOf(RangeId range) const {
  auto it = log_ends.find(range);
  return it == log_ends.end() ? LogEnd{} : it->second;
}

std::string EncodeNode(const NodeInfo& n) {
  return "rangekv-node 1\nid " + n.id.str() + "\naddress " + n.address + "\nadmin " +
         (n.admin_address.empty() ? "-" : n.admin_address) + "\nstarted_ms " +
         std::to_string(n.started_ms) + "\nincarnation " +
         (n.incarnation.empty() ? "-" : n.incarnation) + "\n" +
         (n.replaces ? "replaces " + n.replaces->str() + "\n" : std::string()) +
         (n.life.empty() ? std::string() : "life " + n.life + "\n") +
         (n.suspect ? "suspect 1\n" : "") + (n.opening ? "opening 1\n" : "") +
         EncodeLogEnds(n.log_ends) + EncodeFigures("load", n.load) +
         EncodeFigures("bytes", n.bytes) + EncodeMergeable(n.mergeable) +
         EncodeUnreachable(n.unreachable);
}

Result<NodeInfo> DecodeNode(std::string_view data) {
  RANGEKV_ASSIGN_OR_RETURN(Record r, Record::Parse(data, "rangekv-node"));
  NodeInfo n;
  RANGEKV_ASSIGN_OR_RETURN(std::string id, r.Text("id"));
  if (!IsValidNodeId(id)) return Status(Code::kBadRequest, "bad node id");
  n.id = NodeId(id);
  RANGEKV_ASSIGN_OR_RETURN(n.address, r.Text("address"));
  if (n.address.empty()) return Status(Code::kBadRequest, "empty address");
  auto admin = r.Text("admin");
  if (admin.ok() && *admin != "-") n.admin_address = *admin;
  auto started = r.Int("started_ms");
  if (started.ok()) n.started_ms = static_cast<uint64_t>(*started);
  auto inc = r.Text("incarnation");
  if (inc.ok() && *inc != "-") n.incarnation = *inc;
  auto replaces = r.Text("replaces");
  if (replaces.ok() && *replaces != "-") {
    if (!IsValidNodeId(*replaces)) return Status(Code::kBadRequest, "bad node id in 'replaces'");
    n.replaces = NodeId(*replaces);
  }
  auto life = rec_life(r);
  if (!life.ok()) return life.status();
  n.life = *life;
  auto suspect = r.Int("suspect");
  n.suspect = suspect.ok() && *suspect != 0;
  auto opening = r.Int("opening");
  n.opening = opening.ok() && *opening != 0;
  RANGEKV_ASSIGN_OR_RETURN(n.log_ends, DecodeLogEnds(r));
  RANGEKV_ASSIGN_OR_RETURN(n.load, (DecodeFigures<uint32_t>(r, "load", "requests/s")));
  RANGEKV_ASSIGN_OR_RETURN(n.bytes, (DecodeFigures<uint64_t>(r, "bytes", "bytes")));
  RANGEKV_ASSIGN_OR_RETURN(n.mergeable, DecodeMergeable(r));
  RANGEKV_ASSIGN_OR_RETURN(n.unreachable, DecodeUnreachable(r));
  return n;
}

namespace {

// "<id>@<seq>" of merged_from: nullopt unless both are numbers and id > 0.
std::optional<std::pair<RangeId, Seq>> ParseIdAtSeq(std::string_view text) {
  const size_t at = text.find('@');
  if (at == std::string_view::npos) return std::nullopt;
  auto id = ParseU64(text.substr(0, at));
  auto seq = ParseU64(text.substr(at + 1));
  if (!id || !seq || *id == 0) return std::nullopt;
  return std::make_pair(RangeId(*id), Seq(*seq));
}

Status DecodeMergedFrom(std::string_view from, const Result<std::string>& key_hex, RangeInfo& r) {
  const size_t comma = from.find(',');
  auto left = comma == std::string_view::npos ? std::nullopt : ParseIdAtSeq(from.substr(0, comma));
  auto right =
      comma == std::string_view::npos ? std::nullopt : ParseIdAtSeq(from.substr(comma + 1));
  if (!left || !right) {
    return Status(Code::kBadRequest, "field 'merged_from' is not <id>@<seq>,<id>@<seq>");
  }
  std::optional<std::string> key = key_hex.ok() ? FromHex(*key_hex) : std::nullopt;
  // Not necessarily inside the bounds: a split after the merge may have
  // cut the range left of it.
  if (!key || key->empty())
    return Status(Code::kBadRequest, "field 'merge_key' is not hex of a key");
  r.merge_left = left->first;
  r.merge_left_seq = left->second;
  r.merge_right = right->first;
  r.merge_right_seq = right->second;
  r.merge_key = std::move(*key);
  return Status::Ok();
}

}  // namespace

std::string EncodeRange(const RangeInfo& r) {
  std::string s =
      "rangekv-range 1\nid " + std::to_string(r.id.value()) + "\nstart " + ToHex(r.bounds.start()) +
      "\nend " + (r.bounds.end() ? ToHex(*r.bounds.end()) : std::string("-")) + "\nepoch " +
      std::to_string(r.epoch.value()) + "\nowner " + (r.owner ? r.owner->str() : std::string("-")) +
      "\nreplicas " + JoinIds(r.replicas) + "\nisr " + JoinIds(r.isr) + "\nstate " +
      RangeStateName(r.state) + "\n";
  if (!r.owner_life.empty()) s += "owner_life " + r.owner_life + "\n";
  if (r.handoff_from.value() != 0) s += "handoff_from " + std::to_string(r.handoff_from.value()) + "\n";
  if (r.generation != 0) s += "generation " + std::to_string(r.generation) + "\n";
  if (r.move_to) s += "move_to " + r.move_to->str() + "\n";
  if (r.move_replica) {
    s += "move_replica " + r.move_replica->from.str() + ">" + r.move_replica->to.str() + "\n";
  }
  if (r.split_parent.value() != 0) {
    s += "split_from " + std::to_string(r.split_parent.value()) + "@" +
         std::to_string(r.split_seq.value()) + "\n";
  }
  if (r.merged()) {
    s += "merged_from " + std::to_string(r.merge_left.value()) + "@" +
         std::to_string(r.merge_left_seq.value()) + "," + std::to_string(r.merge_right.value()) +
         "@" + std::to_string(r.merge_right_seq.value()) + "\nmerge_key " + ToHex(r.merge_key) +
         "\n";
  }
  if (!r.history.empty()) {
    s += "history ";
    for (size_t i = 0; i < r.history.size(); ++i) s += (i ? "," : "") + r.history[i];
    s += "\n";
  }
  bool any = false;
  for (const std::string& inc : r.isr_incarnations) any = any || !inc.empty();
  if (any) {
    s += "isr_incarnations ";
    for (size_t i = 0; i < r.isr.size(); ++i) {
      const std::string inc = i < r.isr_incarnations.size() ? r.isr_incarnations[i] : "";
      s += (i ? "," : "") + (inc.empty() ? std::string("-") : inc);
    }
    s += "\n";
  }
  return s;
}

Result<RangeInfo> DecodeRange(std::string_view data) {
  RANGEKV_ASSIGN_OR_RETURN(Record rec, Record::Parse(data, "rangekv-range"));
  RangeInfo r;
  RANGEKV_ASSIGN_OR_RETURN(int64_t id, rec.Int("id"));
  if (id == 0) return Status(Code::kBadRequest, "range id 0");
  r.id = RangeId(static_cast<uint64_t>(id));
  RANGEKV_ASSIGN_OR_RETURN(std::string start_hex, rec.Text("start"));
  RANGEKV_ASSIGN_OR_RETURN(std::string end_hex, rec.Text("end"));
  auto start = FromHex(start_hex);
  if (!start) return Status(Code::kBadRequest, "field 'start' is not hex");
  std::optional<std::string> end;
  if (end_hex != "-") {
    end = FromHex(end_hex);
    if (!end) return Status(Code::kBadRequest, "field 'end' is not hex");
    if (!(*start < *end)) return Status(Code::kBadRequest, "range end not after start");
  }
  r.bounds = KeyRange(*start, end);
  RANGEKV_ASSIGN_OR_RETURN(int64_t epoch, rec.Int("epoch"));
  r.epoch = Epoch(static_cast<uint64_t>(epoch));
  RANGEKV_ASSIGN_OR_RETURN(std::string owner, rec.Text("owner"));
  if (owner != "-") {
    if (!IsValidNodeId(owner)) return Status(Code::kBadRequest, "bad owner id");
    r.owner = NodeId(owner);
  }
  RANGEKV_ASSIGN_OR_RETURN(r.replicas, rec.Ids("replicas"));
  RANGEKV_ASSIGN_OR_RETURN(r.isr, rec.Ids("isr"));
  RANGEKV_ASSIGN_OR_RETURN(std::string state, rec.Text("state"));
  if (state == "active") {
    r.state = RangeState::kActive;
  } else if (state == "unavailable") {
    r.state = RangeState::kUnavailable;
  } else {
    return Status(Code::kBadRequest, "unknown state '" + state + "'");
  }
  RANGEKV_ASSIGN_OR_RETURN(r.owner_life, OptionalToken(rec, "owner_life"));
  if (rec.Text("handoff_from").ok()) {
    RANGEKV_ASSIGN_OR_RETURN(int64_t from, rec.Int("handoff_from"));
    r.handoff_from = Epoch(static_cast<uint64_t>(from));
  }
  if (rec.Text("generation").ok()) {
    RANGEKV_ASSIGN_OR_RETURN(int64_t g, rec.Int("generation"));
    r.generation = static_cast<uint64_t>(g);
  }
  if (auto to = rec.Text("move_to"); to.ok()) {
    if (!IsValidNodeId(*to)) return Status(Code::kBadRequest, "field 'move_to' is not a node id");
    r.move_to = NodeId(*to);
  }
  if (auto move = rec.Text("move_replica"); move.ok()) {
    const size_t gt = move->find('>');
    const std::string from = gt == std::string::npos ? std::string() : move->substr(0, gt);
    const std::string to = gt == std::string::npos ? std::string() : move->substr(gt + 1);
    if (!IsValidNodeId(from) || !IsValidNodeId(to) || from == to) {
      return Status(Code::kBadRequest, "field 'move_replica' is not <node id>><other node id>");
    }
    r.move_replica = ReplicaMove{NodeId(from), NodeId(to)};
  }
  if (auto from = rec.Text("split_from"); from.ok()) {
    const size_t at = from->find('@');
    const std::string_view text(*from);
    auto parent = at == std::string::npos ? std::nullopt : ParseU64(text.substr(0, at));
    auto seq = at == std::string::npos ? std::nullopt : ParseU64(text.substr(at + 1));
    if (!parent || !seq || *parent == 0) {
      return Status(Code::kBadRequest, "field 'split_from' is not <range id>@<seq>");
    }
    r.split_parent = RangeId(*parent);
    r.split_seq = Seq(*seq);
  }
  if (auto from = rec.Text("merged_from"); from.ok()) {
    RANGEKV_RETURN_IF_ERROR(DecodeMergedFrom(*from, rec.Text("merge_key"), r));
  }
  if (auto h = rec.Text("history"); h.ok() && !h->empty()) {
    const bool clean = std::all_of(h->begin(), h->end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_.>@-:,", c) != nullptr;
    });
    if (!clean) return Status(Code::kBadRequest, "field 'history' holds a character it may not");
    size_t pos = 0;
    while (true) {
      const size_t comma = h->find(',', pos);
      r.history.push_back(
          h->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
  }
  if (auto incs = rec.Text("isr_incarnations"); incs.ok()) {
    r.isr_incarnations.assign(r.isr.size(), "");
    std::vector<std::string> parts;
    size_t pos = 0;
    while (true) {
      size_t comma = incs->find(',', pos);
      parts.push_back(incs->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
      if (comma == std::string::npos) break;
      pos = comma + 1;
    }
    if (parts.size() != r.isr.size()) {
      return Status(Code::kBadRequest, "field 'isr_incarnations' does not match 'isr'");
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      if (parts[i] == "-") continue;
      if (!IsToken(parts[i])) {
        return Status(Code::kBadRequest, "field 'isr_incarnations' holds a bad token");
      }
      r.isr_incarnations[i] = parts[i];
    }
  }
  return r;
}

std::string RangeInfo::IsrIncarnation(const NodeId& n) const {
  for (size_t i = 0; i < isr.size() && i < isr_incarnations.size(); ++i) {
    if (isr[i] == n) return isr_incarnations[i];
  }
  return std::string();
}

namespace {
// Canonical form: no entries when every one is unknown, so records that
// never had the field compare equal to decoded ones.
void Canonical(std::vector<std::string>& incs) {
  for (const std::string& inc : incs) {
    if (!inc.empty()) return;
  }
  incs.clear();
}
}  // namespace

void RangeInfo::AddToIsr(const NodeId& n, std::string incarnation) {
  isr_incarnations.resize(isr.size());
  bool found = false;
  for (size_t i = 0; i < isr.size(); ++i) {
    if (isr[i] == n) {
      isr_incarnations[i] = std::move(incarnation);
      found = true;
      break;
    }
  }
  if (!found) {
    isr.push_back(n);
    isr_incarnations.push_back(std::move(incarnation));
  }
  Canonical(isr_incarnations);
}

void RangeInfo::RemoveFromIsr(const NodeId& n) {
  isr_incarnations.resize(isr.size());
  for (size_t i = 0; i < isr.size(); ++i) {
    if (isr[i] == n) {
      isr.erase(isr.begin() + static_cast<std::ptrdiff_t>(i));
      isr_incarnations.erase(isr_incarnations.begin() + static_cast<std::ptrdiff_t>(i));
      break;
    }
  }
  Canonical(isr_incarnations);
}

void RangeInfo::SetIsr(std::vector<NodeId> members,
                       const std::map<NodeId, std::string>& incarnation) {
  std::vector<std::string> incs;
  for (const NodeId& n : members) {
    auto it = incarnation.find(n);
    incs.push_back(it != incarnation.end() ? it->second : IsrIncarnation(n));
  }
  isr = std::move(members);
  isr_incarnations = std::move(incs);
  Canonical(isr_incarnations);
}

bool IsrMemberValid(const RangeInfo& r, const NodeId& n, const NodeInfo* live) {
  if (live == nullptr) return false;
  const std::string recorded = r.IsrIncarnation(n);
  return recorded.empty() || live->incarnation.empty() || recorded == live->incarnation;
}

bool OwnerLifeValid(const RangeInfo& r, const NodeInfo* live) {
  if (live == nullptr) return false;
  return r.owner_life.empty() || live->life.empty() || r.owner_life == live->life;
}

std::string Paths::range(RangeId id) const {
  char name[16];
  std::snprintf(name, sizeof name, "%010llu", static_cast<unsigned long long>(id.value()));
  return ranges() + "/" + name;
}

std::optional<RangeId> Paths::ParseRangeName(std::string_view name) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
  if (ec != std::errc() || p != name.data() + name.size() || v == 0 || name.size() != 10) {
    return std::nullopt;
  }
  return RangeId(v);
}

std::vector<KeyRange> InitialSplit(int n) {
  std::vector<KeyRange> out;
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  std::optional<std::string> prev_end;
  for (int i = 0; i < n; ++i) {
    std::string start = i == 0 ? std::string() : *prev_end;
    std::optional<std::string> end;
    if (i + 1 < n) end = std::string(1, static_cast<char>((256 * (i + 1)) / n));
    out.emplace_back(start, end);
    prev_end = end;
  }
  return out;
}

std::vector<KeyRange> InitialSplit(const ClusterConfig& config) {
  if (config.initial_splits.empty()) return InitialSplit(config.initial_ranges);
  std::vector<KeyRange> out;
  std::string start;
  for (const std::string& key : config.initial_splits) {
    out.emplace_back(start, key);
    start = key;
  }
  out.emplace_back(start, std::nullopt);
  return out;
}

bool ClusterMap::Covers(std::string start, const std::optional<std::string>& end,
                        RangeId except) const {
  for (bool moved = true; moved;) {
    if (end && start >= *end) return true;
    moved = false;
    for (const auto& [id, r] : ranges) {
      if (id == except || !r.bounds.Contains(start)) continue;
      if (!r.bounds.end()) return true;
      start = *r.bounds.end();
      moved = true;
      break;
    }
  }
  return false;
}

bool ClusterMap::ShowsNews(const Written& news) const {
  for (const auto& [id, made] : news) {
    if (!made) continue;
    bool shown = false;
    for (const auto& [other, r] : ranges) {
      shown = shown || (r.generation >= made->generation && r.bounds.Overlaps(made->bounds));
    }
    if (!shown) return false;
  }
  return true;
}

void ClusterMap::PatchNews(const Written& news) {
  uint64_t generation = 0;  // the multi's: that of every range it made
  for (const auto& [id, made] : news) {
    if (made) generation = std::max(generation, made->generation);
  }
  for (const auto& [id, made] : news) {
    auto it = ranges.find(id);
    if (it == ranges.end() || it->second.generation >= generation) continue;
    if (made) {
      it->second = *made;  // narrower or the same: no new overlap
    } else {
      ranges.erase(it);
    }
  }
  for (const auto& [id, made] : news) {
    if (!made || ranges.count(id)) continue;
    bool free = true;
    for (const auto& [other, r] : ranges) free = free && !r.bounds.Overlaps(made->bounds);
    if (free) ranges.emplace(id, *made);
  }
}

const RangeInfo* ClusterMap::Locate(std::string_view key) const {
  for (const auto& [id, r] : ranges) {
    if (r.bounds.Contains(key)) return &r;
  }
  return nullptr;
}

const NodeInfo* ClusterMap::Node(const NodeId& id) const {
  auto it = live_nodes.find(id);
  return it == live_nodes.end() ? nullptr : &it->second;
}

}  // namespace rangekv::cluster
