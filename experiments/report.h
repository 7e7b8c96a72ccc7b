#pragma once
// Reports of runs: report.md of one run (from its metrics.json) and `specula report`, which merges runs
// into one comparison (cells matched by label; with two or more runs every figure gets its difference
// and ratio against the first run).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace specula {

// The main comparison table of a run (markdown): baselines and cells, one row each. Columns:
//   cell | decoding | k | output | tau | tok/s | speedup | speedup (pooled) | acceptance | c | V |
//   draft / verify s | lossless check
// tau and speedup as "mean [lo, hi]" (95% CI over prompts).
std::string main_table_md(const nlohmann::json& metrics);
// The whole report.md of a run.
std::string run_report_md(const nlohmann::json& metrics);

struct RunRef {
  std::string dir;
  nlohmann::json metrics;
};
enum class ReportFormat { Markdown, Csv, Json };
ReportFormat parse_report_format(const std::string& s);
// Loads RUN_DIR/metrics.json (Error naming the directory when it is missing, e.g. an unfinished run).
RunRef load_run(const std::string& dir);
// One run: its main table (md), or its figures (csv/json). Several: side by side with differences.
std::string compare_runs(const std::vector<RunRef>& runs, ReportFormat f);

}  // namespace specula
