#include "tools/load/tcp_mib.h"

#include <gtest/gtest.h>

namespace geoip {
namespace {

// As Linux 6.1 prints it, shortened to two groups.
constexpr char kSnmp[] =
    "Ip: Forwarding DefaultTTL InReceives\n"
    "Ip: 1 64 2478\n"
    "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets\n"
    "Tcp: 1 200 120000 -1 20258 20245 13 35313\n"
    "Udp: InDatagrams NoPorts AttemptFails\n"
    "Udp: 5 0 99\n";

TEST(ParseSnmpCounter, FindsTheCounterOfItsGroup) {
  EXPECT_EQ(ParseSnmpCounter(kSnmp, "Tcp", "AttemptFails").value(), 13u);
  EXPECT_EQ(ParseSnmpCounter(kSnmp, "Tcp", "PassiveOpens").value(), 20245u);
  EXPECT_EQ(ParseSnmpCounter(kSnmp, "Udp", "AttemptFails").value(), 99u);
}

TEST(ParseSnmpCounter, SaysWhatIsMissingOrNotACounter) {
  EXPECT_EQ(ParseSnmpCounter(kSnmp, "Tcp", "NoSuchCounter").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseSnmpCounter(kSnmp, "Icmp", "InErrors").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseSnmpCounter("Tcp: AttemptFails\n", "Tcp", "AttemptFails").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ParseSnmpCounter(kSnmp, "Tcp", "MaxConn").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ReadSnmpCounter, ReadsThisThreadsNamespace) {
  absl::StatusOr<uint64_t> value = ReadSnmpCounter("Tcp", "AttemptFails");
  ASSERT_TRUE(value.ok()) << value.status();
}

}  // namespace
}  // namespace geoip
