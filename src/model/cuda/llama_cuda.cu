// LlamaCuda: the forward pass (read top to bottom; each step's comment is the Hugging Face
// LlamaDecoderLayer line it mirrors), decode graphs, prefill chunks. The arena's layout and
// memory sizing: llama_cuda_layout.cu.
#include "model/cuda/llama_cuda.cuh"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <utility>

#include "backend/cuda/attention.cuh"
#include "backend/cuda/check.cuh"
#include "backend/cuda/gemm.cuh"
#include "backend/cuda/launch.cuh"
#include "backend/cuda/memory.cuh"
#include "backend/cuda/model_ops.cuh"
#include "backend/cuda/ops.cuh"
#include "backend/cuda/sampling.cuh"
#include "model/cuda/llama_cuda_layout.cuh"

namespace frugal::cuda {

struct LlamaCuda::Impl {
  DeviceArena arena;
  Layout L;
  cudaStream_t stream = nullptr;
  CublasHandle cublas;
  std::vector<cudaGraphExec_t> graphs;  // decode step by batch size (index = batch)
  bool layer_norms_folded = false;  // attention / FFN norms are ones, folded into QKV, gate|up
  bool out_norm_folded = false;     // output norm is ones, folded into the (untied) LM head
  bool unit_norms = true;           // fused GEMVs skip loading folded (unit) norms

  void drop_graphs() {
    for (cudaGraphExec_t& g : graphs)
      if (g) {
        (void)cudaGraphExecDestroy(g);
        g = nullptr;
      }
  }

  ~Impl() {
    for (cudaGraphExec_t g : graphs)
      if (g) (void)cudaGraphExecDestroy(g);
    if (stream) (void)cudaStreamDestroy(stream);
  }

  // y[m, rows] = in[m, cols] * W^T. Our GEMV (float input) below cublas_min_batch rows, else
  // cuBLAS on bf16 input (in_bf16 when the caller already has it, else converted here).
  Status linear(const LlamaCudaOptions& o, const uint16_t* w, int64_t rows, int64_t cols,
                const float* in_f32, const uint16_t* in_bf16, int64_t m, float* y) {
    if (use_gemv(o, m, cols)) return gemv_bf16({w, rows, cols, in_f32, (int)m, y}, stream);
    if (!in_bf16) {
      FRUGAL_RETURN_IF_ERROR(convert_f32_to_bf16(in_f32, L.xb16, m * cols, stream));
      in_bf16 = L.xb16;
    }
    return gemm_bf16(cublas, {w, in_bf16, y, m, rows, cols});
  }
  static bool use_gemv(const LlamaCudaOptions& o, int64_t m, int64_t cols) {
    return m < o.cublas_min_batch && m <= kGemvMaxBatch && cols % 8 == 0;
  }

  // Split-K paged attention: decode (slot < 0, row b reads table row b) or a prefill chunk
  // as n single-query "sequences" over the slot's table (seq_lens = positions + 1).
  Status attend_split(const LlamaDims& d, const LlamaCudaOptions& o, int n, int slot,
                      int64_t attn_max_len, const LayerPtrs& W) {
    PagedDecodeParams ap;
    ap.q = L.q;
    ap.out = L.att;
    ap.k_cache = W.k;
    ap.v_cache = W.v;
    ap.block_tables = slot >= 0 ? L.tables + (int64_t)slot * L.max_blocks_per_seq : L.tables;
    ap.shared_block_table = slot >= 0;
    ap.seq_lens = L.lens;
    ap.max_blocks_per_seq = L.max_blocks_per_seq;
    ap.n_blocks = L.n_blocks;
    ap.n_seqs = n;
    ap.n_heads = d.n_heads;
    ap.n_kv_heads = d.n_kv_heads;
    ap.head_dim = d.head_dim;
    ap.block_size = o.block_size;
    ap.max_seq_len = (int)attn_max_len;
    ap.workspace = L.attn_ws;
    ap.workspace_bytes = L.attn_ws_bytes;
    ap.split_counters = o.fuse_attention_merge ? L.attn_counters : nullptr;
    return paged_attention_decode(ap, stream);
  }

