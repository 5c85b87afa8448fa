// SPDX-License-Identifier: MIT
// config.json reading (EncoderConfig) and HF checkpoint name mapping (read_encoder_weights,
// BertModel::load, RoFormerModel::load): prefixes, ignored buffers, every missing, unused and
// mis-shaped tensor in one message, BF16 weights, unsupported options.
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include <xfmr/models/bert.hpp>
#include <xfmr/models/roformer.hpp>

#include "support/golden.hpp"
#include "support/safetensors_writer.hpp"
#include "support/throws.hpp"

using namespace xfmr;
using xfmr_test::golden_dir;
using xfmr_test::SafetensorsWriter;

#define XFMR_REQUIRE_FORMAT(expr, text)                \
  do {                                                 \
    REQUIRE_THROWS_AS(expr, xfmr::format_error);       \
    REQUIRE_THROWS_WITH(expr, Catch::Contains(text));  \
  } while (false)

namespace {

const char* kMiniLmConfig = R"({
  "_name_or_path": "nreimers/MiniLM-L6-H384-uncased",
  "architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
  "gradient_checkpointing": false, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
  "hidden_size": 384, "initializer_range": 0.02, "intermediate_size": 1536,
  "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
  "num_attention_heads": 12, "num_hidden_layers": 6, "pad_token_id": 0,
  "position_embedding_type": "absolute", "transformers_version": "4.8.2",
  "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522})";

// The golden RoFormer checkpoint's tensors, rewritten through the test writer (F32 or BF16).
SafetensorsWriter copy_checkpoint(const std::string& model, bool bf16 = false) {
  const SafetensorsFile f = SafetensorsFile::open(golden_dir(model) + "/model.safetensors");
  SafetensorsWriter w;
  for (const auto& name : f.names()) {
    const TensorInfo& t = f.info(name);
    if (t.dtype == Dtype::I64) continue;
    const Eigen::VectorXf v = f.flat<float>(name);
    w.add(name, t.shape, v.data(), bf16);
  }
  return w;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("config: HF config.json files read with HF's defaults", "[models][config]") {
  const EncoderConfig m = EncoderConfig::from_json_text(kMiniLmConfig);
  CHECK(m.family == EncoderFamily::Bert);
  CHECK(m.vocab_size == 30522);
  CHECK(m.hidden_size == 384);
  CHECK(m.head_dim() == 32);
  CHECK(m.embedding_dim() == 384);
  CHECK(m.num_hidden_layers == 6);
  CHECK(m.intermediate_size == 1536);
  CHECK(m.hidden_act == ActivationKind::GeluErf);
  CHECK(m.layer_norm_eps == 1e-12);
  CHECK(m.max_position_embeddings == 512);
  CHECK(!m.pre_layer_norm);

  const EncoderConfig r = EncoderConfig::load(golden_dir("roformer_rv_emb") + "/config.json");
  CHECK(r.family == EncoderFamily::RoFormer);
  CHECK(r.embedding_size == 48);
  CHECK(r.embedding_dim() == 48);
  CHECK(r.rotary_value);
  CHECK(r.hidden_act == ActivationKind::GeluTanh);
  CHECK(r.layer_norm_eps == 1e-7);
  CHECK(r.type_vocab_size == 2);

  // Minimal: only the required keys; HF defaults for the rest; null = absent.
  const EncoderConfig d = EncoderConfig::from_json_text(
      R"({"model_type":"roformer","vocab_size":10,"hidden_size":8,"num_hidden_layers":1,
          "num_attention_heads":2,"intermediate_size":16,"embedding_size":null,
          "xfmr_pre_layer_norm":true})");
  CHECK(d.embedding_dim() == 8);
  CHECK(d.hidden_act == ActivationKind::GeluErf);
  CHECK(d.layer_norm_eps == 1e-12);
  CHECK(d.max_position_embeddings == 512);
  CHECK(d.type_vocab_size == 2);
  CHECK(!d.rotary_value);
  CHECK(d.pre_layer_norm);
}

TEST_CASE("config: unsupported or malformed options name the key, expected and got",
          "[models][config][errors]") {
  const std::string base =
      R"("vocab_size":10,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16)";
  const auto with = [&](const std::string& extra) {
    return std::string("{") + base + "," + extra + "}";
  };
  const auto bert = [&](const std::string& extra) {
    return with("\"model_type\":\"bert\"," + extra);
  };
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(with(R"("model_type":"gpt2")")),
      "xfmr::EncoderConfig: expected \"model_type\" \"bert\" or \"roformer\" (got \"gpt2\")");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text("{" + base + "}"),
                      "expected \"model_type\" to be a string (required) (got nothing)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(R"({"model_type":"bert","hidden_size":8})"),
                      "expected \"vocab_size\" to be an integer (required) (got nothing)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("type_vocab_size":"2")")),
                      "expected \"type_vocab_size\" to be an integer (got \"2\")");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("type_vocab_size":2.5)")),
                      "expected \"type_vocab_size\" to be an integer (got 2.5)");
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(bert(R"("type_vocab_size":18446744073709551615)")),
      "expected \"type_vocab_size\" to be an integer (got 18446744073709551615)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("type_vocab_size":-3)")),
                      "expected type_vocab_size >= 1 (got -3)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("layer_norm_eps":"small")")),
                      "expected \"layer_norm_eps\" to be a number (got \"small\")");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("hidden_act":"quick_gelu")")),
                      "unsupported \"hidden_act\"");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("hidden_act":"quick_gelu")")),
                      "quick_gelu");
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(bert(R"("position_embedding_type":"relative_key")")),
      "expected \"position_embedding_type\" \"absolute\" (got \"relative_key\"");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("is_decoder":true)")),
                      "expected \"is_decoder\" false (got true; only encoders are supported)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("add_cross_attention":true)")),
                      "expected \"add_cross_attention\" false (got true");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("rotary_value":true)")),
                      "expected \"rotary_value\" false for bert (got true)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text(bert(R"("is_decoder":1)")),
                      "expected \"is_decoder\" to be true or false (got 1)");
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(bert(R"("embedding_size":4)")),
      "expected embedding_size = hidden_size for bert (got embedding_size=4, hidden_size=8)");
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(
          R"({"model_type":"bert","vocab_size":10,"hidden_size":9,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16})"),
      "xfmr::EncoderConfig: expected hidden_size to be a multiple of num_attention_heads (got "
      "hidden_size=9, num_attention_heads=2)");
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(
          R"({"model_type":"roformer","vocab_size":10,"hidden_size":6,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16})"),
      "expected an even head size for roformer (RoPE rotates channel pairs; got "
      "hidden_size/num_attention_heads=3)");
  XFMR_REQUIRE_FORMAT(
      EncoderConfig::from_json_text(
          R"({"model_type":"bert","vocab_size":0,"hidden_size":8,"num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":16})"),
      "expected vocab_size >= 1 (got 0)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text("{\"model_type\": \"bert\""),
                      "xfmr::EncoderConfig: expected valid JSON (got a parse error)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::from_json_text("[1, 2]"),
                      "expected a JSON object (got array)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::load("/nonexistent/config.json"),
                      "expected a readable config file (got none at \"/nonexistent/config.json\")");
  // The path is named for errors inside the file.
  const std::string path = "config_test_bad.json";
  std::ofstream(path) << bert(R"("is_decoder":true)");
  XFMR_REQUIRE_FORMAT(EncoderConfig::load(path), "[in config_test_bad.json]");
  std::remove(path.c_str());
  // validate() on a hand-made config throws invalid_argument.
  EncoderConfig c;
  XFMR_REQUIRE_INVALID(c.validate(), "xfmr::EncoderConfig: expected vocab_size >= 1 (got 0)");
}

