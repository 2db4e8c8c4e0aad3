// History building, recording, printing and the history file format
// (specified in lincheck.h).
#include <cassert>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/escape.h"
#include "tests/lincheck/lincheck.h"

namespace rangekv::lincheck {

Outcome Outcome::GetFound(std::string value, uint64_t version) {
  Outcome o;
  o.completion = Completion::kOk;
  o.found = true;
  o.value = std::move(value);
  o.version = version;
  return o;
}

Outcome Outcome::GetNotFound() {
  Outcome o;
  o.completion = Completion::kOk;
  return o;
}

Outcome Outcome::Written(uint64_t version) {
  Outcome o;
  o.completion = Completion::kOk;
  o.found = true;
  o.version = version;
  return o;
}

Outcome Outcome::CasFailed() {
  Outcome o;
  o.completion = Completion::kOk;
  return o;
}

Outcome Outcome::Failed() {
  Outcome o;
  o.completion = Completion::kFailed;
  return o;
}

Outcome Outcome::Indeterminate() {
  Outcome o;
  o.completion = Completion::kIndeterminate;
  return o;
}

namespace {

Operation MakeOp(uint64_t client, OpKind kind, std::string key, int64_t invoke_ns,
                 int64_t return_ns, Outcome outcome) {
  Operation op;
  op.client = client;
  op.kind = kind;
  op.key = std::move(key);
  op.invoke_ns = invoke_ns;
  op.return_ns = return_ns;
  op.outcome = std::move(outcome);
  return op;
}

}  // namespace

const char* OpKindName(OpKind k) {
  switch (k) {
    case OpKind::kGet: return "get";
    case OpKind::kPut: return "put";
    case OpKind::kDelete: return "delete";
    case OpKind::kCas: return "cas";
  }
  return "?";
}

Operation MakeGet(uint64_t client, std::string key, int64_t invoke_ns, int64_t return_ns,
                  Outcome outcome) {
  return MakeOp(client, OpKind::kGet, std::move(key), invoke_ns, return_ns, std::move(outcome));
}

Operation MakePut(uint64_t client, std::string key, std::string value, int64_t invoke_ns,
                  int64_t return_ns, Outcome outcome) {
  Operation op =
      MakeOp(client, OpKind::kPut, std::move(key), invoke_ns, return_ns, std::move(outcome));
  op.value = std::move(value);
  return op;
}

Operation MakeDelete(uint64_t client, std::string key, int64_t invoke_ns, int64_t return_ns,
                     Outcome outcome) {
  return MakeOp(client, OpKind::kDelete, std::move(key), invoke_ns, return_ns,
                std::move(outcome));
}

Operation MakeCas(uint64_t client, std::string key, uint64_t expected_version, std::string value,
                  int64_t invoke_ns, int64_t return_ns, Outcome outcome) {
  Operation op =
      MakeOp(client, OpKind::kCas, std::move(key), invoke_ns, return_ns, std::move(outcome));
  op.expected_version = expected_version;
  op.value = std::move(value);
  return op;
}

namespace {

// The op and its arguments: `put "k" "v"`, `cas "k" 5 "v"`.
std::string OpText(const Operation& op) {
  std::string s = OpKindName(op.kind);
  s += ' ';
  s += Quote(op.key);
  if (op.kind == OpKind::kCas) s += ' ' + std::to_string(op.expected_version);
  if (op.kind == OpKind::kPut || op.kind == OpKind::kCas) s += ' ' + Quote(op.value);
  return s;
}

// The outcome as the file format writes it.
std::string OutcomeText(const Operation& op) {
  const Outcome& o = op.outcome;
  switch (o.completion) {
    case Completion::kPending: return "pending";
    case Completion::kFailed: return "failed";
    case Completion::kIndeterminate: return "indeterminate";
    case Completion::kOk: break;
  }
  if (op.kind == OpKind::kGet) {
    return o.found ? "ok found " + Quote(o.value) + ' ' + std::to_string(o.version) : "ok none";
  }
  if (op.kind == OpKind::kCas && !o.found) return "cas_failed";
  return "ok " + std::to_string(o.version);
}

}  // namespace

std::string DescribeOp(const Operation& op, size_t index) {
  std::string s = "#" + std::to_string(index) + " c" + std::to_string(op.client) + " [" +
                  std::to_string(op.invoke_ns) + ",";
  s += op.outcome.completion == Completion::kOk ? std::to_string(op.return_ns) + "]" : "inf)";
  s += ' ' + OpText(op) + " -> ";
  const Outcome& o = op.outcome;
  if (o.completion != Completion::kOk) return s + OutcomeText(op);
  if (op.kind == OpKind::kGet) {
    return s + (o.found ? Quote(o.value) + " v" + std::to_string(o.version) : "not found");
  }
  if (op.kind == OpKind::kCas && !o.found) return s + "CAS_FAILED";
  return s + "ok v" + std::to_string(o.version);
}

int64_t MonotonicNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

HistoryRecorder::Handle HistoryRecorder::Invoke(Operation op) {
  std::lock_guard<std::mutex> lock(mu_);
  // Stamped under the lock: an op recorded later never gets an earlier time.
  op.invoke_ns = MonotonicNowNs();
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

HistoryRecorder::Handle HistoryRecorder::InvokeGet(uint64_t client, std::string key) {
  return Invoke(MakeGet(client, std::move(key), 0, 0, Outcome()));
}

HistoryRecorder::Handle HistoryRecorder::InvokePut(uint64_t client, std::string key,
                                                   std::string value) {
  return Invoke(MakePut(client, std::move(key), std::move(value), 0, 0, Outcome()));
}

HistoryRecorder::Handle HistoryRecorder::InvokeDelete(uint64_t client, std::string key) {
  return Invoke(MakeDelete(client, std::move(key), 0, 0, Outcome()));
}

HistoryRecorder::Handle HistoryRecorder::InvokeCas(uint64_t client, std::string key,
                                                   uint64_t expected_version,
                                                   std::string value) {
  return Invoke(
      MakeCas(client, std::move(key), expected_version, std::move(value), 0, 0, Outcome()));
}

void HistoryRecorder::Complete(Handle handle, Outcome outcome) {
  const int64_t now = MonotonicNowNs();  // before the lock: lock waits are not op latency
  std::lock_guard<std::mutex> lock(mu_);
  assert(handle < ops_.size());
  if (handle >= ops_.size()) return;
  Operation& op = ops_[handle];
  assert(op.outcome.completion == Completion::kPending && "op completed twice");
  if (op.outcome.completion != Completion::kPending) return;
  op.return_ns = now;
  op.outcome = std::move(outcome);
}

History HistoryRecorder::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

size_t HistoryRecorder::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_.size();
}

// ---------------------------------------------------------------------------
// History file

std::string FormatHistory(const History& history) {
  std::string out =
      "# rangekv lincheck history v1: client invoke_ns return_ns op key args outcome\n";
  for (const Operation& op : history) {
    out += std::to_string(op.client) + ' ' + std::to_string(op.invoke_ns) + ' ';
    out += op.outcome.completion == Completion::kOk ? std::to_string(op.return_ns) : "-";
    out += ' ' + OpText(op) + ' ' + OutcomeText(op) + '\n';
  }
  return out;
}

Status WriteHistoryFile(const History& history, const std::string& path) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return Status(Code::kIoError, "open " + path + ": " + std::strerror(errno));
  const std::string text = FormatHistory(history);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  f.close();
  if (!f) return Status(Code::kIoError, "write " + path);
  return Status::Ok();
}

