#include "exporter/stats/top_peers.h"

#include <chrono>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

constexpr ServiceId kWeb = 2;
constexpr ServiceId kApi = 3;

CountryId Iso(const char* code) { return CountryId::FromIsoCode(code).value(); }

IpAddress Ip(const char* text) { return ParseIpAddress(text).value(); }

// "81.2.69.0/24 GB 12±0" per peer, in the order Top returns them.
std::vector<std::string> Describe(const std::vector<TopPeers::Peer>& peers) {
  std::vector<std::string> out;
  for (const TopPeers::Peer& p : peers) {
    out.push_back(
        absl::StrCat(p.address, " ", p.country.Label(), " ", p.connections, "±", p.max_error));
  }
  return out;
}

TEST(TopPeers, ExactTopNOfAKnownMixBelowCapacity) {
  TopPeers top(64, /*full_addresses=*/false);
  struct Visit {
    const char* address;
    const char* country;
    uint64_t count;
  };
  const Visit mix[] = {
      {"81.2.69.142", "GB", 5},   {"89.160.20.112", "SE", 9}, {"2a01:4f8::1", "DE", 7},
      {"81.2.69.143", "GB", 4},   {"175.16.199.1", "CN", 2},  {"216.160.83.56", "US", 3},
      {"89.160.20.1", "SE", 1},   {"2a01:4f8::2", "DE", 2},   {"216.160.83.57", "US", 6},
      {"202.196.224.1", "PH", 3}, {"175.16.199.9", "CN", 1},
  };
  for (const Visit& v : mix) top.Record(Iso(v.country), 8081, kWeb, Ip(v.address), v.count);

  // 81.2.69.0/24: 9, 89.160.20.0/24: 10, 2a01:4f8::/48: 9, 216.160.83.0/24: 9,
  // 175.16.199.0/24: 3, 202.196.224.0/24: 3. Ties: IPv4 before IPv6, then
  // numerically.
  EXPECT_EQ(Describe(top.Top(std::nullopt, std::nullopt, 10)),
            (std::vector<std::string>{"89.160.20.0/24 SE 10±0", "81.2.69.0/24 GB 9±0",
                                      "216.160.83.0/24 US 9±0", "2a01:4f8::/48 DE 9±0",
                                      "175.16.199.0/24 CN 3±0", "202.196.224.0/24 PH 3±0"}));
  EXPECT_EQ(Describe(top.Top(8081, kWeb, 2)),
            (std::vector<std::string>{"89.160.20.0/24 SE 10±0", "81.2.69.0/24 GB 9±0"}));
  EXPECT_EQ(top.size(), 6u);
  EXPECT_TRUE(top.Top(std::nullopt, std::nullopt, 0).empty());
}

TEST(TopPeers, PrefixesMergeTheAddressesOfOneNetwork) {
  TopPeers top(8, false);
  EXPECT_FALSE(top.full_addresses());
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 1);
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.254"), 1);
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.70.1"), 1);
  top.Record(Iso("DE"), 8081, kWeb, Ip("2001:db8:1:2::1"), 1);
  top.Record(Iso("DE"), 8081, kWeb, Ip("2001:db8:1:ffff:ffff:ffff:ffff:ffff"), 1);
  top.Record(Iso("DE"), 8081, kWeb, Ip("2001:db8:2::1"), 1);
  // An IPv4-mapped peer is its IPv4 address.
  top.Record(Iso("GB"), 8081, kWeb, Ip("::ffff:81.2.69.7"), 1);
  EXPECT_EQ(Describe(top.Top(std::nullopt, std::nullopt, 10)),
            (std::vector<std::string>{"81.2.69.0/24 GB 3±0", "2001:db8:1::/48 DE 2±0",
                                      "81.2.70.0/24 GB 1±0", "2001:db8:2::/48 DE 1±0"}));
}

TEST(TopPeers, FullAddressesKeepThemApart) {
  TopPeers top(8, /*full_addresses=*/true);
  EXPECT_TRUE(top.full_addresses());
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 2);
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.254"), 1);
  top.Record(Iso("DE"), 8081, kWeb, Ip("2001:db8:1:2::1"), 1);
  top.Record(Iso("DE"), 8081, kWeb, Ip("2001:db8:1:ffff::9"), 3);
  EXPECT_EQ(Describe(top.Top(std::nullopt, std::nullopt, 10)),
            (std::vector<std::string>{"2001:db8:1:ffff::9 DE 3±0", "81.2.69.1 GB 2±0",
                                      "81.2.69.254 GB 1±0", "2001:db8:1:2::1 DE 1±0"}));
}

