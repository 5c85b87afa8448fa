// SPDX-License-Identifier: MIT
// Reference decoding of IEEE binary16 and bfloat16 bit patterns, from the definition
// (−1)^s · 2^(e−bias) · (1 + m/2^p), subnormals (−1)^s · 2^(1−bias) · m/2^p, in long double.
#ifndef XFMR_TESTS_REFERENCE_HALF_HPP
#define XFMR_TESTS_REFERENCE_HALF_HPP

#include <cmath>
#include <cstdint>
#include <limits>

namespace xfmr_ref {

/// Value of a binary16 (exponent_bits 5, mantissa_bits 10) or bfloat16 (8, 7) pattern.
/// NaN patterns give a quiet NaN (payloads are checked separately).
inline long double small_float_value(std::uint16_t bits, int exponent_bits, int mantissa_bits) {
  const int bias = (1 << (exponent_bits - 1)) - 1;
  const bool negative = (bits >> 15) & 1;
  const unsigned e = (bits >> mantissa_bits) & ((1u << exponent_bits) - 1);
  const unsigned m = bits & ((1u << mantissa_bits) - 1);
  long double v;
  if (e == (1u << exponent_bits) - 1) {
    if (m != 0) return std::numeric_limits<long double>::quiet_NaN();
    v = std::numeric_limits<long double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(static_cast<long double>(m), 1 - bias - mantissa_bits);
  } else {
    v = std::ldexp(static_cast<long double>(m + (1u << mantissa_bits)),
                   int(e) - bias - mantissa_bits);
  }
  return negative ? -v : v;
}

inline long double half_value(std::uint16_t bits) { return small_float_value(bits, 5, 10); }
inline long double bf16_value(std::uint16_t bits) { return small_float_value(bits, 8, 7); }

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_HALF_HPP
