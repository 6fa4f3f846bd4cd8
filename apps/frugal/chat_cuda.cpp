// frugal chat --device cuda: the model uploaded once (bf16), one GPU sequence whose K/V stay on
// the device between turns (cuda::CudaSession): a turn prefills only the tokens after the
// longest common prefix with what the cache holds, at the positions that follow.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "chat_backend.h"
#include "cli_util.h"
#include "device_flags.h"

namespace frugal::cli {

#if FRUGAL_HAS_CUDA
namespace {

class CudaChatBackend final : public ChatBackend {
 public:
  CudaChatBackend(std::unique_ptr<cuda::CudaSession> s, const ChatBackendParams& p)
      : s_(std::move(s)), reuse_(p.reuse) {
    tp_.max_new_tokens = p.n_predict;
    tp_.sampler = p.sampler;
  }

  int64_t n_ctx() const override { return s_->n_ctx(); }

  Result<GenerateStats> answer(std::span<const int32_t> conversation,
                               const std::function<bool(int32_t)>& on_token) override {
    return s_->generate(conversation, tp_, on_token);
  }

  std::string describe() const override {
    char buf[160];
    std::snprintf(buf, sizeof buf, "; upload (bf16) %.3f s; KV kept across turns %s",
                  s_->upload_seconds(), reuse_ ? "on" : "off");
    return "device " + s_->device() + "; GPU memory: " + s_->memory() + buf;
  }

  const char* reuse_source() const override { return "the KV kept from earlier turns"; }
  std::string turn_note() const override { return ""; }

 private:
  std::unique_ptr<cuda::CudaSession> s_;
  cuda::CudaTurnParams tp_;
  bool reuse_ = true;
};

}  // namespace

Result<std::unique_ptr<ChatBackend>> make_cuda_chat_backend(const Model& m,
                                                            const ChatBackendParams& p) {
  cuda::CudaSessionParams sp;
  sp.n_ctx = m.config.max_seq_len > 0 ? std::min<int64_t>(p.n_ctx, m.config.max_seq_len)
                                       : p.n_ctx;
  sp.gpu_memory_utilization = p.gpu_memory_utilization;
  sp.reuse_kv = p.reuse;
  FRUGAL_ASSIGN_OR_RETURN(std::unique_ptr<cuda::CudaSession> s, cuda::CudaSession::create(m, sp));
  return std::unique_ptr<ChatBackend>(new CudaChatBackend(std::move(s), p));
}

#else

Result<std::unique_ptr<ChatBackend>> make_cuda_chat_backend(const Model&,
                                                            const ChatBackendParams&) {
  return cuda_not_built();
}

#endif

}  // namespace frugal::cli
