// SPDX-License-Identifier: MIT
// Compile-time configuration: ISA detection, assertions, exceptions, the ABI namespace.
#ifndef XFMR_CONFIG_HPP
#define XFMR_CONFIG_HPP

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

// ---- ISA selection (compile time; see simd/isa.hpp) ------------------------------------------
// XFMR_FORCE_SCALAR wins; otherwise the widest ISA the compiler flags allow.
#if defined(XFMR_FORCE_SCALAR)
#define XFMR_HAS_AVX2 0
#elif defined(__AVX2__) && defined(__FMA__)
#define XFMR_HAS_AVX2 1
#else
#define XFMR_HAS_AVX2 0
#endif

// AVX-512 tier: F (the 512-bit core), BW/DQ (byte/word and float/double mask forms), VL (the
// 128/256-bit forms of the masked operations) and FMA; off whenever the AVX2 tier is off.
#if XFMR_HAS_AVX2 && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512DQ__)
#define XFMR_HAS_AVX512 1
#else
#define XFMR_HAS_AVX512 0
#endif
// bf16 dot products (vdpbf16ps) and conversions (vcvtne2ps2bf16) on top of the AVX-512 tier.
#if XFMR_HAS_AVX512 && defined(__AVX512BF16__)
#define XFMR_HAS_AVX512_BF16 1
#else
#define XFMR_HAS_AVX512_BF16 0
#endif

#if XFMR_HAS_AVX512
#define XFMR_ISA_TAG avx512
#elif XFMR_HAS_AVX2
#define XFMR_ISA_TAG avx2
#else
#define XFMR_ISA_TAG scalar
#endif

// ---- ABI namespace ----------------------------------------------------------------------------
// Translation units built with different ISA flags link different symbols instead of letting the
// linker keep one copy and run AVX2 code on a machine without it. Users still write xfmr::Rope.
#define XFMR_ABI_CONCAT_(a, b) a##b
#define XFMR_ABI_CONCAT(a, b) XFMR_ABI_CONCAT_(a, b)
#define XFMR_ABI_NAMESPACE XFMR_ABI_CONCAT(v0_, XFMR_ISA_TAG)
#define XFMR_NAMESPACE_BEGIN \
  namespace xfmr {           \
  inline namespace XFMR_ABI_NAMESPACE {
#define XFMR_NAMESPACE_END \
  }                        \
  }

// ---- Assertions: kernel preconditions, on in tests and debug builds ---------------------------
#if !defined(XFMR_ENABLE_ASSERTS) && !defined(NDEBUG)
#define XFMR_ENABLE_ASSERTS 1
#endif
#if defined(XFMR_ENABLE_ASSERTS) && XFMR_ENABLE_ASSERTS
#define XFMR_ASSERT(cond)                                                                      \
  ((cond) ? static_cast<void>(0)                                                               \
          : (std::fprintf(stderr, "%s:%d: xfmr assertion failed: %s\n", __FILE__, __LINE__, #cond), \
             std::abort()))
#else
#define XFMR_ASSERT(cond) static_cast<void>(0)
#endif

// ---- Exceptions, or abort with the message under -fno-exceptions ------------------------------
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#define XFMR_THROW(exception) throw exception
#else
#define XFMR_THROW(exception) \
  (std::fprintf(stderr, "xfmr: %s\n", (exception).what()), std::abort())
#endif

// ---- GCC 12's false warnings inside its own x86 intrinsics ------------------------------------
// GCC 12.0-12.2 (bug 105593, fixed in 12.3): _mm512_undefined_pd() and friends are written
// `__m512d __Y = __Y;`, and once Eigen's GEMM packing (gemm_pack_rhs → ptranspose →
// _mm512_extractf64x4_pd) is inlined, -Wmaybe-uninitialized and -Wuninitialized fire inside
// avx512fintrin.h / avxintrin.h, system header or not: hundreds of lines per translation unit
// that multiplies matrices under -mavx512f. A middle-end warning is dropped when a location of
// its inlining chain lies in a region where the pragma ignores it, so ignoring the two around
// the first inclusion of <immintrin.h> silences exactly the warnings raised inside the
// intrinsics, never one in xfmr's code or the caller's (measured: pragmas around <Eigen/Core> or
// <immintrin.h> both work; -Wno-maybe-uninitialized on the target would hide everything). It
// takes effect only where <immintrin.h> is first included: every xfmr header includes
// config.hpp before Eigen (detail/eigen.hpp), so include an xfmr header before Eigen.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12 && \
    (defined(__x86_64__) || defined(__i386__))
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#endif

// XFMR_INLINE_LAMBDA goes between a lambda's parameters and its body: a row kernel's vector
// function, a lambda with several call sites, is otherwise left out of line by GCC and its
// vectors pass through memory (measured: exp's row 3.5× slower).
#if defined(__GNUC__)
#define XFMR_INLINE inline __attribute__((always_inline))
#define XFMR_INLINE_LAMBDA __attribute__((always_inline))
#define XFMR_NOINLINE __attribute__((noinline))
#define XFMR_COLD __attribute__((cold, noinline))
#else
#define XFMR_INLINE inline
#define XFMR_INLINE_LAMBDA
#define XFMR_NOINLINE
#define XFMR_COLD
#endif

// ---- The index type and the scalar types every layer shares (simd/ included: no Eigen here) ---
XFMR_NAMESPACE_BEGIN
/// Sizes, strides and offsets: signed, as Eigen::Index (types.hpp checks they are the same type).
using Index = std::ptrdiff_t;
namespace detail {
template <typename T>
inline constexpr bool is_real_v = std::is_same_v<T, float> || std::is_same_v<T, double>;
}  // namespace detail
XFMR_NAMESPACE_END

#endif  // XFMR_CONFIG_HPP
