#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <cstring>

#include "common/logging.h"
#include "engine/cpu/rope.h"
#include "engine/safetensors.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

constexpr int kDecodeBuckets[] = {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128};

// The smallest decode bucket holding n sequences (n itself past the largest).
int DecodeBucket(int64_t n) {
  for (int b : kDecodeBuckets) {
    if (b >= n) return b;
  }
  return static_cast<int>(n);
}

size_t AlignUp(size_t bytes) { return (bytes + 255) / 256 * 256; }

// Carves typed sub-buffers out of one allocation (sizes first, then pointers).
class Carver {
 public:
  template <typename T>
  size_t Add(int64_t count) {
    size_t at = total_;
    total_ += AlignUp(static_cast<size_t>(count) * sizeof(T));
    return at;
  }
  size_t total() const { return total_; }

 private:
  size_t total_ = 0;
};

}  // namespace

// One step's shapes and host-side metadata.
struct CudaBackend::StepPlan {
  bool decode = false;       // every sequence feeds one token: the graph-capturable path
  int64_t n_tokens = 0;      // rows fed (decode: the bucket, padding included)
  int64_t n_seqs = 0;        // sequences (decode: the bucket)
  int64_t real_seqs = 0;     // sequences of the batch
  int64_t max_q_len = 0;     // prefill: longest chunk
  // Prefill steps: how many sequences at the front feed one token (decoding beside prompt
  // chunks, as the Engine's scheduler orders them): their attention takes the decode kernel.
  int64_t leading_single = 0;
  int64_t n_logit_rows = 0;  // rows of logits computed (decode: the bucket)
  int64_t real_logit_rows = 0;
  bool gather = false;            // logits rows picked from the fed rows (prefill)
  bool upload_tokens = true;      // false: tokens are the previous step's argmax (GreedyDecode)
  bool upload_tables = true;
  std::vector<int64_t> slots;
  std::vector<int32_t> tokens, positions, context_lens, q_offsets, q_lens, start_pos, logit_rows,
      tables;  // tables: (n_seqs, max_blocks_per_seq)
};

CudaBackend::MetaLayout CudaBackend::LayoutMeta(int64_t T, int64_t S, int64_t R, int64_t W) {
  Carver c;
  MetaLayout m;
  m.slots = c.Add<int64_t>(T);
  m.tokens = c.Add<int32_t>(T);
  m.positions = c.Add<int32_t>(T);
  m.context_lens = c.Add<int32_t>(S);
  m.q_offsets = c.Add<int32_t>(S);
  m.q_lens = c.Add<int32_t>(S);
  m.start_pos = c.Add<int32_t>(S);
  m.logit_rows = c.Add<int32_t>(R);
  m.tables = c.Add<int32_t>(S * W);
  m.total = c.total();
  return m;
}

bool CudaDeviceAvailable() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) cudaGetLastError();
  return err == cudaSuccess && count > 0;
}

CudaBackend::CudaBackend(ModelConfig config, CudaWeights weights, const CudaBackendOptions& options)
    : config_(std::move(config)), weights_(std::move(weights)), options_(options) {}

