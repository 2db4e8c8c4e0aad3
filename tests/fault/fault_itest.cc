// Fault injection under a concurrent workload on a real cluster
// (ZooKeeper, kvcoord, 4 kvnodes: rf 3, min-insync 2, 8 ranges), checked
// for linearizability and for the durability of acknowledged writes.
//
//   RandomFaults       the CI run: 6 client threads for 60 s while the
//                      nemesis (fault_nemesis.h) kills, pauses, stops and
//                      wipes nodes, adds and drains them, transfers,
//                      splits, merges and moves ranges, one at a time;
//                      then
//                      everything is healed, every
//                      key is read once more (these reads join the history),
//                      and the whole history must be linearizable
//                      (lincheck::Check: ok for every key), every
//                      acknowledged write must still be visible or
//                      overwritten by a later or possibly-applied write, and
//                      every failover window the clients saw (the longest
//                      stretch after the fault with no successful write to an
//                      affected range) must stay below the session timeout
//                      + 5 s.
//   RandomFaultsTls    the same, 40 s, on a cluster with mutual TLS on
//                      every connection (test certificates from
//                      scripts/make-test-certs); then every start of every
//                      node must have logged that it served TLS. Skipped,
//                      saying why, only where the openssl command is missing
//   Partitions         the same on hosts of their own (network namespaces,
//                      a 3-server ZooKeeper ensemble) under the partition
//                      kinds; skipped, saying why, where namespaces cannot
//                      be made
//   HeavyRandomFaults  the same, longer and with more clients; skipped
//                      unless RANGEKV_FAULT_HEAVY=1.
//
// Environment:
//   RANGEKV_FAULT_SECONDS  workload length (default 60, TLS 40, heavy 600)
//   RANGEKV_FAULT_SEED     the nemesis' and workload's seed (default: time)
//   RANGEKV_FAULT_KINDS    e.g. "kill-owner,pause-owner": only these faults
//                          (kill-owner, kill-replica, pause-owner, stop-owner,
//                          transfer, split, merge, wipe, move, decommission,
//                          add; on hosts also isolate-owner, cut-owner-zk,
//                          cut-owner-replicas, oneway-owner, split-minority,
//                          kill-zk-leader, pause-zk-leader, isolate-zk-leader,
//                          slow-links)
//   RANGEKV_FAULT_CAS_PCT  share of cas ops in percent (default 25; 0-55)
//   RANGEKV_FAULT_KEEP=1   write the history and timeline even on success
//   RANGEKV_KEEP_LOGS=dir  (harness) keep the process logs; the history
//                          then goes to the same directory
// On failure the history, the fault timeline and every process log are
// written to one directory whose path is printed.
//
// Timings are printed as "[measure] ..." lines.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "tests/fault/fault_nemesis.h"
#include "tests/fault/fault_workload.h"
#include "tests/kvnode/replication/repl_cluster.h"
#include "tests/lincheck/lincheck.h"
#include "tests/testutil/host_net.h"
#include "tests/testutil/testutil.h"

