// What a process's cgroup says about the service it belongs to: the systemd
// unit, the container and its runtime, the Kubernetes pod. Parsing only, no
// I/O: the caller reads /proc/PID/cgroup and hands over its text.
#ifndef EXPORTER_LISTENERS_CGROUP_PATH_H_
#define EXPORTER_LISTENERS_CGROUP_PATH_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace geoip {

// Who made the container, as the cgroup path names it.
enum class ContainerRuntime {
  kNone,        // not in a container
  kDocker,      // docker-<id>.scope, /docker/<id>
  kPodman,      // libpod-<id>.scope, libpod-<id>, libpod-payload-<id>
  kContainerd,  // cri-containerd-<id>.scope, nerdctl-<id>.scope
  kCrio,        // crio-<id>.scope
  kCri,      // /kubepods/.../<id>: a CRI runtime (kubelet's cgroupfs driver) the path does not name
  kUnknown,  // a bare 64-digit id anywhere else (containerd namespaces: /default/<id>)
};

// Container ids are 64 lower-case hex digits; people and `docker ps` use the
// first 12.
inline constexpr size_t kContainerIdLength = 64;
inline constexpr size_t kShortContainerIdLength = 12;

// True for exactly kContainerIdLength lower-case hex digits.
bool IsContainerId(absl::string_view text);

// What one cgroup path (or a whole /proc/PID/cgroup) says. Empty strings mean
// "not found".
struct CgroupFacts {
  // The path the process is in: the v2 one, else name=systemd's, else the
  // first v1 controller's that says more than "/".
  std::string path;
  // The innermost systemd service unit, suffix kept as systemd names it
  // ("demo-hello.service", "getty@tty1.service"). Scopes and slices are not.
  std::string unit;
  // kContainerIdLength lower-case hex digits.
  std::string container_id;
  ContainerRuntime runtime = ContainerRuntime::kNone;
  // The Kubernetes pod UID as the API writes it: a UUID with '-', or the 32
  // hex digits of a static pod.
  std::string pod_uid;
};

// Facts from one cgroup path, e.g. "/system.slice/docker-<id>.scope". The
// innermost match wins where components nest (docker in docker, kind).
CgroupFacts ParseCgroupPath(absl::string_view path);

// Facts from the text of /proc/PID/cgroup: cgroup v2 ("0::/path"), v1 and
// hybrid. The unit and the container are each taken from the first line, in
// the order v2, name=systemd, other controllers, that has one: on a hybrid
// host a runtime with the cgroupfs driver writes only the v1 hierarchies
// while the v2 line still says the runtime's own service.
CgroupFacts ParseProcCgroup(absl::string_view proc_pid_cgroup_text);

// "docker", "podman", "containerd", "cri-o", "cri", "unknown"; "" for kNone.
absl::string_view RuntimeName(ContainerRuntime runtime);

}  // namespace geoip

#endif  // EXPORTER_LISTENERS_CGROUP_PATH_H_
