// Unit tests of the linearizability checker on hand-made and generated
// register histories.
#include "tests/lincheck/lincheck.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "tests/testutil/testutil.h"

namespace rangekv::lincheck {
namespace {

const std::string kKey = "k";

Operation Put(uint64_t c, int64_t inv, int64_t ret, std::string v, uint64_t ver) {
  return MakePut(c, kKey, std::move(v), inv, ret, Outcome::Written(ver));
}
Operation PutMaybe(uint64_t c, int64_t inv, std::string v) {
  return MakePut(c, kKey, std::move(v), inv, 0, Outcome::Indeterminate());
}
Operation Get(uint64_t c, int64_t inv, int64_t ret, std::string v, uint64_t ver) {
  return MakeGet(c, kKey, inv, ret, Outcome::GetFound(std::move(v), ver));
}
Operation GetNone(uint64_t c, int64_t inv, int64_t ret) {
  return MakeGet(c, kKey, inv, ret, Outcome::GetNotFound());
}
Operation Del(uint64_t c, int64_t inv, int64_t ret, uint64_t ver) {
  return MakeDelete(c, kKey, inv, ret, Outcome::Written(ver));
}
Operation Cas(uint64_t c, int64_t inv, int64_t ret, uint64_t expected, std::string v,
              uint64_t ver) {
  return MakeCas(c, kKey, expected, std::move(v), inv, ret, Outcome::Written(ver));
}
Operation CasFail(uint64_t c, int64_t inv, int64_t ret, uint64_t expected, std::string v) {
  return MakeCas(c, kKey, expected, std::move(v), inv, ret, Outcome::CasFailed());
}
Operation CasMaybe(uint64_t c, int64_t inv, uint64_t expected, std::string v) {
  return MakeCas(c, kKey, expected, std::move(v), inv, 0, Outcome::Indeterminate());
}

Verdict V(const History& h) { return Check(h).verdict; }

TEST(LincheckTest, EmptyAndSequentialHistoriesAreLinearizable) {
  EXPECT_EQ(V({}), Verdict::kOk);
  History h = {Put(1, 0, 10, "a", 1),       Get(1, 20, 30, "a", 1),  Put(2, 40, 50, "b", 3),
               Get(3, 60, 70, "b", 3),      Del(1, 80, 90, 5),       GetNone(2, 100, 110),
               Cas(3, 120, 130, 0, "c", 7), Get(1, 140, 150, "c", 7)};
  CheckResult r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kOk) << r.Explain();
  EXPECT_EQ(r.ops, h.size());
  ASSERT_EQ(r.keys.size(), 1u);
  EXPECT_EQ(r.keys[0].key, kKey);
  EXPECT_GT(r.keys[0].states, 0u);
}

TEST(LincheckTest, ConcurrentPutAndGetInEitherOrder) {
  EXPECT_EQ(V({Put(1, 0, 100, "a", 1), GetNone(2, 10, 20)}), Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 100, "a", 1), Get(2, 10, 20, "a", 1)}), Verdict::kOk);
  // Both reads inside the write's window, but the first sees it and the
  // second does not: the write cannot be undone.
  EXPECT_EQ(V({Put(1, 0, 100, "a", 1), Get(2, 10, 20, "a", 1), GetNone(3, 30, 40)}),
            Verdict::kViolation);
  // Touching windows count as concurrent.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), GetNone(2, 10, 20)}), Verdict::kOk);
}

TEST(LincheckTest, StaleReadAfterCompletedWriteIsAViolation) {
  History h = {Put(1, 0, 10, "a", 1), Put(1, 20, 30, "b", 2), Get(2, 40, 50, "a", 1)};
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  const std::string text = r.Explain();
  EXPECT_NE(text.find("NOT linearizable"), std::string::npos) << text;
  // The explanation names the read that cannot be explained and why.
  EXPECT_NE(text.find(DescribeOp(h[2], 2)), std::string::npos) << text;
  EXPECT_NE(text.find("#2 (version 1) must be placed before it"), std::string::npos) << text;
  EXPECT_NE(text.find("invoked only after #1 answered"), std::string::npos) << text;
  // Without the versions the state itself refuses the read.
  History unversioned = {Put(1, 0, 10, "a", 1), Put(1, 20, 30, "b", 2), Get(2, 40, 50, "a", 3)};
  const std::string text2 = Check(unversioned).Explain();
  EXPECT_NE(text2.find("read \"a\", but the register holds \"b\" (version 2)"),
            std::string::npos)
      << text2;
}

