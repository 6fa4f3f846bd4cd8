#include "quant/layouts.h"

#include <cmath>

#include <fmt/format.h>

namespace frugal::quant {

Layout dtype_layout(DType t) {
  switch (t) {
    case DType::F32: return kLayoutF32;
    case DType::F16: return kLayoutF16;
    case DType::BF16: return kLayoutBF16;
    case DType::Q8_0: return kLayoutQ8_0;
    case DType::Q4_0: return kLayoutQ4_0;
    case DType::Q4_1: return kLayoutQ4_1;
    case DType::I8: return Layout{8, 1, 0, false, 0};
    case DType::I32: return Layout{32, 1, 0, false, 0};
    case DType::I8_ROW:  // in memory the per-row scale is f32
    case DType::E4M3_ROW:
    case DType::E5M2_ROW: return Layout{8, 0, 32, false, 0};
    case DType::I4_G64: return int_layout(4, 64, ZeroStorage::kNone);
    case DType::I4_G64A: return int_layout(4, 64, ZeroStorage::kFp16);
    case DType::I4_G128: return int_layout(4, 128, ZeroStorage::kNone);
    case DType::I4_G128A: return int_layout(4, 128, ZeroStorage::kFp16);
    case DType::kCount: break;
  }
  return kLayoutF32;
}

uint64_t layout_bytes(const Layout& l, int64_t row_len, int64_t rows) {
  if (row_len <= 0 || rows <= 0) return 0;
  const int64_t group = l.group == 0 ? row_len : l.group;
  const int64_t groups = (row_len + group - 1) / group;
  const int64_t stored = l.pad_to_group ? groups * group : row_len;
  // Row bits are integral for every layout in use (bits is 2..32, overheads whole bits); long
  // double keeps 405B-scale totals exact.
  const long double row_bits =
      (long double)stored * l.bits + (long double)groups * l.group_overhead_bits;
  return (uint64_t)std::ceil(row_bits * (long double)rows / 8.0L) + (uint64_t)l.tensor_overhead_bytes;
}

double layout_bits_per_weight(const Layout& l, int64_t row_len) {
  if (row_len <= 0) return 0;
  const int64_t group = l.group == 0 ? row_len : l.group;
  const int64_t groups = (row_len + group - 1) / group;
  const int64_t stored = l.pad_to_group ? groups * group : row_len;
  return ((double)stored * l.bits + (double)groups * l.group_overhead_bits) / (double)row_len;
}

std::string layout_description(const Layout& l) {
  const std::string g = l.group == 0 ? "per row" : l.group == 1 ? "plain" : fmt::format("g{}", l.group);
  return fmt::format("{}-bit, {}, {} overhead bits/group", l.bits, g, l.group_overhead_bits);
}

}  // namespace frugal::quant
