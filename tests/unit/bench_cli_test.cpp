// frugal bench through the real CLI binary: argument errors fail cleanly (one line on stderr,
// non-zero exit, nothing on stdout, no signal), and a tiny end-to-end run on dummy weights
// produces a JSON report whose numbers are consistent with each other.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "backend/cpu/ops.h"
#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

using test::CliResult;

CliResult run_bench(const std::string& args) { return test::run_cli("bench " + args); }

void expect_clean_failure(const CliResult& r, const std::string& must_contain) {
  EXPECT_FALSE(r.signaled) << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "") << "stdout must stay empty on failure";
  EXPECT_NE(r.err.find(must_contain), std::string::npos)
      << "stderr should mention '" << must_contain << "', got: " << r.err;
  EXPECT_EQ(r.err.rfind("frugal: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(BenchCli, ArgumentErrors) {
  expect_clean_failure(run_bench(""), "exactly one of -m MODEL and --dummy");
  expect_clean_failure(run_bench("-m x.gguf --dummy tiny"), "exactly one of");
  expect_clean_failure(run_bench("--dummy tiny --formats q9_9"), "unknown weight format 'q9_9'");
  expect_clean_failure(run_bench("--dummy tiny --formats i8"), "unknown weight format 'i8'");
  expect_clean_failure(run_bench("--dummy tiny --formats file"), "'file' needs -m");
  expect_clean_failure(run_bench("--dummy tiny -t 0"), "not a thread count");
  expect_clean_failure(run_bench("--dummy tiny -t 1,x"), "'x' is not a thread count");
  expect_clean_failure(run_bench("--dummy tiny -p 0 -n 0"), "not both 0");
  expect_clean_failure(run_bench("--dummy tiny --reps 0"), "--reps");
  expect_clean_failure(run_bench("--dummy tiny -p 100000"), "context");
  expect_clean_failure(run_bench("--dummy lama-3.1-8b"), "did you mean 'llama-3.1-8b'");
  expect_clean_failure(run_bench("--dummy mixtral-8x7b"), "not a Llama-family decoder");
  expect_clean_failure(run_bench("-m /nonexistent/model.gguf"), "not found");
  expect_clean_failure(run_bench("-m x.gguf --dummy-layers 2"), "--dummy only");
}

// An 8B model in F32 (32 GB of weights) is refused before anything is allocated, naming the
// bytes and the formats that fit.
TEST(BenchCli, RefusesFormatsOverTheMemoryLimit) {
  const CliResult r = run_bench("--dummy llama-3.1-8b --formats f32 --mem-limit 24 --bw-mib 8");
  expect_clean_failure(r, "f32 needs 32.");
  EXPECT_NE(r.err.find("over the memory limit"), std::string::npos) << r.err;
}

// A whole run on the tiny dummy architecture: two formats (one skipped because its group does
// not divide the rows), two thread counts. Fast: 2 layers of dim 128.
TEST(BenchCli, TinyDummyEndToEndJson) {
  // i4_g64 (H1's INT4 layout) joins when the matmul supports it.
  const bool g64 = cpu::matmul_supports(DType::I4_G64);
  const CliResult r = run_bench(
      std::string("--dummy tiny --formats q8_0,f32") + (g64 ? ",i4_g64" : "") +
      " --dummy-layers 3 -p 40 -n 6 -t 1,2 --reps 2 --bw-mib 8 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("frugal bench: q8_0, 2 thread(s): tg run 2/2"), std::string::npos) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_prompt"], 40);
  EXPECT_EQ(j["n_gen"], 6);
  ASSERT_EQ(j["bandwidth"].size(), 2u);
  for (const auto& b : j["bandwidth"]) EXPECT_GT(b["read_gbs"].get<double>(), 0.0);
  // i4_g64 fits dim 128 / hidden 256: every format runs, 2 thread counts each.
  ASSERT_EQ(j["rows"].size(), g64 ? 6u : 4u) << r.out;
  for (const auto& row : j["rows"]) {
    SCOPED_TRACE(row.dump());
    EXPECT_EQ(row["pp_tok_s"]["runs"].size(), 2u);
    EXPECT_EQ(row["tg_tok_s"]["runs"].size(), 2u);
    EXPECT_GT(row["pp_tok_s"]["mean"].get<double>(), 0.0);
    EXPECT_GT(row["tg_tok_s"]["mean"].get<double>(), 0.0);
    // The probes: one just before the first timed tg run and one after every run; the row's
    // bandwidth is the mean of each run's bracket, each run's ratio is its tok/s over its own
    // roofline, and the row's ratio is their median (2 runs: the mean of the two).
    const std::vector<double> probes = row["tg_probes_gbs"].get<std::vector<double>>();
    const std::vector<double> runs = row["tg_tok_s"]["runs"].get<std::vector<double>>();
    const std::vector<double> ratios = row["tg_over_roofline_runs"].get<std::vector<double>>();
    ASSERT_EQ(probes.size(), 3u);
    ASSERT_EQ(ratios.size(), 2u);
    for (double p : probes) EXPECT_GT(p, 0.0);
    EXPECT_EQ(row["read_gbs_before"].get<double>(), probes.front());
    EXPECT_EQ(row["read_gbs_after"].get<double>(), probes.back());
    const double bytes = row["decode_bytes_per_token"].get<double>();
    double bw_sum = 0;
    for (size_t i = 0; i < 2; ++i) {
      const double bw = 0.5 * (probes[i] + probes[i + 1]);
      bw_sum += bw;
      EXPECT_NEAR(ratios[i], runs[i] * bytes / (bw * 1e9), 1e-9 * ratios[i]);
    }
    EXPECT_NEAR(row["read_gbs"].get<double>(), bw_sum / 2, 1e-9);
    EXPECT_NEAR(row["tg_over_roofline"].get<double>(), 0.5 * (ratios[0] + ratios[1]), 1e-9);
    // roofline = bandwidth / bytes per step
    const double roof = row["read_gbs"].get<double>() * 1e9 / bytes;
    EXPECT_NEAR(row["tg_roofline_tok_s"].get<double>(), roof, roof * 1e-9);
    // bytes per step >= the weights (vocab 512 x 128 tied embedding read as the LM head)
    EXPECT_GE(row["decode_bytes_per_token"].get<double>(), row["bytes"].get<double>());
  }
  EXPECT_EQ(j["rows"][0]["format"], "q8_0");
  EXPECT_EQ(j["rows"][2]["format"], "f32");
  // bits per weight: q8_0 is 8.5 (plus float32 norms); f32 is 32 plus norms.
  EXPECT_NEAR(j["rows"][0]["bpw"].get<double>(), 8.5, 0.2);
  EXPECT_NEAR(j["rows"][2]["bpw"].get<double>(), 32.0, 0.5);
  EXPECT_TRUE(j["skipped"].empty());
}

// A format whose group does not divide the rows is skipped with its reason, the rest runs.
TEST(BenchCli, SkipsFormatsWhoseGroupDoesNotDivideRows) {
  if (!cpu::matmul_supports(DType::I4_G128)) GTEST_SKIP() << "no I4_G128 matmul in this build";
  // tiny has dim 128: g128 divides it; smollm2-135m has dim 576, which 128 does not divide.
  const CliResult r = run_bench(
      "--dummy smollm2-135m --dummy-layers 1 --formats i4_g128,q8_0 -p 8 -n 2 -t 1 --reps 1 "
      "--bw-mib 8 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("skipping i4_g128"), std::string::npos) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["skipped"].size(), 1u);
  EXPECT_NE(j["skipped"][0]["reason"].get<std::string>().find("576"), std::string::npos);
  ASSERT_EQ(j["rows"].size(), 1u);
  EXPECT_EQ(j["rows"][0]["format"], "q8_0");
}

}  // namespace
}  // namespace frugal
