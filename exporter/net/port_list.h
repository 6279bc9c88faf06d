// The set of local ports whose accepted connections are counted, as given
// by --bpf.ports, and its bitmap form for the BPF program.
#ifndef EXPORTER_NET_PORT_LIST_H_
#define EXPORTER_NET_PORT_LIST_H_

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace geoip {

// A set of TCP ports. Default-constructed it holds every port, which tells
// the probe not to filter at all.
class PortSet {
 public:
  // Bytes in the BPF port bitmap (GEOIP_PORT_BITMAP_BYTES): one bit per port.
  static constexpr size_t kBitmapBytes = 65536 / 8;

  // Every port.
  PortSet();

  // True if connections to port are counted.
  bool Contains(uint16_t port) const { return all_ || ports_.test(port); }
  // True if every port 1-65535 is in the set, so no filter is needed.
  bool all() const { return all_; }

  // The bitmap the BPF program reads: port p is bit (p & 7) of byte p >> 3.
  std::array<uint8_t, kBitmapBytes> Bitmap() const;

  // Canonical text that ParsePortList accepts back: "all", or ascending,
  // merged items such as "22,8081-8083,9000".
  std::string ToString() const;

 private:
  friend absl::StatusOr<PortSet> ParsePortList(std::string_view text);
  explicit PortSet(const std::bitset<65536>& ports);

  bool all_;
  std::bitset<65536> ports_;
};

// Parses a comma-separated list of ports (1-65535) and inclusive ranges
// ("8081,8082,9000-9100"); whitespace around items is ignored. An empty
// string or "all" means every port. Errors are InvalidArgument and name
// the offending item.
absl::StatusOr<PortSet> ParsePortList(std::string_view text);

}  // namespace geoip

#endif  // EXPORTER_NET_PORT_LIST_H_
