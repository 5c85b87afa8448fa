// SPDX-License-Identifier: MIT
// Row kernels for attention with few query rows against many keys (decoding, grouped-query):
// every key and value row is loaded once for up to four query rows, so a K/V head is streamed
// once for its whole query group. K and V rows are T (as the queries) or bf16 (T = float),
// widened in registers: products of a float q with a bf16 k are exact in float, so a bf16 cache
// gives the float result on the rounded keys and values. Raw pointers, masked tails, no
// allocation.
#ifndef XFMR_SIMD_DECODE_HPP
#define XFMR_SIMD_DECODE_HPP

#include <cstddef>
#include <cstring>
#include <type_traits>

#include "../config.hpp"
#include "bf16.hpp"
#include "prefetch.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Query rows one call of rows_dot_keys / rows_accumulate_values serves (a register block).
inline constexpr std::size_t kDecodeRows = 4;

namespace detail {

// Keys (value rows) ahead of the one being read that are prefetched: a head's slice of a K/V
// cache row is one short run per row, rows a page or more apart, which the hardware
// prefetchers do not follow; 8 rows (two of tile_group's 4-key blocks) measured faster on Zen 3
// than 0, 16, 32 or 64.
inline constexpr std::size_t kDecodePrefetchRows = 8;

// Loads of K/V rows as vectors of the query type: KT = T as they are, KT = bf16 (T = float)
// widened in registers (exact: a bf16 is the upper half of a float).
template <class Isa, typename T, typename KT>
struct KvLoad {
  static_assert(std::is_same_v<T, KT>, "xfmr::simd: K/V rows must be T or bf16 (T = float)");
  using V = Vec<T, Isa>;
  static XFMR_INLINE typename V::type load(const T* p) noexcept { return V::load(p); }
  static XFMR_INLINE typename V::type load_partial(const T* p, std::size_t n) noexcept {
    return V::load_partial(p, n);
  }
};

template <class Isa>
struct KvLoad<Isa, float, bf16> {
  using V = Vec<float, Isa>;
  static XFMR_INLINE typename V::type load(const bf16* p) noexcept {
#if XFMR_HAS_AVX512
    if constexpr (std::is_same_v<Isa, avx512_isa>)
      return bf16_widen_avx512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#endif
#if XFMR_HAS_AVX2
    if constexpr (std::is_same_v<Isa, avx2_isa>)
      return bf16_widen_avx2(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#endif
    if constexpr (std::is_same_v<Isa, scalar_isa>) return to_float(*p);
  }
  // The first n < lanes values, the rest zero; nothing past p[n − 1] read.
  static XFMR_INLINE typename V::type load_partial(const bf16* p, std::size_t n) noexcept {
#if XFMR_HAS_AVX512
    if constexpr (std::is_same_v<Isa, avx512_isa>)
      return bf16_widen_avx512(
          _mm256_maskz_loadu_epi16(static_cast<__mmask16>((1u << n) - 1u), p));
#endif
#if XFMR_HAS_AVX2
    if constexpr (std::is_same_v<Isa, avx2_isa>) {
      std::uint16_t tmp[8] = {};
      std::memcpy(tmp, p, n * sizeof(bf16));
      return bf16_widen_avx2(_mm_loadu_si128(reinterpret_cast<const __m128i*>(tmp)));
    }
#endif
    if constexpr (std::is_same_v<Isa, scalar_isa>) return n ? to_float(*p) : 0.0f;
  }
};

// Keys per step of rows_dot_keys_impl for R rows: R·KS <= 8 accumulators (AVX2 has 16
// registers), a multiple of 4 where R allows, for reduce_add4. One row takes 2 keys, not 8 or
// 4: with those GCC vectorizes the scalar tier's float and bf16 instantiations differently
// (FMA contraction, measured), and their bits must agree.
template <std::size_t R>
inline constexpr std::size_t kDotKeys = R == 3 || R == 1 ? 2 : 8 / R;

template <class Isa, std::size_t R, typename T, typename KT>
XFMR_INLINE void rows_dot_keys_impl(const T* q, std::size_t ldq, const KT* k, std::size_t ldk,
                                    std::size_t nk, std::size_t d, T* s,
                                    std::size_t lds) noexcept {
  using V = Vec<T, Isa>;
  using L = KvLoad<Isa, T, KT>;
  using VT = typename V::type;
  constexpr std::size_t W = V::lanes, KS = kDotKeys<R>, N = R * KS, N4 = (N + 3) / 4 * 4;
  const std::size_t dfull = d / W * W, rest = d - dfull;
  const auto ahead = static_cast<std::ptrdiff_t>(kDecodePrefetchRows * ldk * sizeof(KT));
  std::size_t j = 0;
  // KS keys at a time: R·KS independent FMA chains a[r·KS + u], each k vector loaded once for
  // the R rows; then the R·KS sums by fours in one transposing add tree each (reduce_add4).
  for (; j + KS <= nk; j += KS) {
    const KT* kj = k + j * ldk;
    for (std::size_t u = 0; u < KS; ++u) prefetch_bytes(kj + u * ldk, ahead, d * sizeof(KT));
    VT a[N4];
    for (std::size_t i = 0; i < N4; ++i) a[i] = V::zero();
    for (std::size_t p = 0; p < dfull; p += W) {
      VT x[KS];
      for (std::size_t u = 0; u < KS; ++u) x[u] = L::load(kj + u * ldk + p);
      for (std::size_t r = 0; r < R; ++r) {
        const VT qv = V::load(q + r * ldq + p);
        for (std::size_t u = 0; u < KS; ++u) a[r * KS + u] = V::fmadd(qv, x[u], a[r * KS + u]);
      }
    }
    if (rest) {
      VT x[KS];
      for (std::size_t u = 0; u < KS; ++u) x[u] = L::load_partial(kj + u * ldk + dfull, rest);
      for (std::size_t r = 0; r < R; ++r) {
        const VT qv = V::load_partial(q + r * ldq + dfull, rest);
        for (std::size_t u = 0; u < KS; ++u) a[r * KS + u] = V::fmadd(qv, x[u], a[r * KS + u]);
      }
    }
    T sum[N4];
    for (std::size_t i = 0; i < N4; i += 4)
      V::reduce_add4(a[i], a[i + 1], a[i + 2], a[i + 3], sum + i);
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t u = 0; u < KS; ++u) s[r * lds + j + u] = sum[r * KS + u];
  }
  // The last nk mod KS keys one at a time.
  for (; j < nk; ++j) {
    const KT* kj = k + j * ldk;
    VT a[R];
    for (std::size_t r = 0; r < R; ++r) a[r] = V::zero();
    for (std::size_t p = 0; p < dfull; p += W) {
      const VT x = L::load(kj + p);
      for (std::size_t r = 0; r < R; ++r) a[r] = V::fmadd(V::load(q + r * ldq + p), x, a[r]);
    }
    if (rest) {
      const VT x = L::load_partial(kj + dfull, rest);
      for (std::size_t r = 0; r < R; ++r)
        a[r] = V::fmadd(V::load_partial(q + r * ldq + dfull, rest), x, a[r]);
    }
    for (std::size_t r = 0; r < R; ++r) s[r * lds + j] = V::reduce_add(a[r]);
  }
}

// acc_r[c, c + C·W) += Σ_{j < nk} p_r[j]·v_j[c, c + C·W) for r < R, with the C·R accumulators in
// registers over a block of keys (Partial: one vector of `rest` lanes).
template <class Isa, std::size_t R, std::size_t C, bool Partial, typename T, typename KT>
XFMR_INLINE void rows_axpy_chunk(const T* p, std::size_t ldp, const KT* v, std::size_t ldv,
                                 std::size_t nk, std::size_t c, std::size_t rest, T* acc,
                                 std::size_t ldacc) noexcept {
  using V = Vec<T, Isa>;
  using L = KvLoad<Isa, T, KT>;
  using VT = typename V::type;
  constexpr std::size_t W = V::lanes;
  const auto load = [rest](const T* x) { return Partial ? V::load_partial(x, rest) : V::load(x); };
  const auto load_v = [rest](const KT* x) {
    return Partial ? L::load_partial(x, rest) : L::load(x);
  };
  VT a[R][C];
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t u = 0; u < C; ++u) a[r][u] = load(acc + r * ldacc + c + u * W);
  for (std::size_t j = 0; j < nk; ++j) {
    const KT* vj = v + j * ldv + c;
    VT x[C];
    for (std::size_t u = 0; u < C; ++u) x[u] = load_v(vj + u * W);
    for (std::size_t r = 0; r < R; ++r) {
      const VT pr = V::set1(p[r * ldp + j]);
      for (std::size_t u = 0; u < C; ++u) a[r][u] = V::fmadd(pr, x[u], a[r][u]);
    }
  }
  for (std::size_t r = 0; r < R; ++r)
    for (std::size_t u = 0; u < C; ++u) {
      if (Partial)
        V::store_partial(acc + r * ldacc + c + u * W, a[r][u], rest);
      else
        V::store(acc + r * ldacc + c + u * W, a[r][u]);
    }
}

