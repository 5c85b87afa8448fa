// SPDX-License-Identifier: MIT
// The GEMM engine: C = epilogue(α·A·op(B) + β·C), one register-tiled micro-kernel over Vec<T, Isa>
// for float and double, B packed into column panels (by the call, or once ahead: prepacked B),
// an epilogue applied on the register tile before the store. Every GEMM of the library runs here:
// softmax attention tiles, Performer, GlobalPointer, the whitening Gram and transform.
#ifndef XFMR_SIMD_GEMM_HPP
#define XFMR_SIMD_GEMM_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../config.hpp"
#include "gemm_epilogue.hpp"
#include "gemm_pack.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Which entries of C a call computes.
///   Lower: only register tiles holding an entry with row >= column run (the symmetric Gram
///          XᵀX); tiles wholly above the diagonal are neither read nor written; entries above
///          the diagonal inside a computed tile are written too.
///   Upper: in each nr-column panel [j0, j0 + w), only rows < j0 + w run (the upper triangle of
///          GlobalPointer's masked scores); rows below are neither read nor written; entries
///          below the diagonal in the rows that run are written too.
enum class GemmPart { Full, Lower, Upper };

/// A with element (i, p) at data[i·row_stride + p·col_stride]: row-major (row_stride = lda,
/// col_stride = 1) or transposed storage (row_stride = 1, col_stride = lda), or any other strides.
/// A is read in place (not packed): one broadcast per row and k. See PackedA for the packed form.
template <typename T>
struct GemmA {
  const T* data;
  Index row_stride;
  Index col_stride;
};

/// A row-major with a unit column stride known at compile time: element (i, p) at data[i·ld + p].
/// GemmA compiles the engine twice (a unit column stride and any other, chosen at run time);
/// this compiles it once. Otherwise the same as GemmA{data, ld, 1}.
template <typename T>
struct GemmRowMajorA {
  const T* data;
  Index ld;
};

