// A Llama ModelConfig from the metadata of a GGUF file (general.architecture "llama").
#pragma once

#include "common/status.h"
#include "engine/gguf.h"
#include "engine/model_config.h"

namespace rag {

// Reads llama.{context_length, embedding_length, block_count, feed_forward_length,
// attention.head_count, attention.head_count_kv, attention.layer_norm_rms_epsilon,
// attention.key_length, rope.freq_base, rope.scaling.*}, the vocabulary size from the length of
// tokenizer.ggml.tokens, bos/eos from tokenizer.ggml.*_token_id, and ties the output to the
// embedding when there is no output.weight tensor. Errors name the file and the key;
// Unsupported for another architecture or a rope scaling we do not implement (linear, yarn,
// or the rope_freqs.weight factors that llama.cpp writes for Llama 3.1).
StatusOr<ModelConfig> GgufModelConfig(const GgufFile& file);

}  // namespace rag
