// Safetensors reader/writer: writer -> reader round trip, hand-built files (header JSON written
// literally, so the reader is checked against the format rather than against our writer),
// Hugging Face directories (single file and sharded index), and malformed inputs.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "formats/safetensors.h"

namespace frugal::safetensors {
namespace {

namespace fs = std::filesystem;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = fs::temp_directory_path() /
           ("frugal_st_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  std::string write_raw(const std::string& name, const std::string& bytes) {
    const std::string p = path(name);
    fs::create_directories(fs::path(p).parent_path());
    std::ofstream(p, std::ios::binary).write(bytes.data(), (std::streamsize)bytes.size());
    return p;
  }
  // u64 header length + header + `data_bytes` bytes of data.
  std::string write_file(const std::string& name, const std::string& header, size_t data_bytes) {
    std::string b(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(b.data(), &n, 8);
    b += header;
    for (size_t i = 0; i < data_bytes; ++i) b += (char)(i * 7 + 1);
    return write_raw(name, b);
  }
  void expect_error(const std::string& p, StatusCode code, std::vector<std::string> needles) {
    Result<SafetensorsModel> m = SafetensorsModel::open(p);
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), code) << m.status().to_string();
    for (const std::string& n : needles)
      EXPECT_NE(m.status().message().find(n), std::string::npos)
          << "'" << n << "' not in: " << m.status().message();
  }
  fs::path dir_;
};

TensorView make_view(std::string name, DType dt, std::vector<int64_t> shape, const void* data) {
  TensorView t;
  t.name = std::move(name);
  t.dtype = dt;
  t.shape = std::move(shape);
  t.data = data;
  t.nbytes = (size_t)t.numel() * (size_t)dtype_info(dt).block_bytes;
  return t;
}

TEST_F(SafetensorsTest, RoundTrip) {
  const float f32[6] = {1, -2, 3.5f, 0, 1e-20f, 7};
  const uint16_t f16[3] = {0x3c00, 0xc000, 0x7bff};
  const uint16_t bf16[4] = {0x3f80, 0x4000, 0xbf80, 0x0001};
  const int32_t i32[5] = {-1, 0, 1, 2147483647, -2147483647};
  const int8_t i8[7] = {-128, -1, 0, 1, 2, 3, 127};
  const std::vector<TensorView> ts = {
      make_view("model.embed_tokens.weight", DType::F32, {2, 3}, f32),
      make_view("a.f16", DType::F16, {3}, f16),
      make_view("a.bf16", DType::BF16, {2, 1, 2}, bf16),
      make_view("a.i32", DType::I32, {5}, i32),
      make_view("a.i8", DType::I8, {7}, i8),
      make_view("a.empty", DType::F32, {0, 4}, nullptr),
  };
  const std::string p = path("m.safetensors");
  Status st = write_safetensors(p, ts, {{"format", "pt"}, {"note", "h\xc3\xa9"}});
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_FALSE(fs::exists(p + ".tmp"));

  Result<SafetensorsModel> m = SafetensorsModel::open(p);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->size(), ts.size());
  EXPECT_EQ(m->metadata().at("format"), "pt");
  EXPECT_EQ(m->metadata().at("note"), "h\xc3\xa9");
  for (const TensorView& want : ts) {
    SCOPED_TRACE(want.name);
    const TensorView* got = m->find(want.name);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->dtype, want.dtype);
    EXPECT_EQ(got->shape, want.shape);
    ASSERT_EQ(got->nbytes, want.nbytes);
    if (want.nbytes) {
      EXPECT_EQ(std::memcmp(got->data, want.data, want.nbytes), 0);
    }
  }
  // Header padded so the buffer (and the first tensor) is 8-byte aligned.
  EXPECT_EQ(reinterpret_cast<uintptr_t>(m->find("model.embed_tokens.weight")->data) % 8, 0u);
  EXPECT_EQ(m->names().front(), "a.bf16");  // sorted
  EXPECT_EQ(m->tensor("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(m->find("nope"), nullptr);
}

TEST_F(SafetensorsTest, WriterRejectsBadInput) {
  uint8_t q[34] = {};
  const std::string p = path("bad.safetensors");
  TensorView qv = make_view("q", DType::Q8_0, {1, 32}, q);
  EXPECT_EQ(write_safetensors(p, {qv}).code(), StatusCode::kInvalidArgument);
  float x[2] = {};
  TensorView a = make_view("a", DType::F32, {2}, x);
  EXPECT_EQ(write_safetensors(p, {a, a}).code(), StatusCode::kInvalidArgument);
  a.nbytes = 4;
  EXPECT_EQ(write_safetensors(p, {a}).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(p));
  EXPECT_FALSE(fs::exists(p + ".tmp"));
  EXPECT_EQ(write_safetensors(path("no/dir/x.safetensors"), {}).code(), StatusCode::kIoError);
}

TEST_F(SafetensorsTest, HandBuiltFileWithRawDTypes) {
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("w":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]},)"
      R"("packed":{"dtype":"U8","shape":[4],"data_offsets":[8,12]},)"
      R"("d":{"dtype":"F64","shape":[1],"data_offsets":[16,24]}})";
  const std::string p = write_file("h.safetensors", header, 24);
  Result<SafetensorsModel> m = SafetensorsModel::open(p);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  Result<TensorView> w = m->tensor("w");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->dtype, DType::BF16);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(static_cast<const uint8_t*>(w->data)[0], 1);  // first data byte (i*7+1 at i=0)
  // U8 / F64: readable raw, but not as a frugal DType.
  EXPECT_EQ(m->find("packed"), nullptr);
  const TensorEntry* e = m->entry("packed");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->dtype_name, "U8");
  EXPECT_EQ(e->nbytes, 4u);
  EXPECT_EQ(e->data[0], (uint8_t)(8 * 7 + 1));
  Result<TensorView> pk = m->tensor("packed");
  EXPECT_EQ(pk.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(pk.status().message().find("'packed' has dtype U8"), std::string::npos);
  EXPECT_EQ(m->entry("d")->nbytes, 8u);
}

