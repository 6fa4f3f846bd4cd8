// Bits per weight and bytes of every planner format, against numbers worked out by hand from the
// block layouts (REFERENCES.md) and against the engine's own DType / GGUF size tables.
#include <gtest/gtest.h>

#include "formats/gguf.h"
#include "planner/formats.h"
#include "tensor/dtype.h"

namespace frugal::planner {
namespace {

TEST(PlannerFormats, BitsPerWeightByHand) {
  // INT4 g128 + fp16 scale: 4 + 16/128 = 4.125; + fp16 zero: 4.25; + 4-bit zero: 4.15625.
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kInt4, 4096), 4.125);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kInt4Asym, 4096), 4.25);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kInt4Gptq, 4096), 4.15625);
  // ggml: Q8_0 34/32 B = 8.5; Q4_0 18/32 = 4.5; Q4_1 20/32 = 5.0; Q4_K 144/256 = 4.5; Q6_K 210/256.
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kQ8_0, 4096), 8.5);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kQ4_0, 4096), 4.5);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kQ4_1, 4096), 5.0);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kQ4_K, 4096), 4.5);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kQ6_K, 4096), 6.5625);
  // INT8 per output channel: 8 + 16/in.
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kInt8, 4096), 8.0 + 16.0 / 4096);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kInt8, 14336), 8.0 + 16.0 / 14336);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kFP8, 4096), 8.0);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kBF16, 4096), 16.0);
  EXPECT_DOUBLE_EQ(weight_bits_per_weight(WeightFormat::kF32, 4096), 32.0);
}

TEST(PlannerFormats, TensorBytesByHand) {
  // [4096, 4096] int4 g128: 4096*4096/2 = 8,388,608 B of nibbles + 4096 rows * 32 groups * 2 B.
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kInt4, 4096, 4096), 8388608u + 262144u);
  // fp8 adds one fp32 scale per tensor.
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kFP8, 4096, 4096), 16777216u + 4u);
  // int8 per channel [out 1024, in 4096]: 1024 * (4096 + 2).
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kInt8, 4096, 1024), 1024u * 4098u);
  // A row that is not a whole number of blocks is padded (ggml): Falcon-7B's 4544 = 17.75 x 256,
  // so Q4_K stores 18 blocks of 144 B per row; Q8_0: 4544 = 142 x 32 exactly.
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kQ4_K, 4544, 1), 18u * 144u);
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kQ8_0, 4544, 1), 142u * 34u);
  // int4 g128 of a 4544-long row (not a multiple of 128): 2272 B of nibbles + 36 groups * 2 B.
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kInt4, 4544, 1), 2272u + 72u);
  EXPECT_EQ(weight_tensor_bytes(WeightFormat::kBF16, 0, 5), 0u);
}

TEST(PlannerFormats, AgreesWithEngineDTypeAndGgufTables) {
  // The engine's DType table and the GGUF reader's block sizes are independent sources.
  const struct { WeightFormat w; DType d; } pairs[] = {
      {WeightFormat::kQ8_0, DType::Q8_0}, {WeightFormat::kQ4_0, DType::Q4_0},
      {WeightFormat::kQ4_1, DType::Q4_1}, {WeightFormat::kF16, DType::F16},
      {WeightFormat::kBF16, DType::BF16}, {WeightFormat::kF32, DType::F32}};
  for (const auto& p : pairs)
    EXPECT_EQ(weight_tensor_bytes(p.w, 4096, 3), 3 * dtype_row_bytes(p.d, 4096)) << weight_format_name(p.w);
  const struct { WeightFormat w; gguf::GgmlType t; } kq[] = {{WeightFormat::kQ4_K, gguf::GgmlType::Q4_K},
                                                              {WeightFormat::kQ6_K, gguf::GgmlType::Q6_K}};
  for (const auto& p : kq) {
    auto ts = gguf::ggml_type_size((uint32_t)p.t);
    ASSERT_TRUE(ts.has_value());
    EXPECT_EQ(weight_tensor_bytes(p.w, 4096, 1), 4096 / ts->block_elems * ts->block_bytes);
  }
}

TEST(PlannerFormats, KvVectorBytesByHand) {
  // One head vector of head_dim 128.
  EXPECT_EQ(kv_vector_bytes(KvFormat::kF16, 128), 256u);
  EXPECT_EQ(kv_vector_bytes(KvFormat::kF32, 128), 512u);
  EXPECT_EQ(kv_vector_bytes(KvFormat::kFP8, 128), 128u);
  EXPECT_EQ(kv_vector_bytes(KvFormat::kInt8, 128), 130u);  // + fp16 scale per token and head
  EXPECT_EQ(kv_vector_bytes(KvFormat::kQ8_0, 128), 136u);  // 4 blocks x 34
  EXPECT_EQ(kv_vector_bytes(KvFormat::kQ4_0, 128), 72u);   // 4 blocks x 18
  EXPECT_EQ(kv_vector_bytes(KvFormat::kInt4, 128), 80u);   // 64 B + 4 groups x (scale + zero)
  EXPECT_EQ(kv_vector_bytes(KvFormat::kF16, 256), 512u);   // Gemma-2 head_dim
}

TEST(PlannerFormats, NamesAndAliases) {
  EXPECT_EQ(weight_format_from_name("INT4-G128"), WeightFormat::kInt4);
  EXPECT_EQ(weight_format_from_name("awq"), WeightFormat::kInt4Gptq);
  EXPECT_EQ(weight_format_from_name("Q4_K"), WeightFormat::kQ4_K);
  EXPECT_EQ(weight_format_from_name("fp16"), WeightFormat::kF16);
  EXPECT_FALSE(weight_format_from_name("int3").has_value());
  EXPECT_FALSE(weight_format_from_name("").has_value());
  EXPECT_EQ(kv_format_from_name("e4m3"), KvFormat::kFP8);
  EXPECT_EQ(kv_format_from_name("q8_0"), KvFormat::kQ8_0);
  EXPECT_FALSE(kv_format_from_name("q4_k").has_value());
  for (int i = 0; i < (int)WeightFormat::kCount; ++i)
    EXPECT_EQ(weight_format_from_name(weight_format_name((WeightFormat)i)), (WeightFormat)i);
  for (int i = 0; i < (int)KvFormat::kCount; ++i)
    EXPECT_EQ(kv_format_from_name(kv_format_name((KvFormat)i)), (KvFormat)i);
}

}  // namespace
}  // namespace frugal::planner
