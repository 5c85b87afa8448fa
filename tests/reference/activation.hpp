// SPDX-License-Identifier: MIT
// Long-double references for the activations (simd/activation.hpp, simd/erf.hpp), written in
// forms without cancellation so they stay accurate in the tails: the tanh form and SiLU as
// x·σ(t) = x/(1 + e^{−t}) (algebraically ½·x·(1 + tanh(t/2))), the erf form as ½·x·erfc(−x/√2).
#ifndef XFMR_TESTS_REFERENCE_ACTIVATION_HPP
#define XFMR_TESTS_REFERENCE_ACTIVATION_HPP

#include <cmath>

namespace xfmr_ref {

inline long double gelu_erf(long double x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0L;
  return 0.5L * x * std::erfc(-x / std::sqrt(2.0L));
}

/// ½·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), as x/(1 + e^{−2u}).
inline long double gelu_tanh(long double x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0L;
  const long double u = std::sqrt(2.0L / 3.141592653589793238462643383279502884L) *
                        (x + 0.044715L * x * x * x);
  return x / (1.0L + std::exp(-2.0L * u));
}

/// The formula as HF and PyTorch write it (cancels for x ≪ 0; for checking the rewrite).
inline long double gelu_tanh_textbook(long double x) {
  const long double u = std::sqrt(2.0L / 3.141592653589793238462643383279502884L) *
                        (x + 0.044715L * x * x * x);
  return 0.5L * x * (1.0L + std::tanh(u));
}

inline long double silu(long double x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0L;
  return x / (1.0L + std::exp(-x));
}

inline long double relu(long double x) { return x > 0 ? x : 0.0L; }

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_ACTIVATION_HPP
