// Early-return helpers for absl::Status and absl::StatusOr; abseil 20220623
// ships none.
#ifndef EXPORTER_UTIL_STATUS_MACROS_H_
#define EXPORTER_UTIL_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GEOIP_STATUS_CONCAT_INNER_(a, b) a##b
#define GEOIP_STATUS_CONCAT_(a, b) GEOIP_STATUS_CONCAT_INNER_(a, b)

// Evaluates expr (an absl::Status) once and returns it from the enclosing
// function if it is not OK.
#define RETURN_IF_ERROR(expr)                                                \
  do {                                                                       \
    ::absl::Status geoip_status_macro_status_ = (expr);                      \
    if (!geoip_status_macro_status_.ok()) return geoip_status_macro_status_; \
  } while (false)

// Evaluates expr (an absl::StatusOr<T>) once; on error returns its status,
// otherwise moves the value into lhs, which may be a declaration
// ("auto x") or an existing variable. Expands to two statements, so do not
// use it as the sole body of an unbraced if/else.
#define ASSIGN_OR_RETURN(lhs, expr) \
  GEOIP_ASSIGN_OR_RETURN_IMPL_(GEOIP_STATUS_CONCAT_(geoip_statusor_, __COUNTER__), lhs, expr)

#define GEOIP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)  \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // EXPORTER_UTIL_STATUS_MACROS_H_
