#pragma once
// The `specula` command line: each subcommand registers itself on the CLI11 app and returns a
// callback run after parsing. Errors are specula::Error (one line, exit 1).
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "core/model.h"
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

// Shared model options (--model, --weights-dtype, --threads, --kv-dtype).
struct ModelOptions {
  std::string model;
  std::string weights_dtype = "native";
  std::string kv_dtype = "f16";
  int threads = 0;
  void add(CLI::App& sub, bool required = true);
  std::unique_ptr<Model> load() const;  // also sets the thread count
  KvDType kv() const;
};

// Reads a text file whole (Error naming the file if unreadable); CRLF -> LF.
std::string read_text_file(const std::string& path);

}  // namespace specula::cli
