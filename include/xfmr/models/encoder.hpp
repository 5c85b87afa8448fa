// SPDX-License-Identifier: MIT
// Transformer encoder layers (BERT / RoFormer, post-LN or pre-LN) and the encoder stack, over a
// packed batch of variable-length sequences (SPEC §15.1).
#ifndef XFMR_MODELS_ENCODER_HPP
#define XFMR_MODELS_ENCODER_HPP

#include <algorithm>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "../detail/eigen.hpp"

#include "../attention/mask.hpp"
#include "../attention/softmax.hpp"
#include "../config.hpp"
#include "../error.hpp"
#include "../layers/activation.hpp"
#include "../layers/dense.hpp"
#include "../layers/norm.hpp"
#include "../position/rope.hpp"
#include "../simd/gemm_pack.hpp"
#include "../simd/isa.hpp"
#include "../thread_pool.hpp"
#include "../types.hpp"
#include "config.hpp"

XFMR_NAMESPACE_BEGIN

/// The weights of one encoder layer in HF's layout: matrices [out × in] as nn.Linear stores them,
/// vectors as columns. Post-LN (BERT/RoFormer): attention_norm is `attention.output.LayerNorm`,
/// output_norm is `output.LayerNorm`. Pre-LN (EncoderConfig::pre_layer_norm): attention_norm is
/// applied before the attention (`attention.LayerNorm`), output_norm before the FFN
/// (`intermediate.LayerNorm`), as HF roberta-prelayernorm names them.
template <typename T>
struct EncoderLayerWeights {
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;
  RowMatrix<T> query, key, value;  ///< [H × H] each
  Vector query_bias, key_bias, value_bias;
  RowMatrix<T> attention_output;  ///< [H × H]
  Vector attention_output_bias;
  Vector attention_norm_weight, attention_norm_bias;  ///< H each
  RowMatrix<T> intermediate;  ///< [I × H]
  Vector intermediate_bias;
  RowMatrix<T> output;  ///< [H × I]
  Vector output_bias;
  Vector output_norm_weight, output_norm_bias;  ///< H each
};

/// A packed batch: the valid tokens of every sequence, one after the other (no padding rows).
/// Sequence s occupies rows [offsets[s], offsets[s + 1]) of the packed (tokens × H) matrix;
/// offsets has batch + 1 non-decreasing entries from 0 (a sequence may be empty). segments:
/// empty (every token sees every token of its sequence), or one UniLM segment id per packed
/// token (0 source, 1 target; AttentionMask::segment_ids): a source token sees the source, the
/// t-th target token sees the source and targets 1…t.
struct PackedBatch {
  std::vector<Index> offsets{0};
  std::vector<std::int32_t> segments;

  Index sequences() const noexcept { return static_cast<Index>(offsets.size()) - 1; }
  Index tokens() const noexcept { return offsets.back(); }
};

/// Scratch of an encoder forward pass, shared by the layers of one Encoder: grown to the largest
/// token count seen, never shrunk, so a warm encoder does not allocate (except the UniLM mask's
/// per-sequence copy of its segment ids). It also says how a layer runs in parallel: `threads`
/// parts per step on `pool` (null: default_thread_pool()), with one attention object and mask
/// per part.
template <typename T>
struct EncoderWorkspace {
  /// head_dim: the layers' head size d (the attention objects'); threads >= 1 parts per
  /// parallel step, run on pool (null: the default pool; unused when threads == 1).
  /// \throws std::invalid_argument if threads < 1.
  explicit EncoderWorkspace(Index head_dim, int threads = 1, ThreadPool* pool = nullptr)
      : threads(checked_threads(threads)), pool(pool) {
    masks.resize(static_cast<std::size_t>(threads));
    attention.assign(static_cast<std::size_t>(threads),
                     SoftmaxAttention<T>(SoftmaxAttentionConfig{head_dim}));
  }

