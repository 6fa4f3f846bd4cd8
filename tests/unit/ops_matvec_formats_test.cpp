// Every weight format's matvec kernels, on every SIMD target this CPU supports (all_kernel_sets),
// against float64 references built from the scalar dequantizer:
//   float path:  |y - sum w_i x_i| <= 2e-5 * sum |w_i x_i|            (float32 accumulation only)
//   int8 path:   x is quantized to ActQ8 (checked: |x_i - d_k q_i| <= d_k/2); then
//                |y - sum w_i xhat_i| <= 2e-5 * sum(|w_i| + |m_i|)|xhat_i|   (accumulation only;
//                m_i is the group offset of asymmetric formats, whose two terms are summed apart)
//                and against the float x: |y - sum w_i x_i| <= sum_i |w_i| d_k(i)/2 + the above.
// Plus the row layouts' quantize -> dequantize bounds (half a step) and bit-exact SIMD
// dequantization (including all 256 FP8 codes).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/matvec_kernels.h"
#include "backend/cpu/ops.h"
#include "backend/cpu/simd_dot.h"
#include "base/fp8.h"
#include "base/half.h"
#include "quant/ggml_blocks.h"
#include "ops_test_util.h"
#include "quant/row_blocks.h"

namespace frugal::cpu {
namespace {

using test::random_vec;

using kern::ActQ8;
using kern::KernelSet;

constexpr double kAccumTol = 2e-5;

const DType kWeightTypes[] = {DType::F32,      DType::F16,      DType::BF16,    DType::Q8_0,
                              DType::Q4_0,     DType::Q4_1,     DType::I8_ROW,  DType::E4M3_ROW,
                              DType::E5M2_ROW, DType::I4_G64,   DType::I4_G64A, DType::I4_G128,
                              DType::I4_G128A};
const DType kInt8PathTypes[] = {DType::Q8_0,   DType::Q4_0,    DType::Q4_1,    DType::I4_G64,
                                DType::I4_G64A, DType::I4_G128, DType::I4_G128A, DType::I8_ROW};

bool is_asym(DType t) { return t == DType::Q4_1 || t == DType::I4_G64A || t == DType::I4_G128A; }


// Row lengths: G, 3G, 576 rounded up to G, 1536 + G (G = block size; 1 for element dtypes, for
// which 67 = 4*16 + 3 also exercises the unrolled loop's tails).
std::vector<int64_t> lengths_for(DType t) {
  const int64_t g = dtype_info(t).block_elems;
  std::vector<int64_t> v = {g, 3 * g, (576 + g - 1) / g * g, 1536 + g};
  if (g == 1) v.push_back(67);
  return v;
}

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;    // [rows, cols] dequantized by the scalar reference
  std::vector<float> moff;   // [rows, cols] |m| of the element's group (asymmetric), else 0
  TensorView view;
};

Weights make_weights(DType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  Weights w;
  std::vector<float> src = random_vec(rows * cols, rng, 0.5f);
  // One shifted row (asymmetric ranges) and one row with an outlier.
  if (rows > 2) {
    for (int64_t c = 0; c < cols; ++c) src[(size_t)(cols + c)] += 1.5f;
    src[(size_t)(2 * cols + cols / 2)] = 9.0f;
  }
  const size_t rb = dtype_row_bytes(t, cols);
  w.bytes.resize(rb * (size_t)rows);
  w.deq.resize((size_t)(rows * cols));
  w.moff.assign((size_t)(rows * cols), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = w.bytes.data() + r * rb;
    quantize_row(t, src.data() + r * cols, row, cols);
    dequantize_row(t, row, w.deq.data() + r * cols, cols);
    if (is_asym(t)) {
      const int64_t g = dtype_info(t).block_elems, bb = dtype_info(t).block_bytes;
      for (int64_t c = 0; c < cols; ++c) {
        uint16_t mh;
        std::memcpy(&mh, row + (c / g) * bb + 2, 2);
        w.moff[(size_t)(r * cols + c)] = std::fabs(fp16_to_f32(mh));
      }
    }
  }
  w.view.name = "w";
  w.view.dtype = t;
  w.view.shape = {rows, cols};
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  return w;
}

std::vector<float> run_matvec(const KernelSet& ks, const Weights& w, const float* x,
                              ThreadPool& pool, ActPrecision act) {
  std::vector<float> y((size_t)w.view.rows(), -12345.0f);
  kern::matvec_with(ks, w.view, x, y.data(), pool, act);
  return y;
}

TEST(MatvecFormats, KernelSetsAndCapabilities) {
  const auto& sets = kern::all_kernel_sets();
  ASSERT_FALSE(sets.empty());
  EXPECT_STREQ(sets.front().name, simd::kernel_isa());
  const std::string last = sets.back().name;
  EXPECT_TRUE(last == "SCALAR" || last == "EMU128") << "the portable fallback comes last: " << last;
  for (const KernelSet& ks : sets) {
    std::printf("[ kernels  ] %s\n", ks.name);
    for (DType t : kWeightTypes) {
      EXPECT_NE(ks.dot_f32[(int)t], nullptr) << ks.name << " " << dtype_name(t);
      EXPECT_NE(ks.dequant[(int)t], nullptr) << ks.name << " " << dtype_name(t);
    }
    for (DType t : kInt8PathTypes) EXPECT_NE(ks.dot_q8[(int)t], nullptr) << ks.name << " " << dtype_name(t);
    EXPECT_NE(ks.quantize_act, nullptr);
  }
  for (DType t : kWeightTypes) EXPECT_TRUE(matmul_supports(t)) << dtype_name(t);
  EXPECT_FALSE(matmul_supports(DType::I8));
  EXPECT_FALSE(matmul_supports(DType::I32));
}

// quantize -> dequantize stays within half a quantization step (plus the fp16 rounding of an
// asymmetric group's offset, and float rounding); FP8 within half an FP8 ulp.
TEST(MatvecFormats, RowLayoutsRoundTripWithinHalfStep) {
  std::mt19937 rng(21);
  for (DType t : {DType::I4_G64, DType::I4_G64A, DType::I4_G128, DType::I4_G128A, DType::I8_ROW,
                  DType::E4M3_ROW, DType::E5M2_ROW}) {
    const int64_t g = dtype_info(t).block_elems;
    for (int64_t n : lengths_for(t)) {
      SCOPED_TRACE(::testing::Message() << dtype_name(t) << " n=" << n);
      std::vector<float> x = random_vec(n, rng, 0.3f);
      for (int64_t i = 0; i < n; i += 5) x[(size_t)i] += 0.7f;  // asymmetric ranges
      if (n >= 2 * g && g > 1) {
        for (int64_t i = 0; i < g; ++i) x[(size_t)i] = 0.0f;  // an all-zero group
      }
      std::vector<uint8_t> q(dtype_row_bytes(t, n));
      std::vector<float> y((size_t)n);
      quantize_row(t, x.data(), q.data(), n);
      dequantize_row(t, q.data(), y.data(), n);
      float s = 0.0f;
      if (g == 1) std::memcpy(&s, q.data(), 4);
      for (int64_t i = 0; i < n; ++i) {
        const double w = x[(size_t)i], e = std::fabs((double)y[(size_t)i] - w);
        double bound;
        if (g > 1) {
          const uint8_t* blk = q.data() + (i / g) * dtype_info(t).block_bytes;
          uint16_t dh, mh = 0;
          std::memcpy(&dh, blk, 2);
          const bool asym = t == DType::I4_G64A || t == DType::I4_G128A;
          if (asym) std::memcpy(&mh, blk + 2, 2);
          const double d = fp16_to_f32(dh), m = fp16_to_f32(mh);
          bound = 0.5 * d + (asym ? std::ldexp(std::fabs(m), -10) : 0.0) + 1e-6 * std::fabs(w);
        } else if (t == DType::I8_ROW) {
          bound = 0.5 * s * (1 + 1e-6) + 1e-6 * std::fabs(w);
        } else if (t == DType::E4M3_ROW) {
          bound = std::ldexp(std::fabs(w), -4) + std::ldexp((double)s, -10) + 1e-6 * std::fabs(w);
        } else {
          bound = std::ldexp(std::fabs(w), -3) + std::ldexp((double)s, -17) + 1e-6 * std::fabs(w);
        }
        ASSERT_LE(e, bound) << "i=" << i << " w=" << w << " got " << y[(size_t)i];
      }
      if (n >= 2 * g && g > 1) {
        for (int64_t i = 0; i < g; ++i) EXPECT_EQ(y[(size_t)i], 0.0f);
      }
    }
  }
  // A zero row of a *_ROW dtype: scale 0, exact zeros.
  for (DType t : {DType::I8_ROW, DType::E4M3_ROW, DType::E5M2_ROW}) {
    std::vector<float> x(40, 0.0f), y(40, 1.0f);
    std::vector<uint8_t> q(dtype_row_bytes(t, 40));
    quantize_row(t, x.data(), q.data(), 40);
    dequantize_row(t, q.data(), y.data(), 40);
    EXPECT_EQ(y, x) << dtype_name(t);
  }
}

bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

// SIMD dequantization (used by matmul) equals the scalar reference bit for bit, every target.
TEST(MatvecFormats, DequantizeBitExactAllTargets) {
  std::mt19937 rng(22);
  for (DType t : kWeightTypes) {
    for (int64_t n : lengths_for(t)) {
      const Weights w = make_weights(t, 1, n, rng);
      for (const KernelSet& ks : kern::all_kernel_sets()) {
        std::vector<float> y((size_t)n, -1.0f);
        ks.dequant[(int)t](w.bytes.data(), y.data(), n);
        EXPECT_EQ(y, w.deq) << ks.name << " " << dtype_name(t) << " n=" << n;
      }
    }
  }
  // Every FP8 / int8 code (NaNs included), scale 0.37, with a row length of 256 + 3.
  for (DType t : {DType::E4M3_ROW, DType::E5M2_ROW, DType::I8_ROW}) {
    const int64_t n = 259;
    std::vector<uint8_t> row(dtype_row_bytes(t, n));
    const float s = 0.37f;
    std::memcpy(row.data(), &s, 4);
    for (int64_t i = 0; i < n; ++i) row[(size_t)(4 + i)] = (uint8_t)(i & 255);
    std::vector<float> ref((size_t)n);
    dequantize_row(t, row.data(), ref.data(), n);
    for (const KernelSet& ks : kern::all_kernel_sets()) {
      std::vector<float> y((size_t)n);
      ks.dequant[(int)t](row.data(), y.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_float(y[(size_t)i], ref[(size_t)i]))
            << ks.name << " " << dtype_name(t) << " code " << i << ": " << y[(size_t)i] << " vs "
            << ref[(size_t)i];
    }
  }
}

struct Ref {
  double value = 0, abs_sum = 0;
};

TEST(MatvecFormats, FloatPathAllTargetsTypesSizesThreads) {
  std::mt19937 rng(23);
  ThreadPool pool1(1), pool2(2);
  for (DType t : kWeightTypes) {
    for (int64_t n : lengths_for(t)) {
      for (int64_t rows : {1, 7, 33}) {
        const Weights w = make_weights(t, rows, n, rng);
        const std::vector<float> x = random_vec(n, rng);
        std::vector<Ref> ref((size_t)rows);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < n; ++i) {
            const double p = (double)w.deq[(size_t)(r * n + i)] * x[(size_t)i];
            ref[(size_t)r].value += p;
            ref[(size_t)r].abs_sum += std::fabs(p);
          }
        for (const KernelSet& ks : kern::all_kernel_sets()) {
          for (ThreadPool* pool : {&pool1, &pool2}) {
            const std::vector<float> y = run_matvec(ks, w, x.data(), *pool, ActPrecision::kF32);
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_LE(std::fabs(y[(size_t)r] - ref[(size_t)r].value),
                        kAccumTol * ref[(size_t)r].abs_sum + 1e-30)
                  << ks.name << " " << dtype_name(t) << " n=" << n << " rows=" << rows
                  << " threads=" << pool->size() << " row " << r;
          }
        }
      }
    }
  }
}

