// KV cache benchmarks for issue 4 (CMake target frugal_kv_bench, built on demand):
//   cmake --build build --target frugal_kv_bench && build/frugal_kv_bench [model.gguf]
// Prints: (1) KV bytes per token per dtype for the default model's shape; (2) sequences admitted
// at a fixed KV budget, paged vs contiguous, for a random mix of prompt/output lengths; (3)
// attention latency: naive (materialized S x S scores) vs tiled (flash prefill) and contiguous
// decode vs paged decode; peak score memory naive vs tiled; (4) prefill time saved by a prefix
// hit on a 1k-token shared system prompt (if the model file is given). Ceiling for (3): the
// matmul FLOP rate of the same machine measured with a tiled f32 dot loop (printed).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "backend/cpu/attention_kv.h"
#include "backend/cpu/ops.h"
#include "kv/contiguous_allocator.h"
#include "kv/kv_storage.h"
#include "kv/paged_allocator.h"
#include "model/kv_cache.h"
#include "model/llama.h"
#include "model/model.h"
#include "runtime/generate.h"

using namespace frugal;
using Clock = std::chrono::steady_clock;

static double secs(Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); }

// Runs fn `reps` times, returns the minimum seconds.
template <class F>
static double best_of(int reps, F&& fn) {
  double best = 1e30;
  for (int i = 0; i < reps; ++i) {
    auto t = Clock::now();
    fn();
    best = std::min(best, secs(t));
  }
  return best;
}

static void bytes_per_token() {
  std::printf("\n## KV bytes per token (SmolLM2-135M shape: 30 layers, 3 KV heads, head_dim 64)\n");
  std::printf("| dtype | bytes/token | vs f16 |\n|---|---|---|\n");
  for (auto t : {cpu::KvDType::kF32, cpu::KvDType::kF16, cpu::KvDType::kBF16, cpu::KvDType::kInt8,
                 cpu::KvDType::kFp8, cpu::KvDType::kInt4, cpu::KvDType::kInt4Kivi}) {
    kv::KvStorageParams p{30, 3, 64, 16, 0, t};
    const double per_tok = (double)kv::KvStorage::bytes_per_block(p) / 16;
    std::printf("| %s | %.0f | %.3f |\n", cpu::kv_dtype_name(t), per_tok, per_tok / 23040.0);
  }
}

static void admission() {
  // F16 KV of the default model: 23040 bytes/token. Budget 256 MiB, max_seq_len 2048.
  const int64_t budget = 256LL << 20, bpt = 23040, bs = 16, max_len = 2048;
  const int32_t n_blocks = (int32_t)(budget / (bpt * bs));
  std::mt19937 rng(7);
  // Prompt lengths log-uniform in [16, 1024], outputs log-uniform in [16, 512].
  auto logu = [&](double lo, double hi) {
    return (int64_t)std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(rng));
  };
  std::vector<int64_t> lens(2000);
  for (auto& l : lens) l = std::min<int64_t>(max_len, logu(16, 1024) + logu(16, 512));
  kv::PagedAllocatorParams pp{(int32_t)bs, n_blocks, max_len, false};
  kv::ContiguousAllocatorParams cp{(int32_t)bs, n_blocks, max_len};
  auto paged = std::move(kv::PagedAllocator::create(pp).value());
  auto contig = std::move(kv::ContiguousAllocator::create(cp).value());
  auto admit = [&](kv::KvAllocator& a) {
    int n = 0;
    for (size_t i = 0; i < lens.size(); ++i) {
      (void)a.add_sequence((kv::SeqId)i);
      std::vector<int32_t> toks((size_t)lens[i], 1);  // reserve the final length up front
      if (!a.allocate_slots((kv::SeqId)i, toks).ok()) break;
      ++n;
    }
    return n;
  };
  const int nc = admit(*contig), np = admit(*paged);
  double mean = 0;
  for (int i = 0; i < np; ++i) mean += (double)lens[(size_t)i];
  std::printf("\n## Admission at a fixed budget (256 MiB of f16 KV = %d blocks of 16; max_seq_len 2048;\n"
              "prompt log-uniform 16..1024 + output log-uniform 16..512, mean admitted length %.0f)\n",
              n_blocks, mean / std::max(np, 1));
  std::printf("| allocator | sequences admitted |\n|---|---|\n| contiguous | %d |\n| paged | %d (%.1fx) |\n",
              nc, np, (double)np / std::max(nc, 1));
}

