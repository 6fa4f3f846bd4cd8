// Quantize → write a Hugging Face directory (AutoGPTQ / AutoAWQ / compressed-tensors) → load it
// back: every loaded linear dequantizes to the quantizer's values (exact, or within the stated
// fp16 bound), Q/K rows come back in HF order, the logits equal the effective-weights model's,
// and the CLI writes directories atomically and refuses what no format can hold.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/half.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "quant/ggml_blocks.h"
#include "quant/hf_export.h"
#include "quant/pack.h"
#include "cli_runner.h"
#include "test_models.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;
using namespace frugal::quant;

std::vector<float> dequant(const TensorView& t) {
  std::vector<float> out((size_t)t.numel());
  for (int64_t r = 0; r < t.rows(); ++r) dequantize_row(t.dtype, t.row(r), out.data() + r * t.cols(), t.cols());
  return out;
}

const TensorView& linear(const Model& m, int L, int k) {
  const LayerWeights& w = m.weights.layers[L];
  const TensorView* v[7] = {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down};
  return *v[k];
}

class HfExport : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!test::file_exists(test::default_model_path())) return;
    dir_ = new fs::path(fs::temp_directory_path() / ("frugal_hfx_" + std::to_string(::getpid())));
    fs::create_directories(*dir_);
    test::TruncateOptions o;
    o.n_layers = 1;
    test::write_truncated_gguf(test::default_model_path(), gguf(), o);
  }
  static void TearDownTestSuite() {
    if (dir_) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!dir_) GTEST_SKIP() << "default model not fetched";
  }
  static std::string gguf() { return (*dir_ / "small.gguf").string(); }
  static std::string out(const std::string& name) { return (*dir_ / name).string(); }

  // Quantizes the 1-layer model with its vocabulary cut to the first 256 tokens (tied embeddings:
  // a smaller valid model, so each directory is ~2 MB), writes `name`, loads it back. Calibrated
  // methods get 2 windows of 16 tokens.
  struct RoundTrip {
    Model base, loaded;
    ModelQuantResult r;
    HfExportReport rep;
  };
  static RoundTrip round_trip(const ModelQuantOptions& o, const std::string& name, bool f32 = true) {
    RoundTrip t;
    auto base = load_model(gguf());
    EXPECT_TRUE(base.ok()) << base.status().to_string();
    t.base = std::move(*base);
    EXPECT_TRUE(t.base.config.tied_embeddings);
    t.base.config.vocab_size = kVocab;
    t.base.weights.token_embd.shape[0] = kVocab;
    t.base.weights.token_embd.nbytes = t.base.weights.token_embd.row_bytes() * kVocab;
    t.base.weights.output = t.base.weights.token_embd;
    t.base.tokenizer.reset();
    std::vector<std::vector<int32_t>> calib(2);
    for (int w = 0; w < 2 && method_needs_calibration(o.method); ++w)
      for (int i = 0; i < 16; ++i) calib[w].push_back((i * 37 + w * 11 + 1) % kVocab);
    if (!method_needs_calibration(o.method)) calib.clear();
    ThreadPool pool(2);
    auto r = quantize_model(t.base, o, calib, pool);
    EXPECT_TRUE(r.ok()) << r.status().to_string();
    t.r = std::move(*r);
    HfExportOptions e;
    e.f32_unquantized = f32;
    auto rep = write_quantized_hf_dir(t.base, t.r, o, e, out(name));
    EXPECT_TRUE(rep.ok()) << rep.status().to_string();
    if (rep.ok()) t.rep = *rep;
    EXPECT_FALSE(fs::exists(out(name) + ".tmp"));
    auto loaded = load_model(out(name));
    EXPECT_TRUE(loaded.ok()) << loaded.status().to_string();
    if (loaded.ok()) t.loaded = std::move(*loaded);
    return t;
  }

  // Every loaded linear against the quantizer's dequantized values (HF row order for Q/K).
  // asym_bound: |Δ| ≤ 2^-11·|s·z| (fp16 m); f16_bound: |Δ| ≤ 2^-11·|w| + 2^-25.
  static void expect_linears(const RoundTrip& t, DType want, bool asym_bound, bool f16_bound) {
    const int64_t hd = t.base.config.head_dim();
    for (int k = 0; k < 7; ++k) {
      SCOPED_TRACE(kLinearNames[k]);
      const TensorView& v = linear(t.loaded, 0, k);
      ASSERT_EQ(v.dtype, want);
      const QuantizedLinearOut& lo = t.r.layers[0].linears[k];
      ASSERT_EQ(v.shape, (std::vector<int64_t>{lo.rows, lo.cols}));
      const std::vector<float> got = dequant(v);
      const std::vector<float> ref = lo.q ? dequantize(*lo.q) : dequantize(*lo.fp8);
      double worst = 0;
      for (int64_t r = 0; r < lo.rows; ++r) {
        const int64_t src = k < 2 ? gguf_row_of_hf_row(r, hd) : r;
        for (int64_t c = 0; c < lo.cols; ++c) {
          const double a = got[r * lo.cols + c], b = ref[src * lo.cols + c];
          double bound = 0;
          if (asym_bound) {
            const GroupParams gp = lo.q->params(src, lo.q->group_of(c));
            bound = std::ldexp(std::fabs((double)gp.scale * gp.zero), -11) * 1.0000001;
          }
          if (f16_bound) bound = std::ldexp(std::fabs(b), -11) + std::ldexp(1.0, -25);
          worst = std::max(worst, std::fabs(a - b) - bound);
          if (std::fabs(a - b) > bound) {
            ADD_FAILURE() << "row " << r << " col " << c << ": loaded " << a << ", quantizer " << b;
            return;
          }
        }
      }
    }
  }

  static inline fs::path* dir_ = nullptr;
  static constexpr int64_t kVocab = 256;
};

