#include "repl/format.h"

#include "common/escape.h"
#include "repl/command.h"

namespace rangekv::repl {

std::string FormatWord(std::string_view bytes) { return QuoteIfNeeded(bytes); }

std::string FormatError(const Status& status) {
  std::string text = "(error) " + status.ToString();
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text + "\n";
}

std::string FormatValue(std::string_view value) { return FormatWord(value) + "\n"; }

std::string FormatVersioned(const VersionedValue& v) {
  return std::to_string(v.version) + " " + FormatWord(v.value) + "\n";
}

std::string FormatScan(const ScanResult& result) {
  std::string out;
  for (const KeyValue& kv : result.entries) {
    out += FormatWord(kv.key);
    out += ' ';
    out += FormatWord(kv.value);
    out += '\n';
  }
  out += "(" + std::to_string(result.entries.size()) + " keys";
  out += result.more ? ", more)\n" : ")\n";
  return out;
}

std::string FormatHelp(std::string_view topic) {
  constexpr size_t kUsageWidth = 40;
  std::string out;
  for (const CommandSpec& spec : AllCommands()) {
    if (!topic.empty() && spec.name != topic) continue;
    std::string line(spec.usage);
    line.resize(std::max(line.size() + 2, kUsageWidth), ' ');
    out += line + std::string(spec.summary) + "\n";
  }
  if (topic.empty()) {
    out += "keys and values: bare words, or \"double quoted\" with escapes "
           "\\n \\t \\r \\\\ \\\" \\xHH (also \\0 \\a \\b \\f \\v)\n";
  }
  return out;
}

}  // namespace rangekv::repl