namespace detail {

/// How a micro-kernel call ends: Only (K in one block: finish into C), First / Middle (more
/// blocks follow: store or add the sums into the partial buffer), Last (add the partial sums,
/// finish into C).
enum class GemmPhase { Only, First, Middle, Last };

template <class Isa, typename T, int MR, int NV, class Epi>
XFMR_INLINE void gemm_finish(typename Vec<T, Isa>::type (&acc)[MR][NV], T* part, GemmPhase phase,
                             T alpha, T beta, T* c, Index ldc, Index i0, Index j0, Index ncols,
                             const Epi& epi) noexcept;

/// C is read at the end (β ≠ 0): when it lives in L3 (a large Gram accumulated block by block)
/// its lines arrive during the k loop instead of stalling the stores.
template <int MR, typename T>
XFMR_INLINE void gemm_prefetch_c(GemmPhase phase, T beta, const T* c, Index ldc,
                                 Index ncols) noexcept {
#if defined(__GNUC__)
  if (beta != T(0) && (phase == GemmPhase::Only || phase == GemmPhase::Last))
    for (int r = 0; r < MR; ++r) {
      __builtin_prefetch(c + r * ldc, 1);
      __builtin_prefetch(c + r * ldc + ncols - 1, 1);
    }
#else
  (void)phase, (void)beta, (void)c, (void)ldc, (void)ncols;
#endif
}

/// The micro-kernel: an MR × (NV·lanes) tile, acc[r][t] += A(r, p)·panel(p, t·lanes..) for p < kc,
/// in registers; per k: NV loads of the panel, MR broadcasts of A, MR·NV FMAs. Finish: for each
/// vector of ncols (<= NV·lanes) columns of C, v = α·acc + β·C (β == 0: C not read), then
/// v = epi(v, …), then a store (masked on the tail: nothing past ncols is touched).
/// part: MR rows of NV·lanes partial sums (row stride NV·lanes) for the multi-block phases.
/// RS, CS: Index, or std::integral_constant<Index, s> for a stride known at compile time (unit
/// column stride of a row-major A, the packed A's constant strides): fewer live registers and
/// plain base + index addressing in the k loop.
template <class Isa, typename T, int MR, int NV, class Epi, class RS, class CS>
XFMR_INLINE void gemm_micro(Index kc, const T* a, RS rsa, CS csa, const T* b, T* part,
                            GemmPhase phase, T alpha, T beta, T* c, Index ldc, Index i0, Index j0,
                            Index ncols, const Epi& epi) noexcept {
  using V = Vec<T, Isa>;
  using R = typename V::type;
  constexpr Index L = static_cast<Index>(V::lanes), NR = NV * L;
  R acc[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int t = 0; t < NV; ++t) acc[r][t] = V::zero();
  const T* ar[MR];  // row r of the tile at ar[r][p·csa]
  for (int r = 0; r < MR; ++r) ar[r] = a + r * static_cast<Index>(rsa);
  gemm_prefetch_c<MR>(phase, beta, c, ldc, ncols);
  // Unrolled by 4 (GCC): measured faster than 1; pinning the B vectors in registers with an
  // empty asm (as the former whitening kernel did) was slower on this 6 × 2-vector tile.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4
#endif
  for (Index p = 0; p < kc; ++p) {
    R bv[NV];
    for (int t = 0; t < NV; ++t) bv[t] = V::load(b + p * NR + t * L);
    for (int r = 0; r < MR; ++r) {
      const R x = V::set1(ar[r][p * static_cast<Index>(csa)]);
      for (int t = 0; t < NV; ++t) acc[r][t] = V::fmadd(x, bv[t], acc[r][t]);
    }
  }
  gemm_finish<Isa, T, MR, NV>(acc, part, phase, alpha, beta, c, ldc, i0, j0, ncols, epi);
}

/// The end of every micro-kernel, given its MR × NV accumulators (see gemm_micro): store or add
/// the partial sums (First / Middle), or add them (Last) and finish α·acc + β·C, the epilogue
/// and the (masked) store into C.
template <class Isa, typename T, int MR, int NV, class Epi>
XFMR_INLINE void gemm_finish(typename Vec<T, Isa>::type (&acc)[MR][NV], T* part, GemmPhase phase,
                             T alpha, T beta, T* c, Index ldc, Index i0, Index j0, Index ncols,
                             const Epi& epi) noexcept {
  using V = Vec<T, Isa>;
  using R = typename V::type;
  constexpr Index L = static_cast<Index>(V::lanes), NR = NV * L;
  if (phase == GemmPhase::First || phase == GemmPhase::Middle) {
    for (int r = 0; r < MR; ++r)
      for (int t = 0; t < NV; ++t) {
        T* pp = part + r * NR + t * L;
        V::store(pp, phase == GemmPhase::First ? acc[r][t] : V::add(acc[r][t], V::load(pp)));
      }
    return;
  }
  if (phase == GemmPhase::Last)
    for (int r = 0; r < MR; ++r)
      for (int t = 0; t < NV; ++t) acc[r][t] = V::add(acc[r][t], V::load(part + r * NR + t * L));
  const R va = V::set1(alpha), vb = V::set1(beta);
  const bool read_c = beta != T(0);
  auto finish = [&](R x, T* cp, Index i, Index j, std::size_t n) {
    R v = V::mul(va, x);
    if (read_c) v = V::fmadd(vb, gemm_load<V>(cp, n), v);
    v = epi.template apply<V>(v, i, j, static_cast<const T*>(cp), n);
    gemm_store<V>(cp, v, n);
  };
  if (ncols == NR) {
    for (int r = 0; r < MR; ++r)
      for (int t = 0; t < NV; ++t)
        finish(acc[r][t], c + r * ldc + t * L, i0 + r, j0 + t * L, V::lanes);
  } else {
    for (int r = 0; r < MR; ++r)
      for (int t = 0; t < NV; ++t) {
        const Index w = std::min(L, ncols - t * L);
        if (w > 0)
          finish(acc[r][t], c + r * ldc + t * L, i0 + r, j0 + t * L, static_cast<std::size_t>(w));
      }
  }
  if constexpr (has_tile_pass_v<Epi, T>) epi.tile(c, ldc, Index(MR), ncols);
}

/// The default micro-kernel policy of the driver: T × T FMAs (gemm_micro) on Shape (GemmShape<T,
/// Isa> unless another tile is given: the bf16 engine's widened path runs its own).
/// A policy names its Shape (mr, nv, nr, kc, mc, mc_max, row_block as GemmShape) and runs an
/// MR-row tile with run<MR>(kc, a, rsa, csa, panel, part, phase, α, β, c, ldc, i0, j0, ncols,
/// epi), a and panel of whatever types its AOp and panel callback give (gemm_bf16.hpp: bf16
/// pairs for vdpbf16ps).
template <class Isa, typename T, class Shape_ = GemmShape<T, Isa>>
struct GemmFmaKernel {
  using Shape = Shape_;
  template <int MR, class AT, class RS, class CS, class Epi>
  static XFMR_INLINE void run(Index kc, const AT* a, RS rsa, CS csa, const T* b, T* part,
                              GemmPhase phase, T alpha, T beta, T* c, Index ldc, Index i0,
                              Index j0, Index ncols, const Epi& epi) noexcept {
    gemm_micro<Isa, T, MR, static_cast<int>(Shape::nv)>(kc, a, rsa, csa, b, part, phase, alpha,
                                                         beta, c, ldc, i0, j0, ncols, epi);
  }
};

#if !defined(XFMR_GEMM_PREFETCH_B)
#define XFMR_GEMM_PREFETCH_B 1
#endif

/// The bytes of the panel the driver reads after the current one (B panels in memory: next row
/// block of k, then the next column panel), for a software prefetch into L2. The address is an
/// integer: past the last panel it points outside the array (a prefetch never faults).
struct GemmAhead {
  std::uintptr_t address;
  std::size_t bytes;
};
/// panel.ahead(j0, k0, kc) for a panel source that knows its next panel; none for the others.
template <class Panel>
XFMR_INLINE auto gemm_panel_ahead(const Panel& panel, Index j0, Index k0, Index kc, int) noexcept
    -> decltype(panel.ahead(j0, k0, kc)) {
  return panel.ahead(j0, k0, kc);
}
template <class Panel>
XFMR_INLINE GemmAhead gemm_panel_ahead(const Panel&, Index, Index, Index, long) noexcept {
  return {0, 0};
}

/// Prepacked B panels (PackedB<T>, or bf16 pairs): panel q at data + q·panel_size, row block k0
/// at + k0·nr (in elements of PT), consumed in storage order, so the next panel follows the
/// current one.
template <typename PT>
struct GemmPackedPanels {
  const PT* data;
  Index panel_size;  // elements per nr-column panel
  Index nr;
  XFMR_INLINE const PT* operator()(Index j0, Index k0, Index, Index) const noexcept {
    return data + (j0 / nr) * panel_size + k0 * nr;
  }
  XFMR_INLINE GemmAhead ahead(Index j0, Index k0, Index kc) const noexcept {
    const PT* p = (*this)(j0, k0, kc, 0);
    return {reinterpret_cast<std::uintptr_t>(p) + static_cast<std::uintptr_t>(kc * nr) * sizeof(PT),
            static_cast<std::size_t>(kc * nr) * sizeof(PT)};
  }
};

/// a.start_rows(i0, rows, k) before the driver reads rows [i0, i0 + rows) × columns [0, k) of A
/// (k = 0 when α == 0: nothing is read), for an AOp that prepares a row block (converts it:
/// gemm_bf16.hpp); nothing for the others.
template <class AOp>
XFMR_INLINE auto gemm_start_rows(const AOp& a, Index i0, Index rows, Index k, int) noexcept
    -> decltype(a.start_rows(i0, rows, k)) {
  return a.start_rows(i0, rows, k);
}
template <class AOp>
XFMR_INLINE void gemm_start_rows(const AOp&, Index, Index, Index, long) noexcept {}

/// C = epi(α·A·B + β·C) over rows [0, m) and columns [0, n), B given one panel at a time by
/// panel(j0, k0, kc, cols) -> pointer to the panel (kc rows of nr values, zero past cols; or
/// what the Kernel policy reads), the tiles run by Kernel (GemmFmaKernel by default). Where the
/// panel source has ahead(j0, k0, kc) (GemmPackedPanels), each row tile of a panel's pass
/// prefetches its share of the next panel into L2 (XFMR_GEMM_PREFETCH_B=0: off): at wide N the
/// prepacked B does not fit in L2 and the tiles would otherwise wait for L3 at each new panel.
template <class Isa, typename T, class AOp, class Panel, class Epi,
          class Kernel = GemmFmaKernel<Isa, T>>
void gemm_driver(Index m, Index n, Index k, T alpha, const AOp& a, Panel&& panel, T beta, T* c,
                 Index ldc, const Epi& epi, GemmPart part, Kernel = Kernel{}) noexcept {
  static_assert(xfmr::detail::is_real_v<T>, "xfmr::simd::gemm: T must be float or double");
  using S = typename Kernel::Shape;
  constexpr int MR = static_cast<int>(S::mr);
  constexpr Index NR = S::nr;
  static_assert(S::mc % S::mr == 0 && S::mc_max % S::mr == 0 && S::mc <= S::mc_max,
                "xfmr::simd::gemm: row tiles (and PackedA tiles) start at multiples of mr, so mc "
                "and mc_max must be ones");
  if (m <= 0 || n <= 0) return;
  if (alpha == T(0)) k = 0;  // A and B are not read
  static_assert(S::k_one >= S::kc, "xfmr::simd::gemm: k_one is the largest pass, at least kc");
  const Index kblocks = k <= S::k_one ? 1 : (k + S::kc - 1) / S::kc;
  const Index mc = S::row_block(k);
  alignas(64) T partial[S::mc_max * NR];  // partial sums, only when kblocks > 1
  for (Index i0 = 0; i0 < m; i0 += mc) {
    const Index mb = std::min(mc, m - i0);
    gemm_start_rows(a, i0, mb, k, 0);
    for (Index j0 = 0; j0 < n; j0 += NR) {
      const Index cols = std::min(NR, n - j0);
      // Lower: rows of this block that meet the panel's columns (row >= j0).
      Index ibeg = 0, iend = mb;
      if (part == GemmPart::Lower) {
        if (i0 + mb <= j0) continue;
        ibeg = std::max<Index>(0, j0 - i0) / MR * MR;
      } else if (part == GemmPart::Upper) {  // rows < j0 + cols
        iend = std::min(mb, j0 + cols - i0);
        if (iend <= 0) continue;
      }
      for (Index kb = 0; kb < kblocks; ++kb) {
        const Index k0 = kb * S::kc, kc = kblocks == 1 ? k : std::min(S::kc, k - k0);
        const GemmPhase phase = kblocks == 1        ? GemmPhase::Only
                                : kb == 0           ? GemmPhase::First
                                : kb + 1 == kblocks ? GemmPhase::Last
                                                    : GemmPhase::Middle;
        const auto* bp = panel(j0, k0, kc, cols);
        const GemmAhead next = gemm_panel_ahead(panel, j0, k0, kc, 0);
        const std::size_t share =  // lines of the next panel per row tile
            next.bytes / 64 / static_cast<std::size_t>((iend - ibeg + MR - 1) / MR) + 1;
        auto tile = [&](auto rows_tag, Index i) {
          constexpr int rows = decltype(rows_tag)::value;
          const Index gi = i0 + i;
#if XFMR_GEMM_PREFETCH_B && defined(__GNUC__)
          if (next.bytes != 0) {
            const std::size_t first = static_cast<std::size_t>((i - ibeg) / MR) * share * 64;
            for (std::size_t off = first; off < first + share * 64 && off < next.bytes; off += 64)
              __builtin_prefetch(reinterpret_cast<const void*>(next.address + off), 0, 2);
          }
#endif
          Kernel::template run<rows>(kc, a.ptr(gi, k0), a.rs, a.cs, bp, partial + i * NR, phase,
                                     alpha, beta, c + gi * ldc + j0, ldc, gi, j0, cols, epi);
        };
        Index i = ibeg;
        for (; i + MR <= iend; i += MR) tile(std::integral_constant<int, MR>{}, i);
        static_assert(MR <= 16, "xfmr::simd::gemm: the row-tail dispatch below handles mr <= 16");
        switch (iend - i) {  // the last rows < mr: a shorter tile, nothing past m
          case 15: if constexpr (MR > 15) tile(std::integral_constant<int, 15>{}, i); break;
          case 14: if constexpr (MR > 14) tile(std::integral_constant<int, 14>{}, i); break;
          case 13: if constexpr (MR > 13) tile(std::integral_constant<int, 13>{}, i); break;
          case 12: if constexpr (MR > 12) tile(std::integral_constant<int, 12>{}, i); break;
          case 11: if constexpr (MR > 11) tile(std::integral_constant<int, 11>{}, i); break;
          case 10: if constexpr (MR > 10) tile(std::integral_constant<int, 10>{}, i); break;
          case 9: if constexpr (MR > 9) tile(std::integral_constant<int, 9>{}, i); break;
          case 8: if constexpr (MR > 8) tile(std::integral_constant<int, 8>{}, i); break;
          case 7: if constexpr (MR > 7) tile(std::integral_constant<int, 7>{}, i); break;
          case 6: if constexpr (MR > 6) tile(std::integral_constant<int, 6>{}, i); break;
          case 5: if constexpr (MR > 5) tile(std::integral_constant<int, 5>{}, i); break;
          case 4: if constexpr (MR > 4) tile(std::integral_constant<int, 4>{}, i); break;
          case 3: if constexpr (MR > 3) tile(std::integral_constant<int, 3>{}, i); break;
          case 2: if constexpr (MR > 2) tile(std::integral_constant<int, 2>{}, i); break;
          case 1: if constexpr (MR > 1) tile(std::integral_constant<int, 1>{}, i); break;
          default: break;
        }
      }
    }
  }
}

template <Index S>
using GemmStride = std::integral_constant<Index, S>;

/// A as the driver reads it: the first element of row i from column k0, and the strides (Index,
/// or GemmStride<s> when known at compile time).
template <typename T, class RS, class CS>
struct StridedAOp {
  const T* data;
  RS rs;
  CS cs;
  XFMR_INLINE const T* ptr(Index i, Index k0) const noexcept {
    return data + i * static_cast<Index>(rs) + k0 * static_cast<Index>(cs);
  }
};
template <typename T, Index MR>
struct PackedAOp {  // row tiles start at multiples of mr (mc is a multiple of mr)
  const T* data;
  Index k;
  GemmStride<1> rs;
  GemmStride<MR> cs;
  XFMR_INLINE const T* ptr(Index i, Index k0) const noexcept {
    return data + (i / MR) * k * MR + k0 * MR;
  }
};

template <class Isa, typename T, class AOp, class Epi>
void gemm_b(Index m, Index n, Index k, T alpha, const AOp& a, GemmB<T> b, T beta, T* c, Index ldc,
            const Epi& epi, GemmPart part) noexcept {
  using S = GemmShape<T, Isa>;
  alignas(64) T panel[S::k_one * S::nr];
  auto pack = [&](Index j0, Index k0, Index kc, Index cols) -> const T* {
    gemm_pack_panel<Isa>(b, k0, kc, j0, cols, panel);
    return panel;
  };
  gemm_driver<Isa>(m, n, k, alpha, a, pack, beta, c, ldc, epi, part);
}

template <class Isa, typename T, class AOp, class Epi>
void gemm_b(Index m, Index n, Index k, T alpha, const AOp& a, PackedB<T> b, T beta, T* c,
            Index ldc, const Epi& epi, GemmPart part) noexcept {
  XFMR_ASSERT(b.k == k && b.n >= n);
  constexpr Index nr = GemmShape<T, Isa>::nr;
  gemm_driver<Isa>(m, n, k, alpha, a, GemmPackedPanels<T>{b.data, b.k * nr, nr}, beta, c, ldc,
                   epi, part);
}

}  // namespace detail

