// Forward pass, read top to bottom; the comment on each step is the PyTorch line it mirrors
// (Hugging Face LlamaDecoderLayer).
#include "model/llama.h"

#include <algorithm>
#include <initializer_list>
#include <iterator>

#include "backend/cpu/attention_kv.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/repack.h"
#include "base/huge_pages.h"
#include "quant/ggml_blocks.h"

namespace frugal {

LlamaRunner::LlamaRunner(const Model& model, ThreadPool& pool, int64_t max_batch)
    : model_(model), pool_(pool), max_batch_(std::max<int64_t>(1, max_batch)),
      i8_token_act_(model.int8_token_activations) {
  const ModelConfig& c = model.config;
  const int64_t q_dim = c.n_heads * c.head_dim();
  float** bufs[] = {&x_, &xb_, &q_, &k_, &v_, &att_, &gate_};
  const int64_t widths[] = {c.dim, std::max(c.dim, q_dim), q_dim, c.kv_dim(), c.kv_dim(), q_dim,
                            c.hidden_dim};
  size_t floats = 0;
  for (int64_t wd : widths) floats += (size_t)(max_batch_ * wd + 15) / 16 * 16;  // 64-byte aligned
  arena_ = allocate_stream_buffer(floats * sizeof(float), floats * sizeof(float) >= kHugePageBytes);
  if (!arena_) return;  // forward() reports it
  float* p = static_cast<float*>(arena_.get());
  for (size_t i = 0; i < std::size(bufs); ++i) {
    *bufs[i] = p;
    p += (size_t)(max_batch_ * widths[i] + 15) / 16 * 16;
  }
}

Status LlamaRunner::forward(std::span<const int32_t> tokens, int64_t pos, KvCache& kv,
                            std::span<float> logits, bool all_logits) {
  const ModelConfig& c = model_.config;
  const int64_t n = (int64_t)tokens.size();
  if (n == 0) return InvalidArgument("forward: no tokens");
  if (!arena_) return ResourceExhausted("forward: out of memory for the activation buffers");
  if (pos < 0 || pos + n > kv.n_ctx())
    return OutOfRange("sequence of " + std::to_string(pos + n) +
                      " tokens exceeds the context size " + std::to_string(kv.n_ctx()));
  for (int32_t t : tokens)
    if (t < 0 || t >= c.vocab_size)
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                             std::to_string(c.vocab_size) + ")");
  const int64_t n_out = all_logits ? n : 1;
  if ((int64_t)logits.size() < n_out * c.vocab_size)
    return InvalidArgument("forward: logits buffer too small");
  if (kv.paged()) FRUGAL_RETURN_IF_ERROR(kv.prepare(tokens, pos));

  for (int64_t b = 0; b < n; b += max_batch_) {
    const int64_t nb = std::min(max_batch_, n - b);
    float* out = nullptr;
    int64_t first_out = nb;  // no logits for this batch
    if (all_logits) {
      out = logits.data() + b * c.vocab_size;
      first_out = 0;
    } else if (b + nb == n) {
      out = logits.data();
      first_out = nb - 1;
    }
    FRUGAL_RETURN_IF_ERROR(forward_batch(tokens.data() + b, nb, pos + b, kv, out, first_out));
  }
  return Status::Ok();
}

