#include "experiments/json_out.h"
#include "experiments/report.h"

#include <cmath>
#include <filesystem>
#include <functional>

#include <fmt/format.h>

#include "core/error.h"
#include "core/spec_string.h"
#include "experiments/run_io.h"
#include "experiments/run_metrics.h"

namespace specula {

using nlohmann::json;

namespace {

bool is_num(const json& v) { return v.is_number(); }

std::string fnum(const json& v, int prec, const std::string& suffix = "") {
  return is_num(v) ? fmt::format("{:.{}f}{}", v.get<double>(), prec, suffix) : std::string("–");
}

// "2.45 [2.31, 2.59]" from a summary {mean, ci95}; just the mean when the interval is degenerate.
std::string ci_text(const json& s, int prec, const std::string& suffix = "") {
  if (!s.is_object() || !is_num(s.value("mean", json()))) return "–";
  const json& ci = s.at("ci95");
  std::string t = fnum(s.at("mean"), prec, suffix);
  if (s.value("n", 0) >= 2 && is_num(ci[0]) && is_num(ci[1]))
    t += fmt::format(" [{:.{}f}, {:.{}f}]", ci[0].get<double>(), prec, ci[1].get<double>(), prec);
  return t;
}

json get_path(const json& j, std::initializer_list<const char*> keys) {
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object() || !p->contains(k)) return nullptr;
    p = &(*p)[k];
  }
  return *p;
}

std::vector<const json*> rows_of(const json& m) {
  std::vector<const json*> r;
  for (const char* k : {"baselines", "cells"})
    if (m.contains(k))
      for (const auto& c : m.at(k)) r.push_back(&c);
  return r;
}

std::string decoding_text(const json& c) {
  const json& d = c.at("decoding");
  std::string t = d.at("drafter").is_null() ? "autoregressive" : d.at("drafter").get<std::string>();
  if (!d.at("verifier").is_null() && d.at("verifier") != "greedy")
    t += fmt::format(" / {}", d.at("verifier").get<std::string>());
  if (!d.at("strategy").is_null()) t += fmt::format(" + target strategy {}", d.at("strategy").get<std::string>());
  return t;
}

std::string k_text(const json& c) {
  if (c.at("k").is_null()) return "–";
  if (c.value("draft_length", json()) == "adaptive") return fmt::format("adaptive (start {})", c.at("k").get<int64_t>());
  return std::to_string(c.at("k").get<int64_t>());
}

std::string output_text(const json& c) {
  if (!c.at("lossy").get<bool>()) return "lossless";
  std::vector<std::string> why;
  for (const auto& r : c.at("lossy_reasons")) why.push_back(r.get<std::string>());
  return fmt::format("**LOSSY** ({})", join(why, "; "));
}

std::string md_escape(std::string s) {
  for (size_t i = 0; (i = s.find('|', i)) != std::string::npos; i += 2) s.replace(i, 1, "\\|");
  return s;
}

std::string row(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const auto& c : cells) s += " " + c + " |";
  return s + "\n";
}

std::string header(const std::vector<std::string>& cols) {
  std::string sep = "|";
  for (size_t i = 0; i < cols.size(); ++i) sep += "---|";
  return row(cols) + sep + "\n";
}

// Figures compared across runs.
struct Figure {
  std::string key, title;
  std::function<json(const json&)> get;
  int prec;
};
const std::vector<Figure>& figures() {
  static const std::vector<Figure> f = {
      {"tau", "tau (mean over prompts)", [](const json& c) { return get_path(c, {"tau", "mean"}); }, 3},
      {"tokens_per_s", "tokens/s (pooled)", [](const json& c) { return get_path(c, {"tokens_per_s", "pooled"}); }, 1},
      {"speedup", "speedup vs baseline (mean over prompts)", [](const json& c) { return get_path(c, {"speedup", "mean"}); }, 3},
      {"acceptance_rate", "acceptance rate (pooled)", [](const json& c) { return get_path(c, {"acceptance_rate", "pooled"}); }, 3},
  };
  return f;
}

}  // namespace

