// tests/kvnode/replication/repl_checks.h — data-set bookkeeping and the checks the
// replication tests share, over a ReplCluster.
//
// Dataset: what the test knows it wrote and had acknowledged, key ->
// (value, version). The checks compare a node or the client against it:
//   - CheckCaughtUp: the owner of a range has committed its whole log
//     (hwm == last_seq), every other replica has acknowledged all of it to
//     the owner and is in the owner's ISR, and each of those replicas
//     reports the same last_seq and hwm itself. Polled until it holds.
//   - CheckStaleReads: one node answers a stale get of every key (of one
//     range or all) with exactly the acknowledged value and version.
//   - CheckClientReads: the smart client reads every key with exactly the
//     acknowledged value and version.
// Each returns an AssertionResult whose failure message names the first
// few differences and the state last seen.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "common/cluster_map.h"
#include "rangekv/client.h"
#include "tests/kvnode/replication/repl_cluster.h"

namespace rangekv::testing {

struct AckedWrite {
  std::string value;
  uint64_t version = 0;
};
using Dataset = std::map<std::string, AckedWrite>;

// Writes keys SpreadKey(from .. from+count-1, tag), each with a value of
// value_bytes bytes (at least the key's own tag), with PutRetry, recording
// every acknowledged one in *out. Stops at the first write that failed for
// good.
Status WriteSpread(Client& client, int from, int count, const std::string& tag,
                   size_t value_bytes, Dataset* out);

// Writes count keys inside one range (prefix = the range's start), as above.
Status WriteInRange(Client& client, const cluster::RangeInfo& range, int from, int count,
                    const std::string& tag, size_t value_bytes, Dataset* out);

// A key inside r whose tail is suffix.
std::string KeyInRange(const cluster::RangeInfo& r, const std::string& suffix);

// The keys of data that fall inside r.
Dataset InRange(const Dataset& data, const cluster::RangeInfo& r);

// The highest acknowledged version in data (0 when empty).
uint64_t MaxVersion(const Dataset& data);

// See the header. at_least: the owner's last_seq must have reached it too
// (e.g. the highest acknowledged version of the range).
::testing::AssertionResult CheckCaughtUp(ReplCluster& c, RangeId range,
                                         std::chrono::milliseconds timeout,
                                         uint64_t at_least = 0);

// Every key of data (only those in `range` when given) read stale from node.
::testing::AssertionResult CheckStaleReads(ReplCluster& c, const std::string& node,
                                           const Dataset& data,
                                           const std::optional<cluster::RangeInfo>& range);

// Every key of data read through client with the given consistency.
::testing::AssertionResult CheckClientReads(Client& client, const Dataset& data,
                                            ReadConsistency consistency);

}  // namespace rangekv::testing
