#include "experiments/json_out.h"
#include "experiments/runner.h"
#include "kernels/cuda/device.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/generator.h"
#include "core/model_registry.h"
#include "core/spec_string.h"
#include "core/tokenizer.h"
#include "draft/registry.h"
#include "draft/self_drafter.h"
#include "experiments/cli.h"
#include "experiments/datasets.h"
#include "experiments/perplexity.h"
#include "experiments/progress.h"
#include "experiments/report.h"
#include "experiments/run_io.h"
#include "experiments/run_metrics.h"
#include "kernels/ops.h"
#include "sparsity/strategy.h"
#include "verify/speculative.h"

namespace specula {

namespace fs = std::filesystem;
using nlohmann::json;
using config::CellSpec;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// YAML -> JSON with typed scalars (integers, numbers, booleans; quoted scalars stay strings).
json yaml_to_json(const YAML::Node& n) {
  if (!n.IsDefined() || n.IsNull()) return nullptr;
  if (n.IsScalar()) {
    const std::string& s = n.Scalar();
    if (n.Tag() == "!") return s;
    int64_t i = 0;
    if (auto r = std::from_chars(s.data(), s.data() + s.size(), i); !s.empty() && r.ec == std::errc() && r.ptr == s.data() + s.size())
      return i;
    char* end = nullptr;
    const double d = s.empty() ? 0 : std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return d;
    if (s == "true" || s == "false") return s == "true";
    return s;
  }
  if (n.IsSequence()) {
    json a = json::array();
    for (const auto& e : n) a.push_back(yaml_to_json(e));
    return a;
  }
  json o = json::object();
  for (auto it = n.begin(); it != n.end(); ++it) o[it->first.as<std::string>()] = yaml_to_json(it->second);
  return o;
}

KvDType kv_of(const config::ExperimentCfg& c) { return c.model.kv_dtype == "f32" ? KvDType::F32 : KvDType::F16; }

// Models and prompt sets shared by the cells of a run.
class Engine {
 public:
  Model& model(const CellSpec& c) {
    const std::string key = c.cfg.model.path + "|" + c.cfg.model.weights_dtype + "|" + c.cfg.model.device;
    auto& m = models_[key];
    if (!m) {
      LoadOptions lo;
      lo.device = parse_device(c.cfg.model.device);
      if (lo.device == Device::Cuda && !cuda::device_info().available)
        fail("{}: device cuda: {}", c.origins.where("model.device"), cuda::device_info().reason);
      try {
        lo.weights_dtype = parse_weights_dtype(c.cfg.model.weights_dtype);
        m = Model::load(resolve_model(c.cfg.model.path), lo);
      } catch (const Error& e) {
        fail("{}: {}", c.origins.where("model.path"), e.what());
      }
    }
    return *m;
  }
  const std::vector<Prompt>& prompts(const CellSpec& c) {
    const std::string key = config::emit(c.cfg.data.to_yaml());
    auto it = prompts_.find(key);
    if (it == prompts_.end()) it = prompts_.emplace(key, load_prompts(c.cfg.data, c.origins)).first;
    return it->second;
  }

