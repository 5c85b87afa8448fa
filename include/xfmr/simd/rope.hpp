// SPDX-License-Identifier: MIT
// Rotary-embedding kernels: rotate coordinate pairs of one head vector by per-pair angles
// (Su et al., RoFormer, arXiv:2104.09864).
#ifndef XFMR_SIMD_ROPE_HPP
#define XFMR_SIMD_ROPE_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// Direction of the rotation: Forward by +angle, Inverse by −angle (the transpose, used for the
/// backward pass).
enum class Rotation { Forward, Inverse };

namespace detail {

/// One vector step of the half-split rotation at pairs [i, i + lanes), c and s already loaded.
template <class V, Rotation Dir, typename T, class Load, class Store>
XFMR_INLINE void rope_half_split_step(const T* x, T* y, std::size_t h, std::size_t i,
                                      typename V::type ci, typename V::type si, Load load,
                                      Store store) noexcept {
  const auto lo = load(x + i), hi = load(x + h + i);
  if constexpr (Dir == Rotation::Forward) {
    store(y + i, V::fnmadd(hi, si, V::mul(lo, ci)));  // lo·c − hi·s
    store(y + h + i, V::fmadd(lo, si, V::mul(hi, ci)));  // hi·c + lo·s
  } else {
    store(y + i, V::fmadd(hi, si, V::mul(lo, ci)));
    store(y + h + i, V::fnmadd(lo, si, V::mul(hi, ci)));
  }
}

/// Pairs [i, h), fewer than a vector: one masked step, nothing read or written past the end.
template <class V, Rotation Dir, typename T>
XFMR_INLINE void rope_half_split_tail(const T* x, const T* c, const T* s, T* y, std::size_t h,
                                      std::size_t i) noexcept {
  const std::size_t n = h - i;
  const auto load = [n](const T* p) { return V::load_partial(p, n); };
  const auto store = [n](T* p, typename V::type v) { V::store_partial(p, v, n); };
  rope_half_split_step<V, Dir>(x, y, h, i, load(c + i), load(s + i), load, store);
}

/// Makes the compiler hold v in a register from here on. Without it GCC folds a loaded vector
/// into every instruction that uses it as a memory operand, so the interleaved step reads x
/// twice (once for the swap, once for the FMA): load-port bound on cache-resident data.
template <class V>
XFMR_INLINE void keep_in_register([[maybe_unused]] typename V::type& v) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  if constexpr (V::lanes > 1) __asm__("" : "+x"(v));
#endif
}

/// One vector step of the interleaved rotation at channels [i, i + lanes), c and s already
/// duplicated pairwise ([c0 c0 c1 c1 …]).
template <class V, Rotation Dir, typename T, class Load, class Store>
XFMR_INLINE void rope_interleaved_step(const T* x, T* y, std::size_t i, typename V::type cv,
                                       typename V::type sv, Load load, Store store) noexcept {
  auto xv = load(x + i);
  keep_in_register<V>(xv);
  const auto t = V::mul(V::swap_pairs(xv), sv);
  if constexpr (Dir == Rotation::Forward)
    store(y + i, V::fmaddsub(xv, cv, t));  // even: a·c − b·s, odd: b·c + a·s
  else
    store(y + i, V::fmsubadd(xv, cv, t));  // even: a·c + b·s, odd: b·c − a·s
}

/// Channels [i, rot), fewer than a vector and whole pairs (rot even): one masked step.
template <class V, Rotation Dir, typename T>
XFMR_INLINE void rope_interleaved_tail(const T* x, const T* c, const T* s, T* y, std::size_t rot,
                                       std::size_t i) noexcept {
  const std::size_t n = rot - i;
  rope_interleaved_step<V, Dir>(
      x, y, i, V::load_dup_pairs_partial(c + i / 2, n / 2),
      V::load_dup_pairs_partial(s + i / 2, n / 2),
      [n](const T* p) { return V::load_partial(p, n); },
      [n](T* p, typename V::type v) { V::store_partial(p, v, n); });
}

/// Heads per group in rope_half_split_heads: each c/s vector is loaded once per group instead
/// of once per head, which is most of the work per vector when heads are short. Only heads of
/// at most 256 bytes are grouped: walking several heads in step makes the access streams
/// `stride` apart, and at 512 bytes apart the hardware prefetcher stops keeping up on DRAM-sized
/// tensors (measured on Zen 3: ~35% slower than head by head), while short heads lose nothing
/// there.
inline constexpr std::size_t kRopeHeadGroup = 4;
inline constexpr std::size_t kRopeGroupMaxHeadBytes = 256;
/// Channels per chunk of the duplicated c/s scratch in rope_interleaved_heads (2 KiB of stack
/// for float, 4 KiB for double: stays in L1 next to the heads being rotated).
inline constexpr std::size_t kRopeDupChunk = 256;

}  // namespace detail

