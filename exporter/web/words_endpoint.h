// POST /api/v1/words: the word cloud's way in (the original demo's POST
// /word). The demo's service 8083 posts each word it is sent; words go
// into ConnectionStats' WordCloud, which the live map shows.
#ifndef EXPORTER_WEB_WORDS_ENDPOINT_H_
#define EXPORTER_WEB_WORDS_ENDPOINT_H_

#include <utility>
#include <vector>

#include "exporter/net/address.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/web/http_server.h"

namespace geoip {

// Thread-safe. Shares (does not own) the statistics, which must outlive it
// and the server serving its route.
class WordsEndpoint {
 public:
  // Only clients in `allowed` may post; none (the default, --web.words-from
  // empty) turns the word cloud off: the route answers 404 saying how to
  // turn it on, so it is never open to the world by default.
  WordsEndpoint(std::vector<IpNetwork> allowed, ConnectionStats* stats)
      : allowed_(std::move(allowed)), stats_(stats) {}

  HttpRoute Route();

  // 204 when the body was counted as a word; 400 saying why it is no word;
  // 403 from a client outside the allowed blocks; 404 when off; 405 for
  // any method but POST.
  HttpResponse Post(const HttpRequest& request) const;

 private:
  const std::vector<IpNetwork> allowed_;
  ConnectionStats* const stats_;
};

}  // namespace geoip

#endif  // EXPORTER_WEB_WORDS_ENDPOINT_H_
