#include "model/cuda/llama_cuda_load.h"

#include <algorithm>
#include <string>
#include <vector>

#include "backend/cpu/repack.h"
#include "base/half.h"
#include "planner/presets.h"
#include "quant/ggml_blocks.h"

namespace frugal::cuda {

Result<LlamaDims> llama_dims(const ModelConfig& c) {
  FRUGAL_RETURN_IF_ERROR(c.validate());
  LlamaDims d;
  d.vocab = c.vocab_size;
  d.dim = c.dim;
  d.hidden = c.hidden_dim;
  d.n_layers = c.n_layers;
  d.n_heads = c.n_heads;
  d.n_kv_heads = c.n_kv_heads;
  d.head_dim = (int)c.head_dim();
  d.rope_base = c.rope_base;
  d.norm_eps = c.norm_eps;
  d.rope_half = c.rope_layout == RopeLayout::kHalf;
  d.tied_embeddings = c.tied_embeddings;
  FRUGAL_RETURN_IF_ERROR(d.validate());
  return d;
}

namespace {

// Rows [0, view.rows()) of a weight, dequantized, times col_scale per column when given (a
// folded RMSNorm weight: W diag(g), rounded to bf16 once), rounded to bf16, uploaded at row
// offset `first_row` of tensor t, in chunks of a few MiB.
Status upload_matrix(LlamaCuda& g, LlamaTensor t, int layer, int64_t first_row,
                     const TensorView& view, int64_t expect_cols,
                     const std::vector<float>* col_scale = nullptr) {
  if (view.cols() != expect_cols)
    return InvalidArgument("upload_model: " + view.name + " has " + std::to_string(view.cols()) +
                           " columns, expected " + std::to_string(expect_cols));
  const int64_t rows = view.rows(), cols = view.cols();
  const int64_t chunk = std::max<int64_t>(1, (int64_t)(4 << 20) / (cols * 2));
  std::vector<float> f((size_t)cols);
  std::vector<uint16_t> b;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t nr = std::min(chunk, rows - r0);
    b.resize((size_t)(nr * cols));
    for (int64_t r = 0; r < nr; ++r) {
      cpu::dequantize_weight_row(view, r0 + r, f.data());  // any layout (repack.h)
      if (col_scale)
        for (int64_t i = 0; i < cols; ++i) f[(size_t)i] *= (*col_scale)[(size_t)i];
      for (int64_t i = 0; i < cols; ++i) b[(size_t)(r * cols + i)] = f32_to_bf16(f[(size_t)i]);
    }
    FRUGAL_RETURN_IF_ERROR(g.upload_rows(t, layer, first_row + r0, b.data(), nr));
  }
  return Status::Ok();
}

// A norm weight as float [dim].
Result<std::vector<float>> norm_values(const TensorView& view, int64_t dim) {
  if (view.numel() != dim)
    return InvalidArgument("upload_model: norm " + view.name + " has " +
                           std::to_string(view.numel()) + " elements, expected " +
                           std::to_string(dim));
  std::vector<float> f((size_t)dim);
  dequantize_row(view.dtype, view.data, f.data(), dim);
  return f;
}

// Uploads norm `view`, or ones when `folded` (its values then scale the columns of the
// matrices that read it, see upload_model). Returns the values.
Result<std::vector<float>> upload_norm_view(LlamaCuda& g, LlamaTensor t, int layer,
                                            const TensorView& view, int64_t dim, bool folded) {
  FRUGAL_ASSIGN_OR_RETURN(std::vector<float> f, norm_values(view, dim));
  if (!folded) {
    FRUGAL_RETURN_IF_ERROR(g.upload_norm(t, layer, f.data()));
  } else {
    const std::vector<float> ones((size_t)dim, 1.0f);
    FRUGAL_RETURN_IF_ERROR(g.upload_norm(t, layer, ones.data()));
  }
  return f;
}

}  // namespace

