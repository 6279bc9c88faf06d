#include "tools/blocked_accept.h"

#include <dirent.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace geoip {

std::optional<int> BlockedAcceptFd(absl::string_view syscall_text) {
  // In a syscall the kernel prints its number, six arguments, the stack
  // pointer and the program counter (fs/proc/base.c, proc_pid_syscall);
  // outside one, "-1 SP PC" or "running".
  const std::vector<absl::string_view> fields =
      absl::StrSplit(syscall_text, absl::ByAnyChar(" \n"), absl::SkipEmpty());
  if (fields.size() != 9) return std::nullopt;
  long number = 0;
  if (!absl::SimpleAtoi(fields[0], &number)) return std::nullopt;
  bool is_accept = number == SYS_accept4;
#ifdef SYS_accept
  is_accept = is_accept || number == SYS_accept;
#endif
  if (!is_accept) return std::nullopt;
  absl::string_view fd_text = fields[1];
  if (!absl::ConsumePrefix(&fd_text, "0x")) return std::nullopt;
  uint64_t fd = 0;
  if (!absl::SimpleHexAtoi(fd_text, &fd) || fd > INT32_MAX) return std::nullopt;
  return static_cast<int>(fd);
}

absl::StatusOr<std::map<int, int>> BlockedAcceptorsByFd(int pid) {
  const std::string task_dir =
      pid == 0 ? std::string("/proc/self/task") : absl::StrCat("/proc/", pid, "/task");
  DIR* tasks = opendir(task_dir.c_str());
  if (tasks == nullptr) return absl::ErrnoToStatus(errno, "opendir(" + task_dir + ")");
  std::vector<std::string> tids;
  while (dirent* entry = readdir(tasks)) {
    if (entry->d_name[0] != '.') tids.push_back(entry->d_name);
  }
  closedir(tasks);
  std::map<int, int> blocked;
  for (const std::string& tid : tids) {
    std::ifstream file(absl::StrCat(task_dir, "/", tid, "/syscall"));
    if (!file) continue;  // the thread has exited
    std::stringstream text;
    text << file.rdbuf();
    if (std::optional<int> fd = BlockedAcceptFd(text.str())) ++blocked[*fd];
  }
  return blocked;
}

}  // namespace geoip
