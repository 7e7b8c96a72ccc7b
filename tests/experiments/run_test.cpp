// `specula run` end to end on the real SmolLM2-135M (2 prompts x 16 tokens): the run directory's files,
// report.md's table against metrics.json, losslessness, determinism, resume and interrupt.
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "experiments/grid.h"
#include "experiments/report.h"
#include "experiments/run_io.h"
#include "experiments/runner.h"
#include "tests/experiments/exp_test_util.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::string read_file(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The cells of a markdown table row, trimmed ("| a | b |" -> {a, b}).
std::vector<std::string> md_cells(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '|' && line[i - 1] != '\\') {
      const size_t b = cur.find_first_not_of(' '), e = cur.find_last_not_of(' ');
      out.push_back(b == std::string::npos ? "" : cur.substr(b, e - b + 1));
      cur.clear();
    } else {
      cur += line[i];
    }
  }
  return out;
}

// The main table of report.md: header cells and rows keyed by cell label.
struct Table {
  std::vector<std::string> header;
  std::map<std::string, std::vector<std::string>> rows;
  std::string at(const std::string& label, const std::string& col) const {
    const auto it = std::find(header.begin(), header.end(), col);
    EXPECT_NE(it, header.end()) << col;
    return rows.at(label).at(static_cast<size_t>(it - header.begin()));
  }
};
Table main_table(const std::string& md) {
  Table t;
  std::istringstream in(md);
  std::string line;
  bool in_table = false;
  while (std::getline(in, line)) {
    if (line.rfind("| cell | decoding |", 0) == 0) {
      t.header = md_cells(line);
      in_table = true;
      std::getline(in, line);  // separator
      continue;
    }
    if (in_table) {
      if (line.empty() || line[0] != '|') break;
      const auto c = md_cells(line);
      t.rows[c[0]] = c;
    }
  }
  return t;
}

// The first number in a table cell ("1.23x [1.01, 1.40]" -> 1.23).
double first_number(const std::string& s) { return std::stod(s.substr(s.find_first_of("0123456789-"))); }

class RunStudy : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::model_path(test::kSmolLM2);
    if (model_.empty()) GTEST_SKIP() << "SmolLM2-135M not installed";
    config_ = dir_.write("tiny.yaml",
                         "name: tiny\n"
                         "model: {path: " + model_ + ", threads: 2}\n"
                         "data: {limit: 2}\n"
                         "generation: {max_tokens: 16}\n"
                         "draft: {k: 3}\n"
                         "grid:\n"
                         "  draft.spec: [\"ngram:min=1,max=3\", \"layerskip:skip=10-17\"]\n");
  }
  RunOutcome run(const std::string& out, bool force = false, const std::atomic<bool>* stop = nullptr) {
    RunOptions o;
    o.out_dir = out;
    o.force = force;
    o.plots = false;
    o.stop = stop;
    o.log = log_ = std::tmpfile();
    return run_study(config::load_study(config_), o);
  }
  static json tokens_of(const std::string& run_dir) {
    json t = json::object();
    for (const auto& e : fs::directory_iterator(run_dir + "/cells"))
      if (fs::exists(e.path() / "result.json")) {
        json prompts = json::array();
        for (const auto& p : run_io::read_json((e.path() / "result.json").string()).at("prompts")) prompts.push_back(p.at("tokens"));
        t[e.path().filename().string()] = prompts;
      }
    return t;
  }
  test::ScratchDir dir_;
  std::string model_, config_;
  std::FILE* log_ = nullptr;
};