  RowMatrix<T> qkv;     ///< tokens × 3H: [q | k | v]
  RowMatrix<T> ctx;     ///< tokens × H: attention output
  RowMatrix<T> inner;   ///< tokens × I: FFN hidden
  RowMatrix<T> normed;  ///< tokens × H: pre-LN input of a sublayer
  int threads;          ///< parts per parallel step (>= 1)
  ThreadPool* pool;     ///< where they run (null: default_thread_pool())
  std::vector<AttentionMask<T>> masks;          ///< one per part
  std::vector<SoftmaxAttention<T>> attention;   ///< one per part, single-threaded each
  std::vector<Index> mask_sequence;             ///< the sequence each part's mask was set for

  /// Grows the buffers to `tokens` rows.
  void reserve(Index tokens, Index hidden, Index inner_size, bool pre_ln) {
    grow(qkv, tokens, 3 * hidden);
    grow(ctx, tokens, hidden);
    grow(inner, tokens, inner_size);
    if (pre_ln) grow(normed, tokens, hidden);
  }

 private:
  static void grow(RowMatrix<T>& m, Index rows, Index cols) {
    if (m.rows() < rows || m.cols() != cols) m.resize(std::max(rows, m.rows()), cols);
  }
  static int checked_threads(int threads) {
    detail::require(threads >= 1, "Encoder", "expected threads >= 1 (got ", threads, ")");
    return threads;
  }
};

/// One Transformer encoder layer (SPEC §15.1) on the packed tokens x (tokens × H), in place:
///
///   post-LN (BERT, RoFormer):                pre-LN (EncoderConfig::pre_layer_norm):
///     [q|k|v] = x·W_qkvᵀ + b_qkv                [q|k|v] = LN₁(x)·W_qkvᵀ + b_qkv
///     RoFormer: q, k (and v if rotary_value) ← RoPE per head, positions 0… per sequence
///     a = softmax(q·kᵀ/√d + mask)·v per head and per sequence (SoftmaxAttention)
///     x = LN₁(x + a·W_oᵀ + b_o)                 x = x + a·W_oᵀ + b_o
///     x = LN₂(x + act(x·W_1ᵀ + b_1)·W_2ᵀ + b_2) x = x + act(LN₂(x)·W_1ᵀ + b_1)·W_2ᵀ + b_2
///
/// The three projections are one fused Dense [3H × H]; the residual adds ride in the output
/// projections' epilogue (Dense::forward_add), the activation in the first FFN projection's.
/// Attention runs per sequence on its own rows, so padding costs nothing and no sequence sees
/// another; the mask is the UniLM segment mask when the batch carries segment ids.
/// forward() is const: the layer keeps no scratch (EncoderWorkspace) and may be shared.
///
/// Threads (ws.threads parts on ws.pool, ThreadPool): a layer is three parallel steps,
///   1. blocks of rows: [LN₁ (pre-LN)], the fused QKV projection;
///   2. (sequence, head) items: RoPE of the head's q, k (v), then its attention;
///   3. blocks of rows: output projection + residual, LN₁ (post-LN), [LN₂ (pre-LN)], FFN in,
///      FFN out + residual, LN₂ (post-LN) — all row-local, so a block stays in cache;
/// row blocks of about GemmShape::mc_max rows, mr-aligned, their count a multiple of the parts.
/// Every output element is computed by the same operations in the same order whatever block or
/// part holds it, so the result is the same bits for any thread count, and one sequence on two
/// threads is split as well as many.
template <typename T, class Isa = simd::native_isa>
class EncoderLayer {
 public:
  /// rope: RoFormer's rotation, shared by the layers of a stack (null: the layer builds its own
  /// from rope_config(config)); ignored for BERT.
  /// \throws std::invalid_argument if config fails validate(), a weight has the wrong shape
  ///         (naming it, expected and got), or rope's head_dim is not the config's.
  EncoderLayer(const EncoderConfig& config, const EncoderLayerWeights<T>& w,
               std::shared_ptr<const Rope<T>> rope = nullptr)
      : m_config(checked(config, w)),
        m_qkv(Dense<T, Isa>::concat({w.query, w.key, w.value},
                                    {w.query_bias, w.key_bias, w.value_bias},
                                    ActivationKind::Identity, config.weight_storage,
                                    config.bf16_kernel)),
        m_out(w.attention_output, w.attention_output_bias, ActivationKind::Identity,
              config.weight_storage, config.bf16_kernel),
        m_inner(w.intermediate, w.intermediate_bias, config.hidden_act, config.weight_storage,
                config.bf16_kernel),
        m_output(w.output, w.output_bias, ActivationKind::Identity, config.weight_storage,
                 config.bf16_kernel),
        m_norm1(norm(config, w.attention_norm_weight, w.attention_norm_bias)),
        m_norm2(norm(config, w.output_norm_weight, w.output_norm_bias)),
        m_rope(config.family == EncoderFamily::RoFormer ? std::move(rope) : nullptr) {
    if (config.family == EncoderFamily::RoFormer && !m_rope)
      m_rope = std::make_shared<const Rope<T>>(rope_config(config));
    if (m_rope)
      detail::require(m_rope->config().head_dim == config.head_dim(), kWhere,
                      "expected a rope with head_dim=", config.head_dim(), " (got ",
                      m_rope->config().head_dim, ")");
  }

