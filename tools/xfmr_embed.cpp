// SPDX-License-Identifier: MIT
// xfmr-embed: sentence embeddings of text lines (all-MiniLM-L6-v2 or any sentence-transformers
// BERT folder with mean pooling + Normalize), written as .npy (float32, n × dim) or TSV.
//
//   xfmr-embed [options] [FILE]        (FILE: one text per line; default or "-": stdin)
//     --model DIR        model folder (default: scripts/fetch_model.py's cache, or $XFMR_MODEL_DIR)
//     --output FILE      where to write (default: stdout); FILE ending in .npy selects npy
//     --format npy|tsv   output format (default: tsv, or npy for an --output ending in .npy)
//     --whiten FILE      apply a saved BERT-whitening (io/whitening_format.hpp): n × k output
//     --fit-whiten FILE  fit a BERT-whitening on the input's embeddings (needs >= 2 lines), save
//                        it to FILE and write the whitened embeddings
//     --k K              components kept by --fit-whiten (default: all)
//     --threads N        threads (default 1)
//     --batch B          sequences per forward (default 32)
//     --no-sort          keep input order inside batches (default: sort by token count)
//     --stats            print tokens, seconds and tokens/s of the model run to stderr
// Whitened rows are L2-normalised (cosine-ready). Errors: a message on stderr, exit code 2 for
// bad arguments, 1 for bad input or model files.
#include <chrono>
#include <cstdio>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <xfmr/heads/whitening.hpp>
#include <xfmr/models/sentence_embedder.hpp>

namespace {

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};

long parse_int(const std::string& flag, const std::string& v, long lo) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || x < lo)
    throw Usage(flag + ": expected an integer >= " + std::to_string(lo) + " (got \"" + v + "\")");
  return x;
}

void write_npy(std::ostream& os, const xfmr::RowMatrix<float>& m) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(m.rows()) + ", " + std::to_string(m.cols()) + "), }";
  const std::size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  const auto len = static_cast<std::uint16_t>(header.size());
  os.write("\x93NUMPY\x01\x00", 8);
  const char l[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
  os.write(l, 2);
  os.write(header.data(), static_cast<std::streamsize>(header.size()));
  os.write(reinterpret_cast<const char*>(m.data()),
           static_cast<std::streamsize>(sizeof(float) * std::size_t(m.size())));
}

void write_tsv(std::ostream& os, const xfmr::RowMatrix<float>& m) {
  char buf[32];
  for (xfmr::Index r = 0; r < m.rows(); ++r) {
    for (xfmr::Index c = 0; c < m.cols(); ++c) {
      std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(m(r, c)));
      if (c) os.put('\t');
      os << buf;
    }
    os.put('\n');
  }
}

