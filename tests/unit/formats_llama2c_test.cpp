// llama2.c checkpoint reader: the real stories260K checkpoint (shapes, offsets and spot values
// recomputed here from the raw file with plain offset arithmetic), an unshared-classifier file
// built in the test, and malformed headers / sizes.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "formats/llama2c.h"
#include "test_util.h"

namespace frugal::llama2c {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

float float_at(const std::string& bytes, uint64_t float_index) {
  float x;
  std::memcpy(&x, bytes.data() + 28 + 4 * float_index, 4);
  return x;
}

TEST(Llama2c, Stories260K) {
  const std::string path = test::shared_data("stories260K.bin");
  if (!test::file_exists(path)) GTEST_SKIP() << "missing " << path;
  Result<Llama2cModel> m = Llama2cModel::open(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  const ModelConfig& c = m->config();
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hidden_dim, 172);
  EXPECT_EQ(c.n_layers, 5);
  EXPECT_EQ(c.n_heads, 8);
  EXPECT_EQ(c.n_kv_heads, 4);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.max_seq_len, 512);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_layout, RopeLayout::kAdjacent);
  EXPECT_EQ(c.rope_base, 10000.0f);
  EXPECT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.name, "stories260K");
  EXPECT_TRUE(c.validate().ok());
  EXPECT_EQ(m->tensors().size(), 1u + 5 * 9 + 1);
  EXPECT_EQ(m->find("output.weight"), nullptr);

  // Independent offsets: floats before each array, in file order.
  const uint64_t D = 64, H = 172, L = 5, V = 512, KV = 32;
  const uint64_t o_embd = 0, o_att = V * D, o_wq = o_att + L * D, o_wk = o_wq + L * D * D;
  const uint64_t o_wv = o_wk + L * KV * D, o_wo = o_wv + L * KV * D, o_ffn = o_wo + L * D * D;
  const uint64_t o_w1 = o_ffn + L * D, o_w2 = o_w1 + L * H * D, o_w3 = o_w2 + L * D * H;
  const uint64_t o_final = o_w3 + L * H * D;
  const std::string raw = read_bytes(path);
  ASSERT_EQ(raw.size(), 28 + 4 * (o_final + D + 512 * 8));
  struct Want {
    std::string name;
    std::vector<int64_t> shape;
    uint64_t offset;  // in floats after the header
  };
  const std::vector<Want> wants = {
      {"token_embd.weight", {512, 64}, o_embd},
      {"blk.0.attn_norm.weight", {64}, o_att},
      {"blk.3.attn_norm.weight", {64}, o_att + 3 * D},
      {"blk.2.attn_q.weight", {64, 64}, o_wq + 2 * D * D},
      {"blk.4.attn_k.weight", {32, 64}, o_wk + 4 * KV * D},
      {"blk.1.attn_v.weight", {32, 64}, o_wv + 1 * KV * D},
      {"blk.4.attn_output.weight", {64, 64}, o_wo + 4 * D * D},
      {"blk.2.ffn_norm.weight", {64}, o_ffn + 2 * D},
      {"blk.3.ffn_gate.weight", {172, 64}, o_w1 + 3 * H * D},
      {"blk.3.ffn_down.weight", {64, 172}, o_w2 + 3 * D * H},
      {"blk.4.ffn_up.weight", {172, 64}, o_w3 + 4 * H * D},
      {"output_norm.weight", {64}, o_final},
  };
  for (const Want& w : wants) {
    SCOPED_TRACE(w.name);
    Result<TensorView> t = m->tensor(w.name);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->dtype, DType::F32);
    EXPECT_EQ(t->shape, w.shape);
    EXPECT_EQ(t->nbytes, (size_t)t->numel() * 4);
    const float* p = static_cast<const float*>(t->data);
    EXPECT_EQ(p[0], float_at(raw, w.offset));
    EXPECT_EQ(p[t->numel() - 1], float_at(raw, w.offset + t->numel() - 1));
  }
  // RMSNorm weights of a trained model are O(1) and positive-ish; embeddings are small.
  const float* norm = static_cast<const float*>(m->find("output_norm.weight")->data);
  float mean = 0;
  for (int i = 0; i < 64; ++i) mean += norm[i] / 64;
  EXPECT_GT(mean, 0.1f);
  EXPECT_EQ(m->tensor("blk.5.attn_q.weight").status().code(), StatusCode::kNotFound);
}

