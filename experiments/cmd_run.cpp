// specula run: a study from a YAML file (experiments/config.h, grid.h), resumable, with a report.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <unistd.h>

#include <fmt/format.h>

#include "core/error.h"
#include "experiments/cli.h"
#include "experiments/grid.h"
#include "experiments/run_io.h"
#include "experiments/runner.h"

namespace specula::cli {

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_interrupt(int sig) {
  g_stop.store(true);
  static const char msg[] =
      "\n[run] interrupt: stopping at the next prompt boundary; the cell in progress is dropped (press Ctrl-C again to "
      "abort at once)\n";
  (void)!::write(2, msg, sizeof msg - 1);
  std::signal(sig, SIG_DFL);
}

struct RunArgs {
  std::string config;
  std::vector<std::string> sets;
  std::string out;
  bool dump = false, force = false, no_plots = false, dry_run = false;
};

std::string shell_quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,@+") ==
                        std::string::npos)
    return s;
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

std::string command_line(const RunArgs& a, const std::string& out) {
  std::string c = fmt::format("specula run {}", shell_quote(a.config));
  for (const auto& s : a.sets) c += fmt::format(" --set {}", shell_quote(s));
  c += fmt::format(" --out {}", shell_quote(out));
  return c;
}

int run_run(const RunArgs& a) {
  const config::Study s = config::load_study(a.config, a.sets);
  if (a.dump) {
    std::fputs(config::dump_study(s).c_str(), stdout);
    return 0;
  }
  const std::string out = resolve_out_dir(s, a.out);
  if (a.dry_run) {
    std::printf("run directory: %s\n", out.c_str());
    auto line = [&](const config::CellSpec& c) {
      const bool fin = std::filesystem::exists(out + "/cells/" + c.id + "/result.json");
      std::printf("  %-8s %-48s %s\n", fin ? "done" : "pending", c.id.c_str(), c.label.c_str());
    };
    for (const auto& b : s.baselines) line(b);
    for (const auto& c : s.cells) line(c);
    return 0;
  }
  RunOptions opt;
  opt.out_dir = out;
  opt.force = a.force;
  opt.plots = !a.no_plots;
  opt.tty = run_io::stderr_is_tty();
  opt.stop = &g_stop;
  opt.command_line = command_line(a, out);
  g_stop.store(false);
  // Installed unconditionally: a background job of a non-interactive shell starts with SIGINT ignored.
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  const RunOutcome r = run_study(s, opt);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  if (r.interrupted) {
    std::fflush(stdout);
    fmt::print(stderr,
               "error: interrupted {} cell '{}'{}; {} of {} cells are finished in {}. Resume with: {} (finished cells are "
               "skipped)\n",
               r.mid_cell ? "during" : "before", r.interrupted_cell, r.mid_cell ? " (its partial results were dropped)" : "",
               r.cells_run + r.cells_skipped, r.cells_total, r.out_dir, opt.command_line);
    return 130;
  }
  std::fputs(r.summary_table.c_str(), stdout);
  std::printf("\nreport: %s/report.md (metrics.json, samples.csv, plots/ in the same directory)\n", r.out_dir.c_str());
  if (r.plots_status != "ok" && r.plots_status != "disabled")
    fmt::print(stderr, "warning: no plots were made ({}); see {}/report.md. The metrics are complete.\n", r.plots_status,
               r.out_dir);
  return 0;
}

}  // namespace

Command add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  auto* sub = app.add_subcommand(
      "run",
      "Run a study from a YAML file: every cell of its grid (resumable), a baseline measured in the same run, and a "
      "run directory with config.resolved.yaml, metrics.json, samples.csv, report.md and plots (see README, "
      "'Experiment files')");
  sub->add_option("config", a->config, "Study file, e.g. configs/quickstart.yaml")->required();
  sub->add_option("--set", a->sets,
                  "Override a field: --set draft.k=6, --set data.limit=5, --set 'grid.draft.k=[2,4]' (the value is YAML; "
                  "repeatable; applied after the file and its includes)")
      ->allow_extra_args(false);  // one value per --set: a following positional stays the config file
  sub->add_option("--out", a->out,
                  "Run directory (default: the file's `out`, else runs/<name>-<timestamp>); rerunning with the same "
                  "directory resumes: finished cells are skipped");
  sub->add_flag("--dump-config", a->dump,
                "Print the resolved configuration (defaults filled in, includes and --set applied, cells listed) and exit");
  sub->add_flag("--force", a->force, "Rerun cells that have already finished in the run directory");
  sub->add_flag("--no-plots", a->no_plots, "Do not run scripts/plot_run.py at the end");
  sub->add_flag("--dry-run", a->dry_run, "List the cells (id, label, done/pending) and exit");
  return {sub, [a] { return run_run(*a); }};
}

}  // namespace specula::cli
