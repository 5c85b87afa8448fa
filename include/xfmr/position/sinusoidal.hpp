// SPDX-License-Identifier: MIT
// Sinusoidal absolute position encoding (Vaswani et al., "Attention Is All You Need",
// arXiv:1706.03762, §3.5).
#ifndef XFMR_POSITION_SINUSOIDAL_HPP
#define XFMR_POSITION_SINUSOIDAL_HPP

#include <cmath>
#include <cstdint>
#include <vector>

#include "../detail/rope_table.hpp"
#include "../error.hpp"
#include "../types.hpp"
#include "rope_scaling.hpp"

XFMR_NAMESPACE_BEGIN

/// Where the sin and cos of frequency r go in a row of D channels (SPEC §3.1). Same values,
/// different order; tables of the two layouts are not interchangeable.
///
///   Interleaved (the paper, bert4keras sinusoidal_embeddings):
///     [sin ω0 p, cos ω0 p, sin ω1 p, cos ω1 p, …]                  PE[p, 2r], PE[p, 2r+1]
///   Halves (HF RoFormer / Marian create_weight):
///     [sin ω0 p, sin ω1 p, … | cos ω0 p, cos ω1 p, …]             PE[p, r], PE[p, D/2 + r]
enum class SinusoidalLayout { Interleaved, Halves };

namespace detail {

struct SinusoidalOffset {
  Index pos0;
  void validate(Index rows) const {
    constexpr Index kMax = Index(1) << 53;  // integers exact in double
    require(pos0 >= 0 && pos0 <= kMax - rows, "sinusoidal_encoding",
            "pos0 must be >= 0 and pos0 + tokens <= 2^53 (got pos0=", pos0, ", tokens=", rows,
            ")");
  }
  std::int64_t operator()(Index t) const { return static_cast<std::int64_t>(pos0 + t); }
};

struct SinusoidalIds {
  ConstPositionsRef ids;
  void validate(Index rows) const {
    constexpr std::int64_t kMax = std::int64_t(1) << 53;
    require(ids.size() == rows, "sinusoidal_encoding_at",
            "one position id per row: ids.size() == ", rows, " (got ", ids.size(), ")");
    for (Index t = 0; t < ids.size(); ++t)
      require(ids[t] >= 0 && ids[t] <= kMax, "sinusoidal_encoding_at",
              "position ids must be in [0, 2^53] (got ids[", t, "]=", ids[t], ")");
  }
  std::int64_t operator()(Index t) const { return ids[t]; }
};

template <typename T, class Positions>
void sinusoidal_encoding_impl(MatrixRef<T> out, const Positions& positions,
                              SinusoidalLayout layout, double base, const char* where) {
  const Index D = out.cols();
  require(D > 0 && D % 2 == 0, where, "out.cols() = D must be even and > 0 (got D=", D, ")");
  require(std::isfinite(base) && base > 1.0, where, "base must be finite and > 1 (got base=",
          base, ")");
  require(layout == SinusoidalLayout::Interleaved || layout == SinusoidalLayout::Halves, where,
          "layout must be SinusoidalLayout::Interleaved or Halves (got ", static_cast<int>(layout),
          ")");
  positions.validate(out.rows());
  // ω_r = b^(−2r/D) are RoPE's frequencies with d_rot = D, so RopeTable yields exactly the
  // cos/sin we need, with its exact double angle reduction (SPEC §1.6); nothing is cached.
  const RopeTable<T> table(rope_inv_freq(D, base), 1.0, 0);
  const Index h = D / 2;
  std::vector<T> cs(static_cast<std::size_t>(D));  // [cos_0 … cos_{h−1} | sin_0 … sin_{h−1}]
  for (Index t = 0; t < out.rows(); ++t) {
    table.compute(positions(t), cs.data());
    T* row = out.data() + t * out.outerStride();
    if (layout == SinusoidalLayout::Interleaved) {
      for (Index r = 0; r < h; ++r) {
        row[2 * r] = cs[h + r];
        row[2 * r + 1] = cs[r];
      }
    } else {
      for (Index r = 0; r < h; ++r) {
        row[r] = cs[h + r];
        row[h + r] = cs[r];
      }
    }
  }
}

}  // namespace detail

/// Sinusoidal position encoding: row t of out is PE(pos0 + t), with D = out.cols() channels,
///   PE[p, 2r]   = sin(p·ω_r),   PE[p, 2r+1] = cos(p·ω_r),   ω_r = b^(−2r/D),  r < D/2,
/// stored in the given layout (SinusoidalLayout). Add it to the token embeddings (x + PE) or
/// use it as bert4keras' "mul"/"zero"/"concat" merge needs.
///
/// Accuracy: ω_r and p·ω_r are formed in double and reduced mod 2π in double (SPEC §1.6), so
/// the error is the final rounding to T plus about p·2^−51 from the double angle: for float
/// ≤ 1 ulp (≤ 6e-8 absolute) up to p = 10^6, where a float angle would be off by 0.06 rad.
///
/// Shapes: out is (tokens × D), rows may be strided; every element is overwritten.
/// \throws std::invalid_argument if D is odd or 0, base is not finite and > 1, the layout is
///         unknown, or pos0 < 0 or pos0 + tokens > 2^53.
inline void sinusoidal_encoding(MatrixRef<float> out, Index pos0 = 0,
                                SinusoidalLayout layout = SinusoidalLayout::Interleaved,
                                double base = 10000.0) {
  detail::sinusoidal_encoding_impl<float>(out, detail::SinusoidalOffset{pos0}, layout,
                                          base, "sinusoidal_encoding");
}
inline void sinusoidal_encoding(MatrixRef<double> out, Index pos0 = 0,
                                SinusoidalLayout layout = SinusoidalLayout::Interleaved,
                                double base = 10000.0) {
  detail::sinusoidal_encoding_impl<double>(out, detail::SinusoidalOffset{pos0}, layout,
                                           base, "sinusoidal_encoding");
}

/// As sinusoidal_encoding, with explicit positions: row t of out is PE(ids[t]).
/// \throws std::invalid_argument as sinusoidal_encoding, if ids.size() != out.rows(), or an id
///         is outside [0, 2^53].
inline void sinusoidal_encoding_at(MatrixRef<float> out, ConstPositionsRef ids,
                                   SinusoidalLayout layout = SinusoidalLayout::Interleaved,
                                   double base = 10000.0) {
  detail::sinusoidal_encoding_impl<float>(out, detail::SinusoidalIds{ids}, layout, base,
                                          "sinusoidal_encoding_at");
}
inline void sinusoidal_encoding_at(MatrixRef<double> out, ConstPositionsRef ids,
                                   SinusoidalLayout layout = SinusoidalLayout::Interleaved,
                                   double base = 10000.0) {
  detail::sinusoidal_encoding_impl<double>(out, detail::SinusoidalIds{ids}, layout, base,
                                           "sinusoidal_encoding_at");
}

XFMR_NAMESPACE_END

#endif  // XFMR_POSITION_SINUSOIDAL_HPP
