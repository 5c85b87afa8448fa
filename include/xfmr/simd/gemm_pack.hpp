// SPDX-License-Identifier: MIT
// The GEMM engine's tile shape and packing: GemmShape, GemmB, PackedA/pack_a, PackedB/pack_b.
#ifndef XFMR_SIMD_GEMM_PACK_HPP
#define XFMR_SIMD_GEMM_PACK_HPP

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "../config.hpp"
#include "transpose.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Register tile and cache blocks of the engine for one (T, Isa); a new ISA tier adds a
/// specialisation (or a generic rule) here and nothing else.
///   mr × nr: the C tile held in registers, nr = nv vectors (6 × 2 vectors: 12 accumulators,
///            2 B vectors and a broadcast of the 16 ymm registers);
///   kc:      rows of a B panel per pass (kc·nr values = 16 KiB, stays in L1);
///   k_one:   a k up to this runs as one pass (a panel of up to 24 KiB: k = 384 as one block
///            instead of 256 + 128, no partial sums; measured 7–13 % faster on Zen 3);
///   mc:      least rows of A per block; row_block(k) takes more rows, up to mc_max, while the
///            block's mc·k values stay within block_bytes (half of Zen 3's 512 KiB L2): the block
///            is read again for each B panel, so it should stay in L2 (the former 1 MiB bound let
///            it spill at k = 768: 6–8 % slower there on Zen 3). mc = 96, not less: at k = 3072
///            48-row blocks re-read the 9 MiB B too often (7 % slower than 144, 96 is as fast).
template <typename T, class Isa>
struct GemmShape {
  static constexpr Index mr = 6;
  static constexpr Index nv = 2;
  static constexpr Index nr = nv * static_cast<Index>(Vec<T, Isa>::lanes);
  static constexpr Index kc = 16384 / (nr * static_cast<Index>(sizeof(T)));
  static constexpr Index k_one = kc * 3 / 2;
  static constexpr Index mc = 96;
  static constexpr Index mc_max = 288;
  static constexpr Index block_bytes = Index(256) << 10;
  /// Rows of A per block for a product over k: a multiple of mr in [mc, mc_max].
  static constexpr Index row_block(Index k) noexcept {
    const Index fit = block_bytes / (static_cast<Index>(sizeof(T)) * (k > 0 ? k : 1));
    return std::min(mc_max, std::max(mc, fit / mr * mr));
  }
};

#if XFMR_HAS_AVX512
/// AVX-512: 32 zmm registers hold an MR × NV tile with MR·NV + NV + 1 <= 32 (accumulators, the
/// B vectors, a broadcast). XFMR_GEMM_AVX512_MR / _NV / _KC_BYTES override the measured defaults
/// (for tuning only: every translation unit of a program must agree).
#if !defined(XFMR_GEMM_AVX512_MR)
#define XFMR_GEMM_AVX512_MR 8
#endif
#if !defined(XFMR_GEMM_AVX512_NV)
#define XFMR_GEMM_AVX512_NV 3
#endif
#if !defined(XFMR_GEMM_AVX512_KC_BYTES)
#define XFMR_GEMM_AVX512_KC_BYTES 24576
#endif
template <typename T>
struct GemmShape<T, avx512_isa> {
  static constexpr Index mr = XFMR_GEMM_AVX512_MR;
  static constexpr Index nv = XFMR_GEMM_AVX512_NV;
  static_assert(mr * nv + nv + 1 <= 32, "xfmr::simd::GemmShape: the AVX-512 tile needs more than "
                                        "the 32 zmm registers");
  static constexpr Index nr = nv * static_cast<Index>(Vec<T, avx512_isa>::lanes);
  /// A kc × nr panel of B in half of the 48 KiB L1d (24 KiB: kc = 128 floats for nr = 48).
  static constexpr Index kc = XFMR_GEMM_AVX512_KC_BYTES / (nr * static_cast<Index>(sizeof(T)));
  static constexpr Index k_one = kc;
  static constexpr Index mc = 144 / mr * mr;
  static constexpr Index mc_max = 288 / mr * mr;
  static constexpr Index block_bytes = Index(1) << 20;
  static constexpr Index row_block(Index k) noexcept {
    const Index fit = block_bytes / (static_cast<Index>(sizeof(T)) * (k > 0 ? k : 1));
    return std::min(mc_max, std::max(mc, fit / mr * mr));
  }
};
#endif

