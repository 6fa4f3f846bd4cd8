// Presets reproduce the published parameter totals; exact totals worked out by hand from the
// published config.json dims (arithmetic in the comments); lookup and suggestions.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "model/config.h"
#include "planner/model_import.h"
#include "planner/presets.h"

namespace frugal::planner {
namespace {

ModelSpec preset(const std::string& name) {
  Result<ModelSpec> r = find_preset(name);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : ModelSpec{};
}

// Published totals (model cards / papers), typed here independently of presets.cpp.
TEST(PlannerPresets, ParamTotalsWithinHalfPercentOfPublished) {
  const struct { const char* name; double published; } kPublished[] = {
      {"llama-2-7b", 6.74e9},     {"llama-2-13b", 13.02e9},   {"llama-2-70b", 68.98e9},
      {"llama-3.1-8b", 8.03e9},   {"llama-3.1-70b", 70.55e9}, {"llama-3.1-405b", 405.85e9},
      {"mistral-7b", 7.24e9},     {"mixtral-8x7b", 46.70e9},  {"falcon-7b", 6.92e9},
      {"falcon-40b", 41.30e9},    {"starcoder-15b", 15.5e9},  {"qwen2.5-7b", 7.61e9},
      {"gemma-2-9b", 9.24e9},     {"smollm2-135m", 134.5e6},  {"smollm2-1.7b", 1.71e9},
      {"llama-3.2-1b", 1.24e9},
  };
  for (const auto& p : kPublished) {
    const ParamCounts c = count_params(preset(p.name));
    EXPECT_LT(std::abs((double)c.total / p.published - 1.0), 0.005)
        << p.name << ": " << c.total << " vs " << p.published;
  }
  EXPECT_EQ(presets().size(), sizeof(kPublished) / sizeof(kPublished[0]));
}

TEST(PlannerPresets, ExactTotalsByHand) {
  // Llama-2-7B: embed + head 2*32000*4096 = 262,144,000; per layer 4*4096^2 + 3*4096*11008 +
  // 2*4096 = 202,383,360; x32 = 6,476,267,520; + final norm 4096.
  EXPECT_EQ(count_params(preset("llama-2-7b")).total, 6738415616);
  // Llama-3.1-8B: 2*128256*4096 = 1,050,673,152; per layer 2*4096^2 + 2*4096*1024 +
  // 3*4096*14336 + 8192 = 218,112,000; x32 = 6,979,584,000; + 4096.
  EXPECT_EQ(count_params(preset("llama-3.1-8b")).total, 8030261248);
  // Llama-3.1-405B: 2*128256*16384 = 4,202,692,608; per layer 2*16384^2 + 2*16384*1024 +
  // 3*16384*53248 + 32768 = 3,187,703,808; x126 = 401,650,679,808; + 16384.
  EXPECT_EQ(count_params(preset("llama-3.1-405b")).total, 405853388800);
  // SmolLM2-135M (tied): 49152*576 = 28,311,552; per layer 2*576^2 + 2*576*192 + 3*576*1536 +
  // 1152 = 3,540,096; x30 = 106,202,880; + 576.
  EXPECT_EQ(count_params(preset("smollm2-135m")).total, 134515008);
  // Mixtral-8x7B: per layer 2*4096^2 + 2*4096*1024 + 8*3*4096*14336 + router 4096*8 + 8192 =
  // 1,451,270,144; x32 + 2*32000*4096 + 4096. Active: 2 of 8 experts -> per layer 394,305,536.
  const ParamCounts mix = count_params(preset("mixtral-8x7b"));
  EXPECT_EQ(mix.total, 46702792704);
  EXPECT_EQ(mix.active, 12879925248);  // published 12.88B active
  // Gemma-2-9B (tied, head_dim 256): q/o 3584*4096 each, k/v 3584*2048 each, 3*3584*14336,
  // 4 norms: per layer 198,195,200; x42 = 8,324,198,400; + 256000*3584 + 3584.
  EXPECT_EQ(count_params(preset("gemma-2-9b")).total, 9241705984);
  // Qwen2.5-7B: per layer 2*3584^2 + 2*3584*512 + QKV bias (3584 + 2*512) + 3*3584*18944 +
  // 7168 = 233,057,792; x28 = 6,525,618,176; + 2*152064*3584 + 3584.
  EXPECT_EQ(count_params(preset("qwen2.5-7b")).total, 7615616512);
  // Falcon-7B (tied, parallel block, one LayerNorm w+b): qkv 4544*(71+2)*64 = 21,229,568,
  // dense 4544^2, MLP 2*4544*18176, LN 2*4544: per layer 207,070,080; x32 + 65024*4544 + 9088.
  EXPECT_EQ(count_params(preset("falcon-7b")).total, 6921720704);
  // StarCoder (GPT-BigCode, tied, MQA, biases, learned positions): per layer c_attn
  // 6144*6400 + 6400, c_proj 6144^2 + 6144, fc 6144*24576 + 24576, proj 24576*6144 + 6144,
  // 2 LN 4*6144 = 379,128,064; x40 + wte 49152*6144 + wpe 8192*6144 + ln_f 12288.
  EXPECT_EQ(count_params(preset("starcoder-15b")).total, 15517456384);
}

TEST(PlannerPresets, FalconCheckpointsStoreTheHeadSeparately) {
  // Falcon checkpoints list lm_head.weight next to the (tied) embedding: counted untied the
  // totals are 7.22B and 41.84B, the figures some listings quote.
  ModelSpec f7 = preset("falcon-7b"), f40 = preset("falcon-40b");
  f7.tied_embeddings = f40.tied_embeddings = false;
  EXPECT_EQ(count_params(f7).total, 7217189760);
  EXPECT_LT(std::abs((double)count_params(f40).total / 41.84e9 - 1), 0.005);
}

TEST(PlannerPresets, LlamaPresetsMatchModelConfigParamCount) {
  // ModelConfig::param_count (model/config.cpp) is an independent implementation for Llama.
  for (const char* name : {"llama-2-7b", "llama-3.1-8b", "smollm2-135m", "smollm2-1.7b"}) {
    const ModelSpec m = preset(name);
    ModelConfig c;
    c.vocab_size = m.vocab_size;
    c.dim = m.hidden;
    c.hidden_dim = m.ffn_dim;
    c.n_layers = m.n_layers;
    c.n_heads = m.n_heads;
    c.n_kv_heads = m.n_kv_heads;
    c.max_seq_len = m.max_context;
    c.tied_embeddings = m.tied_embeddings;
    EXPECT_EQ(count_params(m).total, c.param_count()) << name;
    EXPECT_EQ(count_params(spec_from_model_config(c)).total, c.param_count()) << name;
  }
}

TEST(PlannerPresets, EveryPresetValidates) {
  for (const PresetInfo& p : presets()) {
    const ModelSpec m = p.make();
    EXPECT_TRUE(m.validate().ok()) << p.name << ": " << m.validate().message();
    EXPECT_EQ(m.name, p.name);
    EXPECT_GT(m.max_context, 0) << p.name;
  }
}

TEST(PlannerPresets, LookupSpellings) {
  EXPECT_EQ(preset("Llama-2-7B").name, "llama-2-7b");
  EXPECT_EQ(preset("llama2_7b").name, "llama-2-7b");
  EXPECT_EQ(preset("meta-llama/Llama-3.1-70B").name, "llama-3.1-70b");
  EXPECT_EQ(preset("llama-2-7b-hf").name, "llama-2-7b");
  EXPECT_EQ(preset("Mistral-7B-v0.1").name, "mistral-7b");
  EXPECT_EQ(find_preset_info("llama-2-7"), nullptr);
}

TEST(PlannerPresets, UnknownNameSuggestsClosest) {
  Result<ModelSpec> r = find_preset("lama-2-70");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("did you mean 'llama-2-70b'"), std::string::npos) << r.status().message();
  const std::vector<std::string> near = closest_preset_names("mixtral-8x22b");
  ASSERT_FALSE(near.empty());
  EXPECT_EQ(near[0], "mixtral-8x7b");
  EXPECT_TRUE(closest_preset_names("completely-different-thing").empty());
  Result<ModelSpec> none = find_preset("zzzz");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message().find("did you mean"), std::string::npos);
}

TEST(PlannerPresets, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0u);
  EXPECT_EQ(edit_distance("abc", ""), 3u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("lama-2-70", "llama-2-70b"), 2u);
}

}  // namespace
}  // namespace frugal::planner