namespace {

// Splits one line into words; a word starting with '"' is a quoted string
// in the form rangekv::Quote writes, returned unescaped.
Result<std::vector<std::string>> SplitLine(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    std::string w;
    if (line[i] != '"') {
      while (i < line.size() && line[i] != ' ') w += line[i++];
      words.push_back(std::move(w));
      continue;
    }
    ++i;
    bool closed = false;
    while (i < line.size()) {
      char c = line[i++];
      if (c == '"') {
        closed = true;
        break;
      }
      if (c != '\\') {
        w += c;
        continue;
      }
      if (i >= line.size()) break;
      char e = line[i++];
      switch (e) {
        case 'n': w += '\n'; break;
        case 't': w += '\t'; break;
        case 'r': w += '\r'; break;
        case '\\': w += '\\'; break;
        case '"': w += '"'; break;
        case 'x': {
          unsigned v = 0;
          if (i + 2 > line.size() ||
              std::from_chars(line.data() + i, line.data() + i + 2, v, 16).ptr !=
                  line.data() + i + 2) {
            return Status(Code::kBadRequest, "bad \\x escape");
          }
          w += static_cast<char>(v);
          i += 2;
          break;
        }
        default: return Status(Code::kBadRequest, std::string("unknown escape \\") + e);
      }
    }
    if (!closed) return Status(Code::kBadRequest, "unterminated string");
    words.push_back(std::move(w));
  }
  return words;
}

