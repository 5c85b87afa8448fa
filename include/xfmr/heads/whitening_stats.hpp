// SPDX-License-Identifier: MIT
// Mergeable mean/scatter accumulator for BERT-whitening (Welford/Chan in double; SPEC §9.2).
#ifndef XFMR_HEADS_WHITENING_STATS_HPP
#define XFMR_HEADS_WHITENING_STATS_HPP

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"

#include "../error.hpp"
#include "../simd/isa.hpp"
#include "../simd/vec.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Denominator of the covariance: Population is C/N (kexue 8069), Sample is C/(N−1) (np.cov, the
/// bojone/BERT-whitening repo). They differ by one constant factor, so cosines after whitening
/// are the same either way; whitened vectors differ by sqrt(N/(N−1)).
enum class CovarianceNormalization { Population, Sample };

namespace detail {

/// Register-tile product shared by the Gram update and the whitening transform (float):
///   C(4 × nr) (+)= Σ_{p<kc} A(i, p) · B(p, j),  A(i, p) = a_i[p·a_step],  B(p, j) = b[p·nr + j]
/// with nr = 3 vector widths (24 floats on AVX2). 12 accumulators + 3 B vectors + 1 broadcast fill
/// the 16 ymm registers; per p: 3 loads, 4 broadcasts, 12 FMAs. C is row-major with stride ldc.
template <class Isa>
struct GemmTile {
  using V = simd::Vec<float, Isa>;
  static constexpr Index mr = 4;
  static constexpr Index lanes = static_cast<Index>(V::lanes);
  static constexpr Index nr = 3 * lanes;
  /// Padding of the Gram's dimension: a multiple of both tile sides (24 on AVX2, 12 scalar).
  static constexpr Index pad = std::lcm(mr, nr);

  static void run(Index kc, const float* a0, const float* a1, const float* a2, const float* a3,
                  Index a_step, const float* b, float* c, Index ldc, bool accumulate) noexcept {
    using R = typename V::type;
    if (accumulate) prefetch_tile(c, ldc);  // C lives in L2/L3: its lines arrive during the loop
    R c00 = V::zero(), c01 = V::zero(), c02 = V::zero(), c10 = V::zero(), c11 = V::zero(),
      c12 = V::zero(), c20 = V::zero(), c21 = V::zero(), c22 = V::zero(), c30 = V::zero(),
      c31 = V::zero(), c32 = V::zero();
    for (Index p = 0; p < kc; ++p) {
      R b0 = V::load(b), b1 = V::load(b + lanes), b2 = V::load(b + 2 * lanes);
      pin(b0), pin(b1), pin(b2);
      R a = V::set1(*a0);
      c00 = V::fmadd(a, b0, c00), c01 = V::fmadd(a, b1, c01), c02 = V::fmadd(a, b2, c02);
      a = V::set1(*a1);
      c10 = V::fmadd(a, b0, c10), c11 = V::fmadd(a, b1, c11), c12 = V::fmadd(a, b2, c12);
      a = V::set1(*a2);
      c20 = V::fmadd(a, b0, c20), c21 = V::fmadd(a, b1, c21), c22 = V::fmadd(a, b2, c22);
      a = V::set1(*a3);
      c30 = V::fmadd(a, b0, c30), c31 = V::fmadd(a, b1, c31), c32 = V::fmadd(a, b2, c32);
      a0 += a_step, a1 += a_step, a2 += a_step, a3 += a_step, b += nr;
    }
    store_row(c, c00, c01, c02, accumulate);
    store_row(c + ldc, c10, c11, c12, accumulate);
    store_row(c + 2 * ldc, c20, c21, c22, accumulate);
    store_row(c + 3 * ldc, c30, c31, c32, accumulate);
  }

 private:
  // Without this GCC folds the three B loads into each of the twelve FMAs (12 loads + 4
  // broadcasts per step instead of 3 + 4) and the kernel becomes load-port bound at ~50% of peak.
  template <typename R>
  static XFMR_INLINE void pin(R& v) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__)) && defined(__SSE2__)
    asm("" : "+x"(v));
#else
    (void)v;
#endif
  }

  static XFMR_INLINE void prefetch_tile(const float* c, Index ldc) noexcept {
#if defined(__GNUC__)
    for (Index i = 0; i < mr; ++i) {
      __builtin_prefetch(c + i * ldc, 1);
      __builtin_prefetch(c + i * ldc + nr - 1, 1);
    }
#else
    (void)c, (void)ldc;
#endif
  }

  static XFMR_INLINE void store_row(float* c, typename V::type x0, typename V::type x1,
                                    typename V::type x2, bool accumulate) noexcept {
    if (accumulate) {
      x0 = V::add(x0, V::load(c));
      x1 = V::add(x1, V::load(c + lanes));
      x2 = V::add(x2, V::load(c + 2 * lanes));
    }
    V::store(c, x0);
    V::store(c + lanes, x1);
    V::store(c + 2 * lanes, x2);
  }
};

