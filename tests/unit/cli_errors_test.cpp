// Bad input through the real CLI binary: each case must fail with one clear line on stderr that
// names the problem, a non-zero exit code, no crash (no signal) and nothing on stdout.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "test_models.h"
#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

using test::CliResult;
using test::run_cli;
using test::slurp;

void expect_clean_failure(const CliResult& r, const std::string& must_contain) {
  EXPECT_FALSE(r.signaled) << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "") << "stdout must stay empty on failure";
  EXPECT_NE(r.err.find(must_contain), std::string::npos)
      << "stderr should mention '" << must_contain << "', got: " << r.err;
  // one line, prefixed
  EXPECT_EQ(r.err.rfind("frugal: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

class CliErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("frugal_bad_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
    return path(name);
  }
  // A one-layer copy of the default model, optionally dropping or replacing tensors.
  std::string small_model(const std::string& name, const std::string& drop = "",
                          const std::string& swap_from = "", const std::string& swap_to = "") {
    test::TruncateOptions o;
    o.drop = drop;
    o.swap_from = swap_from;
    o.swap_to = swap_to;
    test::write_truncated_gguf(test::default_model_path(), path(name), o);
    return path(name);
  }
  fs::path dir_;
};

TEST_F(CliErrors, MissingModelPath) {
  expect_clean_failure(run_cli("run -m " + path("nope.gguf") + " -p hi"), "nope.gguf");
}

TEST_F(CliErrors, WrongMagic) {
  const std::string p = write("bad.gguf", std::string("GGML") + std::string(60, '\0'));
  expect_clean_failure(run_cli("run -m " + p + " -p hi"), "bad.gguf");
}

TEST_F(CliErrors, UnknownVersion) {
  std::string b = "GGUF";
  b += std::string("\x63\0\0\0", 4);  // version 99
  b += std::string(16, '\0');
  expect_clean_failure(run_cli("info " + write("v99.gguf", b)), "version");
}

TEST_F(CliErrors, TruncatedFile) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const std::string all = slurp(test::default_model_path());
  // Cut inside the metadata, and inside the tensor data.
  expect_clean_failure(run_cli("info " + write("trunc_meta.gguf", all.substr(0, 5000))),
                       "trunc_meta.gguf");
  expect_clean_failure(run_cli("info " + write("trunc_data.gguf", all.substr(0, all.size() / 2))),
                       "trunc_data.gguf");
}

TEST_F(CliErrors, MissingTensor) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const std::string p = small_model("missing.gguf", "blk.0.ffn_up.weight");
  expect_clean_failure(run_cli("run -m " + p + " -p hi"), "blk.0.ffn_up.weight");
}

TEST_F(CliErrors, ShapeMismatch) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const std::string p = small_model("shape.gguf", "", "blk.0.attn_q.weight", "blk.0.attn_k.weight");
  const CliResult r = run_cli("run -m " + p + " -p hi");
  expect_clean_failure(r, "blk.0.attn_k.weight");
  EXPECT_NE(r.err.find("shape"), std::string::npos) << r.err;
}

TEST_F(CliErrors, SmallModelRuns) {
  // The one-layer copy is a valid model: guards the two tests above against passing by accident.
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const CliResult r = run_cli("run -m " + small_model("ok.gguf") + " -p hi -n 3 --temp 0");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
}

TEST_F(CliErrors, EmptyPrompt) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  expect_clean_failure(run_cli("run -m " + test::default_model_path() + " -p ''"), "prompt");
}

TEST_F(CliErrors, PromptLongerThanContext) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  expect_clean_failure(
      run_cli("run -m " + test::default_model_path() +
              " -c 8 -p 'one two three four five six seven eight nine ten eleven twelve'"),
      "context");
}

TEST_F(CliErrors, ContextBeyondModelMaximum) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  expect_clean_failure(run_cli("run -m " + test::default_model_path() + " -c 100000 -p hi"),
                       "maximum");
}

TEST_F(CliErrors, BadSamplerSettings) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  expect_clean_failure(run_cli("run -m " + test::default_model_path() + " -p hi --top-p 0"),
                       "top-p");
}

TEST_F(CliErrors, PerplexityTextTooShort) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const std::string p = write("short.txt", "just a few words");
  expect_clean_failure(
      run_cli("perplexity -m " + test::default_model_path() + " -f " + p + " --ctx 64"),
      "fewer than one window");
}


// Successful runs: stdout carries only the generated text; stderr the statistics.
TEST(CliRun, SameSeedSameTextDifferentSeedDiffers) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const std::string base = "run -m " + test::default_model_path() +
                           " -p 'Once upon a time' -n 24 --temp 1.0 --ignore-eos --seed ";
  const CliResult a = run_cli(base + "7"), b = run_cli(base + "7"), c = run_cli(base + "8");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  for (const char* s : {"prompt", "decode", "tok/s", "peak RSS"})
    EXPECT_NE(a.err.find(s), std::string::npos) << s << " missing from stderr: " << a.err;
  EXPECT_EQ(a.out.find("tok/s"), std::string::npos) << "statistics must not go to stdout";
}

TEST(CliRun, GreedyChatAnswers) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const CliResult r = run_cli("run -m " + test::default_model_path() +
                              " --chat -p 'What is the capital of France?' -n 16 --temp 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Paris"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("<|im_end|>"), std::string::npos) << "generation stops at <|im_end|>";
}

TEST(CliInfo, DescribesTheDefaultModel) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model missing";
  const CliResult r = run_cli("info " + test::default_model_path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s : {"GQA, 9 query heads, 3 KV heads", "Q4_1", "Q8_0", "F32",
                        "KV per token", "46080 bytes", "layers:       30"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << " missing from: " << r.out;
}

}  // namespace
}  // namespace frugal
