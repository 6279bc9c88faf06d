// bench_scrape_load: what a /metrics scrape costs with many series.
//
// Starts the exporter in simulated mode, fills countries x ports series by
// posting one connection per series to /api/v1/connections (addresses from
// one country each, found in the GeoIP database), then scrapes /metrics
// repeatedly, first on an idle machine, then while an accept storm runs,
// and reports latency percentiles and the body size.
//
// --list-countries=N only prints "CC ADDRESS" for N countries and exits.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/country_sampler.h"
#include "bench/figures.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/util/status_macros.h"
#include "exporter/util/unique_fd.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http_get.h"
#include "tests/support/metrics_text.h"
#include "tools/load/socket.h"
#include "tools/load/storm.h"

namespace geoip {
namespace {

constexpr char kUsage[] = R"(Usage: bench_scrape_load [FLAGS]

  --exporter=PATH        exporter binary (run with --connections.source=simulated)
  --geoip.database=PATH  database for the exporter and for finding addresses
  --countries=N          countries to look for (default 250)
  --series=N             series to fill at least (default 16000): each
                         country gets ceil(N / countries found) ports
  --first-port=N         default 20000
  --scrapes=N            scrapes per phase (default 200)
  --storm-port=N         port of the concurrent storm (default 18557)
  --list-countries=N     print "CC ADDRESS" for N countries and exit
)";

struct Flags {
  std::string exporter;
  std::string database;
  int countries = 250;
  int series = 16000;
  int first_port = 20000;
  int scrapes = 200;
  uint16_t storm_port = 18557;
  int list_countries = 0;
};

absl::StatusOr<Flags> ParseFlags(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(absl::string_view(argv[i]), absl::MaxSplits('=', 1));
    const absl::string_view name = kv.first, value = kv.second;
    int number = 0;
    const bool numeric = absl::SimpleAtoi(value, &number) && number > 0;
    if (name == "--exporter") {
      flags.exporter = std::string(value);
    } else if (name == "--geoip.database") {
      flags.database = std::string(value);
    } else if (name == "--countries" && numeric && number <= 700) {
      flags.countries = number;
    } else if (name == "--series" && numeric && number <= 1'000'000) {
      flags.series = number;
    } else if (name == "--first-port" && numeric && number <= 60000) {
      flags.first_port = number;
    } else if (name == "--scrapes" && numeric && number <= 100000) {
      flags.scrapes = number;
    } else if (name == "--storm-port" && numeric && number <= 65535) {
      flags.storm_port = static_cast<uint16_t>(number);
    } else if (name == "--list-countries" && numeric && number <= 700) {
      flags.list_countries = number;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("bad flag '", argv[i], "'"));
    }
  }
  if (flags.database.empty()) return absl::InvalidArgumentError("--geoip.database is required");
  if (flags.list_countries == 0 && flags.exporter.empty()) {
    return absl::InvalidArgumentError("--exporter is required");
  }
  return flags;
}

// A keep-alive HTTP/1.1 connection to a loopback server, as Prometheus
// keeps one to each target.
class KeepAliveClient {
 public:
  // quick_ack: acknowledge every reply segment at once (TCP_QUICKACK), so
  // a server that writes a reply in pieces is not held up by Nagle's
  // algorithm waiting for our delayed ACK. Prometheus does not do this.
  static absl::StatusOr<KeepAliveClient> Connect(uint16_t port, bool quick_ack) {
    ASSIGN_OR_RETURN(UniqueFd fd, geoip::Connect(Endpoint{IpAddress::V4(0x7f000001), port},
                                                 std::nullopt, absl::InfiniteFuture()));
    // Bounds each request, not the whole series of them.
    RETURN_IF_ERROR(BoundBlockingCalls(fd.get(), absl::Seconds(10)));
    int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return KeepAliveClient(std::move(fd), quick_ack);
  }

