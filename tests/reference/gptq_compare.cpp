// frugal's C++ GPTQ on the W and H that gptq_layer_check.py --dump wrote, compared with the NumPy
// reference's codes/scales/zeros (issue 6). Not part of the build; compile against frugal_core:
//
//   g++ -std=c++20 -O2 -I src tests/reference/gptq_compare.cpp build-h6/libfrugal_core.a -lfmt -o /tmp/gptq_compare
//   /tmp/gptq_compare /tmp/h6dump
//
// Prints the fraction of codes that agree, the largest scale difference, and the relative output error
// ||(W − Q)·Xᵀ||² / ||W·Xᵀ||² of both results on the dumped held-out inputs and as the calibration
// quadratic form tr((W − Q) H (W − Q)ᵀ) / tr(W H Wᵀ).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "quant/gptq.h"

using namespace frugal::quant;

template <class T>
static std::vector<T> load(const std::string& path, size_t n) {
  std::vector<T> v(n);
  std::ifstream f(path, std::ios::binary);
  if (!f.read(reinterpret_cast<char*>(v.data()), (std::streamsize)(n * sizeof(T)))) {
    std::fprintf(stderr, "cannot read %zu values from %s\n", n, path.c_str());
    v.clear();
  }
  return v;
}

static double quad_err(const std::vector<float>& w, const std::vector<double>& wq, const std::vector<double>& h,
                       int64_t rows, int64_t cols) {
  double num = 0, den = 0;
  std::vector<double> d((size_t)cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) d[c] = w[r * cols + c] - wq[r * cols + c];
    for (int64_t i = 0; i < cols; ++i) {
      double si = 0, sw = 0;
      for (int64_t j = 0; j < cols; ++j) {
        si += h[i * cols + j] * d[j];
        sw += h[i * cols + j] * w[r * cols + j];
      }
      num += d[i] * si;
      den += w[r * cols + i] * sw;
    }
  }
  return num / den;
}

static double held_err(const std::vector<float>& w, const std::vector<double>& wq, const std::vector<float>& x,
                       int64_t rows, int64_t cols, int64_t n) {
  double num = 0, den = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double a = 0, b = 0;
      for (int64_t c = 0; c < cols; ++c) {
        a += (double)w[r * cols + c] * x[t * cols + c];
        b += ((double)w[r * cols + c] - wq[r * cols + c]) * x[t * cols + c];
      }
      num += b * b;
      den += a * a;
    }
  return num / den;
}

int main(int argc, char** argv) {
  if (argc < 2) { std::fprintf(stderr, "usage: gptq_compare DUMP_DIR\n"); return 2; }
  const std::string dir = argv[1];
  int64_t rows, cols, group, n_held;
  int bits;
  double damp;
  bool act_order = false;
  {
    std::ifstream m(dir + "/meta.txt");
    if (!(m >> rows >> cols >> bits >> group >> damp >> n_held)) { std::fprintf(stderr, "bad meta.txt\n"); return 2; }
    int act = 0;
    if (m >> act) act_order = act != 0;  // optional 7th field; then g_idx.i32 holds the reference's g_idx
  }
  const int64_t ng = cols / group;
  auto w = load<float>(dir + "/W.f32", rows * cols);
  auto h = load<double>(dir + "/H.f64", cols * cols);
  auto rc = load<int32_t>(dir + "/codes.i32", rows * cols);
  auto rs = load<double>(dir + "/scales.f64", rows * ng);
  auto rz = load<double>(dir + "/zeros.f64", rows * ng);
  auto xh = load<float>(dir + "/Xheld.f32", n_held * cols);
  if (w.empty() || h.empty() || rc.empty() || rs.empty() || rz.empty() || xh.empty()) return 2;
  std::vector<int32_t> rg((size_t)cols);
  for (int64_t c = 0; c < cols; ++c) rg[c] = (int32_t)(c / group);
  if (act_order) rg = load<int32_t>(dir + "/g_idx.i32", cols);
  if (rg.empty()) return 2;

  GptqParams p;
  p.quant.bits = bits;
  p.quant.group = group;
  p.damp = damp;
  p.act_order = act_order;
  auto q = quantize_gptq(w.data(), rows, cols, h, p);
  if (!q.ok()) { std::fprintf(stderr, "quantize_gptq: %s\n", q.status().message().c_str()); return 1; }
  int64_t same = 0, off_by_more = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    same += q->codes[i] == rc[i];
    off_by_more += std::abs((int)q->codes[i] - rc[i]) > 1;
  }
  double max_rel_scale = 0;
  int64_t zero_diff = 0;
  for (int64_t i = 0; i < rows * ng; ++i) {
    max_rel_scale = std::max(max_rel_scale, std::fabs(q->scales[i] - rs[i]) / rs[i]);
    zero_diff += q->zeros[i] != (float)rz[i];
  }
  const std::vector<float> ours_f = dequantize(*q);
  std::vector<double> ours(ours_f.begin(), ours_f.end()), ref((size_t)(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t g = r * ng + rg[c];
      ref[r * cols + c] = (double)((float)rs[g] * ((float)rc[r * cols + c] - (float)rz[g]));
    }
  std::printf("W [%lld, %lld] %d-bit g%lld damp %g act_order %d\n", (long long)rows, (long long)cols, bits,
              (long long)group, damp, (int)act_order);
  int64_t gidx_diff = 0;
  for (int64_t c = 0; c < cols; ++c) gidx_diff += (int64_t)q->group_of(c) != rg[c];
  std::printf("g_idx entries differing: %lld\n", (long long)gidx_diff);
  std::printf("codes equal %.4f%% (|diff| > 1: %lld); scales max rel diff %.3g; zeros differing %lld of %lld\n",
              100.0 * same / (rows * cols), (long long)off_by_more, max_rel_scale, (long long)zero_diff,
              (long long)(rows * ng));
  std::printf("calib quadratic error  C++ %.6e  NumPy %.6e\n", quad_err(w, ours, h, rows, cols), quad_err(w, ref, h, rows, cols));
  std::printf("held-out output error  C++ %.6e  NumPy %.6e\n", held_err(w, ours, xh, rows, cols, n_held),
              held_err(w, ref, xh, rows, cols, n_held));
  return 0;
}
