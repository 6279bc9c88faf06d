// ParseWebConfig on arbitrary text (--web.config.file). Invariants: what it
// accepts holds only bcrypt hashes, user names Basic authentication can
// carry, and header values that cannot split a response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "exporter/web/web_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<geoip::WebConfig> config = geoip::ParseWebConfig(text);
  if (!config.ok()) {
    // Every error names its line.
    if (config.status().message().substr(0, 5) != "line ") abort();
    return 0;
  }
  for (const auto& [user, hash] : config->basic_auth_users) {
    if (user.empty() || user.find(':') != std::string::npos) abort();
    if (!geoip::IsBcryptHash(hash)) abort();
  }
  for (const auto& [name, value] : config->headers) {
    if (name.empty() || value.empty()) abort();
    for (char c : value) {
      if (c == '\r' || c == '\n' || c == '\0') abort();
    }
  }
  return 0;
}
