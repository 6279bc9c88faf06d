#include "exporter/stats/unique_counter.h"

#include <algorithm>
#include <cmath>

namespace geoip {
namespace {

// splitmix64's finaliser: a bijection on 64 bits in which every input bit
// affects every output bit, which HyperLogLog needs (it reads the top bits
// for the bucket and the rest for the rank).
uint64_t Mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Reads 8 bytes as a big-endian word so the hash is the same on any host.
uint64_t LoadBigEndian64(const uint8_t* p) {
  uint64_t word = 0;
  for (int i = 0; i < 8; ++i) word = (word << 8) | p[i];
  return word;
}

}  // namespace

UniqueCounter::UniqueCounter(size_t exact_limit) : exact_limit_(exact_limit) {}

uint64_t UniqueCounter::Hash(const IpAddress& address) {
  uint64_t h = Mix64(static_cast<uint64_t>(address.family));
  h = Mix64(h ^ LoadBigEndian64(address.bytes.data()));
  return Mix64(h ^ LoadBigEndian64(address.bytes.data() + 8));
}

void UniqueCounter::Add(const IpAddress& address) {
  if (!exact()) {
    AddToSketch(Hash(address));
    return;
  }
  exact_.insert(address);
  if (exact_.size() > exact_limit_) ConvertToSketch();
}

void UniqueCounter::ConvertToSketch() {
  registers_.assign(kRegisters, 0);
  inverse_sum_ = static_cast<unsigned __int128>(kRegisters) << kRankLimit;
  zeros_ = kRegisters;
  for (const IpAddress& address : exact_) AddToSketch(Hash(address));
  // Swapping with an empty set frees the table; clear() might keep it.
  absl::flat_hash_set<IpAddress>().swap(exact_);
}

void UniqueCounter::AddToSketch(uint64_t hash) {
  const size_t bucket = hash >> (64 - kPrecision);
  const uint64_t rest = hash << kPrecision;
  // Rank of the first 1 bit among the remaining 64 - kPrecision bits.
  const uint8_t rank =
      rest == 0 ? 64 - kPrecision + 1 : static_cast<uint8_t>(__builtin_clzll(rest) + 1);
  const uint8_t old = registers_[bucket];
  if (rank <= old) return;
  registers_[bucket] = rank;
  // Keeps Estimate() O(1): it is read on every scrape, for every series.
  inverse_sum_ -= static_cast<unsigned __int128>(1) << (kRankLimit - old);
  inverse_sum_ += static_cast<unsigned __int128>(1) << (kRankLimit - rank);
  if (old == 0) --zeros_;
}

uint64_t UniqueCounter::Estimate() const {
  if (exact()) return exact_.size();
  const double m = static_cast<double>(kRegisters);
  // The sum of 2^-register over all registers, kept exactly in fixed point.
  const double inverse_sum = std::ldexp(static_cast<double>(inverse_sum_), -kRankLimit);
  const size_t zeros = zeros_;
  const double alpha = 0.7213 / (1 + 1.079 / m);
  double estimate = alpha * m * m / inverse_sum;
  // Small-range correction (Flajolet et al.): raw HyperLogLog is biased
  // upward when many registers are still empty; linear counting on the
  // empty registers is accurate there. A 64-bit hash needs no large-range
  // correction at the counts we see.
  if (estimate <= 2.5 * m && zeros > 0) {
    estimate = m * std::log(m / static_cast<double>(zeros));
  }
  return static_cast<uint64_t>(std::llround(estimate));
}

size_t UniqueCounter::MemoryBytes() const {
  // flat_hash_set stores one slot and one control byte per capacity entry.
  return sizeof(*this) + exact_.capacity() * (sizeof(IpAddress) + 1) + registers_.capacity();
}

}  // namespace geoip
