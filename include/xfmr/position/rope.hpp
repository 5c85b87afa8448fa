// SPDX-License-Identifier: MIT
// Rotary position embedding, 1D (Su et al., RoFormer, arXiv:2104.09864; kexue.fm/archives/8265).
#ifndef XFMR_POSITION_ROPE_HPP
#define XFMR_POSITION_ROPE_HPP

#include <cstdint>
#include <cstring>
#include <vector>

#include "../detail/rope_table.hpp"
#include "../detail/tensor_fwd.hpp"
#include "../error.hpp"
#include "../simd/rope.hpp"
#include "../types.hpp"
#include "rope_scaling.hpp"

XFMR_NAMESPACE_BEGIN

/// Which channels of a head form the rotated pairs (SPEC §1.2). With r = rotary_dim:
///
///   Interleaved (RoFormer, bert4keras, GPT-J, Meta LLaMA, ggml mode 0):
///     pairs (2i, 2i+1)       channels  [x0 y0 x1 y1 x2 y2 … | pass-through]
///   HalfSplit (GPT-NeoX, HF LLaMA/Mistral/Qwen, ggml NEOX):
///     pairs (i, i + r/2)     channels  [x0 x1 x2 … y0 y1 y2 … | pass-through]
///
/// Same function class under a channel permutation, but a checkpoint works only with its own.
enum class RopeLayout { Interleaved, HalfSplit };

/// Configuration of a 1D rotary embedding.
struct RopeConfig {
  Index head_dim = 0;          ///< d, > 0
  Index rotary_dim = 0;        ///< d_rot: even, <= head_dim; 0 means d_rot = head_dim
  double base = 10000.0;       ///< b: θ_r = b^(−2r/d_rot), finite and > 1
  RopeLayout layout = RopeLayout::Interleaved;
  RopeScaling scaling = {};    ///< context extension (PI, NTK, YaRN, …)
  Index cached_positions = 4096;  ///< positions [0, cached) are tabulated; later ones computed
};

namespace detail {

/// Checks head_dim > 0, the layout, and rotary_dim (0 means head_dim; then even, > 0 and
/// <= head_dim) of a rotary configuration (RopeConfig, ReRopeConfig), completing rotary_dim.
/// \throws std::invalid_argument naming the field, as `where`.
template <class Config>
void resolve_rotary_shape(Config& c, const char* where) {
  require(c.head_dim > 0, where, "head_dim must be > 0 (got head_dim=", c.head_dim, ")");
  const Index given = c.rotary_dim;
  if (c.rotary_dim == 0) c.rotary_dim = c.head_dim;
  require(c.rotary_dim > 0 && c.rotary_dim % 2 == 0 && c.rotary_dim <= c.head_dim, where,
          "rotary_dim must be even and <= head_dim (got rotary_dim=", given,
          ", head_dim=", c.head_dim, ")");
  require(c.layout == RopeLayout::Interleaved || c.layout == RopeLayout::HalfSplit, where,
          "layout must be RopeLayout::Interleaved or HalfSplit (got ", static_cast<int>(c.layout),
          ")");
}

/// Out-of-place outputs of at least this many bytes are written with non-temporal stores
/// (simd::StoreHint::Stream): an output that large is unlikely to be read from the cache by the
/// next kernel, and streaming skips reading every output line before it is overwritten (a third
/// of the memory traffic of an out-of-place rotation). A heuristic, not a correctness matter.
inline constexpr std::size_t kRopeStreamMinBytes = std::size_t(8) << 20;

/// The store hint of a rotation of `bytes` bytes from x into out.
inline simd::StoreHint rope_store_hint(const void* x, const void* out, std::size_t bytes) noexcept {
  return x != out && bytes >= kRopeStreamMinBytes ? simd::StoreHint::Stream
                                                  : simd::StoreHint::Cached;
}

}  // namespace detail

/// Rotary position embedding. Token t of every head is rotated pair by pair:
///   y[a_r] = x[a_r]·cos(pθ_r) − x[b_r]·sin(pθ_r)
///   y[b_r] = x[a_r]·sin(pθ_r) + x[b_r]·cos(pθ_r),     r < d_rot/2,
/// with p the token's position, so that <R_i q, R_j k> = q^T R_{j−i} k. Channels
/// [d_rot, head_dim) of each head pass through bit-identical. Under YaRN both cos and sin carry
/// the attention factor μ (rope_attention_factor), so logits scale by μ².
///
/// Shapes: x and out are (tokens × heads·head_dim), one token per row, head h at columns
/// [h·d, (h+1)·d); rows may be strided. Tensor overloads take row-major [tokens, heads, head_dim]
/// and [batch, tokens, heads, head_dim] maps (every sequence of the batch starts at pos0).
/// Thread-safe: const methods share only immutable tables.
template <typename T>
class Rope {
  static_assert(detail::is_real_v<T>, "xfmr::Rope<T>: T must be float or double");

