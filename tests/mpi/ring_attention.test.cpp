// SPDX-License-Identifier: MIT
// distributed/ring_attention.hpp under mpirun -np 2 and 4: every rank's rows equal the
// single-process SoftmaxAttention (and the long-double reference) over the whole sequence,
// causal and not, GQA, uneven and empty blocks; bytes and blocks counted; bad input ends in the
// same std::invalid_argument on every rank (never a hang: ctest's TIMEOUT would fail the run).
#include <mpi.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <xfmr/attention/softmax.hpp>
#include <xfmr/distributed/ring_attention.hpp>

#include "mpi/mpi_support.hpp"
#include "reference/attention_partials.hpp"
#include "support/random.hpp"

using Catch::Contains;
using xfmr::AttentionMask;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SoftmaxAttention;
using xfmr::SoftmaxAttentionConfig;
using xfmr::mpi::RingAttention;

namespace {

const MPI_Comm kComm = MPI_COMM_WORLD;

SoftmaxAttentionConfig config(Index d, Index dv, Index br = 16, Index bc = 16) {
  SoftmaxAttentionConfig c;
  c.head_dim = d;
  c.value_dim = dv;
  c.query_tile = br;
  c.key_tile = bc;
  return c;
}

// Block sizes of the ranks (the same on every rank: drawn from the shared generator).
std::vector<Index> block_sizes(std::mt19937_64& rng, int p, Index lo, Index hi) {
  std::uniform_int_distribution<Index> u(lo, hi);
  std::vector<Index> n(static_cast<std::size_t>(p));
  for (auto& x : n) x = u(rng);
  return n;
}

template <typename T>
struct RingCase {
  Index heads, kv_heads, d, dv;
  bool causal;
  std::vector<Index> sizes;  // one per rank
  Index pos0 = 0;
  xfmr::AttentionScale scale{};
  xfmr::mpi::RingLayout layout = xfmr::mpi::RingLayout::Contiguous;
};

// The sequence rows rank r holds (RingLayout): contiguous, or chunks r and 2P − 1 − r.
std::vector<Index> rows_of(const std::vector<Index>& sizes, int r, xfmr::mpi::RingLayout layout) {
  const int p = int(sizes.size());
  std::vector<Index> start(2 * std::size_t(p) + 1, 0), chunk(2 * std::size_t(p));
  for (int t = 0; t < p; ++t) {
    const Index n = sizes[std::size_t(t)];
    if (layout == xfmr::mpi::RingLayout::Contiguous) {
      chunk[std::size_t(t)] = n;  // rank t's block is chunk t; chunks p … 2p − 1 stay empty
    } else {
      chunk[std::size_t(t)] = n - n / 2;
      chunk[2 * std::size_t(p) - 1 - std::size_t(t)] = n / 2;
    }
  }
  for (std::size_t c = 0; c < chunk.size(); ++c) start[c + 1] = start[c] + chunk[c];
  std::vector<Index> rows;
  for (const std::size_t c : {std::size_t(r), 2 * std::size_t(p) - 1 - std::size_t(r)})
    for (Index i = 0; i < chunk[c]; ++i) rows.push_back(start[c] + i);
  return rows;
}

template <typename T>
RowMatrix<T> take_rows(const RowMatrix<T>& x, const std::vector<Index>& rows) {
  RowMatrix<T> y(Index(rows.size()), x.cols());
  for (std::size_t i = 0; i < rows.size(); ++i) y.row(Index(i)) = x.row(rows[i]);
  return y;
}

// Runs the ring on this rank's block and returns max |ring − single| / max |single| over this
// rank's rows (and the same against the long-double reference in *ref_error).
template <typename T>
double run_case(const RingCase<T>& c, std::uint64_t salt, double* ref_error = nullptr,
                RowMatrix<T>* ring_out = nullptr, xfmr::mpi::RingAttentionStats* stats = nullptr) {
  const int r = xfmr::mpi::rank(kComm);
  Index n = 0;
  for (const Index s : c.sizes) n += s;
  const std::vector<Index> my_rows = rows_of(c.sizes, r, c.layout);
  const Index rows = Index(my_rows.size());
  auto rng = xfmr_test::shared_rng(kComm, salt);
  const RowMatrix<T> q = xfmr_test::random_matrix<T>(rng, n, c.heads * c.d);
  const RowMatrix<T> k = xfmr_test::random_matrix<T>(rng, n, c.kv_heads * c.d);
  const RowMatrix<T> v = xfmr_test::random_matrix<T>(rng, n, c.kv_heads * c.dv);
  AttentionMask<T> mask;
  mask.set_causal(c.causal);
  auto cfg = config(c.d, c.dv);
  cfg.scale = c.scale;

  RowMatrix<T> out(rows, c.heads * c.dv);
  RingAttention<T> ring(kComm, cfg, c.layout);
  ring.forward(take_rows(q, my_rows), take_rows(k, my_rows), take_rows(v, my_rows), out, mask,
               c.pos0);
  if (ring_out) *ring_out = out;
  if (stats) *stats = ring.stats();

  RowMatrix<T> full(n, c.heads * c.dv);
  SoftmaxAttention<T>(cfg).forward(q, k, v, full, mask, c.pos0);
  const RowMatrix<T> mine = take_rows(full, my_rows);
  const double scale = std::max<double>(full.cwiseAbs().maxCoeff(), 1e-300);
  if (ref_error) {
    xfmr_ref::AttentionRef ref;
    ref.d = c.d;
    ref.dv = c.dv;
    ref.causal = c.causal;
    const Index p0 = c.pos0;
    const auto sc = c.scale;
    ref.lambda = [p0, sc, d = c.d](long i, long, long) {
      return xfmr::detail::row_scale(sc, xfmr::detail::base_scale(sc, d), 0, p0 + i);
    };
    const xfmr_ref::DMat w = take_rows(xfmr_ref::softmax_attention_ld(ref, q, k, v), my_rows);
    *ref_error = rows == 0 ? 0.0
                           : (out.template cast<double>() - w).cwiseAbs().maxCoeff() /
                                 std::max(w.cwiseAbs().maxCoeff(), 1e-300);
  }
  if (rows == 0) return 0.0;
  return (out - mine).template cast<double>().cwiseAbs().maxCoeff() / scale;
}

}  // namespace

