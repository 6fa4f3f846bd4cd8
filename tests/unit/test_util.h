// Helpers shared by the unit tests.
#pragma once

#include <filesystem>
#include <string>

namespace frugal::test {

inline std::string source_dir() { return FRUGAL_SOURCE_DIR; }
inline std::string cli_path() { return FRUGAL_CLI_PATH; }
// ../shared/data next to the checkout (CI lays a copy of shared/ beside the clone).
inline std::string shared_data(const std::string& name) {
  return source_dir() + "/../shared/data/" + name;
}
// The default model, fetched by scripts/setup.sh.
inline std::string default_model_path() {
  return source_dir() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
}
inline bool file_exists(const std::string& p) { return std::filesystem::exists(p); }

}  // namespace frugal::test
