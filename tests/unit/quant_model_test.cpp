// Whole-model quantization on the default model: the calibration runner reproduces the engine's
// forward pass; RTN to Q4_0 writes native ggml blocks that load back; bad options fail early.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "formats/gguf.h"
#include "model/llama.h"
#include "quant/ggml_blocks.h"
#include "quant/gguf_export.h"
#include "quant/model_quantizer.h"
#include "test_util.h"

namespace frugal::quant {
namespace {

TEST(QuantModel, CalibrationRunnerMatchesEngine) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model not fetched";
  auto m = load_model(test::default_model_path());
  ASSERT_TRUE(m.ok());
  ThreadPool pool(2);
  const std::vector<int32_t> window = {1, 504, 3458, 314, 253, 1345, 30, 216, 1025, 282, 2};
  auto mine = calibration_forward_logits(*m, window, pool);
  ASSERT_TRUE(mine.ok()) << mine.status().to_string();
  auto kv = KvCache::create(m->config, 64);
  ASSERT_TRUE(kv.ok());
  LlamaRunner runner(*m, pool);
  std::vector<float> ref(m->config.vocab_size);
  ASSERT_TRUE(runner.forward(window, 0, *kv, ref).ok());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    max_diff = std::max(max_diff, (double)std::fabs((*mine)[i] - ref[i]));
    max_abs = std::max(max_abs, (double)std::fabs(ref[i]));
  }
  EXPECT_LT(max_diff, 1e-3 * max_abs) << max_diff << " of " << max_abs;
}

TEST(QuantModel, OptionsCheckedAgainstShapes) {
  ModelConfig c;
  c.dim = 576; c.n_heads = 9; c.n_kv_heads = 3; c.hidden_dim = 1536;
  ModelQuantOptions o;
  o.quant = {4, 128, false};
  EXPECT_FALSE(validate_for_model(o, c).ok());  // 128 does not divide 576
  o.quant.group = 64;
  EXPECT_TRUE(validate_for_model(o, c).ok());
  o.method = Method::kGptq;
  o.quant.group = kPerTensor;
  EXPECT_FALSE(validate_for_model(o, c).ok());
  EXPECT_FALSE(method_from_name("gptq2").has_value());
  std::vector<int32_t> toks(100, 5);
  EXPECT_FALSE(calibration_windows(toks, 4, 30).ok());
  auto w = calibration_windows(toks, 4, 25);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->size(), 4u);
}

TEST(QuantModel, GgmlEncodingIsExact) {
  // Q4_0 / Q8_0 / Q4_1 blocks written from a QuantizedMatrix dequantize (with ggml's reference
  // dequantizer) to the matrix's own values (Q4_1: up to the fp16 rounding of m = −scale·zero).
  std::vector<float> w(4 * 64);
  for (size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * (float)i) * (1 + (float)(i % 7));
  for (auto [bits, sym, t] : {std::tuple{4, true, DType::Q4_0}, std::tuple{8, true, DType::Q8_0},
                              std::tuple{4, false, DType::Q4_1}}) {
    auto q = quantize_rtn(w.data(), 4, 64, {bits, 32, sym});
    ASSERT_TRUE(q.ok());
    ASSERT_EQ(native_ggml_type(*q), t);
    const std::vector<uint8_t> bytes = encode_ggml(*q, t);
    std::vector<float> back(w.size());
    for (int r = 0; r < 4; ++r) dequantize_row(t, bytes.data() + r * dtype_row_bytes(t, 64), back.data() + r * 64, 64);
    const std::vector<float> want = dequantize(*q);
    for (size_t i = 0; i < w.size(); ++i) {
      if (t == DType::Q4_1) EXPECT_NEAR(back[i], want[i], 2e-3f * std::fabs(q->scales[(i / 64) * 2 + (i % 64) / 32] * 16));
      else EXPECT_EQ(back[i], want[i]) << i;
    }
  }
}

}  // namespace
}  // namespace frugal::quant
