// SPDX-License-Identifier: MIT
// Rotary position embedding in two and N dimensions, axial form (Su, "Transformer upgrade path
// 4: RoPE-2D", kexue.fm/archives/8397; N-D split as in kexue.fm/archives/10040).
#ifndef XFMR_POSITION_ROPE_ND_HPP
#define XFMR_POSITION_ROPE_ND_HPP

#include <cstdint>
#include <vector>

#include "../detail/rope_table.hpp"
#include "../error.hpp"
#include "../simd/rope.hpp"
#include "../types.hpp"
#include "rope.hpp"
#include "rope_scaling.hpp"

XFMR_NAMESPACE_BEGIN

/// Configuration of an N-D axial rotary embedding.
struct RopeNDConfig {
  Index head_dim = 0;   ///< d: splits into `axes` blocks of d/axes channels, each even and > 0
  Index axes = 2;       ///< n: number of coordinates per token, >= 1
  double base = 10000.0;  ///< b: θ_r = b^(−2r/(d/axes)), the same set on every axis; finite, > 1
  RopeLayout layout = RopeLayout::Interleaved;  ///< pair layout *inside* each block
  Index cached_positions = 1024;  ///< per-axis coordinates [0, cached) are tabulated
};

/// Which grid coordinate drives block 0 in RopeND::apply_grid (SPEC §2.1: Su's R_{x,y} rotates
/// block 0 by x and block 1 by y; whether x is the row or the column is a convention).
///
///   grid rows × cols, token t = (row, col) = (t / cols, t % cols)   (row-major)
///   RowFirst:     block 0 ← row (vertical index),   block 1 ← col (horizontal index)
///   ColumnFirst:  block 0 ← col (horizontal index), block 1 ← row (vertical index)
enum class GridAxes { RowFirst, ColumnFirst };

/// N-D axial rotary position embedding (SPEC §2.2). A token with coordinates (p_0 … p_{n−1})
/// has each head split into n equal blocks of m = d/n channels; block a is 1D RoPE (Rope) with
/// position p_a and frequencies θ_r = b^(−2r/m), r < m/2:
///
///   head channels  [ block 0: p_0 | block 1: p_1 | … | block n−1: p_{n−1} ]
///   inside a block, Interleaved pairs (2r, 2r+1), HalfSplit pairs (r, r + m/2)
///   y[a_r] = x[a_r]·cos(p_a θ_r) − x[b_r]·sin(p_a θ_r)
///   y[b_r] = x[a_r]·sin(p_a θ_r) + x[b_r]·cos(p_a θ_r)
///
/// so <R_p q, R_p' k> = Σ_a q_a^T R^{(a)}_{p'_a − p_a} k_a depends only on the offset p' − p,
/// and distinct coordinates give distinct rotations. With n = 2 and interleaved pairs this is
/// Su's RoPE-2D. When every coordinate but p_a is 0, block a equals Rope with
/// head_dim = rotary_dim = m at position p_a bit for bit, and the other blocks are unchanged.
///
/// Shapes: x and out are (tokens × heads·head_dim), one token per row, head h at columns
/// [h·d, (h+1)·d); rows may be strided. coords is (tokens × axes) int64, row t = token t.
/// Every head of a token gets the same rotation. Angles are exact as in Rope (SPEC §1.6);
/// results do not depend on cached_positions. Thread-safe: const methods share immutable tables.
template <typename T>
class RopeND {
  static_assert(detail::is_real_v<T>, "xfmr::RopeND<T>: T must be float or double");

 public:
  /// \throws std::invalid_argument if axes < 1, head_dim does not split into `axes` even
  ///         blocks, base is not finite and > 1, the layout is unknown or cached_positions < 0.
  explicit RopeND(const RopeNDConfig& config) : RopeND(config, "RopeND") {}

  /// In place; token t has coordinates coords.row(t).
  /// \throws std::invalid_argument if x.cols() is not a multiple of head_dim, coords is not
  ///         (x.rows() × axes), or a coordinate is outside [0, 2^53].
  void apply_at(MatrixRef<T> x, ConstCoordinatesRef coords) const {
    run<Fwd>(x, x, Explicit{coords, m_config.axes});
  }
  /// Out of place; out has x's shape and may be x itself (no partial overlap).
  void apply_at(ConstMatrixRef<T> x, MatrixRef<T> out, ConstCoordinatesRef coords) const {
    run<Fwd>(x, out, Explicit{coords, m_config.axes});
  }
  /// The inverse rotation R_p^T = R_{−p} (the backward pass of apply_at): same overloads.
  void apply_inverse_at(MatrixRef<T> x, ConstCoordinatesRef coords) const {
    run<Inv>(x, x, Explicit{coords, m_config.axes});
  }
  void apply_inverse_at(ConstMatrixRef<T> x, MatrixRef<T> out, ConstCoordinatesRef coords) const {
    run<Inv>(x, out, Explicit{coords, m_config.axes});
  }

