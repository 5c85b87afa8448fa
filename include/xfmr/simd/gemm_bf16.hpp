// SPDX-License-Identifier: MIT
// The GEMM engine with a bf16 B (weights stored as bf16, fp32 accumulation): the same driver,
// blocking and epilogues as gemm.hpp, two micro-kernels chosen at run time (Bf16Kernel):
//   DotProduct (only where avx512_isa is compiled with AVX512_BF16): B prepacked as bf16 pairs
//     along k for vdpbf16ps, A rounded to bf16 pairs (RNE) one row block at a time as the driver
//     reaches it, products summed in fp32 by the instruction;
//   Widen (every ISA): each kc × nr panel of B is widened to fp32 (exact) into a stack panel and
//     the fp32 FMA micro-kernel runs, A read in fp32 unrounded.
// Both read the same packed B (pack_b_bf16), so one packed weight serves either kernel.
// Auto picks DotProduct where the CPU's vdpbf16ps outruns its fp32 FMAs (see Bf16Kernel).
//
// Accuracy (derivation of the bound the tests check). u = 2^-24 (fp32), u_b = 2^-8 (bf16: 8
// significant bits, RNE: |fl_b(x) − x| ≤ u_b·|x| for x in the normal range).
//   B is stored rounded: b' = b(1 + β_pj), |β| ≤ u_b; on the DotProduct path A too: a' = a(1 + α_ip),
//   |α| ≤ u_b (on the other paths α = 0). Each product a'b' is exact in fp32 (8 × 8 significant
//   bits ≤ 24) and a'b' = ab(1 + θ), |θ| ≤ 2u_b + u_b² (Widen: a in fp32 times b' is rounded
//   by the FMA itself, one of the roundings counted below, and |θ| ≤ u_b).
//   The products are summed in fp32: within a k block one after another (vdpbf16ps: two adds per
//   instruction), the blocks through the partial buffer, then α·s and β·C: at most k + ⌈k/kc⌉ + 2
//   roundings on any one term, so by the classical bound for any summation order
//     |C − C_exact| ≤ [(1 + 2u_b + u_b²)(1 + γ_n) − 1]·(|α|·Σ_p|a_ip·b_pj| + |β·C_ij|),
//     γ_n = n·u/(1 − n·u), n = k + ⌈k/kc⌉ + 2,
//   about (2^-7 + k·2^-24)·Σ|a·b|: the bf16 rounding dominates until k ≈ 2^17.
//   Both kernels satisfy this bound (Widen also the tighter [(1 + u_b)(1 + γ_n) − 1]·Σ|a·b|);
//   each is deterministic (fixed summation order, independent of threads), the two differ in
//   the last bits and, where A has more than 8 significant bits, by up to the bound.
//   vdpbf16ps treats bf16 subnormal inputs as zero and flushes subnormal results (it does not
//   consult MXCSR): each of the k products and sums can lose a further < 2^-126·(1 + |a| + |b|),
//   an absolute term the tests add (negligible unless the data are near 1e-38).
#ifndef XFMR_SIMD_GEMM_BF16_HPP
#define XFMR_SIMD_GEMM_BF16_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "bf16.hpp"
#include "gemm.hpp"
#include "gemm_pack.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// True where the DotProduct (vdpbf16ps) kernel is compiled for Isa: avx512_isa built with
/// AVX512_BF16. Elsewhere every Bf16Kernel runs Widen.
template <class Isa>
inline constexpr bool gemm_bf16_dot_v =
#if XFMR_HAS_AVX512_BF16
    std::is_same_v<Isa, avx512_isa>;
#else
    false;
#endif

/// Which micro-kernel a GEMM with bf16 weights runs (gemm with a PackedB<bf16>, Dense with
/// WeightStorage::Bf16):
///   DotProduct: vdpbf16ps, A rounded to bf16 too (only where gemm_bf16_dot_v<Isa>; elsewhere it
///               runs Widen);
///   Widen:      B widened to fp32 per panel, fp32 FMAs, A unrounded (every ISA);
///   Auto:       DotProduct where it is compiled and the CPU is an AMD one (Zen 4 / Zen 5:
///               vdpbf16ps at twice the fp32 FMA FLOP rate, 235 vs 115 GFLOP/s measured), Widen
///               on every other CPU (Intel Cooper Lake / Sapphire Rapids and later: vdpbf16ps at
///               half the fp32 rate measured on this project's Xeon, so widening is ~1.8×
///               faster) and always when XFMR_BF16_WIDEN is defined. Read once per process from
///               the CPU's vendor (gemm_bf16_resolve), so Auto is deterministic on one machine
///               but may differ between machines; name the kernel for results that must not.
/// Error bounds of both: this file's header.
enum class Bf16Kernel { Auto, DotProduct, Widen };