  // Sends one request and reads its reply (status and body).
  absl::StatusOr<std::pair<int, std::string>> Request(absl::string_view method,
                                                      absl::string_view path,
                                                      absl::string_view body) {
    std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    if (!body.empty()) {
      absl::StrAppend(&request, "Content-Type: application/json\r\nContent-Length: ", body.size(),
                      "\r\n");
    }
    absl::StrAppend(&request, "\r\n", body);
    absl::string_view left = request;
    while (!left.empty()) {
      const ssize_t sent = send(fd_.get(), left.data(), left.size(), MSG_NOSIGNAL);
      if (sent <= 0) return absl::ErrnoToStatus(errno, "send()");
      left.remove_prefix(static_cast<size_t>(sent));
    }
    // Read the head, then exactly Content-Length bytes of body.
    size_t head_end = std::string::npos, length = 0;
    while (true) {
      if (head_end == std::string::npos) {
        head_end = buffer_.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          const std::string head = absl::AsciiStrToLower(buffer_.substr(0, head_end));
          const size_t at = head.find("content-length:");
          if (at == std::string::npos ||
              !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::string_view(head).substr(
                                    at + 15, head.find('\r', at) - at - 15)),
                                &length)) {
            return absl::InternalError("reply without Content-Length");
          }
        }
      }
      if (head_end != std::string::npos && buffer_.size() >= head_end + 4 + length) {
        int status = 0;
        std::vector<absl::string_view> words =
            absl::StrSplit(absl::string_view(buffer_).substr(0, head_end), ' ');
        if (words.size() < 2 || !absl::SimpleAtoi(words[1], &status)) {
          return absl::InternalError("bad status line");
        }
        std::pair<int, std::string> reply(status, buffer_.substr(head_end + 4, length));
        buffer_.erase(0, head_end + 4 + length);
        return reply;
      }
      if (quick_ack_) {
        int one = 1;
        setsockopt(fd_.get(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
      }
      char chunk[65536];
      const ssize_t received = recv(fd_.get(), chunk, sizeof(chunk), 0);
      if (received <= 0) return absl::ErrnoToStatus(errno, "recv()");
      buffer_.append(chunk, static_cast<size_t>(received));
    }
  }

 private:
  KeepAliveClient(UniqueFd fd, bool quick_ack) : fd_(std::move(fd)), quick_ack_(quick_ack) {}
  UniqueFd fd_;
  bool quick_ack_;
  std::string buffer_;
};

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return NAN;
  std::sort(values.begin(), values.end());
  // Nearest rank.
  const size_t rank = static_cast<size_t>(std::ceil(p / 100 * values.size()));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct ScrapeStats {
  std::vector<double> milliseconds;
  size_t body_bytes = 0;
  size_t series = 0;
};

// Scrapes /metrics `scrapes` times: over one keep-alive connection (as
// Prometheus does) or with a new connection each time (HTTP/1.0, closed by
// the server).
absl::StatusOr<ScrapeStats> ScrapeRepeatedly(uint16_t port, int scrapes, bool keep_alive) {
  ScrapeStats stats;
  std::optional<KeepAliveClient> client;
  if (keep_alive) {
    ASSIGN_OR_RETURN(client, KeepAliveClient::Connect(port, /*quick_ack=*/false));
  }
  for (int i = 0; i < scrapes; ++i) {
    const absl::Time start = absl::Now();
    std::pair<int, std::string> reply;
    if (client) {
      ASSIGN_OR_RETURN(reply, client->Request("GET", "/metrics", ""));
    } else {
      ASSIGN_OR_RETURN(HttpReply response,
                       HttpGet("127.0.0.1", port, "/metrics", absl::Seconds(10)));
      reply = {response.status, std::move(response.body)};
    }
    stats.milliseconds.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (reply.first != 200) {
      return absl::InternalError(absl::StrCat("/metrics answered ", reply.first));
    }
    stats.body_bytes = reply.second.size();
    if (i == 0) {
      ASSIGN_OR_RETURN(MetricsText metrics, MetricsText::Parse(reply.second));
      for (const auto& [series, value] : metrics.series()) {
        if (absl::StartsWith(series, "ebpf_geoip_accepted_connections_total{")) ++stats.series;
      }
    }
  }
  return stats;
}

