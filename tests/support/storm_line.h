// The line `ebpf_geoip_traffic --storm` prints: "storm connections=N
// accepted=M seconds=S accepts_per_second=R discarded=D". Whatever counts a
// storm's connections must count the M its listener accepted; the storm has
// already checked that N = M + D.
#ifndef TESTS_SUPPORT_STORM_LINE_H_
#define TESTS_SUPPORT_STORM_LINE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace geoip {

struct StormLine {
  uint64_t made = 0;
  uint64_t accepted = 0;
  uint64_t discarded = 0;
};

// Parses the first line of the tool's output that starts with "storm ".
absl::StatusOr<StormLine> ParseStormLine(absl::string_view output);

}  // namespace geoip

#endif  // TESTS_SUPPORT_STORM_LINE_H_
