#include "exporter/web/words_endpoint.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "exporter/web/json.h"

namespace geoip {

HttpRoute WordsEndpoint::Route() {
  return {"/api/v1/words", [this](const HttpRequest& r) { return Post(r); }, nullptr};
}

HttpResponse WordsEndpoint::Post(const HttpRequest& request) const {
  if (allowed_.empty()) {
    return JsonError(404,
                     "the word cloud is off: start the exporter with --web.words-from=BLOCKS, "
                     "e.g. --web.words-from=127.0.0.0/8,::1/128");
  }
  if (request.method != "POST") {
    HttpResponse response = JsonError(405, "use POST, with the word as the body");
    response.headers.emplace_back("Allow", "POST");
    return response;
  }
  absl::StatusOr<IpAddress> client = ParseIpAddress(request.remote_address);
  const bool allowed =
      client.ok() && std::any_of(allowed_.begin(), allowed_.end(),
                                 [&](const IpNetwork& block) { return block.Contains(*client); });
  if (!allowed) {
    return JsonError(403, absl::StrCat(request.remote_address.substr(0, 64),
                                       " may not post words: it is not in --web.words-from"));
  }
  absl::Status added = stats_->AddWord(request.body);
  if (!added.ok()) return JsonError(400, added.message());
  return HttpResponse{204, "text/plain; charset=utf-8", "", {}};
}

}  // namespace geoip
