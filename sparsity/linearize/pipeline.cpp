#include "sparsity/linearize/pipeline.h"

#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/spec_string.h"

namespace specula::linearize {

namespace {
// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first exception.
template <typename Fn>
void parallel_for(int64_t n, int threads, Fn&& fn) {
  const int nt = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads < 1 ? 1 : threads, n)));
  std::atomic<int64_t> next{0};
  std::exception_ptr err;
  std::mutex mu;
  auto work = [&] {
    for (int64_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu);
        if (!err) err = std::current_exception();
        next = n;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < nt; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (err) std::rethrow_exception(err);
}
}  // namespace

std::vector<LinearityScores> layer_linearity(const ResidualStates& s, int64_t span, int threads) {
  if (span < 1 || span > s.n_layer) fail("linearity: invalid span {}: expected 1..{}", span, s.n_layer);
  std::vector<LinearityScores> out(static_cast<size_t>(s.n_layer - span + 1));
  parallel_for(static_cast<int64_t>(out.size()), threads, [&](int64_t l) {
    out[static_cast<size_t>(l)] = linearity_scores(s.state(l), s.state(l + span), s.n, s.d);
  });
  return out;
}

std::vector<ReplacedRun> fit_runs(const ResidualStates& s, const std::vector<std::pair<int64_t, int64_t>>& runs,
                                  const FitOptions& opt, int threads, std::vector<double>* r2) {
  for (const auto& [first, count] : runs)
    if (first < 0 || count < 1 || first >= s.n_layer || count > s.n_layer - first)
      fail("linear replacement: run of layers [{}, {}) out of range: the model has layers 0..{}", first, first + count, s.n_layer - 1);
  std::vector<ReplacedRun> out(runs.size());
  if (r2) r2->assign(runs.size(), 0.0);
  parallel_for(static_cast<int64_t>(runs.size()), threads, [&](int64_t i) {
    const auto [first, count] = runs[static_cast<size_t>(i)];
    ReplacedRun& r = out[static_cast<size_t>(i)];
    r.first = first;
    r.count = count;
    double fit_r2 = 0;
    r.map = fit_affine(s.state(first), s.state(first + count), s.n, s.d, opt, &fit_r2);
    if (r2) (*r2)[static_cast<size_t>(i)] = fit_r2;
  });
  return out;
}

std::vector<std::pair<int64_t, int64_t>> parse_runs(const std::string& s, const std::string& what) {
  std::vector<std::pair<int64_t, int64_t>> out;
  size_t i = 0;
  auto num = [&](const std::string& t) -> int64_t {
    if (t.empty() || t.find_first_not_of("0123456789") != std::string::npos)
      fail("{}: invalid layer '{}' in '{}': expected N or A-B (e.g. 3,5,10-12)", what, t, s);
    return std::stoll(t);
  };
  while (i <= s.size()) {
    const size_t j = std::min(s.find(',', i), s.size());
    const std::string item = s.substr(i, j - i);
    const size_t dash = item.find('-');
    if (dash == std::string::npos) {
      out.emplace_back(num(item), 1);
    } else {
      const int64_t a = num(item.substr(0, dash)), b = num(item.substr(dash + 1));
      if (b < a) fail("{}: invalid run '{}' in '{}': the end is before the start", what, item, s);
      out.emplace_back(a, b - a + 1);
    }
    i = j + 1;
  }
  return out;
}

}  // namespace specula::linearize
