// frugal perplexity -m MODEL -f TEXT [--ctx N] [--chunks K] [--device cuda]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "act_quant_flag.h"
#include "repack_flag.h"
#include "prefill_act_flag.h"
#include "cli_util.h"
#include "commands.h"
#include "device_flags.h"
#include "kv_flags.h"
#include "eval/perplexity.h"
#include "model/model.h"

namespace frugal::cli {

namespace {

struct PplOptions {
  std::string model;
  std::string act_quant = "auto";
  PlacementFlags placement;
  std::string prefill_act = "f32";  // quality of the weights alone (prefill_act_flag.h)
  std::string file;
  int threads = 0;
  KvFlags kv;
  DeviceFlags dev;
  PerplexityParams params;
};

// The GPU flavour: the same windows and scoring, the logits from the bf16 GPU runner.
int run_ppl_cuda(const PplOptions& o, const Model& m, const std::vector<int32_t>& tokens,
                 const PerplexityProgress& progress) {
  cuda::CudaPerplexityParams p;
  p.ppl = o.params;
  p.gpu_memory_utilization = o.dev.gpu_memory_utilization;
  Result<cuda::CudaPerplexityResult> r = perplexity_on_cuda(m, tokens, p, progress);
  if (!r.ok()) return report(r.status());
  std::fprintf(stderr, "frugal: device %s; bf16 weights (upload %.1f s), paged bf16 KV\n",
               r->device.c_str(), r->upload_seconds);
  std::fprintf(stderr, "frugal: GPU memory: %s\n", r->memory.c_str());
  const PerplexityResult& x = r->ppl;
  std::printf("perplexity %.4f +/- %.4f (ctx %lld, %lld windows, %lld scored tokens, "
              "every token but the first of each window; device cuda) in %.1f s\n",
              x.ppl, x.ppl * x.nll_stderr, (long long)o.params.ctx, (long long)x.n_chunks,
              (long long)x.n_scored, x.seconds);
  return 0;
}

int run_ppl(const PplOptions& o) {
  if (o.dev.cuda() && (o.act_quant != "auto" || o.threads != 0))
    return report(InvalidArgument("--act-quant and -t apply to --device cpu"));
  if (Status st = check_device_flags(o.dev, o.kv); !st.ok()) return report(st);
  std::ifstream in(o.file, std::ios::binary);
  if (!in) return report(NotFound("cannot read text file " + o.file));
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  Result<Model> loaded = load_model(o.model);
  if (!loaded.ok()) return report(loaded.status());
  apply_act_quant(o.act_quant, *loaded);
  if (!o.dev.cuda())
    if (Status st = apply_placement(o.placement, *loaded); !st.ok()) return report(st);
  const Model& m = *loaded;
  if (!m.tokenizer) return report(InvalidArgument(m.path + " carries no tokenizer"));
  const std::vector<int32_t> tokens = m.tokenizer->encode(text, false, false);
  Result<KvCacheOptions> kv = kv_options(o.kv);
  if (!kv.ok()) return report(kv.status());
  PerplexityParams params = o.params;
  params.kv = *kv;
  params.prefill_act = prefill_act(o.prefill_act);
  ThreadPool pool(o.dev.cuda() ? 1 : o.threads);  // the CPU runner's (idle on cuda)
  // Progress on stderr: elapsed time and ETA after each window (the first line also says what runs).
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](int64_t done, int64_t total, double ppl) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (done == 1)
      std::fprintf(stderr, "frugal: %zu tokens, %lld windows of %lld, %s\n", tokens.size(),
                   (long long)total, (long long)o.params.ctx,
                   o.dev.cuda() ? "device cuda" : (std::to_string(pool.size()) + " threads").c_str());
    std::fprintf(stderr, "\r[%lld/%lld] perplexity %.4f  elapsed %.0f s  eta %.0f s   ",
                 (long long)done, (long long)total, ppl, el, el / done * (total - done));
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
  if (o.dev.cuda()) return run_ppl_cuda(o, m, tokens, progress);
  Result<PerplexityResult> r = perplexity(m, pool, tokens, params, progress);
  if (!r.ok()) return report(r.status());
  std::printf("perplexity %.4f +/- %.4f (ctx %lld, %lld windows, %lld scored tokens, "
              "every token but the first of each window) in %.1f s\n",
              r->ppl, r->ppl * r->nll_stderr, (long long)o.params.ctx, (long long)r->n_chunks,
              (long long)r->n_scored, r->seconds);
  return 0;
}

}  // namespace

CLI::App* add_perplexity_subcommand(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PplOptions>();
  CLI::App* sub = app.add_subcommand("perplexity", "Perplexity of a model on a text file");
  sub->add_option("-m,--model", o->model, "model")->required();
  sub->add_option("-f,--file", o->file, "text file")->required();
  add_act_quant_option(sub, &o->act_quant);
  add_placement_flags(sub, &o->placement);
  sub->add_option("--ctx", o->params.ctx, "window length in tokens")->capture_default_str();
  sub->add_option("--chunks", o->params.max_chunks, "number of windows (0: all)")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  add_prefill_act_option(sub, &o->prefill_act);
  add_kv_flags(sub, o->kv);
  add_device_flags(sub, o->dev);
  sub->callback([o, &exit_code] { exit_code = run_ppl(*o); });
  return sub;
}

}  // namespace frugal::cli