TEMPLATE_TEST_CASE("Ring attention equals single-process SoftmaxAttention",
                   "[mpi][ring_attention]", float, double) {
  using T = TestType;
  const int p = xfmr::mpi::size(kComm);
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-13;
  auto rng = xfmr_test::shared_rng(kComm, 1);
  std::vector<RingCase<T>> cases;
  for (const bool causal : {false, true}) {
    cases.push_back({2, 2, 16, 16, causal, std::vector<Index>(std::size_t(p), 24)});  // even
    cases.push_back({4, 2, 8, 12, causal, block_sizes(rng, p, 1, 40)});               // GQA, uneven
    cases.push_back({3, 1, 5, 7, causal, block_sizes(rng, p, 0, 9)});  // MQA, odd, maybe empty
    auto with_empty = block_sizes(rng, p, 3, 30);
    with_empty[std::size_t(p / 2)] = 0;  // an empty rank in the middle of the ring
    cases.push_back({2, 1, 8, 8, causal, with_empty});
  }
  RingCase<T> logpos{2, 2, 8, 8, true, block_sizes(rng, p, 5, 20), 300,
                     xfmr::AttentionScale::log_position(64.0)};
  cases.push_back(logpos);
  // Zig-zag layout: every case above again with each rank holding chunks r and 2P − 1 − r.
  const std::size_t contiguous = cases.size();
  for (std::size_t i = 0; i < contiguous; ++i) {
    cases.push_back(cases[i]);
    cases.back().layout = xfmr::mpi::RingLayout::ZigZag;
  }
  std::uint64_t salt = 100;
  for (const auto& c : cases) {
    double ref = 0;
    const double err = run_case(c, salt++, &ref);
    INFO("ranks=" << p << " heads=" << c.heads << "/" << c.kv_heads << " d=" << c.d
                  << " dv=" << c.dv << " causal=" << c.causal << " zigzag="
                  << (c.layout == xfmr::mpi::RingLayout::ZigZag) << " rank block="
                  << c.sizes[std::size_t(xfmr::mpi::rank(kComm))]);
    CHECK(err <= tol);
    CHECK(ref <= tol);
  }
}