TEST(LincheckTest, ReadOfAValueNeverWrittenIsAViolation) {
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Get(2, 0, 50, "zzz", 1)}), Verdict::kViolation);
  EXPECT_EQ(V({Get(2, 0, 50, "zzz", 1)}), Verdict::kViolation);
  // A definitely failed put did not happen: reading its value is a violation.
  EXPECT_EQ(V({MakePut(1, kKey, "b", 0, 10, Outcome::Failed()), Get(2, 20, 30, "b", 1)}),
            Verdict::kViolation);
}

TEST(LincheckTest, LostAcknowledgedWriteIsAViolation) {
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Put(2, 20, 30, "b", 4), Get(3, 40, 50, "a", 1)}),
            Verdict::kViolation);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), GetNone(3, 40, 50)}), Verdict::kViolation);
}

TEST(LincheckTest, IndeterminatePutMayAppearOrNot) {
  History appears = {Put(1, 0, 10, "a", 1), PutMaybe(2, 20, "b"), Get(3, 30, 40, "a", 1),
                     Get(3, 50, 60, "b", 5), Get(1, 70, 80, "b", 5)};
  EXPECT_EQ(V(appears), Verdict::kOk) << Check(appears).Explain();
  History never = {Put(1, 0, 10, "a", 1), PutMaybe(2, 20, "b"), Get(3, 30, 40, "a", 1),
                   Get(3, 50, 60, "a", 1)};
  EXPECT_EQ(V(never), Verdict::kOk);
  // It may take effect long after the client gave up on it.
  History late = {PutMaybe(2, 0, "b"), Put(1, 100, 110, "a", 3), Get(3, 200, 210, "b", 9)};
  EXPECT_EQ(V(late), Verdict::kOk);
  History flickers = {Put(1, 0, 10, "a", 1), PutMaybe(2, 20, "b"), Get(3, 30, 40, "b", 5),
                      Get(3, 50, 60, "a", 1)};
  EXPECT_EQ(V(flickers), Verdict::kViolation);
  // Pending (never completed) ops behave like indeterminate ones.
  History pending = {Put(1, 0, 10, "a", 1), MakePut(2, kKey, "b", 20, 0, Outcome()),
                     Get(3, 30, 40, "b", 2)};
  EXPECT_EQ(V(pending), Verdict::kOk);
  // An indeterminate get has nothing to check.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), MakeGet(2, kKey, 20, 0, Outcome::Indeterminate())}),
            Verdict::kOk);
}

TEST(LincheckTest, IndeterminateWriteVersionIsAboveThePreviousOne) {
  // The unseen write's version is unknown but above 3.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 3), PutMaybe(2, 20, "b"), Get(3, 30, 40, "b", 4)}),
            Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 3), PutMaybe(2, 20, "b"), Get(3, 30, 40, "b", 3)}),
            Verdict::kViolation);
  // Once a read revealed the version, it is exact again.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 3), PutMaybe(2, 20, "b"), Get(3, 30, 40, "b", 8),
               Get(3, 50, 60, "b", 9)}),
            Verdict::kViolation);
  // Two unseen writes in a row: the second is above 3 + 1.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 3), PutMaybe(2, 20, "b"), Get(3, 30, 40, "b", 4),
               PutMaybe(2, 50, "c"), Put(1, 60, 70, "d", 5)}),
            Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 3), PutMaybe(2, 20, "b"), Get(3, 30, 40, "b", 4),
               PutMaybe(2, 50, "c"), Get(1, 60, 70, "c", 4)}),
            Verdict::kViolation);
}

