#include "exporter/util/privileges.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "exporter/util/proc_status.h"
#include "gtest/gtest.h"

namespace geoip {
namespace {

constexpr uint64_t Bit(int capability) { return uint64_t{1} << capability; }

// Leaves only `keep` in this thread's effective and permitted sets, as a
// container runtime does for a process started with fewer capabilities.
bool LimitCapabilities(uint64_t keep) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  return syscall(SYS_capset, &header, data) == 0;
}

// What a child process saw after DropPrivileges.
struct Outcome {
  std::string status;  // "ok", or the error's message
  uint64_t effective = ~uint64_t{0};
  uint64_t permitted = ~uint64_t{0};
  long uid = -1;
  int no_new_privs = -1;
};

// Runs DropPrivileges(user, keep_cap_bpf) in a child that starts with only
// `start` capabilities, so the test process keeps its own.
Outcome DropInChild(uint64_t start, const std::string& user, bool keep_cap_bpf) {
  int fds[2];
  if (pipe(fds) != 0) return {"pipe() failed"};
  const pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    std::string report = "capset failed";
    if (LimitCapabilities(start)) {
      const absl::StatusOr<std::string> dropped = DropPrivileges(user, keep_cap_bpf);
      absl::StatusOr<ProcStatus> status = ProcStatus::Read();
      report = dropped.ok() ? "ok" : std::string(dropped.status().message());
      if (status.ok()) {
        report = std::to_string(status->Capabilities("CapEff").value_or(~uint64_t{0})) + " " +
                 std::to_string(status->Capabilities("CapPrm").value_or(~uint64_t{0})) + " " +
                 std::to_string(geteuid()) + " " +
                 std::to_string(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)) + " " + report;
      }
    }
    (void)!write(fds[1], report.data(), report.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buffer[512];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof buffer)) > 0) text.append(buffer, n);
  close(fds[0]);
  waitpid(child, nullptr, 0);
  Outcome outcome;
  unsigned long long effective = 0, permitted = 0;
  int consumed = 0;
  if (sscanf(text.c_str(), "%llu %llu %ld %d %n", &effective, &permitted, &outcome.uid,
             &outcome.no_new_privs, &consumed) != 4) {
    outcome.status = text;
    return outcome;
  }
  outcome.effective = effective;
  outcome.permitted = permitted;
  outcome.status = text.substr(consumed);
  return outcome;
}

class DropPrivilegesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root: it switches users and drops capabilities";
  }
};

TEST_F(DropPrivilegesTest, SwitchesToTheUserWhenAllowed) {
  const Outcome outcome =
      DropInChild(Bit(CAP_SETUID) | Bit(CAP_SETGID) | Bit(kCapBpf) | Bit(kCapPerfmon), "nobody",
                  /*keep_cap_bpf=*/false);
  EXPECT_EQ(outcome.status, "ok");
  EXPECT_NE(outcome.uid, 0);
  EXPECT_EQ(outcome.effective, 0u);
  EXPECT_EQ(outcome.permitted, 0u);
  EXPECT_EQ(outcome.no_new_privs, 1);
}

// A Kubernetes pod with `drop: [ALL]` and `add: [BPF, PERFMON]`: no
// CAP_SETUID or CAP_SETGID, so there is no switching users. The exporter
// must still run, and still give up every capability.
TEST_F(DropPrivilegesTest, WithoutSetuidStaysRootWithNoCapabilities) {
  const Outcome outcome = DropInChild(Bit(kCapBpf) | Bit(kCapPerfmon), "nobody",
                                      /*keep_cap_bpf=*/false);
  EXPECT_EQ(outcome.status, "ok");
  EXPECT_EQ(outcome.uid, 0);
  EXPECT_EQ(outcome.effective, 0u);
  EXPECT_EQ(outcome.permitted, 0u);
  EXPECT_EQ(outcome.no_new_privs, 1);
}

TEST_F(DropPrivilegesTest, WithoutSetuidKeepsOnlyCapBpfWhenAsked) {
  const Outcome outcome = DropInChild(Bit(kCapBpf) | Bit(kCapPerfmon), "nobody",
                                      /*keep_cap_bpf=*/true);
  EXPECT_EQ(outcome.status, "ok");
  EXPECT_EQ(outcome.uid, 0);
  EXPECT_EQ(outcome.effective, Bit(kCapBpf));
  EXPECT_EQ(outcome.permitted, Bit(kCapBpf));
}

TEST_F(DropPrivilegesTest, AnUnknownUserIsAnErrorThatSaysWhatToDo) {
  const Outcome outcome = DropInChild(Bit(CAP_SETUID) | Bit(CAP_SETGID), "no-such-user-here",
                                      /*keep_cap_bpf=*/false);
  EXPECT_NE(outcome.status.find("--privileges.runas"), std::string::npos) << outcome.status;
}

}  // namespace
}  // namespace geoip
