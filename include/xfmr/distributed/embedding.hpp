// SPDX-License-Identifier: MIT
// Corpus embedding over MPI: every rank embeds its shard of sentences with SentenceEmbedder and
// rank `root` gathers the vectors in input order (issue 13).
#ifndef XFMR_DISTRIBUTED_EMBEDDING_HPP
#define XFMR_DISTRIBUTED_EMBEDDING_HPP

#include <mpi.h>

#include <exception>
#include <string>
#include <vector>

#include "../error.hpp"
#include "../models/sentence_embedder.hpp"
#include "../types.hpp"
#include "mpi.hpp"

XFMR_NAMESPACE_BEGIN
namespace mpi {

/// Embeds a corpus split over the ranks of comm: rank r passes its own contiguous shard (e.g.
/// texts [shard_range(N, r, P).begin, .end) of a corpus every rank can read), embeds it with
/// embedder.embed(shard, batch) and `root` receives the (N × dim) matrix of all shards in rank
/// order — row i for the i-th text of the corpus — through one MPI_Gatherv (gather_rows); the
/// other ranks return an empty (0 × dim) matrix. Each row is bit for bit what a single process
/// gives (SentenceEmbedder computes every sequence alone: batch, order and thread count do not
/// change its bits). Shards may be empty.
/// Before any work the ranks check (require_same) that they agree on sizeof(T), the model's
/// shape (vocabulary, hidden size, layers, heads, FFN width, activation, positions, token
/// types), the tokenizer's vocabulary size and root; the weights themselves are not compared.
/// Collective. \throws std::invalid_argument on every rank on a disagreement; if embedding fails
///         on some rank (batch < 1, invalid UTF-8, …) that rank throws its own error and the
///         others std::runtime_error naming it; std::runtime_error if MPI fails.
template <typename T>
RowMatrix<T> embed_corpus(MPI_Comm comm, SentenceEmbedder<T>& embedder,
                          const std::vector<std::string>& shard, Index batch = 32, int root = 0) {
  const EncoderConfig& c = embedder.model().config();
  require_same(comm,
               "embed_corpus [sizeof(T), vocab, hidden, layers, heads, ffn, activation, "
               "positions, token types, tokenizer vocab, root]",
               sizeof(T), c.vocab_size, c.hidden_size, c.num_hidden_layers,
               c.num_attention_heads, c.intermediate_size, c.hidden_act,
               c.max_position_embeddings, c.type_vocab_size, embedder.tokenizer().vocab_size(),
               root);
  RowMatrix<T> local;
  std::exception_ptr err;
  try {
    local = embedder.embed(shard, batch);
  } catch (...) {
    err = std::current_exception();
  }
  rethrow_on_any_rank(comm, err, "mpi::embed_corpus");
  return gather_rows<T>(comm, local, root);
}

}  // namespace mpi
XFMR_NAMESPACE_END

#endif  // XFMR_DISTRIBUTED_EMBEDDING_HPP
