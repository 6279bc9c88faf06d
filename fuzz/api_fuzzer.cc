// The live map's JSON API on arbitrary request bodies and query strings,
// through their handlers: POST /api/v1/connections (SimulatedSource, the
// body parser), POST /api/v1/words (WordsEndpoint and the word cloud), and
// GET /api/v1/countries, /api/v1/failures, /api/v1/networks, /api/v1/peers
// and /api/v1/state (LiveApi, the query parser with its port, service,
// country and limit, and the failures' port "other"). The handlers must
// answer every input with a status from their documented set, and a 200
// with JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/geo/geolocator.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/stats/recorder.h"
#include "exporter/stats/service_names.h"
#include "exporter/web/api.h"
#include "exporter/web/simulated_source.h"
#include "exporter/web/words_endpoint.h"

namespace {

// The statistics grow with every distinct posted address and port, so the
// whole API is rebuilt every kRunsPerApi inputs to keep memory bounded.
constexpr int kRunsPerApi = 4096;

struct Api {
  Api() {
    absl::StatusOr<geoip::GeoIpDatabase> database =
        geoip::GeoIpDatabase::Open(GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb");
    if (!database.ok()) abort();
    geolocator = std::make_unique<geoip::Geolocator>(
        std::make_shared<const geoip::GeoIpDatabase>(*std::move(database)));
    recorder = std::make_unique<geoip::ConnectionRecorder>(geolocator.get(), &stats);
    source = std::make_unique<geoip::SimulatedSource>(geoip::SimulatedSource::Options{true},
                                                      recorder.get());
    geoip::LiveApi::Options options;
    options.words = true;
    options.network_name = [](geoip::NetworkId) { return std::string("Example \"AS\" <b>"); };
    api = std::make_unique<geoip::LiveApi>(options, &stats, &service_names, &stopping);
    words = std::make_unique<geoip::WordsEndpoint>(
        std::vector<geoip::IpNetwork>{*geoip::ParseIpNetwork("127.0.0.0/8")}, &stats);
    // Failures on a watched port and on "other", and traffic, so that the
    // filters have something to select.
    const geoip::CountryId cn = *geoip::CountryId::FromIsoCode("CN");
    stats.RecordFailure(cn, 8081, geoip::FailureReason::kRefused, 2);
    stats.RecordFailure(cn, 0, geoip::FailureReason::kRefused, 40);
    stats.RecordFailure(geoip::CountryId::Overflow(), 0, geoip::FailureReason::kRefused, 9);
    geoip::DrainedTraffic traffic;
    traffic.port = 8081;
    traffic.received_bytes = 1000;
    traffic.closed = 1;
    traffic.duration_buckets[2] = 1;
    stats.RecordTraffic(cn, geoip::ServiceNames::kUnknown, traffic);
    // Networks and peers, for /api/v1/networks and /api/v1/peers.
    const geoip::IpAddress peer = *geoip::ParseIpAddress("8.8.8.8");
    stats.Record(*geoip::CountryId::FromIsoCode("US"), 8081, &peer, 3, absl::Now(),
                 geoip::ServiceNames::kUnknown, geoip::NetworkId::Of(15169));
  }
  geoip::ConnectionStats stats;
  geoip::ServiceNames service_names{64};
  std::unique_ptr<geoip::Geolocator> geolocator;
  std::unique_ptr<geoip::ConnectionRecorder> recorder;
  std::unique_ptr<geoip::SimulatedSource> source;
  absl::Notification stopping;
  std::unique_ptr<geoip::LiveApi> api;
  std::unique_ptr<geoip::WordsEndpoint> words;
};

void CheckJson(const geoip::HttpResponse& response) {
  if (response.status != 200) return;
  if (response.body.empty() || (response.body[0] != '{' && response.body[0] != '[')) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<Api> api;
  static int runs = 0;
  if (!api || ++runs % kRunsPerApi == 0) api = std::make_unique<Api>();
  if (size == 0) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);

  geoip::HttpRequest request;
  request.remote_address = "127.0.0.1";
  request.from_loopback = true;
  if (data[0] % 4 == 2) {
    // The word cloud: 204, or 400 saying why.
    request.method = "POST";
    request.path = "/api/v1/words";
    request.body = rest;
    const geoip::HttpResponse response = api->words->Post(request);
    if (response.status != 204 && response.status != 400) abort();
  } else if (data[0] % 2 == 0) {
    request.method = "POST";
    request.path = "/api/v1/connections";
    request.body = rest;
    const geoip::HttpResponse response = api->source->Post(request);
    if (response.status != 200 && response.status != 400 && response.status != 413) abort();
    CheckJson(response);
  } else {
    // Odd first bytes: 1, 9, ... the countries, networks and peers (by
    // data[0] / 8 % 3), 5, 13, ... the failures, 3, 7, ... the whole
    // state, which also echoes the service asked for and has the words.
    request.method = "GET";
    request.query = rest;
    geoip::HttpResponse response;
    if (data[0] % 4 == 3) {
      request.path = "/api/v1/state";
      response = api->api->State(request);
    } else if (data[0] % 8 == 5) {
      request.path = "/api/v1/failures";
      response = api->api->Failures(request);
    } else if (data[0] / 8 % 3 == 1) {
      request.path = "/api/v1/networks";
      response = api->api->Networks(request);
    } else if (data[0] / 8 % 3 == 2) {
      request.path = "/api/v1/peers";
      response = api->api->Peers(request);
    } else {
      request.path = "/api/v1/countries";
      response = api->api->Countries(request);
    }
    if (response.status != 200 && response.status != 400) abort();
    CheckJson(response);
  }
  return 0;
}