TEST_F(HfExport, GptqLayoutRoundTrips) {
  ModelQuantOptions o;
  o.quant = {4, 64, false};
  RoundTrip t = round_trip(o, "rtn4_g64");
  EXPECT_EQ(t.rep.config.method, HfQuantMethod::kGptq);
  EXPECT_EQ(t.rep.packed_linears, 7);
  EXPECT_EQ(t.rep.gptq_zero_clamped, 0);
  expect_linears(t, DType::I4_G64A, true, false);
  // config.json says what the tools need.
  std::ifstream in(out("rtn4_g64") + "/config.json");
  const nlohmann::json j = nlohmann::json::parse(in);
  EXPECT_EQ(j["quantization_config"]["quant_method"], "gptq");
  EXPECT_EQ(j["quantization_config"]["bits"], 4);
  EXPECT_EQ(j["quantization_config"]["group_size"], 64);
  EXPECT_EQ(j["quantization_config"]["sym"], false);
  EXPECT_EQ(j["quantization_config"]["checkpoint_format"], "gptq");
  EXPECT_EQ(j["torch_dtype"], "float32");
  EXPECT_EQ(j["rms_norm_eps"].get<double>(), 1e-5);

  o.quant = {4, 32, true};
  expect_linears(round_trip(o, "rtn4_g32_sym"), DType::Q4_0, false, false);
  o.quant = {3, 64, false};
  RoundTrip t3 = round_trip(o, "rtn3_g64");
  EXPECT_EQ(t3.rep.gptq_zero_clamped, 0);
  expect_linears(t3, DType::F16, false, true);
  bool noted = false;
  for (const std::string& n : t3.loaded.notes) noted = noted || n.find("7 linears dequantized to F16 at load (3-bit:") == 0;
  EXPECT_TRUE(noted);
  o.quant = {8, kPerChannel, true};
  expect_linears(round_trip(o, "rtn8_ch"), DType::I8_ROW, false, false);
}

