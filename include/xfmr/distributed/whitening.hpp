// SPDX-License-Identifier: MIT
// Distributed BERT-whitening fit over MPI: every rank accumulates WhiteningStats on its own shard,
// the statistics are Chan-merged in double along a fixed binomial tree over the ranks and
// broadcast, and every rank finalizes the same BertWhitening (SPEC §9.2; issue 13).
#ifndef XFMR_DISTRIBUTED_WHITENING_HPP
#define XFMR_DISTRIBUTED_WHITENING_HPP

#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <exception>
#include <vector>

#include "../error.hpp"
#include "../heads/whitening.hpp"
#include "../heads/whitening_stats.hpp"
#include "../types.hpp"
#include "mpi.hpp"

XFMR_NAMESPACE_BEGIN
namespace mpi {

/// What a statistics reduction moved, for the whole communicator (the same numbers on every
/// rank): `messages` point-to-point transfers of `message_bytes` each (the statistics' flat
/// buffer, 8·(2 + D + D(D+1)/2) bytes): P − 1 up the tree and P − 1 in the broadcast (counted
/// as a binomial broadcast sends them; MPI may segment them), in `rounds` = 2·⌈log₂ P⌉ steps
/// on the critical path.
struct ReduceVolume {
  std::int64_t messages = 0;
  std::int64_t message_bytes = 0;
  int rounds = 0;
  std::int64_t bytes() const noexcept { return messages * message_bytes; }
};

/// Replaces `stats` on every rank of comm by the statistics of all ranks' rows, the same bits on
/// every rank. The reduction is a fixed binomial tree over rank numbers: at step s = 1, 2, 4, …
/// rank r (r mod 2s = 0) receives the statistics of ranks [r + s, r + 2s) and merges them after
/// its own (Chan's update in double, WhiteningStats::merge), so rank 0 ends with
/// ((S_0 ⊕ S_1) ⊕ (S_2 ⊕ S_3)) ⊕ … in an order that depends only on P, never on timing; rank 0
/// then broadcasts its flat buffer (WhiteningStats::to_buffer). Ranks with no rows take part
/// as empty statistics (the identity of the merge). Messages travel on a duplicate of comm.
/// Allocates two buffers of buffer_size() doubles and one WhiteningStats.
/// Collective: every rank of comm must call it. \throws std::invalid_argument on every rank if
/// the ranks' dims differ (require_same, before any other collective) or the buffer exceeds
/// INT_MAX doubles (D > 65534); std::runtime_error if MPI fails.
inline ReduceVolume allreduce_whitening_stats(MPI_Comm comm, WhiteningStats& stats) {
  require_same(comm, "allreduce_whitening_stats [dim]", stats.dim());
  const std::size_t n = stats.buffer_size();
  detail::require(n <= static_cast<std::size_t>(INT_MAX), "mpi::allreduce_whitening_stats",
                  "expected at most INT_MAX doubles of statistics (got ", n, " for dim=",
                  stats.dim(), ")");
  DupComm own(comm);
  const int r = rank(own.get()), p = size(own.get());
  constexpr int kTag = 0x5754;  // "WT"
  std::vector<double> buf(n);
  WhiteningStats received(stats.dim());
  ReduceVolume vol;
  vol.message_bytes = static_cast<std::int64_t>(n * sizeof(double));
  for (int step = 1; step < p; step *= 2) {
    vol.rounds += 2;
    vol.messages += 2 * ((p - step + 2 * step - 1) / (2 * step));  // senders at this step, ×2
  }
  bool sent = false;
  for (int step = 1; step < p && !sent; step *= 2) {
    if (r % (2 * step) == 0) {
      if (r + step < p) {
        check(MPI_Recv(buf.data(), static_cast<int>(n), MPI_DOUBLE, r + step, kTag, own.get(),
                       MPI_STATUS_IGNORE),
              "MPI_Recv");
        received.from_buffer(buf.data(), n);
        stats.merge(received);
      }
    } else {  // r mod 2s = s: hand the block [r, r + s) to r − s and wait for the broadcast
      stats.to_buffer(buf.data());
      check(MPI_Send(buf.data(), static_cast<int>(n), MPI_DOUBLE, r - step, kTag, own.get()),
            "MPI_Send");
      sent = true;
    }
  }
  if (r == 0) stats.to_buffer(buf.data());
  check(MPI_Bcast(buf.data(), static_cast<int>(n), MPI_DOUBLE, 0, own.get()), "MPI_Bcast");
  stats.from_buffer(buf.data(), n);  // rank 0 too: a bit-exact round trip
  return vol;
}

namespace detail_mpi {

// T deduced from the BertWhitening<T> argument only, so a RowMatrix<T> binds to the view.
template <typename V>
struct NonDeducedImpl {
  using type = V;
};
template <typename V>
using NonDeduced = typename NonDeducedImpl<V>::type;

inline std::int64_t double_bits(double v) noexcept {
  std::int64_t b = 0;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

// Every field of the configuration that changes the fitted transform, and the scalar type:
// ranks that disagree would end with different whitenings.
template <typename T>
void require_same_whitening(MPI_Comm comm, const BertWhitening<T>& w) {
  const WhiteningConfig& c = w.config();
  require_same(comm,
               "fit_whitening [dim, sizeof(T), k, bits of beta, gamma, epsilon, normalization, "
               "normalize, strict_rank, exact_gram]",
               w.dim(), sizeof(T), w.components(), double_bits(c.beta), double_bits(c.gamma),
               double_bits(c.epsilon), c.normalization, c.normalize, c.strict_rank,
               c.exact_gram);
}

}  // namespace detail_mpi

/// Fits `whitening` on every rank from the statistics `local` each rank accumulated on its own
/// shard (WhiteningStats::add, any number of calls, possibly none): the statistics are reduced
/// as allreduce_whitening_stats does, then whitening is replaced by a fresh BertWhitening of its
/// dim and config, merged with the global statistics and finalized. Every rank ends with the
/// same transform, bit for bit; it equals the single-process fit over the concatenated shards to
/// rounding (the Chan merges and the row blocking differ). Afterwards whitening.stats() holds
/// every rank's rows; `local` is unchanged.
/// Collective. \throws std::invalid_argument on every rank if the ranks disagree on dim, T or
///         any config field (require_same) or local.dim() != whitening.dim() on some rank;
///         what BertWhitening::finalize throws (fewer than 2 rows in all, …), on every rank.
template <typename T>
ReduceVolume fit_whitening(MPI_Comm comm, BertWhitening<T>& whitening,
                           const WhiteningStats& local) {
  detail_mpi::require_same_whitening(comm, whitening);
  std::exception_ptr err;
  try {
    detail::require(local.dim() == whitening.dim(), "mpi::fit_whitening",
                    "expected statistics of dim=", whitening.dim(), " (got dim=", local.dim(),
                    ")");
  } catch (...) {
    err = std::current_exception();
  }
  rethrow_on_any_rank(comm, err, "mpi::fit_whitening");
  WhiteningStats global = local;
  const ReduceVolume vol = allreduce_whitening_stats(comm, global);
  BertWhitening<T> fitted(whitening.dim(), whitening.config());
  fitted.merge(global);
  fitted.finalize();  // deterministic: the same bits in, the same result (or error) everywhere
  whitening = std::move(fitted);
  return vol;
}

/// Fits `whitening` on the rows of every rank's `shard` (N_r × D, rows may be strided; N_r may
/// be 0): accumulates the shard into WhiteningStats with the whitening's batch_rows and
/// exact_gram, then fit_whitening above. Collective.
/// \throws std::invalid_argument on every rank if the ranks disagree on dim, T or the config, or
///         a shard has the wrong width or a non-finite value (that rank throws its own message,
///         the others a std::runtime_error naming it); what finalize throws, on every rank.
template <typename T>
ReduceVolume fit_whitening(MPI_Comm comm, BertWhitening<T>& whitening,
                           detail_mpi::NonDeduced<ConstMatrixRef<T>> shard) {
  detail_mpi::require_same_whitening(comm, whitening);
  WhiteningStats local(whitening.dim(), whitening.config().batch_rows,
                       whitening.config().exact_gram);
  std::exception_ptr err;
  try {
    detail::require(shard.cols() == whitening.dim(), "mpi::fit_whitening",
                    "expected a shard of dim=", whitening.dim(), " columns (got ", shard.rows(),
                    "x", shard.cols(), ")");
    local.add<T>(shard);
  } catch (...) {
    err = std::current_exception();
  }
  rethrow_on_any_rank(comm, err, "mpi::fit_whitening");
  return fit_whitening(comm, whitening, local);
}

}  // namespace mpi
XFMR_NAMESPACE_END

#endif  // XFMR_DISTRIBUTED_WHITENING_HPP
