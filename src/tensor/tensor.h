// Non-owning tensor views. Shapes are written outermost-first, as in NumPy/PyTorch: a weight
// matrix W used as y = W·x has shape {out_features, in_features} and each row (in_features
// elements) is contiguous. (GGUF lists dims innermost-first; formats/ reverses them.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace frugal {

// How a matrix's bytes are ordered. kRowMajor: row r at data + r * row_bytes() (what files
// hold). kTiles4: the CPU decode layout of the 4-bit block dtypes (backend/cpu/repack.h): rows
// in tiles of 4 with their scales and nibbles interleaved, the rows after the last whole tile
// row-major; the same bytes in all. row(r) is only valid for kRowMajor: readers of a kTiles4
// view go through cpu::weight_row_bytes / cpu::dequantize_weight_row.
enum class WeightLayout : uint8_t { kRowMajor, kTiles4 };

struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // outermost first
  const void* data = nullptr;  // points into a mapping or an owned buffer; not owned
  size_t nbytes = 0;
  WeightLayout layout = WeightLayout::kRowMajor;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  int64_t rows() const { return shape.empty() ? 1 : numel() / shape.back(); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  bool row_major() const { return layout == WeightLayout::kRowMajor; }
  // Byte stride between consecutive rows.
  size_t row_bytes() const { return dtype_row_bytes(dtype, cols()); }
  // Row r's bytes; row-major views only (see WeightLayout).
  const uint8_t* row(int64_t r) const { return static_cast<const uint8_t*>(data) + r * row_bytes(); }
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace frugal
