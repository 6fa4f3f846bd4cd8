// The whole model on the GPU (model/cuda/llama_cuda.cuh) against the CPU engine (LlamaRunner):
//   - a small random model built in memory (awkward sizes, GQA, rotate-half RoPE, two prefill
//     chunks, shuffled blocks), weights already bf16-representable and the CPU KV cache in
//     BF16 so both sides hold the same numbers (with the RMSNorm weights folded into the
//     matrices, the CPU runs the same folded bf16 weights): logits rel L2 < 1e-3 when every
//     projection runs our float GEMV, < 1e-2 through cuBLAS (activations rounded to bf16);
//     the folding's own error against the unfolded model < 1e-2; batched decode rows equal
//     single-sequence CPU runs; graph replay bit-identical to eager launches;
//   - SmolLM2-135M Q4_1 (models/, or $FRUGAL_TEST_MODEL; skipped when absent): prefill logits
//     rel L2 against the CPU engine on the same bf16 weights the GPU holds (norms folded into
//     the matrices from the file's values, one rounding) with a BF16 KV cache: < 1e-2 through
//     our GEMVs, < 2e-2 through cuBLAS (its bf16 activations), < 5e-2 against the CPU engine on
//     the file's Q4_1 weights with its default float KV cache (bf16 weights + bf16 KV move
//     SmolLM2's logits by ~1-2e-2), greedy 32 tokens identical to the CPU engine on Q4_1;
//   - bad input: ids outside the vocabulary, positions past the context, bad slots and
//     batches, a model too large for the device (ResourceExhausted naming the bytes).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/ops.cuh"
#include "base/half.h"
#include "base/thread_pool.h"
#include "cuda_random_model.h"
#include "cuda_test_util.h"
#include "model/cuda/llama_cuda_load.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "quant/ggml_blocks.h"
#include "sampling/sampler.h"