 public:
  using Tensor3 = TensorView<T, 3>;  ///< [tokens, heads, head_dim]; see xfmr/tensor.hpp
  using Tensor4 = TensorView<T, 4>;  ///< [batch, tokens, heads, head_dim]

  /// \throws std::invalid_argument if head_dim <= 0, rotary_dim is odd, negative or > head_dim,
  ///         base is not finite and > 1, cached_positions < 0, or the scaling is inconsistent.
  explicit Rope(const RopeConfig& config) : m_config(config) {
    const char* where = "Rope";
    detail::resolve_rotary_shape(m_config, where);
    detail::require(config.cached_positions >= 0, where, "cached_positions must be >= 0 (got ",
                    config.cached_positions, ")");
    validate_rope_frequencies(m_config.rotary_dim, config.base, config.scaling, where);
    m_table = detail::RopeTable<T>(rope_inv_freq(m_config.rotary_dim, config.base, config.scaling),
                                   rope_attention_factor(config.scaling), config.cached_positions);
  }

  /// In place; row t has position pos0 + t.
  /// \throws std::invalid_argument if x.cols() is not a multiple of head_dim or pos0 < 0.
  void apply(MatrixRef<T> x, Index pos0 = 0) const { run<Fwd>(x, x, Offset{pos0}); }
  /// Out of place; out has x's shape and may be x itself (no partial overlap). An output of
  /// at least detail::kRopeStreamMinBytes is written with streaming stores (same values; the
  /// output is not read first and ends up in memory rather than in the cache). The same holds
  /// for every out-of-place overload below and in RopeND.
  void apply(ConstMatrixRef<T> x, MatrixRef<T> out, Index pos0 = 0) const {
    run<Fwd>(x, out, Offset{pos0});
  }
  /// In place with explicit positions: row t has position ids[t] (ids.size() == x.rows()).
  /// \throws std::invalid_argument on a length mismatch or a negative id.
  void apply_at(MatrixRef<T> x, ConstPositionsRef ids) const { run<Fwd>(x, x, Ids{ids}); }
  void apply_at(ConstMatrixRef<T> x, MatrixRef<T> out, ConstPositionsRef ids) const {
    run<Fwd>(x, out, Ids{ids});
  }

  /// The inverse rotation R_p^T = R_{−p} (the backward pass of apply): same overloads.
  void apply_inverse(MatrixRef<T> x, Index pos0 = 0) const { run<Inv>(x, x, Offset{pos0}); }
  void apply_inverse(ConstMatrixRef<T> x, MatrixRef<T> out, Index pos0 = 0) const {
    run<Inv>(x, out, Offset{pos0});
  }
  void apply_inverse_at(MatrixRef<T> x, ConstPositionsRef ids) const { run<Inv>(x, x, Ids{ids}); }
  void apply_inverse_at(ConstMatrixRef<T> x, MatrixRef<T> out, ConstPositionsRef ids) const {
    run<Inv>(x, out, Ids{ids});
  }

  /// Tensor views [tokens, heads, head_dim] and [batch, tokens, heads, head_dim], in place,
  /// mapped onto the matrix path without a copy (include xfmr/tensor.hpp to build the views).
  /// \throws std::invalid_argument if the last dimension is not head_dim or pos0 < 0.
  void apply(Tensor3 x, Index pos0 = 0) const {
    require_head_dim(x.dimension(2));
    apply(as_matrix(x.data(), x.dimension(0), x.dimension(1)), pos0);
  }
  void apply(Tensor4 x, Index pos0 = 0) const {
    require_head_dim(x.dimension(3));
    const Index stride = x.dimension(1) * x.dimension(2) * x.dimension(3);
    for (Index b = 0; b < x.dimension(0); ++b)
      apply(as_matrix(x.data() + b * stride, x.dimension(1), x.dimension(2)), pos0);
  }

  /// The configuration, with rotary_dim resolved (never 0).
  const RopeConfig& config() const noexcept { return m_config; }
  /// θ'_r in double, r < rotary_dim/2, after scaling.
  const std::vector<double>& inv_freq() const noexcept { return m_table.inv_freq(); }
  /// μ carried by the tables (1 unless YaRN).
  double attention_factor() const { return rope_attention_factor(m_config.scaling); }