CudaBackend::~CudaBackend() {
  for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

Status CudaBackend::Init() {
  const ModelConfig& c = config_;
  const CudaBackendOptions& o = options_;
  if (o.block_size <= 0 || o.max_batch_tokens <= 0 || o.max_batch_seqs <= 0 ||
      o.max_logit_rows <= 0) {
    return InvalidArgument("cuda backend: block_size, max_batch_tokens, max_batch_seqs and "
                           "max_logit_rows must be positive");
  }
  if (c.head_dim % 32 != 0 || c.head_dim > 256) {
    return Unsupported("cuda backend: head_dim " + std::to_string(c.head_dim) +
                       " (the attention kernels take multiples of 32 up to 256)");
  }
  max_seq_len_ = o.max_seq_len > 0 ? o.max_seq_len
                                   : static_cast<int>(std::min<int64_t>(c.max_position_embeddings, 16384));
  max_blocks_per_seq_ = (max_seq_len_ + o.block_size - 1) / o.block_size;
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  RAG_ASSIGN_OR_RETURN(matmul_, CudaMatMul::Create(stream_, o.gemv_max_rows));

  const int64_t T = o.max_batch_tokens, S = std::max(o.max_batch_seqs, kDecodeBuckets[0]);
  const int64_t R = std::max<int64_t>(o.max_logit_rows, DecodeBucket(S));
  const int64_t dim = c.hidden_size, hd = c.head_dim, inter = c.intermediate_size;
  const int64_t q_dim = c.num_attention_heads * hd, kv_dim = c.num_key_value_heads * hd;
  const int64_t bucket_s = DecodeBucket(S);
  Carver a;
  const size_t x = a.Add<float>(T * dim), xn = a.Add<__nv_bfloat16>(T * dim);
  const size_t qkv = a.Add<float>(T * (q_dim + 2 * kv_dim)), attn = a.Add<__nv_bfloat16>(T * q_dim);
  const size_t gate_up = a.Add<float>(T * 2 * inter);
  const size_t act = a.Add<__nv_bfloat16>(T * inter), xl = a.Add<__nv_bfloat16>(R * dim);
  const size_t x_rows = a.Add<float>(R * dim), attn_rows = a.Add<__nv_bfloat16>(R * q_dim);
  const size_t logits = a.Add<float>(R * c.vocab_size), argmax = a.Add<int32_t>(R);
  lm_rows_ = weights_.lm_head_rows > 0 ? weights_.lm_head_rows : c.vocab_size;
  const bool tp = tensor_parallel();
  const int64_t partial_rows = std::max(T, R);
  const size_t partial_o = tp ? a.Add<float>(partial_rows * dim) : 0;
  const size_t partial_down = tp ? a.Add<float>(partial_rows * dim) : 0;
  const size_t logits_local = tp ? a.Add<float>(R * lm_rows_) : 0;
  const size_t ws = a.Add<float>(PagedDecodeAttentionWorkspace(
      bucket_s, c.num_attention_heads, c.num_key_value_heads, hd, max_blocks_per_seq_, o.block_size));
  const size_t counters = a.Add<int32_t>(bucket_s * c.num_attention_heads);
  const size_t sampling = a.Add<int32_t>(4 * R);  // ForwardSample's per-row parameters
  const size_t inv = a.Add<float>(hd / 2), rope_table = a.Add<float2>(T * (hd / 2));
  RAG_ASSIGN_OR_RETURN(activations_, DeviceBuffer::Allocate(a.total(), "activation buffers"));
  if (weights_.fp8 && o.fp8_gemm) {
    // o and down add into the residual stream (dim columns).
    auto fp8 = Fp8MatMul::Create(stream_, std::max(T, R), std::max({dim, q_dim, inter}), dim);
    if (fp8.ok()) {
      fp8_matmul_ = std::move(*fp8);
      if (o.fp8_unit_scale_max_rows >= 0)
        fp8_matmul_->SetUnitScaleMaxRows(o.fp8_unit_scale_max_rows);
    } else {
      RAG_LOG(WARN) << "cuda backend: FP8 projections widened to bf16 for their GEMMs: " << fp8.status().ToString();
    }
  }
  if (weights_.fp8) {
    const int64_t largest = std::max({(q_dim + 2 * kv_dim) * dim, dim * q_dim, 2 * inter * dim, dim * inter});
    RAG_ASSIGN_OR_RETURN(fp8_scratch_, DeviceBuffer::Allocate(static_cast<size_t>(largest) * 2,
                                                              "the FP8 dequantisation buffer"));
  }
  char* base = activations_.as<char>();
  x_ = reinterpret_cast<float*>(base + x);
  xn_ = reinterpret_cast<__nv_bfloat16*>(base + xn);
  qkv_ = reinterpret_cast<float*>(base + qkv);
  attn_ = reinterpret_cast<__nv_bfloat16*>(base + attn);
  gate_up_ = reinterpret_cast<float*>(base + gate_up);
  act_ = reinterpret_cast<__nv_bfloat16*>(base + act);
  xl_ = reinterpret_cast<__nv_bfloat16*>(base + xl);
  x_rows_ = reinterpret_cast<float*>(base + x_rows);
  attn_rows_ = reinterpret_cast<__nv_bfloat16*>(base + attn_rows);
  logits_ = reinterpret_cast<float*>(base + logits);
  argmax_ = reinterpret_cast<int32_t*>(base + argmax);
  attn_workspace_ = reinterpret_cast<float*>(base + ws);
  inv_freq_ = reinterpret_cast<float*>(base + inv);
  rope_table_ = reinterpret_cast<float2*>(base + rope_table);
  attn_split_counters_ = reinterpret_cast<int32_t*>(base + counters);
  sampling_ = base + sampling;
  if (tp) {  // registered in this order on every rank
    partial_o_ = reinterpret_cast<float*>(base + partial_o);
    partial_down_ = reinterpret_cast<float*>(base + partial_down);
    logits_local_ = reinterpret_cast<float*>(base + logits_local);
    TpCollectives& comm = *options_.collectives;
    RAG_RETURN_IF_ERROR(comm.Register(partial_o_, static_cast<size_t>(partial_rows * dim) * 4));
    RAG_RETURN_IF_ERROR(comm.Register(partial_down_, static_cast<size_t>(partial_rows * dim) * 4));
    RAG_RETURN_IF_ERROR(comm.Register(logits_local_, static_cast<size_t>(R * lm_rows_) * 4));
  }
  RAG_CUDA_RETURN_IF_ERROR(
      cudaMemset(attn_split_counters_, 0, static_cast<size_t>(bucket_s * c.num_attention_heads) * 4));
  const std::vector<float> inv_freq = ComputeRopeInvFreq(c);
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpy(inv_freq_, inv_freq.data(), inv_freq.size() * sizeof(float),
                                      cudaMemcpyHostToDevice));

  max_logit_rows_ = R;
  meta_layout_ = LayoutMeta(T, bucket_s, R, max_blocks_per_seq_);
  RAG_ASSIGN_OR_RETURN(meta_, DeviceBuffer::Allocate(meta_layout_.total, "step metadata"));
  RAG_ASSIGN_OR_RETURN(meta_host_, PinnedBuffer::Allocate(meta_layout_.total));
  RAG_ASSIGN_OR_RETURN(logits_host_, PinnedBuffer::Allocate(static_cast<size_t>(R * c.vocab_size) * 4));
  RAG_ASSIGN_OR_RETURN(sampling_host_, PinnedBuffer::Allocate(static_cast<size_t>(4 * R) * 4));

  // The KV cache takes what is left, within the memory fraction.
  kv_fp8_ = o.kv_cache == KvCacheType::kFp8 || (o.kv_cache == KvCacheType::kAuto && weights_.fp8);
  const size_t block_bytes = static_cast<size_t>(c.num_hidden_layers) * KvLayerBlockBytes();
  int64_t blocks = o.num_blocks;
  if (blocks <= 0) {
    size_t free_bytes = 0, total = 0;
    RAG_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total));
    const double reserve = (1.0 - o.memory_fraction) * static_cast<double>(total);
    const double budget = static_cast<double>(free_bytes) - reserve;
    blocks = budget > 0 ? static_cast<int64_t>(budget / static_cast<double>(block_bytes)) : 0;
    blocks = std::min<int64_t>(blocks, static_cast<int64_t>(S) * max_blocks_per_seq_);
    if (blocks < 1) {
      return ResourceExhausted("cuda backend: no device memory left for the KV cache after " +
                               std::to_string(weight_bytes() >> 20) + " MiB of weights (" +
                               std::to_string(free_bytes >> 20) + " MiB free of " +
                               std::to_string(total >> 20) + ")");
    }
  }
  num_blocks_ = static_cast<int>(std::min<int64_t>(blocks, INT32_MAX));
  RAG_ASSIGN_OR_RETURN(kv_cache_, DeviceBuffer::Allocate(block_bytes * num_blocks_, "the KV cache"));
  RAG_LOG(INFO) << "cuda backend: weights " << (weight_bytes() >> 20) << " MiB"
                << (weights_.fp8 ? " (FP8 projections)" : "") << ", KV cache "
                << (kv_fp8_ ? "(FP8) " : "") << num_blocks_ << " blocks of " << o.block_size << " tokens ("
                << (kv_cache_.bytes() >> 20) << " MiB), buffers " << (a.total() >> 20) << " MiB";
  return Status::Ok();
}

