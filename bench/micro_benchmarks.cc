// Micro-benchmarks of the exporter's user-space hot paths (Google
// Benchmark): geolocation cold and cached, aggregation, unique counting,
// and building a /metrics body with 16,000 series. GEOIP_SOURCE_DIR locates
// the bundled database.
//
//   build/bench/bench_micro [--benchmark_filter=REGEX]
#include <malloc.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "exporter/geo/country.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/geo/geolocator.h"
#include "exporter/metrics/collector.h"
#include "exporter/net/address.h"
#include "exporter/services/proc_listeners.h"
#include "exporter/services/service_registry.h"
#include "exporter/stats/connection_stats.h"
#include "exporter/stats/unique_counter.h"

namespace geoip {
namespace {

constexpr int kCountries = 250;
constexpr int kPorts = 64;  // 250 x 64 = 16,000 series

std::shared_ptr<const GeoIpDatabase> BundledDatabase() {
  static const std::shared_ptr<const GeoIpDatabase> database = [] {
    absl::StatusOr<GeoIpDatabase> opened =
        GeoIpDatabase::Open(std::string(GEOIP_SOURCE_DIR) + "/data/geo-whois-asn-country.mmdb");
    if (!opened.ok()) {
      std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
      std::abort();
    }
    return std::make_shared<const GeoIpDatabase>(*std::move(opened));
  }();
  return database;
}

// n distinct routable IPv4 addresses in random order (fixed seed).
std::vector<IpAddress> RandomAddresses(size_t n) {
  std::mt19937 random(42);
  std::vector<IpAddress> addresses;
  addresses.reserve(n);
  absl::flat_hash_set<uint32_t> seen;
  while (addresses.size() < n) {
    const uint32_t value = static_cast<uint32_t>(random());
    const IpAddress address = IpAddress::V4(value);
    if (IsNonRoutable(address) || !seen.insert(value).second) continue;
    addresses.push_back(address);
  }
  return addresses;
}

// 250 real country codes (the first letter pairs that are assigned codes
// would do as well: the collector only needs distinct labels).
std::vector<CountryId> Countries() {
  std::vector<CountryId> countries;
  for (uint16_t i = 0; countries.size() < kCountries; ++i) {
    countries.push_back(CountryId::FromIndex(i));
  }
  return countries;
}

// --- geolocation -----------------------------------------------------------

// The database alone: libmaxminddb's search plus reading country_code.
void BM_DatabaseLookup(benchmark::State& state) {
  const auto database = BundledDatabase();
  const std::vector<IpAddress> addresses = RandomAddresses(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(database->Lookup(addresses[i++ & ((1 << 20) - 1)]));
  }
}
BENCHMARK(BM_DatabaseLookup);

// Locate on addresses never seen before: every call misses the cache, goes
// to the database and inserts (the cache empties itself when full).
void BM_LocateCold(benchmark::State& state) {
  Geolocator geolocator(BundledDatabase());
  const std::vector<IpAddress> addresses = RandomAddresses(1 << 22);
  size_t i = 0;
  for (auto _ : state) {
    if (i == addresses.size()) {
      state.PauseTiming();
      geolocator.SetDatabase(BundledDatabase());  // empties the cache
      i = 0;
      state.ResumeTiming();
    }
    benchmark::DoNotOptimize(geolocator.Locate(addresses[i++]));
  }
  state.counters["hit_ratio"] =
      static_cast<double>(geolocator.stats().cache_hits) / geolocator.stats().lookups;
}
BENCHMARK(BM_LocateCold);

// Locate on a working set that fits the cache: every call hits.
void BM_LocateCached(benchmark::State& state) {
  Geolocator geolocator(BundledDatabase());
  const std::vector<IpAddress> addresses = RandomAddresses(4096);
  for (const IpAddress& address : addresses) geolocator.Locate(address);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(geolocator.Locate(addresses[i++ & 4095]));
  }
}
BENCHMARK(BM_LocateCached);

// --- aggregation -----------------------------------------------------------

// One drained (address, port) count recorded into a series that exists,
// from an address already counted: the steady state of a busy service.
void BM_RecordRepeat(benchmark::State& state) {
  ConnectionStats stats;
  const IpAddress address = IpAddress::V4(0x08080808);
  const absl::Time now = absl::Now();
  for (auto _ : state) {
    stats.Record(*CountryId::FromIsoCode("US"), 443, &address, 1, now);
  }
}
BENCHMARK(BM_RecordRepeat);

// Records of new addresses spread over 16,000 series: hash-map lookups of
// the series and its country, and unique-counter inserts (exact, then HLL).
void BM_RecordNewAddresses16kSeries(benchmark::State& state) {
  ConnectionStats stats;
  const std::vector<CountryId> countries = Countries();
  const std::vector<IpAddress> addresses = RandomAddresses(1 << 20);
  const absl::Time now = absl::Now();
  size_t i = 0;
  for (auto _ : state) {
    const size_t k = i++;
    stats.Record(countries[k % kCountries],
                 static_cast<uint16_t>(20000 + (k / kCountries) % kPorts),
                 &addresses[k & ((1 << 20) - 1)], 1, now);
  }
}
BENCHMARK(BM_RecordNewAddresses16kSeries);

// --- unique counting -------------------------------------------------------

// Adds in the exact phase: a hash-set insert. The counter is replaced
// before it reaches its bound, so every Add stays exact.
void BM_UniqueAddExact(benchmark::State& state) {
  const std::vector<IpAddress> addresses = RandomAddresses(UniqueCounter::kDefaultExactLimit);
  auto counter = std::make_unique<UniqueCounter>();
  size_t i = 0;
  for (auto _ : state) {
    if (i == addresses.size()) {
      state.PauseTiming();
      counter = std::make_unique<UniqueCounter>();
      i = 0;
      state.ResumeTiming();
    }
    counter->Add(addresses[i++]);
  }
  state.counters["exact"] = counter->exact();
}
BENCHMARK(BM_UniqueAddExact);

// Adds in the sketch phase: a hash and one register update.
void BM_UniqueAddSketch(benchmark::State& state) {
  const std::vector<IpAddress> addresses = RandomAddresses(1 << 20);
  UniqueCounter counter;
  for (size_t i = 0; i <= UniqueCounter::kDefaultExactLimit; ++i) counter.Add(addresses[i]);
  size_t i = 0;
  for (auto _ : state) counter.Add(addresses[i++ & ((1 << 20) - 1)]);
  state.counters["exact"] = counter.exact();
}
BENCHMARK(BM_UniqueAddSketch);

// Estimate() of a sketch, which a scrape calls once per series.
void BM_UniqueEstimateSketch(benchmark::State& state) {
  const std::vector<IpAddress> addresses = RandomAddresses(4096);
  UniqueCounter counter;
  for (const IpAddress& address : addresses) counter.Add(address);
  for (auto _ : state) benchmark::DoNotOptimize(counter.Estimate());
}
BENCHMARK(BM_UniqueEstimateSketch);

// --- /metrics with 16,000 series ------------------------------------------

// One service per port, as a host with one listener per port has them.
ServiceNames* BenchServices() {
  static auto* names = new ServiceNames(kPorts);
  return names;
}

// 250 countries x 64 ports, each series with `addresses_per_series`
// distinct addresses (past 256 its unique counter is a sketch), each port
// its own service. Built once per argument: Google Benchmark calls a
// benchmark several times.
const ConnectionStats* FilledStats(int addresses_per_series) {
  static auto* built = new std::map<int, std::unique_ptr<ConnectionStats>>();
  std::unique_ptr<ConnectionStats>& stats = (*built)[addresses_per_series];
  if (stats != nullptr) return stats.get();
  stats = std::make_unique<ConnectionStats>();
  const std::vector<CountryId> countries = Countries();
  const absl::Time now = absl::Now();
  uint32_t next = 0x01000000;
  for (CountryId country : countries) {
    for (int p = 0; p < kPorts; ++p) {
      for (int a = 0; a < addresses_per_series; ++a) {
        const IpAddress address = IpAddress::V4(next++);
        stats->Record(country, static_cast<uint16_t>(20000 + p), &address, 1, now,
                      BenchServices()->Intern(absl::StrCat("service-", p)));
      }
    }
  }
  return stats.get();
}

ExporterHealth FixedHealth() {
  ExporterHealth health;
  health.probe_mode = "tracepoint";
  health.database_type = "bench";
  health.database_path = "/bench.mmdb";
  return health;
}

// Collect(): Snapshot() (copy and sort under the lock, Estimate() per
// series) and building prometheus-cpp MetricFamily objects.
void BM_Collect16k(benchmark::State& state) {
  const ConnectionStats* stats = FilledStats(static_cast<int>(state.range(0)));
  ExporterCollector collector(stats, BenchServices(), {"0", "bench", "bench"}, FixedHealth);
  for (auto _ : state) benchmark::DoNotOptimize(collector.Collect());
  state.counters["series"] = static_cast<double>(stats->SeriesCount());
}
// 1 address per series: exact counters; 300: every series a sketch.
BENCHMARK(BM_Collect16k)->Arg(1)->Arg(300)->Unit(benchmark::kMillisecond);

// SerializeText() of what Collect() returned (the exporter's own writer;
// it replaced prometheus-cpp's TextSerializer, which took 12 ms here).
void BM_SerializeText16k(benchmark::State& state) {
  const ConnectionStats* stats = FilledStats(1);
  ExporterCollector collector(stats, BenchServices(), {"0", "bench", "bench"}, FixedHealth);
  const std::vector<prometheus::MetricFamily> families = collector.Collect();
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = SerializeText(families);
    bytes = text.size();
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_SerializeText16k)->Unit(benchmark::kMillisecond);

// The whole body through prometheus-cpp's families, for comparison with
// CollectText().
void BM_CollectAndSerialize16k(benchmark::State& state) {
  const ConnectionStats* stats = FilledStats(1);
  ExporterCollector collector(stats, BenchServices(), {"0", "bench", "bench"}, FixedHealth);
  for (auto _ : state) benchmark::DoNotOptimize(SerializeText(collector.Collect()));
}
BENCHMARK(BM_CollectAndSerialize16k)->Unit(benchmark::kMillisecond);

// CollectText(): what /metrics serves, the connection series written
// straight from Snapshot() plus the health families.
// Times collector.CollectText(), the body /metrics serves, and reports
// its size.
void TimeCollectText(benchmark::State& state, const ExporterCollector& collector) {
  size_t bytes = 0;
  for (auto _ : state) {
    // Not const: benchmark 1.8 (Debian 13) deprecates DoNotOptimize(const T&).
    std::string text = collector.CollectText();
    bytes = text.size();
    benchmark::DoNotOptimize(text);
  }
  state.counters["body_bytes"] = static_cast<double>(bytes);
}

void BM_CollectText16k(benchmark::State& state) {
  const ConnectionStats* stats = FilledStats(static_cast<int>(state.range(0)));
  ExporterCollector collector(stats, BenchServices(), {"0", "bench", "bench"}, FixedHealth);
  TimeCollectText(state, collector);
}
BENCHMARK(BM_CollectText16k)->Arg(1)->Arg(300)->Unit(benchmark::kMillisecond);

// What each labelled AS adds to a scrape: CollectText() of a small host's
// statistics (12 countries x 4 ports) with connections from `range(0)`
// distinct ASes, every one labelled (--metrics.max-asns at least that), each
// with a 30-byte name. Chooses --metrics.max-asns' default: the ratio to
// Arg(0) is what the AS series cost.
void BM_CollectTextAses(benchmark::State& state) {
  const int ases = static_cast<int>(state.range(0));
  ConnectionStats::Options options;
  options.max_network_labels = static_cast<size_t>(ases);
  ConnectionStats stats(options);
  const std::vector<CountryId> countries = Countries();
  const absl::Time now = absl::Now();
  uint32_t next = 0x01000000;
  for (int i = 0; i < std::max(ases, 48); ++i) {
    const IpAddress address = IpAddress::V4(next++);
    stats.Record(countries[i % 12], static_cast<uint16_t>(20000 + (i / 12) % 4), &address, 1, now,
                 ServiceNames::kUnknown,
                 i < ases ? NetworkId::Of(static_cast<uint32_t>(64512 + i)) : NetworkId::Unknown());
  }
  ExporterCollector collector(
      &stats, BenchServices(), {"0", "bench", "bench"}, FixedHealth,
      [](NetworkId) { return std::string("Example Networks Limited, Inc"); });
  TimeCollectText(state, collector);
}
BENCHMARK(BM_CollectTextAses)
    ->Arg(0)
    ->Arg(200)
    ->Arg(1000)
    ->Arg(5000)
    ->Unit(benchmark::kMicrosecond);

// --- memory ----------------------------------------------------------------

// Heap held by ConnectionStats after 1,048,576 distinct addresses, spread
// evenly over `series` series (16,000: ~66 per series, all exact, the
// worst spread for memory below the exact bound; 16: all sketches). One
// iteration; the figures are counters, in MiB.
void BM_StatsMemory1M(benchmark::State& state) {
  const int series = static_cast<int>(state.range(0));
  const std::vector<CountryId> countries = Countries();
  for (auto _ : state) {
    malloc_trim(0);
    const size_t before = mallinfo2().uordblks;
    auto stats = std::make_unique<ConnectionStats>();
    const absl::Time now = absl::Now();
    for (uint32_t i = 0; i < (1u << 20); ++i) {
      const IpAddress address = IpAddress::V4(0x01000000 + i);
      const int s = static_cast<int>(i % static_cast<uint32_t>(series));
      stats->Record(countries[s % kCountries], static_cast<uint16_t>(20000 + s / kCountries),
                    &address, 1, now);
    }
    state.counters["heap_MiB"] = (mallinfo2().uordblks - before) / 1048576.0;
    state.counters["memory_bytes_MiB"] = stats->MemoryBytes() / 1048576.0;
    state.counters["series"] = static_cast<double>(stats->SeriesCount());
  }
}
BENCHMARK(BM_StatsMemory1M)->Arg(16)->Arg(16000)->Iterations(1)->Unit(benchmark::kMillisecond);

// --- Service attribution -------------------------------------------------

// The start-up scan of every process's sockets in /proc (this host's), as
// root; done once, before the probe's own record of listen() calls takes
// over.
void BM_ScanProcListeners(benchmark::State& state) {
  size_t found = 0;
  for (auto _ : state) found = ScanProcListeners().listening.size();
  state.counters["listeners"] = static_cast<double>(found);
}
BENCHMARK(BM_ScanProcListeners)->Unit(benchmark::kMillisecond);

// The drain's per-key question: which service listens on (netns, port), with
// 4096 listeners remembered (the bound).
void BM_ServiceOf4096Listeners(benchmark::State& state) {
  ServiceNames names(64);
  ServiceRegistry registry(
      &names,
      [](const ListeningSocket& socket) {
        ListenerIdentity identity;
        identity.service = absl::StrCat("service-", socket.port % 64);
        return identity;
      },
      4096);
  std::vector<ListeningSocket> sockets(4096);
  for (uint32_t i = 0; i < sockets.size(); ++i) {
    sockets[i].netns = 4026531840u + i % 16;
    sockets[i].port = static_cast<uint16_t>(10000 + i);
    sockets[i].pid = 1000 + i;
  }
  registry.Learn(sockets);
  uint32_t i = 0;
  for (auto _ : state) {
    const ListeningSocket& socket = sockets[i++ % sockets.size()];
    benchmark::DoNotOptimize(registry.ServiceOf(socket.netns, socket.port));
  }
}
BENCHMARK(BM_ServiceOf4096Listeners);

}  // namespace
}  // namespace geoip

BENCHMARK_MAIN();
