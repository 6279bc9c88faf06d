// ParseWebConfig on arbitrary text (--web.config.file), through yaml-cpp.
// Invariants: every error names its line; what it accepts holds only bcrypt
// hashes, user names Basic authentication can carry, header values that
// cannot split a response, and a TLS config exporter-toolkit would take
// (both files, a client CA where certificates are verified, versions in
// order, known curves); no string holds a control character.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "exporter/web/web_config.h"

namespace {

bool HasControl(const std::string& text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

void CheckTls(const geoip::TlsServerConfig& tls) {
  using geoip::ClientAuthType;
  if (tls.cert_file.empty() || tls.key_file.empty()) abort();
  if (HasControl(tls.cert_file) || HasControl(tls.key_file) || HasControl(tls.client_ca_file)) {
    abort();
  }
  const bool verifies = tls.client_auth_type == ClientAuthType::kVerifyClientCertIfGiven ||
                        tls.client_auth_type == ClientAuthType::kRequireAndVerifyClientCert;
  if (verifies && tls.client_ca_file.empty()) abort();
  if (tls.client_auth_type == ClientAuthType::kNoClientCert && !tls.client_ca_file.empty()) {
    abort();
  }
  if (!tls.client_allowed_sans.empty() &&
      tls.client_auth_type != ClientAuthType::kRequireAnyClientCert &&
      tls.client_auth_type != ClientAuthType::kRequireAndVerifyClientCert) {
    abort();
  }
  if (tls.min_version > tls.max_version) abort();
  if (tls.min_version < geoip::TlsVersion::kTls10 || tls.max_version > geoip::TlsVersion::kTls13) {
    abort();
  }
  for (const auto* list : {&tls.client_allowed_sans, &tls.cipher_suites}) {
    for (const std::string& item : *list) {
      if (item.empty() || HasControl(item)) abort();
    }
  }
  for (const std::string& curve : tls.curve_preferences) {
    if (curve != "CurveP256" && curve != "CurveP384" && curve != "CurveP521" && curve != "X25519") {
      abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<geoip::WebConfig> config = geoip::ParseWebConfig(text);
  if (!config.ok()) {
    // Every error names its line, on one line.
    const absl::string_view message = config.status().message();
    if (message.substr(0, 5) != "line ") abort();
    if (message.find('\n') != absl::string_view::npos) abort();
    return 0;
  }
  for (const auto& [user, hash] : config->basic_auth_users) {
    if (user.empty() || user.find(':') != std::string::npos || HasControl(user)) abort();
    if (!geoip::IsBcryptHash(hash)) abort();
  }
  for (const auto& [name, value] : config->headers) {
    if (name.empty() || value.empty() || HasControl(value)) abort();
  }
  if (config->tls.has_value()) CheckTls(*config->tls);
  return 0;
}
