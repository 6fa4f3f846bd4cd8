#include "model/cuda/bench_cuda.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include "backend/cuda/check.cuh"
#include "model/cuda/bench_measure.h"
#include "model/cuda/device_line.h"
#include "model/cuda/generate_cuda.h"
#include "model/cuda/llama_cuda_load.h"

namespace frugal::cuda {

namespace {

Status check_params(const CudaBenchParams& p) {
  if ((p.model != nullptr) == !p.dummy.empty())
    return InvalidArgument("bench_cuda: give exactly one of a model and a dummy architecture");
  if (p.reps < 1) return InvalidArgument("--reps must be at least 1");
  if (p.n_gen < 0) return InvalidArgument("-n must be >= 0");
  if (p.prompts.empty() && p.n_gen == 0) return InvalidArgument("-p and -n: nothing to measure");
  if (p.n_gen > 0 && (p.batches.empty() || p.contexts.empty()))
    return InvalidArgument("-b and --ctx need at least one value each");
  for (int64_t t : p.prompts)
    if (t < 1 || t > 65535) return InvalidArgument("-p " + std::to_string(t) + " outside 1..65535");
  for (int64_t b : p.batches)
    if (b < 1 || b > 4096) return InvalidArgument("-b " + std::to_string(b) + " outside 1..4096");
  for (int64_t c : p.contexts)
    if (c < 0 || c > (1 << 24))
      return InvalidArgument("--ctx " + std::to_string(c) + " outside 0..16777216");
  if (!(p.gpu_memory_utilization > 0 && p.gpu_memory_utilization <= 1))
    return InvalidArgument("--gpu-memory-utilization must be in (0, 1]");
  return Status::Ok();
}

// A runner of the given shape with its weights: uploaded from the model, or random.
Result<std::unique_ptr<LlamaCuda>> make_runner(const CudaBenchParams& p, const LlamaDims& d,
                                               const LlamaCudaOptions& o, double& upload_s) {
  if (p.model) {
    const auto t0 = std::chrono::steady_clock::now();
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g, upload_model(*p.model, o));
    upload_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return g;
  }
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g, LlamaCuda::create(d, o));
  FRUGAL_RETURN_IF_ERROR(g->randomize_weights(p.seed + 6));
  return g;
}

}  // namespace

