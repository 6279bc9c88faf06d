// ParseIpAddress and FormatIpAddress on arbitrary text, and IpAddress::FromRaw
// on arbitrary bytes (what the probe reports). Invariants: formatting then
// parsing gives the same address; truncation for display is idempotent.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "exporter/net/address.h"

namespace {

void CheckRoundTrip(const geoip::IpAddress& address) {
  const std::string text = geoip::FormatIpAddress(address);
  absl::StatusOr<geoip::IpAddress> parsed = geoip::ParseIpAddress(text);
  if (!parsed.ok() || *parsed != address) abort();
  if (geoip::FormatIpAddress(*parsed) != text) abort();
  // IPv4 keeps bytes 4-15 zero, so equal addresses hash alike.
  if (address.is_v4()) {
    for (size_t i = 4; i < address.bytes.size(); ++i) {
      if (address.bytes[i] != 0) abort();
    }
  }
  const geoip::IpAddress truncated = geoip::TruncateForDisplay(address);
  if (geoip::TruncateForDisplay(truncated) != truncated) abort();
  if (truncated.family != address.family) abort();
  (void)geoip::IsNonRoutable(address);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<geoip::IpAddress> address = geoip::ParseIpAddress(text);
  if (address.ok()) CheckRoundTrip(*address);
  if (size >= 17) {
    // The probe's form: an address family byte, then 16 address bytes.
    const geoip::IpAddress raw = geoip::IpAddress::FromRaw(data[0] == 4 ? 4 : 6, data + 1);
    CheckRoundTrip(raw);
  }
  return 0;
}
