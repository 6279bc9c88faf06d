#include "exporter/util/proc_status.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace geoip {
namespace {

// As Linux 6.1 writes it (abridged).
constexpr char kStatus[] =
    "Name:\tebpf_geoip_exp\n"
    "Umask:\t0022\n"
    "Uid:\t65534\t65534\t65534\t65534\n"
    "VmRSS:\t   20584 kB\n"
    "CapPrm:\t0000008000000000\n"
    "CapEff:\t000001ffffffffff\n"
    "CapBnd:\tnot-hex\n";

TEST(ProcStatus, ReadsFieldsNumbersAndCapabilitySets) {
  const ProcStatus status = ProcStatus::Parse(kStatus);
  EXPECT_EQ(status.Field("Name"), "ebpf_geoip_exp");
  EXPECT_EQ(status.FirstNumber("Uid"), 65534u);
  EXPECT_EQ(status.FirstNumber("VmRSS"), 20584u);
  EXPECT_EQ(status.Capabilities("CapPrm"), uint64_t{1} << kCapBpf);
  EXPECT_EQ(status.Capabilities("CapEff"), 0x1ffffffffffu);
}

TEST(ProcStatus, AbsentOrMalformedFieldsAreNullopt) {
  const ProcStatus status = ProcStatus::Parse(kStatus);
  EXPECT_EQ(status.Field("Gid"), std::nullopt);
  EXPECT_EQ(status.Capabilities("CapBnd"), std::nullopt);
  EXPECT_EQ(status.FirstNumber("Name"), std::nullopt);
  EXPECT_EQ(ProcStatus::Parse("").Field("Name"), std::nullopt);
  EXPECT_EQ(ProcStatus::Parse("no colon here\n").Field("no colon here"), std::nullopt);
}

TEST(ProcStatus, ReadsThisProcess) {
  absl::StatusOr<ProcStatus> self = ProcStatus::Read();
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(self->FirstNumber("Uid"), static_cast<uint64_t>(getuid()));
  absl::StatusOr<ProcStatus> by_pid = ProcStatus::Read(getpid());
  ASSERT_TRUE(by_pid.ok());
  EXPECT_EQ(by_pid->FirstNumber("Uid"), self->FirstNumber("Uid"));
  EXPECT_FALSE(ProcStatus::Read(-5).ok());
}

// As Linux writes it for a process whose command is "a) (b" (abridged after
// field 24).
constexpr char kStat[] =
    "4242 (a) (b) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 "
    "987654 123456789 5000 18446744073709551615\n";

TEST(ProcStat, ReadsNumberedFieldsAfterACommandWithParentheses) {
  const std::optional<ProcStat> stat = ProcStat::Parse(kStat);
  ASSERT_TRUE(stat.has_value());
  EXPECT_EQ(stat->state(), 'S');
  EXPECT_EQ(stat->Field(14), 250);  // utime
  EXPECT_EQ(stat->Field(15), 50);   // stime
  EXPECT_EQ(stat->Field(22), 987654);
  EXPECT_EQ(stat->Field(23), 123456789);
  EXPECT_EQ(stat->Field(24), 5000);
  EXPECT_EQ(stat->Field(2), 0);   // the command is not a number
  EXPECT_EQ(stat->Field(99), 0);  // absent
}

TEST(ProcStat, RefusesTextWithoutACommandAndReadsThisProcess) {
  EXPECT_FALSE(ProcStat::Parse("4242 S 1").has_value());
  absl::StatusOr<ProcStat> self = ProcStat::Read();
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_EQ(self->state(), 'R');  // reading its own stat, it runs
  EXPECT_GT(self->Field(22), 0);
  EXPECT_FALSE(ProcStat::Read(-5).ok());
}

}  // namespace
}  // namespace geoip
