#include "exporter/util/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "exporter/util/proc_status.h"

namespace geoip {
namespace {

// Sets this thread's effective and permitted capabilities to `keep` (a
// bit mask over capability numbers) and clears the inheritable ones.
absl::Status SetCapabilities(uint64_t keep) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  if (syscall(SYS_capset, &header, data) != 0) return absl::ErrnoToStatus(errno, "capset()");
  return absl::OkStatus();
}

// True if this thread's effective set has every capability of `needed`.
bool HasCapabilities(uint64_t needed) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) return false;
  const uint64_t effective = data[0].effective | (uint64_t{data[1].effective} << 32);
  return (effective & needed) == needed;
}

}  // namespace

bool MapAccessNeedsCapBpf() {
  std::ifstream sysctl("/proc/sys/kernel/unprivileged_bpf_disabled");
  int disabled = 1;
  if (!(sysctl >> disabled) || disabled == 0) return false;
  struct utsname name {};
  if (uname(&name) != 0) return true;
  std::vector<std::string> parts = absl::StrSplit(name.release, absl::MaxSplits('.', 2));
  int major = 0, minor = 0;
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &major)) return true;
  const std::string minor_text = parts[1].substr(0, parts[1].find_first_not_of("0123456789"));
  if (!absl::SimpleAtoi(minor_text, &minor)) return true;
  return major < 6 || (major == 6 && minor < 5);
}

absl::StatusOr<std::string> DropPrivileges(const std::string& user, bool keep_cap_bpf) {
  const uint64_t keep = keep_cap_bpf ? uint64_t{1} << kCapBpf : 0;
  const char* const kept =
      keep_cap_bpf ? "only CAP_BPF (this kernel checks it on every map read)" : "no capabilities";
  std::string stayed_root;
  if (geteuid() == 0 && !user.empty()) {
    errno = 0;
    const struct passwd* account = getpwnam(user.c_str());
    if (account == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("--privileges.runas: there is no user \"", user,
                       "\"; name an existing one, or pass --privileges.runas= to stay root"));
    }
    if (account->pw_uid == 0) return std::string();
    if (!HasCapabilities((uint64_t{1} << CAP_SETUID) | (uint64_t{1} << CAP_SETGID))) {
      stayed_root = absl::StrCat(
          "--privileges.runas=", user,
          ": no CAP_SETUID and CAP_SETGID to switch users (a container that drops them); ");
    } else {
      // Keeps the permitted set across setuid(), for CAP_BPF on old kernels.
      if (keep != 0 && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
        return absl::ErrnoToStatus(errno, "prctl(PR_SET_KEEPCAPS)");
      }
      // glibc applies these to every thread of the process.
      if (setgroups(0, nullptr) != 0) return absl::ErrnoToStatus(errno, "setgroups()");
      if (setgid(account->pw_gid) != 0) return absl::ErrnoToStatus(errno, "setgid()");
      if (setuid(account->pw_uid) != 0) return absl::ErrnoToStatus(errno, "setuid()");
      prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    }
  }
  if (absl::Status caps = SetCapabilities(keep); !caps.ok()) return caps;
  // Also stops uid 0 from regaining capabilities through execve().
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    return absl::ErrnoToStatus(errno, "prctl(PR_SET_NO_NEW_PRIVS)");
  }
  if (geteuid() == 0 && stayed_root.empty() && !keep_cap_bpf) return std::string();
  return absl::StrCat(stayed_root, "running as uid ", geteuid(), " with ", kept);
}

}  // namespace geoip
