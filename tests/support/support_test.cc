// Tests of the end-to-end test helpers, and of ebpf_geoip_traffic run the
// way the end-to-end tests run it: inside a namespace with world addresses.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "exporter/util/proc_status.h"
#include "gtest/gtest.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tests/support/netns.h"
#include "tests/support/process.h"
#include "tests/support/storm_line.h"
#include "tools/blocked_accept.h"

namespace geoip {
namespace {

constexpr char kTraffic[] = GEOIP_TRAFFIC_BINARY;

#define SKIP_UNLESS_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root for namespaces"

// True once pid has ended: gone, or a zombie nobody has reaped yet.
bool HasEnded(int pid) {
  absl::StatusOr<ProcStat> stat = ProcStat::Read(pid);
  return !stat.ok() || stat->state() == 'Z';
}

// Waits (bounded) for pid to end; SIGKILL takes a moment to land.
bool EndsWithin(int pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!HasEnded(pid)) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

std::vector<std::string> SortedLines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  std::sort(lines.begin(), lines.end());
  return lines;
}

TEST(ChildProcess, CapturesOutputAndExitCode) {
  absl::StatusOr<ChildProcess> child =
      ChildProcess::Spawn({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(child.ok()) << child.status();
  absl::StatusOr<int> code = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 3);
  EXPECT_EQ(child->Stdout(), "out\n");
  EXPECT_EQ(child->Stderr(), "err\n");
}

TEST(ChildProcess, ReportsSignalAs128PlusNumber) {
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn({"sleep", "30"});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE(child->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = child->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGTERM);
  EXPECT_FALSE(child->Signal(SIGTERM).ok());  // reaped: no stray signal to a reused pid
}

TEST(ChildProcess, WaitTimesOutAndDestructorKills) {
  int pid = 0;
  {
    absl::StatusOr<ChildProcess> child = ChildProcess::Spawn({"sleep", "30"});
    ASSERT_TRUE(child.ok()) << child.status();
    pid = child->pid();
    const absl::Time start = absl::Now();
    absl::StatusOr<int> code = child->Wait(absl::Milliseconds(100));
    EXPECT_TRUE(absl::IsDeadlineExceeded(code.status())) << code.status();
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
    EXPECT_FALSE(HasEnded(pid));
  }
  // The destructor reaped it, so the pid is gone, not a zombie.
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_EQ(errno, ESRCH);
}

TEST(ChildProcess, MovesOwnership) {
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn({"sh", "-c", "echo moved"});
  ASSERT_TRUE(child.ok()) << child.status();
  ChildProcess owner = std::move(*child);
  absl::StatusOr<int> code = owner.Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(owner.Stdout(), "moved\n");
}

TEST(ChildProcess, ReportsMissingBinary) {
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn({"/nonexistent/geoip-binary"});
  EXPECT_TRUE(absl::IsNotFound(child.status())) << child.status();
}

TEST(RunCommand, KillsWhatTheCommandStartedOnTimeout) {
  // The shell prints its background child's pid, then hangs.
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> result =
      RunCommand({"sh", "-c", "sleep 30 & echo $!; wait"}, absl::Milliseconds(300));
  ASSERT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  absl::string_view message = result.status().message();
  size_t at = message.find("stdout: '");
  ASSERT_NE(at, absl::string_view::npos) << message;
  message.remove_prefix(at + 9);
  int background = 0;
  ASSERT_TRUE(absl::SimpleAtoi(message.substr(0, message.find('\n')), &background)) << message;
  EXPECT_TRUE(EndsWithin(background, absl::Seconds(5)));
}

TEST(RunCommand, KillsLeftoversWhenTheLeaderExits) {
  absl::StatusOr<CommandResult> result =
      RunCommand({"sh", "-c", "sleep 30 & echo $!"}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  int background = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripSuffix(result->stdout_text, "\n"), &background));
  EXPECT_TRUE(EndsWithin(background, absl::Seconds(5)));
}

TEST(Traffic, RejectsBadFlagsWithExitCode2) {
  for (const char* flag :
       {"--connect=::1:80", "--listen=127.0.0.1", "--bogus", "--connect=81.2.69.142>[::1]:80",
        "--count=5", "--timeout=0", "--acceptors=0", "--acceptors=257"}) {
    absl::StatusOr<CommandResult> result = RunCommand({kTraffic, flag}, absl::Seconds(10));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << flag;
    EXPECT_EQ(result->stdout_text, "") << flag;
    EXPECT_TRUE(absl::StrContains(result->stderr_text, "see --help")) << flag;
  }
}

TEST(TestNamespace, RunsTrafficFromWorldAddresses) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  ASSERT_TRUE(ns->AddAddress("2001:4860:4860::8888").ok());
  // A fresh namespace has every port free, so fixed ports are safe.
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--listen=127.0.0.1:8081,[::]:8083", "--verbose",
               "--connect=81.2.69.142>127.0.0.1:8081*3,2001:4860:4860::8888>[::1]:8083*2,"
               "81.2.69.142>127.0.0.1:8083*2"},
              absl::Seconds(20));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_EQ(result->stdout_text, "connections made=7 accepted=7\n");
  // The peers are the namespace's world addresses; IPv4 on the dual-stack
  // listener is IPv4-mapped.
  EXPECT_EQ(SortedLines(result->stderr_text), (std::vector<std::string>{
                                                  "accepted 2001:4860:4860::8888 on [::]:8083",
                                                  "accepted 2001:4860:4860::8888 on [::]:8083",
                                                  "accepted 81.2.69.142 on 127.0.0.1:8081",
                                                  "accepted 81.2.69.142 on 127.0.0.1:8081",
                                                  "accepted 81.2.69.142 on 127.0.0.1:8081",
                                                  "accepted ::ffff:81.2.69.142 on [::]:8083",
                                                  "accepted ::ffff:81.2.69.142 on [::]:8083",
                                              }));
}

