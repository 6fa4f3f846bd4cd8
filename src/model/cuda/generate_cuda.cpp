#include "model/cuda/generate_cuda.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <vector>

#include <cuda_runtime.h>

#include "backend/cuda/memory.cuh"
#include "model/cuda/device_line.h"
#include "model/cuda/llama_cuda_load.h"

namespace frugal::cuda {

Status require_device() {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return Unavailable(std::string("no CUDA device: ") + cudaGetErrorString(err) + " (" +
                       cudaGetErrorName(err) + ")");
  }
  if (n == 0) return Unavailable("no CUDA device: the driver reports 0 devices");
  return Status::Ok();
}

Result<CudaGenerateResult> generate_cuda(const Model& model, std::span<const int32_t> prompt,
                                         const CudaGenerateParams& params,
                                         const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  const ModelConfig& c = model.config;
  const SamplerParams& sp = params.sampler;
  FRUGAL_RETURN_IF_ERROR(sp.validate());
  if (prompt.empty()) return InvalidArgument("the prompt is empty (it encodes to zero tokens)");
  if (params.max_new_tokens < 0) return InvalidArgument("number of tokens to generate must be >= 0");
  for (int32_t t : prompt)
    if (t < 0 || t >= c.vocab_size)
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                             std::to_string(c.vocab_size) + ")");
  const int64_t model_ctx = c.max_seq_len > 0 ? c.max_seq_len : INT64_MAX;
  const int64_t n_ctx = params.n_ctx > 0
                            ? params.n_ctx
                            : std::min<int64_t>(model_ctx, (int64_t)prompt.size() + params.max_new_tokens);
  if (n_ctx > model_ctx)
    return OutOfRange("context size " + std::to_string(n_ctx) + " exceeds the model's maximum (" +
                      std::to_string(model_ctx) + ")");
  if ((int64_t)prompt.size() > n_ctx)
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                      " tokens, more than the context size " + std::to_string(n_ctx));
  FRUGAL_RETURN_IF_ERROR(require_device());

  CudaGenerateResult res;
  res.device = device_line();
  LlamaCudaOptions o;
  o.max_batch = 1;
  o.max_seq_len = n_ctx;
  o.max_prefill_tokens = std::max(1, std::min<int>(params.max_prefill_tokens, (int)prompt.size()));
  o.gpu_memory_utilization = params.gpu_memory_utilization;
  auto t0 = Clock::now();
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<LlamaCuda> g, upload_model(model, o));
  res.upload_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.memory = g->memory().split;
  GenerateStats& st = res.stats;
  st.n_prompt = (int64_t)prompt.size();
  st.kv_bytes = g->memory().kv;

  SampleParams dp;
  dp.temperature = sp.temperature;
  dp.top_k = sp.top_k;
  dp.top_p = sp.top_p;
  dp.min_p = sp.min_p;
  Sampler rng(sp);  // only its uniform stream: the CPU Sampler's draws for this seed
  const bool penalize = sp.repeat_penalty != 1.0f && sp.repeat_last_n > 0;
  std::vector<int32_t> history(prompt.begin(), prompt.end());  // as the CPU generate loop
  std::vector<int32_t> recent;
  // The token for the logits the last prefill/decode left on the device: the penalty on the
  // distinct ids of the last repeat_last_n tokens first (then the device argmax is stale).
  auto choose = [&](int32_t argmax) -> Result<int32_t> {
    if (penalize) {
      const size_t start = history.size() > (size_t)sp.repeat_last_n
                               ? history.size() - (size_t)sp.repeat_last_n : 0;
      recent.assign(history.begin() + (std::ptrdiff_t)start, history.end());
      std::sort(recent.begin(), recent.end());
      recent.erase(std::unique(recent.begin(), recent.end()), recent.end());
      FRUGAL_RETURN_IF_ERROR(g->penalize_logits(0, recent.data(), (int)recent.size(),
                                                sp.repeat_penalty));
    } else if (sp.temperature <= 0.0f) {
      return argmax;
    }
    const double u = sp.temperature > 0.0f ? rng.next_uniform() : 0.0;
    int32_t tok = 0;
    FRUGAL_RETURN_IF_ERROR(g->sample_logits(dp, &u, 1, &tok));
    return tok;
  };

  t0 = Clock::now();
  FRUGAL_ASSIGN_OR_RETURN(const int32_t first_argmax,
                          g->prefill(0, prompt.data(), (int64_t)prompt.size(), 0));
  FRUGAL_ASSIGN_OR_RETURN(int32_t tok, choose(first_argmax));
  st.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  t0 = Clock::now();
  int64_t pos = (int64_t)prompt.size();
  const TokenStopRule stop_rule{&model, params.ignore_eos, params.max_new_tokens, n_ctx};
  while (st.n_generated < params.max_new_tokens) {
    if (stop_rule.emit(tok, pos, on_token, st)) break;
    history.push_back(tok);
    const int32_t in[1] = {tok};
    const int32_t at[1] = {(int32_t)pos};
    int32_t next[1] = {0};
    FRUGAL_RETURN_IF_ERROR(g->decode(in, at, 1, next));
    FRUGAL_ASSIGN_OR_RETURN(tok, choose(next[0]));
    ++pos;
    ++st.n_decode_steps;
  }
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return res;
}

}  // namespace frugal::cuda
