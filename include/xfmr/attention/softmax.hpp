// SPDX-License-Identifier: MIT
// Scaled dot-product (softmax) attention, tile by tile with the online softmax (SPEC §4):
// O(tile) extra memory, masked key tiles skipped, multi-head and grouped-query.
#ifndef XFMR_ATTENTION_SOFTMAX_HPP
#define XFMR_ATTENTION_SOFTMAX_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../detail/eigen.hpp"

#include "../config.hpp"
#include "../detail/tensor_fwd.hpp"
#include "../error.hpp"
#include "../simd/bf16.hpp"
#include "../simd/decode.hpp"
#include "../simd/gemm.hpp"
#include "../simd/softmax.hpp"
#include "../simd/transpose.hpp"
#include "../thread_pool.hpp"
#include "../types.hpp"
#include "contract.hpp"
#include "mask.hpp"
#include "partials.hpp"
#include "scale.hpp"

XFMR_NAMESPACE_BEGIN

/// Who computes the tile products Q·Kᵀ and P·V. Both give the same result up to rounding
/// (tested against each other).
///   Kernel: the library's GEMM engine (simd/gemm.hpp) on a transposed
///           score tile (the default).
///   Eigen:  Eigen block products on a row-major score tile; kept as the reference path.
enum class TileProduct { Kernel, Eigen };

/// Configuration of SoftmaxAttention. Head counts come from the widths of q, k and v.
struct SoftmaxAttentionConfig {
  Index head_dim = 0;     ///< d: query/key size per head, >= 1
  Index value_dim = 0;    ///< d_v per head; 0 means head_dim
  AttentionScale scale{}; ///< λ (default 1/√d)
  int threads = 1;        ///< parts per call (>= 1): heads × query tiles, cut by ThreadPool
  ThreadPool* pool = nullptr;  ///< where the parts run when threads > 1 (null: the default pool)
  /// Query rows per tile (>= 1). TileProduct::Kernel with more than nr/4 query rows deals whole
  /// blocks of nr queries (the GEMM engine's nr) to ceil(n_q / query_tile) tiles, as evenly as
  /// whole blocks allow; the other paths take query_tile rows per tile.
  Index query_tile = 256;
  /// Keys per tile (>= 1). 128: a probability tile Sᵀ of 128 keys × nr queries stays in L1 and
  /// within one kc block of the GEMM engine (measured faster than 256 for d = 64 and 128).
  Index key_tile = 128;
  TileProduct tile_product = TileProduct::Kernel;
};

namespace detail {

template <typename T>
using ConstStridedMap = Eigen::Map<const RowMatrix<T>, 0, Eigen::OuterStride<>>;
template <typename T>
using StridedMap = Eigen::Map<RowMatrix<T>, 0, Eigen::OuterStride<>>;

/// C(m×n) = A(m×k)·B(n×k)ᵀ, all row-major with leading dimensions.
template <typename T>
void tile_qk(TileProduct, Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb,
             T* c, Index ldc) {
  StridedMap<T> C(c, m, n, Eigen::OuterStride<>(ldc));
  C.noalias() = ConstStridedMap<T>(a, m, k, Eigen::OuterStride<>(lda)) *
                ConstStridedMap<T>(b, n, k, Eigen::OuterStride<>(ldb)).transpose();
}

/// C(m×n) += A(m×k)·B(k×n), all row-major with leading dimensions.
template <typename T>
void tile_pv(TileProduct, Index m, Index n, Index k, const T* a, Index lda, const T* b, Index ldb,
             T* c, Index ldc) {
  StridedMap<T> C(c, m, n, Eigen::OuterStride<>(ldc));
  C.noalias() += ConstStridedMap<T>(a, m, k, Eigen::OuterStride<>(lda)) *
                 ConstStridedMap<T>(b, k, n, Eigen::OuterStride<>(ldb));
}

}  // namespace detail

/// Softmax attention, per head h (SPEC §4.1, §4.3):
///   s_ij = λ_i·q_i·k_j + bias_ij over the allowed keys j of query i (AttentionMask),
///   o_i  = Σ_j softmax_j(s_ij) v_j,   o_i = 0 when query i has no allowed key.
/// Computed tile by tile with the online softmax: per query row a running max M, running sum ℓ
/// and accumulator acc; for each key tile, M' = max(M, max s), ℓ ← ℓ·e^{M−M'} + Σ e^{s−M'},
/// acc ← acc·e^{M−M'} + Σ e^{s−M'} v; finally o = acc/ℓ. Key tiles past every row's limit
/// (causal, prefix-LM, padding) are skipped, so causal attention costs about half.
///
/// Shapes: q (n_q × H·d), k (n_k × H_kv·d), v (n_k × H_kv·d_v), out (n_q × H·d_v), head h at
/// columns [h·d, (h+1)·d). H_kv must divide H (grouped-query: head h reads K/V head
/// h / (H/H_kv)). The attention contract (attention/contract.hpp): key j sits at absolute
/// position pos0 + j and query i at pos0 + n_k − n_q + i, so decoding one query against a cache
/// of n_k keys is the n_q = 1 case; pos0 feeds the log-position scale only (the mask is aligned
/// bottom-right whatever pos0). Every AttentionMask part is supported. out must not overlap q,
/// k or v (never in place). QK normalisation (KeyNorm, cosine, QK-RMSNorm): QkNorm::forward on
/// q and k first (attention/keynorm.hpp).
///
/// Non-finite input is never silent (checked by tests on both tile paths and decoding):
///   - a NaN or ±inf in q_i makes row i NaN (q rows are checked while they are read, O(d));
///   - a NaN in k_j makes every query that may see key j NaN; an inf in k_j scores ±inf or
///     NaN: +inf and NaN give NaN rows (∞ − ∞ in the online softmax), while a −inf score gives
///     the key weight 0 like a masked key (e^{−∞}; k is not scanned, see below);
///   - bias_ij = −inf masks the pair; +inf or NaN on an allowed pair makes row i NaN;
///   - an inf or NaN in v_j makes every row that gives key j a weight non-finite (±inf or NaN);
///     rows that may not see it but share its key tile may turn non-finite too (0·inf in the
///     tile product), never a wrong finite value;
///   - a query with no allowed key outputs exact zeros whatever the inputs hold.
/// Nothing is checked up front (an O(n·d) scan of the KV cache would double decoding time):
/// the zero row is chosen by ℓ == 0 only, and a NaN ℓ or maximum flows to the output.
///
/// Memory: scratch per thread of query_tile·(key_tile + d + d_v) + O(n_q + n_k) values (the kernel
/// path: nr·key_tile + (query_tile + 2·nr)·(d + d_v) at most, nr the GEMM engine's; the grouped
/// decode path: u·(key_tile + d + d_v) for the u = (heads per K/V block)·(query rows) rows it
/// serves; with bf16 K/V off the decode path, the widened K and V: n_k·(width of k + width of v)),
/// owned by the object and grown on demand (the first call, or a larger shape, allocates); never
/// O(n²).
/// Eigen's products may allocate packing buffers for large tiles.
/// Threads: the (head, query tile) items are cut into config.threads parts by ThreadPool's cyclic
/// rule, each round of items walked in alternate directions (a causal ramp shares evenly; the
/// kernel path makes at least 2·threads query tiles per head), and run on config.pool (or
/// default_thread_pool()), each part with its own scratch; every
/// item is computed by the same operations whatever part runs it, so the output is the same bits
/// for any thread count or pool. Not thread-safe: one object per calling thread.
template <typename T>
class SoftmaxAttention : public AttentionForward<SoftmaxAttention<T>, T> {
  friend class AttentionForward<SoftmaxAttention<T>, T>;

