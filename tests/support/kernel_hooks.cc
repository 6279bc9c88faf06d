#include "tests/support/kernel_hooks.h"

#include <errno.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>

namespace geoip {
namespace {

constexpr const char* kAcceptFunction = "inet_csk_accept";

// "r0 = 0; exit": the smallest program every type accepts.
const struct bpf_insn kReturnZero[] = {
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .src_reg = 0, .off = 0, .imm = 0},
    {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0},
};
constexpr size_t kReturnZeroLength = sizeof(kReturnZero) / sizeof(kReturnZero[0]);

// Closes the descriptors it holds.
class Fds {
 public:
  ~Fds() {
    for (int fd : fds_) close(fd);
  }
  int Add(int fd) {
    if (fd >= 0) fds_.push_back(fd);
    return fd;
  }

 private:
  std::vector<int> fds_;
};

bool RawTracepointAttaches() {
  Fds fds;
  const int prog = fds.Add(bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, nullptr, "GPL", kReturnZero,
                                         kReturnZeroLength, nullptr));
  return prog >= 0 && fds.Add(bpf_raw_tracepoint_open("inet_sock_set_state", prog)) >= 0;
}

bool FexitAttaches() {
  struct btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) return false;
  const int id = btf__find_by_name_kind(vmlinux, kAcceptFunction, BTF_KIND_FUNC);
  btf__free(vmlinux);
  if (id <= 0) return false;
  LIBBPF_OPTS(bpf_prog_load_opts, options, .expected_attach_type = BPF_TRACE_FEXIT,
              .attach_btf_id = static_cast<__u32>(id));
  Fds fds;
  const int prog = fds.Add(bpf_prog_load(BPF_PROG_TYPE_TRACING, nullptr, "GPL", kReturnZero,
                                         kReturnZeroLength, &options));
  return prog >= 0 && fds.Add(bpf_raw_tracepoint_open(nullptr, prog)) >= 0;
}

// A number read from a sysfs file such as .../kprobe/type; -1 if unreadable.
long ReadNumber(const std::string& path, const std::string& prefix = "") {
  std::ifstream file(path);
  std::string text;
  if (!(file >> text) || text.compare(0, prefix.size(), prefix) != 0) return -1;
  try {
    return std::stol(text.substr(prefix.size()));
  } catch (...) {
    return -1;
  }
}

// A kretprobe through the kprobe PMU, as libbpf attaches it, with a kprobe
// program on it.
bool KretprobeAttaches() {
  const std::string pmu = "/sys/bus/event_source/devices/kprobe";
  const long type = ReadNumber(pmu + "/type");
  const long retprobe_bit = ReadNumber(pmu + "/format/retprobe", "config:");
  if (type < 0 || retprobe_bit < 0) return false;
  struct perf_event_attr attr {};
  attr.size = sizeof(attr);
  attr.type = static_cast<uint32_t>(type);
  attr.config = uint64_t{1} << retprobe_bit;
  attr.config1 = reinterpret_cast<uint64_t>(kAcceptFunction);
  Fds fds;
  const int event = fds.Add(
      static_cast<int>(syscall(SYS_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC)));
  if (event < 0) return false;
  const int prog = fds.Add(
      bpf_prog_load(BPF_PROG_TYPE_KPROBE, nullptr, "GPL", kReturnZero, kReturnZeroLength, nullptr));
  return prog >= 0 && ioctl(event, PERF_EVENT_IOC_SET_BPF, prog) == 0;
}

}  // namespace

bool KernelOffers(const std::string& mode) {
  static std::mutex mu;
  static std::map<std::string, bool> answers;  // the kernel does not change
  std::lock_guard<std::mutex> lock(mu);
  if (auto found = answers.find(mode); found != answers.end()) return found->second;
  bool offered = false;
  if (mode == "tracepoint") offered = RawTracepointAttaches();
  if (mode == "fexit") offered = FexitAttaches();
  if (mode == "kretprobe") offered = KretprobeAttaches();
  answers[mode] = offered;
  return offered;
}

const std::vector<std::string>& AutoOrder() {
  static const std::vector<std::string> order = {"tracepoint", "fexit", "kretprobe"};
  return order;
}

std::string ExpectedAutoMode() {
  for (const std::string& mode : AutoOrder()) {
    if (KernelOffers(mode)) return mode;
  }
  return "";
}

bool MapReadsNeedCapBpf() {
  if (ReadNumber("/proc/sys/kernel/unprivileged_bpf_disabled") == 0) return false;
  struct utsname name {};
  int major = 0, minor = 0;
  if (uname(&name) != 0 || sscanf(name.release, "%d.%d", &major, &minor) != 2) return true;
  return major < 6 || (major == 6 && minor < 5);
}

}  // namespace geoip
