// SPDX-License-Identifier: MIT
// Row kernel of the Performer's exponential random features (attention/performer.hpp, SPEC §6.1).
// The min/max the stabiliser needs is row_min_max (row.hpp).
#ifndef XFMR_SIMD_RANDOM_FEATURES_HPP
#define XFMR_SIMD_RANDOM_FEATURES_HPP

#include <cstddef>

#include "exp.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// y[i] = scale · e^{sign·u[i] − shift}, i < n: one FMA, simd::exp (≤ 2 ulp of the rounded
/// argument; overflow to +inf, underflow to +0, NaN kept) and one multiply per element. sign is
/// +1 or −1 (positive and hyperbolic features). y may be u; partial overlap is not allowed.
template <class Isa, typename T>
void scaled_exp_row(const T* u, T* y, std::size_t n, T sign, T shift, T scale) noexcept {
  using V = Vec<T, Isa>;
  const auto s = V::set1(sign), b = V::set1(-shift), c = V::set1(scale);
  std::size_t i = 0;
  for (; i + V::lanes <= n; i += V::lanes)
    V::store(y + i, V::mul(c, exp<Isa, T>(V::fmadd(s, V::load(u + i), b))));
  if (i < n)
    V::store_partial(y + i, V::mul(c, exp<Isa, T>(V::fmadd(s, V::load_partial(u + i, n - i), b))),
                     n - i);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_RANDOM_FEATURES_HPP
