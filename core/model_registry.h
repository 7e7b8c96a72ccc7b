#pragma once
// Names of the models the setup script installs, and where they live. `M` on the command line is
// either a path (.gguf file or HF directory) or one of these names.
#include <string>
#include <vector>

namespace specula {

struct InstalledModel {
  std::string name;      // short name used on the command line
  std::string file;      // file name under the models directory
  std::string sha256;    // expected checksum (verified by scripts/setup.sh)
  std::string source;    // where setup.sh takes it from
  std::string description;
};

const std::vector<InstalledModel>& installed_models();
// Models directory: $SPECULA_MODELS_DIR, else <repo>/models next to the build.
std::string models_dir();
// Resolves a name or path to a path; Error listing the known names if neither exists.
std::string resolve_model(const std::string& name_or_path);

}  // namespace specula