TEST(TestNamespace, TrafficExchangesHttp) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--listen=127.0.0.1:8081", "--http", "--words=a,b",
               "--connect=81.2.69.142>127.0.0.1:8081*2"},
              absl::Seconds(20));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_EQ(result->stdout_text, "connections made=2 accepted=2\n");
}

TEST(TestNamespace, TrafficFailsWhenAConnectionFails) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  // Nobody listens on 8082; 192.0.2.1 is not an address of the namespace.
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--listen=127.0.0.1:8081",
               "--connect=81.2.69.142>127.0.0.1:8081,81.2.69.142>127.0.0.1:8082,"
               "192.0.2.1>127.0.0.1:8081"},
              absl::Seconds(20));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->stdout_text, "connections made=1 accepted=1\n");
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "127.0.0.1:8082 #1")) << result->stderr_text;
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "bind(192.0.2.1)")) << result->stderr_text;
}

TEST(TestNamespace, StartedServerAnswersUntilSignalled) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("2001:4860:4860::8888").ok());
  absl::StatusOr<ChildProcess> server =
      ns->Start({kTraffic, "--listen=[::1]:8082", "--http", "--timeout=30"});
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(server->Stderr(), "listening") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(server->Stderr(), "listening\n");
  absl::StatusOr<CommandResult> client = ns->Run(
      {kTraffic, "--http", "--connect=2001:4860:4860::8888>[::1]:8082*3"}, absl::Seconds(20));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->exit_code, 0) << client->stderr_text;
  EXPECT_EQ(client->stdout_text, "connections made=3 accepted=0\n");
  ASSERT_TRUE(server->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = server->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(server->Stdout(), "connections made=0 accepted=3\n");
}

// Threads of pid asleep in accept() or accept4(), over all its listeners.
int BlockedAcceptors(int pid) {
  absl::StatusOr<std::map<int, int>> by_fd = BlockedAcceptorsByFd(pid);
  if (!by_fd.ok()) return -1;
  int blocked = 0;
  for (const auto& [fd, threads] : *by_fd) blocked += threads;
  return blocked;
}

