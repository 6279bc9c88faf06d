// The exporter binary as a child process on a free loopback port, for tests
// that drive it from outside.
#ifndef TESTS_SUPPORT_EXPORTER_PROCESS_H_
#define TESTS_SUPPORT_EXPORTER_PROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/metrics_text.h"
#include "tests/support/process.h"

namespace geoip {

class ExporterProcess {
 public:
  // Runs `argv` plus --web.listen-address=127.0.0.1:0 and waits until the
  // exporter logs the port it listens on; an error carries its stderr if it
  // exits or does not start within 15 s.
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
  ExporterProcess(ChildProcess process, int port)
      : process_(std::move(process)), port_(port) {}

  ChildProcess process_;
  int port_;
};

}  // namespace geoip

#endif  // TESTS_SUPPORT_EXPORTER_PROCESS_H_