Result<CudaBenchResult> bench_cuda(const CudaBenchParams& p) {
  FRUGAL_RETURN_IF_ERROR(check_params(p));
  LlamaDims d;
  CudaBenchResult res;
  if (p.model) {
    FRUGAL_ASSIGN_OR_RETURN(d, llama_dims(p.model->config));
    res.model = p.model->path;
    const int64_t model_ctx = p.model->config.max_seq_len;
    const int64_t max_ctx = p.contexts.empty() || p.n_gen == 0
                                ? 0
                                : *std::max_element(p.contexts.begin(), p.contexts.end()) + p.n_gen;
    const int64_t max_pp =
        p.prompts.empty() ? 0 : *std::max_element(p.prompts.begin(), p.prompts.end());
    if (model_ctx > 0 && std::max(max_ctx, max_pp) > model_ctx)
      return OutOfRange("--ctx + -n (" + std::to_string(max_ctx) + ") or -p (" +
                        std::to_string(max_pp) + ") exceed the model's context of " +
                        std::to_string(model_ctx));
  } else {
    FRUGAL_ASSIGN_OR_RETURN(d, dummy_dims(p.dummy));
    if (p.dummy_layers > 0) d.n_layers = p.dummy_layers;
    res.model = "dummy " + p.dummy;
  }
  res.n_layers = d.n_layers;
  res.dim = d.dim;
  res.hidden = d.hidden;
  res.vocab = d.vocab;
  res.n_heads = d.n_heads;
  res.n_kv_heads = d.n_kv_heads;
  res.head_dim = d.head_dim;
  res.weight_bytes = decode_step_bytes(d, 1, 0, 1).weights;
  FRUGAL_RETURN_IF_ERROR(require_device());
  res.device = device_line();
  auto say = [&](const std::string& s) {
    if (p.progress) p.progress(s);
  };

  // The runner shapes, and the planner's verdict on the largest one before anything runs.
  const int64_t steps = std::max<int64_t>(p.n_gen, 2);
  auto tg_options = [&](int64_t batch, int64_t ctx) {
    LlamaCudaOptions o;
    o.max_batch = (int)batch;
    o.max_prefill_tokens = 1;
    o.max_seq_len = ctx + steps + 8;
    o.shuffle_blocks = true;
    return o;
  };
  auto pp_options = [&](int64_t tokens) {
    LlamaCudaOptions o;
    o.max_batch = 1;
    o.max_prefill_tokens = (int)tokens;
    o.max_seq_len = tokens;
    o.shuffle_blocks = true;
    return o;
  };
  std::vector<LlamaCudaOptions> largest;
  if (!p.prompts.empty())
    largest.push_back(pp_options(*std::max_element(p.prompts.begin(), p.prompts.end())));
  if (p.n_gen > 0)
    largest.push_back(tg_options(*std::max_element(p.batches.begin(), p.batches.end()),
                                 *std::max_element(p.contexts.begin(), p.contexts.end())));
  for (LlamaCudaOptions o : largest) {
    o.gpu_memory_utilization = p.gpu_memory_utilization;
    Result<LlamaCudaMemory> m = plan_llama_cuda_memory(d, o);
    if (!m.ok())
      return Status(m.status().code(),
                    "batch " + std::to_string(o.max_batch) + " x " +
                        std::to_string(o.max_seq_len) + " positions (" +
                        std::to_string(o.max_prefill_tokens) + "-token prefill chunk): " +
                        m.status().message());
    if (res.plan.empty() || o.max_batch > 1) res.plan = m->split;
  }

  // Ceilings, in this run.
  cudaStream_t s = nullptr;
  FRUGAL_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  say("ceilings: copy bandwidth and cuBLAS GEMM");
  Result<Ceilings> c = measure_ceilings(s, !p.prompts.empty());
  (void)cudaStreamDestroy(s);
  FRUGAL_RETURN_IF_ERROR(c.status());
  res.copy_gbs = c->copy_gbs;
  res.gemm_tflops = c->gemm_tflops;

  if (!p.prompts.empty()) {
    const int64_t max_pp = *std::max_element(p.prompts.begin(), p.prompts.end());
    say("pp: runner for " + std::to_string(max_pp) + " tokens");
    FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g,
                            make_runner(p, d, pp_options(max_pp), res.upload_seconds));
    std::mt19937_64 rng(p.seed);
    std::vector<int32_t> tokens((size_t)max_pp);
    for (int32_t& t : tokens) t = (int32_t)(rng() % (uint64_t)d.vocab);
    for (int64_t T : p.prompts) {
      say("pp " + std::to_string(T));
      FRUGAL_ASSIGN_OR_RETURN(const double ms, time_prefill(*g, tokens.data(), T, p.reps));
      const PrefillFlops f = prefill_flops(d, T);
      CudaPpRow r;
      r.tokens = T;
      r.ms = ms;
      r.tok_s = (double)T / ms * 1e3;
      r.tflops = f.total / (ms * 1e9);
      r.attention_share = f.attention / f.total;
      r.over_gemm = res.gemm_tflops > 0 ? r.tflops / res.gemm_tflops : 0;
      res.pp.push_back(r);
    }
  }

  if (p.n_gen > 0)
    for (int64_t ctx : p.contexts)
      for (int64_t batch : p.batches) {
        say("tg batch " + std::to_string(batch) + " ctx " + std::to_string(ctx));
        FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g,
                                make_runner(p, d, tg_options(batch, ctx), res.upload_seconds));
        FRUGAL_RETURN_IF_ERROR(g->randomize_kv(p.seed + 8));
        FRUGAL_ASSIGN_OR_RETURN(
            const double ms, time_decode(*g, (int)batch, (int)ctx, (int)p.n_gen, p.reps));
        const DecodeBytes b = decode_step_bytes(d, (int)batch, (int)ctx, (int)p.n_gen);
        CudaTgRow r;
        r.batch = batch;
        r.ctx = ctx;
        r.ms_per_step = ms;
        r.tok_s_seq = 1e3 / ms;
        r.tok_s_total = r.tok_s_seq * (double)batch;
        r.weight_bytes = b.weights;
        r.kv_bytes = b.kv;
        r.logits_bytes = b.logits;
        r.roofline_ms = b.total() / (res.copy_gbs * 1e6);
        r.over_roofline = r.roofline_ms / ms;
        r.arena_bytes = g->memory().total;
        res.tg.push_back(r);
      }
  return res;
}

}  // namespace frugal::cuda