TEST_CASE("checkpoint: the prefix is detected; buffers, pooler and the RoPE table are ignored",
          "[models][checkpoint]") {
  // bert_gelu: no prefix, pooler present; bert_gelu_new: "bert." prefix, pooler, position_ids
  // (I64).
  for (const char* model : {"bert_gelu", "bert_gelu_new"}) {
    const EncoderConfig c = EncoderConfig::load(golden_dir(model) + "/config.json");
    const SafetensorsFile f = SafetensorsFile::open(golden_dir(model) + "/model.safetensors");
    CHECK(detail::detect_weight_prefix(c, f) == (std::string(model) == "bert_gelu" ? "" : "bert."));
    CHECK_NOTHROW(read_encoder_weights<float>(c, f));
  }
  // RoFormer with HF's sinusoidal table saved (older transformers did): ignored.
  SafetensorsWriter w = copy_checkpoint("roformer");
  const std::vector<float> table(64 * 16, 0.5f);
  w.add("roformer.encoder.embed_positions.weight", {64, 16}, table.data());
  const SafetensorsFile f = SafetensorsFile::from_bytes(w.bytes(), "with_table");
  const EncoderConfig c = EncoderConfig::load(golden_dir("roformer") + "/config.json");
  CHECK(detail::detect_weight_prefix(c, f) == "roformer.");
  const RoFormerModel<double> a = RoFormerModel<double>::load(c, f);
  CHECK(a.config().hidden_size == 64);
}

