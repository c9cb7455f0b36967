// The BERT encoder of engine/bert/ on a GPU, for embedders (LoadBertEmbedder's device_encoder):
// fp32 weights and activations, cuBLAS SGEMMs in plain FP32 math (no TF32: the vectors must agree
// with the CPU encoder's, which is golden-tested against sentence-transformers), the kernels of
// kernels/bert.cu (embeddings + LayerNorm, bias + GELU, bias + residual + LayerNorm, attention
// within each sequence of a packed batch). Same contract as BertModel::Forward; one CUDA stream;
// activation buffers grow to the largest batch seen.
#pragma once

#include <memory>

#include "common/status.h"
#include "engine/bert/bert_model.h"

namespace rag {

// Uploads `weights` to CUDA device `device`. ResourceExhausted when they do not fit,
// Unavailable without a device, InvalidArgument for a head size the attention kernel does not
// take (a multiple of 32 up to 128).
StatusOr<std::unique_ptr<BertEncoder>> CreateCudaBertEncoder(const BertHostWeights& weights,
                                                             int device);

}  // namespace rag