TEST_F(HfExport, CompressedTensorsAndAwqRoundTrip) {
  ModelQuantOptions o;
  o.method = Method::kFp8;
  o.fp8_per_channel = true;
  RoundTrip f = round_trip(o, "fp8_ch");
  EXPECT_EQ(f.rep.config.method, HfQuantMethod::kCompressedTensors);
  expect_linears(f, DType::E4M3_ROW, false, false);
  o.fp8_per_channel = false;
  expect_linears(round_trip(o, "fp8_tensor"), DType::E4M3_ROW, false, false);

  o = ModelQuantOptions{};
  o.method = Method::kSmoothQuant;
  RoundTrip s = round_trip(o, "sq");
  EXPECT_TRUE(s.rep.config.dynamic_activations);
  expect_linears(s, DType::I8_ROW, false, false);
  // The folded norms are what the directory holds (F32 here: exact).
  EXPECT_EQ(dequant(s.loaded.weights.layers[0].attn_norm), s.r.layers[0].attn_norm);
  EXPECT_EQ(dequant(s.loaded.weights.layers[0].ffn_norm), s.r.layers[0].ffn_norm);

  o = ModelQuantOptions{};
  o.method = Method::kAwq;
  o.quant = {4, 64, false};
  RoundTrip a = round_trip(o, "awq");
  EXPECT_EQ(a.rep.config.method, HfQuantMethod::kAwq);
  expect_linears(a, DType::I4_G64A, true, false);
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return std::sqrt(num / den);
}

std::vector<float> last_logits(const Model& m, const std::vector<int32_t>& ids) {
  ThreadPool pool(2);
  auto kv = KvCache::create(m.config, (int64_t)ids.size());
  EXPECT_TRUE(kv.ok());
  LlamaRunner r(m, pool);
  std::vector<float> logits(m.config.vocab_size);
  EXPECT_TRUE(r.forward(ids, 0, *kv, logits).ok());
  return logits;
}

// The GGUF model with its linears replaced by the quantizer's effective F32 weights.
Model effective_model(const Model& base, const ModelQuantResult& r) {
  Model m = base;
  for (size_t L = 0; L < r.layers.size(); ++L) {
    LayerWeights& w = m.weights.layers[L];
    TensorView* v[7] = {&w.wq, &w.wk, &w.wv, &w.wo, &w.w_gate, &w.w_up, &w.w_down};
    for (int k = 0; k < 7; ++k) {
      const QuantizedLinearOut& lo = r.layers[L].linears[k];
      v[k]->dtype = DType::F32;
      v[k]->data = lo.effective.data();
      v[k]->nbytes = lo.effective.size() * sizeof(float);
    }
  }
  return m;
}

TEST_F(HfExport, LogitsEqualTheEffectiveWeightsModel) {
  for (int64_t group : {32, 64}) {
    SCOPED_TRACE(group);
    ModelQuantOptions o;
    o.quant = {4, group, false};
    RoundTrip t = round_trip(o, "logits_g" + std::to_string(group));
    const Model eff = effective_model(t.base, t.r);
    const std::vector<int32_t> ids = {1, 200, 17, 45, 99, 3, 250, 128, 64};
    const std::vector<float> a = last_logits(t.loaded, ids), b = last_logits(eff, ids);
    const double err = rel_l2(a, b);
    std::printf("[ hf export] 4-bit g%lld asym dir (%s) vs effective weights: logits rel L2 %.2e\n", (long long)group,
                dtype_name(t.loaded.weights.layers[0].wq.dtype), err);
    // Differences: fp16 rounding of m = −s·z (≤ 2^-11 of s·z per weight) and RoPE pairing order.
    EXPECT_LT(err, 1e-3);
    EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(), std::max_element(b.begin(), b.end()) - b.begin());
  }
}

