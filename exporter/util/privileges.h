// Giving up privileges once the probe is attached: the exporter then reads
// maps it already holds, serves HTTP and reads its database as nobody.
#ifndef EXPORTER_UTIL_PRIVILEGES_H_
#define EXPORTER_UTIL_PRIVILEGES_H_

#include <string>

#include "absl/status/statusor.h"

namespace geoip {

// True if reading a BPF map through a descriptor already held needs
// CAP_BPF: before Linux 6.5 every bpf() command checked it while
// kernel.unprivileged_bpf_disabled was set.
bool MapAccessNeedsCapBpf();

// Switches to `user` if running as root (a non-empty name), drops every
// capability except CAP_BPF when keep_cap_bpf, and forbids regaining any.
// Without CAP_SETUID and CAP_SETGID (a container that drops them, such as a
// Kubernetes pod with `drop: [ALL]`) it cannot switch users: it stays uid 0
// and still drops every capability. Affects every thread of the process;
// threads started later inherit it. Returns what it did, one line for the
// log (empty if there was nothing to say: root was asked to stay root).
absl::StatusOr<std::string> DropPrivileges(const std::string& user, bool keep_cap_bpf);

}  // namespace geoip

#endif  // EXPORTER_UTIL_PRIVILEGES_H_
