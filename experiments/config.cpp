#include "experiments/config.h"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "core/error.h"
#include "core/spec_string.h"
#include "draft/registry.h"
#include "sparsity/strategy.h"

namespace specula::config {

namespace {
constexpr int64_t kMaxI = std::numeric_limits<int64_t>::max();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The entries of a SPEC map {name: x, a: 1, b: [2, 3]} as written: ("name", "x"), ("a", "1"), ("b", "2,3") (lists
// become comma lists, as in a SPEC string).
std::vector<std::pair<std::string, std::string>> spec_items(const YAML::Node& m, const std::string& path, const Origins& o) {
  std::vector<std::pair<std::string, std::string>> items;
  for (auto it = m.begin(); it != m.end(); ++it) {
    const std::string k = it->first.as<std::string>();
    const std::string p = join_path(path, k);
    std::string v;
    if (it->second.IsScalar()) {
      v = it->second.Scalar();
    } else if (it->second.IsSequence()) {
      std::vector<std::string> list;
      for (size_t i = 0; i < it->second.size(); ++i) {
        if (!it->second[i].IsScalar()) fail("{}: expected a scalar, got {}", o.where(index_path(p, i)), show(it->second[i]));
        list.push_back(it->second[i].Scalar());
      }
      v = join(list, ",");
    } else {
      fail("{}: expected a scalar or a list, got {}", o.where(p), show(it->second));
    }
    items.emplace_back(k, v);
  }
  return items;
}

// {name: x, a: 1, b: [2, 3]} -> "x:a=1,b=2,3".
std::string spec_string_from_map(const YAML::Node& m, const std::string& path, const Origins& o) {
  std::string name;
  std::vector<std::string> kv;
  for (const auto& [k, v] : spec_items(m, path, o)) {
    if (k == "name") name = v;
    else kv.push_back(fmt::format("{}={}", k, v));
  }
  if (name.empty()) fail("{}: missing 'name' (e.g. {{name: ngram, max: 4}})", o.where(path));
  return kv.empty() ? name : fmt::format("{}:{}", name, join(kv, ","));
}

void check_only_for(const Reader& r, const std::string& key, bool allowed, const std::string& when) {
  if (!allowed && r.has(key)) fail("{}: only used {}", r.where(key), when);
}
}  // namespace

YAML::Node yaml_number(double x) { return YAML::Node(fmt::format("{}", x)); }

std::string emit(const YAML::Node& n) {
  YAML::Emitter e;
  e << n;
  return e.c_str();
}

// ---- model ----------------------------------------------------------------------------------------

ModelCfg ModelCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  ModelCfg c;
  c.path = r.string("path", c.path);
  if (c.path.empty()) fail("{}: expected a model name or file, got an empty string", r.where("path"));
  c.weights_dtype = r.choice("weights_dtype", c.weights_dtype, {"native", "f32", "f16", "bf16"});
  c.kv_dtype = r.choice("kv_dtype", c.kv_dtype, {"f16", "f32"});
  c.threads = r.integer("threads", c.threads, 0, 1024);
  c.device = r.choice("device", c.device, {"cpu", "cuda"});
  r.finish();
  return c;
}

YAML::Node ModelCfg::to_yaml() const {
  YAML::Node n;
  n["path"] = path;
  n["weights_dtype"] = weights_dtype;
  n["kv_dtype"] = kv_dtype;
  n["threads"] = threads;
  n["device"] = device;
  return n;
}

// ---- data -----------------------------------------------------------------------------------------

DataCfg DataCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  DataCfg c;
  c.kind = r.choice("kind", c.kind, {"spec_bench", "text", "jsonl"});
  c.path = r.string("path", c.path);
  if (c.kind != "spec_bench" && c.path.empty()) fail("{}: data.path is required for kind: {}", r.where("kind"), c.kind);
  c.categories = r.strings("categories", c.categories);
  c.per_category = r.integer("per_category", c.per_category, 0, kMaxI);
  c.limit = r.integer("limit", c.limit, 0, kMaxI);
  c.interleave = r.boolean("interleave", c.interleave);
  c.shuffle = r.boolean("shuffle", c.shuffle);
  c.seed = r.integer("seed", c.seed, 0, kMaxI);
  c.chat = r.boolean("chat", c.chat);
  check_only_for(r, "split", c.kind == "text", "with kind: text");
  check_only_for(r, "min_chars", c.kind == "text", "with kind: text");
  c.split = r.choice("split", c.split, {"paragraphs", "lines"});
  c.min_chars = r.integer("min_chars", c.min_chars, 1, kMaxI);
  check_only_for(r, "field", c.kind == "jsonl", "with kind: jsonl");
  check_only_for(r, "category_field", c.kind == "jsonl", "with kind: jsonl");
  c.field = r.string("field", c.field);
  c.category_field = r.string("category_field", c.category_field);
  check_only_for(r, "categories", c.kind != "text", "with kind: spec_bench or jsonl (a text file has no categories)");
  check_only_for(r, "per_category", c.kind != "text", "with kind: spec_bench or jsonl (a text file has no categories)");
  r.finish();
  return c;
}

