// SPDX-License-Identifier: MIT
// The vector vocabulary Vec<T, Isa> for every ISA this build can run.
#ifndef XFMR_SIMD_VEC_HPP
#define XFMR_SIMD_VEC_HPP

#include "isa.hpp"
#include "vec_scalar.hpp"
#include "vec_avx2.hpp"
#include "vec_avx512.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Orders every earlier Vec<…>::stream store before any later store (sfence), so that another
/// thread that sees a later store also sees the streamed data. Call once after a streaming
/// loop, before handing its output on. noexcept; a no-op without SIMD.
XFMR_INLINE void stream_fence() noexcept {
#if XFMR_HAS_AVX2 || XFMR_HAS_AVX512
  _mm_sfence();
#endif
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_VEC_HPP
