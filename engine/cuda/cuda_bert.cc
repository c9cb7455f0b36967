#include "engine/cuda/cuda_bert.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <vector>

#include "engine/cuda/device_buffer.h"
#include "engine/cuda/matmul.h"
#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

// Device pointers of one layer's tensors (inside the encoder's single weight allocation).
struct LayerPtrs {
  const float *qkv_w, *qkv_b, *o_w, *o_b, *ln1_g, *ln1_b, *up_w, *up_b, *down_w, *down_b, *ln2_g,
      *ln2_b;
};

class CudaBertEncoder : public BertEncoder {
 public:
  ~CudaBertEncoder() override {
    if (blas_ != nullptr) cublasDestroy(blas_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }

  const BertConfig& config() const override { return config_; }

  Status Init(const BertHostWeights& w, int device) {
    config_ = w.config;
    device_ = device;
    RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
    RAG_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    RAG_RETURN_IF_ERROR(CublasStatus(cublasCreate(&blas_), "cublasCreate"));
    RAG_RETURN_IF_ERROR(CublasStatus(cublasSetStream(blas_, stream_), "cublasSetStream"));
    // Plain FP32 products (cuBLAS would take TF32 only when asked; say so anyway).
    RAG_RETURN_IF_ERROR(CublasStatus(cublasSetMathMode(blas_, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode"));

    // Every tensor in one allocation, in this order.
    std::vector<const std::vector<float>*> tensors = {&w.word_emb, &w.pos_emb, &w.type_emb,
                                                      &w.emb_ln_g, &w.emb_ln_b};
    for (const BertHostWeights::Layer& l : w.layers) {
      for (const std::vector<float>* t : {&l.qkv_w, &l.qkv_b, &l.o_w, &l.o_b, &l.ln1_g, &l.ln1_b,
                                          &l.up_w, &l.up_b, &l.down_w, &l.down_b, &l.ln2_g, &l.ln2_b}) {
        tensors.push_back(t);
      }
    }
    size_t total = 0;
    for (const auto* t : tensors) total += (t->size() + 3) / 4 * 4;  // 16-byte aligned starts
    RAG_ASSIGN_OR_RETURN(weights_, DeviceBuffer::Allocate(total * sizeof(float), "BERT weights"));
    std::vector<const float*> ptrs;
    float* at = weights_.as<float>();
    for (const auto* t : tensors) {
      RAG_CUDA_RETURN_IF_ERROR(
          cudaMemcpy(at, t->data(), t->size() * sizeof(float), cudaMemcpyHostToDevice));
      ptrs.push_back(at);
      at += (t->size() + 3) / 4 * 4;
    }
    word_ = ptrs[0];
    pos_ = ptrs[1];
    type_ = ptrs[2];
    emb_g_ = ptrs[3];
    emb_b_ = ptrs[4];
    for (size_t i = 0; i < w.layers.size(); ++i) {
      const float* const* p = ptrs.data() + 5 + 12 * i;
      layers_.push_back({p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11]});
    }
    return Status::Ok();
  }

  Status Encode(const std::vector<std::vector<int32_t>>& seqs, std::vector<float>* out) override {
    RAG_ASSIGN_OR_RETURN(const std::vector<int64_t> starts, PackedStarts(config_, seqs));
    const int64_t T = starts.back(), S = static_cast<int64_t>(seqs.size());
    const int64_t H = config_.hidden, I = config_.intermediate;
    out->assign(static_cast<size_t>(T * H), 0.0f);
    if (T == 0) return Status::Ok();
    RAG_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
    RAG_RETURN_IF_ERROR(Reserve(T, S));
    std::vector<int32_t> ids, positions, starts32(starts.begin(), starts.end());
    ids.reserve(static_cast<size_t>(T));
    positions.reserve(static_cast<size_t>(T));
    int64_t max_len = 0;
    for (const auto& s : seqs) {
      ids.insert(ids.end(), s.begin(), s.end());
      for (size_t i = 0; i < s.size(); ++i) positions.push_back(static_cast<int32_t>(i));
      max_len = std::max<int64_t>(max_len, static_cast<int64_t>(s.size()));
    }
    cudaStream_t st = stream_;
    RAG_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ids_, ids.data(), ids.size() * 4, cudaMemcpyHostToDevice, st));
    RAG_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(positions_, positions.data(), positions.size() * 4, cudaMemcpyHostToDevice, st));
    RAG_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(starts_, starts32.data(), starts32.size() * 4, cudaMemcpyHostToDevice, st));
    const float eps = config_.layer_norm_eps;
    RAG_RETURN_IF_ERROR(
        BertEmbedLayerNorm(ids_, positions_, T, H, word_, pos_, type_, emb_g_, emb_b_, eps, x_, st));
    for (const LayerPtrs& l : layers_) {
      RAG_RETURN_IF_ERROR(Linear(x_, T, H, l.qkv_w, 3 * H, qkv_));
      RAG_RETURN_IF_ERROR(BiasGelu(qkv_, l.qkv_b, T, 3 * H, /*gelu=*/false, st));
      RAG_RETURN_IF_ERROR(BertAttention(qkv_, starts_, S, max_len, config_.heads, H, ctx_, st));
      RAG_RETURN_IF_ERROR(Linear(ctx_, T, H, l.o_w, H, proj_));
      RAG_RETURN_IF_ERROR(BiasResidualLayerNorm(x_, proj_, l.o_b, l.ln1_g, l.ln1_b, T, H, eps, st));
      RAG_RETURN_IF_ERROR(Linear(x_, T, H, l.up_w, I, up_));
      RAG_RETURN_IF_ERROR(BiasGelu(up_, l.up_b, T, I, /*gelu=*/true, st));
      RAG_RETURN_IF_ERROR(Linear(up_, T, I, l.down_w, H, proj_));
      RAG_RETURN_IF_ERROR(BiasResidualLayerNorm(x_, proj_, l.down_b, l.ln2_g, l.ln2_b, T, H, eps, st));
    }
    RAG_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(out->data(), x_, out->size() * sizeof(float), cudaMemcpyDeviceToHost, st));
    RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(st));
    return Status::Ok();
  }

 private:
  // y (T, n) = x (T, k) w^T, w (n, k) row-major: in cuBLAS's column-major terms
  // y^T (n x T) = w^T (n x k, w read as k x n, transposed) x^T (k x T).
  Status Linear(const float* x, int64_t T, int64_t k, const float* w, int64_t n, float* y) {
    const float one = 1.0f, zero = 0.0f;
    return CublasStatus(cublasSgemm(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                                    static_cast<int>(T), static_cast<int>(k), &one, w,
                                    static_cast<int>(k), x, static_cast<int>(k), &zero, y,
                                    static_cast<int>(n)),
                        "cublasSgemm");
  }

  // Activation buffers for T tokens in S sequences (grown, never shrunk).
  Status Reserve(int64_t T, int64_t S) {
    if (T <= cap_tokens_ && S <= cap_seqs_) return Status::Ok();
    const int64_t t = std::max(T, cap_tokens_), s = std::max(S, cap_seqs_);
    const int64_t H = config_.hidden, I = config_.intermediate;
    auto round4 = [](int64_t v) { return (v + 3) / 4 * 4; };
    const int64_t floats = round4(t * H) * 3 + round4(t * 3 * H) + round4(t * I);
    const int64_t ints = round4(t) * 2 + round4(s + 1);
    RAG_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream_));  // the old buffers may be in use
    activations_ = DeviceBuffer();
    RAG_ASSIGN_OR_RETURN(activations_,
                         DeviceBuffer::Allocate(static_cast<size_t>(floats + ints) * 4, "BERT activations"));
    float* f = activations_.as<float>();
    x_ = f;
    ctx_ = x_ + round4(t * H);
    proj_ = ctx_ + round4(t * H);
    qkv_ = proj_ + round4(t * H);
    up_ = qkv_ + round4(t * 3 * H);
    ids_ = reinterpret_cast<int32_t*>(up_ + round4(t * I));
    positions_ = ids_ + round4(t);
    starts_ = positions_ + round4(t);
    cap_tokens_ = t;
    cap_seqs_ = s;
    return Status::Ok();
  }

  BertConfig config_;
  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceBuffer weights_;
  const float *word_ = nullptr, *pos_ = nullptr, *type_ = nullptr, *emb_g_ = nullptr,
              *emb_b_ = nullptr;
  std::vector<LayerPtrs> layers_;
  DeviceBuffer activations_;
  int64_t cap_tokens_ = 0, cap_seqs_ = 0;
  float *x_ = nullptr, *ctx_ = nullptr, *proj_ = nullptr, *qkv_ = nullptr, *up_ = nullptr;
  int32_t *ids_ = nullptr, *positions_ = nullptr, *starts_ = nullptr;
};

}  // namespace

StatusOr<std::unique_ptr<BertEncoder>> CreateCudaBertEncoder(const BertHostWeights& weights,
                                                             int device) {
  const BertConfig& c = weights.config;
  const int64_t d = c.heads > 0 ? c.hidden / c.heads : 0;
  if (d % 32 != 0 || d > 128 || d == 0) {
    return InvalidArgument("BERT on CUDA: head size " + std::to_string(d) +
                           " (the attention kernel takes multiples of 32 up to 128)");
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    cudaGetLastError();
    return Unavailable("BERT on CUDA: no CUDA device " + std::to_string(device));
  }
  auto encoder = std::make_unique<CudaBertEncoder>();
  RAG_RETURN_IF_ERROR(encoder->Init(weights, device));
  return std::unique_ptr<BertEncoder>(std::move(encoder));
}

}  // namespace rag
