#include "exporter/stats/network_counts.h"

#include <algorithm>

namespace geoip {

NetworkCounts::NetworkCounts(size_t max_labels, size_t max_keys)
    : max_labels_(max_labels), max_keys_(max_keys) {}

void NetworkCounts::Add(NetworkId network, CountryId country, uint16_t port, ServiceId service,
                        uint64_t count) {
  if (count == 0) return;
  NetworkId label = network;
  if (network.is_asn() && !admitted_.contains(network)) {
    // The set only grows, so once full no AS is ever admitted again.
    if (admitted_.size() < max_labels_) {
      admitted_.insert(network);
    } else {
      label = NetworkId::Other();
      if (refused_.insert(network).second) ++unlabelled_;
    }
  }
  label_totals_[label] += count;

  Key key(network, country, port, service);
  auto it = detail_.find(key);
  if (it == detail_.end()) {
    if (detail_.size() >= max_keys_) {
      past_max_keys_ += count;
      key = Key(NetworkId::Other(), country, port, service);
    }
    it = detail_.try_emplace(key, 0).first;
  }
  it->second += count;
}

std::vector<std::pair<NetworkId, uint64_t>> NetworkCounts::LabelTotals() const {
  std::vector<std::pair<NetworkId, uint64_t>> result(label_totals_.begin(), label_totals_.end());
  std::sort(result.begin(), result.end());
  return result;
}

NetworkCounts::Top NetworkCounts::TopNetworks(const Filter& filter, size_t limit) const {
  absl::flat_hash_map<NetworkId, uint64_t> sums;
  for (const auto& [key, count] : detail_) {
    const auto& [network, country, port, service] = key;
    if (filter.country && country != *filter.country) continue;
    if (filter.port && port != *filter.port) continue;
    if (filter.service && service != *filter.service) continue;
    sums[network] += count;
  }
  Top top;
  top.networks.assign(sums.begin(), sums.end());
  // Networks past the memory bound are not one network: always in `other`.
  const auto past = std::find_if(top.networks.begin(), top.networks.end(),
                                 [](const auto& n) { return n.first == NetworkId::Other(); });
  if (past != top.networks.end()) {
    top.other += past->second;
    top.networks.erase(past);
  }
  std::sort(top.networks.begin(), top.networks.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (size_t i = std::min(limit, top.networks.size()); i < top.networks.size(); ++i) {
    top.other += top.networks[i].second;
  }
  if (top.networks.size() > limit)
    top.networks.erase(top.networks.begin() + limit, top.networks.end());
  return top;
}

size_t NetworkCounts::MemoryBytes() const {
  return sizeof(*this) + detail_.capacity() * (sizeof(Key) + sizeof(uint64_t) + 1) +
         label_totals_.capacity() * (sizeof(NetworkId) + sizeof(uint64_t) + 1) +
         (admitted_.capacity() + refused_.capacity()) * (sizeof(NetworkId) + 1);
}

}  // namespace geoip