/// "auto", "dot_product", "widen".
constexpr const char* to_string(Bf16Kernel k) noexcept {
  return k == Bf16Kernel::DotProduct ? "dot_product" : k == Bf16Kernel::Widen ? "widen" : "auto";
}

/// The kernel gemm<Isa> with a PackedB<bf16> runs for the choice `kernel`: DotProduct or Widen
/// (never Auto; see Bf16Kernel). noexcept.
template <class Isa = native_isa>
inline Bf16Kernel gemm_bf16_resolve(Bf16Kernel kernel) noexcept {
  if constexpr (!gemm_bf16_dot_v<Isa>) {
    (void)kernel;
    return Bf16Kernel::Widen;
  } else {
    if (kernel != Bf16Kernel::Auto) return kernel;
#if defined(XFMR_BF16_WIDEN) || !defined(__GNUC__)
    return Bf16Kernel::Widen;
#else
    static const bool amd = __builtin_cpu_is("amd");
    return amd ? Bf16Kernel::DotProduct : Bf16Kernel::Widen;
#endif
  }
}

/// Tile and blocks of the bf16-B GEMM for Isa and kernel (Dot: DotProduct). Where the
/// DotProduct kernel is compiled (gemm_bf16_dot_v<Isa>) both kernels read panels of nr = 64
/// columns (one packed layout for either choice):
///   DotProduct: 6 rows × 4 zmm (24 accumulators, 4 B vectors, a broadcast of A of the 32
///     registers), kc = 256 values of k (128 pairs: a 32 KiB panel, in L1), row blocks of
///     mc..mc_max rows while mc·k bf16 of A stay within 1 MiB (half of L2);
///   Widen: the fp32 engine on a 6 × 4 zmm tile, kc = 96 (a 24 KiB widened panel, as the fp32
///     engine's 8 × 3 tile at kc = 128).
/// Elsewhere (Dot false): the fp32 engine's GemmShape<float, Isa>.
template <class Isa, bool Dot = gemm_bf16_dot_v<Isa>>
struct GemmBf16Shape : GemmShape<float, Isa> {};
template <class Isa>
struct GemmBf16WidenShape : GemmShape<float, Isa> {};
#if XFMR_HAS_AVX512_BF16
template <>
struct GemmBf16WidenShape<avx512_isa> : GemmShape<float, avx512_isa> {
  static constexpr Index mr = 6;
  static constexpr Index nv = 4;
  static constexpr Index nr = 64;
  static constexpr Index kc = 96;
  static constexpr Index k_one = kc;
  static constexpr Index mc = 144;
  static constexpr Index mc_max = 288;
  static constexpr Index block_bytes = Index(1) << 20;
  static constexpr Index row_block(Index k) noexcept {
    const Index fit = block_bytes / (4 * (k > 0 ? k : 1));
    return std::min(mc_max, std::max(mc, fit / mr * mr));
  }
};
#endif
template <class Isa>
struct GemmBf16Shape<Isa, true> {
  static constexpr Index mr = 6;
  static constexpr Index nv = 4;
  static constexpr Index nr = 64;
  static constexpr Index kc = 256;
  static constexpr Index k_one = kc;
  static constexpr Index mc = 144;
  static constexpr Index mc_max = 288;
  static constexpr Index block_bytes = Index(1) << 20;
  static constexpr Index row_block(Index k) noexcept {
    const Index fit = block_bytes / (2 * (k > 0 ? k : 1));
    return std::min(mc_max, std::max(mc, fit / mr * mr));
  }
};

/// bf16 values pack_b_bf16 writes for a (k × n) B: (k rounded up to even) · (n rounded up to nr).
template <class Isa = native_isa>
constexpr Index packed_b_bf16_size(Index k, Index n) noexcept {
  constexpr Index nr = GemmBf16Shape<Isa>::nr;
  return (k + 1) / 2 * 2 * ((n + nr - 1) / nr * nr);
}

