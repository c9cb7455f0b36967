#include "engine/cuda/bench_command.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>

#include "common/logging.h"
#include "engine/cuda/bench_engine_load.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/dist/child_processes.h"
#ifdef RAG_HAVE_NCCL
#include "engine/dist/tp_backend.h"
#include "engine/dist/tp_process.h"
#endif
#include "engine/engine.h"
#include "engine/model_shapes.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

constexpr const char* kUsage =
    "usage: rag bench (--model DIR | --load-format dummy --shape 8b|70b|405b) [options]\n"
    "  --prompt N        prompt tokens (default 2000: a RAG prompt with five passages)\n"
    "  --new N           generated tokens (default 200)\n"
    "  --batch LIST      decode batch sizes, comma separated (default 1,8,32,64)\n"
    "  --runs N          timed first-token runs, the median is reported (default 5)\n"
    "  --chunk N         prefill chunk: tokens of one forward pass (default 4096)\n"
    "  --device N        CUDA device (default 0)\n"
    "  --no-graphs       enqueue every kernel instead of replaying CUDA graphs\n"
    "  --no-pdl          plain launches instead of programmatic dependent launch\n"
    "  --no-fused-gemv   one-token steps run the RMSNorms and SwiGLU as separate kernels\n"
    "                    instead of cuBLASLt\n"
    "  --no-fp8-gemm     FP8 models: widen each projection to bf16 for its GEMM instead of\n"
    "                    FP8 GEMMs over per-row quantized activations\n"
    "  --fp8-unit-rows N FP8 GEMMs of at most N rows run with unit scales, the row scales\n"
    "                    applied by a kernel after (default 1024; 0: cuBLASLt's epilogue always)\n"
    "  --attn-splits N   decode attention aims at N (split, head) pairs a step (default 2048)\n"
    "  --attn-split-tiles N  ... and splits contexts into runs of at most N 32-token tiles\n"
    "                    (default: 16 SIMT, 64 tensor cores; 0: no bound)\n"
    "  --attn-simt       decode attention (FP8 or bf16 cache) on the fp32 SIMT kernel instead of\n"
    "                    tensor cores\n"
    "  --gemv-split N    batch-1 o/down GEMVs split K up to N blocks an SM (default 8)\n"
    "  --prefill-rows N  prefill attention: 16 or 32 query rows a warp (mma.sync), or 64, the\n"
    "                    warpgroup kernel (wgmma) where the GPU runs it, else 32 (default 64)\n"
    "  --fp8             dummy weights: decoder projections as FP8 e4m3 with row scales\n"
    "  --kv-cache T      KV cache: auto (FP8 with FP8 weights, default), bf16 or fp8\n"
    "  --gpu-memory F    the most of each GPU's memory to take, KV cache included (default 0.9)\n"
    "  --tp N            tensor parallel over GPUs 0..N-1 (NCCL; 1 = one GPU, default)\n"
    "  --allreduce MODE  tensor parallel all-reduces: peer (decode-sized ones through peer\n"
    "                    memory, the rest NCCL; default) or nccl (all through NCCL)\n"
    "  --tp-processes    the --tp ranks as processes, one GPU each: this one is rank 0 and starts\n"
    "                    the others (CUDA IPC between them, as separate servers would)\n"
    "  --tp-rank R --tp-rendezvous HOST:PORT\n"
    "                    one rank of a group of processes started by hand: rank 0 (which runs\n"
    "                    the bench) listens at HOST:PORT, ranks 1..N-1 (on GPU R) follow it\n"
    "  --prefill-sums T  tensor parallel prefill partial sums all-reduced as bf16 (default) or "
    "fp32\n"
    "  --peer-max-kb N   with --allreduce peer: all-reduces up to N KiB through peer memory\n"
    "                    (default 1024), larger ones through NCCL\n"
    "  --gemv-max-rows N steps of up to N tokens use our GEMV, cuBLAS above (0-8, default 1)\n"
    "  --load N          also a RAG-shaped load: N requests of --prompt tokens each answered with\n"
    "                    --new tokens, as many at once as the KV cache holds (waves); reports\n"
    "                    output tokens/s over the whole (prefills included)\n"
    "  --load-engine S,C the load through the serving Engine (continuous batching) instead of\n"
    "                    the bench's loop: steps of up to S tokens, at most C of one prompt\n"
    "  --load-interval-ms M  with --load-engine: a request every M ms instead of all at once\n"
    "  --mixed-step-tokens M with --load-engine: a step that feeds answers being written feeds\n"
    "                    at most M tokens in all (0: S; default: what `rag serve` uses)\n"
    "  --seats N         with --load: at most N requests at once (1..128, default 64; the KV\n"
    "                    cache is sized for N whole requests where memory allows)\n"
    "  --load-only       with --load: only the load (no first-token runs, no decode batches)\n"
    "  --json FILE       also write the JSON report to FILE\n";

// How this bench was started: the words that run it again (the binary and, for `rag`, "bench")
// and its flags (followers of --tp-processes run them with --tp-rank).
struct BenchSelf {
  std::vector<std::string> command;
  std::vector<std::string> args;
};