  // Enqueues one forward pass of n tokens (ids in L.tokens, positions in L.pos). slot < 0:
  // decode, token b is slot b's next token, every row gets logits and its argmax goes back to
  // L.tokens[b] with L.pos[b] advanced. slot >= 0: n prompt tokens of that slot, only the last
  // row gets logits, its argmax goes to L.next[0].
  Status forward(const LlamaDims& d, const LlamaCudaOptions& o, int n, int slot,
                 int64_t attn_max_len) {
    const ProgrammaticLaunchScope pdl(o.programmatic_launch);
    cudaStream_t s = stream;
    const bool ffn_f32 = use_gemv(o, n, d.hidden);  // down-proj input as float (GEMV) or bf16
    // Fused (every projection a GEMV): L.x is the whole residual stream; the norms run inside
    // the next GEMV, the QKV GEMV also does RoPE and the K/V write, the o and down GEMVs add
    // into L.x, the gate|up GEMV writes silu(gate) * up: 4 kernels fewer per layer.
    const bool fused =
        o.fuse_gemv && ffn_f32 && use_gemv(o, n, d.dim) && use_gemv(o, n, d.q_dim());
    // One fused GEMV over `batch` rows of input: y = W (norm_w ? RMSNorm(in) * norm_w : in),
    // then the epilogue `out` (store, add into y, SwiGLU, or RoPE + the paged K/V write of rk).
    // unit_norm: norm_w is ones (folded into w), so the kernel need not load it.
    auto gemv = [&](const uint16_t* w, int64_t rows, int64_t cols, const float* in, int batch,
                    float* y, const float* norm_w, GemvOutput out,
                    const RopeKvWriteParams* rk = nullptr, bool unit_norm = false) {
      GemvFusedParams f;
      f.gemv = {w, rows, cols, in, batch, y};
      f.input = !norm_w ? GemvInput::kPlain
                        : (unit_norm && unit_norms ? GemvInput::kRmsNormUnit : GemvInput::kRmsNorm);
      f.norm_w = norm_w;
      f.eps = d.norm_eps;
      f.output = out;
      f.rope_kv = rk;
      return gemv_bf16_fused(f, s);
    };
    // x = embed_tokens(input_ids); also seq_lens = positions + 1
    FRUGAL_RETURN_IF_ERROR(
        embedding_bf16({L.embd, d.vocab, d.dim, L.tokens, n, L.x, L.pos, L.lens}, s));
    for (int l = 0; l < d.n_layers; ++l) {
      const LayerPtrs& W = L.layers[(size_t)l];
      // residual = x (+ the previous layer's mlp output); h = input_layernorm(residual)
      // q, k, v = q_proj(h), k_proj(h), v_proj(h)       (one fused [q|k|v] matrix)
      // q, k = apply_rotary_pos_emb(q, k, cos, sin); past_key_value.update(k, v)
      RopeKvWriteParams rk;
      rk.qkv = L.qkv;
      rk.qkv_stride = d.qkv_dim();
      rk.q_out = L.q;
      rk.k_cache = W.k;
      rk.v_cache = W.v;
      rk.positions = L.pos;
      rk.block_tables = L.tables;
      rk.table_row = slot;
      rk.max_blocks_per_seq = L.max_blocks_per_seq;
      rk.n_blocks = L.n_blocks;
      rk.block_size = o.block_size;
      rk.rope = L.rope;
      rk.rope_positions = o.max_seq_len;
      rk.rope_half = d.rope_half;
      rk.n = n;
      rk.n_heads = d.n_heads;
      rk.n_kv_heads = d.n_kv_heads;
      rk.head_dim = d.head_dim;
      if (fused) {  // norm, projection, RoPE and the K/V write in one kernel
        FRUGAL_RETURN_IF_ERROR(gemv(W.qkv, d.qkv_dim(), d.dim, L.x, n, L.qkv, W.attn_norm,
                                    GemvOutput::kRopeKv, &rk, layer_norms_folded));
      } else {
        FRUGAL_RETURN_IF_ERROR(rmsnorm(
            {L.x, l ? L.dbuf : nullptr, L.x, W.attn_norm, L.xb, d.dim, n, d.norm_eps}, s));
        FRUGAL_RETURN_IF_ERROR(linear(o, W.qkv, d.qkv_dim(), d.dim, L.xb, nullptr, n, L.qkv));
        FRUGAL_RETURN_IF_ERROR(rope_kv_write(rk, s));
      }
      // a = softmax(q k^T / sqrt(d) + causal_mask) v   (paged, GQA; prefill: token t attends
      // to positions [0, pos_t] of its slot's table)
      if (slot >= 0 && n >= o.flash_prefill_min_tokens) {
        PagedPrefillParams fp;
        fp.q = L.q;
        fp.out = L.att;
        fp.k_cache = W.k;
        fp.v_cache = W.v;
        fp.block_table = L.tables + (int64_t)slot * L.max_blocks_per_seq;
        fp.n_blocks = L.n_blocks;
        fp.n_tokens = n;
        fp.pos0 = (int)(attn_max_len - n);
        fp.n_heads = d.n_heads;
        fp.n_kv_heads = d.n_kv_heads;
        fp.head_dim = d.head_dim;
        fp.block_size = o.block_size;
        FRUGAL_RETURN_IF_ERROR(paged_attention_prefill(fp, s));
      } else {
        FRUGAL_RETURN_IF_ERROR(attend_split(d, o, n, slot, attn_max_len, W));
      }
      if (fused) {
        // residual = residual + o_proj(a)   (added by the GEMV)
        FRUGAL_RETURN_IF_ERROR(gemv(W.o, d.dim, d.q_dim(), L.att, n, L.x, nullptr, GemvOutput::kAdd));
        // h = post_attention_layernorm(residual); hidden = silu(gate_proj(h)) * up_proj(h)
        FRUGAL_RETURN_IF_ERROR(gemv(W.gate_up, 2 * d.hidden, d.dim, L.x, n, L.h, W.ffn_norm,
                                    GemvOutput::kSwiglu, nullptr, layer_norms_folded));
        // residual = residual + down_proj(hidden)
        FRUGAL_RETURN_IF_ERROR(gemv(W.down, d.dim, d.hidden, L.h, n, L.x, nullptr, GemvOutput::kAdd));
        continue;
      }
      // hidden = o_proj(a)   (residual add fused into the next norm)
      FRUGAL_RETURN_IF_ERROR(linear(o, W.o, d.dim, d.q_dim(), L.att, nullptr, n, L.dbuf));
      // residual = residual + hidden; h = post_attention_layernorm(residual)
      FRUGAL_RETURN_IF_ERROR(
          rmsnorm({L.x, L.dbuf, L.x, W.ffn_norm, L.xb, d.dim, n, d.norm_eps}, s));
      // hidden = down_proj(silu(gate_proj(h)) * up_proj(h))   (one fused [gate|up] matrix)
      FRUGAL_RETURN_IF_ERROR(linear(o, W.gate_up, 2 * d.hidden, d.dim, L.xb, nullptr, n, L.gu));
      FRUGAL_RETURN_IF_ERROR(
          swiglu_fused(L.gu, n, d.hidden, ffn_f32 ? L.h : nullptr, ffn_f32 ? nullptr : L.xb16, s));
      FRUGAL_RETURN_IF_ERROR(
          linear(o, W.down, d.dim, d.hidden, L.h, ffn_f32 ? nullptr : L.xb16, n, L.dbuf));
    }
    // logits = lm_head(norm(residual + hidden)) for the rows that need them; argmax on device
    const int first = slot >= 0 && !o.prefill_all_logits ? n - 1 : 0, rows = n - first;
    const int64_t off = (int64_t)first * d.dim;
    if (fused && use_gemv(o, rows, d.dim)) {
      FRUGAL_RETURN_IF_ERROR(gemv(L.lm_head, d.vocab, d.dim, L.x + off, rows, L.logits, L.out_norm,
                                  GemvOutput::kStore, nullptr, out_norm_folded));
    } else {
      FRUGAL_RETURN_IF_ERROR(rmsnorm({L.x + off, fused ? nullptr : L.dbuf + off, L.x + off,
                                      L.out_norm, L.xb, d.dim, rows, d.norm_eps}, s));
      FRUGAL_RETURN_IF_ERROR(linear(o, L.lm_head, d.vocab, d.dim, L.xb, nullptr, rows, L.logits));
    }
    if (slot >= 0)  // a prompt: the argmax of its last row only
      return argmax_rows(L.logits + (int64_t)(rows - 1) * d.vocab, 1, d.vocab, L.next, nullptr, s);
    return argmax_rows(L.logits, rows, d.vocab, L.tokens, L.pos, s);
  }

