// repl/terminal.h — the interactive kvrepl loop on a terminal (libedit).
//
// Used when stdin and stdout are both TTYs:
//   - prints one banner line "kvrepl connected to <backend>; type help";
//   - prompts "rangekv> " and reads lines with libedit (BSD licence; the
//     readline compatibility API, never GNU readline);
//   - completes with Tab: command names (first word) and the levels of
//     consistency (repl/command.h Completions);
//   - keeps history in HistoryPath(), loaded at start and rewritten after
//     every non-blank line, so a killed shell loses nothing;
//   - leaves on quit/exit or EOF (Ctrl-D) with status kExitOk.
//
// Thread-safety: libedit keeps global state; run one terminal loop per
// process, from the main thread.
#pragma once

#include <string>

#include "repl/backend.h"

namespace rangekv::repl {

// $KVREPL_HISTORY when set and non-empty, else $HOME/.kvrepl_history, else
// "" (no history file).
std::string HistoryPath();

int RunTerminal(Backend& backend);

}  // namespace rangekv::repl