/// Packs op(B) (k × n; S = float, rounded to nearest even, or bf16, copied) into
/// out[packed_b_bf16_size<Isa>(k, n)] for gemm<Isa>(…, PackedB<bf16>{out, k, n}, …): panel q
/// (columns [q·nr, q·nr + nr)) at out + q·k2·nr (k2 = k rounded up to even), k2/2 pair rows of nr
/// pairs, element (p, j) of the panel at [(p/2)·2·nr + 2·j + p%2] (the vdpbf16ps operand order:
/// k pairs interleaved); zeros past n and, for an odd k, in the last row. One layout on every ISA
/// (only nr differs). out must not overlap B. noexcept, no allocation.
template <class Isa = native_isa, typename S>
void pack_b_bf16(Index k, Index n, GemmB<S> b, bf16* out) noexcept {
  static_assert(std::is_same_v<S, float> || std::is_same_v<S, bf16>,
                "xfmr::simd::pack_b_bf16: B must be float or bf16");
  constexpr Index nr = GemmBf16Shape<Isa>::nr;
  const Index k2 = (k + 1) / 2 * 2;
  auto get = [&](Index p, Index j) -> bf16 {
    const S v = b.transposed ? b.data[j * b.ld + p] : b.data[p * b.ld + j];
    if constexpr (std::is_same_v<S, float>)
      return to_bf16(v);
    else
      return v;
  };
  for (Index j0 = 0; j0 < n; j0 += nr) {
    bf16* panel = out + (j0 / nr) * k2 * nr;
    const Index cols = std::min(nr, n - j0);
    for (Index p = 0; p < k2; ++p) {
      bf16* row = panel + (p / 2) * 2 * nr + (p % 2);
      for (Index j = 0; j < nr; ++j)
        row[2 * j] = (p < k && j < cols) ? get(p, j0 + j) : bf16{0};
    }
  }
}

namespace detail {

/// Widens rows [k0, k0 + kc) of a bf16 pair panel (nr columns, pair rows of 2·nr values) into
/// kc rows of nr floats (exact), the fp32 engine's panel layout.
template <class Isa>
XFMR_INLINE void gemm_bf16_widen_panel(const bf16* pairs, Index k0, Index kc, float* out) noexcept {
  constexpr Index nr = GemmBf16WidenShape<Isa>::nr;
  Index r = 0;
#if XFMR_HAS_AVX2
  if constexpr (!std::is_same_v<Isa, scalar_isa> && nr % 8 == 0) {
    // A whole pair row: 8 pairs (32 bits) → the even row (low halves) and the odd row.
    if ((k0 & 1) == 0)
      for (; r + 2 <= kc; r += 2) {
        const bf16* src = pairs + ((k0 + r) / 2) * 2 * nr;
        for (Index j = 0; j < nr; j += 8) {
          const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 2 * j));
          _mm256_storeu_ps(out + r * nr + j, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
          _mm256_storeu_ps(out + (r + 1) * nr + j,
                           _mm256_castsi256_ps(_mm256_and_si256(
                               w, _mm256_set1_epi32(static_cast<int>(0xffff0000u)))));
        }
      }
  }
#endif
  for (; r < kc; ++r) {
    const Index p = k0 + r;
    const bf16* src = pairs + (p / 2) * 2 * nr + (p % 2);
    for (Index j = 0; j < nr; ++j) out[r * nr + j] = to_float(src[2 * j]);
  }
}

#if XFMR_HAS_AVX512_BF16
/// The per-thread buffer of A rows rounded to bf16 (grown on demand, kept for the thread).
inline bf16* gemm_bf16_a_buffer(std::size_t values) {
  thread_local std::vector<bf16> buffer;
  if (buffer.size() < values) buffer.resize(values);
  return buffer.data();
}

/// A for the vdpbf16ps kernel: the caller's fp32 A (element (i, p) at data[i·ars + p·acs]),
/// rounded to bf16 one row block at a time (start_rows) into buf, row r of the block at
/// buf + r·rs (rs = k rounded up to even; an odd k ends each row with a zero).
struct GemmBf16AOp {
  const float* data;
  Index ars, acs;
  bf16* buf;
  Index rs;
  GemmStride<1> cs;
  Index* base;  // first row of the converted block

