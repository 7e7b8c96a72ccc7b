#include "experiments/stats.h"

#include <algorithm>
#include <cmath>

#include "core/sampler.h"

namespace specula {

double t_quantile_975(int64_t df) {
  // Exact to the printed digits for df <= 30; beyond, a Cornish-Fisher expansion around the normal
  // quantile (error < 1e-4 for df > 30).
  static const double t[] = {12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
                             2.2010,  2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
                             2.0796,  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423};
  if (df < 1) return NAN;
  if (df <= 30) return t[df - 1];
  const double z = 1.959963984540054, v = static_cast<double>(df);
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

Summary summarize(const std::vector<double>& in, CiMethod m, int64_t bootstrap_samples, uint64_t seed) {
  std::vector<double> xs;
  for (double x : in)
    if (std::isfinite(x)) xs.push_back(x);
  Summary s;
  s.n = static_cast<int64_t>(xs.size());
  if (s.n == 0) {
    s.mean = s.lo = s.hi = NAN;
    return s;
  }
  double sum = 0;
  for (double x : xs) sum += x;
  s.mean = sum / static_cast<double>(s.n);
  s.lo = s.hi = s.mean;
  if (s.n < 2) return s;
  double ss = 0;
  for (double x : xs) ss += (x - s.mean) * (x - s.mean);
  s.sd = std::sqrt(ss / static_cast<double>(s.n - 1));
  if (m == CiMethod::T) {
    const double h = t_quantile_975(s.n - 1) * s.sd / std::sqrt(static_cast<double>(s.n));
    s.lo = s.mean - h;
    s.hi = s.mean + h;
    return s;
  }
  Rng rng(seed);
  std::vector<double> means(static_cast<size_t>(bootstrap_samples));
  for (auto& mu : means) {
    double acc = 0;
    for (int64_t i = 0; i < s.n; ++i) {
      const auto j = std::min(static_cast<size_t>(rng.uniform() * static_cast<double>(s.n)), xs.size() - 1);
      acc += xs[j];
    }
    mu = acc / static_cast<double>(s.n);
  }
  std::sort(means.begin(), means.end());
  auto q = [&](double p) {
    const double pos = p * static_cast<double>(means.size() - 1);
    const size_t i = static_cast<size_t>(pos);
    const double f = pos - static_cast<double>(i);
    return i + 1 < means.size() ? means[i] * (1 - f) + means[i + 1] * f : means[i];
  };
  s.lo = q(0.025);
  s.hi = q(0.975);
  return s;
}

std::pair<double, double> wilson95(int64_t k, int64_t n) {
  if (n <= 0) return {0, 0};
  const double z = 1.959963984540054, nn = static_cast<double>(n), p = static_cast<double>(k) / nn;
  const double den = 1 + z * z / nn;
  const double c = (p + z * z / (2 * nn)) / den;
  const double h = z * std::sqrt(p * (1 - p) / nn + z * z / (4 * nn * nn)) / den;
  return {std::max(0.0, c - h), std::min(1.0, c + h)};
}

nlohmann::json summary_json(const Summary& s) {
  auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  return {{"mean", num(s.mean)}, {"ci95", {num(s.lo), num(s.hi)}}, {"sd", num(s.sd)}, {"n", s.n}};
}

}  // namespace specula
