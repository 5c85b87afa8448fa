// SPDX-License-Identifier: MIT
// Row kernels of the online softmax: scale (+ bias) and max, masking, exp-and-sum, rescale
// (row_max, scale_row and zero_row live in row.hpp, exp_nonpositive in exp.hpp).
#ifndef XFMR_SIMD_SOFTMAX_HPP
#define XFMR_SIMD_SOFTMAX_HPP

#include <cstddef>
#include <limits>
#include <type_traits>

#include "exp.hpp"
#include "row.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// s[j] = λ·s[j] (+ b[j] when b is not null); returns max_j s[j] (−inf when n == 0).
template <class Isa, typename T>
T scale_bias_max(T* s, const T* b, std::size_t n, T lambda) noexcept {
  using V = Vec<T, Isa>;
  const T ninf = -std::numeric_limits<T>::infinity();
  const auto l = V::set1(lambda);
  auto m = V::set1(ninf);
  std::size_t j = 0;
  if (b != nullptr) {
    for (; j + V::lanes <= n; j += V::lanes) {
      const auto x = V::fmadd(V::load(s + j), l, V::load(b + j));
      V::store(s + j, x);
      m = V::max(m, x);
    }
  } else {
    for (; j + V::lanes <= n; j += V::lanes) {
      const auto x = V::mul(V::load(s + j), l);
      V::store(s + j, x);
      m = V::max(m, x);
    }
  }
  T r = V::reduce_max(m);
  for (; j < n; ++j) {
    s[j] = b != nullptr ? s[j] * lambda + b[j] : s[j] * lambda;
    r = s[j] > r ? s[j] : r;
  }
  return r;
}

/// s[j] = −inf for j in [from, n): keys past the row's limit (causal, prefix-LM, padding).
template <class Isa, typename T>
void mask_tail(T* s, std::size_t from, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  const T ninf = -std::numeric_limits<T>::infinity();
  std::size_t j = from;
  for (; j + V::lanes <= n; j += V::lanes) V::store(s + j, V::set1(ninf));
  if (j < n) V::store_partial(s + j, V::set1(ninf), n - j);
}

/// s[j] = −inf where allowed[j] is false (boolean key or pair masks; bytes, so scalar code).
template <class Isa, typename T>
void mask_bool(T* s, const bool* allowed, std::size_t n) noexcept {
  const T ninf = -std::numeric_limits<T>::infinity();
  for (std::size_t j = 0; j < n; ++j)
    if (!allowed[j]) s[j] = ninf;
}

/// s[j] = e^{s[j] − m} (exp_nonpositive), returns Σ_j s[j]. m must be finite and ≥ every
/// s[j]; −inf entries give exact zeros.
template <class Isa, typename T>
T exp_sum(T* s, std::size_t n, T m) noexcept {
  using V = Vec<T, Isa>;
  const auto mv = V::set1(m);
  auto a0 = V::zero(), a1 = V::zero();
  std::size_t j = 0;
  for (; j + 2 * V::lanes <= n; j += 2 * V::lanes) {
    const auto e0 = exp_nonpositive<Isa, T>(V::sub(V::load(s + j), mv));
    const auto e1 = exp_nonpositive<Isa, T>(V::sub(V::load(s + j + V::lanes), mv));
    V::store(s + j, e0);
    V::store(s + j + V::lanes, e1);
    a0 = V::add(a0, e0);
    a1 = V::add(a1, e1);
  }
  for (; j < n; j += V::lanes) {
    const std::size_t r = n - j < V::lanes ? n - j : V::lanes;
    // Partial loads fill the unused lanes with 0: e^{0 − m} would pollute the sum, so the sum
    // is taken from the stored (masked) values instead.
    const auto e = exp_nonpositive<Isa, T>(V::sub(V::load_partial(s + j, r), mv));
    V::store_partial(s + j, e, r);
    a0 = V::add(a0, V::load_partial(s + j, r));
  }
  return V::reduce_add(V::add(a0, a1));
}

namespace detail {

/// online_softmax_columns on one block of columns (a vector of queries), its loads and stores
/// done by ops (FullOps, or PartialOps on the last block).
template <class Isa, class Ops, typename T>
XFMR_INLINE void online_softmax_block(T* si, std::size_t rows, std::ptrdiff_t lds, T* m, T* l,
                                      T* alpha, Ops ops) noexcept {
  using V = Vec<T, Isa>;
  const auto lowest = V::set1(std::numeric_limits<T>::lowest());
  auto mx0 = lowest, mx1 = lowest;
  std::size_t j = 0;
  for (; j + 2 <= rows; j += 2) {
    mx0 = V::max(mx0, ops(si + std::ptrdiff_t(j) * lds));
    mx1 = V::max(mx1, ops(si + std::ptrdiff_t(j + 1) * lds));
  }
  if (j < rows) mx0 = V::max(mx0, ops(si + std::ptrdiff_t(j) * lds));
  const auto mold = ops(m);
  const auto mnew = V::max(mold, V::max(mx0, mx1));
  const auto a = exp_nonpositive<Isa, T>(V::sub(mold, mnew));
  auto sum0 = V::zero(), sum1 = V::zero();
  for (j = 0; j + 2 <= rows; j += 2) {
    T* r0 = si + std::ptrdiff_t(j) * lds;
    T* r1 = r0 + lds;
    const auto e0 = exp_nonpositive<Isa, T>(V::sub(ops(r0), mnew));
    const auto e1 = exp_nonpositive<Isa, T>(V::sub(ops(r1), mnew));
    ops(r0, e0);
    ops(r1, e1);
    sum0 = V::add(sum0, e0);
    sum1 = V::add(sum1, e1);
  }
  if (j < rows) {
    T* r0 = si + std::ptrdiff_t(j) * lds;
    const auto e0 = exp_nonpositive<Isa, T>(V::sub(ops(r0), mnew));
    ops(r0, e0);
    sum0 = V::add(sum0, e0);
  }
  ops(l, V::fmadd(ops(l), a, V::add(sum0, sum1)));
  ops(m, mnew);
  ops(alpha, a);
}

}  // namespace detail

/// The online-softmax update of a transposed score tile s (rows = keys, `cols` = queries, row
/// stride lds; masked scores are −inf), column by column (one lane per query):
///   M' = max(M, max_j s_j, lowest), α = e^{M − M'}, s_j ← e^{s_j − M'}, ℓ ← α·ℓ + Σ_j s_j.
/// m, l, alpha have `cols` entries; M starts at lowest() (not −inf: no ∞ − ∞), so a column with
/// no allowed key keeps ℓ = 0.
template <class Isa, typename T>
void online_softmax_columns(T* s, std::size_t rows, std::size_t cols, std::ptrdiff_t lds, T* m,
                            T* l, T* alpha) noexcept {
  using V = Vec<T, Isa>;
  std::size_t i = 0;
  for (; i + V::lanes <= cols; i += V::lanes)
    detail::online_softmax_block<Isa>(s + i, rows, lds, m + i, l + i, alpha + i,
                                      detail::FullOps<V, T>{});
  if (i < cols)
    detail::online_softmax_block<Isa>(s + i, rows, lds, m + i, l + i, alpha + i,
                                      detail::PartialOps<V, T>{cols - i});
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_SOFTMAX_HPP