/// Half-split ("rotate half", NeoX) layout, pairs (i, i + h), h = rot/2, channels [c c c s s s]:
///   y[i]     = x[i]·c[i] − x[i+h]·s[i]
///   y[i + h] = x[i+h]·c[i] + x[i]·s[i]          (Inverse: s → −s)
/// Writes y[0, rot) only. c and s hold h values.
/// \pre rot even; y == x allowed, partial overlap is not; no alignment needed.
template <class Isa, Rotation Dir = Rotation::Forward, typename T>
XFMR_INLINE void rope_half_split(const T* x, const T* c, const T* s, T* y,
                                 std::size_t rot) noexcept {
  using V = Vec<T, Isa>;
  XFMR_ASSERT(rot % 2 == 0);
  XFMR_ASSERT(x == y || x + rot <= y || y + rot <= x);
  const std::size_t h = rot / 2;
  std::size_t i = 0;
  for (; i + V::lanes <= h; i += V::lanes)
    detail::rope_half_split_step<V, Dir>(x, y, h, i, V::load(c + i), V::load(s + i), V::load,
                                         V::store);
  if (i < h) detail::rope_half_split_tail<V, Dir>(x, c, s, y, h, i);
}

/// Interleaved ("rotate every two", RoFormer / GPT-J) layout, pairs (2i, 2i + 1), [cscscs]:
///   y[2i]     = x[2i]·c[i] − x[2i+1]·s[i]
///   y[2i + 1] = x[2i+1]·c[i] + x[2i]·s[i]       (Inverse: s → −s)
/// Vector form: y = x·[c0 c0 c1 c1 …] ∓± swap_pairs(x)·[s0 s0 s1 s1 …] with one fmaddsub.
/// Writes y[0, rot) only. c and s hold rot/2 values.
/// \pre rot even; y == x allowed, partial overlap is not; no alignment needed.
template <class Isa, Rotation Dir = Rotation::Forward, typename T>
XFMR_INLINE void rope_interleaved(const T* x, const T* c, const T* s, T* y,
                                  std::size_t rot) noexcept {
  using V = Vec<T, Isa>;
  XFMR_ASSERT(rot % 2 == 0);
  XFMR_ASSERT(x == y || x + rot <= y || y + rot <= x);
  if constexpr (V::lanes == 1) {
    for (std::size_t i = 0; i < rot / 2; ++i) {
      const T a = x[2 * i], b = x[2 * i + 1];
      const T sn = Dir == Rotation::Forward ? s[i] : -s[i];
      y[2 * i] = a * c[i] - b * sn;
      y[2 * i + 1] = b * c[i] + a * sn;
    }
  } else {
    std::size_t i = 0;
    for (; i + V::lanes <= rot; i += V::lanes)
      detail::rope_interleaved_step<V, Dir>(x, y, i, V::load_dup_pairs(c + i / 2),
                                            V::load_dup_pairs(s + i / 2), V::load, V::store);
    if (i < rot) detail::rope_interleaved_tail<V, Dir>(x, c, s, y, rot, i);
  }
}

/// How rope_half_split_heads / rope_interleaved_heads write y. Cached: ordinary stores.
/// Stream: non-temporal stores (Vec::stream), which send the lines to memory without first
/// reading them into the cache; worth it only out of place with an output far larger than the
/// cache, and followed by simd::stream_fence() before the output is handed to another thread.
/// Stream is a hint: it is used only where every store is a whole vector at an aligned address
/// (y aligned to the vector width, stride and the rotated channels of one store run multiples of
/// the lanes), otherwise the kernel stores as Cached. Results are the same bits either way.
enum class StoreHint { Cached, Stream };

