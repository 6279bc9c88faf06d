// The storm and its parts on this machine's loopback, on ports the kernel
// picks: no root, no namespace.
#include "tools/load/storm.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "tools/load/listener.h"
#include "tools/load/socket.h"

namespace geoip {
namespace {

const IpAddress kLoopback = IpAddress::V4(0x7f000001);

TEST(SourcePool, CyclesOverThePrefixesHostsOnly) {
  absl::StatusOr<SourcePool> pool = SourcePool::Parse("10.1.2.3/30,192.0.2.0/24");
  ASSERT_TRUE(pool.ok()) << pool.status();
  // Two host addresses in a /30; the /24 gives as many as the smallest.
  ASSERT_EQ(pool->Size(), 4u);
  const std::vector<std::string> expected = {"10.1.2.1", "192.0.2.1", "10.1.2.2", "192.0.2.2",
                                             "10.1.2.1"};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(FormatIpAddress(pool->Address(i)), expected[i]) << i;
  }
}

TEST(SourcePool, SixteenSlashSixteensGiveAMillionAddresses) {
  std::string text;
  for (int i = 1; i <= 16; ++i) text += std::to_string(i) + ".0.0.0/16,";
  absl::StatusOr<SourcePool> pool = SourcePool::Parse(text);
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ(pool->Size(), 16u * 65534);
  EXPECT_EQ(FormatIpAddress(pool->Address(16 * 65534 - 1)), "16.0.255.254");
}

TEST(SourcePool, RejectsWhatIsNotAnIpv4Prefix) {
  for (const char* text : {"", ",", "10.0.0.0", "10.0.0.0/7", "10.0.0.0/31", "10.0.0.0/x",
                           "2001:db8::/64", "10.0.0/16", "10.0.0.0/16,bogus"}) {
    EXPECT_FALSE(SourcePool::Parse(text).ok()) << text;
  }
}

TEST(SourcePool, SingleIsOneAddressOfEitherFamily) {
  const SourcePool v6 = SourcePool::Single(*ParseIpAddress("2001:4860:4860::8888"));
  EXPECT_EQ(v6.Size(), 1u);
  EXPECT_EQ(FormatIpAddress(v6.Address(0)), "2001:4860:4860::8888");
  EXPECT_EQ(FormatIpAddress(v6.Address(12345)), "2001:4860:4860::8888");
}

TEST(AcceptTally, WaitsForEveryListenersTarget) {
  AcceptTally tally(2);
  EXPECT_FALSE(tally.AwaitAtLeast({1, 0}, absl::Now() + absl::Milliseconds(20)));
  std::thread adder([&] {
    for (int i = 0; i < 1000; ++i) tally.Add(i % 2);
  });
  EXPECT_TRUE(tally.AwaitAtLeast({500, 500}, absl::Now() + absl::Seconds(10)));
  adder.join();
  EXPECT_EQ(tally.Accepted(0), 500u);
  EXPECT_EQ(tally.Accepted(1), 500u);
  EXPECT_EQ(tally.Total(), 1000u);
}

TEST(Listener, CountsAndHandsOverEveryConnection) {
  AcceptTally tally;  // first: it outlives the listener's accepting threads
  absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Open(Endpoint{kLoopback, 0});
  ASSERT_TRUE(listener.ok()) << listener.status();
  const Endpoint endpoint = (*listener)->endpoint();
  EXPECT_NE(endpoint.port, 0);
  EXPECT_TRUE((*listener)->Receives(endpoint));
  EXPECT_FALSE(
      (*listener)->Receives(Endpoint{kLoopback, static_cast<uint16_t>(endpoint.port + 1)}));
  std::atomic<int> loopback_peers{0};
  (*listener)->Start(4, &tally, 0, [&](int, const Endpoint& peer) {
    if (peer.address == kLoopback) ++loopback_peers;
  });
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<UniqueFd> client = Connect(endpoint, kLoopback, absl::Now() + absl::Seconds(10));
    ASSERT_TRUE(client.ok()) << client.status();
  }
  EXPECT_TRUE(tally.AwaitAtLeast({50}, absl::Now() + absl::Seconds(10)));
  (*listener)->Stop();
  EXPECT_EQ(tally.Total(), 50u);
  EXPECT_EQ(loopback_peers.load(), 50);
}

TEST(Listener, DualStackReceivesIpv4) {
  absl::StatusOr<std::unique_ptr<Listener>> listener =
      Listener::Open(Endpoint{*ParseSocketAddress("::"), 0});
  ASSERT_TRUE(listener.ok()) << listener.status();
  const uint16_t port = (*listener)->endpoint().port;
  EXPECT_TRUE((*listener)->Receives(Endpoint{kLoopback, port}));
  EXPECT_TRUE((*listener)->Receives(Endpoint{*ParseSocketAddress("::1"), port}));
}

TEST(Connect, SaysWhichSourceCannotBeBound) {
  absl::StatusOr<UniqueFd> client =
      Connect(Endpoint{kLoopback, 9}, *ParseIpAddress("192.0.2.1"), absl::Now() + absl::Seconds(5));
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.status().message().find("bind(192.0.2.1)"), absl::string_view::npos)
      << client.status();
}

TEST(Connect, RefusesOnceTheDeadlineHasPassed) {
  EXPECT_TRUE(absl::IsDeadlineExceeded(
      Connect(Endpoint{kLoopback, 9}, std::nullopt, absl::Now() - absl::Seconds(1)).status()));
}

TEST(RunStorm, EveryConnectionIsAcceptedInEachMode) {
  struct Mode {
    StormClose close;
    bool one_thread;
  };
  for (const Mode mode : {Mode{StormClose::kReset, false}, Mode{StormClose::kFin, false},
                          Mode{StormClose::kReset, true}}) {
    StormOptions options;
    options.count = 500;
    options.close = mode.close;
    options.one_thread = mode.one_thread;
    options.timeout = absl::Seconds(30);
    StormResult result;
    const absl::Status status = RunStorm(options, &result);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(result.made, 500u);
    EXPECT_EQ(result.accepted, 500u);
    EXPECT_GT(result.AcceptsPerSecond(), 0);
  }
}

TEST(RunStorm, FromSourceAddressesOfLoopback) {
  // All of 127/8 is loopback's, so any of it can be bound without root.
  absl::StatusOr<SourcePool> sources = SourcePool::Parse("127.1.0.0/24,127.2.0.0/24");
  ASSERT_TRUE(sources.ok()) << sources.status();
  StormOptions options;
  options.count = 600;  // more than the 508 addresses: the pool wraps
  options.sources = &*sources;
  StormResult result;
  const absl::Status status = RunStorm(options, &result);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(result.accepted, 600u);
}

TEST(RunStorm, StopsWhenTold) {
  std::atomic<bool> stop{true};
  StormOptions options;
  options.count = 1'000'000;
  options.stop = &stop;
  StormResult result;
  EXPECT_TRUE(RunStorm(options, &result).ok());
  EXPECT_EQ(result.made, 0u);
}

TEST(RunStorm, ReportsWhatItMadeWhenAConnectionFails) {
  // An IPv6 source for an IPv4 listener: the first bind fails.
  const SourcePool wrong = SourcePool::Single(*ParseIpAddress("::1"));
  StormOptions options;
  options.count = 10;
  options.sources = &wrong;
  StormResult result;
  const absl::Status status = RunStorm(options, &result);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("connection 1: "), absl::string_view::npos) << status;
  EXPECT_EQ(result.made, 0u);
}

}  // namespace
}  // namespace geoip
