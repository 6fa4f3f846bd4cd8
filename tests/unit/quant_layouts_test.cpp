// quant/layouts.h: bits per weight and bytes of every layout, against hand-computed values.
#include <gtest/gtest.h>

#include "planner/formats.h"
#include "quant/layouts.h"

namespace frugal::quant {
namespace {

TEST(QuantLayouts, BitsPerWeight) {
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutF32, 4096), 32.0);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutF16, 4096), 16.0);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutQ8_0, 4096), 8.5);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutQ4_0, 4096), 4.5);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutQ4_1, 4096), 5.0);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutQ4_K, 4096), 4.5);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutQ6_K, 4096), 6.5625);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutInt8Channel, 4096), 8.0 + 16.0 / 4096);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutFp8Channel, 4096), 8.0 + 32.0 / 4096);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(kLayoutFp8Tensor, 4096), 8.0);
  // int B, group G: B + 16/G (sym), + 32/G (fp16 zero), + (16+B)/G (packed zero).
  for (int bits : {2, 3, 4, 8})
    for (int g : {32, 64, 128}) {
      EXPECT_DOUBLE_EQ(layout_bits_per_weight(int_layout(bits, g, ZeroStorage::kNone), 4096), bits + 16.0 / g);
      EXPECT_DOUBLE_EQ(layout_bits_per_weight(int_layout(bits, g, ZeroStorage::kFp16), 4096), bits + 32.0 / g);
      EXPECT_DOUBLE_EQ(layout_bits_per_weight(int_layout(bits, g, ZeroStorage::kPacked), 4096),
                       bits + (16.0 + bits) / g);
    }
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(int_layout(4, 128, ZeroStorage::kNone), 4096), 4.125);
  EXPECT_DOUBLE_EQ(layout_bits_per_weight(int_layout(4, 128, ZeroStorage::kPacked), 4096), 4.15625);
}

TEST(QuantLayouts, Bytes) {
  EXPECT_EQ(layout_bytes(kLayoutQ4_1, 576, 1536), 1536u * 18 * 20);       // 18 blocks per row
  EXPECT_EQ(layout_bytes(kLayoutQ8_0, 40, 2), 2u * 2 * 34);               // padded to 2 blocks
  EXPECT_EQ(layout_bytes(kLayoutF16, 576, 576), 576u * 576 * 2);
  EXPECT_EQ(layout_bytes(kLayoutFp8Tensor, 576, 576), 576u * 576 + 4);
  EXPECT_EQ(layout_bytes(int_layout(3, 128, ZeroStorage::kPacked), 4096, 1), (4096u * 3 + 32 * 19) / 8);
  EXPECT_EQ(layout_bytes(kLayoutInt8Channel, 0, 5), 0u);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::F16, DType::F32, DType::BF16})
    EXPECT_EQ(layout_bytes(dtype_layout(t), 4096, 3), 3 * dtype_row_bytes(t, 4096)) << dtype_name(t);
}

TEST(QuantLayouts, PlannerReadsTheSameLayouts) {
  using planner::WeightFormat;
  EXPECT_DOUBLE_EQ(planner::weight_bits_per_weight(WeightFormat::kInt4Gptq, 4096),
                   layout_bits_per_weight(int_layout(4, 128, ZeroStorage::kPacked), 4096));
  EXPECT_EQ(planner::weight_tensor_bytes(WeightFormat::kQ4_1, 576, 1536), layout_bytes(kLayoutQ4_1, 576, 1536));
}

}  // namespace
}  // namespace frugal::quant