// The quantized activations: zero-padded blocks, |x - d q| <= d/2, d = max|x|/127, and the
// block sums sx consistent with q and d.
void check_act(const ActQ8& a, const std::vector<float>& x, const char* target) {
  const int64_t n = (int64_t)x.size();
  ASSERT_EQ(a.n, n);
  ASSERT_EQ(a.nb, (n + 31) / 32);
  for (int64_t k = 0; k < a.nb; ++k) {
    float amax = 0.0f;
    for (int64_t i = 32 * k; i < std::min(n, 32 * k + 32); ++i) amax = std::max(amax, std::fabs(x[(size_t)i]));
    ASSERT_FLOAT_EQ(a.d[(size_t)k], amax / 127.0f) << target << " block " << k;
    for (int64_t i = 32 * k; i < 32 * k + 32; ++i) {
      const double xi = i < n ? x[(size_t)i] : 0.0;
      const double e = std::fabs(xi - (double)a.d[(size_t)k] * a.q[(size_t)i]);
      ASSERT_LE(e, 0.5 * a.d[(size_t)k] * (1 + 1e-5) + 1e-7 * std::fabs(xi)) << target << " i=" << i;
    }
    int qsum = 0;
    for (int64_t i = 32 * k; i < 32 * k + 32; ++i) qsum += a.q[(size_t)i];
    ASSERT_FLOAT_EQ(a.sx[(size_t)k], a.d[(size_t)k] * (float)qsum) << target << " block " << k;
  }
}

