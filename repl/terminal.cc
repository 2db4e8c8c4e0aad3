#include "repl/terminal.h"

// editline/readline.h uses FILE without including <stdio.h> itself.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include <editline/readline.h>

#include "repl/command.h"
#include "repl/executor.h"
#include "repl/options.h"
#include "repl/tokenizer.h"

namespace rangekv::repl {
namespace {

constexpr char kPrompt[] = "rangekv> ";
constexpr int kHistoryLines = 1000;

// libedit asks for matches one at a time (state 0 starts a new word);
// Complete fills the candidates just before.
std::vector<std::string>& Candidates() {
  static std::vector<std::string> candidates;
  return candidates;
}

char* CandidateGenerator(const char* /*text*/, int state) {
  static size_t next = 0;
  if (state == 0) next = 0;
  if (next >= Candidates().size()) return nullptr;
  return strdup(Candidates()[next++].c_str());
}

// Command names for the first word, the levels after "consistency";
// nothing elsewhere: arguments are keys, which we do not know, and
// file-name completion (libedit's fallback) would only mislead.
char** Complete(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;
  Candidates() = Completions(std::string_view(rl_line_buffer, start), text);
  if (Candidates().empty()) return nullptr;
  return rl_completion_matches(text, CandidateGenerator);
}

// libedit prints the prompt while the terminal is still in cooked mode and
// only then switches to raw mode. A Ctrl-D typed in between is taken by the
// kernel's line discipline as end-of-file and reaches libedit as a NUL
// byte, which libedit treats as "insert the next key literally", so the
// Ctrl-D is lost and the ones after it too. Keys are read here instead, and
// a NUL is handed on as the Ctrl-D it was (Ctrl-@, which also sends NUL,
// then acts as Ctrl-D; nothing else is bound to it).
int ReadKey(FILE* in) {
  unsigned char c = 0;
  ssize_t n;
  do {
    n = ::read(fileno(in), &c, 1);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return EOF;
  return c == 0 ? 0x04 : c;
}

class History {
 public:
  explicit History(std::string path) : path_(std::move(path)) {
    using_history();
    stifle_history(kHistoryLines);
    if (!path_.empty()) read_history(path_.c_str());  // absent at first start: fine
  }

  void Add(const std::string& line) {
    if (line == last_) return;
    last_ = line;
    add_history(line.c_str());
    if (!path_.empty()) write_history(path_.c_str());
  }

 private:
  std::string path_;
  std::string last_;
};

}  // namespace

std::string HistoryPath() {
  const char* explicit_path = std::getenv("KVREPL_HISTORY");
  if (explicit_path != nullptr && *explicit_path != '\0') return explicit_path;
  const char* home = std::getenv("HOME");
  if (home != nullptr && *home != '\0') return std::string(home) + "/.kvrepl_history";
  return "";
}

int RunTerminal(Backend& backend) {
  rl_readline_name = "kvrepl";
  rl_attempted_completion_function = Complete;
  rl_getc_function = ReadKey;
  rl_initialize();
  History history(HistoryPath());
  std::printf("kvrepl connected to %s; type help\n", backend.Describe().c_str());
  std::fflush(stdout);
  while (true) {
    char* raw = readline(kPrompt);
    if (raw == nullptr) {  // EOF (Ctrl-D): end the prompt line cleanly
      std::fputs("\n", stdout);
      break;
    }
    std::string line(raw);
    std::free(raw);
    if (!IsBlankOrComment(line)) history.Add(line);
    Reply reply = RunLine(line, backend);
    if (reply.outcome == Outcome::kQuit) break;
    std::fwrite(reply.text.data(), 1, reply.text.size(), stdout);
    std::fflush(stdout);
    if (reply.outcome == Outcome::kRefused) return kExitUsageOrConnect;
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace rangekv::repl
