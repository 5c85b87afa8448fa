// SPDX-License-Identifier: MIT
// BERT-whitening of sentence vectors (Su, kexue.fm/archives/8069, 8321, 9079; arXiv 2103.15316):
// WhiteningConfig and BertWhitening (fit, transform, save/load). Its parts live beside it:
// whitening_stats.hpp (the mergeable statistics), detail/symmetric_eigen.hpp (the eigensolver),
// io/whitening_format.hpp (the file format); retrieval.hpp has cosine top-k over whitened vectors.
#ifndef XFMR_HEADS_WHITENING_HPP
#define XFMR_HEADS_WHITENING_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <istream>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/eigen.hpp"
#include "../detail/symmetric_eigen.hpp"
#include "../error.hpp"
#include "../io/whitening_format.hpp"
#include "../simd/gemm.hpp"
#include "../simd/isa.hpp"
#include "../types.hpp"
#include "whitening_stats.hpp"

XFMR_NAMESPACE_BEGIN

/// Hyper-parameters of BERT-whitening (SPEC §9.1; β, γ from kexue 9079).
struct WhiteningConfig {
  Index components = 0;  ///< k, kept components (1 <= k <= D); 0 means k = D
  double beta = 1.0;     ///< β: vectors are centred on β·μ (β = 0: not centred); finite
  double gamma = 1.0;    ///< γ: component c is scaled by (λ_c + ε)^(−γ/2) (γ = 0: rotation); finite
  /// Relative eigenvalue floor: ε = epsilon · λ_max is added to every eigenvalue before the
  /// power −γ/2, so directions with λ ≈ 0 (rank-deficient data, N <= D) get a finite scale
  /// (λ + ε)^(−γ/2) <= ε^(−γ/2) instead of infinity. >= 0, finite. With epsilon = 0 (and
  /// γ != 0) finalize() throws std::runtime_error when the data span fewer than k numerical
  /// directions, rather than return an infinite or noise-scaled whitening matrix.
  double epsilon = 1e-6;
  CovarianceNormalization normalization = CovarianceNormalization::Population;  ///< C/N or C/(N−1)
  bool normalize = false;  ///< L2-normalise every transformed row (norm clipped below at 1e-8)
  /// If true, finalize() throws when fewer than k eigenvalues exceed ε (see rank()); if false
  /// (default) such components are kept and regularised by ε as described above.
  bool strict_rank = false;
  Index batch_rows = 4096;  ///< rows per centred Gram block in the statistics (> 0)
  bool exact_gram = false;  ///< float input: run the Gram in double (see WhiteningStats)
};

/// BERT-whitening: a linear map fitted on sentence vectors x_i (rows, D wide) so that the
/// whitened vectors have zero mean and identity covariance, truncated to the k leading
/// principal directions:
///
///   μ = (1/N) Σ x_i,   Σ_β = (1/den) Σ (x_i − βμ)ᵀ(x_i − βμ) = U Λ Uᵀ   (Λ descending)
///   W_k = U_k (Λ_k + εI)^(−γ/2)                                          (D × k)
///   x̃ = (x − βμ) W_k                                                    (optionally / ‖x̃‖)
///
/// den = N (Population) or N − 1 (Sample). β = γ = 1 is standard whitening (W_kᵀ Σ W_k ≈ I_k);
/// β = γ = 0, k = D is a pure rotation (cosines unchanged). The eigenpairs of the symmetrised
/// Σ_β are computed in double (detail::leading_eigenpairs: all eigenvalues, the k leading
/// eigenvectors); each eigenvector is signed so that its largest-magnitude entry is positive
/// (signs are otherwise arbitrary; cosines never depend on them).
///
/// Usage: fit(x) in one call, or partial_fit(batch)… then finalize(); merge() combines the
/// statistics of whiteners fitted on other shards (any order gives the same result to rounding).
/// save()/load() store the fitted transform (not the statistics) in a versioned, checksummed,
/// little-endian binary record (io/whitening_format.hpp). Cosine top-k retrieval over the
/// whitened vectors: cosine_top_k (retrieval.hpp).
///
/// Shapes: inputs (N × D), one vector per row, rows may be strided; transform output (N × k),
/// sized by the caller. Thread-safety: const methods may run concurrently; fitting methods
/// (fit, partial_fit, merge, finalize) need exclusive access.
template <typename T>
class BertWhitening {
  static_assert(detail::is_real_v<T>, "xfmr::BertWhitening<T>: T must be float or double");

