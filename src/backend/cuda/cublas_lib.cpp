#include "backend/cuda/cublas_lib.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace frugal::cuda {

namespace {

#define FRUGAL_STR_INNER_(x) #x
#define FRUGAL_STR_(x) FRUGAL_STR_INNER_(x)
constexpr const char* kSoname = "libcublas.so." FRUGAL_STR_(CUBLAS_VER_MAJOR);

Result<const CublasLib*> open_cublas() {
  std::string tried = kSoname;
  void* h = dlopen(kSoname, RTLD_NOW | RTLD_LOCAL);
  std::string err = h ? "" : dlerror();
#ifdef FRUGAL_CUDA_LIBRARY_DIR
  if (!h) {
    const std::string path = std::string(FRUGAL_CUDA_LIBRARY_DIR) + "/" + kSoname;
    tried += ", " + path;
    h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) err += "; " + std::string(dlerror());
  }
#endif
  if (!h)
    return Unavailable("cuBLAS could not be loaded (tried " + tried + "): " + err +
                       " (install the CUDA " FRUGAL_STR_(CUBLAS_VER_MAJOR) " cuBLAS library or add "
                       "its directory to LD_LIBRARY_PATH)");
  static CublasLib lib;
  std::string missing;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
    if (!fn) missing += std::string(missing.empty() ? "" : ", ") + name;
  };
  sym(lib.create, "cublasCreate_v2");
  sym(lib.destroy, "cublasDestroy_v2");
  sym(lib.set_stream, "cublasSetStream_v2");
  sym(lib.set_workspace, "cublasSetWorkspace_v2");
  sym(lib.gemm_ex, "cublasGemmEx");
  sym(lib.status_string, "cublasGetStatusString");
  if (!missing.empty())
    return Unavailable(std::string(kSoname) + " lacks " + missing);
  return &lib;
}

}  // namespace

Result<const CublasLib*> cublas_lib() {
  static const Result<const CublasLib*> lib = open_cublas();
  return lib;
}

}  // namespace frugal::cuda
