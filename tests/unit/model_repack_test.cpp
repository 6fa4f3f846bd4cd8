// Load-time repack of the default model (SmolLM2 Q4_1) into the CPU decode tiles
// (model/repack_model.h): what is repacked, the tied embedding / LM head, the row accessors, the
// same logits as the row-major model (bit-identical for prefill and the float decode path, which
// read the same bytes in the same order; for the int8 decode path, whose kernels sum in another
// order, see expect_q8_close), other readers (requantize), and `frugal run --no-repack` A/B.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/repack.h"
#include "base/huge_pages.h"
#include "cli_runner.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "model/owned_weights.h"
#include "model/repack_model.h"
#include "quant/ggml_blocks.h"
#include "logits_kl.h"
#include "test_util.h"

namespace frugal {
namespace {

struct Loaded {
  Model rm, tiled;
  RepackReport rep;
};

// The default model twice: row-major and repacked. Skips without the model.
bool load_both(Loaded* out) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) return false;
  auto a = load_model(path);
  auto b = load_model(path);
  EXPECT_TRUE(a.ok() && b.ok());
  if (!a.ok() || !b.ok()) return false;
  out->rm = std::move(*a);
  out->tiled = std::move(*b);
  auto rep = repack_for_cpu_decode(&out->tiled);
  EXPECT_TRUE(rep.ok()) << rep.status().to_string();
  if (!rep.ok()) return false;
  out->rep = *rep;
  return true;
}

// The int8-activation decode path of the tiled model against the row-major one. Their kernels
// sum in other orders, and a rounding difference that moves an activation across a quantization
// boundary in one layer changes the next layer's int8 input by a whole step, and after a few
// layers the two runs carry independent activation-rounding noise: logits differ by about as much
// as the int8 path differs from the float path (measured: KL 4.5e-3 tiled vs row-major, 3.9e-3
// row-major q8 vs f32 on this prompt). Bounded by that difference, measured in the same call, and
// by KL; the kernels themselves are checked tightly in ops_matvec_tiled_test.cpp.
void expect_q8_close(const std::vector<float>& rm_q8, const std::vector<float>& tiled_q8,
                     const std::vector<float>& rm_f32, const char* what) {
  double d_tiled = 0, d_act = 0;
  for (size_t i = 0; i < rm_q8.size(); ++i) {
    d_tiled = std::max(d_tiled, std::fabs((double)rm_q8[i] - tiled_q8[i]));
    d_act = std::max(d_act, std::fabs((double)rm_q8[i] - rm_f32[i]));
  }
  const double kl_tiled = test::logits_kl(rm_q8, tiled_q8), kl_act = test::logits_kl(rm_f32, rm_q8);
  std::printf("[repack] %s: q8 decode logits tiled vs row-major max |diff| %.3e, KL %.3e; "
              "row-major q8 vs f32 max |diff| %.3e, KL %.3e\n", what, d_tiled, kl_tiled, d_act, kl_act);
  EXPECT_LE(d_tiled, 2 * d_act) << what;
  EXPECT_LE(kl_tiled, 3 * kl_act) << what;
  EXPECT_LT(kl_tiled, 2e-2) << what;
  EXPECT_EQ(std::max_element(rm_q8.begin(), rm_q8.end()) - rm_q8.begin(),
            std::max_element(tiled_q8.begin(), tiled_q8.end()) - tiled_q8.begin()) << what;
}

// Logits of `tokens`: prefill of all but the last, then the last one decoded (n = 1).
std::vector<float> run(const Model& m, const std::vector<int32_t>& tokens, cpu::ActPrecision act,
                       std::vector<float>* prefill_logits) {
  ThreadPool pool(2);
  auto kv = KvCache::create(m.config, (int64_t)tokens.size());
  EXPECT_TRUE(kv.ok());
  LlamaRunner r(m, pool);
  r.set_decode_activations(act);
  const int64_t V = m.config.vocab_size, n = (int64_t)tokens.size();
  std::vector<float> l((size_t)V);
  EXPECT_TRUE(r.forward(std::span<const int32_t>(tokens.data(), (size_t)(n - 1)), 0, *kv, l).ok());
  *prefill_logits = l;
  EXPECT_TRUE(r.forward(std::span<const int32_t>(&tokens[(size_t)(n - 1)], 1), n - 1, *kv, l).ok());
  return l;
}

