// SPDX-License-Identifier: MIT
// Dense (PyTorch nn.Linear): y = act(x·Wᵀ + b) on the one GEMM engine, the weight packed once.
#ifndef XFMR_LAYERS_DENSE_HPP
#define XFMR_LAYERS_DENSE_HPP

#include <cstddef>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../error.hpp"
#include "../simd/gemm.hpp"
#include "../simd/gemm_bf16.hpp"
#include "../simd/isa.hpp"
#include "../types.hpp"
#include "activation.hpp"

XFMR_NAMESPACE_BEGIN
/// A fully connected layer as PyTorch / HF nn.Linear: y = act(x·Wᵀ + b), W (out × in) as
/// nn.Linear stores it, b (out) or none, act an ActivationKind fused into the GEMM's epilogue
/// (bias, then activation, on the register tile: no second pass over y).
///
/// The weight is packed once at construction into the GEMM engine's PackedB layout (Wᵀ, the
/// (in × out) B operand, in column panels); the layer keeps only the packed copy and the bias,
/// never a view of the caller's arrays. forward() is const, allocation-free and keeps no scratch,
/// so any number of threads may call it concurrently on one Dense.
///
/// WeightStorage::Bf16 (Dense<float> only): the weight is rounded to bf16 (RNE) once and packed
/// for the bf16 GEMM (simd/gemm_bf16.hpp: half the bytes; vdpbf16ps with x rounded to bf16 too
/// where the CPU has AVX512_BF16, x in fp32 against the widened weight elsewhere); y is within
/// ≈ (2^-7 + in·2^-24)·Σ|x||w| of the exact product (per entry, before bias and activation).
/// On the vdpbf16ps path forward() rounds x into a per-thread buffer (allocated once per thread
/// and size).
template <typename T, class Isa = simd::native_isa>
class Dense {
  static_assert(detail::is_real_v<T>, "xfmr::Dense<T>: T must be float or double");

 public:
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  using WeightRef = Eigen::Ref<const RowMatrix<T>, 0, Eigen::OuterStride<>>;
  using BiasRef = Eigen::Ref<const Vector>;

  /// weight: [out × in] as PyTorch/HF nn.Linear stores it (in, out >= 1); bias: out values, or
  /// empty (no bias). Throws std::invalid_argument on an empty weight or a bias of another size.
  /// storage: WeightStorage::Bf16 keeps the weight rounded to bf16 (float only: throws
  /// std::invalid_argument for Dense<double>).
  Dense(ConstMatrixRef<T> weight, const Eigen::Ref<const Vector>& bias,
        ActivationKind activation = ActivationKind::Identity,
        WeightStorage storage = WeightStorage::Native)
      : m_in(weight.cols()), m_out(weight.rows()), m_activation(activation), m_storage(storage) {
    detail::require(m_in >= 1 && m_out >= 1, "Dense",
                    "expected a weight of at least 1x1 (out x in) (got ", m_out, "x", m_in, ")");
    detail::require(bias.size() == 0 || bias.size() == m_out, "Dense", "expected a bias of ",
                    m_out, " values (the weight's rows) or none (got ", bias.size(), ")");
    detail::require(storage == WeightStorage::Native || std::is_same_v<T, float>, "Dense",
                    "expected WeightStorage::Native for Dense<double> (got bf16: bf16 weights "
                    "are for Dense<float>)");
    m_bias = bias;
    const simd::GemmB<T> b{weight.data(), weight.outerStride(), true};
    if (storage == WeightStorage::Bf16) {
      if constexpr (std::is_same_v<T, float>) {
        m_packed_bf16.resize(
            static_cast<std::size_t>(simd::packed_b_bf16_size<Isa>(m_in, m_out)));
        simd::pack_b_bf16<Isa>(m_in, m_out, b, m_packed_bf16.data());
      }
    } else {
      m_packed.resize(simd::packed_b_size<T, Isa>(m_in, m_out));
      simd::pack_b<Isa>(m_in, m_out, b, m_packed.data());
    }
  }
  /// Without bias.
  explicit Dense(ConstMatrixRef<T> weight, ActivationKind activation = ActivationKind::Identity,
                 WeightStorage storage = WeightStorage::Native)
      : Dense(weight, Vector(), activation, storage) {}

  /// Several Linear layers on the same input stacked into one (fused QKV): the weights
  /// (out_i × in, equal in) one above the other, so y's columns are [y_0 | y_1 | …]. biases:
  /// empty (no bias), or one per weight, each of its weight's rows or empty (zeros). Throws
  /// std::invalid_argument naming the offending part.
  static Dense concat(std::initializer_list<WeightRef> weights,
                      std::initializer_list<BiasRef> biases = {},
                      ActivationKind activation = ActivationKind::Identity,
                      WeightStorage storage = WeightStorage::Native) {
    const char* where = "Dense::concat";
    detail::require(weights.size() >= 1, where, "expected at least one weight (got 0)");
    detail::require(biases.size() == 0 || biases.size() == weights.size(), where, "expected ",
                    weights.size(), " biases (one per weight) or none (got ", biases.size(), ")");
    const Index in = weights.begin()->cols();
    Index out = 0, i = 0;
    for (const auto& w : weights) {
      detail::require(w.cols() == in, where, "expected every weight to have in=", in,
                      " columns (got ", w.cols(), " for weight ", i, ")");
      out += w.rows();
      ++i;
    }
    bool any_bias = false;
    i = 0;
    auto w = weights.begin();
    for (const auto& b : biases) {
      detail::require(b.size() == 0 || b.size() == w->rows(), where, "expected bias ", i,
                      " to have ", w->rows(), " values (its weight's rows) or none (got ",
                      b.size(), ")");
      any_bias = any_bias || b.size() > 0;
      ++i;
      ++w;
    }
    RowMatrix<T> stacked(out, in);
    Vector bias = any_bias ? Vector(Vector::Zero(out)) : Vector();
    Index row = 0;
    w = weights.begin();
    auto b = biases.begin();
    for (; w != weights.end(); ++w) {
      stacked.middleRows(row, w->rows()) = *w;
      if (any_bias && b->size() > 0) bias.segment(row, w->rows()) = *b;
      row += w->rows();
      if (b != biases.end()) ++b;
    }
    return Dense(stacked, bias, activation, storage);
  }