int run(int argc, char** argv) {
  std::string model = xfmr::default_model_dir(), input = "-", output, format, whiten, fit_whiten;
  long k = 0, threads = 1, batch = 32;
  bool sort = true, stats = false, have_input = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Usage(a + ": expected a value (got the end of the arguments)");
      return argv[++i];
    };
    if (a == "--model") model = value();
    else if (a == "--output" || a == "-o") output = value();
    else if (a == "--format") format = value();
    else if (a == "--whiten") whiten = value();
    else if (a == "--fit-whiten") fit_whiten = value();
    else if (a == "--k") k = parse_int(a, value(), 1);
    else if (a == "--threads") threads = parse_int(a, value(), 1);
    else if (a == "--batch") batch = parse_int(a, value(), 1);
    else if (a == "--no-sort") sort = false;
    else if (a == "--stats") stats = true;
    else if (a == "--help" || a == "-h") {
      std::cout << "usage: xfmr-embed [--model DIR] [--output FILE] [--format npy|tsv] "
                   "[--whiten FILE | --fit-whiten FILE [--k K]] [--threads N] [--batch B] "
                   "[--no-sort] [--stats] [FILE]\n";
      return 0;
    } else if (a.size() > 1 && a[0] == '-' && a != "-") throw Usage("unknown option \"" + a + "\"");
    else if (have_input)
      throw Usage("expected one input FILE (got \"" + input + "\" and \"" + a + "\")");
    else { input = a; have_input = true; }
  }
  if (format.empty())
    format = output.size() >= 4 && output.compare(output.size() - 4, 4, ".npy") == 0 ? "npy"
                                                                                   : "tsv";
  if (format != "npy" && format != "tsv")
    throw Usage("--format: expected npy or tsv (got \"" + format + "\")");
  if (!whiten.empty() && !fit_whiten.empty())
    throw Usage("expected at most one of --whiten and --fit-whiten (got both)");
  if (k != 0 && fit_whiten.empty()) throw Usage("--k: only with --fit-whiten");
  if (format == "npy" && output.empty()) throw Usage("--format npy: expected --output FILE");
  if (!xfmr::model_present(model))
    throw std::runtime_error("no model at " + model +
                             " (expected config.json, model.safetensors, vocab.txt; run "
                             "python3 scripts/fetch_model.py or pass --model DIR)");

  std::ifstream file;
  if (input != "-") {
    file.open(input, std::ios::binary);
    if (!file) throw std::runtime_error("cannot open input file " + input);
  }
  std::istream& in = input == "-" ? std::cin : file;

  auto embedder = xfmr::SentenceEmbedder<float>::load(model);
  embedder.set_threads(static_cast<int>(threads));
  std::optional<xfmr::BertWhitening<float>> w;
  if (!whiten.empty()) {
    w.emplace(xfmr::BertWhitening<float>::load_file(whiten));
    if (w->dim() != embedder.dim())
      throw std::runtime_error("--whiten " + whiten + ": expected a whitening of dimension " +
                               std::to_string(embedder.dim()) + " (got " +
                               std::to_string(w->dim()) + ")");
  }

  std::vector<xfmr::Encoding> enc;
  std::string line;
  long tokens = 0;
  for (long no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    try {
      enc.push_back(embedder.tokenizer().encode(line));
    } catch (const std::exception& e) {
      const std::string where = input == "-" ? std::string("stdin") : input;
      throw std::runtime_error(where + " line " + std::to_string(no) + ": " + e.what());
    }
    tokens += static_cast<long>(enc.back().ids.size());
  }
  const auto t0 = std::chrono::steady_clock::now();
  xfmr::RowMatrix<float> emb = embedder.embed(enc, batch, sort);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (stats)
    std::fprintf(stderr,
                 "xfmr-embed: %zu lines, %ld tokens, %.3f s, %.0f tokens/s (%s, %ld threads, "
                 "batch %ld)\n",
                 enc.size(), tokens, secs, secs > 0 ? double(tokens) / secs : 0.0,
                 sort ? "sorted" : "unsorted", threads, batch);

  if (!fit_whiten.empty()) {
    if (emb.rows() < 2)
      throw std::runtime_error("--fit-whiten: expected at least 2 input lines (got " +
                               std::to_string(emb.rows()) + ")");
    xfmr::WhiteningConfig c;
    c.components = k;
    c.normalize = true;
    w.emplace(embedder.dim(), c);
    w->fit(emb);
    w->save_file(fit_whiten);
  }
  if (w) {
    xfmr::RowMatrix<float> out(emb.rows(), w->components());
    if (emb.rows() > 0) w->transform(emb, out);
    emb.swap(out);
  }

  std::ofstream ofile;
  if (!output.empty()) {
    ofile.open(output, std::ios::binary | std::ios::trunc);
    if (!ofile) throw std::runtime_error("cannot open output file " + output);
  }
  std::ostream& os = output.empty() ? std::cout : ofile;
  if (format == "npy") write_npy(os, emb);
  else write_tsv(os, emb);
  os.flush();
  if (!os)
    throw std::runtime_error("writing " + (output.empty() ? std::string("stdout") : output) +
                             " failed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const Usage& e) {
    std::fprintf(stderr, "xfmr-embed: %s (see --help)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xfmr-embed: %s\n", e.what());
    return 1;
  }
}
