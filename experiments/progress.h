#pragma once
// Progress of `specula run`: on a terminal one status line redrawn in place
//   [####......] cell 2/5 ngram, k=4 | prompt 7/20 | 182.3 tok/s | ETA 1m12s
// otherwise (logs, CI) one plain line per finished prompt and per cell.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace specula {

class Progress {
 public:
  // total_prompts: prompts of every cell that will run (for the ETA).
  Progress(std::FILE* out, bool tty, int64_t total_prompts);
  void begin_cell(int64_t i, int64_t n, const std::string& label, int64_t prompts);
  void prompt_done(int64_t j, int64_t tokens, double decode_s);
  void end_cell(const std::string& summary);
  // A message on its own line (clears the status line first).
  void note(const std::string& msg);

 private:
  void draw();
  std::string eta() const;
  std::FILE* out_;
  bool tty_;
  int64_t total_ = 0, done_ = 0;
  int64_t cell_ = 0, cells_ = 0, prompt_ = 0, prompts_ = 0;
  int64_t cell_tokens_ = 0;
  double cell_decode_s_ = 0;
  std::string label_;
  std::chrono::steady_clock::time_point t0_;
  bool line_open_ = false;
};

// "1h02m", "3m05s", "12s".
std::string format_duration(double seconds);

}  // namespace specula