TEST(TestNamespace, PreforkServerSaysListeningOnceEveryAcceptorIsInAccept) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ChildProcess> server = ns->Start(
      {kTraffic, "--listen=127.0.0.1:8081,[::]:8083", "--acceptors=64", "--http", "--timeout=30"});
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (!absl::StrContains(server->Stderr(), "listening") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(server->Stderr(), "listening\n");
  // No waiting here: the line itself promises all 128 are already blocked.
  EXPECT_EQ(BlockedAcceptors(server->pid()), 128);
  absl::StatusOr<CommandResult> client =
      ns->Run({kTraffic, "--http",
               "--connect=81.2.69.142>127.0.0.1:8081*100,81.2.69.142>127.0.0.1:8083*50"},
              absl::Seconds(20));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->stdout_text, "connections made=150 accepted=0\n");
  ASSERT_TRUE(server->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = server->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(server->Stdout(), "connections made=0 accepted=150\n");
}

TEST(Traffic, RejectsBadTransferRefusedAndScanFlagsWithExitCode2) {
  for (const char* flag :
       {"--transfer=127.0.0.1:80/send=3/receive=5", "--transfer=127.0.0.1:80/bogus=1",
        "--transfer=127.0.0.1:80*1025", "--refused=127.0.0.1", "--scan=::1", "--scan=127.0.0.1:0-9",
        "--rate=100", "--serve-transfers"}) {
    absl::StatusOr<CommandResult> result = RunCommand({kTraffic, flag}, absl::Seconds(10));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << flag;
    EXPECT_EQ(result->stdout_text, "") << flag;
    EXPECT_TRUE(absl::StrContains(result->stderr_text, "see --help")) << flag;
  }
}

TEST(TestNamespace, TrafficTransfersKnownBytesAndReportsSteps) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  ASSERT_TRUE(ns->AddAddress("2001:4860:4860::8888").ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--listen=127.0.0.1:8081,[::]:8083",
               "--transfer=81.2.69.142>127.0.0.1:8081*2/send=1048576/receive=3145728,"
               "2001:4860:4860::8888>[::1]:8083/send=300/receive=700/steps=3/hold=300ms,"
               "81.2.69.142>127.0.0.1:8083*2",
               "--timeout=20"},
              absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
  // 2 x 1 MiB + 300 up, 2 x 3 MiB + 700 down; the third client's steps
  // carry a third each, the last the remainder.
  EXPECT_EQ(result->stdout_text,
            "transfer 3 step 1/3 sent=100 received=233\n"
            "transfer 3 step 2/3 sent=200 received=466\n"
            "transfer 3 step 3/3 sent=300 received=700\n"
            "transfers made=5 sent=2097452 received=6292156\n"
            "served transfers=5 failed=0 received=2097452 sent=6292156\n"
            "connections made=0 accepted=5\n");
}

TEST(TestNamespace, TrafficServesTransfersToAnotherProcess) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<ChildProcess> server =
      ns->Start({kTraffic, "--listen=127.0.0.1:8081", "--serve-transfers", "--timeout=30"});
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  while (!absl::StrContains(server->Stderr(), "listening") && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(server->Stderr(), "listening\n");
  // 64 acceptors by default when serving transfers: all 20 clients at once.
  EXPECT_EQ(BlockedAcceptors(server->pid()), 64);
  absl::StatusOr<CommandResult> client =
      ns->Run({kTraffic, "--transfer=81.2.69.142>127.0.0.1:8081*20/send=1000/receive=2000/hold=1s",
               "--timeout=20"},
              absl::Seconds(30));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(client->exit_code, 0) << client->stderr_text;
  EXPECT_EQ(client->stdout_text,
            "transfers made=20 sent=20000 received=40000\nconnections made=0 accepted=0\n");
  ASSERT_TRUE(server->Signal(SIGTERM).ok());
  absl::StatusOr<int> code = server->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(server->Stdout(),
            "served transfers=20 failed=0 received=20000 sent=40000\n"
            "connections made=0 accepted=20\n");
}