size_t CudaBackend::KvLayerBlockBytes() const {
  const size_t rows = static_cast<size_t>(config_.num_key_value_heads) * options_.block_size;
  const size_t hd = static_cast<size_t>(config_.head_dim);
  return 2 * rows * (kv_fp8_ ? hd + sizeof(float) : hd * sizeof(__nv_bfloat16));
}

__nv_bfloat16* CudaBackend::KCache(int64_t layer) const {
  if (kv_fp8_) return nullptr;
  const int64_t per = static_cast<int64_t>(num_blocks_) * config_.num_key_value_heads *
                      options_.block_size * config_.head_dim;
  return kv_cache_.as<__nv_bfloat16>() + (2 * layer) * per;
}

__nv_bfloat16* CudaBackend::VCache(int64_t layer) const {
  if (kv_fp8_) return nullptr;
  const int64_t per = static_cast<int64_t>(num_blocks_) * config_.num_key_value_heads *
                      options_.block_size * config_.head_dim;
  return kv_cache_.as<__nv_bfloat16>() + (2 * layer + 1) * per;
}

Fp8KvCache CudaBackend::Fp8Cache(int64_t layer) const {
  const size_t rows = static_cast<size_t>(num_blocks_) * config_.num_key_value_heads *
                      options_.block_size;
  const size_t codes = rows * static_cast<size_t>(config_.head_dim);  // a multiple of 32 bytes
  uint8_t* base = kv_cache_.as<uint8_t>() +
                  static_cast<size_t>(layer) * static_cast<size_t>(num_blocks_) * KvLayerBlockBytes();
  Fp8KvCache cache;
  cache.k = reinterpret_cast<__nv_fp8_e4m3*>(base);
  cache.v = reinterpret_cast<__nv_fp8_e4m3*>(base + codes);
  cache.k_scale = reinterpret_cast<float*>(base + 2 * codes);
  cache.v_scale = cache.k_scale + rows;
  return cache;
}

StatusOr<CudaBackend::StepPlan> CudaBackend::Plan(const ForwardBatch& batch,
                                                  bool tokens_on_device) const {
  RAG_RETURN_IF_ERROR(ValidateForwardBatch(batch, config_, options_.block_size, num_blocks_));
  const int64_t n_seqs = static_cast<int64_t>(batch.sequences.size());
  if (n_seqs == 0) return InvalidArgument("cuda backend: empty batch");
  if (n_seqs > options_.max_batch_seqs) {
    return InvalidArgument("cuda backend: " + std::to_string(n_seqs) + " sequences in one step (max " +
                           std::to_string(options_.max_batch_seqs) + ")");
  }
  StepPlan p;
  p.real_seqs = n_seqs;
  p.decode = true;
  int64_t n_tokens = 0, logit_rows = 0;
  for (const SequenceInput& s : batch.sequences) {
    if (s.tokens.size() != 1) p.decode = false;
    if (static_cast<int64_t>(s.start_pos + s.tokens.size()) > max_seq_len_) {
      return InvalidArgument("cuda backend: sequence of " + std::to_string(s.start_pos + s.tokens.size()) +
                             " tokens is longer than max_seq_len " + std::to_string(max_seq_len_));
    }
    n_tokens += static_cast<int64_t>(s.tokens.size());
    logit_rows += s.all_logits ? static_cast<int64_t>(s.tokens.size()) : 1;
  }
  if (n_tokens > options_.max_batch_tokens) {
    return InvalidArgument("cuda backend: " + std::to_string(n_tokens) + " tokens in one step (max " +
                           std::to_string(options_.max_batch_tokens) + ")");
  }
  if (logit_rows > max_logit_rows_) {
    return InvalidArgument("cuda backend: " + std::to_string(logit_rows) + " logit rows in one step (max " +
                           std::to_string(max_logit_rows_) + ")");
  }
  if (tokens_on_device && !p.decode) return InvalidArgument("cuda backend: device tokens need a decode step");
  p.upload_tokens = !tokens_on_device;
  p.real_logit_rows = logit_rows;
  p.n_seqs = p.decode ? DecodeBucket(n_seqs) : n_seqs;
  p.n_tokens = p.decode ? p.n_seqs : n_tokens;
  p.gather = !p.decode;
  p.n_logit_rows = p.decode ? p.n_seqs : logit_rows;
  const int64_t W = max_blocks_per_seq_, bs = options_.block_size;
  p.tables.assign(static_cast<size_t>(p.n_seqs * W), 0);
  p.context_lens.assign(static_cast<size_t>(p.n_seqs), 0);
  p.q_offsets.assign(static_cast<size_t>(p.n_seqs), 0);
  p.q_lens.assign(static_cast<size_t>(p.n_seqs), 0);
  p.start_pos.assign(static_cast<size_t>(p.n_seqs), 0);
  int64_t row = 0;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const SequenceInput& seq = batch.sequences[static_cast<size_t>(s)];
    const int64_t len = static_cast<int64_t>(seq.tokens.size());
    const int64_t end = seq.start_pos + len;
    const int64_t used_blocks = (end + bs - 1) / bs;
    std::copy(seq.block_table.begin(), seq.block_table.begin() + used_blocks,
              p.tables.begin() + s * W);
    p.context_lens[s] = static_cast<int32_t>(end);
    p.q_offsets[s] = static_cast<int32_t>(row);
    p.q_lens[s] = static_cast<int32_t>(len);
    p.start_pos[s] = seq.start_pos;
    p.max_q_len = std::max(p.max_q_len, len);
    for (int64_t i = 0; i < len; ++i) {
      const int64_t pos = seq.start_pos + i;
      p.tokens.push_back(seq.tokens[static_cast<size_t>(i)]);
      p.positions.push_back(static_cast<int32_t>(pos));
      p.slots.push_back(static_cast<int64_t>(seq.block_table[static_cast<size_t>(pos / bs)]) * bs + pos % bs);
      if (seq.all_logits || i + 1 == len) p.logit_rows.push_back(static_cast<int32_t>(row));
      ++row;
    }
  }
  if (!p.decode) {
    while (p.leading_single < n_seqs && p.q_lens[static_cast<size_t>(p.leading_single)] == 1)
      ++p.leading_single;
  }
  for (; row < p.n_tokens; ++row) {  // decode padding: computed, never written to the cache
    p.tokens.push_back(0);
    p.positions.push_back(0);
    p.slots.push_back(-1);
    p.logit_rows.push_back(static_cast<int32_t>(row));
  }
  return p;
}