namespace detail {

/// True when every store of rope_*_heads is a full, vector-aligned one: y aligned to
/// sizeof(V::type), stride and `run` (h for half-split, rot for interleaved) multiples of the
/// lanes. Never for one lane (nothing to gain).
template <class V, typename T>
XFMR_INLINE bool rope_can_stream(const T* y, std::size_t run, std::size_t stride) noexcept {
  if constexpr (V::lanes == 1) {
    return false;
  } else {
    return reinterpret_cast<std::uintptr_t>(y) % sizeof(typename V::type) == 0 &&
           stride % V::lanes == 0 && run % V::lanes == 0;
  }
}

/// Stores a full vector of rope_*_heads: V::stream (Stream) or V::store.
template <class V, bool Stream>
struct RopeStore {
  template <typename T>
  XFMR_INLINE void operator()(T* p, typename V::type v) const noexcept {
    if constexpr (Stream)
      V::stream(p, v);
    else
      V::store(p, v);
  }
};

/// rope_half_split_heads with its full-vector stores streamed (Stream) or not, and rot = Rot
/// when Rot > 0 (see with_rope_size).
template <class Isa, Rotation Dir, bool Stream, std::size_t Rot, typename T>
XFMR_INLINE void rope_half_split_heads_with(const T* x, const T* c, const T* s, T* y,
                                            std::size_t rot, std::size_t heads,
                                            std::size_t stride) noexcept {
  using V = Vec<T, Isa>;
  constexpr RopeStore<V, Stream> store{};
  const std::size_t h = (Rot > 0 ? Rot : rot) / 2;
  std::size_t k = 0;
  if (V::lanes > 1 && stride * sizeof(T) <= kRopeGroupMaxHeadBytes) {
    // Short heads kRopeHeadGroup at a time: one c/s load per group.
    constexpr std::size_t G = kRopeHeadGroup;
    for (; k + G <= heads; k += G) {
      const T* xk = x + k * stride;
      T* yk = y + k * stride;
      std::size_t i = 0;
      for (; i + V::lanes <= h; i += V::lanes) {
        const auto ci = V::load(c + i), si = V::load(s + i);
        for (std::size_t g = 0; g < G; ++g)
          rope_half_split_step<V, Dir>(xk + g * stride, yk + g * stride, h, i, ci, si, V::load,
                                       store);
      }
      if (i < h)
        for (std::size_t g = 0; g < G; ++g)
          rope_half_split_tail<V, Dir>(xk + g * stride, c, s, yk + g * stride, h, i);
    }
  }
  // Long heads, and the leftover short ones, one by one.
  for (; k < heads; ++k) {
    const T* xk = x + k * stride;
    T* yk = y + k * stride;
    std::size_t i = 0;
    for (; i + V::lanes <= h; i += V::lanes)
      rope_half_split_step<V, Dir>(xk, yk, h, i, V::load(c + i), V::load(s + i), V::load, store);
    if (i < h) rope_half_split_tail<V, Dir>(xk, c, s, yk, h, i);
  }
}

/// rope_interleaved_heads with its full-vector stores streamed (Stream) or not, and rot = Rot
/// when Rot > 0 (see with_rope_size); V::lanes > 1.
template <class Isa, Rotation Dir, bool Stream, std::size_t Rot, typename T>
XFMR_INLINE void rope_interleaved_heads_with(const T* x, const T* c, const T* s, T* y,
                                             std::size_t rot_arg, std::size_t heads,
                                             std::size_t stride) noexcept {
  using V = Vec<T, Isa>;
  constexpr RopeStore<V, Stream> store{};
  const std::size_t rot = Rot > 0 ? Rot : rot_arg;
  // The duplicated c/s of kRopeDupChunk channels at a time in an L1 scratch, built once and
  // read by every head. (Short heads in groups with the vectors in registers, as half-split
  // does, measured slower once rot is a compile-time constant: 0.77-0.80× on RoPE-2D.)
  constexpr std::size_t chunk = kRopeDupChunk;
  static_assert(chunk % V::lanes == 0);
  alignas(64) T cd[chunk], sd[chunk];
  for (std::size_t i0 = 0; i0 < rot; i0 += chunk) {
    const std::size_t n = rot - i0 < chunk ? rot - i0 : chunk;  // channels in this chunk
    const std::size_t full = n / V::lanes * V::lanes;
    const std::size_t rest = n - full;  // even, < lanes
    for (std::size_t i = 0; i < full; i += V::lanes) {
      V::store(cd + i, V::load_dup_pairs(c + (i0 + i) / 2));
      V::store(sd + i, V::load_dup_pairs(s + (i0 + i) / 2));
    }
    if (rest > 0) {
      V::store(cd + full, V::load_dup_pairs_partial(c + (i0 + full) / 2, rest / 2));
      V::store(sd + full, V::load_dup_pairs_partial(s + (i0 + full) / 2, rest / 2));
    }
    for (std::size_t hd = 0; hd < heads; ++hd) {
      const T* xh = x + hd * stride + i0;
      T* yh = y + hd * stride + i0;
      for (std::size_t i = 0; i < full; i += V::lanes)
        rope_interleaved_step<V, Dir>(xh, yh, i, V::load(cd + i), V::load(sd + i), V::load,
                                      store);
      if (rest > 0)
        rope_interleaved_step<V, Dir>(
            xh, yh, full, V::load(cd + full), V::load(sd + full),
            [rest](const T* p) { return V::load_partial(p, rest); },
            [rest](T* p, typename V::type v) { V::store_partial(p, v, rest); });
    }
  }
}

/// Calls f(std::integral_constant<std::size_t, R>{}) with R = rot for the common rotary sizes
/// (32, 64, 128: heads of 64 or 128 channels, and their halves in RoPE-2D), else R = 0. With R
/// known the multi-head kernels run with compile-time trip counts, unrolled: a head of 32-128
/// channels is only 4-16 vectors, so the loop control of a run-time rot costs as much as the
/// rotation (Zen 3, RoPE-2D on heads of 64, interleaved: 0.42 → 0.63 of the in-place ceiling).
template <class F>
XFMR_INLINE void with_rope_size(std::size_t rot, F f) noexcept {
  switch (rot) {
    case 32: return f(std::integral_constant<std::size_t, 32>{});
    case 64: return f(std::integral_constant<std::size_t, 64>{});
    case 128: return f(std::integral_constant<std::size_t, 128>{});
    default: return f(std::integral_constant<std::size_t, 0>{});
  }
}

}  // namespace detail

