#include "exporter/stats/failure_counts.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

CountryId Iso(const char* code) { return CountryId::FromIsoCode(code).value(); }

// "US:other refused 7": country:port reason count.
std::vector<std::string> Describe(const FailureCounts& counts) {
  std::vector<std::string> out;
  for (const FailureCounts::Series& s : counts.Snapshot()) {
    out.push_back(absl::StrCat(s.country.Label(), ":", FailurePortLabel(s.port), " ",
                               FailureReasonLabel(s.reason), " ", s.count));
  }
  return out;
}

TEST(FailureCounts, SumsPerCountryPortAndReasonSortedByLabelWithOtherLast) {
  FailureCounts counts;
  counts.Add(Iso("US"), 0, FailureReason::kRefused, 4);
  counts.Add(Iso("US"), 8081, FailureReason::kRefused, 1);
  counts.Add(CountryId::Overflow(), 0, FailureReason::kRefused, 9);
  counts.Add(Iso("US"), 0, FailureReason::kRefused, 3);
  counts.Add(Iso("CN"), 22, FailureReason::kRefused, 2);
  counts.Add(CountryId::Private(), 443, FailureReason::kRefused, 1);
  counts.Add(Iso("US"), 22, FailureReason::kIncomplete, 6);
  counts.Add(Iso("US"), 22, FailureReason::kRefused, 5);
  counts.Add(Iso("DE"), 22, FailureReason::kRefused, 0);  // count 0: no series

  EXPECT_EQ(Describe(counts),
            (std::vector<std::string>{"CN:22 refused 2", "US:22 refused 5", "US:22 incomplete 6",
                                      "US:8081 refused 1", "US:other refused 7",
                                      "overflow:other refused 9", "private:443 refused 1"}));
  EXPECT_EQ(counts.size(), 7u);
}

TEST(FailureCounts, AScanOfEveryPortIsOneSeriesPerCountry) {
  // The kernel reports a port it does not watch as 0: 65,535 ports scanned
  // from two countries are two series, and the totals stay exact.
  FailureCounts counts;
  for (uint32_t port = 1; port <= 65535; ++port) {
    counts.Add(port % 2 == 0 ? Iso("CN") : Iso("RU"), 0, FailureReason::kRefused, 1);
  }
  EXPECT_EQ(Describe(counts),
            (std::vector<std::string>{"CN:other refused 32767", "RU:other refused 32768"}));
}

TEST(FailureCounts, LabelsOfPortsAndReasons) {
  EXPECT_EQ(FailurePortLabel(0), "other");
  EXPECT_EQ(FailurePortLabel(1), "1");
  EXPECT_EQ(FailurePortLabel(65535), "65535");
  EXPECT_EQ(FailureReasonLabel(FailureReason::kRefused), "refused");
  EXPECT_EQ(FailureReasonLabel(FailureReason::kIncomplete), "incomplete");
  EXPECT_EQ(FailureReasonLabel(static_cast<FailureReason>(200)), "unknown");
}

TEST(FailureCounts, MemoryGrowsWithSeries) {
  FailureCounts counts;
  const size_t empty = counts.MemoryBytes();
  for (uint16_t port = 1; port <= 100; ++port) {
    counts.Add(Iso("FR"), port, FailureReason::kRefused, 1);
  }
  EXPECT_GT(counts.MemoryBytes(), empty + 100 * sizeof(uint64_t));
}

}  // namespace
}  // namespace geoip
