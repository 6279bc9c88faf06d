#include "exporter/probe/accept_probe.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include <linux/types.h>

#include "bpf/accept_probe.h"
#include "accept_probe.skel.h"

namespace geoip {
namespace {

constexpr int kPorts = 65536;
constexpr const char* kBtfPath = "/sys/kernel/btf/vmlinux";

// libbpf's own messages of the attempt in progress; the last warning says
// best why a load failed.
thread_local std::string* libbpf_log = nullptr;

int CaptureLibbpfPrint(enum libbpf_print_level level, const char* format,
                       va_list args) {
  if (level == LIBBPF_DEBUG || libbpf_log == nullptr) return 0;
  char line[512];
  vsnprintf(line, sizeof(line), format, args);
  absl::string_view text = absl::StripTrailingAsciiWhitespace(line);
  // The first warning names the cause; later ones only repeat that it failed.
  absl::ConsumePrefix(&text, "libbpf: ");
  if (!text.empty() && libbpf_log->empty()) *libbpf_log = std::string(text);
  return 0;
}

struct SkeletonDeleter {
  void operator()(struct accept_probe* skel) const { accept_probe__destroy(skel); }
};
using Skeleton = std::unique_ptr<struct accept_probe, SkeletonDeleter>;

struct bpf_program* ProgramFor(struct accept_probe* skel, ProbeMode mode) {
  switch (mode) {
    case ProbeMode::kFexit:
      return skel->progs.fexit_accept;
    case ProbeMode::kKprobe:
      return skel->progs.kretprobe_accept;
    case ProbeMode::kTracepoint:
      return skel->progs.raw_tp_set_state;
    case ProbeMode::kAuto:
      break;
  }
  return nullptr;
}

// Why a mode may fail on a kernel that lacks it, said in the user's terms.
std::string Hint(ProbeMode mode, int err) {
  switch (mode) {
    case ProbeMode::kFexit:
      return "the kernel may lack BPF trampolines (fentry/fexit)";
    case ProbeMode::kKprobe:
      return err == ENOENT || err == EOPNOTSUPP
                 ? "the kernel may lack kprobes (CONFIG_KPROBES)"
                 : "kretprobe on inet_csk_accept unavailable";
    case ProbeMode::kTracepoint:
      return "the kernel may lack the sock:inet_sock_set_state tracepoint";
    case ProbeMode::kAuto:
      break;
  }
  return "";
}

struct Loaded {
  Skeleton skel;
  struct bpf_link* link;
};

absl::StatusOr<Loaded> LoadMode(const ProbeOptions& options, ProbeMode mode) {
  std::string last_message;
  libbpf_log = &last_message;
  struct Reset {
    ~Reset() { libbpf_log = nullptr; }
  } reset;

  Skeleton skel(accept_probe__open());
  if (!skel) {
    return absl::InternalError(
        absl::StrCat("cannot open the BPF object: ", strerror(errno)));
  }
  if (!options.ports.all()) {
    skel->rodata->filter_ports = true;
    static_assert(PortSet::kBitmapBytes == sizeof(skel->rodata->port_bitmap));
    const std::array<uint8_t, PortSet::kBitmapBytes> bitmap = options.ports.Bitmap();
    memcpy(const_cast<uint8_t*>(skel->rodata->port_bitmap), bitmap.data(), bitmap.size());
  }
  bpf_map__set_max_entries(skel->maps.counts0, options.max_addresses);
  bpf_map__set_max_entries(skel->maps.counts1, options.max_addresses);
  for (ProbeMode other : {ProbeMode::kFexit, ProbeMode::kKprobe, ProbeMode::kTracepoint}) {
    bpf_program__set_autoload(ProgramFor(skel.get(), other), other == mode);
  }

  int err = accept_probe__load(skel.get());
  if (err) {
    err = -err;
    return absl::UnavailableError(absl::StrFormat(
        "load failed: %s (%s)%s", strerror(err), Hint(mode, err),
        last_message.empty() ? "" : "; libbpf: " + last_message));
  }
  struct bpf_link* link = bpf_program__attach(ProgramFor(skel.get(), mode));
  if (link == nullptr) {
    err = errno;
    return absl::UnavailableError(absl::StrFormat(
        "attach failed: %s (%s)%s", strerror(err), Hint(mode, err),
        last_message.empty() ? "" : "; libbpf: " + last_message));
  }
  return Loaded{std::move(skel), link};
}

// Effective capability bits of this process, from /proc/self/status.
uint64_t EffectiveCapabilities() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (absl::ConsumePrefix(&rest, "CapEff:")) {
      return std::stoull(std::string(absl::StripAsciiWhitespace(rest)), nullptr, 16);
    }
  }
  return 0;
}

}  // namespace

