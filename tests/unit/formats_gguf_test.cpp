// GGUF reader/writer: writer -> reader round trips, a fixture written by llama.cpp's gguf-py
// (tests/data/gguf_py_every_type.gguf, made by scripts/make-test-files.py), and the default
// model checked against an index dumped by gguf-py (tests/golden/smollm2_gguf_index.json, made
// by tests/reference/dump_gguf_index.py). Hand-built and malformed files: formats_gguf_bytes_test.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "formats/gguf.h"
#include "test_util.h"

namespace frugal::gguf {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = fs::temp_directory_path() /
            ("frugal_gguf_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Every value type, including nested arrays (array of arrays of strings / of i32).
std::vector<std::pair<std::string, Value>> every_type_metadata() {
  return {
      {"general.architecture", Value::string("llama")},
      {"t.u8", Value::u8(200)},
      {"t.i8", Value::i8(-100)},
      {"t.u16", Value::u16(60000)},
      {"t.i16", Value::i16(-30000)},
      {"t.u32", Value::u32(4000000000u)},
      {"t.i32", Value::i32(-2000000000)},
      {"t.f32", Value::f32(0.1f)},
      {"t.bool", Value::boolean(true)},
      {"t.string", Value::string("h\xc3\xa9llo\nworld")},
      {"t.u64", Value::u64((uint64_t{1} << 63) + 5)},
      {"t.i64", Value::i64(-(int64_t{1} << 62))},
      {"t.f64", Value::f64(3.141592653589793)},
      {"t.arr.u8", Value::array(ValueType::U8, {Value::u8(1), Value::u8(2), Value::u8(255)})},
      {"t.arr.i32", Value::i32_array({-1, 0, 1})},
      {"t.arr.f32", Value::f32_array({0.5f, -1.25f})},
      {"t.arr.str", Value::string_array({"a", "", "\xc3\xbc"})},
      {"t.arr.bool", Value::array(ValueType::BOOL, {Value::boolean(true), Value::boolean(false)})},
      {"t.arr.nested_str",
       Value::array(ValueType::ARRAY, {Value::string_array({"x", "y"}), Value::string_array({"z"})})},
      {"t.arr.nested_i32",
       Value::array(ValueType::ARRAY, {Value::i32_array({1, 2}), Value::i32_array({3})})},
  };
}

// The tensors of the gguf-py fixture, with the same bytes.
struct FixtureTensors {
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  std::vector<uint8_t> q8_0, bf16, q4_1;
  std::vector<int32_t> i32;
  std::vector<int8_t> i8;
  FixtureTensors() {
    for (int i = 0; i < 6; ++i) f32.push_back((float)i - 0.5f);
    f16 = {0x3c00, 0xc000, 0x3800, 0x7bff};  // 1, -2, 0.5, 65504
    for (int i = 0; i < 68; ++i) q8_0.push_back((uint8_t)(i % 256));
    for (int i = 0; i < 24; ++i) bf16.push_back((uint8_t)(i * 7 % 256));
    i32 = {-1, 7, 2147483647};
    for (int i = 0; i < 20; ++i) q4_1.push_back((uint8_t)(i * 13 % 256));
    i8 = {-128, 0, 127, 5};
  }
  Status add_to(GgufWriter* w) const {
    FRUGAL_RETURN_IF_ERROR(w->add_tensor("t.f32", DType::F32, {2, 3}, f32.data(), 24));
    FRUGAL_RETURN_IF_ERROR(w->add_tensor("t.f16", DType::F16, {4}, f16.data(), 8));
    FRUGAL_RETURN_IF_ERROR(w->add_tensor("t.q8_0", DType::Q8_0, {2, 32}, q8_0.data(), 68));
    FRUGAL_RETURN_IF_ERROR(w->add_tensor("t.bf16", DType::BF16, {3, 4}, bf16.data(), 24));
    FRUGAL_RETURN_IF_ERROR(w->add_tensor("t.i32", DType::I32, {3}, i32.data(), 12));
    FRUGAL_RETURN_IF_ERROR(w->add_tensor("t.q4_1", DType::Q4_1, {1, 32}, q4_1.data(), 20));
    return w->add_tensor("t.i8", DType::I8, {4}, i8.data(), 4);
  }
};

void expect_fixture_tensors(const GgufFile& f, const FixtureTensors& ft) {
  struct Want {
    const char* name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* bytes;
    size_t n;
  };
  const Want wants[] = {
      {"t.f32", DType::F32, {2, 3}, ft.f32.data(), 24},
      {"t.f16", DType::F16, {4}, ft.f16.data(), 8},
      {"t.q8_0", DType::Q8_0, {2, 32}, ft.q8_0.data(), 68},
      {"t.bf16", DType::BF16, {3, 4}, ft.bf16.data(), 24},
      {"t.i32", DType::I32, {3}, ft.i32.data(), 12},
      {"t.q4_1", DType::Q4_1, {1, 32}, ft.q4_1.data(), 20},
      {"t.i8", DType::I8, {4}, ft.i8.data(), 4},
  };
  ASSERT_EQ(f.tensors().size(), std::size(wants));
  for (size_t i = 0; i < std::size(wants); ++i) {
    const Want& w = wants[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(f.tensors()[i].name, w.name);
    Result<TensorView> t = f.tensor(w.name);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    EXPECT_EQ(t->dtype, w.dtype);
    EXPECT_EQ(t->shape, w.shape);
    ASSERT_EQ(t->nbytes, w.n);
    EXPECT_EQ(std::memcmp(t->data, w.bytes, w.n), 0);
    EXPECT_EQ(f.tensors()[i].offset % f.alignment(), 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data) % f.alignment(), 0u);
  }
}

void expect_every_type_metadata(const GgufFile& f) {
  const auto want = every_type_metadata();
  ASSERT_GE(f.metadata().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].first);
    EXPECT_EQ(f.metadata()[i].first, want[i].first);
    EXPECT_TRUE(f.metadata()[i].second == want[i].second)
        << "got " << f.metadata()[i].second.to_string() << " want " << want[i].second.to_string();
  }
}