  static_assert(detail::is_real_v<T>, "xfmr::SoftmaxAttention<T>: T must be float or double");

 public:
  /// \throws std::invalid_argument if head_dim < 1, value_dim < 0, threads < 1, a tile size
  ///         < 1, or the scale is bad (non-finite factor, base_length ≤ 1, min_length < 1).
  explicit SoftmaxAttention(const SoftmaxAttentionConfig& config) : m_config(config) {
    const char* where = "SoftmaxAttention";
    detail::require(config.head_dim >= 1, where, "head_dim must be >= 1 (got ",
                    config.head_dim, ")");
    detail::require(config.value_dim >= 0, where, "value_dim must be >= 0 (got ",
                    config.value_dim, ")");
    detail::require(config.threads >= 1, where, "threads must be >= 1 (got ", config.threads,
                    ")");
    detail::require(config.query_tile >= 1 && config.key_tile >= 1, where,
                    "query_tile and key_tile must be >= 1 (got ", config.query_tile, " and ",
                    config.key_tile, ")");
    detail::check_scale(config.scale, where);
    if (m_config.value_dim == 0) m_config.value_dim = m_config.head_dim;
    m_ws.resize(static_cast<std::size_t>(config.threads));
  }

  /// See the class comment and the contract (attention/contract.hpp): key row j at absolute
  /// position pos0 + j, query row i at pos0 + n_k − n_q + i (pos0 feeds the log-position scale
  /// only). Every AttentionMask part is supported. \throws std::invalid_argument on a shape
  /// mismatch (q, k, v, out, mask, bias), widths that are not multiples of head_dim /
  /// value_dim, key/value heads that do not divide the query heads, pos0 < 0, or out
  /// overlapping q, k or v.
  using AttentionForward<SoftmaxAttention<T>, T>::forward;

  /// forward with K and V in bf16 (a half-size KV cache; T = float only): the same shapes,
  /// strides, grouped-query heads, mask and positions as the float overload, and the result of
  /// the float overload on K and V widened to float (every bf16 is a float, and a float q_i·k_j
  /// product of a bf16 k_j is exact), up to the order of float rounding. Non-finite K/V values
  /// (bf16 keeps ±inf and NaN) behave as in the float overload. Decoding (the grouped path: few
  /// query rows, no bias or element masks, TileProduct::Kernel) reads the bf16 rows directly,
  /// each once, widening in registers; the other paths widen K and V once per call into a
  /// buffer the object keeps (n_k·(H_kv·d + H_kv·d_v) floats, grown on demand).
  /// \throws std::invalid_argument as the float overload (out must not overlap k or v).
  void forward(ConstMatrixRef<T> q, ConstMatrixRef<bf16> k, ConstMatrixRef<bf16> v,
               MatrixRef<T> out, const AttentionMask<T>& mask = {}, Index pos0 = 0) {
    static_assert(std::is_same_v<T, float>,
                  "xfmr::SoftmaxAttention: bf16 K/V need T = float (double K/V are double)");
    run_kv<bf16>(q, k, v, out, mask, pos0, 1, detail::sequence_key_length(kWhere, mask, 0, 1),
                 nullptr);
  }

  /// Mergeable partials of the queries against one block of keys (SPEC §18,
  /// attention/partials.hpp): forward's tiles and online softmax, stopped before the division
  /// o/ℓ. partials gets per row i and head h the block's max m, sum ℓ and accumulator o (the
  /// identity m = −∞, ℓ = 0, o = 0 for a row with no allowed key in the block).
  ///
  /// Positions are global: query row i sits at query_pos0 + i and key row j at key_pos0 + j, so
  /// the blocks of one sequence can be computed apart (ring attention). A causal mask allows
  /// key_pos0 + j ≤ query_pos0 + i; the log-position scale uses query_pos0 + i. The other mask
  /// parts are in the block's own coordinates: key_length (j < key_length), key_valid (n_k
  /// entries), allowed and bias (n_q × n_k, or heads·n_q × n_k, of this block). Splitting the keys
  /// of forward(q, k, v, out, mask, pos0) into blocks [j0, j1): forward_partial(q, k and v rows
  /// [j0, j1), p_b, pos0 + n_k − n_q, pos0 + j0, the mask's block), merged (any order) and
  /// finished, equals forward up to rounding. GQA and strided views as forward.
  ///
  /// partials is resized to (n_q × H, n_q × H, n_q × H·d_v) (allocates only when its size
  /// changes) and overwritten; after a throw its contents are unspecified. q, k, v must not
  /// overlap partials.o.
  /// \throws std::invalid_argument as forward, and for query_pos0 < 0 or key_pos0 < 0, segment
  ///         (UniLM) masks (the cumulative ids need every key) and the log-n scale (it counts the
  ///         allowed keys of every block).
  void forward_partial(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v,
                       AttentionPartials<T>& partials, Index query_pos0, Index key_pos0,
                       const AttentionMask<T>& mask = {}) {
    detail::require(query_pos0 >= 0 && key_pos0 >= 0, kWhere,
                    "forward_partial expected query_pos0 >= 0 and key_pos0 >= 0 (got ",
                    query_pos0, " and ", key_pos0, ")");
    detail::check_mask_support(kWhere, mask, kMaskAll & ~unsigned(kMaskSegments),
                               "forward_partial: the cumulative segment ids need every key; "
                               "give the block's mask as mask.allowed");
    detail::require(m_config.scale.kind != ScaleKind::LogN, kWhere,
                    "forward_partial expected a scale that does not count the allowed keys (got "
                    "the log-n scale, which needs the keys of every block)");
    const Index d = m_config.head_dim, heads = q.cols() % d == 0 ? q.cols() / d : 0;
    partials.m.resize(q.rows(), heads);
    partials.l.resize(q.rows(), heads);
    partials.o.resize(q.rows(), heads * m_config.value_dim);
    const Partial p{query_pos0, key_pos0, partials.m.data(), partials.l.data()};
    run(q, k, v, partials.o, mask, 0, 1, detail::sequence_key_length(kWhere, mask, 0, 1), &p);
  }