  void start_rows(Index i0, Index rows, Index k) const noexcept {
    *base = i0;
    if (k == 0) return;  // α == 0: nothing is read
    for (Index r = 0; r < rows; ++r) {
      const float* src = data + (i0 + r) * ars;
      bf16* dst = buf + r * rs;
      if (acs == 1)
        convert_row<avx512_isa>(src, dst, k);
      else
        for (Index p = 0; p < k; ++p) dst[p] = to_bf16(src[p * acs]);
      for (Index p = k; p < rs; ++p) dst[p] = bf16{0};
    }
  }
  XFMR_INLINE const bf16* ptr(Index i, Index k0) const noexcept {
    return buf + (i - *base) * rs + k0;
  }
};

/// The vdpbf16ps micro-kernel policy: an MR × 64 tile, per k pair NV loads of the B panel, MR
/// broadcasts of an A pair, MR·NV vdpbf16ps; the end (partial sums, α, β, epilogue, masked
/// store) is the fp32 engine's gemm_finish.
struct GemmBf16DotKernel {
  using Shape = GemmBf16Shape<avx512_isa>;
  template <int MR, class RS, class CS, class Epi>
  static XFMR_INLINE void run(Index kc, const bf16* a, RS rsa, CS, const bf16* b, float* part,
                              GemmPhase phase, float alpha, float beta, float* c, Index ldc,
                              Index i0, Index j0, Index ncols, const Epi& epi) noexcept {
    constexpr int NV = static_cast<int>(Shape::nv);
    constexpr Index NR = Shape::nr;
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; ++r)
      for (int t = 0; t < NV; ++t) acc[r][t] = _mm512_setzero_ps();
    const bf16* ar[MR];
    for (int r = 0; r < MR; ++r) ar[r] = a + r * static_cast<Index>(rsa);
    gemm_prefetch_c<MR>(phase, beta, c, ldc, ncols);
    const Index kp = (kc + 1) / 2;  // an odd last block ends with the zero pair halves
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 2
#endif
    for (Index p = 0; p < kp; ++p) {
      __m512bh bv[NV];
      for (int t = 0; t < NV; ++t)
        bv[t] = reinterpret_cast<__m512bh>(
            _mm512_loadu_si512(static_cast<const void*>(b + p * 2 * NR + t * 32)));
      for (int r = 0; r < MR; ++r) {
        std::int32_t w;
        std::memcpy(&w, ar[r] + 2 * p, sizeof w);
        const __m512bh x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(w));
        for (int t = 0; t < NV; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], x, bv[t]);
      }
    }
    gemm_finish<avx512_isa, float, MR, NV>(acc, part, phase, alpha, beta, c, ldc, i0, j0, ncols,
                                           epi);
  }
};
#endif

}  // namespace detail

