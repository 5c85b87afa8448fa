// SPDX-License-Identifier: MIT
// Random projections for Performer / FAVOR+ (Choromanski et al., arXiv 2009.14794; kexue 7921).
#ifndef XFMR_ATTENTION_RANDOM_FEATURES_HPP
#define XFMR_ATTENTION_RANDOM_FEATURES_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>

#include "../detail/eigen.hpp"
#include <Eigen/QR>

#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// How the rows ω_l of the projection W (m × d) are drawn.
enum class ProjectionKind {
  Orthogonal,  ///< blocks of d mutually orthogonal rows (QR of a Gaussian d×d block), SPEC §6.2
  Iid          ///< independent N(0, I_d) rows
};

/// Row lengths of an orthogonal projection (ignored for ProjectionKind::Iid).
enum class RowNorms {
  ChiDistributed,  ///< length of an independent N(0, I_d) draw: each row is marginally N(0, I_d)
  Fixed            ///< every row has length √d
};

namespace detail {

/// Standard normal draws from a std::mt19937_64 by the Box–Muller transform. Unlike
/// std::normal_distribution (whose algorithm differs between standard libraries) the sequence is
/// the same everywhere for a given seed, up to the last bit of std::log / std::cos / std::sqrt.
/// Not thread-safe (every draw advances the generator): one object per thread.
class GaussianSource {
 public:
  explicit GaussianSource(std::uint64_t seed) : m_rng(seed) {}

  double operator()() {
    if (m_has_spare) {
      m_has_spare = false;
      return m_spare;
    }
    // u1 in (0, 1] so log(u1) is finite; 53 random mantissa bits each.
    const double u1 = (static_cast<double>(m_rng() >> 11) + 1.0) * 0x1.0p-53;
    const double u2 = static_cast<double>(m_rng() >> 11) * 0x1.0p-53;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double a = 2.0 * kPi * u2;
    m_spare = r * std::sin(a);
    m_has_spare = true;
    return r * std::cos(a);
  }

 private:
  std::mt19937_64 m_rng;
  double m_spare = 0.0;
  bool m_has_spare = false;
};

}  // namespace detail

/// Draws a projection W (m × d, rows ω_l) for random-feature attention.
///   Iid:        ω_l ~ N(0, I_d) independently.
///   Orthogonal: for each block of d rows, G ~ N(0,1)^{d×d}, G = QR (Householder, signs fixed so
///               diag(R) > 0, making Q Haar-distributed), rows of Qᵀ; ⌊m/d⌋ full blocks and the
///               first m mod d rows of one more; each row then rescaled to the length given by
///               `norms` (χ_d-distributed or √d).
/// Draws consume `gauss` (a detail::GaussianSource, or any callable returning N(0, 1) doubles) in
/// a fixed order, so a given seed reproduces W exactly. (A template so that a translation unit
/// that includes this header without calling it does not instantiate Eigen's QR: ~3 s of compile.)
/// \throws std::invalid_argument if m < 1 or d < 1.
template <typename Gaussian>
RowMatrix<double> draw_projection(Index m, Index d, ProjectionKind kind, RowNorms norms,
                                  Gaussian& gauss) {
  using Sample = decltype(gauss());
  static_assert(std::is_same_v<Sample, double>, "draw_projection: gauss() must return double");
  using Matrix = Eigen::Matrix<Sample, Eigen::Dynamic, Eigen::Dynamic>;  // Eigen::MatrixXd
  detail::require(m >= 1, "draw_projection", "num_features must be >= 1 (got ", m, ")");
  detail::require(d >= 1, "draw_projection", "head_dim must be >= 1 (got ", d, ")");
  RowMatrix<double> w(m, d);
  if (kind == ProjectionKind::Iid) {
    for (Index i = 0; i < w.size(); ++i) w.data()[i] = gauss();
    return w;
  }
  Matrix g(d, d);
  for (Index r0 = 0; r0 < m; r0 += d) {
    for (Index i = 0; i < g.size(); ++i) g.data()[i] = gauss();
    Eigen::HouseholderQR<Matrix> qr(g);
    Matrix q = qr.householderQ();
    const auto& r = qr.matrixQR();
    for (Index c = 0; c < d; ++c)
      if (r(c, c) < 0) q.col(c) = -q.col(c);
    const Index rows = std::min(d, m - r0);
    w.middleRows(r0, rows) = q.leftCols(rows).transpose();  // columns of Q are orthonormal
  }
  for (Index l = 0; l < m; ++l) {
    double len = std::sqrt(static_cast<double>(d));
    if (norms == RowNorms::ChiDistributed) {
      double s = 0;
      for (Index i = 0; i < d; ++i) {
        const double z = gauss();
        s += z * z;
      }
      len = std::sqrt(s);
    }
    w.row(l) *= len;  // rows of Qᵀ have unit length
  }
  return w;
}

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_RANDOM_FEATURES_HPP