  const SoftmaxAttentionConfig& config() const noexcept { return m_config; }

 private:
  static constexpr const char* kWhere = "SoftmaxAttention";

  struct Workspace {
    std::vector<T> s, acc, m, l, qt, alpha;
  };
  // Query columns of the transposed score tile are padded to whole micro-kernel blocks.
  static constexpr Index kColumnBlock = simd::GemmShape<T, simd::native_isa>::nr;
  Index padded_query_tile() const {
    return (m_config.query_tile + kColumnBlock - 1) / kColumnBlock * kColumnBlock;
  }

  std::pair<Index, Index> tensor_dims() const noexcept { return {m_config.head_dim, m_config.value_dim}; }

  // forward_partial: the positions and where m and ℓ go (rows × heads, row-major).
  struct Partial {
    Index query_pos0, key_pos0;
    T* m;
    T* l;
  };

  // Everything one call shares between heads, tiles and threads (read-only during the call).
  struct Call {
    const T* q;
    const T* k;
    const T* v;
    T* out;
    Index ldq, ldk, ldv, ldo;
    Index nq, nk, heads, group, d, dv;
    const AttentionMask<T>* mask;
    bool elementwise;
    Index bias_rows;
    const Partial* partial;  // forward_partial: store m, ℓ, acc instead of acc/ℓ
    const bf16* kh = nullptr;  // bf16 K and V (tile_group<bf16>; k and v are then null, or
    const bf16* vh = nullptr;  // their widened copies)
  };

  // K/V rows widened to T for the tile paths (bf16 K/V), grown on demand; Eigen's allocator
  // aligns them as the float inputs usually are (rows of whole vectors start on vector bounds).
  using Buffer = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  struct WidenedKv {
    Buffer k, v;
  };

  template <typename KT>
  static const KT* kv_data(const T* full, const bf16* half) noexcept {
    if constexpr (std::is_same_v<KT, bf16>) {
      (void)full;
      return half;
    } else {
      (void)half;
      return full;
    }
  }

  // x (rows × cols bf16, strided) → buf (rows × cols T, dense).
  static void widen(ConstMatrixRef<bf16> x, Buffer& buf) {
    const Index size = x.rows() * x.cols();
    if (buf.size() < size) buf.resize(size);
    for (Index j = 0; j < x.rows(); ++j)
      simd::convert_row<simd::native_isa>(x.data() + j * x.outerStride(),
                                          buf.data() + j * x.cols(), x.cols());
  }

  // out (T) and a bf16 view share no byte (their address ranges are disjoint).
  static void check_half_overlap(const MatrixRef<T>& out, ConstMatrixRef<bf16> x,
                                 const char* name) {
    bool overlap = false;
    if (out.size() > 0 && x.size() > 0) {
      const auto* o0 = reinterpret_cast<const unsigned char*>(out.data());
      const auto* o1 = reinterpret_cast<const unsigned char*>(
          out.data() + (out.rows() - 1) * out.outerStride() + out.cols());
      const auto* x0 = reinterpret_cast<const unsigned char*>(x.data());
      const auto* x1 = reinterpret_cast<const unsigned char*>(
          x.data() + (x.rows() - 1) * x.outerStride() + x.cols());
      const std::less<const unsigned char*> lt;
      overlap = lt(o0, x1) && lt(x0, o1);
    }
    detail::require(!overlap, kWhere, "expected out not to overlap ", name,
                    " (got overlapping views; attention is never computed in place)");
  }

  void run(ConstMatrixRef<T> q, ConstMatrixRef<T> k, ConstMatrixRef<T> v, MatrixRef<T> out,
           const AttentionMask<T>& mask, Index pos0, Index batch, Index key_length,
           const Partial* partial = nullptr) {
    run_kv<T>(q, k, v, out, mask, pos0, batch, key_length, partial);
  }