TEST_CASE("Ring attention: bit-reproducible, bytes and blocks counted", "[mpi][ring_attention]") {
  const int p = xfmr::mpi::size(kComm), r = xfmr::mpi::rank(kComm);
  const Index rows = 10 + 3 * r, heads = 4, kv_heads = 2, d = 8, dv = 6;
  std::vector<Index> sizes(static_cast<std::size_t>(p));
  for (int t = 0; t < p; ++t) sizes[std::size_t(t)] = 10 + 3 * t;
  for (const bool causal : {false, true}) {
    RingCase<float> c{heads, kv_heads, d, dv, causal, sizes};
    RowMatrix<float> a, b;
    xfmr::mpi::RingAttentionStats s;
    run_case(c, 7, nullptr, &a, &s);
    run_case(c, 7, nullptr, &b);
    REQUIRE(a.rows() == rows);
    CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * std::size_t(a.size())) == 0);
    // Sent: every block but the last one to arrive (rank r + 1's), K and V heads, 4 bytes each.
    std::int64_t want = 0;
    for (int t = 0; t < p; ++t)
      if (t != (r + 1) % p) want += sizes[std::size_t(t)] * kv_heads * (d + dv) * 4;
    CHECK(s.bytes_sent == want);
    CHECK(s.steps == p);
    CHECK(s.blocks_computed == (causal ? r + 1 : p));  // causal: only the past and own blocks
    CHECK(s.chunk_pairs_computed == (causal ? r + 1 : p));

    // Zig-zag: the same bytes; every block attended; causal work the same on every rank: the
    // early chunk sees r + 1 chunks, the late one P + (P − r), 2P + 1 products (two diagonal).
    c.layout = xfmr::mpi::RingLayout::ZigZag;
    run_case(c, 7, nullptr, &a, &s);
    CHECK(s.bytes_sent == want);
    CHECK(s.blocks_computed == p);
    CHECK(s.chunk_pairs_computed == (causal ? 2 * p + 1 : 4 * p));
  }
}

TEST_CASE("Ring attention: bad input throws the same message on every rank, no hang",
          "[mpi][ring_attention][errors]") {
  const int p = xfmr::mpi::size(kComm), r = xfmr::mpi::rank(kComm);
  const Index n = 6, d = 4;
  const RowMatrix<float> q = RowMatrix<float>::Ones(n, 2 * d), k = RowMatrix<float>::Ones(n, d);
  RowMatrix<float> out(n, 2 * d);
  RingAttention<float> ring(kComm, config(d, d));
  SECTION("the last rank's out has a wrong shape") {
    RowMatrix<float> bad(r == p - 1 ? n + 1 : n, 2 * d);
    const std::string msg =
        xfmr_test::invalid_argument_message([&] { ring.forward(q, k, k, bad); });
    CHECK_THAT(msg, Contains("xfmr::mpi::RingAttention: expected out to be 6x8 (got 7x8)"));
    if (r != p - 1) CHECK_THAT(msg, Contains("(reported by rank " + std::to_string(p - 1) + ")"));
  }
  SECTION("rank 0 has fewer K rows than Q rows") {
    const RowMatrix<float> kr = r == 0 ? RowMatrix<float>(k.topRows(n - 1)) : k;
    const std::string msg =
        xfmr_test::invalid_argument_message([&] { ring.forward(q, kr, kr, out); });
    CHECK_THAT(msg, Contains("expected q and k to hold the same tokens (got q.rows()=6, "
                             "k.rows()=5 on rank 0)"));
  }
  SECTION("the ranks disagree on the K/V heads") {
    const RowMatrix<float> k2 = RowMatrix<float>::Ones(n, 2 * d);
    const std::string msg = xfmr_test::invalid_argument_message(
        [&] { ring.forward(q, r == 1 ? k2 : k, r == 1 ? k2 : k, out); });
    CHECK_THAT(msg, Contains("xfmr::mpi::require_same: expected every rank to agree on "
                             "RingAttention [heads, kv_heads"));
    CHECK_THAT(msg, Contains("rank 1: [2, 2, 4, 4, 4"));
  }
  SECTION("the ranks disagree on causal") {
    AttentionMask<float> mask;
    mask.set_causal(r % 2 == 0);
    const std::string msg =
        xfmr_test::invalid_argument_message([&] { ring.forward(q, k, k, out, mask); });
    CHECK_THAT(msg, Contains("expected every rank to agree on RingAttention"));
  }
  SECTION("key padding is not supported") {
    AttentionMask<float> mask;
    mask.set_key_length(3);
    const std::string msg =
        xfmr_test::invalid_argument_message([&] { ring.forward(q, k, k, out, mask); });
    CHECK_THAT(msg, Contains("xfmr::mpi::RingAttention: key-length masks are not supported (ring "
                             "attention supports the causal mask only)"));
  }
  SECTION("the log-n scale is refused") {
    auto c = config(d, d);
    c.scale = xfmr::AttentionScale::log_n();
    RingAttention<float> logn(kComm, c);
    const std::string msg =
        xfmr_test::invalid_argument_message([&] { logn.forward(q, k, k, out); });
    CHECK_THAT(msg, Contains("expected a scale that does not count the allowed keys"));
  }
  // Afterwards the communicator is still usable: a good call on every rank works.
  CHECK_NOTHROW(ring.forward(q, k, k, out));
  CHECK(xfmr_test::all_ranks(kComm, out.allFinite()));
}