TEST(MatvecFormats, Int8ActivationPathAllTargetsTypesSizesThreads) {
  std::mt19937 rng(24);
  ThreadPool pool1(1), pool2(2);
  for (DType t : kInt8PathTypes) {
    std::vector<int64_t> lengths = lengths_for(t);
    if (t == DType::I8_ROW) lengths.push_back(577);  // a partial last activation block
    for (int64_t n : lengths) {
      for (int64_t rows : {1, 7, 33}) {
        const Weights w = make_weights(t, rows, n, rng);
        std::vector<float> x = random_vec(n, rng);
        x[(size_t)(n / 2)] = 6.0f;  // an outlier: coarse steps for its block
        for (const KernelSet& ks : kern::all_kernel_sets()) {
          ActQ8 a;
          ks.quantize_act(x.data(), n, &a);
          check_act(a, x, ks.name);
          for (ThreadPool* pool : {&pool1, &pool2}) {
            const std::vector<float> y = run_matvec(ks, w, x.data(), *pool, ActPrecision::kQ8);
            for (int64_t r = 0; r < rows; ++r) {
              double v_hat = 0, abs_hat = 0, v = 0, abs_x = 0, step = 0;
              for (int64_t i = 0; i < n; ++i) {
                const double wi = w.deq[(size_t)(r * n + i)], dk = a.d[(size_t)(i / 32)];
                const double xh = dk * a.q[(size_t)i];
                v_hat += wi * xh;
                abs_hat += (std::fabs(wi) + w.moff[(size_t)(r * n + i)]) * std::fabs(xh);
                v += wi * x[(size_t)i];
                abs_x += std::fabs(wi * x[(size_t)i]);
                step += std::fabs(wi) * dk * 0.5 * (1 + 1e-5);
              }
              const double got = y[(size_t)r];
              ASSERT_LE(std::fabs(got - v_hat), kAccumTol * abs_hat + 1e-30)
                  << ks.name << " " << dtype_name(t) << " n=" << n << " rows=" << rows
                  << " threads=" << pool->size() << " row " << r;
              ASSERT_LE(std::fabs(got - v), step + kAccumTol * (abs_hat + abs_x))
                  << ks.name << " " << dtype_name(t) << " n=" << n << " row " << r;
              // The one-row kernel (dot_q8) against the same reference.
              const double one = ks.dot_q8[(int)t](w.bytes.data() + r * dtype_row_bytes(t, n), a, n);
              ASSERT_LE(std::fabs(one - v_hat), kAccumTol * abs_hat + 1e-30)
                  << ks.name << " dot_q8 " << dtype_name(t) << " n=" << n << " row " << r;
            }
          }
        }
      }
    }
  }
}