Status CudaBackend::Upload(const StepPlan& p) {
  const MetaLayout& m = meta_layout_;
  // The host image is rewritten only after the previous step's copies have run.
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  char* host = meta_host_.as<char>();
  char* dev = meta_.as<char>();
  auto put = [&](size_t at, const void* src, size_t bytes) -> Status {
    if (bytes == 0) return Status::Ok();
    std::memcpy(host + at, src, bytes);
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dev + at, host + at, bytes, cudaMemcpyHostToDevice, stream_));
    return Status::Ok();
  };
  RAG_RETURN_IF_ERROR(put(m.slots, p.slots.data(), p.slots.size() * 8));
  if (p.upload_tokens) RAG_RETURN_IF_ERROR(put(m.tokens, p.tokens.data(), p.tokens.size() * 4));
  RAG_RETURN_IF_ERROR(put(m.positions, p.positions.data(), p.positions.size() * 4));
  RAG_RETURN_IF_ERROR(put(m.context_lens, p.context_lens.data(), p.context_lens.size() * 4));
  if (!p.decode) {
    RAG_RETURN_IF_ERROR(put(m.q_offsets, p.q_offsets.data(), p.q_offsets.size() * 4));
    RAG_RETURN_IF_ERROR(put(m.q_lens, p.q_lens.data(), p.q_lens.size() * 4));
    RAG_RETURN_IF_ERROR(put(m.start_pos, p.start_pos.data(), p.start_pos.size() * 4));
    RAG_RETURN_IF_ERROR(put(m.logit_rows, p.logit_rows.data(), p.logit_rows.size() * 4));
  }
  if (p.upload_tables) RAG_RETURN_IF_ERROR(put(m.tables, p.tables.data(), p.tables.size() * 4));
  return Status::Ok();
}