  const EncoderConfig& config() const noexcept { return m_config; }

  /// RoFormer's rotation: head_dim d, rope_layout, rope_base; positions up to
  /// max(max_position_embeddings, 512) tabulated (later ones computed).
  static RopeConfig rope_config(const EncoderConfig& c) {
    RopeConfig r;
    r.head_dim = c.head_dim();
    r.base = c.rope_base;
    r.layout = c.rope_layout;
    r.cached_positions = std::max<Index>(c.max_position_embeddings, 512);
    return r;
  }

  /// x: the packed tokens (batch.tokens() × H), updated in place. \throws std::invalid_argument
  /// if x's shape does not match the batch or the hidden size, or the batch is malformed.
  void forward(MatrixRef<T> x, const PackedBatch& batch, EncoderWorkspace<T>& ws) const {
    check_batch(x, batch);
    const Index n = x.rows(), H = m_config.hidden_size;
    if (n == 0) return;
    const bool pre = m_config.pre_layer_norm;
    ws.reserve(n, H, m_config.intermediate_size, pre);
    detail::require(static_cast<Index>(ws.attention.size()) >= ws.threads &&
                        static_cast<Index>(ws.masks.size()) >= ws.threads && ws.threads >= 1,
                    kWhere, "expected a workspace with one attention object and mask per part (",
                    ws.threads, ") (got ", ws.attention.size(), " and ", ws.masks.size(), ")");

    rows(n, ws, [&](Index r0, Index m) {  // step 1
      auto xr = x.middleRows(r0, m);
      auto qkv = ws.qkv.middleRows(r0, m);
      if (pre) {
        auto normed = ws.normed.middleRows(r0, m);
        m_norm1.apply(xr, normed);
        m_qkv.forward(normed, qkv);
      } else {
        m_qkv.forward(xr, qkv);
      }
    });
    attend(batch, ws);  // step 2
    rows(n, ws, [&](Index r0, Index m) {  // step 3
      auto xr = x.middleRows(r0, m);
      auto inner = ws.inner.middleRows(r0, m);
      m_out.forward_add(ws.ctx.middleRows(r0, m), xr, xr);
      if (pre) {
        auto normed = ws.normed.middleRows(r0, m);
        m_norm2.apply(xr, normed);
        m_inner.forward(normed, inner);
      } else {
        m_norm1.apply(xr);
        m_inner.forward(xr, inner);
      }
      m_output.forward_add(inner, xr, xr);
      if (!pre) m_norm2.apply(xr);
    });
  }