 public:
  /// File identification (io::WhiteningFormat): 8-byte magic, then the format version.
  static constexpr const char (&kMagic)[9] = io::WhiteningFormat::kMagic;
  static constexpr std::uint32_t kVersion = io::WhiteningFormat::kVersion;

  /// \throws std::invalid_argument if dim <= 0, components < 0 or > dim, beta/gamma are not
  ///         finite, epsilon is negative or not finite, or batch_rows <= 0.
  explicit BertWhitening(Index dim, const WhiteningConfig& config = {})
      : m_config(validated(dim, config)),
        m_stats(dim, m_config.batch_rows, m_config.exact_gram),
        m_dim(dim) {}

  // ---- fitting -----------------------------------------------------------------------------

  /// Forgets all statistics, fits on x (N × D) and finalizes. N >= 2 is required.
  /// \throws std::invalid_argument on a width mismatch, a non-finite value, N < 2, or a zero
  ///         covariance with γ != 0; see finalize().
  void fit(ConstMatrixRef<T> x) {
    m_stats.reset();
    partial_fit(x);
    finalize();
  }

  /// Adds rows to the statistics (any number, including 0). The current transform, if any,
  /// stays usable until the next finalize().
  /// \throws std::invalid_argument if x.cols() != dim() or x is not finite (statistics unchanged).
  void partial_fit(ConstMatrixRef<T> x) {
    detail::require(x.cols() == m_dim, "BertWhitening", "x must have dim=", m_dim,
                    " columns (got ", x.rows(), "x", x.cols(), ")");
    m_stats.template add<T>(x);
  }

  /// Merges the statistics of another whitener (e.g. fitted on another shard).
  /// \throws std::invalid_argument (a std::logic_error) if the dimensions differ.
  void merge(const BertWhitening& other) {
    detail::require(other.m_dim == m_dim, "BertWhitening",
                    "merge needs a whitener of the same dim=", m_dim, " (got dim=", other.m_dim,
                    ")");
    m_stats.merge(other.m_stats);
  }
  /// Merges statistics accumulated elsewhere. \throws std::invalid_argument if dims differ.
  void merge(const WhiteningStats& stats) {
    detail::require(stats.dim() == m_dim, "BertWhitening",
                    "merge needs statistics of the same dim=", m_dim, " (got dim=", stats.dim(),
                    ")");
    m_stats.merge(stats);
  }

  /// Computes μ, Λ and W_k from the accumulated statistics.
  /// \throws std::invalid_argument if fewer than 2 rows were seen, the covariance is zero and
  ///         γ != 0 (all rows equal), or strict_rank is set and rank() < k;
  ///         std::runtime_error if epsilon = 0, γ != 0 and the covariance has fewer than k
  ///         eigenvalues above λ_max·D·u (u = unit round-off of the Gram: 2^−24 for float input
  ///         without exact_gram, else 2^−53): the message names the numerical rank found and k.
  void finalize() {
    const std::int64_t n = m_stats.count();
    detail::require(n >= 2, "BertWhitening", "fitting needs at least 2 rows (got ", n, ")");
    const Index d = m_dim, k = m_config.components;
    const double beta = m_config.beta;
    const double den = m_config.normalization == CovarianceNormalization::Sample
                           ? static_cast<double>(n - 1)
                           : static_cast<double>(n);
    // Σ_β = (C + n(1−β)² μμᵀ)/den: the scatter around βμ instead of μ.
    Eigen::MatrixXd sigma = m_stats.scatter();
    const Eigen::VectorXd& mu = m_stats.mean();
    if (beta != 1.0)
      sigma.noalias() += (static_cast<double>(n) * (1.0 - beta) * (1.0 - beta)) * mu * mu.transpose();
    sigma /= den;
    sigma = 0.5 * (sigma + sigma.transpose()).eval();

    // All D eigenvalues, descending, round-off negatives clipped to 0; the k leading
    // eigenvectors only (detail::leading_eigenpairs: inverse iteration for k <= D/2, verified,
    // with the full solver as fallback).
    Eigen::VectorXd lambda;
    Eigen::MatrixXd u;  // D × k, leading eigenvectors, descending
    const Eigen::ComputationInfo info = detail::leading_eigenpairs(sigma, k, lambda, u);
    if (info != Eigen::Success)
      detail::throw_invalid("BertWhitening", "the eigensolver did not converge (got info=",
                            static_cast<int>(info), ")");
    lambda = lambda.cwiseMax(0.0);
    const double lmax = lambda[0];
    const double gamma = m_config.gamma;
    detail::require(lmax > 0.0 || gamma == 0.0, "BertWhitening",
                    "the covariance is zero (all rows equal): nothing to whiten with gamma != 0 "
                    "(got lambda_max=",
                    lmax, ")");
    const double eps = m_config.epsilon * lmax;
    Index rank = 0;
    while (rank < d && lambda[rank] > eps) ++rank;
    if (m_config.epsilon == 0.0 && gamma != 0.0) {
      // Nothing regularises (λ_c)^(−γ/2): a direction the data do not span has λ_c = 0 or a
      // round-off value, and its scale would be inf or noise. Numerical rank: eigenvalues
      // above λ_max·D·u, u the unit round-off of the Gram's arithmetic (float unless
      // exact_gram, for float input; double otherwise), the usual bound on the eigenvalue
      // error of a computed symmetric matrix.
      const double u = std::is_same_v<T, float> && !m_config.exact_gram
                           ? 0.5 * static_cast<double>(std::numeric_limits<float>::epsilon())
                           : 0.5 * std::numeric_limits<double>::epsilon();
      const double tol = lmax * static_cast<double>(d) * u;
      Index numerical = 0;
      while (numerical < d && lambda[numerical] > tol) ++numerical;
      if (numerical < k)
        XFMR_THROW(std::runtime_error(detail::concat(
            "BertWhitening", "epsilon = 0 needs components <= the numerical rank of the "
            "covariance (got numerical rank ", numerical, " < components=", k,
            "; eigenvalues <= lambda_max*D*u=", tol,
            "; set epsilon > 0, lower components or collect more rows)")));
    }
    if (m_config.strict_rank)
      detail::require(rank >= k, "BertWhitening", "the covariance has rank ", rank,
                      " < components=", k, " (eigenvalues <= epsilon*lambda_max=", eps,
                      "; collect more rows, lower components or unset strict_rank)");

    RowMatrix<double> w(d, k);
    for (Index c = 0; c < k; ++c) {
      auto uc = u.col(c);
      Index arg = 0;
      uc.cwiseAbs().maxCoeff(&arg);
      const double sign = uc[arg] < 0 ? -1.0 : 1.0;
      const double scale = gamma == 0.0 ? 1.0 : std::pow(lambda[c] + eps, -0.5 * gamma);
      w.col(c) = (sign * scale) * uc;
    }
    m_count = n;
    m_mean = mu;
    m_eigenvalues = lambda;
    m_rank = rank;
    m_components = w.cast<T>();
    prepare_transform();
  }

