#pragma once
// Experiment configuration: one struct per component, each with from_yaml (validating, errors name the
// file, line and YAML path) and to_yaml (every field, defaults filled in). The defaults are the member
// initializers below and nowhere else.
//
// A study file (`specula run FILE.yaml`) is an ExperimentCfg (the settings of one cell) plus the study
// keys: name, description, out, baseline, cells, grid, zip (see experiments/grid.h and the README).
//
//   model:      path (installed name or file), weights_dtype, kv_dtype, threads, device (cpu | cuda)
//   data:       kind (spec_bench | text | jsonl), path, categories, per_category, limit, interleave,
//               shuffle, seed, chat, split (text), min_chars (text), field / category_field (jsonl)
//   sampling:   temperature, top_k, top_p, min_p, repetition_penalty, repeat_last_n
//   generation: max_tokens, ignore_eos, prefill_chunk
//   draft:      spec (drafter SPEC string or {name: ..., key: value} map; none = plain decoding), k,
//               adaptive, k_min, k_max, min_confidence
//   verify:     acceptance (exact | typical: LOSSY), typical_epsilon, typical_delta
//   strategy:   target accelerator {name: ..., keys...} or a SPEC string; null = dense target (LOSSY unless
//               the strategy is exact)
//   metrics:    perplexity ({data, tokens, ctx, stride} or null), ci (t | bootstrap), bootstrap_samples
//   seed:       sampling seed (prompt i uses seed + i)
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "core/sampler.h"
#include "experiments/config_tree.h"
#include "verify/speculative.h"
#include "verify/verifier.h"

namespace specula::config {

struct ModelCfg {
  std::string path = "smollm2-135m";  // installed name (`specula models`) or a .gguf file / HF directory
  std::string weights_dtype = "native";
  std::string kv_dtype = "f16";
  int64_t threads = 0;  // 0 = all hardware threads
  std::string device = "cpu";  // cpu | cuda (the CUDA backend: needs a GPU and a build with it)
  static ModelCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
};

struct DataCfg {
  std::string kind = "spec_bench";        // spec_bench | text | jsonl
  std::string path;                       // "" (spec_bench only) = ../shared/data/spec_bench_question.jsonl
  std::vector<std::string> categories;    // keep only these Spec-Bench tasks or file categories ([] = all)
  int64_t per_category = 0;               // at most N prompts per category (0 = all)
  int64_t limit = 0;                      // at most N prompts in total (0 = all)
  bool interleave = true;                 // round-robin over categories, so a limit spreads over them
  bool shuffle = false;                   // shuffle within each category (with `seed`)
  int64_t seed = 0;
  bool chat = true;                       // format prompts with the model's chat template
  std::string split = "paragraphs";       // text: paragraphs (blank-line separated) | lines
  int64_t min_chars = 1;                  // text: drop prompts shorter than this
  std::string field = "question";         // jsonl: prompt field (a list takes its first element)
  std::string category_field = "category";  // jsonl: category field (absent = "all")
  static DataCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
};

struct SamplingCfg {
  double temperature = 0;  // 0 = greedy
  int64_t top_k = 0;
  double top_p = 1;
  double min_p = 0;
  double repetition_penalty = 1;
  int64_t repeat_last_n = 64;
  static SamplingCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
  SamplerConfig sampler(uint64_t seed) const;
  bool greedy() const { return temperature <= 0; }
};

struct GenerationCfg {
  int64_t max_tokens = 128;
  bool ignore_eos = false;
  int64_t prefill_chunk = 256;
  static GenerationCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
};

struct DraftCfg {
  std::string spec = "none";  // drafter SPEC (draft/registry.h); none = plain autoregressive decoding
  int64_t k = 4;
  bool adaptive = false;
  int64_t k_min = 1, k_max = 8;
  double min_confidence = 0;
  static DraftCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
  bool none() const { return spec == "none"; }
  // Draft-length fields of a SpecConfig (validated by SpecConfig::validate).
  void apply(SpecConfig& sc) const;
};

struct VerifyCfg {
  std::string acceptance = "exact";  // exact (greedy match / lossless speculative sampling) | typical (LOSSY)
  double typical_epsilon = 0.3;
  double typical_delta = 0.09;
  static VerifyCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
  VerifyMode mode() const { return acceptance == "typical" ? VerifyMode::Typical : VerifyMode::Exact; }
  TypicalConfig typical() const;
};

// A strategy applied to the target itself (target accelerator). Changes the output unless the strategy
// is exact(): such cells are labelled lossy everywhere.
struct StrategyCfg {
  std::string name;  // "" = none (dense target)
  std::vector<std::pair<std::string, std::string>> params;  // key -> value (lists as "a,b,c"), as written
  static StrategyCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;  // null, or {name: ..., key: value...}
  bool none() const { return name.empty(); }
};

struct PerplexityCfg {
  std::string data;       // "" = ../shared/data/wikitext2_wiki.test.raw
  int64_t tokens = 4096;  // first N tokens of the text
  int64_t ctx = 512;
  int64_t stride = 256;
  static PerplexityCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
};

struct MetricsCfg {
  std::optional<PerplexityCfg> perplexity;  // of the target as run (and of a self-draft's strategy)
  std::string ci = "t";                     // t (Student t over prompts) | bootstrap (percentile)
  int64_t bootstrap_samples = 2000;
  static MetricsCfg from_yaml(const YAML::Node& n, const std::string& path, const Origins& o);
  YAML::Node to_yaml() const;
};

// Everything one cell of a study runs with.
struct ExperimentCfg {
  ModelCfg model;
  DataCfg data;
  SamplingCfg sampling;
  GenerationCfg generation;
  DraftCfg draft;
  VerifyCfg verify;
  StrategyCfg strategy;
  MetricsCfg metrics;
  int64_t seed = 0;

  // Reads the experiment keys of a top-level map (other keys are left to the caller's r.finish()).
  static ExperimentCfg read(Reader& r);
  // A whole map of experiment keys (unknown keys are errors).
  static ExperimentCfg from_yaml(const YAML::Node& root, const Origins& o);
  YAML::Node to_yaml() const;
  static const std::vector<std::string>& keys();
};

// Top-level keys of a study file that are not ExperimentCfg keys.
const std::vector<std::string>& study_keys();

// Fixed-format helpers shared by to_yaml(): doubles in shortest round-trip form ("0.3", not 0.2999...).
YAML::Node yaml_number(double x);
// Canonical block YAML text of a node (stable: the basis of cell ids).
std::string emit(const YAML::Node& n);

}  // namespace specula::config
