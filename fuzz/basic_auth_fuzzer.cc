// ParseBasicAuthorization on arbitrary Authorization header values.
// Invariants: accepted credentials respect the documented bounds, and
// encoding them again parses back to the same credentials.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "exporter/web/basic_auth.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view header(reinterpret_cast<const char*>(data), size);
  std::optional<geoip::BasicCredentials> credentials = geoip::ParseBasicAuthorization(header);
  if (!credentials) return 0;
  if (credentials->user.empty() || credentials->user.size() > geoip::kMaxUserBytes ||
      credentials->password.size() > geoip::kMaxPasswordBytes ||
      credentials->user.find(':') != std::string::npos ||
      credentials->password.find('\0') != std::string::npos) {
    abort();
  }
  const std::string again = absl::StrCat(
      "Basic ", absl::Base64Escape(absl::StrCat(credentials->user, ":", credentials->password)));
  std::optional<geoip::BasicCredentials> reparsed = geoip::ParseBasicAuthorization(again);
  if (!reparsed || reparsed->user != credentials->user ||
      reparsed->password != credentials->password) {
    abort();
  }
  if (!geoip::ConstantTimeEquals(credentials->user, reparsed->user)) abort();
  return 0;
}
