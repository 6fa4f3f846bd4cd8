// W8A8 from the CLI on stories260K: `frugal quantize --method smoothquant --calib samples` writes a
// directory that runs with int8 per-token activations by default; `--act-quant none` runs the same
// weights with float activations (a different, here smaller, KL against the float model); a bad
// --act-quant value is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

double mean_kl(const std::string& out) {
  const std::string key = "mean KL(ref || model) ";
  const size_t p = out.find(key);
  return p == std::string::npos ? -1.0 : std::atof(out.c_str() + p + key.size());
}

TEST(W8A8Cli, SmoothQuantDirRunsW8A8UnlessActQuantNone) {
  const std::string stories = test::shared_data("stories260K.bin");
  if (!test::file_exists(stories)) GTEST_SKIP() << "stories260K.bin not present";
  const fs::path dir = fs::temp_directory_path() / ("frugal_w8a8_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const test::CliResult q = test::run_cli("quantize -t 1 " + stories + " " + dir.string() +
                                          " --method smoothquant --calib samples --calib-windows 2 --calib-len 16");
  ASSERT_EQ(q.exit_code, 0) << q.err;
  EXPECT_NE(q.err.find("sampled from the model"), std::string::npos) << q.err;
  const std::string eval = "eval -t 1 -m " + dir.string() + " --ref " + stories + " --sample-windows 2 --ctx 64";
  const test::CliResult a = test::run_cli(eval), f = test::run_cli(eval + " --act-quant none"),
                        t = test::run_cli(eval + " --act-quant token");
  fs::remove_all(dir);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(f.exit_code, 0) << f.err;
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const double kl_a = mean_kl(a.out), kl_f = mean_kl(f.out), kl_t = mean_kl(t.out);
  // Measured: 0.0569 (W8A8) vs 0.0243 (weights only) nats.
  EXPECT_EQ(kl_a, kl_t);
  EXPECT_GT(kl_f, 0.0);
  EXPECT_GT(kl_a, kl_f);
  EXPECT_LT(kl_a, 0.2);
  const test::CliResult bad = test::run_cli(eval + " --act-quant int4");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--act-quant"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace frugal