Status CudaBackend::EnqueueLayers(const StepPlan& p) {
  const ModelConfig& c = config_;
  const MetaLayout& m = meta_layout_;
  const char* meta = meta_.as<char>();
  const auto* slots = reinterpret_cast<const int64_t*>(meta + m.slots);
  const auto* tokens = reinterpret_cast<const int32_t*>(meta + m.tokens);
  const auto* positions = reinterpret_cast<const int32_t*>(meta + m.positions);
  const auto* context_lens = reinterpret_cast<const int32_t*>(meta + m.context_lens);
  const auto* q_offsets = reinterpret_cast<const int32_t*>(meta + m.q_offsets);
  const auto* q_lens = reinterpret_cast<const int32_t*>(meta + m.q_lens);
  const auto* start_pos = reinterpret_cast<const int32_t*>(meta + m.start_pos);
  const auto* logit_rows = reinterpret_cast<const int32_t*>(meta + m.logit_rows);
  const auto* tables = reinterpret_cast<const int32_t*>(meta + m.tables);

  const int64_t n = p.n_tokens, dim = c.hidden_size, hd = c.head_dim;
  const int64_t nq = c.num_attention_heads, nkv = c.num_key_value_heads;
  const int64_t q_dim = nq * hd, kv_dim = nkv * hd, qkv_dim = q_dim + 2 * kv_dim;
  const int64_t inter = c.intermediate_size, bs = options_.block_size, W = max_blocks_per_seq_;
  const float eps = static_cast<float>(c.rms_norm_eps);
  cudaStream_t st = stream_;

  // Up to gemv_max_rows rows the projections are our GEMVs, above cuBLAS GEMMs; either way the
  // o and down projections add into the residual stream x_ directly (GEMV accumulate, GEMM
  // beta = 1). One-token steps fold the RMSNorms and the SwiGLU into the GEMVs
  // (kernels/decode_gemv.cu, which read x without staging it: folding them into gemv.cu's
  // staging of x had measured slower, every block repeating the prologue), and RoPE + KV
  // append into the qkv one: 5 kernels a layer instead of 9.
  const bool gemv = n <= options_.gemv_max_rows;
  const int64_t vec = weights_.fp8 ? 16 : 8;  // weights of one 16-byte load
  const bool fused = gemv && n == 1 && options_.fused_gemv && dim % vec == 0 && q_dim % vec == 0 &&
                     inter % vec == 0 && hd % 4 == 0;
  const bool fp8 = weights_.fp8;
  // Prefill: after the last layer's attention only the rows whose logits are returned go on
  // (their o projection, MLP, norm and logits): the other rows' K/V are cached, the rest of their
  // last layer feeds nothing. 1/32 of an 8B prefill's GEMMs.
  const bool prune_last = p.gather && p.n_logit_rows < n;
  const int64_t last = c.num_hidden_layers - 1, R = p.n_logit_rows;
  // Prefill leaves RoPE of q to the attention kernel, which rotates each q row as it loads it
  // (a read and a write of every q row less: 2/3 of the RoPE pass's bytes); the step's angles
  // are computed once for all layers (the precise sin/cos cost more than the rotation).
  // A step that mixes decoding sequences (at the front) with prompt chunks runs the decode
  // attention kernel for the former and the prefill kernel for the rest: the prefill kernel
  // gives a one-token sequence a whole tile of query rows a head and walks its context with
  // them (at 63 decoding sequences of 5000 tokens beside a 4096-token chunk of the 70B model,
  // ~0.2 s a step more). The decode kernel wants q rotated, so such a step rotates q up front.
  const int64_t lead = p.decode ? 0 : p.leading_single;
  const bool attention_rotates_q = !p.decode && !fused && lead == 0;
  const float2* rope_table = attention_rotates_q ? rope_table_ : nullptr;
  const bool tp = tensor_parallel();
  // Tensor parallel: o and down write this rank's partial sums (the fused split-K GEMVs add
  // into a zeroed buffer: the first here, the rest zeroed by the all-reduces).
  float* o_out = tp ? partial_o_ : x_;
  float* down_out = tp ? partial_down_ : x_;
  if (tp && fused) RAG_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(partial_o_, 0, static_cast<size_t>(dim) * 4, st));
  RAG_RETURN_IF_ERROR(EmbeddingGather(weights_.embedding, c.vocab_size, dim, tokens, n, x_, st));
  if (rope_table != nullptr) {
    RAG_RETURN_IF_ERROR(RopeCosSinTable(positions, n, inv_freq_, hd / 2, rope_table_, st));
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    const CudaLayerWeights& w = weights_.layers[static_cast<size_t>(l)];
    if (fused && fp8) {
      RAG_RETURN_IF_ERROR(RmsNormGemvRopeKv(x_, w.attn_norm, eps, w.wqkv8.codes, w.wqkv8.scale, dim,
                                            nq, nkv, hd, positions, inv_freq_, slots, bs, KCache(l),
                                            VCache(l), qkv_, st));
    } else if (fused) {
      RAG_RETURN_IF_ERROR(RmsNormGemvRopeKv(x_, w.attn_norm, eps, w.wqkv, dim, nq, nkv, hd,
                                            positions, inv_freq_, slots, bs, KCache(l), VCache(l),
                                            qkv_, st));
    } else {
      RAG_RETURN_IF_ERROR(AddRmsNorm(x_, nullptr, w.attn_norm, n, dim, eps, xn_, st));
      RAG_RETURN_IF_ERROR(Project(xn_, n, w.wqkv, w.wqkv8, qkv_dim, dim, qkv_));
      RAG_RETURN_IF_ERROR(RopeKvAppend(qkv_, n, qkv_dim, nq, nkv, hd, positions, inv_freq_, slots,
                                       bs, KCache(l), VCache(l), st,
                                       /*rotate_q=*/!attention_rotates_q, rope_table));
    }
    // The FP8 cache: the kernels above only rotated (its bf16 caches are null); each (token, KV
    // head) row is quantized with its own scale here, which needs the whole row at once.
    if (kv_fp8_) {
      RAG_RETURN_IF_ERROR(KvAppend(qkv_ + q_dim, qkv_dim, qkv_ + q_dim + kv_dim, qkv_dim, slots, n,
                                   nkv, hd, bs, Fp8Cache(l), st));
    }
    if (p.decode && kv_fp8_) {
      RAG_RETURN_IF_ERROR(PagedDecodeAttention(qkv_, qkv_dim, Fp8Cache(l), tables, W, context_lens,
                                               p.n_seqs, nq, nkv, hd, bs, attn_workspace_, attn_,
                                               st, attn_split_counters_));
    } else if (p.decode) {
      RAG_RETURN_IF_ERROR(PagedDecodeAttention(qkv_, qkv_dim, KCache(l), VCache(l), tables, W,
                                               context_lens, p.n_seqs, nq, nkv, hd, bs,
                                               attn_workspace_, attn_, st, attn_split_counters_));
    } else {
      // Decoding sequences at the front: rows 0..lead-1, one a sequence.
      if (lead > 0 && kv_fp8_) {
        RAG_RETURN_IF_ERROR(PagedDecodeAttention(qkv_, qkv_dim, Fp8Cache(l), tables, W,
                                                 context_lens, lead, nq, nkv, hd, bs,
                                                 attn_workspace_, attn_, st, attn_split_counters_));
      } else if (lead > 0) {
        RAG_RETURN_IF_ERROR(PagedDecodeAttention(qkv_, qkv_dim, KCache(l), VCache(l), tables, W,
                                                 context_lens, lead, nq, nkv, hd, bs,
                                                 attn_workspace_, attn_, st, attn_split_counters_));
      }
      // The rest (q_offsets are rows of the whole step).
      const int64_t rest = p.n_seqs - lead;
      if (rest > 0 && kv_fp8_) {
        RAG_RETURN_IF_ERROR(PagedPrefillAttention(
            qkv_, qkv_dim, Fp8Cache(l), tables + lead * W, W, q_offsets + lead, q_lens + lead,
            start_pos + lead, rest, p.max_q_len, nq, nkv, hd, bs, attn_, st, rope_table));
      } else if (rest > 0) {
        RAG_RETURN_IF_ERROR(
            PagedPrefillAttention(qkv_, qkv_dim, KCache(l), VCache(l), tables + lead * W, W,
                                  q_offsets + lead, q_lens + lead, start_pos + lead, rest,
                                  p.max_q_len, nq, nkv, hd, bs, attn_, st, rope_table));
      }
    }
    if (fused) {
      if (fp8) {
        RAG_RETURN_IF_ERROR(DecodeGemvAccumulate(attn_, w.wo8.codes, w.wo8.scale, dim, q_dim, o_out, st));
      } else {
        RAG_RETURN_IF_ERROR(DecodeGemvAccumulate(attn_, w.wo, dim, q_dim, o_out, st));
      }
      RAG_RETURN_IF_ERROR(ReduceInto(partial_o_, x_, 1, partial_down_));
      if (fp8) {
        RAG_RETURN_IF_ERROR(RmsNormGemvSwiGlu(x_, w.mlp_norm, eps, w.w_gate_up8.codes,
                                              w.w_gate_up8.scale, inter, dim, act_, st));
        RAG_RETURN_IF_ERROR(DecodeGemvAccumulate(act_, w.w_down8.codes, w.w_down8.scale, dim, inter,
                                                 down_out, st));
      } else {
        RAG_RETURN_IF_ERROR(RmsNormGemvSwiGlu(x_, w.mlp_norm, eps, w.w_gate_up, inter, dim, act_, st));
        RAG_RETURN_IF_ERROR(DecodeGemvAccumulate(act_, w.w_down, dim, inter, down_out, st));
      }
      RAG_RETURN_IF_ERROR(ReduceInto(partial_down_, x_, 1, partial_o_));
    } else if (prune_last && l == last) {
      RAG_RETURN_IF_ERROR(GatherRows(attn_, q_dim, logit_rows, R, attn_rows_, st));
      RAG_RETURN_IF_ERROR(GatherRows(x_, dim, logit_rows, R, x_rows_, st));
      RAG_RETURN_IF_ERROR(ProjectIntoResidual(attn_rows_, R, w.wo, w.wo8, q_dim, partial_o_, x_rows_,
                                              /*bf16_sums=*/false));
      RAG_RETURN_IF_ERROR(EnqueueMlp(w, x_rows_, R, R <= options_.gemv_max_rows));
    } else {
      RAG_RETURN_IF_ERROR(ProjectIntoResidual(attn_, n, w.wo, w.wo8, q_dim, partial_o_, x_, Bf16Sums(gemv)));
      RAG_RETURN_IF_ERROR(EnqueueMlp(w, x_, n, gemv));
    }
  }
  if (prune_last) {  // x_rows_ holds exactly the logit rows
    RAG_RETURN_IF_ERROR(AddRmsNorm(x_rows_, nullptr, weights_.final_norm, R, dim, eps, xl_, st));
    return EnqueueLogits(xl_, nullptr, R);
  }
  if (fused && p.n_logit_rows == 1) return EnqueueLogits(nullptr, x_, 1);  // final norm folded in
  RAG_RETURN_IF_ERROR(AddRmsNorm(x_, nullptr, weights_.final_norm, n, dim, eps, xn_, st));
  const __nv_bfloat16* rows = xn_;
  if (p.gather) {
    RAG_RETURN_IF_ERROR(GatherRows(xn_, dim, logit_rows, p.n_logit_rows, xl_, st));
    rows = xl_;
  }
  return EnqueueLogits(rows, nullptr, p.n_logit_rows);
}

