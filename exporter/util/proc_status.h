// What the kernel says of a process in /proc/PID/status ("Name:\tvalue"
// lines) and /proc/PID/stat (one line of numbered fields): the one parser of
// each, for the capabilities and CPU time the exporter reads and the
// identity, state and memory that tests and benchmarks read.
#ifndef EXPORTER_UTIL_PROC_STATUS_H_
#define EXPORTER_UTIL_PROC_STATUS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace geoip {

// Capability numbers from <linux/capability.h>, which older kernel headers
// lack for the two newest.
inline constexpr int kCapSysAdmin = 21;
inline constexpr int kCapPerfmon = 38;
inline constexpr int kCapBpf = 39;

class ProcStatus {
 public:
  // Parses the file's text; lines without a colon are skipped.
  static ProcStatus Parse(absl::string_view text);
  // Reads /proc/PID/status (pid 0: this process).
  static absl::StatusOr<ProcStatus> Read(pid_t pid = 0);

  // The value after "Name:", whitespace trimmed; nullopt if absent.
  std::optional<std::string> Field(absl::string_view name) const;
  // A capability set (CapEff, CapPrm, ...) as a bit mask; nullopt if absent
  // or not hexadecimal.
  std::optional<uint64_t> Capabilities(absl::string_view name) const;
  // The first number of a field: Uid's real uid, VmRSS's kB.
  std::optional<uint64_t> FirstNumber(absl::string_view name) const;

 private:
  absl::flat_hash_map<std::string, std::string> fields_;
};

class ProcStat {
 public:
  // Parses the file's line; nullopt if it has no "(command)" field.
  static std::optional<ProcStat> Parse(absl::string_view text);
  // Reads /proc/PID/stat (pid 0: this process).
  static absl::StatusOr<ProcStat> Read(pid_t pid = 0);

  // Field `number` as proc(5) numbers them, from 3 (the state) on: 14 and
  // 15 are user and system time in clock ticks, 22 the start time, 23 the
  // virtual size, 24 the resident pages. 0 if absent or not a number.
  double Field(int number) const;
  // The state letter: R, S, D, Z, ...
  char state() const { return fields_.empty() || fields_[0].empty() ? '?' : fields_[0][0]; }

 private:
  std::vector<std::string> fields_;  // fields_[0] is field 3
};

// True if this process's effective set has capability `cap`.
bool HasEffectiveCapability(int cap);

}  // namespace geoip

#endif  // EXPORTER_UTIL_PROC_STATUS_H_
