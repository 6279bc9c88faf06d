// ebpf_geoip_traffic: a bounded TCP traffic generator for the end-to-end
// tests, the QEMU kernel matrix (busybox initramfs, so only libc and abseil),
// the demo and the benchmarks. Clients bind a chosen source address before
// connecting, so inside a network namespace they appear to come from anywhere
// in the world while never leaving the machine.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
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
#include "exporter/util/status_macros.h"
#include "tools/blocked_accept.h"

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
  --help

Output:
  connections made=N accepted=M
    made: client connections that succeeded; accepted: connections accepted
    by the listeners this process owns.
  storm connections=N accepted=M seconds=S accepts_per_second=R

Exit status: 0 when every connection succeeded and every one aimed at an own
listener was accepted; 1 otherwise; 2 for bad flags. With --listen alone it
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
// Bound on waiting for every acceptor thread to block in accept().
constexpr absl::Duration kAcceptorsReadyTimeout = absl::Seconds(10);

// An IPv4 or IPv6 address with a port, as given on the command line.
struct Endpoint {
  int family = AF_INET;
  std::array<uint8_t, 16> address{};  // network order; IPv4 uses bytes 0..3
  uint16_t port = 0;

  sockaddr_storage ToSockaddr(socklen_t* length) const {
    sockaddr_storage storage{};
    if (family == AF_INET) {
      auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
      sin->sin_family = AF_INET;
      sin->sin_port = htons(port);
      std::memcpy(&sin->sin_addr, address.data(), 4);
      *length = sizeof(sockaddr_in);
    } else {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = htons(port);
      std::memcpy(&sin6->sin6_addr, address.data(), 16);
      *length = sizeof(sockaddr_in6);
    }
    return storage;
  }

  bool IsUnspecified() const { return address == std::array<uint8_t, 16>{}; }

  std::string AddressText() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, address.data(), text, sizeof(text));
    return text;
  }

  std::string Text() const {
    return family == AF_INET ? absl::StrCat(AddressText(), ":", port)
                             : absl::StrCat("[", AddressText(), "]:", port);
  }
};

// "192.0.2.1", "2001:db8::1" or "[2001:db8::1]"; the port stays 0.
absl::StatusOr<Endpoint> ParseAddress(absl::string_view text) {
  if (absl::ConsumePrefix(&text, "[") && !absl::ConsumeSuffix(&text, "]")) {
    return absl::InvalidArgumentError("missing ']'");
  }
  Endpoint endpoint;
  endpoint.family = absl::StrContains(text, ':') ? AF_INET6 : AF_INET;
  std::string copy(text);
  if (inet_pton(endpoint.family, copy.c_str(), endpoint.address.data()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("bad address '", text, "'"));
  }
  return endpoint;
}

// "192.0.2.1:80" or "[2001:db8::1]:80".
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("missing port in '", text, "'"));
  }
  absl::string_view host = text.substr(0, colon);
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::InvalidArgumentError(
        absl::StrCat("IPv6 needs brackets, as in [::1]:80: '", text, "'"));
  }
  ASSIGN_OR_RETURN(Endpoint endpoint, ParseAddress(host));
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 1 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad port in '", text, "'"));
  }
  endpoint.port = static_cast<uint16_t>(port);
  return endpoint;
}

// One --connect entry: count connections from source to destination.
struct ConnectSpec {
  std::optional<Endpoint> source;
  Endpoint destination;
  int count = 1;

  std::string Text() const {
    return absl::StrCat(source ? source->AddressText() + ">" : "",
                        destination.Text());
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
    ASSIGN_OR_RETURN(spec.source, ParseAddress(text.substr(0, arrow)));
    text = text.substr(arrow + 1);
  }
  ASSIGN_OR_RETURN(spec.destination, ParseEndpoint(text));
  if (spec.source && spec.source->family != spec.destination.family) {
    return absl::InvalidArgumentError(
        absl::StrCat("source and destination families differ in '", whole, "'"));
  }
  return spec;
}