TEST(GgufWriter, RoundTripEveryValueTypeAndTensor) {
  TempDir dir;
  const std::string path = dir.file("rt.gguf");
  GgufWriter w(/*alignment=*/64);
  for (auto& [k, v] : every_type_metadata()) w.set(k, v);
  w.set("t.u8", Value::u8(200));  // replacing keeps the position
  FixtureTensors ft;
  ASSERT_TRUE(ft.add_to(&w).ok());
  Status st = w.write(path);
  ASSERT_TRUE(st.ok()) << st.to_string();
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  Result<GgufFile> f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  expect_every_type_metadata(*f);
  // The non-default alignment is recorded as the last key.
  ASSERT_EQ(f->metadata().size(), every_type_metadata().size() + 1);
  EXPECT_EQ(f->metadata().back().first, "general.alignment");
  EXPECT_EQ(*f->get_u64("general.alignment"), 64u);
  expect_fixture_tensors(*f, ft);

  // Typed getters.
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_i64("t.i32"), -2000000000);
  EXPECT_EQ(*f->get_u64("t.u64"), (uint64_t{1} << 63) + 5);
  EXPECT_FLOAT_EQ((float)*f->get_f64("t.f32"), 0.1f);
  EXPECT_TRUE(*f->get_bool("t.bool"));
  EXPECT_EQ(*f->get_string_array("t.arr.str"), (std::vector<std::string>{"a", "", "\xc3\xbc"}));
  EXPECT_EQ(*f->get_f32_array("t.arr.f32"), (std::vector<float>{0.5f, -1.25f}));
  EXPECT_EQ(*f->get_i32_array("t.arr.i32"), (std::vector<int32_t>{-1, 0, 1}));
  const Value* nested = f->find("t.arr.nested_str");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->array()->size(), 2u);
  EXPECT_EQ(*(*nested->array())[1].array()->at(0).as_string(), "z");

  // Errors name the file and the key.
  Result<uint64_t> missing = f->get_u64("no.such.key");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no.such.key"), std::string::npos);
  EXPECT_NE(missing.status().message().find(path), std::string::npos);
  Result<uint64_t> mismatch = f->get_u64("t.string");
  EXPECT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.status().message().find("t.string"), std::string::npos);
  EXPECT_FALSE(f->get_u64("t.i8").ok());  // negative
  EXPECT_EQ(f->tensor("nope").status().code(), StatusCode::kNotFound);
}

TEST(GgufWriter, RejectsBadInput) {
  TempDir dir;
  GgufWriter w;
  float x[3] = {};
  EXPECT_EQ(w.add_tensor("a", DType::F32, {3}, x, 8).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("q", DType::Q8_0, {1, 16}, x, 17).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w.add_tensor("z", DType::F32, {1, 1, 1, 1, 3}, x, 12).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(w.add_tensor("a", DType::F32, {3}, x, 12).ok());
  EXPECT_EQ(w.add_tensor("a", DType::F32, {3}, x, 12).code(), StatusCode::kInvalidArgument);

  // An array element of the wrong type fails before anything is created.
  w.set("bad", Value::array(ValueType::U32, {Value::u32(1), Value::string("x")}));
  const std::string path = dir.file("bad.gguf");
  Status st = w.write(path);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("'bad'[1]"), std::string::npos) << st.message();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));

  GgufWriter range;
  range.set("r", Value::array(ValueType::U8, {Value::u32(300)}));
  EXPECT_EQ(range.write(path).code(), StatusCode::kInvalidArgument);

  GgufWriter bad_align(24);
  EXPECT_EQ(bad_align.write(path).code(), StatusCode::kInvalidArgument);
  GgufWriter conflicting(32);
  conflicting.set("general.alignment", Value::u32(64));
  EXPECT_EQ(conflicting.write(path).code(), StatusCode::kInvalidArgument);
}