  // K/V of element type KT: T, or bf16 (T = float). The grouped decode path reads bf16 rows
  // directly; the other paths get K and V widened to T in m_kvf (grown on demand).
  template <typename KT>
  void run_kv(ConstMatrixRef<T> q, ConstMatrixRef<KT> k, ConstMatrixRef<KT> v, MatrixRef<T> out,
              const AttentionMask<T>& mask, Index pos0, Index batch, Index key_length,
              const Partial* partial) {
    constexpr bool kHalf = !std::is_same_v<KT, T>;
    const Index d = m_config.head_dim;
    const detail::AttentionShape shape =
        detail::check_attention_shapes(kWhere, q, k, v, out, d, m_config.value_dim);
    if constexpr (kHalf) {
      detail::check_attention_overlap(kWhere, q, q, q, out);
      check_half_overlap(out, k, "k");
      check_half_overlap(out, v, "v");
    } else {
      detail::check_attention_overlap(kWhere, q, k, v, out);
    }
    detail::require(pos0 >= 0, kWhere, "expected pos0 >= 0 (got pos0=", pos0, ")");
    const Index heads = shape.heads, kv_heads = shape.kv_heads, dv = shape.d_v;
    const Index nq = shape.n_q, nk = shape.n_k;
    detail::ResolvedMask::check(mask, nq, nk, heads, batch, kWhere);
    if (nq == 0) return;

    // Per-row key limits and scales, shared by all heads.
    // Query row i at key index shift + i (bottom-right, or forward_partial's global positions).
    const Index shift = partial ? partial->query_pos0 - partial->key_pos0 : nk - nq;
    const Index qpos0 = partial ? partial->query_pos0 : pos0 + nk - nq;
    detail::ResolvedMask::limits(mask, nq, nk, key_length, shift, m_limit, m_cumsum);
    const double base = detail::base_scale(m_config.scale, d);
    m_lambda.resize(static_cast<std::size_t>(nq));
    for (Index i = 0; i < nq; ++i) {
      const Index lim = m_limit[std::size_t(i)];
      Index count = lim;
      if (m_config.scale.kind == ScaleKind::LogN && mask.has_elementwise()) {
        count = 0;
        for (Index j = 0; j < lim; ++j)
          count += (mask.key_valid.size() == 0 || mask.key_valid[j]) &&
                   (mask.allowed.size() == 0 || mask.allowed(i, j));
      }
      m_lambda[std::size_t(i)] =
          static_cast<T>(detail::row_scale(m_config.scale, base, count, qpos0 + i));
    }

    Call c{nullptr,  nullptr,         nullptr,         out.data(), q.outerStride(),
           k.outerStride(), v.outerStride(), out.outerStride(), nq, nk,
           heads,    heads / kv_heads, d,      dv,   &mask,
           mask.has_elementwise(), mask.bias.rows(), partial};
    c.q = q.data();
    const Index br = m_config.query_tile;
    // Decoding (a few query rows per tile, no bias or element masks): one item per block of K/V
    // heads and tile serves the whole query group, so each K/V head is streamed once
    // (tile_group). forward_partial keeps the per-head paths (they store m, ℓ and o).
    const bool few_rows = std::min(br, nq) <= kColumnBlock / 4;
    const bool grouped = m_config.tile_product == TileProduct::Kernel && !c.elementwise &&
                         c.bias_rows == 0 && !c.partial && few_rows;
    // A few query rows (decoding) would leave most lanes of the transposed tile idle: those
    // calls take the row-major path, where Q·Kᵀ is a matrix-vector product. The path is chosen
    // per call (not per tile), so the tile partition never changes a row's bits.
    const bool kernel = m_config.tile_product == TileProduct::Kernel && !few_rows;
    // The kernel path cuts the queries into whole kColumnBlock-column blocks (no half-empty
    // block per tile) and deals them to ceil(n_q / query_tile) tiles as evenly as whole blocks
    // allow (sizes differ by at most one block); with threads, to a multiple of 2·threads tiles
    // (at least 2·threads), which the snake order below shares evenly even along a causal ramp.
    // A block computes the same bits in any tile (its key tiles start at key 0 and end at the
    // block's own last allowed key), so the partition never changes the output. The other paths
    // take query_tile rows per tile.
    const Index nblocks = (nq + kColumnBlock - 1) / kColumnBlock;
    Index tiles = (nq + br - 1) / br;
    if (kernel) {
      const Index t2 = 2 * Index(m_config.threads);
      if (t2 > 2) tiles = (std::max(tiles, t2) + t2 - 1) / t2 * t2;
      tiles = std::min(nblocks, tiles);
    }
    const auto tile_begin = [&](Index t) {
      return kernel ? std::min(nq, t * nblocks / tiles * kColumnBlock) : t * br;
    };
    const Index max_rows = kernel ? (nblocks + tiles - 1) / tiles * kColumnBlock : br;
    if constexpr (kHalf) {
      c.kh = k.data();
      c.vh = v.data();
      if (!grouped) {  // the tile paths read T: K and V widened once per call
        widen(k, m_kvf.k);
        widen(v, m_kvf.v);
        c.k = m_kvf.k.data();
        c.v = m_kvf.v.data();
        c.ldk = k.cols();
        c.ldv = v.cols();
      }
    } else {
      c.k = k.data();
      c.v = v.data();
    }
    // The grouped path reads the K/V heads of a block together, key tile by key tile: one block
    // per part.
    const Index head_blocks = std::min<Index>(kv_heads, m_config.threads);
    const Index items = (grouped ? head_blocks : heads) * tiles;
    const int parts = static_cast<int>(std::min<Index>(m_config.threads, items));
    for (int p = 0; p < parts; ++p)
      reserve(m_ws[std::size_t(p)], dv, max_rows);  // allocation: here only
    const auto item = [&](Index it, int part) {
      Workspace& ws = m_ws[static_cast<std::size_t>(part)];
      // Items are head-major, dealt cyclically to the parts (ThreadPool): each full round of
      // `parts` items is walked forwards and backwards in turn (part p takes items p,
      // 2·parts − 1 − p, 2·parts + p, …), so the parts share the ramp of a causal head evenly.
      // Which part runs an item never changes its bits.
      const Index P = parts, round = it / P;
      if (round % 2 == 1 && (round + 1) * P <= items) it = round * P + (P - 1 - it % P);
      const Index t = it % tiles, r0 = tile_begin(t);
      if (grouped) {
        const Index b = it / tiles;
        tile_group<KT>(c, ws, b * kv_heads / head_blocks, (b + 1) * kv_heads / head_blocks, r0);
        return;
      }
      if (kernel)
        tile_row_kernel(c, ws, it / tiles, r0, tile_begin(t + 1) - r0);
      else
        tile_row(c, ws, it / tiles, r0);
    };
    if (parts <= 1) {
      for (Index it = 0; it < items; ++it) item(it, 0);
      return;
    }
    detail::pool_or_default(m_config.pool).parallel_for(items, parts, item);
  }