std::string main_table_md(const json& m) {
  std::string s = header({"cell", "decoding", "k", "output", "tau (mean [95% CI])", "tok/s (pooled)",
                          "speedup (mean [95% CI])", "speedup (pooled)", "acceptance (pooled)", "c", "V",
                          "draft / verify s", "lossless check"});
  for (const json* cp : rows_of(m)) {
    const json& c = *cp;
    s += row({md_escape(c.at("label").get<std::string>()), md_escape(decoding_text(c)), k_text(c), output_text(c),
              ci_text(c.at("tau"), 2), fnum(get_path(c, {"tokens_per_s", "pooled"}), 1), ci_text(c.at("speedup"), 2, "x"),
              fnum(get_path(c, {"speedup", "pooled"}), 2, "x"), fnum(get_path(c, {"acceptance_rate", "pooled"}), 2),
              fnum(get_path(c, {"cost_model", "c"}), 3), fnum(get_path(c, {"cost_model", "V"}), 2),
              fnum(get_path(c, {"time", "draft_s"}), 2) + " / " + fnum(get_path(c, {"time", "verify_s"}), 2),
              c.at("lossless_check").get<std::string>()});
  }
  return s;
}

std::string run_report_md(const json& m) {
  const json& run = m.at("run");
  std::string s = fmt::format("# {}\n\n", run.at("name").get<std::string>());
  if (!run.value("description", std::string()).empty()) s += run.at("description").get<std::string>() + "\n\n";
  const json& cfg = m.at("config");
  const json& data = cfg.at("data");
  const json& smp = cfg.at("sampling");
  const double temperature = smp.at("temperature").get<double>();
  double cell_s = 0;
  for (const json* c : rows_of(m)) cell_s += c->at("wall_s").get<double>();
  s += fmt::format("- config: `{}` (resolved: `config.resolved.yaml`); measured cells took {:.0f} s in all, the last "
                   "invocation started {} and took {:.0f} s\n",
                   run.at("config_file").get<std::string>(), cell_s, run.at("started").get<std::string>(),
                   run.at("wall_s").get<double>());
  const bool model_varies = std::any_of(m.at("axes").begin(), m.at("axes").end(),
                                        [](const json& a) { return a.get<std::string>().rfind("model", 0) == 0; });
  s += fmt::format("- model: `{}` ({} weights){}, {} threads\n", cfg.at("model").at("path").get<std::string>(),
                   cfg.at("model").at("weights_dtype").get<std::string>(), model_varies ? ", varied by the grid" : "",
                   m.at("baselines").empty() ? (m.at("cells").empty() ? json(0) : m.at("cells")[0].at("threads")).dump()
                                             : m.at("baselines")[0].at("threads").dump());
  std::vector<std::string> counts;
  int64_t n_prompts = 0;
  if (!rows_of(m).empty())
    for (const auto& e : rows_of(m)[0]->at("by_category")) {
      counts.push_back(fmt::format("{} {}", e.at("category").get<std::string>(), e.at("prompts").get<int64_t>()));
      n_prompts += e.at("prompts").get<int64_t>();
    }
  const std::string kind = data.at("kind").get<std::string>();
  const std::string path = data.at("path").get<std::string>();
  s += fmt::format("- data: {} prompts from {}{} ({}){}, up to {} new tokens per prompt, {}\n", n_prompts,
                   kind == "spec_bench" ? "the Spec-Bench questions" : kind == "text" ? "the text file" : "the JSONL file",
                   path.empty() ? "" : " `" + path + "`", join(counts, ", "),
                   data.at("chat").get<bool>() ? ", chat template" : "", cfg.at("generation").at("max_tokens").dump(),
                   temperature <= 0 ? std::string("greedy decoding") : fmt::format("sampling at temperature {}", temperature));
  s += fmt::format("- baseline: {}\n", m.at("baseline").get<std::string>());
  if (!m.at("axes").empty()) {
    std::vector<std::string> ax;
    for (const auto& a : m.at("axes")) ax.push_back(fmt::format("`{}`", a.get<std::string>()));
    s += fmt::format("- grid axes: {}\n", join(ax, ", "));
  }
  const json& mach = m.at("machine");
  const json& build = m.at("build");
  s += fmt::format("- machine: {}, {} hardware threads; build: {}, {}, commit {}{}\n", mach.value("cpu", std::string("?")),
                   mach.value("cores", 0), build.value("compiler", std::string("?")), build.value("build_type", std::string("?")),
                   build.at("git_commit").is_null() ? std::string("unknown") : build.at("git_commit").get<std::string>().substr(0, 12),
                   build.value("git_dirty", json(false)) == json(true) ? " (uncommitted changes)" : "");
  s += fmt::format("- confidence intervals: 95%, {}; acceptance by position: {}\n\n", m.at("ci").at("method").get<std::string>(),
                   m.at("ci").at("acceptance_by_position").get<std::string>());

  s += fmt::format("## Results\n\n{}\n", main_table_md(m));
  s += "tau = tokens per target verification pass; tok/s = generated tokens / decode seconds (after the prefill, "
       "drafting included); speedup = tok/s / the baseline's tok/s on the same prompt (mean over prompts) or over all "
       "prompts together (pooled); c = draft seconds per drafted token and V = seconds per verification pass, both in "
       "baseline decode steps; draft / verify s = total seconds over all prompts. Rows marked **LOSSY** produce output "
       "that differs from the target model's by design; their lossless check is n/a.\n\n";

  // Acceptance by position.
  size_t kmax = 0;
  for (const json* c : rows_of(m)) kmax = std::max(kmax, c->at("acceptance_by_position").size());
  if (kmax > 0) {
    s += "## Acceptance rate by draft position\n\n";
    std::vector<std::string> cols = {"cell"};
    for (size_t i = 1; i <= kmax; ++i) cols.push_back(std::to_string(i));
    s += header(cols);
    for (const json* c : rows_of(m)) {
      if (c->at("acceptance_by_position").empty()) continue;
      std::vector<std::string> r = {md_escape(c->at("label").get<std::string>())};
      for (size_t i = 0; i < kmax; ++i) {
        const json& a = c->at("acceptance_by_position");
        r.push_back(i < a.size() ? fmt::format("{:.2f}", a[i].at("rate").get<double>()) : "–");
      }
      s += row(r);
    }
    s += "\nPosition i: among steps whose accepted path reached depth i-1 and had a draft token at depth i, the "
         "fraction that accepted it (pooled over prompts).\n\n";
  }

  // By category.
  std::vector<std::string> cat_order;
  for (const json* c : rows_of(m))
    for (const auto& e : c->at("by_category"))
      if (std::find(cat_order.begin(), cat_order.end(), e.at("category")) == cat_order.end()) cat_order.push_back(e.at("category"));
  if (cat_order.size() > 1 && !m.at("cells").empty() && !m.at("baselines").empty()) {
    s += "## Speedup and tau by category (pooled over the category's prompts)\n\n";
    std::vector<std::string> cols = {"cell"};
    for (const auto& k : cat_order) cols.push_back(k);
    s += header(cols);
    for (const auto& c : m.at("cells")) {
      std::vector<std::string> r = {md_escape(c.at("label").get<std::string>())};
      for (const auto& k : cat_order) {
        std::string text = "–";
        for (const auto& e : c.at("by_category"))
          if (e.at("category") == k && is_num(e.at("speedup")))
            text = fmt::format("{:.2f}x (tau {})", e.at("speedup").get<double>(), fnum(e.at("tau"), 2));
        r.push_back(text);
      }
      s += row(r);
    }
    s += "\n";
  }

  // Perplexity and strategy figures.
  bool any_ppl = false, any_strategy = false;
  for (const json* c : rows_of(m)) {
    any_ppl |= !c->at("perplexity").is_null() || !c->at("draft_perplexity").is_null();
    any_strategy |= !c->at("strategy_metrics").empty() || !c->at("draft_strategy_metrics").empty();
  }
  if (any_ppl) {
    s += fmt::format("## Perplexity\n\n{}", header({"cell", "target perplexity", "self-draft perplexity", "tokens scored", "data"}));
    for (const json* c : rows_of(m)) {
      const json& p = c->at("perplexity");
      const json& d = c->at("draft_perplexity");
      const json& any = p.is_null() ? d : p;
      if (any.is_null()) continue;
      s += row({md_escape(c->at("label").get<std::string>()), fnum(get_path(p, {"ppl"}), 3), fnum(get_path(d, {"ppl"}), 3),
                any.at("tokens").dump(), fmt::format("`{}`", any.at("data").get<std::string>())});
    }
    s += "\nTarget perplexity is that of the model as the cell runs it (a target strategy included); a self-draft's is "
         "that of its strategy's forward pass (how faithful the draft is).\n\n";
  }
  if (any_strategy) {
    s += fmt::format("## Strategy figures\n\n{}", header({"cell", "where", "metric", "value"}));
    for (const json* c : rows_of(m)) {
      for (const auto& [k, v] : c->at("strategy_metrics").items())
        s += row({md_escape(c->at("label").get<std::string>()), "target", k, fnum(v, 4)});
      for (const auto& [k, v] : c->at("draft_strategy_metrics").items())
        s += row({md_escape(c->at("label").get<std::string>()), "self-draft", k, fnum(v, 4)});
    }
    s += "\n";
  }

  // Sanity: on the dense target a verification pass over k+1 positions cannot be cheaper than one plain decode
  // step, so V < 1 means the baseline and the cell were timed under different machine load (cells run one after
  // the other).
  std::vector<std::string> odd;
  for (const auto& c : m.at("cells")) {
    const json v = get_path(c, {"cost_model", "V"});
    const bool dense_target = get_path(c, {"decoding", "strategy"}).is_null();  // a target strategy may verify cheaper
    if (dense_target && is_num(v) && v.get<double>() < 0.95) odd.push_back(fmt::format("`{}` (V = {:.2f})", c.at("label").get<std::string>(), v.get<double>()));
  }
  if (!odd.empty())
    s += fmt::format("**Timing warning:** {} measured a verification pass as cheaper than one baseline decode step, which "
                     "cannot be: the machine's load changed between the baseline and these cells, so their speedups are "
                     "not reliable. Rerun on a quiet machine (`--force`).\n\n",
                     join(odd, ", "));

  // Mismatches.
  for (const auto& c : m.at("cells"))
    if (c.at("lossless_check") == "fail") {
      const json& f = c.at("first_mismatch");
      s += fmt::format("**Lossless check failed** for `{}`: {} of {} prompts identical; first difference at prompt {} "
                       "(id {}), generated token {}: baseline {}, cell {}.\n\n",
                       c.at("label").get<std::string>(), c.at("output_agreement").at("identical_prompts").dump(),
                       c.at("output_agreement").at("prompts").dump(), f.at("prompt_index").dump(), f.at("prompt_id").dump(),
                       f.at("position").dump(), f.at("baseline_token").dump(), f.at("cell_token").dump());
    }

  // Plots.
  s += "## Plots\n\n";
  const json& pl = m.value("plots", json::object());
  const std::string status = pl.value("status", std::string("not made"));
  if (status == "ok") {
    for (const auto& f : pl.value("files", json::array())) {
      const std::string file = f.get<std::string>();
      if (file.size() > 4 && file.substr(file.size() - 4) == ".png")
        s += fmt::format("![{}]({})\n\n", std::filesystem::path(file).stem().string(), file);
    }
    s += "Every plot is also saved as SVG next to the PNG.\n";
  } else {
    s += fmt::format("**No plots: {}.** {}\n", status, pl.value("message", std::string()));
  }
  s += "\nPer-prompt figures: `samples.csv`; every figure above and more: `metrics.json`.\n";
  return s;
}