TEST(TestNamespace, TrafficCountsRefusedAttemptsAndScansBoundedRanges) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  ASSERT_TRUE(ns->AddAddress("2001:4860:4860::8888").ok());
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--listen=127.0.0.1:8081",
               "--refused=81.2.69.142>127.0.0.1:8082*3,2001:4860:4860::8888>[::1]:9999*2",
               "--scan=81.2.69.142>127.0.0.1:8000-8099,2001:4860:4860::8888>[::1]:8000-8099",
               "--rate=2000", "--timeout=20"},
              absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  const std::vector<std::string> lines = absl::StrSplit(result->stdout_text, '\n');
  ASSERT_EQ(lines.size(), 4u) << result->stdout_text;
  EXPECT_EQ(lines[0], "refused attempts=5 refused=5");
  EXPECT_TRUE(absl::StartsWith(lines[1], "scan attempts=200 refused=199 open=1 seconds="))
      << lines[1];
  EXPECT_EQ(lines[2], "connections made=0 accepted=1");

  // An attempt that is not refused fails --refused.
  result = ns->Run({kTraffic, "--listen=127.0.0.1:8081", "--refused=81.2.69.142>127.0.0.1:8081*2"},
                   absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_EQ(result->stdout_text, "refused attempts=2 refused=0\nconnections made=0 accepted=2\n");
  EXPECT_TRUE(absl::StrContains(result->stderr_text, "not refused")) << result->stderr_text;
}

TEST(TestNamespace, ServerStopsAtItsTimeout) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--listen=127.0.0.1:8081", "--timeout=0.5"}, absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->stdout_text, "connections made=0 accepted=0\n");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(TestNamespace, StormCountsEveryAccept) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  ASSERT_TRUE(ns->AddAddress("81.2.69.142").ok());
  absl::StatusOr<CommandResult> result =
      ns->Run({kTraffic, "--storm=81.2.69.142>127.0.0.1:8081", "--count=2000"}, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  absl::StatusOr<StormLine> storm = ParseStormLine(result->stdout_text);
  ASSERT_TRUE(storm.ok()) << storm.status();
  EXPECT_EQ(storm->made, 2000u);
  EXPECT_EQ(storm->accepted + storm->discarded, 2000u);
}

// Drops every `every`-th handshake-completing ACK sent to port in ns: the
// connection's second packet from its client (connbytes), a pure ACK. A
// later pure ACK (of the listener's FIN, when it closes first) is left
// alone, so exactly count / every handshakes lose their last ACK. A storm's
// client, which resets each connection right after connect(), then reaches
// the listener before that ACK, as when the two leave on different CPUs.
// The kernel discards those connections; the listener never sees them.
absl::Status DropHandshakeAcks(TestNamespace& ns, int port, int every) {
  const std::vector<std::string> rule = absl::StrSplit(
      absl::StrCat("iptables -A OUTPUT -p tcp --dport ", port,
                   " --tcp-flags ALL ACK -m connbytes --connbytes 2:2 --connbytes-dir original "
                   "--connbytes-mode packets -m statistic --mode nth --every ",
                   every, " --packet 0 -j DROP"),
      ' ');
  absl::StatusOr<CommandResult> added = ns.Run(rule, absl::Seconds(10));
  if (!added.ok()) return added.status();
  if (added->exit_code != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("iptables (apt-get install iptables): ", added->stderr_text));
  }
  return absl::OkStatus();
}

TEST(TestNamespace, StormReportsTheConnectionsTheKernelDiscardedBeforeAccept) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  const absl::Status drop = DropHandshakeAcks(*ns, 8081, 250);
  ASSERT_TRUE(drop.ok()) << drop;
  absl::StatusOr<CommandResult> result = ns->Run(
      {kTraffic, "--storm=127.0.0.1:8081", "--count=1000", "--timeout=20"}, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  absl::StatusOr<StormLine> storm = ParseStormLine(result->stdout_text);
  ASSERT_TRUE(storm.ok()) << storm.status();
  EXPECT_EQ(storm->made, 1000u);
  EXPECT_EQ(storm->accepted, 996u);
  EXPECT_EQ(storm->discarded, 4u);
}

