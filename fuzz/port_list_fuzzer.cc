// ParsePortList on arbitrary text (--bpf.ports). Invariant: whatever parses
// prints as canonical text that parses back to the same set.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "exporter/net/port_list.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<geoip::PortSet> ports = geoip::ParsePortList(text);
  if (!ports.ok()) return 0;
  const std::string canonical = ports->ToString();
  absl::StatusOr<geoip::PortSet> again = geoip::ParsePortList(canonical);
  if (!again.ok() || again->all() != ports->all() || again->Bitmap() != ports->Bitmap() ||
      again->ToString() != canonical) {
    abort();
  }
  // Port 0 is never a port to count.
  if (!ports->all() && ports->Contains(0)) abort();
  return 0;
}
