#include "exporter/web/simulated_source.h"

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "exporter/net/address.h"
#include "exporter/web/json.h"

namespace geoip {
namespace {

constexpr char kPath[] = "/api/v1/connections";

// A connection posted in simulated mode.
struct PostedConnection {
  IpAddress address;
  uint16_t port;
};

// Reads the one JSON shape accepted: an object with a string "address" and
// an optional integer "port", nothing else.
class BodyReader {
 public:
  explicit BodyReader(absl::string_view text) : rest_(text) {}

  absl::StatusOr<PostedConnection> ReadObject(uint16_t default_port) {
    std::optional<std::string> address;
    std::optional<int64_t> port;
    if (!Consume('{')) return Error("expected a JSON object");
    if (!Consume('}')) {
      do {
        absl::StatusOr<std::string> key = ReadString();
        if (!key.ok()) return key.status();
        if (!Consume(':')) return Error(absl::StrCat("expected ':' after \"", *key, "\""));
        if (*key == "address" && !address) {
          absl::StatusOr<std::string> value = ReadString();
          if (!value.ok()) return Error("\"address\" must be a string such as \"8.8.8.8\"");
          address = *value;
        } else if (*key == "port" && !port) {
          absl::StatusOr<int64_t> value = ReadInteger();
          if (!value.ok()) return Error("\"port\" must be a number such as 8081");
          port = *value;
        } else if (*key == "address" || *key == "port") {
          return Error(absl::StrCat("\"", *key, "\" appears twice"));
        } else {
          return Error(absl::StrCat("unknown field \"", key->substr(0, 32),
                                    "\": the fields are \"address\" and \"port\""));
        }
      } while (Consume(','));
      if (!Consume('}')) return Error("expected ',' or '}'");
    }
    SkipSpace();
    if (!rest_.empty()) return Error("unexpected text after the JSON object");
    if (!address) return Error("missing \"address\"");
    if (port && (*port < 1 || *port > 65535)) {
      return Error(absl::StrCat("\"port\" must be from 1 to 65535, got ", *port));
    }
    absl::StatusOr<IpAddress> parsed = ParseIpAddress(*address);
    if (!parsed.ok()) {
      return Error(absl::StrCat("\"", address->substr(0, 64), "\" is not an IPv4 or IPv6 address"));
    }
    return PostedConnection{*parsed, port ? static_cast<uint16_t>(*port) : default_port};
  }

 private:
  static absl::Status Error(absl::string_view message) {
    return absl::InvalidArgumentError(message);
  }

  void SkipSpace() {
    while (!rest_.empty() && absl::ascii_isspace(rest_.front())) rest_.remove_prefix(1);
  }

  bool Consume(char c) {
    SkipSpace();
    if (rest_.empty() || rest_.front() != c) return false;
    rest_.remove_prefix(1);
    return true;
  }

  // A string without escapes: addresses and the two field names need none.
  absl::StatusOr<std::string> ReadString() {
    if (!Consume('"')) return Error("expected a string");
    const size_t end = rest_.find_first_of("\"\\");
    if (end == absl::string_view::npos || rest_[end] != '"') {
      return Error("unterminated string, or one with a backslash");
    }
    std::string value(rest_.substr(0, end));
    rest_.remove_prefix(end + 1);
    return value;
  }

  absl::StatusOr<int64_t> ReadInteger() {
    SkipSpace();
    size_t digits = 0;
    while (digits < rest_.size() && absl::ascii_isdigit(rest_[digits])) ++digits;
    int64_t value = 0;
    if (digits == 0 || !absl::SimpleAtoi(rest_.substr(0, digits), &value)) {
      return Error("expected a number");
    }
    rest_.remove_prefix(digits);
    return value;
  }

  absl::string_view rest_;
};

// The original demo posted a bare address ("8.8.8.8"); JSON is the rest.
absl::StatusOr<PostedConnection> ParsePostBody(absl::string_view body, uint16_t default_port) {
  body = absl::StripAsciiWhitespace(body);
  if (body.empty()) {
    return absl::InvalidArgumentError(
        "empty body: send {\"address\":\"8.8.8.8\",\"port\":8081} or a bare address");
  }
  if (body.front() == '{') return BodyReader(body).ReadObject(default_port);
  absl::StatusOr<IpAddress> address = ParseIpAddress(std::string_view(body.data(), body.size()));
  if (!address.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", body.substr(0, 64),
        "\" is not an IPv4 or IPv6 address; send {\"address\":\"8.8.8.8\",\"port\":8081} "
        "or a bare address"));
  }
  return PostedConnection{*address, default_port};
}

}  // namespace

HttpRoute SimulatedSource::Route() {
  return {kPath, [this](const HttpRequest& r) { return Post(r); }, nullptr};
}

HttpResponse SimulatedSource::Post(const HttpRequest& request) {
  if (!options_.enabled) {
    return JsonError(404,
                     "POST /api/v1/connections exists only with --connections.source=simulated");
  }
  if (request.method != "POST") {
    HttpResponse response = JsonError(405, "use POST");
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  if (!request.from_loopback) {
    return JsonError(403, "POST /api/v1/connections is accepted only from loopback clients");
  }
  if (request.body.size() > options_.max_body_bytes) {
    return JsonError(413, absl::StrCat("body over ", options_.max_body_bytes, " bytes"));
  }
  absl::StatusOr<PostedConnection> posted = ParsePostBody(request.body, options_.default_port);
  if (!posted.ok()) return JsonError(400, posted.status().message());
  const CountryId country =
      recorder_->Record(posted->address, posted->port, ServiceNames::kUnknown, 1, absl::Now());
  return JsonResponse(200,
                      absl::StrCat("{", CountryFields(country), ",\"port\":", posted->port, "}"));
}

}  // namespace geoip
