// frugal run --device cuda: the token stream and the statistics (GPU flavour of cmd_run.cpp).
#include <cstdio>
#include <functional>

#include "cli_util.h"
#include "token_echo.h"
#include "device_flags.h"

namespace frugal::cli {

int stream_generate_cuda(const Model& m, std::span<const int32_t> prompt,
                         const cuda::CudaGenerateParams& params) {
  TokenEcho echo(m);  // nothing reaches stdout unless generation produced tokens
  Result<cuda::CudaGenerateResult> r = generate_on_cuda(m, prompt, params, std::ref(echo));
  echo.finish();
  if (!r.ok()) return report(r.status());
  const GenerateStats& s = r->stats;
  std::fprintf(stderr, "\nfrugal: device %s, seed %llu, stop: %s\n", r->device.c_str(),
               (unsigned long long)params.sampler.seed, stop_reason_name(s.stop));
  std::fprintf(stderr, "frugal: GPU memory: %s\n", r->memory.c_str());
  std::fprintf(stderr, "frugal: upload (bf16) %.3f s\n", r->upload_seconds);
  print_speed(s);
  std::fprintf(stderr, "frugal: peak host RSS %s, KV pool on the device %s\n",
               human_bytes((double)peak_rss_bytes()).c_str(),
               human_bytes((double)s.kv_bytes).c_str());
  return 0;
}

}  // namespace frugal::cli