TEST(TestNamespace, StormFailsWhenConnectionsGoMissingUnexplained) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  const absl::Status drop = DropHandshakeAcks(*ns, 8081, 250);
  ASSERT_TRUE(drop.ok()) << drop;
  // The clients' resets are dropped as well: the four connections whose
  // last ACK was lost stay half-made at the listener, and the kernel has
  // not discarded them (yet) when the storm's time is up.
  absl::StatusOr<CommandResult> dropped =
      ns->Run({"iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "8081", "--tcp-flags", "RST",
               "RST", "-j", "DROP"},
              absl::Seconds(10));
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  ASSERT_EQ(dropped->exit_code, 0) << dropped->stderr_text;
  absl::StatusOr<CommandResult> result = ns->Run(
      {kTraffic, "--storm=127.0.0.1:8081", "--count=1000", "--timeout=5"}, absl::Seconds(30));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_TRUE(absl::StrContains(result->stderr_text,
                                "made 1000 connections but accepted 996, and the kernel "
                                "discarded at most 0 before accept"))
      << result->stderr_text;
  absl::StatusOr<StormLine> storm = ParseStormLine(result->stdout_text);
  ASSERT_TRUE(storm.ok()) << storm.status();
  EXPECT_EQ(storm->discarded, 0u);
}

TEST(TestNamespace, TimeoutKillsAHungCommand) {
  SKIP_UNLESS_ROOT();
  absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
  ASSERT_TRUE(ns.ok()) << ns.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandResult> result = ns->Run({"sleep", "30"}, absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  absl::StatusOr<std::vector<int>> pids = ns->Pids();
  ASSERT_TRUE(pids.ok()) << pids.status();
  EXPECT_TRUE(pids->empty());
}

TEST(TestNamespace, DestructorKillsLeftoversAndDeletesIt) {
  SKIP_UNLESS_ROOT();
  std::string name;
  // The handle outlives the namespace, so only the namespace's destructor
  // can have killed the process.
  absl::StatusOr<ChildProcess> leftover = absl::UnknownError("not started");
  {
    absl::StatusOr<TestNamespace> ns = TestNamespace::Create();
    ASSERT_TRUE(ns.ok()) << ns.status();
    name = ns->name();
    EXPECT_TRUE(absl::StartsWith(name, absl::StrCat("geoip-test-", getpid(), "-"))) << name;
    EXPECT_EQ(access(("/run/netns/" + name).c_str(), F_OK), 0);
    leftover = ns->Start({"sleep", "30"});
    ASSERT_TRUE(leftover.ok()) << leftover.status();
    // `ip netns exec` enters the namespace just after it starts.
    absl::StatusOr<std::vector<int>> pids;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    do {
      pids = ns->Pids();
      ASSERT_TRUE(pids.ok()) << pids.status();
      if (pids->empty()) absl::SleepFor(absl::Milliseconds(10));
    } while (pids->empty() && absl::Now() < deadline);
    ASSERT_EQ(*pids, std::vector<int>{leftover->pid()});
  }
  EXPECT_NE(access(("/run/netns/" + name).c_str(), F_OK), 0);
  absl::StatusOr<CommandResult> list = RunCommand({"ip", "netns", "list"}, absl::Seconds(10));
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_FALSE(absl::StrContains(list->stdout_text, name)) << list->stdout_text;
  absl::StatusOr<int> code = leftover->Wait(absl::Seconds(5));
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 128 + SIGKILL);
}

// Serves one canned reply on 127.0.0.1 and keeps the request it got.
class OneShotServer {
 public:
  explicit OneShotServer(std::string reply, bool answer = true) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), length);
    listen(fd_, 4);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    if (!answer) return;  // the backlog takes the connection; nobody replies
    thread_ = std::thread([this, reply] {
      int connection = accept(fd_, nullptr, nullptr);
      if (connection < 0) return;
      timeval tv = {5, 0};
      setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      char buffer[1024];
      while (!absl::StrContains(request_, "\r\n\r\n")) {
        ssize_t n = recv(connection, buffer, sizeof(buffer), 0);
        if (n <= 0) break;
        request_.append(buffer, static_cast<size_t>(n));
      }
      send(connection, reply.data(), reply.size(), MSG_NOSIGNAL);
      close(connection);
    });
  }
  ~OneShotServer() {
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }

  uint16_t port() const { return port_; }
  // The request; read it only after HttpGet returned.
  const std::string& request() const { return request_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string request_;
  std::thread thread_;
};

