// Reads Prometheus text exposition (what /metrics serves) so tests can
// assert on exact series values.
#ifndef TESTS_SUPPORT_METRICS_TEXT_H_
#define TESTS_SUPPORT_METRICS_TEXT_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace geoip {

// Label name/value pairs in any order.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// The canonical series string: name{a="1",b="2"} with labels sorted by name
// and values escaped as in the exposition format; just name without labels.
std::string SeriesKey(absl::string_view name, MetricLabels labels);

// All samples of one scrape, keyed by SeriesKey.
class MetricsText {
 public:
  // Parses the text format, skipping comments (# HELP, # TYPE) and blank
  // lines. Fails on malformed lines and on a series that appears twice.
  static absl::StatusOr<MetricsText> Parse(absl::string_view text);

  // The value of exactly this series, e.g.
  // Value("ebpf_geoip_accepted_connections_total", {{"country", "GB"}, {"port", "8081"}}).
  std::optional<double> Value(absl::string_view name, const MetricLabels& labels = {}) const;

  // Sum over every series of name whose labels include all of match.
  double Sum(absl::string_view name, const MetricLabels& match = {}) const;

  // Series string -> value.
  const std::map<std::string, double>& series() const { return series_; }

  // One series of a Select: its labels and value.
  struct Series {
    std::map<std::string, std::string> labels;
    double value = 0;
  };

  // Every series of name whose labels include all of match, in the order
  // served: for reading a label's values, such as a histogram's "le".
  std::vector<Series> Select(absl::string_view name, const MetricLabels& match = {}) const;

 private:
  struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
  };

  std::map<std::string, double> series_;
  std::vector<Sample> samples_;
};

}  // namespace geoip

#endif  // TESTS_SUPPORT_METRICS_TEXT_H_
