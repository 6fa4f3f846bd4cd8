// frugal run -m MODEL -p PROMPT: stream generated text to stdout, statistics to stderr.
#include <cstdio>
#include <functional>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "act_quant_flag.h"
#include "repack_flag.h"
#include "prefill_act_flag.h"
#include "cli_util.h"
#include "token_echo.h"
#include "commands.h"
#include "device_flags.h"
#include "kv_flags.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "tokenizer/chat_template.h"

namespace frugal::cli {

namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::string prompt_ids;  // comma-separated token ids (models without a tokenizer)
  std::string system;
  int64_t n_predict = 128;
  int64_t ctx = 0;
  int threads = 0;
  bool chat = false;
  bool ignore_eos = false;
  bool seed_given = false;
  std::string decode_act = "q8";  // faster decode on integer weights (bench/RESULTS.md)
  std::string prefill_act = kPrefillActDefault;
  std::string act_quant = "auto";
  PlacementFlags placement;
  SamplerParams sampler;
  KvFlags kv;
  DeviceFlags dev;
};

Result<std::vector<int32_t>> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used = 0;
      const long v = std::stol(item, &used);
      if (used != item.size() && item.find_first_not_of(' ', used) != std::string::npos) throw 0;
      ids.push_back((int32_t)v);
    } catch (...) {
      return InvalidArgument("--prompt-ids: '" + item + "' is not a token id");
    }
  }
  return ids;
}

int run_generate(RunOptions o) {
  if (o.prompt.empty() && o.prompt_file.empty() && o.prompt_ids.empty())
    return report(InvalidArgument("no prompt given (use -p PROMPT, -f FILE or --prompt-ids)"));
  if (!o.prompt_file.empty()) {
    std::ifstream in(o.prompt_file, std::ios::binary);
    if (!in) return report(NotFound("cannot read prompt file " + o.prompt_file));
    o.prompt.assign(std::istreambuf_iterator<char>(in), {});
  }
  if (!o.seed_given) o.sampler.seed = std::random_device{}();
  if (Status st = o.sampler.validate(); !st.ok()) return report(st);
  if (Status st = check_device_flags(o.dev, o.kv); !st.ok()) return report(st);

  Result<Model> loaded = load_model(o.model);
  if (!loaded.ok()) return report(loaded.status());
  apply_act_quant(o.act_quant, *loaded);
  if (!o.dev.cuda())
    if (Status st = apply_placement(o.placement, *loaded); !st.ok()) return report(st);
  const Model& m = *loaded;

  std::vector<int32_t> prompt;
  if (!o.prompt_ids.empty()) {
    Result<std::vector<int32_t>> ids = parse_ids(o.prompt_ids);
    if (!ids.ok()) return report(ids.status());
    prompt = std::move(*ids);
  } else {
    if (!m.tokenizer)
      return report(InvalidArgument(m.path + " carries no tokenizer: pass --prompt-ids"));
    std::string text = o.prompt;
    if (o.chat) {
      Result<ChatTemplate> tmpl = ChatTemplate::parse(m.tokenizer->chat_template());
      if (!tmpl.ok()) return report(tmpl.status());
      std::vector<ChatMessage> msgs;
      if (!o.system.empty()) msgs.push_back({"system", o.system});
      msgs.push_back({"user", o.prompt});
      text = tmpl->apply(msgs, /*add_generation_prompt=*/true);
    }
    prompt = m.tokenizer->encode(text, /*add_special=*/true, /*parse_special=*/o.chat);
  }

  if (o.dev.cuda()) {
    cuda::CudaGenerateParams cp;
    cp.max_new_tokens = o.n_predict;
    cp.n_ctx = o.ctx;
    cp.ignore_eos = o.ignore_eos;
    cp.sampler = o.sampler;
    cp.gpu_memory_utilization = o.dev.gpu_memory_utilization;
    return stream_generate_cuda(m, prompt, cp);
  }

  ThreadPool pool(o.threads);
  GenerateParams gp;
  gp.max_new_tokens = o.n_predict;
  gp.n_ctx = o.ctx;
  gp.ignore_eos = o.ignore_eos;
  gp.sampler = o.sampler;
  if (o.decode_act == "q8") gp.decode_act = cpu::ActPrecision::kQ8;
  else if (o.decode_act != "f32")
    return report(InvalidArgument("--decode-act must be f32 or q8, got '" + o.decode_act + "'"));
  gp.prefill_act = prefill_act(o.prefill_act);
  Result<KvCacheOptions> kv = kv_options(o.kv);
  if (!kv.ok()) return report(kv.status());
  gp.kv = *kv;

  TokenEcho echo(m);  // nothing reaches stdout unless generation produced tokens
  Result<GenerateStats> st = generate(m, pool, prompt, gp, std::ref(echo));
  echo.finish();
  if (!st.ok()) return report(st.status());

  const GenerateStats& s = *st;
  std::fprintf(stderr, "\nfrugal: seed %llu, %d threads, stop: %s\n",
               (unsigned long long)o.sampler.seed, pool.size(), stop_reason_name(s.stop));
  print_speed(s);
  std::fprintf(stderr, "frugal: peak RSS %s (weights %s, KV cache %s)\n",
               human_bytes((double)peak_rss_bytes()).c_str(),
               human_bytes((double)m.weight_bytes()).c_str(),
               human_bytes((double)s.kv_bytes).c_str());
  return 0;
}

}  // namespace