TEST(GgufWriter, FailureLeavesNoFiles) {
  TempDir dir;
  GgufWriter w;
  w.set("k", Value::u32(1));
  // Unwritable location: IoError, nothing created.
  Status st = w.write(dir.file("no/such/dir/x.gguf"));
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  // The final rename fails (the target is a non-empty directory): the temporary is removed.
  const std::string target = dir.file("occupied");
  fs::create_directories(target + "/child");
  st = w.write(target);
  EXPECT_EQ(st.code(), StatusCode::kIoError) << st.to_string();
  EXPECT_FALSE(fs::exists(target + ".tmp"));
  EXPECT_TRUE(fs::is_directory(target));
}

// Reader against gguf-py's writer, and our writer against gguf-py's bytes.
TEST(GgufReader, ReadsGgufPyFixture) {
  const std::string path = test::source_dir() + "/tests/data/gguf_py_every_type.gguf";
  Result<GgufFile> f = GgufFile::open(path);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  expect_every_type_metadata(*f);
  EXPECT_EQ(f->metadata().size(), every_type_metadata().size());
  expect_fixture_tensors(*f, FixtureTensors());
}

TEST(GgufWriter, BytesMatchGgufPy) {
  const std::string fixture = test::source_dir() + "/tests/data/gguf_py_every_type.gguf";
  TempDir dir;
  const std::string path = dir.file("ours.gguf");
  GgufWriter w;
  for (auto& [k, v] : every_type_metadata()) w.set(k, v);
  FixtureTensors ft;
  ASSERT_TRUE(ft.add_to(&w).ok());
  ASSERT_TRUE(w.write(path).ok());
  const std::string ours = read_bytes(path), theirs = read_bytes(fixture);
  ASSERT_FALSE(theirs.empty());
  EXPECT_EQ(ours.size(), theirs.size());
  EXPECT_TRUE(ours == theirs);
}

TEST(GgufTypes, NamesSizesAndDTypes) {
  EXPECT_EQ(ggml_type_name(12), "Q4_K");
  EXPECT_EQ(ggml_type_name(200), "type 200");
  const std::pair<uint32_t, GgmlTypeSize> sizes[] = {
      {2, {32, 18}},   {3, {32, 20}},   {6, {32, 22}},   {7, {32, 24}},   {8, {32, 34}},
      {9, {32, 36}},   {10, {256, 84}}, {11, {256, 110}}, {12, {256, 144}}, {13, {256, 176}},
      {14, {256, 210}}, {15, {256, 292}}, {0, {1, 4}},    {1, {1, 2}},     {30, {1, 2}},
  };
  for (const auto& [id, s] : sizes) {
    SCOPED_TRACE(ggml_type_name(id));
    ASSERT_TRUE(ggml_type_size(id).has_value());
    EXPECT_EQ(ggml_type_size(id)->block_elems, s.block_elems);
    EXPECT_EQ(ggml_type_size(id)->block_bytes, s.block_bytes);
  }
  EXPECT_FALSE(ggml_type_size(4).has_value());
  for (int i = 0; i < (int)DType::kCount; ++i) {
    const DType t = (DType)i;
    Result<uint32_t> g = ggml_from_dtype(t);
    if (t >= DType::I8_ROW) {  // frugal-only in-memory layouts: ggml has no type for them
      EXPECT_EQ(g.status().code(), StatusCode::kUnsupported) << dtype_name(t);
      continue;
    }
    ASSERT_TRUE(g.ok());
    EXPECT_EQ(*dtype_from_ggml(*g), t);
    EXPECT_EQ(ggml_type_size(*g)->block_bytes, (uint64_t)dtype_info(t).block_bytes);
    EXPECT_EQ(ggml_type_size(*g)->block_elems, (uint64_t)dtype_info(t).block_elems);
  }
  EXPECT_EQ(dtype_from_ggml(12).status().code(), StatusCode::kUnsupported);
}

// ---- the default model against gguf-py's index -------------------------------------------

uint64_t byte_sum(const uint8_t* p, uint64_t n) {
  uint64_t s = 0;
  for (uint64_t i = 0; i < n; ++i) s += p[i];
  return s;
}

