// SPDX-License-Identifier: MIT
// Register-blocked GEMM micro-kernels for thin attention tiles: C = α·A·Bᵀ + β·C and α·A·B + β·C.
#ifndef XFMR_SIMD_GEMM_HPP
#define XFMR_SIMD_GEMM_HPP

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "../config.hpp"
#include "transpose.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

// Scheme (GotoBLAS/BLIS, as detail::panel_gemm in heads/global_pointer.hpp): B is packed, one
// column panel of nr = 2 vectors at a time and kc rows of K at a time, into a 16 KiB stack buffer
// that stays in L1; then every mr = 6 row tile of C in a block of mc rows runs over it with 2·mr accumulators in
// registers, rows of A broadcast straight from the caller's row-major matrix (no A packing:
// A's rows are short, K = head_dim, and stream from L1/L2). For gemm_nt the packing is a
// transpose (B is n×k row-major, the panel is k-major; in registers, 8×8 blocks, with AVX2). Tails: rows by a shorter tile, columns by
// masked loads/stores, so nothing outside C(m×n) is read or written.
// Accumulation order: in k order within a kc block, blocks added in order.
template <typename T, class Isa>
struct GemmShape {
  static constexpr Index mr = 6;
  static constexpr Index nr = 2 * static_cast<Index>(Vec<T, Isa>::lanes);
  static constexpr Index kc = 16384 / (nr * static_cast<Index>(sizeof(T)));  // panel: 16 KiB
  static constexpr Index mc = 144;  // rows of A per block: mc·kc values stay in L2 across panels
};

