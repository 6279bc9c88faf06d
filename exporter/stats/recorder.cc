#include "exporter/stats/recorder.h"

namespace geoip {

CountryId ConnectionRecorder::Record(const IpAddress& address, uint16_t port, ServiceId service,
                                     uint64_t count, absl::Time now) {
  const CountryId country = geolocator_->Locate(address);
  stats_->Record(country, port, &address, count, now, service);
  return country;
}

void ConnectionRecorder::RecordOverflow(uint16_t port, ServiceId service, uint64_t count,
                                        absl::Time now) {
  stats_->Record(CountryId::Overflow(), port, nullptr, count, now, service);
  overflowed_.fetch_add(count, std::memory_order_relaxed);
}

}  // namespace geoip