namespace rangekv::testing {
namespace {

namespace fs = std::filesystem;
using lincheck::Completion;
using lincheck::History;
using lincheck::Operation;
using lincheck::Verdict;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kSessionTimeout{2500};
constexpr milliseconds kSettle{60000};
constexpr uint64_t kFinalReader = 1000;  // client id of the final reads

struct RunConfig {
  int seconds = 60;
  int threads = 6;
  int key_slots = 60;
  int ops_per_key = 200;
  int cas_pct = 25;
  std::vector<FaultKind> kinds;  // empty: all
  uint64_t seed = 1;
  bool hosts = false;  // every process on a host of its own (ReplClusterOptions)
  bool tls = false;    // mutual TLS on every connection (ReplClusterOptions)
};

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoll(v, nullptr, 10);
}

uint64_t Seed() {
  int64_t s = EnvInt("RANGEKV_FAULT_SEED", 0);
  if (s > 0) return static_cast<uint64_t>(s);
  return static_cast<uint64_t>(
      std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'007);
}

std::string TestName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

// Where the history, timeline and logs go: next to the harness' kept logs
// when RANGEKV_KEEP_LOGS is set, else a fresh directory under $TMPDIR that
// is left in place.
std::string OutputDir() {
  if (const char* keep = std::getenv("RANGEKV_KEEP_LOGS"); keep && *keep) {
    fs::path p = fs::path(keep) / TestName();
    fs::create_directories(p);
    return p.string();
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/rangekv-fault-XXXXXX";
  if (!mkdtemp(tmpl.data())) return "/tmp";
  return tmpl;
}

// The checker's monotonic clock mapped to wall-clock time, to find history
// entries in the node logs.
class WallMap {
 public:
  WallMap()
      : mono_(lincheck::MonotonicNowNs()), wall_(std::chrono::system_clock::now()) {}
  std::string At(int64_t ns) const {
    auto t = wall_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         std::chrono::nanoseconds(ns - mono_));
    std::time_t s = std::chrono::system_clock::to_time_t(t);
    auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[48];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
    return std::string(buf) + "." + (ms < 100 ? (ms < 10 ? "00" : "0") : "") +
           std::to_string(ms);
  }
  int64_t mono() const { return mono_; }
  std::string Header() const {
    std::time_t s = std::chrono::system_clock::to_time_t(wall_);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[48];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return "# monotonic " + std::to_string(mono_) + " ns = " + buf + " UTC (+/- 1 s)";
  }

 private:
  int64_t mono_;
  std::chrono::system_clock::time_point wall_;
};

// Reads every key linearizably through a fresh client, recording each
// attempt; a failed attempt is retried until the deadline. Returns the keys
// never read.
std::vector<std::string> FinalReads(ReplCluster& c, lincheck::HistoryRecorder& rec,
                                    const std::vector<std::string>& keys) {
  std::vector<std::string> unread;
  auto client = c.NewClient(milliseconds(5000));
  if (!client.ok()) return keys;
  ReplClock::time_point deadline = ReplClock::now() + seconds(60);
  for (const std::string& key : keys) {
    bool done = false;
    while (!done && ReplClock::now() < deadline) {
      auto h = rec.InvokeGet(kFinalReader, key);
      auto r = (*client)->Get(key);
      if (!r.ok()) {
        rec.Complete(h, lincheck::Outcome::Failed());
        continue;  // the client already backed off inside the call
      }
      rec.Complete(h, r->has_value() ? lincheck::Outcome::GetFound((*r)->value, (*r)->version)
                                     : lincheck::Outcome::GetNotFound());
      done = true;
    }
    if (!done) unread.push_back(key);
  }
  return unread;
}

struct Windows {
  std::vector<int64_t> owner_ms;     // one per fault that deposed an owner
  std::vector<int64_t> follower_ms;  // one per fault with followed ranges
  std::vector<int64_t> transfer_ms;  // one per transfer (no failover)
  std::vector<int64_t> split_ms;     // one per split or merge
  std::vector<std::string> problems;
};

// Where a fault's owner window is counted: a handoff without a failover
// (transfer, and the transfers a move or drain makes), a split or merge,
// or a failover (kills, pauses, stops, wipes).
std::vector<int64_t>& Bucket(Windows& w, FaultKind k) {
  switch (k) {
    case FaultKind::kTransfer:
    case FaultKind::kMove:
    case FaultKind::kDecommission:
    case FaultKind::kAdd:
      return w.transfer_ms;
    case FaultKind::kSplit:
    case FaultKind::kMerge:
      return w.split_ms;
    default:
      return w.owner_ms;
  }
}

// For each fault: per affected range, the longest stretch from the fault
// until the cluster settled again in which no write to the range completed
// successfully (what a client waits through); the window is the longest of
// those over the ranges.
Windows MeasureWindows(const History& h, const cluster::ClusterMap& map,
                       const std::vector<FaultRecord>& faults) {
  Windows w;
  std::map<std::string, RangeId> range_of;
  for (const Operation& op : h) {
    if (range_of.count(op.key)) continue;
    const cluster::RangeInfo* r = map.Locate(op.key);
    range_of[op.key] = r ? r->id : RangeId(0);
  }
  // The longest stall over ranges; *cut when one ran into the next fault.
  auto window = [&](const FaultRecord& f, int64_t stop_ns, const std::vector<RangeId>& ranges,
                    std::string* missing, bool* cut) -> int64_t {
    int64_t worst = 0;
    for (RangeId rid : ranges) {
      auto span = f.spans.find(rid);
      auto in_range = [&](const std::string& key) {
        return span != f.spans.end() ? span->second.Contains(key) : range_of[key] == rid;
      };
      auto stall = LongestWriteStall(h, f.fault_ns, f.settled_ns, stop_ns, in_range);
      // A range nobody wrote to after the fault has no window: splits at
      // the workload's keys leave ranges that only hold keys whose turn is
      // over (the workload moves on to new keys per slot).
      const bool written = std::any_of(h.begin(), h.end(), [&](const Operation& op) {
        return op.kind != lincheck::OpKind::kGet && op.invoke_ns >= f.fault_ns && in_range(op.key);
      });
      if (!stall && !written) continue;
      if (!stall) {
        *missing += (missing->empty() ? "" : ",") + std::to_string(rid.value());
        continue;
      }
      worst = std::max(worst, stall->ns / 1'000'000);
      *cut = *cut || stall->cut;
    }
    return worst;
  };
  for (size_t i = 0; i < faults.size(); ++i) {
    const FaultRecord& f = faults[i];
    const int64_t stop_ns = i + 1 < faults.size() ? faults[i + 1].fault_ns : 0;
    std::string missing;
    std::ostringstream line;
    line << "[measure] failover window after " << FaultVerb(f.kind) << " of " << f.node;
    // A stall cut by the next fault is printed (at least that long) but is
    // not checked against the bound: part of it belongs to the next fault.
    if (!f.owned.empty()) {
      bool cut = false;
      int64_t ms = window(f, stop_ns, f.owned, &missing, &cut);
      if (!cut) {
        Bucket(w, f.kind).push_back(ms);
      }
      line << " (owner of ranges " << JoinRanges(f.owned) << "): " << (cut ? ">= " : "") << ms
           << " ms" << (cut ? " (still stalled when the next fault began)" : "");
    } else {
      line << " (owner of no range)";
    }
    if (!f.followed.empty()) {
      bool cut = false;
      int64_t ms = window(f, stop_ns, f.followed, &missing, &cut);
      if (!cut) w.follower_ms.push_back(ms);
      line << "; writes to the ranges it followed (" << JoinRanges(f.followed) << ") stalled "
           << (cut ? ">= " : "") << ms << " ms";
    }
    std::cout << line.str() << std::endl;
    if (!missing.empty()) {
      w.problems.push_back("after " + Nemesis::Describe(f) + ": no write to range(s) " + missing +
                           " succeeded before the end of the run");
    }
  }
  return w;
}

std::string MinMedMax(std::vector<int64_t> v) {
  if (v.empty()) return "none";
  std::sort(v.begin(), v.end());
  return "min " + std::to_string(v.front()) + " / median " + std::to_string(v[v.size() / 2]) +
         " / max " + std::to_string(v.back()) + " ms (" + std::to_string(v.size()) + ")";
}

// Writes the history, the fault timeline, the ops of every non-ok key with
// wall-clock times, and every process log into dir.
void SaveEvidence(const std::string& dir, ReplCluster& c, const History& h,
                  const std::vector<FaultRecord>& faults, const lincheck::CheckResult* check,
                  const WallMap& wall, const RunConfig& cfg) {
  std::string history = dir + "/history.txt";
  Status st = lincheck::WriteHistoryFile(h, history);
  std::cout << "[fault] history (" << h.size() << " ops) written to " << history
            << (st.ok() ? "" : " FAILED: " + st.ToString()) << std::endl;
  std::ofstream t(dir + "/timeline.txt");
  t << wall.Header() << "\n# seed " << cfg.seed << ", " << cfg.threads << " clients, "
    << cfg.seconds << " s\n";
  for (const FaultRecord& f : faults) t << Nemesis::Describe(f) << "\n";
  if (check) {
    for (const lincheck::KeyResult& k : check->keys) {
      if (k.verdict == Verdict::kOk) continue;
      t << "\n# key \"" << k.key << "\": " << lincheck::VerdictName(k.verdict) << "\n";
      for (size_t i = 0; i < h.size(); ++i) {
        if (h[i].key != k.key) continue;
        bool returned = h[i].outcome.completion == Completion::kOk;
        t << wall.At(h[i].invoke_ns) << " .. " << (returned ? wall.At(h[i].return_ns) : "?")
          << "  " << lincheck::DescribeOp(h[i], i) << "\n";
      }
    }
  }
  std::ofstream(dir + "/kvcoord.log") << c.CoordLog();
  for (const std::string& id : c.NodeIds()) std::ofstream(dir + "/" + id + ".log") << c.NodeLog(id);
  std::cout << "[fault] timeline, failing keys and process logs in " << dir << std::endl;
}

// Every start of every node (the first ones, restarts, added nodes) served
// TLS: its "serving on" line says so. Without this a cluster that fell back
// to plaintext would pass just the same.
void ExpectServedTls(ReplCluster& c) {
  const std::string kServing = "serving on ";
  const std::string kTls = "(TLS, mutual certificates)";
  const std::string kLaunch = "==== test harness: starting ";
  for (const std::string& id : c.NodeIds()) {
    const std::string log = c.NodeLog(id);
    int starts = 0;
    for (size_t at = log.find(kServing); at != std::string::npos; at = log.find(kServing, at + 1)) {
      ++starts;
      const std::string line = log.substr(at, log.find('\n', at) - at);
      EXPECT_NE(line.find(kTls), std::string::npos) << id << " served without TLS: " << line;
    }
    size_t launches = 0;  // the harness marks each start in the log
    for (size_t at = log.find(kLaunch); at != std::string::npos; at = log.find(kLaunch, at + 1)) {
      ++launches;
    }
    EXPECT_GE(starts, 1) << id << " never logged its serving line";
    EXPECT_EQ(static_cast<size_t>(starts), launches) << id << ": a start without a serving line";
    std::cout << "[fault] " << id << ": " << starts << " start(s), every one serving TLS"
              << std::endl;
  }
}

void RunFaultTest(const RunConfig& cfg) {
  std::cout << "[fault] seed " << cfg.seed << " (RANGEKV_FAULT_SEED), " << cfg.threads
            << " clients, " << cfg.key_slots << " key slots of " << cfg.ops_per_key
            << " ops, " << cfg.cas_pct << "% cas, " << cfg.seconds << " s, faults: ";
  for (FaultKind k : cfg.kinds) std::cout << FaultKindName(k) << " ";
  std::cout << (cfg.kinds.empty() ? "all" : "") << std::endl;
  ReplCluster c("fault");
  ReplClusterOptions o;
  o.nodes = 4;
  o.rf = 3;
  o.ranges = 8;
  o.min_insync = 2;
  o.node_session_timeout = kSessionTimeout;
  // No automatic replacement (0: never): a killed node's copies stay its
  // own. Replicas still move: the nemesis' moves, drains and added nodes.
  o.coord_flags = {"--replace-after", "0"};
  o.hosts = cfg.hosts;
  o.emulated_links = cfg.hosts;  // slow-links needs them
  o.tls = cfg.tls;
  Status started = c.Start(o);
  ASSERT_TRUE(started.ok()) << started.ToString();
  cluster::ClusterMap map;
  ASSERT_TRUE(c.WaitAllActive(kSettle, &map)) << "the cluster never settled";
  std::set<RangeId> covered;
  for (int i = 0; i < cfg.key_slots; ++i) {
    const cluster::RangeInfo* r = map.Locate(Workload::SlotKey(i, 0));
    ASSERT_NE(r, nullptr) << "no range holds " << Workload::SlotKey(i, 0);
    covered.insert(r->id);
  }
  ASSERT_EQ(covered.size(), map.ranges.size()) << "the keys do not reach every range";

  const WallMap wall;
  lincheck::HistoryRecorder recorder;
  WorkloadOptions wo;
  wo.threads = cfg.threads;
  wo.key_slots = cfg.key_slots;
  wo.ops_per_key = cfg.ops_per_key;
  wo.request_timeout = milliseconds(2500);
  wo.seed = cfg.seed;
  wo.cas_pct = cfg.cas_pct;
  wo.put_pct = 55 - cfg.cas_pct;  // 40% gets, 5% deletes whatever the cas share
  Workload workload(c, recorder, wo);
  Status ws = workload.Start();
  ASSERT_TRUE(ws.ok()) << "clients did not connect: " << ws.ToString();

  NemesisOptions no;
  no.session_timeout = kSessionTimeout;
  no.settle_timeout = kSettle;
  no.seed = cfg.seed;
  no.kinds = cfg.kinds;
  no.split_keys = [&workload] { return workload.Keys(); };
  Nemesis nemesis(c, no);
  const ReplClock::time_point end = ReplClock::now() + seconds(cfg.seconds);
  std::string stuck;
  bool nemesis_ok = nemesis.Run(end, &stuck);
  if (nemesis_ok) {
    // The faults are over; the clients run on to the end on a healthy cluster.
    WaitFor([&] { return ReplClock::now() >= end; }, seconds(cfg.seconds + 5),
            milliseconds(100));
  }
  workload.Stop();
  const int64_t workload_end_ns = lincheck::MonotonicNowNs();
  std::cout << "[measure] workload: " << recorder.size() << " ops in "
            << (workload_end_ns - wall.mono()) / 1'000'000 << " ms" << std::endl;

  // Heal: every node runs (the nemesis restarts and resumes what it broke);
  // wait for the cluster to settle, then read every key.
  bool settled = nemesis_ok && c.WaitAllActive(kSettle, &map);
  std::vector<std::string> unread;
  if (settled) unread = FinalReads(c, recorder, workload.Keys());

  const History h = recorder.Snapshot();
  auto t_check = ReplClock::now();
  lincheck::CheckResult check = lincheck::Check(h);
  const int64_t check_ms = MsSince(t_check);
  std::vector<std::string> lost = settled ? CheckDurable(h) : std::vector<std::string>{};
  auto m = c.ReadMap();
  Windows windows = MeasureWindows(h, m.ok() ? *m : map, nemesis.faults());

  size_t ok_keys = 0, bad_keys = 0, unknown_keys = 0;
  for (const lincheck::KeyResult& k : check.keys) {
    (k.verdict == Verdict::kOk ? ok_keys : k.verdict == Verdict::kViolation ? bad_keys
                                                                           : unknown_keys)++;
  }
  std::cout << "[fault] ops by outcome:\n" << FormatCounts(CountOutcomes(h));
  std::cout << "[fault] " << nemesis.faults().size() << " faults:\n";
  for (const FaultRecord& f : nemesis.faults()) std::cout << "  " << Nemesis::Describe(f) << "\n";
  std::cout << "[measure] failover windows (owner): " << MinMedMax(windows.owner_ms) << "\n"
            << "[measure] write stall of followed ranges: " << MinMedMax(windows.follower_ms)
            << "\n"
            << "[measure] write stall of a transferred range: " << MinMedMax(windows.transfer_ms)
            << "\n"
            << "[measure] write stall of a split or merged range: " << MinMedMax(windows.split_ms)
            << "\n"
            << "[measure] lincheck: " << check.ops << " ops on " << check.keys.size()
            << " keys (longest key history " << LongestKeyHistory(h) << ") in " << check_ms
            << " ms: " << ok_keys << " ok, " << bad_keys << " violation, " << unknown_keys
            << " unknown" << std::endl;

  const int64_t bound = (kSessionTimeout + seconds(5)).count();
  auto over = [&](const std::vector<int64_t>& v) {
    return std::any_of(v.begin(), v.end(), [&](int64_t ms) { return ms >= bound; });
  };
  const bool hung = std::any_of(nemesis.faults().begin(), nemesis.faults().end(),
                                [](const FaultRecord& f) { return f.stop_exit == -1; });
  const bool failed = !nemesis_ok || !settled || !unread.empty() ||
                      check.verdict != Verdict::kOk || !lost.empty() ||
                      !windows.problems.empty() || over(windows.owner_ms) ||
                      over(windows.follower_ms) || over(windows.transfer_ms) ||
                      over(windows.split_ms) || hung;
  const char* keep = std::getenv("RANGEKV_FAULT_KEEP");
  if (failed || (keep && *keep == '1')) {
    SaveEvidence(OutputDir(), c, h, nemesis.faults(), &check, wall, cfg);
  }

  EXPECT_TRUE(nemesis_ok) << "the nemesis stopped: " << stuck;
  EXPECT_TRUE(!nemesis_ok || settled) << "the cluster did not settle after the run";
  EXPECT_TRUE(unread.empty()) << unread.size() << " keys could not be read at the end, e.g. \""
                              << (unread.empty() ? "" : unread.front()) << "\"";
  EXPECT_GE(nemesis.faults().size(), 1u) << "no fault was injected";
  if (check.verdict == Verdict::kViolation) {
    ADD_FAILURE() << "NOT LINEARIZABLE: " << bad_keys << " key(s) with a violation"
                  << (unknown_keys ? ", " + std::to_string(unknown_keys) + " unknown" : "")
                  << "\n"
                  << check.Explain();
  } else if (check.verdict == Verdict::kUnknown) {
    ADD_FAILURE() << "checker budget exhausted (verdict UNKNOWN, not a proven violation) on "
                  << unknown_keys << " key(s)\n"
                  << check.Explain();
  }
  for (const std::string& l : lost) ADD_FAILURE() << "acknowledged write lost: " << l;
  for (const FaultRecord& f : nemesis.faults()) {
    EXPECT_FALSE(f.kind == FaultKind::kStopOwner && f.stop_exit == -1)
        << f.node << " did not exit within 5 s of SIGTERM: " << Nemesis::Describe(f);
  }
  for (const std::string& p : windows.problems) ADD_FAILURE() << p;
  for (const FaultRecord& f : nemesis.faults()) {
    EXPECT_TRUE(f.deposed_answer.empty())
        << "a deposed owner " << f.deposed_answer << ": " << Nemesis::Describe(f);
  }
  for (int64_t ms : windows.owner_ms) EXPECT_LT(ms, bound) << "failover window too long";
  for (int64_t ms : windows.follower_ms) EXPECT_LT(ms, bound) << "ISR shrink window too long";
  // A transfer's stall is milliseconds on an idle machine; the bound only
  // catches a handoff that fell back to waiting out a lease or worse.
  for (int64_t ms : windows.transfer_ms) EXPECT_LT(ms, bound) << "transfer stalled writes too long";
  for (int64_t ms : windows.split_ms)
    EXPECT_LT(ms, bound) << "split or merge stalled writes too long";
  auto counts = CountOutcomes(h);
  uint64_t acked = counts["put"]["ok"] + counts["cas"]["ok"] + counts["delete"]["ok"];
  EXPECT_GT(acked, 100u) << "the workload hardly wrote anything";
  if (cfg.tls) ExpectServedTls(c);
}

// The knobs every variant takes from the environment.
void FromEnv(RunConfig* cfg) {
  cfg->seed = Seed();
  cfg->cas_pct = static_cast<int>(std::clamp<int64_t>(EnvInt("RANGEKV_FAULT_CAS_PCT", 25), 0, 55));
  if (const char* kinds = std::getenv("RANGEKV_FAULT_KINDS"); kinds && *kinds) {
    auto parsed = ParseFaultKinds(kinds);
    ASSERT_TRUE(parsed.has_value()) << "RANGEKV_FAULT_KINDS: unknown kind in " << kinds;
    cfg->kinds = *parsed;
  }
}

TEST(FaultITest, RandomFaults) {
  RunConfig cfg;
  cfg.seconds = static_cast<int>(EnvInt("RANGEKV_FAULT_SECONDS", 60));
  ASSERT_NO_FATAL_FAILURE(FromEnv(&cfg));
  RunFaultTest(cfg);
}

// The same on a cluster with mutual TLS on every connection (clients,
// replication fetches, the coordinator's pings, the nemesis' own calls and
// kvrepl), shorter; then every node start must have served TLS. Skipped,
// saying why, only where the openssl command (for the test certificates)
// is missing.
TEST(FaultITest, RandomFaultsTls) {
  const std::string unavailable = OpensslUnavailable();
  if (!unavailable.empty()) GTEST_SKIP() << "no test certificates here: " << unavailable;
  RunConfig cfg;
  cfg.seconds = static_cast<int>(EnvInt("RANGEKV_FAULT_SECONDS", 40));
  cfg.tls = true;
  ASSERT_NO_FATAL_FAILURE(FromEnv(&cfg));
  RunFaultTest(cfg);
}

// The same checks with every process on a host of its own and a 3-server
// ZooKeeper ensemble, joined by emulated links, under the partition kinds
// (fault_nemesis.h). Skipped,
// saying why, where network namespaces cannot be made (not root, no
// nftables).
TEST(FaultITest, Partitions) {
  const std::string unavailable = HostNet::Unavailable();
  if (!unavailable.empty()) GTEST_SKIP() << "no hosts of their own here: " << unavailable;
  RunConfig cfg;
  cfg.seconds = static_cast<int>(EnvInt("RANGEKV_FAULT_SECONDS", 60));
  cfg.hosts = true;
  ASSERT_NO_FATAL_FAILURE(FromEnv(&cfg));
  if (cfg.kinds.empty()) cfg.kinds = PartitionFaultKinds();
  RunFaultTest(cfg);
}

TEST(FaultITest, HeavyRandomFaults) {
  const char* heavy = std::getenv("RANGEKV_FAULT_HEAVY");
  if (!heavy || std::string(heavy) != "1") GTEST_SKIP() << "set RANGEKV_FAULT_HEAVY=1 to run";
  RunConfig cfg;
  cfg.seconds = static_cast<int>(EnvInt("RANGEKV_FAULT_SECONDS", 600));
  cfg.threads = 10;
  cfg.key_slots = 120;
  ASSERT_NO_FATAL_FAILURE(FromEnv(&cfg));
  RunFaultTest(cfg);
}

// The window a client sees: a stopping owner that answers right after the
// fault and then goes quiet during the handoff is measured by the gap, not
// by its first answer.
TEST(FaultWindows, LongestStallNotFirstAnswer) {
  const int64_t ms = 1'000'000;
  History h;
  for (int64_t t : {5, 10, 900, 910}) {
    h.push_back(lincheck::MakePut(1, "k", "v", (t - 1) * ms, t * ms, lincheck::Outcome::Written(1)));
  }
  h.push_back(lincheck::MakePut(1, "k", "v", 20 * ms, 500 * ms, lincheck::Outcome::Failed()));
  auto all = [](const std::string&) { return true; };
  auto stall = LongestWriteStall(h, 0, 800 * ms, 0, all);
  ASSERT_TRUE(stall.has_value());
  // From the first write tried after the success at 10 ms (at 20 ms).
  EXPECT_EQ(stall->ns, 880 * ms);
  EXPECT_FALSE(stall->cut);
  // The next fault at 600 ms: writes had not come back, the stall is cut.
  stall = LongestWriteStall(h, 0, 800 * ms, 600 * ms, all);
  ASSERT_TRUE(stall.has_value());
  EXPECT_EQ(stall->ns, 580 * ms);
  EXPECT_TRUE(stall->cut);
  EXPECT_FALSE(LongestWriteStall(h, 0, 0, 0, [](const std::string&) { return false; }));
}

// A range the workload seldom writes to (a split left it keys whose turn
// is over) is idle between its writes, not stalled.
TEST(FaultWindows, AnIdleRangeIsNotAStalledOne) {
  const int64_t ms = 1'000'000;
  History h;
  for (int64_t t : {5, 9000}) {
    h.push_back(lincheck::MakePut(1, "k", "v", (t - 1) * ms, t * ms, lincheck::Outcome::Written(1)));
  }
  auto stall = LongestWriteStall(h, 0, 100 * ms, 0, [](const std::string&) { return true; });
  ASSERT_TRUE(stall.has_value());
  EXPECT_EQ(stall->ns, 1 * ms);
  stall = LongestWriteStall(h, 0, 100 * ms, 8000 * ms, [](const std::string&) { return true; });
  ASSERT_TRUE(stall.has_value());
  EXPECT_FALSE(stall->cut);
}

}  // namespace
}  // namespace rangekv::testing
