#include "exporter/stats/connection_stats.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

// Traffic of connections to `port`: bytes, and `closed` connections whose
// lifetimes fall in `buckets` and sum to duration_ns.
DrainedTraffic Traffic(uint16_t port, uint64_t received, uint64_t sent, uint64_t closed = 0,
                       uint64_t duration_ns = 0,
                       std::array<uint64_t, kDurationBuckets> buckets = {}) {
  DrainedTraffic traffic;
  traffic.port = port;
  traffic.received_bytes = received;
  traffic.sent_bytes = sent;
  traffic.closed = closed;
  traffic.duration_ns = duration_ns;
  traffic.duration_buckets = buckets;
  return traffic;
}

// "US:80/web 3 rx=100 tx=2000 closed=2 1500000000ns".
std::vector<std::string> DescribeTraffic(const std::vector<ConnectionStats::Series>& all) {
  std::vector<std::string> out;
  for (const auto& s : all) {
    out.push_back(absl::StrCat(s.country.Label(), ":", s.port, "/", s.service, " ", s.connections,
                               " rx=", s.traffic.received_bytes, " tx=", s.traffic.sent_bytes,
                               " closed=", s.traffic.closed_connections, " ", s.traffic.lifetime_ns,
                               "ns"));
  }
  return out;
}

std::vector<std::string> DescribeTraffic(const std::vector<ConnectionStats::CountryTotal>& all) {
  std::vector<std::string> out;
  for (const auto& t : all) {
    out.push_back(absl::StrCat(t.country.Label(), " ", t.connections,
                               " rx=", t.traffic.received_bytes, " tx=", t.traffic.sent_bytes,
                               " closed=", t.traffic.closed_connections, " ", t.traffic.lifetime_ns,
                               "ns"));
  }
  return out;
}