TEST(LincheckTest, CasSuccessAndFailure) {
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Cas(2, 20, 30, 1, "b", 2), CasFail(3, 40, 50, 1, "c"),
               Get(1, 60, 70, "b", 2)}),
            Verdict::kOk);
  // Succeeding against a version the key no longer has.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Cas(2, 20, 30, 1, "b", 2), Cas(3, 40, 50, 1, "c", 3)}),
            Verdict::kViolation);
  // Failing although the version matched.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), CasFail(2, 20, 30, 1, "b")}), Verdict::kViolation);
  // expected 0: the key must be absent.
  EXPECT_EQ(V({Cas(1, 0, 10, 0, "a", 1), CasFail(2, 20, 30, 0, "b")}), Verdict::kOk);
  EXPECT_EQ(V({CasFail(1, 0, 10, 0, "a")}), Verdict::kViolation);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Cas(2, 20, 30, 0, "b", 2)}), Verdict::kViolation);
  EXPECT_EQ(V({CasFail(1, 0, 10, 4, "a")}), Verdict::kOk);  // absent: any nonzero fails
  // Two concurrent cas on the same version: only one may win.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Cas(2, 20, 50, 1, "b", 2), Cas(3, 20, 50, 1, "c", 3)}),
            Verdict::kViolation);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Cas(2, 20, 50, 1, "b", 3), CasFail(3, 20, 50, 1, "c"),
               Get(1, 60, 70, "b", 3)}),
            Verdict::kOk);
  // A failed cas concurrent with the write that changed the version.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Put(2, 20, 50, "b", 2), CasFail(3, 30, 40, 2, "c")}),
            Verdict::kOk);
  // The new version must be above the expected one.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 5), Cas(2, 20, 30, 5, "b", 5)}), Verdict::kViolation);
}

TEST(LincheckTest, IndeterminateCas) {
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), CasMaybe(2, 20, 1, "b"), Get(3, 30, 40, "b", 2)}),
            Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), CasMaybe(2, 20, 1, "b"), Get(3, 30, 40, "a", 1)}),
            Verdict::kOk);
  // Its condition could never hold, so its value cannot appear.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), CasMaybe(2, 20, 7, "b"), Get(3, 30, 40, "b", 8)}),
            Verdict::kViolation);
  // After an unseen write the version is unknown: a cas may match it.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), PutMaybe(2, 20, "b"), Cas(3, 30, 40, 6, "c", 9),
               Get(1, 50, 60, "c", 9)}),
            Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 4), PutMaybe(2, 20, "b"), Cas(3, 30, 40, 4, "c", 9),
               Get(1, 50, 60, "c", 9), Get(1, 70, 80, "c", 9)}),
            Verdict::kOk);  // the cas ran before the unseen put took effect (never)
}

TEST(LincheckTest, VersionsGoingBackwardsAreViolations) {
  EXPECT_EQ(V({Put(1, 0, 10, "a", 5), Put(2, 20, 30, "b", 3)}), Verdict::kViolation);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 5), Get(2, 20, 30, "a", 4)}), Verdict::kViolation);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 5), Put(2, 20, 30, "b", 5)}), Verdict::kViolation);
  // Concurrent writes: the versions decide their order.
  EXPECT_EQ(V({Put(1, 0, 100, "a", 5), Put(2, 0, 100, "b", 3), Get(3, 200, 210, "a", 5)}),
            Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 100, "a", 5), Put(2, 0, 100, "b", 3), Get(3, 200, 210, "b", 3)}),
            Verdict::kViolation);
}

TEST(LincheckTest, DeleteSemantics) {
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Del(2, 20, 30, 2), GetNone(3, 40, 50),
               Cas(1, 60, 70, 0, "b", 4), Get(2, 80, 90, "b", 4)}),
            Verdict::kOk);
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Del(2, 20, 30, 2), Get(3, 40, 50, "a", 1)}),
            Verdict::kViolation);
  EXPECT_EQ(V({Del(1, 0, 10, 3), GetNone(2, 20, 30)}), Verdict::kOk);  // missing key
  EXPECT_EQ(V({Put(1, 0, 10, "a", 4), Del(2, 20, 30, 2)}), Verdict::kViolation);
  // After a delete the version is the delete's: a put must exceed it.
  EXPECT_EQ(V({Del(1, 0, 10, 6), Put(2, 20, 30, "a", 5)}), Verdict::kViolation);
  // cas with the deleted key's old version fails.
  EXPECT_EQ(V({Put(1, 0, 10, "a", 1), Del(2, 20, 30, 2), Cas(3, 40, 50, 1, "b", 3)}),
            Verdict::kViolation);
  History maybe_del = {Put(1, 0, 10, "a", 1), MakeDelete(2, kKey, 20, 0, Outcome::Indeterminate()),
                       GetNone(3, 30, 40), Put(1, 50, 60, "b", 2)};
  EXPECT_EQ(V(maybe_del), Verdict::kViolation);  // the delete took version >= 2
  maybe_del.back() = Put(1, 50, 60, "b", 3);
  EXPECT_EQ(V(maybe_del), Verdict::kOk);
}