  // ---- transform ---------------------------------------------------------------------------

  /// out = (x − βμ) W_k, row-normalised if config().normalize. x (N × D), out (N × k) sized
  /// by the caller; a single vector is a 1 × D matrix. The centring is done in T before the
  /// product, so a large common offset does not cancel. Float uses the GEMM engine (simd/gemm.hpp)
  /// with W_k packed once by finalize/load, double uses Eigen's GEMM.
  /// Allocates a scratch block of at most 64 (float) or 256 (double) rows × D per call.
  /// \throws std::logic_error before fit()/finalize()/load();
  ///         std::invalid_argument on shape mismatches or if out overlaps x.
  void transform(ConstMatrixRef<T> x, MatrixRef<T> out) const {
    require_fitted("transform");
    const Index k = m_config.components;
    detail::require(x.cols() == m_dim, "BertWhitening", "x must have dim=", m_dim,
                    " columns (got ", x.rows(), "x", x.cols(), ")");
    detail::require(out.rows() == x.rows() && out.cols() == k, "BertWhitening", "out must be ",
                    x.rows(), "x", k, " (got ", out.rows(), "x", out.cols(), ")");
    require_no_overlap(x, out);
    if (x.rows() == 0) return;
    if constexpr (std::is_same_v<T, float>)
      transform_f32(x, out);
    else
      transform_generic(x, out);
    for (Index r = 0; r < out.rows(); ++r) out.row(r) -= m_correction;
    if (m_config.normalize)
      for (Index r = 0; r < out.rows(); ++r) {
        const double nrm = out.row(r).template cast<double>().norm();
        out.row(r) *= static_cast<T>(1.0 / std::max(nrm, 1e-8));
      }
  }

  // ---- accessors ---------------------------------------------------------------------------