/// Lower triangle of the centred Gram matrix in float, G += Σ_r (x_r − s)ᵀ(x_r − s), for a block
/// of `rows` rows of width d (row stride ldx) and shift s. G is row-major dpad × dpad with
/// dpad = d rounded up to GemmTile<Isa>::pad; entries (i, j) with i >= j are accumulated (plus
/// a few above the diagonal inside diagonal tiles, which are ignored). pack must hold 2·kc·dpad
/// floats.
/// Rows are taken kc at a time and packed, centred, into column panels P[g][p][0..nr) (zero
/// padded): one nr-wide panel (kc·nr floats, in L1) is the B operand; the A operand's four rows
/// i..i+3 are repacked from P into mr-wide micro panels and broadcast from there.
/// Only tiles with i >= j run: half the FLOPs of a full Gram (N·d² multiply-adds counted as N·d²
/// FLOPs in the benchmarks, which is the true count of the lower half times two).
template <class Isa>
void gram_lower_f32(const float* x, Index rows, Index d, Index ldx, const float* s, float* g,
                    Index dpad, float* pack, Index kc) noexcept {
  using Tile = GemmTile<Isa>;
  constexpr Index nr = Tile::nr, mr = Tile::mr;
  const Index groups = dpad / nr;
  for (Index r0 = 0; r0 < rows; r0 += kc) {
    const Index kb = std::min(kc, rows - r0);
    // Pack and centre: P[g][p][c] = x[r0 + p][g·nr + c] − s[g·nr + c], zero past d.
    for (Index p = 0; p < kb; ++p) {
      const float* xr = x + (r0 + p) * ldx;
      for (Index gi = 0; gi < groups; ++gi) {
        float* dst = pack + gi * kb * nr + p * nr;
        const Index c0 = gi * nr;
        if (c0 + nr <= d) {  // full panel: constant trip count, vectorised
          for (Index c = 0; c < nr; ++c) dst[c] = xr[c0 + c] - s[c0 + c];
        } else {
          const Index n = d - c0;
          for (Index c = 0; c < n; ++c) dst[c] = xr[c0 + c] - s[c0 + c];
          for (Index c = n; c < nr; ++c) dst[c] = 0.0f;
        }
      }
    }
    // A operand: rows i..i+3 of Yᵀ = columns i..i+3 of the block, repacked as mr-wide micro
    // panels A[t][p][0..mr) so that one tile reads kb·mr floats (3 KiB), not a whole B panel.
    float* apack = pack + kb * dpad;
    for (Index t = 0; t < dpad / mr; ++t) {
      float* dst = apack + t * kb * mr;
      if (nr % mr == 0) {  // the tile's columns lie in one panel (always, except scalar)
        const float* src = pack + (t * mr / nr) * kb * nr + (t * mr) % nr;
        for (Index p = 0; p < kb; ++p)
          for (Index c = 0; c < mr; ++c) dst[p * mr + c] = src[p * nr + c];
      } else {
        for (Index c = 0; c < mr; ++c) {
          const Index col = t * mr + c;
          const float* src = pack + (col / nr) * kb * nr + col % nr;
          for (Index p = 0; p < kb; ++p) dst[p * mr + c] = src[p * nr];
        }
      }
    }
    for (Index gj = 0; gj < groups; ++gj) {
      const float* bpanel = pack + gj * kb * nr;
      for (Index i0 = gj * nr / mr * mr; i0 < dpad; i0 += mr) {  // from the diagonal tile
        const float* a = apack + (i0 / mr) * kb * mr;
        Tile::run(kb, a, a + 1, a + 2, a + 3, mr, bpanel, g + i0 * dpad + gj * nr, dpad, true);
      }
    }
  }
}

}  // namespace detail

