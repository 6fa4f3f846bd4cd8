#include "model/owned_weights.h"

#include <new>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "quant/ggml_blocks.h"

namespace frugal {

namespace {

struct MatrixShape {
  const char* what;
  int64_t rows, cols;
};

// The matrices of one layer (rows = out features, cols = in features).
std::vector<MatrixShape> layer_matrices(const ModelConfig& c) {
  const int64_t q_dim = c.n_heads * c.head_dim();
  return {{"attn_q", q_dim, c.dim},        {"attn_k", c.kv_dim(), c.dim},
          {"attn_v", c.kv_dim(), c.dim},   {"attn_output", c.dim, q_dim},
          {"ffn_gate", c.hidden_dim, c.dim}, {"ffn_up", c.hidden_dim, c.dim},
          {"ffn_down", c.dim, c.hidden_dim}};
}

size_t matrix_bytes(DType t, int64_t rows, int64_t cols) {
  return dtype_row_bytes(t, cols) * (size_t)rows;
}

}  // namespace

size_t weight_bytes_for(const ModelConfig& c, DType t) {
  size_t per_layer = 2 * (size_t)c.dim * sizeof(float);  // two norms
  for (const MatrixShape& m : layer_matrices(c)) per_layer += matrix_bytes(t, m.rows, m.cols);
  const size_t embd = matrix_bytes(t, c.vocab_size, c.dim);
  return embd * (c.tied_embeddings ? 1 : 2) + per_layer * (size_t)c.n_layers +
         (size_t)c.dim * sizeof(float);
}

Status check_dtype_fits(const ModelConfig& c, DType t) {
  if (!cpu::matmul_supports(t))
    return InvalidArgument(std::string(dtype_name(t)) + " is not a weight format the CPU matmul "
                                                        "supports");
  const int64_t block = dtype_info(t).block_elems;
  const struct { const char* name; int64_t n; } lens[] = {
      {"dim", c.dim}, {"n_heads*head_dim", c.n_heads * c.head_dim()}, {"hidden_dim", c.hidden_dim}};
  for (const auto& l : lens)
    if (l.n % block != 0)
      return InvalidArgument(std::string(dtype_name(t)) + " needs rows that are a multiple of " +
                             std::to_string(block) + " weights; " + l.name + " is " +
                             std::to_string(l.n));
  return Status::Ok();
}

Result<TensorView> build_matrix(const std::string& name, int64_t rows, int64_t cols, DType t,
                                const RowFill& fill, ThreadPool& pool,
                                std::vector<std::shared_ptr<const void>>* storage) {
  if (rows <= 0 || cols <= 0 || cols % dtype_info(t).block_elems != 0)
    return InvalidArgument("build_matrix: " + name + " [" + std::to_string(rows) + ", " +
                           std::to_string(cols) + "] cannot be stored as " + dtype_name(t));
  const size_t rb = dtype_row_bytes(t, cols), bytes = rb * (size_t)rows;
  std::shared_ptr<uint8_t[]> buf(new (std::nothrow) uint8_t[bytes]);
  if (!buf)
    return ResourceExhausted("cannot allocate " + std::to_string(bytes) + " bytes for " + name);
  uint8_t* base = buf.get();
  pool.parallel_for(rows, 16, [&](int64_t b, int64_t e, int) {
    std::vector<float> row((size_t)cols);
    for (int64_t r = b; r < e; ++r) {
      fill(r, row.data());
      quantize_row(t, row.data(), base + (size_t)r * rb, cols);
    }
  });
  storage->push_back(std::shared_ptr<const void>(buf, buf.get()));
  TensorView v;
  v.name = name;
  v.dtype = t;
  v.shape = {rows, cols};
  v.data = base;
  v.nbytes = bytes;
  return v;
}

Result<Model> requantize_model(const Model& src, DType t, ThreadPool& pool) {
  const ModelConfig& c = src.config;
  FRUGAL_RETURN_IF_ERROR(check_dtype_fits(c, t));
  Model m;
  m.config = c;
  m.format = src.format;
  m.path = src.path;
  m.tokenizer = src.tokenizer;
  m.storage = src.storage;  // norms (and anything else shared) stay valid
  auto requant = [&](const TensorView& s, TensorView* out) -> Status {
    const RowFill fill = [&s](int64_t r, float* row) {
      cpu::dequantize_weight_row(s, r, row);  // any layout (repack.h)
    };
    FRUGAL_ASSIGN_OR_RETURN(*out, build_matrix(s.name, s.rows(), s.cols(), t, fill, pool,
                                               &m.storage));
    return Status::Ok();
  };
  const ModelWeights& w = src.weights;
  FRUGAL_RETURN_IF_ERROR(requant(w.token_embd, &m.weights.token_embd));
  m.weights.layers.resize(w.layers.size());
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& s = w.layers[l];
    LayerWeights& d = m.weights.layers[l];
    d.attn_norm = s.attn_norm;
    d.ffn_norm = s.ffn_norm;
    FRUGAL_RETURN_IF_ERROR(requant(s.wq, &d.wq));
    FRUGAL_RETURN_IF_ERROR(requant(s.wk, &d.wk));
    FRUGAL_RETURN_IF_ERROR(requant(s.wv, &d.wv));
    FRUGAL_RETURN_IF_ERROR(requant(s.wo, &d.wo));
    FRUGAL_RETURN_IF_ERROR(requant(s.w_gate, &d.w_gate));
    FRUGAL_RETURN_IF_ERROR(requant(s.w_up, &d.w_up));
    FRUGAL_RETURN_IF_ERROR(requant(s.w_down, &d.w_down));
  }
  m.weights.output_norm = w.output_norm;
  if (w.output.data == w.token_embd.data) {
    m.weights.output = m.weights.token_embd;
  } else {
    FRUGAL_RETURN_IF_ERROR(requant(w.output, &m.weights.output));
  }
  return m;
}

}  // namespace frugal
