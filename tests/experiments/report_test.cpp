// Statistics of reports (t and bootstrap intervals, Wilson) and `specula report` across runs.
#include <cmath>
#include <filesystem>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "experiments/json_out.h"
#include "experiments/report.h"
#include "experiments/run_io.h"
#include "experiments/stats.h"
#include "tests/experiments/exp_test_util.h"
#include "tests/test_util.h"

namespace specula {
namespace {

using nlohmann::json;

TEST(ReportStats, StudentTQuantiles) {
  EXPECT_NEAR(t_quantile_975(1), 12.706, 1e-3);
  EXPECT_NEAR(t_quantile_975(10), 2.228, 1e-3);
  EXPECT_NEAR(t_quantile_975(30), 2.042, 1e-3);
  EXPECT_NEAR(t_quantile_975(31), 2.040, 1e-3);
  EXPECT_NEAR(t_quantile_975(60), 2.000, 1e-3);
  EXPECT_NEAR(t_quantile_975(120), 1.980, 1e-3);
  EXPECT_NEAR(t_quantile_975(100000), 1.960, 1e-3);
}

TEST(ReportStats, MeanAndIntervals) {
  const std::vector<double> xs = {1, 2, 3, 4, 5, NAN};
  const Summary t = summarize(xs);
  EXPECT_EQ(t.n, 5);  // NaN left out
  EXPECT_DOUBLE_EQ(t.mean, 3);
  EXPECT_NEAR(t.sd, std::sqrt(2.5), 1e-12);
  EXPECT_NEAR(t.hi - t.mean, 2.7764 * std::sqrt(2.5) / std::sqrt(5.0), 1e-3);
  EXPECT_NEAR(t.mean - t.lo, t.hi - t.mean, 1e-12);
  const Summary b = summarize(xs, CiMethod::Bootstrap, 4000, 7);
  EXPECT_LT(b.lo, 3);
  EXPECT_GT(b.hi, 3);
  EXPECT_GT(b.lo, 1.5);  // a bootstrap interval of the mean is narrower than the data range
  EXPECT_LT(b.hi, 4.5);
  const Summary b2 = summarize(xs, CiMethod::Bootstrap, 4000, 7);
  EXPECT_EQ(b.lo, b2.lo);  // seeded: deterministic
  const Summary one = summarize({4.0});
  EXPECT_EQ(one.lo, 4.0);
  EXPECT_EQ(one.hi, 4.0);
  EXPECT_TRUE(std::isnan(summarize({}).mean));
}

TEST(ReportStats, WilsonInterval) {
  const auto [lo, hi] = wilson95(8, 10);
  EXPECT_NEAR(lo, 0.4902, 1e-3);
  EXPECT_NEAR(hi, 0.9433, 1e-3);
  const auto [l0, h0] = wilson95(0, 20);
  EXPECT_EQ(l0, 0);
  EXPECT_NEAR(h0, 0.1611, 1e-3);
}

// A minimal metrics.json with the fields `specula report` reads.
json cell(const std::string& label, double tau, double tps, double speedup, double acc, const std::string& check) {
  return {{"label", label},
          {"tau", {{"mean", tau}, {"ci95", {tau, tau}}, {"n", 1}}},
          {"tokens_per_s", {{"pooled", tps}}},
          {"speedup", {{"mean", speedup}, {"ci95", {speedup, speedup}}, {"n", 1}}},
          {"acceptance_rate", {{"pooled", acc}}},
          {"lossless_check", check}};
}
json run_metrics_stub(const std::string& name, std::vector<json> cells) {
  return {{"format", "specula-run/1"},
          {"run", {{"name", name}, {"started", "2025-01-01T00:00:00"}}},
          {"build", {{"git_commit", "0123456789abcdef0123456789abcdef01234567"}}},
          {"machine", {{"cpu", "test cpu"}}},
          {"baselines", json::array()},
          {"cells", cells}};
}

TEST(ReportCompare, TwoRunsSideBySideWithDeltas) {
  const RunRef a{"runs/before", run_metrics_stub("s", {cell("ngram, k=4", 2.0, 200.0, 1.10, 0.5, "pass"),
                                                      cell("only-in-a", 1.5, 100.0, 0.9, 0.4, "pass")})};
  const RunRef b{"runs/after", run_metrics_stub("s", {cell("ngram, k=4", 2.5, 250.0, 1.32, 0.6, "pass"),
                                                     cell("only-in-b", 3.0, 90.0, 0.8, 0.7, "fail")})};
  const std::string md = compare_runs({a, b}, ReportFormat::Markdown);
  EXPECT_NE(md.find("**A**: `runs/before`"), std::string::npos) << md;
  EXPECT_NE(md.find("| cell | A | B | Δ B−A | B/A |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ngram, k=4 | 2.000 | 2.500 | +0.500 | 1.250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ngram, k=4 | 200.0 | 250.0 | +50.0 | 1.250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| ngram, k=4 | 1.100 | 1.320 | +0.220 | 1.200 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| only-in-a | 1.500 | – | – | – |"), std::string::npos) << md;
  EXPECT_NE(md.find("| only-in-b | – | fail |"), std::string::npos) << md;  // lossless check per run

  const json j = json::parse(compare_runs({a, b}, ReportFormat::Json));
  ASSERT_EQ(j.at("cells").size(), 3u);
  EXPECT_EQ(j.at("cells")[0].at("label"), "ngram, k=4");
  EXPECT_NEAR(j.at("cells")[0].at("figures").at("speedup").at("delta_vs_A")[0].get<double>(), 0.22, 1e-12);
  EXPECT_NEAR(j.at("cells")[0].at("figures").at("tau").at("ratio_vs_A")[0].get<double>(), 1.25, 1e-12);
  EXPECT_TRUE(j.at("cells")[1].at("figures").at("tau").at("delta_vs_A")[0].is_null());

  const std::string csv = compare_runs({a, b}, ReportFormat::Csv);
  EXPECT_EQ(csv.rfind("label,figure,run,dir,value,delta_vs_A,ratio_vs_A\n", 0), 0u);
  EXPECT_NE(csv.find("\"ngram, k=4\",tau,B,runs/after,2.5,0.5,1.25\n"), std::string::npos) << csv;
}

TEST(ReportCompare, RunDirectoryErrors) {
  test::ScratchDir d;
  test::expect_error([&] { load_run(d.dir()); }, {"is not a run directory (no metrics.json)"});
  d.write("config.resolved.yaml", "name: x\n");
  test::expect_error([&] { load_run(d.dir()); }, {"has no metrics.json: the run has not finished", "--out"});
  d.write("metrics.json", "{\"format\": \"other\"}");
  test::expect_error([&] { load_run(d.dir()); }, {"unknown metrics format 'other'"});
  test::expect_error([&] { parse_report_format("html"); }, {"invalid --format 'html'"});
}

}  // namespace
}  // namespace specula

// Generated text can hold invalid UTF-8 (a byte token cut inside a character, a degraded sparse model
// emitting stray bytes): JSON output replaces those bytes instead of throwing (which aborted
// `specula run` in the middle of a study).
TEST(JsonOut, InvalidUtf8IsReplacedNotThrown) {
  nlohmann::json j;
  j["text"] = std::string("ok \xD7 end");
  std::string s;
  EXPECT_NO_THROW(s = specula::cli::json_text(j, 2));
  EXPECT_NE(s.find("ok \xEF\xBF\xBD end"), std::string::npos) << s;  // U+FFFD
  EXPECT_THROW((void)j.dump(2), nlohmann::json::type_error);  // what the plain dump does
}