YAML::Node DataCfg::to_yaml() const {
  YAML::Node n;
  n["kind"] = kind;
  n["path"] = path;
  if (kind != "text") {
    n["categories"] = YAML::Node(YAML::NodeType::Sequence);
    for (const auto& s : categories) n["categories"].push_back(s);
    n["per_category"] = per_category;
  }
  n["limit"] = limit;
  n["interleave"] = interleave;
  n["shuffle"] = shuffle;
  n["seed"] = seed;
  n["chat"] = chat;
  if (kind == "text") {
    n["split"] = split;
    n["min_chars"] = min_chars;
  }
  if (kind == "jsonl") {
    n["field"] = field;
    n["category_field"] = category_field;
  }
  return n;
}

// ---- sampling -------------------------------------------------------------------------------------

SamplingCfg SamplingCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  SamplingCfg c;
  c.temperature = r.number("temperature", c.temperature, 0, 100);
  c.top_k = r.integer("top_k", c.top_k, 0, 1 << 24);
  c.top_p = r.number("top_p", c.top_p, 0, 1);
  if (c.top_p <= 0) fail("{}: expected a number in (0, 1], got \"{}\"", r.where("top_p"), c.top_p);
  c.min_p = r.number("min_p", c.min_p, 0, 1);
  c.repetition_penalty = r.number("repetition_penalty", c.repetition_penalty, 0, 100);
  if (c.repetition_penalty <= 0)
    fail("{}: expected a number > 0, got \"{}\"", r.where("repetition_penalty"), c.repetition_penalty);
  c.repeat_last_n = r.integer("repeat_last_n", c.repeat_last_n, 0, 1 << 20);
  r.finish();
  try {
    c.sampler(0).validate();
  } catch (const Error& e) {
    fail("{}: {}", o.where(path), e.what());
  }
  return c;
}

YAML::Node SamplingCfg::to_yaml() const {
  YAML::Node n;
  n["temperature"] = yaml_number(temperature);
  n["top_k"] = top_k;
  n["top_p"] = yaml_number(top_p);
  n["min_p"] = yaml_number(min_p);
  n["repetition_penalty"] = yaml_number(repetition_penalty);
  n["repeat_last_n"] = repeat_last_n;
  return n;
}

SamplerConfig SamplingCfg::sampler(uint64_t seed) const {
  SamplerConfig s;
  s.temperature = static_cast<float>(temperature);
  s.top_k = static_cast<int32_t>(top_k);
  s.top_p = static_cast<float>(top_p);
  s.min_p = static_cast<float>(min_p);
  s.repetition_penalty = static_cast<float>(repetition_penalty);
  s.repeat_last_n = static_cast<int32_t>(repeat_last_n);
  s.seed = seed;
  return s;
}

// ---- generation -----------------------------------------------------------------------------------

GenerationCfg GenerationCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  GenerationCfg c;
  c.max_tokens = r.integer("max_tokens", c.max_tokens, 1, 1 << 20);
  c.ignore_eos = r.boolean("ignore_eos", c.ignore_eos);
  c.prefill_chunk = r.integer("prefill_chunk", c.prefill_chunk, 1, 1 << 16);
  r.finish();
  return c;
}

YAML::Node GenerationCfg::to_yaml() const {
  YAML::Node n;
  n["max_tokens"] = max_tokens;
  n["ignore_eos"] = ignore_eos;
  n["prefill_chunk"] = prefill_chunk;
  return n;
}

// ---- draft ----------------------------------------------------------------------------------------