  /// 2D only: the tokens are a rows × cols grid in row-major order, token t at
  /// (row, col) = (t / cols, t % cols); `order` says which of the two rotates block 0 (GridAxes).
  /// Same result as apply_at with those coordinate rows, without building them.
  /// \throws std::invalid_argument if axes != 2, rows·cols != x.rows(), or as apply_at.
  void apply_grid(MatrixRef<T> x, Index rows, Index cols,
                  GridAxes order = GridAxes::RowFirst) const {
    run<Fwd>(x, x, grid(rows, cols, order));
  }
  /// Out of place; out has x's shape and may be x itself (no partial overlap).
  void apply_grid(ConstMatrixRef<T> x, MatrixRef<T> out, Index rows, Index cols,
                  GridAxes order = GridAxes::RowFirst) const {
    run<Fwd>(x, out, grid(rows, cols, order));
  }
  /// Inverse of apply_grid: same overloads.
  void apply_inverse_grid(MatrixRef<T> x, Index rows, Index cols,
                          GridAxes order = GridAxes::RowFirst) const {
    run<Inv>(x, x, grid(rows, cols, order));
  }
  void apply_inverse_grid(ConstMatrixRef<T> x, MatrixRef<T> out, Index rows, Index cols,
                          GridAxes order = GridAxes::RowFirst) const {
    run<Inv>(x, out, grid(rows, cols, order));
  }

  const RopeNDConfig& config() const noexcept { return m_config; }
  /// m = head_dim / axes, the channels of one block.
  Index block_dim() const noexcept { return m_config.head_dim / m_config.axes; }
  /// θ_r in double, r < block_dim/2 (shared by every axis).
  const std::vector<double>& inv_freq() const noexcept { return m_table.inv_freq(); }

 protected:
  /// For thin wrappers (Rope2D) that report errors under their own name.
  RopeND(const RopeNDConfig& config, const char* where) : m_config(config) {
    detail::require(config.axes >= 1, where, "axes must be >= 1 (got axes=", config.axes, ")");
    const Index m = config.head_dim / config.axes;
    detail::require(config.head_dim > 0 && config.head_dim % config.axes == 0 && m % 2 == 0,
                    where, "head_dim must split into ", config.axes,
                    " even blocks (got head_dim=", config.head_dim, ", axes=", config.axes, ")");
    detail::require(config.layout == RopeLayout::Interleaved ||
                        config.layout == RopeLayout::HalfSplit,
                    where, "layout must be RopeLayout::Interleaved or HalfSplit (got ",
                    static_cast<int>(config.layout), ")");
    detail::require(config.cached_positions >= 0, where, "cached_positions must be >= 0 (got ",
                    config.cached_positions, ")");
    validate_rope_frequencies(m, config.base, RopeScaling{}, where);
    // Same frequencies as Rope with head_dim = rotary_dim = m, hence the bitwise 1D reduction.
    m_table = detail::RopeTable<T>(rope_inv_freq(m, config.base), 1.0, config.cached_positions);
  }

 private:
  static constexpr simd::Rotation Fwd = simd::Rotation::Forward;
  static constexpr simd::Rotation Inv = simd::Rotation::Inverse;
  using Isa = simd::native_isa;
  static constexpr std::int64_t kMaxCoordinate = std::int64_t(1) << 53;  // exact in double

  struct Explicit {
    ConstCoordinatesRef coords;
    Index axes;
    void validate(Index rows) const {
      detail::require(coords.cols() == axes, "RopeND",
                      "coords must have one column per axis: coords.cols() == ", axes, " (got ",
                      coords.cols(), ")");
      detail::require(coords.rows() == rows, "RopeND",
                      "coords must have one row per token: coords.rows() == ", rows, " (got ",
                      coords.rows(), ")");
      for (Index t = 0; t < coords.rows(); ++t)
        for (Index a = 0; a < axes; ++a)
          detail::require(coords(t, a) >= 0 && coords(t, a) <= kMaxCoordinate, "RopeND",
                          "coordinates must be in [0, 2^53] (got coords(", t, ", ", a,
                          ")=", coords(t, a), ")");
    }
    std::int64_t operator()(Index t, Index a) const { return coords(t, a); }
  };
  struct Grid {
    Index rows, cols;
    GridAxes order;
    void validate(Index tokens) const {
      const bool ok = rows >= 0 && cols >= 0 &&
                      (rows == 0 || cols == 0 ? tokens == 0
                                              : tokens % cols == 0 && tokens / cols == rows);
      detail::require(ok, "RopeND", "grid rows·cols must equal the number of tokens (got rows=",
                      rows, ", cols=", cols, ", tokens=", tokens, ")");
    }
    std::int64_t operator()(Index t, Index a) const {
      const bool row = (a == 0) == (order == GridAxes::RowFirst);
      return static_cast<std::int64_t>(row ? t / cols : t % cols);
    }
  };

