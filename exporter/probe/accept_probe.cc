#include "exporter/probe/accept_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <linux/types.h>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

// First: the skeleton's .bss is made of its types.
#include "bpf/accept_probe.h"

#include "accept_probe.skel.h"
#include "exporter/util/proc_status.h"

namespace geoip {
namespace {

constexpr int kPorts = 65536;
constexpr const char* kBtfPath = "/sys/kernel/btf/vmlinux";
constexpr const char* kBpfFs = "/sys/fs/bpf";
constexpr unsigned long kBpfFsMagic = 0xcafe4a11;
// The maps that outlive the exporter when pinned, and the attachment.
constexpr const char* kPinnedMaps[] = {
    "counts0",  "counts1",   "overflow0", "overflow1",  "pending",   "listeners", "traffic0",
    "traffic1", "failures0", "failures1", "open_conns", "half_open", "bss"};
// The counting hook's link; in the accept-hook modes the tracepoint that
// parks handshakes for it; the hooks that see refused and incomplete
// connections.
constexpr const char* kPinnedLinks[] = {"link", "link_handshake", "link_dropped", "link_synack"};
// Entries read from a map per batch.
constexpr uint32_t kBatch = 4096;

struct bpf_map* MapNamed(struct accept_probe* skel, absl::string_view name) {
  if (name == "counts0") return skel->maps.counts0;
  if (name == "counts1") return skel->maps.counts1;
  if (name == "overflow0") return skel->maps.overflow0;
  if (name == "overflow1") return skel->maps.overflow1;
  if (name == "pending") return skel->maps.pending;
  if (name == "listeners") return skel->maps.listeners;
  if (name == "traffic0") return skel->maps.traffic0;
  if (name == "traffic1") return skel->maps.traffic1;
  if (name == "failures0") return skel->maps.failures0;
  if (name == "failures1") return skel->maps.failures1;
  if (name == "open_conns") return skel->maps.open_conns;
  if (name == "half_open") return skel->maps.half_open;
  return skel->maps.bss;
}

void RemovePinnedLinks(const std::string& pin_path) {
  for (const char* name : kPinnedLinks) unlink((pin_path + "/" + name).c_str());
}

// Removes every pin of an earlier exporter. Its programs, if still
// attached through the pinned links, are detached by this.
void RemovePins(const std::string& pin_path) {
  for (const char* name : kPinnedMaps) unlink((pin_path + "/" + name).c_str());
  RemovePinnedLinks(pin_path);
}

bool IsBpfFs(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 && static_cast<unsigned long>(fs.f_type) == kBpfFsMagic;
}

// Locks the pin directory so two exporters never drain the same maps.
absl::StatusOr<UniqueFd> LockPinPath(const std::string& pin_path) {
  const size_t slash = pin_path.rfind('/');
  const std::string parent = slash == 0 ? "/" : pin_path.substr(0, slash);
  if (!IsBpfFs(parent)) {
    return absl::FailedPreconditionError(
        absl::StrCat("--bpf.pin-path=", pin_path, ": ", parent,
                     " is not a bpf filesystem; mount one with `mount -t bpf bpf /sys/fs/bpf`, or "
                     "pass --bpf.pin-path= to run without pinning"));
  }
  if (mkdir(pin_path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", pin_path));
  }
  UniqueFd fd(open(pin_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", pin_path));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("another ebpf_geoip_exporter is running with --bpf.pin-path=", pin_path,
                     ": stop it, or give this one another pin path"));
  }
  return fd;
}

uint64_t NewInstanceId() {
  uint64_t id = 0;
  while (id == 0) {
    if (getrandom(&id, sizeof(id), 0) != sizeof(id))
      id = static_cast<uint64_t>(getpid()) << 32 | time(nullptr);
  }
  return id;
}

// libbpf's own messages of the attempt in progress; the last warning says
// best why a load failed.
thread_local std::string* libbpf_log = nullptr;

int CaptureLibbpfPrint(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || libbpf_log == nullptr) return 0;
  char line[512];
  vsnprintf(line, sizeof(line), format, args);
  absl::string_view text = absl::StripTrailingAsciiWhitespace(line);
  // The first warning names the cause; later ones only repeat that it failed.
  absl::ConsumePrefix(&text, "libbpf: ");
  if (!text.empty() && libbpf_log->empty()) *libbpf_log = std::string(text);
  return 0;
}

using Skeleton = AcceptProbe::Skeleton;
using Link = AcceptProbe::Link;

// True if the running kernel is at least major.minor.
bool KernelAtLeast(int major, int minor) {
  struct utsname name {};
  int running_major = 0, running_minor = 0;
  if (uname(&name) != 0 || sscanf(name.release, "%d.%d", &running_major, &running_minor) != 2) {
    return false;
  }
  return running_major > major || (running_major == major && running_minor >= minor);
}

// True if the kernel's BTF has the enum type `name`.
bool KernelHasEnum(const char* name) {
  struct btf* vmlinux = btf__load_vmlinux_btf();
  if (vmlinux == nullptr) return false;
  const bool found = btf__find_by_name_kind(vmlinux, name, BTF_KIND_ENUM) >= 0;
  btf__free(vmlinux);
  return found;
}

// Reads and deletes every entry of a map no program writes now, kBatch at a
// time, calling take(key, value) for each. `what` names it in errors.
template <typename Key, typename Value, typename Take>
absl::Status DrainWhole(int map_fd, uint32_t capacity, absl::string_view what, Take take) {
  std::vector<Key> keys(kBatch);
  std::vector<Value> values(kBatch);
  uint32_t out_batch = 0;
  void* in_batch = nullptr;
  for (uint32_t round = 0; round <= capacity / kBatch + 64; ++round) {
    uint32_t count = kBatch;
    const int err = bpf_map_lookup_and_delete_batch(map_fd, in_batch, &out_batch, keys.data(),
                                                    values.data(), &count, nullptr);
    const int saved_errno = errno;
    for (uint32_t i = 0; i < count; ++i) take(keys[i], values[i]);
    if (err == 0) {
      in_batch = &out_batch;
      continue;
    }
    if (saved_errno == ENOENT) return absl::OkStatus();  // map is empty now
    return absl::InternalError(
        absl::StrCat("reading the kernel's ", what, " failed: ", strerror(saved_errno)));
  }
  return absl::OkStatus();
}

DrainedTraffic ToTraffic(const struct traffic_value& value) {
  DrainedTraffic traffic;
  traffic.received_bytes = value.received_bytes;
  traffic.sent_bytes = value.sent_bytes;
  traffic.closed = value.closed;
  traffic.duration_ns = value.duration_ns;
  static_assert(kDurationBuckets == GEOIP_DURATION_BUCKETS);
  std::copy(std::begin(value.duration_buckets), std::end(value.duration_buckets),
            traffic.duration_buckets.begin());
  return traffic;
}

struct bpf_program* ProgramFor(struct accept_probe* skel, ProbeMode mode) {
  switch (mode) {
    case ProbeMode::kFexit:
      return skel->progs.fexit_accept;
    case ProbeMode::kKretprobe:
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
    case ProbeMode::kKretprobe:
      return err == ENOENT || err == EOPNOTSUPP ? "the kernel may lack kprobes (CONFIG_KPROBES)"
                                                : "kretprobe on inet_csk_accept unavailable";
    case ProbeMode::kTracepoint:
      return "the kernel may lack the sock:inet_sock_set_state tracepoint";
    case ProbeMode::kAuto:
      break;
  }
  return "";
}

bool UsesAcceptHook(ProbeMode mode) {
  return mode == ProbeMode::kFexit || mode == ProbeMode::kKretprobe;
}

// Attaches program; the error names the mode and what the kernel may lack.
absl::StatusOr<Link> AttachProgram(struct bpf_program* program, ProbeMode mode,
                                   const std::string& last_message) {
  Link link(bpf_program__attach(program));
  if (!link) {
    const int err = errno;
    return absl::UnavailableError(
        absl::StrFormat("attach failed: %s (%s)%s", strerror(err), Hint(mode, err),
                        last_message.empty() ? "" : "; libbpf: " + last_message));
  }
  return link;
}

// Points skel->bss at the kernel's map. libbpf 1.5 (Debian 13) maps a
// global-data map into the skeleton only when it creates the map: a .bss
// reused from a pin stays a private copy, so active_instance and generation
// would never reach the programs and a taken-over probe would stop counting.
// libbpf 1.1 (Debian 12) maps every one; doing it here serves both.
absl::Status MapBssOntoKernelMap(struct accept_probe* skel) {
  struct bpf_map* map = skel->maps.bss;
  if ((bpf_map__map_flags(map) & BPF_F_MMAPABLE) == 0) return absl::OkStatus();
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t size = (bpf_map__value_size(map) + page - 1) / page * page;
  if (mmap(skel->bss, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, bpf_map__fd(map), 0) ==
      MAP_FAILED) {
    return absl::ErrnoToStatus(errno, "mmap() of the pinned .bss map");
  }
  return absl::OkStatus();
}

struct Loaded {
  Skeleton skel;
  std::vector<Link> links;              // the counting hook first
  std::vector<const char*> link_names;  // where each is pinned (kPinnedLinks)
  Link traffic_iterator;                // runs each drain; never pinned
};

// The optional parts of the probe. A kernel may refuse one (too old, or a
// policy against it) and still run the rest.
struct Extras {
  bool open_traffic = true;  // bytes of connections still open (iterator)
  bool refused = true;       // refused connections (kfree_skb)
};

absl::StatusOr<Loaded> LoadMode(const ProbeOptions& options, ProbeMode mode, uint64_t instance_id,
                                const Extras& extras) {
  std::string last_message;
  libbpf_log = &last_message;
  struct Reset {
    ~Reset() { libbpf_log = nullptr; }
  } reset;

  Skeleton skel(accept_probe__open());
  if (!skel) {
    return absl::InternalError(absl::StrCat("cannot open the BPF object: ", strerror(errno)));
  }
  if (!options.ports.all()) {
    skel->rodata->filter_ports = true;
    static_assert(PortSet::kBitmapBytes == sizeof(skel->rodata->port_bitmap));
    const std::array<uint8_t, PortSet::kBitmapBytes> bitmap = options.ports.Bitmap();
    memcpy(const_cast<uint8_t*>(skel->rodata->port_bitmap), bitmap.data(), bitmap.size());
  }
  skel->rodata->instance_id = instance_id;
  // BPF compare-and-swap, which the byte counts take turns with: 5.12.
  const bool traffic = options.traffic && KernelAtLeast(5, 12);
  skel->rodata->track_traffic = traffic;
  for (struct bpf_map* map :
       {skel->maps.counts0, skel->maps.counts1, skel->maps.failures0, skel->maps.failures1}) {
    bpf_map__set_max_entries(map, options.max_addresses);
  }
  // Without bytes and lifetimes their maps stay unused: the smallest size
  // (27 MiB less kernel memory at the defaults).
  for (struct bpf_map* map : {skel->maps.traffic0, skel->maps.traffic1}) {
    bpf_map__set_max_entries(map, traffic ? options.max_addresses : 1);
  }
  // Whole blocks of slots (see slot_of in the probe).
  const uint32_t open_slots = traffic ? (options.max_open_connections + GEOIP_OPEN_BLOCK - 1) /
                                            GEOIP_OPEN_BLOCK * GEOIP_OPEN_BLOCK
                                      : GEOIP_OPEN_BLOCK;
  skel->rodata->open_slots = open_slots;
  bpf_map__set_max_entries(skel->maps.open_conns, open_slots / GEOIP_OPEN_BLOCK);
  bpf_program__set_autoload(skel->progs.live_traffic, traffic && extras.open_traffic);
  // The drop reason that says "refused" came with Linux 5.17.
  bpf_program__set_autoload(skel->progs.dropped_skb,
                            extras.refused && KernelHasEnum("skb_drop_reason"));
  if (!options.pin_path.empty()) {
    // libbpf reuses a compatible pinned map, or creates and pins a new one.
    for (const char* name : kPinnedMaps) {
      bpf_map__set_pin_path(MapNamed(skel.get(), name), (options.pin_path + "/" + name).c_str());
    }
  }
  // The tracepoint always loads: it counts, or parks handshakes for the hook.
  skel->rodata->accept_hook = UsesAcceptHook(mode);
  for (ProbeMode other : {ProbeMode::kFexit, ProbeMode::kKretprobe, ProbeMode::kTracepoint}) {
    bpf_program__set_autoload(ProgramFor(skel.get(), other),
                              other == mode || other == ProbeMode::kTracepoint);
  }

  int err = accept_probe__load(skel.get());
  if (err) {
    err = -err;
    return absl::UnavailableError(
        absl::StrFormat("load failed: %s (%s)%s", strerror(err), Hint(mode, err),
                        last_message.empty() ? "" : "; libbpf: " + last_message));
  }
  if (!options.pin_path.empty()) {
    absl::Status mapped = MapBssOntoKernelMap(skel.get());
    if (!mapped.ok()) return mapped;
  }
  std::vector<Link> links;
  absl::StatusOr<Link> hook = AttachProgram(ProgramFor(skel.get(), mode), mode, last_message);
  if (!hook.ok()) return hook.status();
  links.push_back(*std::move(hook));
  std::vector<const char*> link_names = {kPinnedLinks[0]};
  if (UsesAcceptHook(mode)) {
    absl::StatusOr<Link> handshake = AttachProgram(ProgramFor(skel.get(), ProbeMode::kTracepoint),
                                                   ProbeMode::kTracepoint, last_message);
    if (!handshake.ok()) return handshake.status();
    links.push_back(*std::move(handshake));
    link_names.push_back(kPinnedLinks[1]);
  }
  if (bpf_program__autoload(skel->progs.dropped_skb)) {
    absl::StatusOr<Link> dropped =
        AttachProgram(skel->progs.dropped_skb, ProbeMode::kTracepoint, last_message);
    if (!dropped.ok()) return dropped.status();
    links.push_back(*std::move(dropped));
    link_names.push_back(kPinnedLinks[2]);
  }
  absl::StatusOr<Link> synack =
      AttachProgram(skel->progs.synack_again, ProbeMode::kTracepoint, last_message);
  if (!synack.ok()) return synack.status();
  links.push_back(*std::move(synack));
  link_names.push_back(kPinnedLinks[3]);
  Link traffic_iterator;
  if (bpf_program__autoload(skel->progs.live_traffic)) {
    union bpf_iter_link_info info {};
    info.map.map_fd = bpf_map__fd(skel->maps.open_conns);
    LIBBPF_OPTS(bpf_iter_attach_opts, iter_options, .link_info = &info,
                .link_info_len = sizeof(info));
    traffic_iterator.reset(bpf_program__attach_iter(skel->progs.live_traffic, &iter_options));
    if (!traffic_iterator) {
      return absl::UnavailableError(
          absl::StrCat("attaching the iterator over open connections failed: ", strerror(errno),
                       last_message.empty() ? "" : "; libbpf: " + last_message));
    }
  }
  return Loaded{std::move(skel), std::move(links), std::move(link_names),
                std::move(traffic_iterator)};
}

}  // namespace

