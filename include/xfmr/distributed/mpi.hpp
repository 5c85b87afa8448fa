// SPDX-License-Identifier: MIT
// MPI infrastructure for xfmr's distributed parts: error checks, datatypes, contiguous shards,
// the config fingerprint check (require_same) that every distributed entry point runs before a
// collective that could deadlock, and gather of row blocks in rank order.
// Only code that links MPI (CMake target xfmr::mpi) includes include/xfmr/distributed/; the core
// and the umbrella xfmr.hpp never do.
#ifndef XFMR_DISTRIBUTED_MPI_HPP
#define XFMR_DISTRIBUTED_MPI_HPP

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "../detail/eigen.hpp"

#include "../error.hpp"
#include "../io/binary_format.hpp"
#include "../types.hpp"

XFMR_NAMESPACE_BEGIN
namespace mpi {

/// Throws std::runtime_error "xfmr::mpi: <call> failed: <MPI error string>" unless rc is
/// MPI_SUCCESS. (With the default MPI_ERRORS_ARE_FATAL handler MPI aborts before returning an
/// error; a communicator with MPI_ERRORS_RETURN gets the exception.)
inline void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) len = 0;
  XFMR_THROW(std::runtime_error(std::string("xfmr::mpi: ") + call + " failed: " +
                                std::string(text, static_cast<std::size_t>(len))));
}

/// This process's rank in comm. \throws std::runtime_error if MPI reports an error.
inline int rank(MPI_Comm comm) {
  int r = 0;
  check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
  return r;
}

/// Number of ranks in comm. \throws std::runtime_error if MPI reports an error.
inline int size(MPI_Comm comm) {
  int s = 0;
  check(MPI_Comm_size(comm, &s), "MPI_Comm_size");
  return s;
}

/// The MPI datatype of T (float, double, std::int32_t, std::int64_t, std::uint64_t, char).
template <typename T>
MPI_Datatype datatype() noexcept {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
  else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
  else if constexpr (std::is_same_v<T, char>) return MPI_CHAR;
  else static_assert(sizeof(T) == 0, "xfmr::mpi::datatype: unsupported type");
}

/// Half-open row range [begin, end) of a contiguous shard.
struct Range {
  Index begin = 0;
  Index end = 0;
  Index size() const noexcept { return end - begin; }
};

/// Rank r's shard of n items split over p ranks in rank order, as even as possible:
/// [⌊n·r/p⌋, ⌊n·(r+1)/p⌋) (sizes differ by at most one; concatenated in rank order they are
/// [0, n)). \throws std::invalid_argument if n < 0, p < 1 or r outside [0, p).
inline Range shard_range(Index n, int r, int p) {
  detail::require(n >= 0 && p >= 1 && r >= 0 && r < p, "mpi::shard_range",
                  "expected n >= 0 and 0 <= rank < size (got n=", n, ", rank=", r, ", size=", p,
                  ")");
  detail::require(n <= INT64_MAX / p, "mpi::shard_range",
                  "expected n·size to fit in 64 bits (got n=", n, ", size=", p, ")");
  return Range{n * r / p, n * (std::int64_t(r) + 1) / p};
}

namespace detail_mpi {

// (min, max) pairs of int64: a user reduction on MPI_Type_contiguous(2, MPI_INT64_T).
inline void min_max_op(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto* a = static_cast<const std::int64_t*>(in);
  auto* b = static_cast<std::int64_t*>(inout);
  for (int i = 0; i < *len; ++i) {
    b[2 * i] = std::min(b[2 * i], a[2 * i]);
    b[2 * i + 1] = std::max(b[2 * i + 1], a[2 * i + 1]);
  }
}

// The fixed-size record every rank contributes: what it checks, how many values, their hash, and
// the first kShown values (for the message).
constexpr int kShown = 8;
constexpr int kRecord = 3 + kShown;

template <typename V>
std::int64_t to_int64(const V& v) noexcept {
  static_assert(std::is_integral_v<V> || std::is_enum_v<V>,
                "xfmr::mpi::require_same: values must be integers, bools or enums");
  if constexpr (std::is_enum_v<V>)
    return static_cast<std::int64_t>(static_cast<std::underlying_type_t<V>>(v));
  else
    return static_cast<std::int64_t>(v);
}

}  // namespace detail_mpi

