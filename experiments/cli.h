#pragma once
// The `specula` command line: each subcommand registers itself on the CLI11 app and returns a
// callback run after parsing. Errors are specula::Error (one line, exit 1).
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include <memory>

#include <nlohmann/json.hpp>

#include "core/model.h"
#include "sparsity/strategy.h"
#include "core/sampler.h"

namespace specula::cli {

// A registered subcommand: run() is called when `sub` was parsed.
struct Command {
  CLI::App* sub = nullptr;
  std::function<int()> run;
};

Command add_generate(CLI::App& app);
Command add_models(CLI::App& app);
Command add_perplexity(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_spec_bench(CLI::App& app);
Command add_run(CLI::App& app);
Command add_report(CLI::App& app);
Command add_calibrate(CLI::App& app);  // subcommands listed in experiments/cmd_calibrate.cpp
Command add_calibrate_dejavu(CLI::App& calibrate);  // experiments/cmd_calibrate_dejavu.cpp
Command add_calibrate_threshold(CLI::App& calibrate);  // experiments/cmd_calibrate_threshold.cpp
Command add_linearity(CLI::App& app);
Command add_calibrate_linearize(CLI::App& calibrate);

// Shared model options (--model, --weights-dtype, --threads, --kv-dtype).
struct ModelOptions {
  std::string model;
  std::string weights_dtype = "native";
  std::string kv_dtype = "f16";
  std::string device = "cpu";  // cpu | cuda
  int threads = 0;
  bool no_pack = false;  // --no-pack: no row-interleaved weight copies (LoadOptions::pack_weights)
  void add(CLI::App& sub, bool required = true);
  std::unique_ptr<Model> load() const;  // also sets the thread count
  KvDType kv() const;
};

// `--strategy SPEC`: a Strategy run by the target itself (a target accelerator; lossy unless exact).
struct StrategyOption {
  std::string spec;
  void add(CLI::App& sub);
  // Null when --strategy was not given. Prints one line to stderr naming the strategy and, when it is
  // not exact, that the output is LOSSY (differs from the dense model).
  std::unique_ptr<Strategy> make(const Model& model) const;
  // {name, describe, exact} for --json output (null when none).
  static nlohmann::json json(const Strategy* s);
};

// Reads a text file whole (Error naming the file if unreadable); CRLF -> LF.
std::string read_text_file(const std::string& path);

}  // namespace specula::cli
