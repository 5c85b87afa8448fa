// SPDX-License-Identifier: MIT
// The vector vocabulary Vec<T, Isa> for every ISA this build can run.
#ifndef XFMR_SIMD_VEC_HPP
#define XFMR_SIMD_VEC_HPP

#include <cstddef>

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

namespace detail {

/// Whole-vector loads and stores as one callable (load: ops(p); store: ops(p, v)), and the same
/// for the first `rest` lanes (PartialOps): a kernel body written once over an Ops parameter runs
/// its full vectors without a per-access test of whether this is the tail. Function objects, not
/// pointers: an always_inline callee must not be called indirectly.
template <class V, typename T>
struct FullOps {
  XFMR_INLINE typename V::type operator()(const T* p) const noexcept { return V::load(p); }
  XFMR_INLINE void operator()(T* p, typename V::type v) const noexcept { V::store(p, v); }
};
template <class V, typename T>
struct PartialOps {
  std::size_t rest;
  XFMR_INLINE typename V::type operator()(const T* p) const noexcept {
    return V::load_partial(p, rest);
  }
  XFMR_INLINE void operator()(T* p, typename V::type v) const noexcept {
    V::store_partial(p, v, rest);
  }
};

}  // namespace detail
}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_VEC_HPP
