// Transfers between this process's own clients and listeners on loopback,
// on ports the kernel picks: no root, no namespace.
#include "tools/load/transfer.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <memory>
#include <mutex>
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

TEST(ParseTransferPlan, ReadsEachOptionInAnyOrder) {
  absl::StatusOr<TransferPlan> plan =
      ParseTransferPlan("receive=3145728/hold=1.5s/send=1048576/steps=4");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->send_bytes, 1048576u);
  EXPECT_EQ(plan->receive_bytes, 3145728u);
  EXPECT_EQ(plan->hold, absl::Milliseconds(1500));
  EXPECT_EQ(plan->steps, 4);
  EXPECT_EQ(plan->Text(), "send=1048576/receive=3145728/hold=1.5s/steps=4");

  plan = ParseTransferPlan("");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->send_bytes, 0u);
  EXPECT_EQ(plan->receive_bytes, 0u);
  EXPECT_EQ(plan->hold, absl::ZeroDuration());
  EXPECT_EQ(plan->steps, 1);

  plan = ParseTransferPlan("hold=50ms");
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->hold, absl::Milliseconds(50));
}

TEST(ParseTransferPlan, RejectsWhatCannotBeCarriedOut) {
  for (const char* options : {
           "sent=5",                                    // unknown option
           "send=5/send=6",                             // twice
           "send=-1", "send=x", "receive=68719476737",  // not a count, or past 64 GiB
           "hold=-1s", "hold=1", "hold=inf",            // no unit, negative, endless
           "steps=0", "steps=1001",
           "receive=5",                    // asks without sending the request line
           "send=3/receive=5",             // "3 5\n" is 4 bytes, more than the 3 sent
           "send=30/receive=40/steps=10",  // each step sends 3 bytes; "3 4\n" is 4
       }) {
    EXPECT_FALSE(ParseTransferPlan(options).ok()) << options;
  }
  // The request line exactly filling the upload is fine.
  EXPECT_TRUE(ParseTransferPlan("send=4/receive=5").ok());
  EXPECT_TRUE(ParseTransferPlan("send=40/receive=40/steps=10").ok());  // "4 4\n" each
  EXPECT_FALSE(ParseTransferPlan("send=7/steps=2").ok());              // "3 0\n" is 4 bytes, not 3
}

TEST(TransferStepShare, SplitsEvenlyWithTheRemainderLast) {
  EXPECT_EQ(TransferStepShare(10, 1, 3), 3u);
  EXPECT_EQ(TransferStepShare(10, 2, 3), 3u);
  EXPECT_EQ(TransferStepShare(10, 3, 3), 4u);
  EXPECT_EQ(TransferStepShare(0, 1, 1), 0u);
  EXPECT_EQ(TransferStepShare(7, 1, 1), 7u);
  EXPECT_EQ(TransferRequestLine(1048576, 3145728), "1048576 3145728\n");
}

// A listener on 127.0.0.1 whose acceptors serve transfers and keep what
// each connection's kernel counted before it closed.
class TransferServer {
 public:
  struct Served {
    absl::Status status;
    TransferTotals totals;
    uint64_t kernel_bytes_received = 0;  // tcp_info, at the client's FIN
    uint64_t kernel_bytes_acked = 0;
    absl::Duration lifetime;  // accept to the client's FIN
  };

  TransferServer() {
    absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Open(Endpoint{kLoopback, 0});
    EXPECT_TRUE(listener.ok()) << listener.status();
    listener_ = *std::move(listener);
    listener_->Start(8, &tally_, 0, [this](int fd, const Endpoint&) {
      const absl::Time start = absl::Now();
      Served served;
      served.status = ServeTransfer(fd, absl::Now() + absl::Seconds(20), &stop_, &served.totals);
      served.lifetime = absl::Now() - start;
      tcp_info info{};
      socklen_t length = sizeof(info);
      if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) == 0) {
        served.kernel_bytes_received = info.tcpi_bytes_received;
        served.kernel_bytes_acked = info.tcpi_bytes_acked;
      }
      std::lock_guard<std::mutex> lock(mu_);
      served_.push_back(served);
    });
  }
  ~TransferServer() { Stop(); }

  void Stop() {
    stop_.store(true);
    listener_->Stop();
  }
  const Endpoint& endpoint() const { return listener_->endpoint(); }

  // What was served, once `count` connections are done (or 10 s passed).
  std::vector<Served> AwaitServed(size_t count) {
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (served_.size() >= count) return served_;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    std::lock_guard<std::mutex> lock(mu_);
    return served_;
  }

 private:
  AcceptTally tally_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<Served> served_;
  std::unique_ptr<Listener> listener_;  // last: its threads stop first
};

