// `frugal bench --device cuda` and `frugal perplexity --device cuda` argument handling through
// the real CLI (no GPU needed): flags of the other device are named, -p lists need cuda, bad
// --device / --gpu-memory-utilization values are errors, and without a GPU (or without a CUDA
// build) --device cuda is one clear error line before any model is loaded. Each failure: exit
// code non-zero, nothing on stdout, one "frugal: error: " line.
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

TEST(DeviceBenchCli, FlagsOfTheOtherDeviceAreNamed) {
  expect_one_line_error(run_cli("bench --device cuda --dummy llama-3.1-8b --formats q4_0"),
                        "--formats applies to --device cpu");
  expect_one_line_error(run_cli("bench --device cuda --dummy llama-3.1-8b -t 2 --bw-mib 8"),
                        "--threads, --bw-mib apply to --device cpu");
  expect_one_line_error(run_cli("bench --dummy tiny -b 8"), "--batch applies to --device cuda");
  expect_one_line_error(run_cli("bench --dummy tiny --ctx 1024 --gpu-memory-utilization 0.5"),
                        "--ctx, --gpu-memory-utilization apply to --device cuda");
  expect_one_line_error(run_cli("bench --dummy tiny -p 16,32"),
                        "-p: one prompt length on --device cpu");
  expect_one_line_error(run_cli("bench --dummy tiny -p 16 --device tpu"),
                        "--device must be cpu or cuda, got 'tpu'");
  expect_one_line_error(run_cli("bench --device cuda --dummy tiny --gpu-memory-utilization 1.5"),
                        "--gpu-memory-utilization must be in (0, 1]");
  expect_one_line_error(run_cli("bench --device cuda"), "exactly one of -m MODEL and --dummy");
}

TEST(DeviceBenchCli, PerplexityFlagsOfTheOtherDeviceAreNamed) {
  const std::string base = "perplexity -m /nonexistent/model.gguf -f /nonexistent/text.txt ";
  expect_one_line_error(run_cli(base + "--device cuda -t 4"), "-t apply to --device cpu");
  expect_one_line_error(run_cli(base + "--device cuda --kv-dtype int8"),
                        "on --device cuda the KV cache is paged bf16");
  expect_one_line_error(run_cli(base + "--device gpu"), "--device must be cpu or cuda, got 'gpu'");
}

TEST(DeviceBenchCli, CudaWithoutGpuIsAClearError) {
  if (has_gpu_node()) GTEST_SKIP() << "a GPU is present: --device cuda would run";
  // Built without CUDA, or built with it on a machine without a device; the model and text
  // files are never opened.
  expect_one_line_error(run_cli("bench --device cuda --dummy llama-3.1-8b -p 512,2048 -b 1,8"),
                        "frugal was built without CUDA", "no CUDA device: ");
  expect_one_line_error(
      run_cli("perplexity -m /nonexistent/model.gguf -f /nonexistent/t.txt --device cuda"),
      "frugal was built without CUDA", "no CUDA device: ");
}

}  // namespace
}  // namespace frugal
