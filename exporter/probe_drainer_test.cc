#include "exporter/probe_drainer.h"

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "exporter/geo/geoip_database.h"
#include "exporter/geo/geolocator.h"

namespace geoip {
namespace {

const absl::Time kTime = absl::FromUnixSeconds(1700000000);
constexpr uint32_t kNetns = 4026531840u;

// A drain into real statistics: the bundled database locates, and "web"
// listens on 8081 in kNetns.
struct Fixture {
  Fixture() {
    absl::StatusOr<GeoIpDatabase> database =
        GeoIpDatabase::Open(GEOIP_SOURCE_DIR "/data/geo-whois-asn-country.mmdb");
    EXPECT_TRUE(database.ok()) << database.status();
    geolocator =
        std::make_unique<Geolocator>(std::make_shared<const GeoIpDatabase>(*std::move(database)));
    recorder = std::make_unique<ConnectionRecorder>(geolocator.get(), &stats);
    registry.Learn({ListeningSocket{kNetns, 8081, 100, 0, "web"}});
  }

  ConnectionStats stats;
  ServiceNames names{64};
  ServiceRegistry registry{&names,
                           [](const ListeningSocket& socket) {
                             ListenerIdentity identity;
                             identity.service = socket.comm;
                             identity.process = socket.comm;
                             return identity;
                           },
                           16};
  std::unique_ptr<Geolocator> geolocator;
  std::unique_ptr<ConnectionRecorder> recorder;
};

const IpAddress kSpain = *ParseIpAddress("138.100.31.225");
const IpAddress kPrivate = *ParseIpAddress("10.1.2.3");

// "ES:8081/web 2 rx=.. tx=.. closed=.. ..ns".
std::vector<std::string> Describe(const Fixture& f) {
  std::vector<std::string> out;
  for (const ConnectionStats::Series& s : f.stats.Snapshot()) {
    out.push_back(
        absl::StrCat(s.country.Label(), ":", s.port, "/", f.names.Name(s.service), " ",
                     s.connections, " rx=", s.traffic.received_bytes, " tx=", s.traffic.sent_bytes,
                     " closed=", s.traffic.closed_connections, " ", s.traffic.lifetime_ns, "ns"));
  }
  for (const FailureCounts::Series& s : f.stats.Failures()) {
    out.push_back(absl::StrCat(s.country.Label(), ":", FailurePortLabel(s.port), " ",
                               FailureReasonLabel(s.reason), " ", s.count));
  }
  for (const ConnectionStats::Lifetimes& h : f.stats.LifetimeHistograms()) {
    out.push_back(absl::StrCat(h.port, "/", f.names.Name(h.service), " [",
                               absl::StrJoin(h.buckets, " "), "] ", h.sum_ns, "ns"));
  }
  return out;
}

DrainedTraffic Traffic(const IpAddress& address, uint16_t port, uint64_t received, uint64_t sent,
                       uint64_t closed, uint64_t duration_ns,
                       std::array<uint64_t, kDurationBuckets> buckets) {
  DrainedTraffic traffic;
  traffic.address = address;
  traffic.port = port;
  traffic.netns = kNetns;
  traffic.received_bytes = received;
  traffic.sent_bytes = sent;
  traffic.closed = closed;
  traffic.duration_ns = duration_ns;
  traffic.duration_buckets = buckets;
  return traffic;
}

DrainedFailure Refused(const IpAddress& address, uint16_t port, uint64_t count) {
  DrainedFailure failure;
  failure.address = address;
  failure.port = port;
  failure.netns = kNetns;
  failure.reason = FailureReason::kRefused;
  failure.count = count;
  return failure;
}

TEST(RecordDrain, RecordsConnectionsTrafficAndFailuresEachUnderItsService) {
  Fixture f;
  DrainResult result;
  result.counts = {DrainedCount{kSpain, 8081, kNetns, 2}, DrainedCount{kPrivate, 22, kNetns, 1}};
  result.overflow = {{8081, 4}};
  result.traffic = {
      // 1 MiB up and 3 MiB down, closed after 3 s; and one still open.
      Traffic(kSpain, 8081, 1048576, 3145728, 1, 3'000'000'000, {0, 0, 0, 1, 0, 0, 0, 0}),
      Traffic(kSpain, 8081, 100, 200, 0, 0, {}),
      // Accepted before the exporter started: no connection series yet.
      Traffic(kPrivate, 9000, 5, 6, 1, 100'000'000, {0, 1, 0, 0, 0, 0, 0, 0})};
  result.traffic_overflow =
      Traffic(IpAddress(), 0, 70, 80, 2, 2'000'000'000, {0, 0, 1, 1, 0, 0, 0, 0});
  result.failures = {Refused(kSpain, 0, 30), Refused(kSpain, 8081, 1), Refused(kPrivate, 0, 2)};
  result.failure_overflow = {Refused(IpAddress(), 0, 9)};
  RecordDrain(result, &f.registry, f.recorder.get(), kTime);

  EXPECT_EQ(Describe(f), (std::vector<std::string>{
                             "ES:8081/web 2 rx=1048676 tx=3145928 closed=1 3000000000ns",
                             "overflow:0/unknown 0 rx=70 tx=80 closed=2 2000000000ns",
                             "overflow:8081/unknown 4 rx=0 tx=0 closed=0 0ns",
                             "private:22/unknown 1 rx=0 tx=0 closed=0 0ns",
                             "private:9000/unknown 0 rx=5 tx=6 closed=1 100000000ns",
                             "ES:8081 refused 1",
                             "ES:other refused 30",
                             "overflow:other refused 9",
                             "private:other refused 2",
                             "0/unknown [0 0 1 1 0 0 0 0] 2000000000ns",
                             "8081/web [0 0 0 1 0 0 0 0] 3000000000ns",
                             "9000/unknown [0 1 0 0 0 0 0 0] 100000000ns",
                         }));
  EXPECT_EQ(f.recorder->overflowed(), 4u);  // connections only, as before
}

TEST(RecordDrain, AnEmptyDrainChangesNothing) {
  Fixture f;
  RecordDrain(DrainResult(), &f.registry, f.recorder.get(), kTime);
  EXPECT_EQ(f.stats.Version(), 0u);
  EXPECT_TRUE(Describe(f).empty());
}

}  // namespace
}  // namespace geoip
