// SPDX-License-Identifier: MIT
// Rotary-embedding kernels: rotate coordinate pairs of one head vector by per-pair angles
// (Su et al., RoFormer, arXiv:2104.09864).
#ifndef XFMR_SIMD_ROPE_HPP
#define XFMR_SIMD_ROPE_HPP

#include <cstddef>

#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Direction of the rotation: Forward by +angle, Inverse by −angle (the transpose, used for the
/// backward pass).
enum class Rotation { Forward, Inverse };

/// Half-split ("rotate half", NeoX) layout, pairs (i, i + h), h = rot/2, channels [c c c s s s]:
///   y[i]     = x[i]·c[i] − x[i+h]·s[i]
///   y[i + h] = x[i+h]·c[i] + x[i]·s[i]          (Inverse: s → −s)
/// Writes y[0, rot) only. c and s hold h values.
/// \pre rot even; y == x allowed, partial overlap is not; no alignment needed.
template <class Isa, Rotation Dir = Rotation::Forward, typename T>
XFMR_INLINE void rope_half_split(const T* x, const T* c, const T* s, T* y,
                                 std::size_t rot) noexcept {
  using V = Vec<T, Isa>;
  XFMR_ASSERT(rot % 2 == 0);
  XFMR_ASSERT(x == y || x + rot <= y || y + rot <= x);
  const std::size_t h = rot / 2;
  const auto body = [&](std::size_t i, auto load, auto store) {
    const auto lo = load(x + i), hi = load(x + h + i), ci = load(c + i), si = load(s + i);
    if constexpr (Dir == Rotation::Forward) {
      store(y + i, V::fnmadd(hi, si, V::mul(lo, ci)));  // lo·c − hi·s
      store(y + h + i, V::fmadd(lo, si, V::mul(hi, ci)));  // hi·c + lo·s
    } else {
      store(y + i, V::fmadd(hi, si, V::mul(lo, ci)));
      store(y + h + i, V::fnmadd(lo, si, V::mul(hi, ci)));
    }
  };
  std::size_t i = 0;
  for (; i + V::lanes <= h; i += V::lanes) body(i, V::load, V::store);
  if (i < h) {  // one masked iteration: nothing read or written twice, nothing past the end
    const std::size_t n = h - i;
    body(
        i, [n](const T* p) { return V::load_partial(p, n); },
        [n](T* p, typename V::type v) { V::store_partial(p, v, n); });
  }
}

/// Interleaved ("rotate every two", RoFormer / GPT-J) layout, pairs (2i, 2i + 1), [cscscs]:
///   y[2i]     = x[2i]·c[i] − x[2i+1]·s[i]
///   y[2i + 1] = x[2i+1]·c[i] + x[2i]·s[i]       (Inverse: s → −s)
/// Vector form: y = x·[c0 c0 c1 c1 …] ∓± swap_pairs(x)·[s0 s0 s1 s1 …] with one fmaddsub.
/// Writes y[0, rot) only. c and s hold rot/2 values.
/// \pre rot even; y == x allowed, partial overlap is not; no alignment needed.
template <class Isa, Rotation Dir = Rotation::Forward, typename T>
XFMR_INLINE void rope_interleaved(const T* x, const T* c, const T* s, T* y,
                                  std::size_t rot) noexcept {
  using V = Vec<T, Isa>;
  XFMR_ASSERT(rot % 2 == 0);
  XFMR_ASSERT(x == y || x + rot <= y || y + rot <= x);
  if constexpr (V::lanes == 1) {
    for (std::size_t i = 0; i < rot / 2; ++i) {
      const T a = x[2 * i], b = x[2 * i + 1];
      const T sn = Dir == Rotation::Forward ? s[i] : -s[i];
      y[2 * i] = a * c[i] - b * sn;
      y[2 * i + 1] = b * c[i] + a * sn;
    }
  } else {
    constexpr std::size_t W = V::lanes;
    const auto body = [&](std::size_t i, auto load, auto load_dup, auto store) {
      const auto xv = load(x + i);
      const auto cv = load_dup(c + i / 2), sv = load_dup(s + i / 2);
      const auto t = V::mul(V::swap_pairs(xv), sv);
      if constexpr (Dir == Rotation::Forward)
        store(y + i, V::fmaddsub(xv, cv, t));  // even: a·c − b·s, odd: b·c + a·s
      else
        store(y + i, V::fmsubadd(xv, cv, t));  // even: a·c + b·s, odd: b·c − a·s
    };
    std::size_t i = 0;
    for (; i + W <= rot; i += W) body(i, V::load, V::load_dup_pairs, V::store);
    if (i < rot) {  // rot even, so the masked tail holds whole pairs
      const std::size_t n = rot - i;
      body(
          i, [n](const T* p) { return V::load_partial(p, n); },
          [n](const T* p) { return V::load_dup_pairs_partial(p, n / 2); },
          [n](T* p, typename V::type v) { V::store_partial(p, v, n); });
    }
  }
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_ROPE_HPP
