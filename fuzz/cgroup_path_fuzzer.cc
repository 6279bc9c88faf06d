// ParseProcCgroup and ParseCgroupPath on arbitrary text (whoever creates a
// cgroup names it: a user with a delegated subtree can call theirs anything),
// conmon command lines and Docker's config.v2.json (any user can start a
// process called conmon), and NameListener and LabelSafe on what comes out.
// Invariants: a container id is 64 lower-case hex digits and comes with a
// runtime; a pod UID has a UID's shape; a unit is one "*.service" component;
// every label value is valid UTF-8 without control characters, 1 to 64
// bytes, and LabelSafe leaves its own output alone.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "exporter/listeners/cgroup_path.h"
#include "exporter/listeners/container_names.h"
#include "exporter/listeners/service_name.h"

namespace {

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// UTF-8 checked another way than LabelSafe does: decode each sequence by its
// lead byte's length, then refuse what is overlong, a surrogate, too large or
// a control character.
bool IsCleanUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char lead = static_cast<unsigned char>(text[i]);
    size_t length = lead < 0x80         ? 1
                    : lead >> 5 == 0x6  ? 2
                    : lead >> 4 == 0xe  ? 3
                    : lead >> 3 == 0x1e ? 4
                                        : 0;
    if (length == 0 || i + length > text.size()) return false;
    uint32_t cp = length == 1 ? lead : lead & (0x7f >> length);
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if (next >> 6 != 0x2) return false;
      cp = (cp << 6) | (next & 0x3f);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kSmallest[length] || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return false;
    if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return false;
    i += length;
  }
  return true;
}

void CheckLabel(const std::string& value, bool may_be_empty) {
  if (value.empty()) {
    if (!may_be_empty) abort();
    return;
  }
  if (value.size() > geoip::kMaxLabelBytes || !IsCleanUtf8(value)) abort();
  if (geoip::LabelSafe(value) != value) abort();
}

void CheckFacts(const geoip::CgroupFacts& facts) {
  if (facts.container_id.empty() != (facts.runtime == geoip::ContainerRuntime::kNone)) abort();
  if (!facts.container_id.empty() &&
      (facts.container_id.size() != geoip::kContainerIdLength || !IsLowerHex(facts.container_id))) {
    abort();
  }
  const std::string& uid = facts.pod_uid;
  if (!uid.empty()) {
    const bool uuid = uid.size() == 36 && uid[8] == '-' && uid[13] == '-' && uid[18] == '-' &&
                      uid[23] == '-' &&
                      IsLowerHex(uid.substr(0, 8) + uid.substr(9, 4) + uid.substr(14, 4) +
                                 uid.substr(19, 4) + uid.substr(24));
    if (!uuid && !(uid.size() == 32 && IsLowerHex(uid))) abort();
  }
  const std::string& unit = facts.unit;
  if (!unit.empty() && (unit.size() <= 8 || unit.compare(unit.size() - 8, 8, ".service") != 0 ||
                        unit.find('/') != std::string::npos)) {
    abort();
  }
}

void CheckIdentity(const geoip::ListenerIdentity& identity) {
  CheckLabel(identity.service, false);
  CheckLabel(identity.process, false);
  CheckLabel(identity.unit, true);
  CheckLabel(identity.container_id, true);
  CheckLabel(identity.runtime, true);
  CheckLabel(identity.pod_uid, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);

  const geoip::CgroupFacts from_proc = geoip::ParseProcCgroup(text);
  CheckFacts(from_proc);
  const geoip::CgroupFacts from_path = geoip::ParseCgroupPath(text);
  CheckFacts(from_path);

  // The kernel's comm is 16 bytes; the rest stands for a container name.
  const absl::string_view comm = text.substr(0, 16);
  const std::optional<std::string> name =
      size > 16 ? std::optional<std::string>(std::string(text.substr(16))) : std::nullopt;
  CheckIdentity(geoip::NameListener(comm, from_proc, name));
  CheckIdentity(geoip::NameListener(comm, from_path, std::nullopt));

  const std::string safe = geoip::LabelSafe(text);
  CheckLabel(safe, false);

  const std::optional<geoip::ConmonContainer> conmon =
      geoip::ParseConmonCommandLine(geoip::SplitCommandLine(text));
  if (conmon && (!geoip::IsContainerId(conmon->id) || conmon->id.size() != 64 ||
                 !IsLowerHex(conmon->id) || conmon->name.empty())) {
    abort();
  }
  const std::optional<std::string> docker = geoip::ParseDockerContainerName(text);
  if (docker && docker->empty()) abort();
  return 0;
}