  // One decode step of `batch` slots: a graph replay (captured on first use) or eager launches.
  Status step(const LlamaDims& d, const LlamaCudaOptions& o, int batch) {
    if (!o.use_graphs) return forward(d, o, batch, -1, o.max_seq_len);
    if (graphs.size() <= (size_t)batch) graphs.resize((size_t)batch + 1, nullptr);
    if (!graphs[(size_t)batch]) {
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      const Status st = forward(d, o, batch, -1, o.max_seq_len);
      cudaGraph_t g = nullptr;
      const cudaError_t end = cudaStreamEndCapture(stream, &g);
      if (!st.ok()) {
        if (g) (void)cudaGraphDestroy(g);
        return st;
      }
      FRUGAL_CUDA_RETURN_IF_ERROR(end);
      cudaGraphExec_t exec = nullptr;
      const cudaError_t inst = cudaGraphInstantiate(&exec, g, 0);
      (void)cudaGraphDestroy(g);
      FRUGAL_CUDA_RETURN_IF_ERROR(inst);
      graphs[(size_t)batch] = exec;
    }
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graphs[(size_t)batch], stream));
    return Status::Ok();
  }
};

LlamaCuda::LlamaCuda(std::unique_ptr<Impl> impl, const LlamaDims& d, const LlamaCudaOptions& o,
                     const LlamaCudaMemory& m)
    : impl_(std::move(impl)), d_(d), o_(o), mem_(m) {}

