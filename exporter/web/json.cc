#include "exporter/web/json.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "exporter/web/country_names.h"

namespace geoip {

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out += c;
        }
    }
  }
  out += "\"";
  return out;
}

HttpResponse JsonResponse(int status, std::string body) {
  return HttpResponse{status, kJsonContentType, std::move(body) + "\n", {}};
}

HttpResponse JsonError(int status, absl::string_view message) {
  return JsonResponse(status, absl::StrCat("{\"error\":", JsonString(message), "}"));
}

std::string CountryFields(CountryId country) {
  return absl::StrCat("\"id\":", JsonString(country.Label()),
                      ",\"name\":", JsonString(CountryName(country)));
}

}  // namespace geoip