DraftCfg DraftCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  DraftCfg c;
  const YAML::Node s = r.node("spec");
  if (s.IsDefined()) {
    if (s.IsScalar()) c.spec = s.Scalar();
    else if (s.IsMap()) c.spec = spec_string_from_map(s, r.path("spec"), o);
    else fail("{}: expected a drafter SPEC string or a map {{name: ..., key: value}}, got {}", r.where("spec"), show(s));
  }
  if (c.spec == "autoregressive" || c.spec.empty()) c.spec = "none";
  if (!c.none()) {
    std::string name;
    try {
      name = SpecString::parse(c.spec).name;
    } catch (const Error& e) {
      fail("{}: {}", r.where("spec"), e.what());
    }
    const auto known = drafter_names();
    if (std::find(known.begin(), known.end(), name) == known.end())
      fail("{}: unknown drafter '{}' (known: none, {})", r.where("spec"), name, join(known, ", "));
  }
  const int64_t depth = SpecConfig{}.max_depth;
  c.k = r.integer("k", c.k, 1, depth);
  c.adaptive = r.boolean("adaptive", c.adaptive);
  c.k_min = r.integer("k_min", c.k_min, 1, depth);
  c.k_max = r.integer("k_max", c.k_max, 1, depth);
  c.min_confidence = r.number("min_confidence", c.min_confidence, 0, 1);
  r.finish();
  if (c.adaptive && !(c.k_min <= c.k && c.k <= c.k_max))
    fail("{}: adaptive draft length needs k_min <= k <= k_max, got k_min={}, k={}, k_max={}", o.where(path), c.k_min, c.k,
         c.k_max);
  return c;
}

YAML::Node DraftCfg::to_yaml() const {
  YAML::Node n;
  n["spec"] = spec;
  n["k"] = k;
  n["adaptive"] = adaptive;
  n["k_min"] = k_min;
  n["k_max"] = k_max;
  n["min_confidence"] = yaml_number(min_confidence);
  return n;
}

void DraftCfg::apply(SpecConfig& sc) const {
  sc.k = k;
  sc.length = adaptive ? DraftLength::Adaptive : DraftLength::Fixed;
  sc.k_min = adaptive ? k_min : k;
  sc.k_max = adaptive ? k_max : k;
  sc.min_confidence = static_cast<float>(min_confidence);
}

// ---- verify ---------------------------------------------------------------------------------------

VerifyCfg VerifyCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  VerifyCfg c;
  c.acceptance = r.choice("acceptance", c.acceptance, {"exact", "typical"});
  c.typical_epsilon = r.number("typical_epsilon", c.typical_epsilon, 0, 1);
  c.typical_delta = r.number("typical_delta", c.typical_delta, 0, kInf);
  r.finish();
  return c;
}

YAML::Node VerifyCfg::to_yaml() const {
  YAML::Node n;
  n["acceptance"] = acceptance;
  n["typical_epsilon"] = yaml_number(typical_epsilon);
  n["typical_delta"] = yaml_number(typical_delta);
  return n;
}

TypicalConfig VerifyCfg::typical() const {
  TypicalConfig t;
  t.epsilon = static_cast<float>(typical_epsilon);
  t.delta = static_cast<float>(typical_delta);
  return t;
}

// ---- strategy -------------------------------------------------------------------------------------

StrategyCfg StrategyCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  StrategyCfg c;
  if (!n.IsDefined() || n.IsNull()) return c;
  const auto& reg = strategy_registry();
  if (n.IsScalar()) {
    if (n.Scalar() == "none" || n.Scalar().empty()) return c;
    SpecString s;
    try {
      s = SpecString::parse(n.Scalar());
    } catch (const Error& e) {
      fail("{}: {}", o.where(path), e.what());
    }
    c.name = s.name;
    for (const auto& [k, v] : s.kv) c.params.emplace_back(k, v);
  } else if (n.IsMap()) {
    for (const auto& [k, v] : spec_items(n, path, o)) {
      if (k == "name") c.name = v;
      else c.params.emplace_back(k, v);
    }
    if (c.name.empty()) fail("{}: missing 'name' (known strategies: {})", o.where(path), join(reg.names(), ", "));
  } else {
    fail("{}: expected a strategy SPEC string, a map {{name: ..., key: value}} or null, got {}", o.where(path), show(n));
  }
  const StrategyFactory* f = reg.find(c.name);
  if (!f) fail("{}: unknown strategy '{}' (known: {})", o.where(n.IsMap() ? join_path(path, "name") : path), c.name, join(reg.names(), ", "));
  for (const auto& [k, v] : c.params)
    if (std::find(f->keys.begin(), f->keys.end(), k) == f->keys.end())
      fail("{}: unknown key '{}' for strategy '{}' (accepted: name, {})", o.where(join_path(path, k)), k, c.name,
           join(f->keys, ", "));
  return c;
}