struct BenchFlags {
  std::string model_dir, load_format = "auto", shape;
  int prompt = 2000, new_tokens = 200, runs = 5, chunk = 4096, device = 0, gemv_max_rows = 1;
  int attn_splits = 2048, attn_split_tiles = -1, gemv_split = 8, prefill_rows = 64, tp = 1,
      load = 0, peer_max_kb = 1024;
  std::string allreduce = "peer", prefill_sums = "bf16";
  bool tp_processes = false, attn_simt = false, load_only = false;
  int tp_rank = -1;  // a rank of a group of processes (--tp-rank), or -1
  int fp8_unit_rows = -1;  // --fp8-unit-rows; -1: the backend's default
  int engine_step = 0, engine_chunk = 0;  // --load-engine; 0: the bench's own load loop
  int load_interval_ms = 0;               // --load-interval-ms; 0: all requests at once
  int mixed_step_tokens = -1;             // --mixed-step-tokens; -1: the Engine's default
  int seats = 64;                         // --seats
  std::string tp_rendezvous;
  KvCacheType kv_cache = KvCacheType::kAuto;
  std::vector<int> batches = {1, 8, 32, 64};
  bool graphs = true, pdl = true, fused_gemv = true, fp8 = false, fp8_gemm = true;
  std::string json_path;
  double gpu_memory = 0.9;
};

