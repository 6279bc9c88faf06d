#include "exporter/stats/recorder.h"

namespace geoip {

CountryId ConnectionRecorder::Record(const IpAddress& address, uint16_t port, ServiceId service,
                                     uint64_t count, absl::Time now) {
  const Location location = geolocator_->Locate(address);
  stats_->Record(location.country, port, &address, count, now, service, location.network);
  return location.country;
}

void ConnectionRecorder::RecordOverflow(uint16_t port, ServiceId service, uint64_t count,
                                        absl::Time now) {
  stats_->Record(CountryId::Overflow(), port, nullptr, count, now, service, NetworkId::Overflow());
  overflowed_.fetch_add(count, std::memory_order_relaxed);
}

CountryId ConnectionRecorder::RecordTraffic(const DrainedTraffic& traffic, ServiceId service) {
  const CountryId country = geolocator_->Locate(traffic.address).country;
  stats_->RecordTraffic(country, service, traffic);
  return country;
}

void ConnectionRecorder::RecordTrafficOverflow(const DrainedTraffic& traffic) {
  stats_->RecordTraffic(CountryId::Overflow(), ServiceNames::kUnknown, traffic);
}

CountryId ConnectionRecorder::RecordFailure(const DrainedFailure& failure) {
  const CountryId country = geolocator_->Locate(failure.address).country;
  stats_->RecordFailure(country, failure.port, failure.reason, failure.count);
  return country;
}

void ConnectionRecorder::RecordFailureOverflow(const DrainedFailure& failure) {
  stats_->RecordFailure(CountryId::Overflow(), failure.port, failure.reason, failure.count);
}

}  // namespace geoip
