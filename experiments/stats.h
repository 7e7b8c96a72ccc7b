#pragma once
// Summary statistics over prompts for reports: mean and a 95% confidence interval of the mean.
//   t:          mean +- t_{0.975, n-1} * sd / sqrt(n) (Student t; sd with n-1)
//   bootstrap:  percentile interval of the mean over B resamples with replacement (seeded, deterministic)
// Per-position acceptance rates (binomial counts) get a Wilson score interval.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace specula {

enum class CiMethod { T, Bootstrap };

struct Summary {
  int64_t n = 0;
  double mean = 0, sd = 0, lo = 0, hi = 0;  // lo/hi: 95% CI of the mean (= mean when n < 2)
};

// Non-finite values are left out (n counts the rest).
Summary summarize(const std::vector<double>& xs, CiMethod m = CiMethod::T, int64_t bootstrap_samples = 2000,
                  uint64_t seed = 0);
// Two-sided 95% quantile of Student's t with `df` degrees of freedom (t_{0.975, df}); df >= 1.
double t_quantile_975(int64_t df);
// Wilson score 95% interval of k successes in n trials ({0, 0} for n = 0).
std::pair<double, double> wilson95(int64_t k, int64_t n);

// {"mean", "ci95": [lo, hi], "sd", "n"}
nlohmann::json summary_json(const Summary& s);

}  // namespace specula