TEST(ModelRepack, TiedEmbeddingAccessorsAndRelease) {
  Loaded L;
  if (!load_both(&L)) GTEST_SKIP() << "no default model";
  const ModelWeights& a = L.rm.weights;
  const ModelWeights& b = L.tiled.weights;
  // Q4_1 SmolLM2: 30 layers x 7 linears + the tied embedding, all 4-bit (Q4_1 or, in llama.cpp's
  // mixes, Q4_0 / other): count what the dtypes say should be repacked.
  int64_t expect = cpu::tile_layout_supported(a.token_embd.dtype) ? 1 : 0;
  for (const LayerWeights& l : a.layers)
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      expect += cpu::tile_layout_supported(t->dtype) ? 1 : 0;
  ASSERT_GT(expect, 0);
  EXPECT_EQ(L.rep.tensors, expect);
  EXPECT_GT(L.rep.released_bytes, 0u) << "the mapping's pages of repacked tensors are released";
  EXPECT_LE(L.rep.released_bytes, L.rep.bytes + L.rep.copied_bytes);
  EXPECT_EQ(L.tiled.weight_bytes(), L.rm.weight_bytes()) << "same bytes";
  ASSERT_EQ(b.output.data, b.token_embd.data) << "still tied";
  if (cpu::tile_layout_supported(a.token_embd.dtype)) {
    EXPECT_FALSE(b.token_embd.row_major());
    EXPECT_FALSE(b.output.row_major());
  }
  // Embedding rows (first, last, a tail row if any, some in between) through the accessor.
  const int64_t dim = L.rm.config.dim, V = L.rm.config.vocab_size;
  std::vector<float> fa((size_t)dim), fb((size_t)dim);
  for (int64_t tok : {int64_t{0}, int64_t{1}, int64_t{5}, int64_t{4097}, V - 2, V - 1}) {
    dequantize_row(a.token_embd.dtype, a.token_embd.row(tok), fa.data(), dim);
    cpu::dequantize_weight_row(b.token_embd, tok, fb.data());
    ASSERT_EQ(0, std::memcmp(fa.data(), fb.data(), fa.size() * sizeof(float))) << "token " << tok;
  }
  // A second repack is a no-op.
  auto again = repack_for_cpu_decode(&L.tiled);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tensors, 0);
}

TEST(ModelRepack, SameLogitsAsRowMajor) {
  Loaded L;
  if (!load_both(&L)) GTEST_SKIP() << "no default model";
  ASSERT_TRUE(L.rm.tokenizer.has_value());
  const std::vector<int32_t> tokens =
      L.rm.tokenizer->encode("The quick brown fox jumps over the lazy dog", true, false);
  ASSERT_GE(tokens.size(), 3u);
  std::vector<float> pa, pb;
  // Float decode path: tiles unpacked, the row-major float kernel: the same bits. Prefill (the
  // GEMM, rows unpacked then dequantized): the same bits.
  const std::vector<float> fa = run(L.rm, tokens, cpu::ActPrecision::kF32, &pa);
  const std::vector<float> fb = run(L.tiled, tokens, cpu::ActPrecision::kF32, &pb);
  EXPECT_EQ(pa, pb) << "prefill";
  EXPECT_EQ(fa, fb) << "f32 decode";
  // Int8 decode path: another summation order (see expect_q8_close).
  const std::vector<float> qa = run(L.rm, tokens, cpu::ActPrecision::kQ8, &pa);
  const std::vector<float> qb = run(L.tiled, tokens, cpu::ActPrecision::kQ8, &pb);
  expect_q8_close(qa, qb, fa, "Q4_1 file");
}

// The default model requantized to `to` (Q4_0 or Q8_0, so the tied embedding / LM head is tiled
// too), then repacked: the head is repacked once for both views, embedding rows read through the
// accessor, logits as above.
void tied_head_repacked_once(DType to, const char* what) {
  Loaded L;
  if (!load_both(&L)) GTEST_SKIP() << "no default model";
  ASSERT_TRUE(cpu::tile_layout_supported(to));
  ThreadPool pool(2);
  // Requantized from the repacked model: its rows are read through the tile-aware accessor.
  auto q4 = requantize_model(L.tiled, to, pool);
  ASSERT_TRUE(q4.ok()) << q4.status().to_string();
  {
    const TensorView& src = L.rm.weights.layers[3].w_down;  // row-major Q4_1
    const TensorView& dst = q4->weights.layers[3].w_down;
    std::vector<float> f((size_t)src.cols());
    std::vector<uint8_t> want(dst.row_bytes());
    for (int64_t r : {int64_t{0}, int64_t{6}, src.rows() - 1}) {
      dequantize_row(src.dtype, src.row(r), f.data(), src.cols());
      quantize_row(to, f.data(), want.data(), src.cols());
      ASSERT_EQ(0, std::memcmp(want.data(), dst.row(r), want.size())) << "row " << r;
    }
  }
  Model t = *q4;  // shares q4's buffers: they are not freed by the repack
  auto rep = repack_for_cpu_decode(&t);
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->tensors, 1 + 7 * (int64_t)t.weights.layers.size());
  EXPECT_EQ(rep->freed_buffers, 0);
  ASSERT_EQ(t.weights.output.data, t.weights.token_embd.data);
  ASSERT_FALSE(t.weights.output.row_major());
  const int64_t dim = t.config.dim, V = t.config.vocab_size;
  std::vector<float> fa((size_t)dim), fb((size_t)dim);
  for (int64_t tok : {int64_t{0}, int64_t{3}, int64_t{4097}, V - 1}) {
    dequantize_row(to, q4->weights.token_embd.row(tok), fa.data(), dim);
    cpu::dequantize_weight_row(t.weights.token_embd, tok, fb.data());
    ASSERT_EQ(0, std::memcmp(fa.data(), fb.data(), fa.size() * sizeof(float))) << "token " << tok;
  }
  const std::vector<int32_t> tokens = {1, 504, 2365, 6354, 30};
  std::vector<float> pa, pb;
  const std::vector<float> f32 = run(*q4, tokens, cpu::ActPrecision::kF32, &pa);
  EXPECT_EQ(f32, run(t, tokens, cpu::ActPrecision::kF32, &pb)) << "f32 decode";
  EXPECT_EQ(pa, pb) << "prefill";
  const std::vector<float> qa = run(*q4, tokens, cpu::ActPrecision::kQ8, &pa);
  const std::vector<float> qb = run(t, tokens, cpu::ActPrecision::kQ8, &pb);
  expect_q8_close(qa, qb, f32, what);
  // Once nothing else holds q4's buffers, repacking q4 itself frees each old one (one per tensor).
  t = Model();
  auto rep2 = repack_for_cpu_decode(&*q4);
  ASSERT_TRUE(rep2.ok());
  EXPECT_EQ(rep2->tensors, rep->tensors);
  EXPECT_EQ(rep2->freed_buffers, rep2->tensors);
}

