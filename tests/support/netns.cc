#include "tests/support/netns.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

constexpr char kPrefix[] = "geoip-test-";
// Bound on each `ip` command; they normally take milliseconds.
constexpr absl::Duration kIpTimeout = absl::Seconds(10);

// Runs `ip ARGS...` and turns a non-zero exit into an error.
absl::Status RunIp(std::vector<std::string> args) {
  args.insert(args.begin(), "ip");
  ASSIGN_OR_RETURN(CommandResult result, RunCommand(args, kIpTimeout));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(args, " "), " exited with ",
                                            result.exit_code, ": ", result.stderr_text));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int>> NamespacePids(const std::string& name) {
  ASSIGN_OR_RETURN(CommandResult result, RunCommand({"ip", "netns", "pids", name}, kIpTimeout));
  if (result.exit_code != 0) {
    return absl::InternalError(absl::StrCat("ip netns pids ", name, ": ", result.stderr_text));
  }
  std::vector<int> pids;
  for (absl::string_view line : absl::StrSplit(result.stdout_text, '\n', absl::SkipEmpty())) {
    int pid = 0;
    if (!absl::SimpleAtoi(line, &pid)) {
      return absl::InternalError(absl::StrCat("ip netns pids printed '", line, "'"));
    }
    pids.push_back(pid);
  }
  return pids;
}

// `ip netns exec` execs argv in place, so the pid we get is argv's own.
std::vector<std::string> InNamespace(const std::string& name,
                                     const std::vector<std::string>& argv) {
  std::vector<std::string> command = {"ip", "netns", "exec", name};
  command.insert(command.end(), argv.begin(), argv.end());
  return command;
}

// Kills whatever runs in the namespace, then removes its name. Best effort:
// it runs from destructors.
void KillAndDelete(const std::string& name) {
  absl::StatusOr<std::vector<int>> pids = NamespacePids(name);
  if (pids.ok()) {
    for (int pid : *pids) kill(pid, SIGKILL);
  }
  RunIp({"netns", "delete", name}).IgnoreError();
}

// Deletes namespaces left by test processes that died before their
// destructors ran ("geoip-test-<pid>-<n>" whose pid is gone).
void DeleteStaleNamespaces() {
  DIR* dir = opendir("/run/netns");
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (!absl::ConsumePrefix(&name, kPrefix)) continue;
    int pid = 0;
    std::vector<absl::string_view> parts = absl::StrSplit(name, '-');
    if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &pid) || pid <= 0) continue;
    if (kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(entry->d_name);
  }
  closedir(dir);
  for (const std::string& name : stale) KillAndDelete(name);
}

}  // namespace

absl::StatusOr<TestNamespace> TestNamespace::Create() {
  static std::atomic<int> counter{0};
  DeleteStaleNamespaces();
  TestNamespace ns(absl::StrCat(kPrefix, getpid(), "-", counter++));
  if (absl::Status status = RunIp({"netns", "add", ns.name_}); !status.ok()) {
    ns.name_.clear();  // not ours to delete: it may belong to someone else
    return status;
  }
  RETURN_IF_ERROR(RunIp({"-n", ns.name_, "link", "set", "lo", "up"}));
  return ns;
}

TestNamespace::TestNamespace(TestNamespace&& other) noexcept
    : name_(std::exchange(other.name_, "")) {}

TestNamespace& TestNamespace::operator=(TestNamespace&& other) noexcept {
  if (this != &other) {
    Delete();
    name_ = std::exchange(other.name_, "");
  }
  return *this;
}

TestNamespace::~TestNamespace() { Delete(); }

void TestNamespace::Delete() {
  if (name_.empty()) return;
  KillAndDelete(name_);
  name_.clear();
}

absl::Status TestNamespace::AddAddress(absl::string_view address) {
  if (absl::StrContains(address, ':')) {
    return RunIp({"-n", name_, "addr", "add", absl::StrCat(address, "/128"), "dev", "lo", "nodad"});
  }
  return RunIp({"-n", name_, "addr", "add", absl::StrCat(address, "/32"), "dev", "lo"});
}

absl::StatusOr<CommandResult> TestNamespace::Run(const std::vector<std::string>& argv,
                                                 absl::Duration timeout) {
  return RunCommand(InNamespace(name_, argv), timeout);
}

absl::StatusOr<ChildProcess> TestNamespace::Start(const std::vector<std::string>& argv) {
  return ChildProcess::Spawn(InNamespace(name_, argv));
}

absl::StatusOr<std::vector<int>> TestNamespace::Pids() { return NamespacePids(name_); }

}  // namespace geoip
