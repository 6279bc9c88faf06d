#include "exporter/stats/connection_stats.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace geoip {
namespace {

CountryId Iso(const char* code) { return CountryId::FromIsoCode(code).value(); }

const absl::Time kTime = absl::FromUnixSeconds(1700000000);

// "US:80 5/2": country:port connections/unique_addresses.
std::vector<std::string> Describe(const std::vector<ConnectionStats::Series>& all) {
  std::vector<std::string> out;
  for (const auto& s : all) {
    out.push_back(
        absl::StrCat(s.country.Label(), ":", s.port, " ", s.connections, "/", s.unique_addresses));
  }
  return out;
}

std::vector<std::string> Describe(const std::vector<ConnectionStats::CountryTotal>& all) {
  std::vector<std::string> out;
  for (const auto& t : all) {
    out.push_back(absl::StrCat(t.country.Label(), " ", t.connections, "/", t.unique_addresses));
  }
  return out;
}

TEST(ConnectionStats, SumsConnectionsPerSeriesSortedByLabelAndPort) {
  ConnectionStats stats;
  const IpAddress a = IpAddress::V4(0x08080808);
  stats.Record(Iso("us"), 443, &a, 1, kTime);
  stats.Record(Iso("US"), 80, &a, 3, kTime);
  stats.Record(Iso("US"), 80, &a, 2, kTime);
  stats.Record(CountryId::Overflow(), 80, nullptr, 5, kTime);
  stats.Record(Iso("DE"), 80, &a, 4, kTime);
  stats.Record(CountryId::Private(), 80, &a, 0, kTime);  // count 0: no series

  EXPECT_EQ(Describe(stats.Snapshot()),
            (std::vector<std::string>{"DE:80 4/1", "US:80 5/1", "US:443 1/1", "overflow:80 5/0"}));
  EXPECT_EQ(stats.SeriesCount(), 4u);
}

TEST(ConnectionStats, CountersOnlyIncrease) {
  ConnectionStats stats;
  const std::vector<CountryId> countries = {Iso("FR"), Iso("JP"), CountryId::Unknown()};
  std::vector<ConnectionStats::Series> previous;
  for (uint32_t i = 0; i < 300; ++i) {
    const IpAddress address = IpAddress::V4(0x05000000 + i);
    stats.Record(countries[i % 3], 1000 + i % 4, &address, 1 + i % 5, kTime);
    const std::vector<ConnectionStats::Series> now = stats.Snapshot();
    ASSERT_GE(now.size(), previous.size());
    for (const auto& old : previous) {
      auto it = std::find_if(now.begin(), now.end(), [&](const auto& s) {
        return s.country == old.country && s.port == old.port;
      });
      ASSERT_NE(it, now.end());
      EXPECT_GE(it->connections, old.connections);
      EXPECT_GE(it->unique_addresses, old.unique_addresses);
    }
    previous = now;
  }
  uint64_t total = 0;
  for (const auto& s : previous) total += s.connections;
  // sum over i < 300 of (1 + i % 5) = 300 + 60 * (0+1+2+3+4).
  EXPECT_EQ(total, 300u + 60u * 10u);
}

TEST(ConnectionStats, CountsUniquesPerSeriesAndDistinctAcrossPorts) {
  ConnectionStats stats;
  const IpAddress a = IpAddress::V4(0x01010101);
  const IpAddress b = IpAddress::V4(0x01010102);
  const IpAddress c = IpAddress::V6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  stats.Record(Iso("US"), 80, &a, 2, kTime);
  stats.Record(Iso("US"), 80, &b, 1, kTime);
  stats.Record(Iso("US"), 80, &a, 1, kTime);
  stats.Record(Iso("US"), 443, &a, 1, kTime);
  stats.Record(Iso("US"), 443, &c, 1, kTime);
  stats.Record(Iso("US"), 443, nullptr, 7, kTime);

  EXPECT_EQ(Describe(stats.Snapshot()), (std::vector<std::string>{"US:80 4/2", "US:443 9/2"}));
  // a is on both ports: 3 distinct addresses, not 2 + 2.
  EXPECT_EQ(Describe(stats.CountryTotals({})), (std::vector<std::string>{"US 13/3"}));
}

TEST(ConnectionStats, UniquesPerCountryStayDistinctPastExactLimit) {
  ConnectionStats::Options options;
  options.exact_unique_limit = 16;
  ConnectionStats stats(options);
  // The same 5000 addresses on two ports: the country total must estimate
  // 5000, not 10000.
  for (uint32_t i = 0; i < 5000; ++i) {
    const IpAddress address = IpAddress::V4(0x02000000 + i);
    stats.Record(Iso("BR"), 80, &address, 1, kTime);
    stats.Record(Iso("BR"), 443, &address, 1, kTime);
  }
  const auto totals = stats.CountryTotals({});
  ASSERT_EQ(totals.size(), 1u);
  EXPECT_EQ(totals[0].connections, 10000u);
  EXPECT_NEAR(static_cast<double>(totals[0].unique_addresses), 5000, 250);
}

TEST(ConnectionStats, CountryTotalsFiltersByPort) {
  ConnectionStats stats;
  const IpAddress a = IpAddress::V4(0x03030303);
  const IpAddress b = IpAddress::V4(0x03030304);
  stats.Record(Iso("US"), 80, &a, 2, kTime);
  stats.Record(Iso("US"), 443, &b, 3, kTime);
  stats.Record(Iso("DE"), 443, &a, 1, kTime);
  stats.Record(Iso("DE"), 443, &b, 1, kTime);
  stats.Record(Iso("CN"), 22, &b, 9, kTime);

  EXPECT_EQ(Describe(stats.CountryTotals({443, std::nullopt})),
            (std::vector<std::string>{"DE 2/2", "US 3/1"}));
  EXPECT_EQ(Describe(stats.CountryTotals({80, std::nullopt})),
            (std::vector<std::string>{"US 2/1"}));
  EXPECT_TRUE(stats.CountryTotals({8080, std::nullopt}).empty());
  EXPECT_EQ(Describe(stats.CountryTotals({})),
            (std::vector<std::string>{"CN 9/1", "DE 2/2", "US 5/2"}));
}

TEST(ConnectionStats, PortsAreDistinctAndAscending) {
  ConnectionStats stats;
  EXPECT_TRUE(stats.Ports().empty());
  for (uint16_t port : {9000, 22, 443, 22, 80}) {
    stats.Record(Iso("US"), port, nullptr, 1, kTime);
    stats.Record(Iso("GB"), port, nullptr, 1, kTime);
  }
  EXPECT_EQ(stats.Ports(), (std::vector<uint16_t>{22, 80, 443, 9000}));
}

TEST(ConnectionStats, RecentIsNewestFirstAndBounded) {
  ConnectionStats::Options options;
  options.recent_capacity = 3;
  ConnectionStats stats(options);
  EXPECT_TRUE(stats.Recent(10).empty());

  const IpAddress a = IpAddress::V4(0x04040404);
  for (uint16_t i = 0; i < 5; ++i) {
    stats.Record(Iso("IT"), 100 + i, i == 4 ? nullptr : &a, i + 1, kTime + absl::Seconds(i));
  }
  const auto recent = stats.Recent(10);
  ASSERT_EQ(recent.size(), 3u);
  EXPECT_EQ(recent[0].port, 104);
  EXPECT_EQ(recent[1].port, 103);
  EXPECT_EQ(recent[2].port, 102);
  EXPECT_EQ(recent[0].time, kTime + absl::Seconds(4));
  EXPECT_EQ(recent[0].count, 5u);
  EXPECT_FALSE(recent[0].has_address);
  EXPECT_TRUE(recent[1].has_address);
  EXPECT_EQ(recent[1].address, a);
  EXPECT_EQ(recent[1].country, Iso("IT"));

  const auto two = stats.Recent(2);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].port, 104);
  EXPECT_EQ(two[1].port, 103);
  EXPECT_TRUE(stats.Recent(0).empty());
}

