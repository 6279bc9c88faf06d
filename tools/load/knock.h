// Connection attempts to ports where, mostly, nothing listens: refused
// connections and bounded port scans for the end-to-end tests. Each attempt
// binds its source, connects and closes; a reset makes it refused, a
// listener makes it open. Rate-limited, and bounded in count and time.
#ifndef TOOLS_LOAD_KNOCK_H_
#define TOOLS_LOAD_KNOCK_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "exporter/net/address.h"
#include "tools/load/endpoint.h"

namespace geoip {

// Attempts from source to each port from first_port to last_port of
// address, in order, `repeat` times each.
struct KnockTarget {
  std::optional<IpAddress> source;  // none: the kernel picks
  IpAddress address;
  uint16_t first_port = 1;
  uint16_t last_port = 65535;
  uint64_t repeat = 1;

  uint64_t Attempts() const;
  // "SRC>DST:FIRST-LAST*REPEAT", the parts that are set.
  std::string Text() const;
};

// "FIRST-LAST" or a single "PORT"; 1 <= FIRST <= LAST <= 65535.
absl::StatusOr<std::pair<uint16_t, uint16_t>> ParsePortRange(absl::string_view text);

struct KnockResult {
  uint64_t attempts = 0;  // attempts made
  uint64_t refused = 0;   // answered with a reset (ECONNREFUSED)
  uint64_t open = 0;      // connected: something listens there
  double seconds = 0;     // from the first attempt to the last
};

// Makes every target's attempts in turn, at most `rate` a second (0: as
// fast as it can), filling *result, also when it fails. An error if an
// attempt fails otherwise (a bind, a timeout) or the deadline comes before
// the last. on_open, if given, is told each open destination.
absl::Status RunKnocks(const std::vector<KnockTarget>& targets, double rate, absl::Time deadline,
                       KnockResult* result,
                       const std::function<void(const Endpoint&)>& on_open = nullptr);

}  // namespace geoip

#endif  // TOOLS_LOAD_KNOCK_H_