 private:
  std::map<std::string, std::unique_ptr<Model>> models_;
  std::map<std::string, std::vector<Prompt>> prompts_;
};

// What a cell decodes with, built from its configuration (errors name the config field).
struct Components {
  std::unique_ptr<Strategy> target;  // target accelerator (plan in spc.gen.plan)
  std::unique_ptr<Drafter> drafter;
  std::unique_ptr<Verifier> verifier;
  SamplerConfig scfg;
  SpecConfig spc;
  std::vector<std::string> lossy_reasons;
  const Strategy* draft_strategy() const {
    const auto* sd = dynamic_cast<const SelfDrafter*>(drafter.get());
    return sd ? &sd->strategy() : nullptr;
  }
};

Components build(Model& m, const CellSpec& c) {
  const config::ExperimentCfg& cfg = c.cfg;
  Components k;
  k.scfg = cfg.sampling.sampler(static_cast<uint64_t>(cfg.seed));
  k.spc.gen.max_tokens = cfg.generation.max_tokens;
  k.spc.gen.prefill_chunk = cfg.generation.prefill_chunk;
  k.spc.gen.stop_at_eog = !cfg.generation.ignore_eos;
  k.spc.gen.kv_dtype = kv_of(cfg);
  if (!cfg.strategy.none()) {
    try {
      k.target = make_strategy(cfg.strategy.to_yaml(), "strategy", m.config());
    } catch (const Error& e) {
      fail("{}: {}", c.origins.where("strategy"), e.what());
    }
    k.spc.gen.plan = &k.target->forward_plan();
    if (!k.target->exact()) k.lossy_reasons.push_back(fmt::format("target strategy {}", k.target->describe()));
  }
  if (!cfg.draft.none()) {
    try {
      DrafterOptions dopt;
      dopt.kv_dtype = kv_of(cfg);
      k.drafter = make_drafter(cfg.draft.spec, m, dopt);
    } catch (const Error& e) {
      fail("{}: {}", c.origins.where("draft.spec"), e.what());
    }
    cfg.draft.apply(k.spc);
    try {
      k.spc.validate();
    } catch (const Error& e) {
      fail("{}: {}", c.origins.where("draft"), e.what());
    }
    if (k.drafter->max_nodes(k.spc.k_max) > k.spc.max_nodes)
      fail("{}: drafts of '{}' at depth {} can have {} nodes, more than the limit of {} per verification pass",
           c.origins.where("draft"), k.drafter->describe(), k.spc.k_max, k.drafter->max_nodes(k.spc.k_max), k.spc.max_nodes);
    k.verifier = make_verifier(cfg.verify.mode(), k.scfg, cfg.verify.typical());
    if (k.verifier->lossy()) k.lossy_reasons.push_back("typical acceptance (Medusa): output distribution differs from the target's");
  }
  return k;
}

// Errors before anything runs: prompts that do not fit the model's context.
void check_prompts_fit(const Model& m, const std::vector<Prompt>& ps, const CellSpec& c) {
  const int64_t n_ctx = m.config().n_ctx_train;
  if (n_ctx <= 0) return;
  for (const auto& p : ps) {
    const int64_t n = static_cast<int64_t>(prompt_tokens(m, p.text, c.cfg.data.chat).size());
    if (n + c.cfg.generation.max_tokens > n_ctx)
      fail("{}: prompt {} ({}, {} tokens) + max_tokens {} exceed the model's context of {} tokens", c.origins.where("data"),
           p.id, p.category, n, c.cfg.generation.max_tokens, n_ctx);
  }
}

json perplexity_json(Model& m, const config::PerplexityCfg& pc, const ExecPlan* plan, KvDType kv) {
  const std::string file = pc.data.empty() ? default_perplexity_data() : pc.data;
  const Tokenizer& tok = m.tokenizer();
  const std::vector<Token> toks = tok.encode(cli::read_text_file(file), /*add_special=*/false, /*parse_special=*/false);
  PerplexityConfig c;
  c.ctx = pc.ctx;
  c.stride = pc.stride;
  c.max_tokens = pc.tokens;
  c.add_bos = tok.spec().add_bos;
  c.kv_dtype = kv;
  c.plan = plan;
  const PerplexityResult r = perplexity(m, toks, c);
  return {{"ppl", r.ppl}, {"tokens", r.tokens_scored}, {"windows", r.windows}, {"ctx", pc.ctx},
          {"stride", pc.stride}, {"data", file}, {"seconds", r.seconds}};
}

json drafter_stats_json(const DrafterStats& d) {
  return {{"proposals", d.proposals}, {"nodes", d.nodes},       {"forwards", d.forwards},
          {"fed_tokens", d.fed_tokens}, {"accepted", d.accepted}, {"prefill_s", d.prefill_s}};
}

// A strategy's per-layer figures, plus "layer_runs" (1 = the layer runs, 0 = skipped / after an early exit) from
// its whole-pass plan when that skips layers.
json layer_metrics_json(const Strategy& s, int64_t n_layer) {
  json j = json::object();
  for (const auto& [k, v] : s.layer_metrics()) j[k] = v;
  const ExecPlan& p = s.forward_plan();
  if (!p.skip_layer.empty() || p.exit_after >= 0) {
    std::vector<double> runs(static_cast<size_t>(n_layer), 1.0);
    for (int64_t l = 0; l < n_layer; ++l)
      if ((p.exit_after >= 0 && l >= p.exit_after) || (l < static_cast<int64_t>(p.skip_layer.size()) && p.skip_layer[static_cast<size_t>(l)]))
        runs[static_cast<size_t>(l)] = 0.0;
    if (!j.contains("layer_runs")) j["layer_runs"] = runs;
  }
  return j;
}

// Runs one cell over its prompts. Returns null when `stop` was set (the cell is dropped).
json run_cell(Model& m, const CellSpec& c, const std::vector<Prompt>& prompts, bool study_has_baseline, Progress& prog,
              const std::atomic<bool>* stop) {
  const config::ExperimentCfg& cfg = c.cfg;
  ops::set_num_threads(static_cast<int>(cfg.model.threads));
  Components k = build(m, c);
  const Tokenizer& tok = m.tokenizer();
  const Sampler sampler(k.scfg);
  const std::string started = run_io::now_iso();
  const double t0 = now_s();
  json ps = json::array();
  for (size_t j = 0; j < prompts.size(); ++j) {
    if (stop && stop->load()) return nullptr;
    const Prompt& p = prompts[j];
    const std::vector<Token> toks = prompt_tokens(m, p.text, cfg.data.chat);
    Rng rng(static_cast<uint64_t>(cfg.seed) + j);
    std::vector<Token> out;
    SpecStats st;
    bool eog = false;
    json rec;
    if (k.drafter) {
      k.drafter->reset_stats();
      SpecConfig sc = k.spc;
      sc.gen.context = static_cast<int64_t>(toks.size()) + cfg.generation.max_tokens;
      SpecResult r = speculative_generate(m, *k.drafter, *k.verifier, toks, sc, sampler, rng);
      out = std::move(r.tokens);
      st = r.stats;
      eog = r.stopped_at_eog;
      rec["drafter"] = drafter_stats_json(k.drafter->stats());
    } else {
      GenerateResult g = generate(m, toks, k.spc.gen, sampler, rng);
      out = std::move(g.tokens);
      eog = g.stopped_at_eog;
      // Plain decoding as a speculative run without drafts: one pass per token after the first.
      st.generated = static_cast<int64_t>(out.size());
      st.steps = std::max<int64_t>(0, st.generated - 1);
      st.prefill_s = g.prefill_s;
      st.decode_s = g.decode_s;
      st.verify_s = g.decode_s;
    }
    DecodeOptions dopt;
    dopt.remove_special = true;
    dopt.unparse_special = false;
    rec["index"] = p.index;
    rec["id"] = p.id;
    rec["category"] = p.category;
    rec["prompt_tokens"] = toks.size();
    rec["tokens"] = out;
    rec["text"] = tok.decode(out, dopt);
    rec["stopped_at_eog"] = eog;
    rec["stats"] = spec_stats_raw(st);
    ps.push_back(std::move(rec));
    prog.prompt_done(static_cast<int64_t>(j) + 1, st.generated, st.decode_s);
  }

  json r;
  r["format"] = 1;
  r["id"] = c.id;
  r["label"] = c.label;
  r["kind"] = c.is_baseline ? "baseline" : "cell";
  r["hash"] = c.hash;
  r["baseline_id"] = c.baseline_id.empty() ? json(nullptr) : json(c.baseline_id);
  r["overrides"] = json::array();
  for (const auto& o : c.overrides) r["overrides"].push_back({{"path", o.path}, {"value", yaml_to_json(o.value)}, {"source", o.source}});
  r["config"] = yaml_to_json(cfg.to_yaml());
  r["describe"] = {{"drafter", k.drafter ? json(k.drafter->describe()) : json(nullptr)},
                   {"verifier", k.verifier ? json(k.verifier->name()) : json(nullptr)},
                   {"strategy", k.target ? json(k.target->describe()) : json(nullptr)},
                   {"strategy_exact", k.target ? json(k.target->exact()) : json(nullptr)},
                   {"draft_strategy", k.draft_strategy() ? json(k.draft_strategy()->describe()) : json(nullptr)}};
  r["lossy"] = !k.lossy_reasons.empty();
  r["lossy_reasons"] = k.lossy_reasons;
  r["greedy"] = cfg.sampling.greedy();
  r["model"] = {{"path", m.path()}, {"name", m.config().name}, {"weights_dtype", cfg.model.weights_dtype},
                {"device", m.device_name()}, {"n_layer", m.config().n_layer}};
  r["threads"] = ops::num_threads();
  r["prompts"] = std::move(ps);
  // Strategy figures (Strategy::metrics / layer_metrics), of the target accelerator and of a self-draft.
  if (k.target) {
    r["strategy_metrics"] = k.target->metrics();
    r["layer_metrics"] = layer_metrics_json(*k.target, m.config().n_layer);
  }
  if (const Strategy* ds = k.draft_strategy()) {
    r["draft_strategy_metrics"] = ds->metrics();
    r["draft_layer_metrics"] = layer_metrics_json(*ds, m.config().n_layer);
  }
  if (cfg.metrics.perplexity) {
    // The dense target's perplexity is measured once, in the baseline; cells that change the target measure theirs.
    if (c.is_baseline || k.target || !study_has_baseline)
      r["perplexity"] = perplexity_json(m, *cfg.metrics.perplexity, k.spc.gen.plan, kv_of(cfg));
    if (const Strategy* ds = k.draft_strategy())
      r["draft_perplexity"] = perplexity_json(m, *cfg.metrics.perplexity, &ds->forward_plan(), kv_of(cfg));
  }
  r["started"] = started;
  r["finished"] = run_io::now_iso();
  r["wall_s"] = now_s() - t0;
  return r;
}

std::string result_path(const std::string& out, const CellSpec& c) { return out + "/cells/" + c.id + "/result.json"; }

std::string cell_summary(const json& r) {
  SpecStats pooled;
  for (const auto& p : r.at("prompts")) pooled.add(spec_stats_from_raw(p.at("stats")));
  std::string s = fmt::format("{} prompts, {} tokens, {:.1f} tok/s", r.at("prompts").size(), pooled.generated, pooled.tokens_per_s());
  if (pooled.drafted > 0) s += fmt::format(", tau {:.2f}, acceptance {:.2f}", pooled.tau(), pooled.acceptance_rate());
  return s + fmt::format(", {:.1f} s", r.at("wall_s").get<double>());
}

std::string default_plot_script() {
  if (const char* e = std::getenv("SPECULA_PLOT_SCRIPT"); e && *e) return e;
  return std::string(SPECULA_SOURCE_DIR) + "/scripts/plot_run.py";
}

// Runs the plot script; returns the metrics.json "plots" object.
json make_plots(const std::string& out_dir, const RunOptions& opt) {
  if (!opt.plots) return {{"status", "disabled"}, {"message", "plots were turned off (--no-plots)."}, {"files", json::array()}};
  const std::string script = opt.plot_script.empty() ? default_plot_script() : opt.plot_script;
  // $SPECULA_PYTHON, else python3 on PATH, else the system's /usr/bin/python3 (where Debian's python3-matplotlib
  // lives when PATH has another python3 first, e.g. pyenv).
  std::vector<std::string> pythons;
  if (const char* e = std::getenv("SPECULA_PYTHON"); e && *e) pythons.push_back(e);
  else pythons = {"python3", "/usr/bin/python3"};
  run_io::ProcessResult pr;
  std::string python;
  bool no_matplotlib = false;  // some python3 ran but could not import matplotlib (the script's exit status 3)
  for (const auto& py : pythons) {
    python = py;
    pr = run_io::run_process({py, script, out_dir});
    no_matplotlib |= pr.exit_code == 3;
    if (pr.exit_code != 3 && pr.exit_code != 127 && pr.exit_code >= 0) break;
  }
  json files = json::array();
  if (pr.exit_code == 0) {
    std::vector<std::string> v;
    if (fs::exists(out_dir + "/plots"))
      for (const auto& e : fs::directory_iterator(out_dir + "/plots")) v.push_back(fmt::format("plots/{}", e.path().filename().string()));
    std::sort(v.begin(), v.end());
    return {{"status", "ok"}, {"message", ""}, {"files", v}};
  }
  std::string tail = pr.output.size() > 600 ? pr.output.substr(pr.output.size() - 600) : pr.output;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  if (no_matplotlib && (pr.exit_code == 3 || pr.exit_code == 127 || pr.exit_code < 0))
    return {{"status", "matplotlib missing"},
            {"message", fmt::format("python3 could not import matplotlib (tried {}). Install it (Debian: `apt-get install "
                                    "python3-matplotlib`, which ./scripts/setup.sh does) and redraw with `python3 "
                                    "scripts/plot_run.py {}`.",
                                    join(pythons, ", "), out_dir)},
            {"files", files}};
  if (pr.exit_code == 127 || pr.exit_code < 0)
    return {{"status", "python3 missing"}, {"message", fmt::format("could not run {} {}: {}", python, script, tail)}, {"files", files}};
  return {{"status", "plot script failed"},
          {"message", fmt::format("`{} {} {}` exited with {}: {}", python, script, out_dir, pr.exit_code, tail)},
          {"files", files}};
}

}  // namespace

