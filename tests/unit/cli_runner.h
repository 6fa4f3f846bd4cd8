// Running the real `frugal` binary from a test: arguments through sh, stdin from a string (or
// /dev/null), stdout and stderr captured, the exit code and whether a signal killed it.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

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

}  // namespace frugal::test
