// SPDX-License-Identifier: MIT
// Naive multilabel categorical cross-entropy references in long double: the pairwise/threshold
// form (every negative below every positive, threshold s_0 = 0) and the soft-label sums.
#ifndef XFMR_TESTS_REFERENCE_MULTILABEL_CE_HPP
#define XFMR_TESTS_REFERENCE_MULTILABEL_CE_HPP

#include <cmath>
#include <vector>

namespace xfmr_ref {

/// log Σ_{i ∈ Ω−∪{0}} Σ_{j ∈ Ω+∪{0}} e^{s_i − s_j}, s_0 = 0, masked (−inf) classes left out.
/// O(C²), no shifting: keep |s| below ~40.
inline long double zlpr_pairwise(const std::vector<double>& s, const std::vector<int>& y) {
  std::vector<long double> neg{0.0L}, pos{0.0L};  // the threshold class in both
  for (std::size_t c = 0; c < s.size(); ++c) {
    if (std::isinf(s[c]) && s[c] < 0) continue;
    (y[c] ? pos : neg).push_back(static_cast<long double>(s[c]));
  }
  long double sum = 0.0L;
  for (long double si : neg)
    for (long double sj : pos) sum += std::exp(si - sj);
  return std::log(sum);
}

/// log(1 + Σ (1 − y_c) e^{s_c}) + log(1 + Σ y_c e^{−s_c}), masked classes left out.
inline long double zlpr_soft(const std::vector<double>& s, const std::vector<double>& y) {
  long double a = 1.0L, b = 1.0L;
  for (std::size_t c = 0; c < s.size(); ++c) {
    if (std::isinf(s[c]) && s[c] < 0) continue;
    a += (1.0L - y[c]) * std::exp(static_cast<long double>(s[c]));
    b += static_cast<long double>(y[c]) * std::exp(-static_cast<long double>(s[c]));
  }
  return std::log(a) + std::log(b);
}

}  // namespace xfmr_ref

#endif  // XFMR_TESTS_REFERENCE_MULTILABEL_CE_HPP