  // Scratch for tiles of up to `rows` query rows (and query_tile rows on the row paths).
  void reserve(Workspace& ws, Index dv, Index rows) const {
    const auto br = static_cast<std::size_t>(std::max(padded_query_tile(), rows));
    const auto bc = static_cast<std::size_t>(m_config.key_tile);
    const auto d = static_cast<std::size_t>(m_config.head_dim);
    // Score tile: query_tile × key_tile on the Eigen path; one query block's Sᵀ, or the few rows
    // a decoding tile sends down the row path, with the kernels.
    const std::size_t score = m_config.tile_product == TileProduct::Eigen
                                  ? br * bc
                                  : static_cast<std::size_t>(kColumnBlock) * bc;
    if (ws.s.size() < score) ws.s.resize(score);
    if (ws.acc.size() < br * static_cast<std::size_t>(dv)) ws.acc.resize(br * std::size_t(dv));
    if (ws.qt.size() < br * d) ws.qt.resize(br * d);
    if (ws.m.size() < br) {
      ws.m.resize(br);
      ws.l.resize(br);
      ws.alpha.resize(br);
    }
  }

  // Scratch of tile_group: u = group·rows query rows (λq copies, accumulators, m, ℓ, and their
  // scores against a key tile).
  void reserve_group(Workspace& ws, Index u, Index dv) const {
    const auto uu = static_cast<std::size_t>(u);
    const auto d = static_cast<std::size_t>(m_config.head_dim);
    const auto bc = static_cast<std::size_t>(m_config.key_tile);
    if (ws.s.size() < uu * bc) ws.s.resize(uu * bc);
    if (ws.qt.size() < uu * d) ws.qt.resize(uu * d);
    if (ws.acc.size() < uu * std::size_t(dv)) ws.acc.resize(uu * std::size_t(dv));
    if (ws.m.size() < uu) {
      ws.m.resize(uu);
      ws.l.resize(uu);
      ws.alpha.resize(uu);
    }
  }

  // The query tile [r0, r0 + rows) of every query head of the K/V heads [g0, g1) (K/V head g
  // serves heads g·G … g·G + G − 1): the online softmax over the key tiles with
  // simd/decode.hpp's row kernels, which load each key and value row once for a block of up to
  // kDecodeRows query rows, so K and V are streamed from memory once (a group's other blocks
  // re-read the rows from cache). Key tile outside, then blocks of 16 keys, K/V heads inside:
  // the heads' slices of a cache row share its page, so the pages are walked once, front to
  // back, for all the heads; the scores of all u rows against the key tile are kept, then the
  // online softmax, then the values in the same order. Query row u = ((g − g0)·G + t)·rows + i
  // is head g·G + t, query r0 + i. K/V of type KT: T, or bf16 read directly (c.kh, c.vh). No
  // bias, no element masks (run() sends those to tile_row); per-row key limits as tile_row.
  template <typename KT>
  void tile_group(const Call& c, Workspace& ws, Index g0, Index g1, Index r0) const {
    using Isa = simd::native_isa;
    const KT* kp = kv_data<KT>(c.k, c.kh);
    const KT* vp = kv_data<KT>(c.v, c.vh);
    const T ninf = -std::numeric_limits<T>::infinity();
    const Index rows = std::min(m_config.query_tile, c.nq - r0);
    const Index per_head = c.group * rows, nu = (g1 - g0) * per_head;
    const Index bc = m_config.key_tile;
    const Index d = c.d, dv = c.dv;
    reserve_group(ws, nu, dv);
    T* s = ws.s.data();
    T* qs = ws.qt.data();
    T* acc = ws.acc.data();
    T* m = ws.m.data();
    T* l = ws.l.data();
    const Index* limit = m_limit.data() + r0;
    const T* lambda = m_lambda.data() + r0;

    Index kend = 0;
    for (Index i = 0; i < rows; ++i) kend = std::max(kend, limit[i]);
    for (Index u = 0; u < nu; ++u) {
      const Index h = g0 * c.group + u / rows, i = u % rows;
      const T* qi = c.q + (r0 + i) * c.ldq + h * d;
      // A non-finite q_i scores NaN against every key (as tile_row), so an infinite q_i cannot
      // pass for a masked row.
      const bool finite = finite_row(qi, d);
      for (Index p = 0; p < d; ++p)
        qs[u * d + p] = finite ? qi[p] : std::numeric_limits<T>::quiet_NaN();
      m[u] = ninf;
      l[u] = T(0);
    }
    simd::zero_row<Isa>(acc, static_cast<std::size_t>(nu * dv));

    constexpr auto R = static_cast<Index>(simd::kDecodeRows);
    // Keys in blocks of kb between K/V heads: the heads' slices of a cache row are read back to
    // back, so every page of the cache is read front to back within a few microseconds and the
    // hardware prefetchers follow it (one head's 512-byte slices, rows 4 KiB apart, they do not).
    // kb = 4 (with kDecodePrefetchRows = 8) measured 1.3-1.5x faster than 16 on Zen 3 (GQA
    // 32/8, d = 128, float and bf16 caches): the fewer rows open at once, the closer to one
    // stream; 2 and 8 were slower.
    constexpr Index kb = 4;
    for (Index j0 = 0; j0 < kend; j0 += bc) {
      const Index nc = std::min(bc, kend - j0);
      for (Index jb = 0; jb < nc; jb += kb) {
        const Index nb = std::min(kb, nc - jb);
        for (Index g = g0; g < g1; ++g) {
          const KT* k = kp + (j0 + jb) * c.ldk + g * d;
          for (Index u0 = (g - g0) * per_head; u0 < (g - g0 + 1) * per_head; u0 += R) {
            const Index nr = std::min(R, (g - g0 + 1) * per_head - u0);
            simd::rows_dot_keys<Isa>(std::size_t(nr), qs + u0 * d, std::size_t(d), k,
                                     std::size_t(c.ldk), std::size_t(nb), std::size_t(d),
                                     s + u0 * bc + jb, std::size_t(bc));
          }
        }
      }
      for (Index u = 0; u < nu; ++u) {
        const Index i = u % rows;
        T* srow = s + u * bc;
        const Index valid = std::min(nc, limit[i] - j0);
        if (valid <= 0) {
          simd::zero_row<Isa>(srow, std::size_t(nc));
          continue;
        }
        const T mx = simd::scale_bias_max<Isa>(srow, static_cast<const T*>(nullptr),
                                               std::size_t(valid), lambda[i]);
        // A NaN maximum (NaN score) must win: std::max would keep the old M and hide it.
        const T mnew = mx != mx ? mx : std::max(m[u], mx);
        if (mnew == ninf) {  // nothing allowed so far: this row adds nothing
          for (Index j = 0; j < valid; ++j)
            if (srow[j] != srow[j]) m[u] = l[u] = std::numeric_limits<T>::quiet_NaN();
          simd::zero_row<Isa>(srow, std::size_t(nc));
          continue;
        }
        const T alpha = m[u] == ninf ? T(0) : std::exp(m[u] - mnew);
        const T sum = simd::exp_sum<Isa>(srow, std::size_t(valid), mnew);
        if (valid < nc) simd::zero_row<Isa>(srow + valid, std::size_t(nc - valid));
        l[u] = l[u] * alpha + sum;
        if (alpha != T(1)) simd::scale_row<Isa>(acc + u * dv, std::size_t(dv), alpha);
        m[u] = mnew;
      }
      for (Index jb = 0; jb < nc; jb += kb) {
        const Index nb = std::min(kb, nc - jb);
        for (Index g = g0; g < g1; ++g) {
          const KT* v = vp + (j0 + jb) * c.ldv + g * dv;
          for (Index u0 = (g - g0) * per_head; u0 < (g - g0 + 1) * per_head; u0 += R) {
            const Index nr = std::min(R, (g - g0 + 1) * per_head - u0);
            simd::rows_accumulate_values<Isa>(std::size_t(nr), s + u0 * bc + jb, std::size_t(bc),
                                              v, std::size_t(c.ldv), std::size_t(nb),
                                              std::size_t(dv), acc + u0 * dv, std::size_t(dv));
          }
        }
      }
    }
    for (Index u = 0; u < nu; ++u) {
      const Index h = g0 * c.group + u / rows, i = u % rows;
      T* orow = c.out + (r0 + i) * c.ldo + h * dv;
      if (l[u] == T(0)) {  // no allowed key: exact zeros (ℓ is NaN after a non-finite input)
        simd::zero_row<Isa>(orow, std::size_t(dv));
      } else {
        simd::scale_row<Isa>(acc + u * dv, orow, std::size_t(dv), T(1) / l[u]);
      }
    }
  }

