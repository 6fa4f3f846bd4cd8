// frugal: an LLM inference engine about the memory–compute tradeoff.
#include <cstdio>

#include "backend/cpu/cpu_isa.h"
#include "cli_util.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"frugal: LLM inference under a memory budget"};
  app.set_version_flag("--version", "frugal 0.1.0");
  app.require_subcommand(1);
  int exit_code = 0;
  frugal::cli::add_run_subcommand(app, exit_code);
  frugal::cli::add_chat_subcommand(app, exit_code);
  frugal::cli::add_info_subcommand(app, exit_code);
  frugal::cli::add_perplexity_subcommand(app, exit_code);
  frugal::cli::add_plan_subcommand(app, exit_code);
  frugal::cli::add_quantize_subcommand(app, exit_code);
  frugal::cli::add_bench_subcommand(app, exit_code);
  frugal::cli::add_eval_subcommand(app, exit_code);
  // FRUGAL_CPU_ISA caps the SIMD target of the CPU kernels (backend/cpu/cpu_isa.h) for every
  // command; a bad value is an error, not a silent fallback.
  if (frugal::Status st = frugal::cpu::set_cpu_isa_from_env(); !st.ok()) return frugal::cli::report(st);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return exit_code;
}
