// Tests of the linearizability checker on generated histories: generated
// linearizable runs, corrupted runs, agreement with an exhaustive search on
// small histories, and a long heavily overlapping run.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "tests/lincheck/lincheck.h"

namespace rangekv::lincheck {
namespace {

const std::string kKey = "k";

struct GenOptions {
  int clients = 3;
  int ops = 50;
  int64_t width = 3000;  // how far a window may stretch around its point (points 1000 apart)
  int indeterminate_percent = 5;
  int keys = 1;
};

// Runs a sequential register model, one op per linearization point, then
// widens every op's window around its point at random without letting a
// client overlap itself: the result is linearizable by construction.
History Generate(std::mt19937_64& rng, const GenOptions& g) {
  struct Reg {
    bool present = false;
    std::string value;
    uint64_t version = 0;
  };
  std::vector<Reg> regs(static_cast<size_t>(g.keys));
  uint64_t seq = 0;
  History h;
  std::vector<int64_t> points;
  auto pct = [&](int p) { return static_cast<int>(rng() % 100) < p; };
  for (int i = 0; i < g.ops; ++i) {
    const size_t key = rng() % regs.size();
    Reg& r = regs[key];
    const uint64_t client = rng() % static_cast<uint64_t>(g.clients);
    const std::string val = "v" + std::to_string(i);
    const bool maybe = pct(g.indeterminate_percent);
    const bool applied = !maybe || pct(50);
    Operation op;
    switch (rng() % 4) {
      case 0:
        op = MakeGet(client, "k" + std::to_string(key), 0, 0,
                     r.present ? Outcome::GetFound(r.value, r.version) : Outcome::GetNotFound());
        break;
      case 1:
        op = MakePut(client, "k" + std::to_string(key), val, 0, 0, Outcome());
        if (applied) {
          seq += 1 + rng() % 3;
          r = Reg{true, val, seq};
          op.outcome = Outcome::Written(seq);
        }
        break;
      case 2:
        op = MakeDelete(client, "k" + std::to_string(key), 0, 0, Outcome());
        if (applied) {
          seq += 1 + rng() % 3;
          r = Reg{false, "", seq};
          op.outcome = Outcome::Written(seq);
        }
        break;
      default: {
        const uint64_t current = r.present ? r.version : 0;
        const uint64_t expected = pct(60) ? current : (pct(50) ? 0 : current + 1);
        op = MakeCas(client, "k" + std::to_string(key), expected, val, 0, 0, Outcome());
        if (expected != current) {
          op.outcome = Outcome::CasFailed();
        } else if (applied) {
          seq += 1 + rng() % 3;
          r = Reg{true, val, seq};
          op.outcome = Outcome::Written(seq);
        }
      }
    }
    if (maybe) op.outcome = Outcome::Indeterminate();
    h.push_back(std::move(op));
    points.push_back(1000 * static_cast<int64_t>(i + 1));
  }
  // Windows: per client, invoke after the previous return, return before the
  // client's next point.
  std::vector<int64_t> last_return(static_cast<size_t>(g.clients), 0);
  for (size_t i = 0; i < h.size(); ++i) {
    const size_t c = h[i].client;
    int64_t next_point = points.back() + g.width + 1;
    for (size_t j = i + 1; j < h.size(); ++j) {
      if (h[j].client == c) {
        next_point = points[j];
        break;
      }
    }
    const int64_t lo = std::max(last_return[c] + 1, points[i] - g.width);
    const int64_t hi = std::min(next_point - 1, points[i] + g.width);
    auto pick = [&](int64_t a, int64_t b) {  // uniform in [a, b]
      return a + static_cast<int64_t>(rng() % static_cast<uint64_t>(b - a + 1));
    };
    h[i].invoke_ns = pick(lo, points[i]);
    h[i].return_ns = pick(points[i], hi);
    last_return[c] = h[i].return_ns;
  }
  // A recorder appends in invoke order; so do we.
  std::stable_sort(h.begin(), h.end(), [](const Operation& a, const Operation& b) {
    return a.invoke_ns < b.invoke_ns;
  });
  return h;
}

// Makes one answered found-get impossible; false when there is none.
bool Corrupt(std::mt19937_64& rng, History* h) {
  std::vector<size_t> gets;
  for (size_t i = 0; i < h->size(); ++i) {
    const Operation& op = (*h)[i];
    if (op.kind == OpKind::kGet && op.outcome.completion == Completion::kOk && op.outcome.found) {
      gets.push_back(i);
    }
  }
  if (gets.empty()) return false;
  Operation& op = (*h)[gets[rng() % gets.size()]];
  if (rng() % 2 == 0) {
    op.outcome.value = "never written";
  } else {
    op.outcome.version = 0;  // no write produces version 0
  }
  return true;
}

TEST(LincheckTest, GeneratedHistoriesPassAndCorruptedOnesFail) {
  std::mt19937_64 rng(20240611);
  int corrupted = 0;
  for (int round = 0; round < 150; ++round) {
    GenOptions g;
    g.clients = 2 + round % 4;
    g.ops = 20 + round % 60;
    g.keys = 1 + round % 3;
    g.width = 500 + 400 * (round % 10);
    History h = Generate(rng, g);
    CheckResult r = Check(h);
    ASSERT_EQ(r.verdict, Verdict::kOk) << "round " << round << "\n"
                                       << r.Explain() << FormatHistory(h);
    if (Corrupt(rng, &h)) {
      ++corrupted;
      CheckResult bad = Check(h);
      ASSERT_EQ(bad.verdict, Verdict::kViolation) << "round " << round << "\n" << FormatHistory(h);
      EXPECT_FALSE(bad.Explain().empty());
    }
  }
  EXPECT_GT(corrupted, 100);
}

// Reference: tries every order of the ops that respects real time, with the
// model rules written out directly on Operations.
struct RefState {
  bool present = false;
  std::string value;
  uint64_t ver = 0;
  bool exact = true;
};

bool RefStep(const Operation& op, RefState* s) {
  const bool known = op.outcome.completion == Completion::kOk;
  const uint64_t v = op.outcome.version;
  const bool cond = op.expected_version == 0
                        ? !s->present
                        : s->present && (s->exact ? s->ver == op.expected_version
                                                  : op.expected_version >= s->ver);
  switch (op.kind) {
    case OpKind::kGet:
      if (!op.outcome.found) return !s->present;
      if (!s->present || s->value != op.outcome.value) return false;
      if (s->exact ? v != s->ver : v < s->ver) return false;
      *s = RefState{true, s->value, v, true};
      return true;
    case OpKind::kPut:
    case OpKind::kDelete: {
      const bool put = op.kind == OpKind::kPut;
      if (!known) {
        *s = RefState{put, put ? op.value : "", s->ver + 1, false};
        return true;
      }
      if (v <= s->ver) return false;
      *s = RefState{put, put ? op.value : "", v, true};
      return true;
    }
    case OpKind::kCas:
      if (known && !op.outcome.found) {
        return op.expected_version == 0
                   ? s->present
                   : !s->present || !s->exact || s->ver != op.expected_version;
      }
      if (!cond) return false;
      if (!known) {
        *s = RefState{true, op.value, std::max(s->ver, op.expected_version) + 1, false};
        return true;
      }
      if (v <= std::max(s->ver, op.expected_version)) return false;
      *s = RefState{true, op.value, v, true};
      return true;
  }
  return false;
}

bool RefSearch(const std::vector<Operation>& ops, std::vector<bool>* used, const RefState& s) {
  bool all_known_done = true;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!(*used)[i] && ops[i].outcome.completion == Completion::kOk) all_known_done = false;
  }
  if (all_known_done) return true;
  for (size_t i = 0; i < ops.size(); ++i) {
    if ((*used)[i]) continue;
    bool blocked = false;  // some pending op finished before this one started
    for (size_t j = 0; j < ops.size() && !blocked; ++j) {
      blocked = j != i && !(*used)[j] && ops[j].outcome.completion == Completion::kOk &&
                ops[j].return_ns < ops[i].invoke_ns;
    }
    RefState next = s;
    if (blocked || !RefStep(ops[i], &next)) continue;
    (*used)[i] = true;
    const bool ok = RefSearch(ops, used, next);
    (*used)[i] = false;
    if (ok) return true;
  }
  return false;
}