TEST(ConnectionStats, RecentCapacityZeroKeepsNothing) {
  ConnectionStats::Options options;
  options.recent_capacity = 0;
  ConnectionStats stats(options);
  stats.Record(Iso("IT"), 1, nullptr, 1, kTime);
  EXPECT_TRUE(stats.Recent(10).empty());
  EXPECT_EQ(stats.SeriesCount(), 1u);
}

TEST(ConnectionStats, VersionIncreasesOnEveryRecord) {
  ConnectionStats stats;
  EXPECT_EQ(stats.Version(), 0u);
  stats.Record(Iso("NL"), 1, nullptr, 1, kTime);
  stats.Record(Iso("NL"), 1, nullptr, 1, kTime);
  EXPECT_EQ(stats.Version(), 2u);
  stats.Record(Iso("NL"), 1, nullptr, 0, kTime);  // no change, no new version
  EXPECT_EQ(stats.Version(), 2u);
}

TEST(ConnectionStats, WaitForChangeTimesOutWithoutRecord) {
  ConnectionStats stats;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(stats.WaitForChange(stats.Version(), absl::Milliseconds(100)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
}

TEST(ConnectionStats, WaitForChangeReturnsAtOnceIfAlreadyChanged) {
  ConnectionStats stats;
  const uint64_t seen = stats.Version();
  stats.Record(Iso("NL"), 1, nullptr, 1, kTime);
  const absl::Time start = absl::Now();
  EXPECT_TRUE(stats.WaitForChange(seen, absl::Seconds(10)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(ConnectionStats, WaitForChangeWakesOnRecord) {
  ConnectionStats stats;
  const uint64_t seen = stats.Version();
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(100));
    stats.Record(Iso("NL"), 1, nullptr, 1, kTime);
  });
  const absl::Time start = absl::Now();
  const bool changed = stats.WaitForChange(seen, absl::Seconds(10));
  const absl::Duration waited = absl::Now() - start;
  writer.join();
  EXPECT_TRUE(changed);
  EXPECT_GE(waited, absl::Milliseconds(90));
  EXPECT_LT(waited, absl::Seconds(5));
}

TEST(ConnectionStats, ConcurrentRecordAndSnapshotAreConsistent) {
  ConnectionStats stats;
  const std::vector<CountryId> countries = {Iso("US"), Iso("DE"), Iso("JP"), Iso("BR")};
  constexpr uint32_t kRecords = 20000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    // Round robin over 8 series, one connection each: any atomic snapshot
    // has series counts that differ by at most one.
    for (uint32_t i = 0; i < kRecords; ++i) {
      const IpAddress address = IpAddress::V4(0x06000000 + i);
      stats.Record(countries[i % 4], 80 + (i / 4) % 2, &address, 1, kTime);
    }
    done = true;
  });
  auto reader = [&] {
    uint64_t last_total = 0;
    for (int iteration = 0; iteration < 100000 && !done; ++iteration) {
      const auto snapshot = stats.Snapshot();
      uint64_t total = 0, low = UINT64_MAX, high = 0;
      for (const auto& s : snapshot) {
        total += s.connections;
        low = std::min(low, s.connections);
        high = std::max(high, s.connections);
      }
      EXPECT_GE(total, last_total);
      if (snapshot.size() == 8) {
        EXPECT_LE(high - low, 1u);
      }
      last_total = total;
      stats.Recent(16);
      stats.CountryTotals({});
    }
  };
  std::thread reader1(reader), reader2(reader);
  writer.join();
  reader1.join();
  reader2.join();

  const auto snapshot = stats.Snapshot();
  ASSERT_EQ(snapshot.size(), 8u);
  for (const auto& s : snapshot) EXPECT_EQ(s.connections, kRecords / 8);
  uint64_t total = 0;
  for (const auto& t : stats.CountryTotals({})) {
    EXPECT_EQ(t.connections, kRecords / 4);
    total += t.connections;
  }
  EXPECT_EQ(total, kRecords);
  EXPECT_EQ(stats.Version(), kRecords);
}

TEST(ConnectionStats, MemoryGrowsWithSeriesButNotWithAddresses) {
  ConnectionStats stats;
  const size_t empty = stats.MemoryBytes();
  const IpAddress a = IpAddress::V4(0x07070707);
  stats.Record(Iso("US"), 80, &a, 1, kTime);
  const size_t one_series = stats.MemoryBytes();
  EXPECT_GT(one_series, empty);

  // 200k distinct addresses in one series: both counters become 4 KiB
  // sketches, so memory stays small.
  for (uint32_t i = 0; i < 200'000; ++i) {
    const IpAddress address = IpAddress::V4(0x08000000 + i);
    stats.Record(Iso("US"), 80, &address, 1, kTime);
  }
  EXPECT_EQ(stats.SeriesCount(), 1u);
  EXPECT_LE(stats.MemoryBytes(), one_series + 2 * UniqueCounter::kRegisters + 1024);
}

}  // namespace
}  // namespace geoip
