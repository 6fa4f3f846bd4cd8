// frugal run --device cuda: the token stream and the statistics (GPU flavour of cmd_run.cpp).
#include <cstdio>

#include "cli_util.h"
#include "device_flags.h"
#include "tokenizer/utf8.h"

namespace frugal::cli {

int stream_generate_cuda(const Model& m, std::span<const int32_t> prompt,
                         const cuda::CudaGenerateParams& params) {
  Utf8StreamBuffer out;  // holds back incomplete UTF-8 sequences between tokens
  bool printed = false;
  auto on_token = [&](int32_t tok) {
    printed = true;
    if (m.tokenizer) {
      std::fputs(out.push(m.tokenizer->token_to_piece(tok)).c_str(), stdout);
    } else {
      std::printf("%d ", tok);
    }
    std::fflush(stdout);
    return true;
  };
  Result<cuda::CudaGenerateResult> r = generate_on_cuda(m, prompt, params, on_token);
  if (printed) {
    std::fputs(out.flush().c_str(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (!r.ok()) return report(r.status());
  const GenerateStats& s = r->stats;
  std::fprintf(stderr, "\nfrugal: device %s, seed %llu, stop: %s\n", r->device.c_str(),
               (unsigned long long)params.sampler.seed, stop_reason_name(s.stop));
  std::fprintf(stderr, "frugal: GPU memory: %s\n", r->memory.c_str());
  std::fprintf(stderr, "frugal: upload (bf16) %.3f s\n", r->upload_seconds);
  std::fprintf(stderr, "frugal: prompt %lld tokens in %.3f s = %.1f tok/s\n",
               (long long)s.n_prompt, s.prompt_seconds,
               s.prompt_seconds > 0 ? s.n_prompt / s.prompt_seconds : 0.0);
  std::fprintf(stderr, "frugal: decode %lld tokens in %.3f s = %.1f tok/s\n",
               (long long)s.n_decode_steps, s.decode_seconds,
               s.decode_seconds > 0 ? s.n_decode_steps / s.decode_seconds : 0.0);
  std::fprintf(stderr, "frugal: peak host RSS %s, KV pool on the device %s\n",
               human_bytes((double)peak_rss_bytes()).c_str(),
               human_bytes((double)s.kv_bytes).c_str());
  return 0;
}

}  // namespace frugal::cli