Status LlamaRunner::forward_batch(const int32_t* tokens, int64_t n, int64_t pos, KvCache& kv,
                                  float* logits, int64_t first_out) {
  const ModelConfig& c = model_.config;
  const ModelWeights& w = model_.weights;
  const int64_t dim = c.dim, hd = c.head_dim(), kv_dim = c.kv_dim();
  const int64_t q_dim = c.n_heads * hd, hidden = c.hidden_dim;
  const cpu::RopeStyle rope_style =
      c.rope_layout == RopeLayout::kHalf ? cpu::RopeStyle::kHalf : cpu::RopeStyle::kAdjacent;
  auto mm = [&](const TensorView& W, const float* in, float* out) {
    if (i8_token_act_ && W.dtype == DType::I8_ROW) cpu::matmul_i8_token(W, in, n, out, pool_);
    else if (n == 1) cpu::matvec(W, in, out, pool_, decode_act_);
    else cpu::matmul(W, in, n, out, pool_, prefill_act_.for_batch(n));
  };
  // Linears reading the same input (q/k/v, gate/up): one matvec_multi in decode (the input is
  // quantized once and the pool gets one hand-off), one matmul_multi in prefill (the input is
  // quantized once for the int8 GEMM); one mm each for W8A8's per-token path.
  auto mm_shared = [&](const float* in, std::initializer_list<cpu::MatvecOut> outs) {
    bool multi = true;
    for (const cpu::MatvecOut& o : outs)
      multi = multi && !(i8_token_act_ && o.W->dtype == DType::I8_ROW);
    if (!multi) {
      for (const cpu::MatvecOut& o : outs) mm(*o.W, in, o.y);
    } else if (n == 1) {
      cpu::matvec_multi({outs.begin(), outs.size()}, in, pool_, decode_act_);
    } else {
      cpu::matmul_multi({outs.begin(), outs.size()}, in, n, pool_, prefill_act_.for_batch(n));
    }
  };

  // Per-token element-wise work (norms, RoPE, SwiGLU, residuals): split over the pool for a
  // prefill batch (the same bits: each token's row is computed as before), inline for one token.
  auto per_token = [&](auto&& fn) {
    if (n == 1) return fn(int64_t{0}, int64_t{1});
    pool_.parallel_for(n, 4, [&](int64_t b, int64_t e, int) { fn(b, e); });
  };

  // x = embed_tokens(input_ids)                                   x: [n, dim]
  for (int64_t i = 0; i < n; ++i)
    cpu::dequantize_weight_row(w.token_embd, tokens[i], &x_[i * dim]);  // any layout

  cpu::AttentionParams ap;
  ap.n_heads = c.n_heads;
  ap.n_kv_heads = c.n_kv_heads;
  ap.head_dim = (int)hd;
  ap.kv_stride = kv.row_floats();

  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[l];
    // h = input_layernorm(x)
    per_token([&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        cpu::rmsnorm(&x_[i * dim], (const float*)L.attn_norm.data, c.norm_eps, dim, &xb_[i * dim]);
    });
    // q, k, v = q_proj(h), k_proj(h), v_proj(h)                  q: [n, q_dim], k/v: [n, kv_dim]
    mm_shared(xb_, {{&L.wq, q_}, {&L.wk, k_}, {&L.wv, v_}});
    // q, k = apply_rotary_pos_emb(q, k, cos, sin); append k, v to the cache
    per_token([&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        cpu::rope(&q_[i * q_dim], c.n_heads, (int)hd, pos + i, c.rope_base, rope_style);
        cpu::rope(&k_[i * kv_dim], c.n_kv_heads, (int)hd, pos + i, c.rope_base, rope_style);
        if (kv.paged()) continue;
        std::copy_n(&k_[i * kv_dim], kv_dim, kv.k(l, pos + i));
        std::copy_n(&v_[i * kv_dim], kv_dim, kv.v(l, pos + i));
      }
    });
    // a = softmax(q·kᵀ/√d + causal_mask)·v   (GQA: each KV head serves kv_groups query heads)
    if (kv.paged()) {
      // Paged: quantize on write into the blocks, then tiled prefill / paged decode.
      FRUGAL_RETURN_IF_ERROR(kv.storage().write(l, kv.block_table(), pos, n, k_, v_));
      const cpu::PagedKvView view = kv.storage().view(l, kv.block_table(), pos + n);
      FRUGAL_RETURN_IF_ERROR(
          n == 1 ? cpu::attention_paged_decode(view, c.n_heads, pos + 1, q_, att_, pool_)
                 : cpu::attention_flash_prefill(view, c.n_heads, n, pos, q_, att_, pool_));
    } else if (n == 1) {
      ap.n_kv = pos + 1;
      cpu::attention_decode(ap, q_, kv.k(l, 0), kv.v(l, 0), att_, pool_);
    } else {
      cpu::attention_prefill(ap, n, pos, q_, kv.k(l, 0), kv.v(l, 0), att_, pool_);
    }
    // x = x + o_proj(a)
    mm(L.wo, att_, xb_);
    // h = post_attention_layernorm(x)
    per_token([&](int64_t b, int64_t e) {
      for (int64_t i = b * dim; i < e * dim; ++i) x_[i] += xb_[i];
      for (int64_t i = b; i < e; ++i)
        cpu::rmsnorm(&x_[i * dim], (const float*)L.ffn_norm.data, c.norm_eps, dim, &xb_[i * dim]);
    });
    // x = x + down_proj(silu(gate_proj(h)) * up_proj(h))         gate/up: [n, hidden]
    // (one fused pass, cpu::matmul_swiglu, except for W8A8's per-token linears)
    if (i8_token_act_ && (L.w_gate.dtype == DType::I8_ROW || L.w_up.dtype == DType::I8_ROW)) {
      if (w8a8_up_.size() < (size_t)(n * hidden)) w8a8_up_.resize((size_t)(max_batch_ * hidden));
      float* up = w8a8_up_.data();
      mm_shared(xb_, {{&L.w_gate, gate_}, {&L.w_up, up}});
      per_token([&](int64_t b, int64_t e) {
        cpu::swiglu(&gate_[b * hidden], &up[b * hidden], &gate_[b * hidden], (e - b) * hidden);
      });
    } else {
      cpu::matmul_swiglu(L.w_gate, L.w_up, xb_, n, gate_, pool_,
                         n == 1 ? decode_act_ : prefill_act_.for_batch(n));
    }
    mm(L.w_down, gate_, xb_);
    per_token([&](int64_t b, int64_t e) {
      for (int64_t i = b * dim; i < e * dim; ++i) x_[i] += xb_[i];
    });
  }
  if (!logits || first_out >= n) return Status::Ok();

  // logits = lm_head(norm(x)) for the rows asked for             logits: [n - first_out, vocab]
  const int64_t n_out = n - first_out;
  for (int64_t i = first_out; i < n; ++i)
    cpu::rmsnorm(&x_[i * dim], (const float*)w.output_norm.data, c.norm_eps, dim, &xb_[i * dim]);
  if (i8_token_act_ && w.output.dtype == DType::I8_ROW)
    cpu::matmul_i8_token(w.output, &xb_[first_out * dim], n_out, logits, pool_);
  else if (n_out == 1)
    cpu::matvec(w.output, &xb_[first_out * dim], logits, pool_,
                n == 1 ? decode_act_ : prefill_act_.for_batch(n));
  else cpu::matmul(w.output, &xb_[first_out * dim], n_out, logits, pool_, prefill_act_.for_batch(n));
  return Status::Ok();
}

}  // namespace frugal