/// op(B) (k×n) in the caller's memory: element (p, j) at data[p·ld + j] (row-major k×n), or at
/// data[j·ld + p] when transposed (B stored n×k row-major, as K in Q·Kᵀ).
template <typename T>
struct GemmB {
  const T* data;
  Index ld;
  bool transposed;
};

/// op(B) (k×n) packed by pack_b: panel q (columns [q·nr, q·nr + nr)) is k rows of nr values
/// (zero past n) at data + q·k·nr, row p at + p·nr. So one nr-column (k × nr) row-major block,
/// such as a transposed query tile of nr queries, IS a packed B of one panel.
template <typename T>
struct PackedB {
  const T* data;
  Index k;
  Index n;
};

/// A (m×k) packed by pack_a: row tile t (rows [t·mr, t·mr + mr)) is k columns of mr values (zero
/// past m) at data + t·k·mr, column p at + p·mr; the micro-kernel reads one tile contiguously.
template <typename T>
struct PackedA {
  const T* data;
  Index k;
  Index m;
};

/// Values pack_a writes for an (m × k) A: (m rounded up to mr) · k.
template <typename T, class Isa = native_isa>
constexpr Index packed_a_size(Index m, Index k) noexcept {
  constexpr Index mr = GemmShape<T, Isa>::mr;
  return (m + mr - 1) / mr * mr * k;
}

/// Packs A (m × k), element (i, p) at a[i·rs + p·cs], into out[packed_a_size<T, Isa>(m, k)] in
/// the PackedA layout, for gemm<Isa>(…, PackedA<T>{out, k, m}, …). out must not overlap A.
template <class Isa = native_isa, typename T>
void pack_a(Index m, Index k, const T* a, Index rs, Index cs, T* out) noexcept {
  constexpr Index mr = GemmShape<T, Isa>::mr;
  for (Index i0 = 0; i0 < m; i0 += mr) {
    const Index rows = std::min(mr, m - i0);
    T* dst = out + (i0 / mr) * k * mr;
    for (Index p = 0; p < k; ++p) {
      const T* src = a + i0 * rs + p * cs;
      for (Index r = 0; r < rows; ++r) dst[p * mr + r] = src[r * rs];
      for (Index r = rows; r < mr; ++r) dst[p * mr + r] = T(0);
    }
  }
}

/// Values pack_b writes for a (k × n) B: k · (n rounded up to nr).
template <typename T, class Isa = native_isa>
constexpr Index packed_b_size(Index k, Index n) noexcept {
  constexpr Index nr = GemmShape<T, Isa>::nr;
  return k * ((n + nr - 1) / nr * nr);
}