  // One query tile [r0, r0 + rows) of head h: the online softmax over the key tiles.
  void tile_row(const Call& c, Workspace& ws, Index h, Index r0) const {
    using Isa = simd::native_isa;
    const T ninf = -std::numeric_limits<T>::infinity();
    const Index rows = std::min(m_config.query_tile, c.nq - r0);
    const Index bc = m_config.key_tile;
    const Index d = c.d, dv = c.dv;
    const Index kvh = h / c.group;
    const T* q = c.q + r0 * c.ldq + h * d;
    const T* k = c.k + kvh * d;
    const T* v = c.v + kvh * dv;
    T* s = ws.s.data();
    T* acc = ws.acc.data();
    T* m = ws.m.data();
    T* l = ws.l.data();
    const AttentionMask<T>& mask = *c.mask;
    const Index* limit = m_limit.data() + r0;
    const T* lambda = m_lambda.data() + r0;

    // poison[i] = NaN when q_i is not finite, else 0: such a row scores NaN against every key
    // (as in the kernel path), so an infinite q_i cannot pass for a masked row (all −inf).
    T* poison = ws.alpha.data();
    Index kend = 0;
    for (Index i = 0; i < rows; ++i) kend = std::max(kend, limit[i]);
    for (Index i = 0; i < rows; ++i) {
      m[i] = ninf;
      l[i] = T(0);
      poison[i] = finite_row(q + i * c.ldq, d) ? T(0) : std::numeric_limits<T>::quiet_NaN();
    }
    simd::zero_row<Isa>(acc, static_cast<std::size_t>(rows * dv));

    for (Index j0 = 0; j0 < kend; j0 += bc) {
      const Index nc = std::min(bc, kend - j0);
      detail::tile_qk<T>(m_config.tile_product, rows, nc, d, q, c.ldq, k + j0 * c.ldk, c.ldk, s,
                         bc);
      for (Index i = 0; i < rows; ++i) {
        T* srow = s + i * bc;
        const Index valid = std::min(nc, limit[i] - j0);
        if (valid <= 0) {
          simd::zero_row<Isa>(srow, std::size_t(nc));
          continue;
        }
        const T* brow = nullptr;
        if (c.bias_rows > 0)
          brow = mask.bias.data() +
                 (c.bias_rows == c.nq ? r0 + i : h * c.nq + r0 + i) * mask.bias.outerStride() + j0;
        T mx = simd::scale_bias_max<Isa>(srow, brow, std::size_t(valid), lambda[i]);
        if (poison[i] != T(0)) {  // as the kernel path: NaN scores, then the element masks
          std::fill(srow, srow + valid, poison[i]);
          mx = poison[i];
        }
        if (c.elementwise) {
          if (mask.key_valid.size() > 0)
            simd::mask_bool<Isa>(srow, mask.key_valid.data() + j0, std::size_t(valid));
          if (mask.allowed.size() > 0)
            simd::mask_bool<Isa>(srow, mask.allowed.data() + (r0 + i) * mask.allowed.outerStride() + j0, std::size_t(valid));
          mx = simd::row_max<Isa>(srow, std::size_t(valid));
        }
        // A NaN maximum (NaN score) must win: std::max would keep the old M and hide it.
        const T mnew = mx != mx ? mx : std::max(m[i], mx);
        if (mnew == ninf) {  // nothing allowed so far: this row adds nothing
          // Cold path (every score so far −inf or NaN): the vector max may have dropped a NaN
          // score next to −inf ones, so look for it here and poison the row (ℓ = M = NaN).
          for (Index j = 0; j < valid; ++j)
            if (srow[j] != srow[j]) m[i] = l[i] = std::numeric_limits<T>::quiet_NaN();
          simd::zero_row<Isa>(srow, std::size_t(nc));
          continue;
        }
        const T alpha = m[i] == ninf ? T(0) : std::exp(m[i] - mnew);
        const T sum = simd::exp_sum<Isa>(srow, std::size_t(valid), mnew);
        if (valid < nc) simd::zero_row<Isa>(srow + valid, std::size_t(nc - valid));
        l[i] = l[i] * alpha + sum;
        if (alpha != T(1)) simd::scale_row<Isa>(acc + i * dv, std::size_t(dv), alpha);
        m[i] = mnew;
      }
      detail::tile_pv<T>(m_config.tile_product, rows, dv, nc, s, bc, v + j0 * c.ldv, c.ldv, acc,
                         dv);
    }

    if (c.partial)
      return store_partial(c, h, r0, rows, m, l, [&](Index i, Index r) { return acc[i * dv + r]; });
    finish(c, h, r0, rows, acc, l);
  }