  Grid grid(Index rows, Index cols, GridAxes order) const {
    detail::require(m_config.axes == 2, "RopeND", "apply_grid needs axes == 2 (got axes=",
                    m_config.axes, ")");
    detail::require(order == GridAxes::RowFirst || order == GridAxes::ColumnFirst, "RopeND",
                    "order must be GridAxes::RowFirst or ColumnFirst (got ",
                    static_cast<int>(order), ")");
    return Grid{rows, cols, order};
  }

  template <simd::Rotation Dir, class Coordinates>
  void run(ConstMatrixRef<T> x, MatrixRef<T> out, const Coordinates& coords) const {
    const Index d = m_config.head_dim;
    detail::require(x.cols() % d == 0, "RopeND", "x.cols() must be a multiple of head_dim=", d,
                    " (got ", x.rows(), "x", x.cols(), ")");
    detail::require(out.rows() == x.rows() && out.cols() == x.cols(), "RopeND", "out must be ",
                    x.rows(), "x", x.cols(), " like x (got ", out.rows(), "x", out.cols(), ")");
    detail::require_same_or_disjoint(x.data(), x.outerStride(), out.data(), out.outerStride(),
                                     x.rows(), x.cols(), "RopeND");
    coords.validate(x.rows());
    if (m_config.layout == RopeLayout::Interleaved)
      rotate<Dir, RopeLayout::Interleaved>(x, out, coords);
    else
      rotate<Dir, RopeLayout::HalfSplit>(x, out, coords);
  }

  template <simd::Rotation Dir, RopeLayout Layout, class Coordinates>
  void rotate(ConstMatrixRef<T> x, MatrixRef<T> out, const Coordinates& coords) const {
    const Index d = m_config.head_dim, n = m_config.axes, m = d / n, heads = x.cols() / d;
    const Index pairs = m_table.pairs();
    const simd::StoreHint hint = detail::rope_store_hint(
        x.data(), out.data(), static_cast<std::size_t>(x.rows() * x.cols()) * sizeof(T));
    std::vector<T> scratch;  // only for coordinates past the cache
    for (Index t = 0; t < x.rows(); ++t) {
      const T* xr = x.data() + t * x.outerStride();
      T* yr = out.data() + t * out.outerStride();
      // One table row per axis, applied to block a of every head by the multi-head kernel (the
      // blocks of different axes are disjoint channels of the same row, so the row is read and
      // written once in all).
      for (Index a = 0; a < n; ++a) {
        const std::int64_t p = coords(t, a);
        if (p >= m_table.cached_positions() && scratch.empty())
          scratch.resize(static_cast<std::size_t>(2 * pairs));
        const T* c = m_table.row(p, scratch.data());
        const T* s = c + pairs;
        if constexpr (Layout == RopeLayout::Interleaved)
          simd::rope_interleaved_heads<Isa, Dir>(xr + a * m, c, s, yr + a * m,
                                                 static_cast<std::size_t>(m),
                                                 static_cast<std::size_t>(heads),
                                                 static_cast<std::size_t>(d), hint);
        else
          simd::rope_half_split_heads<Isa, Dir>(xr + a * m, c, s, yr + a * m,
                                                static_cast<std::size_t>(m),
                                                static_cast<std::size_t>(heads),
                                                static_cast<std::size_t>(d), hint);
      }
    }
    if (hint == simd::StoreHint::Stream) simd::stream_fence();
  }

  RopeNDConfig m_config;
  detail::RopeTable<T> m_table;
};

/// Su's RoPE-2D (kexue 8397): RopeND with axes = 2, block 0 rotated by the first coordinate and
/// block 1 by the second. Adds nothing but the axes check and a head_dim shortcut.
/// Thread-safe as RopeND: const methods share only immutable tables.
template <typename T>
class Rope2D : public RopeND<T> {
 public:
  /// \throws std::invalid_argument if config.axes != 2, or as RopeND.
  explicit Rope2D(const RopeNDConfig& config) : RopeND<T>(checked(config), "Rope2D") {}
  /// Defaults of RopeNDConfig with the given head_dim (a multiple of 4).
  explicit Rope2D(Index head_dim) : Rope2D(with_head_dim(head_dim)) {}

 private:
  static const RopeNDConfig& checked(const RopeNDConfig& config) {
    detail::require(config.axes == 2, "Rope2D", "axes must be 2 (got axes=", config.axes, ")");
    return config;
  }
  static RopeNDConfig with_head_dim(Index head_dim) {
    RopeNDConfig config;
    config.head_dim = head_dim;
    return config;
  }
};

XFMR_NAMESPACE_END

#endif  // XFMR_POSITION_ROPE_ND_HPP
