#include "tools/load/transfer.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "exporter/util/status_macros.h"
#include "exporter/util/unique_fd.h"
#include "tools/load/socket.h"

namespace geoip {
namespace {

// Longest request line: two 20-digit numbers, a space and the newline.
constexpr size_t kMaxRequestLine = 42;
// How often a wait looks at the stop flag.
constexpr absl::Duration kStopCheck = absl::Milliseconds(50);
// The longest hold a plan may ask for.
constexpr absl::Duration kMaxHold = absl::Hours(24 * 7);
// Bytes moved per send() or recv().
constexpr size_t kChunk = 64 * 1024;

const std::string& Filler() {
  static const std::string* filler = new std::string(kChunk, '.');
  return *filler;
}

absl::Status SetNonBlocking(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::ErrnoToStatus(errno, "fcntl(O_NONBLOCK)");
  }
  return absl::OkStatus();
}

// Waits until fd has one of events (or an error or hang-up), the deadline
// passes or *stop becomes true.
absl::Status Await(int fd, short events, absl::Time deadline, const std::atomic<bool>* stop) {
  while (true) {
    if (stop != nullptr && stop->load()) return absl::CancelledError("stopped");
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("deadline reached");
    pollfd entry = {fd, events, 0};
    const int timeout_ms = static_cast<int>(absl::ToInt64Milliseconds(std::min(left, kStopCheck)) +
                                            1);  // never 0: no busy loop
    const int ready = poll(&entry, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) return absl::ErrnoToStatus(errno, "poll()");
    if (ready > 0) return absl::OkStatus();
  }
}

// Sends `out` bytes (prefix, then filler) while receiving and dropping `in`
// bytes, so that neither side stalls the other with full buffers. Adds what
// moves to *totals as it moves.
absl::Status Exchange(int fd, absl::string_view prefix, uint64_t out, uint64_t in,
                      absl::Time deadline, const std::atomic<bool>* stop, TransferTotals* totals) {
  std::array<char, kChunk> buffer;
  uint64_t sent = 0, received = 0;
  while (sent < out || received < in) {
    bool moved = false;
    if (received < in) {
      const ssize_t n =
          recv(fd, buffer.data(), std::min<uint64_t>(buffer.size(), in - received), 0);
      if (n == 0) {
        return absl::DataLossError(
            absl::StrCat("the peer closed after ", received, " of ", in, " bytes"));
      }
      if (n > 0) {
        received += n;
        totals->received += n;
        moved = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return absl::ErrnoToStatus(errno, "recv()");
      }
    }
    if (sent < out) {
      const char* data = sent < prefix.size() ? prefix.data() + sent : Filler().data();
      const uint64_t room = sent < prefix.size() ? prefix.size() - sent : Filler().size();
      const ssize_t n = send(fd, data, std::min(room, out - sent), MSG_NOSIGNAL);
      if (n > 0) {
        sent += n;
        totals->sent += n;
        moved = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return absl::ErrnoToStatus(errno, "send()");
      }
    }
    if (moved) continue;
    const short events = (received < in ? POLLIN : 0) | (sent < out ? POLLOUT : 0);
    absl::Status waited = Await(fd, events, deadline, stop);
    if (!waited.ok()) {
      return absl::Status(waited.code(),
                          absl::StrCat(waited.message(), " having sent ", sent, " of ", out,
                                       " bytes and received ", received, " of ", in));
    }
  }
  return absl::OkStatus();
}

// Waits until the peer's kernel has acknowledged every byte sent on fd.
absl::Status AwaitAcknowledged(int fd, absl::Time deadline) {
  absl::Duration pause = absl::Microseconds(100);
  while (true) {
    int pending = 0;  // unsent and unacknowledged bytes
    if (ioctl(fd, SIOCOUTQ, &pending) != 0) return absl::ErrnoToStatus(errno, "ioctl(SIOCOUTQ)");
    if (pending == 0) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(pending, " bytes still unacknowledged at the deadline"));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(10));
  }
}

// Reads until the peer's FIN; anything it still sends is an error.
absl::Status AwaitEof(int fd, absl::Time deadline) {
  char byte;
  while (true) {
    const ssize_t n = recv(fd, &byte, 1, 0);
    if (n == 0) return absl::OkStatus();
    if (n > 0) return absl::DataLossError("the server sent more than was asked for");
    if (errno != EAGAIN && errno != EINTR) return absl::ErrnoToStatus(errno, "recv()");
    RETURN_IF_ERROR(Await(fd, POLLIN, deadline, nullptr));
  }
}

// Reads one request line (up to and with '\n') byte by byte, so that not a
// byte of the upload after it is taken. Empty at a FIN before any byte.
absl::StatusOr<std::string> ReadRequestLine(int fd, absl::Time deadline,
                                            const std::atomic<bool>* stop) {
  std::string line;
  while (line.empty() || line.back() != '\n') {
    if (line.size() >= kMaxRequestLine) {
      return absl::InvalidArgumentError(absl::StrCat("no request line: '", line, "'"));
    }
    char byte;
    const ssize_t n = recv(fd, &byte, 1, 0);
    if (n == 0) {
      if (line.empty()) return line;
      return absl::DataLossError(absl::StrCat("the client closed inside '", line, "'"));
    }
    if (n > 0) {
      line += byte;
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return absl::ErrnoToStatus(errno, "recv()");
    RETURN_IF_ERROR(Await(fd, POLLIN, deadline, stop));
  }
  return line;
}

absl::Status WithContext(const absl::Status& status, absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(context, ": ", status.message()));
}

}  // namespace

std::string TransferPlan::Text() const {
  return absl::StrCat("send=", send_bytes, "/receive=", receive_bytes,
                      "/hold=", absl::FormatDuration(hold), "/steps=", steps);
}

