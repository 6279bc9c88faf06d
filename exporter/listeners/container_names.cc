#include "exporter/listeners/container_names.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace geoip {
namespace {

// conmon's options that take a value (its GOptionEntry table, conmon 2.1):
// their values are skipped, never read as options.
constexpr absl::string_view kLongOptionsWithValues =
    " bundle cid conmon-pidfile container-pidfile cuuid exec-process-spec exit-command "
    "exit-command-arg exit-delay exit-dir log-global-size-max log-level log-path log-size-max "
    "log-tag name persist-dir pidfile restore restore-arg runtime runtime-arg runtime-opt "
    "sdnotify-socket seccomp-notify-plugins seccomp-notify-socket socket-dir-path timeout ";

bool LongOptionTakesValue(absl::string_view name) {
  return !name.empty() && !absl::StrContains(name, ' ') &&
         absl::StrContains(kLongOptionsWithValues, absl::StrCat(" ", name, " "));
}

bool ShortOptionTakesValue(char c) { return absl::StrContains("0bclnPprTu", c); }

// Appends code point `cp` as UTF-8.
void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Just enough JSON to find one top-level string member: strings are decoded,
// everything else is skipped without recursion, so no input can exhaust the
// stack. Not a validator: malformed input ends in nullopt or a best guess.
class JsonScanner {
 public:
  explicit JsonScanner(absl::string_view text) : text_(text) {}

  std::optional<std::string> TopLevelString(absl::string_view key) {
    SkipSpace();
    if (!Consume('{')) return std::nullopt;
    while (true) {
      SkipSpace();
      if (AtEnd() || Peek() != '"') return std::nullopt;  // '}' or garbage
      std::optional<std::string> member = String();
      SkipSpace();
      if (!member || !Consume(':')) return std::nullopt;
      SkipSpace();
      if (*member == key) {
        if (AtEnd() || Peek() != '"') return std::nullopt;
        return String();
      }
      if (!SkipValue()) return std::nullopt;
      SkipSpace();
      if (!Consume(',')) return std::nullopt;
    }
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  bool Consume(char c) {
    if (AtEnd() || Peek() != c) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (!AtEnd() && absl::ascii_isspace(static_cast<unsigned char>(Peek()))) ++pos_;
  }

  std::optional<uint32_t> Hex4() {
    if (text_.size() - pos_ < 4) return std::nullopt;
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        value |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        value |= c - 'A' + 10;
      } else {
        return std::nullopt;
      }
    }
    return value;
  }

  // At '"': the decoded string; nullopt if it never ends or has a bad escape.
  std::optional<std::string> String() {
    ++pos_;
    std::string out;
    while (!AtEnd()) {
      const char c = text_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (AtEnd()) return std::nullopt;
      const char escape = text_[pos_++];
      switch (escape) {
        case '"':
        case '\\':
        case '/':
          out.push_back(escape);
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::optional<uint32_t> cp = Hex4();
          if (!cp) return std::nullopt;
          if (*cp >= 0xd800 && *cp < 0xdc00 && text_.substr(pos_, 2) == "\\u") {
            const size_t high_end = pos_;
            pos_ += 2;
            std::optional<uint32_t> low = Hex4();
            if (low && *low >= 0xdc00 && *low < 0xe000) {
              *cp = 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00);
            } else {
              pos_ = high_end;  // a lone high surrogate; the next escape stands alone
            }
          }
          AppendUtf8(&out, (*cp >= 0xd800 && *cp < 0xe000) ? 0xfffd : *cp);
          break;
        }
        default:
          return std::nullopt;
      }
    }
    return std::nullopt;
  }

  // Skips one value of any kind; false if the text ends inside it.
  bool SkipValue() {
    int depth = 0;
    while (!AtEnd()) {
      const char c = Peek();
      if (c == '"') {
        if (!String()) return false;
        if (depth == 0) return true;
        continue;
      }
      if (c == '{' || c == '[') {
        ++depth;
      } else if (c == '}' || c == ']') {
        if (depth == 0) return true;  // the end of the enclosing object
        if (--depth == 0) {
          ++pos_;
          return true;
        }
      } else if (depth == 0 && (c == ',' || absl::ascii_isspace(static_cast<unsigned char>(c)))) {
        return true;  // the end of a number or a literal
      }
      ++pos_;
    }
    return false;
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

// At most max_bytes of the file at `path`; nullopt if it cannot be opened.
std::optional<std::string> ReadFilePrefix(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string text(max_bytes, '\0');
  in.read(text.data(), static_cast<std::streamsize>(max_bytes));
  text.resize(static_cast<size_t>(in.gcount()));
  return text;
}

constexpr size_t kMaxCmdlineBytes = 64 * 1024;
constexpr size_t kMaxDockerConfigBytes = 4 * 1024 * 1024;

}  // namespace

std::vector<std::string> SplitCommandLine(absl::string_view cmdline) {
  absl::ConsumeSuffix(&cmdline, absl::string_view("\0", 1));
  if (cmdline.empty()) return {};
  return absl::StrSplit(cmdline, '\0');
}

