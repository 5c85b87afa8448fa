// SPDX-License-Identifier: MIT
// Causal linear-attention scan with the state held in registers, strip by strip (SPEC §5.3).
#ifndef XFMR_SIMD_LINEAR_SCAN_HPP
#define XFMR_SIMD_LINEAR_SCAN_HPP

#include <cstddef>

#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

// One strip of the state: R rows × NV vectors of columns, in registers for the whole token block.
// Tail: the last vector covers only `rem` columns (masked load/store).
template <class Isa, typename T, int R, int NV, bool Tail>
void linear_scan_strip(const T* q, const T* k, std::size_t fs, const T* v, std::size_t vs, T* s,
                       std::size_t ss, T* out, std::size_t os, std::size_t n,
                       std::size_t rem) noexcept {
  using V = Vec<T, Isa>;
  using VT = typename V::type;
  constexpr std::size_t W = V::lanes;
  auto ld = [rem](const T* p, int j) {
    return (Tail && j == NV - 1) ? V::load_partial(p, rem) : V::load(p);
  };
  auto st = [rem](T* p, VT x, int j) {
    if (Tail && j == NV - 1)
      V::store_partial(p, x, rem);
    else
      V::store(p, x);
  };
  VT S[R][NV];
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) S[r][j] = ld(s + r * ss + j * W, j);
  for (std::size_t t = 0; t < n; ++t) {
    const T* kt = k + t * fs;
    const T* qt = q + t * fs;
    VT vv[NV], acc[NV];
    for (int j = 0; j < NV; ++j) vv[j] = ld(v + t * vs + j * W, j);
    for (int r = 0; r < R; ++r) {  // S += ϕ(k_t)[rows] v_t[cols]
      const VT kb = V::set1(kt[r]);
      for (int j = 0; j < NV; ++j) S[r][j] = V::fmadd(kb, vv[j], S[r][j]);
    }
    for (int j = 0; j < NV; ++j) acc[j] = ld(out + t * os + j * W, j);
    for (int r = 0; r < R; ++r) {  // out_t[cols] += φ(q_t)[rows] · S_t
      const VT qb = V::set1(qt[r]);
      for (int j = 0; j < NV; ++j) acc[j] = V::fmadd(qb, S[r][j], acc[j]);
    }
    for (int j = 0; j < NV; ++j) st(out + t * os + j * W, acc[j], j);
  }
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < NV; ++j) st(s + r * ss + j * W, S[r][j], j);
}

template <class Isa, typename T, int NV, bool Tail>
void linear_scan_columns(const T* q, const T* k, std::size_t fs, const T* v, std::size_t vs, T* s,
                         std::size_t ss, T* out, std::size_t os, std::size_t n, std::size_t m,
                         std::size_t rem) noexcept {
  // 6 rows × 2 vectors: 12 state registers + 2 accumulators + 1 broadcast (v is a memory
  // operand of the FMAs). Measured best of R ∈ {2, 4, 5, 6, 7, 8} on AVX2 (≈ 0.6 of the FMA
  // roof for m = d_v = 64, against ≈ 0.5 for R = 4).
  std::size_t r = 0;
  for (; r + 6 <= m; r += 6)
    linear_scan_strip<Isa, T, 6, NV, Tail>(q + r, k + r, fs, v, vs, s + r * ss, ss, out, os, n, rem);
  switch (m - r) {
    case 5: linear_scan_strip<Isa, T, 5, NV, Tail>(q + r, k + r, fs, v, vs, s + r * ss, ss, out, os, n, rem); break;
    case 4: linear_scan_strip<Isa, T, 4, NV, Tail>(q + r, k + r, fs, v, vs, s + r * ss, ss, out, os, n, rem); break;
    case 3: linear_scan_strip<Isa, T, 3, NV, Tail>(q + r, k + r, fs, v, vs, s + r * ss, ss, out, os, n, rem); break;
    case 2: linear_scan_strip<Isa, T, 2, NV, Tail>(q + r, k + r, fs, v, vs, s + r * ss, ss, out, os, n, rem); break;
    case 1: linear_scan_strip<Isa, T, 1, NV, Tail>(q + r, k + r, fs, v, vs, s + r * ss, ss, out, os, n, rem); break;
    default: break;
  }
}

}  // namespace detail

/// Causal scan over a block of n tokens of one head, for t = 0 … n−1 in order:
///   S ← S + k_t^T v_t          (S: m × dv, row stride ss, updated in place)
///   out_t ← out_t + q_t · S    (the state after token t; out accumulates, zero it first)
/// q, k: n × m with row stride fs (features); v: n × dv (stride vs); out: n × dv (stride os).
/// The state is processed in strips of 6 rows × 2 vectors held in registers across the whole
/// token block, so S is read and written once per block and each token costs 2·m·dv FMAs
/// (the FLOPs of SPEC §12 exactly; no masked quadratic work). Accumulation in T, in token order
/// for S and in row order (strips of 4) for out. No alignment needed; out must not overlap the
/// inputs or S.
template <class Isa, typename T>
void linear_scan(const T* q, const T* k, std::size_t fs, const T* v, std::size_t vs, T* s,
                 std::size_t ss, T* out, std::size_t os, std::size_t n, std::size_t m,
                 std::size_t dv) noexcept {
  constexpr std::size_t W = Vec<T, Isa>::lanes;
  std::size_t c = 0;
  for (; c + 2 * W <= dv; c += 2 * W)
    detail::linear_scan_columns<Isa, T, 2, false>(q, k, fs, v + c, vs, s + c, ss, out + c, os, n,
                                                  m, 0);
  const std::size_t rem = dv - c;
  if (rem > W)
    detail::linear_scan_columns<Isa, T, 2, true>(q, k, fs, v + c, vs, s + c, ss, out + c, os, n, m,
                                                 rem - W);
  else if (rem == W)
    detail::linear_scan_columns<Isa, T, 1, false>(q, k, fs, v + c, vs, s + c, ss, out + c, os, n,
                                                  m, 0);
  else if (rem > 0)
    detail::linear_scan_columns<Isa, T, 1, true>(q, k, fs, v + c, vs, s + c, ss, out + c, os, n, m,
                                                 rem);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_LINEAR_SCAN_HPP
