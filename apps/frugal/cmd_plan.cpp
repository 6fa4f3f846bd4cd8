// `frugal plan`: flags -> planner::PlanArgs -> planner::run_plan (src/planner/plan_command.h).
#include <cstdio>
#include <memory>

#include "cli_util.h"
#include "commands.h"
#include "planner/plan_command.h"

namespace frugal::cli {

CLI::App* add_plan_subcommand(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<planner::PlanArgs>();
  CLI::App* sub = app.add_subcommand(
      "plan", "Predict memory and speed of a model on given hardware, and rank the ways to make it fit");
  sub->footer(
      "Examples:\n"
      "  frugal plan -m llama-2-70b --gpu a100-40gb\n"
      "  frugal plan -m llama-2-70b --gpu a100-40gb --batch 16 --context 4096 --kv-dtype f16 --json\n"
      "  frugal plan -m models/x.gguf --gpu cpu --measure-host --max-context\n"
      "Without --weights/--kv-dtype/--tp/--offload the planner searches them; given ones are fixed.\n"
      "Formulas and assumptions: docs/PLANNER.md (or --explain).");

  // Model.
  sub->add_option("-m,--model", a->model, "Preset name, config.json (or its directory), or .gguf file");
  sub->add_option("--dims", a->dims,
                  "Explicit dims: layers=,hidden=,heads=,ffn=,vocab=[,kv_heads=,head_dim=,experts=,"
                  "top_k=,tied=,ffn_kind=gated|plain,norm=rms|layernorm,context=]");
  // Hardware.
  sub->add_option("--gpu,--hw", a->gpu, "Device from the table (--list-hardware), or 'cpu'");
  sub->add_option("--hw-file", a->hw_file, "Custom hardware JSON (memory_gb, bandwidth_gbs, bf16_tflops, ...)");
  sub->add_option("--gpus", a->gpus, "Devices available: largest tensor-parallel degree searched (default 8; cpu 1)");
  sub->add_option("--memory", a->memory_gb, "Override device memory (GB = 10^9 bytes)");
  sub->add_option("--bandwidth", a->bandwidth_gbs, "Override device bandwidth (GB/s); required for cpu unless --measure-host");
  sub->add_option("--tflops", a->tflops, "Override the BF16 peak (GPU) or fp32 peak (cpu), TFLOP/s");
  sub->add_flag("--measure-host", a->measure_host, "Measure this machine's memory bandwidth and FMA peak (1 GiB buffers)");
  sub->add_option("--host-memory", a->host_memory_gb, "Host memory for offloaded layers (GB)");
  sub->add_option("--host-bandwidth", a->host_bandwidth_gbs, "Host bandwidth for offloaded layers (GB/s)");
  sub->add_option("--host-tflops", a->host_tflops, "Host fp32 peak for offloaded layers (TFLOP/s)");
  // Workload.
  sub->add_option("-b,--batch", a->batch, "Concurrent sequences (default 1)");
  sub->add_option("-c,--context", a->context, "Tokens per sequence, prompt + output (default min(4096, trained))");
  sub->add_option("--prompt", a->prompt, "Prompt tokens per sequence (default: half the context)");
  sub->add_option("--prefill-chunk", a->prefill_chunk, "Tokens per prefill step (default 2048)");
  sub->add_option("--kv-block", a->kv_block, "Tokens per KV page (default 16)");
  sub->add_flag("--no-flash-attn", a->no_flash_attention, "Size activations for attention that materialises scores");
  // Fixed choices.
  sub->add_option("-w,--weights", a->weights, "Weight format (f16, bf16, fp8, int8, int4, int4-gptq, q8_0, q4_k, ..., file)");
  sub->add_option("--kv-dtype", a->kv_dtype, "KV cache format (f16, bf16, fp8, int8, q8_0, q4_0, int4)");
  sub->add_option("--embed-dtype", a->embed_dtype, "Embedding and LM-head format (default 16-bit)");
  sub->add_option("--tp", a->tp, "Tensor-parallel degree");
  sub->add_option("--offload", a->offload, "Decoder layers kept in host memory and run by the host CPU");
  // Assumptions.
  sub->add_option("--overhead", a->overhead_gib, "Runtime overhead per device, GiB (default 1.0 GPU, 0.25 cpu)");
  sub->add_option("--mem-util", a->mem_util, "Fraction of device memory usable (default 1.0)");
  sub->add_option("--eff-bw", a->eff_bandwidth, "Achieved fraction of peak bandwidth (default per device)");
  sub->add_option("--eff-flops", a->eff_flops, "Achieved fraction of peak FLOP/s (default per device)");
  sub->add_option("--eff-link", a->eff_link, "Achieved fraction of link bandwidth (default 0.75)");
  sub->add_option("--min-quality", a->min_quality, "Drop options below this quality tier (A, B, C, D)");
  // Output.
  sub->add_flag("--max-batch", a->max_batch, "Also report the largest batch that fits");
  sub->add_flag("--max-context", a->max_context, "Also report the longest context that fits");
  sub->add_flag("--explain", a->explain, "Print every formula with its numbers for the best option");
  sub->add_flag("--json", a->json, "JSON output");
  sub->add_option("--svg", a->svg, "Write charts (memory per option, KV vs context) to this SVG file");
  sub->add_option("--top", a->top, "Fitting options shown (default 10)");
  sub->add_flag("--all", a->all, "Show every rejected option with its reason");
  sub->add_flag("--list-presets", a->list_presets, "List model presets and exit");
  sub->add_flag("--list-hardware", a->list_hardware, "List the hardware table and exit");

  sub->callback([a, &exit_code]() {
    Result<std::string> out = planner::run_plan(*a);
    if (!out.ok()) {
      exit_code = report(out.status());
      return;
    }
    std::fputs(out->c_str(), stdout);
    std::fflush(stdout);
    exit_code = 0;
  });
  return sub;
}

}  // namespace frugal::cli