/// Fingerprint check before a collective: every rank of comm calls it with the same `what` and
/// the values that must agree (dimensions, sizeof(T), sequence lengths, config fields, a hash of
/// a config: anything that, if it differed, would make the ranks call mismatched collectives
/// and wait forever). One MPI_Allreduce of three (min, max) pairs — a hash of `what`, the number
/// of values and a hash of the values — in the common case; on a mismatch one MPI_Allgather of a
/// fixed 11-value record per rank, then EVERY rank throws the same std::invalid_argument:
///   "xfmr::mpi::require_same: expected every rank to agree on <what> (got rank 0: [768, 4];
///    rank 2: [384, 4])"
/// naming rank 0's values and each rank that differs from rank 0 (at most 8 ranks and 8 values
/// shown; a rank that reached a different check is named as such). Both collectives have a
/// fixed size, so ranks that disagree on anything (even on the number of values) cannot
/// deadlock inside the check — but every rank of comm must call it.
/// \throws std::invalid_argument on a mismatch (on every rank); std::runtime_error if MPI fails.
inline void require_same_values(MPI_Comm comm, const char* what, const std::int64_t* values,
                                std::size_t count) {
  const std::string label = what ? what : "";
  const auto what_hash = static_cast<std::int64_t>(io::fnv1a64(label.data(), label.size()));
  const auto value_hash =
      static_cast<std::int64_t>(io::fnv1a64(values, count * sizeof(std::int64_t)));
  const auto n = static_cast<std::int64_t>(count);
  std::int64_t pairs[6] = {what_hash, what_hash, n, n, value_hash, value_hash};

  MPI_Datatype pair_type = MPI_DATATYPE_NULL;
  MPI_Op op = MPI_OP_NULL;
  check(MPI_Type_contiguous(2, MPI_INT64_T, &pair_type), "MPI_Type_contiguous");
  check(MPI_Type_commit(&pair_type), "MPI_Type_commit");
  check(MPI_Op_create(&detail_mpi::min_max_op, /*commute=*/1, &op), "MPI_Op_create");
  const int rc = MPI_Allreduce(MPI_IN_PLACE, pairs, 3, pair_type, op, comm);
  MPI_Op_free(&op);
  MPI_Type_free(&pair_type);
  check(rc, "MPI_Allreduce");
  if (pairs[0] == pairs[1] && pairs[2] == pairs[3] && pairs[4] == pairs[5]) return;

  // Mismatch: every rank learns every rank's record and builds the same message.
  using detail_mpi::kRecord;
  using detail_mpi::kShown;
  const int p = size(comm);
  std::int64_t mine[kRecord] = {what_hash, n, value_hash};
  for (int i = 0; i < kShown; ++i)
    mine[3 + i] = static_cast<std::size_t>(i) < count ? values[i] : 0;
  std::vector<std::int64_t> all(static_cast<std::size_t>(p) * kRecord);
  check(MPI_Allgather(mine, kRecord, MPI_INT64_T, all.data(), kRecord, MPI_INT64_T, comm),
        "MPI_Allgather");
  auto describe = [&](std::ostringstream& os, int r) {
    const std::int64_t* rec = all.data() + static_cast<std::size_t>(r) * kRecord;
    os << "rank " << r << ": ";
    if (rec[0] != all[0]) {
      os << "a different check (not '" << label << "')";
      return;
    }
    os << '[';
    const std::int64_t shown = std::min<std::int64_t>(rec[1], kShown);
    for (std::int64_t i = 0; i < shown; ++i) os << (i ? ", " : "") << rec[3 + i];
    if (rec[1] > kShown) os << ", … (" << rec[1] << " values)";
    os << ']';
  };
  std::ostringstream os;
  describe(os, 0);
  int listed = 0, more = 0;
  for (int r = 1; r < p; ++r) {
    const std::int64_t* rec = all.data() + static_cast<std::size_t>(r) * kRecord;
    if (rec[0] == all[0] && rec[1] == all[1] && rec[2] == all[2]) continue;
    if (listed == kShown) {
      ++more;
      continue;
    }
    os << "; ";
    describe(os, r);
    ++listed;
  }
  if (more) os << "; and " << more << " more rank(s)";
  detail::throw_invalid("mpi::require_same", "expected every rank to agree on ", label, " (got ",
                        os.str(), ")");
}

