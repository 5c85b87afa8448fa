// SPDX-License-Identifier: MIT
// distributed/embedding.hpp: a corpus embedded in shards over the ranks and gathered on root
// equals the single-process embedding bit for bit (the tiny golden BERT always; all-MiniLM-L6-v2
// on the golden sentences when scripts/fetch_model.py has cached it); disagreeing ranks and a
// failing shard end in errors on every rank.
#include <mpi.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <xfmr/distributed/embedding.hpp>

#include "mpi/mpi_support.hpp"

#ifndef XFMR_TEST_GOLDEN_DIR
#define XFMR_TEST_GOLDEN_DIR "tests/golden"
#endif

using Catch::Contains;
using xfmr::Index;
using xfmr::RowMatrix;
using xfmr::SentenceEmbedder;

namespace {

const MPI_Comm kComm = MPI_COMM_WORLD;
const std::string kGolden = XFMR_TEST_GOLDEN_DIR;

// The tiny random BERT of tests/golden behind the 31-token test vocabulary (as
// tests/models/minilm.test.cpp).
SentenceEmbedder<float> tiny() {
  std::ifstream f(kGolden + "/tokenizer_test_vocab.txt");
  std::vector<std::string> vocab;
  std::string line;
  while (std::getline(f, line)) vocab.push_back(line);
  REQUIRE(vocab.size() == 31);
  return SentenceEmbedder<float>(xfmr::WordPieceTokenizer(vocab, {}),
                                 xfmr::BertModel<float>::load(kGolden + "/bert_gelu"));
}

std::vector<std::string> tiny_corpus() {
  const std::vector<std::string> words = {"hello", "world", "the", "naive", "cafe", "x", "xx",
                                          "unaffable", "don't", "zzz", ",", "!", "中文"};
  std::vector<std::string> texts;
  for (std::size_t i = 0; i < 41; ++i) {  // lengths 1 … 19 words, a prime count of texts
    std::string t;
    for (std::size_t w = 0; w <= (i * 7) % 19; ++w)
      t += (w ? " " : "") + words[(i * 5 + w * 3) % words.size()];
    texts.push_back(t);
  }
  return texts;
}

std::vector<std::string> slice(const std::vector<std::string>& all, xfmr::mpi::Range r) {
  return {all.begin() + r.begin, all.begin() + r.end};
}

}  // namespace

TEST_CASE("embed_corpus over shards equals the single-process embedding bit for bit",
          "[mpi][embedding]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  auto e = tiny();
  const std::vector<std::string> corpus = tiny_corpus();
  const RowMatrix<float> single = e.embed(corpus, 8);
  for (const int root : {0, size - 1}) {
    // Even shards, then uneven ones with an empty shard on rank 1 (its texts go to rank 0).
    for (const bool uneven : {false, true}) {
      xfmr::mpi::Range r = xfmr::mpi::shard_range(Index(corpus.size()), rank, size);
      if (uneven && rank == 0) r.end = xfmr::mpi::shard_range(Index(corpus.size()), 1, size).end;
      if (uneven && rank == 1) r.begin = r.end;
      const RowMatrix<float> got = xfmr::mpi::embed_corpus(kComm, e, slice(corpus, r), 5, root);
      INFO("root " << root << " uneven " << uneven);
      if (rank == root) {
        REQUIRE(got.rows() == single.rows());
        CHECK(got == single);
      } else {
        CHECK(got.rows() == 0);
        CHECK(got.cols() == e.dim());
      }
    }
  }
  // The comparison can fail: different texts give different vectors.
  CHECK((single.row(0) - single.row(1)).cwiseAbs().maxCoeff() > 1e-3f);
}

TEST_CASE("embed_corpus: all-MiniLM-L6-v2 on the golden sentences, bit for bit",
          "[mpi][embedding][minilm]") {
  const int rank = xfmr::mpi::rank(kComm), size = xfmr::mpi::size(kComm);
  std::string dir = xfmr::default_model_dir();
  if (const char* d = std::getenv("XFMR_TEST_MODEL_DIR")) dir = d;
  // Every rank decides the same (a rank that skipped would leave the others waiting).
  if (!xfmr_test::all_ranks(kComm, xfmr::model_present(dir))) {
    if (rank == 0) WARN("SKIPPED: model not fetched on every rank (run scripts/fetch_model.py)");
    return;
  }
  std::ifstream jf(kGolden + "/minilm_sample.json");
  REQUIRE(jf);
  auto texts = nlohmann::json::parse(jf).at("sentences").get<std::vector<std::string>>();
  texts.resize(24);  // enough to give every rank several sentences; 4 ranks share 2 cores
  auto e = SentenceEmbedder<float>::load(dir);
  const RowMatrix<float> got = xfmr::mpi::embed_corpus(
      kComm, e, slice(texts, xfmr::mpi::shard_range(Index(texts.size()), rank, size)), 4);
  if (rank == 0) {
    const RowMatrix<float> single = e.embed(texts, 32);
    REQUIRE(got.rows() == 24);
    CHECK(got == single);
  }
}

TEST_CASE("embed_corpus: disagreeing ranks and a failing shard throw on every rank",
          "[mpi][embedding][errors]") {
  const int rank = xfmr::mpi::rank(kComm);
  auto e = tiny();
  const std::vector<std::string> texts = {"hello world", "the cafe"};
  SECTION("another root on rank 1") {
    const std::string msg = xfmr_test::invalid_argument_message(
        [&] { xfmr::mpi::embed_corpus(kComm, e, texts, 4, rank == 1 ? 1 : 0); });
    CHECK_THAT(msg, Contains("xfmr::mpi::require_same: expected every rank to agree on "
                             "embed_corpus [sizeof(T)"));
    CHECK_THAT(msg, Contains("rank 0: [4, 512, 64, 2, 4, 128, 2, 64, 2, 31, 0]; rank 1: [4, 512, "
                             "64, 2, 4, 128, 2, 64, 2, 31, 1]"));
  }
  SECTION("batch 0 on rank 0") {
    if (rank == 0) {
      CHECK(xfmr_test::invalid_argument_message([&] {
              xfmr::mpi::embed_corpus(kComm, e, texts, 0);
            }) == "xfmr::SentenceEmbedder: expected batch >= 1 (got 0)");
    } else {
      CHECK(xfmr_test::message_of<std::runtime_error>([&] {
              xfmr::mpi::embed_corpus(kComm, e, texts, 4);
            }) == "xfmr::mpi::embed_corpus: expected every rank to succeed (got an error on "
                  "rank(s) 0; see their messages)");
    }
  }
  CHECK(xfmr_test::all_ranks(kComm, true));
}