TEST(TopPeers, FiltersByPortAndService) {
  TopPeers top(8, false);
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 5);
  top.Record(Iso("GB"), 8081, kApi, Ip("81.2.69.2"), 4);
  top.Record(Iso("SE"), 8081, kApi, Ip("89.160.20.1"), 7);
  top.Record(Iso("US"), 8082, kWeb, Ip("216.160.83.56"), 8);
  top.Record(Iso("SE"), 8082, kWeb, Ip("89.160.20.1"), 1);

  EXPECT_EQ(Describe(top.Top(std::nullopt, std::nullopt, 10)),
            (std::vector<std::string>{"81.2.69.0/24 GB 9±0", "89.160.20.0/24 SE 8±0",
                                      "216.160.83.0/24 US 8±0"}));
  EXPECT_EQ(Describe(top.Top(8081, std::nullopt, 10)),
            (std::vector<std::string>{"81.2.69.0/24 GB 9±0", "89.160.20.0/24 SE 7±0"}));
  EXPECT_EQ(Describe(top.Top(8081, kApi, 10)),
            (std::vector<std::string>{"89.160.20.0/24 SE 7±0", "81.2.69.0/24 GB 4±0"}));
  EXPECT_EQ(Describe(top.Top(std::nullopt, kWeb, 10)),
            (std::vector<std::string>{"216.160.83.0/24 US 8±0", "81.2.69.0/24 GB 5±0",
                                      "89.160.20.0/24 SE 1±0"}));
  EXPECT_TRUE(top.Top(8083, std::nullopt, 10).empty());
  EXPECT_TRUE(top.Top(8082, kApi, 10).empty());
}

TEST(TopPeers, KeepsTheLastCountryAndMergesByTheLargestCount) {
  TopPeers top(8, false);
  // One /24 that a database update moved from GB to IE.
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 1);
  top.Record(Iso("IE"), 8081, kWeb, Ip("81.2.69.2"), 1);
  EXPECT_EQ(Describe(top.Top(8081, kWeb, 1)), (std::vector<std::string>{"81.2.69.0/24 IE 2±0"}));
  // Across sketches, the country of the larger count.
  top.Record(Iso("GB"), 8082, kWeb, Ip("81.2.69.3"), 5);
  EXPECT_EQ(Describe(top.Top(std::nullopt, std::nullopt, 1)),
            (std::vector<std::string>{"81.2.69.0/24 GB 7±0"}));
}

TEST(TopPeers, OffWithCapacityZeroAndCountZeroChangesNothing) {
  TopPeers off(0, false);
  off.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 3);
  EXPECT_TRUE(off.Top(std::nullopt, std::nullopt, 10).empty());
  EXPECT_EQ(off.size(), 0u);
  EXPECT_EQ(off.MemoryBytes(), sizeof(TopPeers));

  TopPeers top(4, false);
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 0);
  EXPECT_TRUE(top.Top(std::nullopt, std::nullopt, 10).empty());
}

TEST(TopPeers, EvictionInheritsTheSmallestCountAsTheError) {
  TopPeers top(2, false);
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 3);
  top.Record(Iso("SE"), 8081, kWeb, Ip("89.160.20.1"), 5);
  // Full: 216.160.83.0/24 takes 81.2.69.0/24's counter (3) and adds its 2.
  // Equal counts: the smaller error first.
  top.Record(Iso("US"), 8081, kWeb, Ip("216.160.83.1"), 2);
  EXPECT_EQ(Describe(top.Top(8081, kWeb, 10)),
            (std::vector<std::string>{"89.160.20.0/24 SE 5±0", "216.160.83.0/24 US 5±3"}));
  // Of the two smallest, the heap's root goes: US's counter, which did not
  // move down past SE's equal count.
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 1);
  EXPECT_EQ(Describe(top.Top(8081, kWeb, 10)),
            (std::vector<std::string>{"81.2.69.0/24 GB 6±5", "89.160.20.0/24 SE 5±0"}));
  EXPECT_EQ(top.size(), 2u);
}

TEST(TopPeers, MergedBoundCoversAKeyEvictedFromAnotherSketch) {
  TopPeers top(2, false);
  // Port 8082: 81.2.69.0/24 counted 3 times, then evicted.
  top.Record(Iso("GB"), 8082, kWeb, Ip("81.2.69.1"), 3);
  top.Record(Iso("SE"), 8082, kWeb, Ip("89.160.20.1"), 5);
  top.Record(Iso("US"), 8082, kWeb, Ip("216.160.83.1"), 5);
  // Port 8081: never full, exact.
  top.Record(Iso("GB"), 8081, kWeb, Ip("81.2.69.1"), 10);

  // True totals: GB 13, SE 5, US 5. The 8082 sketch's smallest count (5) is
  // added to GB, which it no longer holds; 8081 never evicted and adds
  // nothing to the others.
  EXPECT_EQ(Describe(top.Top(std::nullopt, std::nullopt, 10)),
            (std::vector<std::string>{"81.2.69.0/24 GB 15±5", "216.160.83.0/24 US 8±3",
                                      "89.160.20.0/24 SE 5±0"}));
  EXPECT_EQ(Describe(top.Top(8081, std::nullopt, 10)),
            (std::vector<std::string>{"81.2.69.0/24 GB 10±0"}));
}