// Row tiles and leftover rows accumulate each row in the same order: y does not depend on how
// rows are split over threads (1, 2 or 3 threads, 37 rows: tiles of 4 plus leftovers).
TEST(MatvecFormats, Int8PathSameBitsForAnyThreadCount) {
  std::mt19937 rng(26);
  ThreadPool pool1(1), pool2(2), pool3(3);
  for (DType t : kInt8PathTypes) {
    // An even and an odd number of x blocks for the 32-groups (the 512-bit tiles take two per step).
    for (int64_t n : {lengths_for(t)[2], lengths_for(t)[3]}) {
      const Weights w = make_weights(t, 37, n, rng);
      const std::vector<float> x = random_vec(n, rng);
      for (const KernelSet& ks : kern::all_kernel_sets()) {
        const std::vector<float> y1 = run_matvec(ks, w, x.data(), pool1, ActPrecision::kQ8);
        EXPECT_EQ(y1, run_matvec(ks, w, x.data(), pool2, ActPrecision::kQ8)) << ks.name << " " << dtype_name(t) << " n=" << n;
        EXPECT_EQ(y1, run_matvec(ks, w, x.data(), pool3, ActPrecision::kQ8)) << ks.name << " " << dtype_name(t) << " n=" << n;
      }
    }
  }
}

