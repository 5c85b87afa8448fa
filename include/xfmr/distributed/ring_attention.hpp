// SPDX-License-Identifier: MIT
// Ring attention over MPI (issue 13): exact softmax attention of a sequence split in contiguous
// blocks over the ranks of a communicator, K/V blocks passed around the ring while each rank
// computes on the block it holds, partials (attention/partials.hpp) merged in a fixed order.
// Only code that links MPI (CMake target xfmr::mpi) includes this header.
#ifndef XFMR_DISTRIBUTED_RING_ATTENTION_HPP
#define XFMR_DISTRIBUTED_RING_ATTENTION_HPP

#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "../attention/contract.hpp"
#include "../attention/mask.hpp"
#include "../attention/partials.hpp"
#include "../attention/softmax.hpp"
#include "../config.hpp"
#include "../error.hpp"
#include "../types.hpp"
#include "mpi.hpp"

XFMR_NAMESPACE_BEGIN
namespace mpi {

/// How the sequence is laid out over the ranks (RingAttention).
///   Contiguous: rank r holds the rows [o_r, o_r + n_r), o_r = n_0 + … + n_{r−1}.
///   ZigZag:     the sequence is cut in 2P chunks; rank r holds chunk r then chunk 2P − 1 − r
///               (its first ⌈n_r/2⌉ rows, then its last ⌊n_r/2⌋), chunk sizes in sequence order
///               ⌈n_0/2⌉, ⌈n_1/2⌉, …, ⌈n_{P−1}/2⌉, ⌊n_{P−1}/2⌋, …, ⌊n_0/2⌋. Causal work is then
///               the same on every rank (each holds an early and a late chunk).
enum class RingLayout { Contiguous, ZigZag };

/// What the last RingAttention::forward did on this rank.
struct RingAttentionStats {
  std::int64_t bytes_sent = 0;      ///< K/V bytes this rank sent (received: the same in a ring)
  int steps = 0;                    ///< ring steps (= ranks)
  int blocks_computed = 0;          ///< key blocks attended (causal: the past and own blocks)
  int chunk_pairs_computed = 0;     ///< (query chunk, key chunk) products (ZigZag: 2 × 2 a block)
  double compute_seconds = 0;       ///< in forward_partial and merge (MPI_Wtime)
  double wait_seconds = 0;          ///< in MPI_Waitall after computing (communication not hidden)
};

/// Sequence-parallel exact softmax attention (SoftmaxAttention's mathematics, SPEC §4 and §18).
/// The sequence of n = Σ n_r tokens is split in contiguous blocks in rank order: rank r holds the
/// rows [o_r, o_r + n_r) of Q, K and V (o_r = n_0 + … + n_{r−1}) and gets the same rows of the
/// output. Block sizes may differ between ranks, and may be 0.
///
/// Algorithm (P ranks, P steps): each rank packs its K and V rows into one buffer; at step s it
/// holds the K/V block of rank (r − s) mod P, posts MPI_Irecv of the next block from rank r − 1
/// and MPI_Isend of the current one to rank r + 1 (double buffering), computes the partials of
/// its queries against the current block (SoftmaxAttention::forward_partial with the global
/// positions), merges them into its accumulator, and waits for the exchange. Blocks are merged
/// in arrival order (own block first, then r − 1, r − 2, …): fixed for a given P, so the result
/// is bit-reproducible run to run (it differs from the single-process forward by rounding only).
///
/// Causal: token positions are global (pos0 + position in the sequence); a chunk of keys wholly
/// in a chunk of queries' future is passed on without being computed. Load imbalance: with
/// RingLayout::Contiguous rank r computes r + 1 blocks (the last rank P, the first one), so the
/// causal run takes as long as the last rank: efficiency ≤ P/(2P − 1) of the ideal (2/3 for
/// P = 2). RingLayout::ZigZag is the remedy: rank r holds chunks r and 2P − 1 − r of 2P, and
/// every rank computes the same 2P (query chunk, key chunk) products (counting the two
/// diagonal halves as one). The caller lays its rows out accordingly (see RingLayout).
///
/// Per step and rank (n_b = n/P tokens per block, H query heads, H_kv K/V heads):
/// compute 4·n_b²·d·H FLOPs (half on the diagonal when causal), communication
/// n_b·H_kv·(d + d_v)·sizeof(T) bytes sent and received. Communication is hidden while compute
/// time ≥ transfer time, i.e. n_b ≥ H_kv·(d + d_v)·sizeof(T)·F / (4·d·H·B) for F FLOP/s per
/// rank and B bytes/s per link (README, "Ring attention").
///
/// GQA as SoftmaxAttention (H_kv divides H; only the H_kv K/V heads travel). Masks: causal only
/// (others are rejected with a message). pos0 shifts every position (the log-position scale).
///
/// Errors, before any collective that could deadlock: each rank checks its own shapes; the
/// first failing rank's message is broadcast and EVERY rank throws it (std::invalid_argument);
/// then mpi::require_same checks that the ranks agree on the heads, head_dim, value_dim,
/// sizeof(T), the scale, the mask and pos0. Collective over comm: every rank must call forward
/// with the same configuration. Uses point-to-point tag kTag on comm; do not run another ring on
/// the same communicator concurrently.
///
/// Memory per rank: 2·max_r n_r·H_kv·(d + d_v) values of K/V buffers, two partials of
/// n_r × H·(d_v + 2), and SoftmaxAttention's scratch. Not thread-safe: one object per thread.
template <typename T>
class RingAttention {
  static_assert(xfmr::detail::is_real_v<T>, "xfmr::mpi::RingAttention<T>: T must be float or double");

