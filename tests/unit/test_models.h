// Builds small model files from the default model for tests (the default model must exist).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "formats/gguf.h"
#include "test_util.h"

namespace frugal::test {

struct TruncateOptions {
  int n_layers = 1;          // keep blocks [0, n_layers)
  std::string drop;          // tensor to leave out
  std::string swap_from;     // store this tensor's data ...
  std::string swap_to;       // ... under this name
};

// Writes a copy of `src` (all metadata incl. tokenizer) with only the first n_layers blocks.
inline void write_truncated_gguf(const std::string& src, const std::string& dst,
                                 const TruncateOptions& o) {
  auto f = gguf::GgufFile::open(src);
  ASSERT_TRUE(f.ok()) << f.status().to_string();
  gguf::GgufWriter w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  w.set("llama.block_count", gguf::Value::u32((uint32_t)o.n_layers));
  for (const gguf::TensorInfo& ti : f->tensors()) {
    if (ti.name.rfind("blk.", 0) == 0 && std::stoi(ti.name.substr(4)) >= o.n_layers) continue;
    if (ti.name == o.drop) continue;
    auto t = f->tensor(ti.name == o.swap_to ? o.swap_from : ti.name);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    ASSERT_TRUE(w.add_tensor(ti.name, t->dtype, t->shape, t->data, t->nbytes).ok());
  }
  const Status st = w.write(dst);  // copies from the mapping, which is alive until here
  ASSERT_TRUE(st.ok()) << st.to_string();
}

}  // namespace frugal::test