  // One query tile with the library's tile kernels, in blocks of kColumnBlock queries (one
  // lane per query) that keep everything they touch in L1: for each key tile and block,
  //   Sᵀ (keys × queries) = K·(λQᵀ),  online softmax down the columns of Sᵀ,
  //   Oᵀ (d_v × queries)  = Vᵀ·Sᵀ + Oᵀ·diag(α)   (the rescale rides in the product's epilogue).
  // Both products run on the GEMM engine (simd/gemm.hpp) with B prepacked: a block of λ_i·Qᵀ
  // (d × nr, packed once) and the probability tile Sᵀ (keys × nr) are each one nr-wide panel, so
  // nothing is packed per product; A (K rows, and Vᵀ as columns of V) is read in
  // place. Key tiles past a block's last allowed key are skipped per block.
  void tile_row_kernel(const Call& c, Workspace& ws, Index h, Index r0, Index rows) const {
    using Isa = simd::native_isa;
    using V = simd::Vec<T, Isa>;
    constexpr Index B = kColumnBlock, L = static_cast<Index>(V::lanes);  // B: whole vectors
    const T ninf = -std::numeric_limits<T>::infinity();
    const Index blocks = (rows + B - 1) / B;
    const Index bc = m_config.key_tile;
    const Index d = c.d, dv = c.dv;
    const Index kvh = h / c.group;
    const T* q = c.q + r0 * c.ldq + h * d;
    const T* k = c.k + kvh * d;
    const T* v = c.v + kvh * dv;
    T* st = ws.s.data();     // Sᵀ of one block: bc × B
    T* qt = ws.qt.data();    // block b at qt + b·d·B: d × B
    T* acc = ws.acc.data();  // Oᵀ of block b at acc + b·dv·B: dv × B
    T* m = ws.m.data();
    T* l = ws.l.data();
    T* alpha = ws.alpha.data();
    const AttentionMask<T>& mask = *c.mask;
    const Index* limit = m_limit.data() + r0;
    const T* lambda = m_lambda.data() + r0;

    // Block b of λQᵀ: column i is λ_i·q_i (the block's rows transposed, then scaled a row of
    // the block at a time), the columns past the tile's rows 0. A non-finite q_i scores NaN
    // against every key, so an infinite q_i cannot pass for a masked row (all scores −inf);
    // keys it may not see are still masked to −inf below. Σ_p q_i[p]·0 is 0 for a finite q_i,
    // NaN otherwise: summed down the columns with the scaling.
    for (Index b = 0; b < blocks; ++b) {
      const Index i0 = b * B, n = std::min(B, rows - i0);
      T* qb = qt + b * d * B;
      simd::transpose<Isa>(std::size_t(n), std::size_t(d), q + i0 * c.ldq, c.ldq, qb, B);
      alignas(64) T lam[B], nonfinite[B];
      for (Index i = 0; i < B; ++i) lam[i] = i < n ? lambda[i0 + i] : T(0);
      typename V::type sum[B / L];
      for (auto& s : sum) s = V::zero();
      for (Index p = 0; p < d; ++p) {
        T* row = qb + p * B;
        for (Index i = n; i < B; ++i) row[i] = T(0);
        for (Index u = 0; u < B / L; ++u) {
          const auto x = V::load(row + u * L);
          sum[u] = V::add(sum[u], V::mul(x, V::zero()));
          V::store(row + u * L, V::mul(V::load(lam + u * L), x));
        }
      }
      for (Index u = 0; u < B / L; ++u) V::store(nonfinite + u * L, sum[u]);
      for (Index i = 0; i < n; ++i)
        if (nonfinite[i] != T(0))
          for (Index p = 0; p < d; ++p) qb[p * B + i] = std::numeric_limits<T>::quiet_NaN();
    }
    for (Index i = 0; i < blocks * B; ++i) {
      m[i] = std::numeric_limits<T>::lowest();
      l[i] = T(0);
    }
    simd::zero_row<Isa>(acc, static_cast<std::size_t>(blocks * B * dv));
    Index kend = 0;
    for (Index i = 0; i < rows; ++i) kend = std::max(kend, limit[i]);

    for (Index j0 = 0; j0 < kend; j0 += bc) {
      // Vᵀ of the key tile, read in place: element (r, j) at v[(j0 + j)·ld_v + r], so one
      // micro-kernel step broadcasts mr consecutive values of one V row (no transposed copy).
      const simd::detail::StridedAOp<T, simd::detail::GemmStride<1>, Index> vt{v + j0 * c.ldv,
                                                                             {}, c.ldv};
      for (Index b = 0; b < blocks; ++b) {
        const Index i0 = b * B, i1 = std::min(rows, i0 + B);
        Index block_end = 0;
        for (Index i = i0; i < i1; ++i) block_end = std::max(block_end, limit[i]);
        const Index nc = std::min(bc, block_end - j0);
        if (nc <= 0) continue;
        // The block of λQᵀ (d × B, B = the engine's nr) is one prepacked panel of B.
        simd::gemm<Isa>(nc, B, d, T(1), simd::GemmRowMajorA<T>{k + j0 * c.ldk, c.ldk},
                        simd::PackedB<T>{qt + b * d * B, d, B}, T(0), st, B);
        if (c.bias_rows > 0) {
          for (Index i = i0; i < i1; ++i) {
            const T* brow =
                mask.bias.data() +
                (c.bias_rows == c.nq ? r0 + i : h * c.nq + r0 + i) * mask.bias.outerStride() + j0;
            for (Index j = 0; j < nc; ++j) st[j * B + i - i0] += brow[j];
          }
        }
        for (Index i = i0; i < i1; ++i)
          for (Index j = std::max<Index>(0, limit[i] - j0); j < nc; ++j) st[j * B + i - i0] = ninf;
        if (c.elementwise) {
          if (mask.key_valid.size() > 0)
            for (Index j = 0; j < nc; ++j)
              if (!mask.key_valid[j0 + j]) simd::mask_tail<Isa>(st + j * B, 0, std::size_t(B));
          if (mask.allowed.size() > 0)
            for (Index i = i0; i < i1; ++i) {
              const bool* a = mask.allowed.data() + (r0 + i) * mask.allowed.outerStride() + j0;
              for (Index j = 0; j < nc; ++j)
                if (!a[j]) st[j * B + i - i0] = ninf;
            }
        }
        simd::online_softmax_columns<Isa>(st, std::size_t(nc), std::size_t(B), B, m + i0, l + i0,
                                          alpha + i0);
        // Oᵀ(r, i) = Σ_j Vᵀ(r, j)·Sᵀ(j, i) + α_i·Oᵀ(r, i)
        simd::detail::gemm_b<Isa>(dv, B, nc, T(1), vt, simd::PackedB<T>{st, nc, B}, T(0),
                                  acc + b * dv * B, B, simd::ScaleOldColumns<T>{alpha + i0},
                                  simd::GemmPart::Full);
      }
    }
    if (c.partial)
      return store_partial(c, h, r0, rows, m, l, [&](Index i, Index r) {
        return acc[(i / B) * dv * B + r * B + i % B];
      });
    // o_i = Oᵀ's column i / ℓ_i: the columns scaled a row of Oᵀ at a time, then transposed into
    // the output rows; a row with no allowed key gets exact zeros (ℓ is NaN after a non-finite
    // input, and so is the row).
    for (Index b = 0; b < blocks; ++b) {
      const Index i0 = b * B, n = std::min(B, rows - i0);
      T* accb = acc + b * dv * B;
      alignas(64) T inv[B];
      for (Index i = 0; i < B; ++i) inv[i] = i < n && l[i0 + i] != T(0) ? T(1) / l[i0 + i] : T(0);
      for (Index r = 0; r < dv; ++r)
        for (Index u = 0; u < B / L; ++u) {
          T* a = accb + r * B + u * L;
          V::store(a, V::mul(V::load(a), V::load(inv + u * L)));
        }
      T* out = c.out + (r0 + i0) * c.ldo + h * dv;
      simd::transpose<Isa>(std::size_t(dv), std::size_t(n), accb, B, out, c.ldo);
      for (Index i = 0; i < n; ++i)
        if (l[i0 + i] == T(0)) simd::zero_row<Isa>(out + i * c.ldo, std::size_t(dv));
    }
  }

