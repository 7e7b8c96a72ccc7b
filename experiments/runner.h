#pragma once
// `specula run`: executes a study's cells (experiments/grid.h) and writes the run directory:
//
//   RUN_DIR/config.resolved.yaml     the configuration as resolved (defaults, includes, --set)
//   RUN_DIR/cells/<id>/config.yaml   one cell's full configuration
//   RUN_DIR/cells/<id>/result.json   its raw per-prompt measurements (tokens, counters, times); written
//                                    atomically when the cell has finished: its presence marks it done
//   RUN_DIR/metrics.json             per-cell and baseline metrics, machine, build (experiments/run_metrics.h)
//   RUN_DIR/samples.csv              one row per prompt per cell
//   RUN_DIR/report.md                comparison tables (experiments/report.h)
//   RUN_DIR/plots/*.png, *.svg       made by scripts/plot_run.py (matplotlib)
//
// Resume: a cell whose result.json exists is skipped unless `force`. Interrupt: `stop` is polled between
// prompts; the cell in progress is dropped (nothing of it is written) and run_study returns with
// `interrupted` set. Determinism: prompt i of every cell is decoded with an Rng seeded seed + i.
#include <atomic>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "experiments/grid.h"

namespace specula {

struct RunOptions {
  std::string out_dir;           // "" = the study's `out`, else runs/<name>-<timestamp>
  bool force = false;            // rerun finished cells
  bool plots = true;             // run scripts/plot_run.py at the end
  std::string plot_script;       // "" = $SPECULA_PLOT_SCRIPT or <source>/scripts/plot_run.py
  std::FILE* log = stderr;       // progress and notes
  bool tty = false;              // progress bar (else plain lines)
  const std::atomic<bool>* stop = nullptr;  // set by a SIGINT handler
  std::string command_line;      // recorded in metrics.json
};

struct RunOutcome {
  std::string out_dir;
  int64_t cells_total = 0, cells_run = 0, cells_skipped = 0;  // baselines included
  bool interrupted = false;
  std::string interrupted_cell;  // label of the cell that was dropped (mid_cell) or not started
  bool mid_cell = false;         // the interrupt came while the cell ran: its partial results were dropped
  std::string plots_status;      // "ok", "disabled", "matplotlib missing", "failed"
  std::string summary_table;     // the main markdown table (printed by the CLI)
};

// The run directory a study writes to with these options.
std::string resolve_out_dir(const config::Study& s, const std::string& out_option);

RunOutcome run_study(const config::Study& s, const RunOptions& opt);

// Rebuilds metrics.json, samples.csv, report.md and the plots from the result files of a run directory
// whose cells have all finished (used at the end of run_study). Returns the plots status.
std::string write_run_outputs(const config::Study& s, const std::string& out_dir, const RunOptions& opt,
                              const nlohmann::json& run_info);

}  // namespace specula