TEST(ConnectionStats, TrafficAddsToItsSeriesAndCountry) {
  ConnectionStats stats;
  const IpAddress a = IpAddress::V4(0x08080808);
  stats.Record(Iso("US"), 80, &a, 3, kTime, 1);
  // Open connections, read in one drain, then the same closing in the next:
  // each drain's bytes are what is new since the last.
  stats.RecordTraffic(Iso("US"), 1, Traffic(80, 1000, 20000));
  stats.RecordTraffic(Iso("US"), 1,
                      Traffic(80, 24, 48, 2, 1'500'000'000, {0, 0, 0, 1, 1, 0, 0, 0}));
  stats.RecordTraffic(Iso("US"), 1, Traffic(443, 7, 0));  // another port of the same service
  stats.RecordTraffic(Iso("DE"), 1, Traffic(80, 0, 5));

  EXPECT_EQ(DescribeTraffic(stats.Snapshot()),
            (std::vector<std::string>{"DE:80/1 0 rx=0 tx=5 closed=0 0ns",
                                      "US:80/1 3 rx=1024 tx=20048 closed=2 1500000000ns",
                                      "US:443/1 0 rx=7 tx=0 closed=0 0ns"}));
  EXPECT_EQ(DescribeTraffic(stats.CountryTotals({})),
            (std::vector<std::string>{"DE 0 rx=0 tx=5 closed=0 0ns",
                                      "US 3 rx=1031 tx=20048 closed=2 1500000000ns"}));
  EXPECT_EQ(DescribeTraffic(stats.CountryTotals({80, std::nullopt})),
            (std::vector<std::string>{"DE 0 rx=0 tx=5 closed=0 0ns",
                                      "US 3 rx=1024 tx=20048 closed=2 1500000000ns"}));
  EXPECT_EQ(DescribeTraffic(stats.CountryTotals({443, 1})),
            (std::vector<std::string>{"US 0 rx=7 tx=0 closed=0 0ns"}));
  // Traffic is not a connection: the live feed does not show it.
  EXPECT_EQ(stats.Recent(10).size(), 1u);
}

TEST(ConnectionStats, TrafficWithoutAConnectionCreatesItsSeries) {
  // A connection accepted before the exporter started has no series: its
  // bytes and its close are counted all the same, and stay.
  ConnectionStats stats;
  stats.RecordTraffic(Iso("JP"), ServiceNames::kUnknown,
                      Traffic(22, 300, 400, 1, 7'200'000'000'000, {0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(DescribeTraffic(stats.Snapshot()),
            (std::vector<std::string>{"JP:22/0 0 rx=300 tx=400 closed=1 7200000000000ns"}));
  EXPECT_EQ(stats.Snapshot()[0].unique_addresses, 0u);
  EXPECT_EQ(stats.SeriesCount(), 1u);
  EXPECT_EQ(stats.Ports(), (std::vector<uint16_t>{22}));
  const IpAddress a = IpAddress::V4(0x85000001);
  stats.Record(Iso("JP"), 22, &a, 2, kTime);
  EXPECT_EQ(DescribeTraffic(stats.Snapshot()),
            (std::vector<std::string>{"JP:22/0 2 rx=300 tx=400 closed=1 7200000000000ns"}));
}

TEST(ConnectionStats, TrafficOfZerosChangesNothing) {
  ConnectionStats stats;
  stats.RecordTraffic(Iso("FR"), 0, Traffic(80, 0, 0));
  EXPECT_EQ(stats.Version(), 0u);
  EXPECT_EQ(stats.SeriesCount(), 0u);
  EXPECT_TRUE(stats.LifetimeHistograms().empty());
  stats.RecordTraffic(Iso("FR"), 0, Traffic(80, 1, 0));
  EXPECT_EQ(stats.Version(), 1u);
  EXPECT_TRUE(stats.LifetimeHistograms().empty());  // nothing closed
}

TEST(ConnectionStats, LifetimesArePerPortAndServiceAcrossCountries) {
  ConnectionStats stats;
  // 0.1 s, 1 s and 3 s on port 80 of service 1, from two countries; 20 ms
  // on port 80 of service 2; one of over an hour on port 22.
  stats.RecordTraffic(Iso("US"), 1, Traffic(80, 0, 0, 2, 1'100'000'000, {0, 1, 1, 0, 0, 0, 0, 0}));
  stats.RecordTraffic(Iso("GB"), 1, Traffic(80, 0, 0, 1, 3'000'000'000, {0, 0, 0, 1, 0, 0, 0, 0}));
  stats.RecordTraffic(Iso("GB"), 2, Traffic(80, 9, 9, 1, 20'000'000, {0, 1, 0, 0, 0, 0, 0, 0}));
  stats.RecordTraffic(CountryId::Overflow(), 0,
                      Traffic(22, 0, 0, 1, 4'000'000'000'000, {0, 0, 0, 0, 0, 0, 0, 1}));

  std::vector<std::string> histograms;
  for (const ConnectionStats::Lifetimes& h : stats.LifetimeHistograms()) {
    histograms.push_back(absl::StrCat(h.port, "/", h.service, " [", absl::StrJoin(h.buckets, " "),
                                      "] ", h.sum_ns, "ns"));
  }
  EXPECT_EQ(histograms, (std::vector<std::string>{"22/0 [0 0 0 0 0 0 0 1] 4000000000000ns",
                                                  "80/1 [0 1 1 1 0 0 0 0] 4100000000ns",
                                                  "80/2 [0 1 0 0 0 0 0 0] 20000000ns"}));
  // Per country, the count and the sum.
  EXPECT_EQ(DescribeTraffic(stats.CountryTotals({80, 1})),
            (std::vector<std::string>{"GB 0 rx=0 tx=0 closed=1 3000000000ns",
                                      "US 0 rx=0 tx=0 closed=2 1100000000ns"}));
}

TEST(ConnectionStats, FailuresAreCountedApartAndWakeWaiters) {
  ConnectionStats stats;
  stats.RecordFailure(Iso("CN"), 0, FailureReason::kRefused, 40);
  stats.RecordFailure(Iso("CN"), 22, FailureReason::kRefused, 2);
  stats.RecordFailure(CountryId::Overflow(), 0, FailureReason::kRefused, 5);
  stats.RecordFailure(Iso("CN"), 0, FailureReason::kRefused, 0);  // no change
  EXPECT_EQ(stats.Version(), 3u);
  std::vector<std::string> failures;
  for (const FailureCounts::Series& f : stats.Failures()) {
    failures.push_back(absl::StrCat(f.country.Label(), ":", FailurePortLabel(f.port), " ",
                                    FailureReasonLabel(f.reason), " ", f.count));
  }
  EXPECT_EQ(failures, (std::vector<std::string>{"CN:22 refused 2", "CN:other refused 40",
                                                "overflow:other refused 5"}));
  // Failed connections are not accepted ones: no series, no ports.
  EXPECT_EQ(stats.SeriesCount(), 0u);
  EXPECT_TRUE(stats.Ports().empty());
  EXPECT_TRUE(stats.WaitForChange(2, absl::ZeroDuration()));
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