  // True when every x[p] is finite (x·0 is 0 for finite x, NaN for ±inf and NaN): O(d) per
  // query row and head, next to O(n_k·d) of scores.
  static bool finite_row(const T* x, Index d) noexcept {
    T z = T(0);
    for (Index p = 0; p < d; ++p) z += x[p] * T(0);
    return z == T(0);
  }

  // forward_partial's end of a query tile of head h: m, ℓ and the accumulator (element r of row
  // i is acc(i, r)) into the partials; a row with ℓ = 0 (no allowed key) gets the identity
  // m = −∞, ℓ = 0, o = 0 (the kernel path starts M at lowest(), not −∞).
  template <class Acc>
  void store_partial(const Call& c, Index h, Index r0, Index rows, const T* m, const T* l,
                     Acc&& acc) const {
    const Index dv = c.dv;
    for (Index i = 0; i < rows; ++i) {
      const Index at = (r0 + i) * c.heads + h;
      T* orow = c.out + (r0 + i) * c.ldo + h * dv;
      if (l[i] == T(0)) {
        c.partial->m[at] = -std::numeric_limits<T>::infinity();
        c.partial->l[at] = T(0);
        for (Index r = 0; r < dv; ++r) orow[r] = T(0);
      } else {
        c.partial->m[at] = m[i];
        c.partial->l[at] = l[i];
        for (Index r = 0; r < dv; ++r) orow[r] = acc(i, r);
      }
    }
  }

  void finish(const Call& c, Index h, Index r0, Index rows, const T* acc, const T* l) const {
    using Isa = simd::native_isa;
    const Index dv = c.dv;
    T* o = c.out + r0 * c.ldo + h * dv;
    for (Index i = 0; i < rows; ++i) {
      T* orow = o + i * c.ldo;
      if (l[i] == T(0)) {  // no allowed key: exact zeros (ℓ is NaN after a non-finite input)
        simd::zero_row<Isa>(orow, std::size_t(dv));
      } else {
        const T inv = T(1) / l[i];
        const T* arow = acc + i * dv;
        for (Index j = 0; j < dv; ++j) orow[j] = arow[j] * inv;
      }
    }
  }

  SoftmaxAttentionConfig m_config;
  std::vector<Workspace> m_ws;
  WidenedKv m_kvf;
  std::vector<Index> m_limit;
  std::vector<std::int32_t> m_cumsum;
  std::vector<T> m_lambda;
};

/// One-shot convenience: SoftmaxAttention<T>(config).forward(q, k, v, out, mask), T = q's
/// scalar (float or double; k, v, out and mask of the same T). Allocates its scratch on every
/// call; keep a SoftmaxAttention object on hot paths. A template, so that a translation unit
/// that includes this header without calling it instantiates no SoftmaxAttention<T> (compile
/// time: the class and its kernels for both types).
template <typename Q>
void softmax_attention(const Eigen::MatrixBase<Q>& q, ConstMatrixRef<typename Q::Scalar> k,
                       ConstMatrixRef<typename Q::Scalar> v, MatrixRef<typename Q::Scalar> out,
                       const SoftmaxAttentionConfig& config,
                       const AttentionMask<typename Q::Scalar>& mask = {}) {
  using T = typename Q::Scalar;
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "softmax_attention: float or double matrices");
  SoftmaxAttention<T>(config).forward(q, k, v, out, mask);
}

XFMR_NAMESPACE_END

#endif  // XFMR_ATTENTION_SOFTMAX_HPP
