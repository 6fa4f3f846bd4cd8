// Option search, capacity questions, and `frugal plan` end to end through planner::run_plan.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "planner/plan_command.h"
#include "planner/presets.h"
#include "planner/search.h"

namespace frugal::planner {
namespace {

PlanArgs args70b() {
  PlanArgs a;
  a.model = "llama-2-70b";
  a.gpu = "a100-40gb";
  return a;
}

TEST(PlannerSearch, SeventyBOnOneFortyGigCard) {
  PlanArgs a = args70b();
  a.gpus = 1;
  Result<PlanReport> r = make_plan(a);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_GT(r->n_fit, 0u);
  const PlanOption& best = *r->best();
  // 68.98B weights at 16 bits (138 GB) cannot fit 40 GB; 4-bit (36.6 GB) can, without offload.
  EXPECT_TRUE(weight_format_info(best.dep.weights).layout.bits == 4);
  EXPECT_EQ(best.dep.tp, 1);
  EXPECT_EQ(best.dep.offload_layers, 0);
  for (size_t i = 0; i < r->options.size(); ++i) {
    const PlanOption& o = r->options[i];
    EXPECT_EQ(o.fits, i < r->n_fit);
    if (o.fits) {
      EXPECT_LE(o.mem.total, o.mem.budget);
    }
    if (o.fits && o.dep.weights == WeightFormat::kBF16) {
      EXPECT_GT(o.dep.offload_layers, 0);
    }
  }
  // Ranked by throughput per device, in 5% steps.
  for (size_t i = 1; i < r->n_fit; ++i) EXPECT_GE(r->options[i - 1].score * 1.05, r->options[i].score);
}

TEST(PlannerSearch, FixedChoicesAreRespected) {
  PlanArgs a = args70b();
  a.batch = 16;
  a.context = 4096;
  a.kv_dtype = "f16";
  a.weights = "int4-gptq";
  a.tp = 2;
  Result<PlanReport> r = make_plan(a);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_EQ(r->options.size(), 1u);
  EXPECT_EQ(r->options[0].dep.kv, KvFormat::kF16);
  EXPECT_EQ(r->options[0].dep.tp, 2);
  EXPECT_TRUE(r->options[0].fits);
}

TEST(PlannerSearch, MaxBatchAndContextAreTightBounds) {
  PlanContext c;
  c.model = find_preset("llama-3.1-8b").value();
  c.device = find_hardware("l4").value();
  c.host = cpu_hardware(256, 100, 2, "test");
  c.workload.context = 8192;
  Deployment d;
  d.weights = WeightFormat::kInt4Gptq;
  Result<int64_t> b = max_batch(c, d);
  ASSERT_TRUE(b.ok());
  ASSERT_GT(*b, 1);
  PlanContext at = c;
  at.workload.batch = *b;
  EXPECT_TRUE(estimate_memory(at, d)->fits);
  at.workload.batch = *b + 1;
  EXPECT_FALSE(estimate_memory(at, d)->fits);
  Result<int64_t> s = max_context(c, d);
  ASSERT_TRUE(s.ok());
  at = c;
  at.workload.context = *s;
  EXPECT_TRUE(estimate_memory(at, d)->fits);
  at.workload.context = *s + 16;  // the next page
  EXPECT_FALSE(estimate_memory(at, d)->fits);
  d.weights = WeightFormat::kF32;  // 32 GB of weights on a 24 GB card: nothing fits
  EXPECT_EQ(max_batch(c, d).value(), 0);
  EXPECT_EQ(max_context(c, d).value(), 0);
}

TEST(PlannerSearch, EveryPresetPlansOnH100) {
  for (const PresetInfo& p : presets()) {
    PlanArgs a;
    a.model = p.name;
    a.gpu = "h100-sxm";
    Result<PlanReport> r = make_plan(a);
    ASSERT_TRUE(r.ok()) << p.name << ": " << r.status().message();
    EXPECT_FALSE(r->options.empty()) << p.name;
  }
}

TEST(PlannerCommand, JsonTextAndSvg) {
  PlanArgs a = args70b();
  a.json = true;
  a.max_batch = true;
  a.max_context = true;
  a.explain = true;
  Result<std::string> out = run_plan(a);
  ASSERT_TRUE(out.ok()) << out.status().message();
  const nlohmann::json j = nlohmann::json::parse(*out, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["model"]["params"]["total"].get<int64_t>(), 68976648192);
  EXPECT_EQ(j["hardware"]["memory_gb"].get<double>(), 40);
  EXPECT_GT(j["fitting_options"].get<int>(), 0);
  EXPECT_TRUE(j["options"][0]["fits"].get<bool>());
  EXPECT_TRUE(j.contains("max_batch"));
  EXPECT_FALSE(j["explain"].empty());

  a.json = false;
  a.svg = (std::filesystem::temp_directory_path() / "planner_test.svg").string();
  out = run_plan(a);
  ASSERT_TRUE(out.ok()) << out.status().message();
  EXPECT_NE(out->find("best: "), std::string::npos);
  EXPECT_NE(out->find("explain (best option)"), std::string::npos);
  EXPECT_NE(out->find("KV bytes / token / device"), std::string::npos);
  std::ifstream f(a.svg);
  std::stringstream ss;
  ss << f.rdbuf();
  EXPECT_EQ(ss.str().rfind("<svg", 0), 0u);
  EXPECT_NE(ss.str().find("</svg>"), std::string::npos);
  std::filesystem::remove(a.svg);

  PlanArgs list;
  list.list_presets = true;
  EXPECT_NE(run_plan(list)->find("llama-3.1-405b"), std::string::npos);
}

TEST(PlannerCommand, BadInputIsAClearError) {
  auto err = [](PlanArgs a) {
    Result<std::string> r = run_plan(a);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.status().message();
  };
  PlanArgs a = args70b();
  a.model = "lama-2-70";
  EXPECT_NE(err(a).find("did you mean 'llama-2-70b'"), std::string::npos);
  a = args70b();
  a.gpu = "";
  EXPECT_NE(err(a).find("--gpu"), std::string::npos);
  a = args70b();
  a.tp = 3;
  a.gpus = 8;
  EXPECT_NE(err(a).find("does not divide"), std::string::npos);
  a = args70b();
  a.kv_dtype = "q2";
  EXPECT_NE(err(a).find("unknown KV format"), std::string::npos);
  a = args70b();
  a.weights = "file";
  EXPECT_NE(err(a).find(".gguf"), std::string::npos);
  a = args70b();
  a.batch = 0;
  EXPECT_NE(err(a).find("batch"), std::string::npos);
  a = args70b();
  a.gpu = "cpu";
  EXPECT_NE(err(a).find("--bandwidth"), std::string::npos);
  a = args70b();
  a.model = "";
  a.dims = "layers=2,hidden=96,heads=5,ffn=10,vocab=10";
  EXPECT_NE(err(a).find("5 heads do not divide hidden size 96"), std::string::npos);
  a = args70b();
  a.mem_util = 1.5;
  EXPECT_FALSE(run_plan(a).ok());
}

TEST(PlannerCommand, CpuWithGivenBandwidth) {
  PlanArgs a;
  a.model = "smollm2-135m";
  a.gpu = "cpu";
  a.bandwidth_gbs = 17;
  a.memory_gb = 24;
  a.tflops = 5;
  Result<PlanReport> r = make_plan(a);
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_GT(r->n_fit, 0u);
  EXPECT_EQ(r->options[0].dep.tp, 1);
  // Decode is memory-bound: tokens/s ~ 17 GB/s / bytes per step.
  const PlanOption& o = r->options[0];
  EXPECT_NEAR(o.time.decode_tok_s, 17e9 / o.time.decode.bytes, 1e-6 * o.time.decode_tok_s);
}

}  // namespace
}  // namespace frugal::planner
