#include "tools/load/tcp_mib.h"

#include <cerrno>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace geoip {

absl::StatusOr<uint64_t> ParseSnmpCounter(absl::string_view text, absl::string_view group,
                                          absl::string_view name) {
  const std::string prefix = absl::StrCat(group, ":");
  std::vector<absl::string_view> names;  // the group's line of names, once seen
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (fields.empty() || fields[0] != prefix) continue;
    if (names.empty()) {
      names = std::move(fields);
      continue;
    }
    for (size_t i = 1; i < names.size() && i < fields.size(); ++i) {
      if (names[i] != name) continue;
      uint64_t value = 0;
      if (!absl::SimpleAtoi(fields[i], &value)) {
        return absl::InvalidArgumentError(
            absl::StrCat(group, " ", name, " is not a counter: '", fields[i], "'"));
      }
      return value;
    }
    break;
  }
  return absl::NotFoundError(absl::StrCat("no ", group, " ", name, " counter"));
}

absl::StatusOr<uint64_t> ReadSnmpCounter(absl::string_view group, absl::string_view name) {
  static constexpr char kPath[] = "/proc/thread-self/net/snmp";
  std::ifstream in(kPath);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", kPath));
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<uint64_t> value = ParseSnmpCounter(text.str(), group, name);
  if (!value.ok())
    return absl::Status(value.status().code(), absl::StrCat(kPath, ": ", value.status().message()));
  return value;
}

}  // namespace geoip