LlamaCuda::~LlamaCuda() = default;

cudaStream_t LlamaCuda::stream() const { return impl_->stream; }

Result<std::unique_ptr<LlamaCuda>> LlamaCuda::create(const LlamaDims& d,
                                                     const LlamaCudaOptions& o) {
  if (device_count() == 0) return Unsupported("LlamaCuda: no CUDA device visible");
  FRUGAL_ASSIGN_OR_RETURN(const LlamaCudaMemory plan, plan_llama_cuda_memory(d, o));
  size_t free_b = 0, total_b = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_b, &total_b));
  if (plan.total > free_b)
    return ResourceExhausted("LlamaCuda: needs " + bytes_str(plan.total) + " (weights " +
                             bytes_str(plan.weights) + ", workspace " + bytes_str(plan.workspace) +
                             ", KV cache " + bytes_str(plan.kv) + "), the device has " +
                             bytes_str(free_b) + " free: short by " +
                             bytes_str(plan.total - free_b));
  auto impl = std::make_unique<Impl>();
  FRUGAL_ASSIGN_OR_RETURN(impl->arena, DeviceArena::create(plan.total));
  FRUGAL_ASSIGN_OR_RETURN(const int sms, current_num_sms());
  LlamaCudaMemory mem;
  DeviceArena& arena = impl->arena;
  FRUGAL_RETURN_IF_ERROR(carve_arena(d, o, sms, plan.kv_blocks, arena, impl->L, mem));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking));
  FRUGAL_ASSIGN_OR_RETURN(impl->cublas,
                          CublasHandle::create(impl->stream, impl->L.cublas_ws, kCublasWorkspace));
  const Layout& L = impl->L;
  FRUGAL_RETURN_IF_ERROR(rope_table(L.rope, o.max_seq_len, d.head_dim, d.rope_base, impl->stream));
  // Block tables: slot s owns pool blocks [s * mbps, (s + 1) * mbps), in shuffled order when
  // asked (the pattern of a pool that has been in use).
  // The tables take the first table_entries ids of the (shuffled) pool.
  std::vector<int32_t> ids((size_t)L.n_blocks);
  std::iota(ids.begin(), ids.end(), 0);
  if (o.shuffle_blocks) std::shuffle(ids.begin(), ids.end(), std::mt19937(12345));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(L.tables, ids.data(), (size_t)L.table_entries * 4,
                                              cudaMemcpyHostToDevice, impl->stream));
  // Zero the KV cache so a position never written reads as 0, not garbage.
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(L.kv_base, 0, mem.kv, impl->stream));
  // The attention's split counters start at zero (each launch leaves them zero).
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(L.attn_counters, 0,
                                              (size_t)L.rows * d.n_kv_heads * 4, impl->stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl->stream));
  mem.split = plan.split;
  return std::unique_ptr<LlamaCuda>(new LlamaCuda(std::move(impl), d, o, mem));
}