TEST_CASE("checkpoint: every missing, mis-shaped, non-float and unused tensor in one message",
          "[models][checkpoint][errors]") {
  const EncoderConfig c = EncoderConfig::load(golden_dir("roformer") + "/config.json");
  SafetensorsWriter w = copy_checkpoint("roformer");
  w.tensors.erase("roformer.encoder.layer.1.output.dense.bias");
  w.tensors.erase("roformer.embeddings.LayerNorm.weight");
  w.tensors["roformer.encoder.layer.0.intermediate.dense.weight"].shape = {64, 128};
  const std::vector<float> junk(4, 1.f);
  w.add("roformer.encoder.layer.2.attention.self.query.bias", {4}, junk.data());
  w.add("cls.predictions.bias", {4}, junk.data());
  w.add_i64("roformer.encoder.layer.0.output.dense.bias", {1, 2, 3, 4});
  const SafetensorsFile f = SafetensorsFile::from_bytes(w.bytes(), "broken.safetensors");
  const std::string msg = message_of([&] { RoFormerModel<float>::load(c, f); });
  INFO(msg);
  CHECK_THAT(msg,
             Catch::StartsWith("xfmr::RoFormerModel: weights in broken.safetensors do not match "
                               "the roformer config (prefix \"roformer.\", 2 layers, hidden 64, "
                               "embedding 64, intermediate 128)"));
  CHECK_THAT(msg, Catch::Contains("; missing [roformer.embeddings.LayerNorm.weight, "
                                  "roformer.encoder.layer.1.output.dense.bias]"));
  CHECK_THAT(
      msg, Catch::Contains("; mis-shaped [roformer.encoder.layer.0.intermediate.dense.weight: "
                           "expected [128, 64] (got [64, 128]), "
                           "roformer.encoder.layer.0.output.dense.bias: expected [64] (got [4])]"));
  CHECK_THAT(msg, Catch::Contains(
                      "; not a float dtype [roformer.encoder.layer.0.output.dense.bias: I64]"));
  CHECK_THAT(msg, Catch::Contains("; unused [cls.predictions.bias, "
                                  "roformer.encoder.layer.2.attention.self.query.bias] "
                                  "(WeightLoadOptions::allow_unused accepts unused tensors)"));
  REQUIRE_THROWS_AS(RoFormerModel<float>::load(c, f), format_error);

  // allow_unused: only the real problems remain.
  const std::string msg2 =
      message_of([&] { RoFormerModel<float>::load(c, f, WeightLoadOptions{true}); });
  CHECK_THAT(msg2, Catch::Contains("missing ["));
  CHECK_THAT(msg2, !Catch::Contains("unused"));

  // A task checkpoint with a head loads with allow_unused and equals the plain one.
  SafetensorsWriter head = copy_checkpoint("roformer");
  head.add("classifier.weight", {4}, junk.data());
  const SafetensorsFile fh = SafetensorsFile::from_bytes(head.bytes(), "head");
  XFMR_REQUIRE_FORMAT(RoFormerModel<float>::load(c, fh), "unused [classifier.weight]");
  CHECK_NOTHROW(RoFormerModel<float>::load(c, fh, WeightLoadOptions{true}));

  // The config of another family: every name is missing and every tensor unused.
  EncoderConfig as_bert = c;
  as_bert.family = EncoderFamily::Bert;
  const SafetensorsFile good = SafetensorsFile::open(golden_dir("roformer") + "/model.safetensors");
  XFMR_REQUIRE_FORMAT(BertModel<float>::load(as_bert, good),
                      "missing [embeddings.LayerNorm.bias, ");
  XFMR_REQUIRE_FORMAT(BertModel<float>::load(as_bert, good),
                      "unused [roformer.embeddings.LayerNorm.bias, ");
  XFMR_REQUIRE_INVALID(
      RoFormerModel<float>::load(as_bert, good),
      "xfmr::RoFormerModel: expected a config with model_type \"roformer\" (got \"bert\")");
  // A folder of the other family.
  XFMR_REQUIRE_FORMAT(BertModel<float>::load(golden_dir("roformer")),
                      "xfmr::BertModel: expected model_type \"bert\" in ");
  XFMR_REQUIRE_FORMAT(RoFormerModel<float>::load(golden_dir("bert_gelu")),
                      "(got \"bert\"; load it with BertModel)");
}

