// The order in which the statistics list countries: by their label, as the
// metrics and the API show them, without building the label strings.
#ifndef EXPORTER_STATS_LABEL_ORDER_H_
#define EXPORTER_STATS_LABEL_ORDER_H_

#include <algorithm>
#include <cstdint>
#include <tuple>
#include <vector>

#include "exporter/geo/country.h"

namespace geoip {

// A number that sorts like the country's label: ISO codes are indexed in
// alphabetical order, and the lower-case special labels come after them.
inline uint32_t LabelOrder(CountryId country) {
  if (country.is_country()) return country.index();
  if (country == CountryId::Overflow()) return CountryId::kCountries;
  if (country == CountryId::Private()) return CountryId::kCountries + 1;
  return CountryId::kCountries + 2;  // unknown
}

// Sorts items (each with a `country`) by (country label, extra(item)).
template <typename T, typename ExtraKey>
void SortByLabel(std::vector<T>& items, ExtraKey extra) {
  std::sort(items.begin(), items.end(), [&](const T& a, const T& b) {
    return std::make_tuple(LabelOrder(a.country), extra(a)) <
           std::make_tuple(LabelOrder(b.country), extra(b));
  });
}

}  // namespace geoip

#endif  // EXPORTER_STATS_LABEL_ORDER_H_