template <typename T>
bool ParseInt(const std::string& s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Result<Operation> ParseLine(const std::vector<std::string>& w) {
  auto bad = [](const std::string& why) { return Status(Code::kBadRequest, why); };
  if (w.size() < 6) return bad("too few fields");
  Operation op;
  size_t i = 0;
  if (!ParseInt(w[i++], &op.client)) return bad("bad client id");
  if (!ParseInt(w[i++], &op.invoke_ns)) return bad("bad invoke_ns");
  const std::string& ret = w[i++];
  const bool has_return = ret != "-";
  if (has_return && !ParseInt(ret, &op.return_ns)) return bad("bad return_ns");
  const std::string& kind = w[i++];
  op.key = w[i++];
  if (kind == "get") {
    op.kind = OpKind::kGet;
  } else if (kind == "put") {
    op.kind = OpKind::kPut;
    op.value = w[i++];
  } else if (kind == "delete") {
    op.kind = OpKind::kDelete;
  } else if (kind == "cas") {
    op.kind = OpKind::kCas;
    if (w.size() < 8) return bad("too few fields for cas");
    if (!ParseInt(w[i++], &op.expected_version)) return bad("bad expected version");
    op.value = w[i++];
  } else {
    return bad("unknown op '" + kind + "'");
  }
  std::vector<std::string> rest(w.begin() + static_cast<std::ptrdiff_t>(std::min(i, w.size())),
                                w.end());
  if (rest.empty()) return bad("missing outcome");
  const std::string& o = rest[0];
  if (o == "pending" || o == "failed" || o == "indeterminate") {
    if (rest.size() != 1) return bad("trailing fields");
    if (has_return) return bad("return_ns given for an op without an answer");
    op.outcome.completion = o == "pending"  ? Completion::kPending
                            : o == "failed" ? Completion::kFailed
                                            : Completion::kIndeterminate;
    return op;
  }
  if (!has_return) return bad("an answered op needs return_ns");
  if (o == "cas_failed") {
    if (op.kind != OpKind::kCas || rest.size() != 1) return bad("bad cas_failed");
    op.outcome = Outcome::CasFailed();
    return op;
  }
  if (o != "ok") return bad("unknown outcome '" + o + "'");
  if (op.kind == OpKind::kGet) {
    if (rest.size() == 2 && rest[1] == "none") {
      op.outcome = Outcome::GetNotFound();
      return op;
    }
    uint64_t v = 0;
    if (rest.size() != 4 || rest[1] != "found" || !ParseInt(rest[3], &v)) {
      return bad("bad get result");
    }
    op.outcome = Outcome::GetFound(rest[2], v);
    return op;
  }
  uint64_t v = 0;
  if (rest.size() != 2 || !ParseInt(rest[1], &v)) return bad("bad write result");
  op.outcome = Outcome::Written(v);
  return op;
}

}  // namespace

Result<History> ParseHistory(std::string_view text) {
  History h;
  size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    auto words = SplitLine(line);
    if (!words.ok()) return words.status().WithContext("line " + std::to_string(line_no));
    auto op = ParseLine(*words);
    if (!op.ok()) return op.status().WithContext("line " + std::to_string(line_no));
    h.push_back(std::move(*op));
  }
  return h;
}

Result<History> ReadHistoryFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status(Code::kIoError, "open " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return Status(Code::kIoError, "read " + path);
  auto h = ParseHistory(ss.str());
  if (!h.ok()) return h.status().WithContext(path);
  return h;
}

}  // namespace rangekv::lincheck
