// A child process owned by a test: spawned from argv with its output in
// files, and killed (with everything it started) when the owner goes away,
// so a failing test leaves nothing running.
#ifndef TESTS_SUPPORT_PROCESS_H_
#define TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace geoip {

// Owns one spawned process and the temporary files holding its stdout and
// stderr. Move-only; the destructor SIGKILLs its process group and reaps it.
class ChildProcess {
 public:
  // Starts argv[0] (looked up in PATH) in a new process group, with stdin
  // from /dev/null. The child also dies if the spawning thread exits.
  static absl::StatusOr<ChildProcess> Spawn(const std::vector<std::string>& argv);

  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }

  // Sends signo to the process (not its group).
  absl::Status Signal(int signo);

  // Waits up to timeout for the process to end. Returns its exit code, or
  // 128 + signal number if a signal ended it (the shell's convention).
  // DeadlineExceeded leaves it running. Later calls return the same status.
  absl::StatusOr<int> Wait(absl::Duration timeout);

  // SIGKILLs the process group and reaps the process.
  void Kill();

  // What the process has written so far.
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  ChildProcess() = default;
  void Release();

  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_status_ = 0;    // valid once reaped_
  std::string directory_;  // holds the "stdout" and "stderr" files
};

// How a finished command ended and what it wrote.
struct CommandResult {
  int exit_code = -1;  // 128 + signal number if a signal ended it
  std::string stdout_text;
  std::string stderr_text;
};

// Runs argv and waits up to timeout for it. On timeout the command and its
// process group are killed and DeadlineExceeded is returned, with what it
// wrote so far in the message.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout);

}  // namespace geoip

#endif  // TESTS_SUPPORT_PROCESS_H_