namespace frugal::cuda {
namespace {

using test::rel_l2;
using test::random_model;

// A Llama model with F32 weights whose values are exactly representable in bf16.

ModelConfig small_config() {
  ModelConfig c = test::small_random_config();
  c.rope_base = 10000.f;
  c.norm_eps = 1e-5f;
  return c;
}

// CPU logits of `tokens` at [pos, ...) appended to kv (last token only).
std::vector<float> cpu_logits(LlamaRunner& r, KvCache& kv, const std::vector<int32_t>& tokens,
                              int64_t pos) {
  std::vector<float> logits((size_t)r.config().vocab_size);
  const Status st = r.forward(tokens, pos, kv, logits);
  EXPECT_TRUE(st.ok()) << st.to_string();
  return logits;
}

KvCacheOptions bf16_kv() {
  KvCacheOptions o;
  o.dtype = cpu::KvDType::kBF16;
  o.block_size = 8;
  return o;
}

std::vector<int32_t> random_tokens(size_t n, int64_t vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> d(0, (int32_t)vocab - 1);
  std::vector<int32_t> t(n);
  for (auto& x : t) x = d(rng);
  return t;
}

// What LlamaCuda holds after fold_norm_weights, as a CPU model: W' = bf16(W diag(g)) for the
// QKV and gate/up matrices and the untied LM head, those norms 1 (weights bf16-exact already).
Model folded_copy(const Model& src) {
  Model m;
  m.config = src.config;
  auto copy = [&](const TensorView& v, const TensorView* g, bool ones) {
    auto buf = std::make_shared<std::vector<float>>(static_cast<const float*>(v.data),
                                                    static_cast<const float*>(v.data) + v.numel());
    if (ones) buf->assign(buf->size(), 1.0f);
    if (g) {
      const float* gv = static_cast<const float*>(g->data);
      const int64_t cols = g->numel();
      for (size_t i = 0; i < buf->size(); ++i)
        (*buf)[i] = bf16_to_f32(f32_to_bf16((*buf)[i] * gv[i % (size_t)cols]));
    }
    TensorView out = v;
    out.data = buf->data();
    m.storage.push_back(buf);
    return out;
  };
  const ModelWeights& w = src.weights;
  m.weights.token_embd = copy(w.token_embd, nullptr, false);
  for (const LayerWeights& L : w.layers)
    m.weights.layers.push_back(
        {copy(L.attn_norm, nullptr, true), copy(L.wq, &L.attn_norm, false),
         copy(L.wk, &L.attn_norm, false), copy(L.wv, &L.attn_norm, false),
         copy(L.wo, nullptr, false), copy(L.ffn_norm, nullptr, true),
         copy(L.w_gate, &L.ffn_norm, false), copy(L.w_up, &L.ffn_norm, false),
         copy(L.w_down, nullptr, false)});
  const bool tied = m.config.tied_embeddings;  // the embedding is not folded: its norm stays
  m.weights.output_norm = copy(w.output_norm, nullptr, !tied);
  m.weights.output = tied ? m.weights.token_embd : copy(w.output, &w.output_norm, false);
  return m;
}

// Prefill + 5 teacher-forced decode steps on both engines (the GPU loads m; the CPU runs
// cpu_model: m itself, or what the GPU holds after folding); the worst rel L2 to *worst_out.
void compare_single(const Model& m, const LlamaCudaOptions& o, double bound,
                    const Model* cpu_model = nullptr, double* worst_out = nullptr) {
  SCOPED_TRACE(testing::Message() << "prefill chunk " << o.max_prefill_tokens
                                  << ", cuBLAS from " << o.cublas_min_batch << " rows, fold "
                                  << o.fold_norm_weights);
  const Model folded = folded_copy(m);
  if (!cpu_model) cpu_model = o.fold_norm_weights ? &folded : &m;
  ThreadPool pool(2);
  LlamaRunner cpu(*cpu_model, pool);
  ASSIGN_OK(kv, KvCache::create(m.config, 64, bf16_kv()));
  ASSIGN_OK(gpu, upload_model(m, o));
  std::mt19937 rng(11);
  const auto prompt = random_tokens(21, m.config.vocab_size, rng);
  const auto ref = cpu_logits(cpu, kv, prompt, 0);
  std::vector<float> got((size_t)m.config.vocab_size);
  ASSIGN_OK(next, gpu->prefill(0, prompt.data(), (int64_t)prompt.size(), 0, got.data()));
  double worst = rel_l2(got, ref);
  EXPECT_EQ(next, Sampler::argmax(got));
  int32_t tok = Sampler::argmax(ref);
  for (int step = 0; step < 5; ++step) {
    const int32_t pos = (int32_t)prompt.size() + step;
    const auto r = cpu_logits(cpu, kv, {tok}, pos);
    int32_t nx = -1;
    FRUGAL_ASSERT_OK(gpu->decode(&tok, &pos, 1, &nx, got.data()));
    EXPECT_EQ(nx, Sampler::argmax(got));
    worst = std::max(worst, rel_l2(got, r));
    tok = Sampler::argmax(r);
  }
  std::printf("[ info ] random model, prefill chunk %d, cuBLAS from %d rows, fold %d, CPU on "
              "the %s weights: worst logits rel L2 %.3g (bound %.0e)\n",
              o.max_prefill_tokens, o.cublas_min_batch, (int)o.fold_norm_weights,
              cpu_model == &m ? "given" : "folded", worst, bound);
  EXPECT_LT(worst, bound);
  if (worst_out) *worst_out = worst;
}

// Two slots, prefill chunks of 2 tokens (every projection below cublas_min_batch rows: float
// GEMV), blocks of 8 handed out shuffled.
LlamaCudaOptions gemv_options() {
  LlamaCudaOptions o;
  o.max_batch = 2;
  o.max_prefill_tokens = 2;
  o.max_seq_len = 64;
  o.block_size = 8;
  o.shuffle_blocks = true;
  return o;
}

TEST(CudaLlama, RandomModelMatchesCpuThroughGemv) {
  FRUGAL_REQUIRE_GPU();
  const Model m = random_model(small_config(), 1);
  LlamaCudaOptions o = gemv_options();
  compare_single(m, o, 1e-3);
}

// The same with RMSNorm, SwiGLU and residual adds as separate kernels (fuse_gemv off).
TEST(CudaLlama, RandomModelMatchesCpuThroughUnfusedGemv) {
  FRUGAL_REQUIRE_GPU();
  const Model m = random_model(small_config(), 1);
  LlamaCudaOptions o = gemv_options();
  o.fuse_gemv = false;
  compare_single(m, o, 1e-3);
}

// The same with the GEMVs' early PDL trigger on (off by default: no measured gain), run a few
// times: a kernel reading before its producer finished would show as a wrong or moving error.
TEST(CudaLlama, RandomModelMatchesCpuWithEarlyTrigger) {
  FRUGAL_REQUIRE_GPU();
  const GemvTuning saved = gemv_tuning();
  GemvTuning t = saved;
  t.trigger_dependents = true;
  t.prefetch_bytes_per_row = 8192;
  set_gemv_tuning(t);
  const Model m = random_model(small_config(), 1);
  LlamaCudaOptions o = gemv_options();
  for (int rep = 0; rep < 3; ++rep) compare_single(m, o, 1e-3);
  set_gemv_tuning(saved);
}

// The same through each GEMV kernel and launch shape (GemvTuning: warp-row; streaming with 1, 2
// or 3 blocks per SM, with and without the early trigger), fused and unfused.
TEST(CudaLlama, RandomModelMatchesCpuThroughEachGemvKernel) {
  FRUGAL_REQUIRE_GPU();
  const GemvTuning saved = gemv_tuning();
  const Model m = random_model(small_config(), 1);
  const GemvKernel W = GemvKernel::kWarpRows, S = GemvKernel::kStream;
  for (const GemvTuning& t : {GemvTuning{false, 2048, W}, GemvTuning{true, 2048, S, 1},
                              GemvTuning{false, 2048, S, 2}, GemvTuning{true, 2048, S, 2},
                              GemvTuning{true, 2048, S, 3, 2}}) {
    SCOPED_TRACE(testing::Message() << "kernel " << (int)t.kernel << " blocks/SM "
                                    << t.stream_ctas_per_sm << " trigger "
                                    << t.trigger_dependents);
    set_gemv_tuning(t);
    LlamaCudaOptions o = gemv_options();
    compare_single(m, o, 1e-3);
    o.fuse_gemv = false;
    compare_single(m, o, 1e-3);
  }
  set_gemv_tuning(saved);
}

// Norm weights loaded by the fused GEMVs (no folding) against the unfolded CPU model.
TEST(CudaLlama, RandomModelWithoutFoldingMatchesCpu) {
  FRUGAL_REQUIRE_GPU();
  const Model m = random_model(small_config(), 1);
  LlamaCudaOptions o = gemv_options();
  o.fold_norm_weights = false;
  compare_single(m, o, 1e-3);
  o.fuse_gemv = false;
  compare_single(m, o, 1e-3);
}

// The folding's own cost: the folded GPU model against the CPU on the unfolded weights (one
// more bf16 rounding of the QKV, gate|up and LM-head weights), within the bf16 bound.
TEST(CudaLlama, FoldedNormsStayCloseToTheUnfoldedModel) {
  FRUGAL_REQUIRE_GPU();
  const Model m = random_model(small_config(), 1);
  LlamaCudaOptions o = gemv_options();
  // the same rounding on the CPU: folded vs unfolded weights, prefill logits
  {
    const Model f = folded_copy(m);
    ThreadPool pool(2);
    LlamaRunner a(m, pool), b(f, pool);
    ASSIGN_OK(kva, KvCache::create(m.config, 64, bf16_kv()));
    ASSIGN_OK(kvb, KvCache::create(m.config, 64, bf16_kv()));
    std::mt19937 rng(11);
    const auto prompt = random_tokens(21, m.config.vocab_size, rng);
    const double cpu_fold = rel_l2(cpu_logits(b, kvb, prompt, 0), cpu_logits(a, kva, prompt, 0));
    std::printf("[ info ] CPU engine, folded vs unfolded weights: prefill logits rel L2 %.3g\n",
                cpu_fold);
    EXPECT_LT(cpu_fold, 1e-2);
  }
  double folded = 0, unfolded = 0;
  compare_single(m, o, 1e-2, &m, &folded);
  o.fold_norm_weights = false;
  compare_single(m, o, 1e-3, &m, &unfolded);
  EXPECT_GT(folded, unfolded);  // the extra rounding shows: the fold really happened
}

TEST(CudaLlama, RandomModelMatchesCpuThroughCublas) {
  FRUGAL_REQUIRE_GPU();
  ModelConfig c = small_config();
  c.tied_embeddings = true;
  c.rope_layout = RopeLayout::kAdjacent;
  const Model m = random_model(c, 2);
  LlamaCudaOptions o;
  o.max_batch = 1;
  o.max_prefill_tokens = 16;  // 21 prompt tokens: chunks of 16 and 5
  o.max_seq_len = 64;
  o.block_size = 8;
  o.shuffle_blocks = true;
  o.cublas_min_batch = 1;  // every projection through cuBLAS, also decode
  compare_single(m, o, 1e-2);
}

// Four sequences of different lengths decoded together (cuBLAS path at batch 4): each row
// against its own CPU run; a graph-replayed runner with PDL and an eager one without give
// identical logits.
TEST(CudaLlama, BatchedDecodeRowsMatchSingleSequencesAndGraphsMatchEager) {
  FRUGAL_REQUIRE_GPU();
  const Model m = random_model(small_config(), 3);
  const int64_t V = m.config.vocab_size;
  LlamaCudaOptions o;
  o.max_batch = 4;
  o.max_prefill_tokens = 8;
  o.max_seq_len = 64;
  o.block_size = 8;
  o.shuffle_blocks = true;
  ASSIGN_OK(graph, upload_model(m, o));
  o.use_graphs = false;
  o.programmatic_launch = false;  // plain launches: PDL must not change a bit either
  ASSIGN_OK(eager, upload_model(m, o));
  ThreadPool pool(2);
  LlamaRunner cpu(m, pool);
  std::mt19937 rng(5);
  std::vector<KvCache> kvs;
  std::vector<int32_t> tok(4), pos(4);
  std::vector<std::vector<float>> ref(4);
  for (int s = 0; s < 4; ++s) {
    const auto prompt = random_tokens((size_t)(3 + 7 * s), V, rng);
    ASSIGN_OK(kv, KvCache::create(m.config, 64, bf16_kv()));
    kvs.push_back(std::move(kv));
    cpu_logits(cpu, kvs.back(), prompt, 0);
    ASSERT_TRUE(graph->prefill(s, prompt.data(), (int64_t)prompt.size(), 0).ok());
    ASSERT_TRUE(eager->prefill(s, prompt.data(), (int64_t)prompt.size(), 0).ok());
    tok[(size_t)s] = random_tokens(1, V, rng)[0];
    pos[(size_t)s] = (int32_t)prompt.size();
  }
  for (int step = 0; step < 3; ++step) {
    std::vector<float> lg((size_t)(4 * V)), le((size_t)(4 * V));
    std::vector<int32_t> ng(4), ne(4);
    FRUGAL_ASSERT_OK(graph->decode(tok.data(), pos.data(), 4, ng.data(), lg.data()));
    FRUGAL_ASSERT_OK(eager->decode(tok.data(), pos.data(), 4, ne.data(), le.data()));
    EXPECT_EQ(lg, le) << "graph replay differs from eager launches at step " << step;
    EXPECT_EQ(ng, ne);
    for (int s = 0; s < 4; ++s) {
      const auto r = cpu_logits(cpu, kvs[(size_t)s], {tok[(size_t)s]}, pos[(size_t)s]);
      const std::vector<float> row(lg.begin() + s * V, lg.begin() + (s + 1) * V);
      EXPECT_LT(rel_l2(row, r), 1e-2) << "seq " << s << " step " << step;
      tok[(size_t)s] = ng[(size_t)s];
      pos[(size_t)s] += 1;
    }
  }
}

TEST(CudaLlama, BadInputIsAnErrorNotACrash) {
  FRUGAL_REQUIRE_GPU();
  const Model m = random_model(small_config(), 4);
  LlamaCudaOptions o;
  o.max_batch = 2;
  o.max_prefill_tokens = 4;
  o.max_seq_len = 16;
  o.block_size = 8;
  ASSIGN_OK(gpu, upload_model(m, o));
  const int32_t bad = 1003, good = 7, p0 = 0, p_end = 16;
  int32_t next = 0;
  EXPECT_EQ(gpu->prefill(0, &bad, 1, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->prefill(2, &good, 1, 0).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(gpu->prefill(0, &good, 1, 16).status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(gpu->decode(&bad, &p0, 1, &next).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->decode(&good, &p_end, 1, &next).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(gpu->decode(&good, &p0, 3, &next).code(), StatusCode::kInvalidArgument);
  // still usable afterwards
  FRUGAL_ASSERT_OK(gpu->decode(&good, &p0, 1, &next));
  EXPECT_TRUE(next >= 0 && next < 1003);
  // the norms are folded into QKV / gate|up: uploading one of those now would mix states
  const std::vector<float> ones((size_t)m.config.dim, 1.0f);
  EXPECT_EQ(gpu->upload_norm(LlamaTensor::kAttnNorm, 0, ones.data()).code(),
            StatusCode::kInvalidArgument);
  const std::vector<uint16_t> row((size_t)m.config.dim, 0);
  EXPECT_EQ(gpu->upload_rows(LlamaTensor::kQkv, 1, 0, row.data(), 1).code(),
            StatusCode::kInvalidArgument);
  FRUGAL_ASSERT_OK(gpu->upload_rows(LlamaTensor::kO, 1, 0, row.data(), 1));  // o is not folded

  // Llama-3.1-70B in BF16 (131 GiB of weights) with a KV cache for 64 x 32k tokens (640 GiB)
  // does not fit one GPU: a clear shortfall.
  ASSIGN_OK(d70, dummy_dims("llama-3.1-70b"));
  LlamaCudaOptions big;
  big.max_batch = 64;
  big.max_seq_len = 32768;
  auto r = LlamaCuda::create(d70, big);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("short by"), std::string::npos) << r.status().message();
  std::printf("[ info ] %s\n", r.status().message().c_str());
  EXPECT_EQ(dummy_dims("falcon-7b").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(dummy_dims("llama-3.1-405b").status().code(), StatusCode::kUnsupported);  // group 16
  EXPECT_EQ(dummy_dims("no-such-model").status().code(), StatusCode::kNotFound);
}

// The same model with every weight rounded to bf16 (what the GPU holds), as F32 views.
Model bf16_copy(const Model& src, bool folded) {
  Model m;
  m.config = src.config;
  auto values = [](const TensorView& v) {
    std::vector<float> f((size_t)v.numel());
    dequantize_row(v.dtype, v.data, f.data(), v.numel());
    return f;
  };
  // folded: what upload_model holds with fold_norm_weights, W' = bf16(W diag(g)) from the
  // source values, those norms 1 (the tied embedding and its output norm are not folded)
  auto conv = [&](const TensorView& v, const TensorView* g = nullptr, bool ones = false) {
    auto buf = std::make_shared<std::vector<float>>((size_t)v.numel());
    const int64_t rows = v.shape.size() > 1 ? v.rows() : 1, cols = v.numel() / rows;
    for (int64_t r = 0; r < rows; ++r)
      dequantize_row(v.dtype, static_cast<const uint8_t*>(v.data) + r * dtype_row_bytes(v.dtype, cols),
                     buf->data() + r * cols, cols);
    if (folded && g) {
      const std::vector<float> gv = values(*g);
      for (size_t i = 0; i < buf->size(); ++i) (*buf)[i] *= gv[i % (size_t)cols];
    }
    if (folded && ones) buf->assign(buf->size(), 1.0f);
    for (float& x : *buf) x = bf16_to_f32(f32_to_bf16(x));
    TensorView out = v;
    out.dtype = DType::F32;
    out.data = buf->data();
    out.nbytes = buf->size() * 4;
    m.storage.push_back(buf);
    return out;
  };
  const ModelWeights& w = src.weights;
  m.weights.token_embd = conv(w.token_embd);
  for (const LayerWeights& L : w.layers)
    m.weights.layers.push_back(
        {conv(L.attn_norm, nullptr, true), conv(L.wq, &L.attn_norm), conv(L.wk, &L.attn_norm),
         conv(L.wv, &L.attn_norm), conv(L.wo), conv(L.ffn_norm, nullptr, true),
         conv(L.w_gate, &L.ffn_norm), conv(L.w_up, &L.ffn_norm), conv(L.w_down)});
  const bool tied = m.config.tied_embeddings;
  m.weights.output_norm = conv(w.output_norm, nullptr, !tied);
  m.weights.output = tied ? m.weights.token_embd : conv(w.output, &w.output_norm);
  return m;
}

// The default model, end to end.
TEST(CudaLlama, SmolLM2LogitsAndGreedyTokensMatchCpu) {
  FRUGAL_REQUIRE_GPU();
  const char* env = std::getenv("FRUGAL_TEST_MODEL");
  const std::string path = env ? env : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::ifstream(path).good()) GTEST_SKIP() << path << " not found";
  ASSIGN_OK(m, load_model(path));
  std::vector<int32_t> prompt = {1, 504, 3575, 282, 4649, 314};  // fallback ids
  if (m.tokenizer) prompt = m.tokenizer->encode("The capital of France is", true, false);
  const int n_gen = 32;
  ThreadPool pool(0);
  LlamaRunner cpu(m, pool);
  ASSIGN_OK(kv, KvCache::create(m.config, 128));
  const auto ref = cpu_logits(cpu, kv, prompt, 0);
  LlamaCudaOptions o;
  o.max_batch = 1;
  o.max_prefill_tokens = 64;
  o.max_seq_len = 128;
  ASSIGN_OK(gpu, upload_model(m, o));
  std::vector<float> got((size_t)m.config.vocab_size);
  ASSIGN_OK(first, gpu->prefill(0, prompt.data(), (int64_t)prompt.size(), 0, got.data()));
  // Against the CPU engine on the file's Q4_1 weights: includes rounding every weight to bf16.
  const double err = rel_l2(got, ref);
  // Against the CPU engine on the same bf16-rounded weights and a BF16 KV cache (what the GPU
  // holds): the GPU engine's own error, through cuBLAS (bf16 activations) and through our GEMV
  // (float activations) only.
  const Model m16 = bf16_copy(m, o.fold_norm_weights);
  LlamaRunner cpu16(m16, pool);
  KvCacheOptions kvo;
  kvo.dtype = cpu::KvDType::kBF16;
  ASSIGN_OK(kv16, KvCache::create(m16.config, 128, kvo));
  const auto ref16 = cpu_logits(cpu16, kv16, prompt, 0);
  const double err16 = rel_l2(got, ref16);
  LlamaCudaOptions og = o;
  og.max_prefill_tokens = 8;
  og.cublas_min_batch = 9;
  ASSIGN_OK(gpu_gemv, upload_model(m, og));
  std::vector<float> got_gemv(got.size());
  ASSERT_TRUE(gpu_gemv->prefill(0, prompt.data(), (int64_t)prompt.size(), 0, got_gemv.data()).ok());
  const double err16_gemv = rel_l2(got_gemv, ref16);
  std::printf("[ info ] SmolLM2 prefill (%zu tokens) logits rel L2, GPU vs CPU on Q4_1 weights: "
              "%.3g; vs CPU on the same bf16 weights: %.3g (cuBLAS path), %.3g (GEMV path)\n",
              prompt.size(), err, err16, err16_gemv);
  // The GEMV path (float activations) is the engine's own error: 1.2e-3 measured. The cuBLAS
  // path rounds every projection's input to bf16, which the CPU reference does not: on SmolLM2
  // that rounding alone moves these logits by ~1e-2 in either direction (a 1e-7 change upstream
  // flips enough bf16 roundings: dev/cuda/decode_attn_numerics.py); measured 0.0052 unfolded,
  // 0.0131 with the norms folded (2026-11-30), so its bound is 2e-2.
  EXPECT_LT(err16, 2e-2);
  EXPECT_LT(err16_gemv, 1e-2);
  // bf16 weights and KV vs the file's Q4_1 values and a float KV cache: measured 0.020 on
  // 2026-11-30 before the norm folding, 0.0089 with it (of which the bf16 KV cache alone:
  // 0.015 in the earlier measurement; see bench/RESULTS.md)
  EXPECT_LT(err, 5e-2);

  std::vector<int32_t> cpu_tokens, gpu_tokens;
  int32_t t = Sampler::argmax(ref);
  std::vector<float> lg((size_t)m.config.vocab_size);
  for (int i = 0; i < n_gen; ++i) {
    cpu_tokens.push_back(t);
    lg = cpu_logits(cpu, kv, {t}, (int64_t)prompt.size() + i);
    t = Sampler::argmax(lg);
  }
  t = first;
  for (int i = 0; i < n_gen; ++i) {
    gpu_tokens.push_back(t);
    const int32_t pos = (int32_t)(prompt.size() + i);
    int32_t nx = 0;
    FRUGAL_ASSERT_OK(gpu->decode(&t, &pos, 1, &nx));
    t = nx;
  }
  if (m.tokenizer) {
    auto text = m.tokenizer->decode(gpu_tokens);
    if (text.ok()) std::printf("[ info ] GPU greedy: %s\n", text->c_str());
  }
  EXPECT_EQ(gpu_tokens, cpu_tokens);
}

}  // namespace
}  // namespace frugal::cuda