  Index in_features() const noexcept { return m_in; }
  Index out_features() const noexcept { return m_out; }
  ActivationKind activation() const noexcept { return m_activation; }
  /// How the weight is kept (Native: T; Bf16: rounded to bf16).
  WeightStorage weight_storage() const noexcept { return m_storage; }
  bool has_bias() const noexcept { return m_bias.size() > 0; }
  /// The bias (out values), empty without one.
  const Vector& bias() const noexcept { return m_bias; }

  /// y = act(x·Wᵀ + b): x (n × in), y (n × out), rows of either may be strided; n may be 0.
  /// y must not overlap x. Throws std::invalid_argument on a shape mismatch or an overlap.
  void forward(ConstMatrixRef<T> x, MatrixRef<T> y) const {
    check_io(x, y);
    detail::visit_activation(m_activation, [&](auto f) {
      if (has_bias())
        run(x, y, simd::chain(simd::BiasColumns<T>{m_bias.data()}, simd::activation(f)));
      else
        run(x, y, simd::activation(f));
    });
  }

  /// y = x·Wᵀ + b + residual: the residual add of a Transformer sublayer, fused (bias, then
  /// residual, as PyTorch's dense(x) + residual rounds). residual (n × out) may be y itself
  /// (same data and stride: y += x·Wᵀ + b) but must not partially overlap it; neither may
  /// overlap x. Throws std::logic_error when the activation is not Identity,
  /// std::invalid_argument on shapes or overlaps.
  void forward_add(ConstMatrixRef<T> x, ConstMatrixRef<T> residual, MatrixRef<T> y) const {
    if (m_activation != ActivationKind::Identity)
      detail::throw_logic("Dense", "forward_add expected activation identity (got ",
                          to_string(m_activation), ")");
    check_io(x, y);
    detail::require(residual.rows() == x.rows() && residual.cols() == m_out, "Dense",
                    "expected a residual of ", x.rows(), "x", m_out, " (got ", residual.rows(),
                    "x", residual.cols(), ")");
    const bool same = residual.data() == y.data() && residual.outerStride() == y.outerStride();
    detail::require(same || !detail::views_overlap(residual.data(), residual.outerStride(),
                                                   residual.rows(), residual.cols(), y.data(),
                                                   y.outerStride(), y.rows(), y.cols()),
                    "Dense", "expected a residual that is y itself (same data and stride) or "
                    "does not overlap y (got a partial overlap)");
    const simd::AddResidual<T> add{residual.data(), residual.outerStride()};
    if (has_bias())
      run(x, y, simd::chain(simd::BiasColumns<T>{m_bias.data()}, add));
    else
      run(x, y, add);
  }

 private:
  void check_io(ConstMatrixRef<T> x, const MatrixRef<T>& y) const {
    detail::require(x.cols() == m_in, "Dense", "expected x with in_features=", m_in,
                    " columns (got ", x.rows(), "x", x.cols(), ")");
    detail::require(y.rows() == x.rows() && y.cols() == m_out, "Dense", "expected y of ",
                    x.rows(), "x", m_out, " (x's rows x out_features) (got ", y.rows(), "x",
                    y.cols(), ")");
    detail::require(!detail::views_overlap(x.data(), x.outerStride(), x.rows(), x.cols(),
                                           y.data(), y.outerStride(), y.rows(), y.cols()),
                    "Dense", "expected y not to overlap x (got overlapping views)");
  }

  template <class Epi>
  void run(ConstMatrixRef<T> x, MatrixRef<T>& y, const Epi& epi) const noexcept {
    if constexpr (std::is_same_v<T, float>)
      if (m_storage == WeightStorage::Bf16) {
        simd::gemm<Isa>(x.rows(), m_out, m_in, 1.0f,
                        simd::GemmA<float>{x.data(), x.outerStride(), 1},
                        simd::PackedB<bf16>{m_packed_bf16.data(), m_in, m_out}, 0.0f, y.data(),
                        y.outerStride(), epi);
        return;
      }
    simd::gemm<Isa>(x.rows(), m_out, m_in, T(1), simd::GemmA<T>{x.data(), x.outerStride(), 1},
                    simd::PackedB<T>{m_packed.data(), m_in, m_out}, T(0), y.data(),
                    y.outerStride(), epi);
  }

  Index m_in, m_out;
  ActivationKind m_activation;
  WeightStorage m_storage;
  Vector m_bias;
  Vector m_packed;  // PackedB<T> of Wᵀ (in × out), packed_b_size<T, Isa>(in, out) values
  std::vector<bf16> m_packed_bf16;  // or (Bf16): pack_b_bf16 of Wᵀ, packed_b_bf16_size values
};

XFMR_NAMESPACE_END

#endif  // XFMR_LAYERS_DENSE_HPP