/// Running count, mean and scatter matrix of row vectors, C = Σ (x_i − μ)ᵀ(x_i − μ), mergeable in
/// any order. Every batch passed to add() is split into blocks of batch_rows rows; each block is
/// centred on its own mean before its Gram product and folded in with Chan's update (SPEC §9.2):
///   n = n_A + n_B,  δ = μ_B − μ_A,  μ = μ_A + δ·n_B/n,  C = C_A + C_B + δδᵀ·n_A·n_B/n
/// so a large common offset (‖μ‖ ≫ spread) does not cancel as in E[xxᵀ] − μμᵀ.
///
/// Precision: count, mean and C are double. The block Gram is computed in the input type: for
/// float input it runs in float (a packed register-tile kernel, the cost of the whole fit) on
/// rows centred in float on the block mean rounded to float; the rounding e = μ_B − fl(μ_B) is
/// removed exactly in double, C_B = G − n_B·e eᵀ. Relative error of C is then ~1e-6 (float
/// accumulation over at most batch_rows rows), independent of the offset. Set exact_gram to run
/// the Gram in double for float input as well (about 4× slower).
///
/// Allocation: the first add() allocates scratch (a block buffer and a float Gram, ~D² floats);
/// later calls do not. Not thread-safe on one object; accumulate shards in separate objects and
/// merge() them.
class WhiteningStats {
 public:
  /// \throws std::invalid_argument if dim <= 0 or batch_rows <= 0.
  explicit WhiteningStats(Index dim, Index batch_rows = 4096, bool exact_gram = false)
      : m_dim(dim), m_batch_rows(batch_rows), m_exact_gram(exact_gram) {
    detail::require(dim > 0, "WhiteningStats", "dim must be > 0 (got dim=", dim, ")");
    detail::require(batch_rows > 0, "WhiteningStats", "batch_rows must be > 0 (got batch_rows=",
                    batch_rows, ")");
    reset();
  }

  /// Adds every row of x (N × D, one vector per row, rows may be strided). N = 0 is a no-op.
  /// \throws std::invalid_argument if x.cols() != dim() or x holds a non-finite value (the
  ///         statistics are left unchanged then: the check runs on each block before folding).
  template <typename T>
  void add(ConstMatrixRef<T> x) {
    static_assert(detail::is_real_v<T>, "xfmr::WhiteningStats::add: T must be float or double");
    detail::require(x.cols() == m_dim, "WhiteningStats", "x must have dim=", m_dim,
                    " columns (got ", x.rows(), "x", x.cols(), ")");
    // One pass, block by block (each block is read twice while it is cache-resident: its mean,
    // then its Gram). A block's mean is non-finite iff one of its values is (float input cannot
    // overflow a double sum), so that is the finiteness check; if a later block fails, the
    // statistics are restored from a copy taken on entry, leaving them unchanged.
    const Index blocks = (x.rows() + m_batch_rows - 1) / m_batch_rows;
    const bool keep_backup = blocks > 1 && m_count > 0;
    if (keep_backup) {
      m_backup_mean = m_mean;
      m_backup_scatter = m_scatter;
    }
    const std::int64_t count0 = m_count;
    for (Index b = 0; b < blocks; ++b) {
      const Index r0 = b * m_batch_rows, rows = std::min(m_batch_rows, x.rows() - r0);
      block_mean<T>(x.middleRows(r0, rows), m_block_mean);
      if (!m_block_mean.allFinite()) {
        if (b > 0) {
          m_count = count0;
          if (keep_backup) {
            m_mean = m_backup_mean;
            m_scatter = m_backup_scatter;
          } else {
            m_mean.setZero();
            m_scatter.setZero();
          }
        }
        detail::throw_invalid("WhiteningStats", "x must be finite (got a non-finite value in rows [",
                              r0, ", ", r0 + rows, "))");
      }
      add_block<T>(x.middleRows(r0, rows));
    }
  }

  /// Chan merge: afterwards *this holds the statistics of both sets of rows.
  /// \throws std::invalid_argument (a std::logic_error) if the dimensions differ.
  void merge(const WhiteningStats& other) {
    detail::require(other.m_dim == m_dim, "WhiteningStats",
                    "merge needs statistics of the same dim=", m_dim, " (got dim=", other.m_dim,
                    ")");
    merge_moments(other.m_count, other.m_mean, other.m_scatter);
  }

  /// Forgets every row (keeps the scratch).
  void reset() {
    m_count = 0;
    m_mean = Eigen::VectorXd::Zero(m_dim);
    m_scatter = RowMatrix<double>::Zero(m_dim, m_dim);
  }

  Index dim() const noexcept { return m_dim; }
  /// Number of rows added (and merged).
  std::int64_t count() const noexcept { return m_count; }
  /// μ (D), double.
  const Eigen::VectorXd& mean() const noexcept { return m_mean; }
  /// C = Σ (x_i − μ)ᵀ(x_i − μ), full and symmetric (D × D).
  Eigen::MatrixXd scatter() const {
    Eigen::MatrixXd c = m_scatter.selfadjointView<Eigen::Lower>();
    return c;
  }
  /// Σ = C/N (Population) or C/(N−1) (Sample).
  /// \throws std::logic_error if count() < 2.
  Eigen::MatrixXd covariance(CovarianceNormalization normalization =
                                 CovarianceNormalization::Population) const {
    if (m_count < 2)
      detail::throw_logic("WhiteningStats", "covariance needs at least 2 rows (got ", m_count,
                          ")");
    const double denom = normalization == CovarianceNormalization::Sample
                             ? static_cast<double>(m_count - 1)
                             : static_cast<double>(m_count);
    return scatter() / denom;
  }
  Index batch_rows() const noexcept { return m_batch_rows; }
  bool exact_gram() const noexcept { return m_exact_gram; }

