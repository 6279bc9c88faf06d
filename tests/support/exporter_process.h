// The exporter binary as a child process on a free loopback port, for tests
// that drive it from outside.
#ifndef TESTS_SUPPORT_EXPORTER_PROCESS_H_
#define TESTS_SUPPORT_EXPORTER_PROCESS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace geoip {

// The exporter's start-up line, "listening on ADDRESS (port N), metrics at
// PATH" (docs/API.md, "Start-up line"): printed once the probe is attached
// and the HTTP server answers; N is the port it bound, also for ":0".
struct StartupLine {
  std::string listen_address;  // as given to --web.listen-address
  int port = 0;
  std::string metrics_path;
};

// The first start-up line among the complete lines of `log`, the exporter's
// stderr so far, or nullopt. A last line without its newline may still be
// growing ("(port 4" of "(port 40123)"), so it does not count. The one
// parser of that line in C++; tests/support/exporter_process.py is the one
// in Python.
std::optional<StartupLine> FindStartupLine(absl::string_view log);

// The one way C++ tests and benches start an exporter and learn its port.
class ExporterProcess {
 public:
  // Runs `argv` plus --web.listen-address=127.0.0.1:0 and waits for its
  // start-up line; an error carries its stderr if it exits or does not
  // start within 15 s.
  static absl::StatusOr<ExporterProcess> Start(std::vector<std::string> argv);

  ChildProcess& process() { return process_; }
  int port() const { return port_; }

  // One scrape of /metrics, parsed.
  absl::StatusOr<MetricsText> Scrape();

  // Scrapes until the connections counted on `ports` reach `total` (or 10 s
  // pass), then once more a few drain intervals later, so that an excess
  // shows too.
  absl::StatusOr<MetricsText> ScrapeWhenCounted(const std::vector<std::string>& ports,
                                                double total);

 private:
  ExporterProcess(ChildProcess process, int port) : process_(std::move(process)), port_(port) {}

  ChildProcess process_;
  int port_;
};

}  // namespace geoip

#endif  // TESTS_SUPPORT_EXPORTER_PROCESS_H_