TEST_F(SafetensorsTest, DirectoryWithSingleFile) {
  float x[4] = {1, 2, 3, 4};
  ASSERT_TRUE(write_safetensors(path("hf/model.safetensors"), {make_view("x", DType::F32, {4}, x)}).code() ==
              StatusCode::kIoError);  // directory does not exist yet
  fs::create_directories(path("hf"));
  ASSERT_TRUE(write_safetensors(path("hf/model.safetensors"), {make_view("x", DType::F32, {4}, x)}).ok());
  Result<SafetensorsModel> m = SafetensorsModel::open(path("hf"));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->names(), std::vector<std::string>{"x"});
  expect_error(path("nothing_here"), StatusCode::kNotFound, {"nothing_here"});
  fs::create_directories(path("empty"));
  expect_error(path("empty"), StatusCode::kNotFound, {"model.safetensors"});
}

TEST_F(SafetensorsTest, ShardedIndex) {
  fs::create_directories(path("sh"));
  float a[2] = {1, 2}, b[3] = {3, 4, 5}, c[1] = {6};
  ASSERT_TRUE(write_safetensors(path("sh/model-00001-of-00002.safetensors"),
                                {make_view("a", DType::F32, {2}, a), make_view("b", DType::F32, {3}, b)})
                  .ok());
  ASSERT_TRUE(write_safetensors(path("sh/model-00002-of-00002.safetensors"),
                                {make_view("c", DType::F32, {1}, c)})
                  .ok());
  write_raw("sh/model.safetensors.index.json",
            R"({"metadata":{"total_size":24},"weight_map":{"a":"model-00001-of-00002.safetensors",)"
            R"("b":"model-00001-of-00002.safetensors","c":"model-00002-of-00002.safetensors"}})");
  Result<SafetensorsModel> m = SafetensorsModel::open(path("sh"));
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(m->files().size(), 2u);
  EXPECT_EQ(static_cast<const float*>(m->find("c")->data)[0], 6.0f);
  EXPECT_EQ(static_cast<const float*>(m->find("b")->data)[2], 5.0f);
  EXPECT_NE(m->entry("c")->file.find("model-00002-of-00002"), std::string::npos);

  // Views stay valid after the model is moved.
  const void* before = m->find("a")->data;
  SafetensorsModel moved = std::move(m).value();
  EXPECT_EQ(moved.find("a")->data, before);
  EXPECT_EQ(static_cast<const float*>(moved.find("a")->data)[1], 2.0f);
}

