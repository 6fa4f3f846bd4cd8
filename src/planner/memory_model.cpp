#include "planner/memory_model.h"

#include <fmt/format.h>

#include <algorithm>

#include "planner/units.h"

namespace frugal::planner {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// a * b * c in bytes, saturated at 10^18 (far beyond any memory) instead of wrapping.
uint64_t sat_mul(uint64_t a, uint64_t b, uint64_t c) {
  const long double v = (long double)a * (long double)b * (long double)c;
  return v >= 1e18L ? (uint64_t)1e18 : (uint64_t)v;
}

void note(ExplainLog* log, std::string topic, std::string formula, std::string substituted,
          std::string result) {
  if (log) log->push_back({std::move(topic), std::move(formula), std::move(substituted), std::move(result)});
}

// Format of a tensor group under a deployment (spec mode).
WeightFormat format_for(const TensorGroup& g, const Deployment& dep) {
  const WeightFormat vec16 = dep.weights == WeightFormat::kF32 ? WeightFormat::kF32 : WeightFormat::kBF16;
  if (!g.matrix || g.role == TensorRole::kRouter) return vec16;  // norms, biases, MoE router
  if (g.role == TensorRole::kEmbedding || g.role == TensorRole::kPositions ||
      g.role == TensorRole::kLmHead)
    return dep.embedding_format();
  return dep.weights;
}

}  // namespace

Result<int> kv_heads_per_device(const ModelSpec& m, int tp) {
  if (tp < 1) return InvalidArgument("tensor-parallel degree must be at least 1 (got " + std::to_string(tp) + ")");
  if (m.n_heads % tp != 0)
    return InvalidArgument(fmt::format("tp {} does not divide the {} query heads of {}", tp,
                                       m.n_heads, m.name));
  if (m.ffn_dim % tp != 0)
    return InvalidArgument(fmt::format("tp {} does not divide the FFN size {} of {}", tp, m.ffn_dim,
                                       m.name));
  if (m.n_kv_heads % tp == 0) return m.n_kv_heads / tp;
  if (tp % m.n_kv_heads == 0) return 1;  // each KV head replicated tp / n_kv_heads times
  return InvalidArgument(fmt::format(
      "tp {} neither divides the {} KV heads of {} nor is a multiple of them (no whole-head "
      "replication possible); use a tp that divides {} or a multiple of it",
      tp, m.n_kv_heads, m.name, m.n_kv_heads));
}

uint64_t kv_bytes_per_token(const ModelSpec& m, KvFormat kv, int kv_heads_per_device, int layers) {
  return 2ull * (uint64_t)layers * (uint64_t)kv_heads_per_device * kv_vector_bytes(kv, m.hd());
}

Result<ShardedWeights> shard_weights(const PlanContext& ctx, const Deployment& dep) {
  const ModelSpec& m = ctx.model;
  FRUGAL_ASSIGN_OR_RETURN(const int kvpd, kv_heads_per_device(m, dep.tp));
  const int tp = dep.tp;
  ShardedWeights s;
  s.kv_heads = kvpd;

  if (dep.file_weights) {
    if (!ctx.file) return InvalidArgument("weights 'file' needs a model file (GGUF) as input");
    const FileWeights& f = *ctx.file;
    auto frac = [&](TensorRole r) -> double {
      switch (r) {
        case TensorRole::kAttnQ:
        case TensorRole::kAttnOut:
        case TensorRole::kFfnIn:
        case TensorRole::kFfnOut: return 1.0 / tp;
        case TensorRole::kAttnKV: return (double)kvpd / m.n_kv_heads;
        case TensorRole::kEmbedding:
        case TensorRole::kLmHead: return (double)ceil_div(m.vocab_size, tp) / (double)m.vocab_size;
        default: return 1.0;
      }
    };
    uint64_t layer_total = 0;
    for (int r = 0; r < (int)TensorRole::kCount; ++r) {
      const TensorRole role = (TensorRole)r;
      const double fr = frac(role);
      s.bytes[r] = (uint64_t)((double)f.bytes[r] * fr + 0.5);
      s.quantized_elems += (uint64_t)((double)f.quantized_elems[r] * fr + 0.5);
      if (role != TensorRole::kEmbedding && role != TensorRole::kPositions &&
          role != TensorRole::kLmHead)
        layer_total += s.bytes[r];
    }
    s.layer_bytes = layer_total / (uint64_t)m.n_layers;
    if (m.is_moe())
      s.expert_bytes = (s.bytes[(int)TensorRole::kFfnIn] + s.bytes[(int)TensorRole::kFfnOut]) /
                       ((uint64_t)m.n_layers * (uint64_t)m.n_experts);
    return s;
  }

  for (const TensorGroup& g : tensor_groups(m)) {
    int64_t in = g.in, out = g.out;
    int64_t& split_dim = g.matrix ? out : in;  // vectors: the length is `in`
    switch (g.split) {
      case Split::kReplicated: break;
      case Split::kOut: split_dim /= tp; break;
      case Split::kIn:
        if (g.matrix) in /= tp;
        break;
      case Split::kKvHeads: split_dim = (int64_t)kvpd * m.hd(); break;
      case Split::kVocab: out = ceil_div(out, tp); break;
    }
    const WeightFormat wf = format_for(g, dep);
    const uint64_t each = weight_tensor_bytes(wf, in, out);
    const int64_t per_layer_instances = g.count * (g.expert ? m.n_experts : 1);
    const uint64_t bytes = each * (uint64_t)g.instances(m);
    s.bytes[(int)g.role] += bytes;
    if (g.per_layer) s.layer_bytes += each * (uint64_t)per_layer_instances;
    if (g.expert) s.expert_bytes += each * (uint64_t)g.count;
    if (g.matrix && weight_format_info(wf).quantized)
      s.quantized_elems += (uint64_t)(in * out) * (uint64_t)g.instances(m);
  }
  return s;
}

