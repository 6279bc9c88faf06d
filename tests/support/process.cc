#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "exporter/util/status_macros.h"

namespace geoip {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

absl::StatusOr<ChildProcess> ChildProcess::Spawn(const std::vector<std::string>& argv) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string directory = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/geoip-child-XXXXXX");
  if (mkdtemp(directory.data()) == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("mkdtemp(", directory, ")"));
  }
  ChildProcess child;
  child.directory_ = directory;  // from here on, the destructor cleans up

  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  int out = open((directory + "/stdout").c_str(), flags, 0644);
  int err = open((directory + "/stderr").c_str(), flags, 0644);
  int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int exec_error[2] = {-1, -1};
  absl::Cleanup closer = [&] {
    for (int fd : {out, err, in, exec_error[0], exec_error[1]}) {
      if (fd >= 0) close(fd);
    }
  };
  if (out < 0 || err < 0 || in < 0) return absl::ErrnoToStatus(errno, "open()");
  // The child reports a failed exec through this pipe; a successful exec
  // closes it (O_CLOEXEC), so the parent reads EOF.
  if (pipe2(exec_error, O_CLOEXEC) != 0) return absl::ErrnoToStatus(errno, "pipe2()");

  // Everything the child needs is prepared before fork: between fork and
  // exec in a threaded process only async-signal-safe calls are allowed.
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const pid_t parent = getpid();

  pid_t pid = fork();
  if (pid < 0) return absl::ErrnoToStatus(errno, "fork()");
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    // Descriptors the test process leaked without O_CLOEXEC stay out too.
    close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    execvp(args[0], args.data());
    int error = errno;
    (void)!write(exec_error[1], &error, sizeof(error));
    _exit(127);
  }
  child.pid_ = pid;
  close(exec_error[1]);
  exec_error[1] = -1;
  int error = 0;
  ssize_t n;
  do {
    n = read(exec_error[0], &error, sizeof(error));
  } while (n < 0 && errno == EINTR);
  if (n == sizeof(error)) {
    child.Kill();
    return absl::ErrnoToStatus(error, absl::StrCat("exec ", absl::StrJoin(argv, " ")));
  }
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Release();
    pid_ = std::exchange(other.pid_, -1);
    reaped_ = other.reaped_;
    exit_status_ = other.exit_status_;
    directory_ = std::exchange(other.directory_, "");
  }
  return *this;
}

ChildProcess::~ChildProcess() { Release(); }

void ChildProcess::Release() {
  Kill();
  if (!directory_.empty()) {
    unlink((directory_ + "/stdout").c_str());
    unlink((directory_ + "/stderr").c_str());
    rmdir(directory_.c_str());
    directory_.clear();
  }
}

absl::Status ChildProcess::Signal(int signo) {
  if (pid_ <= 0 || reaped_) return absl::FailedPreconditionError("process has ended");
  if (kill(pid_, signo) != 0) return absl::ErrnoToStatus(errno, "kill()");
  return absl::OkStatus();
}

absl::StatusOr<int> ChildProcess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("no process");
  const absl::Time deadline = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (!reaped_) {
    // Look without reaping: while the ended leader is a zombie its process
    // group id cannot be reused, so killing the group hits only what it left.
    siginfo_t info{};
    if (waitid(P_PID, pid_, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno != EINTR) {
      return absl::ErrnoToStatus(errno, "waitid()");
    }
    if (info.si_pid == pid_) {
      kill(-pid_, SIGKILL);
      int status = 0;
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
      exit_status_ = ExitCode(status);
      break;
    }
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(std::min(pause, left));
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  return exit_status_;
}

void ChildProcess::Kill() {
  if (pid_ <= 0 || reaped_) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);  // in case it left its group
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  reaped_ = true;
  exit_status_ = ExitCode(status);
}

std::string ChildProcess::Stdout() const { return ReadFile(directory_ + "/stdout"); }

std::string ChildProcess::Stderr() const { return ReadFile(directory_ + "/stderr"); }

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Spawn(argv));
  absl::StatusOr<int> exit_code = child.Wait(timeout);
  if (!exit_code.ok()) {
    child.Kill();
    if (!absl::IsDeadlineExceeded(exit_code.status())) return exit_code.status();
    return absl::DeadlineExceededError(
        absl::StrCat(absl::StrJoin(argv, " "), ": killed after ", absl::FormatDuration(timeout),
                     "; stdout: '", child.Stdout(), "'; stderr: '", child.Stderr(), "'"));
  }
  return CommandResult{*exit_code, child.Stdout(), child.Stderr()};
}

}  // namespace geoip
