// tests/lincheck/lincheck.h — linearizability checker for single-key
// register histories of rangekv (get / put / delete / cas with versions).
//
// Method. Wing & Gong's depth-first search for a linearization, with Lowe's
// memoisation: the history becomes a doubly linked list of call and return
// entries ordered by time; the search linearizes a call whose op the model
// accepts, lifts its two entries out of the list and starts again from the
// head; reaching a return entry means the op returning there was never
// linearized, so it backtracks. A cache of (set of linearized ops, model
// state) pairs already reached prunes repeated work; the set is a bitset
// whose hash is kept incrementally (an xor of one random word per op). The
// history is checked one key at a time: a history of independent registers
// is linearizable iff each key's sub-history is (P-compositionality).
// Three prunings, each exact (it only drops nodes no linearization needs):
//   - version order: an op that answered a version leaves the state at that
//     version and the version never falls, so such ops are placed in
//     version order; an op is refused while a lower version is still out.
//   - subset rule: indeterminate ops are optional, so a node (known ops K,
//     state s, indeterminate ops I) is skipped when (K, s, I') with I' a
//     subset of I was visited (search_cache.h).
//   - symmetry: indeterminate writes with the same effect (kind, expected
//     version, value; values no read returned count as one) are placed in
//     invoke order only.
// Cost: linearizable histories check in near-linear time (10,000 ops on one
// key with 5 clients: ~0.1 s). Refuting a long single-key history with many
// indeterminate writes whose violation sits far from its start can exhaust
// the budget (verdict unknown); keep per-key histories short (many keys)
// in fault tests.
//
// Timing. Times are monotonic nanoseconds: invoke_ns taken before the request
// is sent, return_ns after the answer arrived. Op a precedes op b iff
// a.return_ns < b.invoke_ns; equal times count as concurrent, which can only
// accept more histories, never reject a correct one.
//
// Outcomes.
//   kOk            the answer arrived; its result is checked.
//   kFailed        the op definitely did not take effect (an error the caller
//                  knows was returned before the store saw the write, e.g.
//                  NOT_OWNER, STALE_EPOCH). Dropped from the history.
//   kIndeterminate timeout or lost connection: the op may have taken effect
//                  at any moment after invoke_ns, or never. Its return time
//                  is +infinity. An indeterminate get is dropped (it has no
//                  effect and nothing to check). A search succeeds once every
//                  op with a known outcome is linearized: leftover
//                  indeterminate ops are "took effect after everything",
//                  which is the same as "never took effect".
//   kPending       invoked, never completed (the recorder was read early):
//                  treated as kIndeterminate.
//
// Model (per key). The store keeps one sequence per range; every write
// record gets the next Seq and the key's version is the Seq of the write that
// last changed it (delete included: a delete of a missing key still writes a
// record). So along the linearization order a key's versions strictly
// increase, though not by one (other keys share the sequence). The state is
//   (present, value, ver, exact)
// where exact=true means "the version is ver" and exact=false means "the
// version is unknown but >= ver" (an indeterminate write produced it). The
// initial state is absent with exact version 0 (the key was never written:
// fault tests use fresh keys). Let cur be the real version (ver, or any
// number >= ver when inexact); the absent state reads as version 0 for cas,
// as the store does.
//   get -> not_found        requires !present. State unchanged.
//   get -> (val, v)         requires present, value == val, and v == ver if
//                           exact, v >= ver if not; the state becomes exact v
//                           (the read has revealed the version).
//   put(val) -> ok(v)       requires v > ver (some cur < v exists); state
//                           becomes (present, val, v, exact).
//   delete -> ok(v)         requires v > ver; becomes (absent, v, exact).
//   cas(e, val) -> ok(v)    requires the condition: e == 0 ? !present
//                           : present && (exact ? ver == e : e >= ver), and
//                           v > max(ver, e); becomes (present, val, v, exact).
//   cas(e, val) -> CAS_FAILED  requires that the condition can be false:
//                           e == 0 ? present : !present || !exact || ver != e.
//                           State unchanged.
//   indeterminate put / delete: when linearized, the write happened with an
//                           unknown version: (present val | absent, ver+1,
//                           inexact).
//   indeterminate cas:      linearized means it succeeded: the condition must
//                           hold; becomes (present, val, max(ver, e)+1,
//                           inexact). (A cas that failed has no effect, the
//                           same as leaving it unlinearized.)
// Every rule accepts iff some real version consistent with what was seen
// makes the op legal, so the checker never rejects a correct history (it may
// miss a violation that only a tighter version bound would expose).
//
// Budget. The search stops after max_states distinct cache entries (or
// max_cache_bytes of cache) and the key's verdict is then kUnknown, never kOk.
//
// History file (WriteHistoryFile / ReadHistoryFile): UTF-8 text, one op per
// line, '#' starts a comment line. Fields separated by one space:
//   <client> <invoke_ns> <return_ns|-> <op> <key> [args] <outcome>
//   op/args:  get | put <value> | delete | cas <expected_version> <value>
//   outcome:  ok found <value> <version>   (get)
//             ok none                      (get, not found)
//             ok <version>                 (put, delete, cas swapped)
//             cas_failed                   (cas, CAS_FAILED; return_ns set)
//             failed | indeterminate | pending   (return_ns is "-")
// Keys and values are always written double-quoted with C escapes (\n \t \r
// \\ \" \xHH), the form of rangekv::Quote (common/escape.h).
//
// Thread-safety: HistoryRecorder is safe from any thread; Check and the file
// functions are pure functions of their arguments.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "rangekv/status.h"

