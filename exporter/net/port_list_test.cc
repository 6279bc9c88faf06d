#include "exporter/net/port_list.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/status/status.h"

namespace geoip {
namespace {

TEST(PortSet, DefaultHoldsEveryPort) {
  PortSet ports;
  EXPECT_TRUE(ports.all());
  EXPECT_TRUE(ports.Contains(1));
  EXPECT_TRUE(ports.Contains(65535));
  EXPECT_EQ(ports.ToString(), "all");
}

struct GoodCase {
  std::string input;
  std::string canonical;
  std::vector<uint16_t> in;
  std::vector<uint16_t> out;
};

TEST(ParsePortList, AcceptsValidLists) {
  const std::vector<GoodCase> cases = {
      {"", "all", {1, 80, 65535}, {}},
      {"   ", "all", {1, 65535}, {}},
      {"all", "all", {1, 65535}, {}},
      {" ALL ", "all", {1, 65535}, {}},
      {"1-65535", "all", {1, 65535}, {}},
      {"80", "80", {80}, {0, 79, 81, 65535}},
      {"8081,8082,9000-9100",
       "8081-8082,9000-9100",
       {8081, 8082, 9000, 9050, 9100},
       {8080, 8083, 8999, 9101}},
      {" 8081 , 8082 ,9000 - 9100 ", "8081-8082,9000-9100", {8081, 9100}, {8083}},
      {"9000,8083,8081-8082", "8081-8083,9000", {8081, 8082, 8083, 9000}, {8080, 8084, 8999, 9001}},
      {"100-200,150-250,250", "100-250", {100, 200, 250}, {99, 251}},
      {"22,22", "22", {22}, {21, 23}},
      {"1", "1", {1}, {0, 2}},
      {"65535", "65535", {65535}, {65534}},
      {"65534-65535", "65534-65535", {65534, 65535}, {65533}},
      {"0080", "80", {80}, {8}},
      {"5-5", "5", {5}, {4, 6}},
  };
  for (const GoodCase& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    absl::StatusOr<PortSet> ports = ParsePortList(c.input);
    ASSERT_TRUE(ports.ok()) << ports.status();
    EXPECT_EQ(ports->ToString(), c.canonical);
    EXPECT_EQ(ports->all(), c.canonical == "all");
    for (uint16_t port : c.in) EXPECT_TRUE(ports->Contains(port)) << port;
    for (uint16_t port : c.out) EXPECT_FALSE(ports->Contains(port)) << port;
    // The canonical form parses back to the same set.
    absl::StatusOr<PortSet> again = ParsePortList(ports->ToString());
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->Bitmap(), ports->Bitmap());
  }
}

struct BadCase {
  std::string input;
  std::string bad_item;  // Must appear quoted in the error message.
};

TEST(ParsePortList, RejectsInvalidItemsNamingThem) {
  const std::vector<BadCase> cases = {
      {"0", "0"},
      {"80,0", "0"},
      {"65536", "65536"},
      {"70000", "70000"},
      {"99999999999999999999999", "99999999999999999999999"},
      {"9100-9000", "9100-9000"},
      {"0-10", "0-10"},
      {"10-65536", "10-65536"},
      {"http", "http"},
      {"80,abc", "abc"},
      {"80a", "80a"},
      {"0x50", "0x50"},
      {"8.0", "8.0"},
      {"+80", "+80"},
      {"-80", "-80"},
      {"80-", "80-"},
      {"1-2-3", "1-2-3"},
      {"80 81", "80 81"},
      {"80,,81", ""},
      {"80,", ""},
      {",80", ""},
      {"80, ,81", " "},
      {"all,80", "all"},
      {"none", "none"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE("input: \"" + c.input + "\"");
    absl::StatusOr<PortSet> ports = ParsePortList(c.input);
    ASSERT_FALSE(ports.ok()) << ports->ToString();
    EXPECT_EQ(ports.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(ports.status().message().find("\"" + c.bad_item + "\""), std::string::npos)
        << ports.status();
  }
}

TEST(ParsePortList, ExplainsReversedRanges) {
  absl::StatusOr<PortSet> ports = ParsePortList("9100-9000");
  ASSERT_FALSE(ports.ok());
  EXPECT_EQ(ports.status().message(),
            "invalid port list item \"9100-9000\" in \"9100-9000\": range "
            "start is greater than its end");
}

TEST(PortSet, BitmapUsesBpfLayout) {
  absl::StatusOr<PortSet> ports = ParsePortList("1,8,15-16,65535");
  ASSERT_TRUE(ports.ok()) << ports.status();
  std::array<uint8_t, PortSet::kBitmapBytes> bitmap = ports->Bitmap();
  ASSERT_EQ(bitmap.size(), 8192u);
  EXPECT_EQ(bitmap[0], 0x02);         // port 1
  EXPECT_EQ(bitmap[1], 0x01 | 0x80);  // ports 8 and 15
  EXPECT_EQ(bitmap[2], 0x01);         // port 16
  EXPECT_EQ(bitmap[8191], 0x80);      // port 65535
  int set_bits = 0;
  for (uint8_t byte : bitmap) set_bits += __builtin_popcount(byte);
  EXPECT_EQ(set_bits, 5);
}

TEST(PortSet, BitmapOfAllHasEveryBit) {
  std::array<uint8_t, PortSet::kBitmapBytes> bitmap = PortSet().Bitmap();
  for (size_t i = 0; i < bitmap.size(); ++i) ASSERT_EQ(bitmap[i], 0xff) << i;
}

}  // namespace
}  // namespace geoip
