#include "planner/formats.h"

#include <cctype>
#include <cmath>

namespace frugal::planner {

namespace {

// Layouts: quant/layouts.h (Layout{bits, group, group_overhead_bits, pad_to_group, tensor_overhead_bytes}).
constexpr WeightFormatInfo kWeightFormats[] = {
    {"f32", "fp32,float32", "32-bit float", quant::kLayoutF32, false, ComputePath::kF32, 0},
    {"f16", "fp16,float16,half", "16-bit float", quant::kLayoutF16, false, ComputePath::kBf16, 0},
    {"bf16", "bfloat16", "bfloat16", quant::kLayoutBF16, false, ComputePath::kBf16, 0},
    {"fp8", "f8,e4m3,fp8-e4m3,w8a8-fp8", "FP8 E4M3, one fp32 scale per tensor",
     quant::kLayoutFp8Tensor, true, ComputePath::kFp8, 1},
    {"int8", "w8,w8a16,int8-channel", "int8 weights, fp16 scale per output channel",
     quant::kLayoutInt8Channel, true, ComputePath::kBf16, 1},
    {"int4", "w4,int4-g128,w4g128,int4-sym", "int4 groups of 128, fp16 scale (symmetric)",
     quant::int_layout(4, 128, quant::ZeroStorage::kNone), true, ComputePath::kBf16, 2},
    {"int4-asym", "int4-g128-asym,w4g128-asym", "int4 groups of 128, fp16 scale + fp16 zero",
     quant::int_layout(4, 128, quant::ZeroStorage::kFp16), true, ComputePath::kBf16, 2},
    {"int4-gptq", "gptq,awq,int4-awq", "int4 g128, fp16 scale + packed 4-bit zero (GPTQ/AWQ)",
     quant::int_layout(4, 128, quant::ZeroStorage::kPacked), true, ComputePath::kBf16, 2},
    {"q8_0", "q8", "ggml Q8_0: fp16 d + int8[32] (34 B / 32)", quant::kLayoutQ8_0, true,
     ComputePath::kBf16, 1},
    {"q4_0", "", "ggml Q4_0: fp16 d + 16 B nibbles (18 B / 32)", quant::kLayoutQ4_0, true,
     ComputePath::kBf16, 2},
    {"q4_1", "", "ggml Q4_1: fp16 d, m + 16 B nibbles (20 B / 32)", quant::kLayoutQ4_1, true,
     ComputePath::kBf16, 2},
    // Q4_K: 128 B of nibbles + 16 B (fp16 d, dmin, 12 B of 6-bit scales/mins) per 256.
    {"q4_k", "q4_k_s", "ggml Q4_K (144 B / 256)", quant::kLayoutQ4_K, true,
     ComputePath::kBf16, 3},
    // Q6_K: 192 B of 6-bit values + 16 B int8 scales + fp16 d per 256.
    {"q6_k", "", "ggml Q6_K (210 B / 256)", quant::kLayoutQ6_K, true, ComputePath::kBf16, 3},
};
static_assert(sizeof(kWeightFormats) / sizeof(kWeightFormats[0]) == (size_t)WeightFormat::kCount);

constexpr KvFormatInfo kKvFormats[] = {
    {"f32", "fp32", "32-bit float", {32, 1, 0, false, 0}, false},
    {"f16", "fp16,half", "16-bit float", {16, 1, 0, false, 0}, false},
    {"bf16", "", "bfloat16", {16, 1, 0, false, 0}, false},
    // Per-tensor scales (a few bytes per layer) are not counted.
    {"fp8", "f8,e4m3,fp8-e4m3", "FP8 E4M3, per-tensor scale", {8, 1, 0, false, 0}, true},
    {"int8", "i8", "int8, fp16 scale per token and head", quant::kLayoutInt8Channel, true},
    {"q8_0", "q8", "ggml Q8_0 blocks of 32 along head_dim", quant::kLayoutQ8_0, true},
    {"q4_0", "", "ggml Q4_0 blocks of 32 along head_dim", quant::kLayoutQ4_0, true},
    {"int4", "i4,int4-g32", "int4 groups of 32 along head_dim, fp16 scale + zero",
     quant::int_layout(4, 32, quant::ZeroStorage::kFp16), true},
};
static_assert(sizeof(kKvFormats) / sizeof(kKvFormats[0]) == (size_t)KvFormat::kCount);

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower((unsigned char)a[i]) != std::tolower((unsigned char)b[i])) return false;
  return true;
}

// True if `name` equals `canonical` or one of the comma-separated `aliases`.
bool matches(std::string_view name, std::string_view canonical, std::string_view aliases) {
  if (iequal(name, canonical)) return true;
  while (!aliases.empty()) {
    const size_t comma = aliases.find(',');
    const std::string_view a = aliases.substr(0, comma);
    if (!a.empty() && iequal(name, a)) return true;
    if (comma == std::string_view::npos) break;
    aliases.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

const WeightFormatInfo& weight_format_info(WeightFormat f) { return kWeightFormats[(int)f]; }
const KvFormatInfo& kv_format_info(KvFormat f) { return kKvFormats[(int)f]; }

std::optional<WeightFormat> weight_format_from_name(std::string_view name) {
  for (int i = 0; i < (int)WeightFormat::kCount; ++i)
    if (matches(name, kWeightFormats[i].name, kWeightFormats[i].aliases)) return (WeightFormat)i;
  return std::nullopt;
}

std::optional<KvFormat> kv_format_from_name(std::string_view name) {
  for (int i = 0; i < (int)KvFormat::kCount; ++i)
    if (matches(name, kKvFormats[i].name, kKvFormats[i].aliases)) return (KvFormat)i;
  return std::nullopt;
}

std::string weight_format_names() {
  std::string s;
  for (const auto& f : kWeightFormats) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

std::string kv_format_names() {
  std::string s;
  for (const auto& f : kKvFormats) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

uint64_t weight_tensor_bytes(WeightFormat f, int64_t in, int64_t out) {
  return layout_bytes(weight_format_info(f).layout, in, out);
}

double weight_bits_per_weight(WeightFormat f, int64_t in) {
  return quant::layout_bits_per_weight(weight_format_info(f).layout, in);
}

uint64_t kv_vector_bytes(KvFormat f, int64_t head_dim) {
  return layout_bytes(kv_format_info(f).layout, head_dim, 1);
}

}  // namespace frugal::planner
