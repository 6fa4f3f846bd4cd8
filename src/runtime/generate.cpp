#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "model/kv_cache.h"
#include "model/llama.h"

namespace frugal {

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::kLength: return "length";
    case StopReason::kEndOfGeneration: return "end of generation";
    case StopReason::kContextFull: return "context full";
    case StopReason::kCallback: return "stopped";
    case StopReason::kKvFull: return "KV cache full";
  }
  return "?";
}

bool TokenStopRule::emit(int32_t tok, int64_t pos, const std::function<bool(int32_t)>& on_token,
                         GenerateStats& st) const {
  if (!ignore_eos && model->tokenizer && model->tokenizer->is_end_of_generation(tok)) {
    st.stop = StopReason::kEndOfGeneration;
    return true;
  }
  ++st.n_generated;
  if (!on_token(tok)) {
    st.stop = StopReason::kCallback;
    return true;
  }
  if (st.n_generated == max_new_tokens) return true;
  if (pos >= n_ctx) {
    st.stop = StopReason::kContextFull;
    return true;
  }
  return false;
}

Result<GenerateStats> generate(const Model& model, ThreadPool& pool,
                               std::span<const int32_t> prompt, const GenerateParams& params,
                               const std::function<bool(int32_t)>& on_token) {
  using Clock = std::chrono::steady_clock;
  const ModelConfig& c = model.config;
  FRUGAL_RETURN_IF_ERROR(params.sampler.validate());
  if (prompt.empty()) return InvalidArgument("the prompt is empty (it encodes to zero tokens)");
  if (params.max_new_tokens < 0) return InvalidArgument("number of tokens to generate must be >= 0");
  KvCache kv;
  int64_t n_ctx = 0;
  if (params.shared_kv) {
    if (!params.shared_kv->pool) return InvalidArgument("shared KV pool is null");
    const SharedKv& sk = *params.shared_kv;
    FRUGAL_ASSIGN_OR_RETURN(kv, sk.pool->open(sk.salt, sk.admission, sk.wait_ms));
    n_ctx = kv.n_ctx();
    if ((int64_t)prompt.size() > n_ctx)
      return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                        " tokens, more than a sequence of the KV pool holds (" +
                        std::to_string(n_ctx) + ")");
  } else {
    n_ctx = params.n_ctx > 0 ? params.n_ctx
                             : std::min<int64_t>(c.max_seq_len,
                                                 (int64_t)prompt.size() + params.max_new_tokens);
    if (n_ctx > c.max_seq_len)
      return OutOfRange("context size " + std::to_string(n_ctx) + " exceeds the model's maximum (" +
                        std::to_string(c.max_seq_len) + ")");
    if ((int64_t)prompt.size() > n_ctx)
      return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                        " tokens, more than the context size " + std::to_string(n_ctx));
    FRUGAL_ASSIGN_OR_RETURN(kv, KvCache::create(c, n_ctx, params.kv));
    if ((int64_t)prompt.size() > kv.n_ctx())
      return OutOfRange("the prompt has " + std::to_string(prompt.size()) +
                        " tokens, more than the KV budget holds (" + std::to_string(kv.n_ctx()) +
                        " tokens)");
    n_ctx = kv.n_ctx();
  }
  LlamaRunner runner(model, pool, params.prefill_batch);
  runner.set_decode_activations(params.decode_act);
  runner.set_prefill_activations(params.prefill_act);
  Sampler sampler(params.sampler);
  std::vector<float> logits(c.vocab_size);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  GenerateStats st;
  st.n_prompt = (int64_t)prompt.size();
  st.kv_bytes = kv.bytes();

  auto t0 = Clock::now();
  int64_t n_cached = 0;
  if (params.shared_kv) {
    FRUGAL_ASSIGN_OR_RETURN(n_cached, kv.admit(prompt));  // waits here when the pool is full
    t0 = Clock::now();                                     // prefill time excludes the wait
  }
  st.n_prompt_cached = n_cached;
  FRUGAL_RETURN_IF_ERROR(runner.forward(prompt.subspan((size_t)n_cached), n_cached, kv, logits));
  st.prompt_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  t0 = Clock::now();
  int64_t pos = (int64_t)prompt.size();
  const TokenStopRule stop_rule{&model, params.ignore_eos, params.max_new_tokens, n_ctx};
  while (st.n_generated < params.max_new_tokens) {
    const int32_t tok = sampler.sample(logits, history);
    if (stop_rule.emit(tok, pos, on_token, st)) break;
    history.push_back(tok);
    const int32_t one[1] = {tok};
    if (Status fs = runner.forward(one, pos, kv, logits); !fs.ok()) {
      // A shared pool may run dry while other requests hold blocks: end this request with what
      // it has rather than failing it.
      if (params.shared_kv && fs.code() == StatusCode::kResourceExhausted) {
        st.stop = StopReason::kKvFull;
        break;
      }
      return fs;
    }
    ++pos;
    ++st.n_decode_steps;
  }
  st.decode_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return st;
}

}  // namespace frugal
