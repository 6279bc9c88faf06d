#include "tools/load/endpoint.h"

#include <netinet/in.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace geoip {
namespace {

TEST(ParseEndpoint, ReadsAddressAndPort) {
  struct Case {
    std::string text;
    std::string canonical;  // Text() of the result
    bool v4;
  };
  const std::vector<Case> cases = {
      {"127.0.0.1:8081", "127.0.0.1:8081", true},
      {"[::]:8083", "[::]:8083", false},
      {"[::1]:1", "[::1]:1", false},
      {"[2001:DB8::1]:65535", "[2001:db8::1]:65535", false},
      {"[192.0.2.1]:80", "192.0.2.1:80", true},  // brackets around IPv4 are allowed
      // Written as IPv6, it stays IPv6: an IPv6 socket binds it.
      {"[::ffff:127.0.0.1]:80", "[::ffff:127.0.0.1]:80", false},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Endpoint> endpoint = ParseEndpoint(c.text);
    ASSERT_TRUE(endpoint.ok()) << c.text << ": " << endpoint.status();
    EXPECT_EQ(endpoint->Text(), c.canonical);
    EXPECT_EQ(endpoint->address.is_v4(), c.v4) << c.text;
  }
}

TEST(ParseEndpoint, RejectsWhatIsNotAddressColonPort) {
  for (const char* text :
       {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http", "::1:80",
        "[::1:80", "[::1]", "localhost:80", "300.0.0.1:80", "127.0.0.1:80x"}) {
    EXPECT_FALSE(ParseEndpoint(text).ok()) << text;
  }
}

TEST(ParseSocketAddress, KeepsTheFamilyAsWritten) {
  absl::StatusOr<IpAddress> mapped = ParseSocketAddress("::ffff:81.2.69.142");
  ASSERT_TRUE(mapped.ok()) << mapped.status();
  EXPECT_FALSE(mapped->is_v4());
  EXPECT_EQ(FormatIpAddress(*mapped), "::ffff:81.2.69.142");
  absl::StatusOr<IpAddress> bracketed = ParseSocketAddress("[2001:4860:4860::8888]");
  ASSERT_TRUE(bracketed.ok()) << bracketed.status();
  EXPECT_EQ(FormatIpAddress(*bracketed), "2001:4860:4860::8888");
  EXPECT_TRUE(ParseSocketAddress("81.2.69.142")->is_v4());
  EXPECT_FALSE(ParseSocketAddress("[81.2.69.142").ok());
  EXPECT_FALSE(ParseSocketAddress("81.2.69").ok());
}

TEST(Endpoint, UnspecifiedIsTheAnyAddressOfEitherFamily) {
  EXPECT_TRUE(ParseEndpoint("0.0.0.0:80")->IsUnspecified());
  EXPECT_TRUE(ParseEndpoint("[::]:80")->IsUnspecified());
  EXPECT_FALSE(ParseEndpoint("127.0.0.1:80")->IsUnspecified());
  EXPECT_FALSE(ParseEndpoint("[::1]:80")->IsUnspecified());
}

TEST(Sockaddr, RoundTripsBothFamilies) {
  for (const char* text : {"81.2.69.142:8081", "[2001:4860:4860::8888]:443",
                           "[::ffff:81.2.69.142]:8083", "0.0.0.0:1"}) {
    const Endpoint endpoint = *ParseEndpoint(text);
    socklen_t length = 0;
    const sockaddr_storage storage = ToSockaddr(endpoint, &length);
    EXPECT_EQ(length, endpoint.address.is_v4() ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
    EXPECT_EQ(storage.ss_family, endpoint.address.is_v4() ? AF_INET : AF_INET6);
    EXPECT_EQ(FromSockaddr(storage), endpoint) << text;
  }
}

TEST(Sockaddr, NetworkByteOrder) {
  socklen_t length = 0;
  const sockaddr_storage storage = ToSockaddr(*ParseEndpoint("192.0.2.1:8081"), &length);
  const auto* sin = reinterpret_cast<const sockaddr_in*>(&storage);
  EXPECT_EQ(sin->sin_port, htons(8081));
  EXPECT_EQ(sin->sin_addr.s_addr, htonl(0xC0000201));
}

}  // namespace
}  // namespace geoip
