// Whole-model logits and greedy continuations against the independent NumPy float64 reference
// (tests/reference/llama_ref.py; goldens made by tests/reference/make_model_goldens.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "test_util.h"

namespace frugal {
namespace {

using nlohmann::json;

std::vector<float> base64_floats(const std::string& s) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uint8_t> bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    if (c == '=') break;
    const size_t v = kAlphabet.find(c);
    if (v == std::string::npos) continue;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back((uint8_t)(acc >> bits));
    }
  }
  std::vector<float> f(bytes.size() / 4);
  std::memcpy(f.data(), bytes.data(), f.size() * 4);
  return f;
}

double rel_l2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return std::sqrt(num / den);
}

void check_model_golden(const std::string& golden_name) {
  std::ifstream in(test::source_dir() + "/tests/golden/" + golden_name);
  ASSERT_TRUE(in) << golden_name;
  const json g = json::parse(in);
  ASSERT_EQ(g["schema"], "frugal.model_golden.v1");
  const std::string file = g["model"]["file"];
  const std::string path = g["model"].value("shared_data", false)
                               ? test::shared_data(file)
                               : test::source_dir() + "/" + file;
  if (!test::file_exists(path)) GTEST_SKIP() << "model file missing: " << path;

  Result<Model> m = load_model(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const int64_t vocab = m->config.vocab_size;
  ASSERT_EQ(vocab, g["config"]["vocab_size"].get<int64_t>());
  ThreadPool pool(2);

  for (const json& c : g["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const std::vector<int32_t> prompt = c["prompt_ids"].get<std::vector<int32_t>>();
    const int64_t T = (int64_t)prompt.size();

    // The tokenizer must produce the reference's prompt ids from the prompt text.
    if (m->tokenizer && c["prompt_text"].is_string()) {
      EXPECT_EQ(m->tokenizer->encode(c["prompt_text"].get<std::string>(), true, true), prompt);
    }

    // Logits of every prompt position in one batched prefill.
    Result<KvCache> kv = KvCache::create(m->config, T);
    ASSERT_TRUE(kv.ok());
    LlamaRunner runner(*m, pool, 16);  // small batch: exercises multi-pass prefill
    std::vector<float> logits(T * vocab);
    ASSERT_TRUE(runner.forward(prompt, 0, *kv, logits, true).ok());

    const std::vector<float> last = base64_floats(c["last_logits"]);
    ASSERT_EQ((int64_t)last.size(), vocab);
    const double err_last = rel_l2(&logits[(T - 1) * vocab], last.data(), vocab);
    EXPECT_LT(err_last, 1e-3);
    std::printf("[ golden   ] %s/%s: last-position rel L2 %.2e\n", golden_name.c_str(),
                c["name"].get<std::string>().c_str(), err_last);

    if (c.contains("all_logits")) {
      const std::vector<float> all = base64_floats(c["all_logits"]);
      ASSERT_EQ((int64_t)all.size(), T * vocab);
      for (int64_t t = 0; t < T; ++t)
        EXPECT_LT(rel_l2(&logits[t * vocab], &all[t * vocab], vocab), 1e-3) << "position " << t;
    }
    // Every position: top-1 id, its logit and the logsumexp.
    const json& pos = c["positions"];
    for (int64_t t = 0; t < T; ++t) {
      const float* row = &logits[t * vocab];
      int32_t best = 0;
      double mx = row[0];
      for (int64_t v = 1; v < vocab; ++v)
        if (row[v] > row[best]) best = (int32_t)v;
      mx = row[best];
      double se = 0;
      for (int64_t v = 0; v < vocab; ++v) se += std::exp(row[v] - mx);
      const double lse = mx + std::log(se);
      const double ref_top = pos["top5_logits"][t][0];
      const double ref_second = pos["top5_logits"][t][1];
      if (ref_top - ref_second > 1e-2) EXPECT_EQ(best, pos["top5_ids"][t][0].get<int32_t>()) << t;
      EXPECT_NEAR(row[best], ref_top, 1e-3 * std::max(1.0, std::fabs(ref_top))) << t;
      EXPECT_NEAR(lse, pos["logsumexp"][t].get<double>(), 1e-3) << t;
    }

    // 32 greedy tokens, through the generation loop (prefill + single-token decode).
    GenerateParams gp;
    gp.max_new_tokens = g["greedy_tokens"];
    gp.ignore_eos = true;
    gp.sampler.temperature = 0;
    std::vector<int32_t> out;
    Result<GenerateStats> st = generate(*m, pool, prompt, gp, [&](int32_t t) {
      out.push_back(t);
      return true;
    });
    ASSERT_TRUE(st.ok()) << st.status().to_string();
    EXPECT_EQ(out, c["greedy"]["ids"].get<std::vector<int32_t>>());
  }
}

TEST(ModelGolden, SmolLM2Q4_1MatchesNumpyReference) {
  check_model_golden("model_smollm2_135m_q4_1.json");
}

TEST(ModelGolden, Stories260KMatchesNumpyReference) {
  check_model_golden("stories260k_model.json");
}

}  // namespace
}  // namespace frugal
