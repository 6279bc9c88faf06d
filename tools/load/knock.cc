#include "tools/load/knock.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tools/load/socket.h"

namespace geoip {

uint64_t KnockTarget::Attempts() const { return (uint64_t{last_port} - first_port + 1) * repeat; }

std::string KnockTarget::Text() const {
  const Endpoint first{address, first_port};
  return absl::StrCat(source ? FormatIpAddress(*source) + ">" : "", first.Text(),
                      last_port != first_port ? absl::StrCat("-", last_port) : "",
                      repeat != 1 ? absl::StrCat("*", repeat) : "");
}

absl::StatusOr<std::pair<uint16_t, uint16_t>> ParsePortRange(absl::string_view text) {
  absl::string_view first_text = text, last_text = text;
  const size_t dash = text.find('-');
  if (dash != absl::string_view::npos) {
    first_text = text.substr(0, dash);
    last_text = text.substr(dash + 1);
  }
  int first = 0, last = 0;
  if (!absl::SimpleAtoi(first_text, &first) || !absl::SimpleAtoi(last_text, &last) || first < 1 ||
      last > 65535 || first > last) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad port range '", text, "': want PORT or FIRST-LAST within 1-65535"));
  }
  return std::make_pair(static_cast<uint16_t>(first), static_cast<uint16_t>(last));
}

absl::Status RunKnocks(const std::vector<KnockTarget>& targets, double rate, absl::Time deadline,
                       KnockResult* result, const std::function<void(const Endpoint&)>& on_open) {
  *result = KnockResult();
  const absl::Time start = absl::Now();
  auto finish = [&] { result->seconds = absl::ToDoubleSeconds(absl::Now() - start); };
  for (const KnockTarget& target : targets) {
    for (uint32_t port = target.first_port; port <= target.last_port; ++port) {
      const Endpoint destination{target.address, static_cast<uint16_t>(port)};
      for (uint64_t i = 0; i < target.repeat; ++i) {
        // Attempt n goes no earlier than n / rate seconds after the first.
        absl::Time now = absl::Now();
        if (rate > 0) {
          const absl::Time due = start + absl::Seconds(result->attempts / rate);
          if (due > now) {
            absl::SleepFor(due - now);
            now = absl::Now();
          }
        }
        if (now >= deadline) {
          finish();
          return absl::DeadlineExceededError(absl::StrCat(
              "deadline reached after ", result->attempts, " attempts, at ", destination.Text()));
        }
        absl::StatusOr<Knock> knock = KnockOnce(destination, target.source, deadline);
        ++result->attempts;
        if (!knock.ok()) {
          finish();
          return absl::Status(knock.status().code(),
                              absl::StrCat(target.Text(), ": ", knock.status().message()));
        }
        if (*knock == Knock::kRefused) {
          ++result->refused;
        } else {
          ++result->open;
          if (on_open) on_open(destination);
        }
      }
    }
  }
  finish();
  return absl::OkStatus();
}

}  // namespace geoip