/// require_same_values with the values as arguments (integers, bools or enums), e.g.
/// require_same(comm, "whitening fit [dim, sizeof(T)]", dim, sizeof(T)).
template <typename... V>
void require_same(MPI_Comm comm, const char* what, const V&... values) {
  const std::int64_t v[sizeof...(V) + 1] = {detail_mpi::to_int64(values)..., 0};
  require_same_values(comm, what, v, sizeof...(V));
}

/// Gathers the rows of every rank's `local` (rows_r × cols, rows may be strided) on `root`, in
/// rank order: root returns the (Σ rows_r × cols) matrix [local_0; local_1; …], the other ranks
/// an empty (0 × cols) matrix. Ranks may hold any number of rows, including none. One
/// MPI_Gather of the row counts and one MPI_Gatherv of one-row elements (so counts are rows and
/// a corpus may exceed 2^31 values). First require_same on (cols, sizeof(T)).
/// \throws std::invalid_argument if the ranks disagree on cols, T or root, root is not a rank of
///         comm, or the total exceeds
///         INT_MAX rows (every rank throws together); std::runtime_error if MPI fails.
template <typename T>
RowMatrix<T> gather_rows(MPI_Comm comm, ConstMatrixRef<T> local, int root = 0) {
  static_assert(xfmr::detail::is_real_v<T>, "xfmr::mpi::gather_rows: T must be float or double");
  const int r = rank(comm), p = size(comm);
  const Index cols = local.cols();
  require_same(comm, "gather_rows [cols, sizeof(T), root]", cols, sizeof(T), root);
  detail::require(root >= 0 && root < p, "mpi::gather_rows", "expected 0 <= root < size=", p,
                  " (got root=", root, ")");
  // Row counts in int64 to root, which checks that they fit MPI's int counts and displacements
  // and broadcasts the verdict: every rank throws together, none is left waiting in Gatherv.
  const std::int64_t my_rows = local.rows();
  std::vector<std::int64_t> rows64(r == root ? static_cast<std::size_t>(p) : 0);
  check(MPI_Gather(&my_rows, 1, MPI_INT64_T, rows64.data(), 1, MPI_INT64_T, root, comm),
        "MPI_Gather");
  std::vector<int> counts(rows64.size()), displs(rows64.size());
  std::int64_t total = 0;
  for (std::size_t i = 0; i < rows64.size(); ++i) {
    displs[i] = static_cast<int>(std::min<std::int64_t>(total, INT_MAX));
    counts[i] = static_cast<int>(std::min<std::int64_t>(rows64[i], INT_MAX));
    total += rows64[i];
  }
  check(MPI_Bcast(&total, 1, MPI_INT64_T, root, comm), "MPI_Bcast");
  detail::require(total <= INT_MAX, "mpi::gather_rows",
                  "expected at most INT_MAX rows in all (got ", total, ")");
  RowMatrix<T> out(r == root ? total : 0, cols);
  if (cols == 0) return out;  // every rank agrees (require_same): nothing to move
  // Contiguous copy when the rows are strided.
  RowMatrix<T> packed;
  const T* send = local.data();
  if (local.rows() > 1 && local.outerStride() != cols) {
    packed = local;
    send = packed.data();
  }
  MPI_Datatype row = MPI_DATATYPE_NULL;
  check(MPI_Type_contiguous(static_cast<int>(cols), datatype<T>(), &row), "MPI_Type_contiguous");
  check(MPI_Type_commit(&row), "MPI_Type_commit");
  const int rc = MPI_Gatherv(send, static_cast<int>(my_rows), row, out.data(), counts.data(),
                             displs.data(), row, root, comm);
  MPI_Type_free(&row);
  check(rc, "MPI_Gatherv");
  return out;
}

}  // namespace mpi
XFMR_NAMESPACE_END

#endif  // XFMR_DISTRIBUTED_MPI_HPP