Status CudaBackend::EnqueueLogits(const __nv_bfloat16* rows, const float* x_fused, int64_t R) {
  const ModelConfig& c = config_;
  const int64_t dim = c.hidden_size;
  float* out = tensor_parallel() ? logits_local_ : logits_;
  if (x_fused != nullptr) {
    RAG_RETURN_IF_ERROR(RmsNormGemv(x_fused, weights_.final_norm, static_cast<float>(c.rms_norm_eps),
                                    weights_.lm_head, lm_rows_, dim, out, stream_));
  } else {
    RAG_RETURN_IF_ERROR(matmul_->Run(rows, R, weights_.lm_head, lm_rows_, dim, out));
  }
  if (tensor_parallel()) {
    RAG_RETURN_IF_ERROR(options_.collectives->GatherColumns(logits_local_, logits_, R, lm_rows_,
                                                            c.vocab_size, stream_));
  }
  return ArgmaxRows(logits_, R, c.vocab_size, argmax_, stream_);
}

Status CudaBackend::ReduceInto(float* partial, float* x, int64_t n, float* zero_next) {
  if (!tensor_parallel()) return Status::Ok();
  const int64_t count = n * config_.hidden_size;
  return options_.collectives->AllReduceAdd(partial, x, count, zero_next, stream_);
}

// o projection done: x += MLP(RMSNorm(x)) of n rows of the residual stream x, as separate
// kernels.
Status CudaBackend::EnqueueMlp(const CudaLayerWeights& w, float* x, int64_t n, bool gemv) {
  const ModelConfig& c = config_;
  const int64_t dim = c.hidden_size, inter = c.intermediate_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  cudaStream_t st = stream_;
  RAG_RETURN_IF_ERROR(AddRmsNorm(x, nullptr, w.mlp_norm, n, dim, eps, xn_, st));
  if (gemv) {  // fp32 gate|up straight from the GEMV
    RAG_RETURN_IF_ERROR(Project(xn_, n, w.w_gate_up, w.w_gate_up8, 2 * inter, dim, gate_up_));
    RAG_RETURN_IF_ERROR(SwiGlu(gate_up_, n, inter, act_, st));
  } else {  // bf16 from cuBLAS: the prefill's largest activation, read once by SwiGlu
    RAG_RETURN_IF_ERROR(Project(xn_, n, w.w_gate_up, w.w_gate_up8, 2 * inter, dim, gate_up_bf16()));
    RAG_RETURN_IF_ERROR(SwiGlu(gate_up_bf16(), n, inter, act_, st));
  }
  return ProjectIntoResidual(act_, n, w.w_down, w.w_down8, inter, partial_down_, x, Bf16Sums(gemv));
}

