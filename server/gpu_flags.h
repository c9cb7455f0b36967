// What `--tp`, `--tp-rendezvous`, `--kv-cache` and `--gpu-memory` ask of the CUDA backend (query,
// serve, eval-answers, generate): read by server/model_device.h, ignored on the CPU (but a CPU run
// refuses --kv-cache fp8 and --tp above 1).
#pragma once

#include <string>

namespace rag {

struct GpuFlags {
  int tp = 1;                     // GPUs the model is split over (tensor parallel)
  std::string kv_cache = "auto";  // auto (FP8 for an FP8 model), bf16 or fp8
  // The most of each GPU's memory the model may take (weights, buffers, the KV cache, which
  // gets what is left): vLLM's gpu_memory_utilization. 0.9 leaves ~8 GB of an 80 GB card, room
  // a 70B FP8 model on one card would rather give its KV cache.
  double memory_fraction = 0.9;
  // "host:port": the --tp ranks are processes, one GPU each; this one is rank 0 and waits there
  // for `rag tp-worker` ranks 1..tp-1 (engine/dist/tp_process.h). Empty: all in this process.
  std::string tp_rendezvous;
};

}  // namespace rag
