// frugal quantize: every bad input fails fast with a message and leaves no output file; a quick
// RTN run writes a GGUF that loads back with native ggml blocks.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "model/model.h"
#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

using CliRun = test::CliResult;

CliRun quantize_cli(const std::string& args) { return test::run_cli("quantize " + args); }

TEST(QuantCli, BadInputFailsEarlyWithoutOutput) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model not fetched";
  const std::string m = test::default_model_path();
  const fs::path dir = fs::temp_directory_path() / ("frugal_qcli_out_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "o.gguf").string();
  const std::pair<std::string, std::string> cases[] = {
      {"--method foo", "unknown method"},
      {"--bits 5", "bits must be"},
      {"--group 128", "does not divide the row length 576"},
      {"--method gptq --group -1", "per-channel or group-wise"},
      {"--method gptq --group 64 --calib /nonexistent/calib.txt", "cannot read calibration text"},
      {"--method awq --group 64 --calib " + test::shared_data("wikitext-2-raw-test.txt"), "evaluation text"},
      {"--method gptq --group 64 --calib-windows 100000", "windows of"},
      {"--sym --asym", "exclude each other"},
  };
  for (const auto& [args, msg] : cases) {
    const CliRun r = quantize_cli(m + " " + out + " " + args);
    EXPECT_EQ(r.exit_code, 1) << args;
    EXPECT_NE(r.err.find(msg), std::string::npos) << args << ": " << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
    EXPECT_FALSE(fs::exists(out + ".tmp")) << args;
  }
  const CliRun r = quantize_cli(m + " /nonexistent_dir/o.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not exist"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(QuantCli, RtnToQ4_0Loads) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model not fetched";
  const fs::path dir = fs::temp_directory_path() / ("frugal_qcli_ok_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "q4_0.gguf").string();
  const CliRun r = quantize_cli(test::default_model_path() + " " + out + " --method rtn --bits 4 --group 32 --sym");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = load_model(out);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->weights.layers[0].wq.dtype, DType::Q4_0);
  EXPECT_EQ(m->weights.layers[29].w_down.dtype, DType::Q4_0);
  EXPECT_EQ(m->weights.token_embd.dtype, DType::Q8_0);  // untouched
  fs::remove_all(dir);
}

}  // namespace
}  // namespace frugal
