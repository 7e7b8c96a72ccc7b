// specula models: what is installed and where.
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/model_registry.h"
#include "experiments/json_out.h"
#include "experiments/cli.h"

namespace specula::cli {

Command add_models(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("models", "List the installed models and where they are");
  sub->add_flag("--json", *json, "Print JSON");
  return {sub, [json] {
            namespace fs = std::filesystem;
            nlohmann::json arr = nlohmann::json::array();
            for (const auto& m : installed_models()) {
              const std::string p = models_dir() + "/" + m.file;
              std::error_code ec;
              const bool ok = fs::exists(p, ec);
              const auto size = ok ? static_cast<int64_t>(fs::file_size(p, ec)) : int64_t{0};
              arr.push_back({{"name", m.name}, {"path", p}, {"installed", ok}, {"bytes", size},
                             {"sha256", m.sha256}, {"source", m.source}, {"description", m.description}});
            }
            if (*json) {
              std::puts(json_text(arr, 2).c_str());
            } else {
              std::printf("models directory: %s\n", models_dir().c_str());
              for (const auto& m : arr)
                std::printf("  %-14s %-10s %s\n      %s\n", m["name"].get<std::string>().c_str(),
                            m["installed"].get<bool>() ? "installed" : "MISSING", m["path"].get<std::string>().c_str(),
                            m["description"].get<std::string>().c_str());
            }
            return 0;
          }};
}

}  // namespace specula::cli
