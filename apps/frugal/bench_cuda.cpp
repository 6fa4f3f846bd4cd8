// frugal bench --device cuda: argument checks, the table and the JSON.
#include "bench_cuda.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli_util.h"

namespace frugal::cli {

void add_bench_cuda_flags(CLI::App* sub, BenchCudaFlags& f) {
  add_device_flags(sub, f.device);
  sub->add_option("-b,--batch", f.batches,
                  "--device cuda: comma-separated decode batch sizes (sequences per step)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--ctx", f.contexts,
                  "--device cuda: comma-separated contexts the decode steps start at (the KV "
                  "cache filled with random values, no prefill)")
      ->delimiter(',')
      ->capture_default_str();
}

Status check_bench_flag_mix(const CLI::App& sub, bool cuda, size_t n_prompts) {
  std::string wrong;
  auto given = [&](const char* name) {
    const CLI::Option* opt = sub.get_option_no_throw(name);
    if (opt && opt->count() > 0) wrong += (wrong.empty() ? "" : ", ") + std::string(name);
  };
  if (cuda) {
    for (const char* n : {"--formats", "--threads", "--bw-mib", "--mem-limit", "--decode-act",
                          "--prefill-act", "--cpu-isa", "--act-quant"})
      given(n);
    if (!wrong.empty())
      return InvalidArgument(wrong + " appl" + (wrong.find(',') == std::string::npos ? "ies" : "y") +
                             " to --device cpu; on --device cuda the weights are bf16 on the GPU");
    return Status::Ok();
  }
  for (const char* n : {"--batch", "--ctx", "--gpu-memory-utilization"}) given(n);
  if (!wrong.empty())
    return InvalidArgument(wrong + " appl" + (wrong.find(',') == std::string::npos ? "ies" : "y") +
                           " to --device cuda");
  if (n_prompts != 1)
    return InvalidArgument("-p: one prompt length on --device cpu (a list needs --device cuda)");
  return Status::Ok();
}

namespace {

void print_table(const cuda::CudaBenchResult& r, const BenchCudaArgs& a) {
  std::printf("frugal bench: %s on %s; bf16 weights (%.2f GB read per decode step), %d layers, "
              "dim %lld, %d/%d heads x %d, vocab %lld; paged bf16 KV; median of %d runs\n",
              r.model.c_str(), r.device.c_str(), r.weight_bytes / 1e9, r.n_layers,
              (long long)r.dim, r.n_heads, r.n_kv_heads, r.head_dim, (long long)r.vocab, a.reps);
  std::printf("ceilings (this run): device copy %.0f GB/s (read + write)", r.copy_gbs);
  if (r.gemm_tflops > 0) std::printf(", cuBLAS bf16 GEMM 8192^3 %.0f TFLOP/s", r.gemm_tflops);
  std::printf("\nplanner: %s\n", r.plan.c_str());
  if (r.upload_seconds > 0) std::printf("weight upload (bf16, all runners): %.1f s\n", r.upload_seconds);
  if (!r.pp.empty()) {
    std::printf("\npp = one prefill of T random tokens (one chunk); TFLOP/s of the model's flops "
                "(2 per weight per token + causal attention)\n\n");
    std::printf("| pp T | ms | tok/s | TFLOP/s | attention flops | of GEMM rate |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|\n");
    for (const cuda::CudaPpRow& p : r.pp)
      std::printf("| %lld | %.2f | %.0f | %.1f | %.0f%% | %.3f |\n", (long long)p.tokens, p.ms,
                  p.tok_s, p.tflops, 100 * p.attention_share, p.over_gemm);
  }
  if (!r.tg.empty()) {
    std::printf("\ntg = %lld decode steps of B sequences starting at position ctx (random KV); "
                "roofline = (weights + KV read/written + logits) / copy bandwidth\n\n",
                (long long)a.n_gen);
    std::printf("| batch | ctx | ms/step | tok/s/seq | tok/s total | GB/step (KV) | roofline ms | "
                "of roofline | arena |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const cuda::CudaTgRow& t : r.tg)
      std::printf("| %lld | %lld | %.3f | %.1f | %.0f | %.2f (%.2f) | %.3f | %.3f | %s |\n",
                  (long long)t.batch, (long long)t.ctx, t.ms_per_step, t.tok_s_seq,
                  t.tok_s_total, (t.weight_bytes + t.kv_bytes + t.logits_bytes) / 1e9,
                  t.kv_bytes / 1e9, t.roofline_ms, t.over_roofline,
                  human_bytes((double)t.arena_bytes).c_str());
  }
}

void print_json(const cuda::CudaBenchResult& r, const BenchCudaArgs& a) {
  nlohmann::ordered_json j;
  j["device"] = r.device;
  j["model"] = r.model;
  j["weights"] = "bf16";
  j["n_layers"] = r.n_layers;
  j["dim"] = r.dim;
  j["weight_bytes_per_step"] = r.weight_bytes;
  j["reps"] = a.reps;
  j["n_gen"] = a.n_gen;
  j["copy_gbs"] = r.copy_gbs;
  j["gemm_tflops"] = r.gemm_tflops;
  j["planner"] = r.plan;
  j["upload_seconds"] = r.upload_seconds;
  nlohmann::ordered_json pp = nlohmann::ordered_json::array();
  for (const cuda::CudaPpRow& p : r.pp)
    pp.push_back({{"tokens", p.tokens},
                  {"ms", p.ms},
                  {"tok_s", p.tok_s},
                  {"tflops", p.tflops},
                  {"attention_flop_share", p.attention_share},
                  {"over_gemm", p.over_gemm}});
  j["pp"] = pp;
  nlohmann::ordered_json tg = nlohmann::ordered_json::array();
  for (const cuda::CudaTgRow& t : r.tg)
    tg.push_back({{"batch", t.batch},
                  {"ctx", t.ctx},
                  {"ms_per_step", t.ms_per_step},
                  {"tok_s_per_seq", t.tok_s_seq},
                  {"tok_s_total", t.tok_s_total},
                  {"weight_bytes", t.weight_bytes},
                  {"kv_bytes", t.kv_bytes},
                  {"logits_bytes", t.logits_bytes},
                  {"roofline_ms", t.roofline_ms},
                  {"over_roofline", t.over_roofline},
                  {"arena_bytes", t.arena_bytes}});
  j["tg"] = tg;
  std::printf("%s\n", j.dump(2).c_str());
}

}  // namespace

int run_bench_cuda(const BenchCudaArgs& a, const BenchCudaFlags& f) {
  if (a.model.empty() == a.dummy.empty())
    return report(InvalidArgument("give exactly one of -m MODEL and --dummy ARCH"));
  if (a.dummy_layers < 0) return report(InvalidArgument("--dummy-layers must be >= 0"));
  if (a.dummy_layers > 0 && a.dummy.empty())
    return report(InvalidArgument("--dummy-layers applies to --dummy only"));
  if (Status st = check_device_flags(f.device, KvFlags{}); !st.ok()) return report(st);
  std::optional<Model> model;
  if (!a.model.empty()) {
    Result<Model> loaded = load_model(a.model);
    if (!loaded.ok()) return report(loaded.status());
    model = std::move(*loaded);
  }
  cuda::CudaBenchParams p;
  p.model = model ? &*model : nullptr;
  p.dummy = a.dummy;
  p.dummy_layers = a.dummy_layers;
  for (int64_t t : a.prompts)
    if (t != 0) p.prompts.push_back(t);  // -p 0: no pp measurement
  p.n_gen = a.n_gen;
  p.batches = f.batches;
  p.contexts = f.contexts;
  p.reps = a.reps;
  p.seed = a.seed;
  p.gpu_memory_utilization = f.device.gpu_memory_utilization;
  p.progress = [](const std::string& s) { std::fprintf(stderr, "frugal bench: %s\n", s.c_str()); };
  Result<cuda::CudaBenchResult> r = bench_on_cuda(p);
  if (!r.ok()) return report(r.status());
  if (a.json)
    print_json(*r, a);
  else
    print_table(*r, a);
  return 0;
}

}  // namespace frugal::cli