uint64_t activation_peak(const PlanContext& ctx, int tp, int64_t tokens, int64_t keys,
                         int64_t seqs, ExplainLog* log, const char* phase) {
  const ModelSpec& m = ctx.model;
  const Workload& w = ctx.workload;
  const double a = ctx.assume.act_bytes;
  const double T = (double)tokens, h = (double)m.hidden;
  const double heads = (double)m.n_heads / tp;
  const int kvpd = std::max(1, m.n_kv_heads / tp);
  const double resid = 2 * T * h * a;  // residual stream + its normalised copy
  const double qkv = T * ((double)m.q_dim() / tp + 2.0 * kvpd * m.hd()) * a;
  const double attn_out = T * (double)m.q_dim() / tp * a;
  // FlashAttention keeps score tiles on chip: only the fp32 log-sum-exp per row is stored.
  // Without it: fp32 scores + 16-bit probabilities for heads x tokens x keys.
  const double scores = w.flash_attention ? heads * T * 4 : heads * T * (double)keys * (4 + a);
  const double attn = qkv + attn_out + scores;
  const double ffn_tokens = m.is_moe() ? T * m.experts_per_token : T;
  const double ffn = ffn_tokens * (double)m.ffn_dim / tp * a * (m.ffn == FfnKind::kGated ? 3 : 2);
  const double logits = (double)seqs * (double)m.vocab_size * 4;  // fp32, one row per sequence
  const double peak = resid + std::max(attn, ffn) + logits;
  note(log, fmt::format("activations ({})", phase),
       "2*T*h*a + max(T*(q+2kv)*a + T*q*a + scores, T*ffn*a*(gated?3:2)) + seqs*vocab*4, scores = " +
           std::string(w.flash_attention ? "heads*T*4 (FlashAttention)" : "heads*T*keys*(4+a)"),
       fmt::format("T={} keys={} h={} a={} q={} kv={} ffn={} heads/dev={:g} seqs={} vocab={}",
                   tokens, keys, m.hidden, a, m.q_dim() / tp, (int64_t)kvpd * m.hd(),
                   m.ffn_dim / tp, heads, seqs, m.vocab_size),
       fmt_bytes(peak));
  return peak >= 1e18 ? (uint64_t)1e18 : (uint64_t)peak;
}