Status LlamaCuda::upload_rows(LlamaTensor t, int layer, int64_t first_row, const uint16_t* bf16,
                              int64_t n_rows) {
  const Layout& L = impl_->L;
  const bool per_layer = t == LlamaTensor::kQkv || t == LlamaTensor::kO ||
                         t == LlamaTensor::kGateUp || t == LlamaTensor::kDown;
  if (per_layer && (layer < 0 || layer >= d_.n_layers))
    return OutOfRange("LlamaCuda::upload_rows: layer " + std::to_string(layer));
  uint16_t* dst = nullptr;
  int64_t rows = 0, cols = d_.dim;
  switch (t) {
    case LlamaTensor::kEmbedding: dst = L.embd; rows = d_.vocab; break;
    case LlamaTensor::kLmHead:
      if (d_.tied_embeddings)
        return InvalidArgument("LlamaCuda::upload_rows: the LM head is tied to the embedding");
      dst = L.lm_head; rows = d_.vocab; break;
    case LlamaTensor::kQkv: dst = L.layers[(size_t)layer].qkv; rows = d_.qkv_dim(); break;
    case LlamaTensor::kO: dst = L.layers[(size_t)layer].o; rows = d_.dim; cols = d_.q_dim(); break;
    case LlamaTensor::kGateUp: dst = L.layers[(size_t)layer].gate_up; rows = 2 * d_.hidden; break;
    case LlamaTensor::kDown:
      dst = L.layers[(size_t)layer].down; rows = d_.dim; cols = d_.hidden; break;
    default: return InvalidArgument("LlamaCuda::upload_rows: not a matrix");
  }
  const bool folded = t == LlamaTensor::kLmHead
                          ? impl_->out_norm_folded
                          : (t == LlamaTensor::kQkv || t == LlamaTensor::kGateUp) &&
                                impl_->layer_norms_folded;
  if (folded)
    return InvalidArgument("LlamaCuda::upload_rows: the norm weights are already folded into "
                           "this matrix (fold_norm_weights)");
  if (!bf16 || first_row < 0 || n_rows < 0 || first_row + n_rows > rows)
    return OutOfRange("LlamaCuda::upload_rows: rows [" + std::to_string(first_row) + ", " +
                      std::to_string(first_row + n_rows) + ") of a " + std::to_string(rows) +
                      "-row matrix");
  // On the runner's stream and waited for: a plain cudaMemcpy from pageable memory may return
  // before its DMA lands, and the legacy stream does not order the (non-blocking) runner stream,
  // whose next kernel (fold_norm_weights right after the last upload) must see the weights.
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst + first_row * cols, bf16,
                                              (size_t)n_rows * cols * 2, cudaMemcpyHostToDevice,
                                              impl_->stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->stream));
  return Status::Ok();
}

Status LlamaCuda::upload_norm(LlamaTensor t, int layer, const float* w) {
  const Layout& L = impl_->L;
  float* dst = nullptr;
  if (t == LlamaTensor::kOutputNorm) {
    dst = L.out_norm;
  } else if (t == LlamaTensor::kAttnNorm || t == LlamaTensor::kFfnNorm) {
    if (layer < 0 || layer >= d_.n_layers)
      return OutOfRange("LlamaCuda::upload_norm: layer " + std::to_string(layer));
    dst = t == LlamaTensor::kAttnNorm ? L.layers[(size_t)layer].attn_norm
                                      : L.layers[(size_t)layer].ffn_norm;
  } else {
    return InvalidArgument("LlamaCuda::upload_norm: not a norm");
  }
  if (!w) return InvalidArgument("LlamaCuda::upload_norm: null pointer");
  if (t == LlamaTensor::kOutputNorm ? impl_->out_norm_folded : impl_->layer_norms_folded)
    return InvalidArgument("LlamaCuda::upload_norm: this norm is already folded into its "
                           "matrix (fold_norm_weights)");
  FRUGAL_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(dst, w, (size_t)d_.dim * 4, cudaMemcpyHostToDevice, impl_->stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->stream));  // see upload_rows
  return Status::Ok();
}

