// SPDX-License-Identifier: MIT
// ISA tags: empty structs naming an instruction set; kernels are templates over them.
#ifndef XFMR_SIMD_ISA_HPP
#define XFMR_SIMD_ISA_HPP

#include "../config.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Portable C++; always compiled, so tests compare every SIMD path against it.
struct scalar_isa {
  static constexpr const char* name = "scalar";
};
/// AVX2 + FMA, 256-bit vectors.
struct avx2_isa {
  static constexpr const char* name = "avx2";
};
/// AVX-512 F/BW/VL/DQ + FMA, 512-bit vectors, tails by k-masks.
struct avx512_isa {
  static constexpr const char* name = "avx512";
};
// Slot for later: a NEON path ships only once a test runs it on real or emulated hardware
// (DESIGN.md §3).

#if XFMR_HAS_AVX512
using native_isa = avx512_isa;
#elif XFMR_HAS_AVX2
using native_isa = avx2_isa;
#else
using native_isa = scalar_isa;
#endif

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_ISA_HPP