TEST(ModelRepack, TiedQ4HeadRepackedOnce) { tied_head_repacked_once(DType::Q4_0, "Q4_0 requantized, tied 4-bit head"); }
TEST(ModelRepack, TiedQ8HeadRepackedOnce) { tied_head_repacked_once(DType::Q8_0, "Q8_0 requantized, tied Q8_0 head"); }

// Huge pages without tiles: every matrix (and the tied embedding / LM head once) copied unchanged
// into one 2 MiB-aligned arena; the same kernels on the same bytes give the same bits on both
// decode paths and the prefill.
TEST(ModelRepack, HugePageArenaSameBits) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "no default model";
  auto a = load_model(path);
  auto b = load_model(path);
  ASSERT_TRUE(a.ok() && b.ok());
  CpuPlacement only_huge;
  only_huge.tiles = false;
  auto rep = repack_for_cpu_decode(&*b, only_huge);
  ASSERT_TRUE(rep.ok()) << rep.status().to_string();
  const ModelWeights& w = b->weights;
  ASSERT_EQ(w.output.data, w.token_embd.data) << "still tied";
  std::vector<const TensorView*> mats = {&w.output};
  for (const LayerWeights& l : w.layers)
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      mats.push_back(t);
  EXPECT_EQ(rep->tensors, 0);
  EXPECT_EQ(rep->copied_tensors, (int64_t)mats.size());
  EXPECT_TRUE(rep->huge_pages);
  size_t bytes = 0;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (const TensorView* t : mats) {
    EXPECT_TRUE(t->row_major()) << t->name;
    bytes += (size_t)t->rows() * t->row_bytes();
    lo = std::min(lo, (uintptr_t)t->data);
    hi = std::max(hi, (uintptr_t)t->data + (size_t)t->rows() * t->row_bytes());
  }
  EXPECT_EQ(rep->copied_bytes, bytes);
  EXPECT_EQ(lo % kHugePageBytes, 0u) << "the arena starts on a 2 MiB boundary";
  EXPECT_LE(hi - lo, rep->arena_bytes);
  EXPECT_GT(rep->released_bytes, 0u) << "the mapping's pages of moved tensors are released";
  std::printf("[placement] %zu bytes in the arena; AnonHugePages %zu (THP %s)\n",
              rep->arena_bytes, huge_pages_resident(), transparent_huge_pages_mode().c_str());
  // Placed once: a second call (any options) moves nothing.
  auto again = repack_for_cpu_decode(&*b);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->tensors + again->copied_tensors, 0);
  EXPECT_EQ(w.output.data, (const void*)lo);

  const std::vector<int32_t> tokens = {1, 504, 2365, 6354, 30, 17, 4082};
  std::vector<float> pa, pb;
  EXPECT_EQ(run(*a, tokens, cpu::ActPrecision::kF32, &pa), run(*b, tokens, cpu::ActPrecision::kF32, &pb));
  EXPECT_EQ(pa, pb) << "prefill";
  EXPECT_EQ(run(*a, tokens, cpu::ActPrecision::kQ8, &pa), run(*b, tokens, cpu::ActPrecision::kQ8, &pb));
}

TEST(ModelRepack, CliNoRepackAB) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "no default model";
  // The float decode path gives the same bits either way: the same greedy tokens.
  const std::string args = "run -m " + path + " -p 'Once upon a time' -n 6 --temp 0 -t 2 --decode-act f32";
  const test::CliResult a = test::run_cli(args);
  const test::CliResult b = test::run_cli(args + " --no-repack");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
}

}  // namespace
}  // namespace frugal
