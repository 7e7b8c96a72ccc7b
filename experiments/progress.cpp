#include "experiments/progress.h"

#include <fmt/format.h>

namespace specula {

std::string format_duration(double s) {
  if (!(s >= 0)) return "?";
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

Progress::Progress(std::FILE* out, bool tty, int64_t total_prompts)
    : out_(out), tty_(tty), total_(total_prompts), t0_(std::chrono::steady_clock::now()) {}

std::string Progress::eta() const {
  if (done_ == 0) return "?";
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  return format_duration(el / static_cast<double>(done_) * static_cast<double>(total_ - done_));
}

void Progress::begin_cell(int64_t i, int64_t n, const std::string& label, int64_t prompts) {
  cell_ = i;
  cells_ = n;
  label_ = label;
  prompt_ = 0;
  prompts_ = prompts;
  cell_tokens_ = 0;
  cell_decode_s_ = 0;
  if (tty_) draw();
  else std::fprintf(out_, "[run] cell %lld/%lld %s: %lld prompts\n", static_cast<long long>(i), static_cast<long long>(n),
                    label.c_str(), static_cast<long long>(prompts));
  std::fflush(out_);
}

void Progress::prompt_done(int64_t j, int64_t tokens, double decode_s) {
  prompt_ = j;
  ++done_;
  cell_tokens_ += tokens;
  cell_decode_s_ += decode_s;
  const double tps = cell_decode_s_ > 0 ? static_cast<double>(cell_tokens_) / cell_decode_s_ : 0;
  if (tty_) draw();
  else std::fprintf(out_, "[run]   cell %lld/%lld prompt %lld/%lld: %lld tokens, %.1f tok/s (cell so far), ETA %s\n",
                    static_cast<long long>(cell_), static_cast<long long>(cells_), static_cast<long long>(j),
                    static_cast<long long>(prompts_), static_cast<long long>(tokens), tps, eta().c_str());
  std::fflush(out_);
}

void Progress::draw() {
  const double tps = cell_decode_s_ > 0 ? static_cast<double>(cell_tokens_) / cell_decode_s_ : 0;
  constexpr int kWidth = 20;
  const int fill = total_ > 0 ? static_cast<int>(kWidth * done_ / total_) : 0;
  std::string bar(static_cast<size_t>(fill), '#');
  bar.resize(kWidth, '.');
  std::string label = label_.size() > 32 ? label_.substr(0, 31) + "~" : label_;
  std::fprintf(out_, "\r\033[K[%s] cell %lld/%lld %s | prompt %lld/%lld | %.1f tok/s | ETA %s", bar.c_str(),
               static_cast<long long>(cell_), static_cast<long long>(cells_), label.c_str(), static_cast<long long>(prompt_),
               static_cast<long long>(prompts_), tps, eta().c_str());
  line_open_ = true;
}

void Progress::end_cell(const std::string& summary) { note(summary); }

void Progress::note(const std::string& msg) {
  if (tty_ && line_open_) std::fprintf(out_, "\r\033[K");
  line_open_ = false;
  std::fprintf(out_, "[run] %s\n", msg.c_str());
  std::fflush(out_);
}

}  // namespace specula
