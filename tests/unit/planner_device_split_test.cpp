// The device memory split (planner/device_split.h): weights, workspace, then whole KV blocks of
// the rest of device memory x utilization; a clear shortfall in bytes when it does not fit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

#include "planner/device_split.h"

namespace frugal::planner {
namespace {

DeviceSplitInput h200_like() {
  DeviceSplitInput in;
  in.device_total = 150'000'000'000ull;
  in.device_in_use = 500'000'000ull;
  in.utilization = 0.9;
  in.weight_bytes = 16'060'000'000ull;
  in.workspace_bytes = 123'456'789ull;
  in.kv_block_bytes = 16 * 131072ull;  // Llama-3.1-8B bf16: 128 KiB per token
  in.block_size = 16;
  in.min_kv_blocks = 64;
  return in;
}

TEST(PlannerDeviceSplit, KvPoolGetsWholeBlocksOfTheRest) {
  const DeviceSplitInput in = h200_like();
  auto s = split_device_memory(in);
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  // Exact integer arithmetic, written out independently.
  const uint64_t budget = 135'000'000'000ull - 500'000'000ull;
  EXPECT_EQ(s->budget, budget);
  const uint64_t rest = budget - in.weight_bytes - in.workspace_bytes;
  EXPECT_EQ(s->kv_blocks, (int64_t)(rest / in.kv_block_bytes));
  EXPECT_EQ(s->kv_tokens, s->kv_blocks * 16);
  EXPECT_EQ(s->kv_bytes, (uint64_t)s->kv_blocks * in.kv_block_bytes);
  EXPECT_LT(s->unused, in.kv_block_bytes);
  EXPECT_EQ(s->weights + s->workspace + s->kv_bytes + s->unused, s->budget);
  EXPECT_NE(s->summary(in).find("blocks of 16"), std::string::npos) << s->summary(in);
}

TEST(PlannerDeviceSplit, LowerUtilizationGivesFewerBlocksAndCapApplies) {
  DeviceSplitInput in = h200_like();
  const int64_t full = split_device_memory(in)->kv_blocks;
  in.utilization = 0.5;
  auto half = split_device_memory(in);
  ASSERT_TRUE(half.ok());
  EXPECT_LT(half->kv_blocks, full);
  in.max_kv_blocks = 100;
  auto capped = split_device_memory(in);
  ASSERT_TRUE(capped.ok());
  EXPECT_EQ(capped->kv_blocks, 100);
  EXPECT_EQ(capped->unused, capped->budget - capped->weights - capped->workspace -
                                100 * in.kv_block_bytes);
}

TEST(PlannerDeviceSplit, ShortfallNamesTheBytes) {
  DeviceSplitInput in = h200_like();
  in.weight_bytes = 141'000'000'000ull;  // 70B-class bf16 weights on one card
  auto s = split_device_memory(in);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kResourceExhausted);
  const uint64_t need = in.weight_bytes + in.workspace_bytes + 64 * in.kv_block_bytes;
  const uint64_t budget = 135'000'000'000ull - 500'000'000ull;
  const std::string msg = s.status().message();
  EXPECT_NE(msg.find("short by " + std::to_string(need - budget) + " bytes"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find(std::to_string(budget) + " bytes"), std::string::npos) << msg;

  // Exactly enough for the minimum pool fits, one byte less does not.
  in = h200_like();
  in.device_in_use = 0;
  in.utilization = 1.0;
  in.device_total = in.weight_bytes + in.workspace_bytes + 64 * in.kv_block_bytes;
  auto exact = split_device_memory(in);
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->kv_blocks, 64);
  in.device_total -= 1;
  auto one_short = split_device_memory(in);
  ASSERT_FALSE(one_short.ok());
  EXPECT_NE(one_short.status().message().find("short by 1 bytes"), std::string::npos)
      << one_short.status().message();
}

TEST(PlannerDeviceSplit, InUseBeyondTheShareIsAShortfallNotAWrap) {
  DeviceSplitInput in = h200_like();
  in.device_in_use = 140'000'000'000ull;  // more than 0.9 x total
  auto s = split_device_memory(in);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.status().message().find("the budget is 0 bytes"), std::string::npos)
      << s.status().message();
}

TEST(PlannerDeviceSplit, BadInputIsInvalidArgument) {
  for (double u : {0.0, -0.5, 1.01, std::nan("")}) {
    DeviceSplitInput in = h200_like();
    in.utilization = u;
    EXPECT_EQ(split_device_memory(in).status().code(), StatusCode::kInvalidArgument) << u;
  }
  DeviceSplitInput in = h200_like();
  in.kv_block_bytes = 0;
  EXPECT_EQ(split_device_memory(in).status().code(), StatusCode::kInvalidArgument);
  in = h200_like();
  in.min_kv_blocks = 0;
  EXPECT_EQ(split_device_memory(in).status().code(), StatusCode::kInvalidArgument);
  in = h200_like();
  in.max_kv_blocks = 10;  // below min_kv_blocks
  EXPECT_EQ(split_device_memory(in).status().code(), StatusCode::kInvalidArgument);
  in = h200_like();
  in.min_kv_blocks = INT64_MAX;  // saturates instead of wrapping
  EXPECT_EQ(split_device_memory(in).status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace frugal::planner