// The 4-bit kernels at the ends of their integer ranges: every nibble 0 or 15 (bytes 0x00,
// 0x0F, 0xF0, 0xFF, 0x8F) times x at +-127 after quantization, so no integer step may saturate
// (vpmaddubsw pair sums reach 2 * 15 * 127; the VNNI tile keeps high nibbles in place, 16x,
// where only vpdpbusd's int32 sums are safe). d = 1 and m = 0: the references are exact.
TEST(MatvecFormats, Int8PathExtremeNibbles) {
  ThreadPool pool(1);
  const uint8_t patterns[] = {0xFF, 0xF0, 0x0F, 0x00, 0x8F};
  constexpr int64_t kRows = 5;  // a 4-row tile and a leftover row
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::I4_G64, DType::I4_G64A, DType::I4_G128, DType::I4_G128A}) {
    const int64_t g = dtype_info(t).block_elems, bb = dtype_info(t).block_bytes;
    const int64_t hdr = is_asym(t) ? 4 : 2;
    for (int64_t n : {3 * g, 1536 + g}) {  // 3 x blocks: the 512-bit G = 32 tiles' odd tail
      Weights w;
      const size_t rb = dtype_row_bytes(t, n);
      w.bytes.assign(rb * kRows, 0);
      w.deq.resize((size_t)(kRows * n));
      for (int64_t r = 0; r < kRows; ++r) {
        uint8_t* row = w.bytes.data() + r * (int64_t)rb;
        for (int64_t b = 0; b < n / g; ++b) {
          uint8_t* blk = row + b * bb;
          const uint16_t one = f32_to_fp16(1.0f);
          std::memcpy(blk, &one, 2);  // d = 1 (and m = 0 for the asymmetric formats)
          std::memset(blk + hdr, patterns[(size_t)r], (size_t)(bb - hdr));
        }
        dequantize_row(t, row, w.deq.data() + r * n, n);
      }
      w.view.dtype = t;
      w.view.shape = {kRows, n};
      w.view.data = w.bytes.data();
      w.view.nbytes = w.bytes.size();
      for (int sign_pattern = 0; sign_pattern < 2; ++sign_pattern) {
        std::vector<float> x((size_t)n);  // |x| = 1 everywhere: every q is +-127
        for (int64_t i = 0; i < n; ++i) x[(size_t)i] = sign_pattern == 1 && (i / 3) % 2 == 1 ? -1.0f : 1.0f;
        for (const KernelSet& ks : kern::all_kernel_sets()) {
          ActQ8 a;
          ks.quantize_act(x.data(), n, &a);
          const std::vector<float> y = run_matvec(ks, w, x.data(), pool, ActPrecision::kQ8);
          for (int64_t r = 0; r < kRows; ++r) {
            double v_hat = 0, abs_hat = 0;
            for (int64_t i = 0; i < n; ++i) {
              const double xh = (double)a.d[(size_t)(i / 32)] * a.q[(size_t)i];
              v_hat += w.deq[(size_t)(r * n + i)] * xh;
              abs_hat += std::fabs(w.deq[(size_t)(r * n + i)] * xh);
            }
            EXPECT_LE(std::fabs(y[(size_t)r] - v_hat), kAccumTol * abs_hat + 1e-30)
                << ks.name << " " << dtype_name(t) << " n=" << n << " byte " << (int)patterns[(size_t)r]
                << " signs " << sign_pattern;
          }
        }
      }
    }
  }
}