/// rope_half_split on `heads` vectors of one token that share c and s: head k reads
/// x + k·stride and writes y + k·stride (channels [0, rot) of it). Same result, bit for bit, as
/// one rope_half_split call per head; short heads are done a group at a time so each c/s vector
/// is loaded once per group. `hint` as StoreHint.
/// \pre rot even, rot <= stride; y == x allowed, otherwise [x, x + heads·stride) and
///      [y, y + heads·stride) do not overlap; no alignment needed.
template <class Isa, Rotation Dir = Rotation::Forward, typename T>
XFMR_INLINE void rope_half_split_heads(const T* x, const T* c, const T* s, T* y, std::size_t rot,
                                       std::size_t heads, std::size_t stride,
                                       StoreHint hint = StoreHint::Cached) noexcept {
  using V = Vec<T, Isa>;
  XFMR_ASSERT(rot % 2 == 0 && rot <= stride);
  const bool stream = hint == StoreHint::Stream && detail::rope_can_stream<V>(y, rot / 2, stride);
  detail::with_rope_size(rot, [&](auto size) {
    if (stream)
      detail::rope_half_split_heads_with<Isa, Dir, true, size()>(x, c, s, y, rot, heads, stride);
    else
      detail::rope_half_split_heads_with<Isa, Dir, false, size()>(x, c, s, y, rot, heads, stride);
  });
}

/// rope_interleaved on `heads` vectors of one token that share c and s: head k reads
/// x + k·stride and writes y + k·stride (channels [0, rot) of it). Same result, bit for bit, as
/// one rope_interleaved call per head, with the pairwise duplication of c and s ([c0 c0 c1 c1 …],
/// a cross-lane shuffle) shared by the heads instead of redone per head: the heads read them from
/// an L1 scratch built once per kRopeDupChunk channels. `hint` as StoreHint.
/// \pre as rope_half_split_heads.
template <class Isa, Rotation Dir = Rotation::Forward, typename T>
XFMR_INLINE void rope_interleaved_heads(const T* x, const T* c, const T* s, T* y, std::size_t rot,
                                        std::size_t heads, std::size_t stride,
                                        StoreHint hint = StoreHint::Cached) noexcept {
  using V = Vec<T, Isa>;
  XFMR_ASSERT(rot % 2 == 0 && rot <= stride);
  if constexpr (V::lanes == 1) {
    (void)hint;
    for (std::size_t k = 0; k < heads; ++k)
      rope_interleaved<Isa, Dir>(x + k * stride, c, s, y + k * stride, rot);
  } else {
    const bool stream = hint == StoreHint::Stream && detail::rope_can_stream<V>(y, rot, stride);
    detail::with_rope_size(rot, [&](auto size) {
      if (stream)
        detail::rope_interleaved_heads_with<Isa, Dir, true, size()>(x, c, s, y, rot, heads, stride);
      else
        detail::rope_interleaved_heads_with<Isa, Dir, false, size()>(x, c, s, y, rot, heads,
                                                                      stride);
    });
  }
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_ROPE_HPP
