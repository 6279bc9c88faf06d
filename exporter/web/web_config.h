// The --web.config.file of Prometheus' exporter-toolkit: basic_auth_users
// (bcrypt), http_server_config (headers, http2) and tls_server_config. Read
// with yaml-cpp, and checked strictly on top: an unknown key, a duplicate key
// or a value of the wrong type is an error naming its line, never silently
// ignored.
#ifndef EXPORTER_WEB_WEB_CONFIG_H_
#define EXPORTER_WEB_WEB_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "exporter/web/http_server.h"

namespace geoip {

// tls_server_config's client_auth_type, as Go's crypto/tls names them.
enum class ClientAuthType {
  kNoClientCert,
  kRequestClientCert,
  kRequireAnyClientCert,
  kVerifyClientCertIfGiven,
  kRequireAndVerifyClientCert
};
// TLS protocol versions by their wire value (TLS1_2_VERSION is 0x0303).
enum class TlsVersion : int { kTls10 = 0x0301, kTls11 = 0x0302, kTls12 = 0x0303, kTls13 = 0x0304 };

// tls_server_config, validated as exporter-toolkit does; the files it names
// are not opened here (the server reads them and reports their problems).
struct TlsServerConfig {
  // Absolute, or resolved against the config file's directory by
  // LoadWebConfig (ParseWebConfig leaves them as written).
  std::string cert_file;
  std::string key_file;  // same
  ClientAuthType client_auth_type = ClientAuthType::kNoClientCert;
  std::string client_ca_file;  // same resolution; empty when none
  std::vector<std::string> client_allowed_sans;
  // Go/IANA names as written, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
  // (not checked here: the server maps them to OpenSSL's).
  std::vector<std::string> cipher_suites;
  // Go names as written, only CurveP256, CurveP384, CurveP521 and X25519.
  std::vector<std::string> curve_preferences;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  bool prefer_server_cipher_suites = true;
};

// What a web config file asks for.
struct WebConfig {
  // User name -> bcrypt hash. Empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
  // http_server_config.headers: extra headers sent with every response.
  std::vector<std::pair<std::string, std::string>> headers;
  // http_server_config.http2 as written (default true, as in exporter-toolkit).
  // Without effect: the server speaks HTTP/1.1 only.
  bool http2 = true;
  // Set when tls_server_config has cert_file and key_file; unset (plain
  // HTTP) when it is absent, empty or {}.
  std::optional<TlsServerConfig> tls;
};

// Parses the text of a web config file. Errors are InvalidArgument and
// start with "line N: ". Relative paths in tls are left as written.
absl::StatusOr<WebConfig> ParseWebConfig(absl::string_view text);

// Reads and parses the file at path (at most 64 KiB), and resolves the
// relative paths in tls against the file's directory; errors name the path
// and the line.
absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path);

// True for a bcrypt hash libcrypt verifies: $2a$, $2b$ or $2y$, a two-digit
// cost from 04 to 31, then 53 characters of salt and hash in bcrypt's base64.
bool IsBcryptHash(absl::string_view text);

// Applies config to server options: Basic authentication on every path but
// the open ones (when there are users), and the extra response headers.
void ApplyWebConfig(const WebConfig& config, HttpServer::Options* options);

}  // namespace geoip

#endif  // EXPORTER_WEB_WEB_CONFIG_H_
