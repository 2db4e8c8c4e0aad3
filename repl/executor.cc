#include "repl/executor.h"

#include "repl/format.h"
#include "repl/tokenizer.h"

namespace rangekv::repl {
namespace {

Reply Ok(std::string text) { return Reply{Outcome::kOk, std::move(text)}; }
Reply Failed(const Status& status) {
  return Reply{status.code() == Code::kUnauthenticated ? Outcome::kRefused : Outcome::kFailed,
               FormatError(status)};
}

// Writes print "OK"; the version they return is shown by getv, not here,
// so that scripts can compare the output of every write with one string.
Reply WriteReply(const Result<uint64_t>& r) {
  return r.ok() ? Ok(std::string(kOkLine)) : Failed(r.status());
}

// One overload per command kind, chosen by std::visit below.
struct Runner {
  Backend& backend;

  Reply operator()(const PutCommand& c) { return WriteReply(backend.Put(c.key, c.value)); }
  Reply operator()(const DelCommand& c) { return WriteReply(backend.Delete(c.key)); }
  Reply operator()(const CasCommand& c) {
    return WriteReply(backend.Cas(c.key, c.version, c.value));
  }
  Reply operator()(const BatchCommand& c) { return WriteReply(backend.Batch(c.ops)); }

  Reply operator()(const GetCommand& c) {
    auto r = backend.Get(c.key);
    if (!r.ok()) return Failed(r.status());
    return Ok(r->has_value() ? FormatValue((*r)->value) : std::string(kNilLine));
  }
  Reply operator()(const GetvCommand& c) {
    auto r = backend.Get(c.key);
    if (!r.ok()) return Failed(r.status());
    return Ok(r->has_value() ? FormatVersioned(**r) : std::string(kNilLine));
  }
  Reply operator()(const ScanCommand& c) {
    std::optional<std::string_view> end;
    if (c.end) end = *c.end;
    auto r = backend.Scan(c.start, end, c.limit);
    if (!r.ok()) return Failed(r.status());
    return Ok(FormatScan(*r));
  }
  Reply operator()(const TransferCommand& c) {
    Status s = backend.Transfer(c.range, c.node);
    return s.ok() ? Ok(std::string(kOkLine)) : Failed(s);
  }
  Reply operator()(const MoveCommand& c) {
    Status s = backend.Move(c.range, c.from, c.to);
    return s.ok() ? Ok(std::string(kOkLine)) : Failed(s);
  }
  Reply operator()(const DecommissionCommand& c) {
    Status s = c.on ? backend.Decommission(c.node) : backend.Recommission(c.node);
    return s.ok() ? Ok(std::string(kOkLine)) : Failed(s);
  }
  Reply operator()(const SplitCommand& c) {
    Status s = backend.Split(c.key);
    return s.ok() ? Ok(std::string(kOkLine)) : Failed(s);
  }
  Reply operator()(const MergeCommand& c) {
    Status s = backend.Merge(c.key);
    return s.ok() ? Ok(std::string(kOkLine)) : Failed(s);
  }
  Reply operator()(const HistoryCommand& c) {
    auto ranges = backend.Ranges();
    if (!ranges.ok()) return Failed(ranges.status());
    for (const RangeStatus& r : *ranges) {
      if (r.id == c.range) return Ok(FormatHistory(r));
    }
    return Failed(Status(Code::kBadRequest, "no range " + std::to_string(c.range) +
                                                " in the cluster map (see: ranges)"));
  }
  Reply operator()(const PingCommand&) {
    Status s = backend.Ping();
    return s.ok() ? Ok(std::string(kPongLine)) : Failed(s);
  }
  Reply operator()(const NodesCommand&) {
    auto r = backend.Nodes();
    if (!r.ok()) return Failed(r.status());
    const std::set<std::string> draining = backend.Draining();
    for (NodeStatus& n : *r) n.draining = draining.count(n.id) != 0;
    auto ranges = backend.Ranges();
    if (!ranges.ok()) return Ok(FormatNodes(*r));  // the counts are extra: the nodes are known
    return Ok(FormatNodes(*r, &*ranges, backend.Progress(*ranges)));
  }
  Reply operator()(const RangesCommand&) {
    auto r = backend.Ranges();
    if (!r.ok()) return Failed(r.status());
    return Ok(FormatRanges(*r, backend.Progress(*r)));
  }
  Reply operator()(const LocateCommand& c) {
    auto r = backend.Locate(c.key);
    return r.ok() ? Ok(FormatLocate(*r)) : Failed(r.status());
  }
  Reply operator()(const StatusCommand&) {
    auto id = backend.Identity();
    if (!id.ok()) return Failed(id.status());
    auto nodes = backend.Nodes();
    if (!nodes.ok()) return Failed(nodes.status());
    auto ranges = backend.Ranges();
    if (!ranges.ok()) return Failed(ranges.status());
    return Ok(FormatStatus(id->cluster, id->zookeeper, *nodes, *ranges, backend.Progress(*ranges)));
  }
  Reply operator()(const ConsistencyCommand& c) {
    if (!c.set) return Ok(std::string(ConsistencyName(backend.consistency())) + "\n");
    backend.SetConsistency(*c.set);
    return Ok(std::string(kOkLine));
  }
  Reply operator()(const HelpCommand& c) { return Ok(FormatHelp(c.topic)); }
  Reply operator()(const QuitCommand&) { return Reply{Outcome::kQuit, {}}; }
};

}  // namespace

Reply Execute(const Command& command, Backend& backend) {
  return std::visit(Runner{backend}, command);
}

Reply RunLine(std::string_view line, Backend& backend) {
  auto tokens = Tokenize(line);
  if (!tokens.ok()) return Failed(tokens.status());
  if (tokens->empty()) return Reply{};
  auto command = ParseCommand(*tokens);
  if (!command.ok()) return Failed(command.status());
  return Execute(*command, backend);
}

}  // namespace rangekv::repl