std::string hex(const uint8_t* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += d[p[i] >> 4];
    s += d[p[i] & 15];
  }
  return s;
}

TEST(GgufReader, DefaultModelMatchesGgufPyIndex) {
  const std::string path = test::default_model_path();
  if (!test::file_exists(path)) GTEST_SKIP() << "default model not present: " << path;
  const auto t0 = std::chrono::steady_clock::now();
  Result<GgufFile> f = GgufFile::open(path);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  std::printf("[ info ] GgufFile::open(default model): %.1f ms\n", ms);
  EXPECT_LT(ms, 1000.0);  // typically ~15 ms; generous bound against slow CI machines

  std::ifstream gf(test::source_dir() + "/tests/golden/smollm2_gguf_index.json");
  ASSERT_TRUE(gf.good());
  const nlohmann::json g = nlohmann::json::parse(gf);
  EXPECT_EQ(f->version(), g["version"].get<uint32_t>());
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->alignment(), g["alignment"].get<uint64_t>());
  EXPECT_EQ(f->data_offset(), g["data_offset"].get<uint64_t>());
  ASSERT_EQ(f->metadata().size(), 33u);
  ASSERT_EQ(f->metadata().size(), g["metadata"].size());
  ASSERT_EQ(f->tensors().size(), 272u);
  ASSERT_EQ(f->tensors().size(), g["tensors"].size());

  for (size_t i = 0; i < g["metadata"].size(); ++i) {
    const nlohmann::json& m = g["metadata"][i];
    const std::string key = m["key"];
    SCOPED_TRACE(key);
    ASSERT_EQ(f->metadata()[i].first, key);
    const Value& v = f->metadata()[i].second;
    ASSERT_EQ(value_type_name(v.type), m["type"].get<std::string>());
    auto check_scalar = [&](const Value& x, const nlohmann::json& want) {
      if (want.is_string()) EXPECT_EQ(*x.as_string(), want.get<std::string>());
      else if (want.is_boolean()) EXPECT_EQ(*x.as_bool(), want.get<bool>());
      else if (want.is_number_float()) EXPECT_EQ(*x.as_f64(), want.get<double>());
      else EXPECT_EQ(*x.as_i64(), want.get<int64_t>());
    };
    if (v.is_array()) {
      EXPECT_EQ(value_type_name(v.elem_type), m["elem_type"].get<std::string>());
      ASSERT_EQ(v.array()->size(), m["length"].get<size_t>());
      check_scalar(v.array()->front(), m["first"]);
      check_scalar(v.array()->back(), m["last"]);
    } else {
      check_scalar(v, m["value"]);
    }
  }
  for (size_t i = 0; i < g["tensors"].size(); ++i) {
    const nlohmann::json& t = g["tensors"][i];
    const TensorInfo& ti = f->tensors()[i];
    SCOPED_TRACE(ti.name);
    EXPECT_EQ(ti.name, t["name"].get<std::string>());
    EXPECT_EQ(ti.ggml_type, t["ggml_type"].get<uint32_t>());
    EXPECT_EQ(ggml_type_name(ti.ggml_type), t["type_name"].get<std::string>());
    EXPECT_EQ(ti.dims, t["dims"].get<std::vector<uint64_t>>());
    EXPECT_EQ(ti.offset, t["offset"].get<uint64_t>());
    EXPECT_EQ(ti.nbytes, t["nbytes"].get<uint64_t>());
    const uint8_t* p = f->tensor_data(ti);
    EXPECT_EQ(byte_sum(p, ti.nbytes), t["byte_sum"].get<uint64_t>());
    EXPECT_EQ(hex(p, std::min<uint64_t>(16, ti.nbytes)), t["head_hex"].get<std::string>());
  }

  // Types as the brief describes the model: Q8_0 embeddings, Q4_1 matrices, F32 norms, tied.
  Result<TensorView> embd = f->tensor("token_embd.weight");
  ASSERT_TRUE(embd.ok());
  EXPECT_EQ(embd->dtype, DType::Q8_0);
  EXPECT_EQ(embd->shape, (std::vector<int64_t>{49152, 576}));
  Result<TensorView> q = f->tensor("blk.0.attn_q.weight");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->dtype, DType::Q4_1);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(q->row_bytes() * (size_t)q->rows(), q->nbytes);
  Result<TensorView> down = f->tensor("blk.29.ffn_down.weight");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->shape, (std::vector<int64_t>{576, 1536}));
  Result<TensorView> norm = f->tensor("output_norm.weight");
  ASSERT_TRUE(norm.ok());
  EXPECT_EQ(norm->dtype, DType::F32);
  EXPECT_EQ(f->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f->get_string_array("tokenizer.ggml.merges")->size(), 48900u);
}

}  // namespace
}  // namespace frugal::gguf