ReportFormat parse_report_format(const std::string& s) {
  if (s == "md" || s == "markdown") return ReportFormat::Markdown;
  if (s == "csv") return ReportFormat::Csv;
  if (s == "json") return ReportFormat::Json;
  fail("invalid --format '{}': expected md, csv or json", s);
}

RunRef load_run(const std::string& dir) {
  const std::string p = dir + "/metrics.json";
  if (!std::filesystem::exists(p)) {
    if (std::filesystem::exists(dir + "/config.resolved.yaml"))
      fail("'{}' has no metrics.json: the run has not finished (rerun `specula run` with --out {} to complete it)", dir, dir);
    fail("'{}' is not a run directory (no metrics.json)", dir);
  }
  RunRef r{dir, run_io::read_json(p)};
  if (r.metrics.value("format", std::string()) != "specula-run/1")
    fail("'{}': unknown metrics format '{}' (expected specula-run/1)", p, r.metrics.value("format", std::string()));
  return r;
}

std::string compare_runs(const std::vector<RunRef>& runs, ReportFormat f) {
  if (runs.empty()) fail("specula report needs at least one run directory");
  // Rows: cell labels in order of first appearance.
  std::vector<std::string> labels;
  for (const auto& r : runs)
    for (const json* c : rows_of(r.metrics)) {
      const std::string l = c->at("label").get<std::string>();
      if (std::find(labels.begin(), labels.end(), l) == labels.end()) labels.push_back(l);
    }
  auto find = [](const RunRef& r, const std::string& label) -> const json* {
    for (const json* c : rows_of(r.metrics))
      if (c->at("label") == label) return c;
    return nullptr;
  };
  auto run_name = [&](size_t i) { return std::string(1, static_cast<char>('A' + std::min<size_t>(i, 25))); };

  if (f == ReportFormat::Markdown && runs.size() == 1) {
    const json& run = runs[0].metrics.at("run");
    return fmt::format("# {} ({})\n\n", run.at("name").get<std::string>(), runs[0].dir) + main_table_md(runs[0].metrics);
  }
  if (f == ReportFormat::Json) {
    json out;
    for (size_t i = 0; i < runs.size(); ++i) {
      const json& m = runs[i].metrics;
      out["runs"].push_back({{"name", run_name(i)}, {"dir", runs[i].dir}, {"study", m.at("run").at("name")},
                             {"started", m.at("run").at("started")}, {"git_commit", get_path(m, {"build", "git_commit"})}});
    }
    for (const auto& l : labels) {
      json cj = {{"label", l}};
      for (const auto& fig : figures()) {
        json vals = json::array(), delta = json::array(), ratio = json::array();
        json first;
        for (size_t i = 0; i < runs.size(); ++i) {
          const json* c = find(runs[i], l);
          const json v = c ? fig.get(*c) : json(nullptr);
          vals.push_back(v);
          if (i == 0) {
            first = v;
            continue;
          }
          const bool ok = is_num(v) && is_num(first);
          delta.push_back(ok ? json(v.get<double>() - first.get<double>()) : json(nullptr));
          ratio.push_back(ok && first.get<double>() != 0 ? json(v.get<double>() / first.get<double>()) : json(nullptr));
        }
        cj["figures"][fig.key] = {{"values", vals}, {"delta_vs_A", delta}, {"ratio_vs_A", ratio}};
      }
      json checks = json::array();
      for (const auto& r : runs) {
        const json* c = find(r, l);
        checks.push_back(c ? c->at("lossless_check") : json(nullptr));
      }
      cj["lossless_check"] = checks;
      out["cells"].push_back(cj);
    }
    return cli::json_text(out, 2) + "\n";
  }
  if (f == ReportFormat::Csv) {
    std::string s = "label,figure,run,dir,value,delta_vs_A,ratio_vs_A\n";
    for (const auto& l : labels)
      for (const auto& fig : figures()) {
        json first;
        for (size_t i = 0; i < runs.size(); ++i) {
          const json* c = find(runs[i], l);
          const json v = c ? fig.get(*c) : json(nullptr);
          if (i == 0) first = v;
          const bool ok = i > 0 && is_num(v) && is_num(first);
          s += fmt::format("{},{},{},{},{},{},{}\n", csv_field(l), fig.key, run_name(i), csv_field(runs[i].dir),
                           is_num(v) ? fmt::format("{:.6g}", v.get<double>()) : "",
                           ok ? fmt::format("{:.6g}", v.get<double>() - first.get<double>()) : "",
                           ok && first.get<double>() != 0 ? fmt::format("{:.6g}", v.get<double>() / first.get<double>()) : "");
        }
      }
    return s;
  }
  // Markdown, several runs: one table per figure, runs side by side, then differences against A.
  std::string s = "# Comparison of runs\n\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const json& m = runs[i].metrics;
    const json commit = get_path(m, {"build", "git_commit"});
    s += fmt::format("- **{}**: `{}` (study {}, started {}, commit {}, {})\n", run_name(i), runs[i].dir,
                     m.at("run").at("name").get<std::string>(), m.at("run").at("started").get<std::string>(),
                     commit.is_string() ? commit.get<std::string>().substr(0, 12) : "unknown",
                     get_path(m, {"machine", "cpu"}).is_string() ? get_path(m, {"machine", "cpu"}).get<std::string>() : "?");
  }
  s += "\nCells are matched by label; Δ = run − A, ratio = run / A; – = not in that run.\n\n";
  for (const auto& fig : figures()) {
    s += "## " + fig.title + "\n\n";
    std::vector<std::string> cols = {"cell"};
    for (size_t i = 0; i < runs.size(); ++i) cols.push_back(run_name(i));
    for (size_t i = 1; i < runs.size(); ++i) {
      cols.push_back(fmt::format("Δ {}−A", run_name(i)));
      cols.push_back(fmt::format("{}/A", run_name(i)));
    }
    std::string body;
    for (const auto& l : labels) {
      std::vector<json> v;
      for (const auto& r : runs) {
        const json* c = find(r, l);
        v.push_back(c ? fig.get(*c) : json(nullptr));
      }
      if (std::none_of(v.begin(), v.end(), [](const json& x) { return x.is_number(); })) continue;
      std::vector<std::string> cells = {md_escape(l)};
      for (const auto& x : v) cells.push_back(fnum(x, fig.prec));
      for (size_t i = 1; i < v.size(); ++i) {
        const bool ok = is_num(v[i]) && is_num(v[0]);
        cells.push_back(ok ? fmt::format("{:+.{}f}", v[i].get<double>() - v[0].get<double>(), fig.prec) : "–");
        cells.push_back(ok && v[0].get<double>() != 0 ? fmt::format("{:.3f}", v[i].get<double>() / v[0].get<double>()) : "–");
      }
      body += row(cells);
    }
    s += (body.empty() ? "(no values)\n" : header(cols) + body) + "\n";
  }
  s += "## Lossless check\n\n";
  std::vector<std::string> cols = {"cell"};
  for (size_t i = 0; i < runs.size(); ++i) cols.push_back(run_name(i));
  s += header(cols);
  for (const auto& l : labels) {
    std::vector<std::string> cells = {md_escape(l)};
    for (const auto& r : runs) {
      const json* c = find(r, l);
      cells.push_back(c ? c->at("lossless_check").get<std::string>() : "–");
    }
    s += row(cells);
  }
  return s;
}

}  // namespace specula