std::optional<ConmonContainer> ParseConmonCommandLine(const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  absl::string_view program = args[0];
  const size_t slash = program.rfind('/');
  if (slash != absl::string_view::npos) program.remove_prefix(slash + 1);
  if (program != "conmon") return std::nullopt;

  std::optional<std::string> id;
  std::optional<std::string> name;
  auto take = [&](absl::string_view option, std::string value) {
    if (option == "cid" || option == "c") id = std::move(value);
    if (option == "name" || option == "n") name = std::move(value);
  };
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;  // the rest are operands
    if (absl::ConsumePrefix(&arg, "--")) {
      const size_t equals = arg.find('=');
      if (equals != absl::string_view::npos) {
        take(arg.substr(0, equals), std::string(arg.substr(equals + 1)));
      } else if (LongOptionTakesValue(arg) && i + 1 < args.size()) {
        take(arg, args[++i]);
      }
      continue;
    }
    if (arg.size() < 2 || arg[0] != '-') continue;  // an operand
    // A cluster of short options ("-ti"); the first that takes a value takes
    // the rest of the cluster, or else the next argument.
    for (size_t j = 1; j < arg.size(); ++j) {
      if (!ShortOptionTakesValue(arg[j])) continue;
      const absl::string_view option = arg.substr(j, 1);
      if (j + 1 < arg.size()) {
        take(option, std::string(arg.substr(j + 1)));
      } else if (i + 1 < args.size()) {
        take(option, args[++i]);
      }
      break;
    }
  }
  if (!id || !IsContainerId(*id) || !name || name->empty()) return std::nullopt;
  return ConmonContainer{*std::move(id), *std::move(name)};
}

std::optional<std::string> ParseDockerContainerName(absl::string_view config_v2_json) {
  std::optional<std::string> name = JsonScanner(config_v2_json).TopLevelString("Name");
  if (!name) return std::nullopt;
  absl::string_view bare = *name;
  absl::ConsumePrefix(&bare, "/");  // Docker keeps names as "/name"
  if (bare.empty()) return std::nullopt;
  return std::string(bare);
}

absl::flat_hash_map<std::string, std::string> NamesFromConmons(
    const std::vector<ConmonProcess>& conmons) {
  struct Claims {
    std::optional<std::string> by_root;
    absl::flat_hash_set<std::string> by_others;
  };
  absl::flat_hash_map<std::string, Claims> claims;
  for (const ConmonProcess& conmon : conmons) {
    Claims& claim = claims[conmon.container.id];
    if (conmon.uid == 0) {
      if (!claim.by_root) claim.by_root = conmon.container.name;
    } else {
      claim.by_others.insert(conmon.container.name);
    }
  }
  absl::flat_hash_map<std::string, std::string> names;
  for (auto& [id, claim] : claims) {
    if (claim.by_root) {
      names[id] = *std::move(claim.by_root);
    } else if (claim.by_others.size() == 1) {
      names[id] = *claim.by_others.begin();
    }
  }
  return names;
}

ContainerNames::ContainerNames() : ContainerNames(Options()) {}

ContainerNames::ContainerNames(Options options) : options_(std::move(options)) {}

std::optional<std::string> ContainerNames::Lookup(absl::string_view container_id,
                                                  ContainerRuntime runtime) {
  if (!IsContainerId(container_id)) return std::nullopt;
  if (runtime != ContainerRuntime::kPodman && runtime != ContainerRuntime::kDocker) {
    return std::nullopt;  // nothing to read: no scan, nothing to remember
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto cached = cache_.find(container_id);
  if (cached != cache_.end()) return cached->second;

  ++lookups_done_;
  std::optional<std::string> name;
  if (runtime == ContainerRuntime::kDocker) {
    name = ReadDockerName(container_id);
  } else {
    absl::flat_hash_map<std::string, std::string> running = NamesFromConmons(ScanConmon());
    auto found = running.find(container_id);
    if (found != running.end()) name = found->second;
    for (auto& [id, other] : running) {
      if (id != container_id) Remember(id, std::move(other));
    }
  }
  Remember(std::string(container_id), name);
  return name;
}

size_t ContainerNames::lookups_done() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return lookups_done_;
}

void ContainerNames::Remember(std::string id, std::optional<std::string> name) {
  if (cache_.size() >= options_.max_entries) cache_.clear();
  cache_.insert_or_assign(std::move(id), std::move(name));
}

std::optional<std::string> ContainerNames::ReadDockerName(absl::string_view container_id) const {
  std::optional<std::string> config = ReadFilePrefix(
      absl::StrCat(options_.docker_root, "/containers/", container_id, "/config.v2.json"),
      kMaxDockerConfigBytes);
  if (!config) return std::nullopt;
  return ParseDockerContainerName(*config);
}

std::vector<ConmonProcess> ContainerNames::ScanConmon() const {
  std::vector<ConmonProcess> conmons;
  DIR* dir = opendir(options_.proc_root.c_str());
  if (dir == nullptr) return conmons;
  while (const dirent* entry = readdir(dir)) {
    const absl::string_view pid = entry->d_name;
    if (pid.empty() || !std::all_of(pid.begin(), pid.end(), absl::ascii_isdigit)) continue;
    const std::string process = absl::StrCat(options_.proc_root, "/", pid);
    // comm first: a few bytes, and most processes stop here.
    std::optional<std::string> comm = ReadFilePrefix(process + "/comm", 64);
    if (!comm || absl::StripTrailingAsciiWhitespace(*comm) != "conmon") continue;
    std::optional<std::string> cmdline = ReadFilePrefix(process + "/cmdline", kMaxCmdlineBytes);
    struct stat owner;
    if (!cmdline || stat(process.c_str(), &owner) != 0) continue;  // it has exited
    std::optional<ConmonContainer> container = ParseConmonCommandLine(SplitCommandLine(*cmdline));
    if (container) conmons.push_back(ConmonProcess{owner.st_uid, *std::move(container)});
  }
  closedir(dir);
  return conmons;
}

}  // namespace geoip
