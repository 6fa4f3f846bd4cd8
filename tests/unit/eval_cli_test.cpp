// frugal eval and the mixed-precision flags of frugal quantize: bad input fails fast with a clear
// message (and no output file); the budget error names the bytes.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

namespace fs = std::filesystem;

using CliOut = test::CliResult;

CliOut cli(const std::string& args) { return test::run_cli(args); }

TEST(EvalCli, SelfComparisonAndErrors) {
  const std::string stories = test::shared_data("stories260K.bin");
  if (!test::file_exists(stories)) GTEST_SKIP() << "stories260K.bin not present";
  CliOut ok = cli("eval -t 1 -m " + stories + " --ref " + stories + " --sample-windows 1 --ctx 32");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("mean KL(ref || model) 0.000000"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("top-1 agreement       100.00%"), std::string::npos) << ok.out;
  CliOut noref = cli("eval -m " + stories + " --sample-windows 1 --ctx 32");
  EXPECT_EQ(noref.exit_code, 1);
  EXPECT_NE(noref.err.find("--ref"), std::string::npos) << noref.err;
  CliOut notext = cli("eval -m " + stories + " --ref " + stories + " -f x.txt --sample-windows 1");
  EXPECT_EQ(notext.exit_code, 1);
  EXPECT_NE(notext.err.find("exactly one of"), std::string::npos) << notext.err;
  CliOut badrow = cli("eval --table -m " + stories + " --sample-windows 1 --rows int4-rtn,nope");
  EXPECT_EQ(badrow.exit_code, 1);
  EXPECT_NE(badrow.err.find("unknown table row 'nope'"), std::string::npos) << badrow.err;
}

TEST(EvalCli, MixedPrecisionFlagErrors) {
  if (!test::file_exists(test::default_model_path())) GTEST_SKIP() << "default model not fetched";
  const std::string m = test::default_model_path();
  const fs::path out = fs::temp_directory_path() / ("frugal_mp_" + std::to_string(::getpid()) + ".gguf");
  const std::string base = "quantize " + m + " " + out.string() + " --method rtn --bits 4 --group 64 ";
  CliOut small = cli(base + "--budget 1M");
  EXPECT_EQ(small.exit_code, 1);
  EXPECT_NE(small.err.find("budget 1048576 bytes is below the smallest choice"), std::string::npos) << small.err;
  CliOut keep = cli(base + "--keep blk.0.*");
  EXPECT_EQ(keep.exit_code, 1);
  EXPECT_NE(keep.err.find("PRECISION:PATTERN"), std::string::npos) << keep.err;
  CliOut typo = cli(base + "--keep f16:blk.*.atn_q");
  EXPECT_EQ(typo.exit_code, 1);
  EXPECT_NE(typo.err.find("matches no tensor"), std::string::npos) << typo.err;
  CliOut bad_group = cli(base + "--keep int4-g128:blk.0.attn_q");
  EXPECT_EQ(bad_group.exit_code, 1);
  EXPECT_NE(bad_group.err.find("blk.0.attn_q as int4-g128"), std::string::npos) << bad_group.err;
  CliOut nofile = cli(base + "--policy /nonexistent/policy.txt");
  EXPECT_EQ(nofile.exit_code, 1);
  EXPECT_NE(nofile.err.find("cannot read policy file"), std::string::npos) << nofile.err;
  fs::remove(out);
}

}  // namespace
}  // namespace frugal
