// The prefill GEMM section of frugal_bench_kernels (gemm_bench.cpp); main is in matvec_bench.cpp.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace frugal_bench {

// Registers gemm/<dtype>/<rows>x<cols>x<tokens>/<f32|q8>/threads:N (counter "GFLOP/s").
void register_gemm(const std::vector<int>& threads);
// Prints q8 vs f32 per format and shape from the best GFLOP/s of each run name.
void print_gemm_table(const std::map<std::string, double>& best_gflops);

}  // namespace frugal_bench
