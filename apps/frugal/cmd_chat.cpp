// frugal chat -m MODEL [--device cuda]: a multi-turn conversation on stdin/stdout. Every turn
// re-sends the whole conversation through the chat template, as an OpenAI-style client does;
// the backend (chat_backend.h) reuses what earlier turns computed — on the CPU a shared KV pool
// whose prefix cache skips the prefill of everything already seen, on the GPU one sequence whose
// K/V stay on the device — so each turn prefills only its new tokens. Answers stream to stdout
// as they are generated; per-turn statistics (prompt tokens, how many were reused, prefill and
// decode speed) go to stderr. Lines "/reset" (start a new conversation, same system message) and
// "/exit" are commands. A conversation that outgrows the context (--ctx-size) is one error line
// naming both sizes; its last message is dropped and the chat goes on (/reset to start over),
// and the exit code is then 1.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "act_quant_flag.h"
#include "chat_backend.h"
#include "prefill_act_flag.h"
#include "cli_util.h"
#include "commands.h"
#include "device_flags.h"
#include "kv_flags.h"
#include "model/model.h"
#include "repack_flag.h"
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
  std::string prefill_act = kPrefillActDefault;
  std::string act_quant = "auto";
  PlacementFlags placement;
  SamplerParams sampler;
  KvFlags kv;
  DeviceFlags dev;
};

Result<std::unique_ptr<ChatBackend>> make_backend(const ChatOptions& o, const Model& m) {
  ChatBackendParams p;
  p.n_predict = o.n_predict;
  p.n_ctx = o.ctx;
  p.sampler = o.sampler;
  p.reuse = !o.no_prefix_cache;
  if (o.dev.cuda()) {
    p.gpu_memory_utilization = o.dev.gpu_memory_utilization;
    return make_cuda_chat_backend(m, p);
  }
  p.threads = o.threads;
  p.decode_act = o.decode_act == "f32" ? cpu::ActPrecision::kF32 : cpu::ActPrecision::kQ8;
  p.prefill_act = prefill_act(o.prefill_act);
  FRUGAL_ASSIGN_OR_RETURN(p.kv, kv_options(o.kv));
  return make_cpu_chat_backend(m, p);
}