 private:
  // Float Gram kernel blocking: kc rows per packed panel; the B panel (kc·24 floats, 24 KiB) and
  // one A micro panel (kc·4 floats, 4 KiB) stay in L1 (measured best of 128…512 on Zen).
  static constexpr Index kPackRows = 256;

  template <typename T>
  static void block_mean(ConstMatrixRef<T> x, Eigen::VectorXd& mean) {
    mean.setZero(x.cols());
    for (Index r = 0; r < x.rows(); ++r) mean += x.row(r).template cast<double>().transpose();
    if (x.rows() > 0) mean /= static_cast<double>(x.rows());
  }

  template <typename T>
  void add_block(ConstMatrixRef<T> x) {
    const Index n = x.rows(), d = m_dim;  // m_block_mean holds the block's mean
    if constexpr (std::is_same_v<T, float>) {
      if (!m_exact_gram) {
        using Isa = simd::native_isa;
        constexpr Index pad = detail::GemmTile<Isa>::pad;
        const Index dpad = (d + pad - 1) / pad * pad;
        m_shift_f = m_block_mean.cast<float>();
        m_gram_f.assign(static_cast<std::size_t>(dpad * dpad), 0.0f);
        m_pack_f.resize(static_cast<std::size_t>(2 * kPackRows * dpad));
        detail::gram_lower_f32<Isa>(x.data(), n, d, x.outerStride(), m_shift_f.data(),
                                    m_gram_f.data(), dpad, m_pack_f.data(), kPackRows);
        // C_B = G − n·e eᵀ, e = μ_B − fl(μ_B): removes the float rounding of the shift exactly.
        const Eigen::VectorXd e = m_block_mean - m_shift_f.cast<double>();
        m_block_scatter.resize(d, d);
        for (Index i = 0; i < d; ++i) {  // row-major lower triangles: contiguous rows
          const float* gi = m_gram_f.data() + i * dpad;
          double* ci = m_block_scatter.data() + i * d;
          const double nei = static_cast<double>(n) * e[i];
          for (Index j = 0; j <= i; ++j) ci[j] = static_cast<double>(gi[j]) - nei * e[j];
        }
        merge_moments(n, m_block_mean, m_block_scatter);
        return;
      }
    }
    // Double Gram (double input, or exact_gram): centre in double, symmetric rank-n update.
    m_block_d.resize(n, d);
    for (Index r = 0; r < n; ++r)
      m_block_d.row(r) = x.row(r).template cast<double>() - m_block_mean.transpose();
    m_block_scatter.setZero(d, d);
    m_block_scatter.selfadjointView<Eigen::Lower>().rankUpdate(m_block_d.transpose());
    merge_moments(n, m_block_mean, m_block_scatter);
  }

  // Chan's parallel update on the lower triangle (the upper one is never read).
  void merge_moments(std::int64_t nb, const Eigen::VectorXd& mean_b,
                     const RowMatrix<double>& scatter_b) {
    if (nb == 0) return;
    if (m_count == 0) {
      m_count = nb;
      m_mean = mean_b;
      m_scatter.triangularView<Eigen::Lower>() = scatter_b.triangularView<Eigen::Lower>();
      return;
    }
    const double na = static_cast<double>(m_count), nbd = static_cast<double>(nb),
                 n = na + nbd;
    const Eigen::VectorXd delta = mean_b - m_mean;
    const double w = na * nbd / n;
    for (Index i = 0; i < m_dim; ++i) {
      double* ci = m_scatter.data() + i * m_dim;
      const double* bi = scatter_b.data() + i * m_dim;
      const double wdi = w * delta[i];
      for (Index j = 0; j <= i; ++j) ci[j] += bi[j] + wdi * delta[j];
    }
    m_mean += delta * (nbd / n);
    m_count += nb;
  }

  Index m_dim;
  Index m_batch_rows;
  bool m_exact_gram;
  std::int64_t m_count = 0;
  Eigen::VectorXd m_mean;
  RowMatrix<double> m_scatter;  // lower triangle valid (row-major: rows contiguous)
  // Scratch (not state).
  Eigen::VectorXd m_block_mean;
  RowMatrix<double> m_block_scatter;
  Eigen::VectorXd m_backup_mean;
  RowMatrix<double> m_backup_scatter;
  Eigen::VectorXf m_shift_f;
  std::vector<float> m_gram_f, m_pack_f;
  RowMatrix<double> m_block_d;
};

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_WHITENING_STATS_HPP
