// `frugal run --device cuda` where it cannot run (CI: no GPU, maybe no CUDA build): one clear
// error line, non-zero exit, no crash, nothing on stdout — before any model is loaded. Bad
// --device / --gpu-memory-utilization values and CPU-only KV flags with cuda are named.
// Skipped on a machine with an NVIDIA device node (there it would really run).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "cli_runner.h"
#include "test_util.h"

namespace frugal {
namespace {

using test::CliResult;
using test::expect_one_line_error;
using test::has_gpu_node;
using test::run_cli;

// The model is never opened on these paths: a missing file shows the flags are checked first.
const std::string kModel = "-m /nonexistent/model.gguf -p hi -n 2";

TEST(DeviceCli, CudaWithoutGpuIsAClearError) {
  if (has_gpu_node()) GTEST_SKIP() << "a GPU is present: --device cuda would run";
  const CliResult r = run_cli("run " + kModel + " --device cuda");
  // Built without CUDA, or built with it on a machine without a device.
  expect_one_line_error(r, "frugal was built without CUDA", "no CUDA device: ");
}

TEST(DeviceCli, BadDeviceFlagsAreNamed) {
  expect_one_line_error(run_cli("run " + kModel + " --device tpu"),
                        "--device must be cpu or cuda, got 'tpu'");
  for (const char* u : {"0", "1.5", "-0.2"})
    expect_one_line_error(
        run_cli("run " + kModel + " --device cuda --gpu-memory-utilization " + u),
        "--gpu-memory-utilization must be in (0, 1]");
  expect_one_line_error(run_cli("run " + kModel + " --device cuda --kv-dtype int8"),
                        "on --device cuda the KV cache is paged bf16");
}

TEST(DeviceCli, ExplicitCpuDeviceStillRuns) {
  const std::string stories = test::shared_data("stories260K.bin");
  if (!test::file_exists(stories)) GTEST_SKIP() << "stories260K.bin not present";
  const CliResult r =
      run_cli("run -m " + stories + " --prompt-ids 1,2,3 -n 3 --temp 0 --device cpu");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
}

}  // namespace
}  // namespace frugal