// One answer streamed to stdout (whole UTF-8 characters), ended by a newline.
Result<GenerateStats> stream_answer(ChatBackend& b, const Model& m,
                                    const std::vector<int32_t>& prompt, std::string& answer) {
  Utf8StreamBuffer out;
  auto on_token = [&](int32_t tok) {
    const std::string piece = m.tokenizer->token_to_piece(tok);
    answer += piece;
    std::fputs(out.push(piece).c_str(), stdout);
    std::fflush(stdout);
    return true;
  };
  Result<GenerateStats> st = b.answer(prompt, on_token);
  std::fputs(out.flush().c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return st;
}

void print_turn(int turn, const GenerateStats& s, const ChatBackend& b) {
  std::fprintf(stderr,
               "frugal: turn %d: prompt %lld tokens (%lld from %s, %lld computed in %.3f s), "
               "decode %lld tokens in %.3f s = %.1f tok/s, stop: %s%s\n",
               turn, (long long)s.n_prompt, (long long)s.n_prompt_cached, b.reuse_source(),
               (long long)(s.n_prompt - s.n_prompt_cached), s.prompt_seconds,
               (long long)s.n_decode_steps, s.decode_seconds,
               s.decode_seconds > 0 ? s.n_decode_steps / s.decode_seconds : 0.0,
               stop_reason_name(s.stop), b.turn_note().c_str());
}

int run_chat(ChatOptions o) {
  if (!o.system_file.empty()) {
    std::ifstream in(o.system_file, std::ios::binary);
    if (!in) return report(NotFound("cannot read system prompt file " + o.system_file));
    o.system.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (!o.seed_given) o.sampler.seed = std::random_device{}();
  if (Status st = o.sampler.validate(); !st.ok()) return report(st);
  if (o.ctx <= 0) return report(InvalidArgument("--ctx-size must be positive"));
  if (Status st = check_device_flags(o.dev, o.kv); !st.ok()) return report(st);
  if (Result<KvCacheOptions> kvo = kv_options(o.kv); !kvo.ok()) return report(kvo.status());

  Result<Model> loaded = load_model(o.model);
  if (!loaded.ok()) return report(loaded.status());
  apply_act_quant(o.act_quant, *loaded);
  if (!o.dev.cuda())
    if (Status st = apply_placement(o.placement, *loaded); !st.ok()) return report(st);
  const Model& m = *loaded;
  if (!m.tokenizer) return report(InvalidArgument(m.path + " carries no tokenizer"));
  Result<ChatTemplate> tmpl = ChatTemplate::parse(m.tokenizer->chat_template());
  if (!tmpl.ok()) return report(tmpl.status());
  Result<std::unique_ptr<ChatBackend>> backend = make_backend(o, m);
  if (!backend.ok()) return report(backend.status());
  ChatBackend& b = **backend;
  std::fprintf(stderr, "frugal chat: %s, %s; context %lld tokens; one message per line, /reset "
               "starts over, /exit or Ctrl-D ends\n",
               m.path.c_str(), b.describe().c_str(), (long long)b.n_ctx());

  std::vector<ChatMessage> msgs;
  auto reset = [&] {
    msgs.clear();
    if (!o.system.empty()) msgs.push_back({"system", o.system});
  };
  reset();
  std::string line;
  int turn = 0, exit_code = 0;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    if (line == "/exit") break;
    if (line == "/reset") {
      reset();
      std::fprintf(stderr, "frugal: conversation reset\n");
      continue;
    }
    msgs.push_back({"user", line});
    const std::string text = tmpl->apply(msgs, /*add_generation_prompt=*/true);
    const std::vector<int32_t> prompt =
        m.tokenizer->encode(text, /*add_special=*/true, /*parse_special=*/true);
    if ((int64_t)prompt.size() > b.n_ctx()) {
      msgs.pop_back();
      exit_code = report(OutOfRange(
          "the conversation is " + std::to_string(prompt.size()) + " tokens with this message, "
          "more than the context holds (" + std::to_string(b.n_ctx()) + " tokens, --ctx-size); "
          "the message was dropped: /reset starts a new conversation"));
      continue;
    }
    ++turn;
    std::string answer;
    Result<GenerateStats> st = stream_answer(b, m, prompt, answer);
    if (!st.ok()) return report(st.status());  // the conversation so far has been printed
    msgs.push_back({"assistant", answer});
    print_turn(turn, *st, b);
  }
  return exit_code;
}

}  // namespace

CLI::App* add_chat_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* sub = app.add_subcommand(
      "chat", "Multi-turn chat on stdin (one message per line; /reset, /exit); turns reuse the "
              "K/V of the conversation so far");
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
  sub->add_option("--repeat-penalty", o->sampler.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", o->sampler.repeat_last_n, "tokens the penalty looks back")
      ->capture_default_str();
  sub->add_option_function<uint64_t>(
      "-s,--seed", [o](uint64_t s) { o->sampler.seed = s; o->seed_given = true; }, "random seed");
  sub->add_option("--decode-act", o->decode_act,
                  "decode activations: q8 (int8 blocks, integer dot products) or f32 (exact)")
      ->check(CLI::IsMember({"f32", "q8"}))
      ->capture_default_str();
  add_prefill_act_option(sub, &o->prefill_act);
  add_act_quant_option(sub, &o->act_quant);
  add_placement_flags(sub, &o->placement);
  sub->add_flag("--no-prefix-cache", o->no_prefix_cache,
                "recompute every turn's whole conversation (CPU: no prefix cache; GPU: no K/V "
                "kept between turns)");
  add_kv_flags(sub, o->kv);
  add_device_flags(sub, o->dev);
  sub->callback([o, &exit_code]() { exit_code = run_chat(*o); });
  return sub;
}

}  // namespace frugal::cli
