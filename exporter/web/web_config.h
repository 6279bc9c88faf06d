// The --web.config.file of Prometheus' exporter-toolkit, in the subset this
// exporter supports: basic_auth_users (bcrypt), http_server_config.headers,
// and an empty tls_server_config. A small strict parser instead of a YAML
// library: anything outside the subset is an error naming its line, never
// silently ignored.
#ifndef EXPORTER_WEB_WEB_CONFIG_H_
#define EXPORTER_WEB_WEB_CONFIG_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "exporter/web/http_server.h"

namespace geoip {

// What a web config file asks for.
struct WebConfig {
  // User name -> bcrypt hash. Empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
  // http_server_config.headers: extra headers sent with every response.
  std::vector<std::pair<std::string, std::string>> headers;
};

// Parses the text of a web config file. Errors are InvalidArgument and
// start with "line N: ".
absl::StatusOr<WebConfig> ParseWebConfig(absl::string_view text);

// Reads and parses the file at path; errors name the path and the line.
absl::StatusOr<WebConfig> LoadWebConfig(const std::string& path);

// True for a bcrypt hash libcrypt verifies: $2a$, $2b$ or $2y$, a two-digit
// cost from 04 to 31, then 53 characters of salt and hash in bcrypt's base64.
bool IsBcryptHash(absl::string_view text);

// Applies config to server options: Basic authentication on every path but
// the open ones (when there are users), and the extra response headers.
void ApplyWebConfig(const WebConfig& config, HttpServer::Options* options);

}  // namespace geoip

#endif  // EXPORTER_WEB_WEB_CONFIG_H_
