// repl/node_call.h — one request to one node, blocking, bounded by a deadline.
//
// The shell's status questions (request kind rangeStatus) are node-to-node
// requests, not client operations, so they do not go through
// rangekv::Client (whose public API has no such call). Each call opens a
// fresh TCP connection to the node's client port, writes one frame
// (common/frame.h) holding the request, reads frames until the one whose id
// matches, and closes the connection:
//
//   shell                               node
//     | --- connect ----------------------> |
//     | --- [len][Request{id, kind}] -----> |
//     | <-- [len][Response{id, ...}] ------ |
//     | --- close ------------------------> |
//
// Deadline: resolving, connecting, writing and reading together take at
// most `timeout`; then the call gives up with TIMEOUT. A node that is down
// answers UNAVAILABLE (connection refused) at once; one that is paused
// (SIGSTOP: the kernel still accepts the connection) costs the whole
// timeout, never more, so a shell command using this cannot hang.
//
// Nothing outlives the call (own io_context, socket and buffers).
//
// Thread-safety: a free function; concurrent calls share nothing.
#pragma once

#include <chrono>
#include <string>

#include "common/protocol.h"
#include "rangekv/status.h"

namespace rangekv::repl {

// The node's response to req (an error Response is returned as is, kind
// kError). Errors: BAD_REQUEST for a malformed address ("host:port",
// "[v6]:port"), UNAVAILABLE when the node cannot be reached or closes the
// connection, TIMEOUT when the deadline passes, BAD_REQUEST / TOO_LARGE
// for a frame that does not decode.
Result<proto::Response> CallNode(const std::string& address, const proto::Request& req,
                                 std::chrono::milliseconds timeout);

}  // namespace rangekv::repl