namespace detail {

/// The Widen kernel's panel source: each kc × nr row block of a bf16 pair panel widened to fp32
/// into `out` (kc·nr floats); ahead(): the next pair rows in storage order (prefetched by the
/// driver into L2).
template <class Isa>
struct GemmBf16WidenPanels {
  const bf16* data;
  Index k2;  // pair rows of a panel: k rounded up to even
  float* out;
  static constexpr Index nr = GemmBf16WidenShape<Isa>::nr;
  XFMR_INLINE const float* operator()(Index j0, Index k0, Index kc, Index) const noexcept {
    gemm_bf16_widen_panel<Isa>(data + (j0 / nr) * k2 * nr, k0, kc, out);
    return out;
  }
  XFMR_INLINE GemmAhead ahead(Index j0, Index k0, Index kc) const noexcept {
    const std::uintptr_t p = reinterpret_cast<std::uintptr_t>(data + (j0 / nr) * k2 * nr);
    return {p + static_cast<std::uintptr_t>((k0 + kc) * nr) * sizeof(bf16),
            static_cast<std::size_t>(kc * nr) * sizeof(bf16)};
  }
};

/// The body of the bf16 gemm overloads below, A as the driver reads it (StridedAOp).
template <class Isa, class AOp, class Epi>
void gemm_bf16(Index m, Index n, Index k, float alpha, const AOp& a, PackedB<bf16> b, float beta,
               float* c, Index ldc, const Epi& epi, GemmPart part, Bf16Kernel kernel) noexcept {
  XFMR_ASSERT(b.k == k && b.n >= n);
  const Index k2 = (b.k + 1) / 2 * 2;  // pair rows of a panel: b.k rounded up to even
#if XFMR_HAS_AVX512_BF16
  if constexpr (gemm_bf16_dot_v<Isa>) {
    if (gemm_bf16_resolve<Isa>(kernel) == Bf16Kernel::DotProduct) {
      using S = GemmBf16Shape<Isa>;
      constexpr Index nr = S::nr;
      const Index mb = std::min(S::row_block(k), std::max<Index>(m, 1));
      Index base = 0;
      const GemmBf16AOp aop{a.data,
                            a.rs,
                            static_cast<Index>(a.cs),
                            gemm_bf16_a_buffer(static_cast<std::size_t>(mb * k2)),
                            k2,
                            {},
                            &base};
      // k0 even: pair row k0/2, at k0·nr bf16 into the panel
      gemm_driver<Isa>(m, n, k, alpha, aop, GemmPackedPanels<bf16>{b.data, k2 * nr, nr}, beta, c,
                       ldc, epi, part, GemmBf16DotKernel{});
      return;
    }
  }
#endif
  (void)kernel;
  using W = GemmBf16WidenShape<Isa>;
  using Kernel = GemmFmaKernel<Isa, float, W>;
  alignas(64) float widened[W::k_one * W::nr];
  gemm_driver<Isa>(m, n, k, alpha, a, GemmBf16WidenPanels<Isa>{b.data, k2, widened}, beta, c, ldc,
                   epi, part, Kernel{});
}

}  // namespace detail

/// C(m×n) = epi(α·A(m×k)·B(k×n) + β·C) with A fp32 (GemmRowMajorA, or GemmA below) and B
/// bf16 prepacked by pack_b_bf16<Isa> (same Isa, k and n): the weights half the bytes, fp32
/// accumulation, error bound in this file's header (≈ (2^-7 + k·2^-24)·Σ|a·b|). kernel: the
/// micro-kernel (Bf16Kernel; gemm_bf16_resolve<Isa>(kernel) says which runs), the same packed B
/// for either. Same contract as gemm with a PackedB<float> (β == 0: C not read; α == 0 or
/// k == 0: A and B not read; nothing outside C(m×n), or its part, written; C must not overlap A,
/// B or an epilogue's operands other than C itself), except on the DotProduct path, where A is
/// rounded to bf16 row block by row block into a per-thread buffer of up to mc_max·k bf16
/// (288·k·2 bytes, allocated on the thread's first call of that size and kept; std::terminate if
/// that allocation fails). Widen: ≤ k_one·nr floats of stack (24 KiB) besides the fp32 engine's.
/// Thread-safe.
template <class Isa = native_isa, class Epi = NoEpilogue>
void gemm(Index m, Index n, Index k, float alpha, GemmRowMajorA<float> a, PackedB<bf16> b,
          float beta, float* c, Index ldc, const Epi& epi = Epi{},
          GemmPart part = GemmPart::Full, Bf16Kernel kernel = Bf16Kernel::Auto) noexcept {
  detail::gemm_bf16<Isa>(m, n, k, alpha,
                         detail::StridedAOp<float, Index, detail::GemmStride<1>>{a.data, a.ld, {}},
                         b, beta, c, ldc, epi, part, kernel);
}
/// The same with A in any strides (GemmA: read in place; compiled twice, for a unit column stride
/// and any other, chosen at run time).
template <class Isa = native_isa, class Epi = NoEpilogue>
void gemm(Index m, Index n, Index k, float alpha, GemmA<float> a, PackedB<bf16> b, float beta,
          float* c, Index ldc, const Epi& epi = Epi{}, GemmPart part = GemmPart::Full,
          Bf16Kernel kernel = Bf16Kernel::Auto) noexcept {
  if (a.col_stride == 1)
    gemm<Isa>(m, n, k, alpha, GemmRowMajorA<float>{a.data, a.row_stride}, b, beta, c, ldc, epi,
              part, kernel);
  else
    detail::gemm_bf16<Isa>(m, n, k, alpha,
                           detail::StridedAOp<float, Index, Index>{a.data, a.row_stride,
                                                                   a.col_stride},
                           b, beta, c, ldc, epi, part, kernel);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_GEMM_BF16_HPP