TEST(LincheckTest, KeysAreCheckedIndependently) {
  History h = {MakePut(1, "x", "a", 0, 10, Outcome::Written(1)),
               MakePut(2, "y", "a", 5, 15, Outcome::Written(2)),
               MakeGet(3, "x", 20, 30, Outcome::GetFound("a", 1)),
               MakeGet(3, "y", 20, 30, Outcome::GetNotFound())};
  CheckResult r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys[0].key, "x");
  EXPECT_EQ(r.keys[0].verdict, Verdict::kOk);
  EXPECT_EQ(r.keys[1].key, "y");
  EXPECT_EQ(r.keys[1].verdict, Verdict::kViolation);
  EXPECT_EQ(r.keys[1].ops, 2u);
  EXPECT_NE(r.Explain().find("key \"y\""), std::string::npos) << r.Explain();
  EXPECT_EQ(r.Explain().find("key \"x\""), std::string::npos) << r.Explain();
}

TEST(LincheckTest, ShortestFailingPrefixPointsAtTheCulprit) {
  History h;
  int64_t t = 0;
  for (int i = 1; i <= 50; ++i, t += 100) {
    h.push_back(Put(1, t, t + 10, "v" + std::to_string(i), i));
    h.push_back(Get(2, t + 20, t + 30, "v" + std::to_string(i), i));
  }
  h[61] = Get(2, h[61].invoke_ns, h[61].return_ns, "v20", 20);  // stale read at step 31
  for (int i = 51; i <= 60; ++i, t += 100) h.push_back(Put(1, t, t + 10, "w", i));
  CheckResult r = Check(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  const std::string text = r.Explain();
  EXPECT_NE(
      text.find("shortest failing prefix: 62 ops, up to the answer of " + DescribeOp(h[61], 61)),
      std::string::npos)
      << text;
}

TEST(LincheckTest, BudgetExhaustionIsUnknownNotOk) {
  History h;
  for (int i = 0; i < 40; ++i) h.push_back(Put(i, 0, 1000, "v" + std::to_string(i), i + 1));
  h.push_back(Get(99, 2000, 2010, "v39", 40));
  CheckOptions small;
  small.max_states = 5;
  CheckResult r = Check(h, small);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_EQ(r.keys[0].verdict, Verdict::kUnknown);
  EXPECT_NE(r.Explain().find("budget"), std::string::npos);
  EXPECT_EQ(Check(h).verdict, Verdict::kOk);
}

TEST(LincheckTest, MalformedTimesAreReported) {
  CheckResult r = Check({Put(1, 50, 10, "a", 1)});
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_NE(r.Explain().find("malformed"), std::string::npos);
}

bool SameOp(const Operation& a, const Operation& b) {
  const bool answered = a.outcome.completion == Completion::kOk;
  return a.client == b.client && a.kind == b.kind && a.key == b.key && a.value == b.value &&
         a.expected_version == b.expected_version && a.invoke_ns == b.invoke_ns &&
         (!answered || a.return_ns == b.return_ns) &&
         a.outcome.completion == b.outcome.completion && a.outcome.found == b.outcome.found &&
         a.outcome.value == b.outcome.value && a.outcome.version == b.outcome.version;
}

TEST(LincheckTest, HistoryFileRoundTrip) {
  const std::string odd_key = std::string("k \"q\"\\\n\t\x01\xff", 10);
  History h = {MakePut(1, odd_key, std::string("v\0w", 3), 5, 9, Outcome::Written(3)),
               MakePut(2, "", "", 6, 0, Outcome::Indeterminate()),
               MakeGet(3, odd_key, 10, 20, Outcome::GetFound(std::string("v\0w", 3), 3)),
               MakeGet(3, "a", 21, 22, Outcome::GetNotFound()),
               MakeDelete(4, "a", 30, 0, Outcome::Failed()),
               MakeDelete(4, "a", 31, 40, Outcome::Written(8)),
               MakeCas(5, "a", 8, "x y", 50, 60, Outcome::Written(9)),
               MakeCas(5, "a", 0, "z", 61, 70, Outcome::CasFailed()),
               MakeCas(6, "a", 9, "q", 71, 0, Outcome()),
               MakeGet(7, "a", -5, 1LL << 62, Outcome::GetFound("x y", 9))};
  testing::TempDir dir;
  const std::string path = dir.Sub("history.txt");
  ASSERT_TRUE(WriteHistoryFile(h, path).ok());
  Result<History> back = ReadHistoryFile(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->size(), h.size());
  for (size_t i = 0; i < h.size(); ++i) {
    EXPECT_TRUE(SameOp(h[i], (*back)[i])) << i << ": " << DescribeOp((*back)[i], i);
  }
  EXPECT_EQ(FormatHistory(*back), FormatHistory(h));
  EXPECT_EQ(Check(*back).verdict, Check(h).verdict);

  EXPECT_FALSE(ReadHistoryFile(dir.Sub("missing")).ok());
  Result<History> bad = ParseHistory("# comment\n1 0 5 get \"k\" ok none\n1 0 5 jump \"k\" ok 1\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 3"), std::string::npos) << bad.status().ToString();
  EXPECT_FALSE(ParseHistory("1 0 - put \"k\" \"v\" ok 1\n").ok());  // answer without time
  EXPECT_FALSE(ParseHistory("1 0 5 put \"k\" \"v ok 1\n").ok());    // unterminated
  EXPECT_FALSE(ParseHistory("1 0 5 get \"k\" ok found \"v\"\n").ok());
}

