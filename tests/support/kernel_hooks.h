// Which of the probe's kernel hooks the running kernel lets a program
// attach to, found by trying each with a minimal program of this file's own
// (never the exporter's BPF object), as bcc's libbpf-tools do. Tests expect
// what the kernel offers instead of what one machine happens to lack.
#ifndef TESTS_SUPPORT_KERNEL_HOOKS_H_
#define TESTS_SUPPORT_KERNEL_HOOKS_H_

#include <string>
#include <vector>

namespace geoip {

// The probe modes, named as --bpf.probe names them, whose hook attaches here:
// "tracepoint" (raw tracepoint inet_sock_set_state), "fexit" (fexit on
// inet_csk_accept) and "kretprobe" (kretprobe on inet_csk_accept). Needs the
// privileges loading BPF needs; without them nothing attaches.
bool KernelOffers(const std::string& mode);

// The mode --bpf.probe=auto must choose: the first of its documented order
// (tracepoint, fexit, kretprobe) that the kernel offers; empty if none.
std::string ExpectedAutoMode();

// The documented order of --bpf.probe=auto.
const std::vector<std::string>& AutoOrder();

// True where a process needs CAP_BPF to read BPF maps it already holds:
// kernels before 6.5 with sysctl kernel.unprivileged_bpf_disabled set. The
// exporter then keeps CAP_BPF, and only it, after dropping privileges.
bool MapReadsNeedCapBpf();

}  // namespace geoip

#endif  // TESTS_SUPPORT_KERNEL_HOOKS_H_