Status CudaBackend::ProjectIntoResidual(const __nv_bfloat16* in, int64_t n, const __nv_bfloat16* w,
                                        const CudaFp8Matrix& w8, int64_t cols, float* partial, float* x,
                                        bool bf16_sums) {
  const int64_t dim = config_.hidden_size;
  if (bf16_sums) {  // the partial buffer holds the bf16 sums (half its size)
    __nv_bfloat16* partial_bf16 = reinterpret_cast<__nv_bfloat16*>(partial);
    RAG_RETURN_IF_ERROR(Project(in, n, w, w8, dim, cols, partial_bf16));
    return options_.collectives->AllReduceAddBf16(partial_bf16, x, n * dim, stream_);
  }
  const bool tp = tensor_parallel();
  RAG_RETURN_IF_ERROR(Project(in, n, w, w8, dim, cols, tp ? partial : x, /*accumulate=*/!tp));
  return ReduceInto(partial, x, n, nullptr);
}

bool CudaBackend::UseFp8Gemm(const __nv_bfloat16* w, int64_t m, int64_t rows, int64_t cols) const {
  // cuBLASLt's FP8 GEMMs want leading dimensions that are multiples of 16.
  return w == nullptr && fp8_matmul_ != nullptr && m > matmul_->gemv_max_rows() && rows % 16 == 0 &&
         cols % 16 == 0;
}

Status CudaBackend::Project(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, const CudaFp8Matrix& w8,
                            int64_t rows, int64_t cols, float* y, bool accumulate) {
  if (UseFp8Gemm(w, m, rows, cols)) return fp8_matmul_->Run(x, m, w8.codes, w8.scale, rows, cols, y, accumulate);
  RAG_ASSIGN_OR_RETURN(const __nv_bfloat16* wb, Bf16Weight(w, w8, rows, cols));
  return matmul_->Run(x, m, wb, rows, cols, y, accumulate);
}

Status CudaBackend::Project(const __nv_bfloat16* x, int64_t m, const __nv_bfloat16* w, const CudaFp8Matrix& w8,
                            int64_t rows, int64_t cols, __nv_bfloat16* y) {
  if (UseFp8Gemm(w, m, rows, cols)) return fp8_matmul_->Run(x, m, w8.codes, w8.scale, rows, cols, y);
  RAG_ASSIGN_OR_RETURN(const __nv_bfloat16* wb, Bf16Weight(w, w8, rows, cols));
  return matmul_->Run(x, m, wb, rows, cols, y);
}

StatusOr<const __nv_bfloat16*> CudaBackend::Bf16Weight(const __nv_bfloat16* w, const CudaFp8Matrix& m,
                                                       int64_t rows, int64_t cols) {
  if (w != nullptr) return w;
  __nv_bfloat16* out = fp8_scratch_.as<__nv_bfloat16>();
  RAG_RETURN_IF_ERROR(DequantizeFp8Rows(m.codes, m.scale, rows, cols, out, stream_));
  return static_cast<const __nv_bfloat16*>(out);
}

Status CudaBackend::RunStep(const StepPlan& p) {
  if (!p.decode || !options_.cuda_graphs) return EnqueueLayers(p);
  const int bucket = static_cast<int>(p.n_seqs);
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) {
    // One eager run first: kernels that raise their shared-memory limit, and cuBLAS's
    // heuristics, do their one-time setup outside the capture. Running the step twice is
    // harmless: the replay rewrites the same cache slots with the same values.
    RAG_RETURN_IF_ERROR(EnqueueLayers(p));
    cudaGraph_t graph = nullptr;
    RAG_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    Status enqueued = EnqueueLayers(p);
    cudaError_t end = cudaStreamEndCapture(stream_, &graph);
    RAG_RETURN_IF_ERROR(enqueued);
    RAG_CUDA_RETURN_IF_ERROR(end);
    cudaGraphExec_t exec = nullptr;
    cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    RAG_CUDA_RETURN_IF_ERROR(inst);
    it = graphs_.emplace(bucket, exec).first;
    RAG_LOG(DEBUG) << "cuda backend: captured the decode step of batch bucket " << bucket;
  }
  RAG_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(it->second, stream_));
  return Status::Ok();
}

StatusOr<std::vector<float>> CudaBackend::Forward(const ForwardBatch& batch) {
  RAG_ASSIGN_OR_RETURN(StepPlan p, Plan(batch, false));
  RAG_RETURN_IF_ERROR(Upload(p));
  RAG_RETURN_IF_ERROR(RunStep(p));
  if (tensor_parallel() && options_.collectives->rank() != 0) {  // rank 0 returns the logits
    RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
    return std::vector<float>{};
  }
  const size_t count = static_cast<size_t>(p.real_logit_rows * config_.vocab_size);
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits_host_.as<float>(), logits_, count * sizeof(float),
                                           cudaMemcpyDeviceToHost, stream_));
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  const float* host = logits_host_.as<float>();
  return std::vector<float>(host, host + count);
}

