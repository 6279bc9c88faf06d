#include "exporter/net/port_list.h"

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace geoip {
namespace {

constexpr uint32_t kMaxPort = 65535;

// A port number: decimal digits only, so signs, spaces, hex and the like are
// rejected rather than half-parsed as strtol would. Values are capped while
// accumulating, so no input length can overflow.
std::optional<uint32_t> ParsePort(absl::string_view text) {
  if (text.empty()) return std::nullopt;
  uint32_t value = 0;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    value = value * 10 + static_cast<uint32_t>(c - '0');
    if (value > kMaxPort) return std::nullopt;
  }
  if (value == 0) return std::nullopt;
  return value;
}

absl::Status BadItem(absl::string_view item, absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid port list item \"", item, "\" in \"", text, "\": ", why));
}

}  // namespace

PortSet::PortSet() : all_(true) { ports_.set(); }

PortSet::PortSet(const std::bitset<65536>& ports) : all_(false), ports_(ports) {
  // Port 0 is never a listening port; a set covering 1-65535 needs no filter.
  std::bitset<65536> without_zero = ports_;
  without_zero.reset(0);
  if (without_zero.count() == kMaxPort) {
    all_ = true;
    ports_.set();
  }
}

std::array<uint8_t, PortSet::kBitmapBytes> PortSet::Bitmap() const {
  std::array<uint8_t, kBitmapBytes> bitmap{};
  for (uint32_t port = 0; port <= kMaxPort; ++port) {
    if (Contains(static_cast<uint16_t>(port))) {
      bitmap[port >> 3] |= static_cast<uint8_t>(1u << (port & 7));
    }
  }
  return bitmap;
}

std::string PortSet::ToString() const {
  if (all_) return "all";
  std::vector<std::string> items;
  uint32_t port = 1;
  while (port <= kMaxPort) {
    if (!ports_.test(port)) {
      ++port;
      continue;
    }
    uint32_t last = port;
    while (last < kMaxPort && ports_.test(last + 1)) ++last;
    items.push_back(last == port ? absl::StrCat(port) : absl::StrCat(port, "-", last));
    port = last + 1;
  }
  return absl::StrJoin(items, ",");
}

absl::StatusOr<PortSet> ParsePortList(std::string_view std_text) {
  // Debian's abseil has its own string_view type, not an alias of std's.
  const absl::string_view text(std_text.data(), std_text.size());
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  if (trimmed.empty() || absl::EqualsIgnoreCase(trimmed, "all")) {
    return PortSet();
  }
  constexpr absl::string_view kExpected = "expected a port 1-65535 or a range like 9000-9100";
  std::bitset<65536> ports;
  for (absl::string_view raw : absl::StrSplit(trimmed, ',')) {
    absl::string_view item = absl::StripAsciiWhitespace(raw);
    if (item.empty()) return BadItem(raw, text, "empty item");
    std::vector<absl::string_view> bounds = absl::StrSplit(item, '-');
    if (bounds.size() > 2) return BadItem(item, text, kExpected);
    std::optional<uint32_t> first = ParsePort(absl::StripAsciiWhitespace(bounds[0]));
    std::optional<uint32_t> last =
        bounds.size() == 2 ? ParsePort(absl::StripAsciiWhitespace(bounds[1])) : first;
    if (!first || !last) return BadItem(item, text, kExpected);
    if (*first > *last) {
      return BadItem(item, text, "range start is greater than its end");
    }
    for (uint32_t port = *first; port <= *last; ++port) ports.set(port);
  }
  return PortSet(ports);
}

}  // namespace geoip