  bool fitted() const noexcept { return m_components.size() != 0; }
  Index dim() const noexcept { return m_dim; }
  /// k (resolved: never 0).
  Index components() const noexcept { return m_config.components; }
  const WhiteningConfig& config() const noexcept { return m_config; }
  /// Rows behind the current transform.
  std::int64_t count() const noexcept { return m_count; }
  /// μ (D) of the fit. \throws std::logic_error before fitting.
  const Eigen::VectorXd& mean() const {
    require_fitted("mean");
    return m_mean;
  }
  /// All D eigenvalues of Σ_β, descending (clipped at 0). \throws std::logic_error before fitting.
  const Eigen::VectorXd& eigenvalues() const {
    require_fitted("eigenvalues");
    return m_eigenvalues;
  }
  /// W_k (D × k). \throws std::logic_error before fitting.
  const RowMatrix<T>& whitening_matrix() const {
    require_fitted("whitening_matrix");
    return m_components;
  }
  /// Number of eigenvalues > ε = epsilon·λ_max (computed at fit time; load() recomputes it).
  Index rank() const {
    require_fitted("rank");
    return m_rank;
  }
  /// The statistics accumulated so far (empty after load()).
  const WhiteningStats& stats() const noexcept { return m_stats; }

  // ---- persistence -------------------------------------------------------------------------
  //
  // One versioned, checksummed, little-endian record per whitener: the layout and its checks are
  // in io/whitening_format.hpp (io::write_whitening / io::read_whitening on an io::WhiteningRecord).

  /// Writes the fitted transform (μ, eigenvalues, W_k, the hyper-parameters; not the statistics)
  /// as one record. \throws std::logic_error before fitting; std::invalid_argument if
  /// dim() > 2^24 (the format's limit); std::runtime_error if the stream fails.
  void save(std::ostream& os) const {
    require_fitted("save");
    io::write_whitening(os, record(), "BertWhitening");
  }

  /// Reads a record written by save() (for the same T). Reads exactly the record's bytes.
  /// \throws xfmr::format_error (a std::runtime_error) on a wrong magic or version, a scalar
  ///         size other than sizeof(T), bad dimensions, bad values, truncation, or a checksum
  ///         mismatch. Never reads past the data it has checked is there.
  static BertWhitening load(std::istream& is) {
    return from_record(io::read_whitening<T>(is, "BertWhitening::load"));
  }

  /// save() to a file (binary, truncated first). \throws as save(); std::runtime_error if the
  /// file cannot be opened or written.
  void save_file(const std::string& path) const {
    require_fitted("save");
    io::write_whitening_file(path, record(), "BertWhitening");
  }
  /// load() from a file; the whole file must be one record.
  /// \throws std::runtime_error if the file cannot be opened; xfmr::format_error as load().
  static BertWhitening load_file(const std::string& path) {
    return from_record(io::read_whitening_file<T>(path, "BertWhitening::load"));
  }

 private:
  static constexpr Index kFloatBlockRows = 64;    // rows centred at once (A operand, in L2)
  static constexpr Index kDoubleBlockRows = 256;

  static WhiteningConfig validated(Index dim, WhiteningConfig c) {
    const char* where = "BertWhitening";
    detail::require(dim > 0, where, "dim must be > 0 (got dim=", dim, ")");
    detail::require(c.components >= 0 && c.components <= dim, where,
                    "components must be in [0, dim] (0 = all) (got components=", c.components,
                    ", dim=", dim, ")");
    if (c.components == 0) c.components = dim;
    detail::require(std::isfinite(c.beta) && std::isfinite(c.gamma), where,
                    "beta and gamma must be finite (got beta=", c.beta, ", gamma=", c.gamma, ")");
    detail::require(std::isfinite(c.epsilon) && c.epsilon >= 0, where,
                    "epsilon must be finite and >= 0 (got epsilon=", c.epsilon, ")");
    detail::require(c.normalization == CovarianceNormalization::Population ||
                        c.normalization == CovarianceNormalization::Sample,
                    where, "normalization must be Population or Sample (got ",
                    static_cast<int>(c.normalization), ")");
    detail::require(c.batch_rows > 0, where, "batch_rows must be > 0 (got batch_rows=",
                    c.batch_rows, ")");
    return c;
  }

  void require_fitted(const char* what) const {
    if (!fitted())
      detail::throw_logic("BertWhitening", what,
                          "() needs a fitted whitener: call fit(), finalize() or load() first");
  }

  static void require_no_overlap(ConstMatrixRef<T> x, MatrixRef<T> out) {
    detail::require(!detail::views_overlap(x.data(), x.outerStride(), x.rows(), x.cols(),
                                           out.data(), out.outerStride(), out.rows(), out.cols()),
                    "BertWhitening", "out must not overlap x (got overlapping views)");
  }

  io::WhiteningRecord<T> record() const {
    io::WhiteningRecord<T> r;
    r.count = m_count;
    r.beta = m_config.beta;
    r.gamma = m_config.gamma;
    r.epsilon = m_config.epsilon;
    r.normalize = m_config.normalize;
    r.sample_normalization = m_config.normalization == CovarianceNormalization::Sample;
    r.strict_rank = m_config.strict_rank;
    r.mean = m_mean;
    r.eigenvalues = m_eigenvalues;
    r.components = m_components;
    return r;
  }

