// The name of the service behind a listener, and the details users join on,
// all as valid label values.
#ifndef EXPORTER_LISTENERS_SERVICE_NAME_H_
#define EXPORTER_LISTENERS_SERVICE_NAME_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "exporter/listeners/cgroup_path.h"

namespace geoip {

// Label values are at most this many bytes.
inline constexpr size_t kMaxLabelBytes = 64;

// Who listens. service and process are never empty; the others are empty
// when the listener has none (Prometheus reads an empty label as absent).
// Every field is LabelSafe.
struct ListenerIdentity {
  // The container's name; else the short container id; else the systemd
  // service without ".service"; else the process name. Stable across
  // restarts of the same service wherever a name exists.
  std::string service;
  std::string process;       // the comm of the process that called listen()
  std::string unit;          // "demo-hello.service", as systemctl and node_exporter name it
  std::string container_id;  // all 64 digits, as kube-state-metrics and cAdvisor write it
  std::string runtime;       // RuntimeName(): "docker", "podman", ...
  std::string pod_uid;       // the Kubernetes pod's metadata.uid
};

// Names a listener from its process name (kernel comm; read up to the first
// NUL), its cgroup facts and, for a container, the name its runtime gave it
// (ContainerNames::Lookup; ignored outside a container).
ListenerIdentity NameListener(absl::string_view comm, const CgroupFacts& facts,
                              std::optional<std::string> container_name);

// `text` as a label value people can read: bytes that are not UTF-8 and
// control characters (C0, DEL, C1) become U+FFFD, the result is cut to at
// most kMaxLabelBytes on a character boundary, and "" becomes "unknown".
// Quoting for the exposition format ('"', '\\') is the writer's job.
std::string LabelSafe(absl::string_view text);

}  // namespace geoip

#endif  // EXPORTER_LISTENERS_SERVICE_NAME_H_
