// The KV cache flags shared by the subcommands that run the model (run, perplexity).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "base/status.h"
#include "model/kv_cache.h"

namespace frugal::cli {

struct KvFlags {
  std::string cache = "paged";
  std::string dtype;  // empty: the kind's default (f32)
  int32_t block_size = 16;
  std::string budget = "auto";
};

inline void add_kv_flags(CLI::App* sub, KvFlags& f) {
  sub->add_option("--kv-cache", f.cache, "KV cache kind: paged or contiguous")->capture_default_str();
  sub->add_option("--kv-dtype", f.dtype, "KV dtype: f32 (default), f16, bf16, fp8, int8, int4");
  sub->add_option("--block-size", f.block_size, "KV block size in tokens (power of two)")
      ->capture_default_str();
  sub->add_option("--kv-budget", f.budget, "KV memory budget: BYTES (K/M/G suffix) or auto")
      ->capture_default_str();
}

inline Result<KvCacheOptions> kv_options(const KvFlags& f) {
  KvCacheOptions o;
  FRUGAL_ASSIGN_OR_RETURN(o.kind, parse_kv_cache_kind(f.cache));
  if (!f.dtype.empty()) {
    FRUGAL_ASSIGN_OR_RETURN(cpu::KvDType dt, parse_kv_cache_dtype(f.dtype));
    o.dtype = dt;
  }
  o.block_size = f.block_size;
  FRUGAL_ASSIGN_OR_RETURN(o.budget_bytes, parse_kv_budget(f.budget));
  return o;
}

}  // namespace frugal::cli
