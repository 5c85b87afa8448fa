// SPDX-License-Identifier: MIT
// GlobalPointer and Efficient GlobalPointer span-scoring heads for NER (Su, kexue.fm/archives/8373
// and 8877; bert4keras layers.GlobalPointer / EfficientGlobalPointer; SPEC §10.1–10.2).
#ifndef XFMR_HEADS_GLOBAL_POINTER_HPP
#define XFMR_HEADS_GLOBAL_POINTER_HPP

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"

#include "../error.hpp"
#include "../position/rope.hpp"
#include "../simd/gemm.hpp"
#include "../simd/vec.hpp"
#include "../tensor.hpp"
#include "../types.hpp"
#include "span_decode.hpp"

XFMR_NAMESPACE_BEGIN

/// Configuration shared by GlobalPointer and EfficientGlobalPointer.
struct GlobalPointerConfig {
  Index hidden_size = 0;  ///< D: width of the encoder's hidden states, > 0
  Index types = 0;        ///< number of entity types (bert4keras `heads`), > 0
  Index head_size = 64;   ///< d: size of q and k per type; even (interleaved RoPE pairs)
  /// Mask the strict lower triangle (start > end). bert4keras `tril_mask=True`; false for
  /// GPLinker-style head/tail relation matrices.
  bool tril_mask = true;
  /// Value written to masked entries (padding rows/columns and, with tril_mask, i > j).
  /// −inf is current bert4keras (`sequence_masking(…, -np.inf)`); −1e12 reproduces the 2021 code
  /// (`K.infinity()`) up to the logit it subtracted from. Must not be NaN or +inf.
  double mask_value = -std::numeric_limits<double>::infinity();
  double rope_base = 10000.0;    ///< b of the interleaved RoPE, finite and > 1
  Index cached_positions = 512;  ///< positions with tabulated cos/sin (later ones computed)
};

/// Shape of the scores tensor: row-major [batch, types, n, n], end index innermost.
template <typename T>
using ScoreTensor = Eigen::TensorMap<Eigen::Tensor<T, 4, Eigen::RowMajor>>;
/// Hidden states as a row-major [batch, n, hidden_size] tensor (the same memory as the
/// (batch·n × hidden_size) matrix the matrix overloads take).
template <typename T>
using HiddenTensor = Eigen::TensorMap<const Eigen::Tensor<T, 3, Eigen::RowMajor>>;