  /// Multiply-adds ×2 of one forward over `tokens` packed tokens whose sequences have squared
  /// lengths summing to `sum_len2`: the four GEMMs 2·tokens·(4H² + 2HI) plus attention
  /// 4·Σ L²·H (QKᵀ and PV). For benchmark counters (DESIGN §5).
  double flops(double tokens, double sum_len2) const noexcept {
    const double H = double(m_config.hidden_size), I = double(m_config.intermediate_size);
    return 2 * tokens * (4 * H * H + 2 * H * I) + 4 * sum_len2 * H;
  }

 private:
  static constexpr const char* kWhere = "EncoderLayer";
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  static const EncoderConfig& checked(const EncoderConfig& c, const EncoderLayerWeights<T>& w) {
    c.validate();
    const Index H = c.hidden_size, I = c.intermediate_size;
    const auto mat = [&](const RowMatrix<T>& m, Index r, Index k, const char* name) {
      detail::require(m.rows() == r && m.cols() == k, kWhere, "expected ", name, " of ", r, "x", k,
                      " (got ", m.rows(), "x", m.cols(), ")");
    };
    const auto vec = [&](const Vector& v, Index size, const char* name) {
      detail::require(v.size() == size, kWhere, "expected ", name, " of ", size, " values (got ",
                      v.size(), ")");
    };
    mat(w.query, H, H, "query");
    mat(w.key, H, H, "key");
    mat(w.value, H, H, "value");
    mat(w.attention_output, H, H, "attention_output");
    mat(w.intermediate, I, H, "intermediate");
    mat(w.output, H, I, "output");
    vec(w.query_bias, H, "query_bias");
    vec(w.key_bias, H, "key_bias");
    vec(w.value_bias, H, "value_bias");
    vec(w.attention_output_bias, H, "attention_output_bias");
    vec(w.intermediate_bias, I, "intermediate_bias");
    vec(w.output_bias, H, "output_bias");
    vec(w.attention_norm_weight, H, "attention_norm_weight");
    vec(w.attention_norm_bias, H, "attention_norm_bias");
    vec(w.output_norm_weight, H, "output_norm_weight");
    vec(w.output_norm_bias, H, "output_norm_bias");
    return c;
  }

  static LayerNorm<T, Isa> norm(const EncoderConfig& c, const Vector& gamma, const Vector& beta) {
    LayerNorm<T, Isa> ln(LayerNormConfig{c.hidden_size, c.layer_norm_eps, true, true});
    ln.gamma() = gamma.transpose();
    ln.beta() = beta.transpose();
    return ln;
  }

  void check_batch(const MatrixRef<T>& x, const PackedBatch& batch) const {
    detail::require(!batch.offsets.empty() && batch.offsets.front() == 0, kWhere,
                    "expected batch.offsets to start with 0 (got ",
                    batch.offsets.empty() ? std::string("no offsets")
                                          : std::to_string(batch.offsets.front()),
                    ")");
    for (std::size_t s = 1; s < batch.offsets.size(); ++s)
      detail::require(batch.offsets[s] >= batch.offsets[s - 1], kWhere,
                      "expected non-decreasing batch.offsets (got ", batch.offsets[s],
                      " after ", batch.offsets[s - 1], " at index ", s, ")");
    detail::require(x.rows() == batch.tokens() && x.cols() == m_config.hidden_size, kWhere,
                    "expected x of ", batch.tokens(), "x", m_config.hidden_size,
                    " (packed tokens x hidden_size) (got ", x.rows(), "x", x.cols(), ")");
    detail::require(batch.segments.empty() ||
                        static_cast<Index>(batch.segments.size()) == batch.tokens(),
                    kWhere, "expected batch.segments empty or one per token (", batch.tokens(),
                    ") (got ", batch.segments.size(), ")");
  }

