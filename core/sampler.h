#pragma once
// Token samplers: greedy, temperature, top-k, top-p, min-p, repetition penalty; seeded, deterministic.
// The transforms are applied in this fixed order: repetition penalty -> temperature -> top-k ->
// top-p -> min-p. distribution() exposes the final probabilities (speculative sampling needs them).
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace specula {

using Token = int32_t;

struct SamplerConfig {
  float temperature = 0.f;        // 0 = greedy (argmax)
  int32_t top_k = 0;              // 0 = off
  float top_p = 1.f;              // 1 = off
  float min_p = 0.f;              // 0 = off
  float repetition_penalty = 1.f; // 1 = off (CTRL-style: divide positive logits, multiply negative)
  int32_t repeat_last_n = 64;     // window of history the penalty looks at
  uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.f; }
  // Sampling (temperature > 0) whose distribution depends on the logits alone, not on the history (no
  // repetition penalty): a forward pass can draw from it by itself (ForwardOptions::sample, spec_sampler).
  bool history_free_sampling() const { return !greedy() && repetition_penalty == 1.f; }
  // Throws Error naming the invalid value and the accepted range.
  void validate() const;
};

// Deterministic RNG (same seed -> same stream on every platform).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : eng_(seed) {}
  double uniform() { return static_cast<double>(eng_() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
 private:
  std::mt19937_64 eng_;
};

class Sampler {
 public:
  explicit Sampler(SamplerConfig cfg);
  const SamplerConfig& config() const { return cfg_; }
  // Greedy without repetition penalty: sample() is the argmax of the logits, nothing else (a forward
  // pass may then return only the argmax, ForwardOptions::argmax_only).
  bool argmax_only() const { return cfg_.greedy() && cfg_.repetition_penalty == 1.f; }

  // Final sampling distribution over the vocabulary (sums to 1). Greedy: one-hot at the argmax.
  void distribution(std::span<const float> logits, std::span<const Token> history, std::vector<float>& probs) const;
  // Draws a token: argmax for greedy, else from distribution().
  Token sample(std::span<const float> logits, std::span<const Token> history, Rng& rng) const;
  // Draws from an explicit distribution by inverse CDF.
  static Token sample_from(std::span<const float> probs, Rng& rng);
  // The same at a given uniform u in [0, 1): the first token whose cumulative probability exceeds u.
  static Token sample_from(std::span<const float> probs, double u);
  static Token argmax(std::span<const float> logits);

 private:
  SamplerConfig cfg_;
};

}  // namespace specula
