// SPDX-License-Identifier: MIT
// Naive long-double GlobalPointer and Efficient GlobalPointer (SPEC §10.1–10.2), written from the
// formulas without the library: explicit loops for the Dense layers and an explicit d×d rotation
// matrix R_{j−i} formed for every (i, j) pair.
#ifndef XFMR_TESTS_REFERENCE_GLOBAL_POINTER_HPP
#define XFMR_TESTS_REFERENCE_GLOBAL_POINTER_HPP

#include <cmath>
#include <vector>

#include <xfmr/types.hpp>

namespace xfmr_ref {

using GpMat = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Scores of one type for one sequence, the masked pattern computed independently of the
/// values, and a magnitude bound for tolerances (‖q_i‖·‖k_j‖/√d + |bias terms|).
struct GpScores {
  GpMat value;                  // n × n; meaningless where masked
  std::vector<bool> masked;     // n·n, row-major
  GpMat magnitude;              // n × n
};

/// Block-diagonal rotation R_p for interleaved pairs (2r, 2r+1), θ_r = base^(−2r/d):
/// [[cos, −sin], [sin, cos]] in each block, so (R_p x)[2r] = x[2r]·cos − x[2r+1]·sin.
inline GpMat rotation_matrix(long d, long double p, long double base) {
  GpMat r = GpMat::Zero(d, d);
  for (long k = 0; k < d / 2; ++k) {
    const long double theta = std::pow(base, -2.0L * k / d);
    const long double c = std::cos(p * theta), s = std::sin(p * theta);
    r(2 * k, 2 * k) = c;
    r(2 * k, 2 * k + 1) = -s;
    r(2 * k + 1, 2 * k) = s;
    r(2 * k + 1, 2 * k + 1) = c;
  }
  return r;
}

/// y = x·W + c for the rows of one sequence (Keras Dense: W is (in × out)).
template <typename T>
GpMat dense(const xfmr::RowMatrix<T>& x, const xfmr::RowMatrix<T>& w, const xfmr::RowVector<T>& c) {
  GpMat y(x.rows(), w.cols());
  for (long i = 0; i < x.rows(); ++i)
    for (long o = 0; o < w.cols(); ++o) {
      long double acc = c(o);
      for (long k = 0; k < x.cols(); ++k) acc += static_cast<long double>(x(i, k)) * w(k, o);
      y(i, o) = acc;
    }
  return y;
}

inline bool is_masked(long i, long j, long len, bool tril) {
  return i >= len || j >= len || (tril && i > j);
}

/// q^T R_{j−i} k / √d with R formed explicitly for this pair.
inline long double relative_score(const GpMat& q, long i, const GpMat& k, long j, long d,
                                  long double base, long double* magnitude) {
  const GpMat r = rotation_matrix(d, static_cast<long double>(j - i), base);
  long double acc = 0, qn = 0, kn = 0;
  for (long a = 0; a < d; ++a) {
    qn += q(i, a) * q(i, a);
    kn += k(j, a) * k(j, a);
    for (long b = 0; b < d; ++b) acc += q(i, a) * r(a, b) * k(j, b);
  }
  const long double root_d = std::sqrt(static_cast<long double>(d));
  *magnitude = std::sqrt(qn) * std::sqrt(kn) / root_d;
  return acc / root_d;
}

/// GlobalPointer for one sequence h (n × D, rows >= len ignored): bert4keras layout, chunk α of
/// the dense output = [q_α (d) | k_α (d)]. Returns one GpScores per type.
template <typename T>
std::vector<GpScores> global_pointer(const xfmr::RowMatrix<T>& h, long len,
                                     const xfmr::RowMatrix<T>& kernel,
                                     const xfmr::RowVector<T>& bias, long types, long d, bool tril,
                                     long double base = 10000) {
  const long n = h.rows();
  const GpMat u = dense<T>(h.topRows(len), kernel, bias);
  std::vector<GpScores> out(static_cast<std::size_t>(types));
  for (long a = 0; a < types; ++a) {
    const GpMat q = u.middleCols(a * 2 * d, d), k = u.middleCols(a * 2 * d + d, d);
    GpScores& s = out[static_cast<std::size_t>(a)];
    s.value = GpMat::Zero(n, n);
    s.magnitude = GpMat::Zero(n, n);
    s.masked.assign(static_cast<std::size_t>(n * n), false);
    for (long i = 0; i < n; ++i)
      for (long j = 0; j < n; ++j) {
        s.masked[static_cast<std::size_t>(i * n + j)] = is_masked(i, j, len, tril);
        if (i < len && j < len) {
          long double m = 0;
          s.value(i, j) = relative_score(q, i, k, j, d, base, &m);
          s.magnitude(i, j) = m;
        }
      }
  }
  return out;
}

/// Efficient GlobalPointer for one sequence (bert4keras EfficientGlobalPointer):
/// u = h P + c_P; q = u[0::2], k = u[1::2]; β = (u G + c_G)/2 on the unrotated u;
/// s_α(i,j) = q_i^T R_{j−i} k_j / √d + β_i[2α+1] + β_j[2α].
template <typename T>
std::vector<GpScores> efficient_global_pointer(
    const xfmr::RowMatrix<T>& h, long len, const xfmr::RowMatrix<T>& p_kernel,
    const xfmr::RowVector<T>& p_bias, const xfmr::RowMatrix<T>& q_kernel,
    const xfmr::RowVector<T>& q_bias, long types, long d, bool tril, long double base = 10000) {
  const long n = h.rows();
  const GpMat u = dense<T>(h.topRows(len), p_kernel, p_bias);
  GpMat q(len, d), k(len, d);
  for (long i = 0; i < len; ++i)
    for (long c = 0; c < d; ++c) {
      q(i, c) = u(i, 2 * c);
      k(i, c) = u(i, 2 * c + 1);
    }
  GpMat beta(len, 2 * types);
  for (long i = 0; i < len; ++i)
    for (long o = 0; o < 2 * types; ++o) {
      long double acc = q_bias(o);
      for (long c = 0; c < 2 * d; ++c) acc += u(i, c) * q_kernel(c, o);
      beta(i, o) = acc / 2;
    }
  std::vector<GpScores> out(static_cast<std::size_t>(types));
  for (long a = 0; a < types; ++a) {
    GpScores& s = out[static_cast<std::size_t>(a)];
    s.value = GpMat::Zero(n, n);
    s.magnitude = GpMat::Zero(n, n);
    s.masked.assign(static_cast<std::size_t>(n * n), false);
    for (long i = 0; i < n; ++i)
      for (long j = 0; j < n; ++j) {
        s.masked[static_cast<std::size_t>(i * n + j)] = is_masked(i, j, len, tril);
        if (i < len && j < len) {
          long double m = 0;
          const long double start = beta(i, 2 * a + 1), end = beta(j, 2 * a);
          s.value(i, j) = relative_score(q, i, k, j, d, base, &m) + start + end;
          s.magnitude(i, j) = m + std::abs(start) + std::abs(end);
        }
      }
  }
  return out;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_GLOBAL_POINTER_HPP
