#include "exporter/probe_drainer.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/time/clock.h"

namespace geoip {

void ProbeDrainer::Start() {
  thread_ = std::thread([this] { Loop(); });
}

ProbeDrainer::~ProbeDrainer() {
  stopping_.Notify();
  if (thread_.joinable()) thread_.join();
}

void ProbeDrainer::Loop() {
  // Wakes often enough to notice a filling map, drains every interval.
  const absl::Duration step = std::min(interval_, absl::Milliseconds(50));
  absl::Time next = absl::Now() + interval_;
  while (!stopping_.WaitForNotificationWithTimeout(step)) {
    if (!probe_->ShouldDrainEarly() && absl::Now() < next) continue;
    DrainOnce();
    next = absl::Now() + interval_;
  }
}

void ProbeDrainer::DrainOnce() {
  DrainResult result;
  if (absl::Status drained = probe_->Drain(&result); !drained.ok()) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    fprintf(stderr, "drain: %s\n", std::string(drained.message()).c_str());
  }
  // Listeners after the drain: a socket is recorded when it starts to
  // listen, before any connection to it, so every connection drained now
  // finds its listener, also one that started a moment ago.
  if (const uint64_t changed = probe_->ListenersChanged(); changed != listeners_seen_) {
    listeners_seen_ = changed;
    services_->Learn(probe_->Listeners());
  }
  // What was read before a failure is recorded all the same.
  RecordDrain(result, services_, recorder_, absl::Now());
}

void RecordDrain(const DrainResult& result, ServiceRegistry* services, ConnectionRecorder* recorder,
                 absl::Time now) {
  for (const DrainedCount& count : result.counts) {
    recorder->Record(count.address, count.port, services->ServiceOf(count.netns, count.port),
                     count.count, now);
  }
  for (const auto& [port, count] : result.overflow) {
    recorder->RecordOverflow(port, ServiceNames::kUnknown, count, now);
  }
  for (const DrainedTraffic& traffic : result.traffic) {
    recorder->RecordTraffic(traffic, services->ServiceOf(traffic.netns, traffic.port));
  }
  recorder->RecordTrafficOverflow(result.traffic_overflow);
  for (const DrainedFailure& failure : result.failures) recorder->RecordFailure(failure);
  for (const DrainedFailure& failure : result.failure_overflow) {
    recorder->RecordFailureOverflow(failure);
  }
}

}  // namespace geoip