absl::Status Run(const Flags& flags) {
  ASSIGN_OR_RETURN(GeoIpDatabase database, GeoIpDatabase::Open(flags.database));
  const absl::Time sample_start = absl::Now();
  const std::vector<CountryAddress> countries = SampleCountries(
      database,
      static_cast<size_t>(flags.list_countries > 0 ? flags.list_countries : flags.countries));
  if (flags.list_countries > 0) {
    for (const CountryAddress& c : countries) {
      std::printf("%s %s\n", c.country.Label().c_str(), FormatIpAddress(c.address).c_str());
    }
    return absl::OkStatus();
  }
  std::printf("sampled %zu countries in %.1fs\n", countries.size(),
              absl::ToDoubleSeconds(absl::Now() - sample_start));

  ASSIGN_OR_RETURN(ExporterProcess exporter,
                   ExporterProcess::Start({flags.exporter, "--connections.source=simulated",
                                           "--geoip.database=" + flags.database}));
  const uint16_t port = static_cast<uint16_t>(exporter.port());

  // A small /metrics first (no series yet): the latency of a reply that
  // fits one segment, over a new connection and over keep-alive.
  for (const bool keep_alive : {false, true}) {
    ASSIGN_OR_RETURN(const ScrapeStats small, ScrapeRepeatedly(port, 20, keep_alive));
    const std::string name = keep_alive ? "small_keepalive" : "small";
    std::printf("scrapes %s n=%zu p50=%.2fms body=%zu\n", name.c_str(), small.milliseconds.size(),
                Percentile(small.milliseconds, 50), small.body_bytes);
    PrintFigure(absl::StrCat("scrape_", name, "_p50_ms"), Percentile(small.milliseconds, 50));
    PrintFigure("scrape_small_body_bytes", small.body_bytes);
  }

  // Fill: one connection per (country, port).
  const int ports = static_cast<int>((flags.series + countries.size() - 1) / countries.size());
  if (flags.first_port + ports > 65536) {
    return absl::InvalidArgumentError("--first-port + ports needed passes 65535");
  }
  ASSIGN_OR_RETURN(KeepAliveClient client, KeepAliveClient::Connect(port, /*quick_ack=*/true));
  const absl::Time fill_start = absl::Now();
  int posted = 0;
  for (const CountryAddress& c : countries) {
    for (int p = 0; p < ports; ++p) {
      ASSIGN_OR_RETURN(const auto reply,
                       client.Request("POST", "/api/v1/connections",
                                      absl::StrCat("{\"address\":\"", FormatIpAddress(c.address),
                                                   "\",\"port\":", flags.first_port + p, "}")));
      if (reply.first != 200)
        return absl::InternalError(absl::StrCat("POST answered ", reply.first));
      ++posted;
    }
  }
  const double fill_seconds = absl::ToDoubleSeconds(absl::Now() - fill_start);
  std::printf("posted %d connections in %.2fs (%.0f/s)\n", posted, fill_seconds,
              posted / fill_seconds);

  // Phases: idle, then during a storm that keeps both cores busy; each with
  // new connections and with one keep-alive connection.
  struct Phase {
    std::string name;
    bool storm;
    bool keep_alive;
  };
  const std::vector<Phase> phases = {{"idle", false, false},
                                     {"idle_keepalive", false, true},
                                     {"storm", true, false},
                                     {"storm_keepalive", true, true}};
  size_t body_bytes = 0, series = 0;
  for (const Phase& phase : phases) {
    std::atomic<bool> stop{false};
    absl::StatusOr<StormResult> storm = absl::InternalError("storm did not run");
    std::thread storm_thread;
    if (phase.storm) {
      StormOptions storm_options;
      storm_options.port = flags.storm_port;
      storm_options.count = 100'000'000;
      storm_options.stop = &stop;
      storm_options.timeout = absl::Seconds(120);
      storm_thread = std::thread([&storm, storm_options] {
        StormResult result;
        const absl::Status status = RunStorm(storm_options, &result);
        storm = status.ok() ? absl::StatusOr<StormResult>(result) : status;
      });
      absl::SleepFor(absl::Milliseconds(200));
    }
    absl::StatusOr<ScrapeStats> stats = ScrapeRepeatedly(port, flags.scrapes, phase.keep_alive);
    if (phase.storm) {
      stop = true;
      storm_thread.join();
      RETURN_IF_ERROR(storm.status());
    }
    RETURN_IF_ERROR(stats.status());
    const std::vector<double>& ms = stats->milliseconds;
    std::printf(
        "scrapes %s n=%zu p50=%.2fms p99=%.2fms max=%.2fms body=%zu series=%zu%s\n",
        phase.name.c_str(), ms.size(), Percentile(ms, 50), Percentile(ms, 99),
        *std::max_element(ms.begin(), ms.end()), stats->body_bytes, stats->series,
        phase.storm
            ? absl::StrFormat(" storm_accepts_per_second=%.0f", storm->AcceptsPerSecond()).c_str()
            : "");
    PrintFigure(absl::StrCat("scrape_", phase.name, "_p50_ms"), Percentile(ms, 50));
    PrintFigure(absl::StrCat("scrape_", phase.name, "_p99_ms"), Percentile(ms, 99));
    if (phase.storm) {
      PrintFigure(absl::StrCat("scrape_", phase.name, "_storm_rate"), storm->AcceptsPerSecond());
    }
    body_bytes = stats->body_bytes;
    series = stats->series;
  }
  PrintFigure("scrape_body_bytes", body_bytes);
  PrintFigure("scrape_series", series);
  PrintFigure("scrape_countries", countries.size());
  PrintFigure("scrape_ports", ports);
  PrintFigure("post_rate", posted / fill_seconds);
  return absl::OkStatus();
}

}  // namespace
}  // namespace geoip

int main(int argc, char** argv) {
  if (geoip::PrintUsageIfAsked(argc, argv, geoip::kUsage)) return 0;
  absl::StatusOr<geoip::Flags> flags = geoip::ParseFlags(argc, argv);
  if (!flags.ok()) {
    std::fprintf(stderr, "bench_scrape_load: %s\n(see --help)\n",
                 std::string(flags.status().message()).c_str());
    return 2;
  }
  setvbuf(stdout, nullptr, _IOLBF, 0);
  alarm(300);  // hard bound; the exporter dies with us (PDEATHSIG)
  signal(SIGPIPE, SIG_IGN);
  if (absl::Status status = geoip::Run(*flags); !status.ok()) {
    std::fprintf(stderr, "bench_scrape_load: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
