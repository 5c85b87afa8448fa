// SPDX-License-Identifier: MIT
// Mergeable mean/scatter accumulator for BERT-whitening (Welford/Chan in double; SPEC §9.2).
#ifndef XFMR_HEADS_WHITENING_STATS_HPP
#define XFMR_HEADS_WHITENING_STATS_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"

#include "../error.hpp"
#include "../simd/gemm.hpp"
#include "../simd/isa.hpp"
#include "../simd/vec.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN

/// Denominator of the covariance: Population is C/N (kexue 8069), Sample is C/(N−1) (np.cov, the
/// bojone/BERT-whitening repo). They differ by one constant factor, so cosines after whitening
/// are the same either way; whitened vectors differ by sqrt(N/(N−1)).
enum class CovarianceNormalization { Population, Sample };

namespace detail {

/// Scratch values gram_lower_f32 needs for blocks of kc rows of width d (Isa as in the call).
template <class Isa>
constexpr Index gram_scratch_size(Index d, Index kc) noexcept {
  return kc * d + simd::packed_a_size<float, Isa>(d, kc) + simd::packed_b_size<float, Isa>(kc, d);
}

/// Lower triangle of the centred Gram matrix in float, G += Σ_r (x_r − s)ᵀ(x_r − s), for a block
/// of `rows` rows of width d (row stride ldx) and shift s; G is d × d, row-major with row stride
/// ldg; entries (i, j) with i >= j are accumulated (and some above the diagonal inside the
/// engine's diagonal tiles, which are meaningless). scratch: gram_scratch_size<Isa>(d, kc).
/// Rows are taken kc at a time, centred into Y (kc × d, row-major) and packed once as both
/// operands (A = Yᵀ as PackedA: read in place its rows would be a page apart per k; B = Y as
/// PackedB); the GEMM engine then runs G += Yᵀ·Y over the lower tiles only (GemmPart::Lower:
/// half the FLOPs of a full Gram).
template <class Isa>
void gram_lower_f32(const float* x, Index rows, Index d, Index ldx, const float* s, float* g,
                    Index ldg, float* scratch, Index kc) noexcept {
  float* y = scratch;
  float* apacked = scratch + kc * d;
  float* packed = apacked + simd::packed_a_size<float, Isa>(d, kc);
  for (Index r0 = 0; r0 < rows; r0 += kc) {
    const Index kb = std::min(kc, rows - r0);
    for (Index p = 0; p < kb; ++p) {
      const float* xr = x + (r0 + p) * ldx;
      float* yr = y + p * d;
      for (Index c = 0; c < d; ++c) yr[c] = xr[c] - s[c];
    }
    simd::pack_a<Isa>(d, kb, y, Index(1), d, apacked);
    simd::pack_b<Isa>(kb, d, simd::GemmB<float>{y, d, false}, packed);
    simd::gemm<Isa>(d, d, kb, 1.0f, simd::PackedA<float>{apacked, kb, d},
                    simd::PackedB<float>{packed, kb, d}, 1.0f, g, ldg, simd::NoEpilogue{},
                    simd::GemmPart::Lower);
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

  // ---- flat serialisation (to send the statistics between processes, e.g. over MPI) --------

  /// Doubles in the flat buffer of statistics of width dim: 2 + D + D(D+1)/2.
  static constexpr std::size_t buffer_size(Index dim) noexcept {
    const auto d = static_cast<std::size_t>(dim);
    return 2 + d + d * (d + 1) / 2;
  }
  /// buffer_size(dim()).
  std::size_t buffer_size() const noexcept { return buffer_size(m_dim); }

  /// Writes the statistics to out[0, buffer_size()), all double, host byte order:
  ///   [0]                D
  ///   [1]                N (the row count; exact below 2^53)
  ///   [2, 2 + D)         μ
  ///   [2 + D, …)         the lower triangle of C, row by row: C00, C10, C11, C20, C21, C22, …
  /// batch_rows and exact_gram (how rows are added, not what was added) are not part of it.
  /// from_buffer restores the same bits. No allocation. 	hrows nothing.
  void to_buffer(double* out) const noexcept {
    out[0] = static_cast<double>(m_dim);
    out[1] = static_cast<double>(m_count);
    std::copy(m_mean.data(), m_mean.data() + m_dim, out + 2);
    double* c = out + 2 + m_dim;
    for (Index i = 0; i < m_dim; ++i, c += i) {
      const double* ci = m_scatter.data() + i * m_dim;
      std::copy(ci, ci + i + 1, c);
    }
  }
  /// The same into a new vector of buffer_size() doubles.
  std::vector<double> to_buffer() const {
    std::vector<double> out(buffer_size());
    to_buffer(out.data());
    return out;
  }

  /// Replaces the statistics by those of a buffer written by to_buffer for the same dim()
  /// (batch_rows and exact_gram stay). No allocation.
  /// 	hrows std::invalid_argument (statistics unchanged) if size != buffer_size(), the stored D
  ///         differs from dim(), N is not an integer in [0, 2^53], or a value is not finite.
  void from_buffer(const double* in, std::size_t size) {
    detail::require(size == buffer_size(), "WhiteningStats", "from_buffer needs ",
                    buffer_size(), " doubles for dim=", m_dim, " (got ", size, ")");
    detail::require(in[0] == static_cast<double>(m_dim), "WhiteningStats",
                    "from_buffer needs a buffer of dim=", m_dim, " (got dim=", in[0], ")");
    const double n = in[1];
    detail::require(n >= 0 && n <= 9007199254740992.0 && n == std::floor(n), "WhiteningStats",
                    "from_buffer needs a row count that is an integer in [0, 2^53] (got ", n, ")");
    bool finite = true;
    for (std::size_t i = 2; i < size; ++i) finite = finite && std::isfinite(in[i]);
    detail::require(finite, "WhiteningStats",
                    "from_buffer needs finite statistics (got a non-finite value)");
    m_count = static_cast<std::int64_t>(n);
    std::copy(in + 2, in + 2 + m_dim, m_mean.data());
    const double* c = in + 2 + m_dim;
    for (Index i = 0; i < m_dim; ++i, c += i) {
      double* ci = m_scatter.data() + i * m_dim;
      std::copy(c, c + i + 1, ci);
      std::fill(ci + i + 1, ci + m_dim, 0.0);
    }
  }
  /// from_buffer on a vector.
  void from_buffer(const std::vector<double>& in) { from_buffer(in.data(), in.size()); }

 private:
  // Float Gram blocking: rows per centred block (the AVX2 engine's kc for float: one pass of k
  // per panel there, two on AVX-512 (kc 128); measured best of 128…512 on Zen with the former
  // kernel, not re-tuned for AVX-512).
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
        const Index dpad = d;
        m_shift_f = m_block_mean.cast<float>();
        m_gram_f.assign(static_cast<std::size_t>(dpad * dpad), 0.0f);
        m_pack_f.resize(static_cast<std::size_t>(detail::gram_scratch_size<Isa>(d, kPackRows)));
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