// Mean over positions of KL(P_a || P_b) in float64, logits [n, vocab].
double mean_kl(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  const int64_t n = (int64_t)a.size() / vocab;
  double tot = 0;
  for (int64_t t = 0; t < n; ++t) {
    auto lse = [&](const std::vector<float>& x) {
      double m = -1e300, s = 0;
      for (int64_t v = 0; v < vocab; ++v) m = std::max(m, (double)x[t * vocab + v]);
      for (int64_t v = 0; v < vocab; ++v) s += std::exp(x[t * vocab + v] - m);
      return m + std::log(s);
    };
    const double la = lse(a), lb = lse(b);
    for (int64_t v = 0; v < vocab; ++v) {
      const double pa = (double)a[t * vocab + v] - la, pb = (double)b[t * vocab + v] - lb;
      tot += std::exp(pa) * (pa - pb);
    }
  }
  return tot / n;
}

std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids) {
  ThreadPool pool(2);
  auto kv = KvCache::create(m.config, (int64_t)ids.size());
  EXPECT_TRUE(kv.ok());
  LlamaRunner r(m, pool);
  std::vector<float> logits(ids.size() * m.config.vocab_size);
  EXPECT_TRUE(r.forward(ids, 0, *kv, logits, true).ok());
  return logits;
}

// A SmoothQuant directory declares dynamic per-token int8 activations; loading it turns W8A8 on,
// and its logits differ from the same weights with float activations by a small, nonzero KL (the
// activations really are quantized). Bound: 3x the measured 3.4e-3 nats (1 layer, 256-token vocabulary,
// SmoothQuant calibrated on 2 x 16 tokens; logits rel L2 1.6e-2).
TEST_F(HfExport, SmoothQuantDirRunsW8A8ByDefault) {
  ModelQuantOptions o;
  o.method = Method::kSmoothQuant;
  RoundTrip t = round_trip(o, "sq_w8a8");
  EXPECT_TRUE(t.rep.config.int8_token_activations);
  std::ifstream cf(out("sq_w8a8") + "/config.json");
  const auto cfg = nlohmann::json::parse(cf);
  const auto& acts = cfg["quantization_config"]["config_groups"].begin().value()["input_activations"];
  EXPECT_EQ(acts["num_bits"], 8);
  EXPECT_EQ(acts["type"], "int");
  EXPECT_EQ(acts["strategy"], "token");
  EXPECT_EQ(acts["dynamic"], true);
  ASSERT_TRUE(t.loaded.int8_token_activations);
  Model f = t.loaded;
  f.int8_token_activations = false;
  const std::vector<int32_t> ids = {1, 200, 17, 45, 99, 3, 250, 128, 64, 7, 19, 230};
  const std::vector<float> q = all_logits(t.loaded, ids), x = all_logits(f, ids);
  const double kl = mean_kl(x, q, kVocab);
  std::printf("[ hf export] SmoothQuant W8A8 vs float activations: mean KL %.3e nats, logits rel L2 %.2e\n", kl,
              rel_l2(q, x));
  EXPECT_GT(kl, 0.0);
  EXPECT_LT(kl, 1e-2);
  EXPECT_NE(q, x);
  // Decode (one token after the prefill of the rest) takes the W8A8 path too.
  auto decode_last = [&](const Model& m) {
    ThreadPool pool(2);
    auto kv = KvCache::create(m.config, (int64_t)ids.size());
    EXPECT_TRUE(kv.ok());
    LlamaRunner r(m, pool);
    std::vector<float> logits(kVocab);
    const std::vector<int32_t> head(ids.begin(), ids.end() - 1), last = {ids.back()};
    EXPECT_TRUE(r.forward(head, 0, *kv, logits).ok());
    EXPECT_TRUE(r.forward(last, (int64_t)head.size(), *kv, logits).ok());
    return logits;
  };
  const std::vector<float> dq = decode_last(t.loaded), df = decode_last(f);
  const std::vector<float> q_last(q.end() - kVocab, q.end()), x_last(x.end() - kVocab, x.end());
  EXPECT_LT(rel_l2(dq, q_last), 1e-4);
  EXPECT_LT(rel_l2(df, x_last), 1e-4);
  EXPECT_NE(dq, df);
}

