#include "exporter/stats/recorder.h"

#include <memory>

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

}  // namespace
}  // namespace geoip