absl::StatusOr<ProbeMode> ParseProbeMode(absl::string_view text) {
  if (text == "auto") return ProbeMode::kAuto;
  if (text == "fexit") return ProbeMode::kFexit;
  if (text == "kprobe") return ProbeMode::kKprobe;
  if (text == "tracepoint") return ProbeMode::kTracepoint;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown probe mode \"", text, "\": use auto, fexit, kprobe or tracepoint"));
}

absl::string_view ProbeModeName(ProbeMode mode) {
  switch (mode) {
    case ProbeMode::kAuto:
      return "auto";
    case ProbeMode::kFexit:
      return "fexit";
    case ProbeMode::kKprobe:
      return "kprobe";
    case ProbeMode::kTracepoint:
      return "tracepoint";
  }
  return "unknown";
}

absl::Status CheckProbePrerequisites() {
  constexpr int kCapSysAdmin = 21, kCapPerfmon = 38, kCapBpf = 39;
  const uint64_t caps = EffectiveCapabilities();
  const bool admin = caps & (uint64_t{1} << kCapSysAdmin);
  const bool bpf = (caps & (uint64_t{1} << kCapBpf)) && (caps & (uint64_t{1} << kCapPerfmon));
  if (!admin && !bpf) {
    return absl::PermissionDeniedError(
        "loading the eBPF probe needs root or the capabilities CAP_BPF and "
        "CAP_PERFMON: run with sudo, or grant them with "
        "`setcap cap_bpf,cap_perfmon+ep ebpf_geoip_exporter`");
  }
  if (access(kBtfPath, R_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the kernel exposes no BTF at ", kBtfPath,
        ", which the probe needs to adapt to this kernel: use a kernel built "
        "with CONFIG_DEBUG_INFO_BTF=y (Debian's kernels have it since 5.10)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AcceptProbe>> AcceptProbe::Attach(
    const ProbeOptions& options, std::vector<std::string>* attempts) {
  if (absl::Status ready = CheckProbePrerequisites(); !ready.ok()) return ready;
  libbpf_set_print(CaptureLibbpfPrint);

  std::vector<ProbeMode> order = {options.mode};
  if (options.mode == ProbeMode::kAuto) {
    order = {ProbeMode::kFexit, ProbeMode::kKprobe, ProbeMode::kTracepoint};
  }
  std::string failures;
  for (ProbeMode mode : order) {
    absl::StatusOr<Loaded> loaded = LoadMode(options, mode);
    if (loaded.ok()) {
      if (attempts) attempts->push_back(absl::StrCat(ProbeModeName(mode), ": attached"));
      return std::unique_ptr<AcceptProbe>(new AcceptProbe(
          loaded->skel.release(), loaded->link, mode, options.max_addresses));
    }
    std::string line = absl::StrCat(ProbeModeName(mode), ": ", loaded.status().message());
    if (attempts) attempts->push_back(line);
    absl::StrAppend(&failures, failures.empty() ? "" : "; ", line);
  }
  return absl::UnavailableError(absl::StrCat(
      "no probe mode could attach (", failures, ")",
      options.mode == ProbeMode::kAuto ? ""
                                       : "; try --probe=auto to fall back to what this kernel supports"));
}

AcceptProbe::AcceptProbe(struct accept_probe* skel, struct bpf_link* link,
                         ProbeMode mode, uint32_t max_addresses)
    : skel_(skel),
      link_(link),
      mode_(mode),
      max_addresses_(max_addresses),
      overflow_seen_(kPorts, 0),
      keys_(size_t{max_addresses} * sizeof(struct accept_key)),
      values_(max_addresses) {}

AcceptProbe::~AcceptProbe() {
  bpf_link__destroy(link_);
  accept_probe__destroy(skel_);
}

absl::Status AcceptProbe::Drain(DrainResult* result) {
  result->counts.clear();
  result->overflow.clear();

  // Flip the generation so new counts go to the other map, then wait until
  // no program is still inside the old one (see enter_generation()).
  volatile __u64* generation = &skel_->bss->generation;
  const __u64 old = __atomic_load_n(generation, __ATOMIC_SEQ_CST);
  const int slot = old & 1;
  __atomic_store_n(generation, old + 1, __ATOMIC_SEQ_CST);
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  while (__atomic_load_n(&skel_->bss->inflight[slot], __ATOMIC_SEQ_CST) != 0) {
    if (absl::Now() > deadline) {
      return absl::InternalError("a probe program stayed in the old map for over 1s");
    }
    sched_yield();
  }
  struct bpf_map* map = slot == 0 ? skel_->maps.counts0 : skel_->maps.counts1;
  if (absl::Status drained = DrainMap(bpf_map__fd(map), result); !drained.ok()) {
    return drained;
  }
  return DrainOverflow(result);
}

absl::Status AcceptProbe::DrainMap(int map_fd, DrainResult* result) {
  // No program writes this map now, so read-and-delete loses nothing. The
  // buffers hold the whole map, so one batch normally suffices.
  uint32_t out_batch = 0;
  void* in_batch = nullptr;
  for (int round = 0; round < 64; ++round) {
    uint32_t count = max_addresses_;
    int err = bpf_map_lookup_and_delete_batch(map_fd, in_batch, &out_batch,
                                              keys_.data(), values_.data(),
                                              &count, nullptr);
    const int saved_errno = errno;
    const auto* keys = reinterpret_cast<const struct accept_key*>(keys_.data());
    for (uint32_t i = 0; i < count; ++i) {
      result->counts.push_back(DrainedCount{
          IpAddress::FromRaw(keys[i].af, keys[i].addr), keys[i].port, values_[i]});
    }
    if (err == 0) {
      in_batch = &out_batch;
      continue;
    }
    if (saved_errno == ENOENT) return absl::OkStatus();  // map is empty now
    return absl::InternalError(absl::StrCat(
        "reading the kernel's connection counts failed: ", strerror(saved_errno)));
  }
  return absl::OkStatus();
}

absl::Status AcceptProbe::DrainOverflow(DrainResult* result) {
  const uint64_t total = __atomic_load_n(&skel_->bss->overflow_total, __ATOMIC_SEQ_CST);
  if (total == overflow_seen_total_) return absl::OkStatus();
  // Rare: only when a map filled up. Read every port's cumulative count.
  const int fd = bpf_map__fd(skel_->maps.overflow_by_port);
  for (uint32_t port = 0; port < kPorts; ++port) {
    uint64_t value = 0;
    if (bpf_map_lookup_elem(fd, &port, &value) != 0) continue;
    if (value != overflow_seen_[port]) {
      result->overflow.emplace_back(static_cast<uint16_t>(port), value - overflow_seen_[port]);
      overflow_seen_[port] = value;
    }
  }
  overflow_seen_total_ = total;
  return absl::OkStatus();
}

}  // namespace geoip