 public:
  static constexpr int kTag = 0x7269;  // "ri"

  /// comm: the ranks that share the sequence (kept, not duplicated: it must outlive the object).
  /// layout: which rows of the sequence each rank holds (RingLayout).
  /// \throws std::invalid_argument as SoftmaxAttention's constructor.
  RingAttention(MPI_Comm comm, const SoftmaxAttentionConfig& config,
                RingLayout layout = RingLayout::Contiguous)
      : m_comm(comm), m_attn(config), m_config(m_attn.config()), m_layout(layout) {}

  /// This rank's rows of the sequence (RingLayout): q (n_r × H·d), k (n_r × H_kv·d),
  /// v (n_r × H_kv·d_v), out (n_r × H·d_v), rows may be strided; out must not overlap q, k or v.
  /// Collective over comm. Afterwards out holds the same rows of softmax attention over the
  /// whole sequence.
  /// \throws std::invalid_argument on every rank when one rank's shapes are bad (its message),
  ///         when the ranks disagree on the configuration, or for mask parts other than causal;
  ///         std::runtime_error if MPI fails.
  void forward(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
               const AttentionMask<T>& mask = {}, Index pos0 = 0) {
    const int p = size(m_comm), r = rank(m_comm);
    const Index d = m_config.head_dim, dv = m_config.value_dim;

    // 1. Local checks, agreed on collectively (a rank that threw alone would leave the others
    //    waiting in the next collective).
    xfmr::detail::AttentionShape shape;
    std::string error;
    try {
      xfmr::detail::check_mask_support(kWhere, mask, kMaskCausal,
                                       "ring attention supports the causal mask only");
      xfmr::detail::require(pos0 >= 0, kWhere, "expected pos0 >= 0 (got pos0=", pos0, ")");
      xfmr::detail::require(m_config.scale.kind != ScaleKind::LogN, kWhere,
                            "expected a scale that does not count the allowed keys (got the "
                            "log-n scale, which needs every block's keys)");
      xfmr::detail::require(q.rows() <= INT_MAX, kWhere, "expected at most INT_MAX rows per rank "
                            "(got ", q.rows(), ")");
      shape = xfmr::detail::check_attention_shapes(kWhere, q, k, v, out, d, dv);
      xfmr::detail::require(q.rows() == k.rows(), kWhere,
                            "expected q and k to hold the same tokens (got q.rows()=", q.rows(),
                            ", k.rows()=", k.rows(), " on rank ", r, ")");
      xfmr::detail::check_attention_overlap(kWhere, q, k, v, out);
    } catch (const std::invalid_argument& e) {
      error = e.what();
    }
    agree_on_errors(error, r, p);

    // 2. The configuration, then the block sizes.
    require_same(m_comm,
                 "RingAttention [heads, kv_heads, head_dim, value_dim, sizeof(T), scale kind, "
                 "scale factor, scale base, causal, pos0, layout]",
                 shape.heads, shape.kv_heads, d, dv, sizeof(T),
                 static_cast<int>(m_config.scale.kind), bits(m_config.scale.factor),
                 bits(m_config.scale.base_length), mask.causal, pos0, m_layout);
    const std::int64_t my_rows = q.rows();
    m_rows.assign(static_cast<std::size_t>(p), 0);
    check(MPI_Allgather(&my_rows, 1, MPI_INT64_T, m_rows.data(), 1, MPI_INT64_T, m_comm),
          "MPI_Allgather");
    Index max_rows = 0;
    for (int t = 0; t < p; ++t) max_rows = std::max<Index>(max_rows, m_rows[std::size_t(t)]);
    segments(p);

    // 3. The ring. One buffer row = one token's K heads then V heads: [k_j | v_j].
    const Index kc = shape.kv_heads * d, width = kc + shape.kv_heads * dv;
    m_buf[0].resize(max_rows, width);
    m_buf[1].resize(max_rows, width);
    m_buf[0].topRows(q.rows()).leftCols(kc) = k;
    m_buf[0].topRows(q.rows()).rightCols(width - kc) = v;
    MPI_Datatype row = MPI_DATATYPE_NULL;
    check(MPI_Type_contiguous(static_cast<int>(width), datatype<T>(), &row), "MPI_Type_contiguous");
    check(MPI_Type_commit(&row), "MPI_Type_commit");
    struct TypeGuard {
      MPI_Datatype* t;
      ~TypeGuard() { MPI_Type_free(t); }
    } guard{&row};

    m_stats = RingAttentionStats{};
    m_stats.steps = p;
    const std::vector<Segment>& mine = m_segments[std::size_t(r)];
    m_acc.resize(mine.size());
    for (std::size_t a = 0; a < mine.size(); ++a) m_acc[a].reset(mine[a].rows, shape.heads, dv);
    const int left = (r - 1 + p) % p, right = (r + 1) % p;
    int cur = 0;
    for (int s = 0; s < p; ++s) {
      const int src = ((r - s) % p + p) % p;  // owner of the block in m_buf[cur]
      const Index rows = m_rows[std::size_t(src)];
      MPI_Request req[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL};
      if (s + 1 < p) {
        const int next = ((src - 1) % p + p) % p;  // what rank r − 1 holds now
        check(MPI_Irecv(m_buf[1 - cur].data(), static_cast<int>(m_rows[std::size_t(next)]), row,
                        left, kTag, m_comm, &req[0]),
              "MPI_Irecv");
        check(MPI_Isend(m_buf[cur].data(), static_cast<int>(rows), row, right, kTag, m_comm,
                        &req[1]),
              "MPI_Isend");
        m_stats.bytes_sent += static_cast<std::int64_t>(rows * width) * std::int64_t(sizeof(T));
      }
      const double t0 = MPI_Wtime();
      // Every (query chunk, key chunk) pair with an allowed key, in a fixed order.
      bool any = false;
      for (std::size_t a = 0; a < mine.size(); ++a) {
        const Segment& qs = mine[a];
        for (const Segment& ks : m_segments[std::size_t(src)]) {
          if (qs.rows == 0 || ks.rows == 0 || (mask.causal && ks.pos > qs.pos + qs.rows - 1))
            continue;
          const auto block = m_buf[cur].middleRows(ks.row0, ks.rows);
          m_attn.forward_partial(q.middleRows(qs.row0, qs.rows), block.leftCols(kc),
                                 block.rightCols(width - kc), m_part, pos0 + qs.pos,
                                 pos0 + ks.pos, mask);
          m_acc[a].merge(m_part);
          ++m_stats.chunk_pairs_computed;
          any = true;
        }
      }
      m_stats.blocks_computed += any ? 1 : 0;
      const double t1 = MPI_Wtime();
      check(MPI_Waitall(2, req, MPI_STATUSES_IGNORE), "MPI_Waitall");
      m_stats.compute_seconds += t1 - t0;
      m_stats.wait_seconds += MPI_Wtime() - t1;
      cur = 1 - cur;
    }
    for (std::size_t a = 0; a < mine.size(); ++a)
      m_acc[a].finish(out.middleRows(mine[a].row0, mine[a].rows));
  }