Status LlamaCuda::randomize_weights(uint64_t seed) {
  const Layout& L = impl_->L;
  cudaStream_t s = impl_->stream;
  impl_->layer_norms_folded = impl_->out_norm_folded = false;  // every tensor is rewritten
  impl_->drop_graphs();
  auto mat = [&](uint16_t* p, int64_t rows, int64_t cols, uint64_t k) {
    return fill_random_bf16(p, (size_t)rows * cols, seed * 1000003u + k,
                            1.0f / std::sqrt((float)cols), s);
  };
  FRUGAL_RETURN_IF_ERROR(fill_random_bf16(L.embd, (size_t)d_.vocab * d_.dim, seed, 1.0f, s));
  uint64_t k = 1;
  for (const LayerPtrs& W : L.layers) {
    FRUGAL_RETURN_IF_ERROR(fill_f32(W.attn_norm, (size_t)d_.dim, 1.0f, s));
    FRUGAL_RETURN_IF_ERROR(fill_f32(W.ffn_norm, (size_t)d_.dim, 1.0f, s));
    FRUGAL_RETURN_IF_ERROR(mat(W.qkv, d_.qkv_dim(), d_.dim, k++));
    FRUGAL_RETURN_IF_ERROR(mat(W.o, d_.dim, d_.q_dim(), k++));
    FRUGAL_RETURN_IF_ERROR(mat(W.gate_up, 2 * d_.hidden, d_.dim, k++));
    FRUGAL_RETURN_IF_ERROR(mat(W.down, d_.dim, d_.hidden, k++));
  }
  FRUGAL_RETURN_IF_ERROR(fill_f32(L.out_norm, (size_t)d_.dim, 1.0f, s));
  if (!d_.tied_embeddings) FRUGAL_RETURN_IF_ERROR(mat(L.lm_head, d_.vocab, d_.dim, k++));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
  if (o_.fold_norm_weights) return fold_norm_weights();
  return Status::Ok();
}

Status LlamaCuda::fold_norm_weights() {
  Impl& I = *impl_;
  const Layout& L = I.L;
  cudaStream_t s = I.stream;
  if (!I.layer_norms_folded) {
    for (const LayerPtrs& W : L.layers) {
      // q, k, v = proj(x * g / rms) = (W diag(g)) (x / rms); the same for gate and up
      FRUGAL_RETURN_IF_ERROR(scale_columns_bf16(W.qkv, d_.qkv_dim(), d_.dim, W.attn_norm, s));
      FRUGAL_RETURN_IF_ERROR(scale_columns_bf16(W.gate_up, 2 * d_.hidden, d_.dim, W.ffn_norm, s));
      FRUGAL_RETURN_IF_ERROR(fill_f32(W.attn_norm, (size_t)d_.dim, 1.0f, s));
      FRUGAL_RETURN_IF_ERROR(fill_f32(W.ffn_norm, (size_t)d_.dim, 1.0f, s));
    }
  }
  // the tied LM head is the embedding, which the lookup reads unscaled: its norm stays
  if (!I.out_norm_folded && !d_.tied_embeddings) {
    FRUGAL_RETURN_IF_ERROR(scale_columns_bf16(L.lm_head, d_.vocab, d_.dim, L.out_norm, s));
    FRUGAL_RETURN_IF_ERROR(fill_f32(L.out_norm, (size_t)d_.dim, 1.0f, s));
    I.out_norm_folded = true;
  }
  I.layer_norms_folded = true;
  I.drop_graphs();
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(s));
  return Status::Ok();
}

void LlamaCuda::set_unit_norms(bool on) {
  impl_->unit_norms = on;
  impl_->drop_graphs();
}

Status LlamaCuda::randomize_kv(uint64_t seed) {
  const Layout& L = impl_->L;
  FRUGAL_RETURN_IF_ERROR(fill_random_bf16(L.kv_base, L.kv_elems_per_layer * 2 * d_.n_layers,
                                          seed, 1.0f, impl_->stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->stream));
  return Status::Ok();
}

Result<int32_t> LlamaCuda::prefill(int slot, const int32_t* tokens, int64_t n, int64_t pos,
                                   float* logits) {
  return prefill_chunks(slot, tokens, n, pos, logits, nullptr);
}

Status LlamaCuda::prefill_logits(int slot, const int32_t* tokens, int64_t n, int64_t pos,
                                 float* logits) {
  if (!o_.prefill_all_logits)
    return InvalidArgument("LlamaCuda::prefill_logits: the runner was created without "
                           "prefill_all_logits");
  if (!logits) return InvalidArgument("LlamaCuda::prefill_logits: null logits");
  return prefill_chunks(slot, tokens, n, pos, nullptr, logits).status();
}

