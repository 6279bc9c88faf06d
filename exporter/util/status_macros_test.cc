#include "exporter/util/status_macros.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>

namespace geoip {
namespace {

absl::Status Step(bool fail, int* calls) {
  ++*calls;
  return fail ? absl::NotFoundError("step failed") : absl::OkStatus();
}

absl::Status TwoSteps(bool fail_first, int* calls) {
  RETURN_IF_ERROR(Step(fail_first, calls));
  RETURN_IF_ERROR(Step(false, calls));
  return absl::InternalError("reached the end");
}

TEST(StatusMacros, ReturnIfErrorStopsAtTheFirstError) {
  int calls = 0;
  EXPECT_EQ(TwoSteps(true, &calls), absl::NotFoundError("step failed"));
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_EQ(TwoSteps(false, &calls), absl::InternalError("reached the end"));
  EXPECT_EQ(calls, 2);
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(int value, int* calls) {
  ++*calls;
  if (value < 0) return absl::InvalidArgumentError("negative");
  return std::make_unique<int>(value);
}

// Two uses in one function: the hidden temporaries must not clash.
absl::StatusOr<int> Sum(int a, int b, int* calls) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> first, MakeInt(a, calls));
  int second = 0;
  ASSIGN_OR_RETURN(std::unique_ptr<int> second_ptr, MakeInt(b, calls));
  second = *second_ptr;
  return *first + second;
}

TEST(StatusMacros, AssignOrReturnMovesValueOrReturnsError) {
  int calls = 0;
  absl::StatusOr<int> sum = Sum(2, 3, &calls);
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, 5);
  EXPECT_EQ(calls, 2);

  calls = 0;
  EXPECT_EQ(Sum(-1, 3, &calls).status(), absl::InvalidArgumentError("negative"));
  EXPECT_EQ(calls, 1);
  calls = 0;
  EXPECT_EQ(Sum(1, -3, &calls).status(), absl::InvalidArgumentError("negative"));
  EXPECT_EQ(calls, 2);
}

absl::Status AssignExisting(std::string* out) {
  std::string value = "unchanged";
  ASSIGN_OR_RETURN(value, absl::StatusOr<std::string>("assigned"));
  *out = value;
  return absl::OkStatus();
}

TEST(StatusMacros, AssignOrReturnAssignsExistingVariables) {
  std::string out;
  ASSERT_TRUE(AssignExisting(&out).ok());
  EXPECT_EQ(out, "assigned");
}

}  // namespace
}  // namespace geoip