  /// What the last forward did on this rank (bytes sent, blocks computed, time split).
  const RingAttentionStats& stats() const noexcept { return m_stats; }
  const SoftmaxAttentionConfig& config() const noexcept { return m_config; }
  RingLayout layout() const noexcept { return m_layout; }

 private:
  static constexpr const char* kWhere = "mpi::RingAttention";

  // Rows [row0, row0 + rows) of a rank's block sit at sequence positions pos, pos + 1, ….
  struct Segment {
    Index row0, rows, pos;
  };

  // m_segments[t]: the chunks rank t holds, from the block sizes m_rows (see RingLayout).
  void segments(int p) {
    m_segments.assign(static_cast<std::size_t>(p), {});
    if (m_layout == RingLayout::Contiguous) {
      Index pos = 0;
      for (int t = 0; t < p; ++t) {
        const Index n = m_rows[std::size_t(t)];
        m_segments[std::size_t(t)].push_back({0, n, pos});
        pos += n;
      }
      return;
    }
    // ZigZag: chunk t (t < P) = the first ⌈n_t/2⌉ rows of rank t, chunk 2P − 1 − t its rest.
    Index pos = 0;
    for (int t = 0; t < p; ++t) {
      const Index n = m_rows[std::size_t(t)], first = n - n / 2;
      m_segments[std::size_t(t)].push_back({0, first, pos});
      pos += first;
    }
    for (int t = p - 1; t >= 0; --t) {
      const Index n = m_rows[std::size_t(t)], first = n - n / 2;
      m_segments[std::size_t(t)].push_back({first, n / 2, pos});
      pos += n / 2;
    }
  }

