// Running the real `frugal` binary from a test: arguments through sh, stdin from a string (or
// /dev/null), stdout and stderr captured, the exit code and whether a signal killed it.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "test_util.h"

namespace frugal::test {

struct CliResult {
  int exit_code = -1;
  bool signaled = false;
  std::string out, err;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// `frugal ARGS`; stdin is `input` ("" reads /dev/null). Files live in a per-process directory:
// ctest runs the tests of one binary as parallel processes.
inline CliResult run_cli(const std::string& args, const std::string& input = "") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("frugal_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string out = (dir / "out.txt").string(), err = (dir / "err.txt").string();
  std::string in = "/dev/null";
  if (!input.empty()) {
    in = (dir / "in.txt").string();
    std::ofstream(in, std::ios::binary) << input;
  }
  const std::string cmd = cli_path() + " " + args + " >" + out + " 2>" + err + " <" + in;
  const int rc = std::system(cmd.c_str());
  CliResult r;
  if (WIFEXITED(rc)) r.exit_code = WEXITSTATUS(rc);
  // system() runs through sh: a child killed by a signal shows up as 128+signal.
  r.signaled = WIFSIGNALED(rc) || (WIFEXITED(rc) && WEXITSTATUS(rc) > 128);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

// A failed command as the CLI reports one: not killed by a signal, exit code non-zero, nothing
// on stdout, one stderr line "frugal: error: ..." that mentions `a` (or `b`).
inline void expect_one_line_error(const CliResult& r, const std::string& a,
                                  const std::string& b = "") {
  EXPECT_FALSE(r.signaled) << r.err;
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
  const bool has = r.err.find(a) != std::string::npos ||
                   (!b.empty() && r.err.find(b) != std::string::npos);
  EXPECT_TRUE(has) << "stderr should mention '" << a << "'" << (b.empty() ? "" : " or '" + b + "'")
                   << ", got: " << r.err;
  EXPECT_EQ(r.err.rfind("frugal: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

// An NVIDIA device node: `--device cuda` would really run here.
inline bool has_gpu_node() { return file_exists("/dev/nvidia0"); }

}  // namespace frugal::test
