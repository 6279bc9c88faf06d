#include "exporter/stats/top_peers.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace geoip {
namespace {

// The capacity the key index reaches when it holds `entries` keys: abseil's
// tables are 2^k - 1 slots, at most 7/8 full. Evictions leave tombstones
// that may make it grow once more when it is more than 25/32 full (after
// which it is under half full and cleans them up in place), hence the
// doubling.
size_t IndexCapacityBound(size_t entries) {
  size_t capacity = 1;
  while (capacity - capacity / 8 < entries) capacity = capacity * 2 + 1;
  return capacity * 2 + 1;
}

}  // namespace

TopPeers::TopPeers(size_t capacity, bool full_addresses)
    : capacity_(capacity), full_addresses_(full_addresses) {}

void TopPeers::Record(CountryId country, uint16_t port, ServiceId service, const IpAddress& peer,
                      uint64_t count) {
  if (capacity_ == 0 || count == 0) return;
  sketches_[SketchKey(port, service)].Add(country, KeyOf(peer), count, capacity_);
}

void TopPeers::Sketch::Add(CountryId country, const IpAddress& key, uint64_t count,
                           size_t capacity) {
  if (auto it = index.find(key); it != index.end()) {
    Counter& counter = slots[it->second];
    counter.count += count;
    counter.country = country;
    SiftDown(counter.heap_index);
    return;
  }
  if (slots.size() < capacity) {
    // Grow by doubling, but never past `capacity` counters.
    if (slots.size() == slots.capacity()) {
      const size_t grown = std::min(capacity, std::max<size_t>(8, slots.size() * 2));
      slots.reserve(grown);
      heap.reserve(grown);
    }
    const auto slot = static_cast<uint32_t>(slots.size());
    slots.push_back({key, country, static_cast<uint32_t>(heap.size()), count, 0});
    heap.push_back(slot);
    index.emplace(key, slot);
    // Sift up: the new counter may be smaller than its parents.
    size_t at = heap.size() - 1;
    while (at > 0) {
      const size_t parent = (at - 1) / 2;
      if (slots[heap[parent]].count <= count) break;
      Place(at, heap[parent]);
      at = parent;
    }
    Place(at, slot);
    return;
  }
  // Full: the key takes over the smallest counter, inheriting its count as
  // the bound on how much of the new count may belong to others.
  const uint32_t slot = heap[0];
  Counter& counter = slots[slot];
  index.erase(counter.key);
  const uint64_t smallest = counter.count;
  counter = {key, country, 0, smallest + count, smallest};
  index.emplace(key, slot);
  evicted = true;
  SiftDown(0);
}

void TopPeers::Sketch::Place(size_t at, uint32_t slot) {
  heap[at] = slot;
  slots[slot].heap_index = static_cast<uint32_t>(at);
}

void TopPeers::Sketch::SiftDown(size_t at) {
  const uint32_t slot = heap[at];
  const uint64_t count = slots[slot].count;
  const size_t size = heap.size();
  for (;;) {
    size_t child = 2 * at + 1;
    if (child >= size) break;
    if (child + 1 < size && slots[heap[child + 1]].count < slots[heap[child]].count) ++child;
    if (count <= slots[heap[child]].count) break;
    Place(at, heap[child]);
    at = child;
  }
  Place(at, slot);
}

size_t TopPeers::Sketch::MemoryBytes() const {
  return slots.capacity() * sizeof(Counter) + heap.capacity() * sizeof(uint32_t) +
         index.capacity() * (sizeof(std::pair<const IpAddress, uint32_t>) + 1);
}

size_t TopPeers::SketchMemoryBound(size_t capacity) {
  return capacity * (sizeof(Counter) + sizeof(uint32_t)) +
         IndexCapacityBound(capacity) * (sizeof(std::pair<const IpAddress, uint32_t>) + 1);
}

std::vector<TopPeers::Peer> TopPeers::Top(std::optional<uint16_t> port,
                                          std::optional<ServiceId> service, size_t limit) const {
  if (capacity_ == 0 || limit == 0) return {};
  // Selected sketches in (port, service) order, so that ties between the
  // countries of one key resolve the same way every time.
  std::vector<std::pair<SketchKey, const Sketch*>> selected;
  for (const auto& [key, sketch] : sketches_) {
    if (port && key.first != *port) continue;
    if (service && key.second != *service) continue;
    selected.emplace_back(key, &sketch);
  }
  std::sort(selected.begin(), selected.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });

  struct Merged {
    CountryId country;
    uint64_t country_count;  // the count the country was taken from
    uint64_t connections;
    uint64_t error;
    uint64_t held_minimum;  // sum of the smallest counts of evicting sketches holding it
  };
  uint64_t evicting_minimum = 0;  // ... of all selected evicting sketches
  absl::flat_hash_map<IpAddress, Merged> merged;
  for (const auto& [key, sketch] : selected) {
    const uint64_t minimum = sketch->evicted ? sketch->MinCount() : 0;
    evicting_minimum += minimum;
    for (const Counter& counter : sketch->slots) {
      auto [it, added] =
          merged.try_emplace(counter.key, Merged{counter.country, counter.count, 0, 0, 0});
      Merged& m = it->second;
      if (!added && counter.count > m.country_count) {
        m.country = counter.country;
        m.country_count = counter.count;
      }
      m.connections += counter.count;
      m.error += counter.error;
      m.held_minimum += minimum;
    }
  }

  std::vector<std::pair<const IpAddress*, Merged>> rows;
  rows.reserve(merged.size());
  for (const auto& [key, m] : merged) {
    Merged row = m;
    // A selected sketch that evicted and does not hold the key may have
    // counted up to its smallest count for it.
    const uint64_t absent = evicting_minimum - m.held_minimum;
    row.connections += absent;
    row.error += absent;
    rows.emplace_back(&key, row);
  }
  const auto before = [](const auto& a, const auto& b) {
    if (a.second.connections != b.second.connections) {
      return a.second.connections > b.second.connections;
    }
    if (a.second.error != b.second.error) return a.second.error < b.second.error;
    return std::tie(a.first->family, a.first->bytes) < std::tie(b.first->family, b.first->bytes);
  };
  const size_t shown = std::min(limit, rows.size());
  std::partial_sort(rows.begin(), rows.begin() + shown, rows.end(), before);

  std::vector<Peer> top;
  top.reserve(shown);
  for (size_t i = 0; i < shown; ++i) {
    const Merged& m = rows[i].second;
    top.push_back({Display(*rows[i].first), m.country, m.connections, m.error});
  }
  return top;
}

size_t TopPeers::size() const {
  size_t total = 0;
  for (const auto& [key, sketch] : sketches_) total += sketch.slots.size();
  return total;
}

size_t TopPeers::MemoryBytes() const {
  size_t bytes =
      sizeof(*this) + sketches_.capacity() * (sizeof(std::pair<const SketchKey, Sketch>) + 1);
  for (const auto& [key, sketch] : sketches_) bytes += sketch.MemoryBytes();
  return bytes;
}

IpAddress TopPeers::KeyOf(const IpAddress& peer) const {
  return full_addresses_ ? peer : TruncateForDisplay(peer);
}

std::string TopPeers::Display(const IpAddress& key) const {
  if (full_addresses_) return FormatIpAddress(key);
  return absl::StrCat(FormatIpAddress(key), key.is_v4() ? "/24" : "/48");
}

}  // namespace geoip