bool ParseInt(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

// Returns an error message, or "" when the flags are good.
std::string ParseFlags(const std::vector<std::string>& args, BenchFlags* f) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string v;
    if (a == "--no-graphs") {
      f->graphs = false;
    } else if (a == "--no-pdl") {
      f->pdl = false;
    } else if (a == "--no-fused-gemv") {
      f->fused_gemv = false;
    } else if (a == "--model") {
      if (!value(&f->model_dir)) return "--model needs a directory";
    } else if (a == "--load-format") {
      if (!value(&f->load_format) || (f->load_format != "dummy" && f->load_format != "auto"))
        return "--load-format takes auto or dummy";
    } else if (a == "--shape") {
      if (!value(&f->shape)) return "--shape needs 8b, 70b or 405b";
    } else if (a == "--json") {
      if (!value(&f->json_path)) return "--json needs a file";
    } else if (a == "--batch") {
      if (!value(&v)) return "--batch needs a list";
      f->batches.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) {
        int b = 0;
        if (!ParseInt(item, 1, 64, &b)) return "--batch: each size in 1..64, got '" + item + "'";
        f->batches.push_back(b);
      }
      if (f->batches.empty()) return "--batch: no sizes";
    } else if (a == "--gemv-split") {
      if (!value(&v) || !ParseInt(v, 1, 64, &f->gemv_split)) return "--gemv-split takes 1..64";
    } else if (a == "--load-engine") {
      if (!value(&v) || v.find(',') == std::string::npos ||
          !ParseInt(v.substr(0, v.find(',')), 1, 1 << 20, &f->engine_step) ||
          !ParseInt(v.substr(v.find(',') + 1), 1, 1 << 20, &f->engine_chunk)) {
        return "--load-engine takes STEP,CHUNK (tokens of a step, of one prompt in a step)";
      }
    } else if (a == "--load-interval-ms") {
      if (!value(&v) || !ParseInt(v, 0, 600000, &f->load_interval_ms)) {
        return "--load-interval-ms takes 0..600000";
      }
    } else if (a == "--mixed-step-tokens") {
      if (!value(&v) || !ParseInt(v, 0, 1 << 20, &f->mixed_step_tokens)) {
        return "--mixed-step-tokens takes 0..1048576";
      }
    } else if (a == "--load") {
      if (!value(&v) || !ParseInt(v, 1, 4096, &f->load)) return "--load takes 1..4096 requests";
    } else if (a == "--tp") {
      if (!value(&v) || !ParseInt(v, 1, 8, &f->tp)) return "--tp takes 1..8";
    } else if (a == "--seats") {
      if (!value(&v) || !ParseInt(v, 1, 128, &f->seats)) return "--seats takes 1..128";
    } else if (a == "--load-only") {
      f->load_only = true;
    } else if (a == "--tp-processes") {
      f->tp_processes = true;
    } else if (a == "--attn-simt") {
      f->attn_simt = true;
    } else if (a == "--tp-rank") {
      if (!value(&v) || !ParseInt(v, 0, 7, &f->tp_rank)) return "--tp-rank takes 0..7";
    } else if (a == "--tp-rendezvous") {
      if (!value(&f->tp_rendezvous)) return "--tp-rendezvous needs HOST:PORT";
    } else if (a == "--allreduce") {
      if (!value(&f->allreduce) || (f->allreduce != "peer" && f->allreduce != "nccl"))
        return "--allreduce takes peer or nccl";
    } else if (a == "--peer-max-kb") {
      if (!value(&v) || !ParseInt(v, 0, 1 << 20, &f->peer_max_kb)) return "--peer-max-kb takes 0..1048576";
    } else if (a == "--prefill-sums") {
      if (!value(&f->prefill_sums) || (f->prefill_sums != "bf16" && f->prefill_sums != "fp32"))
        return "--prefill-sums takes bf16 or fp32";
    } else if (a == "--fp8") {
      f->fp8 = true;
    } else if (a == "--gpu-memory") {
      char* end = nullptr;
      if (!value(&v) || (f->gpu_memory = std::strtod(v.c_str(), &end), *end != '\0') ||
          !(f->gpu_memory > 0.0 && f->gpu_memory <= 1.0)) {
        return "--gpu-memory takes a fraction in (0, 1]";
      }
    } else if (a == "--kv-cache") {
      if (!value(&v)) return "--kv-cache takes auto, bf16 or fp8";
      StatusOr<KvCacheType> kv = ParseKvCacheType(v);
      if (!kv.ok()) return kv.status().message();
      f->kv_cache = *kv;
    } else if (a == "--no-fp8-gemm") {
      f->fp8_gemm = false;
    } else if (a == "--fp8-unit-rows") {
      if (!value(&v) || !ParseInt(v, 0, 1 << 20, &f->fp8_unit_rows))
        return "--fp8-unit-rows takes 0..1048576";
    } else if (a == "--prefill-rows") {
      if (!value(&v) || !ParseInt(v, 16, 64, &f->prefill_rows) ||
          (f->prefill_rows != 16 && f->prefill_rows != 32 && f->prefill_rows != 64)) {
        return "--prefill-rows takes 16, 32 or 64";
      }
    } else if (a == "--attn-split-tiles") {
      if (!value(&v) || !ParseInt(v, 0, 1 << 16, &f->attn_split_tiles)) return "--attn-split-tiles takes 0..65536";
    } else if (a == "--attn-splits") {
      if (!value(&v) || !ParseInt(v, 1, 1 << 16, &f->attn_splits)) return "--attn-splits takes 1..65536";
    } else if (a == "--gemv-max-rows") {
      if (!value(&v) || !ParseInt(v, 0, 8, &f->gemv_max_rows)) return "--gemv-max-rows takes 0..8";
    } else if (a == "--prompt" || a == "--new" || a == "--runs" || a == "--chunk" ||
               a == "--device") {
      int* target = a == "--prompt" ? &f->prompt : a == "--new" ? &f->new_tokens
                    : a == "--runs" ? &f->runs : a == "--chunk" ? &f->chunk : &f->device;
      const int lo = a == "--device" ? 0 : (a == "--new" ? 2 : 1);
      if (!value(&v) || !ParseInt(v, lo, 1 << 20, target)) return a + " needs an integer >= " + std::to_string(lo);
    } else {
      return "unknown argument '" + a + "'";
    }
  }
  if (f->load_format == "dummy" ? f->shape.empty() : f->model_dir.empty()) {
    return "give --model DIR, or --load-format dummy --shape NAME";
  }
  if ((f->tp_processes || f->tp_rank >= 0) && f->tp < 2)
    return "--tp-processes and --tp-rank need --tp 2 or more";
  if (f->tp_rank >= f->tp) return "--tp-rank must be below --tp";
  if ((f->tp_rank >= 0) != !f->tp_rendezvous.empty())
    return "--tp-rank and --tp-rendezvous go together";
  if (f->load_interval_ms > 0 && (f->load == 0 || f->engine_step == 0))
    return "--load-interval-ms goes with --load N --load-engine S,C";
  if (f->load_only && f->load == 0) return "--load-only goes with --load N";
  if (f->load_only) f->batches.clear();
  if (f->mixed_step_tokens >= 0 && (f->load == 0 || f->engine_step == 0))
    return "--mixed-step-tokens goes with --load N --load-engine S,C";
  return "";
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Device-to-device copy bandwidth (bytes read + written per second) over 1 GiB buffers.
StatusOr<double> CopyBandwidth() {
  const size_t bytes = 1u << 30;
  RAG_ASSIGN_OR_RETURN(DeviceBuffer a, DeviceBuffer::Allocate(bytes, "bandwidth probe"));
  RAG_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(bytes, "bandwidth probe"));
  RAG_CUDA_RETURN_IF_ERROR(cudaMemset(a.get(), 1, bytes));
  cudaEvent_t start, stop;
  RAG_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
  RAG_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
  std::vector<double> times;
  for (int i = 0; i < 12; ++i) {
    RAG_CUDA_RETURN_IF_ERROR(cudaEventRecord(start));
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice));
    RAG_CUDA_RETURN_IF_ERROR(cudaEventRecord(stop));
    RAG_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop));
    float ms = 0;
    RAG_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start, stop));
    if (i >= 2) times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return 2.0 * static_cast<double>(bytes) / (Median(times) * 1e-3);
}

// Hands out distinct KV blocks to the benchmark's sequences.
class BlockPool {
 public:
  BlockPool(int num_blocks, int block_size) : next_(0), total_(num_blocks), block_size_(block_size) {}
  StatusOr<std::vector<int32_t>> Take(int tokens) {
    const int n = (tokens + block_size_ - 1) / block_size_;
    if (next_ + n > total_) {
      return ResourceExhausted("bench: the KV cache holds " + std::to_string(total_) +
                               " blocks; this batch needs more (lower --batch, --prompt or --new)");
    }
    std::vector<int32_t> t(static_cast<size_t>(n));
    std::iota(t.begin(), t.end(), next_);
    next_ += n;
    return t;
  }
  void Reset() { next_ = 0; }