TEST(HttpGet, ReturnsStatusHeadersAndBody) {
  OneShotServer server(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
      "Content-Length: 5\r\n\r\nhello");
  absl::StatusOr<HttpReply> response =
      HttpGet("127.0.0.1", server.port(), "/metrics", absl::Seconds(10));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers.at("content-type"), "text/plain; version=0.0.4");
  EXPECT_EQ(response->body, "hello");
  EXPECT_EQ(server.request(), "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
}

TEST(HttpGet, ReturnsErrorStatusesAsResponses) {
  OneShotServer server("HTTP/1.0 404 Not Found\r\n\r\nnope\n");
  absl::StatusOr<HttpReply> response =
      HttpGet("127.0.0.1", server.port(), "/missing", absl::Seconds(10));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->body, "nope\n");
}

TEST(HttpGet, RejectsTruncatedBody) {
  OneShotServer server("HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\nshort");
  absl::StatusOr<HttpReply> response = HttpGet("127.0.0.1", server.port(), "/", absl::Seconds(10));
  EXPECT_TRUE(absl::IsDataLoss(response.status())) << response.status();
}

TEST(HttpGet, TimesOutOnSilentServer) {
  OneShotServer server("", /*answer=*/false);
  const absl::Time start = absl::Now();
  absl::StatusOr<HttpReply> response =
      HttpGet("127.0.0.1", server.port(), "/", absl::Milliseconds(200));
  EXPECT_TRUE(absl::IsDeadlineExceeded(response.status())) << response.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST(HttpGet, RefusesNonLoopbackHosts) {
  for (const char* host :
       {"81.2.69.142", "2001:4860:4860::8888", "localhost", "::ffff:127.0.0.1"}) {
    absl::StatusOr<HttpReply> response = HttpGet(host, 80, "/", absl::Seconds(1));
    EXPECT_TRUE(absl::IsInvalidArgument(response.status())) << host << response.status();
  }
}

struct StartupCase {
  std::string log;
  std::optional<StartupLine> want;
};

// The same cases as tests/support/support_test.py's, for the Python parser.
TEST(StartupLine, FindsTheFirstCompleteStartupLine) {
  const StartupLine kLoopback = {"127.0.0.1:0", 40123, "/metrics"};
  const std::vector<StartupCase> cases = {
      {"listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n", kLoopback},
      {"listening on :19100 (port 19100), metrics at /metrics\n",
       StartupLine{":19100", 19100, "/metrics"}},
      {"listening on [::1]:0 (port 1), metrics at /custom/path\n",
       StartupLine{"[::1]:0", 1, "/custom/path"}},
      // Among the other start-up lines; the live map's URL follows it.
      {"--bpf.pin-path=auto: no pinning (started from a shell)\n"
       "probe mode: fexit, ports: all\n"
       "listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n"
       "live map: http://127.0.0.1:40123/\n",
       kLoopback},
      {"listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n"
       "listening on 127.0.0.1:0 (port 50000), metrics at /metrics\n",
       kLoopback},
      // Still being written: the port may be cut short.
      {"listening on 127.0.0.1:0 (port 401", std::nullopt},
      {"listening on 127.0.0.1:0 (port 40123), metrics at /metrics", std::nullopt},
      {"", std::nullopt},
      {"probe mode: fexit, ports: all\n", std::nullopt},
      // Only at the start of a line, in exactly this shape.
      {"demo service listening on 127.0.0.1 (port 8081), metrics at /x\n", std::nullopt},
      {" listening on 127.0.0.1:0 (port 40123), metrics at /metrics\n", std::nullopt},
      {"listening on 127.0.0.1:0 (port 0), metrics at /metrics\n", std::nullopt},
      {"listening on 127.0.0.1:0 (port 65536), metrics at /metrics\n", std::nullopt},
      {"listening on 127.0.0.1:0 (port +80), metrics at /metrics\n", std::nullopt},
      {"listening on 127.0.0.1:0 (port 80)\n", std::nullopt},
      {"listening on 127.0.0.1:0 (port 80), metrics at \n", std::nullopt},
      {"listening on  (port 80), metrics at /metrics\n", std::nullopt},
      {"listening on a b (port 80), metrics at /metrics\n", std::nullopt},
  };
  for (const StartupCase& c : cases) {
    std::optional<StartupLine> got = FindStartupLine(c.log);
    ASSERT_EQ(got.has_value(), c.want.has_value()) << absl::CEscape(c.log);
    if (!got) continue;
    EXPECT_EQ(got->listen_address, c.want->listen_address) << absl::CEscape(c.log);
    EXPECT_EQ(got->port, c.want->port) << absl::CEscape(c.log);
    EXPECT_EQ(got->metrics_path, c.want->metrics_path) << absl::CEscape(c.log);
  }
}

TEST(MetricsText, ParsesSeriesWithSortedLabels) {
  absl::StatusOr<MetricsText> metrics = MetricsText::Parse(
      "# HELP ebpf_geoip_accepted_connections_total Accepted connections.\n"
      "# TYPE ebpf_geoip_accepted_connections_total counter\n"
      "ebpf_geoip_accepted_connections_total{port=\"8081\",country=\"GB\"} 3\n"
      "ebpf_geoip_accepted_connections_total{country=\"US\",port=\"8081\",} 2 1700000000000\n"
      "ebpf_geoip_accepted_connections_total{country=\"GB\",port=\"8082\"} 1e+01\n"
      "\n"
      "ebpf_geoip_events_lost_total 0\n"
      "odd{path=\"a\\\"b\\\\c\\nd\"} +Inf\n");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->series(),
            (std::map<std::string, double>{
                {"ebpf_geoip_accepted_connections_total{country=\"GB\",port=\"8081\"}", 3},
                {"ebpf_geoip_accepted_connections_total{country=\"GB\",port=\"8082\"}", 10},
                {"ebpf_geoip_accepted_connections_total{country=\"US\",port=\"8081\"}", 2},
                {"ebpf_geoip_events_lost_total", 0},
                {"odd{path=\"a\\\"b\\\\c\\nd\"}", INFINITY},
            }));
  EXPECT_EQ(metrics->Value("ebpf_geoip_accepted_connections_total",
                           {{"port", "8081"}, {"country", "GB"}}),
            3);
  EXPECT_EQ(metrics->Value("ebpf_geoip_events_lost_total"), 0);
  EXPECT_EQ(metrics->Value("odd", {{"path", "a\"b\\c\nd"}}), INFINITY);
  EXPECT_EQ(metrics->Value("ebpf_geoip_accepted_connections_total", {{"country", "GB"}}),
            std::nullopt);
  EXPECT_EQ(metrics->Value("missing"), std::nullopt);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total"), 15);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {{"port", "8081"}}), 5);
  EXPECT_EQ(metrics->Sum("ebpf_geoip_accepted_connections_total", {{"country", "FR"}}), 0);
}

