#include "exporter/net/address.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/hash/hash.h"
#include "absl/status/status.h"

namespace geoip {
namespace {

IpAddress Parse(const std::string& text) {
  absl::StatusOr<IpAddress> address = ParseIpAddress(text);
  EXPECT_TRUE(address.ok()) << address.status();
  return address.value_or(IpAddress());
}

TEST(IpAddress, V4StoresNetworkOrderBytes) {
  IpAddress address = IpAddress::V4(0xC0000201);  // 192.0.2.1
  EXPECT_TRUE(address.is_v4());
  const std::array<uint8_t, 16> expected = {192, 0, 2, 1};
  EXPECT_EQ(address.bytes, expected);
  EXPECT_EQ(FormatIpAddress(address), "192.0.2.1");
}

TEST(IpAddress, FromRawNormalisesMappedIpv6) {
  const uint8_t v4[16] = {81, 2, 69, 142};
  EXPECT_EQ(IpAddress::FromRaw(4, v4), IpAddress::V4(0x5102458E));

  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 81, 2, 69, 142};
  IpAddress from_mapped = IpAddress::FromRaw(6, mapped);
  EXPECT_TRUE(from_mapped.is_v4());
  EXPECT_EQ(from_mapped, IpAddress::V4(0x5102458E));

  const uint8_t v6[16] = {0x20, 0x01, 0x48, 0x60, 0x48, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0x88, 0x88};
  IpAddress from_v6 = IpAddress::FromRaw(6, v6);
  EXPECT_FALSE(from_v6.is_v4());
  EXPECT_EQ(FormatIpAddress(from_v6), "2001:4860:4860::8888");
}

TEST(IpAddress, EqualAddressesHashAlike) {
  EXPECT_EQ(absl::Hash<IpAddress>()(Parse("::ffff:10.1.2.3")),
            absl::Hash<IpAddress>()(Parse("10.1.2.3")));
  EXPECT_NE(Parse("10.1.2.3"), Parse("10.1.2.4"));
  // Same bytes, different family: ::a01:203 is not 10.1.2.3.
  EXPECT_NE(Parse("::a01:203"), Parse("10.1.2.3"));
}

TEST(ParseIpAddress, RoundTripsToCanonicalText) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"8.8.8.8", "8.8.8.8"},
      {"0.0.0.0", "0.0.0.0"},
      {"255.255.255.255", "255.255.255.255"},
      {"::", "::"},
      {"::1", "::1"},
      {"2001:DB8:0:0:0:0:0:1", "2001:db8::1"},
      {"2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"},
      {"fe80::1", "fe80::1"},
      {"::ffff:192.0.2.1", "192.0.2.1"},
      {"::ffff:c000:0201", "192.0.2.1"},
  };
  for (const auto& [input, expected] : cases) {
    SCOPED_TRACE(input);
    EXPECT_EQ(FormatIpAddress(Parse(input)), expected);
  }
}