Result<int32_t> LlamaCuda::prefill_chunks(int slot, const int32_t* tokens, int64_t n,
                                          int64_t pos, float* logits, float* all_logits) {
  if (slot < 0 || slot >= o_.max_batch)
    return OutOfRange("LlamaCuda::prefill: slot " + std::to_string(slot) + " outside [0, " +
                      std::to_string(o_.max_batch) + ")");
  if (!tokens || n < 1) return InvalidArgument("LlamaCuda::prefill: no tokens");
  if (pos < 0 || pos + n > o_.max_seq_len)
    return OutOfRange("LlamaCuda::prefill: positions [" + std::to_string(pos) + ", " +
                      std::to_string(pos + n) + ") exceed max_seq_len " +
                      std::to_string(o_.max_seq_len));
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= d_.vocab)
      return InvalidArgument("LlamaCuda::prefill: token id " + std::to_string(tokens[i]) +
                             " is outside the vocabulary [0, " + std::to_string(d_.vocab) + ")");
  Impl& I = *impl_;
  std::vector<int32_t> positions((size_t)o_.max_prefill_tokens);
  for (int64_t c = 0; c < n; c += o_.max_prefill_tokens) {
    const int nc = (int)std::min<int64_t>(o_.max_prefill_tokens, n - c);
    for (int i = 0; i < nc; ++i) positions[(size_t)i] = (int32_t)(pos + c + i);
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.tokens, tokens + c, (size_t)nc * 4,
                                                cudaMemcpyHostToDevice, I.stream));
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.pos, positions.data(), (size_t)nc * 4,
                                                cudaMemcpyHostToDevice, I.stream));
    FRUGAL_RETURN_IF_ERROR(I.forward(d_, o_, nc, slot, pos + c + nc));
    if (all_logits)  // every row's logits stay in L.logits (prefill_all_logits)
      FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(all_logits + c * d_.vocab, I.L.logits,
                                                  (size_t)nc * d_.vocab * 4,
                                                  cudaMemcpyDeviceToHost, I.stream));
    // the host positions buffer is reused by the next chunk: wait for the copy to be consumed
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(I.stream));
  }
  int32_t next = 0;
  FRUGAL_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(&next, I.L.next, 4, cudaMemcpyDeviceToHost, I.stream));
  if (logits) {  // the last row: row 0, or the last chunk's last row when all rows are kept
    const int64_t last_chunk = (n - 1) % o_.max_prefill_tokens;
    const float* src = I.L.logits + (o_.prefill_all_logits ? last_chunk * d_.vocab : 0);
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits, src, (size_t)d_.vocab * 4,
                                                cudaMemcpyDeviceToHost, I.stream));
  }
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(I.stream));
  return next;
}

namespace {
Status check_step(const LlamaDims& d, const LlamaCudaOptions& o, const int32_t* tokens,
                  const int32_t* positions, int batch, int steps) {
  if (batch < 1 || batch > o.max_batch)
    return InvalidArgument("LlamaCuda::decode: batch " + std::to_string(batch) + " outside 1.." +
                           std::to_string(o.max_batch));
  if (!tokens || !positions) return InvalidArgument("LlamaCuda::decode: null pointer");
  for (int b = 0; b < batch; ++b) {
    if (tokens[b] < 0 || tokens[b] >= d.vocab)
      return InvalidArgument("LlamaCuda::decode: token id " + std::to_string(tokens[b]) +
                             " is outside the vocabulary [0, " + std::to_string(d.vocab) + ")");
    if (positions[b] < 0 || (int64_t)positions[b] + steps > o.max_seq_len)
      return OutOfRange("LlamaCuda::decode: position " + std::to_string(positions[b]) + " + " +
                        std::to_string(steps) + " steps exceeds max_seq_len " +
                        std::to_string(o.max_seq_len));
  }
  return Status::Ok();
}
}  // namespace

