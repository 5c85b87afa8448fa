// SPDX-License-Identifier: MIT
// BERT-whitening of sentence vectors (Su, kexue.fm/archives/8069, 8321, 9079; arXiv 2103.15316).
#ifndef XFMR_HEADS_WHITENING_HPP
#define XFMR_HEADS_WHITENING_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <istream>
#include <numeric>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"
#include <Eigen/Eigenvalues>

#include "../error.hpp"
#include "../io/binary_format.hpp"
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

namespace detail {

/// All eigenvalues (descending) and the k leading eigenvectors of a symmetric matrix s (D × D), for
/// k <= D/2, about twice as fast as the full SelfAdjointEigenSolver at D = 768, k = 256:
/// Householder tridiagonalisation T = QᵀSQ (Eigen), all eigenvalues of T (implicit QR without
/// vectors), then inverse iteration on T for the k wanted eigenvalues (tridiagonal LU with
/// partial pivoting, 3 steps from a fixed start, modified Gram–Schmidt against the previous
/// vectors of a cluster |λ_i − λ_j| <= 1e-3·‖T‖, as LAPACK dstein), and V = Q·Z.
/// The result is verified (‖SV − VΛ‖ <= 1e-9·‖S‖ and ‖VᵀV − I‖ <= 1e-9, entrywise max); returns
/// false if the check fails so the caller can fall back to the full solver.
inline bool top_eigenpairs(const Eigen::MatrixXd& s, Index k, Eigen::VectorXd& values,
                           Eigen::MatrixXd& vectors) {
  const Index n = s.rows();
  const double scale = s.cwiseAbs().maxCoeff();
  if (!(scale > 0) || !std::isfinite(scale) || k <= 0 || k > n) return false;
  const Eigen::MatrixXd a = s / scale;
  const Eigen::Tridiagonalization<Eigen::MatrixXd> tri(a);
  const Eigen::VectorXd diag = tri.diagonal();
  const Eigen::VectorXd sub = tri.subDiagonal();
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ev;
  ev.computeFromTridiagonal(diag, sub, Eigen::EigenvaluesOnly);
  if (ev.info() != Eigen::Success) return false;
  const double tnorm = std::max(ev.eigenvalues().cwiseAbs().maxCoeff(), 1e-300);
  const double tiny = 1e-300 + std::numeric_limits<double>::epsilon() * tnorm;

  values.resize(n);
  for (Index i = 0; i < n; ++i) values[i] = ev.eigenvalues()[n - 1 - i];
  Eigen::MatrixXd z(n, k);
  const auto un = static_cast<std::size_t>(n);
  std::vector<double> u0(un), u1(un), u2(un), mult(un);
  std::vector<char> swapped(un);
  Eigen::VectorXd y(n), x(n);
  Index cluster_start = 0;
  for (Index c = 0; c < k; ++c) {
    const double lambda = values[c];
    if (c > 0 && values[c - 1] - lambda > 1e-3 * tnorm) cluster_start = c;
    // LU with partial pivoting of T − λI: rows (d, e, f) at columns (i, i+1, i+2).
    double cd = diag[0] - lambda, ce = n > 1 ? sub[0] : 0.0, cf = 0.0;
    for (Index i = 0; i + 1 < n; ++i) {
      const double below = sub[i], nd = diag[i + 1] - lambda, ne = i + 2 < n ? sub[i + 1] : 0.0;
      const auto si = std::size_t(i);
      if (std::abs(cd) >= std::abs(below)) {
        if (cd == 0.0) cd = tiny;
        const double m = below / cd;
        u0[si] = cd, u1[si] = ce, u2[si] = cf, mult[si] = m, swapped[si] = 0;
        cd = nd - m * ce, ce = ne - m * cf, cf = 0.0;
      } else {
        const double m = cd / below;
        u0[si] = below, u1[si] = nd, u2[si] = ne, mult[si] = m, swapped[si] = 1;
        cd = ce - m * nd, ce = cf - m * ne, cf = 0.0;
      }
    }
    u0[std::size_t(n - 1)] = cd == 0.0 ? tiny : cd;
    // Fixed, well-spread start vector (reproducible).
    std::uint64_t state = 0x9E3779B97F4A7C15ull * std::uint64_t(c + 1);
    for (Index i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      x[i] = double(state >> 11) / double(1ull << 53) - 0.5;
    }
    for (int it = 0; it < 3; ++it) {
      y = x / x.norm();
      for (Index i = 0; i + 1 < n; ++i) {  // forward: P and L
        const auto si = std::size_t(i);
        if (swapped[si]) std::swap(y[i], y[i + 1]);
        y[i + 1] -= mult[si] * y[i];
      }
      for (Index i = n - 1; i >= 0; --i) {  // back: U
        const auto si = std::size_t(i);
        double v = y[i];
        if (i + 1 < n) v -= u1[si] * x[i + 1];
        if (i + 2 < n) v -= u2[si] * x[i + 2];
        x[i] = v / u0[si];
        if (!std::isfinite(x[i])) return false;
      }
      for (Index j = cluster_start; j < c; ++j) x -= z.col(j).dot(x) * z.col(j);
    }
    const double nrm = x.norm();
    if (!(nrm > 0) || !std::isfinite(nrm)) return false;
    z.col(c) = x / nrm;
  }
  vectors = tri.matrixQ() * z;  // blocked Householder application
  const Eigen::MatrixXd residual = a * vectors - vectors * values.head(k).asDiagonal();
  const Eigen::MatrixXd gram = vectors.transpose() * vectors - Eigen::MatrixXd::Identity(k, k);
  if (!(residual.cwiseAbs().maxCoeff() <= 1e-9) || !(gram.cwiseAbs().maxCoeff() <= 1e-9))
    return false;
  values *= scale;
  return true;
}

}  // namespace detail

