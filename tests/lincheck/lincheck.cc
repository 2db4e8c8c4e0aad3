// The linearizability search (method and model: lincheck.h).
#include "tests/lincheck/lincheck.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <tuple>
#include <unordered_map>

#include "common/escape.h"
#include "tests/lincheck/search_cache.h"

namespace rangekv::lincheck {

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kOk: return "ok";
    case Verdict::kViolation: return "violation";
    case Verdict::kUnknown: return "unknown";
  }
  return "?";
}

std::string CheckResult::Explain() const {
  std::string out;
  for (const KeyResult& k : keys) {
    if (k.verdict == Verdict::kOk) continue;
    for (const std::string& line : k.explanation) out += line + '\n';
  }
  return out;
}

namespace {

using internal::Cache;
using internal::kAbsent;
using internal::State;

constexpr int64_t kInfinity = std::numeric_limits<int64_t>::max();
// The value of an indeterminate write that no read returned. Such values are
// never compared with anything, so they share one id; see KeyOps.
constexpr int32_t kUnread = -2;

// One op of a key's sub-history in the form the search uses. Values are
// interned to small integers per key so states compare and hash cheaply.
struct KOp {
  size_t index = 0;  // position in the caller's History
  OpKind kind = OpKind::kGet;
  bool known = false;     // the answer was seen (else indeterminate)
  int32_t written = 0;    // put, cas: interned value written
  uint64_t expected = 0;  // cas
  bool found = false;     // known get: found; known cas: swapped
  int32_t read = 0;       // known get, found: interned value read
  uint64_t version = 0;   // known: version answered
  int64_t invoke = 0;
  int64_t ret = kInfinity;
  // Indeterminate ops: interchangeable ones (same kind, written value and
  // expected version) form a class; cls_pos is the rank by invoke in it.
  uint32_t cls = 0;
  uint32_t cls_pos = 0;
};


uint64_t Mix(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashState(const State& s) {
  return Mix(s.ver ^ Mix((static_cast<uint64_t>(static_cast<uint32_t>(s.value)) << 1) |
                         (s.exact ? 1 : 0)));
}

bool CasCondition(const State& s, uint64_t e) {
  if (e == 0) return s.value == kAbsent;
  return s.value != kAbsent && (s.exact ? s.ver == e : e >= s.ver);
}

// The model (lincheck.h). nullopt: the op cannot be linearized in state s.
std::optional<State> Step(const State& s, const KOp& op) {
  switch (op.kind) {
    case OpKind::kGet:
      if (!op.found) {
        if (s.value != kAbsent) return std::nullopt;
        return s;
      }
      if (s.value == kAbsent || s.value != op.read) return std::nullopt;
      if (s.exact ? op.version != s.ver : op.version < s.ver) return std::nullopt;
      return State{op.version, s.value, true};
    case OpKind::kPut:
      if (!op.known) return State{s.ver + 1, op.written, false};
      if (op.version <= s.ver) return std::nullopt;
      return State{op.version, op.written, true};
    case OpKind::kDelete:
      if (!op.known) return State{s.ver + 1, kAbsent, false};
      if (op.version <= s.ver) return std::nullopt;
      return State{op.version, kAbsent, true};
    case OpKind::kCas:
      if (op.known && !op.found) {  // CAS_FAILED
        const bool can_fail = op.expected == 0
                                  ? s.value != kAbsent
                                  : s.value == kAbsent || !s.exact || s.ver != op.expected;
        if (!can_fail) return std::nullopt;
        return s;
      }
      if (!CasCondition(s, op.expected)) return std::nullopt;
      if (!op.known) return State{std::max(s.ver, op.expected) + 1, op.written, false};
      if (op.version <= std::max(s.ver, op.expected)) return std::nullopt;
      return State{op.version, op.written, true};
  }
  return std::nullopt;
}

// Whether a known op answered a version the state must have right after it.
bool HasVersion(const KOp& op) {
  return op.known && op.found;  // KeyOps sets found for every answered put and delete
}

// Per-key value names, for explanations.
struct Values {
  std::unordered_map<std::string, int32_t> ids;
  std::vector<const std::string*> names;
  int32_t Intern(const std::string& v) {
    auto [it, inserted] = ids.emplace(v, static_cast<int32_t>(names.size()));
    if (inserted) names.push_back(&it->first);
    return it->second;
  }
};

std::string DescribeState(const State& s, const Values& values) {
  std::string ver = s.exact ? "version " + std::to_string(s.ver)
                            : "version unknown, >= " + std::to_string(s.ver);
  if (s.value == kAbsent) return "absent (" + ver + ")";
  if (s.value == kUnread) return "a value no read returned (" + ver + ")";
  return Quote(*values.names[static_cast<size_t>(s.value)]) + " (" + ver + ")";
}

// Why Step(s, op) refused, in words.
std::string WhyRejected(const State& s, const KOp& op, const Values& values) {
  const std::string st = "the register holds " + DescribeState(s, values);
  switch (op.kind) {
    case OpKind::kGet:
      if (!op.found) return "read not found, but " + st;
      if (s.value == kAbsent || s.value != op.read) {
        return "read " + Quote(*values.names[static_cast<size_t>(op.read)]) + ", but " + st;
      }
      return "read version " + std::to_string(op.version) + ", but " + st;
    case OpKind::kPut:
    case OpKind::kDelete:
      return "answered version " + std::to_string(op.version) + ", not above " + st;
    case OpKind::kCas:
      if (op.known && !op.found) return "failed, but its condition holds: " + st;
      if (!CasCondition(s, op.expected)) {
        return "condition (expected version " + std::to_string(op.expected) +
               ") does not hold: " + st;
      }
      return "answered version " + std::to_string(op.version) + ", not above " + st;
  }
  return "?";
}

struct SearchResult {
  Verdict verdict = Verdict::kOk;
  uint64_t states = 0;
  // The deepest linearization reached (ops in order) and the state after it.
  std::vector<size_t> best;  // indices into the KOp vector
  State best_state;
};

SearchResult Search(const std::vector<KOp>& ops, const CheckOptions& options) {
  SearchResult out;
  const size_t n = ops.size();
  size_t required = 0;
  for (const KOp& op : ops) required += op.known ? 1 : 0;
  if (required == 0) return out;

  // Entries 0..2n-1: call of op i at 2i, return at 2i+1; head sentinel 2n.
  // Calls sort before returns at equal times (equal = concurrent). An
  // indeterminate op's call is moved up to just before the first return at
  // or after its invoke: the constraints on it are the same, and the search
  // then tries known ops first, which lets the cache's subset rule prune.
  std::vector<int64_t> returns;
  for (const KOp& op : ops) {
    if (op.known) returns.push_back(op.ret);
  }
  std::sort(returns.begin(), returns.end());
  std::vector<int64_t> call_time(n);
  for (size_t i = 0; i < n; ++i) {
    call_time[i] = ops[i].invoke;
    if (!ops[i].known) {
      auto it = std::lower_bound(returns.begin(), returns.end(), ops[i].invoke);
      call_time[i] = it == returns.end() ? kInfinity : *it;
    }
  }
  auto rank = [&](size_t e) { return e % 2 == 1 ? 2 : ops[e / 2].known ? 0 : 1; };
  std::vector<size_t> order(2 * n);
  for (size_t i = 0; i < 2 * n; ++i) order[i] = i;
  auto time_of = [&](size_t e) { return e % 2 == 0 ? call_time[e / 2] : ops[e / 2].ret; };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int64_t ta = time_of(a), tb = time_of(b);
    if (ta != tb) return ta < tb;
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return a < b;
  });
  const size_t head = 2 * n;
  constexpr size_t kNone = std::numeric_limits<size_t>::max();
  std::vector<size_t> next(2 * n + 1), prev(2 * n + 1);
  size_t last = head;
  for (size_t e : order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  next[last] = kNone;
  prev[head] = kNone;

  auto unlink = [&](size_t e) {
    next[prev[e]] = next[e];
    if (next[e] != kNone) prev[next[e]] = prev[e];
  };
  auto relink = [&](size_t e) {
    next[prev[e]] = e;
    if (next[e] != kNone) prev[next[e]] = e;
  };

  std::vector<uint64_t> zobrist(n);
  for (size_t i = 0; i < n; ++i) zobrist[i] = Mix(ops[i].index * 0x2545f4914f6cdd1dULL + i);

  // Known ops are 0..nk-1 (KeyOps orders them first).
  const size_t nk = required;
  Cache cache;
  std::vector<uint64_t> known_bits((nk + 63) / 64, 0);
  std::vector<uint64_t> maybe_bits((n - nk + 63) / 64, 0);
  uint64_t bits_hash = 0;
  auto flip = [&](size_t i) {
    if (i < nk) {
      known_bits[i / 64] ^= uint64_t{1} << (i % 64);
      bits_hash ^= zobrist[i];
    } else {
      const size_t j = i - nk;
      maybe_bits[j / 64] ^= uint64_t{1} << (j % 64);
    }
  };

  // Version order: the state's version (exact or lower bound) never falls
  // along a linearization, and an op that answered a version leaves the
  // state at exactly that version, so such ops must be linearized in
  // version order. Placing one while an op with a lower version is still
  // out dooms that op; refusing it at once cuts the search to the
  // interleavings of the ops that carry no version.
  std::vector<size_t> by_version;
  for (size_t i = 0; i < n; ++i) {
    if (HasVersion(ops[i])) by_version.push_back(i);
  }
  std::stable_sort(by_version.begin(), by_version.end(),
                   [&](size_t a, size_t b) { return ops[a].version < ops[b].version; });
  std::vector<size_t> vpos(n, kNone);
  for (size_t p = 0; p < by_version.size(); ++p) vpos[by_version[p]] = p;
  std::vector<char> placed(n, 0);
  size_t vmin = 0;  // first position in by_version not yet placed
  auto in_version_order = [&](size_t i) {
    return vpos[i] == kNone || vmin == by_version.size() ||
           ops[i].version <= ops[by_version[vmin]].version;
  };

  uint32_t num_classes = 0;
  for (const KOp& op : ops) num_classes = std::max(num_classes, op.known ? 0 : op.cls + 1);
  std::vector<uint32_t> cls_next(num_classes, 0);  // first unplaced rank per class
  auto first_of_class = [&](size_t i) {
    return ops[i].known || ops[i].cls_pos == cls_next[ops[i].cls];
  };

  struct Frame {
    size_t call;
    State before;
  };
  std::vector<Frame> stack;
  State state;
  size_t entry = next[head];
  auto record_best = [&]() {
    if (stack.size() <= out.best.size()) return;
    out.best.clear();
    for (const Frame& f : stack) out.best.push_back(f.call / 2);
    out.best_state = state;
  };

  while (required > 0) {
    if (entry != kNone && entry % 2 == 0) {
      const size_t i = entry / 2;
      std::optional<State> ns;
      if (in_version_order(i) && first_of_class(i) && (ns = Step(state, ops[i]))) {
        flip(i);
        if (cache.Insert(bits_hash ^ HashState(*ns), *ns, known_bits, maybe_bits)) {
          if (cache.size() > options.max_states || cache.bytes() > options.max_cache_bytes) {
            record_best();
            out.verdict = Verdict::kUnknown;
            out.states = cache.size();
            return out;
          }
          stack.push_back(Frame{entry, state});
          state = *ns;
          if (ops[i].known) --required;
          placed[i] = 1;
          if (!ops[i].known) ++cls_next[ops[i].cls];
          while (vmin < by_version.size() && placed[by_version[vmin]]) ++vmin;
          unlink(entry);
          unlink(entry + 1);
          entry = next[head];
          continue;
        }
        flip(i);
      }
      entry = next[entry];
      continue;
    }
    // A return entry (or the end): its op was not linearized in time.
    record_best();
    if (stack.empty()) {
      out.verdict = Verdict::kViolation;
      out.states = cache.size();
      return out;
    }
    Frame f = stack.back();
    stack.pop_back();
    const size_t i = f.call / 2;
    flip(i);
    state = f.before;
    if (ops[i].known) ++required;
    placed[i] = 0;
    if (!ops[i].known) --cls_next[ops[i].cls];
    if (vpos[i] < vmin) vmin = vpos[i];
    relink(f.call + 1);
    relink(f.call);
    entry = next[f.call];
  }
  out.states = cache.size();
  return out;
}

// The key's ops as seen at time `cut`: ops invoked after it are left out,
// ops answered after it count as indeterminate (kInfinity: the whole key).
std::vector<KOp> KeyOps(const History& h, const std::vector<size_t>& indices, Values* values,
                        int64_t cut) {
  std::vector<KOp> ops;
  for (size_t idx : indices) {
    const Operation& op = h[idx];
    if (op.invoke_ns > cut) continue;
    KOp k;
    k.index = idx;
    k.kind = op.kind;
    k.invoke = op.invoke_ns;
    k.known = op.outcome.completion == Completion::kOk && op.return_ns <= cut;
    if (!k.known && op.kind == OpKind::kGet) continue;  // no effect, nothing to check
    if (op.kind == OpKind::kPut || op.kind == OpKind::kCas) k.written = values->Intern(op.value);
    k.expected = op.expected_version;
    if (k.known) {
      k.ret = op.return_ns;
      k.found = op.outcome.found || op.kind == OpKind::kPut || op.kind == OpKind::kDelete;
      k.version = op.outcome.version;
      if (op.kind == OpKind::kGet && k.found) k.read = values->Intern(op.outcome.value);
    }
    ops.push_back(k);
  }
  // Known ops first, each group in invoke order: what the cache encoding
  // (class Cache) relies on to stay small.
  std::stable_sort(ops.begin(), ops.end(), [](const KOp& a, const KOp& b) {
    if (a.known != b.known) return a.known;
    return a.invoke < b.invoke;
  });
  // Symmetry: an indeterminate write may take effect at any time after its
  // invoke, so of two that would have the same effect the earlier-invoked
  // one can always stand in for the later one; the search only places the
  // first unplaced op of each class. Values nobody read all count as one.
  std::vector<bool> read(values->names.size(), false);
  for (const KOp& k : ops) {
    if (k.known && k.kind == OpKind::kGet && k.found) read[static_cast<size_t>(k.read)] = true;
  }
  std::map<std::tuple<OpKind, int32_t, uint64_t>, std::pair<uint32_t, uint32_t>> classes;
  for (KOp& k : ops) {
    if (k.known) continue;
    if (k.kind != OpKind::kDelete && !read[static_cast<size_t>(k.written)]) k.written = kUnread;
    auto key = std::make_tuple(k.kind, k.kind == OpKind::kDelete ? 0 : k.written,
                               k.kind == OpKind::kCas ? k.expected : 0);
    auto [it, inserted] =
        classes.emplace(key, std::make_pair(static_cast<uint32_t>(classes.size()), 0u));
    k.cls = it->second.first;
    k.cls_pos = it->second.second++;
  }
  return ops;
}

void Explain(const History& h, const std::vector<KOp>& ops, const SearchResult& r,
             const Values& values, std::vector<std::string>* lines) {
  std::vector<bool> done(ops.size(), false);
  for (size_t i : r.best) done[i] = true;
  lines->push_back("  longest linearization found: " + std::to_string(r.best.size()) + " of " +
                   std::to_string(ops.size()) + " ops" +
                   (r.best.size() > 12 ? " (last 12 shown)" : ""));
  State s;
  for (size_t pos = 0; pos < r.best.size(); ++pos) {
    const KOp& op = ops[r.best[pos]];
    s = *Step(s, op);
    if (pos + 12 >= r.best.size()) {
      lines->push_back("    " + DescribeOp(h[op.index], op.index) + "   => " +
                       DescribeState(s, values));
    }
  }
  lines->push_back("  state then: " + DescribeState(r.best_state, values));
  // The remaining op answered first must come next or before; every op
  // called before that answer is a candidate.
  size_t first = ops.size();
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!done[i] && ops[i].known && (first == ops.size() || ops[i].ret < ops[first].ret)) first = i;
  }
  if (first == ops.size()) return;
  lines->push_back("  not linearizable after it: " +
                   DescribeOp(h[ops[first].index], ops[first].index));
  size_t low = ops.size();  // the open op with the lowest version
  for (size_t i = 0; i < ops.size(); ++i) {
    if (done[i] || !HasVersion(ops[i])) continue;
    if (low == ops.size() || ops[i].version < ops[low].version) low = i;
  }
  const uint64_t lowest_open =
      low == ops.size() ? std::numeric_limits<uint64_t>::max() : ops[low].version;
  bool blocked_by_low = false;
  lines->push_back("  ops that could go next (called before that answer):");
  for (size_t i = 0; i < ops.size(); ++i) {
    if (done[i] || ops[i].invoke > ops[first].ret) continue;
    std::string why;
    if (!Step(r.best_state, ops[i])) {
      why = WhyRejected(r.best_state, ops[i], values);
    } else if (HasVersion(ops[i]) && ops[i].version > lowest_open) {
      why = "allowed by the state, but #" + std::to_string(ops[low].index) + " (version " +
            std::to_string(lowest_open) + ") must be placed before it";
      blocked_by_low = true;
    } else {
      why = "allowed here, but nothing after it can be linearized";
    }
    lines->push_back("    " + DescribeOp(h[ops[i].index], ops[i].index) + ": " + why);
  }
  if (blocked_by_low && ops[low].invoke > ops[first].ret) {
    lines->push_back("    " + DescribeOp(h[ops[low].index], ops[low].index) +
                     ": lowest version still open, but invoked only after #" +
                     std::to_string(ops[first].index) + " answered");
  }
}