Result<MemoryEstimate> estimate_memory(const PlanContext& ctx, const Deployment& dep, ExplainLog* log) {
  const ModelSpec& m = ctx.model;
  const Workload& w = ctx.workload;
  FRUGAL_RETURN_IF_ERROR(validate_workload(w));
  if (dep.offload_layers < 0 || dep.offload_layers > m.n_layers)
    return InvalidArgument(fmt::format("offloaded layers must be in [0, {}] (got {})", m.n_layers,
                                       dep.offload_layers));
  if (dep.offload_layers > 0 && ctx.device.is_cpu)
    return InvalidArgument("layer offload needs an accelerator; the device is already the host CPU");

  MemoryEstimate e;
  FRUGAL_ASSIGN_OR_RETURN(e.sharded, shard_weights(ctx, dep));
  const ShardedWeights& s = e.sharded;
  const int L = m.n_layers;
  e.device_layers = L - dep.offload_layers;
  e.w_embedding = s.bytes[(int)TensorRole::kEmbedding] + s.bytes[(int)TensorRole::kPositions];
  e.w_lm_head = s.bytes[(int)TensorRole::kLmHead];
  e.w_layers = s.layer_bytes * (uint64_t)e.device_layers;
  const uint64_t all_layers = s.layer_bytes * (uint64_t)L;
  const uint64_t accounted = e.w_embedding + e.w_lm_head + all_layers;
  e.w_other = s.total() > accounted ? s.total() - accounted : 0;
  e.weights = e.w_embedding + e.w_lm_head + e.w_layers + e.w_other;
  e.host_weights = s.layer_bytes * (uint64_t)dep.offload_layers;
  note(log, "weights / device",
       "sum over tensors of bytes(format, in/tp or out/tp) (+ embeddings, LM head in " +
           std::string(weight_format_name(dep.embedding_format())) + ")",
       fmt::format("embeddings {} + lm_head {} + {} layers x {} + other {}", fmt_bytes(e.w_embedding),
                   fmt_bytes(e.w_lm_head), e.device_layers, fmt_bytes(s.layer_bytes), fmt_bytes(e.w_other)),
       fmt_bytes(e.weights));

  // KV cache: whole pages of kv_block tokens per sequence.
  e.kv_tokens_per_seq = (w.context + w.kv_block - 1) / w.kv_block * w.kv_block;
  e.kv_token_bytes = kv_bytes_per_token(m, dep.kv, s.kv_heads, e.device_layers);
  e.kv = sat_mul((uint64_t)w.batch, (uint64_t)e.kv_tokens_per_seq, e.kv_token_bytes);
  e.host_kv = sat_mul((uint64_t)w.batch, (uint64_t)e.kv_tokens_per_seq,
                      kv_bytes_per_token(m, dep.kv, s.kv_heads, dep.offload_layers));
  note(log, "KV bytes / token / device", "2 * layers * kv_heads_per_device * bytes(head_dim in kv format)",
       fmt::format("2 * {} * {} * {} ({} x {})", e.device_layers, s.kv_heads,
                   kv_vector_bytes(dep.kv, m.hd()), m.hd(), kv_format_name(dep.kv)),
       fmt::format("{} B", e.kv_token_bytes));
  note(log, "KV cache / device", "batch * ceil(context / block) * block * KV bytes per token",
       fmt::format("{} * ceil({} / {}) * {} * {}", w.batch, w.context, w.kv_block, w.kv_block,
                   e.kv_token_bytes),
       fmt_bytes(e.kv));

  // Activations: a prefill chunk attending to the whole prompt, or a decode step over the batch.
  const int64_t P = w.prompt_tokens();
  const int64_t chunk = std::min<int64_t>(w.prefill_chunk, w.batch * P);
  const int64_t chunk_seqs = std::min<int64_t>(w.batch, (chunk + P - 1) / P);
  e.act_prefill = activation_peak(ctx, dep.tp, chunk, P, chunk_seqs, log, "prefill chunk");
  e.act_decode = activation_peak(ctx, dep.tp, w.batch, w.context, w.batch, log, "decode step");
  e.activations = std::max(e.act_prefill, e.act_decode);

  e.overhead = (uint64_t)ctx.overhead_bytes();
  e.total = e.weights + e.kv + e.activations + e.overhead;
  e.budget = (uint64_t)((double)ctx.device.memory_bytes() * ctx.assume.mem_util);
  e.host_budget = ctx.host.memory_bytes();
  e.host_fits = dep.offload_layers == 0 || e.host_weights + e.host_kv <= e.host_budget;
  e.fits = e.total <= e.budget && e.host_fits;
  note(log, "total / device", "weights + KV + activations + overhead <= memory * utilisation",
       fmt::format("{} + {} + {} + {} vs {} * {:g}", fmt_bytes(e.weights), fmt_bytes(e.kv),
                   fmt_bytes(e.activations), fmt_bytes(e.overhead), fmt_bytes(ctx.device.memory_bytes()),
                   ctx.assume.mem_util),
       fmt::format("{} {} {}", fmt_bytes(e.total), e.total <= e.budget ? "<=" : ">", fmt_bytes(e.budget)));
  if (dep.offload_layers > 0)
    note(log, "host memory", "offloaded layers' weights + their KV <= host memory",
         fmt::format("{} + {} vs {}", fmt_bytes(e.host_weights), fmt_bytes(e.host_kv),
                     fmt_bytes(e.host_budget)),
         e.host_fits ? "fits" : "does not fit");
  return e;
}

}  // namespace frugal::planner
