// repl/shell.h — the non-interactive kvrepl loops, over plain streams.
//
// Both loops write each Reply's text and flush `out` right after every
// command, so a program driving kvrepl through a pipe can write one command,
// read its answer, and go on. Nothing else is ever written to `out` (no
// banner, no prompt). Blank and comment lines print nothing.
//
// The interactive (TTY) loop lives in repl/terminal.h; it is built into the
// kvrepl executable only, so that this library needs no libedit.
//
// Thread-safety: run one loop at a time per backend.
#pragma once

#include <istream>
#include <ostream>
#include <string>
#include <vector>

#include "repl/backend.h"

namespace rangekv::repl {

// Runs the -c commands in order and stops after quit/exit. Returns
// kExitCommandFailed when any of them failed, else kExitOk.
int RunCommands(const std::vector<std::string>& commands, Backend& backend, std::ostream& out);

// Reads lines (a trailing '\r' is dropped with the '\n') until EOF or
// quit/exit; returns kExitOk (errors are reported inline only).
int RunStream(std::istream& in, std::ostream& out, Backend& backend);

}  // namespace rangekv::repl