/// BERT-whitening: a linear map fitted on sentence vectors x_i (rows, D wide) so that the
/// whitened vectors have zero mean and identity covariance, truncated to the k leading
/// principal directions:
///
///   μ = (1/N) Σ x_i,   Σ_β = (1/den) Σ (x_i − βμ)ᵀ(x_i − βμ) = U Λ Uᵀ   (Λ descending)
///   W_k = U_k (Λ_k + εI)^(−γ/2)                                          (D × k)
///   x̃ = (x − βμ) W_k                                                    (optionally / ‖x̃‖)
///
/// den = N (Population) or N − 1 (Sample). β = γ = 1 is standard whitening (W_kᵀ Σ W_k ≈ I_k);
/// β = γ = 0, k = D is a pure rotation (cosines unchanged). Eigenvectors come from
/// Eigen::SelfAdjointEigenSolver on the symmetrised Σ_β in double; each is signed so that its
/// largest-magnitude entry is positive (signs are otherwise arbitrary; cosines never depend on
/// them).
///
/// Usage: fit(x) in one call, or partial_fit(batch)… then finalize(); merge() combines the
/// statistics of whiteners fitted on other shards (any order gives the same result to rounding).
/// save()/load() store the fitted transform (not the statistics) in a versioned, checksummed,
/// little-endian binary record.
///
/// Shapes: inputs (N × D), one vector per row, rows may be strided; transform output (N × k),
/// sized by the caller. Thread-safety: const methods may run concurrently.
template <typename T>
class BertWhitening {
  static_assert(detail::is_real_v<T>, "xfmr::BertWhitening<T>: T must be float or double");

 public:
  /// File identification: 8-byte magic, then the format version.
  static constexpr char kMagic[9] = "XFMRWHT\x1a";
  static constexpr std::uint32_t kVersion = 1;

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

