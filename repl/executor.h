// repl/executor.h — runs one parsed command or one input line against a
// Backend and returns the text to print (I/O-free apart from the backend).
//
// line --Tokenize--> tokens --ParseCommand--> Command --Execute--> Reply
//
// Every failure along the way (bad quoting, unknown command, wrong arity,
// an error from the backend) becomes exactly one "(error) CODE message"
// line with outcome kFailed; the caller keeps reading input.
//
// Thread-safety: free functions; the backend is used from the calling
// thread only.
#pragma once

#include <string>
#include <string_view>

#include "repl/backend.h"
#include "repl/command.h"

namespace rangekv::repl {

enum class Outcome {
  kNothing,  // blank or comment line: print nothing
  kOk,       // command succeeded; text holds its result lines
  kFailed,   // text holds one "(error) ..." line
  kQuit,     // quit/exit: print nothing, stop reading
  kRefused,  // text holds one "(error) UNAUTHENTICATED ..." line: the node
             // refused this client (TLS), so nothing more can work; the
             // shell prints it and exits 2
};

struct Reply {
  Outcome outcome = Outcome::kNothing;
  std::string text;  // whole lines, each ending in '\n'; empty for kNothing/kQuit
};

// Runs one command. help and quit never touch the backend.
Reply Execute(const Command& command, Backend& backend);

// Tokenizes, parses and runs one input line (without its '\n').
Reply RunLine(std::string_view line, Backend& backend);

}  // namespace rangekv::repl