// Space-Saving's guarantees against the exact counts of skewed random
// streams, one sketch and merged over several.
TEST(TopPeers, EstimatesStayWithinTheDocumentedBounds) {
  std::mt19937 random(15);
  for (size_t capacity : {1, 4, 32}) {
    TopPeers top(capacity, /*full_addresses=*/true);
    absl::flat_hash_map<std::string, uint64_t> truth;
    absl::flat_hash_map<uint16_t, uint64_t> per_port;
    uint64_t total = 0;
    std::geometric_distribution<uint32_t> skewed(0.02);
    std::uniform_int_distribution<uint64_t> weight(1, 4);
    std::uniform_int_distribution<uint16_t> port(1, 3);
    for (int i = 0; i < 20000; ++i) {
      const IpAddress peer = IpAddress::V4(0x0a000000 + skewed(random));
      const uint64_t count = weight(random);
      const uint16_t p = port(random);
      top.Record(Iso("NL"), p, kWeb, peer, count);
      truth[FormatIpAddress(peer)] += count;
      per_port[p] += count;
      total += count;
    }
    const std::vector<TopPeers::Peer> merged = top.Top(std::nullopt, std::nullopt, 1000000);
    absl::flat_hash_map<std::string, const TopPeers::Peer*> reported;
    for (const TopPeers::Peer& p : merged) {
      reported[p.address] = &p;
      ASSERT_TRUE(truth.contains(p.address)) << p.address;
      const uint64_t real = truth[p.address];
      EXPECT_GE(p.connections, real) << p.address << " capacity " << capacity;
      EXPECT_LE(p.connections - p.max_error, real) << p.address << " capacity " << capacity;
      EXPECT_LE(p.max_error, total / capacity) << p.address << " capacity " << capacity;
    }
    for (const auto& [address, real] : truth) {
      if (real > total / capacity) {
        EXPECT_TRUE(reported.contains(address)) << address;
      }
    }
    // One sketch: the counters add up to exactly what it counted.
    for (const auto& [p, counted] : per_port) {
      uint64_t sum = 0;
      for (const TopPeers::Peer& peer : top.Top(p, kWeb, 1000000)) sum += peer.connections;
      EXPECT_EQ(sum, counted) << "port " << p << " capacity " << capacity;
    }
    EXPECT_EQ(top.size(), 3 * capacity);
  }
}

TEST(TopPeers, MemoryStaysBoundedAfterAMillionDistinctPeers) {
  constexpr size_t kCapacity = 64;
  TopPeers top(kCapacity, false);
  // Counters, heap and key index, with room for the hash table's slack:
  // under 200 bytes a counter (40 + 4, and at most ~4.6 index slots of 25).
  const size_t bound = sizeof(TopPeers) + 1024 + kCapacity * 200;
  EXPECT_LE(TopPeers::SketchMemoryBound(kCapacity), kCapacity * 200);

  const IpAddress heavy = Ip("81.2.69.1");
  const auto start = std::chrono::steady_clock::now();
  size_t largest = 0;
  for (uint32_t i = 0; i < 1000000; ++i) {
    // A distinct /24 every time (10.0.0.0 up), and the heavy hitter every 8th.
    top.Record(Iso("NL"), 8081, kWeb, IpAddress::V4(0x0a000000 + (i << 8)), 1);
    if (i % 8 == 0) top.Record(Iso("GB"), 8081, kWeb, heavy, 1);
    if (i % 4096 == 0) largest = std::max(largest, top.MemoryBytes());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("TopPeers: 1,125,000 Records into %zu counters took %.3f s\n", kCapacity, seconds);

  largest = std::max(largest, top.MemoryBytes());
  std::printf("TopPeers: at most %zu bytes held (bound %zu)\n", largest, bound);
  EXPECT_LE(largest, bound);
  EXPECT_EQ(top.size(), kCapacity);

  const std::vector<TopPeers::Peer> first = top.Top(8081, kWeb, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].address, "81.2.69.0/24");
  EXPECT_EQ(first[0].country, Iso("GB"));
  EXPECT_GE(first[0].connections, 125000u);
  EXPECT_LE(first[0].connections - first[0].max_error, 125000u);
  EXPECT_LE(first[0].max_error, 1125000u / kCapacity);
}

}  // namespace
}  // namespace geoip