TEST_F(HfExport, RefusesWhatNoFormatHolds) {
  auto base = load_model(gguf());
  ASSERT_TRUE(base.ok());
  ModelQuantOptions o;
  o.method = Method::kFp8;
  o.fp8 = Fp8Format::kE5M2;
  auto r = validate_hf_export(o, base->config);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("E5M2"), std::string::npos) << r.status().message();
  o = ModelQuantOptions{};
  o.quant = {4, kPerTensor, false};
  r = validate_hf_export(o, base->config);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("per-tensor"), std::string::npos) << r.status().message();
  // A non-empty output directory is refused; an empty one is fine.
  fs::create_directories(out("full"));
  std::ofstream(out("full") + "/x") << "x";
  EXPECT_EQ(check_hf_output_dir(out("full")).code(), StatusCode::kInvalidArgument);
  fs::create_directories(out("empty"));
  EXPECT_TRUE(check_hf_output_dir(out("empty")).ok());
  EXPECT_EQ(check_hf_output_dir("/nonexistent_dir/x").code(), StatusCode::kNotFound);
}

TEST(HfExportZeros, GptqV1ZeroZeroIsStoredExactlyWhenItCanBe) {
  QuantizedMatrix q;  // 8 rows (AutoGPTQ packs zeros along out in 8s); rows 2..7 repeat row 0
  q.rows = 8; q.cols = 8; q.bits = 4; q.group = 4; q.n_groups = 2;
  const uint8_t row0[8] = {0, 3, 14, 2, 5, 5, 5, 5};   // group 0 zero 0 without code 15 → shifted
  const uint8_t row1[8] = {15, 0, 1, 2, 9, 9, 9, 9};   // group 0 zero 0 with code 15 → clamped
  for (int r = 0; r < 8; ++r) {
    q.codes.insert(q.codes.end(), r == 1 ? row1 : row0, (r == 1 ? row1 : row0) + 8);
    q.scales.insert(q.scales.end(), {0.5f, 0.25f});
    q.zeros.insert(q.zeros.end(), {0.0f, 3.0f});
  }
  const std::vector<float> before = dequantize(q);
  const auto [shifted, clamped] = fit_gptq_v1_zeros(q);
  EXPECT_EQ(shifted, 7);
  EXPECT_EQ(clamped, 1);
  const std::vector<float> after = dequantize(q);
  for (int c = 0; c < 64; ++c)  // exact except row 1's code 15, which moved down one step
    EXPECT_EQ(after[c], c == 8 ? before[c] - 0.5f : before[c]) << c;
  auto p = pack_autogptq(q);
  ASSERT_TRUE(p.ok());
  auto u = unpack_autogptq(*p);
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(dequantize(*u), after);
}

// ---- CLI ----
using Cli = test::CliResult;
using test::run_cli;

TEST_F(HfExport, CliWritesADirectoryAndInfoShowsIt) {
  const std::string d = out("cli_dir");
  Cli r = run_cli("quantize " + gguf() + " " + d + " --method rtn --bits 4 --group 32");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("gptq 4-bit g32 asym"), std::string::npos) << r.out;
  EXPECT_TRUE(fs::exists(d + "/model.safetensors"));
  EXPECT_TRUE(fs::exists(d + "/config.json"));
  r = run_cli("info " + d);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("quantization: {"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("7 linears repacked exactly into Q4_1"), std::string::npos) << r.out;
  // Bad input fails before any work and leaves nothing behind.
  const std::pair<std::string, std::string> cases[] = {
      {d, "not empty"},
      {out("e5m2") + " --method fp8 --fp8 e5m2", "E5M2"},
      {out("pt") + " --group -1", "per-tensor"},
      {"/nonexistent_dir/x", "does not exist"},
  };
  for (const auto& [args, msg] : cases) {
    r = run_cli("quantize " + gguf() + " " + args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_NE(r.err.find(msg), std::string::npos) << args << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(out("e5m2")));
  EXPECT_FALSE(fs::exists(out("pt")));
  EXPECT_FALSE(fs::exists(d + ".tmp"));
}

}  // namespace
}  // namespace frugal