absl::StatusOr<TransferPlan> ParseTransferPlan(absl::string_view options) {
  TransferPlan plan;
  std::vector<std::string> seen;
  for (absl::string_view option : absl::StrSplit(options, '/', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> parts =
        absl::StrSplit(option, absl::MaxSplits('=', 1));
    const std::string name(parts.first);
    const absl::string_view value = parts.second;
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return absl::InvalidArgumentError(absl::StrCat("'", name, "' given twice"));
    }
    seen.push_back(name);
    auto bad = [&](absl::string_view want) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad transfer option '", option, "': want ", want));
    };
    if (name == "send" || name == "receive") {
      uint64_t bytes = 0;
      if (!absl::SimpleAtoi(value, &bytes) || bytes > kMaxTransferBytes) {
        return bad(absl::StrCat(name, "=BYTES, at most ", kMaxTransferBytes));
      }
      (name == "send" ? plan.send_bytes : plan.receive_bytes) = bytes;
    } else if (name == "hold") {
      absl::Duration hold;
      if (!absl::ParseDuration(value, &hold) || hold < absl::ZeroDuration() || hold > kMaxHold) {
        return bad("hold=DURATION such as 50ms or 3s, at most a week");
      }
      plan.hold = hold;
    } else if (name == "steps") {
      if (!absl::SimpleAtoi(value, &plan.steps) || plan.steps < 1 ||
          plan.steps > kMaxTransferSteps) {
        return bad(absl::StrCat("steps=1 to ", kMaxTransferSteps));
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown transfer option '", option, "' (send, receive, hold or steps)"));
    }
  }
  RETURN_IF_ERROR(ValidateTransferPlan(plan));
  return plan;
}

std::string TransferRequestLine(uint64_t up, uint64_t down) {
  return absl::StrCat(up, " ", down, "\n");
}

uint64_t TransferStepShare(uint64_t total, int step, int steps) {
  const uint64_t share = total / static_cast<uint64_t>(steps);
  return step == steps ? share + total % static_cast<uint64_t>(steps) : share;
}

absl::Status ValidateTransferPlan(const TransferPlan& plan) {
  if (plan.steps < 1 || plan.steps > kMaxTransferSteps) {
    return absl::InvalidArgumentError(absl::StrCat("steps must be 1 to ", kMaxTransferSteps));
  }
  for (int step = 1; step <= plan.steps; ++step) {
    const uint64_t up = TransferStepShare(plan.send_bytes, step, plan.steps);
    const uint64_t down = TransferStepShare(plan.receive_bytes, step, plan.steps);
    if (up == 0 && down == 0) continue;
    const std::string line = TransferRequestLine(up, down);
    if (up < line.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("send=", plan.send_bytes, " in ", plan.steps, " steps is too little: step ",
                       step, " sends ", up, " bytes, but its request line alone takes ",
                       line.size(), " (a client that sends nothing asks for nothing)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TransferTotals> RunTransfer(const Endpoint& destination,
                                           const std::optional<IpAddress>& source,
                                           const TransferPlan& plan, absl::Time deadline,
                                           const TransferProgress& progress) {
  RETURN_IF_ERROR(ValidateTransferPlan(plan));
  ASSIGN_OR_RETURN(const UniqueFd fd, Connect(destination, source, deadline));
  RETURN_IF_ERROR(SetNonBlocking(fd.get()));
  const absl::Duration pause = plan.hold / plan.steps;
  TransferTotals totals;
  for (int step = 1; step <= plan.steps; ++step) {
    const std::string context = absl::StrCat("step ", step, " of ", plan.steps);
    const uint64_t up = TransferStepShare(plan.send_bytes, step, plan.steps);
    const uint64_t down = TransferStepShare(plan.receive_bytes, step, plan.steps);
    if (up > 0) {
      RETURN_IF_ERROR(WithContext(
          Exchange(fd.get(), TransferRequestLine(up, down), up, down, deadline, nullptr, &totals),
          context));
    }
    RETURN_IF_ERROR(WithContext(AwaitAcknowledged(fd.get(), deadline), context));
    if (progress) progress(step, totals);
    if (pause > absl::ZeroDuration()) {
      if (absl::Now() + pause > deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat(context, ": the hold would outlast the deadline"));
      }
      absl::SleepFor(pause);
    }
  }
  if (shutdown(fd.get(), SHUT_WR) != 0) return absl::ErrnoToStatus(errno, "shutdown()");
  RETURN_IF_ERROR(WithContext(AwaitEof(fd.get(), deadline), "waiting for the server's close"));
  return totals;
}

absl::Status ServeTransfer(int fd, absl::Time deadline, const std::atomic<bool>* stop,
                           TransferTotals* totals) {
  RETURN_IF_ERROR(SetNonBlocking(fd));
  while (true) {
    ASSIGN_OR_RETURN(const std::string line, ReadRequestLine(fd, deadline, stop));
    if (line.empty()) return absl::OkStatus();  // the client's FIN
    totals->received += line.size();
    std::pair<absl::string_view, absl::string_view> numbers =
        absl::StrSplit(absl::string_view(line).substr(0, line.size() - 1), ' ');
    uint64_t up = 0, down = 0;
    if (!absl::SimpleAtoi(numbers.first, &up) || !absl::SimpleAtoi(numbers.second, &down) ||
        up < line.size() || up > kMaxTransferBytes || down > kMaxTransferBytes) {
      return absl::InvalidArgumentError(absl::StrCat("bad request line '", line, "'"));
    }
    RETURN_IF_ERROR(Exchange(fd, "", down, up - line.size(), deadline, stop, totals));
  }
}

}  // namespace geoip
