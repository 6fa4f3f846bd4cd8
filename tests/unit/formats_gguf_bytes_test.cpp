// GGUF reader on hand-built bytes: a version-2 file, ggml types frugal cannot compute with, and
// malformed files (each must yield the right StatusCode and a message naming the file and the
// key/tensor at fault, never a crash). Files are built programmatically into a temp dir.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <unistd.h>

#include "formats/gguf.h"

namespace frugal::gguf {
namespace {

namespace fs = std::filesystem;

// Little-endian byte builder.
struct Bytes {
  std::string b;
  template <class T>
  Bytes& put(T x) {
    char buf[sizeof(T)];
    std::memcpy(buf, &x, sizeof(T));
    b.append(buf, sizeof(T));
    return *this;
  }
  Bytes& str(std::string_view s) {
    put<uint64_t>(s.size());
    b.append(s);
    return *this;
  }
};

struct TinyTensor {
  std::string name;
  std::vector<uint64_t> dims;  // innermost first
  uint32_t type = 0;           // ggml id
  std::optional<uint64_t> offset;
  uint64_t data_bytes = 0;     // bytes reserved for it in the data section
};

// A small valid GGUF (unless the options say otherwise): kv "general.architecture" = "llama",
// "t.n" = u32 7, optional general.alignment, any raw extra kv entries, then the tensors.
struct Tiny {
  uint32_t version = 3;
  std::optional<uint32_t> alignment;
  std::vector<std::string> raw_kvs;  // each a complete encoded key + type + payload
  std::vector<TinyTensor> tensors = {{"w", {4, 2}, 0, std::nullopt, 32}};
  int64_t trim_tail = 0;             // bytes removed from the end

  std::string build() const {
    Bytes h;
    h.put<uint32_t>(0x46554747).put<uint32_t>(version);
    h.put<uint64_t>(tensors.size());
    h.put<uint64_t>(2 + (alignment ? 1 : 0) + raw_kvs.size());
    h.str("general.architecture").put<uint32_t>(8).str("llama");
    h.str("t.n").put<uint32_t>(4).put<uint32_t>(7);
    if (alignment) h.str("general.alignment").put<uint32_t>(4).put<uint32_t>(*alignment);
    for (const std::string& kv : raw_kvs) h.b += kv;
    const uint64_t align = alignment && *alignment ? *alignment : 32;
    uint64_t next = 0;
    for (const TinyTensor& t : tensors) {
      h.str(t.name).put<uint32_t>((uint32_t)t.dims.size());
      for (uint64_t d : t.dims) h.put<uint64_t>(d);
      h.put<uint32_t>(t.type).put<uint64_t>(t.offset ? *t.offset : next);
      next += (t.data_bytes + align - 1) / align * align;
    }
    if (align > 1 && (align & (align - 1)) == 0)
      while (h.b.size() % align) h.b += '\0';
    for (uint64_t i = 0; i < next; ++i) h.b += (char)(i * 31);
    h.b.resize(h.b.size() - (size_t)trim_tail);
    return h.b;
  }
};

std::string raw_kv(std::string_view key, uint32_t type, const std::string& payload) {
  Bytes k;
  k.str(key).put<uint32_t>(type);
  return k.b + payload;
}

class GgufBytesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    // Prefer tmpfs: the truncation/byte-flip test writes a few thousand small files.
    std::error_code ec;
    const fs::path base = fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
    dir_ = base /
           ("frugal_gguf_bytes_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string write(const std::string& bytes, const std::string& name = "f.gguf") {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
    return p;
  }
  // Opens `bytes` and expects failure with `code` and a message containing the file path and
  // every string in `needles`.
  void expect_error(const std::string& bytes, StatusCode code,
                    std::vector<std::string> needles = {}) {
    const std::string p = write(bytes);
    Result<GgufFile> f = GgufFile::open(p);
    ASSERT_FALSE(f.ok());
    EXPECT_EQ(f.status().code(), code) << f.status().to_string();
    needles.push_back(p);
    for (const std::string& n : needles)
      EXPECT_NE(f.status().message().find(n), std::string::npos)
          << "'" << n << "' not in: " << f.status().message();
  }
  fs::path dir_;
};

TEST_F(GgufBytesTest, TinyFileIsValid) {
  Tiny t;
  Result<GgufFile> f = GgufFile::open(write(t.build()));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(*f->get_u64("t.n"), 7u);
  Result<TensorView> w = f->tensor("w");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(w->nbytes, 32u);
}

TEST_F(GgufBytesTest, ReadsVersion2) {
  Tiny t;
  t.version = 2;
  t.raw_kvs.push_back(raw_kv("t.arr", 9, Bytes().put<uint32_t>(8).put<uint64_t>(2).str("ab").str("c").b));
  Result<GgufFile> f = GgufFile::open(write(t.build()));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_string_array("t.arr"), (std::vector<std::string>{"ab", "c"}));
  EXPECT_TRUE(f->tensor("w").ok());
}

