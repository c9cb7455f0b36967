// What `--tp`, `--tp-rendezvous`, `--kv-cache`, `--gpu-memory`, `--step-tokens` and `--seats` ask
// of the CUDA backend (query, serve, eval-answers, generate): read by server/model_device.h,
// ignored on the CPU (but a CPU run refuses --kv-cache fp8 and --tp above 1).
#pragma once

#include <string>

namespace rag {

// --step-tokens' range: a step holds at least a full decode batch (64 sequences).
inline constexpr int kMinStepTokens = 64;
inline constexpr int kMaxStepTokens = 65536;
// --seats' range: the CUDA backend captures decode steps for up to 128 sequences.
inline constexpr int kMaxSeats = 128;

struct GpuFlags {
  int tp = 1;                     // GPUs the model is split over (tensor parallel)
  std::string kv_cache = "auto";  // auto (FP8 for an FP8 model), bf16 or fp8
  // The most of each GPU's memory the model may take (weights, buffers, the KV cache, which
  // gets what is left): vLLM's gpu_memory_utilization. 0.9 leaves ~8 GB of an 80 GB card, room
  // a 70B FP8 model on one card would rather give its KV cache.
  double memory_fraction = 0.9;
  // The most tokens one step of the model feeds (CudaBackendOptions::max_batch_tokens, which the
  // Engine's steps take: every answer's next token, then prompt chunks). Larger steps read
  // prompts faster; smaller ones keep the other answers' tokens coming while a long prompt is
  // read (a 4096-token step of a 70B FP8 model on one H200 takes ~0.8 s).
  int step_tokens = 4096;
  // The most requests answered at once (CudaBackendOptions::max_batch_seqs; the rest wait their
  // turn): more seats let more answers share each step's weight reads, where the KV cache (the
  // memory left, up to seats x the longest context) holds them. On 2 H200s, 70B FP8, a stream of
  // 5000-token questions, 128 seats gave 4% more output tokens/s than 64 (docs/BENCHMARKS.md).
  int seats = 64;
  // "host:port": the --tp ranks are processes, one GPU each; this one is rank 0 and waits there
  // for `rag tp-worker` ranks 1..tp-1 (engine/dist/tp_process.h). Empty: all in this process.
  std::string tp_rendezvous;
};

}  // namespace rag
