// Transfers of known sizes over TCP, so that tests can check byte and
// lifetime counts exactly. A client sends a chosen number of bytes, asks
// the server for a chosen number back, keeps the connection open for a
// while and closes it with a FIN; the server reads all it is sent and sends
// what it is asked for.
//
// The protocol, in steps: each step of the client's upload starts with the
// request line "UP DOWN\n" (decimal), where UP is the whole step's upload,
// the line included, and DOWN what the server is to send back; the rest of
// the upload is filler. A client that sends nothing asks for nothing. The
// client ends with shutdown(SHUT_WR) and waits for the server's FIN, so
// both sides' counts are final when RunTransfer returns.
#ifndef TOOLS_LOAD_TRANSFER_H_
#define TOOLS_LOAD_TRANSFER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "exporter/net/address.h"
#include "tools/load/endpoint.h"

namespace geoip {

// What one client does over its connection.
struct TransferPlan {
  uint64_t send_bytes = 0;     // payload it sends, request lines included
  uint64_t receive_bytes = 0;  // payload it asks for and reads
  // How long it keeps the connection open once the bytes are through: a
  // pause of hold / steps after each step, then the close.
  absl::Duration hold = absl::ZeroDuration();
  // Steps the bytes are split into (the last takes the remainders).
  int steps = 1;

  // "send=N/receive=N/hold=D/steps=K", the options in the order given.
  std::string Text() const;
};

// Bounds on a plan, so that a typo cannot make a run endless.
inline constexpr uint64_t kMaxTransferBytes = uint64_t{1} << 36;  // 64 GiB
inline constexpr int kMaxTransferSteps = 1000;

// Parses the options after a transfer's destination, each "/NAME=VALUE":
// send and receive in bytes, hold a duration ("50ms", "3s"), steps a count.
// Omitted options keep TransferPlan's defaults. Checks the plan
// (ValidateTransferPlan).
absl::StatusOr<TransferPlan> ParseTransferPlan(absl::string_view options);

// The request line a step sends: "UP DOWN\n".
std::string TransferRequestLine(uint64_t up, uint64_t down);

// The bytes of step `step` (1 to steps) of total split in `steps`: an equal
// share, the last step also the remainder.
uint64_t TransferStepShare(uint64_t total, int step, int steps);

// An error unless every step that moves bytes can carry its request line:
// its upload must be at least as long as the line, since the line is part
// of it.
absl::Status ValidateTransferPlan(const TransferPlan& plan);

// Payload bytes moved, as the side that counts them sees them.
struct TransferTotals {
  uint64_t sent = 0;
  uint64_t received = 0;
};

// Called after each step, once the step's upload is acknowledged by the
// server's kernel and its download read: the step (1 to steps) and the
// totals so far. Runs on the client's thread.
using TransferProgress = std::function<void(int step, const TransferTotals& so_far)>;

// Connects from source (bound as Connect() does) to destination and carries
// out plan against a server that speaks this protocol; every step is
// bounded by deadline. Returns what it sent and received: plan's sizes.
absl::StatusOr<TransferTotals> RunTransfer(const Endpoint& destination,
                                           const std::optional<IpAddress>& source,
                                           const TransferPlan& plan, absl::Time deadline,
                                           const TransferProgress& progress = nullptr);

// The server's side on an accepted connection fd (not taken over): reads
// request lines and uploads, sends what each line asks for, until the
// client's FIN. Waits no longer than deadline, and stops early once *stop
// (if given) is true. What it received and sent, also when it fails.
absl::Status ServeTransfer(int fd, absl::Time deadline, const std::atomic<bool>* stop,
                           TransferTotals* totals);

}  // namespace geoip

#endif  // TOOLS_LOAD_TRANSFER_H_
