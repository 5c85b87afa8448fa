// SPDX-License-Identifier: MIT
// Epilogues of the GEMM engine: functors applied to each vector of the register tile between
// v = α·A·B + β·C and the store, inlined (a template parameter: no call, no branch per element).
//
// Protocol: a class with
//   template <class V> typename V::type apply(typename V::type v, Index i, Index j,
//                                             const T* c, std::size_t n) const noexcept;
// v holds C(i, j..j+n) (n == V::lanes: a full vector, else the first n lanes of a tail), c points
// at C(i, j) still holding the value C had before the call (an epilogue may read n values there).
// Use gemm_load<V>(p, n) to read n values of a row operand (no access past n).
// An epilogue may also have a tile pass, run once per finished tile right after its store:
//   void tile(T* c, Index ldc, Index rows, Index ncols) const noexcept;
// c at the tile's first element, rows × ncols values (rows ldc apart), still in L1. It is for work
// chosen at run time (Dense's activation): inlined at every vector of every tile variant it
// would be compiled once per choice; called once per tile, it is compiled once and costs a load
// and a store per value (≈ 0.5 % of a K = 384 tile's FMAs).
#ifndef XFMR_SIMD_GEMM_EPILOGUE_HPP
#define XFMR_SIMD_GEMM_EPILOGUE_HPP

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../config.hpp"
#include "vec.hpp"

XFMR_NAMESPACE_BEGIN
namespace simd {

/// n values at p into a vector (n < lanes: masked, lanes past n zero, nothing past p[n−1] read).
template <class V, typename T>
XFMR_INLINE typename V::type gemm_load(const T* p, std::size_t n) noexcept {
  return n == V::lanes ? V::load(p) : V::load_partial(p, n);
}
/// The first n lanes of v to p (nothing past p[n−1] written).
template <class V, typename T>
XFMR_INLINE void gemm_store(T* p, typename V::type v, std::size_t n) noexcept {
  if (n == V::lanes)
    V::store(p, v);
  else
    V::store_partial(p, v, n);
}

/// Whether Epi has a tile pass for C of type T (see the protocol above).
template <class Epi, typename T, class = void>
struct has_tile_pass : std::false_type {};
template <class Epi, typename T>
struct has_tile_pass<Epi, T,
                     std::void_t<decltype(std::declval<const Epi&>().tile(
                         std::declval<T*>(), Index{}, Index{}, Index{}))>> : std::true_type {};
template <class Epi, typename T>
inline constexpr bool has_tile_pass_v = has_tile_pass<Epi, T>::value;

/// C = α·A·B + β·C.
struct NoEpilogue {
  template <class V, typename T>
  XFMR_INLINE typename V::type apply(typename V::type v, Index, Index, const T*,
                                     std::size_t) const noexcept {
    return v;
  }
};

/// C(i, j) = v + bias[j] (bias: n values).
template <typename T>
struct BiasColumns {
  const T* bias;
  template <class V>
  XFMR_INLINE typename V::type apply(typename V::type v, Index, Index j, const T*,
                                     std::size_t n) const noexcept {
    return V::add(v, gemm_load<V>(bias + j, n));
  }
};

/// C(i, j) = scale[i]·v (scale: m values).
template <typename T>
struct ScaleRows {
  const T* scale;
  template <class V>
  XFMR_INLINE typename V::type apply(typename V::type v, Index i, Index, const T*,
                                     std::size_t) const noexcept {
    return V::mul(v, V::set1(scale[i]));
  }
};

/// C(i, j) = v + scale[j]·C_old(i, j): C = A·B + C·diag(s), the online-softmax rescale of the
/// accumulator (scale: n values). Use with β = 0 (with β ≠ 0 the old C would count twice).
/// C_old is read even where scale[j] == 0, so a NaN in C propagates (0·NaN).
template <typename T>
struct ScaleOldColumns {
  const T* scale;
  template <class V>
  XFMR_INLINE typename V::type apply(typename V::type v, Index, Index j, const T* c,
                                     std::size_t n) const noexcept {
    return V::fmadd(gemm_load<V>(scale + j, n), gemm_load<V>(c, n), v);
  }
};

/// C(i, j) = v + R(i, j), R row-major with leading dimension ld (the residual add); R must not
/// overlap C unless R == C exactly (then it is β = 1).
template <typename T>
struct AddResidual {
  const T* r;
  Index ld;
  template <class V>
  XFMR_INLINE typename V::type apply(typename V::type v, Index i, Index j, const T*,
                                     std::size_t n) const noexcept {
    return V::add(v, gemm_load<V>(r + i * ld + j, n));
  }
};

/// C(i, j) = f(v), f elementwise on vectors: `template <class V> typename V::type
/// operator()(typename V::type) const noexcept` (an activation). Lanes past n of a tail hold
/// zeros, so f(0) must be harmless (it is discarded).
template <class F>
struct Activation {
  F f;
  template <class V, typename T>
  XFMR_INLINE typename V::type apply(typename V::type v, Index, Index, const T*,
                                     std::size_t) const noexcept {
    return f.template operator()<V>(v);
  }
};
template <class F>
Activation<F> activation(F f) noexcept {
  return Activation<F>{f};
}

/// max(v, 0).
struct Relu {
  template <class V>
  XFMR_INLINE typename V::type operator()(typename V::type v) const noexcept {
    return V::max(v, V::zero());
  }
};

/// first, then second (e.g. bias, then activation; or rescale of the old C, then residual).
template <class E1, class E2>
struct Chain {
  E1 first;
  E2 second;
  template <class V, typename T>
  XFMR_INLINE typename V::type apply(typename V::type v, Index i, Index j, const T* c,
                                     std::size_t n) const noexcept {
    static_assert(!has_tile_pass_v<E1, T> && !has_tile_pass_v<E2, T>,
                  "xfmr::simd::Chain: a tile pass runs after the whole tile's store, so it cannot "
                  "take a place in a chain: give it to the outermost epilogue");
    return second.template apply<V>(first.template apply<V>(v, i, j, c, n), i, j, c, n);
  }
};
/// chain(e1, e2, …): e1 applied first.
template <class E1, class E2>
Chain<E1, E2> chain(E1 e1, E2 e2) noexcept {
  return Chain<E1, E2>{e1, e2};
}
template <class E1, class E2, class E3, class... Es>
auto chain(E1 e1, E2 e2, E3 e3, Es... es) noexcept {
  return chain(chain(e1, e2), e3, es...);
}

}  // namespace simd
XFMR_NAMESPACE_END

#endif  // XFMR_SIMD_GEMM_EPILOGUE_HPP
