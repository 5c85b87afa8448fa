// SPDX-License-Identifier: MIT
// Naive long-double RoPE: explicit 2x2 rotations, written from SPEC §1.1–1.3 without the library.
#ifndef XFMR_TESTS_REFERENCE_ROPE_HPP
#define XFMR_TESTS_REFERENCE_ROPE_HPP

#include <cmath>
#include <vector>

#include <xfmr/types.hpp>

namespace xfmr_ref {

using Mat = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// θ_r = b^(−2r/d_rot) in long double.
inline std::vector<long double> inv_freq(long rot, long double base) {
  std::vector<long double> f(static_cast<std::size_t>(rot / 2));
  for (long r = 0; r < rot / 2; ++r) f[r] = std::pow(base, -2.0L * r / rot);
  return f;
}

/// Rotates one head vector x (length d) at position p (may be fractional or negative):
/// pairs (2r, 2r+1) when interleaved, (r, r + rot/2) otherwise; channels >= rot copied.
/// `scale` multiplies cos and sin (YaRN's μ).
template <typename T>
std::vector<long double> rotate(const T* x, long d, long rot, bool interleaved, long double p,
                                const std::vector<long double>& theta, long double scale = 1) {
  std::vector<long double> y(x, x + d);
  for (long r = 0; r < rot / 2; ++r) {
    const long a = interleaved ? 2 * r : r;
    const long b = interleaved ? 2 * r + 1 : r + rot / 2;
    const long double c = scale * std::cos(p * theta[r]), s = scale * std::sin(p * theta[r]);
    y[a] = x[a] * c - x[b] * s;
    y[b] = x[a] * s + x[b] * c;
  }
  return y;
}

/// Whole (tokens × heads·d) matrix, row t at position pos[t].
template <typename T>
Mat rope(const xfmr::RowMatrix<T>& x, long d, long rot, bool interleaved,
         const std::vector<long double>& pos, const std::vector<long double>& theta,
         long double scale = 1) {
  Mat y(x.rows(), x.cols());
  for (long t = 0; t < x.rows(); ++t)
    for (long h = 0; h < x.cols() / d; ++h) {
      const auto v = rotate(x.data() + t * x.cols() + h * d, d, rot, interleaved, pos[t], theta,
                            scale);
      for (long i = 0; i < d; ++i) y(t, h * d + i) = v[i];
    }
  return y;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ROPE_HPP
