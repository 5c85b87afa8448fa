// SPDX-License-Identifier: MIT
// Cached cos/sin tables for rotary embeddings, with exact angles.
#ifndef XFMR_DETAIL_ROPE_TABLE_HPP
#define XFMR_DETAIL_ROPE_TABLE_HPP

#include <cmath>
#include <cstdint>
#include <vector>

#include "../types.hpp"

XFMR_NAMESPACE_BEGIN
namespace detail {

/// cos/sin of p·θ_r for r < pairs. Row p holds [c_0 … c_{h−1} | s_0 … s_{h−1}] scaled by the
/// attention factor μ. Positions below `cached` are tabulated at construction; others are
/// computed on demand into caller scratch, with the same formula, so results never depend on
/// the cache size.
///
/// Exactness (SPEC §1.6): θ_r and p·θ_r are formed in double, the angle is reduced mod 2π in
/// double (2π split in two parts), and only the final cos/sin are rounded to T. No recurrence over
/// positions or pairs, so the error does not grow with p.
template <typename T>
class RopeTable {
 public:
  RopeTable() = default;
  RopeTable(std::vector<double> inv_freq, double attention_factor, Index cached)
      : m_inv_freq(std::move(inv_freq)),
        m_scale(attention_factor),
        m_pairs(static_cast<Index>(m_inv_freq.size())),
        m_cached(cached),
        m_table(static_cast<std::size_t>(cached * 2 * m_pairs)) {
    for (Index p = 0; p < cached; ++p) compute(p, m_table.data() + p * 2 * m_pairs);
  }

  Index pairs() const noexcept { return m_pairs; }
  Index cached_positions() const noexcept { return m_cached; }
  const std::vector<double>& inv_freq() const noexcept { return m_inv_freq; }

  /// Writes [cos | sin] of position p into row (2·pairs values).
  void compute(std::int64_t p, T* row) const noexcept {
    constexpr double two_pi_hi = 6.28318530717958623200;    // 2π rounded to double
    constexpr double two_pi_lo = 2.44929359829470635445e-16;  // 2π − two_pi_hi
    const double pos = static_cast<double>(p);
    for (Index r = 0; r < m_pairs; ++r) {
      const double angle = pos * m_inv_freq[static_cast<std::size_t>(r)];
      const double turns = std::nearbyint(angle / two_pi_hi);
      const double reduced = std::fma(-turns, two_pi_hi, angle) - turns * two_pi_lo;
      row[r] = static_cast<T>(m_scale * std::cos(reduced));
      row[m_pairs + r] = static_cast<T>(m_scale * std::sin(reduced));
    }
  }

  /// Row for position p: from the cache, or computed into scratch (2·pairs values).
  const T* row(std::int64_t p, T* scratch) const noexcept {
    if (p < m_cached) return m_table.data() + p * 2 * m_pairs;
    compute(p, scratch);
    return scratch;
  }

 private:
  std::vector<double> m_inv_freq;
  double m_scale = 1.0;
  Index m_pairs = 0;
  Index m_cached = 0;
  std::vector<T> m_table;
};

}  // namespace detail
XFMR_NAMESPACE_END

#endif  // XFMR_DETAIL_ROPE_TABLE_HPP
