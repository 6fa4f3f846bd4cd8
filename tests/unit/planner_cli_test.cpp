// `frugal plan` through the real CLI binary: output on success, one clear stderr line and a
// non-zero exit code on bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"
#include "test_util.h"

namespace frugal::planner {
namespace {

namespace fs = std::filesystem;

using CliRun = test::CliResult;

CliRun plan(const std::string& args) { return test::run_cli("plan " + args); }

TEST(PlannerCli, SeventyBOnA100Json) {
  const CliRun r = plan("-m llama-2-70b --gpu a100-40gb --batch 16 --context 4096 --kv-dtype f16 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["workload"]["batch"].get<int>(), 16);
  for (const auto& o : j["options"]) EXPECT_EQ(o["kv"].get<std::string>(), "f16");
  EXPECT_EQ(j["options"][0]["kv_cache"]["bytes_per_token_per_device"].get<int64_t>() % (2 * 8 * 128 * 2), 0);
}

TEST(PlannerCli, TableAndLists) {
  CliRun r = plan("-m llama-2-70b --gpu a100-40gb");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("best: int4"), std::string::npos) << r.out;
  r = plan("--list-hardware");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("mi300x"), std::string::npos);
}

TEST(PlannerCli, BadInputExitsNonZeroWithOneLine) {
  const struct { const char* args; const char* says; } kCases[] = {
      {"-m lama-2-70 --gpu a100-40gb", "did you mean 'llama-2-70b'"},
      {"-m llama-2-70b --gpu a1000", "unknown hardware"},
      {"-m llama-2-70b --gpu a100-40gb --tp 3", "does not divide"},
      {"-m llama-2-70b", "--gpu is required"},
      {"-m llama-2-70b --gpu cpu", "--bandwidth"},
      {"--dims layers=2,hidden=96,heads=0,ffn=8,vocab=8 --gpu l4", "heads must be positive"},
      {"-m /no/such/config.json --gpu l4", "no such file"},
  };
  for (const auto& c : kCases) {
    const CliRun r = plan(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.args;
    EXPECT_EQ(r.out, "") << c.args;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << " -> " << r.err;
  }
}

}  // namespace
}  // namespace frugal::planner