    // Ascending → descending; round-off negatives clipped to 0. For k <= D/2 only the k
    // leading eigenvectors are computed (detail::top_eigenpairs, verified, with the full
    // solver as fallback); every eigenvalue is computed either way.
    Eigen::VectorXd lambda(d);
    Eigen::MatrixXd u;  // D × k, leading eigenvectors, descending
    bool fast = false;
    if (2 * k <= d) {
      Eigen::VectorXd all;
      fast = detail::top_eigenpairs(sigma, k, all, u);
      if (fast)
        for (Index c = 0; c < d; ++c) lambda[c] = std::max(0.0, all[c]);
    }
    if (!fast) {
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(sigma);
      if (solver.info() != Eigen::Success)
        detail::throw_invalid("BertWhitening", "the eigensolver did not converge (got info=",
                              static_cast<int>(solver.info()), ")");
      for (Index c = 0; c < d; ++c) lambda[c] = std::max(0.0, solver.eigenvalues()[d - 1 - c]);
      u = solver.eigenvectors().rightCols(k).rowwise().reverse();
    }
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
  // Record layout, little-endian (io/binary_format.hpp), version 1:
  //   offset  size        field
  //   0       8           magic "XFMRWHT\x1a"
  //   8       4  u32      version (1)
  //   12      4  u32      scalar size in bytes: 4 = float, 8 = double (must match T)
  //   16      8  u64      D
  //   24      8  u64      k (1 <= k <= D)
  //   32      8  u64      N (rows behind the fit, >= 2)
  //   40      8  f64      β
  //   48      8  f64      γ
  //   56      8  f64      epsilon
  //   64      4  u32      flags: bit 0 normalize, bit 1 Sample normalization, bit 2 strict_rank
  //   68      4  u32      reserved (0)
  //   72      8·D f64     μ
  //   …       8·D f64     eigenvalues (descending)
  //   …       s·D·k       W_k, row-major, scalar T
  //   …       8  u64      FNV-1a 64 of every byte before it
  // D <= 2^24 and the total size are checked (overflow-safe) before anything is allocated.

  /// Writes the fitted transform. \throws std::logic_error before fitting; std::runtime_error
  /// if the stream fails.
  void save(std::ostream& os) const {
    require_fitted("save");
    io::BinaryWriter w;
    w.write_bytes(kMagic, 8);
    w.write_u32(kVersion);
    w.write_u32(static_cast<std::uint32_t>(sizeof(T)));
    w.write_u64(static_cast<std::uint64_t>(m_dim));
    w.write_u64(static_cast<std::uint64_t>(m_config.components));
    w.write_u64(static_cast<std::uint64_t>(m_count));
    w.write_f64(m_config.beta);
    w.write_f64(m_config.gamma);
    w.write_f64(m_config.epsilon);
    std::uint32_t flags = 0;
    if (m_config.normalize) flags |= 1u;
    if (m_config.normalization == CovarianceNormalization::Sample) flags |= 2u;
    if (m_config.strict_rank) flags |= 4u;
    w.write_u32(flags);
    w.write_u32(0);
    w.write_array(m_mean.data(), static_cast<std::size_t>(m_dim));
    w.write_array(m_eigenvalues.data(), static_cast<std::size_t>(m_dim));
    w.write_array(m_components.data(), static_cast<std::size_t>(m_components.size()));
    w.write_checksum();
    w.flush_to(os, "BertWhitening");
  }

