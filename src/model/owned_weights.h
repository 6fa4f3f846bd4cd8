// Models whose weight matrices live in owned buffers of one chosen dtype, built row by row in
// parallel: dummy weights (model/dummy.h) and the in-memory re-quantization that `frugal bench`
// uses to time every weight format of one checkpoint. Quantization is round-to-nearest
// (quant::quantize_row); norm weights stay float32.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "model/config.h"
#include "model/model.h"
#include "tensor/tensor.h"

namespace frugal {

// Bytes of the weights of `c` with every matrix (embedding, layers, untied output) in `t` and
// float32 norms: what requantize_model / make_dummy_model allocate.
size_t weight_bytes_for(const ModelConfig& c, DType t);

// Ok when `t` is a matmul dtype and every matrix row of `c` (dim, n_heads*head_dim, hidden_dim
// long) is a whole number of its blocks; else InvalidArgument naming the dtype, its block and
// the row length, e.g. "I4_G128 needs rows that are a multiple of 128 weights; dim is 576".
Status check_dtype_fits(const ModelConfig& c, DType t);

// fill(row, out) writes row `row` of the matrix as cols floats; it runs on pool threads.
using RowFill = std::function<void(int64_t row, float* out)>;

// An owned [rows, cols] matrix in dtype t, rows filled by `fill` and quantized with
// quantize_row. The buffer is appended to `storage`. ResourceExhausted (naming the bytes) when
// it cannot be allocated.
Result<TensorView> build_matrix(const std::string& name, int64_t rows, int64_t cols, DType t,
                                const RowFill& fill, ThreadPool& pool,
                                std::vector<std::shared_ptr<const void>>* storage);

// A copy of `src` with every matrix re-quantized to `t` from its dequantized float32 rows
// (config, norms and tokenizer shared; src's storage is kept alive by the copy). Errors: see
// check_dtype_fits, build_matrix.
Result<Model> requantize_model(const Model& src, DType t, ThreadPool& pool);

}  // namespace frugal