  // f(r0, m) on row blocks [r0, r0 + m) of the n packed rows, as ws.threads parts.
  template <class F>
  static void rows(Index n, EncoderWorkspace<T>& ws, const F& f) {
    if (ws.threads <= 1) {
      f(0, n);
      return;
    }
    using S = simd::GemmShape<T, Isa>;
    const Index size = detail::balanced_block(n, ws.threads, S::mc_max, S::mr);
    detail::pool_or_default(ws.pool).parallel_for((n + size - 1) / size, ws.threads, [&](Index b) {
      f(b * size, std::min(size, n - b * size));
    });
  }

  // ctx = attention(q, k, v) per sequence and head, after RoPE on the head's q and k (and v):
  // items (s, h) sequence-major, so with the heads a multiple of the parts every part gets an
  // equal share of every sequence.
  void attend(const PackedBatch& batch, EncoderWorkspace<T>& ws) const {
    const Index H = m_config.hidden_size, d = m_config.head_dim();
    const Index heads = m_config.num_attention_heads;
    detail::require(ws.attention[0].config().head_dim == d, kWhere,
                    "expected a workspace for head_dim=", d, " (got ",
                    ws.attention[0].config().head_dim, ")");
    ws.mask_sequence.assign(static_cast<std::size_t>(ws.threads), -1);
    for (auto& mask : ws.masks) mask.segment_ids.resize(0);
    const auto item = [&](Index it, int part) {
      const Index s = it / heads, h = it % heads;
      const Index r0 = batch.offsets[std::size_t(s)];
      const Index len = batch.offsets[std::size_t(s) + 1] - r0;
      if (len == 0) return;
      auto rows = ws.qkv.middleRows(r0, len);
      auto q = rows.middleCols(h * d, d);
      auto k = rows.middleCols(H + h * d, d);
      auto v = rows.middleCols(2 * H + h * d, d);
      if (m_rope) {
        m_rope->apply(q);
        m_rope->apply(k);
        if (m_config.rotary_value) m_rope->apply(v);
      }
      AttentionMask<T>& mask = ws.masks[std::size_t(part)];
      if (!batch.segments.empty() && ws.mask_sequence[std::size_t(part)] != s) {
        mask.set_segment_ids(Eigen::Map<const Eigen::Matrix<std::int32_t, Eigen::Dynamic, 1>>(
            batch.segments.data() + r0, len));
        ws.mask_sequence[std::size_t(part)] = s;
      }
      ws.attention[std::size_t(part)].forward(q, k, v, ws.ctx.middleRows(r0, len).middleCols(h * d, d),
                                              mask);
    };
    const Index items = batch.sequences() * heads;
    if (ws.threads <= 1) {
      for (Index it = 0; it < items; ++it) item(it, 0);
      return;
    }
    detail::pool_or_default(ws.pool).parallel_for(items, ws.threads, item);
  }

  EncoderConfig m_config;
  Dense<T, Isa> m_qkv, m_out, m_inner, m_output;
  LayerNorm<T, Isa> m_norm1, m_norm2;
  std::shared_ptr<const Rope<T>> m_rope;
};

/// The encoder stack: num_hidden_layers EncoderLayers on the packed tokens, plus (pre-LN only)
/// the final LayerNorm. Owns the scratch (one EncoderWorkspace), grown on demand: after the first
/// call at the largest token count, forward() does not allocate (except the UniLM path's
/// per-sequence copy of the segment ids into a mask). Threads: set_threads (each layer split as
/// EncoderLayer says, on a ThreadPool). Not thread-safe itself (scratch): concurrent callers
/// need one Encoder (one model object) each.
template <typename T, class Isa = simd::native_isa>
class Encoder {
 public:
  using Vector = Eigen::Matrix<T, Eigen::Dynamic, 1>;

