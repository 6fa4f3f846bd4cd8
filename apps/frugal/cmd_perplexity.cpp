// frugal perplexity -m MODEL -f TEXT [--ctx N] [--chunks K]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include "act_quant_flag.h"
#include "cli_util.h"
#include "commands.h"
#include "kv_flags.h"
#include "eval/perplexity.h"
#include "model/model.h"

namespace frugal::cli {

namespace {

struct PplOptions {
  std::string model;
  std::string act_quant = "auto";
  std::string file;
  int threads = 0;
  KvFlags kv;
  PerplexityParams params;
};

int run_ppl(const PplOptions& o) {
  std::ifstream in(o.file, std::ios::binary);
  if (!in) return report(NotFound("cannot read text file " + o.file));
  const std::string text((std::istreambuf_iterator<char>(in)), {});
  Result<Model> loaded = load_model(o.model);
  if (!loaded.ok()) return report(loaded.status());
  apply_act_quant(o.act_quant, *loaded);
  const Model& m = *loaded;
  if (!m.tokenizer) return report(InvalidArgument(m.path + " carries no tokenizer"));
  const std::vector<int32_t> tokens = m.tokenizer->encode(text, false, false);
  Result<KvCacheOptions> kv = kv_options(o.kv);
  if (!kv.ok()) return report(kv.status());
  PerplexityParams params = o.params;
  params.kv = *kv;
  ThreadPool pool(o.threads);
  // Progress on stderr: elapsed time and ETA after each window (the first line also says what runs).
  const auto t0 = std::chrono::steady_clock::now();
  auto progress = [&](int64_t done, int64_t total, double ppl) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (done == 1)
      std::fprintf(stderr, "frugal: %zu tokens, %lld windows of %lld, %d threads\n", tokens.size(),
                   (long long)total, (long long)o.params.ctx, pool.size());
    std::fprintf(stderr, "\r[%lld/%lld] perplexity %.4f  elapsed %.0f s  eta %.0f s   ",
                 (long long)done, (long long)total, ppl, el, el / done * (total - done));
    if (done == total) std::fputc('\n', stderr);
    std::fflush(stderr);
  };
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
  sub->add_option("--ctx", o->params.ctx, "window length in tokens")->capture_default_str();
  sub->add_option("--chunks", o->params.max_chunks, "number of windows (0: all)")
      ->capture_default_str();
  sub->add_option("-t,--threads", o->threads, "threads (0: all cores)")->capture_default_str();
  add_kv_flags(sub, o->kv);
  sub->callback([o, &exit_code] { exit_code = run_ppl(*o); });
  return sub;
}

}  // namespace frugal::cli