class Llama2cFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::temp_directory_path() /
           ("frugal_l2c_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Header + `floats` floats with value i (the float index).
  std::string write(const std::vector<int32_t>& header, uint64_t floats, int64_t extra_bytes = 0) {
    std::string b(header.size() * 4, '\0');
    std::memcpy(b.data(), header.data(), b.size());
    for (uint64_t i = 0; i < floats; ++i) {
      const float x = (float)i;
      b.append(reinterpret_cast<const char*>(&x), 4);
    }
    if (extra_bytes > 0) b.append((size_t)extra_bytes, '\0');
    if (extra_bytes < 0) b.resize(b.size() - (size_t)-extra_bytes);
    const std::string p = (dir_ / ("m" + std::to_string(n_++) + ".bin")).string();
    std::ofstream(p, std::ios::binary).write(b.data(), (std::streamsize)b.size());
    return p;
  }
  fs::path dir_;
  int n_ = 0;
};

// dim 8, hidden 16, 2 layers, 2 heads, 1 kv head (kv_dim 4), vocab 10, seq 4.
uint64_t tiny_floats(bool unshared) {
  const uint64_t D = 8, H = 16, L = 2, V = 10, KV = 4, S = 4, hd = 4;
  return V * D + L * D + L * D * D * 2 + L * KV * D * 2 + L * D + 3 * L * H * D + D + S * hd +
         (unshared ? V * D : 0);
}

TEST_F(Llama2cFiles, UnsharedClassifier) {
  const std::string p = write({8, 16, 2, 2, 1, -10, 4}, tiny_floats(true));
  Result<Llama2cModel> m = Llama2cModel::open(p);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_FALSE(m->config().tied_embeddings);
  EXPECT_EQ(m->config().vocab_size, 10);
  EXPECT_EQ(m->config().kv_dim(), 4);
  Result<TensorView> out = m->tensor("output.weight");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->shape, (std::vector<int64_t>{10, 8}));
  // wcls is the last V*D floats; each float holds its own index.
  EXPECT_EQ(static_cast<const float*>(out->data)[0], (float)(tiny_floats(true) - 80));
  EXPECT_EQ(m->tensors().back().name, "output.weight");
  Result<TensorView> k1 = m->tensor("blk.1.attn_k.weight");
  ASSERT_TRUE(k1.ok());
  EXPECT_EQ(k1->shape, (std::vector<int64_t>{4, 8}));
  // token_embd 80 + rms_att 16 + wq 128, then wk layer 1 starts after layer 0's 32 floats.
  EXPECT_EQ(static_cast<const float*>(k1->data)[0], (float)(80 + 16 + 128 + 32));
}

TEST_F(Llama2cFiles, Malformed) {
  auto expect = [](const std::string& p, StatusCode code, const std::string& needle) {
    Result<Llama2cModel> m = Llama2cModel::open(p);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), code) << m.status().to_string();
    EXPECT_NE(m.status().message().find(p), std::string::npos) << m.status().message();
    EXPECT_NE(m.status().message().find(needle), std::string::npos) << m.status().message();
  };
  expect(write({8, 16}, 0), StatusCode::kCorrupt, "too small");
  expect(write({8, 16, 2, 2, 1, 10, 4}, tiny_floats(false), 4), StatusCode::kCorrupt,
         "implies " + std::to_string(28 + 4 * tiny_floats(false)) + " bytes, but the file has " +
             std::to_string(32 + 4 * tiny_floats(false)));
  expect(write({8, 16, 2, 2, 1, 10, 4}, tiny_floats(false), -1), StatusCode::kCorrupt, "implies");
  // Unshared flag without the extra classifier bytes.
  expect(write({8, 16, 2, 2, 1, -10, 4}, tiny_floats(false)), StatusCode::kCorrupt, "implies");
  expect(write({0, 16, 2, 2, 1, 10, 4}, 100), StatusCode::kCorrupt, "dim");
  expect(write({8, 16, 2, 3, 1, 10, 4}, 100), StatusCode::kCorrupt, "n_heads");
  expect(write({8, 16, 2, 2, 0, 10, 4}, 100), StatusCode::kCorrupt, "n_kv_heads");
  expect(write({8, 16, 2, 2, 1, 0, 4}, 100), StatusCode::kCorrupt, "vocab_size");
  expect(write({2147483646, 2147483646, 2147483646, 2, 1, 10, 4}, 10), StatusCode::kCorrupt, "");
  Result<Llama2cModel> missing = Llama2cModel::open((dir_ / "none.bin").string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace frugal::llama2c
