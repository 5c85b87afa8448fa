// SPDX-License-Identifier: MIT
// Seeded random inputs for tests: every draw follows Catch's --rng-seed, so failures replay.
#ifndef XFMR_TESTS_SUPPORT_RANDOM_HPP
#define XFMR_TESTS_SUPPORT_RANDOM_HPP

#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/types.hpp>

namespace xfmr_test {

/// One generator per test case, seeded from Catch::rngSeed() and a per-call salt.
inline std::mt19937_64 make_rng(std::uint64_t salt = 0) {
  return std::mt19937_64(Catch::rngSeed() * 0x9E3779B97F4A7C15ull + salt);
}

/// n values drawn uniformly from [lo, hi) in double, rounded to T.
template <typename T>
std::vector<T> uniform_vector(std::mt19937_64& rng, std::size_t n, double lo, double hi) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> x(n);
  for (auto& v : x) v = static_cast<T>(u(rng));
  return x;
}

template <typename T>
xfmr::RowMatrix<T> random_matrix(std::mt19937_64& rng, xfmr::Index rows, xfmr::Index cols,
                                 double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  xfmr::RowMatrix<T> m(rows, cols);
  for (xfmr::Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(u(rng));
  return m;
}

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_RANDOM_HPP
