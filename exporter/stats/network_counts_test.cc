#include "exporter/stats/network_counts.h"

#include <gtest/gtest.h>

namespace geoip {
namespace {

const CountryId kGb = *CountryId::FromIsoCode("GB");
const CountryId kUs = *CountryId::FromIsoCode("US");

using Totals = std::vector<std::pair<NetworkId, uint64_t>>;

TEST(NetworkCounts, FirstComeAsesGetLabelsTheRestOtherWithExactTotals) {
  NetworkCounts counts(/*max_labels=*/2, NetworkCounts::kDefaultMaxKeys);
  counts.Add(NetworkId::Of(10), kGb, 80, 0, 3);
  counts.Add(NetworkId::Of(20), kUs, 80, 0, 1);
  counts.Add(NetworkId::Of(30), kUs, 80, 0, 5);  // past the cap
  counts.Add(NetworkId::Of(10), kGb, 443, 0, 2);
  counts.Add(NetworkId::Of(40), kGb, 80, 0, 1);  // past the cap
  counts.Add(NetworkId::Of(30), kUs, 80, 0, 1);  // still other
  // Special networks never take a place under the cap.
  counts.Add(NetworkId::Private(), CountryId::Private(), 80, 0, 4);
  counts.Add(NetworkId::Unknown(), kGb, 80, 0, 0);  // zero: nothing
  EXPECT_EQ(counts.LabelTotals(), (Totals{{NetworkId::Of(10), 5},
                                          {NetworkId::Of(20), 1},
                                          {NetworkId::Private(), 4},
                                          {NetworkId::Other(), 7}}));
  EXPECT_EQ(counts.unlabelled(), 2u);
}

TEST(NetworkCounts, TopNetworksFiltersAndSumsTheRest) {
  NetworkCounts counts(/*max_labels=*/1, NetworkCounts::kDefaultMaxKeys);
  counts.Add(NetworkId::Of(10), kGb, 80, 1, 3);
  counts.Add(NetworkId::Of(20), kGb, 80, 2, 7);
  counts.Add(NetworkId::Of(30), kUs, 80, 1, 2);
  counts.Add(NetworkId::Of(10), kGb, 443, 1, 4);
  // The detail is not capped by labels: AS 20 and 30 are there by number.
  NetworkCounts::Top all = counts.TopNetworks({}, 10);
  EXPECT_EQ(all.networks,
            (Totals{{NetworkId::Of(10), 7}, {NetworkId::Of(20), 7}, {NetworkId::Of(30), 2}}));
  EXPECT_EQ(all.other, 0u);

  NetworkCounts::Top gb = counts.TopNetworks({kGb, std::nullopt, std::nullopt}, 1);
  EXPECT_EQ(gb.networks, (Totals{{NetworkId::Of(10), 7}}));
  EXPECT_EQ(gb.other, 7u);

  NetworkCounts::Top port80 = counts.TopNetworks({std::nullopt, 80, std::nullopt}, 10);
  EXPECT_EQ(port80.networks,
            (Totals{{NetworkId::Of(20), 7}, {NetworkId::Of(10), 3}, {NetworkId::Of(30), 2}}));
  NetworkCounts::Top service1 = counts.TopNetworks({std::nullopt, std::nullopt, 1}, 10);
  EXPECT_EQ(service1.networks, (Totals{{NetworkId::Of(10), 7}, {NetworkId::Of(30), 2}}));
  EXPECT_TRUE(counts.TopNetworks({kUs, 443, std::nullopt}, 10).networks.empty());
}

TEST(NetworkCounts, DetailPastItsBoundKeepsCountsUnderOther) {
  NetworkCounts counts(/*max_labels=*/100, /*max_keys=*/2);
  counts.Add(NetworkId::Of(1), kGb, 80, 0, 1);
  counts.Add(NetworkId::Of(2), kGb, 80, 0, 1);
  counts.Add(NetworkId::Of(3), kGb, 80, 0, 5);  // no room: other
  counts.Add(NetworkId::Of(1), kGb, 80, 0, 1);  // has its key
  counts.Add(NetworkId::Of(4), kGb, 80, 0, 2);  // other, whose key exists now
  NetworkCounts::Top top = counts.TopNetworks({}, 10);
  EXPECT_EQ(top.networks, (Totals{{NetworkId::Of(1), 2}, {NetworkId::Of(2), 1}}));
  EXPECT_EQ(top.other, 7u);
  EXPECT_EQ(counts.past_max_keys(), 7u);
  // Labels are a separate bound: all four have theirs.
  EXPECT_EQ(counts.LabelTotals().size(), 4u);
}

TEST(NetworkCounts, MemoryStaysBoundedWithManyAses) {
  NetworkCounts counts(/*max_labels=*/500, /*max_keys=*/1000);
  for (uint32_t as = 1; as <= 100000; ++as) counts.Add(NetworkId::Of(as), kGb, 80, 0, 1);
  uint64_t total = 0;
  for (const auto& [network, count] : counts.LabelTotals()) total += count;
  EXPECT_EQ(total, 100000u);
  EXPECT_EQ(counts.LabelTotals().size(), 501u);
  EXPECT_EQ(counts.unlabelled(), 100000u - 500u);
  // The detail: 1000 keys plus "other"; the refused set is bounded by the
  // ASes that exist (here 100,000 at 9 bytes and change each).
  EXPECT_LT(counts.MemoryBytes(), 4u << 20);
}

}  // namespace
}  // namespace geoip