TEST_F(GgufBytesTest, EmptyAndTruncatedHeader) {
  expect_error("", StatusCode::kCorrupt, {"empty"});
  const std::string full = Tiny().build();
  expect_error(full.substr(0, 10), StatusCode::kCorrupt, {"tensor count"});
  expect_error(full.substr(0, 30), StatusCode::kCorrupt);
}

TEST_F(GgufBytesTest, WrongMagicAndVersions) {
  std::string b = Tiny().build();
  b[3] = 'X';
  expect_error(b, StatusCode::kCorrupt, {"not a GGUF file"});
  Tiny v1;
  v1.version = 1;
  expect_error(v1.build(), StatusCode::kUnsupported, {"GGUF version 1 is not supported"});
  Tiny v99;
  v99.version = 99;
  expect_error(v99.build(), StatusCode::kUnsupported, {"GGUF version 99"});
  Tiny be;
  be.version = 0x03000000;  // a big-endian file's version read little-endian
  expect_error(be.build(), StatusCode::kUnsupported, {"big-endian"});
}

TEST_F(GgufBytesTest, StringLengthPastEof) {
  Tiny t;
  t.tensors.clear();
  t.raw_kvs.push_back(raw_kv("t.s", 8, Bytes().put<uint64_t>(1000000).b + "abc"));
  expect_error(t.build(), StatusCode::kCorrupt, {"t.s", "string length 1000000"});
  // A key whose own length runs past the end.
  Tiny k;
  k.tensors.clear();
  k.raw_kvs.push_back(Bytes().put<uint64_t>(uint64_t{1} << 40).b + "key");
  expect_error(k.build(), StatusCode::kCorrupt, {"metadata key #2"});
}

TEST_F(GgufBytesTest, AbsurdArrayCount) {
  Tiny t;
  t.raw_kvs.push_back(raw_kv("t.big", 9, Bytes().put<uint32_t>(0).put<uint64_t>(uint64_t{1} << 60).b));
  expect_error(t.build(), StatusCode::kCorrupt, {"t.big", "1152921504606846976"});
  Tiny s;  // strings: each needs at least 8 bytes
  s.raw_kvs.push_back(raw_kv("t.strs", 9, Bytes().put<uint32_t>(8).put<uint64_t>(1000).b));
  expect_error(s.build(), StatusCode::kCorrupt, {"t.strs"});
}

TEST_F(GgufBytesTest, InvalidValueTypesAndDeepNesting) {
  Tiny t;
  t.raw_kvs.push_back(raw_kv("t.bad", 13, ""));
  expect_error(t.build(), StatusCode::kCorrupt, {"t.bad", "invalid value type 13"});
  Tiny e;
  e.raw_kvs.push_back(raw_kv("t.bade", 9, Bytes().put<uint32_t>(77).put<uint64_t>(1).b));
  expect_error(e.build(), StatusCode::kCorrupt, {"t.bade", "element type 77"});
  // 40 levels of [array of 1 array]: rejected, no stack exhaustion.
  std::string payload;
  for (int i = 0; i < 40; ++i) payload += Bytes().put<uint32_t>(9).put<uint64_t>(1).b;
  payload += Bytes().put<uint32_t>(0).put<uint64_t>(0).b;
  Tiny d;
  d.raw_kvs.push_back(raw_kv("t.deep", 9, payload));
  expect_error(d.build(), StatusCode::kCorrupt, {"t.deep", "nested"});
}

TEST_F(GgufBytesTest, DuplicateKeyAndTensor) {
  Tiny k;
  k.raw_kvs.push_back(raw_kv("t.n", 4, Bytes().put<uint32_t>(8).b));
  expect_error(k.build(), StatusCode::kCorrupt, {"duplicate metadata key 't.n'"});
  Tiny t;
  t.tensors.push_back({"w", {4}, 0, std::nullopt, 16});
  expect_error(t.build(), StatusCode::kCorrupt, {"duplicate tensor 'w'"});
}

TEST_F(GgufBytesTest, BadTensorShapes) {
  Tiny five;
  five.tensors = {{"blk.0.five", {1, 1, 1, 1, 4}, 0, std::nullopt, 16}};
  expect_error(five.build(), StatusCode::kCorrupt, {"blk.0.five", "5 dimensions"});
  Tiny over;
  over.tensors = {{"huge", {uint64_t{1} << 32, uint64_t{1} << 32}, 0, std::nullopt, 0}};
  expect_error(over.build(), StatusCode::kCorrupt, {"huge", "overflow"});
  Tiny row;
  row.tensors = {{"q", {33, 1}, 8, std::nullopt, 64}};  // Q8_0 rows must be multiples of 32
  expect_error(row.build(), StatusCode::kCorrupt, {"'q'", "row length 33", "Q8_0"});
}

