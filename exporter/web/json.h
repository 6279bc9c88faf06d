// JSON as the live map's API writes it: string literals, responses and
// errors, and a country's "id" and "name" fields.
#ifndef EXPORTER_WEB_JSON_H_
#define EXPORTER_WEB_JSON_H_

#include <string>

#include "absl/strings/string_view.h"
#include "exporter/geo/country.h"
#include "exporter/web/http_server.h"

namespace geoip {

inline constexpr char kJsonContentType[] = "application/json; charset=utf-8";

// A JSON string literal: quotes, backslashes and control characters
// escaped; other bytes (UTF-8 names) pass through.
std::string JsonString(absl::string_view text);

// A response with `body` and a final newline.
HttpResponse JsonResponse(int status, std::string body);

// {"error":"message"} with `status`.
HttpResponse JsonError(int status, absl::string_view message);

// "id":"ES","name":"Spain" (no braces), for objects that describe a country.
std::string CountryFields(CountryId country);

}  // namespace geoip

#endif  // EXPORTER_WEB_JSON_H_
