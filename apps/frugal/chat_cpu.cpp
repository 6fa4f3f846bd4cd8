// frugal chat on the CPU: the turns share one paged KV pool, so the prefix cache skips the
// prefill of everything already seen (the system prompt and earlier turns, in whole blocks).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "base/thread_pool.h"
#include "chat_backend.h"
#include "cli_util.h"

namespace frugal::cli {

namespace {

class CpuChatBackend final : public ChatBackend {
 public:
  CpuChatBackend(const Model& m, std::shared_ptr<KvPool> kv, const ChatBackendParams& p)
      : m_(m), kv_(std::move(kv)), pool_(p.threads) {
    gp_.max_new_tokens = p.n_predict;
    gp_.sampler = p.sampler;
    gp_.decode_act = p.decode_act;
    gp_.prefill_act = p.prefill_act;
    gp_.shared_kv = SharedKv{kv_};
    prefix_caching_ = p.reuse;
    dtype_ = p.kv.dtype.value_or(cpu::KvDType::kF32);
    block_size_ = p.kv.block_size;
  }

  int64_t n_ctx() const override { return kv_->max_seq_len(); }

  Result<GenerateStats> answer(std::span<const int32_t> conversation,
                               const std::function<bool(int32_t)>& on_token) override {
    return generate(m_, pool_, conversation, gp_, on_token);
  }

  std::string describe() const override {
    char buf[256];
    std::snprintf(buf, sizeof buf, "KV pool %s (%s, block %d), prefix cache %s",
                  human_bytes((double)kv_->bytes()).c_str(), cpu::kv_dtype_name(dtype_),
                  block_size_, prefix_caching_ ? "on" : "off");
    return buf;
  }

  const char* reuse_source() const override { return "the prefix cache"; }

  std::string turn_note() const override {
    char buf[64];
    std::snprintf(buf, sizeof buf, "; cache hit rate %.2f", kv_->stats().hit_rate());
    return buf;
  }

 private:
  const Model& m_;
  std::shared_ptr<KvPool> kv_;
  ThreadPool pool_;
  GenerateParams gp_;
  bool prefix_caching_ = true;
  cpu::KvDType dtype_ = cpu::KvDType::kF32;
  int block_size_ = 16;
};

}  // namespace

Result<std::unique_ptr<ChatBackend>> make_cpu_chat_backend(const Model& m,
                                                           const ChatBackendParams& p) {
  if (p.kv.kind != KvCacheKind::kPaged)
    return InvalidArgument("frugal chat shares one paged KV pool across turns: "
                           "--kv-cache contiguous is not supported here");
  KvPoolOptions po;
  po.dtype = p.kv.dtype.value_or(cpu::KvDType::kF32);
  po.block_size = p.kv.block_size;
  po.max_seq_len = std::min<int64_t>(p.n_ctx, m.config.max_seq_len);
  po.prefix_caching = p.reuse;
  if (p.kv.budget_bytes > 0) {
    po.budget_bytes = p.kv.budget_bytes;
  } else {
    // One full context plus a few blocks: the live turn shares the previous turn's cached
    // blocks, and blocks it does not share are evicted when needed.
    FRUGAL_ASSIGN_OR_RETURN(po.budget_bytes,
                            kv_pool_bytes_for_tokens(m.config, po.dtype, po.block_size,
                                                     po.max_seq_len + 8 * po.block_size));
  }
  FRUGAL_ASSIGN_OR_RETURN(std::shared_ptr<KvPool> kv, KvPool::create(m.config, po));
  return std::unique_ptr<ChatBackend>(new CpuChatBackend(m, std::move(kv), p));
}

}  // namespace frugal::cli
