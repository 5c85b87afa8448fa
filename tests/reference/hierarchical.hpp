// SPDX-License-Identifier: MIT
// Naive long-double hierarchical position embedding, written from SPEC §3.2 without the library.
#ifndef XFMR_TESTS_REFERENCE_HIERARCHICAL_HPP
#define XFMR_TESTS_REFERENCE_HIERARCHICAL_HPP

#include <vector>

#include <xfmr/types.hpp>

namespace xfmr_ref {

/// u_a = (E[a] − α·E[0]) / (1 − α), the whole n × D table.
template <typename T>
std::vector<std::vector<long double>> hierarchical_u(const xfmr::RowMatrix<T>& E,
                                                     long double alpha) {
  std::vector<std::vector<long double>> u(static_cast<std::size_t>(E.rows()));
  for (long a = 0; a < E.rows(); ++a)
    for (long j = 0; j < E.cols(); ++j)
      u[a].push_back((static_cast<long double>(E(a, j)) -
                      alpha * static_cast<long double>(E(0, j))) /
                     (1 - alpha));
  return u;
}

/// emb(pos) = α·u[pos div n] + (1 − α)·u[pos mod n].
template <typename T>
std::vector<long double> hierarchical(const xfmr::RowMatrix<T>& E, long double alpha, long pos) {
  const auto u = hierarchical_u(E, alpha);
  const long n = E.rows(), a = pos / n, c = pos % n;
  std::vector<long double> e(static_cast<std::size_t>(E.cols()));
  for (long j = 0; j < E.cols(); ++j) e[j] = alpha * u[a][j] + (1 - alpha) * u[c][j];
  return e;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_HIERARCHICAL_HPP
