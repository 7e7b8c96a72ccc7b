// specula report: one run's table, or several runs side by side with differences.
#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "experiments/cli.h"
#include "experiments/report.h"

namespace specula::cli {

namespace {
struct ReportArgs {
  std::vector<std::string> dirs;
  std::string format = "md";
  std::string out;
};

int run_report(const ReportArgs& a) {
  std::vector<RunRef> runs;
  for (const auto& d : a.dirs) runs.push_back(load_run(d));
  const std::string text = compare_runs(runs, parse_report_format(a.format));
  if (a.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream f(a.out);
    if (!f || !(f << text)) fail("cannot write '{}'", a.out);
  }
  return 0;
}
}  // namespace

Command add_report(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  auto* sub = app.add_subcommand("report",
                                 "Tables of finished runs: one run's comparison table, or several runs side by side "
                                 "(cells matched by label) with differences and ratios against the first");
  sub->add_option("runs", a->dirs, "Run directories (made by `specula run`); the first is the reference A")->required();
  sub->add_option("--format", a->format, "md (tables), csv (label,figure,run,value,delta,ratio rows) or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"md", "csv", "json"}));
  sub->add_option("-o,--output", a->out, "Write to this file instead of stdout");
  return {sub, [a] { return run_report(*a); }};
}

}  // namespace specula::cli