  /// Reads a record written by save() (for the same T). Reads exactly the record's bytes.
  /// \throws xfmr::format_error (a std::runtime_error) on a wrong magic or version, a scalar
  ///         size other than sizeof(T), bad dimensions, bad values, truncation, or a checksum
  ///         mismatch. Never reads past the data it has checked is there.
  static BertWhitening load(std::istream& is) {
    const char* where = "BertWhitening::load";
    std::string bytes;
    io::read_exact(is, bytes, kHeaderBytes, where, "the header");
    io::BinaryReader head(bytes.data(), bytes.size(), where);
    char magic[8];
    head.read_bytes(magic, 8, "magic");
    if (std::memcmp(magic, kMagic, 8) != 0)
      detail::throw_format(where, "not a whitening file: bad magic (got bytes ",
                           hex_bytes(magic, 8), ")");
    const std::uint32_t version = head.read_u32("version");
    if (version != kVersion)
      detail::throw_format(where, "unsupported format version (expected ", kVersion, ", got ",
                           version, ")");
    const std::uint32_t scalar = head.read_u32("scalar size");
    if (scalar != sizeof(T))
      detail::throw_format(where, "scalar size ", sizeof(T), " expected for BertWhitening<",
                           sizeof(T) == 4 ? "float" : "double", "> (got ", scalar, ")");
    const std::uint64_t d = head.read_u64("dim"), k = head.read_u64("components"),
                        n = head.read_u64("count");
    if (d == 0 || d > kMaxDim || k == 0 || k > d)
      detail::throw_format(where, "bad dimensions: need 1 <= k <= D <= 2^24 (got D=", d, ", k=",
                           k, ")");
    if (n < 2 || n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      detail::throw_format(where, "bad row count: need >= 2 (got ", n, ")");
    const std::size_t payload =
        2 * io::checked_mul(d, 8, where, "the statistics") +
        io::checked_mul(io::checked_mul(d, k, where, "W_k"), sizeof(T), where, "W_k") + 8;
    io::read_exact(is, bytes, payload, where, "the payload");

    io::BinaryReader r(bytes.data(), bytes.size(), where);
    r.read_bytes(magic, 8, "magic");
    (void)r.read_u32("version");
    (void)r.read_u32("scalar size");
    (void)r.read_u64("dim");
    (void)r.read_u64("components");
    (void)r.read_u64("count");
    WhiteningConfig config;
    config.beta = r.read_f64("beta");
    config.gamma = r.read_f64("gamma");
    config.epsilon = r.read_f64("epsilon");
    const std::uint32_t flags = r.read_u32("flags");
    const std::uint32_t reserved = r.read_u32("reserved");
    Eigen::VectorXd mean(static_cast<Index>(d)), lambda(static_cast<Index>(d));
    RowMatrix<T> w(static_cast<Index>(d), static_cast<Index>(k));
    r.read_array(mean.data(), d, "the mean");
    r.read_array(lambda.data(), d, "the eigenvalues");
    r.read_array(w.data(), static_cast<std::size_t>(d * k), "W_k");
    r.verify_checksum();
    r.expect_end();
    // Semantic checks after the checksum (a random corruption is reported as such above).
    if (flags > 7u || reserved != 0)
      detail::throw_format(where, "unknown flags (got flags=", flags, ", reserved=", reserved, ")");
    if (!std::isfinite(config.beta) || !std::isfinite(config.gamma) ||
        !std::isfinite(config.epsilon) || config.epsilon < 0)
      detail::throw_format(where, "bad hyper-parameters (got beta=", config.beta,
                           ", gamma=", config.gamma, ", epsilon=", config.epsilon, ")");
    if (!mean.allFinite() || !lambda.allFinite() || !w.allFinite() || (lambda.array() < 0).any())
      detail::throw_format(where, "non-finite or negative values in the stored statistics");
    config.components = static_cast<Index>(k);
    config.normalize = (flags & 1u) != 0;
    config.normalization = (flags & 2u) != 0 ? CovarianceNormalization::Sample
                                             : CovarianceNormalization::Population;
    config.strict_rank = (flags & 4u) != 0;

    BertWhitening out(static_cast<Index>(d), config);
    out.m_count = static_cast<std::int64_t>(n);
    out.m_mean = std::move(mean);
    out.m_eigenvalues = std::move(lambda);
    const double eps = config.epsilon * out.m_eigenvalues[0];
    out.m_rank = 0;
    while (out.m_rank < out.m_dim && out.m_eigenvalues[out.m_rank] > eps) ++out.m_rank;
    out.m_components = std::move(w);
    out.prepare_transform();
    return out;
  }

  /// save() to a file (binary). \throws std::runtime_error if the file cannot be written.
  void save_file(const std::string& path) const {
    std::ofstream os(path, std::ios::binary | std::ios::trunc);
    if (!os)
      XFMR_THROW(std::runtime_error(detail::concat("BertWhitening", "cannot open '", path,
                                                   "' for writing")));
    save(os);
    os.close();
    if (!os)
      XFMR_THROW(std::runtime_error(detail::concat("BertWhitening", "writing '", path,
                                                   "' failed")));
  }
  /// load() from a file; the whole file must be one record.
  /// \throws std::runtime_error if the file cannot be opened; xfmr::format_error as load().
  static BertWhitening load_file(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    if (!is)
      XFMR_THROW(std::runtime_error(detail::concat("BertWhitening::load", "cannot open '", path,
                                                   "'")));
    BertWhitening w = load(is);
    if (is.peek() != std::char_traits<char>::eof())
      detail::throw_format("BertWhitening::load", "trailing bytes after the record in '", path,
                           "'");
    return w;
  }

 private:
  static constexpr std::size_t kHeaderBytes = 72;
  static constexpr std::uint64_t kMaxDim = std::uint64_t(1) << 24;
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
    if (x.rows() == 0) return;
    const T* xb = x.data();
    const T* xe = x.data() + (x.rows() - 1) * x.outerStride() + x.cols();
    const T* ob = out.data();
    const T* oe = out.data() + (out.rows() - 1) * out.outerStride() + out.cols();
    const bool disjoint = !(std::less<const T*>()(xb, oe) && std::less<const T*>()(ob, xe));
    detail::require(disjoint, "BertWhitening", "out must not overlap x (got overlapping views)");
  }

