#include "exporter/stats/failure_counts.h"

#include "absl/strings/str_cat.h"
#include "exporter/stats/label_order.h"

namespace geoip {

void FailureCounts::Add(CountryId country, uint16_t port, FailureReason reason, uint64_t count) {
  if (count == 0) return;
  counts_[Key(country, port, reason)] += count;
}

std::vector<FailureCounts::Series> FailureCounts::Snapshot() const {
  std::vector<Series> result;
  result.reserve(counts_.size());
  for (const auto& [key, count] : counts_) {
    result.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), count});
  }
  // Port 0 ("other") after the numbered ports.
  SortByLabel(result, [](const Series& s) {
    return std::make_pair(s.port == 0 ? 65536u : uint32_t{s.port}, s.reason);
  });
  return result;
}

size_t FailureCounts::MemoryBytes() const {
  return sizeof(*this) + counts_.capacity() * (sizeof(Key) + sizeof(uint64_t) + 1);
}

std::string FailurePortLabel(uint16_t port) {
  return port == 0 ? std::string("other") : absl::StrCat(port);
}

absl::string_view FailureReasonLabel(FailureReason reason) {
  switch (reason) {
    case FailureReason::kRefused:
      return "refused";
    case FailureReason::kIncomplete:
      return "incomplete";
  }
  return "unknown";
}

}  // namespace geoip