/// C(m×n) = epi(α·A(m×k)·op(B)(k×n) + β·C).
///   A: GemmA (read in place, any strides), GemmRowMajorA (read in place, unit column stride:
///      one instantiation where GemmA has two) or PackedA (packed by pack_a: contiguous row
///      tiles, for an A whose rows are far apart in memory, such as Yᵀ in the Gram YᵀY).
///   B: GemmB (k×n, or n×k read transposed), packed here one kc × nr panel at a time into a stack
///      buffer (16–24 KiB, in L1) — for a B used once; or PackedB (packed ahead by pack_b, same Isa,
///      same k and n) — for weights and for a tile of B reused by many calls.
/// β == 0: C is not read before the epilogue (may hold NaN); α == 0 or k == 0: A and B are not
/// read, the product counts as 0. The epilogue (gemm_epilogue.hpp) sees each vector of the final
/// value with its row, column and the old C, and its tile pass (if it has one) each finished
/// tile of C right after the tile's store; default: none. m, n, k >= 0; any leading
/// dimensions; no alignment required; nothing outside C(m×n) (or its part, GemmPart) is read or
/// written. C must not overlap A, B or an epilogue's operands other than C itself. noexcept, no
/// allocation (≤ k_one·nr + mc_max·nr values of stack: 42 KiB with AVX2, 78 KiB
/// with AVX-512), thread-safe (no shared
/// state).
template <class Isa = native_isa, typename T, class B, class Epi = NoEpilogue>
void gemm(Index m, Index n, Index k, T alpha, GemmRowMajorA<T> a, B b, T beta, T* c, Index ldc,
          const Epi& epi = Epi{}, GemmPart part = GemmPart::Full) noexcept {
  // unit stride along k, known to the micro-kernel
  detail::gemm_b<Isa>(m, n, k, alpha,
                      detail::StridedAOp<T, Index, detail::GemmStride<1>>{a.data, a.ld, {}}, b,
                      beta, c, ldc, epi, part);
}
template <class Isa = native_isa, typename T, class B, class Epi = NoEpilogue>
void gemm(Index m, Index n, Index k, T alpha, GemmA<T> a, B b, T beta, T* c, Index ldc,
          const Epi& epi = Epi{}, GemmPart part = GemmPart::Full) noexcept {
  if (a.col_stride == 1)
    gemm<Isa>(m, n, k, alpha, GemmRowMajorA<T>{a.data, a.row_stride}, b, beta, c, ldc, epi, part);
  else
    detail::gemm_b<Isa>(m, n, k, alpha,
                        detail::StridedAOp<T, Index, Index>{a.data, a.row_stride, a.col_stride}, b,
                        beta, c, ldc, epi, part);
}
template <class Isa = native_isa, typename T, class B, class Epi = NoEpilogue>
void gemm(Index m, Index n, Index k, T alpha, PackedA<T> a, B b, T beta, T* c, Index ldc,
          const Epi& epi = Epi{}, GemmPart part = GemmPart::Full) noexcept {
  XFMR_ASSERT(a.k == k && a.m >= m);
  constexpr Index mr = GemmShape<T, Isa>::mr;
  detail::gemm_b<Isa>(m, n, k, alpha, detail::PackedAOp<T, mr>{a.data, a.k, {}, {}}, b, beta, c,
                      ldc, epi, part);
}

/// C(m×n) = α·A(m×k)·B(n×k)ᵀ + β·C, all row-major with leading dimensions (lda >= k, ldb >= k,
/// ldc >= n): the Q·Kᵀ shape. gemm with GemmA{a, lda, 1} and GemmB{b, ldb, true}.
template <class Isa = native_isa, typename T>
void gemm_nt(Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
             T beta, T* c, Index ldc) noexcept {
  gemm<Isa>(m, n, k, alpha, GemmRowMajorA<T>{a, lda}, GemmB<T>{b, ldb, true}, beta, c, ldc);
}

/// C(m×n) = α·A(m×k)·B(k×n) + β·C, row-major (ldb >= n): the P·V shape.
template <class Isa = native_isa, typename T>
void gemm_nn(Index m, Index n, Index k, T alpha, const T* a, Index lda, const T* b, Index ldb,
             T beta, T* c, Index ldc) noexcept {
  gemm<Isa>(m, n, k, alpha, GemmRowMajorA<T>{a, lda}, GemmB<T>{b, ldb, false}, beta, c, ldc);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_GEMM_HPP