namespace detail {

inline void validate_global_pointer_config(const GlobalPointerConfig& c, const char* where) {
  require(c.hidden_size > 0, where, "hidden_size must be > 0 (got hidden_size=", c.hidden_size,
          ")");
  require(c.types >= 1, where, "types must be >= 1 (got types=", c.types, ")");
  require(c.head_size > 0 && c.head_size % 2 == 0, where,
          "head_size must be even and > 0: RoPE rotates channel pairs (got head_size=",
          c.head_size, ")");
  require(!std::isnan(c.mask_value) && c.mask_value != std::numeric_limits<double>::infinity(),
          where, "mask_value must not be NaN or +inf (got ", c.mask_value, ")");
  require(c.cached_positions >= 0, where, "cached_positions must be >= 0 (got ",
          c.cached_positions, ")");
}

inline RopeConfig global_pointer_rope_config(const GlobalPointerConfig& c) {
  RopeConfig r;
  r.head_dim = c.head_size;
  r.rotary_dim = c.head_size;
  r.base = c.rope_base;
  r.layout = RopeLayout::Interleaved;  // bert4keras apply_rotary_position_embeddings
  r.cached_positions = c.cached_positions;
  return r;
}

/// Checks a scores() call; returns n. lengths == nullptr means every sequence has length n.
/// The [batch, n, hidden] tensor as the (batch·n × hidden) matrix, after checking it matches out.
template <typename T>
Eigen::Map<const RowMatrix<T>> hidden_matrix(const HiddenTensor<T>& hidden,
                                             const ScoreTensor<T>& out, const char* where) {
  require(hidden.dimension(0) == out.dimension(0) && hidden.dimension(1) == out.dimension(2),
          where, "hidden must be [batch=", out.dimension(0), ", n=", out.dimension(2),
          ", hidden_size] like out (got [", hidden.dimension(0), ", ", hidden.dimension(1), ", ",
          hidden.dimension(2), "])");
  return {hidden.data(), hidden.dimension(0) * hidden.dimension(1), hidden.dimension(2)};
}

template <typename T>
Index validate_scores_call(const GlobalPointerConfig& c, ConstMatrixRef<T> hidden,
                           const Eigen::Ref<const IdVector>* lengths, const ScoreTensor<T>& out,
                           Index position_offset, const char* where) {
  const Index batch = out.dimension(0), n = out.dimension(2);
  require(out.dimension(1) == c.types && out.dimension(3) == n, where,
          "out must be [batch, types=", c.types, ", n, n] (got [", out.dimension(0), ", ",
          out.dimension(1), ", ", out.dimension(2), ", ", out.dimension(3), "])");
  require(hidden.cols() == c.hidden_size, where, "hidden must have hidden_size=", c.hidden_size,
          " columns (got ", hidden.rows(), "x", hidden.cols(), ")");
  require(hidden.rows() == batch * n, where,
          "hidden must have batch*n = ", batch * n, " rows for out [", batch, ", ", c.types, ", ",
          n, ", ", n, "] (got ", hidden.rows(), "x", hidden.cols(), ")");
  if (lengths != nullptr) {
    require(lengths->size() == batch, where,
            "one length per sequence: lengths.size() == batch=", batch, " (got ",
            lengths->size(), ")");
    for (Index b = 0; b < lengths->size(); ++b)
      require((*lengths)[b] >= 0 && (*lengths)[b] <= n, where, "lengths must be in [0, n=", n,
              "] (got lengths[", b, "]=", (*lengths)[b], ")");
  }
  require(position_offset >= 0, where, "position_offset must be >= 0 (got ", position_offset,
          ")");
  return n;
}

/// The scores() overloads of GlobalPointer and EfficientGlobalPointer (CRTP): Derived provides
/// run(hidden, lengths or nullptr, out, position_offset).
template <class Derived, typename T>
class SpanScores {
 public:
  /// Scores of a padded batch (see the class comment). out: [batch, types, n, n]; batch and n
  /// are read from out; lengths[b] in [0, n] real tokens of sequence b (without lengths: all n).
  /// RoPE positions are position_offset + t (the scores depend only on j − i, so any offset
  /// gives the same scores up to rounding).
  /// \throws std::logic_error before set_weights; std::invalid_argument if out is not
  ///         [batch, types, n, n], hidden is not (batch·n × hidden_size), lengths.size() !=
  ///         batch, a length is outside [0, n], or position_offset < 0.
  void scores(ConstMatrixRef<T> hidden, ConstIdsRef lengths, ScoreTensor<T> out,
              Index position_offset = 0) {
    self().run(hidden, &lengths, out, position_offset);
  }
  void scores(ConstMatrixRef<T> hidden, ScoreTensor<T> out, Index position_offset = 0) {
    self().run(hidden, nullptr, out, position_offset);
  }
  /// Tensor input [batch, n, hidden_size], mapped onto the matrix path without a copy.
  void scores(const HiddenTensor<T>& hidden, ConstIdsRef lengths, ScoreTensor<T> out,
              Index position_offset = 0) {
    self().run(hidden_matrix(hidden, out, Derived::kWhere), &lengths, out, position_offset);
  }
  void scores(const HiddenTensor<T>& hidden, ScoreTensor<T> out, Index position_offset = 0) {
    self().run(hidden_matrix(hidden, out, Derived::kWhere), nullptr, out, position_offset);
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
};

// ---- Dense products ----------------------------------------------------------------------------
// Eigen's SGEMM reaches ~45–55% of the FMA roof on this machine (BM_ceiling_gemm); the heads are
// dominated by the hidden → H·2d projection, so they use this small register-blocked kernel
// instead (~85% of the roof at W7; see bench/heads_global_pointer.bench.cpp). It follows the
// GotoBLAS/BLIS scheme: B is packed once into column panels of nr = 2 vectors, K is blocked by kc
// so a B micro-panel stays in L1/L2, and an mr × nr tile of C lives in 2·mr registers while rows
// of A are broadcast straight from the caller's row-major matrix (no A packing: m is a sequence
// length, A's rows stream from L2). Raw pointers and Vec<T, Isa> only, so it could move to simd/.
// Accumulation: float (double) FMAs in k order within each kc block, blocks summed in order.

/// Writes mask_value into every masked entry of one n×n score block of a sequence of length
/// len: rows >= len, columns >= len and, with tril, columns < row. Other entries untouched.
template <typename T>
void mask_scores(T* s, Index n, Index len, bool tril, T value) {
  for (Index i = 0; i < n; ++i) {
    T* row = s + i * n;
    if (i >= len) {
      std::fill(row, row + n, value);
      continue;
    }
    if (tril) std::fill(row, row + i, value);
    std::fill(row + len, row + n, value);
  }
}

/// Grows a scratch matrix (never shrinks), so repeated calls at the same sizes do not allocate.
template <typename T>
void reserve_rows(RowMatrix<T>& m, Index rows, Index cols) {
  if (m.rows() < rows || m.cols() != cols) m.resize(std::max(rows, m.rows()), cols);
}

}  // namespace detail

/// GlobalPointer (Su 2021, kexue 8373): for every entity type α and span (i, j), i <= j,
///   q_{i,α} = h_i W_{q,α} + c_{q,α},   k_{j,α} = h_j W_{k,α} + c_{k,α}            (size d)
///   s_α(i,j) = (R_i q_{i,α})·(R_j k_{j,α}) / √d = q_{i,α}^T R_{j−i} k_{j,α} / √d
/// with R_p the interleaved RoPE rotation (base 10000, positions position_offset + 0 … n−1), and
/// mask_value wherever i or j is padding or (tril_mask) i > j.
///
/// Weights (bert4keras layout, so trained Keras weights load unchanged): ONE Dense layer
/// hidden_size → types·2·head_size. Keras stores its kernel as (in, out) =
/// (hidden_size, types·2·head_size) and computes y = x·W + c; pass that array as is (row-major,
/// e.g. an Eigen::Map over the numpy buffer). Output columns are `types` consecutive chunks of
/// 2·d; in chunk α the first d are q_α, the last d are k_α:
///
///   W columns: [ q_0 (d) | k_0 (d) | q_1 (d) | k_1 (d) | … | q_{H−1} | k_{H−1} ]
///
/// (A PyTorch nn.Linear stores weight as (out, in): pass weight.transpose().)
///
/// Batches: hidden is (batch·n × hidden_size), sequence b at rows [b·n, (b+1)·n), every sequence
/// padded to n; lengths[b] <= n real tokens each. Scores go to a row-major [batch, types, n, n]
/// tensor (end index innermost), the layout decode_spans() reads; every element is written.
/// Padded rows of hidden are never read (they may hold anything, even NaN).
///
/// Cost: a (len × D)·(D × 2Hd) GEMM per sequence (simd::gemm on the kernel packed by
/// set_weights), RoPE over all 2H chunks in one SIMD pass, and per type one (len × d)·(d × len)
/// GEMM (about the upper half only with tril_mask); the mask fill writes only masked entries.
/// Scratch is owned and grows to the largest n seen, so a call allocates only when n grows (or
/// for RoPE positions past cached_positions). Not thread-safe (scratch): one object per thread.
template <typename T>
class GlobalPointer : public detail::SpanScores<GlobalPointer<T>, T> {
  friend class detail::SpanScores<GlobalPointer<T>, T>;
  static_assert(detail::is_real_v<T>, "xfmr::GlobalPointer<T>: T must be float or double");

