// SPDX-License-Identifier: MIT
// Vec<T, interleaved<Isa, N>>: N vectors of Isa per operation, their instructions interleaved.
// For element-wise functions in which each vector is one long dependency chain (GELU: e^{−x²/2}
// through a polynomial, then a division, ≈ 100 cycles on Zen 3): the out-of-order window holds
// little more than one such chain, so one vector after another leaves most of the core idle.
// The same function, written once over Vec, run on interleaved<Isa, 2> advances two independent
// chains side by side, and its results are bit for bit those of Isa (every lane goes through the
// same operations). Arithmetic, whole-vector loads and stores only: a kernel that needs tails,
// reductions or shuffles does not compile against it.
#ifndef XFMR_SIMD_VEC_INTERLEAVED_HPP
#define XFMR_SIMD_VEC_INTERLEAVED_HPP

#include <cstddef>

#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// N vectors of Isa per operation (see the header comment).
template <class Isa, int N>
struct interleaved {
  static_assert(N >= 1, "interleaved: N >= 1 vectors per operation");
  static constexpr const char* name = Isa::name;
};

template <typename T, class Isa, int N>
struct Vec<T, interleaved<Isa, N>> {
  using Part = Vec<T, Isa>;
  struct type {
    typename Part::type part[N];
  };
  static constexpr std::size_t lanes = N * Part::lanes;

  /// {f(a.part[k], b.part[k], ...)} for k < N: one operation on every part.
  template <class F, class... A>
  static XFMR_INLINE type each(F f, const A&... a) noexcept {
    type r;
    for (int k = 0; k < N; ++k) r.part[k] = f(a.part[k]...);
    return r;
  }

  static XFMR_INLINE type load(const T* p) noexcept {
    type r;
    for (int k = 0; k < N; ++k) r.part[k] = Part::load(p + k * Part::lanes);
    return r;
  }
  static XFMR_INLINE void store(T* p, type v) noexcept {
    for (int k = 0; k < N; ++k) Part::store(p + k * Part::lanes, v.part[k]);
  }
  static XFMR_INLINE type set1(T a) noexcept {
    type r;
    for (int k = 0; k < N; ++k) r.part[k] = Part::set1(a);
    return r;
  }
  static XFMR_INLINE type zero() noexcept { return set1(T(0)); }

  static XFMR_INLINE type add(type a, type b) noexcept {
    return each([](auto x, auto y) { return Part::add(x, y); }, a, b);
  }
  static XFMR_INLINE type sub(type a, type b) noexcept {
    return each([](auto x, auto y) { return Part::sub(x, y); }, a, b);
  }
  static XFMR_INLINE type mul(type a, type b) noexcept {
    return each([](auto x, auto y) { return Part::mul(x, y); }, a, b);
  }
  static XFMR_INLINE type div(type a, type b) noexcept {
    return each([](auto x, auto y) { return Part::div(x, y); }, a, b);
  }
  static XFMR_INLINE type min(type a, type b) noexcept {
    return each([](auto x, auto y) { return Part::min(x, y); }, a, b);
  }
  static XFMR_INLINE type max(type a, type b) noexcept {
    return each([](auto x, auto y) { return Part::max(x, y); }, a, b);
  }
  static XFMR_INLINE type fmadd(type a, type b, type c) noexcept {
    return each([](auto x, auto y, auto z) { return Part::fmadd(x, y, z); }, a, b, c);
  }
  static XFMR_INLINE type fnmadd(type a, type b, type c) noexcept {
    return each([](auto x, auto y, auto z) { return Part::fnmadd(x, y, z); }, a, b, c);
  }
  static XFMR_INLINE type fmsub(type a, type b, type c) noexcept {
    return each([](auto x, auto y, auto z) { return Part::fmsub(x, y, z); }, a, b, c);
  }
  static XFMR_INLINE type select_lt(type a, type b, type t, type f) noexcept {
    return each([](auto x, auto y, auto u, auto v) { return Part::select_lt(x, y, u, v); }, a, b,
                t, f);
  }
  static XFMR_INLINE type abs(type a) noexcept {
    return each([](auto x) { return Part::abs(x); }, a);
  }
  static XFMR_INLINE type round(type a) noexcept {
    return each([](auto x) { return Part::round(x); }, a);
  }
  static XFMR_INLINE type pow2i(type a) noexcept {
    return each([](auto x) { return Part::pow2i(x); }, a);
  }
  static XFMR_INLINE type shift_to_exponent(type a) noexcept {
    return each([](auto x) { return Part::shift_to_exponent(x); }, a);
  }
};

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_VEC_INTERLEAVED_HPP