CLI::App* add_run_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Generate text from a prompt");
  sub->add_option("-m,--model", o->model, "model file (.gguf, llama2.c .bin) or HF directory")
      ->required();
  sub->add_option("-p,--prompt", o->prompt, "prompt text");
  sub->add_option("-f,--file", o->prompt_file, "read the prompt from a file");
  sub->add_option("--prompt-ids", o->prompt_ids, "prompt as comma-separated token ids");
  sub->add_option("-n,--n-predict", o->n_predict, "tokens to generate")->capture_default_str();
  sub->add_option("-c,--ctx-size", o->ctx, "context size (0: prompt + n-predict)")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  sub->add_option("--temp", o->sampler.temperature, "temperature (0: greedy)")
      ->capture_default_str();
  sub->add_option("--top-k", o->sampler.top_k, "top-k (0: off)")->capture_default_str();
  sub->add_option("--top-p", o->sampler.top_p, "top-p (1: off)")->capture_default_str();
  sub->add_option("--min-p", o->sampler.min_p, "min-p (0: off)")->capture_default_str();
  sub->add_option("--repeat-penalty", o->sampler.repeat_penalty, "repetition penalty (1: off)")
      ->capture_default_str();
  sub->add_option("--repeat-last-n", o->sampler.repeat_last_n, "tokens the penalty looks back")
      ->capture_default_str();
  sub->add_option_function<uint64_t>(
      "-s,--seed", [o](uint64_t s) { o->sampler.seed = s; o->seed_given = true; },
      "random seed (default: random, printed on stderr)");
  sub->add_option("--decode-act", o->decode_act,
                  "decode activations: f32 (exact) or q8 (int8 blocks, integer dot products)")
      ->capture_default_str();
  add_prefill_act_option(sub, &o->prefill_act);
  add_act_quant_option(sub, &o->act_quant);
  add_placement_flags(sub, &o->placement);
  sub->add_flag("--ignore-eos", o->ignore_eos, "do not stop at end-of-generation tokens");
  sub->add_flag("--chat", o->chat, "wrap the prompt in the model's chat template (ChatML)");
  sub->add_option("--system", o->system, "system message for --chat");
  add_kv_flags(sub, o->kv);
  add_device_flags(sub, o->dev);
  sub->callback([o, &exit_code] { exit_code = run_generate(*o); });
  return sub;
}

}  // namespace frugal::cli