std::string resolve_out_dir(const config::Study& s, const std::string& out_option) {
  if (!out_option.empty()) return out_option;
  if (!s.cfg.out.empty()) return s.cfg.out;
  return "runs/" + config::slug(s.cfg.name, 60) + "-" + run_io::now_compact();
}

std::string write_run_outputs(const config::Study& s, const std::string& out_dir, const RunOptions& opt, const json& run_info) {
  std::map<std::string, json> results;
  for (const auto* list : {&s.baselines, &s.cells})
    for (const auto& c : *list) results[c.id] = run_io::read_json(result_path(out_dir, c));
  json m = run_metrics(s, results, run_info);
  run_io::write_file_atomic(out_dir + "/samples.csv", samples_csv(s, results));
  m["plots"] = {{"status", "pending"}, {"files", json::array()}};
  run_io::write_file_atomic(out_dir + "/metrics.json", cli::json_text(m, 2) + "\n");  // the plot script reads it
  m["plots"] = make_plots(out_dir, opt);
  run_io::write_file_atomic(out_dir + "/metrics.json", cli::json_text(m, 2) + "\n");
  run_io::write_file_atomic(out_dir + "/report.md", run_report_md(m));
  return m["plots"]["status"].get<std::string>();
}

RunOutcome run_study(const config::Study& s, const RunOptions& opt) {
  RunOutcome out;
  out.out_dir = resolve_out_dir(s, opt.out_dir);
  std::error_code ec;
  fs::create_directories(out.out_dir + "/cells", ec);
  if (ec) fail("cannot create the run directory '{}': {}", out.out_dir, ec.message());
  run_io::write_file_atomic(out.out_dir + "/config.resolved.yaml", config::dump_study(s));
  const std::string started = run_io::now_iso();
  const double t0 = now_s();

  // Run order: each baseline, then the cells compared with it; cells without a baseline last.
  std::vector<const CellSpec*> units;
  for (const auto& b : s.baselines) {
    units.push_back(&b);
    for (const auto& c : s.cells)
      if (c.baseline_id == b.id) units.push_back(&c);
  }
  for (const auto& c : s.cells)
    if (c.baseline_id.empty()) units.push_back(&c);
  out.cells_total = static_cast<int64_t>(units.size());
  auto done = [&](const CellSpec& c) { return !opt.force && fs::exists(result_path(out.out_dir, c)); };

  // Preflight: every model, prompt set and component of the cells to run is built once before anything
  // runs, so a bad value in the last cell of a grid fails now, not after an hour.
  Engine eng;
  int64_t total_prompts = 0, pending = 0;
  for (const CellSpec* u : units) {
    if (done(*u)) continue;
    Model& m = eng.model(*u);
    const auto& ps = eng.prompts(*u);
    check_prompts_fit(m, ps, *u);
    build(m, *u);
    total_prompts += static_cast<int64_t>(ps.size());
    ++pending;
  }
  Progress prog(opt.log, opt.tty, total_prompts);
  prog.note(fmt::format("{}: {} cells + {} baseline{}; {} to run, {} finished earlier; writing to {}", s.cfg.name,
                        s.cells.size(), s.baselines.size(), s.baselines.size() == 1 ? "" : "s", pending,
                        out.cells_total - pending, out.out_dir));

  int64_t i = 0;
  for (const CellSpec* u : units) {
    ++i;
    if (done(*u)) {
      prog.note(fmt::format("cell {}/{} {}: finished earlier, skipped (--force reruns it)", i, out.cells_total, u->label));
      ++out.cells_skipped;
      continue;
    }
    if (opt.stop && opt.stop->load()) {
      out.interrupted = true;
      out.interrupted_cell = u->label;
      return out;
    }
    const std::string dir = out.out_dir + "/cells/" + u->id;
    fs::create_directories(dir, ec);
    run_io::write_file_atomic(dir + "/config.yaml", config::emit(u->cfg.to_yaml()) + "\n");
    const CellSpec* base = s.baseline_of(*u);
    json r;
    if (base && base->hash == u->hash && fs::exists(result_path(out.out_dir, *base))) {
      // The cell is plain decoding of the dense target: the baseline's measurements are its own.
      r = run_io::read_json(result_path(out.out_dir, *base));
      r["id"] = u->id;
      r["label"] = u->label;
      r["kind"] = "cell";
      r["baseline_id"] = base->id;
      prog.note(fmt::format("cell {}/{} {}: same configuration as the baseline, reusing its measurements", i,
                            out.cells_total, u->label));
    } else {
      Model& m = eng.model(*u);
      const auto& ps = eng.prompts(*u);
      prog.begin_cell(i, out.cells_total, u->label, static_cast<int64_t>(ps.size()));
      r = run_cell(m, *u, ps, !s.baselines.empty(), prog, opt.stop);
      if (r.is_null()) {
        out.interrupted = true;
        out.mid_cell = true;
        out.interrupted_cell = u->label;
        prog.note(fmt::format("interrupted in cell {}/{} {}: its partial results were dropped", i, out.cells_total, u->label));
        return out;
      }
    }
    run_io::write_file_atomic(result_path(out.out_dir, *u), cli::json_text(r, 1) + "\n");
    ++out.cells_run;
    prog.end_cell(fmt::format("cell {}/{} {}: {}", i, out.cells_total, u->label, cell_summary(r)));
  }

  json info;
  info["run"] = {{"name", s.cfg.name},
                 {"description", s.cfg.description},
                 {"config_file", s.config_file},
                 {"config_files", s.files},
                 {"sets", s.sets},
                 {"out_dir", out.out_dir},
                 {"command", opt.command_line},
                 {"started", started},
                 {"finished", run_io::now_iso()},
                 {"wall_s", now_s() - t0},
                 {"cells_run", out.cells_run},
                 {"cells_skipped", out.cells_skipped}};
  info["config"] = yaml_to_json(s.cfg.base.to_yaml());
  info["machine"] = run_io::machine_info();
  info["build"] = run_io::build_info();
  out.plots_status = write_run_outputs(s, out.out_dir, opt, info);
  out.summary_table = main_table_md(run_io::read_json(out.out_dir + "/metrics.json"));
  return out;
}

}  // namespace specula