struct Options {
  std::vector<Endpoint> listen;
  std::vector<ConnectSpec> connect;
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
      if (!absl::SimpleAtod(value, &seconds) || !(seconds > 0) ||
          seconds > kMaxTimeoutSeconds) {
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
  if (options.storm && (!options.listen.empty() || !options.connect.empty())) {
    return absl::InvalidArgumentError("--storm cannot be combined with --listen or --connect");
  }
  if (count_given && !options.storm) {
    return absl::InvalidArgumentError("--count only applies to --storm");
  }
  if (acceptors_given && options.listen.empty()) {
    return absl::InvalidArgumentError("--acceptors only applies to --listen");
  }
  if (!options.help && !options.storm && options.listen.empty() &&
      options.connect.empty()) {
    return absl::InvalidArgumentError("nothing to do: give --listen, --connect or --storm");
  }
  return options;
}

absl::Status ErrnoStatus(absl::string_view what) {
  return absl::ErrnoToStatus(errno, what);
}

// Bounds every blocking socket call (connect included) by the time left.
absl::Status SetSocketTimeouts(int fd, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) {
    return absl::DeadlineExceededError("run timeout reached");
  }
  timeval tv = absl::ToTimeval(std::max(timeout, absl::Milliseconds(1)));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return ErrnoStatus("setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)");
  }
  return absl::OkStatus();
}

// The peer's address as the kernel reports it (IPv4 on a dual-stack
// listener shows as ::ffff:a.b.c.d).
std::string PeerText(const sockaddr_storage& peer) {
  char text[INET6_ADDRSTRLEN] = {};
  if (peer.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, text,
              sizeof(text));
  } else {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, text,
              sizeof(text));
  }
  return text;
}

absl::Status SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t sent = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("send()");
    }
    data.remove_prefix(static_cast<size_t>(sent));
  }
  return absl::OkStatus();
}

