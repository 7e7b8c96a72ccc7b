#include "core/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

#include "core/error.h"

namespace specula {

void SamplerConfig::validate() const {
  if (!std::isfinite(temperature) || temperature < 0.f)
    fail("invalid temperature {}: expected a finite value >= 0 (0 = greedy)", temperature);
  if (top_k < 0) fail("invalid top-k {}: expected >= 0 (0 = off)", top_k);
  if (!(top_p > 0.f && top_p <= 1.f)) fail("invalid top-p {}: expected 0 < top-p <= 1", top_p);
  if (!(min_p >= 0.f && min_p < 1.f)) fail("invalid min-p {}: expected 0 <= min-p < 1", min_p);
  if (!(repetition_penalty > 0.f) || !std::isfinite(repetition_penalty))
    fail("invalid repetition penalty {}: expected a finite value > 0 (1 = off)", repetition_penalty);
  if (repeat_last_n < 0) fail("invalid repeat-last-n {}: expected >= 0", repeat_last_n);
}

Sampler::Sampler(SamplerConfig cfg) : cfg_(cfg) { cfg_.validate(); }

Token Sampler::argmax(std::span<const float> logits) {
  // First maximum wins on ties (as llama.cpp's greedy sampler).
  return static_cast<Token>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

void Sampler::distribution(std::span<const float> logits, std::span<const Token> history, std::vector<float>& probs) const {
  const size_t n = logits.size();
  probs.assign(logits.begin(), logits.end());
  // 1. repetition penalty over the last repeat_last_n tokens
  if (cfg_.repetition_penalty != 1.f && cfg_.repeat_last_n > 0) {
    const size_t start = history.size() > static_cast<size_t>(cfg_.repeat_last_n) ? history.size() - cfg_.repeat_last_n : 0;
    std::unordered_set<Token> seen(history.begin() + static_cast<std::ptrdiff_t>(start), history.end());
    for (Token t : seen) {
      if (t < 0 || static_cast<size_t>(t) >= n) continue;
      float& l = probs[static_cast<size_t>(t)];
      l = l > 0.f ? l / cfg_.repetition_penalty : l * cfg_.repetition_penalty;
    }
  }
  if (cfg_.greedy()) {
    const Token best = argmax(probs);
    std::fill(probs.begin(), probs.end(), 0.f);
    probs[static_cast<size_t>(best)] = 1.f;
    return;
  }
  // 2. temperature + softmax
  const float mx = *std::max_element(probs.begin(), probs.end());
  double sum = 0.0;
  for (auto& p : probs) {
    p = std::exp((p - mx) / cfg_.temperature);
    sum += p;
  }
  for (auto& p : probs) p = static_cast<float>(p / sum);
  // 3-5. top-k, top-p, min-p act on the sorted distribution
  if (cfg_.top_k > 0 || cfg_.top_p < 1.f || cfg_.min_p > 0.f) {
    std::vector<int32_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    size_t keep = n;
    if (cfg_.top_k > 0) keep = std::min<size_t>(keep, static_cast<size_t>(cfg_.top_k));
    auto by_prob = [&](int32_t a, int32_t b) { return probs[a] > probs[b] || (probs[a] == probs[b] && a < b); };
    // Only the first `keep` ranks matter: with top-k a partial sort gives the same order (by_prob is a
    // strict total order) at a fraction of the cost of sorting the whole vocabulary.
    if (keep < n) std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(keep), idx.end(), by_prob);
    else std::sort(idx.begin(), idx.end(), by_prob);
    if (cfg_.top_p < 1.f) {
      double cum = 0.0;
      size_t k = 0;
      while (k < keep) {
        cum += probs[static_cast<size_t>(idx[k])];
        ++k;
        if (cum >= cfg_.top_p) break;
      }
      keep = k;
    }
    if (cfg_.min_p > 0.f) {
      const float thr = cfg_.min_p * probs[static_cast<size_t>(idx[0])];
      size_t k = 1;
      while (k < keep && probs[static_cast<size_t>(idx[k])] >= thr) ++k;
      keep = k;
    }
    std::vector<float> kept(n, 0.f);
    double s = 0.0;
    for (size_t i = 0; i < keep; ++i) s += probs[static_cast<size_t>(idx[i])];
    for (size_t i = 0; i < keep; ++i) kept[static_cast<size_t>(idx[i])] = static_cast<float>(probs[static_cast<size_t>(idx[i])] / s);
    probs.swap(kept);
  }
}

Token Sampler::sample_from(std::span<const float> probs, Rng& rng) { return sample_from(probs, rng.uniform()); }

Token Sampler::sample_from(std::span<const float> probs, double u) {
  double cum = 0.0;
  Token last_nonzero = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] <= 0.f) continue;
    cum += probs[i];
    last_nonzero = static_cast<Token>(i);
    if (u < cum) return last_nonzero;
  }
  return last_nonzero;  // rounding: u beyond the accumulated mass
}

Token Sampler::sample(std::span<const float> logits, std::span<const Token> history, Rng& rng) const {
  if (argmax_only()) return argmax(logits);
  std::vector<float> probs;
  distribution(logits, history, probs);
  if (cfg_.greedy()) return argmax(probs);
  return sample_from(probs, rng);
}

}  // namespace specula