KeyResult CheckKey(const History& h, const std::string& key, const std::vector<size_t>& indices,
                   const CheckOptions& options) {
  KeyResult kr;
  kr.key = key;
  const std::string name = "key " + Quote(key);
  for (size_t idx : indices) {
    const Operation& op = h[idx];
    if (op.outcome.completion == Completion::kOk && op.return_ns < op.invoke_ns) {
      kr.verdict = Verdict::kUnknown;
      kr.explanation.push_back(name + ": malformed history: " + DescribeOp(op, idx) +
                               " returned before it was invoked");
      return kr;
    }
  }
  Values values;
  std::vector<KOp> ops = KeyOps(h, indices, &values, kInfinity);
  kr.ops = ops.size();
  SearchResult r = Search(ops, options);
  kr.states = r.states;
  kr.verdict = r.verdict;
  if (r.verdict == Verdict::kOk) return kr;
  if (r.verdict == Verdict::kUnknown) {
    kr.explanation.push_back(name + ": unknown: search budget exhausted after " +
                             std::to_string(r.states) + " states (" + std::to_string(ops.size()) +
                             " ops)");
    Explain(h, ops, r, values, &kr.explanation);
    return kr;
  }
  kr.explanation.push_back(name + ": NOT linearizable (" + std::to_string(ops.size()) +
                           " ops, " + std::to_string(r.states) + " states searched)");
  if (options.minimise) {
    // The shortest failing prefix: a prefix of a linearizable history is
    // linearizable, so failure is monotone in the cut and binary search over
    // answer times finds the answer that made the history impossible.
    std::vector<int64_t> cuts;
    for (const KOp& op : ops) {
      if (op.known) cuts.push_back(op.ret);
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    size_t lo = 0, hi = cuts.size() - 1;  // cuts[hi] (all answers) fails
    SearchResult best = r;
    std::vector<KOp> best_ops = ops;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      std::vector<KOp> prefix = KeyOps(h, indices, &values, cuts[mid]);
      SearchResult pr = Search(prefix, options);
      if (pr.verdict == Verdict::kViolation) {
        hi = mid;
        best = std::move(pr);
        best_ops = std::move(prefix);
      } else {
        lo = mid + 1;
      }
    }
    size_t culprit = 0;
    for (size_t i = 0; i < best_ops.size(); ++i) {
      if (best_ops[i].known && best_ops[i].ret == cuts[hi]) culprit = best_ops[i].index;
    }
    kr.explanation.push_back("  shortest failing prefix: " + std::to_string(best_ops.size()) +
                             " ops, up to the answer of " + DescribeOp(h[culprit], culprit) +
                             " (ops still running then count as indeterminate)");
    Explain(h, best_ops, best, values, &kr.explanation);
  } else {
    Explain(h, ops, r, values, &kr.explanation);
  }
  return kr;
}

}  // namespace

CheckResult Check(const History& history, const CheckOptions& options) {
  std::map<std::string, std::vector<size_t>> by_key;
  for (size_t i = 0; i < history.size(); ++i) {
    if (history[i].outcome.completion == Completion::kFailed) continue;
    by_key[history[i].key].push_back(i);
  }
  CheckResult result;
  bool unknown = false;
  for (const auto& [key, indices] : by_key) {
    KeyResult kr = CheckKey(history, key, indices, options);
    result.ops += kr.ops;
    if (kr.verdict == Verdict::kViolation) result.verdict = Verdict::kViolation;
    if (kr.verdict == Verdict::kUnknown) unknown = true;
    result.keys.push_back(std::move(kr));
  }
  if (unknown && result.verdict == Verdict::kOk) result.verdict = Verdict::kUnknown;
  return result;
}

}  // namespace rangekv::lincheck
