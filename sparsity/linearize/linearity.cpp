#include "sparsity/linearize/linearity.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include <Eigen/Dense>

#include "core/error.h"

namespace specula::linearize {

namespace {
using MatD = Eigen::MatrixXd;
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapF = Eigen::Map<const RowMatF>;

void check_shape(const float* X, const float* Y, int64_t n, int64_t d, const char* what) {
  if (!X || !Y) fail("{}: null activation matrix", what);
  if (n < 2) fail("{}: need at least 2 samples (rows), got {}", what, n);
  if (d < 1) fail("{}: need at least 1 feature (column), got {}", what, d);
}

// Double copy of X with its column means removed; `mean` receives them.
MatD centered(const float* X, int64_t n, int64_t d, Eigen::RowVectorXd* mean = nullptr) {
  MatD M = MapF(X, n, d).cast<double>();
  const Eigen::RowVectorXd mu = M.colwise().mean();
  M.rowwise() -= mu;
  if (mean) *mean = mu;
  return M;
}

// Solves (G + eps I) A = B with LDLT; eps a tiny multiple of the mean eigenvalue guards against a
// singular Gram matrix (fewer samples than features, constant features).
MatD solve_gram(const MatD& G, const MatD& B, double rel_ridge) {
  const int64_t d = G.rows();
  const double mean_eig = G.trace() / static_cast<double>(d);
  MatD R = G;
  if (mean_eig > 0) R.diagonal().array() += rel_ridge * mean_eig;
  return R.ldlt().solve(B);
}

// 1 - min_A ||Xc A - Yc||^2 / ||Yc||^2 given G = Xc^T Xc, B = Xc^T Yc and A = G^-1 B.
double r2_from_gram(const MatD& G, const MatD& B, const MatD& A, double yy) {
  if (yy <= 0) return 1.0;  // a constant target is predicted exactly by the bias
  const double sse = yy - 2.0 * (A.array() * B.array()).sum() + (A.array() * (G * A).array()).sum();
  return 1.0 - std::max(sse, 0.0) / yy;
}
}  // namespace

LinearityScores linearity_scores(const float* X, const float* Y, int64_t n, int64_t d) {
  check_shape(X, Y, n, d, "linearity_scores");
  LinearityScores s;
  // Cosine / angular distance on the raw (uncentered) vectors, per token.
  double cs = 0, ang = 0;
  for (int64_t t = 0; t < n; ++t) {
    const float* x = X + t * d;
    const float* y = Y + t * d;
    double xy = 0, xx = 0, yy = 0;
    for (int64_t i = 0; i < d; ++i) {
      xy += static_cast<double>(x[i]) * y[i];
      xx += static_cast<double>(x[i]) * x[i];
      yy += static_cast<double>(y[i]) * y[i];
    }
    double c = (xx > 0 && yy > 0) ? xy / std::sqrt(xx * yy) : (xx == yy ? 1.0 : 0.0);
    c = std::clamp(c, -1.0, 1.0);
    cs += c;
    ang += std::acos(c) / std::numbers::pi;
  }
  s.cosine = cs / static_cast<double>(n);
  s.angular = ang / static_cast<double>(n);

  // Procrustes-normalised linearity. Scaling X by 1/||Xc|| and Y by 1/||Yc|| leaves the optimal fit's
  // relative residual unchanged, so score = 1 - min ||Xc A - Yc||^2 / ||Yc||^2 (the multivariate R^2);
  // the centered variant uses Yc - Xc in place of Yc. Both share one factorisation of Xc^T Xc.
  const MatD Xc = centered(X, n, d);
  const MatD Yc = centered(Y, n, d);
  if (Xc.squaredNorm() <= 0) {  // constant input: nothing but the bias can be fitted
    s.linearity = Yc.squaredNorm() <= 0 ? 1.0 : 0.0;
    s.linearity_centered = (Yc - Xc).squaredNorm() <= 0 ? 1.0 : 0.0;
    return s;
  }
  MatD G(d, d);
  G.noalias() = Xc.transpose() * Xc;
  MatD B(d, 2 * d);
  B.leftCols(d).noalias() = Xc.transpose() * Yc;
  B.rightCols(d) = B.leftCols(d) - G;  // Xc^T (Yc - Xc)
  const MatD A = solve_gram(G, B, 1e-12);
  s.linearity = r2_from_gram(G, B.leftCols(d), A.leftCols(d), Yc.squaredNorm());
  s.linearity_centered = r2_from_gram(G, B.rightCols(d), A.rightCols(d), (Yc - Xc).squaredNorm());
  return s;
}

double procrustes_linearity(const float* X, const float* Y, int64_t n, int64_t d) {
  return linearity_scores(X, Y, n, d).linearity;
}

AffineMap fit_affine(const float* X, const float* Y, int64_t n, int64_t d, const FitOptions& opt, double* r2) {
  check_shape(X, Y, n, d, "fit_affine");
  if (opt.ridge < 0 || !std::isfinite(opt.ridge)) fail("fit_affine: invalid ridge {}: expected a finite value >= 0", opt.ridge);
  if (opt.rank < 0 || opt.rank >= d) fail("fit_affine: invalid rank {}: expected 0 (full) or 1..{}", opt.rank, d - 1);
  Eigen::RowVectorXd mx, my;
  const MatD Xc = centered(X, n, d, &mx);
  const MatD Yc = centered(Y, n, d, &my);
  const MatD R = Yc - Xc;  // the layer's residual contribution, centered
  MatD G(d, d);
  G.noalias() = Xc.transpose() * Xc;
  MatD B(d, d);
  B.noalias() = Xc.transpose() * R;
  MatD D = solve_gram(G, B, std::max(opt.ridge, 1e-12));  // A = I + D

  AffineMap m;
  m.d = d;
  m.rank = opt.rank;
  if (opt.rank > 0) {
    // Reduced-rank regression: project D onto the top-r eigenvectors of the fitted values' covariance
    // (Xc D)^T (Xc D) = D^T G D; this is the best rank-r map in the least-squares sense for this data.
    const MatD C = D.transpose() * G * D;
    Eigen::SelfAdjointEigenSolver<MatD> es(C);
    const MatD Vr = es.eigenvectors().rightCols(opt.rank);  // eigenvalues ascending
    const MatD U = D * Vr;                                   // [d][r]
    D = U * Vr.transpose();
    m.U.resize(static_cast<size_t>(d * opt.rank));
    m.V.resize(static_cast<size_t>(opt.rank * d));
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < opt.rank; ++j) {
        m.U[static_cast<size_t>(i * opt.rank + j)] = static_cast<float>(U(i, j));
        m.V[static_cast<size_t>(j * d + i)] = static_cast<float>(Vr(i, j));
      }
  } else {
    m.U.resize(static_cast<size_t>(d * d));
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) m.U[static_cast<size_t>(i * d + j)] = static_cast<float>(D(i, j));
  }
  const Eigen::RowVectorXd b = my - mx - mx * D;
  m.b.resize(static_cast<size_t>(d));
  for (int64_t j = 0; j < d; ++j) m.b[static_cast<size_t>(j)] = static_cast<float>(b(j));
  if (r2) {
    const double yy = Yc.squaredNorm();
    const double sse = (Xc * D - R).squaredNorm();
    *r2 = yy > 0 ? 1.0 - sse / yy : 1.0;
  }
  return m;
}

void AffineMap::apply(float* x, int64_t T, std::vector<float>& scratch) const {
  using MapMut = Eigen::Map<RowMatF>;
  MapMut Xm(x, T, d);
  const Eigen::Map<const Eigen::RowVectorXf> bv(b.data(), d);
  if (rank == 0) {
    scratch.resize(static_cast<size_t>(T * d));
    MapMut S(scratch.data(), T, d);
    S.noalias() = Xm * MapF(U.data(), d, d);
    Xm += S;
  } else {
    scratch.resize(static_cast<size_t>(T * (rank + d)));
    MapMut S1(scratch.data(), T, rank);
    MapMut S2(scratch.data() + T * rank, T, d);
    S1.noalias() = Xm * MapF(U.data(), d, rank);
    S2.noalias() = S1 * MapF(V.data(), rank, d);
    Xm += S2;
  }
  Xm.rowwise() += bv;
}

}  // namespace specula::linearize
