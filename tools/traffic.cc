// ebpf_geoip_traffic: a bounded TCP traffic generator for the end-to-end
// tests and the QEMU kernel matrix. Clients bind a chosen source address
// before connecting, so inside a network namespace they appear to come from
// anywhere in the world while never leaving the machine. The sockets, the
// listeners and the storm are tools/load/'s; this file is the command line,
// the little HTTP exchange and the summary lines.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "exporter/net/address.h"
#include "exporter/util/status_macros.h"
#include "exporter/util/unique_fd.h"
#include "tools/blocked_accept.h"
#include "tools/load/endpoint.h"
#include "tools/load/half_open.h"
#include "tools/load/knock.h"
#include "tools/load/listener.h"
#include "tools/load/socket.h"
#include "tools/load/storm.h"
#include "tools/load/transfer.h"

namespace geoip {
namespace {

constexpr char kUsage[] = R"(Usage: ebpf_geoip_traffic [FLAGS]

Opens listeners and makes TCP connections from chosen source addresses, then
prints one summary line. Everything is bounded by --timeout.

  --listen=ENDPOINT[,ENDPOINT...]
      Listeners to open and own, e.g. 127.0.0.1:8081,[::]:8083. IPv6
      listeners are dual-stack (IPV6_V6ONLY=0), so [::] also accepts IPv4.
      Each has --acceptors threads that accept and close (or answer, with
      --http).
  --acceptors=N
      Threads blocking in accept() on each listener, as in a prefork server
      (default 1, at most 256).
  --connect=[SRC>]DST:PORT[*N][,...]
      N (default 1) sequential connections to DST:PORT, each from source
      address SRC (bind(SRC, 0) before connect) when it is given. Quote the
      argument: '>' and '*' are special to the shell. Examples:
        '81.2.69.142>127.0.0.1:8081*3'
        '2001:4860:4860::8888>[::1]:8082*2'
  --http
      Clients send "GET /<word> HTTP/1.0" and read the reply until EOF;
      listeners answer with 200 and a short text body.
  --words=WORD[,WORD...]
      Paths the HTTP clients request, in turn (default: hello).
  --timeout=SECONDS
      Hard bound on the whole run (default 20).
  --verbose
      Print "accepted PEER on LISTENER" to stderr for every accept.
  --storm=[SRC>]DST:PORT --count=N
      Benchmark: listen on DST:PORT, connect and close (with RST) N times
      (default 10000) in one thread while another accepts and closes; prints
      accepts per second.
  --transfer=[SRC>]DST:PORT[*N][/send=BYTES][/receive=BYTES][/hold=DURATION][/steps=K][,...]
      N clients at once (default 1) from SRC, each sending BYTES (default 0)
      and asking for BYTES back (default 0) from a listener that serves
      transfers, then keeping the connection open for DURATION (e.g. 50ms,
      3s; default 0) and closing it with a FIN once the listener has closed
      its side too. With K steps (default 1) the bytes go in K equal parts
      with a pause of DURATION/K after each, and each step prints a progress
      line once the server's kernel has acknowledged its upload. Every
      entry's clients run at the same time. The upload starts with a
      request line ("UP DOWN\n", part of the bytes sent), so a step that
      moves bytes sends at least that line's length.
      Example: '81.2.69.142>127.0.0.1:8081*2/send=1048576/receive=3145728/hold=1s'
  --serve-transfers
      Listeners read everything a client sends and send back what its
      request lines ask for, then close once the client has (implied for
      this process's own listeners by --transfer). Each listener then has
      64 acceptor threads unless --acceptors says otherwise, so that as many
      clients are served at once.
  --refused=[SRC>]DST:PORT[*N][,...]
      N connection attempts (default 1) to a port where nothing listens,
      each expected to be refused (ECONNREFUSED).
  --scan=[SRC>]DST[:FIRST-LAST][,...]
      One connection attempt to every port from FIRST to LAST (default
      1-65535) of DST, in order; a port where something listens counts as
      open (the connection is closed again at once).
  --half-open=SRC>DST:PORT[*N][,...]
      N bare SYNs (default 1) from SRC, each from its own source port,
      through a raw socket (IPv4; CAP_NET_RAW): no socket here waits for the
      SYN-ACK, so where it goes nowhere the handshake never completes.
  --rate=N
      At most N attempts a second for --refused and --scan together
      (default 20000).
  --help

Output:
  connections made=N accepted=M
    made: client connections that succeeded; accepted: connections accepted
    by the listeners this process owns.
  storm connections=N accepted=M seconds=S accepts_per_second=R discarded=D
    connections: made; accepted: by the storm's listener; discarded: made,
    but dropped by the kernel before the listener could accept them (the
    client's reset overtook the handshake's last ACK), as the namespace's
    Tcp AttemptFails counter shows. N = M + D, or the storm fails.
  transfer I step S/K sent=BYTES received=BYTES
    progress of the I-th --transfer client (in the order given), for K > 1.
  transfers made=N sent=BYTES received=BYTES
    made: --transfer clients that did all they were asked; the bytes all
    of them sent and received.
  served transfers=N failed=F received=BYTES sent=BYTES
    with --serve-transfers or --transfer: connections the own listeners
    served to the client's FIN, those that failed, and their bytes.
  refused attempts=N refused=M
  scan attempts=N refused=M open=K seconds=S
  half-open syns=N
The "connections" line comes last.

Exit status: 0 when every connection and transfer succeeded, every --refused
attempt was refused, every scan attempt was refused or open, and every
connection aimed at an own listener was accepted; 1 otherwise; 2 for bad
flags. With --listen alone it
prints "listening" to stderr once every acceptor thread of every listener is
asleep in accept() (as /proc/self/task/*/syscall shows), serves until the
timeout, SIGINT or SIGTERM, and then exits 0; it exits 1 if the threads are
not all in accept() within 10 s.
)";

// Connection failures printed to stderr before going quiet.
constexpr int kMaxReportedErrors = 10;
// Bound on how long a listener waits for an HTTP request.
constexpr absl::Duration kHttpRequestTimeout = absl::Seconds(2);
// Bound on a run: a week is enough for a demo service.
constexpr double kMaxTimeoutSeconds = 7 * 24 * 3600;
constexpr int kMaxCount = 100'000'000;
constexpr int kMaxAcceptors = 256;
// Acceptor threads of a listener that serves transfers, unless --acceptors
// is given: each serves one client at a time.
constexpr int kTransferAcceptors = 64;
// Bound on --transfer clients in one run, each a thread.
constexpr int kMaxTransferClients = 1024;
constexpr double kMaxRate = 1e6;
// Bound on waiting for every acceptor thread to block in accept().
constexpr absl::Duration kAcceptorsReadyTimeout = absl::Seconds(10);

// One --connect entry: count connections from source to destination.
struct ConnectSpec {
  std::optional<IpAddress> source;
  Endpoint destination;
  int count = 1;

  std::string Text() const {
    return absl::StrCat(source ? FormatIpAddress(*source) + ">" : "", destination.Text());
  }
};

// "[SRC>]DST:PORT[*N]".
absl::StatusOr<ConnectSpec> ParseConnectSpec(absl::string_view text) {
  const absl::string_view whole = text;
  ConnectSpec spec;
  size_t star = text.rfind('*');
  if (star != absl::string_view::npos) {
    if (!absl::SimpleAtoi(text.substr(star + 1), &spec.count) || spec.count < 1 ||
        spec.count > kMaxCount) {
      return absl::InvalidArgumentError(absl::StrCat("bad count in '", text, "'"));
    }
    text = text.substr(0, star);
  }
  size_t arrow = text.find('>');
  if (arrow != absl::string_view::npos) {
    ASSIGN_OR_RETURN(spec.source, ParseSocketAddress(text.substr(0, arrow)));
    text = text.substr(arrow + 1);
  }
  ASSIGN_OR_RETURN(spec.destination, ParseEndpoint(text));
  if (spec.source && spec.source->family != spec.destination.address.family) {
    return absl::InvalidArgumentError(
        absl::StrCat("source and destination families differ in '", whole, "'"));
  }
  return spec;
}

// One --transfer entry: count clients that each carry out plan.
struct TransferSpec {
  ConnectSpec connection;
  TransferPlan plan;
};

// "[SRC>]DST:PORT[*N][/OPTION...]".
absl::StatusOr<TransferSpec> ParseTransferSpec(absl::string_view text) {
  TransferSpec spec;
  const size_t slash = text.find('/');
  ASSIGN_OR_RETURN(spec.connection, ParseConnectSpec(text.substr(0, slash)));
  if (slash != absl::string_view::npos) {
    absl::StatusOr<TransferPlan> plan = ParseTransferPlan(text.substr(slash + 1));
    if (!plan.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(plan.status().message(), " in '", text, "'"));
    }
    spec.plan = *plan;
  }
  return spec;
}

// "[SRC>]DST:PORT[*N]" for --refused: N attempts at one port.
absl::StatusOr<KnockTarget> ParseRefusedSpec(absl::string_view text) {
  ASSIGN_OR_RETURN(const ConnectSpec spec, ParseConnectSpec(text));
  KnockTarget target;
  target.source = spec.source;
  target.address = spec.destination.address;
  target.first_port = target.last_port = spec.destination.port;
  target.repeat = static_cast<uint64_t>(spec.count);
  return target;
}

// "[SRC>]DST[:FIRST-LAST]" for --scan; IPv6 in brackets.
absl::StatusOr<KnockTarget> ParseScanSpec(absl::string_view text) {
  const absl::string_view whole = text;
  KnockTarget target;
  const size_t arrow = text.find('>');
  if (arrow != absl::string_view::npos) {
    ASSIGN_OR_RETURN(target.source, ParseSocketAddress(text.substr(0, arrow)));
    text = text.substr(arrow + 1);
  }
  absl::string_view host = text;
  const size_t colon = text.rfind(':');
  const size_t bracket = text.rfind(']');
  if (colon != absl::string_view::npos &&
      (bracket == absl::string_view::npos ? text.find(':') == colon : colon > bracket)) {
    host = text.substr(0, colon);
    ASSIGN_OR_RETURN(const auto range, ParsePortRange(text.substr(colon + 1)));
    target.first_port = range.first;
    target.last_port = range.second;
  } else if (colon != absl::string_view::npos && bracket == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("IPv6 needs brackets, as in [::1]:1-1024: '", whole, "'"));
  }
  ASSIGN_OR_RETURN(target.address, ParseSocketAddress(host));
  if (target.source && target.source->family != target.address.family) {
    return absl::InvalidArgumentError(
        absl::StrCat("source and destination families differ in '", whole, "'"));
  }
  return target;
}

struct Options {
  std::vector<Endpoint> listen;
  std::vector<ConnectSpec> connect;
  std::vector<TransferSpec> transfer;
  bool serve_transfers = false;
  std::vector<KnockTarget> refused;
  std::vector<KnockTarget> scan;
  std::vector<ConnectSpec> half_open;
  double rate = 20000;
  bool http = false;
  bool verbose = false;
  std::vector<std::string> words = {"hello"};
  absl::Duration timeout = absl::Seconds(20);
  std::optional<ConnectSpec> storm;
  int count = 10000;
  int acceptors = 1;
  bool help = false;
};

absl::StatusOr<Options> ParseFlags(int argc, char** argv) {
  Options options;
  bool count_given = false;
  bool acceptors_given = false;
  bool rate_given = false;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    absl::string_view value;
    size_t equals = arg.find('=');
    if (equals != absl::string_view::npos) {
      value = arg.substr(equals + 1);
      arg = arg.substr(0, equals);
    }
    if (arg == "--help" || arg == "-h") {
      options.help = true;
    } else if (arg == "--http" && equals == absl::string_view::npos) {
      options.http = true;
    } else if (arg == "--verbose" && equals == absl::string_view::npos) {
      options.verbose = true;
    } else if (arg == "--serve-transfers" && equals == absl::string_view::npos) {
      options.serve_transfers = true;
    } else if (arg == "--transfer") {
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(TransferSpec spec, ParseTransferSpec(item));
        options.transfer.push_back(spec);
      }
    } else if (arg == "--refused") {
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(KnockTarget target, ParseRefusedSpec(item));
        options.refused.push_back(target);
      }
    } else if (arg == "--half-open") {
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(ConnectSpec spec, ParseConnectSpec(item));
        if (!spec.source) {
          return absl::InvalidArgumentError(
              absl::StrCat("--half-open needs a source address: SRC>DST:PORT in '", item, "'"));
        }
        options.half_open.push_back(spec);
      }
    } else if (arg == "--scan") {
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(KnockTarget target, ParseScanSpec(item));
        options.scan.push_back(target);
      }
    } else if (arg == "--rate") {
      if (!absl::SimpleAtod(value, &options.rate) || !(options.rate >= 1) ||
          options.rate > kMaxRate) {
        return absl::InvalidArgumentError(absl::StrCat("bad --rate '", value, "' (1 to 1e6)"));
      }
      rate_given = true;
    } else if (arg == "--listen") {
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(Endpoint endpoint, ParseEndpoint(item));
        options.listen.push_back(endpoint);
      }
    } else if (arg == "--connect") {
      for (absl::string_view item : absl::StrSplit(value, ',', absl::SkipEmpty())) {
        ASSIGN_OR_RETURN(ConnectSpec spec, ParseConnectSpec(item));
        options.connect.push_back(spec);
      }
    } else if (arg == "--words") {
      options.words = absl::StrSplit(value, ',', absl::SkipEmpty());
      if (options.words.empty()) return absl::InvalidArgumentError("--words is empty");
    } else if (arg == "--timeout") {
      double seconds = 0;
      if (!absl::SimpleAtod(value, &seconds) || !(seconds > 0) || seconds > kMaxTimeoutSeconds) {
        return absl::InvalidArgumentError(absl::StrCat("bad --timeout '", value, "'"));
      }
      options.timeout = absl::Seconds(seconds);
    } else if (arg == "--storm") {
      if (absl::StrContains(value, '*')) {
        return absl::InvalidArgumentError("--storm takes its count from --count");
      }
      ASSIGN_OR_RETURN(options.storm, ParseConnectSpec(value));
    } else if (arg == "--count") {
      if (!absl::SimpleAtoi(value, &options.count) || options.count < 1 ||
          options.count > kMaxCount) {
        return absl::InvalidArgumentError(absl::StrCat("bad --count '", value, "'"));
      }
      count_given = true;
    } else if (arg == "--acceptors") {
      if (!absl::SimpleAtoi(value, &options.acceptors) || options.acceptors < 1 ||
          options.acceptors > kMaxAcceptors) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad --acceptors '", value, "' (1 to ", kMaxAcceptors, ")"));
      }
      acceptors_given = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag '", argv[i], "'"));
    }
  }
  const bool clients = !options.connect.empty() || !options.transfer.empty() ||
                       !options.refused.empty() || !options.scan.empty() ||
                       !options.half_open.empty();
  if (options.storm && (!options.listen.empty() || clients || options.serve_transfers)) {
    return absl::InvalidArgumentError(
        "--storm cannot be combined with --listen, --connect, --transfer, --refused or --scan");
  }
  if (options.http && (!options.transfer.empty() || options.serve_transfers)) {
    return absl::InvalidArgumentError(
        "--http cannot be combined with --transfer or --serve-transfers");
  }
  if (options.serve_transfers && options.listen.empty()) {
    return absl::InvalidArgumentError("--serve-transfers only applies to --listen");
  }
  if (rate_given && options.refused.empty() && options.scan.empty()) {
    return absl::InvalidArgumentError("--rate only applies to --refused and --scan");
  }
  uint64_t transfer_clients = 0;
  for (const TransferSpec& spec : options.transfer) transfer_clients += spec.connection.count;
  if (transfer_clients > kMaxTransferClients) {
    return absl::InvalidArgumentError(absl::StrCat("--transfer asks for ", transfer_clients,
                                                   " clients; at most ", kMaxTransferClients));
  }
  // This process's own listeners serve its own transfer clients.
  if (!options.transfer.empty() && !options.listen.empty()) options.serve_transfers = true;
  if (!acceptors_given && options.serve_transfers) options.acceptors = kTransferAcceptors;
  if (count_given && !options.storm) {
    return absl::InvalidArgumentError("--count only applies to --storm");
  }
  if (acceptors_given && options.listen.empty()) {
    return absl::InvalidArgumentError("--acceptors only applies to --listen");
  }
  if (!options.help && !options.storm && options.listen.empty() && !clients) {
    return absl::InvalidArgumentError(
        "nothing to do: give --listen, --connect, --transfer, --refused, --scan, --half-open "
        "or --storm");
  }
  return options;
}

absl::Status SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "send()");
    }
    data.remove_prefix(static_cast<size_t>(sent));
  }
  return absl::OkStatus();
}

// Connects (and for HTTP exchanges a request) once, every step bounded by
// the deadline.
absl::Status ConnectOnce(const ConnectSpec& spec, const std::string* http_word,
                         absl::Time deadline) {
  ASSIGN_OR_RETURN(const UniqueFd fd, Connect(spec.destination, spec.source, deadline));
  if (http_word == nullptr) return absl::OkStatus();
  RETURN_IF_ERROR(SendAll(fd.get(), absl::StrCat("GET /", *http_word, " HTTP/1.0\r\n\r\n")));
  std::string reply;
  char buffer[4096];
  while (true) {
    ssize_t received = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received < 0) return absl::ErrnoToStatus(errno, "recv()");
    if (received == 0) break;
    // Only the status line matters; the rest is drained, not kept.
    if (reply.size() < 64) reply.append(buffer, static_cast<size_t>(received));
  }
  if (!absl::StartsWith(reply, "HTTP/1.")) {
    return absl::DataLossError(absl::StrCat("not an HTTP reply: '", reply.substr(0, 32), "'"));
  }
  return absl::OkStatus();
}

// Reads an HTTP request head (bounded in size and time) and answers 200.
void AnswerHttp(int fd, const Endpoint& local) {
  if (!BoundBlockingCalls(fd, kHttpRequestTimeout).ok()) return;
  std::string request;
  char buffer[1024];
  while (request.size() < 8192 && !absl::StrContains(request, "\r\n\r\n")) {
    ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
    if (received < 0 && errno == EINTR) continue;
    if (received <= 0) return;
    request.append(buffer, static_cast<size_t>(received));
  }
  std::vector<absl::string_view> words = absl::StrSplit(request, absl::MaxSplits(' ', 2));
  std::string body = absl::StrCat("ebpf_geoip_traffic ", local.Text(), " ",
                                  words.size() > 1 ? words[1] : "/", "\n");
  SendAll(fd, absl::StrFormat("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                              "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                              body.size(), body))
      .IgnoreError();
}

// What the own listeners' transfer servers did, summed over connections.
struct ServedTransfers {
  std::atomic<uint64_t> served{0};  // to the client's FIN
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> sent{0};
};

// The listeners this process owns and what they accepted. The tally and
// the transfer counts are declared first, so they outlive the acceptor
// threads that count into them.
struct Listeners {
  std::unique_ptr<AcceptTally> tally;
  ServedTransfers transfers;
  std::atomic<bool> stop{false};  // ends transfers still being served
  std::vector<std::unique_ptr<Listener>> all;

  // Stops every listener, cutting short the transfers they serve.
  void StopAll() {
    stop.store(true);
    for (auto& listener : all) listener->Stop();
  }
};

absl::StatusOr<std::unique_ptr<Listeners>> StartListeners(const Options& options,
                                                          absl::Time deadline) {
  auto listeners = std::make_unique<Listeners>();
  listeners->tally = std::make_unique<AcceptTally>(options.listen.size());
  // Bind every listener before any client connects, so none is refused.
  for (const Endpoint& endpoint : options.listen) {
    ASSIGN_OR_RETURN(std::unique_ptr<Listener> listener, Listener::Open(endpoint));
    listeners->all.push_back(std::move(listener));
  }
  Listeners* owner = listeners.get();
  for (size_t i = 0; i < listeners->all.size(); ++i) {
    const Endpoint local = listeners->all[i]->endpoint();
    listeners->all[i]->Start(
        options.acceptors, listeners->tally.get(), i,
        [http = options.http, transfers = options.serve_transfers, verbose = options.verbose, local,
         owner, deadline](int fd, const Endpoint& peer) {
          if (verbose) {
            std::fprintf(stderr, "accepted %s on %s\n", FormatIpAddress(peer.address).c_str(),
                         local.Text().c_str());
          }
          if (http) AnswerHttp(fd, local);
          if (transfers) {
            TransferTotals totals;
            const absl::Status status = ServeTransfer(fd, deadline, &owner->stop, &totals);
            (status.ok() ? owner->transfers.served : owner->transfers.failed)++;
            owner->transfers.received += totals.received;
            owner->transfers.sent += totals.sent;
            if (!status.ok() && verbose) {
              std::fprintf(stderr, "transfer from %s on %s: %s\n",
                           FormatIpAddress(peer.address).c_str(), local.Text().c_str(),
                           status.ToString().c_str());
            }
          }
        });
  }
  return listeners;
}

// Waits until each listener has `acceptors` threads asleep in accept(), so
// that whoever reads "listening" knows the accepts are already in progress.
absl::Status AwaitAcceptorsBlocked(const Listeners& listeners, int acceptors, absl::Time deadline) {
  absl::Duration pause = absl::Milliseconds(1);
  while (true) {
    ASSIGN_OR_RETURN(auto blocked, BlockedAcceptorsByFd());
    const Listener* waiting = nullptr;
    for (const auto& listener : listeners.all) {
      if (blocked[listener->fd()] < acceptors) {
        waiting = listener.get();
        break;
      }
    }
    if (waiting == nullptr) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("only ", blocked[waiting->fd()], " of ", acceptors, " acceptor threads on ",
                       waiting->endpoint().Text(), " are blocked in accept()"));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
}

// Waits for SIGINT or SIGTERM (blocked in every thread) or the deadline.
void ServeUntil(const sigset_t& signals, absl::Time deadline) {
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return;
    timespec ts = absl::ToTimespec(left);
    int signo = sigtimedwait(&signals, nullptr, &ts);
    if (signo > 0) return;
    if (errno != EINTR) return;  // EAGAIN: the deadline passed
  }
}

// Runs every --transfer client at once, each on its own thread; counts
// the connections to own listeners into *expected through `expect`.
bool RunTransfers(const Options& options, absl::Time deadline,
                  const std::function<void(const Endpoint&)>& expect) {
  struct Client {
    const TransferSpec* spec;
    int number;  // 1-based, in the order given
    absl::StatusOr<TransferTotals> result = TransferTotals();
  };
  std::vector<Client> clients;
  for (const TransferSpec& spec : options.transfer) {
    for (int i = 0; i < spec.connection.count; ++i) {
      clients.push_back(Client{&spec, static_cast<int>(clients.size()) + 1});
    }
  }
  std::mutex print;
  std::vector<std::thread> threads;
  threads.reserve(clients.size());
  for (Client& client : clients) {
    threads.emplace_back([&client, &print, deadline] {
      const TransferSpec& spec = *client.spec;
      TransferProgress progress;
      if (spec.plan.steps > 1) {
        progress = [&client, &print, &spec](int step, const TransferTotals& so_far) {
          std::lock_guard<std::mutex> lock(print);
          std::printf("transfer %d step %d/%d sent=%llu received=%llu\n", client.number, step,
                      spec.plan.steps, static_cast<unsigned long long>(so_far.sent),
                      static_cast<unsigned long long>(so_far.received));
          std::fflush(stdout);
        };
      }
      client.result = RunTransfer(spec.connection.destination, spec.connection.source, spec.plan,
                                  deadline, progress);
    });
  }
  for (std::thread& thread : threads) thread.join();
  int made = 0, failed = 0;
  TransferTotals totals;
  for (const Client& client : clients) {
    if (!client.result.ok()) {
      if (++failed <= kMaxReportedErrors) {
        std::fprintf(stderr, "ebpf_geoip_traffic: transfer %d %s/%s: %s\n", client.number,
                     client.spec->connection.Text().c_str(), client.spec->plan.Text().c_str(),
                     client.result.status().ToString().c_str());
      }
      continue;
    }
    ++made;
    totals.sent += client.result->sent;
    totals.received += client.result->received;
    expect(client.spec->connection.destination);
  }
  std::printf("transfers made=%d sent=%llu received=%llu\n", made,
              static_cast<unsigned long long>(totals.sent),
              static_cast<unsigned long long>(totals.received));
  return failed == 0;
}

// --refused (each attempt must be refused) or --scan (refused or open):
// prints the summary line; false if an attempt failed otherwise.
bool RunKnockLine(const char* what, const std::vector<KnockTarget>& targets, double rate,
                  absl::Time deadline, bool open_is_failure,
                  const std::function<void(const Endpoint&)>& expect) {
  KnockResult result;
  const absl::Status status = RunKnocks(targets, rate, deadline, &result, expect);
  if (std::string(what) == "refused") {
    std::printf("refused attempts=%llu refused=%llu\n",
                static_cast<unsigned long long>(result.attempts),
                static_cast<unsigned long long>(result.refused));
  } else {
    std::printf("scan attempts=%llu refused=%llu open=%llu seconds=%.3f\n",
                static_cast<unsigned long long>(result.attempts),
                static_cast<unsigned long long>(result.refused),
                static_cast<unsigned long long>(result.open), result.seconds);
  }
  if (!status.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s: %s\n", what, status.ToString().c_str());
    return false;
  }
  if (open_is_failure && result.open > 0) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %llu attempts were not refused: something listens\n",
                 static_cast<unsigned long long>(result.open));
    return false;
  }
  return true;
}

int RunTraffic(const Options& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  const bool serve_only = options.connect.empty() && options.transfer.empty() &&
                          options.refused.empty() && options.scan.empty() &&
                          options.half_open.empty();
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (serve_only) pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<Listeners>> listeners = StartListeners(options, deadline);
  if (!listeners.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s\n", listeners.status().ToString().c_str());
    return 1;
  }
  // Connections the own listeners must accept, by listener.
  std::vector<uint64_t> expected((*listeners)->all.size(), 0);
  std::mutex expected_mu;
  const auto expect = [&](const Endpoint& destination) {
    std::lock_guard<std::mutex> lock(expected_mu);
    for (size_t l = 0; l < expected.size(); ++l) {
      if ((*listeners)->all[l]->Receives(destination)) {
        ++expected[l];
        break;
      }
    }
  };
  int made = 0;
  int failed = 0;
  size_t word = 0;
  for (const ConnectSpec& spec : options.connect) {
    for (int i = 0; i < spec.count; ++i) {
      const std::string* http_word = nullptr;
      if (options.http) http_word = &options.words[word++ % options.words.size()];
      absl::Status status = ConnectOnce(spec, http_word, deadline);
      if (!status.ok()) {
        if (++failed <= kMaxReportedErrors) {
          std::fprintf(stderr, "ebpf_geoip_traffic: %s #%d: %s\n", spec.Text().c_str(), i + 1,
                       status.ToString().c_str());
        }
        continue;
      }
      ++made;
      expect(spec.destination);
    }
  }
  bool ok = true;
  if (!options.transfer.empty()) ok &= RunTransfers(options, deadline, expect);
  if (!options.refused.empty()) {
    ok &= RunKnockLine("refused", options.refused, options.rate, deadline, true, expect);
  }
  if (!options.scan.empty()) {
    ok &= RunKnockLine("scan", options.scan, options.rate, deadline, false, expect);
  }
  if (!options.half_open.empty()) {
    uint64_t syns = 0;
    for (const ConnectSpec& spec : options.half_open) {
      absl::Status sent = SendSyns(*spec.source, spec.destination.address, spec.destination.port,
                                   static_cast<uint64_t>(spec.count));
      if (!sent.ok()) {
        std::fprintf(stderr, "ebpf_geoip_traffic: --half-open %s: %s\n", spec.Text().c_str(),
                     sent.ToString().c_str());
        ok = false;
        continue;
      }
      syns += static_cast<uint64_t>(spec.count);
    }
    std::printf("half-open syns=%llu\n", static_cast<unsigned long long>(syns));
  }
  bool all_accepted = true;
  if (serve_only) {
    // Readiness for whoever waits to connect: every acceptor is in accept().
    absl::Status ready = AwaitAcceptorsBlocked(
        **listeners, options.acceptors, std::min(deadline, absl::Now() + kAcceptorsReadyTimeout));
    if (!ready.ok()) {
      std::fprintf(stderr, "ebpf_geoip_traffic: %s\n", ready.ToString().c_str());
      return 1;
    }
    std::fprintf(stderr, "listening\n");
    ServeUntil(signals, deadline);
  } else {
    all_accepted = (*listeners)->tally->AwaitAtLeast(expected, deadline);
  }
  (*listeners)->StopAll();
  if (options.serve_transfers) {
    const ServedTransfers& served = (*listeners)->transfers;
    std::printf("served transfers=%llu failed=%llu received=%llu sent=%llu\n",
                static_cast<unsigned long long>(served.served.load()),
                static_cast<unsigned long long>(served.failed.load()),
                static_cast<unsigned long long>(served.received.load()),
                static_cast<unsigned long long>(served.sent.load()));
  }
  std::printf("connections made=%d accepted=%llu\n", made,
              static_cast<unsigned long long>((*listeners)->tally->Total()));
  if (!all_accepted) {
    std::fprintf(stderr, "ebpf_geoip_traffic: not every connection was accepted\n");
  }
  return failed == 0 && ok && all_accepted ? 0 : 1;
}

// Connections from spec's source (or the kernel's choice) to a listener of
// its own on spec's destination, closed with RST.
int Storm(const ConnectSpec& spec, int count, absl::Duration timeout) {
  std::optional<SourcePool> source;
  if (spec.source) source = SourcePool::Single(*spec.source);
  StormOptions options;
  options.listen_address = spec.destination.address;
  options.port = spec.destination.port;
  options.count = static_cast<uint64_t>(count);
  options.sources = source ? &*source : nullptr;
  options.timeout = timeout;
  StormResult result;
  const absl::Status status = RunStorm(options, &result);
  std::printf(
      "storm connections=%llu accepted=%llu seconds=%.3f accepts_per_second=%.0f discarded=%llu\n",
      static_cast<unsigned long long>(result.made),
      static_cast<unsigned long long>(result.accepted), result.seconds, result.AcceptsPerSecond(),
      static_cast<unsigned long long>(result.discarded));
  if (!status.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s: %s\n", spec.Text().c_str(),
                 status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace geoip

int main(int argc, char** argv) {
  absl::StatusOr<geoip::Options> options = geoip::ParseFlags(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s\n(see --help)\n",
                 std::string(options.status().message()).c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(geoip::kUsage, stdout);
    return 0;
  }
  // The hard bound: every step is bounded by the deadline, and should one
  // still hang, SIGALRM ends the process a little after it.
  alarm(static_cast<unsigned>(std::ceil(absl::ToDoubleSeconds(options->timeout))) + 5);
  if (options->storm) {
    return geoip::Storm(*options->storm, options->count, options->timeout);
  }
  return geoip::RunTraffic(*options);
}