Status LlamaCuda::decode(const int32_t* tokens, const int32_t* positions, int batch,
                         int32_t* next, float* logits) {
  FRUGAL_RETURN_IF_ERROR(check_step(d_, o_, tokens, positions, batch, 1));
  if (!next) return InvalidArgument("LlamaCuda::decode: null output");
  Impl& I = *impl_;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.tokens, tokens, (size_t)batch * 4,
                                              cudaMemcpyHostToDevice, I.stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.pos, positions, (size_t)batch * 4,
                                              cudaMemcpyHostToDevice, I.stream));
  FRUGAL_RETURN_IF_ERROR(I.step(d_, o_, batch));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(next, I.L.tokens, (size_t)batch * 4,
                                              cudaMemcpyDeviceToHost, I.stream));
  if (logits)
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits, I.L.logits, (size_t)batch * d_.vocab * 4,
                                                cudaMemcpyDeviceToHost, I.stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(I.stream));
  return Status::Ok();
}

Status LlamaCuda::decode_loop(const int32_t* tokens, const int32_t* positions, int batch,
                              int steps) {
  FRUGAL_RETURN_IF_ERROR(check_step(d_, o_, tokens, positions, batch, steps));
  Impl& I = *impl_;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.tokens, tokens, (size_t)batch * 4,
                                              cudaMemcpyHostToDevice, I.stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.pos, positions, (size_t)batch * 4,
                                              cudaMemcpyHostToDevice, I.stream));
  for (int i = 0; i < steps; ++i) FRUGAL_RETURN_IF_ERROR(I.step(d_, o_, batch));
  return Status::Ok();
}

void LlamaCuda::set_fusion(bool gemv, bool attention_merge) {
  o_.fuse_gemv = gemv;
  o_.fuse_attention_merge = attention_merge;
  for (cudaGraphExec_t& g : impl_->graphs)
    if (g) {
      (void)cudaGraphExecDestroy(g);
      g = nullptr;
    }
}

void LlamaCuda::set_programmatic_launch(bool on) {
  o_.programmatic_launch = on;
  for (cudaGraphExec_t& g : impl_->graphs)
    if (g) {
      (void)cudaGraphExecDestroy(g);
      g = nullptr;
    }
}

Status LlamaCuda::sample_logits(const SampleParams& p, const double* uniforms, int rows,
                                int32_t* out) {
  if (rows < 1 || rows > o_.max_batch)
    return InvalidArgument("LlamaCuda::sample_logits: rows " + std::to_string(rows) +
                           " outside 1.." + std::to_string(o_.max_batch));
  if (!out || (!uniforms && p.temperature > 0.0f))
    return InvalidArgument("LlamaCuda::sample_logits: null pointer");
  Impl& I = *impl_;
  if (uniforms)
    FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.uniforms, uniforms, (size_t)rows * 8,
                                                cudaMemcpyHostToDevice, I.stream));
  FRUGAL_RETURN_IF_ERROR(
      sample_rows(I.L.logits, rows, d_.vocab, p, I.L.uniforms, I.L.sampled, I.stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(out, I.L.sampled, (size_t)rows * 4,
                                              cudaMemcpyDeviceToHost, I.stream));
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(I.stream));
  return Status::Ok();
}

Status LlamaCuda::penalize_logits(int row, const int32_t* ids, int n_ids, float penalty) {
  if (row < 0 || row >= o_.max_batch)
    return InvalidArgument("LlamaCuda::penalize_logits: row " + std::to_string(row) +
                           " outside [0, " + std::to_string(o_.max_batch) + ")");
  if (n_ids < 0 || n_ids > o_.max_seq_len)
    return InvalidArgument("LlamaCuda::penalize_logits: " + std::to_string(n_ids) +
                           " ids (at most max_seq_len " + std::to_string(o_.max_seq_len) + ")");
  if (n_ids == 0) return Status::Ok();
  if (!ids) return InvalidArgument("LlamaCuda::penalize_logits: null ids");
  Impl& I = *impl_;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(I.L.penalty_ids, ids, (size_t)n_ids * 4,
                                              cudaMemcpyHostToDevice, I.stream));
  FRUGAL_RETURN_IF_ERROR(apply_repetition_penalty(I.L.logits + (int64_t)row * d_.vocab, d_.vocab,
                                                  I.L.penalty_ids, n_ids, penalty, I.stream));
  // the host ids may be reused by the caller once this returns
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(I.stream));
  return Status::Ok();
}

Status LlamaCuda::synchronize() {
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(impl_->stream));
  return Status::Ok();
}

}  // namespace frugal::cuda
