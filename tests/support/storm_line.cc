#include "tests/support/storm_line.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace geoip {

absl::StatusOr<StormLine> ParseStormLine(absl::string_view output) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    if (!absl::StartsWith(line, "storm ")) continue;
    StormLine storm;
    std::pair<const char*, uint64_t*> fields[] = {{"connections", &storm.made},
                                                  {"accepted", &storm.accepted},
                                                  {"discarded", &storm.discarded}};
    for (auto& [name, value] : fields) {
      bool found = false;
      for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
        std::pair<absl::string_view, absl::string_view> pair = absl::StrSplit(word, '=');
        if (pair.first == name) found = absl::SimpleAtoi(pair.second, value);
      }
      if (!found) {
        return absl::InvalidArgumentError(absl::StrCat("no number ", name, "= in '", line, "'"));
      }
    }
    return storm;
  }
  return absl::NotFoundError(absl::StrCat("no storm line in '", output, "'"));
}

}  // namespace geoip
