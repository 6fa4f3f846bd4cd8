#include <nlohmann/json.hpp>

#include "planner/report.h"

namespace frugal::planner {

namespace {

using json = nlohmann::ordered_json;

json phase_json(const PhaseEstimate& p) {
  return {{"flops", p.flops},         {"bytes", p.bytes},       {"t_compute_s", p.t_compute},
          {"t_memory_s", p.t_memory}, {"t_dequant_s", p.t_dequant}, {"t_comm_s", p.t_comm},
          {"t_host_s", p.t_host},     {"seconds", p.seconds},   {"intensity_flop_per_byte", p.intensity},
          {"bound", p.compute_bound ? "compute" : "memory"}};
}

json option_json(const PlanOption& o) {
  json j;
  j["weights"] = o.dep.file_weights ? "file" : weight_format_name(o.dep.weights);
  j["embeddings"] = o.dep.file_weights ? "file" : weight_format_name(o.dep.embedding_format());
  j["kv"] = kv_format_name(o.dep.kv);
  j["tp"] = o.dep.tp;
  j["offload_layers"] = o.dep.offload_layers;
  j["fits"] = o.fits;
  if (!o.reason.empty()) j["reason"] = o.reason;
  j["quality"] = {{"tier", std::string(1, o.tier)}, {"delta_ppl", o.delta_ppl < 0 ? json() : json(o.delta_ppl)}};
  if (o.mem.budget == 0) return j;  // invalid deployment: nothing computed
  const MemoryEstimate& m = o.mem;
  j["memory_per_device_bytes"] = {
      {"weights", m.weights},         {"embedding", m.w_embedding},   {"lm_head", m.w_lm_head},
      {"layers", m.w_layers},         {"other", m.w_other},           {"kv_cache", m.kv},
      {"activations", m.activations}, {"activations_prefill", m.act_prefill},
      {"activations_decode", m.act_decode}, {"overhead", m.overhead}, {"total", m.total},
      {"budget", m.budget}};
  j["kv_cache"] = {{"heads_per_device", m.sharded.kv_heads},
             {"bytes_per_token_per_device", m.kv_token_bytes},
             {"tokens_per_sequence_paged", m.kv_tokens_per_seq}};
  if (o.dep.offload_layers > 0)
    j["host_bytes"] = {{"weights", m.host_weights}, {"kv_cache", m.host_kv}, {"budget", m.host_budget}};
  const TimeEstimate& t = o.time;
  j["time"] = {{"prefill", phase_json(t.prefill)},
               {"decode_step", phase_json(t.decode)},
               {"mean_context", t.mean_context},
               {"ttft_s", t.ttft_s},
               {"decode_tok_s_per_sequence", t.decode_tok_s_seq},
               {"decode_tok_s", t.decode_tok_s},
               {"decode_tok_s_per_device", o.score},
               {"request_s", t.request_s},
               {"overall_tok_s", t.overall_tok_s},
               {"machine_balance_flop_per_byte", t.machine_balance},
               {"compute_bound_batch", t.compute_bound_batch > 0 ? json(t.compute_bound_batch) : json()}};
  return j;
}

}  // namespace

std::string render_json(const PlanReport& r) {
  const PlanContext& c = r.ctx;
  const ModelSpec& m = c.model;
  json j;
  j["model"] = {{"name", m.name},
                {"source", r.model.source},
                {"family", m.family},
                {"layers", m.n_layers},
                {"hidden", m.hidden},
                {"ffn", m.ffn_dim},
                {"ffn_kind", m.ffn == FfnKind::kGated ? "gated" : "plain"},
                {"heads", m.n_heads},
                {"kv_heads", m.n_kv_heads},
                {"head_dim", m.hd()},
                {"vocab", m.vocab_size},
                {"experts", m.n_experts},
                {"experts_per_token", m.experts_per_token},
                {"tied_embeddings", m.tied_embeddings},
                {"max_context", m.max_context},
                {"params", {{"total", r.params.total}, {"active", r.params.active},
                            {"embedding", r.params.embedding}, {"lm_head", r.params.lm_head},
                            {"attention", r.params.attention}, {"ffn", r.params.ffn},
                            {"other", r.params.other}}}};
  if (r.model.file)
    j["model"]["file"] = {{"bytes", r.model.file->total_bytes()}, {"tensors", r.model.file->description}};
  const Hardware& h = c.device;
  j["hardware"] = {{"name", h.name},         {"display", h.display},       {"memory_gb", h.memory_gb},
                   {"bandwidth_gbs", h.bandwidth_gbs}, {"bf16_tflops", h.bf16_tflops},
                   {"fp8_tflops", h.fp8_tflops}, {"int8_tops", h.int8_tops}, {"fp32_tflops", h.fp32_tflops},
                   {"link_gbs_per_direction", h.link_gbs}, {"link", h.link}, {"source", h.source},
                   {"max_devices", c.max_devices}};
  if (r.best() && r.best()->dep.offload_layers > 0)
    j["host"] = {{"memory_gb", c.host.memory_gb}, {"bandwidth_gbs", c.host.bandwidth_gbs},
                 {"tflops", c.host.bf16_tflops}, {"source", c.host.source}};
  const Workload& w = c.workload;
  j["workload"] = {{"batch", w.batch}, {"context", w.context}, {"prompt", w.prompt_tokens()},
                   {"output", w.output_tokens()}, {"prefill_chunk", w.prefill_chunk},
                   {"kv_block", w.kv_block}, {"flash_attention", w.flash_attention}};
  j["assumptions"] = {{"mem_util", c.assume.mem_util}, {"overhead_bytes", c.overhead_bytes()},
                      {"activation_bytes", c.assume.act_bytes}, {"eff_bandwidth", c.eff_bandwidth()},
                      {"eff_flops", c.eff_flops()}, {"eff_link", c.eff_link()},
                      {"host_link_gbs", c.assume.host_link_gbs}};
  j["notes"] = r.notes;
  json opts = json::array();
  for (const PlanOption& o : r.options) opts.push_back(option_json(o));
  j["options"] = opts;
  j["fitting_options"] = r.n_fit;
  j["best"] = r.best() ? json(0) : json();
  if (r.max_batch) j["max_batch"] = *r.max_batch;
  if (r.max_context) j["max_context"] = *r.max_context;
  if (!r.explain.empty()) {
    json e = json::array();
    for (const ExplainLine& l : r.explain)
      e.push_back({{"topic", l.topic}, {"formula", l.formula}, {"substituted", l.substituted}, {"result", l.result}});
    j["explain"] = e;
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace frugal::planner