  static std::string hex_bytes(const char* p, std::size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
      const auto b = static_cast<unsigned char>(p[i]);
      s += digits[b >> 4];
      s += digits[b & 15];
    }
    return s;
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
      simd::gemm<Isa>(rows, k, d, 1.0f, simd::GemmA<float>{a.data(), d, 1},
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

/// Row indices of a top-k result: (queries × k), row-major.
using TopKIndices = Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {
template <typename T>
void cosine_top_k_impl(ConstMatrixRef<T> queries, ConstMatrixRef<T> corpus, Index k,
                       Eigen::Ref<TopKIndices> indices, MatrixRef<T> scores) {
  const char* where = "cosine_top_k";
  require(queries.cols() == corpus.cols(), where,
          "queries and corpus must have the same width (got ", queries.cols(), " and ",
          corpus.cols(), ")");
  require(k >= 1 && k <= corpus.rows(), where, "k must be in [1, corpus rows=", corpus.rows(),
          "] (got k=", k, ")");
  require(indices.rows() == queries.rows() && indices.cols() == k && scores.rows() == queries.rows() &&
              scores.cols() == k,
          where, "indices and scores must be ", queries.rows(), "x", k, " (got ", indices.rows(),
          "x", indices.cols(), " and ", scores.rows(), "x", scores.cols(), ")");
  require(queries.allFinite() && corpus.allFinite(), where,
          "queries and corpus must be finite (got a non-finite value)");
  // Unit rows (norm clipped at 1e-8 as in bojone/BERT-whitening: a zero row scores 0).
  auto unit = [](ConstMatrixRef<T> m) {
    RowMatrix<T> u = m;
    for (Index r = 0; r < u.rows(); ++r)
      u.row(r) /= static_cast<T>(std::max(u.row(r).template cast<double>().norm(), 1e-8));
    return u;
  };
  const RowMatrix<T> c = unit(corpus);
  constexpr Index kBlock = 64;
  std::vector<Index> order(static_cast<std::size_t>(c.rows()));
  RowMatrix<T> s;
  for (Index q0 = 0; q0 < queries.rows(); q0 += kBlock) {
    const Index nq = std::min(kBlock, queries.rows() - q0);
    const RowMatrix<T> q = unit(queries.middleRows(q0, nq));
    s.noalias() = q * c.transpose();
    for (Index i = 0; i < nq; ++i) {
      const T* row = s.data() + i * s.cols();
      std::iota(order.begin(), order.end(), Index(0));
      // Higher cosine first; equal cosines: lower corpus index first (deterministic).
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [row](Index a, Index b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
      });
      for (Index j = 0; j < k; ++j) {
        indices(q0 + i, j) = order[static_cast<std::size_t>(j)];
        scores(q0 + i, j) = row[order[static_cast<std::size_t>(j)]];
      }
    }
  }
}
}  // namespace detail

/// Cosine top-k retrieval: for every query row, the k corpus rows with the largest cosine
/// cos(q, c) = q·c / (max(‖q‖, 1e-8)·max(‖c‖, 1e-8)), best first; equal cosines are ordered by
/// corpus index (deterministic). Usual use: whiten (and truncate) queries and corpus with the
/// same BertWhitening, then retrieve.
/// Shapes: queries (Q × D), corpus (M × D), indices and scores (Q × k), sized by the caller.
/// Allocates a normalised copy of the corpus and a 64 × M score block per call.
/// \throws std::invalid_argument on a width or output shape mismatch, k outside [1, M], or a
///         non-finite input.
inline void cosine_top_k(ConstMatrixRef<float> queries, ConstMatrixRef<float> corpus, Index k,
                         Eigen::Ref<TopKIndices> indices, MatrixRef<float> scores) {
  detail::cosine_top_k_impl<float>(queries, corpus, k, indices, scores);
}
inline void cosine_top_k(ConstMatrixRef<double> queries, ConstMatrixRef<double> corpus, Index k,
                         Eigen::Ref<TopKIndices> indices, MatrixRef<double> scores) {
  detail::cosine_top_k_impl<double>(queries, corpus, k, indices, scores);
}

XFMR_NAMESPACE_END

#endif  // XFMR_HEADS_WHITENING_HPP