template <class Isa, std::size_t R, typename T, typename KT>
XFMR_INLINE void rows_accumulate_values_impl(const T* p, std::size_t ldp, const KT* v,
                                             std::size_t ldv, std::size_t nk, std::size_t dv,
                                             T* acc, std::size_t ldacc) noexcept {
  constexpr std::size_t W = Vec<T, Isa>::lanes;
  // Keys in blocks small enough that the block's value rows stay in L1 across the column
  // chunks (the accumulators are loaded and stored once per block and chunk).
  constexpr std::size_t kKeyBlock = 16;
  for (std::size_t j0 = 0; j0 < nk; j0 += kKeyBlock) {
    const std::size_t nb = nk - j0 < kKeyBlock ? nk - j0 : kKeyBlock;
    const T* pb = p + j0;
    const KT* vb = v + j0 * ldv;
    const auto ahead = static_cast<std::ptrdiff_t>(kDecodePrefetchRows * ldv * sizeof(KT));
    for (std::size_t j = 0; j < nb; ++j) prefetch_bytes(vb + j * ldv, ahead, dv * sizeof(KT));
    std::size_t c = 0;
    for (; c + 2 * W <= dv; c += 2 * W)
      rows_axpy_chunk<Isa, R, 2, false>(pb, ldp, vb, ldv, nb, c, 0, acc, ldacc);
    if (c + W <= dv) rows_axpy_chunk<Isa, R, 1, false>(pb, ldp, vb, ldv, nb, c, 0, acc, ldacc), c += W;
    if (c < dv) rows_axpy_chunk<Isa, R, 1, true>(pb, ldp, vb, ldv, nb, c, dv - c, acc, ldacc);
  }
}

}  // namespace detail

