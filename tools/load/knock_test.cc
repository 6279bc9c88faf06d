// Refused and open connection attempts on this machine's loopback: ports
// held bound but not listening refuse (nothing else can listen there while
// they are held), so no root and no namespace are needed.
#include "tools/load/knock.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "exporter/util/unique_fd.h"
#include "tools/load/listener.h"

namespace geoip {
namespace {

const IpAddress kLoopback = IpAddress::V4(0x7f000001);

TEST(ParsePortRange, ReadsARangeOrOnePort) {
  struct Case {
    const char* text;
    uint16_t first, last;
  };
  for (const Case& c : std::vector<Case>{
           {"1-65535", 1, 65535}, {"8081", 8081, 8081}, {"10-10", 10, 10}, {"100-200", 100, 200}}) {
    absl::StatusOr<std::pair<uint16_t, uint16_t>> range = ParsePortRange(c.text);
    ASSERT_TRUE(range.ok()) << c.text << ": " << range.status();
    EXPECT_EQ(range->first, c.first) << c.text;
    EXPECT_EQ(range->second, c.last) << c.text;
  }
  for (const char* text : {"", "0", "0-10", "10-5", "1-65536", "-5", "5-", "a-b", "1-2-3"}) {
    EXPECT_FALSE(ParsePortRange(text).ok()) << text;
  }
}

TEST(KnockTarget, CountsAndNamesItsAttempts) {
  KnockTarget target;
  target.source = *ParseIpAddress("81.2.69.142");
  target.address = kLoopback;
  EXPECT_EQ(target.Attempts(), 65535u);
  EXPECT_EQ(target.Text(), "81.2.69.142>127.0.0.1:1-65535");
  target.first_port = target.last_port = 18232;
  target.repeat = 3;
  EXPECT_EQ(target.Attempts(), 3u);
  EXPECT_EQ(target.Text(), "81.2.69.142>127.0.0.1:18232*3");
}

// `count` consecutive ports on 127.0.0.1, each held by a socket bound but
// not listening: a SYN to any of them is answered with a reset.
struct HeldPorts {
  uint16_t first = 0;
  std::vector<UniqueFd> sockets;
};

HeldPorts HoldPorts(int count) {
  // Below the ephemeral range (32768 up by default), in steps of 97.
  for (int base = 20011; base + count < 32768; base += 97) {
    HeldPorts held;
    held.first = static_cast<uint16_t>(base);
    for (int i = 0; i < count; ++i) {
      UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<uint16_t>(base + i));
      address.sin_addr.s_addr = htonl(0x7f000001);
      if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) break;
      held.sockets.push_back(std::move(fd));
    }
    if (static_cast<int>(held.sockets.size()) == count) return held;
  }
  return {};
}

TEST(RunKnocks, CountsRefusedAndOpenPortsExactly) {
  const HeldPorts held = HoldPorts(20);
  ASSERT_EQ(held.sockets.size(), 20u) << "found no 20 free consecutive ports";
  AcceptTally tally;  // first: it outlives the listener's accepting threads
  absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Open(Endpoint{kLoopback, 0});
  ASSERT_TRUE(listener.ok()) << listener.status();
  (*listener)->Start(1, &tally, 0);

  KnockTarget scan;  // every held port, from two loopback sources
  scan.address = kLoopback;
  scan.first_port = held.first;
  scan.last_port = static_cast<uint16_t>(held.first + 19);
  std::vector<KnockTarget> targets;
  for (const char* source : {"127.2.0.1", "127.2.0.2"}) {
    scan.source = *ParseIpAddress(source);
    targets.push_back(scan);
  }
  KnockTarget refused = scan;  // one held port, five times
  refused.last_port = refused.first_port;
  refused.repeat = 5;
  targets.push_back(refused);
  KnockTarget open;  // the listener, three times
  open.address = kLoopback;
  open.first_port = open.last_port = (*listener)->endpoint().port;
  open.repeat = 3;
  targets.push_back(open);

  std::vector<Endpoint> opened;
  KnockResult result;
  const absl::Status status =
      RunKnocks(targets, /*rate=*/0, absl::Now() + absl::Seconds(20), &result,
                [&](const Endpoint& destination) { opened.push_back(destination); });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(result.attempts, 48u);
  EXPECT_EQ(result.refused, 45u);
  EXPECT_EQ(result.open, 3u);
  ASSERT_EQ(opened.size(), 3u);
  EXPECT_EQ(opened[0], (*listener)->endpoint());
  EXPECT_TRUE(tally.AwaitAtLeast({3}, absl::Now() + absl::Seconds(10)));
}

TEST(RunKnocks, KeepsToItsRate) {
  const HeldPorts held = HoldPorts(1);
  ASSERT_EQ(held.sockets.size(), 1u);
  KnockTarget target;
  target.address = kLoopback;
  target.first_port = target.last_port = held.first;
  target.repeat = 101;
  KnockResult result;
  const absl::Time start = absl::Now();
  ASSERT_TRUE(RunKnocks({target}, /*rate=*/500, absl::Now() + absl::Seconds(20), &result).ok());
  // Attempt n no earlier than n / 500 s after the first: 100 / 500 = 0.2 s.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
  EXPECT_EQ(result.refused, 101u);
}

TEST(RunKnocks, StopsAtTheDeadlineAndSaysHowFarItGot) {
  const HeldPorts held = HoldPorts(1);
  ASSERT_EQ(held.sockets.size(), 1u);
  KnockTarget target;
  target.address = kLoopback;
  target.first_port = target.last_port = held.first;
  target.repeat = 1000;
  KnockResult result;
  const absl::Status status =
      RunKnocks({target}, /*rate=*/100, absl::Now() + absl::Milliseconds(300), &result);
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_GT(result.attempts, 0u);
  EXPECT_LT(result.attempts, 1000u);
}

TEST(RunKnocks, SaysWhichSourceCannotBeBound) {
  KnockTarget target;
  target.source = *ParseIpAddress("192.0.2.1");  // not on this machine
  target.address = kLoopback;
  target.first_port = target.last_port = 9;
  KnockResult result;
  const absl::Status status = RunKnocks({target}, 0, absl::Now() + absl::Seconds(5), &result);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("bind(192.0.2.1)"), absl::string_view::npos) << status;
  EXPECT_EQ(result.refused, 0u);
}

}  // namespace
}  // namespace geoip
