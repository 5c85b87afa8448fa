// SPDX-License-Identifier: MIT
// Run a test body once per ISA this build compiled AND this CPU can execute: scalar_isa always,
// then every wider tier the compiler flags enabled, each only when the CPU reports its features
// at run time (a binary built on one machine may run on another). Skipped tiers are printed once
// per test binary, so a log says which ISAs a run covered.
#ifndef XFMR_TESTS_SUPPORT_ISA_LIST_HPP
#define XFMR_TESTS_SUPPORT_ISA_LIST_HPP

#include <cstdio>
#include <type_traits>

#include <xfmr/simd/isa.hpp>

namespace xfmr_test {

/// True when this CPU can run Isa's instructions (checked once, at run time).
template <class Isa>
bool cpu_supports() {
  if constexpr (std::is_same_v<Isa, xfmr::simd::scalar_isa>) {
    return true;
  } else {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if constexpr (std::is_same_v<Isa, xfmr::simd::avx2_isa>) {
      static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
      return ok;
    }
    if constexpr (std::is_same_v<Isa, xfmr::simd::avx512_isa>) {
      static const bool ok = __builtin_cpu_supports("avx512f") &&
                             __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") &&
                             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma") &&
                             // built with AVX512_BF16: the tier's bf16 kernels use it
                             (!XFMR_HAS_AVX512_BF16 || __builtin_cpu_supports("avx512bf16"));
      return ok;
    }
#endif
    return false;
  }
}

/// Prints "<name>: compiled, not run (CPU lacks it)" once per binary for a skipped tier.
template <class Isa>
void report_skipped() {
  static const bool once = (std::printf("xfmr tests: ISA %s compiled but not supported by this "
                                        "CPU: its tests are skipped\n",
                                        Isa::name),
                            true);
  (void)once;
}

/// f(scalar_isa{}), then f(tag{}) for every wider ISA compiled in and supported by the CPU.
/// Inside a generic lambda, `using Isa = decltype(isa);` recovers the tag.
template <class F>
void for_each_isa(F&& f) {
  f(xfmr::simd::scalar_isa{});
#if XFMR_HAS_AVX2
  if (cpu_supports<xfmr::simd::avx2_isa>())
    f(xfmr::simd::avx2_isa{});
  else
    report_skipped<xfmr::simd::avx2_isa>();
#endif
#if XFMR_HAS_AVX512
  if (cpu_supports<xfmr::simd::avx512_isa>())
    f(xfmr::simd::avx512_isa{});
  else
    report_skipped<xfmr::simd::avx512_isa>();
#endif
}

}  // namespace xfmr_test

#endif  // XFMR_TESTS_SUPPORT_ISA_LIST_HPP
