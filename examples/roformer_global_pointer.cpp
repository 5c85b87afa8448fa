// SPDX-License-Identifier: MIT
// From token ids to entity spans: a RoFormer checkpoint (HF folder: config.json +
// model.safetensors) feeding a GlobalPointer head (bert4keras layout), decoded into
// (type, start, end) spans — the path a NER user copies.
//
// The checkpoint is the tiny golden RoFormer of tests/golden/roformer (2 layers, hidden 64,
// vocab 512) and the head weights come from its golden.safetensors: both are RANDOM, so the
// spans below are meaningless; only the mechanics are real. With a trained model, replace the
// folder, the head file and the ids (from a WordPiece tokenizer: [CLS] text [SEP]).
//
//   usage: roformer_global_pointer [model_dir [head.safetensors]]
#include <cstdio>
#include <string>
#include <vector>

#include <xfmr/models/roformer.hpp>
#include <xfmr/models/span_pipeline.hpp>

#ifndef XFMR_SOURCE_DIR
#define XFMR_SOURCE_DIR "."
#endif

int main(int argc, char** argv) {
  using xfmr::Index;
  const std::string dir = argc > 1 ? argv[1] : XFMR_SOURCE_DIR "/tests/golden/roformer";
  const std::string head_file = argc > 2 ? argv[2] : dir + "/golden.safetensors";

  try {
    // 1. The encoder: config.json + model.safetensors ("roformer." prefix or none).
    auto model = xfmr::RoFormerModel<float>::load(dir);
    const xfmr::EncoderConfig& c = model.config();
    std::printf("RoFormer: %ld layers, hidden %ld, %ld heads, vocab %ld, rotary_value %s\n",
                long(c.num_hidden_layers), long(c.hidden_size), long(c.num_attention_heads),
                long(c.vocab_size), c.rotary_value ? "on" : "off");

    // 2. The head: a Keras Dense kernel (hidden × types·2·head_size) and its bias.
    const auto weights = xfmr::SafetensorsFile::open(head_file);
    xfmr::GlobalPointerConfig gp_config;
    gp_config.hidden_size = c.hidden_size;
    gp_config.head_size = 8;
    gp_config.types = weights.info("gp.kernel").shape[1] / (2 * gp_config.head_size);
    xfmr::GlobalPointer<float> head(gp_config);
    head.set_weights(weights.matrix<float>("gp.kernel"),
                     weights.vector<float>("gp.bias").transpose());

    xfmr::SpanPipeline<float, xfmr::RoFormerModel<float>, xfmr::GlobalPointer<float>> ner(
        std::move(model), std::move(head));

    // 3. A padded batch: [CLS] = 101 … [SEP] = 102, padding 0 (never read).
    const std::vector<std::vector<std::int64_t>> sentences = {
        {101, 17, 230, 45, 411, 9, 102},
        {101, 300, 301, 302, 303, 304, 305, 306, 307, 102},
        {101, 77, 102},
    };
    xfmr::EncoderInput input;
    const Index n = 10;
    input.ids = xfmr::IdMatrix::Zero(Index(sentences.size()), n);
    input.lengths.resize(Index(sentences.size()));
    for (std::size_t b = 0; b < sentences.size(); ++b) {
      for (std::size_t t = 0; t < sentences[b].size(); ++t)
        input.ids(Index(b), Index(t)) = sentences[b][t];
      input.lengths[Index(b)] = Index(sentences[b].size());
    }

    // 4. Spans with logit > 0, [CLS] and [SEP] excluded (bert4keras decoding).
    const std::vector<xfmr::Span> spans = ner.extract(input, 0.0);
    for (std::size_t b = 0; b < sentences.size(); ++b) {
      std::printf("sentence %zu (%zu tokens):", b, sentences[b].size());
      int shown = 0;
      for (const xfmr::Span& s : spans)
        if (s.sequence == Index(b) && shown < 6) {
          std::printf("  type %ld [%ld, %ld] %.2f", long(s.type), long(s.start), long(s.end),
                      s.score);
          ++shown;
        }
      std::size_t count = 0;
      for (const xfmr::Span& s : spans) count += s.sequence == Index(b);
      std::printf("%s (%zu spans; random weights)\n", count > std::size_t(shown) ? " …" : "",
                  count);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "roformer_global_pointer: %s\n", e.what());
    return 1;
  }
  return 0;
}