#if XFMR_HAS_AVX2
/// gemm_nt's panel packing with AVX2: lanes×lanes blocks of B (lanes rows = panel columns, lanes
/// consecutive k) are loaded, transposed in registers and stored as lanes panel rows; rows of B
/// past `cols` count as zero, the last kc % lanes values of k go element by element.
template <typename T>
XFMR_INLINE void gemm_pack_transposed_avx2(const T* b, Index ldb, Index k0, Index kc, Index j0,
                                           Index cols, T* out) noexcept {
  using V = Vec<T, avx2_isa>;
  constexpr Index L = static_cast<Index>(V::lanes), nr = 2 * L;
  const Index kfull = kc / L * L;
  for (Index g = 0; g < 2; ++g) {
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

/// Packs rows [k0, k0+kc) × columns [j0, j0+cols) of op(B) into out (kc rows of nr values;
/// columns past cols are zero). TransB: element (r, j) of op(B) is b[j·ldb + r], else b[r·ldb + j].
template <typename T, class Isa, bool TransB>
XFMR_INLINE void gemm_pack_panel(const T* b, Index ldb, Index k0, Index kc, Index j0, Index cols,
                                 T* out) noexcept {
  constexpr Index nr = GemmShape<T, Isa>::nr;
  if constexpr (TransB) {
#if XFMR_HAS_AVX2
    if constexpr (std::is_same_v<Isa, avx2_isa>) {
      gemm_pack_transposed_avx2(b, ldb, k0, kc, j0, cols, out);
      return;
    }
#endif
    for (Index j = 0; j < cols; ++j) {
      const T* src = b + (j0 + j) * ldb + k0;
      for (Index r = 0; r < kc; ++r) out[r * nr + j] = src[r];
    }
    for (Index j = cols; j < nr; ++j)
      for (Index r = 0; r < kc; ++r) out[r * nr + j] = T(0);
  } else {
    using V = Vec<T, Isa>;
    constexpr auto L = static_cast<Index>(V::lanes);
    if (cols == nr) {
      for (Index r = 0; r < kc; ++r) {
        const T* src = b + (k0 + r) * ldb + j0;
        V::store(out + r * nr, V::load(src));
        V::store(out + r * nr + L, V::load(src + L));
      }
    } else {
      const auto n0 = static_cast<std::size_t>(std::min(cols, L));
      const auto n1 = static_cast<std::size_t>(cols) - n0;
      for (Index r = 0; r < kc; ++r) {
        const T* src = b + (k0 + r) * ldb + j0;
        V::store(out + r * nr, V::load_partial(src, n0));
        V::store(out + r * nr + L, n1 > 0 ? V::load_partial(src + L, n1) : V::zero());
      }
    }
  }
}

/// C tile (MR × ncols, ncols <= nr) from A rows (MR × kc) and a packed panel (kc × nr):
/// first kc block: c = α·acc + β·c (β == 0: c not read); later blocks: c += α·acc.
template <class Isa, typename T, int MR>
XFMR_INLINE void gemm_tile(const T* a, Index lda, const T* b, Index kc, T* c, Index ldc,
                           std::size_t ncols, T alpha, T beta, bool first) noexcept {
  using V = Vec<T, Isa>;
  constexpr std::size_t L = V::lanes;
  typename V::type acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = acc1[r] = V::zero();
  const T* ar[MR];
  for (int r = 0; r < MR; ++r) ar[r] = a + r * lda;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
  for (Index k = 0; k < kc; ++k) {
    const auto b0 = V::load(b + k * 2 * L), b1 = V::load(b + k * 2 * L + L);
    for (int r = 0; r < MR; ++r) {
      const auto av = V::set1(ar[r][k]);
      acc0[r] = V::fmadd(av, b0, acc0[r]);
      acc1[r] = V::fmadd(av, b1, acc1[r]);
    }
  }
  const auto va = V::set1(alpha), vb = V::set1(beta);
  const bool read_c = !first || beta != T(0);
  // out = α·acc + (first ? β·c : c)
  auto combine = [&](typename V::type acc, typename V::type cv) {
    const auto s = V::mul(va, acc);
    if (!read_c) return s;
    return first ? V::fmadd(vb, cv, s) : V::add(s, cv);
  };
  if (ncols == 2 * L) {
    for (int r = 0; r < MR; ++r) {
      T* cr = c + r * ldc;
      const auto c0 = read_c ? V::load(cr) : V::zero();
      const auto c1 = read_c ? V::load(cr + L) : V::zero();
      V::store(cr, combine(acc0[r], c0));
      V::store(cr + L, combine(acc1[r], c1));
    }
  } else {
    const std::size_t n0 = ncols < L ? ncols : L, n1 = ncols - n0;
    for (int r = 0; r < MR; ++r) {
      T* cr = c + r * ldc;
      const auto c0 = read_c ? V::load_partial(cr, n0) : V::zero();
      V::store_partial(cr, combine(acc0[r], c0), n0);
      if (n1 > 0) {
        const auto c1 = read_c ? V::load_partial(cr + L, n1) : V::zero();
        V::store_partial(cr + L, combine(acc1[r], c1), n1);
      }
    }
  }
}

template <int N>
using GemmRows = std::integral_constant<int, N>;

template <typename T, class Isa, bool TransB>
void gemm_driver(Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
                 T beta, T* c, Index ldc) noexcept {
  static_assert(xfmr::detail::is_real_v<T>, "xfmr::simd::gemm: T must be float or double");
  using S = GemmShape<T, Isa>;
  if (m <= 0 || n <= 0) return;
  if (k <= 0 || alpha == T(0)) {  // C = β·C (β == 0: C not read)
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
    return;
  }
  alignas(64) T panel[S::kc * S::nr];
  // One packed panel (columns j0.., k rows k0..) against rows [i0, i0 + mb) of A and C.
  auto run_rows = [&](Index i0, Index mb, Index j0, Index cols, Index k0, Index kc) {
    const T* ak = a + i0 * lda + k0;
    T* cj = c + i0 * ldc + j0;
    const bool first = k0 == 0;
    auto tile = [&](auto rows_tag, Index i) {
      gemm_tile<Isa, T, decltype(rows_tag)::value>(ak + i * lda, lda, panel, kc, cj + i * ldc, ldc,
                                                   static_cast<std::size_t>(cols), alpha, beta,
                                                   first);
    };
    Index i = 0;
    for (; i + S::mr <= mb; i += S::mr) tile(GemmRows<6>{}, i);
    switch (mb - i) {  // the last rows < mr: a shorter tile, nothing past mb
      case 5: tile(GemmRows<5>{}, i); break;
      case 4: tile(GemmRows<4>{}, i); break;
      case 3: tile(GemmRows<3>{}, i); break;
      case 2: tile(GemmRows<2>{}, i); break;
      case 1: tile(GemmRows<1>{}, i); break;
      default: break;
    }
  };
  for (Index i0 = 0; i0 < m; i0 += S::mc) {
    const Index mb = std::min(S::mc, m - i0);
    for (Index j0 = 0; j0 < n; j0 += S::nr) {
      const Index cols = std::min(S::nr, n - j0);
      for (Index k0 = 0; k0 < k; k0 += S::kc) {
        const Index kc = std::min(S::kc, k - k0);
        gemm_pack_panel<T, Isa, TransB>(b, ldb, k0, kc, j0, cols, panel);
        run_rows(i0, mb, j0, cols, k0, kc);
      }
    }
  }
}

}  // namespace detail

/// C(m×n) = α·A(m×k)·B(n×k)ᵀ + β·C: the Q·Kᵀ score tile. Row-major, any leading dimensions
/// (lda >= k, ldb >= k, ldc >= n), no alignment required. β == 0: C is not read (may hold NaN);
/// α == 0 or k == 0: A and B are not read, C = β·C. m, n, k >= 0; nothing outside C(m×n) is
/// written. C must not overlap A or B. No allocation (a 16 KiB stack buffer), thread-safe.
template <typename T, class Isa = simd::native_isa>
void gemm_nt(Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
             T beta, T* c, Index ldc) noexcept {
  detail::gemm_driver<T, Isa, true>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// C(m×n) = α·A(m×k)·B(k×n) + β·C: the P·V tile. Same conventions as gemm_nt (ldb >= n).
template <typename T, class Isa = simd::native_isa>
void gemm_nn(Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
             T beta, T* c, Index ldc) noexcept {
  detail::gemm_driver<T, Isa, false>(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_GEMM_HPP