// Connects (and for HTTP exchanges a request) once; rst closes with a reset,
// which leaves no TIME_WAIT behind so a storm does not run out of ports.
absl::Status ConnectOnce(const ConnectSpec& spec, const std::string* http_word,
                         bool rst, absl::Time deadline) {
  int fd = socket(spec.destination.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket()");
  absl::Cleanup closer = [fd] { close(fd); };
  RETURN_IF_ERROR(SetSocketTimeouts(fd, deadline - absl::Now()));
  if (spec.source) {
    // Choose the port at connect time, knowing the destination, rather than
    // at bind time from the smaller pool of ports unused by any connection.
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    socklen_t length = 0;
    sockaddr_storage source = spec.source->ToSockaddr(&length);
    if (bind(fd, reinterpret_cast<sockaddr*>(&source), length) != 0) {
      return ErrnoStatus(absl::StrCat("bind(", spec.source->AddressText(), ")"));
    }
  }
  socklen_t length = 0;
  sockaddr_storage destination = spec.destination.ToSockaddr(&length);
  if (connect(fd, reinterpret_cast<sockaddr*>(&destination), length) != 0) {
    return ErrnoStatus("connect()");
  }
  if (http_word != nullptr) {
    RETURN_IF_ERROR(SendAll(fd, absl::StrCat("GET /", *http_word, " HTTP/1.0\r\n\r\n")));
    std::string reply;
    char buffer[4096];
    while (true) {
      ssize_t received = recv(fd, buffer, sizeof(buffer), 0);
      if (received < 0 && errno == EINTR) continue;
      if (received < 0) return ErrnoStatus("recv()");
      if (received == 0) break;
      // Only the status line matters; the rest is drained, not kept.
      if (reply.size() < 64) reply.append(buffer, static_cast<size_t>(received));
    }
    if (!absl::StartsWith(reply, "HTTP/1.")) {
      return absl::DataLossError(absl::StrCat("not an HTTP reply: '", reply.substr(0, 32), "'"));
    }
  }
  if (rst) {
    linger reset = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  }
  return absl::OkStatus();
}

// Reads an HTTP request head (bounded in size and time) and answers 200.
void AnswerHttp(int fd, const Endpoint& local) {
  if (!SetSocketTimeouts(fd, kHttpRequestTimeout).ok()) return;
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

// Counts accepts per owned listener so the main thread can wait for them.
// std::mutex rather than absl::Mutex: Debian's abseil is not built with
// ThreadSanitizer, which then cannot see absl::Mutex synchronise.
class AcceptCounter {
 public:
  explicit AcceptCounter(size_t listeners) : accepted_(listeners, 0) {}

  void Add(size_t listener) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++accepted_[listener];
    }
    changed_.notify_all();
  }

  // Waits until each listener has accepted at least expected[i]; false on
  // reaching the deadline first.
  bool AwaitAtLeast(const std::vector<int>& expected, absl::Time deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_until(lock, absl::ToChronoTime(deadline), [&] {
      for (size_t i = 0; i < expected.size(); ++i) {
        if (accepted_[i] < expected[i]) return false;
      }
      return true;
    });
  }

  int Total() {
    std::lock_guard<std::mutex> lock(mu_);
    int total = 0;
    for (int n : accepted_) total += n;
    return total;
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<int> accepted_;  // guarded by mu_
};

// An owned listening socket and the threads accepting on it. Stop() shuts
// the socket down, which wakes every blocked accept() with EINVAL on Linux.
class Listener {
 public:
  static absl::StatusOr<std::unique_ptr<Listener>> Open(const Endpoint& endpoint) {
    int fd = socket(endpoint.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return ErrnoStatus("socket()");
    auto listener = std::unique_ptr<Listener>(new Listener(endpoint, fd));
    int one = 1;
    int zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (endpoint.family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) != 0) {
      return ErrnoStatus("setsockopt(IPV6_V6ONLY)");
    }
    socklen_t length = 0;
    sockaddr_storage address = endpoint.ToSockaddr(&length);
    if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0) {
      return ErrnoStatus(absl::StrCat("bind(", endpoint.Text(), ")"));
    }
    if (listen(fd, SOMAXCONN) != 0) return ErrnoStatus("listen()");
    return listener;
  }

  ~Listener() {
    Stop();
    close(fd_);
  }

  const Endpoint& endpoint() const { return endpoint_; }
  int fd() const { return fd_; }

  // Accepts on `acceptors` new threads until Stop(), counting into
  // counter[index].
  void Start(bool http, bool verbose, int acceptors, AcceptCounter* counter, size_t index) {
    for (int i = 0; i < acceptors; ++i) {
      threads_.emplace_back([this, http, verbose, counter, index] {
        AcceptUntilStopped(http, verbose, counter, index);
      });
    }
  }

  void Stop() {
    if (threads_.empty()) return;
    shutdown(fd_, SHUT_RDWR);
    for (std::thread& thread : threads_) thread.join();
    threads_.clear();
  }

  // True if a connection to destination lands on this listener.
  bool Receives(const Endpoint& destination) const {
    if (destination.port != endpoint_.port) return false;
    if (!endpoint_.IsUnspecified()) {
      return destination.family == endpoint_.family &&
             destination.address == endpoint_.address;
    }
    // A dual-stack [::] also receives IPv4.
    return destination.family == endpoint_.family || endpoint_.family == AF_INET6;
  }

 private:
  Listener(const Endpoint& endpoint, int fd) : endpoint_(endpoint), fd_(fd) {}

  // One acceptor thread: accepts and closes (or answers) until Stop().
  void AcceptUntilStopped(bool http, bool verbose, AcceptCounter* counter, size_t index) {
    while (true) {
      sockaddr_storage peer{};
      socklen_t peer_length = sizeof(peer);
      int connection =
          accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
      if (connection < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // shut down, or an error no retry would fix
      }
      counter->Add(index);
      if (verbose) {
        std::fprintf(stderr, "accepted %s on %s\n", PeerText(peer).c_str(),
                     endpoint_.Text().c_str());
      }
      if (http) AnswerHttp(connection, endpoint_);
      close(connection);
    }
  }

  const Endpoint endpoint_;
  const int fd_;
  std::vector<std::thread> threads_;
};

struct Listeners {
  std::vector<std::unique_ptr<Listener>> all;
  std::unique_ptr<AcceptCounter> counter;

  ~Listeners() {
    for (auto& listener : all) listener->Stop();
  }
};