TEST(MetricsText, SelectsSeriesWithTheirLabels) {
  absl::StatusOr<MetricsText> metrics = MetricsText::Parse(
      "h_bucket{port=\"80\",le=\"0.1\"} 4\n"
      "h_bucket{port=\"80\",le=\"1\"} 7\n"
      "h_bucket{port=\"80\",le=\"+Inf\"} 9\n"
      "h_bucket{port=\"81\",le=\"+Inf\"} 1\n"
      "h_count{port=\"80\"} 9\n");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::vector<MetricsText::Series> buckets = metrics->Select("h_bucket", {{"port", "80"}});
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].labels.at("le"), "0.1");
  EXPECT_EQ(buckets[0].value, 4);
  EXPECT_EQ(buckets[2].labels.at("le"), "+Inf");
  EXPECT_EQ(buckets[2].value, 9);
  EXPECT_EQ(metrics->Select("h_bucket").size(), 4u);
  EXPECT_TRUE(metrics->Select("h_bucket", {{"port", "82"}}).empty());
}

TEST(MetricsText, RejectsMalformedText) {
  for (const char* text :
       {"no_value\n", "bad{x=\"1\"} abc\n", "bad{x=\"1} 1\n", "bad{x=1} 1\n", "twice 1\ntwice 2\n",
        "{x=\"1\"} 1\n", "bad{x=\"1\",x=\"2\"} 1\n", "bad 1 2 3\n"}) {
    EXPECT_FALSE(MetricsText::Parse(text).ok()) << text;
  }
}

}  // namespace
}  // namespace geoip
