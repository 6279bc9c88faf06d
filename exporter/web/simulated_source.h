// --connections.source=simulated: connections posted by loopback clients to
// POST /api/v1/connections instead of counted by the probe, for demos and
// CI without root. They go through the same recorder as the probe's.
// Body formats: docs/API.md.
#ifndef EXPORTER_WEB_SIMULATED_SOURCE_H_
#define EXPORTER_WEB_SIMULATED_SOURCE_H_

#include <cstddef>
#include <cstdint>

#include "exporter/stats/recorder.h"
#include "exporter/web/http_server.h"

namespace geoip {

// Thread-safe. Shares (does not own) the recorder, which must outlive it
// and the server serving its route.
class SimulatedSource {
 public:
  struct Options {
    // False: the route exists and says that it needs --connections.source=simulated.
    bool enabled = false;
    // Port recorded for a posted bare address (the original demo's body).
    uint16_t default_port = 8081;
    // Larger bodies get 413; a valid one is far shorter.
    size_t max_body_bytes = 1024;
  };

  SimulatedSource(Options options, ConnectionRecorder* recorder)
      : options_(options), recorder_(recorder) {}

  // POST /api/v1/connections.
  HttpRoute Route();

  // Records one connection: {"address":"8.8.8.8","port":8081} or a bare
  // address. Answers with its country and port, or an error saying what to
  // send.
  HttpResponse Post(const HttpRequest& request);

 private:
  const Options options_;
  ConnectionRecorder* const recorder_;
};

}  // namespace geoip

#endif  // EXPORTER_WEB_SIMULATED_SOURCE_H_
