// Counting distinct peer addresses with bounded memory: exact for the
// common case of few peers, a HyperLogLog sketch once there are many.
#ifndef EXPORTER_STATS_UNIQUE_COUNTER_H_
#define EXPORTER_STATS_UNIQUE_COUNTER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "exporter/net/address.h"

namespace geoip {

// Counts distinct IpAddress values. Until more than `exact_limit` distinct
// addresses are seen it keeps them in a hash set and the count is exact.
// Adding one more converts it, once and for good, to a HyperLogLog sketch of
// 2^12 one-byte registers.
//
// Memory per counter, with the default exact_limit of 256:
//  - exact phase: at most exact_limit addresses of 17 bytes plus one control
//    byte each, in a table at most ~2x that size for load-factor slack
//    (~9 KiB at 256 entries, usually far less);
//  - sketch phase: 4 KiB of registers, whatever the number of addresses.
// Past the bound the estimate has a standard error of 1.04 / sqrt(4096)
// ≈ 1.6%, so it is within ±5% (3 standard errors) in practice. The hash is
// deterministic, so the same addresses always give the same estimate.
//
// Not thread-safe; ConnectionStats serialises access.
class UniqueCounter {
 public:
  static constexpr size_t kDefaultExactLimit = 256;
  // log2 of the number of sketch registers.
  static constexpr int kPrecision = 12;
  static constexpr size_t kRegisters = size_t{1} << kPrecision;

  // A counter that stays exact up to exact_limit distinct addresses.
  explicit UniqueCounter(size_t exact_limit = kDefaultExactLimit);

  // Records one sighting of address; repeats do not change the count.
  void Add(const IpAddress& address);

  // Number of distinct addresses added: exact in the exact phase, a
  // HyperLogLog estimate (with linear counting for small values) after.
  uint64_t Estimate() const;

  // True while the count is exact (no conversion to the sketch yet).
  bool exact() const { return registers_.empty(); }

  // Approximate heap plus inline bytes this counter holds.
  size_t MemoryBytes() const;

  // The deterministic 64-bit hash the sketch uses: a splitmix64 finaliser
  // chained over the family byte and the address as two big-endian 64-bit
  // words. Exposed for tests.
  static uint64_t Hash(const IpAddress& address);

 private:
  void ConvertToSketch();
  void AddToSketch(uint64_t hash);

  size_t exact_limit_;
  absl::flat_hash_set<IpAddress> exact_;
  // Empty in the exact phase; kRegisters entries in the sketch phase. Each
  // holds the largest rank (leading zeros + 1) seen in its bucket.
  std::vector<uint8_t> registers_;
  // Ranks never exceed this (64 - kPrecision + 1 = 53 bits of hash left).
  static constexpr int kRankLimit = 64 - kPrecision + 1;
  // Sum over registers of 2^(kRankLimit - register): exact, and kept up to
  // date by AddToSketch so Estimate() need not visit every register.
  unsigned __int128 inverse_sum_ = 0;
  size_t zeros_ = 0;  // registers still 0
};

}  // namespace geoip

#endif  // EXPORTER_STATS_UNIQUE_COUNTER_H_
