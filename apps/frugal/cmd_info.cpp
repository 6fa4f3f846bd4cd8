// frugal info MODEL: architecture, parameter count, tensor dtypes, memory breakdown.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "cli_util.h"
#include "commands.h"
#include "model/model.h"

namespace frugal::cli {

namespace {

struct InfoOptions {
  std::string model;
};

// config.json's quantization_config (or AutoGPTQ's quantize_config.json), as written.
void print_quantization_config(const std::string& dir) {
  namespace fs = std::filesystem;
  for (const char* name : {"config.json", "quantize_config.json"}) {
    std::ifstream in(fs::path(dir) / name);
    if (!in) continue;
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    const nlohmann::json* q = &j;
    if (std::string(name) == "config.json") {
      auto it = j.find("quantization_config");
      if (it == j.end() || it->is_null()) continue;
      q = &*it;
    }
    std::printf("quantization: %s (%s)\n", q->dump().c_str(), name);
    return;
  }
}

int run_info(const InfoOptions& o) {
  Result<Model> loaded = load_model(o.model);
  if (!loaded.ok()) return report(loaded.status());
  const Model& m = *loaded;
  const ModelConfig& c = m.config;

  // Parameters and tensors by dtype, counting each distinct tensor once.
  std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> (tensors, params)
  std::set<const void*> seen;
  int64_t params = 0;
  auto add = [&](const TensorView& t) {
    if (!t.data || !seen.insert(t.data).second) return;
    auto& e = by_dtype[dtype_name(t.dtype)];
    e.first += 1;
    e.second += t.numel();
    params += t.numel();
  };
  const ModelWeights& w = m.weights;
  add(w.token_embd);
  for (const LayerWeights& l : w.layers)
    for (const TensorView* t :
         {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_norm, &l.w_gate, &l.w_up, &l.w_down})
      add(*t);
  add(w.output_norm);
  add(w.output);

  const char* attn = c.n_kv_heads == c.n_heads ? "MHA" : c.n_kv_heads == 1 ? "MQA" : "GQA";
  std::printf("model:        %s\n", m.path.c_str());
  std::printf("format:       %s\n", model_format_name(m.format));
  std::printf("architecture: %s%s%s\n", c.arch.c_str(), c.name.empty() ? "" : " — ",
              c.name.c_str());
  std::printf("parameters:   %lld (%.1f M)\n", (long long)params, params / 1e6);
  std::printf("layers:       %d\n", c.n_layers);
  std::printf("hidden:       %lld, FFN %lld\n", (long long)c.dim, (long long)c.hidden_dim);
  std::printf("attention:    %s, %d query heads, %d KV heads (%d per group), head dim %lld\n",
              attn, c.n_heads, c.n_kv_heads, c.kv_groups(), (long long)c.head_dim());
  std::printf("vocabulary:   %lld%s\n", (long long)c.vocab_size,
              w.output.data == w.token_embd.data ? " (output tied to token embeddings)" : "");
  std::printf("context:      %lld, RoPE base %g (%s pairs), RMSNorm eps %g\n",
              (long long)c.max_seq_len, c.rope_base,
              c.rope_layout == RopeLayout::kHalf ? "rotate-half" : "adjacent", c.norm_eps);
  std::printf("tokenizer:    %s\n", m.tokenizer ? "embedded" : "none (token ids only)");
  if (m.format == ModelFormat::kSafetensors) print_quantization_config(m.path);
  for (const std::string& n : m.notes) std::printf("  load: %s\n", n.c_str());
  std::printf("\ntensors by dtype:\n");
  for (const auto& [name, e] : by_dtype)
    std::printf("  %-6s %4lld tensors %12lld params\n", name.c_str(), (long long)e.first,
                (long long)e.second);
  std::printf("\nmemory:\n");
  for (const auto& [name, bytes] : m.weight_bytes_by_dtype())
    std::printf("  weights %-6s %12zu bytes  %s\n", name.c_str(), bytes,
                human_bytes((double)bytes).c_str());
  const size_t wb = m.weight_bytes();
  std::printf("  weights total  %12zu bytes  %s  (%.3f bits/param)\n", wb,
              human_bytes((double)wb).c_str(), 8.0 * wb / params);
  const int64_t kv32 = c.kv_bytes_per_token(4), kv16 = c.kv_bytes_per_token(2);
  std::printf("  KV per token   %12lld bytes (F32 cache, as `frugal run` allocates), %lld bytes at F16\n",
              (long long)kv32, (long long)kv16);
  std::printf("  KV full context (%lld tokens): %s F32, %s F16\n", (long long)c.max_seq_len,
              human_bytes((double)kv32 * c.max_seq_len).c_str(),
              human_bytes((double)kv16 * c.max_seq_len).c_str());
  return 0;
}

}  // namespace

CLI::App* add_info_subcommand(CLI::App& app, int& exit_code) {
  auto opts = std::make_shared<InfoOptions>();
  CLI::App* sub = app.add_subcommand("info", "Show a model's architecture, dtypes and memory");
  sub->add_option("model,-m,--model", opts->model, "model file (.gguf, llama2.c .bin) or HF directory")
      ->required();
  sub->callback([opts, &exit_code] { exit_code = run_info(*opts); });
  return sub;
}

}  // namespace frugal::cli