absl::StatusOr<std::unique_ptr<Listeners>> StartListeners(
    const std::vector<Endpoint>& endpoints, bool http, bool verbose, int acceptors) {
  auto listeners = std::make_unique<Listeners>();
  listeners->counter = std::make_unique<AcceptCounter>(endpoints.size());
  // Bind every listener before any client connects, so none is refused.
  for (const Endpoint& endpoint : endpoints) {
    ASSIGN_OR_RETURN(std::unique_ptr<Listener> listener, Listener::Open(endpoint));
    listeners->all.push_back(std::move(listener));
  }
  for (size_t i = 0; i < listeners->all.size(); ++i) {
    listeners->all[i]->Start(http, verbose, acceptors, listeners->counter.get(), i);
  }
  return listeners;
}

// Waits until each listener has `acceptors` threads asleep in accept(), so
// that whoever reads "listening" knows the accepts are already in progress.
absl::Status AwaitAcceptorsBlocked(const Listeners& listeners, int acceptors,
                                   absl::Time deadline) {
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
      return absl::DeadlineExceededError(absl::StrCat(
          "only ", blocked[waiting->fd()], " of ", acceptors, " acceptor threads on ",
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

int RunTraffic(const Options& options) {
  const absl::Time deadline = absl::Now() + options.timeout;
  const bool serve_only = options.connect.empty();
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (serve_only) pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<Listeners>> listeners =
      StartListeners(options.listen, options.http, options.verbose, options.acceptors);
  if (!listeners.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s\n", listeners.status().ToString().c_str());
    return 1;
  }
  std::vector<int> expected((*listeners)->all.size(), 0);
  int made = 0;
  int failed = 0;
  size_t word = 0;
  for (const ConnectSpec& spec : options.connect) {
    for (int i = 0; i < spec.count; ++i) {
      const std::string* http_word = nullptr;
      if (options.http) http_word = &options.words[word++ % options.words.size()];
      absl::Status status = ConnectOnce(spec, http_word, /*rst=*/false, deadline);
      if (!status.ok()) {
        if (++failed <= kMaxReportedErrors) {
          std::fprintf(stderr, "ebpf_geoip_traffic: %s #%d: %s\n", spec.Text().c_str(),
                       i + 1, status.ToString().c_str());
        }
        continue;
      }
      ++made;
      for (size_t l = 0; l < expected.size(); ++l) {
        if ((*listeners)->all[l]->Receives(spec.destination)) {
          ++expected[l];
          break;
        }
      }
    }
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
    all_accepted = (*listeners)->counter->AwaitAtLeast(expected, deadline);
  }
  for (auto& listener : (*listeners)->all) listener->Stop();
  std::printf("connections made=%d accepted=%d\n", made, (*listeners)->counter->Total());
  if (!all_accepted) {
    std::fprintf(stderr, "ebpf_geoip_traffic: not every connection was accepted\n");
  }
  return failed == 0 && all_accepted ? 0 : 1;
}

int RunStorm(const ConnectSpec& spec, int count, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::unique_ptr<Listeners>> listeners =
      StartListeners({spec.destination}, /*http=*/false, /*verbose=*/false, /*acceptors=*/1);
  if (!listeners.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s\n", listeners.status().ToString().c_str());
    return 1;
  }
  const absl::Time start = absl::Now();
  int made = 0;
  absl::Status status;
  while (made < count) {
    status = ConnectOnce(spec, nullptr, /*rst=*/true, deadline);
    if (!status.ok()) break;
    ++made;
  }
  bool all_accepted = (*listeners)->counter->AwaitAtLeast({made}, deadline);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  (*listeners)->all[0]->Stop();
  const int accepted = (*listeners)->counter->Total();
  std::printf("storm connections=%d accepted=%d seconds=%.3f accepts_per_second=%.0f\n",
              made, accepted, seconds, seconds > 0 ? accepted / seconds : 0.0);
  if (!status.ok()) {
    std::fprintf(stderr, "ebpf_geoip_traffic: %s #%d: %s\n", spec.Text().c_str(), made + 1,
                 status.ToString().c_str());
  }
  return status.ok() && all_accepted ? 0 : 1;
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
    return geoip::RunStorm(*options->storm, options->count, options->timeout);
  }
  return geoip::RunTraffic(*options);
}