StatusOr<std::vector<int32_t>> CudaBackend::ForwardArgmax(const ForwardBatch& batch) {
  RAG_ASSIGN_OR_RETURN(StepPlan p, Plan(batch, false));
  RAG_RETURN_IF_ERROR(Upload(p));
  RAG_RETURN_IF_ERROR(RunStep(p));
  std::vector<int32_t> ids(static_cast<size_t>(p.real_logit_rows));
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ids.data(), argmax_, ids.size() * 4,
                                           cudaMemcpyDeviceToHost, stream_));
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return ids;
}

StatusOr<std::vector<int32_t>> CudaBackend::ForwardSample(const ForwardBatch& batch,
                                                         const std::vector<DeviceSampling>& rows) {
  RAG_ASSIGN_OR_RETURN(StepPlan p, Plan(batch, false));
  const int64_t R = p.real_logit_rows;
  if (static_cast<int64_t>(rows.size()) != R) {
    return InvalidArgument("ForwardSample: " + std::to_string(rows.size()) + " sampling rows for " +
                           std::to_string(R) + " logit rows");
  }
  // Parameters as SampleRows takes them: temperatures, top-k, top-p, uniforms, R of each.
  char* host = sampling_host_.as<char>();
  auto* temperature = reinterpret_cast<float*>(host);
  auto* top_k = reinterpret_cast<int32_t*>(host) + R;
  auto* top_p = reinterpret_cast<float*>(host) + 2 * R;
  auto* uniform = reinterpret_cast<float*>(host) + 3 * R;
  for (int64_t i = 0; i < R; ++i) {
    const DeviceSampling& d = rows[static_cast<size_t>(i)];
    temperature[i] = d.temperature;
    top_k[i] = d.top_k;
    top_p[i] = d.top_p;
    uniform[i] = d.uniform;
  }
  RAG_RETURN_IF_ERROR(Upload(p));
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(sampling_, host, static_cast<size_t>(4 * R) * 4,
                                           cudaMemcpyHostToDevice, stream_));
  RAG_RETURN_IF_ERROR(RunStep(p));
  const auto* dev = reinterpret_cast<const float*>(sampling_);
  RAG_RETURN_IF_ERROR(SampleRows(logits_, R, config_.vocab_size, dev,
                                 reinterpret_cast<const int32_t*>(dev + R), dev + 2 * R,
                                 dev + 3 * R, nullptr, argmax_, stream_));
  std::vector<int32_t> ids(static_cast<size_t>(R));
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ids.data(), argmax_, ids.size() * 4,
                                           cudaMemcpyDeviceToHost, stream_));
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  return ids;
}

StatusOr<std::vector<std::vector<int32_t>>> CudaBackend::GreedyDecode(const ForwardBatch& batch,
                                                                     int steps) {
  if (steps < 1) return InvalidArgument("GreedyDecode: steps must be >= 1");
  ForwardBatch cur = batch;
  for (const SequenceInput& s : cur.sequences) {
    if (s.tokens.size() != 1) return InvalidArgument("GreedyDecode: one token per sequence");
    const int64_t end = s.start_pos + steps;
    if (static_cast<int64_t>(s.block_table.size()) * options_.block_size < end) {
      return InvalidArgument("GreedyDecode: block table does not cover " + std::to_string(steps) + " steps");
    }
  }
  const size_t n = cur.sequences.size();
  // argmax_ of each step is copied out at the end; keep them on the device meanwhile.
  RAG_ASSIGN_OR_RETURN(DeviceBuffer history,
                       DeviceBuffer::Allocate(static_cast<size_t>(steps) * n * 4, "decode history"));
  for (int step = 0; step < steps; ++step) {
    RAG_ASSIGN_OR_RETURN(StepPlan p, Plan(cur, step > 0));
    p.upload_tables = step == 0;
    RAG_RETURN_IF_ERROR(Upload(p));
    if (step > 0) {  // this step's tokens: the previous step's argmax
      RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(meta_.as<char>() + meta_layout_.tokens, argmax_, n * 4,
                                               cudaMemcpyDeviceToDevice, stream_));
    }
    RAG_RETURN_IF_ERROR(RunStep(p));
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(history.as<int32_t>() + static_cast<size_t>(step) * n,
                                             argmax_, n * 4, cudaMemcpyDeviceToDevice, stream_));
    for (SequenceInput& s : cur.sequences) ++s.start_pos;
  }
  std::vector<int32_t> flat(static_cast<size_t>(steps) * n);
  RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(flat.data(), history.get(), flat.size() * 4,
                                           cudaMemcpyDeviceToHost, stream_));
  RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));
  std::vector<std::vector<int32_t>> out(n);
  for (int step = 0; step < steps; ++step) {
    for (size_t s = 0; s < n; ++s) out[s].push_back(flat[static_cast<size_t>(step) * n + s]);
  }
  return out;
}

StatusOr<std::unique_ptr<CudaBackend>> CreateCudaBackend(ModelConfig config, CudaWeights weights,
                                                         const CudaBackendOptions& options) {
  RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  std::unique_ptr<CudaBackend> b(new CudaBackend(std::move(config), std::move(weights), options));
  RAG_RETURN_IF_ERROR(b->Init());
  return b;
}

StatusOr<std::unique_ptr<CudaBackend>> CreateCudaBackend(const std::string& model_dir,
                                                         const CudaBackendOptions& options) {
  if (!CudaDeviceAvailable()) return Unavailable("cuda backend: no CUDA device");
  RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(options.device));
  RAG_ASSIGN_OR_RETURN(ModelConfig config, LoadModelConfig(model_dir));
  RAG_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsReader> reader, SafetensorsReader::OpenDir(model_dir));
  RAG_ASSIGN_OR_RETURN(CudaWeights weights, LoadCudaWeights(config, *reader));
  return CreateCudaBackend(std::move(config), std::move(weights), options);
}

}  // namespace rag