Result<std::unique_ptr<LlamaCuda>> upload_model(const Model& m, LlamaCudaOptions o) {
  FRUGAL_ASSIGN_OR_RETURN(const LlamaDims d, llama_dims(m.config));
  if (o.max_seq_len <= 0) o.max_seq_len = std::min<int64_t>(m.config.max_seq_len > 0 ? m.config.max_seq_len : 4096, 4096);
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g, LlamaCuda::create(d, o));
  const ModelWeights& w = m.weights;
  // fold_norm_weights: W' = bf16(W diag(g)) from the source values here (one rounding, not a
  // second one of the bf16 matrix on the device), the norms uploaded as ones; the device fold
  // below then scales by ones (exact) and marks the matrices folded.
  const bool fold = o.fold_norm_weights;
  FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kEmbedding, 0, 0, w.token_embd, d.dim));
  for (int l = 0; l < d.n_layers; ++l) {
    const LayerWeights& L = w.layers[(size_t)l];
    FRUGAL_ASSIGN_OR_RETURN(const std::vector<float> an,
                            upload_norm_view(*g, LlamaTensor::kAttnNorm, l, L.attn_norm, d.dim, fold));
    const std::vector<float>* as = fold ? &an : nullptr;
    FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kQkv, l, 0, L.wq, d.dim, as));
    FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kQkv, l, d.q_dim(), L.wk, d.dim, as));
    FRUGAL_RETURN_IF_ERROR(
        upload_matrix(*g, LlamaTensor::kQkv, l, d.q_dim() + d.kv_dim(), L.wv, d.dim, as));
    FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kO, l, 0, L.wo, d.q_dim()));
    FRUGAL_ASSIGN_OR_RETURN(const std::vector<float> fn,
                            upload_norm_view(*g, LlamaTensor::kFfnNorm, l, L.ffn_norm, d.dim, fold));
    const std::vector<float>* fs = fold ? &fn : nullptr;
    FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kGateUp, l, 0, L.w_gate, d.dim, fs));
    FRUGAL_RETURN_IF_ERROR(
        upload_matrix(*g, LlamaTensor::kGateUp, l, d.hidden, L.w_up, d.dim, fs));
    FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kDown, l, 0, L.w_down, d.hidden));
  }
  // the tied LM head is the embedding, which the lookup reads unscaled: its norm stays
  const bool fold_out = fold && !d.tied_embeddings;
  FRUGAL_ASSIGN_OR_RETURN(
      const std::vector<float> on,
      upload_norm_view(*g, LlamaTensor::kOutputNorm, 0, w.output_norm, d.dim, fold_out));
  if (!d.tied_embeddings)
    FRUGAL_RETURN_IF_ERROR(upload_matrix(*g, LlamaTensor::kLmHead, 0, 0, w.output, d.dim,
                                         fold_out ? &on : nullptr));
  if (fold) FRUGAL_RETURN_IF_ERROR(g->fold_norm_weights());
  return g;
}

Result<LlamaDims> dummy_dims(std::string_view preset) {
  FRUGAL_ASSIGN_OR_RETURN(const planner::ModelSpec s, planner::find_preset(preset));
  if (s.ffn != planner::FfnKind::kGated || s.norm != planner::NormKind::kRms || s.qkv_bias ||
      s.attn_out_bias || s.ffn_bias || s.is_moe() || s.learned_positions > 0 ||
      s.parallel_block || s.norms_per_layer != 2)
    return Unsupported("dummy weights: " + s.name + " (" + s.summary() +
                       ") is not a plain Llama-style decoder, which is what the CUDA runner runs");
  LlamaDims d;
  d.vocab = s.vocab_size;
  d.dim = s.hidden;
  d.hidden = s.ffn_dim;
  d.n_layers = s.n_layers;
  d.n_heads = s.n_heads;
  d.n_kv_heads = s.n_kv_heads;
  d.head_dim = (int)s.hd();
  d.rope_base = 500000.0f;  // Llama 3's; the speed does not depend on it
  d.rope_half = true;
  d.tied_embeddings = s.tied_embeddings;
  FRUGAL_RETURN_IF_ERROR(d.validate());
  return d;
}

}  // namespace frugal::cuda