// matvec_multi (q/k/v, gate/up sharing x) gives the bits of one matvec per matrix, for mixed
// dtypes (int8 and float paths in one call), both activation precisions, 1-3 threads; a matrix
// whose row length is not x's gets NaN rows, the others are unaffected.
TEST(MatvecFormats, MultiEqualsSeparateMatvecs) {
  std::mt19937 rng(27);
  const int64_t n = 192;  // 6 blocks of 32, 3 groups of 64 (I4_G128 needs 128 | n: not used)
  const DType types[] = {DType::Q4_0, DType::F16, DType::I4_G64A, DType::Q8_0};
  const int64_t rows[] = {45, 7, 16, 33};
  std::vector<Weights> ws;
  for (int i = 0; i < 4; ++i) ws.push_back(make_weights(types[i], rows[i], n, rng));
  const Weights odd = make_weights(DType::Q4_0, 5, 96, rng);
  const std::vector<float> x = random_vec(n, rng);
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (ActPrecision act : {ActPrecision::kF32, ActPrecision::kQ8}) {
      std::vector<std::vector<float>> y(5);
      std::vector<MatvecOut> outs;
      for (int i = 0; i < 4; ++i) {
        y[(size_t)i].assign((size_t)rows[i], -1.0f);
        outs.push_back({&ws[(size_t)i].view, y[(size_t)i].data()});
      }
      y[4].assign(5, 0.0f);
      outs.insert(outs.begin() + 2, MatvecOut{&odd.view, y[4].data()});
      matvec_multi(outs, x.data(), pool, act);
      for (int i = 0; i < 4; ++i) {
        std::vector<float> ref((size_t)rows[i]);
        matvec(ws[(size_t)i].view, x.data(), ref.data(), pool, act);
        EXPECT_EQ(y[(size_t)i], ref) << dtype_name(types[i]) << " threads=" << threads
                                     << " act=" << (act == ActPrecision::kQ8 ? "q8" : "f32");
      }
      for (float v : y[4]) EXPECT_TRUE(std::isnan(v));
    }
  }
}

// kQ8 leaves float weight formats on the float path (same numbers as kF32).
TEST(MatvecFormats, Int8RequestOnFloatFormatsUsesFloatPath) {
  std::mt19937 rng(25);
  ThreadPool pool(2);
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::E4M3_ROW, DType::E5M2_ROW}) {
    const Weights w = make_weights(t, 9, 100, rng);
    const std::vector<float> x = random_vec(100, rng);
    std::vector<float> a(9), b(9);
    matvec(w.view, x.data(), a.data(), pool, ActPrecision::kF32);
    matvec(w.view, x.data(), b.data(), pool, ActPrecision::kQ8);
    EXPECT_EQ(a, b) << dtype_name(t);
  }
}

// Bad shapes of the new dtypes give NaN rows, never a crash.
TEST(MatvecFormats, PartialGroupsGiveNaN) {
  ThreadPool pool(1);
  std::vector<uint8_t> q(1024, 0);
  std::vector<float> x(200, 1.0f), y(2, 0.0f);
  TensorView v;
  v.data = q.data();
  v.shape = {2, 96};  // not a multiple of 64 or 128
  for (DType t : {DType::I4_G64, DType::I4_G64A, DType::I4_G128, DType::I4_G128A}) {
    v.dtype = t;
    for (ActPrecision act : {ActPrecision::kF32, ActPrecision::kQ8}) {
      y.assign(2, 0.0f);
      matvec(v, x.data(), y.data(), pool, act);
      EXPECT_TRUE(std::isnan(y[0]) && std::isnan(y[1])) << dtype_name(t);
    }
  }
}

}  // namespace
}  // namespace frugal::cpu