 public:
  using ConstVectorRef = const Eigen::Ref<const RowVector<T>>&;

  /// \throws std::invalid_argument if hidden_size <= 0, types < 1, head_size odd or <= 0,
  ///         mask_value NaN or +inf, cached_positions < 0, or rope_base not finite and > 1.
  explicit GlobalPointer(const GlobalPointerConfig& config)
      : m_config(checked(config)), m_rope(detail::global_pointer_rope_config(config)) {}

  /// kernel: (hidden_size × types·2·head_size), the Keras Dense kernel; bias: types·2·head_size
  /// values (the Dense bias). The overload without bias sets it to zero (use_bias=False).
  /// \throws std::invalid_argument on a shape mismatch.
  void set_weights(ConstMatrixRef<T> kernel, ConstVectorRef bias) {
    const Index out = out_width();
    detail::require(kernel.rows() == m_config.hidden_size && kernel.cols() == out, kWhere,
                    "kernel must be hidden_size x types*2*head_size = ", m_config.hidden_size,
                    "x", out, " (got ", kernel.rows(), "x", kernel.cols(), ")");
    detail::require(bias.size() == out, kWhere, "bias must have types*2*head_size = ", out,
                    " values (got ", bias.size(), ")");
    m_kernel = kernel;
    m_bias = bias;
    m_packed.resize(static_cast<std::size_t>(simd::packed_b_size<T>(m_config.hidden_size, out)));
    simd::pack_b(m_config.hidden_size, out, simd::GemmB<T>{kernel.data(), kernel.outerStride(), false},
                 m_packed.data());
    m_has_weights = true;
  }
  void set_weights(ConstMatrixRef<T> kernel) {
    const RowVector<T> zero = RowVector<T>::Zero(out_width());
    set_weights(kernel, zero);
  }

