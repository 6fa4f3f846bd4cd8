#include "planner/search.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>

#include "planner/quality.h"
#include "planner/units.h"

namespace frugal::planner {

SearchSpace default_search_space(const PlanContext& ctx) {
  SearchSpace s;
  if (ctx.device.is_cpu) {
    s.weights = {WeightFormat::kF16, WeightFormat::kQ8_0, WeightFormat::kQ6_K, WeightFormat::kQ4_K,
                 WeightFormat::kQ4_0};
    s.kv = {KvFormat::kF16, KvFormat::kQ8_0, KvFormat::kQ4_0};
    s.allow_offload = false;
  } else {
    s.weights = {WeightFormat::kBF16};
    if (ctx.device.fp8_tflops > 0) s.weights.push_back(WeightFormat::kFP8);
    s.weights.push_back(WeightFormat::kInt8);
    s.weights.push_back(WeightFormat::kInt4Gptq);
    s.kv = {KvFormat::kF16};
    if (ctx.device.fp8_tflops > 0) s.kv.push_back(KvFormat::kFP8);
    else s.kv.push_back(KvFormat::kInt8);
    s.kv.push_back(KvFormat::kInt4);
  }
  s.include_file_weights = ctx.file.has_value();
  // Powers of two up to the devices available, skipping degrees the model's heads rule out.
  for (int tp = 1; tp <= std::max(1, ctx.max_devices); tp *= 2)
    if (tp == 1 || kv_heads_per_device(ctx.model, tp).ok()) s.tps.push_back(tp);
  return s;
}

Result<PlanOption> evaluate_option(const PlanContext& ctx, const Deployment& dep, ExplainLog* log) {
  PlanOption o;
  o.dep = dep;
  FRUGAL_ASSIGN_OR_RETURN(o.mem, estimate_memory(ctx, dep, log));
  FRUGAL_ASSIGN_OR_RETURN(o.time, estimate_time(ctx, dep, o.mem, log));
  const QualityNote kq = kv_quality(dep.kv);
  if (dep.file_weights) {
    o.tier = kq.tier;  // the file's own quality is whatever it is: not judged here
    o.delta_ppl = -1;
  } else {
    const QualityNote wq = weight_quality(dep.weights);
    o.tier = combined_tier(wq.tier, kq.tier);
    o.delta_ppl = wq.delta_ppl + kq.delta_ppl;
  }
  o.fits = o.mem.fits;
  if (o.mem.total > o.mem.budget)
    o.reason = fmt::format("needs {} of {} per device", fmt_bytes(o.mem.total), fmt_bytes(o.mem.budget));
  else if (!o.mem.host_fits)
    o.reason = fmt::format("host needs {} of {}", fmt_bytes(o.mem.host_weights + o.mem.host_kv),
                           fmt_bytes(o.mem.host_budget));
  o.score = o.time.decode_tok_s / dep.tp;
  return o;
}

Result<std::vector<PlanOption>> search_options(const PlanContext& ctx, const SearchSpace& space) {
  std::vector<PlanOption> fit, rejected;
  std::vector<Deployment> deps;
  for (int tp : space.tps)
    for (KvFormat kv : space.kv) {
      Deployment d;
      d.kv = kv;
      d.tp = tp;
      d.embeddings = space.embeddings;
      d.offload_layers = std::max(0, space.fixed_offload);
      if (space.include_file_weights) {
        d.file_weights = true;
        deps.push_back(d);
      }
      d.file_weights = false;
      for (WeightFormat wf : space.weights) {
        d.weights = wf;
        deps.push_back(d);
      }
    }

  for (const Deployment& d : deps) {
    Result<PlanOption> r = evaluate_option(ctx, d);
    if (!r.ok()) {  // e.g. tp does not divide the heads: report, do not abort the search
      PlanOption o;
      o.dep = d;
      o.reason = r.status().message();
      rejected.push_back(std::move(o));
      continue;
    }
    PlanOption o = std::move(r).value();
    if (o.tier > space.min_tier) continue;
    if (o.fits) {
      fit.push_back(std::move(o));
      continue;
    }
    // The fewest layers on the host that make it fit (memory falls as layers move off).
    const bool offloadable = space.allow_offload && space.fixed_offload < 0 && !ctx.device.is_cpu && d.tp == 1 &&
                             o.mem.total > o.mem.budget;
    if (offloadable) {
      int lo = 1, hi = ctx.model.n_layers, best = -1;
      PlanOption best_o;
      while (lo <= hi) {
        const int mid = (lo + hi) / 2;
        Deployment dd = d;
        dd.offload_layers = mid;
        Result<PlanOption> rr = evaluate_option(ctx, dd);
        if (!rr.ok()) break;
        const bool device_fits = rr->mem.total <= rr->mem.budget;
        if (device_fits) {
          hi = mid - 1;
          if (rr->fits) {
            best = mid;
            best_o = std::move(rr).value();
          }
        } else {
          lo = mid + 1;
        }
      }
      if (best > 0) {
        fit.push_back(std::move(best_o));
        continue;  // listed with its offload instead of as rejected
      }
    }
    rejected.push_back(std::move(o));
  }
  // Throughput decides, in 5% steps (a model this coarse cannot rank closer than that); within
  // a step, better quality first, then higher throughput.
  auto bucket = [](double score) { return score > 0 ? (int64_t)std::floor(std::log(score) / std::log(1.05)) : INT64_MIN; };
  std::stable_sort(fit.begin(), fit.end(), [&](const PlanOption& a, const PlanOption& b) {
    const int64_t ba = bucket(a.score), bb = bucket(b.score);
    if (ba != bb) return ba > bb;
    if (a.tier != b.tier) return a.tier < b.tier;
    if (a.delta_ppl != b.delta_ppl) return a.delta_ppl < b.delta_ppl;
    return a.score > b.score;
  });
  for (PlanOption& r : rejected) fit.push_back(std::move(r));
  return fit;
}

namespace {

// Largest x in [lo, hi] with ok(x), assuming ok is monotone (true then false); 0 if !ok(lo).
template <class F>
Result<int64_t> largest(int64_t lo, int64_t hi, F ok) {
  FRUGAL_ASSIGN_OR_RETURN(bool first, ok(lo));
  if (!first) return int64_t{0};
  // ok(lo) holds from here on.
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    FRUGAL_ASSIGN_OR_RETURN(bool good, ok(mid));
    if (good) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

}  // namespace

Result<int64_t> max_batch(const PlanContext& ctx, const Deployment& dep) {
  return largest(1, int64_t{1} << 24, [&](int64_t b) -> Result<bool> {
    PlanContext c = ctx;
    c.workload.batch = b;
    FRUGAL_ASSIGN_OR_RETURN(MemoryEstimate m, estimate_memory(c, dep));
    return m.fits;
  });
}

Result<int64_t> max_context(const PlanContext& ctx, const Deployment& dep) {
  return largest(2, int64_t{1} << 26, [&](int64_t s) -> Result<bool> {
    PlanContext c = ctx;
    c.workload.context = s;
    c.workload.prompt = 0;  // half the context
    FRUGAL_ASSIGN_OR_RETURN(MemoryEstimate m, estimate_memory(c, dep));
    return m.fits;
  });
}

}  // namespace frugal::planner