YAML::Node StrategyCfg::to_yaml() const {
  if (none()) return YAML::Node(YAML::NodeType::Null);
  YAML::Node n;
  n["name"] = name;
  for (const auto& [k, v] : params) n[k] = v;
  return n;
}

// ---- metrics --------------------------------------------------------------------------------------

PerplexityCfg PerplexityCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  PerplexityCfg c;
  c.data = r.string("data", c.data);
  c.tokens = r.integer("tokens", c.tokens, 2, 1 << 24);
  c.ctx = r.integer("ctx", c.ctx, 2, 1 << 20);
  c.stride = r.integer("stride", c.stride, 1, 1 << 20);
  r.finish();
  if (c.stride > c.ctx) fail("{}: expected stride <= ctx ({}), got {}", r.where("stride"), c.ctx, c.stride);
  return c;
}

YAML::Node PerplexityCfg::to_yaml() const {
  YAML::Node n;
  n["data"] = data;
  n["tokens"] = tokens;
  n["ctx"] = ctx;
  n["stride"] = stride;
  return n;
}

MetricsCfg MetricsCfg::from_yaml(const YAML::Node& n, const std::string& path, const Origins& o) {
  Reader r(n, path, o);
  MetricsCfg c;
  const YAML::Node p = r.node("perplexity");
  if (p.IsDefined() && !p.IsNull()) {
    bool on = true;
    if (p.IsScalar() && YAML::convert<bool>::decode(p, on)) {
      if (on) c.perplexity = PerplexityCfg{};
    } else {
      c.perplexity = PerplexityCfg::from_yaml(p, r.path("perplexity"), o);
    }
  }
  c.ci = r.choice("ci", c.ci, {"t", "bootstrap"});
  c.bootstrap_samples = r.integer("bootstrap_samples", c.bootstrap_samples, 100, 1000000);
  r.finish();
  return c;
}

YAML::Node MetricsCfg::to_yaml() const {
  YAML::Node n;
  n["perplexity"] = perplexity ? perplexity->to_yaml() : YAML::Node(YAML::NodeType::Null);
  n["ci"] = ci;
  n["bootstrap_samples"] = bootstrap_samples;
  return n;
}

// ---- experiment -----------------------------------------------------------------------------------

const std::vector<std::string>& ExperimentCfg::keys() {
  static const std::vector<std::string> k = {"model", "data", "sampling", "generation", "draft",
                                             "verify", "strategy", "metrics", "seed"};
  return k;
}

const std::vector<std::string>& study_keys() {
  static const std::vector<std::string> k = {"name", "description", "out", "baseline", "cells", "grid", "zip"};
  return k;
}

ExperimentCfg ExperimentCfg::read(Reader& r) {
  ExperimentCfg c;
  const Origins& o = r.origins();
  c.model = ModelCfg::from_yaml(r.node("model"), r.path("model"), o);
  c.data = DataCfg::from_yaml(r.node("data"), r.path("data"), o);
  c.sampling = SamplingCfg::from_yaml(r.node("sampling"), r.path("sampling"), o);
  c.generation = GenerationCfg::from_yaml(r.node("generation"), r.path("generation"), o);
  c.draft = DraftCfg::from_yaml(r.node("draft"), r.path("draft"), o);
  c.verify = VerifyCfg::from_yaml(r.node("verify"), r.path("verify"), o);
  c.strategy = StrategyCfg::from_yaml(r.node("strategy"), r.path("strategy"), o);
  c.metrics = MetricsCfg::from_yaml(r.node("metrics"), r.path("metrics"), o);
  c.seed = r.integer("seed", c.seed, 0, kMaxI);
  if (c.verify.acceptance == "typical" && c.draft.none())
    fail("{}: typical acceptance needs a drafter (draft.spec is none)", r.origins().where(r.path("verify.acceptance")));
  return c;
}

ExperimentCfg ExperimentCfg::from_yaml(const YAML::Node& root, const Origins& o) {
  Reader r(root, "", o);
  ExperimentCfg c = read(r);
  r.finish();
  return c;
}

YAML::Node ExperimentCfg::to_yaml() const {
  YAML::Node n;
  n["model"] = model.to_yaml();
  n["data"] = data.to_yaml();
  n["sampling"] = sampling.to_yaml();
  n["generation"] = generation.to_yaml();
  n["draft"] = draft.to_yaml();
  n["verify"] = verify.to_yaml();
  n["strategy"] = strategy.to_yaml();
  n["metrics"] = metrics.to_yaml();
  n["seed"] = seed;
  return n;
}

}  // namespace specula::config
