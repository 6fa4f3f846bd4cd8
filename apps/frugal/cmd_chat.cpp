// frugal chat -m MODEL: a multi-turn conversation on stdin/stdout. Every turn re-sends the
// whole conversation through the chat template, as an OpenAI-style client does; the KV pool is
// shared by the turns, so the prefix cache skips the prefill of everything already seen (the
// system prompt and earlier turns) and each turn prefills only its new tokens. Per-turn
// statistics (prompt tokens, how many came from the prefix cache, prefill and decode speed)
// go to stderr.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "act_quant_flag.h"
#include "cli_util.h"
#include "commands.h"
#include "kv_flags.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/utf8.h"

namespace frugal::cli {

namespace {

struct ChatOptions {
  std::string model;
  std::string system;
  std::string system_file;
  int64_t n_predict = 256;
  int64_t ctx = 4096;
  int threads = 0;
  bool seed_given = false;
  bool no_prefix_cache = false;
  std::string decode_act = "q8";
  std::string act_quant = "auto";
  SamplerParams sampler;
  KvFlags kv;
};

int run_chat(ChatOptions o) {
  if (!o.system_file.empty()) {
    std::ifstream in(o.system_file, std::ios::binary);
    if (!in) return report(NotFound("cannot read system prompt file " + o.system_file));
    o.system.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (!o.seed_given) o.sampler.seed = std::random_device{}();
  if (Status st = o.sampler.validate(); !st.ok()) return report(st);
  if (o.ctx <= 0) return report(InvalidArgument("--ctx-size must be positive"));
  Result<KvCacheOptions> kvo = kv_options(o.kv);
  if (!kvo.ok()) return report(kvo.status());
  if (kvo->kind != KvCacheKind::kPaged)
    return report(InvalidArgument("frugal chat shares one paged KV pool across turns: "
                                  "--kv-cache contiguous is not supported here"));

  Result<Model> loaded = load_model(o.model);
  if (!loaded.ok()) return report(loaded.status());
  apply_act_quant(o.act_quant, *loaded);
  const Model& m = *loaded;
  if (!m.tokenizer) return report(InvalidArgument(m.path + " carries no tokenizer"));
  Result<ChatTemplate> tmpl = ChatTemplate::parse(m.tokenizer->chat_template());
  if (!tmpl.ok()) return report(tmpl.status());

  KvPoolOptions po;
  po.dtype = kvo->dtype.value_or(cpu::KvDType::kF32);
  po.block_size = kvo->block_size;
  po.max_seq_len = std::min<int64_t>(o.ctx, m.config.max_seq_len);
  po.prefix_caching = !o.no_prefix_cache;
  if (kvo->budget_bytes > 0) {
    po.budget_bytes = kvo->budget_bytes;
  } else {
    // One full context plus a few blocks: the live turn shares the previous turn's cached
    // blocks, and blocks it does not share are evicted when needed.
    Result<int64_t> b =
        kv_pool_bytes_for_tokens(m.config, po.dtype, po.block_size, po.max_seq_len + 8 * po.block_size);
    if (!b.ok()) return report(b.status());
    po.budget_bytes = *b;
  }
  Result<std::shared_ptr<KvPool>> kv_pool = KvPool::create(m.config, po);
  if (!kv_pool.ok()) return report(kv_pool.status());

  ThreadPool pool(o.threads);
  GenerateParams gp;
  gp.max_new_tokens = o.n_predict;
  gp.sampler = o.sampler;
  gp.decode_act = o.decode_act == "f32" ? cpu::ActPrecision::kF32 : cpu::ActPrecision::kQ8;
  gp.shared_kv = SharedKv{*kv_pool};
  std::fprintf(stderr, "frugal chat: %s, KV pool %s (%s, block %d), prefix cache %s; one message per "
               "line, end with Ctrl-D\n",
               m.path.c_str(), human_bytes((double)(*kv_pool)->bytes()).c_str(),
               cpu::kv_dtype_name(po.dtype), po.block_size, po.prefix_caching ? "on" : "off");

  std::vector<ChatMessage> msgs;
  if (!o.system.empty()) msgs.push_back({"system", o.system});
  std::string line;
  int turn = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    ++turn;
    msgs.push_back({"user", line});
    const std::string text = tmpl->apply(msgs, /*add_generation_prompt=*/true);
    const std::vector<int32_t> prompt =
        m.tokenizer->encode(text, /*add_special=*/true, /*parse_special=*/true);
    Utf8StreamBuffer out;
    std::string answer;
    auto on_token = [&](int32_t tok) {
      const std::string piece = m.tokenizer->token_to_piece(tok);
      answer += piece;
      std::fputs(out.push(piece).c_str(), stdout);
      std::fflush(stdout);
      return true;
    };
    Result<GenerateStats> st = generate(m, pool, prompt, gp, on_token);
    std::fputs(out.flush().c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!st.ok()) return report(st.status());  // the conversation so far has been printed
    msgs.push_back({"assistant", answer});
    const GenerateStats& s = *st;
    const kv::KvStats ks = (*kv_pool)->stats();
    std::fprintf(stderr,
                 "frugal: turn %d: prompt %lld tokens (%lld from the prefix cache, %lld computed in "
                 "%.3f s), decode %lld tokens in %.3f s = %.1f tok/s, stop: %s; cache hit rate "
                 "%.2f\n",
                 turn, (long long)s.n_prompt, (long long)s.n_prompt_cached,
                 (long long)(s.n_prompt - s.n_prompt_cached), s.prompt_seconds,
                 (long long)s.n_decode_steps, s.decode_seconds,
                 s.decode_seconds > 0 ? s.n_decode_steps / s.decode_seconds : 0.0,
                 stop_reason_name(s.stop), ks.hit_rate());
  }
  return 0;
}

}  // namespace

CLI::App* add_chat_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* sub = app.add_subcommand(
      "chat", "Multi-turn chat on stdin (one message per line); turns share the prefix cache");
  sub->add_option("-m,--model", o->model, "model file (.gguf) or HF directory")->required();
  sub->add_option("--system", o->system, "system message");
  sub->add_option("--system-file", o->system_file, "read the system message from a file");
  sub->add_option("-n,--n-predict", o->n_predict, "max tokens per answer")->capture_default_str();
  sub->add_option("-c,--ctx-size", o->ctx, "longest conversation in tokens")->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--temp", o->sampler.temperature, "temperature (0: greedy)")->capture_default_str();
  sub->add_option("--top-k", o->sampler.top_k, "top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", o->sampler.top_p, "top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->sampler.min_p, "min-p (0: off)")->capture_default_str();
  sub->add_option_function<uint64_t>(
      "-s,--seed", [o](uint64_t s) { o->sampler.seed = s; o->seed_given = true; }, "random seed");
  sub->add_option("--decode-act", o->decode_act,
                  "decode activations: q8 (int8 blocks, integer dot products) or f32 (exact)")
      ->check(CLI::IsMember({"f32", "q8"}))
      ->capture_default_str();
  add_act_quant_option(sub, &o->act_quant);
  sub->add_flag("--no-prefix-cache", o->no_prefix_cache, "recompute every turn's whole prompt");
  add_kv_flags(sub, o->kv);
  sub->callback([o, &exit_code]() { exit_code = run_chat(*o); });
  return sub;
}

}  // namespace frugal::cli
