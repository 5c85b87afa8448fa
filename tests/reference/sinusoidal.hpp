// SPDX-License-Identifier: MIT
// Naive long-double sinusoidal position encoding, written from SPEC §3.1 without the library.
#ifndef XFMR_TESTS_REFERENCE_SINUSOIDAL_HPP
#define XFMR_TESTS_REFERENCE_SINUSOIDAL_HPP

#include <cmath>
#include <vector>

namespace xfmr_ref {

/// PE(p) over D channels: interleaved [sin, cos, sin, cos, …] or halves [sin … | cos …], with
/// frequency ω_r = base^(−2r/D).
inline std::vector<long double> sinusoid(long double p, long D, bool interleaved,
                                         long double base = 10000) {
  std::vector<long double> pe(static_cast<std::size_t>(D));
  for (long r = 0; r < D / 2; ++r) {
    const long double angle = p * std::pow(base, -2.0L * r / D);
    pe[interleaved ? 2 * r : r] = std::sin(angle);
    pe[interleaved ? 2 * r + 1 : D / 2 + r] = std::cos(angle);
  }
  return pe;
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_SINUSOIDAL_HPP
