// SPDX-License-Identifier: MIT
// Generic row kernels shared by several families: max, min and max, scale, dot product, zero.
#ifndef XFMR_SIMD_ROW_HPP
#define XFMR_SIMD_ROW_HPP

#include <cstddef>
#include <limits>

#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// max_j x[j] over j < n; −inf when n == 0. NaN entries are ignored (−inf when every entry is
/// NaN), on every ISA: a NaN never becomes the maximum, so callers that subtract it keep the NaN
/// in the entry itself. No alignment needed.
template <class Isa, typename T>
T row_max(const T* x, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  const T ninf = -std::numeric_limits<T>::infinity();
  auto m0 = V::set1(ninf), m1 = V::set1(ninf);
  std::size_t j = 0;
  // max(a, b) returns b when either is NaN (x86 rule, kept by scalar_isa): the running maximum
  // goes second, so a NaN load is dropped.
  for (; j + 2 * V::lanes <= n; j += 2 * V::lanes) {
    m0 = V::max(V::load(x + j), m0);
    m1 = V::max(V::load(x + j + V::lanes), m1);
  }
  T m = V::reduce_max(V::max(m0, m1));
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

/// lo = min_j x[j], hi = max_j x[j] over j < n (+inf and −inf when n == 0). NaN entries are
/// ignored as in row_max. No alignment needed.
template <class Isa, typename T>
void row_min_max(const T* x, std::size_t n, T& lo, T& hi) noexcept {
  using V = Vec<T, Isa>;
  const T inf = std::numeric_limits<T>::infinity();
  auto vl = V::set1(inf), vh = V::set1(-inf);
  std::size_t j = 0;
  for (; j + V::lanes <= n; j += V::lanes) {
    const auto v = V::load(x + j);
    vl = V::min(v, vl);
    vh = V::max(v, vh);
  }
  T l = -V::reduce_max(V::sub(V::zero(), vl)), h = V::reduce_max(vh);
  for (; j < n; ++j) {
    l = x[j] < l ? x[j] : l;
    h = x[j] > h ? x[j] : h;
  }
  lo = l;
  hi = h;
}

/// y[j] = a·x[j] for j < n. y may be x (in place); partial overlap is not allowed.
template <class Isa, typename T>
void scale_row(const T* x, T* y, std::size_t n, T a) noexcept {
  using V = Vec<T, Isa>;
  const auto av = V::set1(a);
  std::size_t j = 0;
  for (; j + V::lanes <= n; j += V::lanes) V::store(y + j, V::mul(av, V::load(x + j)));
  if (j < n) V::store_partial(y + j, V::mul(av, V::load_partial(x + j, n - j)), n - j);
}

/// x[j] *= a for j < n (scale_row in place).
template <class Isa, typename T>
void scale_row(T* x, std::size_t n, T a) noexcept {
  scale_row<Isa, T>(x, x, n, a);
}

/// Σ_{j<n} x[j]·y[j], accumulated lane-wise with FMA in T and then reduced (0 when n == 0).
/// x may equal y (the squared norm).
template <class Isa, typename T>
T dot_row(const T* x, const T* y, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  auto acc = V::zero();
  std::size_t j = 0;
  for (; j + V::lanes <= n; j += V::lanes) acc = V::fmadd(V::load(x + j), V::load(y + j), acc);
  if (j < n) acc = V::fmadd(V::load_partial(x + j, n - j), V::load_partial(y + j, n - j), acc);
  return V::reduce_add(acc);
}

/// x[j] = +0 for j < n.
template <class Isa, typename T>
void zero_row(T* x, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  std::size_t j = 0;
  for (; j + V::lanes <= n; j += V::lanes) V::store(x + j, V::zero());
  if (j < n) V::store_partial(x + j, V::zero(), n - j);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_ROW_HPP
