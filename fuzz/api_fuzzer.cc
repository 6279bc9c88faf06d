// The live map's JSON API on arbitrary request bodies and query strings,
// through their handlers: POST /api/v1/connections (SimulatedSource, the
// body parser) and GET /api/v1/countries and /api/v1/state (LiveApi, the
// query parser with its port and service filters). The handlers must answer
// every input with a status from their documented set, and a 200 with JSON.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/geo/geolocator.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/stats/recorder.h"
#include "exporter/stats/service_names.h"
#include "exporter/web/api.h"
#include "exporter/web/simulated_source.h"

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
    api = std::make_unique<geoip::LiveApi>(geoip::LiveApi::Options{}, &stats, &service_names,
                                           &stopping);
  }
  geoip::ConnectionStats stats;
  geoip::ServiceNames service_names{64};
  std::unique_ptr<geoip::Geolocator> geolocator;
  std::unique_ptr<geoip::ConnectionRecorder> recorder;
  std::unique_ptr<geoip::SimulatedSource> source;
  absl::Notification stopping;
  std::unique_ptr<geoip::LiveApi> api;
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
  if (data[0] % 2 == 0) {
    request.method = "POST";
    request.path = "/api/v1/connections";
    request.body = rest;
    const geoip::HttpResponse response = api->source->Post(request);
    if (response.status != 200 && response.status != 400 && response.status != 413) abort();
    CheckJson(response);
  } else {
    // Odd first bytes: 1, 5, ... the countries, 3, 7, ... the whole state,
    // which also echoes the service asked for.
    const bool state = data[0] % 4 == 3;
    request.method = "GET";
    request.path = state ? "/api/v1/state" : "/api/v1/countries";
    request.query = rest;
    const geoip::HttpResponse response =
        state ? api->api->State(request) : api->api->Countries(request);
    if (response.status != 200 && response.status != 400) abort();
    CheckJson(response);
  }
  return 0;
}
