#include "exporter/stats/connection_stats.h"

#include <algorithm>
#include <string>
#include <tuple>

#include "exporter/stats/label_order.h"

namespace geoip {
namespace {

void Add(ConnectionStats::Traffic& total, const DrainedTraffic& traffic) {
  total.received_bytes += traffic.received_bytes;
  total.sent_bytes += traffic.sent_bytes;
  total.closed_connections += traffic.closed;
  total.lifetime_ns += traffic.duration_ns;
}

void Add(ConnectionStats::Traffic& total, const ConnectionStats::Traffic& more) {
  total.received_bytes += more.received_bytes;
  total.sent_bytes += more.sent_bytes;
  total.closed_connections += more.closed_connections;
  total.lifetime_ns += more.lifetime_ns;
}

bool HasLifetimes(const DrainedTraffic& traffic) {
  for (uint64_t bucket : traffic.duration_buckets) {
    if (bucket != 0) return true;
  }
  return traffic.duration_ns != 0;
}

}  // namespace

ConnectionStats::ConnectionStats(Options options)
    : options_(options),
      networks_(options.max_network_labels, options.max_network_keys),
      peers_(options.top_peers, options.full_peer_addresses),
      words_(options.max_words) {
  recent_.reserve(options_.recent_capacity);
}

void ConnectionStats::Record(CountryId country, uint16_t port, const IpAddress* address,
                             uint64_t count, absl::Time when, ServiceId service,
                             NetworkId network) {
  if (count == 0) return;
  std::unique_lock<std::shared_mutex> lock(mu_);
  const size_t limit = options_.exact_unique_limit;
  Counts& series = series_.try_emplace(SeriesKey(country, port, service), limit).first->second;
  Counts& total = countries_.try_emplace(country, limit).first->second;
  series.connections += count;
  total.connections += count;
  networks_.Add(network, country, port, service, count);
  if (address != nullptr) {
    series.uniques.Add(*address);
    total.uniques.Add(*address);
    peers_.Record(country, port, service, *address, count);
  }

  if (options_.recent_capacity > 0) {
    RecentConnection recent{when,
                            country,
                            port,
                            service,
                            address != nullptr ? *address : IpAddress(),
                            address != nullptr,
                            count};
    if (recent_.size() < options_.recent_capacity) {
      recent_.push_back(recent);
    } else {
      recent_[next_recent_] = recent;
    }
    next_recent_ = (next_recent_ + 1) % options_.recent_capacity;
  }
  Changed(lock);
}

void ConnectionStats::RecordTraffic(CountryId country, ServiceId service,
                                    const DrainedTraffic& traffic) {
  const bool lifetimes = HasLifetimes(traffic);
  if (traffic.received_bytes == 0 && traffic.sent_bytes == 0 && traffic.closed == 0 && !lifetimes) {
    return;
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  const size_t limit = options_.exact_unique_limit;
  Add(series_.try_emplace(SeriesKey(country, traffic.port, service), limit).first->second.traffic,
      traffic);
  Add(countries_.try_emplace(country, limit).first->second.traffic, traffic);
  if (lifetimes) {
    Lifetimes& histogram = lifetimes_
                               .try_emplace(LifetimesKey(traffic.port, service),
                                            Lifetimes{traffic.port, service, {}, 0})
                               .first->second;
    for (size_t i = 0; i < histogram.buckets.size(); ++i) {
      histogram.buckets[i] += traffic.duration_buckets[i];
    }
    histogram.sum_ns += traffic.duration_ns;
  }
  Changed(lock);
}

void ConnectionStats::RecordFailure(CountryId country, uint16_t port, FailureReason reason,
                                    uint64_t count) {
  if (count == 0) return;
  std::unique_lock<std::shared_mutex> lock(mu_);
  failures_.Add(country, port, reason, count);
  Changed(lock);
}

void ConnectionStats::Changed(std::unique_lock<std::shared_mutex>& lock) {
  ++version_;
  lock.unlock();
  changed_.notify_all();
}

std::vector<ConnectionStats::Series> ConnectionStats::Snapshot() const {
  std::vector<Series> result;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    result.reserve(series_.size());
    for (const auto& [key, counts] : series_) {
      result.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key), counts.connections,
                        counts.uniques.Estimate(), counts.traffic});
    }
  }
  SortByLabel(result, [](const Series& s) { return std::make_pair(s.port, s.service); });
  return result;
}

std::vector<ConnectionStats::CountryTotal> ConnectionStats::CountryTotals(
    const Filter& filter) const {
  std::vector<CountryTotal> result;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (filter.port.has_value() || filter.service.has_value()) {
      // A country may have several series here (ports or services); their
      // uniques are summed, an upper bound of the distinct addresses.
      absl::flat_hash_map<CountryId, CountryTotal> by_country;
      for (const auto& [key, counts] : series_) {
        const auto& [country, port, service] = key;
        if (filter.port.has_value() && port != *filter.port) continue;
        if (filter.service.has_value() && service != *filter.service) continue;
        CountryTotal& total =
            by_country.try_emplace(country, CountryTotal{country, 0, 0, {}}).first->second;
        total.connections += counts.connections;
        total.unique_addresses += counts.uniques.Estimate();
        Add(total.traffic, counts.traffic);
      }
      result.reserve(by_country.size());
      for (const auto& entry : by_country) result.push_back(entry.second);
    } else {
      result.reserve(countries_.size());
      for (const auto& [country, counts] : countries_) {
        result.push_back({country, counts.connections, counts.uniques.Estimate(), counts.traffic});
      }
    }
  }
  // Each country appears once, so the label alone orders them.
  SortByLabel(result, [](const CountryTotal&) { return 0; });
  return result;
}