 private:
  static constexpr simd::Rotation Fwd = simd::Rotation::Forward;
  static constexpr simd::Rotation Inv = simd::Rotation::Inverse;
  using Isa = simd::native_isa;
  static constexpr Index kMaxPosition = Index(1) << 53;  // integers exact in double

  struct Offset {
    Index pos0;
    void validate(Index rows) const {
      detail::require(pos0 >= 0 && pos0 <= kMaxPosition - rows, "Rope",
                      "pos0 must be >= 0 and pos0 + tokens <= 2^53 (got pos0=", pos0,
                      ", tokens=", rows, ")");
    }
    std::int64_t operator()(Index t) const { return static_cast<std::int64_t>(pos0 + t); }
  };
  struct Ids {
    ConstPositionsRef ids;
    void validate(Index rows) const {
      detail::require(ids.size() == rows, "Rope", "one position id per row: ids.size() == ",
                      rows, " (got ", ids.size(), ")");
      for (Index t = 0; t < ids.size(); ++t)
        detail::require(ids[t] >= 0 && ids[t] <= kMaxPosition, "Rope",
                        "position ids must be in [0, 2^53] (got ids[", t, "]=", ids[t], ")");
    }
    std::int64_t operator()(Index t) const { return ids[t]; }
  };

  void require_head_dim(Index d) const {
    detail::require(d == m_config.head_dim, "Rope", "the last tensor dimension must be head_dim=",
                    m_config.head_dim, " (got ", d, ")");
  }
  Eigen::Map<RowMatrix<T>> as_matrix(T* data, Index tokens, Index heads) const {
    return {data, tokens, heads * m_config.head_dim};
  }

  template <simd::Rotation Dir, class Positions>
  void run(ConstMatrixRef<T> x, MatrixRef<T> out, const Positions& positions) const {
    const Index d = m_config.head_dim;
    detail::require(x.cols() % d == 0, "Rope", "x.cols() must be a multiple of head_dim=", d,
                    " (got ", x.rows(), "x", x.cols(), ")");
    detail::require(out.rows() == x.rows() && out.cols() == x.cols(), "Rope",
                    "out must be ", x.rows(), "x", x.cols(), " like x (got ", out.rows(), "x",
                    out.cols(), ")");
    detail::require_same_or_disjoint(x.data(), x.outerStride(), out.data(), out.outerStride(),
                                     x.rows(), x.cols(), "Rope");
    positions.validate(x.rows());
    if (m_config.layout == RopeLayout::Interleaved)
      rotate<Dir, RopeLayout::Interleaved>(x, out, positions);
    else
      rotate<Dir, RopeLayout::HalfSplit>(x, out, positions);
  }

  template <simd::Rotation Dir, RopeLayout Layout, class Positions>
  void rotate(ConstMatrixRef<T> x, MatrixRef<T> out, const Positions& positions) const {
    const Index d = m_config.head_dim, rot = m_config.rotary_dim, heads = x.cols() / d;
    const Index pairs = m_table.pairs();
    const bool in_place = x.data() == out.data();
    const simd::StoreHint hint = detail::rope_store_hint(
        x.data(), out.data(), static_cast<std::size_t>(x.rows() * x.cols()) * sizeof(T));
    std::vector<T> scratch;  // only for positions past the cache
    for (Index t = 0; t < x.rows(); ++t) {
      const std::int64_t p = positions(t);
      if (p >= m_table.cached_positions() && scratch.empty())
        scratch.resize(static_cast<std::size_t>(2 * pairs));
      const T* c = m_table.row(p, scratch.data());
      const T* s = c + pairs;
      const T* xr = x.data() + t * x.outerStride();
      T* yr = out.data() + t * out.outerStride();
      // Every head of the token at once: the kernel shares the table row across heads.
      if constexpr (Layout == RopeLayout::Interleaved)
        simd::rope_interleaved_heads<Isa, Dir>(xr, c, s, yr, static_cast<std::size_t>(rot),
                                               static_cast<std::size_t>(heads),
                                               static_cast<std::size_t>(d), hint);
      else
        simd::rope_half_split_heads<Isa, Dir>(xr, c, s, yr, static_cast<std::size_t>(rot),
                                              static_cast<std::size_t>(heads),
                                              static_cast<std::size_t>(d), hint);
      if (!in_place && rot < d)
        for (Index h = 0; h < heads; ++h)
          std::memcpy(yr + h * d + rot, xr + h * d + rot,
                      static_cast<std::size_t>(d - rot) * sizeof(T));
    }
    if (hint == simd::StoreHint::Stream) simd::stream_fence();
  }

  RopeConfig m_config;
  detail::RopeTable<T> m_table;
};

XFMR_NAMESPACE_END

#endif  // XFMR_POSITION_ROPE_HPP
