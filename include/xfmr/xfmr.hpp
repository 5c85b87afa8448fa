// SPDX-License-Identifier: MIT
// Umbrella header: every public xfmr header.
#ifndef XFMR_XFMR_HPP
#define XFMR_XFMR_HPP

#include "config.hpp"
#include "error.hpp"
#include "tensor.hpp"
#include "thread_pool.hpp"
#include "types.hpp"
#include "version.hpp"

#include "simd/activation.hpp"
#include "simd/bf16.hpp"
#include "simd/erf.hpp"
#include "simd/exp.hpp"
#include "simd/gemm.hpp"
#include "simd/gemm_bf16.hpp"
#include "simd/gemm_epilogue.hpp"
#include "simd/gemm_pack.hpp"
#include "simd/isa.hpp"
#include "simd/linear_scan.hpp"
#include "simd/norm.hpp"
#include "simd/rope.hpp"
#include "simd/softmax.hpp"
#include "simd/transpose.hpp"
#include "simd/vec.hpp"

#include "position/hierarchical.hpp"
#include "position/rope.hpp"
#include "position/rope_nd.hpp"
#include "position/rope_scaling.hpp"
#include "position/sinusoidal.hpp"

#include "attention/contract.hpp"
#include "attention/feature_map.hpp"
#include "attention/keynorm.hpp"
#include "attention/linear.hpp"
#include "attention/mask.hpp"
#include "attention/partials.hpp"
#include "attention/performer.hpp"
#include "attention/random_features.hpp"
#include "attention/recurrent_state.hpp"
#include "attention/rerope.hpp"
#include "attention/scale.hpp"
#include "attention/softmax.hpp"
#include "attention/taylor.hpp"

#include "layers/activation.hpp"
#include "layers/dense.hpp"
#include "layers/embedding.hpp"
#include "layers/norm.hpp"

#include "heads/global_pointer.hpp"
#include "heads/multilabel_ce.hpp"
#include "heads/retrieval.hpp"
#include "heads/span_decode.hpp"
#include "heads/whitening.hpp"
#include "heads/whitening_stats.hpp"

#include "io/binary_format.hpp"
#include "io/whitening_format.hpp"

#include "tokenizer/wordpiece.hpp"
#include "weights/safetensors.hpp"

#include "models/bert.hpp"
#include "models/checkpoint.hpp"
#include "models/config.hpp"
#include "models/encoder.hpp"
#include "models/encoder_model.hpp"
#include "models/pooling.hpp"
#include "models/roformer.hpp"
#include "models/sentence_embedder.hpp"
#include "models/span_pipeline.hpp"

#endif  // XFMR_XFMR_HPP