TEST_F(GgufBytesTest, TensorOffsetsAndExtents) {
  Tiny un;
  un.tensors = {{"w", {4, 2}, 0, uint64_t{4}, 64}};
  expect_error(un.build(), StatusCode::kCorrupt, {"'w'", "not a multiple of the alignment 32"});
  Tiny past;
  past.trim_tail = 1;
  expect_error(past.build(), StatusCode::kCorrupt, {"'w'", "extends past the end"});
  Tiny far;
  far.tensors = {{"w", {4}, 0, uint64_t{1} << 62, 16}};
  expect_error(far.build(), StatusCode::kCorrupt, {"'w'", "extends past the end"});
  // Huge element count whose byte size overflows 64 bits.
  Tiny big;
  big.tensors = {{"big", {uint64_t{1} << 31, uint64_t{1} << 31}, 0, std::nullopt, 0}};
  expect_error(big.build(), StatusCode::kCorrupt, {"'big'"});
}

TEST_F(GgufBytesTest, Alignment) {
  Tiny three;
  three.alignment = 3;
  expect_error(three.build(), StatusCode::kCorrupt, {"general.alignment", "power of two"});
  Tiny zero;
  zero.alignment = 0;
  expect_error(zero.build(), StatusCode::kCorrupt, {"general.alignment"});
  Tiny a64;
  a64.alignment = 64;
  a64.tensors.push_back({"w2", {8}, 0, std::nullopt, 32});
  Result<GgufFile> f = GgufFile::open(write(a64.build()));
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("w2")->offset, 64u);
  Tiny str_align;  // general.alignment must be an integer
  str_align.raw_kvs.push_back(raw_kv("general.alignment", 8, Bytes().str("32").b));
  expect_error(str_align.build(), StatusCode::kCorrupt, {"general.alignment"});
}

// K-quants and other types frugal cannot compute with: open() succeeds and checks extents;
// tensor() reports Unsupported naming the tensor and type. Unknown ids fail open().
TEST_F(GgufBytesTest, UnsupportedAndUnknownTypes) {
  Tiny k;
  k.tensors = {{"blk.0.attn_q.weight", {256, 2}, 12, std::nullopt, 288},   // Q4_K: 2 x 144 B
               {"blk.0.ffn_down.weight", {512}, 14, std::nullopt, 420}};  // Q6_K: 2 x 210 B
  const std::string path = write(k.build());
  Result<GgufFile> f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->nbytes, 288u);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->nbytes, 420u);
  Result<TensorView> t = f->tensor("blk.0.attn_q.weight");
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t.status().message().find(
                "tensor 'blk.0.attn_q.weight' has ggml type Q4_K, which frugal does not support"),
            std::string::npos)
      << t.status().message();
  EXPECT_NE(t.status().message().find(path), std::string::npos);

  // The same Q4_K tensor one byte short of its extent.
  Tiny short_k = k;
  short_k.tensors.pop_back();
  short_k.trim_tail = 1;
  expect_error(short_k.build(), StatusCode::kCorrupt, {"blk.0.attn_q.weight", "extends past"});
  Tiny row_k;  // Q4_K rows must be multiples of 256
  row_k.tensors = {{"kq", {128}, 12, std::nullopt, 144}};
  expect_error(row_k.build(), StatusCode::kCorrupt, {"'kq'", "Q4_K block size 256"});

  Tiny unknown;
  unknown.tensors = {{"blk.3.mystery", {4}, 200, std::nullopt, 32}};
  expect_error(unknown.build(), StatusCode::kUnsupported, {"blk.3.mystery", "type id 200"});
}

// Every truncation of a valid file is rejected cleanly, and every single-byte corruption of the
// header either opens or fails with a Status (run under ASan/UBSan this catches OOB reads).
TEST_F(GgufBytesTest, EveryTruncationAndByteFlip) {
  Tiny t;
  t.raw_kvs.push_back(raw_kv("t.arr", 9, Bytes().put<uint32_t>(8).put<uint64_t>(2).str("ab").str("c").b));
  t.raw_kvs.push_back(raw_kv("t.nest", 9, Bytes().put<uint32_t>(9).put<uint64_t>(1).put<uint32_t>(5).put<uint64_t>(2).put<int32_t>(1).put<int32_t>(2).b));
  const std::string full = t.build();
  ASSERT_TRUE(GgufFile::open(write(full)).ok());
  for (size_t n = 0; n < full.size(); ++n) {
    Result<GgufFile> f = GgufFile::open(write(full.substr(0, n)));
    EXPECT_FALSE(f.ok()) << "truncated to " << n;
  }
  Result<GgufFile> ok = GgufFile::open(write(full));
  const size_t header_end = (size_t)ok->data_offset();
  for (size_t i = 0; i < header_end; ++i) {
    for (uint8_t x : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::string b = full;
      b[i] = (char)(b[i] ^ x);
      Result<GgufFile> f = GgufFile::open(write(b));
      if (!f.ok()) {
        EXPECT_FALSE(f.status().message().empty());
      }
    }
  }
}

}  // namespace
}  // namespace frugal::gguf
