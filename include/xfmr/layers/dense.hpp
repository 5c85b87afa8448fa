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
#include "../thread_pool.hpp"
#include "../types.hpp"
#include "activation.hpp"

XFMR_NAMESPACE_BEGIN
/// A fully connected layer as PyTorch / HF nn.Linear: y = act(x·Wᵀ + b), W (out × in) as
/// nn.Linear stores it, b (out) or none, act an ActivationKind fused into the GEMM's epilogue
/// (the bias on the register tile, the activation on each finished tile while it is in L1: no
/// second pass over y).
///
/// The weight is packed once at construction into the GEMM engine's PackedB layout (Wᵀ, the
/// (in × out) B operand, in column panels); the layer keeps only the packed copy and the bias,
/// never a view of the caller's arrays. forward() is const, allocation-free and keeps no scratch,
/// so any number of threads may call it concurrently on one Dense.
///
/// Threads (the optional `threads`, `pool` of forward / forward_add): the product is cut into
/// blocks of rows of x (blocks of about the GEMM's row block mc, their count a multiple of
/// `threads`, sizes multiples of mr), or, when x has too few rows for that (decoding), into
/// blocks of whole nr-column panels of W; the blocks run as `threads` parts on `pool` (null:
/// default_thread_pool()). Every element of y is summed in the same order whatever block holds
/// it, so y is the same bits for any thread count. A product below about 2^18 multiply-adds per
/// part runs on fewer parts (one thread's work would not pay for the hand-over).
///
/// WeightStorage::Bf16 (Dense<float> only): the weight is rounded to bf16 (RNE) once and packed
/// for the bf16 GEMM (simd/gemm_bf16.hpp: half the bytes; vdpbf16ps with x rounded to bf16 too
/// where the CPU has AVX512_BF16, x in fp32 against the widened weight elsewhere); y is within
/// ≈ (2^-7 + in·2^-24)·Σ|x||w| of the exact product (per entry, before bias and activation).
/// On the vdpbf16ps path forward() rounds x into a per-thread buffer (allocated once per thread
/// and size). The bf16 kernel (simd::Bf16Kernel: Auto, DotProduct = vdpbf16ps, Widen = weight
/// widened to fp32 per panel) is fixed at construction, Auto resolved then (bf16_kernel() says
/// which runs); both kernels read the same packed weight and keep the bound above.
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
  /// std::invalid_argument for Dense<double>). bf16_kernel: the bf16 GEMM's micro-kernel
  /// (DotProduct where not compiled runs Widen; ignored for Native storage).
  Dense(ConstMatrixRef<T> weight, const Eigen::Ref<const Vector>& bias,
        ActivationKind activation = ActivationKind::Identity,
        WeightStorage storage = WeightStorage::Native,
        simd::Bf16Kernel bf16_kernel = simd::Bf16Kernel::Auto)
      : m_in(weight.cols()),
        m_out(weight.rows()),
        m_activation(activation),
        m_storage(storage),
        m_bf16_kernel(simd::gemm_bf16_resolve<Isa>(bf16_kernel)) {
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
                 WeightStorage storage = WeightStorage::Native,
                 simd::Bf16Kernel bf16_kernel = simd::Bf16Kernel::Auto)
      : Dense(weight, Vector(), activation, storage, bf16_kernel) {}

  /// Several Linear layers on the same input stacked into one (fused QKV): the weights
  /// (out_i × in, equal in) one above the other, so y's columns are [y_0 | y_1 | …]. biases:
  /// empty (no bias), or one per weight, each of its weight's rows or empty (zeros). Throws
  /// std::invalid_argument naming the offending part.
  static Dense concat(std::initializer_list<WeightRef> weights,
                      std::initializer_list<BiasRef> biases = {},
                      ActivationKind activation = ActivationKind::Identity,
                      WeightStorage storage = WeightStorage::Native,
                      simd::Bf16Kernel bf16_kernel = simd::Bf16Kernel::Auto) {
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
    return Dense(stacked, bias, activation, storage, bf16_kernel);
  }

  Index in_features() const noexcept { return m_in; }
  Index out_features() const noexcept { return m_out; }
  ActivationKind activation() const noexcept { return m_activation; }
  /// How the weight is kept (Native: T; Bf16: rounded to bf16).
  WeightStorage weight_storage() const noexcept { return m_storage; }
  /// The bf16 kernel forward() runs with WeightStorage::Bf16: DotProduct or Widen (Auto
  /// resolved at construction; simd::gemm_bf16_resolve).
  simd::Bf16Kernel bf16_kernel() const noexcept { return m_bf16_kernel; }
  bool has_bias() const noexcept { return m_bias.size() > 0; }
  /// The bias (out values), empty without one.
  const Vector& bias() const noexcept { return m_bias; }

  /// y = act(x·Wᵀ + b): x (n × in), y (n × out), rows of either may be strided; n may be 0.
  /// y must not overlap x. threads >= 1 parts on pool (see the class comment; same bits for any
  /// count). Throws std::invalid_argument on a shape mismatch, an overlap or threads < 1.
  void forward(ConstMatrixRef<T> x, MatrixRef<T> y, int threads = 1,
               ThreadPool* pool = nullptr) const {
    check_io(x, y, threads);
    run(x, y, threads, pool, nullptr, 0, m_activation);
  }

  /// y = x·Wᵀ + b + residual: the residual add of a Transformer sublayer, fused (bias, then
  /// residual, as PyTorch's dense(x) + residual rounds). residual (n × out) may be y itself
  /// (same data and stride: y += x·Wᵀ + b) but must not partially overlap it; neither may
  /// overlap x. threads, pool: as forward. Throws std::logic_error when the activation is not
  /// Identity, std::invalid_argument on shapes, overlaps or threads < 1.
  void forward_add(ConstMatrixRef<T> x, ConstMatrixRef<T> residual, MatrixRef<T> y,
                   int threads = 1, ThreadPool* pool = nullptr) const {
    if (m_activation != ActivationKind::Identity)
      detail::throw_logic("Dense", "forward_add expected activation identity (got ",
                          to_string(m_activation), ")");
    check_io(x, y, threads);
    detail::require(residual.rows() == x.rows() && residual.cols() == m_out, "Dense",
                    "expected a residual of ", x.rows(), "x", m_out, " (got ", residual.rows(),
                    "x", residual.cols(), ")");
    const bool same = residual.data() == y.data() && residual.outerStride() == y.outerStride();
    detail::require(same || !detail::views_overlap(residual.data(), residual.outerStride(),
                                                   residual.rows(), residual.cols(), y.data(),
                                                   y.outerStride(), y.rows(), y.cols()),
                    "Dense", "expected a residual that is y itself (same data and stride) or "
                    "does not overlap y (got a partial overlap)");
    run(x, y, threads, pool, residual.data(), residual.outerStride(), ActivationKind::Identity);
  }

 private:
  void check_io(ConstMatrixRef<T> x, const MatrixRef<T>& y, int threads) const {
    detail::require(threads >= 1, "Dense", "expected threads >= 1 (got ", threads, ")");
    detail::require(x.cols() == m_in, "Dense", "expected x with in_features=", m_in,
                    " columns (got ", x.rows(), "x", x.cols(), ")");
    detail::require(y.rows() == x.rows() && y.cols() == m_out, "Dense", "expected y of ",
                    x.rows(), "x", m_out, " (x's rows x out_features) (got ", y.rows(), "x",
                    y.cols(), ")");
    detail::require(!detail::views_overlap(x.data(), x.outerStride(), x.rows(), x.cols(),
                                           y.data(), y.outerStride(), y.rows(), y.cols()),
                    "Dense", "expected y not to overlap x (got overlapping views)");
  }

  // The epilogue of every product: bias (if any), then residual (if any) on the register tile,
  // then act on each finished tile (the GEMM's tile pass). One epilogue type with run-time
  // parts: the engine is compiled once per weight storage, not once per bias × residual ×
  // activation (each ~4 s of GCC time).
  struct Epilogue {
    const T* bias;      // at the block's first column, or null
    const T* residual;  // at the block's first element, or null
    Index ldr;
    ActivationKind act;
    template <class V>
    XFMR_INLINE typename V::type apply(typename V::type v, Index i, Index j, const T*,
                                       std::size_t n) const noexcept {
      if (bias) v = V::add(v, simd::gemm_load<V>(bias + j, n));
      if (residual) v = V::add(v, simd::gemm_load<V>(residual + i * ldr + j, n));
      return v;
    }
    void tile(T* c, Index ldc, Index rows, Index cols) const noexcept {
      if (act != ActivationKind::Identity)
        detail::activation_block<T, Isa>(act, c, ldc, rows, cols);
    }
  };

  // y = act(x·Wᵀ + b + residual) (residual: null, or ldr apart); see Epilogue.
  void run(ConstMatrixRef<T> x, MatrixRef<T>& y, int threads, ThreadPool* pool,
           const T* residual, Index ldr, ActivationKind act) const {
    const Index lda = x.outerStride(), ldy = y.outerStride();
    // The epilogue of the block of y whose first row is i0 and first column j0.
    auto epilogue = [&](Index i0, Index j0) {
      return Epilogue{has_bias() ? m_bias.data() + j0 : nullptr,
                      residual ? residual + i0 * ldr + j0 : nullptr, ldr, act};
    };
    // Each block lambda computes rows [i0, i0 + rows) and columns [j0, j0 + cols) of y, j0 a
    // multiple of nr (a whole packed panel of the weights).
    if constexpr (std::is_same_v<T, float>) {
      if (m_storage == WeightStorage::Bf16) {
        constexpr Index nr = simd::GemmBf16Shape<Isa>::nr;
        const Index k2 = (m_in + 1) / 2 * 2;
        run_blocks<simd::GemmBf16Shape<Isa>>(x.rows(), threads, pool, [&](Index i0, Index rows,
                                                                          Index j0, Index cols) {
          simd::gemm<Isa>(rows, cols, m_in, 1.0f,
                          simd::GemmRowMajorA<float>{x.data() + i0 * lda, lda},
                          simd::PackedB<bf16>{m_packed_bf16.data() + (j0 / nr) * k2 * nr, m_in,
                                              cols},
                          0.0f, y.data() + i0 * ldy + j0, ldy, epilogue(i0, j0),
                          simd::GemmPart::Full, m_bf16_kernel);
        });
        return;
      }
    }
    constexpr Index nr = simd::GemmShape<T, Isa>::nr;
    run_blocks<simd::GemmShape<T, Isa>>(x.rows(), threads, pool, [&](Index i0, Index rows,
                                                                     Index j0, Index cols) {
      simd::gemm<Isa>(rows, cols, m_in, T(1), simd::GemmRowMajorA<T>{x.data() + i0 * lda, lda},
                      simd::PackedB<T>{m_packed.data() + (j0 / nr) * m_in * nr, m_in, cols}, T(0),
                      y.data() + i0 * ldy + j0, ldy, epilogue(i0, j0));
    });
  }

  // Cuts the m × out product into blocks for `threads` parts (see the class comment) and runs
  // block(i0, rows, j0, cols) on each; S: the tile (mr, nr, row_block) of the GEMM that runs.
  template <class S, class Block>
  void run_blocks(Index m, int threads, ThreadPool* pool, const Block& block) const {
    const Index n = m_out, k = m_in;
    // Parts worth their hand-over: at least 2^18 multiply-adds each.
    const double work = double(m) * double(n) * double(k);
    const int parts = static_cast<int>(std::min<double>(threads, std::max(1.0, work / 262144.0)));
    const Index row_tiles = (m + S::mr - 1) / S::mr, panels = (n + S::nr - 1) / S::nr;
    if (parts <= 1 || (row_tiles < 2 && panels < 2)) {
      block(Index(0), m, Index(0), n);
    } else if (row_tiles >= parts || row_tiles >= panels) {  // blocks of rows
      const Index size = detail::balanced_block(m, parts, S::row_block(k), S::mr);
      detail::pool_or_default(pool).parallel_for((m + size - 1) / size, parts, [&](Index b) {
        block(b * size, std::min(size, m - b * size), Index(0), n);
      });
    } else {  // few rows (decoding): blocks of whole column panels
      const Index size = detail::balanced_block(n, parts, n, S::nr);
      detail::pool_or_default(pool).parallel_for((n + size - 1) / size, parts, [&](Index b) {
        block(Index(0), m, b * size, std::min(size, n - b * size));
      });
    }
  }

  Index m_in, m_out;
  ActivationKind m_activation;
  WeightStorage m_storage;
  simd::Bf16Kernel m_bf16_kernel;  // DotProduct or Widen
  Vector m_bias;
  Vector m_packed;  // PackedB<T> of Wᵀ (in × out), packed_b_size<T, Isa>(in, out) values
  std::vector<bf16> m_packed_bf16;  // or (Bf16): pack_b_bf16 of Wᵀ, packed_b_bf16_size values
};

XFMR_NAMESPACE_END

#endif  // XFMR_LAYERS_DENSE_HPP
