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

namespace {

// The checks generate() makes on a prompt and its settings.
Status check_request(const ModelConfig& c, std::span<const int32_t> prompt,
                     const SamplerParams& sp, int64_t max_new_tokens) {
  FRUGAL_RETURN_IF_ERROR(sp.validate());
  if (prompt.empty()) return InvalidArgument("the prompt is empty (it encodes to zero tokens)");
  if (max_new_tokens < 0) return InvalidArgument("number of tokens to generate must be >= 0");
  for (int32_t t : prompt)
    if (t < 0 || t >= c.vocab_size)
      return InvalidArgument("token id " + std::to_string(t) + " is outside the vocabulary [0, " +
                             std::to_string(c.vocab_size) + ")");
  return Status::Ok();
}

int64_t model_ctx(const ModelConfig& c) { return c.max_seq_len > 0 ? c.max_seq_len : INT64_MAX; }

}  // namespace

struct CudaSession::State {
  const Model* model = nullptr;
  CudaSessionParams params;
  std::unique_ptr<LlamaCuda> g;
  std::string device, memory;
  double upload_seconds = 0;
  // The tokens whose K/V sit at positions [0, size) of slot 0.
  std::vector<int32_t> cached;
};

CudaSession::CudaSession(std::unique_ptr<State> s) : s_(std::move(s)) {}
CudaSession::~CudaSession() = default;

int64_t CudaSession::n_ctx() const { return s_->params.n_ctx; }
double CudaSession::upload_seconds() const { return s_->upload_seconds; }
const std::string& CudaSession::device() const { return s_->device; }
const std::string& CudaSession::memory() const { return s_->memory; }
size_t CudaSession::kv_bytes() const { return s_->g->memory().kv; }

Result<std::unique_ptr<CudaSession>> CudaSession::create(const Model& model,
                                                         const CudaSessionParams& params) {
  using Clock = std::chrono::steady_clock;
  if (params.n_ctx < 1 || params.n_ctx > model_ctx(model.config))
    return OutOfRange("context size " + std::to_string(params.n_ctx) + " is outside 1 .. the "
                      "model's maximum (" + std::to_string(model_ctx(model.config)) + ")");
  FRUGAL_RETURN_IF_ERROR(require_device());
  auto s = std::make_unique<State>();
  s->model = &model;
  s->params = params;
  s->device = device_line();
  LlamaCudaOptions o;
  o.max_batch = 1;
  o.max_seq_len = params.n_ctx;
  o.max_prefill_tokens =
      (int)std::max<int64_t>(1, std::min<int64_t>(params.max_prefill_tokens, params.n_ctx));
  o.gpu_memory_utilization = params.gpu_memory_utilization;
  const auto t0 = Clock::now();
  FRUGAL_ASSIGN_OR_RETURN(s->g, upload_model(model, o));
  s->upload_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  s->memory = s->g->memory().split;
  return std::unique_ptr<CudaSession>(new CudaSession(std::move(s)));
}

Result<GenerateStats> CudaSession::generate(std::span<const int32_t> prompt,
                                            const CudaTurnParams& params,
                                            const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  State& S = *s_;
  LlamaCuda& g = *S.g;
  const SamplerParams& sp = params.sampler;
  FRUGAL_RETURN_IF_ERROR(check_request(S.model->config, prompt, sp, params.max_new_tokens));
  const int64_t n_ctx = S.params.n_ctx;
  if ((int64_t)prompt.size() > n_ctx)
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                      " tokens, more than the context size " + std::to_string(n_ctx));
  GenerateStats st;
  st.n_prompt = (int64_t)prompt.size();
  st.kv_bytes = g.memory().kv;

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
      FRUGAL_RETURN_IF_ERROR(g.penalize_logits(0, recent.data(), (int)recent.size(),
                                               sp.repeat_penalty));
    } else if (sp.temperature <= 0.0f) {
      return argmax;
    }
    const double u = sp.temperature > 0.0f ? rng.next_uniform() : 0.0;
    int32_t tok = 0;
    FRUGAL_RETURN_IF_ERROR(g.sample_logits(dp, &u, 1, &tok));
    return tok;
  };

  // Keep the K/V of the longest common prefix with what the cache holds; recompute at least
  // the last prompt token (its logits start the answer).
  int64_t keep = 0;
  if (S.params.reuse_kv) {
    const size_t n = std::min(S.cached.size(), prompt.size() - 1);
    while (keep < (int64_t)n && S.cached[(size_t)keep] == prompt[(size_t)keep]) ++keep;
  }
  st.n_prompt_cached = keep;
  S.cached.clear();  // until the prefill succeeds, nothing in the cache is known to be valid

  auto t0 = Clock::now();
  FRUGAL_ASSIGN_OR_RETURN(
      const int32_t first_argmax,
      g.prefill(0, prompt.data() + keep, (int64_t)prompt.size() - keep, keep));
  S.cached.assign(prompt.begin(), prompt.end());
  FRUGAL_ASSIGN_OR_RETURN(int32_t tok, choose(first_argmax));
  st.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  t0 = Clock::now();
  int64_t pos = (int64_t)prompt.size();
  const TokenStopRule stop_rule{S.model, params.ignore_eos, params.max_new_tokens, n_ctx};
  while (st.n_generated < params.max_new_tokens) {
    if (stop_rule.emit(tok, pos, on_token, st)) break;
    history.push_back(tok);
    const int32_t in[1] = {tok};
    const int32_t at[1] = {(int32_t)pos};
    int32_t next[1] = {0};
    FRUGAL_RETURN_IF_ERROR(g.decode(in, at, 1, next));
    S.cached.push_back(tok);
    FRUGAL_ASSIGN_OR_RETURN(tok, choose(next[0]));
    ++pos;
    ++st.n_decode_steps;
  }
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return st;
}

Result<CudaGenerateResult> generate_cuda(const Model& model, std::span<const int32_t> prompt,
                                         const CudaGenerateParams& params,
                                         const std::function<bool(int32_t)>& on_token) {
  FRUGAL_RETURN_IF_ERROR(
      check_request(model.config, prompt, params.sampler, params.max_new_tokens));
  const int64_t max_ctx = model_ctx(model.config);
  const int64_t n_ctx = params.n_ctx > 0
                            ? params.n_ctx
                            : std::min<int64_t>(max_ctx, (int64_t)prompt.size() + params.max_new_tokens);
  if (n_ctx > max_ctx)
    return OutOfRange("context size " + std::to_string(n_ctx) + " exceeds the model's maximum (" +
                      std::to_string(max_ctx) + ")");
  if ((int64_t)prompt.size() > n_ctx)
    return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                      " tokens, more than the context size " + std::to_string(n_ctx));
  CudaSessionParams sp;
  sp.n_ctx = n_ctx;
  sp.gpu_memory_utilization = params.gpu_memory_utilization;
  sp.max_prefill_tokens = std::max(1, std::min<int>(params.max_prefill_tokens, (int)prompt.size()));
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<CudaSession> s, CudaSession::create(model, sp));
  CudaTurnParams tp;
  tp.max_new_tokens = params.max_new_tokens;
  tp.ignore_eos = params.ignore_eos;
  tp.sampler = params.sampler;
  CudaGenerateResult res;
  FRUGAL_ASSIGN_OR_RETURN(res.stats, s->generate(prompt, tp, on_token));
  res.upload_seconds = s->upload_seconds();
  res.device = s->device();
  res.memory = s->memory();
  return res;
}

}  // namespace frugal::cuda
