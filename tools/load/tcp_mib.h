// The kernel's network counters of the calling thread's namespace, from
// /proc/net/snmp: pairs of lines, "Tcp: Name ..." then "Tcp: value ...".
// The storm reads Tcp AttemptFails to tell a connection the kernel dropped
// before its listener could accept it from one that went missing.
#ifndef TOOLS_LOAD_TCP_MIB_H_
#define TOOLS_LOAD_TCP_MIB_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace geoip {

// The counter `name` of the `group` ("Tcp", "Udp", ...) in the text of
// /proc/net/snmp; NotFound if the text has no such counter.
absl::StatusOr<uint64_t> ParseSnmpCounter(absl::string_view text, absl::string_view group,
                                          absl::string_view name);

// The same, read from /proc/thread-self/net/snmp: the network namespace of
// the calling thread, which a setns() on that thread alone has changed.
absl::StatusOr<uint64_t> ReadSnmpCounter(absl::string_view group, absl::string_view name);

}  // namespace geoip

#endif  // TOOLS_LOAD_TCP_MIB_H_