  using detail::SpanScores<GlobalPointer<T>, T>::scores;

  const GlobalPointerConfig& config() const noexcept { return m_config; }
  const RowMatrix<T>& kernel() const noexcept { return m_kernel; }
  const RowVector<T>& bias() const noexcept { return m_bias; }
  const Rope<T>& rope() const noexcept { return m_rope; }

 private:
  static constexpr const char* kWhere = "GlobalPointer";

  static const GlobalPointerConfig& checked(const GlobalPointerConfig& c) {
    detail::validate_global_pointer_config(c, kWhere);
    return c;
  }
  Index out_width() const noexcept { return m_config.types * 2 * m_config.head_size; }

  void run(ConstMatrixRef<T> hidden, const Eigen::Ref<const IdVector>* lengths, ScoreTensor<T> out,
           Index pos0) {
    if (!m_has_weights) detail::throw_logic(kWhere, "call set_weights before scores");
    const Index n = detail::validate_scores_call<T>(m_config, hidden, lengths, out, pos0, kWhere);
    const Index batch = out.dimension(0), types = m_config.types, d = m_config.head_size;
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(d)));
    const T mask = static_cast<T>(m_config.mask_value);
    const Index width = out_width(), D = m_config.hidden_size;
    detail::reserve_rows(m_u, n, width);
    for (Index b = 0; b < batch; ++b) {
      const Index len = lengths == nullptr ? n : (*lengths)[b];
      T* out_b = out.data() + b * types * n * n;
      if (len > 0) {
        // u = h W + c: (len × H·2d), chunk α = [q_α | k_α].
        simd::gemm(len, width, D, T(1),
                   simd::GemmRowMajorA<T>{hidden.data() + b * n * hidden.outerStride(),
                                  hidden.outerStride()},
                   simd::PackedB<T>{m_packed.data(), D, width}, T(0), m_u.data(), m_u.cols(),
                   simd::BiasColumns<T>{m_bias.data()});
        // Every chunk (q_α and k_α alike) is a d-vector rotated at the token's position, so the
        // whole (len × 2Hd) block is one multi-head RoPE call with head_dim = d.
        auto u = m_u.topRows(len);
        m_rope.apply(u, pos0);
        for (Index a = 0; a < types; ++a) u.middleCols(a * 2 * d, d) *= scale;  // 1/√d on q
        m_kt.resize(static_cast<std::size_t>(simd::packed_b_size<T>(d, len)));
      }
      for (Index a = 0; a < types; ++a) {
        T* s = out_b + a * n * n;
        if (len > 0) {
          // s_α = Q_α K_αᵀ over the upper triangle (tiles below the diagonal skipped), with
          // K_αᵀ packed as B (d × len) straight from the strided columns of u.
          const T* q = m_u.data() + a * 2 * d;
          simd::pack_b(d, len, simd::GemmB<T>{q + d, m_u.cols(), true}, m_kt.data());
          simd::gemm(len, len, d, T(1), simd::GemmRowMajorA<T>{q, m_u.cols()},
                     simd::PackedB<T>{m_kt.data(), d, len}, T(0), s, n, simd::NoEpilogue{},
                     m_config.tril_mask ? simd::GemmPart::Upper : simd::GemmPart::Full);
        }
        detail::mask_scores(s, n, len, m_config.tril_mask, mask);
      }
    }
  }

  GlobalPointerConfig m_config;
  Rope<T> m_rope;
  RowMatrix<T> m_kernel;
  RowVector<T> m_bias;
  std::vector<T> m_packed;  // the kernel packed for simd::gemm (simd::pack_b)
  bool m_has_weights = false;
  RowMatrix<T> m_u;       // scratch: projected and rotated q/k chunks, (n × 2Hd)
  std::vector<T> m_kt;    // scratch: K_αᵀ packed, (d × n)
};