// Naive prefill: materializes the full [n, n] score matrix of each head (one per thread,
// heads split over the pool like the tiled kernel's work).
static void naive_prefill(const float* q, const float* k, const float* v, float* out, int64_t n,
                          int nh, int nkv, int d, std::vector<std::vector<float>>& S, ThreadPool& pool) {
  S.resize((size_t)pool.size());
  for (auto& s : S) s.assign((size_t)(n * n), 0.0f);
  const float sc = 1.0f / std::sqrt((float)d);
  pool.parallel_for(nh, 1, [&](int64_t h0, int64_t h1, int thread) {
    std::vector<float>& Sm = S[(size_t)thread];
    for (int64_t h = h0; h < h1; ++h) {
      const int64_t kh = h / (nh / nkv);
      for (int64_t i = 0; i < n; ++i) {
        float* s = &Sm[(size_t)(i * n)];
        float mx = -INFINITY;
        for (int64_t t = 0; t <= i; ++t) {
          float acc = 0;
          for (int e = 0; e < d; ++e) acc += q[(i * nh + h) * d + e] * k[(t * nkv + kh) * d + e];
          s[t] = acc * sc;
          mx = std::max(mx, s[t]);
        }
        float sum = 0;
        for (int64_t t = 0; t <= i; ++t) sum += s[t] = std::exp(s[t] - mx);
        float* o = out + (i * nh + h) * d;
        std::fill(o, o + d, 0.0f);
        for (int64_t t = 0; t <= i; ++t)
          for (int e = 0; e < d; ++e) o[e] += s[t] / sum * v[(t * nkv + kh) * d + e];
      }
    }
  });
}

static void attention_latency(ThreadPool& pool) {
  const int nh = 9, nkv = 3, d = 64, bs = 16;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  std::printf("\n## Attention latency (9 query heads, 3 KV heads, head_dim 64, %d threads, best of 3)\n",
              pool.size());
  std::printf("| context | naive prefill (S x S) | tiled prefill f32 | tiled prefill int8 | tiled prefill int4 | "
              "contiguous decode | paged decode f32 | paged decode int8 | paged decode int4 | naive score bytes/head | tiled score bytes/thread |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t n : {256, 1024, 2048, 4096, 8192}) {
    std::vector<float> q((size_t)(n * nh * d)), k((size_t)(n * nkv * d)), v(k.size()), out(q.size());
    for (auto* x : {&q, &k, &v})
      for (float& a : *x) a = nd(rng);
    std::vector<int32_t> table((size_t)((n + bs - 1) / bs));
    std::iota(table.begin(), table.end(), 0);
    std::shuffle(table.begin(), table.end(), rng);
    double t_tiled[3] = {0, 0, 0}, t_paged[3] = {0, 0, 0};
    const cpu::KvDType kinds[3] = {cpu::KvDType::kF32, cpu::KvDType::kInt8, cpu::KvDType::kInt4Kivi};
    for (int which = 0; which < 3; ++which) {
      kv::KvStorageParams sp{1, nkv, d, bs, (int32_t)table.size(), kinds[which]};
      auto st = std::move(kv::KvStorage::create(sp).value());
      (void)st.write(0, table, 0, n, k.data(), v.data());
      const cpu::PagedKvView view = st.view(0, table, n);
      t_tiled[which] = best_of(n <= 1024 ? 3 : 1, [&] {
          (void)cpu::attention_flash_prefill(view, nh, n, 0, q.data(), out.data(), pool);
        });
      t_paged[which] = best_of(3, [&] {
        (void)cpu::attention_paged_decode(view, nh, n, q.data(), out.data(), pool);
      });
    }
    cpu::AttentionParams ap{nh, nkv, d, n, (int64_t)nkv * d};
    const double t_contig = best_of(3, [&] { cpu::attention_decode(ap, q.data(), k.data(), v.data(), out.data(), pool); });
    std::vector<std::vector<float>> S;
    double t_naive = 0;
    if (n <= 4096)
      t_naive = best_of(1, [&] { naive_prefill(q.data(), k.data(), v.data(), out.data(), n, nh, nkv, d, S, pool); });
    auto ms = [](double s) { return s > 0 ? std::to_string(s * 1e3).substr(0, 7) + " ms" : std::string("-"); };
    std::printf("| %lld | %s | %s | %s | %s | %s | %s | %s | %s | %.1f MiB | %.1f KiB |\n", (long long)n,
                ms(t_naive).c_str(), ms(t_tiled[0]).c_str(), ms(t_tiled[1]).c_str(), ms(t_tiled[2]).c_str(),
                ms(t_contig).c_str(), ms(t_paged[0]).c_str(), ms(t_paged[1]).c_str(), ms(t_paged[2]).c_str(), (double)n * n * 4 / (1 << 20),
                (16.0 * 3 * 64 + 2.0 * 64 * 64 + 16.0 * 3 * (64 + 2)) * 4 / 1024);
  }
}

