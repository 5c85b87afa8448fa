// SPDX-License-Identifier: MIT
// Row kernels of the online softmax: scale (+ bias) and max, masking, exp-and-sum, rescale.
#ifndef XFMR_SIMD_SOFTMAX_HPP
#define XFMR_SIMD_SOFTMAX_HPP

#include <cstddef>
#include <limits>

#include "exp.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// max_j x[j]; −inf when n == 0. NaN lanes are not propagated reliably (x86 max rule).
template <class Isa, typename T>
T row_max(const T* x, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  const T ninf = -std::numeric_limits<T>::infinity();
  auto m0 = V::set1(ninf), m1 = V::set1(ninf);
  std::size_t j = 0;
  for (; j + 2 * V::lanes <= n; j += 2 * V::lanes) {
    m0 = V::max(m0, V::load(x + j));
    m1 = V::max(m1, V::load(x + j + V::lanes));
  }
  T m = V::reduce_max(V::max(m0, m1));
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

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

/// s[j] = e^{s[j] − m}, returns Σ_j s[j]. m must be finite; −inf entries give exact zeros.
template <class Isa, typename T>
T exp_sum(T* s, std::size_t n, T m) noexcept {
  using V = Vec<T, Isa>;
  const auto mv = V::set1(m);
  auto a0 = V::zero(), a1 = V::zero();
  std::size_t j = 0;
  for (; j + 2 * V::lanes <= n; j += 2 * V::lanes) {
    const auto e0 = exp<Isa, T>(V::sub(V::load(s + j), mv));
    const auto e1 = exp<Isa, T>(V::sub(V::load(s + j + V::lanes), mv));
    V::store(s + j, e0);
    V::store(s + j + V::lanes, e1);
    a0 = V::add(a0, e0);
    a1 = V::add(a1, e1);
  }
  for (; j < n; j += V::lanes) {
    const std::size_t r = n - j < V::lanes ? n - j : V::lanes;
    // Partial loads fill the unused lanes with 0: e^{0 − m} would pollute the sum, so the sum
    // is taken from the stored (masked) values instead.
    const auto e = exp<Isa, T>(V::sub(V::load_partial(s + j, r), mv));
    V::store_partial(s + j, e, r);
    a0 = V::add(a0, V::load_partial(s + j, r));
  }
  return V::reduce_add(V::add(a0, a1));
}

/// x[j] *= a.
template <class Isa, typename T>
void scale_row(T* x, std::size_t n, T a) noexcept {
  using V = Vec<T, Isa>;
  const auto av = V::set1(a);
  std::size_t j = 0;
  for (; j + V::lanes <= n; j += V::lanes) V::store(x + j, V::mul(av, V::load(x + j)));
  if (j < n) V::store_partial(x + j, V::mul(av, V::load_partial(x + j, n - j)), n - j);
}

/// x[j] = 0.
template <class Isa, typename T>
void zero_row(T* x, std::size_t n) noexcept {
  using V = Vec<T, Isa>;
  std::size_t j = 0;
  for (; j + V::lanes <= n; j += V::lanes) V::store(x + j, V::zero());
  if (j < n) V::store_partial(x + j, V::zero(), n - j);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_SOFTMAX_HPP