/// Efficient GlobalPointer (Su 2022, kexue 8877), exactly as bert4keras EfficientGlobalPointer
/// (SPEC §10.2): one q/k projection shared by all types plus a per-type start/end bias,
///   u_i = h_i P + c_P                        P: (hidden_size × 2d)   ("p_dense")
///   q_i = u_i[0::2],  k_i = u_i[1::2]        even channels → q, odd → k (interleaved split)
///   q_i, k_i ← R_i q_i, R_i k_i              interleaved RoPE, dim d
///   β_i = (u_i G + c_G) / 2                  G: (2d × 2·types)       ("q_dense"), on the
///                                            UNROTATED u_i
///   s_α(i,j) = q_i·k_j / √d + β_i[2α+1] + β_j[2α]
/// i.e. (SPEC §10.2) odd channel 2α+1 is the start term (row i), even channel 2α the end term
/// (column j); bert4keras: `logits[:, None] + bias[:, ::2, None] + bias[:, 1::2, :, None]`.
/// The bias term is not divided by √d. Masking, batching, output layout, scratch and
/// thread-safety as GlobalPointer. Kernels are Keras (in, out) arrays passed as is.
template <typename T>
class EfficientGlobalPointer : public detail::SpanScores<EfficientGlobalPointer<T>, T> {
  friend class detail::SpanScores<EfficientGlobalPointer<T>, T>;
  static_assert(detail::is_real_v<T>,
                "xfmr::EfficientGlobalPointer<T>: T must be float or double");

 public:
  using ConstVectorRef = const Eigen::Ref<const RowVector<T>>&;

  /// \throws std::invalid_argument as GlobalPointer's constructor.
  explicit EfficientGlobalPointer(const GlobalPointerConfig& config)
      : m_config(checked(config)), m_rope(detail::global_pointer_rope_config(config)) {}

  /// p_kernel: (hidden_size × 2·head_size), p_bias: 2·head_size values;
  /// q_kernel: (2·head_size × 2·types), q_bias: 2·types values (bert4keras p_dense, q_dense).
  /// \throws std::invalid_argument on a shape mismatch.
  void set_weights(ConstMatrixRef<T> p_kernel, ConstVectorRef p_bias, ConstMatrixRef<T> q_kernel,
                   ConstVectorRef q_bias) {
    const Index D = m_config.hidden_size, d2 = 2 * m_config.head_size, h2 = 2 * m_config.types;
    detail::require(p_kernel.rows() == D && p_kernel.cols() == d2, kWhere,
                    "p_kernel must be hidden_size x 2*head_size = ", D, "x", d2, " (got ",
                    p_kernel.rows(), "x", p_kernel.cols(), ")");
    detail::require(p_bias.size() == d2, kWhere, "p_bias must have 2*head_size = ", d2,
                    " values (got ", p_bias.size(), ")");
    detail::require(q_kernel.rows() == d2 && q_kernel.cols() == h2, kWhere,
                    "q_kernel must be 2*head_size x 2*types = ", d2, "x", h2, " (got ",
                    q_kernel.rows(), "x", q_kernel.cols(), ")");
    detail::require(q_bias.size() == h2, kWhere, "q_bias must have 2*types = ", h2,
                    " values (got ", q_bias.size(), ")");
    // Permute the 2d channels of u to [even | odd] = [q | k] once here, in P's columns and G's
    // rows alike: u'G' = uG, and q, k become contiguous halves (no strided split per call). The
    // bias dense's /2 is folded into G and c_G (exact: a power of two).
    const Index d = m_config.head_size;
    RowMatrix<T> p(D, d2), g(d2, h2);
    RowVector<T> pb(d2);
    for (Index c = 0; c < d2; ++c) {
      const Index src = c < d ? 2 * c : 2 * (c - d) + 1;
      p.col(c) = p_kernel.col(src);
      pb(c) = p_bias(src);
      g.row(c) = q_kernel.row(src) * T(0.5);
    }
    m_q_bias = q_bias * T(0.5);
    m_p_bias = pb;
    m_p_packed.resize(static_cast<std::size_t>(simd::packed_b_size<T>(D, d2)));
    simd::pack_b(D, d2, simd::GemmB<T>{p.data(), d2, false}, m_p_packed.data());
    m_g_packed.resize(static_cast<std::size_t>(simd::packed_b_size<T>(d2, h2)));
    simd::pack_b(d2, h2, simd::GemmB<T>{g.data(), h2, false}, m_g_packed.data());
    m_has_weights = true;
  }

  using detail::SpanScores<EfficientGlobalPointer<T>, T>::scores;

  const GlobalPointerConfig& config() const noexcept { return m_config; }
  const Rope<T>& rope() const noexcept { return m_rope; }

 private:
  static constexpr const char* kWhere = "EfficientGlobalPointer";

  static const GlobalPointerConfig& checked(const GlobalPointerConfig& c) {
    detail::validate_global_pointer_config(c, kWhere);
    return c;
  }