TEST_F(RunStudy, ReportTableMatchesMetricsJson) {
  const std::string out = dir_.path("run");
  const RunOutcome r = run(out);
  ASSERT_FALSE(r.interrupted);
  EXPECT_EQ(r.cells_total, 3);  // baseline + 2 cells
  EXPECT_EQ(r.cells_run, 3);
  for (const char* f : {"config.resolved.yaml", "metrics.json", "samples.csv", "report.md"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;

  const json m = run_io::read_json(out + "/metrics.json");
  EXPECT_EQ(m.at("format"), "specula-run/1");
  ASSERT_EQ(m.at("cells").size(), 2u);
  ASSERT_EQ(m.at("baselines").size(), 1u);
  EXPECT_TRUE(m.at("machine").contains("cpu"));
  EXPECT_TRUE(m.at("build").contains("git_commit"));
  EXPECT_EQ(m.at("plots").at("status"), "disabled");

  const std::string md = read_file(out + "/report.md");
  const Table t = main_table(md);
  ASSERT_EQ(t.rows.size(), 3u) << md;
  for (const auto& c : m.at("cells")) {
    const std::string label = c.at("label");
    ASSERT_TRUE(t.rows.count(label)) << label << "\n" << md;
    // Greedy, exact verification, dense target: the tokens must be the baseline's.
    EXPECT_EQ(c.at("lossless_check"), "pass") << label;
    EXPECT_EQ(t.at(label, "lossless check"), "pass");
    EXPECT_EQ(t.at(label, "output"), "lossless");
    EXPECT_EQ(c.at("prompts"), 2);
    EXPECT_NEAR(first_number(t.at(label, "tau (mean [95% CI])")), c.at("tau").at("mean").get<double>(), 0.0051);
    EXPECT_NEAR(first_number(t.at(label, "tok/s (pooled)")), c.at("tokens_per_s").at("pooled").get<double>(), 0.051);
    EXPECT_NEAR(first_number(t.at(label, "speedup (mean [95% CI])")), c.at("speedup").at("mean").get<double>(), 0.0051);
    EXPECT_NEAR(first_number(t.at(label, "speedup (pooled)")), c.at("speedup").at("pooled").get<double>(), 0.0051);
    EXPECT_NEAR(first_number(t.at(label, "acceptance (pooled)")), c.at("acceptance_rate").at("pooled").get<double>(), 0.0051);
    EXPECT_NEAR(first_number(t.at(label, "c")), c.at("cost_model").at("c").get<double>(), 0.00051);
    EXPECT_NEAR(first_number(t.at(label, "V")), c.at("cost_model").at("V").get<double>(), 0.0051);
    // The CI brackets the mean, and the pooled speedup is the ratio of pooled rates.
    const auto ci = c.at("speedup").at("ci95");
    EXPECT_LE(ci[0].get<double>(), c.at("speedup").at("mean").get<double>());
    EXPECT_GE(ci[1].get<double>(), c.at("speedup").at("mean").get<double>());
    EXPECT_NEAR(c.at("speedup").at("pooled").get<double>(),
                c.at("tokens_per_s").at("pooled").get<double>() / c.at("baseline_tokens_per_s").get<double>(), 1e-9);
    EXPECT_GE(c.at("tau").at("mean").get<double>(), 1.0);
    EXPECT_FALSE(c.at("acceptance_by_position").empty());
  }
  const json& b = m.at("baselines")[0];
  EXPECT_EQ(t.at(b.at("label"), "lossless check"), "reference");
  EXPECT_NEAR(first_number(t.at(b.at("label"), "tau (mean [95% CI])")), 1.0, 1e-9);
  // The self-draft reports which layers its plan runs (per-layer figure).
  const json& ls = m.at("cells")[1];
  ASSERT_TRUE(ls.at("draft_layer_metrics").contains("layer_runs"));
  EXPECT_EQ(ls.at("draft_layer_metrics").at("layer_runs")[10], 0.0);
  EXPECT_EQ(ls.at("draft_layer_metrics").at("layer_runs")[9], 1.0);
  // samples.csv: a header and one row per prompt per cell and baseline.
  const std::string csv = read_file(out + "/samples.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n') >= 7, true);
  EXPECT_EQ(csv.rfind("cell_id,label,kind,prompt_index", 0), 0u);
  // `specula report` of one run is the same table.
  EXPECT_NE(compare_runs({load_run(out)}, ReportFormat::Markdown).find(main_table_md(m)), std::string::npos);
}

TEST_F(RunStudy, ResumeSkipsFinishedCellsAndForceReruns) {
  const std::string out = dir_.path("run");
  ASSERT_EQ(run(out).cells_run, 3);
  const std::string some = out + "/cells/" + config::load_study(config_).cells[0].id + "/result.json";
  const auto t0 = fs::last_write_time(some);
  const json tokens = tokens_of(out);
  const RunOutcome again = run(out);
  EXPECT_EQ(again.cells_run, 0);
  EXPECT_EQ(again.cells_skipped, 3);
  EXPECT_EQ(fs::last_write_time(some), t0);
  EXPECT_TRUE(fs::exists(out + "/report.md"));
  // A changed setting is a different cell: nothing is reused for it.
  const RunOutcome forced = run(out, /*force=*/true);
  EXPECT_EQ(forced.cells_run, 3);
  EXPECT_EQ(tokens_of(out), tokens);  // deterministic: same config and seed, same tokens
}

TEST_F(RunStudy, ReportComparesTwoRunDirectories) {
  const std::string a = dir_.path("a"), b = dir_.path("b");
  ASSERT_FALSE(run(a).interrupted);
  ASSERT_FALSE(run(b).interrupted);
  const std::string md = compare_runs({load_run(a), load_run(b)}, ReportFormat::Markdown);
  EXPECT_NE(md.find("**A**: `" + a + "`"), std::string::npos) << md;
  EXPECT_NE(md.find("**B**: `" + b + "`"), std::string::npos) << md;
  const json ma = run_io::read_json(a + "/metrics.json"), mb = run_io::read_json(b + "/metrics.json");
  for (size_t i = 0; i < ma.at("cells").size(); ++i) {
    const std::string label = ma.at("cells")[i].at("label");
    // Same config and seed: same tokens, so tau is identical and its difference is exactly zero.
    const double tau = ma.at("cells")[i].at("tau").at("mean").get<double>();
    ASSERT_EQ(tau, mb.at("cells")[i].at("tau").at("mean").get<double>());
    EXPECT_NE(md.find(fmt::format("| {} | {:.3f} | {:.3f} | +0.000 | 1.000 |", label, tau, tau)), std::string::npos) << md;
    // tok/s differs between the runs (timing); the row shows both and their difference.
    const double ta = ma.at("cells")[i].at("tokens_per_s").at("pooled").get<double>();
    const double tb = mb.at("cells")[i].at("tokens_per_s").at("pooled").get<double>();
    EXPECT_NE(md.find(fmt::format("| {} | {:.1f} | {:.1f} | {:+.1f} | {:.3f} |", label, ta, tb, tb - ta, tb / ta)),
              std::string::npos)
        << md;
    EXPECT_EQ(ma.at("cells")[i].at("lossless_check"), "pass");
  }
}

TEST_F(RunStudy, InterruptDropsTheCellAndResumeCompletes) {
  const std::string out = dir_.path("run");
  std::atomic<bool> stop{true};
  const RunOutcome r = run(out, false, &stop);
  EXPECT_TRUE(r.interrupted);
  EXPECT_EQ(r.cells_run, 0);
  EXPECT_FALSE(fs::exists(out + "/metrics.json"));
  EXPECT_TRUE(fs::exists(out + "/config.resolved.yaml"));
  EXPECT_THROW(load_run(out), Error);
  const RunOutcome resumed = run(out);
  EXPECT_FALSE(resumed.interrupted);
  EXPECT_EQ(resumed.cells_run, 3);
}

}  // namespace
}  // namespace specula
