#include "exporter/geo/geolocator.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/test_mmdb.h"

namespace geoip {
namespace {

IpAddress Ip(const std::string& text) {
  absl::StatusOr<IpAddress> address = ParseIpAddress(text);
  EXPECT_TRUE(address.ok()) << address.status();
  return address.value_or(IpAddress());
}

std::string Label(Geolocator& locator, const std::string& address) {
  return locator.Locate(Ip(address)).country.Label();
}

void ExpectStats(const Geolocator& locator, uint64_t lookups, uint64_t hits, uint64_t misses,
                 uint64_t failures) {
  const Geolocator::Stats stats = locator.stats();
  EXPECT_EQ(stats.lookups, lookups);
  EXPECT_EQ(stats.cache_hits, hits);
  EXPECT_EQ(stats.cache_misses, misses);
  EXPECT_EQ(stats.failures, failures);
}

class GeolocatorTest : public TestMmdbSuite {
 protected:
  static std::shared_ptr<const GeoIpDatabase> Open(const std::string& path) {
    absl::StatusOr<GeoIpDatabase> db = GeoIpDatabase::Open(path);
    EXPECT_TRUE(db.ok()) << db.status();
    if (!db.ok()) return nullptr;
    return std::make_shared<const GeoIpDatabase>(std::move(*db));
  }
};

TEST_F(GeolocatorTest, LocatesCountriesFromDatabase) {
  Geolocator locator(Open(directory_->maxmind()));
  EXPECT_EQ(Label(locator, "81.2.69.142"), "GB");
  EXPECT_EQ(Label(locator, "89.160.20.5"), "SE");
  EXPECT_EQ(Label(locator, "67.43.156.1"), "BT");
  EXPECT_EQ(Label(locator, "202.196.224.1"), "unknown");
  EXPECT_EQ(Label(locator, "1.2.3.4"), "unknown");
  EXPECT_EQ(Label(locator, "2001:218::1"), "JP");
  EXPECT_EQ(Label(locator, "2a02:d300::1"), "UA");
  EXPECT_EQ(Label(locator, "::ffff:81.2.69.142"), "GB");
  ExpectStats(locator, 8, 1, 7, 0);  // the mapped address repeats 81.2.69.142
}

TEST_F(GeolocatorTest, LocatesNetworksWithAnAsnDatabase) {
  Geolocator locator(Open(directory_->maxmind()));
  // Without an ASN database, routable peers have no network.
  EXPECT_EQ(locator.Locate(Ip("81.2.69.142")).network, NetworkId::Unknown());
  absl::StatusOr<AsnDatabase> asn = AsnDatabase::Open(directory_->asn());
  ASSERT_TRUE(asn.ok()) << asn.status();
  locator.SetAsnDatabase(std::make_shared<const AsnDatabase>(std::move(*asn)));
  // The cache was emptied: the answer now has the AS.
  const Location gb = locator.Locate(Ip("81.2.69.142"));
  EXPECT_EQ(gb.country.Label(), "GB");
  EXPECT_EQ(gb.network, NetworkId::Of(20712));
  EXPECT_EQ(locator.NetworkName(NetworkId::Of(20712)), "Andrews & Arnold Ltd");
  // A cached answer keeps its network.
  EXPECT_EQ(locator.Locate(Ip("81.2.69.142")).network, NetworkId::Of(20712));
  EXPECT_EQ(locator.Locate(Ip("89.160.20.5")).network, NetworkId::Of(29518));
  EXPECT_EQ(locator.NetworkName(NetworkId::Of(29518)), "");
  EXPECT_EQ(locator.Locate(Ip("10.1.2.3")).network, NetworkId::Private());
  EXPECT_EQ(locator.Locate(Ip("202.196.224.1")).network, NetworkId::Unknown());
  // Malformed records are a counted failure: one per lookup, though here
  // both the country and the AS record are malformed.
  const Location malformed = locator.Locate(Ip("5.5.5.5"));
  EXPECT_EQ(malformed.network, NetworkId::Unknown());
  EXPECT_EQ(malformed.country, CountryId::Unknown());
  EXPECT_EQ(locator.stats().failures, 1u);
  EXPECT_EQ(locator.NetworkName(NetworkId::Unknown()), "");
}

TEST_F(GeolocatorTest, NonRoutableIsPrivateWithoutTouchingTheDatabase) {
  Geolocator locator(Open(directory_->maxmind()));
  // The test database says FR for 10.0.0.0/8; classification comes first.
  for (const char* address :
       {"10.1.2.3", "127.0.0.1", "192.168.1.1", "100.64.0.1", "::1", "fe80::1", "fd00::1"}) {
    EXPECT_EQ(Label(locator, address), "private") << address;
  }
  ExpectStats(locator, 7, 0, 0, 0);
  EXPECT_EQ(locator.cache_size(), 0u);
}

TEST_F(GeolocatorTest, RepeatedAddressesHitTheCache) {
  Geolocator locator(Open(directory_->flat()));
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");
  ExpectStats(locator, 1, 0, 1, 0);
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");
  ExpectStats(locator, 2, 1, 1, 0);
  // "No country" is an answer worth caching too.
  EXPECT_EQ(Label(locator, "9.9.9.9"), "unknown");
  EXPECT_EQ(Label(locator, "9.9.9.9"), "unknown");
  ExpectStats(locator, 4, 2, 2, 0);
  EXPECT_EQ(locator.cache_size(), 2u);
}

TEST_F(GeolocatorTest, FailedLookupsAreUnknownCountedAndNotCached) {
  Geolocator locator(Open(directory_->flat()));
  EXPECT_EQ(Label(locator, "7.7.7.7"), "unknown");  // country_code "USA"
  EXPECT_EQ(Label(locator, "7.7.7.7"), "unknown");
  EXPECT_EQ(Label(locator, "5.5.5.5"), "unknown");  // numeric country_code
  ExpectStats(locator, 3, 0, 3, 3);
  EXPECT_EQ(locator.cache_size(), 0u);
}

TEST_F(GeolocatorTest, FullCacheIsEmptiedBeforeInserting) {
  Geolocator locator(Open(directory_->flat()), /*cache_capacity=*/2);
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");
  EXPECT_EQ(Label(locator, "138.100.31.225"), "ES");
  EXPECT_EQ(locator.cache_size(), 2u);
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");  // hit
  ExpectStats(locator, 3, 1, 2, 0);

  EXPECT_EQ(Label(locator, "81.2.69.142"), "GB");  // full: cleared, then added
  EXPECT_EQ(locator.cache_size(), 1u);
  EXPECT_EQ(Label(locator, "81.2.69.142"), "GB");  // hit
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");      // miss: was cleared
  ExpectStats(locator, 6, 2, 4, 0);
  EXPECT_EQ(locator.cache_size(), 2u);
}

TEST_F(GeolocatorTest, ZeroCapacityDisablesTheCache) {
  Geolocator locator(Open(directory_->flat()), /*cache_capacity=*/0);
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");
  EXPECT_EQ(Label(locator, "8.8.8.8"), "US");
  ExpectStats(locator, 2, 0, 2, 0);
  EXPECT_EQ(locator.cache_size(), 0u);
}

TEST_F(GeolocatorTest, SetDatabaseSwapsAndClearsTheCache) {
  std::shared_ptr<const GeoIpDatabase> flat = Open(directory_->flat());
  std::shared_ptr<const GeoIpDatabase> maxmind = Open(directory_->maxmind());
  Geolocator locator(flat);
  EXPECT_EQ(locator.database(), flat);
  EXPECT_EQ(Label(locator, "138.100.31.225"), "ES");
  EXPECT_EQ(Label(locator, "89.160.20.5"), "unknown");
  EXPECT_EQ(locator.cache_size(), 2u);

  locator.SetDatabase(maxmind);
  EXPECT_EQ(locator.database(), maxmind);
  EXPECT_EQ(locator.cache_size(), 0u);
  // Both answers change: nothing stale survives the swap.
  EXPECT_EQ(Label(locator, "138.100.31.225"), "unknown");
  EXPECT_EQ(Label(locator, "89.160.20.5"), "SE");
  ExpectStats(locator, 4, 0, 4, 0);

  locator.SetDatabase(nullptr);
  EXPECT_EQ(locator.database(), nullptr);
  EXPECT_EQ(Label(locator, "89.160.20.5"), "unknown");
  EXPECT_EQ(Label(locator, "10.0.0.1"), "private");
  ExpectStats(locator, 6, 0, 5, 0);
}

TEST_F(GeolocatorTest, SwapsAndStatsAreSafeDuringLookups) {
  std::shared_ptr<const GeoIpDatabase> flat = Open(directory_->flat());
  std::shared_ptr<const GeoIpDatabase> maxmind = Open(directory_->maxmind());
  Geolocator locator(flat, /*cache_capacity=*/3);
  // 81.2.69.142 is GB in both databases; 8.8.8.8 only in flat; 89.160.20.5
  // only in maxmind.
  const std::vector<IpAddress> addresses = {Ip("81.2.69.142"), Ip("8.8.8.8"), Ip("89.160.20.5"),
                                            Ip("10.0.0.1")};
  constexpr int kRounds = 20000;
  std::atomic<bool> done{false};
  std::thread swapper([&] {
    // Until the lookups end; bounded in case they hang.
    for (int i = 0; i < 1000000 && !done.load(); ++i) {
      locator.SetDatabase(i % 2 == 0 ? maxmind : flat);
      const Geolocator::Stats stats = locator.stats();
      EXPECT_LE(stats.cache_hits + stats.cache_misses, stats.lookups);
      EXPECT_LE(stats.failures, stats.cache_misses);
    }
  });
  int bad = 0;
  for (int i = 0; i < kRounds; ++i) {
    const IpAddress& address = addresses[i % addresses.size()];
    const std::string label = locator.Locate(address).country.Label();
    switch (i % addresses.size()) {
      case 0:
        bad += label != "GB";
        break;
      case 1:
        bad += label != "US" && label != "unknown";
        break;
      case 2:
        bad += label != "SE" && label != "unknown";
        break;
      case 3:
        bad += label != "private";
        break;
    }
  }
  done.store(true);
  swapper.join();
  EXPECT_EQ(bad, 0);
  const Geolocator::Stats stats = locator.stats();
  EXPECT_EQ(stats.lookups, static_cast<uint64_t>(kRounds));
  EXPECT_EQ(stats.cache_hits + stats.cache_misses, kRounds / 4 * 3u);
  EXPECT_EQ(stats.failures, 0u);
}

}  // namespace
}  // namespace geoip
