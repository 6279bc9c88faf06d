#include "exporter/util/proc_status.h"

#include <cerrno>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace geoip {
namespace {

// /proc/PID/NAME (pid 0: /proc/self/NAME) and its text.
struct ProcFile {
  std::string path;
  std::string text;
};

absl::StatusOr<ProcFile> ReadProcFile(pid_t pid, absl::string_view name) {
  ProcFile file;
  file.path = pid == 0 ? absl::StrCat("/proc/self/", name) : absl::StrCat("/proc/", pid, "/", name);
  std::ifstream in(file.path);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", file.path));
  std::stringstream text;
  text << in.rdbuf();
  file.text = text.str();
  return file;
}

}  // namespace

ProcStatus ProcStatus::Parse(absl::string_view text) {
  ProcStatus status;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    status.fields_[line.substr(0, colon)] =
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return status;
}

absl::StatusOr<ProcStatus> ProcStatus::Read(pid_t pid) {
  absl::StatusOr<ProcFile> file = ReadProcFile(pid, "status");
  if (!file.ok()) return file.status();
  return Parse(file->text);
}

std::optional<std::string> ProcStatus::Field(absl::string_view name) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint64_t> ProcStatus::Capabilities(absl::string_view name) const {
  std::optional<std::string> value = Field(name);
  uint64_t mask = 0;
  if (!value || !absl::SimpleHexAtoi(*value, &mask)) return std::nullopt;
  return mask;
}

std::optional<uint64_t> ProcStatus::FirstNumber(absl::string_view name) const {
  std::optional<std::string> value = Field(name);
  if (!value) return std::nullopt;
  std::vector<absl::string_view> words =
      absl::StrSplit(*value, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  uint64_t number = 0;
  if (words.empty() || !absl::SimpleAtoi(words[0], &number)) return std::nullopt;
  return number;
}

std::optional<ProcStat> ProcStat::Parse(absl::string_view text) {
  // The command name is in parentheses and may hold spaces and ')', so the
  // fields start after the last ')'.
  const size_t end_of_name = text.rfind(')');
  if (end_of_name == absl::string_view::npos) return std::nullopt;
  ProcStat stat;
  stat.fields_ = absl::StrSplit(absl::StripAsciiWhitespace(text.substr(end_of_name + 1)), ' ',
                                absl::SkipEmpty());
  return stat;
}

absl::StatusOr<ProcStat> ProcStat::Read(pid_t pid) {
  absl::StatusOr<ProcFile> file = ReadProcFile(pid, "stat");
  if (!file.ok()) return file.status();
  std::optional<ProcStat> stat = Parse(file->text);
  if (!stat) return absl::InternalError(absl::StrCat("cannot parse ", file->path));
  return *std::move(stat);
}

double ProcStat::Field(int number) const {
  const int index = number - 3;
  double value = 0;
  if (index < 0 || index >= static_cast<int>(fields_.size()) ||
      !absl::SimpleAtod(fields_[index], &value)) {
    return 0;
  }
  return value;
}

bool HasEffectiveCapability(int cap) {
  absl::StatusOr<ProcStatus> status = ProcStatus::Read();
  if (!status.ok()) return false;
  return (status->Capabilities("CapEff").value_or(0) >> cap) & 1;
}

}  // namespace geoip