TEST(RunTransfer, MovesExactlyThePlannedBytesBothWays) {
  TransferServer server;
  struct Case {
    const char* source;
    TransferPlan plan;
  };
  const std::vector<Case> cases = {
      {"127.1.0.1", {1048576, 3145728}},  // more than the socket buffers hold
      {"127.1.0.2", {300, 700}},
      {"127.1.0.3", {0, 0}},
      {"127.1.0.4", {65536, 0}},
  };
  std::vector<absl::StatusOr<TransferTotals>> results(cases.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < cases.size(); ++i) {
    clients.emplace_back([&, i] {
      results[i] = RunTransfer(server.endpoint(), *ParseIpAddress(cases[i].source), cases[i].plan,
                               absl::Now() + absl::Seconds(20));
    });
  }
  for (std::thread& client : clients) client.join();
  uint64_t sent = 0, received = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << cases[i].source << ": " << results[i].status();
    EXPECT_EQ(results[i]->sent, cases[i].plan.send_bytes) << cases[i].source;
    EXPECT_EQ(results[i]->received, cases[i].plan.receive_bytes) << cases[i].source;
    sent += cases[i].plan.send_bytes;
    received += cases[i].plan.receive_bytes;
  }
  // Each client returns only after the server closed: all are served.
  const std::vector<TransferServer::Served> served = server.AwaitServed(cases.size());
  ASSERT_EQ(served.size(), cases.size());
  uint64_t server_received = 0, server_sent = 0;
  for (const TransferServer::Served& one : served) {
    EXPECT_TRUE(one.status.ok()) << one.status;
    server_received += one.totals.received;
    server_sent += one.totals.sent;
    // What the kernel counted for the accepted socket is the payload, plus
    // one for the client's FIN, which takes a sequence number (bytes_received
    // is RFC 4898's sum of advances of rcv_nxt). The server's own FIN is not
    // sent yet: bytes_acked is the payload alone here. A probe that reports
    // payload bytes must not count the FINs.
    EXPECT_EQ(one.kernel_bytes_received, one.totals.received + 1);
    EXPECT_EQ(one.kernel_bytes_acked, one.totals.sent);
  }
  EXPECT_EQ(server_received, sent);
  EXPECT_EQ(server_sent, received);
}

TEST(RunTransfer, ReportsEachStepOnceItsUploadIsAcknowledged) {
  TransferServer server;
  TransferPlan plan;
  plan.send_bytes = 4 * 100000 + 3;
  plan.receive_bytes = 4 * 300000 + 1;
  plan.steps = 4;
  plan.hold = absl::Milliseconds(200);
  std::vector<std::pair<int, TransferTotals>> steps;
  const absl::Time start = absl::Now();
  absl::StatusOr<TransferTotals> result = RunTransfer(
      server.endpoint(), kLoopback, plan, absl::Now() + absl::Seconds(20),
      [&](int step, const TransferTotals& so_far) { steps.emplace_back(step, so_far); });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GE(absl::Now() - start, plan.hold);
  ASSERT_EQ(steps.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(steps[i].first, i + 1);
    EXPECT_EQ(steps[i].second.sent, (i + 1) * 100000u + (i == 3 ? 3 : 0));
    EXPECT_EQ(steps[i].second.received, (i + 1) * 300000u + (i == 3 ? 1 : 0));
  }
  const std::vector<TransferServer::Served> served = server.AwaitServed(1);
  ASSERT_EQ(served.size(), 1u);
  EXPECT_TRUE(served[0].status.ok()) << served[0].status;
  EXPECT_EQ(served[0].totals.received, plan.send_bytes);
  EXPECT_EQ(served[0].totals.sent, plan.receive_bytes);
}

TEST(RunTransfer, HoldsAnEmptyConnectionOpenForItsHold) {
  TransferServer server;
  TransferPlan plan;
  plan.hold = absl::Milliseconds(150);
  absl::StatusOr<TransferTotals> result =
      RunTransfer(server.endpoint(), std::nullopt, plan, absl::Now() + absl::Seconds(20));
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<TransferServer::Served> served = server.AwaitServed(1);
  ASSERT_EQ(served.size(), 1u);
  EXPECT_TRUE(served[0].status.ok()) << served[0].status;
  EXPECT_EQ(served[0].totals.received, 0u);
  EXPECT_EQ(served[0].totals.sent, 0u);
  // The server's socket lives from before the client's hold to after it.
  EXPECT_GE(served[0].lifetime, absl::Milliseconds(140));
  EXPECT_LT(served[0].lifetime, absl::Seconds(5));
}

TEST(RunTransfer, FailsWhenTheServerClosesEarly) {
  AcceptTally tally;  // first: it outlives the listener's accepting threads
  absl::StatusOr<std::unique_ptr<Listener>> listener = Listener::Open(Endpoint{kLoopback, 0});
  ASSERT_TRUE(listener.ok()) << listener.status();
  (*listener)->Start(1, &tally, 0);  // accepts and closes at once
  TransferPlan plan;
  plan.send_bytes = 100;
  plan.receive_bytes = 1000;
  const absl::Time start = absl::Now();
  absl::StatusOr<TransferTotals> result =
      RunTransfer((*listener)->endpoint(), std::nullopt, plan, absl::Now() + absl::Seconds(20));
  EXPECT_FALSE(result.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(RunTransfer, AHoldPastTheDeadlineFailsAtOnce) {
  TransferServer server;
  TransferPlan plan;
  plan.hold = absl::Seconds(30);
  const absl::Time start = absl::Now();
  absl::StatusOr<TransferTotals> result =
      RunTransfer(server.endpoint(), std::nullopt, plan, absl::Now() + absl::Seconds(1));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST(ServeTransfer, RejectsABadRequestLineAndStopsWhenTold) {
  TransferServer server;
  absl::StatusOr<UniqueFd> bad =
      Connect(server.endpoint(), std::nullopt, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(bad.ok()) << bad.status();
  ASSERT_EQ(send(bad->get(), "hello world\n", 12, MSG_NOSIGNAL), 12);
  std::vector<TransferServer::Served> served = server.AwaitServed(1);
  ASSERT_EQ(served.size(), 1u);
  EXPECT_TRUE(absl::IsInvalidArgument(served[0].status)) << served[0].status;

  // A client that says nothing: the server waits, until it is stopped.
  absl::StatusOr<UniqueFd> idle =
      Connect(server.endpoint(), std::nullopt, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(idle.ok()) << idle.status();
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(server.AwaitServed(0).size(), 1u);
  const absl::Time start = absl::Now();
  server.Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  served = server.AwaitServed(2);
  ASSERT_EQ(served.size(), 2u);
  EXPECT_TRUE(absl::IsCancelled(served[1].status)) << served[1].status;
}

}  // namespace
}  // namespace geoip
