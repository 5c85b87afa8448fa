// SPDX-License-Identifier: MIT
// The BERT-whitening file format: a fitted whitening transform as one versioned, checksummed,
// little-endian record (io/binary_format.hpp), read and written without the BertWhitening class.
#ifndef XFMR_IO_WHITENING_FORMAT_HPP
#define XFMR_IO_WHITENING_FORMAT_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>

#include "../detail/eigen.hpp"

#include "../error.hpp"
#include "../types.hpp"
#include "binary_format.hpp"

XFMR_NAMESPACE_BEGIN
namespace io {

// Record layout, little-endian, version 1:
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

/// Constants of the whitening record layout above.
struct WhiteningFormat {
  static constexpr char kMagic[9] = "XFMRWHT\x1a";  ///< 8 bytes (the 9th is the literal's NUL)
  static constexpr std::uint32_t kVersion = 1;
  static constexpr std::size_t kHeaderBytes = 72;              ///< bytes before μ
  static constexpr std::uint64_t kMaxDim = std::uint64_t(1) << 24;  ///< largest D accepted
};

/// A fitted BERT-whitening transform as the file stores it (BertWhitening::save/load go through
/// it). D = mean.size(), k = components.cols(). Plain data: no invariant is kept between writes;
/// write_whitening checks the shapes, read_whitening returns only records that pass every check.
template <typename T>
struct WhiteningRecord {
  std::int64_t count = 0;               ///< N, rows behind the fit (>= 2)
  double beta = 1.0;                    ///< β, finite
  double gamma = 1.0;                   ///< γ, finite
  double epsilon = 0.0;                 ///< relative eigenvalue floor, finite, >= 0
  bool normalize = false;               ///< flag bit 0: rows L2-normalised after the transform
  bool sample_normalization = false;    ///< flag bit 1: covariance C/(N−1) instead of C/N
  bool strict_rank = false;             ///< flag bit 2
  Eigen::VectorXd mean;                 ///< μ (D)
  Eigen::VectorXd eigenvalues;          ///< all D eigenvalues of Σ_β, descending, >= 0
  RowMatrix<T> components;              ///< W_k (D × k)
};

/// Writes r as one record (the layout above) in a single write. `where` names the caller in
/// messages ("xfmr::<where>: …").
/// \throws std::invalid_argument if the shapes disagree (mean, eigenvalues and W_k rows of one
///         D in [1, 2^24], 1 <= k <= D) or count < 2; std::runtime_error if the stream fails.
template <typename T>
void write_whitening(std::ostream& os, const WhiteningRecord<T>& r,
                     const char* where = "write_whitening") {
  static_assert(xfmr::detail::is_real_v<T>, "xfmr::io::write_whitening: T must be float or double");
  using F = WhiteningFormat;
  const Index d = r.mean.size(), k = r.components.cols();
  xfmr::detail::require(
      d >= 1 && static_cast<std::uint64_t>(d) <= F::kMaxDim && r.eigenvalues.size() == d &&
          r.components.rows() == d && k >= 1 && k <= d && r.count >= 2,
      where, "a whitening record needs mean (D), eigenvalues (D), W_k (D x k), 1 <= k <= D <= "
             "2^24 and count >= 2 (got mean ",
      d, ", eigenvalues ", r.eigenvalues.size(), ", W_k ", r.components.rows(), "x", k,
      ", count ", r.count, ")");
  BinaryWriter w;
  w.write_bytes(F::kMagic, 8);
  w.write_u32(F::kVersion);
  w.write_u32(static_cast<std::uint32_t>(sizeof(T)));
  w.write_u64(static_cast<std::uint64_t>(d));
  w.write_u64(static_cast<std::uint64_t>(k));
  w.write_u64(static_cast<std::uint64_t>(r.count));
  w.write_f64(r.beta);
  w.write_f64(r.gamma);
  w.write_f64(r.epsilon);
  std::uint32_t flags = 0;
  if (r.normalize) flags |= 1u;
  if (r.sample_normalization) flags |= 2u;
  if (r.strict_rank) flags |= 4u;
  w.write_u32(flags);
  w.write_u32(0);
  w.write_array(r.mean.data(), static_cast<std::size_t>(d));
  w.write_array(r.eigenvalues.data(), static_cast<std::size_t>(d));
  w.write_array(r.components.data(), static_cast<std::size_t>(r.components.size()));
  w.write_checksum();
  w.flush_to(os, where);
}

/// Reads one record written by write_whitening for the same T, and exactly its bytes (the stream
/// is left at the next byte). Sizes are checked before anything is allocated; the semantic checks
/// run after the checksum, so a random corruption is reported as a checksum mismatch.
/// \throws xfmr::format_error (a std::runtime_error) on a wrong magic or version, a scalar size
///         other than sizeof(T), bad dimensions or row count, unknown flags, non-finite
///         hyper-parameters or a negative epsilon, non-finite values or negative eigenvalues,
///         truncation, or a checksum mismatch. Never reads past the data it has checked is there.
template <typename T>
WhiteningRecord<T> read_whitening(std::istream& is, const char* where = "read_whitening") {
  static_assert(xfmr::detail::is_real_v<T>, "xfmr::io::read_whitening: T must be float or double");
  using F = WhiteningFormat;
  std::string bytes;
  read_exact(is, bytes, F::kHeaderBytes, where, "the header");
  BinaryReader head(bytes.data(), bytes.size(), where);
  char magic[8];
  head.read_bytes(magic, 8, "magic");
  if (std::memcmp(magic, F::kMagic, 8) != 0)
    xfmr::detail::throw_format(where, "not a whitening file: bad magic (got bytes ",
                               hex_bytes(magic, 8), ")");
  const std::uint32_t version = head.read_u32("version");
  if (version != F::kVersion)
    xfmr::detail::throw_format(where, "unsupported format version (expected ", F::kVersion,
                               ", got ", version, ")");
  const std::uint32_t scalar = head.read_u32("scalar size");
  if (scalar != sizeof(T))
    xfmr::detail::throw_format(where, "scalar size ", sizeof(T), " expected for BertWhitening<",
                               sizeof(T) == 4 ? "float" : "double", "> (got ", scalar, ")");
  const std::uint64_t d = head.read_u64("dim"), k = head.read_u64("components"),
                      n = head.read_u64("count");
  if (d == 0 || d > F::kMaxDim || k == 0 || k > d)
    xfmr::detail::throw_format(where, "bad dimensions: need 1 <= k <= D <= 2^24 (got D=", d,
                               ", k=", k, ")");
  if (n < 2 || n > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    xfmr::detail::throw_format(where, "bad row count: need >= 2 (got ", n, ")");
  const std::size_t payload =
      2 * checked_mul(d, 8, where, "the statistics") +
      checked_mul(checked_mul(d, k, where, "W_k"), sizeof(T), where, "W_k") + 8;
  read_exact(is, bytes, payload, where, "the payload");

  BinaryReader r(bytes.data(), bytes.size(), where);
  r.read_bytes(magic, 8, "magic");
  (void)r.read_u32("version");
  (void)r.read_u32("scalar size");
  (void)r.read_u64("dim");
  (void)r.read_u64("components");
  (void)r.read_u64("count");
  WhiteningRecord<T> out;
  out.count = static_cast<std::int64_t>(n);
  out.beta = r.read_f64("beta");
  out.gamma = r.read_f64("gamma");
  out.epsilon = r.read_f64("epsilon");
  const std::uint32_t flags = r.read_u32("flags");
  const std::uint32_t reserved = r.read_u32("reserved");
  out.mean.resize(static_cast<Index>(d));
  out.eigenvalues.resize(static_cast<Index>(d));
  out.components.resize(static_cast<Index>(d), static_cast<Index>(k));
  r.read_array(out.mean.data(), d, "the mean");
  r.read_array(out.eigenvalues.data(), d, "the eigenvalues");
  r.read_array(out.components.data(), static_cast<std::size_t>(d * k), "W_k");
  r.verify_checksum();
  r.expect_end();
  // Semantic checks after the checksum (a random corruption is reported as such above).
  if (flags > 7u || reserved != 0)
    xfmr::detail::throw_format(where, "unknown flags (got flags=", flags, ", reserved=", reserved,
                               ")");
  if (!std::isfinite(out.beta) || !std::isfinite(out.gamma) || !std::isfinite(out.epsilon) ||
      out.epsilon < 0)
    xfmr::detail::throw_format(where, "bad hyper-parameters (got beta=", out.beta, ", gamma=",
                               out.gamma, ", epsilon=", out.epsilon, ")");
  if (!out.mean.allFinite() || !out.eigenvalues.allFinite() || !out.components.allFinite() ||
      (out.eigenvalues.array() < 0).any())
    xfmr::detail::throw_format(where, "non-finite or negative values in the stored statistics");
  out.normalize = (flags & 1u) != 0;
  out.sample_normalization = (flags & 2u) != 0;
  out.strict_rank = (flags & 4u) != 0;
  return out;
}

/// write_whitening to a file (binary, truncated first).
/// \throws as write_whitening; std::runtime_error if the file cannot be opened or written.
template <typename T>
void write_whitening_file(const std::string& path, const WhiteningRecord<T>& r,
                          const char* where = "write_whitening") {
  std::ofstream os(path, std::ios::binary | std::ios::trunc);
  if (!os)
    XFMR_THROW(std::runtime_error(
        xfmr::detail::concat(where, "cannot open '", path, "' for writing")));
  write_whitening(os, r, where);
  os.close();
  if (!os)
    XFMR_THROW(std::runtime_error(xfmr::detail::concat(where, "writing '", path, "' failed")));
}

/// read_whitening from a file; the whole file must be one record.
/// \throws std::runtime_error if the file cannot be opened; xfmr::format_error as read_whitening,
///         or if bytes follow the record.
template <typename T>
WhiteningRecord<T> read_whitening_file(const std::string& path,
                                       const char* where = "read_whitening") {
  std::ifstream is(path, std::ios::binary);
  if (!is)
    XFMR_THROW(std::runtime_error(xfmr::detail::concat(where, "cannot open '", path, "'")));
  WhiteningRecord<T> r = read_whitening<T>(is, where);
  if (is.peek() != std::char_traits<char>::eof())
    xfmr::detail::throw_format(where, "trailing bytes after the record in '", path, "'");
  return r;
}

}  // namespace io
XFMR_NAMESPACE_END

#endif  // XFMR_IO_WHITENING_FORMAT_HPP
