// SPDX-License-Identifier: MIT
// Naive reference for the raw rotation kernels (simd/rope.hpp): one explicit 2×2 rotation per
// pair, in long double, on the caller's own c and s values (no angles, no tables).
#ifndef XFMR_TESTS_REFERENCE_ROPE_KERNELS_HPP
#define XFMR_TESTS_REFERENCE_ROPE_KERNELS_HPP

#include <cstddef>
#include <vector>

namespace xfmr_ref {

/// Index pair (a, b) of rotation i for a vector of `rot` elements:
/// interleaved (2i, 2i + 1), half-split (i, i + rot/2).
inline void kernel_pair(std::size_t i, std::size_t rot, bool interleaved, std::size_t& a,
                        std::size_t& b) {
  a = interleaved ? 2 * i : i;
  b = interleaved ? 2 * i + 1 : i + rot / 2;
}

/// y[0, rot) with [y_a; y_b] = [c −s; s c]·[x_a; x_b] (inverse: s → −s), i < rot/2.
/// Long double: its own rounding (2^-64 relative) is negligible next to float or double.
template <typename T>
std::vector<long double> kernel_rotate(const T* x, const T* c, const T* s, std::size_t rot,
                                       bool interleaved, bool inverse) {
  std::vector<long double> y(rot);
  for (std::size_t i = 0; i < rot / 2; ++i) {
    std::size_t a, b;
    kernel_pair(i, rot, interleaved, a, b);
    const long double ci = c[i], si = inverse ? -static_cast<long double>(s[i]) : s[i];
    const long double xa = x[a], xb = x[b];
    y[a] = ci * xa - si * xb;
    y[b] = si * xa + ci * xb;
  }
  return y;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ROPE_KERNELS_HPP