namespace detail {

#if XFMR_HAS_AVX2
/// Transposed panel packing with AVX2 (also the AVX-512 tier's, panels of nr = NR columns, a
/// multiple of 8 floats / 4 doubles): lanes×lanes blocks of B (lanes rows = panel columns, lanes
/// consecutive k) are loaded, transposed in registers and stored as lanes panel rows; rows of B
/// past `cols` count as zero, the last kc % lanes values of k go element by element.
template <Index NR, typename T>
XFMR_INLINE void gemm_pack_transposed_avx2(const T* b, Index ldb, Index k0, Index kc, Index j0,
                                           Index cols, T* out) noexcept {
  using V = Vec<T, avx2_isa>;
  constexpr Index L = static_cast<Index>(V::lanes), nr = NR;
  static_assert(nr % L == 0, "xfmr::simd::gemm_pack_transposed_avx2: nr must be whole vectors");
  const Index kfull = kc / L * L;
  for (Index g = 0; g < nr / L; ++g) {
    const Index jg = g * L, rows = std::max<Index>(0, std::min(L, cols - jg));
    const T* src = b + (j0 + jg) * ldb + k0;
    for (Index r0 = 0; r0 < kfull; r0 += L) {
      typename V::type x[L];
      for (Index i = 0; i < L; ++i) x[i] = i < rows ? V::load(src + i * ldb + r0) : V::zero();
      if constexpr (std::is_same_v<T, float>)
        transpose8(x);
      else
        transpose4(x);
      for (Index t = 0; t < L; ++t) V::store(out + (r0 + t) * nr + jg, x[t]);
    }
    for (Index r = kfull; r < kc; ++r)
      for (Index i = 0; i < L; ++i) out[r * nr + jg + i] = i < rows ? src[i * ldb + r] : T(0);
  }
}
#endif

/// Packs rows [k0, k0+kc) × columns [j0, j0+cols) of op(B) into out: kc rows of nr values,
/// columns past cols zero. Reads nothing outside op(B)(k×n).
template <class Isa, typename T>
XFMR_INLINE void gemm_pack_panel(GemmB<T> b, Index k0, Index kc, Index j0, Index cols,
                                 T* out) noexcept {
  using V = Vec<T, Isa>;
  constexpr Index nr = GemmShape<T, Isa>::nr, L = static_cast<Index>(V::lanes);
  if (b.transposed) {
#if XFMR_HAS_AVX2
    if constexpr (std::is_same_v<Isa, avx2_isa> || std::is_same_v<Isa, avx512_isa>) {
      gemm_pack_transposed_avx2<nr>(b.data, b.ld, k0, kc, j0, cols, out);
      return;
    }
#endif
    for (Index j = 0; j < cols; ++j) {
      const T* src = b.data + (j0 + j) * b.ld + k0;
      for (Index r = 0; r < kc; ++r) out[r * nr + j] = src[r];
    }
    for (Index j = cols; j < nr; ++j)
      for (Index r = 0; r < kc; ++r) out[r * nr + j] = T(0);
    return;
  }
  if (cols == nr) {
    for (Index r = 0; r < kc; ++r) {
      const T* src = b.data + (k0 + r) * b.ld + j0;
      for (Index t = 0; t < nr; t += L) V::store(out + r * nr + t, V::load(src + t));
    }
    return;
  }
  for (Index r = 0; r < kc; ++r) {
    const T* src = b.data + (k0 + r) * b.ld + j0;
    for (Index t = 0; t < nr; t += L) {
      const Index w = std::min(L, cols - t);
      V::store(out + r * nr + t,
               w == L ? V::load(src + t)
                      : (w > 0 ? V::load_partial(src + t, static_cast<std::size_t>(w)) : V::zero()));
    }
  }
}

}  // namespace detail

/// Packs op(B) (k × n) into out[packed_b_size<T, Isa>(k, n)] in the PackedB layout, for
/// gemm<Isa>(…, PackedB<T>{out, k, n}, …). The caller owns the buffer (weights: once; a reused
/// tile: once per reuse cycle); out must not overlap B. noexcept, no allocation.
template <class Isa = native_isa, typename T>
void pack_b(Index k, Index n, GemmB<T> b, T* out) noexcept {
  constexpr Index nr = GemmShape<T, Isa>::nr, kc = GemmShape<T, Isa>::kc;
  for (Index j0 = 0; j0 < n; j0 += nr)
    for (Index k0 = 0; k0 < k; k0 += kc)
      detail::gemm_pack_panel<Isa>(b, k0, std::min(kc, k - k0), j0, std::min(nr, n - j0),
                                   out + (j0 / nr) * k * nr + k0 * nr);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_GEMM_PACK_HPP