TEST_CASE("checkpoint: BF16 weights convert at load", "[models][checkpoint]") {
  const xfmr_test::Golden g("roformer");
  const EncoderInput in = g.input();
  const EncoderConfig c = EncoderConfig::load(golden_dir("roformer") + "/config.json");
  const SafetensorsFile bf =
      SafetensorsFile::from_bytes(copy_checkpoint("roformer", true).bytes(), "bf16");
  CHECK(bf.info("roformer.embeddings.word_embeddings.weight").dtype == Dtype::BF16);
  const RowMatrix<float> h = RoFormerModel<float>::load(c, bf).forward(in);
  const RowMatrix<double> ref = g.f64("f64.hidden");
  double worst = 0;
  for (Index b = 0; b < in.batch(); ++b)
    worst = std::max(worst, xfmr_test::sequence_rel_error(h, ref, b * in.n(), in.length(b)));
  // bf16 keeps 8 bits: the weights move by up to 2^-9 relative, the output by about 1e-2.
  CHECK(worst > 1e-4);
  CHECK(worst < 5e-2);
}

TEST_CASE("checkpoint: WeightLoadOptions::bf16_kernel reaches the layers' bf16 GEMMs",
          "[models][checkpoint][bf16]") {
  const xfmr_test::Golden g("roformer");
  const EncoderInput in = g.input();
  const EncoderConfig c = EncoderConfig::load(golden_dir("roformer") + "/config.json");
  const SafetensorsFile f = SafetensorsFile::open(golden_dir("roformer") + "/model.safetensors");
  auto run = [&](simd::Bf16Kernel kernel) {
    WeightLoadOptions o;
    o.weight_storage = WeightStorage::Bf16;
    o.bf16_kernel = kernel;
    return RoFormerModel<float>::load(c, f, o).forward(in);
  };
  const RowMatrix<float> dot = run(simd::Bf16Kernel::DotProduct);
  const RowMatrix<float> widen = run(simd::Bf16Kernel::Widen);
  const bool has_dot =
      simd::gemm_bf16_resolve(simd::Bf16Kernel::DotProduct) == simd::Bf16Kernel::DotProduct;
  // DotProduct rounds the activations to bf16 too: other bits, where it is compiled.
  CHECK((dot != widen) == has_dot);
  const bool auto_dot =
      simd::gemm_bf16_resolve(simd::Bf16Kernel::Auto) == simd::Bf16Kernel::DotProduct;
  CHECK(run(simd::Bf16Kernel::Auto) == (auto_dot ? dot : widen));
  CHECK((dot - widen).cwiseAbs().maxCoeff() < 5e-2f * (1 + widen.cwiseAbs().maxCoeff()));
}

TEST_CASE("checkpoint: pre-LN norms are read under roberta-prelayernorm's names",
          "[models][checkpoint]") {
  EncoderConfig c = EncoderConfig::load(golden_dir("roformer") + "/config.json");
  c.pre_layer_norm = true;
  const SafetensorsFile post = SafetensorsFile::open(golden_dir("roformer") + "/model.safetensors");
  // The post-LN names are not the pre-LN ones: all reported.
  XFMR_REQUIRE_FORMAT(read_encoder_weights<float>(c, post),
                      "missing [roformer.LayerNorm.bias, roformer.LayerNorm.weight, "
                      "roformer.encoder.layer.0.attention.LayerNorm.bias");
  SafetensorsWriter w = copy_checkpoint("roformer");
  SafetensorsWriter renamed;
  for (auto& [name, e] : w.tensors) {
    std::string to = name;
    const auto replace = [&](const std::string& from, const std::string& by) {
      const auto at = to.find(from);
      if (at != std::string::npos) to.replace(at, from.size(), by);
    };
    replace("attention.output.LayerNorm", "attention.LayerNorm");
    if (to.find("attention") == std::string::npos)
      replace("output.LayerNorm", "intermediate.LayerNorm");
    renamed.tensors[to] = e;
  }
  const std::vector<float> g(64, 1.5f), b(64, -0.25f);
  renamed.add("roformer.LayerNorm.weight", {64}, g.data());
  renamed.add("roformer.LayerNorm.bias", {64}, b.data());
  const SafetensorsFile pre = SafetensorsFile::from_bytes(renamed.bytes(), "pre_ln");
  const EncoderWeights<double> wt = read_encoder_weights<double>(c, pre);
  CHECK(wt.layers[1].attention_norm_weight ==
        post.vector<double>("roformer.encoder.layer.1.attention.output.LayerNorm.weight"));
  CHECK(wt.layers[0].output_norm_bias ==
        post.vector<double>("roformer.encoder.layer.0.output.LayerNorm.bias"));
  CHECK(wt.final_norm_weight == Eigen::VectorXd::Constant(64, 1.5));
  CHECK(wt.final_norm_bias == Eigen::VectorXd::Constant(64, -0.25));
  CHECK_NOTHROW(RoFormerModel<double>::load(c, pre));
}