bool RefLinearizable(const History& h) {
  std::vector<Operation> ops;
  for (const Operation& op : h) {
    if (op.outcome.completion == Completion::kFailed) continue;
    if (op.kind == OpKind::kGet && op.outcome.completion != Completion::kOk) continue;
    ops.push_back(op);
  }
  std::vector<bool> used(ops.size(), false);
  return RefSearch(ops, &used, RefState{});
}

TEST(LincheckTest, AgreesWithExhaustiveSearchOnSmallHistories) {
  std::mt19937_64 rng(7);
  const std::vector<std::string> vals = {"a", "b", "c"};
  int ok = 0, bad = 0;
  for (int round = 0; round < 5000; ++round) {
    History h;
    if (round % 2 == 0) {
      GenOptions g;
      g.clients = 3;
      g.ops = 6;
      g.width = 1500;
      g.indeterminate_percent = 20;
      h = Generate(rng, g);
      // Nudge one answer: sometimes still linearizable, sometimes not.
      Operation& op = h[rng() % h.size()];
      if (rng() % 2) op.outcome.version = op.outcome.version + (rng() % 3) - 1;
      if (op.kind == OpKind::kGet && rng() % 2) op.outcome.value = vals[rng() % 3];
    } else {
      const int n = 3 + static_cast<int>(rng() % 4);
      for (int i = 0; i < n; ++i) {
        const int64_t inv = static_cast<int64_t>(rng() % 40);
        const int64_t ret = inv + static_cast<int64_t>(rng() % 15);
        const uint64_t ver = 1 + rng() % 5;
        const std::string& v = vals[rng() % 3];
        switch (rng() % 7) {
          case 0: h.push_back(MakeGet(i, kKey, inv, ret, Outcome::GetFound(v, ver))); break;
          case 1: h.push_back(MakeGet(i, kKey, inv, ret, Outcome::GetNotFound())); break;
          case 2: h.push_back(MakePut(i, kKey, v, inv, ret, Outcome::Written(ver))); break;
          case 3: h.push_back(MakePut(i, kKey, v, inv, 0, Outcome::Indeterminate())); break;
          case 4: h.push_back(MakeDelete(i, kKey, inv, ret, Outcome::Written(ver))); break;
          case 5:
            h.push_back(MakeCas(i, kKey, rng() % 4, v, inv, ret,
                                rng() % 2 ? Outcome::Written(ver) : Outcome::CasFailed()));
            break;
          default: h.push_back(MakeCas(i, kKey, rng() % 4, v, inv, 0, Outcome::Indeterminate()));
        }
      }
    }
    const bool expect = RefLinearizable(h);
    (expect ? ok : bad)++;
    CheckResult r = Check(h);
    ASSERT_EQ(r.verdict, expect ? Verdict::kOk : Verdict::kViolation)
        << "round " << round << "\n" << FormatHistory(h) << r.Explain();
  }
  // Both answers must have been exercised for the comparison to mean much.
  EXPECT_GT(ok, 300);
  EXPECT_GT(bad, 300);
}

TEST(LincheckTest, LongHeavilyOverlappingHistoryOnOneKey) {
  std::mt19937_64 rng(99);
  GenOptions g;
  g.clients = 5;
  g.ops = 10000;  // 5 clients x ~2000 ops
  g.width = 20000;
  g.indeterminate_percent = 1;
  History h = Generate(rng, g);
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kOk) << r.Explain();
  EXPECT_EQ(r.keys.size(), 1u);
  // A stale read near the end must still be found, within the default budget.
  for (size_t i = h.size() - 200; i < h.size(); ++i) {
    if (h[i].kind == OpKind::kGet && h[i].outcome.completion == Completion::kOk) {
      h[i].outcome = Outcome::GetFound("v0", 1);
      break;
    }
  }
  CheckResult bad = Check(h);
  EXPECT_EQ(bad.verdict, Verdict::kViolation) << bad.Explain();
}

}  // namespace
}  // namespace rangekv::lincheck
