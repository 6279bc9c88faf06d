// Clients that connect and then stall, for tests of a server's limits.
#ifndef TESTS_SUPPORT_STALLED_CLIENT_H_
#define TESTS_SUPPORT_STALLED_CLIENT_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace geoip {

// A socket connected to 127.0.0.1:port that has sent `prefix` (maybe
// nothing) and sends no more. The caller closes it.
absl::StatusOr<int> OpenStalledConnection(uint16_t port, absl::string_view prefix);

// Waits up to timeout for the server to close fd (EOF or reset); true if
// it did. Whatever the server sent first (e.g. a 408) is read and dropped.
bool ClosedByServer(int fd, absl::Duration timeout);

}  // namespace geoip

#endif  // TESTS_SUPPORT_STALLED_CLIENT_H_
