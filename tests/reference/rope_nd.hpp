// SPDX-License-Identifier: MIT
// Naive long-double N-D axial RoPE: explicit 2x2 rotations per block, written from SPEC §2.1–2.2
// without the library.
#ifndef XFMR_TESTS_REFERENCE_ROPE_ND_HPP
#define XFMR_TESTS_REFERENCE_ROPE_ND_HPP

#include <cmath>
#include <vector>

#include <xfmr/types.hpp>

namespace xfmr_ref {

using Mat = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Rotates one head vector x (length d) with coordinates p[0 … axes−1] (any sign): block a =
/// channels [a·m, (a+1)·m), m = d/axes, is rotated by p[a]·θ_r, θ_r = base^(−2r/m), with pairs
/// (2r, 2r+1) when interleaved and (r, r + m/2) otherwise. `sign` = −1 gives the inverse.
template <typename T>
std::vector<long double> rotate_nd(const T* x, long d, long axes, bool interleaved,
                                   const std::vector<long double>& p, long double base = 10000,
                                   long double sign = 1) {
  const long m = d / axes;
  std::vector<long double> y(x, x + d);
  for (long a = 0; a < axes; ++a)
    for (long r = 0; r < m / 2; ++r) {
      const long i = a * m + (interleaved ? 2 * r : r);
      const long j = a * m + (interleaved ? 2 * r + 1 : r + m / 2);
      const long double theta = std::pow(base, -2.0L * r / m);
      const long double angle = sign * p[a] * theta;
      const long double c = std::cos(angle), s = std::sin(angle);
      y[i] = x[i] * c - x[j] * s;
      y[j] = x[i] * s + x[j] * c;
    }
  return y;
}

/// Whole (tokens × heads·d) matrix, token t at coordinates coords[t].
template <typename T>
Mat rope_nd(const xfmr::RowMatrix<T>& x, long d, long axes, bool interleaved,
            const std::vector<std::vector<long double>>& coords, long double base = 10000,
            long double sign = 1) {
  Mat y(x.rows(), x.cols());
  for (long t = 0; t < x.rows(); ++t)
    for (long h = 0; h < x.cols() / d; ++h) {
      const auto v = rotate_nd(x.data() + t * x.cols() + h * d, d, axes, interleaved, coords[t],
                               base, sign);
      for (long i = 0; i < d; ++i) y(t, h * d + i) = v[i];
    }
  return y;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ROPE_ND_HPP