absl::StatusOr<ProbeMode> ParseProbeMode(absl::string_view text) {
  if (text == "auto") return ProbeMode::kAuto;
  if (text == "fexit") return ProbeMode::kFexit;
  if (text == "kretprobe") return ProbeMode::kKretprobe;
  if (text == "tracepoint") return ProbeMode::kTracepoint;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown probe mode \"", text, "\": use auto, tracepoint, fexit or kretprobe"));
}

absl::string_view ProbeModeName(ProbeMode mode) {
  switch (mode) {
    case ProbeMode::kAuto:
      return "auto";
    case ProbeMode::kFexit:
      return "fexit";
    case ProbeMode::kKretprobe:
      return "kretprobe";
    case ProbeMode::kTracepoint:
      return "tracepoint";
  }
  return "unknown";
}

absl::Status CheckProbePrerequisites() {
  const bool admin = HasEffectiveCapability(kCapSysAdmin);
  const bool bpf = HasEffectiveCapability(kCapBpf) && HasEffectiveCapability(kCapPerfmon);
  if (!admin && !bpf) {
    return absl::PermissionDeniedError(
        "loading the eBPF probe needs root or the capabilities CAP_BPF and "
        "CAP_PERFMON: run with sudo, or grant them with "
        "`setcap cap_bpf,cap_perfmon+ep ebpf_geoip_exporter`");
  }
  if (access(kBtfPath, R_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the kernel exposes no BTF at ", kBtfPath,
                     ", which the probe needs to adapt to this kernel: use a kernel built "
                     "with CONFIG_DEBUG_INFO_BTF=y (Debian's kernels have it since 5.10)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AcceptProbe>> AcceptProbe::Attach(
    const ProbeOptions& options, std::vector<std::string>* attempts) {
  if (absl::Status ready = CheckProbePrerequisites(); !ready.ok()) return ready;
  libbpf_set_print(CaptureLibbpfPrint);

  UniqueFd pin_lock;
  if (!options.pin_path.empty()) {
    absl::StatusOr<UniqueFd> lock = LockPinPath(options.pin_path);
    if (!lock.ok()) return lock.status();
    pin_lock = *std::move(lock);
  }
  auto log = [attempts](std::string line) {
    if (attempts) attempts->push_back(std::move(line));
  };

  std::vector<ProbeMode> order = {options.mode};
  if (options.mode == ProbeMode::kAuto) {
    order.assign(std::begin(kAutoOrder), std::end(kAutoOrder));
  }
  const uint64_t instance_id = NewInstanceId();
  std::string failures;
  for (ProbeMode mode : order) {
    Extras extras;
    absl::StatusOr<Loaded> loaded = LoadMode(options, mode, instance_id, extras);
    if (!loaded.ok() && !options.pin_path.empty() &&
        absl::StrContains(loaded.status().message(), "reuse pinned map")) {
      // Pinned by a build with another map layout or size: start afresh.
      log(absl::StrCat("pinned maps in ", options.pin_path,
                       " do not match this build or --bpf.max-addresses; replacing them "
                       "(connections not yet drained from them are lost)"));
      RemovePins(options.pin_path);
      loaded = LoadMode(options, mode, instance_id, extras);
    }
    // An optional program the kernel refuses: go on without it, and say so.
    for (int retry = 0; retry < 2 && !loaded.ok(); ++retry) {
      absl::string_view message = loaded.status().message();
      // libbpf's words name the program; the mode's hint does not apply.
      if (const size_t libbpf = message.find("libbpf: "); libbpf != absl::string_view::npos) {
        message.remove_prefix(libbpf + 8);
      }
      if (extras.open_traffic && absl::StrContains(message, "'live_traffic'")) {
        extras.open_traffic = false;
        log(absl::StrCat("open connections: this kernel refused the iterator over them (", message,
                         "); bytes of a connection are counted when it closes, not while open"));
      } else if (extras.refused && absl::StrContains(message, "'dropped_skb'")) {
        extras.refused = false;
        log(absl::StrCat("refused connections: this kernel refused the kfree_skb hook (", message,
                         "); they are not counted"));
      } else {
        break;
      }
      loaded = LoadMode(options, mode, instance_id, extras);
    }
    if (!loaded.ok()) {
      std::string line = absl::StrCat(ProbeModeName(mode), ": ", loaded.status().message());
      log(line);
      absl::StrAppend(&failures, failures.empty() ? "" : "; ", line);
      continue;
    }
    log(absl::StrCat(ProbeModeName(mode), ": attached"));
    if (options.traffic && !KernelAtLeast(5, 12)) {
      log("bytes and lifetimes: not counted, the probe needs Linux 5.12 or later for them "
          "(compare-and-swap in BPF)");
    }
    Skeleton skel = std::move(loaded->skel);
    // From here on only this program counts; one still attached from an
    // earlier exporter stops, and its counts wait in the shared maps.
    __atomic_store_n(&skel->bss->active_instance, instance_id, __ATOMIC_SEQ_CST);
    if (!options.pin_path.empty()) {
      const bool replaced = access((options.pin_path + "/" + kPinnedLinks[0]).c_str(), F_OK) == 0;
      // Unpinning detaches the earlier exporter's programs.
      RemovePinnedLinks(options.pin_path);
      for (size_t i = 0; i < loaded->links.size(); ++i) {
        const std::string link_pin = options.pin_path + "/" + loaded->link_names[i];
        if (bpf_link__pin(loaded->links[i].get(), link_pin.c_str()) != 0) {
          log(absl::StrCat("cannot pin the probe at ", link_pin, ": ", strerror(errno),
                           "; it will stop with the exporter"));
          RemovePinnedLinks(options.pin_path);
          break;
        }
        if (i + 1 == loaded->links.size()) {
          log(absl::StrCat("pinned at ", options.pin_path,
                           replaced ? " (took over from an earlier exporter)" : ""));
        }
      }
    }
    return std::unique_ptr<AcceptProbe>(new AcceptProbe(
        std::move(skel), std::move(loaded->links), std::move(loaded->traffic_iterator), mode,
        options.max_addresses, std::move(pin_lock)));
  }
  if (pin_lock.valid()) {
    // Leave nothing behind from the failed attempts, unless an earlier
    // exporter's probe is still pinned there and counting.
    if (access((options.pin_path + "/" + kPinnedLinks[0]).c_str(), F_OK) != 0) {
      RemovePins(options.pin_path);
      rmdir(options.pin_path.c_str());
    }
  }
  return absl::UnavailableError(
      absl::StrCat("no probe mode could attach (", failures, ")",
                   options.mode == ProbeMode::kAuto
                       ? ""
                       : "; try --bpf.probe=auto to fall back to what this kernel supports"));
}

std::string DefaultPinPath() {
  return IsBpfFs(kBpfFs) ? std::string(kBpfFs) + "/ebpf_geoip" : std::string();
}

void BpfLinkDeleter::operator()(struct bpf_link* link) const {
  // A pinned link keeps its program attached after this; otherwise this
  // detaches it.
  bpf_link__destroy(link);
}

void SkeletonDeleter::operator()(struct accept_probe* skel) const { accept_probe__destroy(skel); }

AcceptProbe::AcceptProbe(Skeleton skel, std::vector<Link> links, Link traffic_iterator,
                         ProbeMode mode, uint32_t max_addresses, UniqueFd pin_lock)
    : skel_(std::move(skel)),
      links_(std::move(links)),
      traffic_iterator_(std::move(traffic_iterator)),
      mode_(mode),
      max_addresses_(max_addresses),
      adopt_parked_(mode == ProbeMode::kTracepoint && pin_lock.valid()),
      pin_lock_(std::move(pin_lock)),
      keys_(size_t{max_addresses} * sizeof(struct accept_key)),
      values_(max_addresses) {}

AcceptProbe::~AcceptProbe() {
  traffic_iterator_.reset();
  links_.clear();  // before the skeleton that owns the programs
  skel_.reset();
}

absl::Status AcceptProbe::Drain(DrainResult* result) {
  *result = DrainResult();
  // Bytes of the connections still open go into the generation being
  // filled, so this drain reads them.
  if (absl::Status live = ReadOpenConnections(); !live.ok()) return live;

  // Flip the generation so new counts go to the other map, then wait until
  // no program is still inside the old one (see enter_generation()).
  volatile __u64* generation = &skel_->bss->generation;
  const __u64 old = __atomic_load_n(generation, __ATOMIC_SEQ_CST);
  const int slot = old & 1;
  __atomic_store_n(generation, old + 1, __ATOMIC_SEQ_CST);
  const absl::Time deadline = absl::Now() + absl::Seconds(1);
  for (const struct inflight_pair& cpu : skel_->bss->inflight) {
    while (__atomic_load_n(&cpu.count[slot], __ATOMIC_SEQ_CST) != 0) {
      if (absl::Now() > deadline) {
        return absl::InternalError("a probe program stayed in the old map for over 1s");
      }
      sched_yield();
    }
  }
  struct bpf_map* map = slot == 0 ? skel_->maps.counts0 : skel_->maps.counts1;
  if (absl::Status drained = DrainMap(bpf_map__fd(map), result); !drained.ok()) {
    return drained;
  }
  __atomic_store_n(&skel_->bss->inserted[slot], 0, __ATOMIC_SEQ_CST);
  if (absl::Status overflow = DrainOverflow(slot, result); !overflow.ok()) return overflow;
  if (absl::Status traffic = DrainTraffic(slot, result); !traffic.ok()) return traffic;
  if (absl::Status failures = DrainFailures(slot, result); !failures.ok()) return failures;
  if (absl::Status half_open = ExpireHalfOpen(result); !half_open.ok()) return half_open;
  if (adopt_parked_) {
    adopt_parked_ = false;
    return AdoptParked(result);
  }
  return absl::OkStatus();
}

absl::Status AcceptProbe::AdoptParked(DrainResult* result) {
  // An accept-hook exporter parked these handshakes in the pinned map; its
  // programs are inert now and this one never parks, so nothing else
  // touches the map: count each once and delete it.
  const int fd = bpf_map__fd(skel_->maps.pending);
  std::vector<uint64_t> sockets(GEOIP_PENDING_ENTRIES);
  std::vector<struct accept_key> keys(GEOIP_PENDING_ENTRIES);
  uint32_t count = GEOIP_PENDING_ENTRIES, out_batch = 0;
  if (bpf_map_lookup_and_delete_batch(fd, nullptr, &out_batch, sockets.data(), keys.data(), &count,
                                      nullptr) != 0 &&
      errno != ENOENT) {
    return absl::InternalError(absl::StrCat(
        "reading the connections an earlier exporter left waiting for accept() failed: ",
        strerror(errno)));
  }
  for (uint32_t i = 0; i < count; ++i) {
    // af 0: the hook's mark for a socket whose handshake this probe counts.
    if (keys[i].af == 0) continue;
    result->counts.push_back(
        DrainedCount{IpAddress::FromRaw(keys[i].af, keys[i].addr), keys[i].port, keys[i].netns, 1});
  }
  return absl::OkStatus();
}

bool AcceptProbe::ShouldDrainEarly() const {
  const int slot = __atomic_load_n(&skel_->bss->generation, __ATOMIC_RELAXED) & 1;
  return __atomic_load_n(&skel_->bss->inserted[slot], __ATOMIC_RELAXED) >= max_addresses_ / 2;
}

uint64_t AcceptProbe::ListenersChanged() const {
  return __atomic_load_n(&skel_->bss->listeners_changed, __ATOMIC_ACQUIRE);
}

std::vector<ListeningSocket> AcceptProbe::Listeners() const {
  // The map changes while this reads it (LRU eviction, new listeners): a
  // key that vanished between get_next_key and lookup is skipped, and a
  // walk that lost its place starts over, at most a few times.
  std::vector<ListeningSocket> listeners;
  const int fd = bpf_map__fd(skel_->maps.listeners);
  struct listener_key key {
  }, next{};
  struct listener_key* previous = nullptr;
  for (int visited = 0; visited < 4 * GEOIP_LISTENER_ENTRIES; ++visited) {
    if (bpf_map_get_next_key(fd, previous, &next) != 0) break;
    struct listener_value value {};
    if (bpf_map_lookup_elem(fd, &next, &value) == 0) {
      ListeningSocket listener;
      listener.netns = next.netns;
      listener.port = next.port;
      listener.pid = value.tgid;
      listener.cgroup_id = value.cgroup_id;
      listener.comm.assign(value.comm, strnlen(value.comm, sizeof(value.comm)));
      listeners.push_back(std::move(listener));
    }
    key = next;
    previous = &key;
  }
  return listeners;
}

ProbeHealth AcceptProbe::Health() const {
  ProbeHealth health;
  health.accept_misses = __atomic_load_n(&skel_->bss->accept_misses, __ATOMIC_RELAXED);
  health.pending_full = __atomic_load_n(&skel_->bss->pending_full, __ATOMIC_RELAXED);
  health.untracked_connections =
      __atomic_load_n(&skel_->bss->untracked_connections, __ATOMIC_RELAXED);
  health.traffic_races = __atomic_load_n(&skel_->bss->traffic_races, __ATOMIC_RELAXED);
  health.missed_closes = __atomic_load_n(&skel_->bss->missed_closes, __ATOMIC_RELAXED);
  health.open_connection_bytes = traffic_iterator_ != nullptr;
  health.refused_connections = bpf_program__fd(skel_->progs.dropped_skb) >= 0;
  struct bpf_program* program;
  bpf_object__for_each_program(program, skel_->obj) {
    if (!bpf_program__autoload(program) || bpf_program__fd(program) < 0) continue;
    struct bpf_prog_info info {};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(bpf_program__fd(program), &info, &length) != 0) continue;
    health.recursion_misses += info.recursion_misses;
    health.programs.push_back({bpf_program__name(program), info.run_cnt, info.run_time_ns});
  }
  return health;
}

absl::Status AcceptProbe::DrainMap(int map_fd, DrainResult* result) {
  // No program writes this map now, so read-and-delete loses nothing. The
  // buffers hold the whole map, so one batch normally suffices.
  uint32_t out_batch = 0;
  void* in_batch = nullptr;
  for (int round = 0; round < 64; ++round) {
    uint32_t count = max_addresses_;
    int err = bpf_map_lookup_and_delete_batch(map_fd, in_batch, &out_batch, keys_.data(),
                                              values_.data(), &count, nullptr);
    const int saved_errno = errno;
    const auto* keys = reinterpret_cast<const struct accept_key*>(keys_.data());
    for (uint32_t i = 0; i < count; ++i) {
      result->counts.push_back(DrainedCount{IpAddress::FromRaw(keys[i].af, keys[i].addr),
                                            keys[i].port, keys[i].netns, values_[i]});
    }
    if (err == 0) {
      in_batch = &out_batch;
      continue;
    }
    if (saved_errno == ENOENT) return absl::OkStatus();  // map is empty now
    return absl::InternalError(
        absl::StrCat("reading the kernel's connection counts failed: ", strerror(saved_errno)));
  }
  return absl::OkStatus();
}

absl::Status AcceptProbe::DrainOverflow(int slot, DrainResult* result) {
  // Rare: only when the slot's map filled up. Nothing writes the slot now.
  if (__atomic_load_n(&skel_->bss->overflow_total[slot], __ATOMIC_SEQ_CST) == 0) {
    return absl::OkStatus();
  }
  const int fd = bpf_map__fd(slot == 0 ? skel_->maps.overflow0 : skel_->maps.overflow1);
  std::vector<uint32_t> ports(kPorts);
  std::vector<uint64_t> counts(kPorts);
  uint32_t count = kPorts, out_batch = 0;
  if (bpf_map_lookup_batch(fd, nullptr, &out_batch, ports.data(), counts.data(), &count, nullptr) !=
          0 &&
      errno != ENOENT) {
    return absl::InternalError(
        absl::StrCat("reading the kernel's overflow counts failed: ", strerror(errno)));
  }
  const uint64_t zero = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (counts[i] == 0) continue;
    result->overflow.emplace_back(static_cast<uint16_t>(ports[i]), counts[i]);
    if (bpf_map_update_elem(fd, &ports[i], &zero, BPF_ANY) != 0) {
      // Not zeroed: the next drain of this slot would count it again.
      return absl::InternalError(absl::StrCat("resetting the kernel's overflow count of port ",
                                              ports[i], " failed: ", strerror(errno)));
    }
  }
  __atomic_store_n(&skel_->bss->overflow_total[slot], 0, __ATOMIC_SEQ_CST);
  return absl::OkStatus();
}

