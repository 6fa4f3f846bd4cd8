// The planner's memory prediction for the local model, computed from its dimensions and chosen
// formats (not from the file's bytes), must match what the engine actually holds within 1%.
#include <gtest/gtest.h>

#include "model/kv_cache.h"
#include "model/model.h"
#include "planner/hardware.h"
#include "planner/memory_model.h"
#include "planner/model_import.h"
#include "test_util.h"

namespace frugal {
namespace {

TEST(PlannerVsEngine, WeightAndKvBytesOfTheDefaultModel) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  Result<Model> m = load_model(test::default_model_path());
  ASSERT_TRUE(m.ok()) << m.status().to_string();

  planner::PlanContext ctx;
  ctx.model = planner::spec_from_model_config(m->config);
  ctx.device = planner::cpu_hardware(24, 17, 0.1, "test");  // memory sizes need no speeds
  planner::Deployment dep;
  dep.weights = planner::WeightFormat::kQ4_1;     // the file's matrices
  dep.embeddings = planner::WeightFormat::kQ8_0;  // its (tied) token embedding
  dep.kv = planner::KvFormat::kF32;               // the engine's contiguous cache
  Result<planner::ShardedWeights> w = planner::shard_weights(ctx, dep);
  ASSERT_TRUE(w.ok()) << w.status().to_string();
  const double predicted = (double)w->total(), measured = (double)m->weight_bytes();
  std::printf("[ planner  ] weights predicted %.0f, engine %.0f bytes (%.3f%%)\n", predicted,
              measured, 100 * (predicted - measured) / measured);
  EXPECT_NEAR(predicted / measured, 1.0, 0.01);

  const int64_t n_ctx = 1000;
  Result<KvCache> kv = KvCache::create(m->config, n_ctx);
  ASSERT_TRUE(kv.ok());
  const uint64_t kv_tok = planner::kv_bytes_per_token(ctx.model, planner::KvFormat::kF32,
                                                      m->config.n_kv_heads, m->config.n_layers);
  EXPECT_NEAR((double)kv_tok * n_ctx / (double)kv->bytes(), 1.0, 0.01);
  EXPECT_EQ(kv_tok, 46080u);  // 2 * 30 layers * 3 heads * 64 * 4 bytes, by hand
}

}  // namespace
}  // namespace frugal
