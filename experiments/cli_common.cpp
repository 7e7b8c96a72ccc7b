#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/model_registry.h"
#include "experiments/cli.h"
#include "kernels/cuda/device.h"
#include "kernels/ops.h"

namespace specula::cli {

void ModelOptions::add(CLI::App& sub, bool required) {
  auto* o = sub.add_option("-m,--model", model,
                           "Model: a .gguf file, an HF directory, or an installed name (smollm2-135m, gemma3-270m)");
  if (required) o->required();
  sub.add_option("--weights-dtype", weights_dtype,
                 "Run weights in their stored type (native) or convert at load to f32|f16|bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"native", "f32", "f16", "bf16"}));
  sub.add_option("--kv-dtype", kv_dtype, "KV cache element type: f16 (as llama.cpp) or f32")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "f32"}));
  sub.add_option("--device", device, "Where the model runs: cpu, or cuda (needs a GPU and a build with -DSPECULA_CUDA=ON)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda"}));
  sub.add_option("-t,--threads", threads, "Worker threads (0 = all hardware threads)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  sub.add_flag("--no-pack", no_pack,
               "Do not keep row-interleaved copies of q4_1/q8_0 (and, for prefill, q5_0) matrices for the AVX-512 VNNI kernels (saves their "
               "size in memory; slower, same results up to float summation order)");
}

std::unique_ptr<Model> ModelOptions::load() const {
  LoadOptions lo;
  lo.device = parse_device(device);
  if (lo.device == Device::Cuda) cuda::require_device();  // no GPU / no CUDA build: one clear line, before the model is read
  ops::set_num_threads(threads);
  lo.weights_dtype = parse_weights_dtype(weights_dtype);
  lo.pack_weights = !no_pack;
  return Model::load(resolve_model(model), lo);
}

KvDType ModelOptions::kv() const { return kv_dtype == "f32" ? KvDType::F32 : KvDType::F16; }

void StrategyOption::add(CLI::App& sub) {
  std::string names;
  for (const auto& n : strategy_registry().names()) names += (names.empty() ? "" : ", ") + n;
  sub.add_option("--strategy", spec,
                 "Accelerate the target itself with a strategy SPEC name[:key=value,...] (" + names +
                     "); LOSSY unless the strategy is exact: the output is labelled as such");
}

std::unique_ptr<Strategy> StrategyOption::make(const Model& model) const {
  if (spec.empty()) return nullptr;
  auto s = make_strategy(spec, model.config());
  std::fprintf(stderr, "[target strategy: %s%s]\n", s->describe().c_str(),
               s->exact() ? " (exact: same output as the dense model)" : " (LOSSY: output differs from the dense model)");
  return s;
}

nlohmann::json StrategyOption::json(const Strategy* s) {
  if (!s) return nullptr;
  return {{"name", s->name()}, {"describe", s->describe()}, {"exact", s->exact()}, {"lossy", !s->exact()}};
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read '{}': no such file or not readable", path);
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i)
    if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out.push_back(s[i]);
  return out;
}

}  // namespace specula::cli