absl::Status AcceptProbe::ReadOpenConnections() {
  if (!traffic_iterator_) return absl::OkStatus();
  UniqueFd iterator(bpf_iter_create(bpf_link__fd(traffic_iterator_.get())));
  if (!iterator.valid()) {
    return absl::InternalError(
        absl::StrCat("starting the iterator over open connections failed: ", strerror(errno)));
  }
  // The program writes nothing: reading to the end runs it over every
  // socket storage once.
  char buffer[64];
  ssize_t n;
  while ((n = read(iterator.get(), buffer, sizeof(buffer))) > 0) {
  }
  if (n < 0) {
    return absl::InternalError(
        absl::StrCat("reading the open connections' bytes failed: ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status AcceptProbe::DrainTraffic(int slot, DrainResult* result) {
  const int fd = bpf_map__fd(slot == 0 ? skel_->maps.traffic0 : skel_->maps.traffic1);
  absl::Status drained = DrainWhole<struct accept_key, struct traffic_value>(
      fd, max_addresses_, "connection traffic",
      [result](const struct accept_key& key, const struct traffic_value& value) {
        DrainedTraffic traffic = ToTraffic(value);
        traffic.address = IpAddress::FromRaw(key.af, key.addr);
        traffic.port = key.port;
        traffic.netns = key.netns;
        result->traffic.push_back(traffic);
      });
  // Nothing writes the slot now.
  struct traffic_value& overflow = skel_->bss->traffic_overflow[slot];
  result->traffic_overflow = ToTraffic(overflow);
  overflow = {};
  return drained;
}

absl::Status AcceptProbe::DrainFailures(int slot, DrainResult* result) {
  const int fd = bpf_map__fd(slot == 0 ? skel_->maps.failures0 : skel_->maps.failures1);
  absl::Status drained = DrainWhole<struct failure_key, uint64_t>(
      fd, max_addresses_, "failed connections",
      [result](const struct failure_key& key, uint64_t count) {
        result->failures.push_back(DrainedFailure{IpAddress::FromRaw(key.af, key.addr), key.port,
                                                  key.netns, static_cast<FailureReason>(key.reason),
                                                  count});
      });
  for (int reason = 1; reason < GEOIP_FAILURE_REASONS; ++reason) {
    __u64& overflow = skel_->bss->failure_overflow[slot][reason];
    if (overflow == 0) continue;
    result->failure_overflow.push_back(
        DrainedFailure{IpAddress(), 0, 0, static_cast<FailureReason>(reason), overflow});
    overflow = 0;
  }
  return drained;
}

absl::Status AcceptProbe::ExpireHalfOpen(DrainResult* result) {
  if (__atomic_load_n(&skel_->bss->half_open_entries, __ATOMIC_RELAXED) == 0) {
    return absl::OkStatus();
  }
  struct timespec now {};
  clock_gettime(CLOCK_MONOTONIC, &now);  // the clock of bpf_ktime_get_ns()
  const uint64_t now_ns = uint64_t(now.tv_sec) * 1000000000 + uint64_t(now.tv_nsec);
  const int fd = bpf_map__fd(skel_->maps.half_open);
  std::vector<struct half_open_key> expired;
  struct half_open_key key {
  }, next{};
  void* previous = nullptr;
  while (bpf_map_get_next_key(fd, previous, &next) == 0) {
    struct half_open_value value {};
    if (bpf_map_lookup_elem(fd, &next, &value) == 0 && value.expires_ns < now_ns) {
      expired.push_back(next);
    }
    key = next;
    previous = &key;
  }
  for (const struct half_open_key& half : expired) {
    struct half_open_value value {};
    // A SYN-ACK sent again since the scan moved the deadline.
    if (bpf_map_lookup_elem(fd, &half, &value) != 0 || value.expires_ns >= now_ns) continue;
    // The handshake may complete meanwhile: whoever deletes it counts it.
    if (bpf_map_delete_elem(fd, &half) != 0) continue;
    __atomic_fetch_sub(&skel_->bss->half_open_entries, 1, __ATOMIC_RELAXED);
    result->failures.push_back(DrainedFailure{IpAddress::FromRaw(half.conn.af, half.conn.addr),
                                              value.label_port, half.conn.netns,
                                              FailureReason::kIncomplete, 1});
  }
  return absl::OkStatus();
}

}  // namespace geoip
