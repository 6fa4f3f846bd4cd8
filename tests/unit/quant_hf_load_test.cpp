// Loading quantized Hugging Face checkpoints: tiny checkpoints built byte by byte from the
// AutoGPTQ / AutoAWQ / compressed-tensors layouts (tests/reference/make_quant_checkpoints.py)
// load into the expected engine dtypes, and every loaded weight equals the value the format
// defines (the generator's closed formulas, repeated below) and the generator's float64 checksum.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/fp8.h"
#include "model/model.h"
#include "quant/ggml_blocks.h"
#include "quant/hf_quant_config.h"
#include "test_util.h"

namespace frugal {
namespace {

constexpr int kDim = 64, kFfn = 128, kLayers = 2, kKvDim = 32;
struct Lin {
  const char* module;
  int out, in;
};
constexpr Lin kLin[7] = {{"self_attn.q_proj", kDim, kDim}, {"self_attn.k_proj", kKvDim, kDim},
                         {"self_attn.v_proj", kKvDim, kDim}, {"self_attn.o_proj", kDim, kDim},
                         {"mlp.gate_proj", kFfn, kDim},      {"mlp.up_proj", kFfn, kDim},
                         {"mlp.down_proj", kDim, kFfn}};

// The generator's formulas.
int code(int L, int k, int o, int i, int bits) { return (o * 7 + i * 3 + (o * i) % 5 + L * 11 + k * 5) % (1 << bits); }
double scale(int L, int k, int o, int g) { return (1 + (o + 3 * g + k + L) % 7) / 256.0; }
int zero(int L, int k, int o, int g, int bits, int lo) { return lo + (o * 5 + g * 3 + k + L) % ((1 << bits) - lo); }
int inv_perm(int i, int in) {  // j with perm[j] = i, perm[j] = (37 j + 11) mod in
  for (int j = 0; j < in; ++j)
    if ((j * 37 + 11) % in == i) return j;
  return -1;
}

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

double weight_sum(const std::vector<float>& w, int out, int in) {
  double s = 0;
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) s += (double)w[(size_t)o * in + i] * (1 + (o * in + i) % 7);
  return s;
}

struct Fixture {
  const char* name;
  DType dtype;       // every linear loads as this ...
  DType dtype_down;  // ... but down_proj (in = 128: two groups of 64, so act-order matters)
  bool fallback;     // some linears F16, with a note
  // the value the format defines for weight (o, i) of linear k in layer L
  double (*value)(int L, int k, int o, int i);
};

double gptq4_sym(int L, int k, int o, int i) { return scale(L, k, o, i / 32) * (code(L, k, o, i, 4) - 8); }
double gptq4_actorder(int L, int k, int o, int i) {
  const int g = inv_perm(i, kLin[k].in) / 64;
  return scale(L, k, o, g) * (code(L, k, o, i, 4) - zero(L, k, o, g, 4, 1));
}
double gptq3(int L, int k, int o, int i) {
  const int g = i / 32;
  return scale(L, k, o, g) * (code(L, k, o, i, 3) - zero(L, k, o, g, 3, 1));
}
double awq4(int L, int k, int o, int i) {
  const int g = i / 64;
  return scale(L, k, o, g) * (code(L, k, o, i, 4) - zero(L, k, o, g, 4, 0));
}
uint8_t ct_raw(int L, int k, int o, int i) { return (uint8_t)((o * 13 + i * 7 + L * 3 + k) % 256); }
double ct_fp8(int L, int k, int o, int i) {
  uint8_t c = ct_raw(L, k, o, i);
  if ((c & 0x7F) == 0x7F) c = 0x7E;
  return (1 + o % 5) / 64.0 * fp8_e4m3_to_float(c);
}
double ct_int8(int L, int k, int o, int i) {
  uint8_t c = ct_raw(L, k, o, i);
  if (c == 0x80) c = 0x81;
  return (1 + o % 5) / 64.0 * (int8_t)c;
}

const Fixture kFixtures[] = {
    {"gptq_4bit_g32_sym", DType::Q4_0, DType::Q4_0, false, gptq4_sym},
    // in = 64 rows are one group of 64: act-order cannot reorder groups there, g_idx is all 0
    {"gptq_4bit_g64_asym_actorder", DType::I4_G64A, DType::F16, true, gptq4_actorder},
    {"gptq_3bit_g32_asym", DType::F16, DType::F16, true, gptq3},
    {"awq_4bit_g64", DType::I4_G64A, DType::I4_G64A, false, awq4},
    {"ct_fp8_channel", DType::E4M3_ROW, DType::E4M3_ROW, false, ct_fp8},
    {"ct_int8_channel_w8a8", DType::I8_ROW, DType::I8_ROW, false, ct_int8},
};

TEST(QuantHfLoad, HandBuiltCheckpointsLoadWithTheirValues) {
  for (const Fixture& f : kFixtures) {
    SCOPED_TRACE(f.name);
    const std::string dir = test::source_dir() + "/tests/golden/quant_ckpt/" + f.name;
    Result<Model> m = load_model(dir);
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    std::ifstream in(dir + "/expected.json");
    const nlohmann::json expect = nlohmann::json::parse(in);
    bool noted = false;
    for (const std::string& n : m->notes) noted = noted || n.find("dequantized to F16") != std::string::npos;
    EXPECT_EQ(noted, f.fallback);
    EXPECT_FALSE(m->notes.empty());
    size_t bytes = 0;
    for (int L = 0; L < kLayers; ++L)
      for (int k = 0; k < 7; ++k) {
        const TensorView& t = linear(*m, L, k);
        const std::string mod = "model.layers." + std::to_string(L) + "." + kLin[k].module;
        ASSERT_EQ(t.dtype, k == 6 ? f.dtype_down : f.dtype) << mod;
        ASSERT_EQ(t.shape, (std::vector<int64_t>{kLin[k].out, kLin[k].in})) << mod;
        bytes += t.nbytes;
        const std::vector<float> w = dequant(t);
        int bad = 0;
        for (int o = 0; o < kLin[k].out; ++o)
          for (int i = 0; i < kLin[k].in; ++i)
            if ((double)w[(size_t)o * kLin[k].in + i] != f.value(L, k, o, i) && ++bad <= 3)
              ADD_FAILURE() << mod << " [" << o << ", " << i << "] loaded " << w[(size_t)o * kLin[k].in + i]
                            << ", format says " << f.value(L, k, o, i);
        // The generator's checksum, from each tool's own dequantization rule.
        EXPECT_EQ(weight_sum(w, kLin[k].out, kLin[k].in), expect.at(mod).get<double>()) << mod;
      }
    EXPECT_LT(bytes, m->weight_bytes());  // linears counted in their engine bytes, plus the rest
  }
}

TEST(QuantHfLoad, ConfigParsingAndRefusals) {
  using quant::hf_quant_config_from_json;
  using nlohmann::json;
  auto gptq = hf_quant_config_from_json(json::parse(R"({"quant_method":"gptq","bits":3,"group_size":-1,
      "desc_act":true,"sym":false,"checkpoint_format":"gptq_v2"})"), "t");
  ASSERT_TRUE(gptq.ok()) << gptq.status().to_string();
  EXPECT_EQ(gptq->bits, 3);
  EXPECT_EQ(gptq->group, 0);
  EXPECT_TRUE(gptq->desc_act);
  EXPECT_FALSE(gptq->zeros_minus_one);
  EXPECT_EQ(quant::describe(*gptq), "gptq 3-bit per-channel asym, act-order (AutoGPTQ v2)");
  // What the writer emits parses back to the same settings.
  auto again = hf_quant_config_from_json(json::parse(quant::hf_quant_config_to_json(*gptq).dump()), "t");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(quant::describe(*again), quant::describe(*gptq));
  quant::HfQuantConfig ct;
  ct.method = quant::HfQuantMethod::kCompressedTensors;
  ct.bits = 8;
  ct.weight_float = true;
  ct.per_channel = false;
  auto ct2 = hf_quant_config_from_json(json::parse(quant::hf_quant_config_to_json(ct).dump()), "t");
  ASSERT_TRUE(ct2.ok()) << ct2.status().to_string();
  EXPECT_TRUE(ct2->weight_float);
  EXPECT_FALSE(ct2->per_channel);
  EXPECT_FALSE(ct2->dynamic_activations);

  const std::pair<const char*, const char*> refused[] = {
      {R"({"quant_method":"bitsandbytes"})", "not supported"},
      {R"({"quant_method":"gptq","bits":5,"group_size":128})", "bits 5"},
      {R"({"quant_method":"awq","bits":4,"group_size":128,"version":"gemv"})", "gemv"},
      {R"({"quant_method":"awq","bits":4,"group_size":128,"zero_point":false})", "zero_point"},
      {R"({"quant_method":"fp8","weight_block_size":[128,128]})", "block-wise"},
      {R"({"quant_method":"compressed-tensors","format":"pack-quantized","config_groups":{}})", "pack-quantized"},
      {R"({"quant_method":"gptq","bits":"4"})", "must be an integer"},
  };
  for (const auto& [text, msg] : refused) {
    auto r = hf_quant_config_from_json(json::parse(text), "cfg");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find(msg), std::string::npos) << r.status().message();
  }
  EXPECT_TRUE(ct.ignores("lm_head") == false);
  ct.ignore = {"lm_head", "re:.*down_proj$"};
  EXPECT_TRUE(ct.ignores("lm_head"));
  EXPECT_TRUE(ct.ignores("model.layers.3.mlp.down_proj"));
  EXPECT_FALSE(ct.ignores("model.layers.3.mlp.up_proj"));
}

}  // namespace
}  // namespace frugal
