#pragma once
// Linearity of transformer layers ("Your Transformer is Secretly Linear", Razzhigaev et al. 2024;
// ShortGPT block influence) and least-squares linear replacement of layers (ReplaceMe-style).
//
// Activations are row-major float matrices [n][d] (one row per token): X = residual stream entering a
// layer (or the first layer of a run), Y = residual stream leaving it (or the run's last layer).
// All math runs in double precision with Eigen.
#include <cstdint>
#include <vector>

namespace specula::linearize {

struct LinearityScores {
  // Procrustes-normalised linearity: center X and Y, divide each by its Frobenius norm, least-squares
  // A = argmin ||X A - Y||, score = 1 - ||X A - Y||^2 (1 = exactly linear).
  double linearity = 0;
  // The same score for the residual-free part (Y - X in place of Y).
  double linearity_centered = 0;
  // Mean over tokens of cos(x_in, x_out) (uncentered); ShortGPT block influence = 1 - cosine.
  double cosine = 0;
  // Mean over tokens of arccos(cos(x_in, x_out)) / pi, in [0, 1].
  double angular = 0;
};

// Scores for one layer (or run). X, Y: [n][d], n >= 2.
LinearityScores linearity_scores(const float* X, const float* Y, int64_t n, int64_t d);

// Just the Procrustes-normalised score of Y against X (the first field above).
double procrustes_linearity(const float* X, const float* Y, int64_t n, int64_t d);

// A fitted affine map y = x A + b, A = I + U V (residual form). Full rank: U is A - I as [d][d] and V is
// empty (rank 0 means full). Low rank r: U [d][r], V [r][d].
struct AffineMap {
  int64_t d = 0;
  int64_t rank = 0;      // 0 = full
  std::vector<float> U;  // [d][d] (full) or [d][rank]
  std::vector<float> V;  // [rank][d] (low rank only)
  std::vector<float> b;  // [d]

  // x: [T][d], overwritten with x A + b. Uses `scratch` (resized as needed).
  void apply(float* x, int64_t T, std::vector<float>& scratch) const;
  // Multiply-adds per token (for reports).
  int64_t macs_per_token() const { return rank == 0 ? d * d : 2 * d * rank; }
};

struct FitOptions {
  // Ridge strength relative to the mean eigenvalue of the centered input Gram matrix: the penalty
  // lambda * tr(Xc^T Xc) / d * ||A - I||^2 pulls the map towards the identity (= skipping the layer).
  double ridge = 1e-4;
  // > 0: reduced-rank regression: keep the best rank-r residual part (in the metric of the fitted
  // values), A = I + U V. 0 = full rank.
  int64_t rank = 0;
};

// Fits Y ~ X A + b by ridge-regularised least squares (centered, residual form, LDLT on the normal
// equations in double). X, Y: [n][d]. Also returns the fit's R^2 on the data (1 - SSE / SS_tot of Y).
AffineMap fit_affine(const float* X, const float* Y, int64_t n, int64_t d, const FitOptions& opt, double* r2 = nullptr);

}  // namespace specula::linearize
