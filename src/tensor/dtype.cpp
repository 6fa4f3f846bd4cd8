#include "tensor/dtype.h"

#include <cctype>

namespace frugal {

namespace {
constexpr DTypeInfo kInfo[] = {
    {"F32", 1, 4, 0},       {"F16", 1, 2, 0},       {"BF16", 1, 2, 0},
    {"Q8_0", 32, 34, 0},    {"Q4_0", 32, 18, 0},    {"Q4_1", 32, 20, 0},
    {"I8", 1, 1, 0},        {"I32", 1, 4, 0},       {"I8_ROW", 1, 1, 4},
    {"E4M3_ROW", 1, 1, 4},  {"E5M2_ROW", 1, 1, 4},  {"I4_G64", 64, 34, 0},
    {"I4_G64A", 64, 36, 0}, {"I4_G128", 128, 66, 0}, {"I4_G128A", 128, 68, 0},
};
static_assert(sizeof(kInfo) / sizeof(kInfo[0]) == (size_t)DType::kCount);
}  // namespace

const DTypeInfo& dtype_info(DType t) { return kInfo[(int)t]; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (int i = 0; i < (int)DType::kCount; ++i) {
    std::string_view n = kInfo[i].name;
    if (n.size() != name.size()) continue;
    bool eq = true;
    for (size_t j = 0; j < n.size(); ++j)
      if (std::toupper((unsigned char)name[j]) != n[j]) { eq = false; break; }
    if (eq) return (DType)i;
  }
  return std::nullopt;
}

}  // namespace frugal

#include "tensor/tensor.h"

namespace frugal {
std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}
}  // namespace frugal
