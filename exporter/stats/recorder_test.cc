#include "exporter/stats/recorder.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "exporter/geo/geoip_database.h"

namespace geoip {
namespace {

TEST(ConnectionRecorder, LocatesThenRecordsAndCountsOverflowApart) {
  absl::StatusOr<GeoIpDatabase> database =
      GeoIpDatabase::Open(GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb");
  ASSERT_TRUE(database.ok()) << database.status();
  Geolocator geolocator(std::make_shared<const GeoIpDatabase>(*std::move(database)));
  ConnectionStats stats;
  ConnectionRecorder recorder(&geolocator, &stats);
  const absl::Time now = absl::Now();

  const IpAddress spain = *ParseIpAddress("138.100.31.225");
  EXPECT_EQ(recorder.Record(spain, 8081, ServiceNames::kUnknown, 3, now).Label(), "ES");
  EXPECT_EQ(recorder.Record(*ParseIpAddress("10.1.2.3"), 8081, ServiceNames::kUnknown, 1, now),
            CountryId::Private());
  recorder.RecordOverflow(8082, ServiceNames::kUnknown, 5, now);

  EXPECT_EQ(recorder.overflowed(), 5u);
  EXPECT_EQ(geolocator.stats().lookups, 2u);  // overflow has no address to look up
  uint64_t spain_8081 = 0, overflow_8082 = 0, all = 0;
  for (const ConnectionStats::Series& series : stats.Snapshot()) {
    all += series.connections;
    if (series.country.Label() == "ES" && series.port == 8081) spain_8081 = series.connections;
    if (series.country == CountryId::Overflow() && series.port == 8082) {
      overflow_8082 = series.connections;
    }
  }
  EXPECT_EQ(spain_8081, 3u);
  EXPECT_EQ(overflow_8082, 5u);
  EXPECT_EQ(all, 9u);
}

TEST(ConnectionRecorder, LocatesTrafficAndFailuresLikeConnections) {
  absl::StatusOr<GeoIpDatabase> database =
      GeoIpDatabase::Open(GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb");
  ASSERT_TRUE(database.ok()) << database.status();
  Geolocator geolocator(std::make_shared<const GeoIpDatabase>(*std::move(database)));
  ConnectionStats stats;
  ConnectionRecorder recorder(&geolocator, &stats);

  DrainedTraffic traffic;
  traffic.address = *ParseIpAddress("138.100.31.225");
  traffic.port = 8081;
  traffic.received_bytes = 10;
  EXPECT_EQ(recorder.RecordTraffic(traffic, ServiceNames::kUnknown).Label(), "ES");
  DrainedFailure failure;
  failure.address = traffic.address;
  failure.count = 3;
  EXPECT_EQ(recorder.RecordFailure(failure).Label(), "ES");
  traffic.port = 0;
  traffic.sent_bytes = 5;
  recorder.RecordTrafficOverflow(traffic);
  recorder.RecordFailureOverflow(failure);

  EXPECT_EQ(geolocator.stats().lookups, 2u);  // overflow has no address to look up
  EXPECT_EQ(recorder.overflowed(), 0u);       // no accepted connection overflowed
  const std::vector<ConnectionStats::Series> series = stats.Snapshot();
  ASSERT_EQ(series.size(), 2u);
  EXPECT_EQ(series[0].country.Label(), "ES");
  EXPECT_EQ(series[0].traffic.received_bytes, 10u);
  EXPECT_EQ(series[1].country, CountryId::Overflow());
  EXPECT_EQ(series[1].port, 0);
  EXPECT_EQ(series[1].traffic.sent_bytes, 5u);
  const std::vector<FailureCounts::Series> failures = stats.Failures();
  ASSERT_EQ(failures.size(), 2u);
  EXPECT_EQ(failures[0].country.Label(), "ES");
  EXPECT_EQ(failures[0].count, 3u);
  EXPECT_EQ(failures[1].country, CountryId::Overflow());
  EXPECT_EQ(failures[1].count, 3u);
}

}  // namespace
}  // namespace geoip