// Through the engine: requests share a KvPool (generate with shared_kv); the second request
// with the same 1024-token system prompt prefills only what is not cached.
static void prefix_hit(const char* model_path, ThreadPool& pool) {
  Result<Model> m = load_model(model_path);
  if (!m.ok()) {
    std::printf("\n(prefix-hit benchmark skipped: %s)\n", m.status().to_string().c_str());
    return;
  }
  std::vector<int32_t> sys(1024);
  std::mt19937 rng(3);
  for (auto& t : sys) t = (int32_t)(rng() % 40000 + 100);
  auto request = [&](int salt_user) {
    std::vector<int32_t> p(sys);
    for (int i = 0; i < 32; ++i) p.push_back((int32_t)((salt_user * 7919 + i * 104729) % 40000 + 100));
    return p;
  };
  KvPoolOptions po;
  po.dtype = cpu::KvDType::kF16;
  po.budget_bytes = 256 << 20;
  auto kvp = std::move(KvPool::create(m->config, po).value());
  auto run = [&](const std::vector<int32_t>& prompt, bool shared) {
    GenerateParams gp;
    gp.max_new_tokens = 1;
    gp.kv.dtype = cpu::KvDType::kF16;
    if (shared) gp.shared_kv = SharedKv{kvp};
    auto st = generate(*m, pool, prompt, gp, [](int32_t) { return true; });
    return st.ok() ? *st : GenerateStats{};
  };
  const GenerateStats own = run(request(1), false);   // a cache of its own: full prefill
  const GenerateStats first = run(request(2), true);  // fills the shared pool
  const GenerateStats hit = run(request(3), true);    // same system prompt, new user turn
  std::printf("\n## Prefix-cache hit through the engine: 1024-token shared system prompt + 32-token user turn (f16 KV)\n"
              "| request | prompt tokens | from cache | prefill time |\n|---|---|---|---|\n"
              "| own cache | %lld | %lld | %.3f s |\n| first in shared pool | %lld | %lld | %.3f s |\n"
              "| second in shared pool | %lld | %lld | %.3f s |\n| saved vs own cache | | | %.1f%% |\n",
              (long long)own.n_prompt, (long long)own.n_prompt_cached, own.prompt_seconds,
              (long long)first.n_prompt, (long long)first.n_prompt_cached, first.prompt_seconds,
              (long long)hit.n_prompt, (long long)hit.n_prompt_cached, hit.prompt_seconds,
              100.0 * (1 - hit.prompt_seconds / own.prompt_seconds));
}

static void flops_ceiling(ThreadPool& pool) {
  // Ceiling: f32 FMA throughput of the tiled dot used by the kernels, one big [256 x 64] x [64 x 4096].
  std::vector<float> a(4096 * 64, 0.5f), b(256 * 64, 0.25f), c(256 * 4096);
  const double t = best_of(3, [&] {
    pool.parallel_for(256, 16, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < 4096; ++j) {
          float s = 0;
          for (int e = 0; e < 64; ++e) s += b[(size_t)(i * 64 + e)] * a[(size_t)(j * 64 + e)];
          c[(size_t)(i * 4096 + j)] = s;
        }
    });
  });
  std::printf("ceiling: plain f32 dot loop %.1f GFLOP/s on %d threads\n", 2.0 * 256 * 4096 * 64 / t / 1e9, pool.size());
}

int main(int argc, char** argv) {
  ThreadPool pool(0);
  flops_ceiling(pool);
  bytes_per_token();
  admission();
  attention_latency(pool);
  prefix_hit(argc > 1 ? argv[1] : "models/SmolLM2-135M-Instruct.Q4_1.gguf", pool);
  return 0;
}
