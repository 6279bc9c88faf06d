#include "exporter/stats/unique_counter.h"

#include <array>
#include <cmath>
#include <cstdint>

#include <gtest/gtest.h>

namespace geoip {
namespace {

// 2001:db8::/32 with i in the last four bytes.
IpAddress V6(uint32_t i) {
  std::array<uint8_t, 16> bytes{0x20, 0x01, 0x0d, 0xb8};
  bytes[12] = i >> 24;
  bytes[13] = i >> 16;
  bytes[14] = i >> 8;
  bytes[15] = i;
  return IpAddress::V6(bytes);
}

double RelativeError(uint64_t estimate, uint64_t truth) {
  return std::abs(static_cast<double>(estimate) - static_cast<double>(truth)) /
         static_cast<double>(truth);
}

TEST(UniqueCounter, CountsExactlyBelowLimitIgnoringDuplicates) {
  UniqueCounter counter;
  EXPECT_EQ(counter.Estimate(), 0u);
  for (int pass = 0; pass < 3; ++pass) {
    for (uint32_t i = 0; i < 200; ++i) counter.Add(IpAddress::V4(0x0a000000 + i));
  }
  EXPECT_TRUE(counter.exact());
  EXPECT_EQ(counter.Estimate(), 200u);
}

TEST(UniqueCounter, V4AndV6WithSameBytesAreDistinct) {
  // 1.2.3.4 and 102:304:: share their stored bytes; only the family differs.
  const IpAddress v4 = IpAddress::V4(0x01020304);
  const IpAddress v6 = IpAddress::V6({1, 2, 3, 4});
  ASSERT_EQ(v4.bytes, v6.bytes);

  UniqueCounter exact;
  exact.Add(v4);
  exact.Add(v6);
  exact.Add(v4);
  EXPECT_TRUE(exact.exact());
  EXPECT_EQ(exact.Estimate(), 2u);

  EXPECT_NE(UniqueCounter::Hash(v4), UniqueCounter::Hash(v6));
  UniqueCounter sketch(/*exact_limit=*/0);
  sketch.Add(v4);
  sketch.Add(v6);
  sketch.Add(v6);
  EXPECT_FALSE(sketch.exact());
  EXPECT_EQ(sketch.Estimate(), 2u);
}

TEST(UniqueCounter, StaysExactAtLimitAndConvertsPastIt) {
  UniqueCounter counter(/*exact_limit=*/256);
  for (uint32_t i = 0; i < 256; ++i) counter.Add(IpAddress::V4(0xc0000200 + i));
  EXPECT_TRUE(counter.exact());
  EXPECT_EQ(counter.Estimate(), 256u);
  // A repeat at the limit is not a new address and must not convert.
  counter.Add(IpAddress::V4(0xc0000200));
  EXPECT_TRUE(counter.exact());

  counter.Add(IpAddress::V4(0xc0000300));
  EXPECT_FALSE(counter.exact());
  // Linear counting's standard error at 257 in 4096 registers is ~1.1%.
  EXPECT_LE(RelativeError(counter.Estimate(), 257), 0.05) << counter.Estimate();
}

// Past the bound the error is within 3 standard errors (3 * 1.6% ≈ 5%).
// The hash is deterministic, so these results are too.
TEST(UniqueCounter, SketchEstimateWithinFivePercentForSequentialV4) {
  UniqueCounter counter;
  uint32_t added = 0;
  for (uint32_t target : {10'000u, 100'000u, 1'000'000u}) {
    // Consecutive addresses from 1.0.0.0: the worst case for a weak hash.
    for (; added < target; ++added) counter.Add(IpAddress::V4(0x01000000 + added));
    EXPECT_FALSE(counter.exact());
    EXPECT_LE(RelativeError(counter.Estimate(), target), 0.05)
        << "distinct=" << target << " estimate=" << counter.Estimate();
  }
}

TEST(UniqueCounter, SketchEstimateWithinFivePercentForSequentialV6) {
  UniqueCounter counter;
  uint32_t added = 0;
  for (uint32_t target : {10'000u, 100'000u, 1'000'000u}) {
    for (; added < target; ++added) counter.Add(V6(added));
    EXPECT_LE(RelativeError(counter.Estimate(), target), 0.05)
        << "distinct=" << target << " estimate=" << counter.Estimate();
  }
}

TEST(UniqueCounter, DuplicatesPastBoundDoNotChangeEstimate) {
  UniqueCounter counter;
  for (uint32_t i = 0; i < 50'000; ++i) counter.Add(V6(i));
  ASSERT_FALSE(counter.exact());
  const uint64_t before = counter.Estimate();
  for (uint32_t i = 0; i < 50'000; i += 7) counter.Add(V6(i));
  EXPECT_EQ(counter.Estimate(), before);
}

TEST(UniqueCounter, MemoryIsBounded) {
  UniqueCounter counter;
  const size_t empty = counter.MemoryBytes();
  for (uint32_t i = 0; i < UniqueCounter::kDefaultExactLimit; ++i) {
    counter.Add(IpAddress::V4(0x0a000000 + i));
  }
  ASSERT_TRUE(counter.exact());
  // Slot plus control byte per entry, with at most 2x load-factor slack.
  EXPECT_LE(counter.MemoryBytes(),
            empty + 2 * UniqueCounter::kDefaultExactLimit * (sizeof(IpAddress) + 1));

  counter.Add(IpAddress::V4(0x0b000000));
  ASSERT_FALSE(counter.exact());
  // The exact set is freed on conversion: only the 4 KiB of registers remain.
  EXPECT_EQ(counter.MemoryBytes(), empty + UniqueCounter::kRegisters);
  for (uint32_t i = 0; i < 200'000; ++i) counter.Add(V6(i));
  EXPECT_EQ(counter.MemoryBytes(), empty + UniqueCounter::kRegisters);
}

}  // namespace
}  // namespace geoip