 private:
  int next_, total_, block_size_;
};

// Prefills one prompt (in chunks of `chunk` tokens) and returns its first token.
StatusOr<int32_t> Prefill(GpuBackend& b, const std::vector<int32_t>& prompt,
                          const std::vector<int32_t>& table, int chunk) {
  int32_t first = -1;
  for (size_t at = 0; at < prompt.size(); at += static_cast<size_t>(chunk)) {
    const size_t end = std::min(prompt.size(), at + static_cast<size_t>(chunk));
    std::vector<int32_t> part(prompt.begin() + at, prompt.begin() + end);
    RAG_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                         b.ForwardArgmax({{{part, static_cast<int32_t>(at), table, false}}}));
    first = ids[0];
  }
  return first;
}

// The RAG-shaped load: `requests` prompts answered in waves of as many as the KV cache (and the
// 64-sequence decode batch) holds: each wave's prompts prefilled one after another, then their
// answers decoded together on the device. Output tokens/s over the whole run, prefills included.
struct LoadResult {
  int requests = 0, concurrency = 0, waves = 0;
  double seconds = 0, prefill_seconds = 0, output_tok_s = 0;
};

StatusOr<LoadResult> RunLoad(GpuBackend& b, BlockPool& pool, int num_blocks, int block_size,
                             int requests, int prompt, int new_tokens, int chunk, int max_seqs,
                             const std::function<std::vector<int32_t>()>& random_prompt) {
  const int per_request = (prompt + new_tokens + 1 + block_size - 1) / block_size;
  LoadResult r;
  r.requests = requests;
  r.concurrency = std::min({requests, num_blocks / per_request, max_seqs});
  if (r.concurrency < 1) return ResourceExhausted("bench --load: one request does not fit the KV cache");
  const double t0 = NowSeconds();
  for (int done = 0; done < requests; done += r.concurrency) {
    const int n = std::min(r.concurrency, requests - done);
    pool.Reset();
    ForwardBatch answers;
    const double p0 = NowSeconds();
    for (int i = 0; i < n; ++i) {
      RAG_ASSIGN_OR_RETURN(std::vector<int32_t> table, pool.Take(prompt + new_tokens + 1));
      RAG_ASSIGN_OR_RETURN(int32_t first, Prefill(b, random_prompt(), table, chunk));
      answers.sequences.push_back({{first}, prompt, std::move(table), false});
    }
    r.prefill_seconds += NowSeconds() - p0;
    RAG_RETURN_IF_ERROR(b.GreedyDecode(answers, new_tokens - 1).status());
    ++r.waves;
  }
  r.seconds = NowSeconds() - t0;
  r.output_tok_s = static_cast<double>(requests) * new_tokens / r.seconds;
  return r;
}

struct DecodeResult {
  int batch;
  double step_ms, tok_s_per_seq, tok_s_total, weight_gb_s, total_gb_s;
};

std::string Today() {
  std::time_t t = std::time(nullptr);
  char buf[16];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
  return buf;
}

#ifdef RAG_HAVE_NCCL
// The kernel knobs rag bench sets for the whole process: every rank of a group of processes
// must set the same ones (they change the grids a step launches).
std::string KnobSettings(const BenchFlags& f) {
  std::ostringstream s;
  s << "pdl=" << f.pdl << "\nattn_splits=" << f.attn_splits
    << "\nattn_split_tiles=" << f.attn_split_tiles << "\nattn_simt=" << f.attn_simt
    << "\ngemv_split=" << f.gemv_split << "\nprefill_rows=" << f.prefill_rows << "\n";
  return s.str();
}