  static std::int64_t bits(double x) noexcept {
    std::int64_t b = 0;
    std::memcpy(&b, &x, sizeof b);
    return b;
  }

  // Every rank learns whether some rank failed its local checks; if so, all throw the message of
  // the lowest failing rank (broadcast from it). Two small collectives on the happy path.
  void agree_on_errors(const std::string& error, int r, int p) {
    int first = error.empty() ? p : r;
    check(MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, m_comm), "MPI_Allreduce");
    if (first == p) return;
    int len = r == first ? static_cast<int>(error.size()) : 0;
    check(MPI_Bcast(&len, 1, MPI_INT, first, m_comm), "MPI_Bcast");
    std::string text = r == first ? error : std::string(static_cast<std::size_t>(len), ' ');
    check(MPI_Bcast(text.data(), len, MPI_CHAR, first, m_comm), "MPI_Bcast");
    if (r != first) text += " (reported by rank " + std::to_string(first) + ")";
    XFMR_THROW(std::invalid_argument(text));
  }

  MPI_Comm m_comm;
  SoftmaxAttention<T> m_attn;
  SoftmaxAttentionConfig m_config;
  std::vector<std::int64_t> m_rows;
  RingLayout m_layout;
  std::vector<std::vector<Segment>> m_segments;
  RowMatrix<T> m_buf[2];
  std::vector<AttentionPartials<T>> m_acc;  // one per query chunk of this rank
  AttentionPartials<T> m_part;
  RingAttentionStats m_stats;
};

}  // namespace mpi
XFMR_NAMESPACE_END

#endif  // XFMR_DISTRIBUTED_RING_ATTENTION_HPP