/// Scores of R = rows <= kDecodeRows query rows against nk keys:
///   s[r·lds + j] = Σ_{p < d} q[r·ldq + p]·k[j·ldk + p]   (r < rows, j < nk).
/// Each key row is loaded once for all the rows (8/R keys per step, 8 FMA chains, their sums by
/// fours in one transposing add tree; 2 keys for R = 1 and 3). s must not overlap q or k. K rows
/// are T, or bf16 when T = float (widened in registers: the products are exact, as on float keys
/// of the same values). noexcept; rows == 0 or nk == 0 does nothing.
template <class Isa, typename T, typename KT = T>
void rows_dot_keys(std::size_t rows, const T* q, std::size_t ldq, const KT* k, std::size_t ldk,
                   std::size_t nk, std::size_t d, T* s, std::size_t lds) noexcept {
  switch (rows) {
    case 1: detail::rows_dot_keys_impl<Isa, 1>(q, ldq, k, ldk, nk, d, s, lds); break;
    case 2: detail::rows_dot_keys_impl<Isa, 2>(q, ldq, k, ldk, nk, d, s, lds); break;
    case 3: detail::rows_dot_keys_impl<Isa, 3>(q, ldq, k, ldk, nk, d, s, lds); break;
    case 4: detail::rows_dot_keys_impl<Isa, 4>(q, ldq, k, ldk, nk, d, s, lds); break;
    default: break;
  }
}

/// Weighted sums of nk value rows into R = rows <= kDecodeRows accumulator rows:
///   acc[r·ldacc + c] += Σ_{j < nk} p[r·ldp + j]·v[j·ldv + c]   (r < rows, c < dv).
/// Each value row is loaded once for all the rows (keys in blocks of 16, 2·R accumulators of
/// a column chunk in registers). V rows are T, or bf16 when T = float (widened in registers).
/// acc must not overlap p or v. noexcept.
template <class Isa, typename T, typename KT = T>
void rows_accumulate_values(std::size_t rows, const T* p, std::size_t ldp, const KT* v,
                            std::size_t ldv, std::size_t nk, std::size_t dv, T* acc,
                            std::size_t ldacc) noexcept {
  switch (rows) {
    case 1: detail::rows_accumulate_values_impl<Isa, 1>(p, ldp, v, ldv, nk, dv, acc, ldacc); break;
    case 2: detail::rows_accumulate_values_impl<Isa, 2>(p, ldp, v, ldv, nk, dv, acc, ldacc); break;
    case 3: detail::rows_accumulate_values_impl<Isa, 3>(p, ldp, v, ldv, nk, dv, acc, ldacc); break;
    case 4: detail::rows_accumulate_values_impl<Isa, 4>(p, ldp, v, ldv, nk, dv, acc, ldacc); break;
    default: break;
  }
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_DECODE_HPP
