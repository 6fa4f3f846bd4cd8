// Inputs shared by the op tests: random vectors and a weight matrix in any dtype together with
// its dequantized float copy (what the float64 references multiply).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "quant/ggml_blocks.h"
#include "tensor/tensor.h"

namespace frugal::test {

inline std::vector<float> random_vec(int64_t n, std::mt19937& rng, float scale = 1.0f) {
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v((size_t)n);
  for (float& x : v) x = nd(rng);
  return v;
}

// A weight matrix [rows, cols] stored in dtype t, plus its dequantized float copy.
struct QuantWeights {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // [rows, cols]
  TensorView view;
};

inline QuantWeights make_weights(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  QuantWeights w;
  const std::vector<float> src = random_vec(rows * cols, rng, 0.5f);
  const size_t rb = dtype_row_bytes(t, cols);
  w.bytes.resize(rb * (size_t)rows);
  w.deq.resize((size_t)(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(t, src.data() + r * cols, w.bytes.data() + r * rb, cols);
    dequantize_row(t, w.bytes.data() + r * rb, w.deq.data() + r * cols, cols);
  }
  w.view.name = "w";
  w.view.dtype = t;
  w.view.shape = {rows, cols};
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  return w;
}

}  // namespace frugal::test