  void run(ConstMatrixRef<T> hidden, const Eigen::Ref<const IdVector>* lengths, ScoreTensor<T> out,
           Index pos0) {
    if (!m_has_weights) detail::throw_logic(kWhere, "call set_weights before scores");
    const Index n = detail::validate_scores_call<T>(m_config, hidden, lengths, out, pos0, kWhere);
    const Index batch = out.dimension(0), types = m_config.types, d = m_config.head_size;
    const T scale = static_cast<T>(1.0 / std::sqrt(static_cast<double>(d)));
    const T mask = static_cast<T>(m_config.mask_value);
    const bool tril = m_config.tril_mask;
    const Index D = m_config.hidden_size, h2 = 2 * types;
    detail::reserve_rows(m_u, n, 2 * d);
    detail::reserve_rows(m_beta, n, h2);
    if (m_beta_t.cols() < n || m_beta_t.rows() != h2) m_beta_t.resize(h2, n);
    detail::reserve_rows(m_s, n, std::max(n, m_s.cols()));
    for (Index b = 0; b < batch; ++b) {
      const Index len = lengths == nullptr ? n : (*lengths)[b];
      T* out_b = out.data() + b * types * n * n;
      if (len > 0) {
        // u' = h P' + c_P' = [q | k] (unrotated), β = u' G' + c_G/2 = (u G + c_G)/2.
        simd::gemm(len, 2 * d, D, T(1),
                   simd::GemmRowMajorA<T>{hidden.data() + b * n * hidden.outerStride(),
                                  hidden.outerStride()},
                   simd::PackedB<T>{m_p_packed.data(), D, 2 * d}, T(0), m_u.data(), m_u.cols(),
                   simd::BiasColumns<T>{m_p_bias.data()});
        simd::gemm(len, h2, 2 * d, T(1), simd::GemmRowMajorA<T>{m_u.data(), m_u.cols()},
                   simd::PackedB<T>{m_g_packed.data(), 2 * d, h2}, T(0), m_beta.data(),
                   m_beta.cols(), simd::BiasColumns<T>{m_q_bias.data()});
        m_beta_t.leftCols(len) = m_beta.topRows(len).transpose();  // end terms contiguous in j
        auto u = m_u.topRows(len);
        m_rope.apply(u, pos0);  // q and k: two heads of d, after β used the unrotated u
        u.leftCols(d) *= scale;
        m_kt.resize(static_cast<std::size_t>(simd::packed_b_size<T>(d, len)));
        simd::pack_b(d, len, simd::GemmB<T>{m_u.data() + d, m_u.cols(), true}, m_kt.data());
        simd::gemm(len, len, d, T(1), simd::GemmRowMajorA<T>{m_u.data(), m_u.cols()},
                   simd::PackedB<T>{m_kt.data(), d, len}, T(0), m_s.data(), m_s.cols(),
                   simd::NoEpilogue{}, tril ? simd::GemmPart::Upper : simd::GemmPart::Full);
        for (Index a = 0; a < types; ++a) {
          T* sa = out_b + a * n * n;
          const T* end_term = m_beta_t.data() + (2 * a) * m_beta_t.cols();  // β_j[2α]
          for (Index i = 0; i < len; ++i) {
            const T start_term = m_beta(i, 2 * a + 1);  // β_i[2α+1]
            const Index j0 = tril ? i : 0;
            Eigen::Map<RowVector<T>>(sa + i * n + j0, len - j0) =
                (Eigen::Map<const RowVector<T>>(m_s.data() + i * m_s.cols() + j0, len - j0) +
                 Eigen::Map<const RowVector<T>>(end_term + j0, len - j0))
                    .array() +
                start_term;
          }
        }
      }
      for (Index a = 0; a < types; ++a) detail::mask_scores(out_b + a * n * n, n, len, tril, mask);
    }
  }

  GlobalPointerConfig m_config;
  Rope<T> m_rope;
  std::vector<T> m_p_packed, m_g_packed;  // P' and G'/2 packed for simd::gemm (simd::pack_b)
  RowVector<T> m_p_bias, m_q_bias;         // c_P' and c_G/2
  bool m_has_weights = false;
  // Scratch, grown to the largest n seen: u' = [q | k] (n × 2d), β (n × 2H) and its transpose,
  // K packed (d × n) and the shared q·k/√d block (n × n).
  RowMatrix<T> m_u, m_beta, m_beta_t, m_s;
  std::vector<T> m_kt;
};

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_GLOBAL_POINTER_HPP