namespace rangekv::lincheck {

enum class OpKind : uint8_t { kGet, kPut, kDelete, kCas };
// "get", "put", "delete", "cas".
const char* OpKindName(OpKind k);

enum class Completion : uint8_t { kPending, kOk, kFailed, kIndeterminate };

// What happened to an op. Build one with the factory functions.
struct Outcome {
  Completion completion = Completion::kPending;
  // kOk only. get: key found. cas: swapped (false = CAS_FAILED).
  // put/delete: always true.
  bool found = false;
  std::string value;     // get: the value read
  uint64_t version = 0;  // get (found): key's version; put/delete/cas (swapped): new version

  static Outcome GetFound(std::string value, uint64_t version);
  static Outcome GetNotFound();
  static Outcome Written(uint64_t version);  // put, delete, successful cas
  static Outcome CasFailed();
  static Outcome Failed();
  static Outcome Indeterminate();
};

struct Operation {
  uint64_t client = 0;
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;              // put, cas: the value written
  uint64_t expected_version = 0;  // cas: 0 = the key must be absent
  int64_t invoke_ns = 0;
  int64_t return_ns = 0;  // meaningful when outcome.completion == kOk
  Outcome outcome;
};

using History = std::vector<Operation>;

// Convenience builders for hand-made histories (outcome filled in later or
// by the caller).
Operation MakeGet(uint64_t client, std::string key, int64_t invoke_ns, int64_t return_ns,
                  Outcome outcome);
Operation MakePut(uint64_t client, std::string key, std::string value, int64_t invoke_ns,
                  int64_t return_ns, Outcome outcome);
Operation MakeDelete(uint64_t client, std::string key, int64_t invoke_ns, int64_t return_ns,
                     Outcome outcome);
Operation MakeCas(uint64_t client, std::string key, uint64_t expected_version, std::string value,
                  int64_t invoke_ns, int64_t return_ns, Outcome outcome);

// One line describing an op, e.g. `#12 c3 [1000,2000] put "k" "v" -> ok v7`.
std::string DescribeOp(const Operation& op, size_t index);

// Monotonic clock in nanoseconds (steady_clock), the recorder's time base.
int64_t MonotonicNowNs();

// Collects a history from many client threads. Call Invoke* right before
// sending a request and Complete once its outcome is known.
class HistoryRecorder {
 public:
  using Handle = size_t;

  Handle InvokeGet(uint64_t client, std::string key);
  Handle InvokePut(uint64_t client, std::string key, std::string value);
  Handle InvokeDelete(uint64_t client, std::string key);
  Handle InvokeCas(uint64_t client, std::string key, uint64_t expected_version,
                   std::string value);
  // Stamps return_ns now (kOk) and stores the outcome. Completing a handle
  // twice is a caller bug (asserted; the second call is ignored).
  void Complete(Handle handle, Outcome outcome);

  // A copy of everything recorded so far; ops not yet completed are kPending.
  History Snapshot() const;
  size_t size() const;

 private:
  Handle Invoke(Operation op);

  mutable std::mutex mu_;
  History ops_;
};

enum class Verdict : uint8_t { kOk, kViolation, kUnknown };
const char* VerdictName(Verdict v);  // "ok", "violation", "unknown"

struct CheckOptions {
  uint64_t max_states = 4'000'000;        // per key
  size_t max_cache_bytes = 512u << 20;    // per key
  // On a violation, search for the shortest failing prefix of the key's
  // history (a few extra searches) so the explanation points at the op whose
  // answer made the history non-linearizable.
  bool minimise = true;
};

struct KeyResult {
  std::string key;
  Verdict verdict = Verdict::kOk;
  size_t ops = 0;             // ops checked (failed ops and indeterminate gets excluded)
  uint64_t states = 0;        // cache entries created by the search
  std::vector<std::string> explanation;  // violation / unknown: readable lines
};

struct CheckResult {
  Verdict verdict = Verdict::kOk;  // violation if any key has one, else unknown if any, else ok
  size_t ops = 0;                  // total ops checked
  std::vector<KeyResult> keys;     // in key order
  // Every non-ok key's explanation, one line per entry, ready to print.
  std::string Explain() const;
};

CheckResult Check(const History& history, const CheckOptions& options = {});

// Writes the history in the format described at the top of this file.
Status WriteHistoryFile(const History& history, const std::string& path);
Result<History> ReadHistoryFile(const std::string& path);
// The same format to/from a string (WriteHistoryFile = file of FormatHistory).
std::string FormatHistory(const History& history);
Result<History> ParseHistory(std::string_view text);

}  // namespace rangekv::lincheck