TEST(ParseIpAddress, RejectsNonAddresses) {
  const std::vector<std::string> cases = {
      "",
      " 8.8.8.8",
      "8.8.8.8 ",
      "8.8.8",
      "8.8.8.256",
      "1.2.3.4.5",
      "example.com",
      "2001:db8::1::2",
      "::g",
      "10.0.0.1/8",
      std::string("8.8.8.8\0x", 9),
  };
  for (const std::string& input : cases) {
    SCOPED_TRACE(input);
    absl::StatusOr<IpAddress> address = ParseIpAddress(input);
    ASSERT_FALSE(address.ok()) << FormatIpAddress(*address);
    EXPECT_EQ(address.status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(ParseIpAddress("nope").status().message(), "not an IPv4 or IPv6 address: \"nope\"");
}

TEST(IsNonRoutable, ClassifiesSpecialPurposeNetworks) {
  const std::vector<std::pair<std::string, bool>> cases = {
      // IPv4: edges of each special network and their public neighbours.
      {"0.0.0.0", true},
      {"0.255.255.255", true},
      {"1.0.0.0", false},
      {"9.255.255.255", false},
      {"10.0.0.0", true},
      {"10.255.255.255", true},
      {"11.0.0.0", false},
      {"100.63.255.255", false},
      {"100.64.0.0", true},
      {"100.127.255.255", true},
      {"100.128.0.0", false},
      {"127.0.0.1", true},
      {"127.255.255.255", true},
      {"128.0.0.0", false},
      {"169.254.1.1", true},
      {"169.253.255.255", false},
      {"169.255.0.0", false},
      {"172.15.255.255", false},
      {"172.16.0.0", true},
      {"172.31.255.255", true},
      {"172.32.0.0", false},
      {"192.0.0.8", true},
      {"192.0.1.1", false},
      {"192.0.2.1", true},
      {"192.0.3.1", false},
      {"192.167.255.255", false},
      {"192.168.1.1", true},
      {"192.169.0.0", false},
      {"198.17.255.255", false},
      {"198.18.0.0", true},
      {"198.19.255.255", true},
      {"198.20.0.0", false},
      {"198.51.100.7", true},
      {"198.51.101.0", false},
      {"203.0.113.255", true},
      {"203.0.114.0", false},
      {"223.255.255.255", false},
      {"224.0.0.1", true},
      {"239.255.255.255", true},
      {"240.0.0.1", true},
      {"255.255.255.255", true},
      {"8.8.8.8", false},
      {"81.2.69.142", false},
      {"138.100.31.225", false},
      // IPv6.
      {"::", true},
      {"::1", true},
      {"::2", false},
      {"fc00::1", true},
      {"fdff:ffff::1", true},
      {"fbff::1", false},
      {"fe00::1", false},
      {"fe80::1", true},
      {"febf:ffff::1", true},
      {"fec0::1", false},
      {"ff02::1", true},
      {"ff00::", true},
      {"2001:db8::1", true},
      {"2001:db8:ffff::1", true},
      {"2001:db9::1", false},
      {"2001:db7::1", false},
      {"100::1", true},
      {"100::ffff:ffff:ffff:ffff", true},
      {"100:0:0:1::1", false},
      {"64:ff9b::808:808", false},
      {"2001:4860:4860::8888", false},
      {"2a00:1450::1", false},
  };
  for (const auto& [input, expected] : cases) {
    SCOPED_TRACE(input);
    EXPECT_EQ(IsNonRoutable(Parse(input)), expected);
  }
}

TEST(IsNonRoutable, ClassifiesMappedIpv6ByItsIpv4Address) {
  std::array<uint8_t, 16> bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  EXPECT_TRUE(IsNonRoutable(IpAddress::V6(bytes)));
  bytes[12] = 8;
  bytes[13] = 8;
  bytes[14] = 8;
  bytes[15] = 8;
  EXPECT_FALSE(IsNonRoutable(IpAddress::V6(bytes)));
}

TEST(TruncateForDisplay, ClearsHostBits) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"81.2.69.142", "81.2.69.0"},
      {"8.8.8.8", "8.8.8.0"},
      {"2001:4860:4860::8888", "2001:4860:4860::"},
      {"2001:4860:4861:ffff:1:2:3:4", "2001:4860:4861::"},
      {"::ffff:1.2.3.4", "1.2.3.0"},
  };
  for (const auto& [input, expected] : cases) {
    SCOPED_TRACE(input);
    IpAddress truncated = TruncateForDisplay(Parse(input));
    EXPECT_EQ(FormatIpAddress(truncated), expected);
    EXPECT_EQ(truncated, Parse(expected));
  }
}

TEST(IpNetwork, ParsesAndContains) {
  absl::StatusOr<IpNetwork> v4 = ParseIpNetwork("127.0.0.0/8");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_TRUE(v4->Contains(*ParseIpAddress("127.1.2.3")));
  EXPECT_FALSE(v4->Contains(*ParseIpAddress("128.0.0.1")));
  EXPECT_FALSE(v4->Contains(*ParseIpAddress("::1")));
  // An IPv4-mapped address is the IPv4 address.
  EXPECT_TRUE(v4->Contains(*ParseIpAddress("::ffff:127.0.0.1")));

  absl::StatusOr<IpNetwork> v6 = ParseIpNetwork("fd00:1::/33");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_TRUE(v6->Contains(*ParseIpAddress("fd00:1:7fff::1")));
  EXPECT_FALSE(v6->Contains(*ParseIpAddress("fd00:1:8000::1")));

  absl::StatusOr<IpNetwork> one = ParseIpNetwork("::1");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->prefix_length, 128);
  EXPECT_TRUE(one->Contains(*ParseIpAddress("::1")));
  EXPECT_FALSE(one->Contains(*ParseIpAddress("::2")));

  absl::StatusOr<IpNetwork> all = ParseIpNetwork("0.0.0.0/0");
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->Contains(*ParseIpAddress("203.0.113.9")));
}

TEST(IpNetwork, RefusesMalformedBlocksSayingWhy) {
  for (const char* bad : {"", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
                          "::/129", "10.0.0.0/8x", "host/8", "10.0.0.0/8/8"}) {
    EXPECT_FALSE(ParseIpNetwork(bad).ok()) << bad;
  }
  absl::StatusOr<IpNetwork> typo = ParseIpNetwork("10.1.2.3/8");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("did you mean 10.0.0.0/8"), std::string::npos)
      << typo.status();
}

}  // namespace
}  // namespace geoip
