// Subcommands of the frugal CLI. Each add_*_subcommand registers its options on `app`; when the
// subcommand runs, its callback stores the process exit code in `exit_code`.
#pragma once

#include <CLI/CLI.hpp>

namespace frugal::cli {

CLI::App* add_run_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_chat_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_info_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_perplexity_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_plan_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_quantize_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_bench_subcommand(CLI::App& app, int& exit_code);
CLI::App* add_eval_subcommand(CLI::App& app, int& exit_code);

}  // namespace frugal::cli