std::vector<uint16_t> ConnectionStats::Ports() const {
  std::vector<uint16_t> ports;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    ports.reserve(series_.size());
    for (const auto& entry : series_) ports.push_back(std::get<1>(entry.first));
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

std::vector<ServiceId> ConnectionStats::Services() const {
  std::vector<ServiceId> services;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    services.reserve(series_.size());
    for (const auto& entry : series_) services.push_back(std::get<2>(entry.first));
  }
  std::sort(services.begin(), services.end());
  services.erase(std::unique(services.begin(), services.end()), services.end());
  return services;
}

std::vector<ConnectionStats::Lifetimes> ConnectionStats::LifetimeHistograms() const {
  std::vector<Lifetimes> result;
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    result.reserve(lifetimes_.size());
    for (const auto& entry : lifetimes_) result.push_back(entry.second);
  }
  std::sort(result.begin(), result.end(), [](const Lifetimes& a, const Lifetimes& b) {
    return std::make_pair(a.port, a.service) < std::make_pair(b.port, b.service);
  });
  return result;
}

std::vector<FailureCounts::Series> ConnectionStats::Failures() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return failures_.Snapshot();
}

absl::Status ConnectionStats::AddWord(std::string_view word) {
  std::unique_lock<std::shared_mutex> lock(mu_);
  absl::Status added = words_.Add(word);
  if (added.ok()) Changed(lock);
  return added;
}

std::vector<WordCloud::Entry> ConnectionStats::Words(size_t max) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return words_.Snapshot(max);
}

ConnectionStats::WordCounts ConnectionStats::WordTotals() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  WordCounts counts;
  counts.counted = words_.accepted();
  counts.evicted = words_.evicted();
  for (size_t i = 0; i < kWordRefusalCount; ++i) {
    counts.refused[i] = words_.refused(static_cast<WordRefusal>(i));
  }
  return counts;
}

std::vector<TopPeers::Peer> ConnectionStats::Peers(std::optional<uint16_t> port,
                                                   std::optional<ServiceId> service,
                                                   size_t limit) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return peers_.Top(port, service, limit);
}

std::vector<std::pair<NetworkId, uint64_t>> ConnectionStats::NetworkLabelTotals() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return networks_.LabelTotals();
}

NetworkCounts::Top ConnectionStats::TopNetworks(const NetworkCounts::Filter& filter,
                                                size_t limit) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return networks_.TopNetworks(filter, limit);
}

uint64_t ConnectionStats::UnlabelledNetworks() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return networks_.unlabelled();
}

uint64_t ConnectionStats::NetworkDetailOverflow() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return networks_.past_max_keys();
}

std::vector<ConnectionStats::RecentConnection> ConnectionStats::Recent(size_t max) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  const size_t n = std::min(max, recent_.size());
  std::vector<RecentConnection> result;
  result.reserve(n);
  // Walk backwards from the newest entry, which sits just before next_recent_.
  size_t index = next_recent_;
  for (size_t i = 0; i < n; ++i) {
    index = (index == 0 ? recent_.size() : index) - 1;
    result.push_back(recent_[index]);
  }
  return result;
}

uint64_t ConnectionStats::Version() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return version_;
}

bool ConnectionStats::WaitForChange(uint64_t seen_version, absl::Duration timeout) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return changed_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                           [&] { return version_ != seen_version; });
}

size_t ConnectionStats::SeriesCount() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return series_.size();
}

size_t ConnectionStats::MemoryBytes() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  // Each map slot holds its key and Counts; the counters' own heap is added
  // on top (UniqueCounter::MemoryBytes includes its inline size).
  size_t bytes = sizeof(*this) + series_.capacity() * (sizeof(SeriesKey) + sizeof(Counts) + 1) +
                 countries_.capacity() * (sizeof(CountryId) + sizeof(Counts) + 1) +
                 lifetimes_.capacity() * (sizeof(LifetimesKey) + sizeof(Lifetimes) + 1) +
                 failures_.MemoryBytes() - sizeof(FailureCounts) + networks_.MemoryBytes() -
                 sizeof(NetworkCounts) + recent_.capacity() * sizeof(RecentConnection);
  for (const auto& entry : series_) {
    bytes += entry.second.uniques.MemoryBytes() - sizeof(UniqueCounter);
  }
  for (const auto& entry : countries_) {
    bytes += entry.second.uniques.MemoryBytes() - sizeof(UniqueCounter);
  }
  return bytes;
}

}  // namespace geoip
