// SPDX-License-Identifier: MIT
// Activations as vector functors (they plug into the GEMM epilogue Activation<F>) and a row
// kernel: GELU (erf form and tanh form), SiLU; ReLU is simd::Relu of gemm_epilogue.hpp.
#ifndef XFMR_SIMD_ACTIVATION_HPP
#define XFMR_SIMD_ACTIVATION_HPP

#include <cstddef>
#include <type_traits>

#include "../config.hpp"
#include "erf.hpp"
#include "exp.hpp"
#include "gemm_epilogue.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {
namespace detail {

template <class V>
struct vec_scalar;
template <typename T, class Isa>
struct vec_scalar<Vec<T, Isa>> {
  using type = T;
  using isa = Isa;
};

/// Inputs below this give exactly ±0 for every activation here (GELU and SiLU of −1000 underflow
/// in double); clamping to it first makes f(−inf) = −0 instead of −inf·0 = NaN. max() keeps NaN.
template <class V>
XFMR_INLINE typename V::type clamp_below(typename V::type x) noexcept {
  using T = typename vec_scalar<V>::type;
  return V::max(V::set1(T(-1000)), x);
}

/// x·σ(t) with σ(t) = 1/(1 + e^{−t}), through e^{−|t|} ∈ [0, 1] (no overflow):
/// σ(t) = 1/(1 + e^{−|t|}) for t >= 0, e^{−|t|}/(1 + e^{−|t|}) for t < 0.
template <class V>
XFMR_INLINE typename V::type times_sigmoid(typename V::type x, typename V::type t) noexcept {
  using T = typename vec_scalar<V>::type;
  using Isa = typename vec_scalar<V>::isa;
  const auto e = exp<Isa, T>(V::sub(V::zero(), V::abs(t)));
  const auto one = V::set1(T(1));
  const auto num = V::select_lt(t, V::zero(), e, one);
  return V::div(V::mul(x, num), V::add(one, e));
}

}  // namespace detail

/// GELU, erf form (HF "gelu", torch.nn.GELU()): x·Φ(x) = ½·x·(1 + erf(x/√2)), evaluated as
/// ½·x·erfc(−x/√2), so the negative tail keeps its relative accuracy (no 1 + erf cancellation).
/// e^{−x²/2} is taken from x itself by an exact split of x² (never from the rounded x/√2), so
/// the error stays ≤ 8 ulp (float: ≤ 6) over the whole range (≤ 32 ulp for x < −37.5 double,
/// x < −13 float, where erfc(−x/√2) is subnormal: a subnormal intermediate); tested in
/// tests/simd/activation.test.cpp against long double.
/// gelu(+inf) = +inf, gelu(−inf) = −0, NaN gives NaN.
struct GeluErf {
  template <class V>
  XFMR_INLINE typename V::type operator()(typename V::type v) const noexcept {
    using T = typename detail::vec_scalar<V>::type;
    using Isa = typename detail::vec_scalar<V>::isa;
    const auto x = detail::clamp_below<V>(v);
    const auto y = V::mul(x, V::set1(T(-0.70710678118654752440084436210484904)));
    // e^{−y²} = e^{−x²/2} from x itself: the rounding of y does not reach the exponent.
    const auto e = detail::exp_neg_square<Isa, T>(V::abs(x), T(0.5));
    return V::mul(V::mul(x, V::set1(T(0.5))), detail::erfc_with<Isa, T>(y, e));
  }
};

/// GELU, tanh form (HF "gelu_new", "gelu_pytorch_tanh", "gelu_fast"; torch's
/// approximate="tanh"): ½·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³), evaluated as x·σ(2u)
/// through e^{−2|u|} (no overflow). Error ≤ 6 + 4·|2u| ulp (tested): the roundings of u
/// (relative ~4ε) are amplified by the conditioning |2u| of e^{2u}, as in any formula for u ≪ 0
/// (HF's 1 + tanh(u) loses everything there to cancellation).
/// gelu(+inf) = +inf, gelu(−inf) = −0, NaN gives NaN.
struct GeluTanh {
  template <class V>
  XFMR_INLINE typename V::type operator()(typename V::type v) const noexcept {
    using T = typename detail::vec_scalar<V>::type;
    const auto x = detail::clamp_below<V>(v);
    // 2u = 2√(2/π)·x·(1 + 0.044715·x²)
    const auto inner = V::fmadd(V::mul(x, x), V::set1(T(0.044715)), V::set1(T(1)));
    const auto t = V::mul(V::mul(x, V::set1(T(1.5957691216057307117597842397375))), inner);
    return detail::times_sigmoid<V>(x, t);
  }
};

/// SiLU / swish (HF "silu", "swish"): x·σ(x) = x/(1 + e^{−x}), through e^{−|x|} (no overflow).
/// Error ≤ 4 + |x| ulp (tested; |x| is the conditioning of e^{−x}).
/// silu(+inf) = +inf, silu(−inf) = −0, NaN gives NaN.
struct Silu {
  template <class V>
  XFMR_INLINE typename V::type operator()(typename V::type v) const noexcept {
    const auto x = detail::clamp_below<V>(v);
    return detail::times_sigmoid<V>(x, x);
  }
};

/// The identity (an Activation<Identity> epilogue is a no-op).
struct Identity {
  template <class V>
  XFMR_INLINE typename V::type operator()(typename V::type v) const noexcept {
    return v;
  }
};

/// out[i] = f(in[i]) for i < n, f one of the functors above (or any with the same operator()).
/// out may be in (in place); partial overlap is not allowed. No alignment needed; the tail is
/// masked (nothing past in[n−1] read, nothing past out[n−1] written). Two vectors per step,
/// interleaved (detail::map_row): the bits of one vector at a time, 1.2–1.4× faster for GELU and
/// SiLU. Inlined: Dense's tile pass calls it on rows of two vectors, where a call per row cost
/// as much as the interleaving gains.
template <class Isa, typename T, class F>
XFMR_INLINE void activation_row(F f, const T* in, T* out, Index n) noexcept {
  const auto apply = [f](auto isa, auto v) XFMR_INLINE_LAMBDA {
    return f.template operator()<Vec<T, decltype(isa)>>(v);
  };
  detail::map_row<Isa, T>(in, out, static_cast<std::size_t>(n), apply);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_ACTIVATION_HPP