TEST_F(SafetensorsTest, ShardedIndexErrors) {
  fs::create_directories(path("s1"));
  float a[2] = {1, 2};
  ASSERT_TRUE(write_safetensors(path("s1/one.safetensors"), {make_view("a", DType::F32, {2}, a)}).ok());
  write_raw("s1/model.safetensors.index.json",
            R"({"weight_map":{"a":"one.safetensors","b":"two.safetensors"}})");
  expect_error(path("s1"), StatusCode::kNotFound, {"two.safetensors", "model.safetensors.index.json"});

  write_raw("s1/model.safetensors.index.json", R"({"weight_map":{"a":"one.safetensors","zz":"one.safetensors"}})");
  expect_error(path("s1"), StatusCode::kCorrupt, {"'zz'", "one.safetensors"});

  write_raw("s1/model.safetensors.index.json", R"({"weight_map":{"a":"../one.safetensors"}})");
  expect_error(path("s1"), StatusCode::kCorrupt, {"../one.safetensors"});

  write_raw("s1/model.safetensors.index.json", R"({"weight_map": [1,2]})");
  expect_error(path("s1"), StatusCode::kCorrupt, {"weight_map"});

  write_raw("s1/model.safetensors.index.json", R"({"weight_map": {)");
  expect_error(path("s1"), StatusCode::kCorrupt, {"not valid JSON", "parse error"});
}

TEST_F(SafetensorsTest, MalformedFiles) {
  expect_error(write_raw("tiny.safetensors", "abc"), StatusCode::kCorrupt, {"tiny.safetensors", "too small"});

  // Header length larger than the file.
  std::string b(8, '\0');
  const uint64_t big = 1000;
  std::memcpy(b.data(), &big, 8);
  expect_error(write_raw("len.safetensors", b + "{}"), StatusCode::kCorrupt,
               {"len.safetensors", "header length 1000"});
  const uint64_t huge = ~uint64_t{0};
  std::memcpy(b.data(), &huge, 8);
  expect_error(write_raw("len2.safetensors", b + "{}"), StatusCode::kCorrupt, {"header length"});

  expect_error(write_file("garbage.safetensors", "{\"a\": [1, 2", 0), StatusCode::kCorrupt,
               {"garbage.safetensors", "not valid JSON", "parse error"});
  expect_error(write_file("notobj.safetensors", "[1]", 0), StatusCode::kCorrupt, {"not a JSON object"});

  expect_error(write_file("past.safetensors",
                          R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 12),
               StatusCode::kCorrupt, {"past.safetensors", "'w'", "past the end"});
  expect_error(write_file("mismatch.safetensors",
                          R"({"w":{"dtype":"F16","shape":[2,3],"data_offsets":[0,16]}})", 16),
               StatusCode::kCorrupt, {"'w'", "needs 12"});
  expect_error(write_file("rev.safetensors",
                          R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", 16),
               StatusCode::kCorrupt, {"'w'", "reversed"});
  expect_error(write_file("neg.safetensors",
                          R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 16),
               StatusCode::kCorrupt, {"'w'", "shape"});
  expect_error(write_file("nodtype.safetensors", R"({"w":{"shape":[1],"data_offsets":[0,4]}})", 4),
               StatusCode::kCorrupt, {"'w'", "dtype"});
  expect_error(write_file("noff.safetensors", R"({"w":{"dtype":"F32","shape":[1]}})", 4),
               StatusCode::kCorrupt, {"'w'", "data_offsets"});
  expect_error(write_file("unk.safetensors",
                          R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}})", 4),
               StatusCode::kUnsupported, {"'w'", "Q4"});
  expect_error(write_file("overlap.safetensors",
                          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                          12),
               StatusCode::kCorrupt, {"overlap"});
  expect_error(write_file("ovf.safetensors",
                          R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4),
               StatusCode::kCorrupt, {"'w'", "overflow"});
}

}  // namespace
}  // namespace frugal::safetensors