// The --tp backend: every rank in this process, or this process's rank of a group of processes
// (--tp-processes: rank 0, starting the others as children running these flags with --tp-rank;
// --tp-rank: one started by hand). A follower returns null once rank 0 is done.
StatusOr<std::unique_ptr<GpuBackend>> TensorParallel(const BenchFlags& f,
                                                     const CudaBackendOptions& options,
                                                     const BenchSelf& self,
                                                     ChildProcesses& children) {
  TensorParallelOptions tp;
  tp.world = f.tp;
  tp.peer_allreduce_max_bytes =
      f.allreduce == "nccl" ? 0 : static_cast<size_t>(f.peer_max_kb) << 10;
  const bool dummy = f.load_format == "dummy";
  RAG_ASSIGN_OR_RETURN(const ModelConfig config,
                       dummy ? LlamaShapeConfig(f.shape) : LoadModelConfig(f.model_dir));
  const TpBackendFactory factory =
      [&](const TensorParallelOptions& o) -> StatusOr<std::unique_ptr<TensorParallelBackend>> {
    if (dummy) return TensorParallelBackend::CreateDummy(config, 1, f.fp8, options, o);
    return TensorParallelBackend::Create(f.model_dir, options, o);
  };
  if (!f.tp_processes && f.tp_rank < 0) {
    RAG_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> b, factory(tp));
    return std::unique_ptr<GpuBackend>(std::move(b));
  }
  TpProcessOptions process;
  process.world = f.tp;
  process.rank = std::max(f.tp_rank, 0);
  if (f.tp_rank < 0) {  // --tp-processes: start the followers
    RAG_ASSIGN_OR_RETURN(const int port, FreeLoopbackPort());
    process.rendezvous = {"127.0.0.1", port};
    for (int r = 1; r < f.tp; ++r) {
      std::vector<std::string> argv = self.command;
      argv.insert(argv.end(), self.args.begin(), self.args.end());
      argv.insert(argv.end(), {"--tp-rank", std::to_string(r), "--tp-rendezvous",
                               "127.0.0.1:" + std::to_string(port)});
      RAG_RETURN_IF_ERROR(children.Spawn(argv));
    }
  } else {
    RAG_ASSIGN_OR_RETURN(process.rendezvous, ParseTpAddress(f.tp_rendezvous));
  }
  const std::string settings = TpSettings(config, options, tp, KnobSettings(f));
  if (process.rank > 0) {
    RAG_RETURN_IF_ERROR(FollowTpProcessGroup(process, settings, tp, factory));
    return std::unique_ptr<GpuBackend>();
  }
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<TensorParallelBackend> b,
                       HostTpProcessGroup(process, settings, tp, factory));
  return std::unique_ptr<GpuBackend>(std::move(b));
}
#endif

