// SPDX-License-Identifier: MIT
// Activation kinds by name (HF transformers' config "hidden_act") and in-place application to a
// token matrix. The vector functors and their error bounds are in simd/activation.hpp.
#ifndef XFMR_LAYERS_ACTIVATION_HPP
#define XFMR_LAYERS_ACTIVATION_HPP

#include <string>
#include <string_view>

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/activation.hpp"
#include "../simd/isa.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// The elementwise activations of the supported models (simd/activation.hpp has the formulas).
enum class ActivationKind { Identity, Relu, GeluErf, GeluTanh, Silu };

/// The activation an HF config names ("hidden_act"), as transformers' ACT2FN maps it:
///   "gelu", "gelu_python"                                  → GeluErf   (x·Φ(x))
///   "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate"
///                                                          → GeluTanh  (one formula; gelu_fast
///     rounds √(2/π) to 0.7978845608, a relative 3.6e-12 apart, below float resolution)
///   "relu" → Relu,  "silu", "swish" → Silu,  "linear" → Identity.
/// Exact, case-sensitive match. Throws std::invalid_argument naming the name and the supported
/// ones for anything else (e.g. "quick_gelu", "gelu_10", "tanh").
inline ActivationKind activation_from_name(std::string_view hf_name) {
  struct Entry {
    std::string_view name;
    ActivationKind kind;
  };
  static constexpr Entry kTable[] = {
      {"gelu", ActivationKind::GeluErf},           {"gelu_python", ActivationKind::GeluErf},
      {"gelu_new", ActivationKind::GeluTanh},      {"gelu_pytorch_tanh", ActivationKind::GeluTanh},
      {"gelu_fast", ActivationKind::GeluTanh},     {"gelu_accurate", ActivationKind::GeluTanh},
      {"relu", ActivationKind::Relu},              {"silu", ActivationKind::Silu},
      {"swish", ActivationKind::Silu},             {"linear", ActivationKind::Identity}};
  for (const auto& e : kTable)
    if (e.name == hf_name) return e.kind;
  std::string names;
  for (const auto& e : kTable) {
    if (!names.empty()) names += ", ";
    names += e.name;
  }
  detail::throw_invalid("activation_from_name", "expected one of ", names, " (got \"",
                        std::string(hf_name), "\")");
}

/// "identity", "relu", "gelu_erf", "gelu_tanh", "silu" (for messages and logs).
inline const char* to_string(ActivationKind kind) noexcept {
  switch (kind) {
    case ActivationKind::Identity: return "identity";
    case ActivationKind::Relu: return "relu";
    case ActivationKind::GeluErf: return "gelu_erf";
    case ActivationKind::GeluTanh: return "gelu_tanh";
    case ActivationKind::Silu: return "silu";
  }
  return "unknown";
}

namespace detail {

/// f(simd functor) for kind: one switch, outside any loop.
template <class F>
decltype(auto) visit_activation(ActivationKind kind, F&& f) {
  switch (kind) {
    case ActivationKind::Relu: return f(simd::Relu{});
    case ActivationKind::GeluErf: return f(simd::GeluErf{});
    case ActivationKind::GeluTanh: return f(simd::GeluTanh{});
    case ActivationKind::Silu: return f(simd::Silu{});
    case ActivationKind::Identity: break;
  }
  return f(simd::Identity{});
}

/// c = act(c) in place over rows × cols values at c (rows ld apart). Not inlined: the Dense
/// GEMM's tile pass calls it once per finished tile, so each activation's code is compiled once,
/// not once per tile shape and epilogue of the GEMM engine.
template <typename T, class Isa>
XFMR_NOINLINE void activation_block(ActivationKind kind, T* c, Index ld, Index rows,
                                    Index cols) noexcept {
  if (kind == ActivationKind::Identity) return;
  constexpr Index kTileRow = 2 * static_cast<Index>(simd::Vec<T, Isa>::lanes);
  visit_activation(kind, [&](auto f) {
    if (cols == kTileRow)  // a GEMM register tile's row: n constant, one step, no inner loop
      for (Index r = 0; r < rows; ++r)
        simd::activation_row<Isa>(f, c + r * ld, c + r * ld, kTileRow);
    else
      for (Index r = 0; r < rows; ++r) simd::activation_row<Isa>(f, c + r * ld, c + r * ld, cols);
  });
}

}  // namespace detail

/// x = act(x) in place, elementwise over a (rows × cols) view (rows may be strided).
/// Identity leaves x untouched. Nothing to check, nothing thrown; no allocation.
template <typename T, class Isa = simd::native_isa>
void apply_activation(ActivationKind kind, MatrixRef<T> x) {
  static_assert(detail::is_real_v<T>, "xfmr::apply_activation: T must be float or double");
  if (x.outerStride() == x.cols())  // contiguous: one row, one tail
    detail::activation_block<T, Isa>(kind, x.data(), 0, 1, x.rows() * x.cols());
  else
    detail::activation_block<T, Isa>(kind, x.data(), x.outerStride(), x.rows(), x.cols());
}

XFMR_NAMESPACE_END

#endif  // XFMR_LAYERS_ACTIVATION_HPP