// A register kept by a mutex: whatever order threads reach it in, the
// recorded history is linearizable.
TEST(LincheckTest, RecorderFromConcurrentThreads) {
  HistoryRecorder rec;
  std::mutex mu;
  std::map<std::string, std::pair<std::string, uint64_t>> store;
  uint64_t seq = 0;
  std::vector<std::thread> threads;
  for (uint64_t c = 0; c < 4; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937_64 rng(c);
      for (int i = 0; i < 300; ++i) {
        const std::string key = "k" + std::to_string(rng() % 3);
        const std::string val = std::to_string(c) + "-" + std::to_string(i);
        switch (rng() % 4) {
          case 0: {
            auto h = rec.InvokeGet(c, key);
            Outcome o;
            {
              std::lock_guard<std::mutex> lock(mu);
              auto it = store.find(key);
              o = it == store.end() ? Outcome::GetNotFound()
                                    : Outcome::GetFound(it->second.first, it->second.second);
            }
            rec.Complete(h, o);
            break;
          }
          case 1: {
            auto h = rec.InvokePut(c, key, val);
            uint64_t v;
            {
              std::lock_guard<std::mutex> lock(mu);
              v = ++seq;
              store[key] = {val, v};
            }
            rec.Complete(h, Outcome::Written(v));
            break;
          }
          case 2: {
            auto h = rec.InvokeDelete(c, key);
            uint64_t v;
            {
              std::lock_guard<std::mutex> lock(mu);
              v = ++seq;
              store.erase(key);
            }
            rec.Complete(h, Outcome::Written(v));
            break;
          }
          default: {
            uint64_t expected;
            {
              std::lock_guard<std::mutex> lock(mu);
              auto it = store.find(key);
              expected = it == store.end() ? 0 : it->second.second;
            }
            auto h = rec.InvokeCas(c, key, expected, val);
            Outcome o = Outcome::CasFailed();
            {
              std::lock_guard<std::mutex> lock(mu);
              auto it = store.find(key);
              if ((it == store.end() ? 0 : it->second.second) == expected) {
                store[key] = {val, ++seq};
                o = Outcome::Written(seq);
              }
            }
            rec.Complete(h, o);
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  rec.InvokePut(9, "k0", "never answered");
  History h = rec.Snapshot();
  ASSERT_EQ(h.size(), 4u * 300 + 1);
  EXPECT_EQ(h.back().outcome.completion, Completion::kPending);
  for (const Operation& op : h) {
    if (op.outcome.completion == Completion::kOk) {
      EXPECT_LE(op.invoke_ns, op.return_ns);
    }
  }
  CheckResult r = Check(h);
  EXPECT_EQ(r.verdict, Verdict::kOk) << r.Explain();
  EXPECT_EQ(r.ops, h.size());
}


}  // namespace
}  // namespace rangekv::lincheck
