#include "tools/load/half_open.h"

#include <gtest/gtest.h>

#include <string>

namespace geoip {
namespace {

TEST(SynPacket, HeadersAndChecksumsAsOnTheWire) {
  // 81.2.69.142:40000 -> 10.9.0.1:8080. A packet whose checksums are right
  // sums to zero (0xffff before the complement) over each covered range.
  const std::string packet =
      SynPacket(IpAddress::V4(0x5102458e), 40000, IpAddress::V4(0x0a090001), 8080);
  ASSERT_EQ(packet.size(), 40u);
  auto byte = [&](size_t i) { return static_cast<uint8_t>(packet[i]); };
  EXPECT_EQ(byte(0), 0x45);
  EXPECT_EQ(byte(9), 6);  // TCP
  EXPECT_EQ(byte(12), 81);
  EXPECT_EQ(byte(19), 1);
  EXPECT_EQ((byte(20) << 8) | byte(21), 40000);
  EXPECT_EQ((byte(22) << 8) | byte(23), 8080);
  EXPECT_EQ(byte(33), 0x02);  // SYN alone
  auto sum = [&](const std::string& data) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < data.size(); i += 2) {
      s += (static_cast<uint8_t>(data[i]) << 8) | static_cast<uint8_t>(data[i + 1]);
    }
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return s;
  };
  EXPECT_EQ(sum(packet.substr(0, 20)), 0xffffu);
  std::string pseudo = packet.substr(12, 8) + std::string("\0\x06\0\x14", 4);
  EXPECT_EQ(sum(pseudo + packet.substr(20)), 0xffffu);
}

TEST(SendSyns, RefusesIpv6) {
  EXPECT_FALSE(SendSyns(IpAddress::V6({}), IpAddress::V6({}), 80, 1).ok());
}

}  // namespace
}  // namespace geoip
