#include "exporter/listeners/service_name.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/strip.h"

namespace geoip {
namespace {

constexpr absl::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD

bool IsContinuation(unsigned char byte) { return (byte & 0xc0) == 0x80; }

// The length of the well-formed UTF-8 sequence at the start of `text` and
// its code point, or 0 if it is not one (Unicode's table 3-7: no overlong
// forms, no surrogates, nothing above U+10FFFF).
size_t DecodeUtf8(absl::string_view text, uint32_t* cp) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) {
    *cp = lead;
    return 1;
  }
  size_t length;
  unsigned char low = 0x80;  // the second byte's range, which rules out the bad forms
  unsigned char high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
    *cp = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    *cp = lead & 0x0f;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    *cp = lead & 0x07;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < low || byte(1) > high) return 0;
  for (size_t i = 1; i < length; ++i) {
    if (!IsContinuation(byte(i))) return 0;
    *cp = (*cp << 6) | (byte(i) & 0x3f);
  }
  return length;
}

bool IsControl(uint32_t cp) { return cp < 0x20 || (cp >= 0x7f && cp < 0xa0); }

// A non-empty field through LabelSafe; an empty one stays empty.
std::string OptionalLabel(absl::string_view text) {
  return text.empty() ? std::string() : LabelSafe(text);
}

}  // namespace

std::string LabelSafe(absl::string_view text) {
  std::string out;
  out.reserve(std::min(text.size(), kMaxLabelBytes));
  while (!text.empty()) {
    uint32_t cp = 0;
    const size_t length = DecodeUtf8(text, &cp);
    const bool keep = length > 0 && !IsControl(cp);
    const absl::string_view piece = keep ? text.substr(0, length) : kReplacement;
    if (out.size() + piece.size() > kMaxLabelBytes) break;
    out.append(piece.data(), piece.size());
    text.remove_prefix(length > 0 ? length : 1);  // a bad byte is replaced alone
  }
  if (out.empty()) return "unknown";
  return out;
}

ListenerIdentity NameListener(absl::string_view comm, const CgroupFacts& facts,
                              std::optional<std::string> container_name) {
  ListenerIdentity identity;
  identity.process = LabelSafe(comm.substr(0, comm.find('\0')));
  identity.unit = OptionalLabel(facts.unit);
  identity.container_id = OptionalLabel(facts.container_id);
  identity.runtime = OptionalLabel(RuntimeName(facts.runtime));
  identity.pod_uid = OptionalLabel(facts.pod_uid);
  if (!facts.container_id.empty()) {
    // The runtime's name survives a restart; the id does not, so it is the
    // last resort, in the short form `docker ps` shows.
    identity.service =
        container_name && !container_name->empty()
            ? LabelSafe(*container_name)
            : LabelSafe(absl::string_view(facts.container_id).substr(0, kShortContainerIdLength));
  } else if (!facts.unit.empty()) {
    // "demo-hello", as users write it: systemctl status demo-hello.
    identity.service = LabelSafe(absl::StripSuffix(facts.unit, ".service"));
  } else {
    identity.service = identity.process;
  }
  return identity;
}

}  // namespace geoip