  // A record from io::read_whitening passed every check the constructor makes.
  static BertWhitening from_record(io::WhiteningRecord<T>&& r) {
    WhiteningConfig config;
    config.components = r.components.cols();
    config.beta = r.beta;
    config.gamma = r.gamma;
    config.epsilon = r.epsilon;
    config.normalize = r.normalize;
    config.normalization = r.sample_normalization ? CovarianceNormalization::Sample
                                                  : CovarianceNormalization::Population;
    config.strict_rank = r.strict_rank;
    BertWhitening out(r.mean.size(), config);
    out.m_count = r.count;
    out.m_mean = std::move(r.mean);
    out.m_eigenvalues = std::move(r.eigenvalues);
    const double eps = config.epsilon * out.m_eigenvalues[0];
    out.m_rank = 0;
    while (out.m_rank < out.m_dim && out.m_eigenvalues[out.m_rank] > eps) ++out.m_rank;
    out.m_components = std::move(r.components);
    out.prepare_transform();
    return out;
  }

  // Shift βμ in T, and (float) W_k packed once for the GEMM engine (simd::pack_b).
  void prepare_transform() {
    m_shift = (m_config.beta * m_mean).cast<T>().transpose();
    // (x − βμ)W = (x − fl(βμ))W − (βμ − fl(βμ))W: the second term removes the rounding of the
    // shift to T (up to 2^-24·‖μ‖ in float, which a 1e4 offset makes visible after whitening).
    const Eigen::RowVectorXd residual =
        (m_config.beta * m_mean).transpose() - m_shift.template cast<double>();
    m_correction = (residual * m_components.template cast<double>()).template cast<T>();
    if constexpr (std::is_same_v<T, float>) {
      const Index k = m_config.components;
      m_packed.resize(static_cast<std::size_t>(simd::packed_b_size<float>(m_dim, k)));
      simd::pack_b(m_dim, k, simd::GemmB<float>{m_components.data(), m_components.outerStride(), false},
                   m_packed.data());
    }
  }

  void transform_generic(ConstMatrixRef<T> x, MatrixRef<T> out) const {
    RowMatrix<T> centred(std::min(kDoubleBlockRows, x.rows()), m_dim);
    for (Index r0 = 0; r0 < x.rows(); r0 += kDoubleBlockRows) {
      const Index rows = std::min(kDoubleBlockRows, x.rows() - r0);
      for (Index r = 0; r < rows; ++r) centred.row(r) = x.row(r0 + r) - m_shift;
      out.middleRows(r0, rows).noalias() = centred.topRows(rows) * m_components;
    }
  }

  // Blocks of ≤ 64 rows centred in float (in L2), then out = A·W_k on the GEMM engine with W_k
  // prepacked by prepare_transform, stored straight into out.
  void transform_f32(ConstMatrixRef<float> x, MatrixRef<float> out) const {
    using Isa = simd::native_isa;
    const Index d = m_dim, k = m_config.components;
    const Index block = std::min(kFloatBlockRows, x.rows());
    std::vector<float> a(static_cast<std::size_t>(block * d));
    for (Index r0 = 0; r0 < x.rows(); r0 += block) {
      const Index rows = std::min(block, x.rows() - r0);
      for (Index r = 0; r < rows; ++r) {
        const float* xr = x.data() + (r0 + r) * x.outerStride();
        float* ar = a.data() + r * d;
        for (Index j = 0; j < d; ++j) ar[j] = xr[j] - static_cast<float>(m_shift[j]);
      }
      simd::gemm<Isa>(rows, k, d, 1.0f, simd::GemmRowMajorA<float>{a.data(), d},
                      simd::PackedB<float>{m_packed.data(), d, k}, 0.0f,
                      out.data() + r0 * out.outerStride(), out.outerStride());
    }
  }

  WhiteningConfig m_config;
  WhiteningStats m_stats;
  Index m_dim;
  std::int64_t m_count = 0;
  Index m_rank = 0;
  Eigen::VectorXd m_mean, m_eigenvalues;
  RowMatrix<T> m_components;  // W_k, D × k; empty until fitted
  RowVector<T> m_shift;       // fl(βμ)
  RowVector<T> m_correction;  // (βμ − fl(βμ))·W_k
  std::vector<float> m_packed;  // float only: W_k packed for simd::gemm (simd::pack_b)
};

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_WHITENING_HPP