Status Run(const BenchFlags& f, const BenchSelf& self, ChildProcesses& children) {
  RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(f.tp_rank > 0 ? f.tp_rank : f.device));
  SetProgrammaticLaunch(f.pdl);
  SetDecodeAttentionSplitTarget(f.attn_splits);
  SetDecodeAttentionMaxTilesPerSplit(f.attn_split_tiles);
  SetDecodeAttentionTensorCores(!f.attn_simt);
  SetDecodeGemvBlocksPerSm(f.gemv_split);
  SetPrefillAttentionRowsPerWarp(f.prefill_rows);
  cudaDeviceProp prop{};
  RAG_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, f.device));
  RAG_ASSIGN_OR_RETURN(const double copy_bw, CopyBandwidth());

  const int max_batch =
      std::max(f.batches.empty() ? 1 : *std::max_element(f.batches.begin(), f.batches.end()),
               std::min(f.load, f.seats));
  CudaBackendOptions options;
  options.device = f.device;
  options.max_seq_len = f.prompt + f.new_tokens + 16;
  options.max_batch_tokens = std::min(f.chunk, f.prompt);
  options.max_batch_seqs = max_batch;
  options.cuda_graphs = f.graphs;
  options.gemv_max_rows = f.gemv_max_rows;
  options.fused_gemv = f.fused_gemv;
  options.tp_bf16_prefill_sums = f.prefill_sums == "bf16";
  options.fp8_gemm = f.fp8_gemm;
  options.fp8_unit_scale_max_rows = f.fp8_unit_rows;
  options.kv_cache = f.kv_cache;
  options.memory_fraction = f.gpu_memory;
  std::unique_ptr<GpuBackend> backend;
  const double t_load = NowSeconds();
  if (f.tp > 1) {
#ifdef RAG_HAVE_NCCL
    RAG_ASSIGN_OR_RETURN(backend, TensorParallel(f, options, self, children));
    if (backend == nullptr) return Status::Ok();  // a follower: rank 0 reports
#else
    return Unavailable("bench: --tp needs a build with NCCL (tensor parallelism)");
#endif
  } else if (f.load_format == "dummy") {
    RAG_ASSIGN_OR_RETURN(ModelConfig config, LlamaShapeConfig(f.shape));
    RAG_ASSIGN_OR_RETURN(CudaWeights weights, DummyCudaWeights(config, 1, f.fp8));
    RAG_ASSIGN_OR_RETURN(backend, CreateCudaBackend(config, std::move(weights), options));
  } else {
    RAG_ASSIGN_OR_RETURN(backend, CreateCudaBackend(f.model_dir, options));
  }
  const double load_s = NowSeconds() - t_load;
  const ModelConfig& c = backend->config();
  const int block_size = backend->info().block_size;
  BlockPool pool(backend->info().num_blocks, block_size);

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(std::min<int64_t>(c.vocab_size, 128000) - 1));
  auto random_prompt = [&] {
    std::vector<int32_t> p(static_cast<size_t>(f.prompt));
    for (int32_t& t : p) t = token(rng);
    return p;
  };

  // Time to first token: one prompt alone, prefill plus the first token's argmax on the device.
  std::vector<double> ttft;
  // The first run warms up (cuBLAS heuristics, caches).
  const int first_token_runs = f.load_only ? 0 : f.runs + 1;
  for (int r = 0; r < first_token_runs; ++r) {
    pool.Reset();
    RAG_ASSIGN_OR_RETURN(std::vector<int32_t> table, pool.Take(f.prompt + 1));
    const std::vector<int32_t> prompt = random_prompt();
    const double t0 = NowSeconds();
    RAG_RETURN_IF_ERROR(Prefill(*backend, prompt, table, options.max_batch_tokens).status());
    if (r > 0) ttft.push_back(NowSeconds() - t0);
  }
  // The same, as requests come to a server and as the peer script times gpt-fast: each prompt's
  // prefill (timed) followed by its answer (new_tokens - 1 greedy steps, not timed). Back-to-back
  // prefills above keep the card at its GEMM power limit; here each one starts after a decode.
  std::vector<double> ttft_request;
  for (int r = 0; r < first_token_runs; ++r) {
    pool.Reset();
    RAG_ASSIGN_OR_RETURN(std::vector<int32_t> table, pool.Take(f.prompt + f.new_tokens + 1));
    const std::vector<int32_t> prompt = random_prompt();
    const double t0 = NowSeconds();
    RAG_ASSIGN_OR_RETURN(const int32_t first,
                         Prefill(*backend, prompt, table, options.max_batch_tokens));
    if (r > 0) ttft_request.push_back(NowSeconds() - t0);
    ForwardBatch answer;
    answer.sequences.push_back({{first}, f.prompt, std::move(table), false});
    RAG_RETURN_IF_ERROR(backend->GreedyDecode(answer, f.new_tokens - 1).status());
  }

  // Decode: `batch` prompts prefilled, then new_tokens - 1 greedy steps on the device.
  // Bytes a step reads (the embedding excluded, as gpt-fast's script counts): the FP8 model's
  // decoder projections at one byte a weight, the rest (lm_head, norms) at two.
  const double params = static_cast<double>(LlamaParameterCount(c) - c.vocab_size * c.hidden_size);
  const double projection_params = static_cast<double>(c.num_hidden_layers) * c.hidden_size *
      ((c.num_attention_heads + 2 * c.num_key_value_heads) * c.head_dim +
       c.num_attention_heads * c.head_dim + 3.0 * c.intermediate_size);
  const double weight_bytes = backend->fp8_weights() ? 2.0 * params - projection_params : 2.0 * params;
  // KV bytes a token (of all GPUs together): the cache's bytes over its slots (bf16, or FP8 codes
  // and their row scales).
  const double kv_bytes_per_token = static_cast<double>(backend->kv_cache_bytes()) * backend->gpus() /
                                    (static_cast<double>(backend->info().num_blocks) * block_size);
  std::vector<DecodeResult> results;
  for (int batch : f.batches) {
    pool.Reset();
    ForwardBatch step;
    for (int s = 0; s < batch; ++s) {
      RAG_ASSIGN_OR_RETURN(std::vector<int32_t> table, pool.Take(f.prompt + f.new_tokens + 1));
      RAG_ASSIGN_OR_RETURN(int32_t first, Prefill(*backend, random_prompt(), table, options.max_batch_tokens));
      step.sequences.push_back({{first}, f.prompt, std::move(table), false});
    }
    const int steps = f.new_tokens - 1;
    RAG_RETURN_IF_ERROR(backend->GreedyDecode(step, std::min(steps, 3)).status());  // capture, warm up
    const double t0 = NowSeconds();
    RAG_RETURN_IF_ERROR(backend->GreedyDecode(step, steps).status());
    const double step_s = (NowSeconds() - t0) / steps;
    const double avg_context = f.prompt + steps / 2.0;
    DecodeResult d;
    d.batch = batch;
    d.step_ms = step_s * 1e3;
    d.tok_s_per_seq = 1.0 / step_s;
    d.tok_s_total = batch / step_s;
    d.weight_gb_s = weight_bytes / step_s / 1e9;
    d.total_gb_s = (weight_bytes + batch * avg_context * kv_bytes_per_token) / step_s / 1e9;
    results.push_back(d);
  }

  // What the report needs of the backend, before the engine load takes it.
  const int gpus = backend->gpus(), num_blocks = backend->info().num_blocks;
  const bool fp8_weights = backend->fp8_weights(), fp8_kv = backend->fp8_kv_cache();
  const double weight_gb = backend->weight_bytes() / 1e9, kv_gb = backend->kv_cache_bytes() / 1e9;
  LoadResult load;
  EngineLoadResult engine_load;
  const bool through_engine = f.load > 0 && f.engine_step > 0;
  const int engine_step = std::min(f.engine_step, options.max_batch_tokens);  // what the GPU takes
  int mixed_step_tokens = 0;  // what the Engine ran with (0: off)
  if (through_engine) {
    SchedulerOptions sched = EngineOptions::For(backend->info()).scheduler;
    sched.max_batch_tokens = engine_step;
    sched.prefill_chunk = f.engine_chunk;
    sched.max_running = options.max_batch_seqs;
    if (f.mixed_step_tokens >= 0) sched.mixed_step_tokens = f.mixed_step_tokens;
    mixed_step_tokens = sched.mixed_step_tokens;
    RAG_ASSIGN_OR_RETURN(engine_load, RunEngineLoad(std::move(backend), sched, f.load, f.new_tokens,
                                                    f.load_interval_ms / 1e3, random_prompt));
  } else if (f.load > 0) {
    RAG_ASSIGN_OR_RETURN(
        load, RunLoad(*backend, pool, num_blocks, block_size, f.load, f.prompt, f.new_tokens,
                      options.max_batch_tokens, options.max_batch_seqs, random_prompt));
  }

  const std::string model = f.load_format == "dummy" ? "dummy:" + f.shape : f.model_dir;
  std::printf(
      "\nrag bench: %s on %d x %s (%.0f GB/s device copy bandwidth), %s, %s, prompt %d, new %d, "
      "graphs %s, PDL %s, our GEMV up to %d rows, fused GEMV %s%s\n",
      model.c_str(), gpus, prop.name, copy_bw / 1e9, Today().c_str(),
      fp8_weights ? "fp8 projections" : "bf16", f.prompt, f.new_tokens, f.graphs ? "on" : "off",
      f.pdl ? "on" : "off", f.gemv_max_rows, f.fused_gemv ? "on" : "off",
      gpus > 1
          ? (f.allreduce == "peer" ? ", all-reduce: peer memory up to --peer-max-kb, NCCL above"
                                   : ", all-reduce: NCCL")
          : "");
  if (gpus > 1 && f.allreduce == "peer") std::printf("peer-memory all-reduces up to %d KiB\n", f.peer_max_kb);
  if (gpus > 1) std::printf("prefill partial sums all-reduced as %s\n", f.prefill_sums.c_str());
  if (fp8_weights) {
    std::printf("FP8 GEMMs: %s", f.fp8_gemm ? "on" : "off (widened to bf16)");
    if (f.fp8_gemm && f.fp8_unit_rows >= 0)
      std::printf(", unit scales up to %d rows", f.fp8_unit_rows);
    std::printf("\n");
  }
  std::printf("load %.1f s; weights %.2f GB a GPU, KV cache (%s) %.2f GB a GPU (%d blocks of %d)\n",
              load_s, weight_gb, fp8_kv ? "fp8" : "bf16", kv_gb, num_blocks, block_size);
  if (!ttft.empty())
    std::printf(
        "first token (prompt %d, median of %d): %.1f ms back to back, %.1f ms a request "
        "(each prompt followed by its %d-token answer)\n",
        f.prompt, f.runs, Median(ttft) * 1e3, Median(ttft_request) * 1e3, f.new_tokens);
  std::printf("%6s %10s %12s %12s %14s %14s\n", "batch", "step ms", "tok/s/seq", "tok/s total",
              "weights GB/s", "% of copy bw");  // bandwidth: of all GPUs together
  for (const DecodeResult& d : results) {
    std::printf("%6d %10.3f %12.1f %12.1f %14.0f %13.0f%%\n", d.batch, d.step_ms, d.tok_s_per_seq,
                d.tok_s_total, d.weight_gb_s, 100.0 * d.weight_gb_s * 1e9 / (copy_bw * gpus));
  }
  if (through_engine) {
    std::printf(
        "RAG-shaped load through the engine (steps of up to %d tokens, %d of a prompt): %d "
        "requests (prompt %d, answer %d tokens, %s): %.1f output tok/s, %.1f s; first token "
        "%.2f s on average, %.2f s at most; between two tokens of an answer %.1f ms (median), "
        "%.1f ms (99th percentile), %.1f ms at most\n",
        engine_step, f.engine_chunk, engine_load.requests, f.prompt, f.new_tokens,
        f.load_interval_ms > 0 ? ("one every " + std::to_string(f.load_interval_ms) + " ms").c_str()
                               : "all at once",
        engine_load.output_tok_s, engine_load.seconds, engine_load.mean_first_token_s,
        engine_load.max_first_token_s, engine_load.token_gap_p50_ms, engine_load.token_gap_p99_ms,
        engine_load.token_gap_max_ms);
    std::printf(
        "  %d seats; steps feeding answers: up to %d tokens; middle half of the output tokens: "
        "%.1f output tok/s (%.1f s); preemptions %lld\n",
        options.max_batch_seqs,
        mixed_step_tokens > 0 ? std::min(mixed_step_tokens, engine_step) : engine_step,
        engine_load.steady_output_tok_s, engine_load.steady_seconds,
        static_cast<long long>(engine_load.preemptions));
  } else if (f.load > 0) {
    std::printf("RAG-shaped load: %d requests (prompt %d, answer %d tokens), %d at once (%d waves): "
                "%.1f output tok/s, %.1f s (prefills %.1f s)\n", load.requests, f.prompt, f.new_tokens,
                load.concurrency, load.waves, load.output_tok_s, load.seconds, load.prefill_seconds);
  }
  std::ostringstream js;
  js << "{\"bench\":\"rag\",\"model\":\"" << model << "\",\"gpu\":\"" << prop.name
     << "\",\"date\":\"" << Today() << "\",\"copy_gb_s\":" << copy_bw / 1e9
     << ",\"prompt\":" << f.prompt << ",\"new\":" << f.new_tokens
     << ",\"graphs\":" << (f.graphs ? "true" : "false") << ",\"gemv_max_rows\":" << f.gemv_max_rows
     << ",\"pdl\":" << (f.pdl ? "true" : "false")
     << ",\"fused_gemv\":" << (f.fused_gemv ? "true" : "false")
     << ",\"attn_splits\":" << f.attn_splits << ",\"attn_split_tiles\":" << f.attn_split_tiles
     << ",\"attn_simt\":" << (f.attn_simt ? "true" : "false") << ",\"gemv_split\":" << f.gemv_split
     << ",\"prefill_rows\":" << f.prefill_rows << ",\"tp\":" << gpus << ",\"allreduce\":\""
     << (gpus > 1 ? f.allreduce : "none") << "\",\"prefill_sums\":\""
     << (gpus > 1 ? f.prefill_sums : "none") << "\""
     << ",\"fp8\":" << (fp8_weights ? "true" : "false")
     << ",\"fp8_gemm\":" << (fp8_weights && f.fp8_gemm ? "true" : "false")
     << ",\"fp8_unit_rows\":" << f.fp8_unit_rows << ",\"kv_cache\":\"" << (fp8_kv ? "fp8" : "bf16")
     << "\""
     << ",\"ttft_ms\":" << Median(ttft) * 1e3 << ",\"ttft_runs_ms\":[";
  for (size_t i = 0; i < ttft.size(); ++i) js << (i ? "," : "") << ttft[i] * 1e3;
  js << "],\"ttft_request_ms\":" << Median(ttft_request) * 1e3 << ",\"ttft_request_runs_ms\":[";
  for (size_t i = 0; i < ttft_request.size(); ++i) js << (i ? "," : "") << ttft_request[i] * 1e3;
  js << "],\"decode\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    const DecodeResult& d = results[i];
    js << (i ? "," : "") << "{\"batch\":" << d.batch << ",\"step_ms\":" << d.step_ms
       << ",\"tok_s_per_seq\":" << d.tok_s_per_seq << ",\"tok_s_total\":" << d.tok_s_total
       << ",\"weight_gb_s\":" << d.weight_gb_s << ",\"total_gb_s\":" << d.total_gb_s << "}";
  }
  js << "]";
  if (through_engine) {
    js << ",\"engine_load\":{\"requests\":" << engine_load.requests
       << ",\"step_tokens\":" << engine_step << ",\"prompt_chunk\":" << f.engine_chunk
       << ",\"seconds\":" << engine_load.seconds
       << ",\"output_tokens\":" << engine_load.output_tokens
       << ",\"output_tok_s\":" << engine_load.output_tok_s
       << ",\"mean_first_token_s\":" << engine_load.mean_first_token_s
       << ",\"max_first_token_s\":" << engine_load.max_first_token_s
       << ",\"interval_ms\":" << f.load_interval_ms
       << ",\"token_gap_p50_ms\":" << engine_load.token_gap_p50_ms
       << ",\"token_gap_p99_ms\":" << engine_load.token_gap_p99_ms
       << ",\"token_gap_max_ms\":" << engine_load.token_gap_max_ms
       << ",\"seats\":" << options.max_batch_seqs << ",\"mixed_step_tokens\":" << mixed_step_tokens
       << ",\"steady_seconds\":" << engine_load.steady_seconds
       << ",\"steady_output_tok_s\":" << engine_load.steady_output_tok_s
       << ",\"preemptions\":" << engine_load.preemptions << "}";
  } else if (f.load > 0) {
    js << ",\"load\":{\"requests\":" << load.requests << ",\"concurrency\":" << load.concurrency
       << ",\"waves\":" << load.waves << ",\"seconds\":" << load.seconds << ",\"prefill_seconds\":"
       << load.prefill_seconds << ",\"output_tok_s\":" << load.output_tok_s << "}";
  }
  js << "}";
  std::printf("%s\n", js.str().c_str());
  if (!f.json_path.empty()) {
    std::ofstream out(f.json_path);
    out << js.str() << "\n";
    if (!out) return Internal("bench: cannot write " + f.json_path);
  }
  return Status::Ok();
}

}  // namespace

int RunBenchCommand(const std::vector<std::string>& args,
                    const std::vector<std::string>& self_words) {
  if (std::find(args.begin(), args.end(), "--help") != args.end()) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  BenchFlags flags;
  const std::string error = ParseFlags(args, &flags);
  if (!error.empty()) {
    std::fprintf(stderr, "rag bench: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  if (!CudaDeviceAvailable()) {
    std::fprintf(stderr, "rag bench: no CUDA device\n");
    return 1;
  }
  BenchSelf self{{"/proc/self/exe"}, args};  // re-run as this very binary
  self.command.insert(self.command.end(), self_words.begin(), self_words.end());
  ChildProcesses children;
  Status s = Run(flags, self, children);  // the backend is gone when Run returns: followers stop
  const Status followers = children.WaitAll();
  if (s.ok()) s = followers;
  if (!s.ok()) {
    std::fprintf(stderr, "rag bench: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace rag