  /// layers: num_hidden_layers weight sets; final_norm_weight / _bias: the pre-LN model's final
  /// LayerNorm (H values each; must be empty for post-LN).
  /// \throws std::invalid_argument on a layer count or weight shape mismatch.
  Encoder(const EncoderConfig& config, const std::vector<EncoderLayerWeights<T>>& layers,
          const Vector& final_norm_weight = Vector(), const Vector& final_norm_bias = Vector())
      : m_config(validated(config)),
        m_final(LayerNormConfig{config.hidden_size, config.layer_norm_eps, true, true}),
        m_ws(config.head_dim()) {
    detail::require(static_cast<Index>(layers.size()) == config.num_hidden_layers, "Encoder",
                    "expected num_hidden_layers=", config.num_hidden_layers,
                    " layer weight sets (got ", layers.size(), ")");
    const Index want = config.pre_layer_norm ? config.hidden_size : 0;
    detail::require(final_norm_weight.size() == want && final_norm_bias.size() == want,
                    "Encoder", "expected a final LayerNorm of ", want,
                    " values (pre-LN: hidden_size, post-LN: none) (got ", final_norm_weight.size(),
                    " and ", final_norm_bias.size(), ")");
    if (config.pre_layer_norm) {
      m_final.gamma() = final_norm_weight.transpose();
      m_final.beta() = final_norm_bias.transpose();
    }
    std::shared_ptr<const Rope<T>> rope;  // one table for every layer
    if (config.family == EncoderFamily::RoFormer)
      rope = std::make_shared<const Rope<T>>(EncoderLayer<T, Isa>::rope_config(config));
    m_layers.reserve(layers.size());
    for (const auto& w : layers) m_layers.emplace_back(config, w, rope);
  }

  const EncoderConfig& config() const noexcept { return m_config; }
  const std::vector<EncoderLayer<T, Isa>>& layers() const noexcept { return m_layers; }

  /// Threads per forward() (>= 1, default 1): every layer's row blocks and (sequence, head)
  /// attention items are cut into `threads` parts (EncoderLayer) that run on `pool` (null:
  /// default_thread_pool(), created on first use). The result is the same bits for any thread
  /// count and pool. Drops the grown scratch (the next forward() allocates it again).
  /// \throws std::invalid_argument if threads < 1.
  void set_threads(int threads, ThreadPool* pool = nullptr) {
    m_ws = EncoderWorkspace<T>(m_config.head_dim(), threads, pool);
  }
  int threads() const noexcept { return m_ws.threads; }
  /// The pool set_threads was given (null: the default pool).
  ThreadPool* pool() const noexcept { return m_ws.pool; }

  /// x: packed tokens (batch.tokens() × H), in place: every layer, then the final LayerNorm
  /// (pre-LN). Rows of different sequences never interact.
  /// \throws std::invalid_argument as EncoderLayer::forward.
  void forward(MatrixRef<T> x, const PackedBatch& batch) {
    for (const auto& layer : m_layers) layer.forward(x, batch, m_ws);
    if (m_config.pre_layer_norm && x.rows() > 0) m_final.apply(x);
  }

  /// FLOPs of forward() on `batch` (EncoderLayer::flops summed over the layers).
  double flops(const PackedBatch& batch) const noexcept {
    double tokens = 0, sum2 = 0;
    for (Index s = 0; s < batch.sequences(); ++s) {
      const double len = double(batch.offsets[std::size_t(s) + 1] - batch.offsets[std::size_t(s)]);
      tokens += len;
      sum2 += len * len;
    }
    double f = 0;
    for (const auto& l : m_layers) f += l.flops(tokens, sum2);
    return f;
  }

 private:
  static const EncoderConfig& validated(const EncoderConfig& c) {
    c.validate();
    return c;
  }

  EncoderConfig m_config;
  LayerNorm<T, Isa> m_final;
  EncoderWorkspace<T> m_ws;
  std::vector<EncoderLayer<T, Isa>> m_layers;
};

XFMR_NAMESPACE_END

#endif  // XFMR_MODELS_ENCODER_HPP
