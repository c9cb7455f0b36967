// Prefill attention over the paged KV cache, bf16 or FP8 (e4m3 codes, one fp32 scale per row of
// head_dim): causal, GQA, chunked (a sequence's query rows start at start_pos; earlier positions
// are already in the cache). The kernels are templates on the cache kind (Bf16Kv or Fp8KvCache,
// a kernel parameter beside PrefillArgs); only the code that reads the cache differs.
//
// Fast path (head_dim 64 or 128, sm_80+ code, aligned pointers): flash-attention 2 on tensor
// cores.
//  - One CTA of 4 warps per (tile of kBq query rows, query head, sequence); each warp owns
//    16 * kMb consecutive rows, as kMb blocks of 16 (the m of mma.sync m16n8k16). kMb = 1 (64
//    rows a CTA): Q lives in registers as A fragments for the whole kernel. kMb = 2 (128 rows, as
//    FlashAttention-2 on sm_80): Q stays in shared memory and is read per k-step, and every K/V
//    fragment read from shared memory feeds two row blocks, which halves the shared-memory reads
//    per mma (the 16-row kernel is bound by them, not by the tensor cores). Q is scaled by
//    log2(e) / sqrt(head_dim) (and rotated first, when the caller left RoPE of q to us) and
//    rounded to bf16.
//  - K/V tiles of kBk = 64 positions are copied into shared memory with cp.async, double
//    buffered: tile j + 1 loads while tile j is multiplied. Only the tiles up to the CTA's last
//    query position are visited (causal skip), and a warp skips the math of a tile that lies
//    wholly past its own last row; positions past the CTA's last are zero-filled, never read.
//    FP8 cache: the tile loader reads the codes with plain 16-byte loads, multiplies them by
//    their row's scale and stores them as bf16 in the same layout, so all that follows is the
//    bf16 path's. These loads are synchronous (tile j + 1 no longer arrives under tile j's math;
//    the SM's other CTA hides part of the wait): affordable, attention is a few % of a prefill.
//  - Per tile: S = Q K^T (bf16 in, fp32 accumulate; K fragments by ldmatrix), the causal mask on
//    tiles that cross the diagonal, online softmax in fp32 on the accumulator fragments (row max
//    and sum over the 4 lanes of a row: two shuffles; exp2), then O += P V with P rounded to bf16
//    straight from the S accumulators: the m16n8 accumulators of two adjacent key n-tiles are
//    laid out exactly as an m16k16 A fragment (V fragments by ldmatrix.trans). O stays in fp32
//    registers and is divided by the row sums at the end.
//  - Shared rows are padded by 16 bytes so the 8 rows of one ldmatrix phase hit distinct banks.
//  - The last query tiles of each sequence (the longest) are launched first (blockIdx.y
//    reversed), which shortens the tail of the causal triangle.
//
// Simple path: one warp per (query row, head), lane l owns dims [l * kDpl, (l + 1) * kDpl), q . k
// reduced with shuffles, online softmax with expf, all fp32; any head_dim multiple of 32 up to
// 256 (FP8: the score is taken over the codes and multiplied by the key row's scale, the weight
// by the value row's scale before it weighs the codes). It is the fallback for shapes the fast
// path does not take and the second implementation the tests hold the fast one against.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <string>

#include "kernels/attention_util.cuh"
#include "kernels/cuda_check.h"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/prefill_attention.cuh"

namespace rag {
namespace {

using prefill::AllowDynamicSmem;
using prefill::Bf16Kv;
using prefill::kLog2e;
using prefill::LoadQQuads;
using prefill::PrefillArgs;
using prefill::PrefillCta;
using prefill::StoreFp8x16AsBf16;

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kBk = 64;  // key positions per K/V tile
constexpr int kStages = 2;
// SetPrefillAttentionRowsPerWarp: 16 or 32 (this file's kernel), 64 (the warpgroup kernel of
// prefill_attention_wgmma.cu, where usable), 0 (the default: 64 where usable, else 32).
std::atomic<int> g_rows_per_warp{0};

// ---- PTX wrappers (sm_80+; the fast kernel is never launched from code built for less) --------

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, register i receives
// matrix i with lane l holding row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 (Trans: the
// transposed matrix, i.e. rows 2 (l % 4) and 2 (l % 4) + 1 of column l / 4).
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const uint16_t* smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#else
  r[0] = r[1] = r[2] = r[3] = 0u;
#endif
}
__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const uint16_t* smem) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
#else
  r[0] = r[1] = r[2] = r[3] = 0u;
#endif
}

// d += a b for a 16x16 (row-major, bf16) by 16x8 (column-major, bf16) product, fp32 d. With
// g = lane / 4, t = lane % 4: a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..], a[2] = A[g][2t+8..],
// a[3] = A[g+8][2t+8..]; b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]; d[0..1] = D[g][2t..2t+1],
// d[2..3] = D[g+8][2t..2t+1] (lower column in the low half of each register).
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

// ---- fast path ----------------------------------------------------------------------------------
template <int kHeadDim, int kMb>
struct PrefillSmem {
  static constexpr int kRow = kHeadDim + 8;  // 16-byte pad: conflict-free ldmatrix
  static constexpr int kBq = 16 * kMb * kWarps;  // query rows per CTA
  uint16_t k[kStages][kBk][kRow];  // bf16 bits; kMb 1: k[1] holds the Q tile until tile 1 loads
  uint16_t v[kStages][kBk][kRow];
  uint16_t q[kMb == 1 ? 1 : kBq][kRow];  // kMb 2: the Q tile, for the whole kernel
  int64_t row_off[kStages][kBk];  // cache offset (elements) of each row of a tile; -1 past kv_end
};

// The K/V rows of row_off[stage] from the bf16 cache into k[stage] and v[stage], 16 bytes a
// cp.async (the caller commits them as one group); rows past kv_end are zero-filled.
template <int kHeadDim, int kMb>
__device__ __forceinline__ void IssueKvTile(const Bf16Kv& kv, PrefillSmem<kHeadDim, kMb>& sh,
                                            int stage) {
  constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
#pragma unroll
  for (int i = 0; i < kBk * kChunks / kThreads; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;
    const int64_t off = sh.row_off[stage][r];
    const int64_t src = off >= 0 ? off + c * 8 : 0;
    CopyAsync16(&sh.k[stage][r][c * 8], kv.k + src, off >= 0);
    CopyAsync16(&sh.v[stage][r][c * 8], kv.v + src, off >= 0);
  }
}

// Chunk idx of an FP8 tile (kBk rows of kChunks chunks of 16 codes) as (row r, chunk c): each 8
// consecutive threads (a quarter warp) take 4 consecutive chunks of two consecutive rows. Their
// 16-byte shared stores then hit all 8 bank groups of 16 bytes (the padded rows lie 9 or 17
// groups apart, a row's chunks 2 apart), where 8 chunks of one row would hit each group twice.
template <int kChunks>
__device__ __forceinline__ void Fp8TileChunk(int idx, int& r, int& c) {
  constexpr int kQuads = kChunks / 4;  // 4-chunk groups per row
  r = idx / (8 * kQuads) * 2 + idx / 4 % 2;
  c = idx / 8 % kQuads * 4 + idx % 4;
}

// The same tile from the FP8 cache, synchronously: all the thread's loads are issued before the
// first conversion (in flight together), then each chunk is widened into the bf16 layout; rows
// past kv_end get code 0 times scale 0. The barrier after CopyAsyncWait orders the stores before
// the tile's readers, the one that ends an iteration after the stage's previous readers.
template <int kHeadDim, int kMb>
__device__ __forceinline__ void IssueKvTile(const Fp8KvCache& kv, PrefillSmem<kHeadDim, kMb>& sh,
                                            int stage) {
  constexpr int kChunks = kHeadDim / 16;  // 16-code chunks per row
  constexpr int kPerThread = kBk * kChunks / kThreads;
  static_assert(kChunks % 4 == 0 && kPerThread * kThreads == kBk * kChunks, "whole quads");
  uint4 kc[kPerThread], vc[kPerThread];
  float ks[kPerThread], vs[kPerThread];
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    int r, c;
    Fp8TileChunk<kChunks>(static_cast<int>(threadIdx.x) + i * kThreads, r, c);
    const int64_t off = sh.row_off[stage][r];
    kc[i] = vc[i] = make_uint4(0u, 0u, 0u, 0u);
    ks[i] = vs[i] = 0.0f;
    if (off >= 0) {  // a row start: 16-byte aligned (head_dim 64 or 128 codes, aligned base)
      kc[i] = __ldcg(reinterpret_cast<const uint4*>(kv.k + off) + c);
      vc[i] = __ldcg(reinterpret_cast<const uint4*>(kv.v + off) + c);
      ks[i] = kv.k_scale[off / kHeadDim];
      vs[i] = kv.v_scale[off / kHeadDim];
    }
  }
#pragma unroll
  for (int i = 0; i < kPerThread; ++i) {
    int r, c;
    Fp8TileChunk<kChunks>(static_cast<int>(threadIdx.x) + i * kThreads, r, c);
    StoreFp8x16AsBf16(&sh.k[stage][r][c * 16], kc[i], ks[i]);
    StoreFp8x16AsBf16(&sh.v[stage][r][c * 16], vc[i], vs[i]);
  }
}

// The CTA's Q tile into qs (kBq rows of kRow): row r of q (at qg + r * q_stride, q row
// row0 + r) rotated by row row0 + r of a.rope_cos_sin when set, scaled by a.q_scale, rounded to
// bf16; rows at or past `rows` are zeros (computed on, never stored). A thread takes a float4 of
// the first half of a head and the float4 of the second half that pairs with it under RoPE.
template <int kHeadDim, int kBq, int kRow>
__device__ __forceinline__ void LoadQTile(const PrefillArgs& a, const float* qg, int rows,
                                          int64_t row0, uint16_t* qs) {
  constexpr int kHalf = kHeadDim / 2, kHalfQuads = kHalf / 4;
#pragma unroll 4
  for (int idx = threadIdx.x; idx < kBq * kHalfQuads; idx += kThreads) {
    const int r = idx / kHalfQuads, c = idx % kHalfQuads;
    uint2 lo, hi;
    LoadQQuads<kHeadDim>(a, qg, r, c, rows, row0, lo, hi);
    uint16_t* dst = qs + r * kRow + c * 4;
    *reinterpret_cast<uint2*>(dst) = lo;
    *reinterpret_cast<uint2*>(dst + kHalf) = hi;
  }
}

template <int kHeadDim, int kMb, typename Kv>
__global__ void __launch_bounds__(kThreads, 2)
    FlashPrefillKernel(const PrefillArgs a, const Kv kv) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // unreachable: the launcher takes the simple path for code built below sm_80
#endif
  using Smem = PrefillSmem<kHeadDim, kMb>;
  constexpr int kRow = Smem::kRow, kBq = Smem::kBq;
  constexpr int kWarpRows = 16 * kMb;
  constexpr int kKSteps = kHeadDim / 16;   // S = Q K^T: k-steps over head_dim
  constexpr int kKeyTiles = kBk / 8;       // S: n-tiles of 8 keys
  constexpr int kDimTiles = kHeadDim / 8;  // O: n-tiles of 8 dims
  static_assert(kMb != 1 || kBq == kBk, "kMb 1 stages the Q tile in a K tile buffer");
  static_assert(kStages * kBk == kThreads, "prologue: one row offset per thread");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  Smem& sh = *reinterpret_cast<Smem*>(smem_raw);
  const PrefillCta<kHeadDim, kBq> cta(a);
  if (cta.q0 >= cta.q_len) return;
  const int head = cta.head, q0 = cta.q0, start = cta.start, rows = cta.rows;
  const int64_t row0 = cta.row0;
  const int n_tiles = (cta.kv_end + kBk - 1) / kBk;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  auto row_offset = [&](int tile, int r) { return cta.KeyOffset(a, tile * kBk + r); };

  // Prologue: offsets of tiles 0 and 1, tile 0 in flight while the Q tile goes to shared memory
  // (kMb 1 stages it in k[1], which tile 0 does not use); kMb 1: the Q fragments to registers.
  if (tid / kBk < n_tiles) sh.row_off[tid / kBk][tid % kBk] = row_offset(tid / kBk, tid % kBk);
  __syncthreads();
  IssueKvTile(kv, sh, 0);
  CopyAsyncCommit();
  uint16_t* qs = kMb == 1 ? &sh.k[1][0][0] : &sh.q[0][0];
  LoadQTile<kHeadDim, kBq, kRow>(
      a, a.q + row0 * a.q_stride + static_cast<int64_t>(head) * kHeadDim, rows, row0, qs);
  __syncthreads();
  uint32_t qa[kMb == 1 ? kKSteps : 1][4];
  if constexpr (kMb == 1) {
#pragma unroll
    for (int kk = 0; kk < kKSteps; ++kk) {
      LdMatrixX4(qa[kk], qs + (warp * 16 + (lane & 15)) * kRow + kk * 16 + (lane >> 4) * 8);
    }
    __syncthreads();  // Q is in registers: k[1] may now receive tile 1
  } else {
    (void)qa;
  }

  const int warp_row0 = warp * kWarpRows;  // the warp's first row in the tile
  float o[kMb][kDimTiles][4] = {};
  float m_run[kMb][2], l_run[kMb][2];  // rows g and g + 8 of each row block
#pragma unroll
  for (int mb = 0; mb < kMb; ++mb) {
    m_run[mb][0] = m_run[mb][1] = -INFINITY;
    l_run[mb][0] = l_run[mb][1] = 0.0f;
  }
  const int g = lane / 4, t4 = lane % 4;
  const int qpos = start + q0 + warp_row0 + g;  // position of row g of row block 0
  const int warp_first_pos = start + q0 + warp_row0;
  const int warp_last_pos = warp_first_pos + kWarpRows - 1;
  for (int j = 0; j < n_tiles; ++j) {
    const int st = j % kStages;
    if (j + 1 < n_tiles) IssueKvTile(kv, sh, (j + 1) % kStages);
    CopyAsyncCommit();   // possibly empty: the wait counts groups
    CopyAsyncWait<1>();  // this thread's copies of tile j have landed
    __syncthreads();     // ... and everyone's
    // Offsets of tile j + 2 (it reuses stage st): loaded now, stored after the math.
    const bool fetch = tid < kBk && j + kStages < n_tiles;
    const int64_t next_off = fetch ? row_offset(j + kStages, tid) : -1;

    const int kv0 = j * kBk;
    if (kv0 <= warp_last_pos) {  // else every key of the tile is past every row of the warp
      // S = Q K^T: ldmatrix x4 of rows (keys) 16nn.. and dims 16kk.. gives the B fragments of key
      // n-tiles 2nn (registers 0, 1) and 2nn + 1 (registers 2, 3), used by every row block.
      float s[kMb][kKeyTiles][4] = {};
      const uint16_t* ks = &sh.k[st][0][0];
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        uint32_t qf[kMb][4];
#pragma unroll
        for (int mb = 0; mb < kMb; ++mb) {
          if constexpr (kMb == 1) {
#pragma unroll
            for (int i = 0; i < 4; ++i) qf[mb][i] = qa[kk][i];
          } else {
            LdMatrixX4(qf[mb], qs + (warp_row0 + mb * 16 + (lane & 15)) * kRow + kk * 16 +
                                   (lane >> 4) * 8);
          }
        }
#pragma unroll
        for (int nn = 0; nn < kKeyTiles / 2; ++nn) {
          uint32_t b[4];
          LdMatrixX4(b, ks + (nn * 16 + (lane & 7) + (lane >> 4) * 8) * kRow + kk * 16 +
                            ((lane >> 3) & 1) * 8);
#pragma unroll
          for (int mb = 0; mb < kMb; ++mb) {
            Mma(s[mb][2 * nn], qf[mb], b[0], b[1]);
            Mma(s[mb][2 * nn + 1], qf[mb], b[2], b[3]);
          }
        }
      }
      if (kv0 + kBk - 1 > warp_first_pos) {  // the tile crosses the diagonal of some row
#pragma unroll
        for (int mb = 0; mb < kMb; ++mb) {
#pragma unroll
          for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              if (kv0 + n * 8 + 2 * t4 + (e & 1) > qpos + mb * 16 + (e >> 1) * 8) {
                s[mb][n][e] = -INFINITY;
              }
            }
          }
        }
      }

      // Online softmax of rows g (elements 0, 1) and g + 8 (elements 2, 3) of each row block.
      // Each lane keeps its own part of the row sum; the 4 parts are added at the end.
#pragma unroll
      for (int mb = 0; mb < kMb; ++mb) {
#pragma unroll
        for (int r = 0; r < 2; ++r) {
          float mx = -INFINITY;
#pragma unroll
          for (int n = 0; n < kKeyTiles; ++n) {
            mx = fmaxf(mx, fmaxf(s[mb][n][2 * r], s[mb][n][2 * r + 1]));
          }
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float m_new = fmaxf(m_run[mb][r], mx);
          // Tiles go in increasing order and tile 0 holds position 0, so every row sees a key at
          // its first tile; the guard keeps exp2(-inf - -inf) out all the same.
          const float base = m_new == -INFINITY ? 0.0f : m_new;
          const float corr = exp2f(m_run[mb][r] - base);  // first tile: exp2(-inf) = 0
          m_run[mb][r] = m_new;
          float sum = 0.0f;
#pragma unroll
          for (int n = 0; n < kKeyTiles; ++n) {
            s[mb][n][2 * r] = exp2f(s[mb][n][2 * r] - base);
            s[mb][n][2 * r + 1] = exp2f(s[mb][n][2 * r + 1] - base);
            sum += s[mb][n][2 * r] + s[mb][n][2 * r + 1];
          }
          l_run[mb][r] = l_run[mb][r] * corr + sum;
#pragma unroll
          for (int n = 0; n < kDimTiles; ++n) {
            o[mb][n][2 * r] *= corr;
            o[mb][n][2 * r + 1] *= corr;
          }
        }
      }

      // O += P V: P of keys 16kk.. is the A fragment {S tile 2kk rows g, g+8; S tile 2kk+1 rows
      // g, g+8}; ldmatrix.trans x4 of rows (keys) 16kk.. and dims 16nn.. gives the B fragments
      // of dim n-tiles 2nn (registers 0, 1) and 2nn + 1 (registers 2, 3).
      const uint16_t* vs = &sh.v[st][0][0];
#pragma unroll
      for (int kk = 0; kk < kBk / 16; ++kk) {
        uint32_t pa[kMb][4];
#pragma unroll
        for (int mb = 0; mb < kMb; ++mb) {
          pa[mb][0] = PackBf16(s[mb][2 * kk][0], s[mb][2 * kk][1]);
          pa[mb][1] = PackBf16(s[mb][2 * kk][2], s[mb][2 * kk][3]);
          pa[mb][2] = PackBf16(s[mb][2 * kk + 1][0], s[mb][2 * kk + 1][1]);
          pa[mb][3] = PackBf16(s[mb][2 * kk + 1][2], s[mb][2 * kk + 1][3]);
        }
#pragma unroll
        for (int nn = 0; nn < kDimTiles / 2; ++nn) {
          uint32_t b[4];
          LdMatrixX4Trans(b, vs + (kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kRow +
                                 nn * 16 + (lane >> 4) * 8);
#pragma unroll
          for (int mb = 0; mb < kMb; ++mb) {
            Mma(o[mb][2 * nn], pa[mb], b[0], b[1]);
            Mma(o[mb][2 * nn + 1], pa[mb], b[2], b[3]);
          }
        }
      }
    }
    if (fetch) sh.row_off[st][tid] = next_off;
    __syncthreads();  // stage st and row_off[st] are free for tile j + 2
  }

#pragma unroll
  for (int mb = 0; mb < kMb; ++mb) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = l_run[mb][r];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const float inv = 1.0f / l;  // l >= 1: the row's max contributes exp2(0)
      const int row = warp_row0 + mb * 16 + g + 8 * r;
      if (row < rows) {
        __nv_bfloat16* dst = a.out + ((row0 + row) * a.n_heads + head) * kHeadDim + 2 * t4;
#pragma unroll
        for (int n = 0; n < kDimTiles; ++n) {
          *reinterpret_cast<__nv_bfloat162*>(dst + n * 8) =
              __floats2bfloat162_rn(o[mb][n][2 * r] * inv, o[mb][n][2 * r + 1] * inv);
        }
      }
    }
  }
}

// True when the fast kernel holds sm_80+ code for the current device: a build for older archs
// (whose PTX the driver would JIT for a newer GPU) has only the trap there.
bool FlashKernelUsable() {
  static const bool usable = [] {
    cudaFuncAttributes attr{};
    if (cudaFuncGetAttributes(&attr, FlashPrefillKernel<128, 1, Bf16Kv>) != cudaSuccess) {
      (void)cudaGetLastError();  // not sticky; leave no error behind for the next launch check
      return false;
    }
    return attr.ptxVersion >= 80;
  }();
  return usable;
}

template <int kHeadDim, int kMb, typename Kv>
Status LaunchFlash(const PrefillArgs& args, const Kv& kv, int64_t n_seqs, int64_t max_q_len,
                   cudaStream_t stream) {
  using Smem = PrefillSmem<kHeadDim, kMb>;
  constexpr int kSmem = static_cast<int>(sizeof(Smem));  // 69 KiB (kMb 1), 103 KiB (2) at 128
  static std::atomic<uint64_t> smem_allowed{0};  // bit d: done on device d (per instantiation)
  RAG_RETURN_IF_ERROR(
      AllowDynamicSmem(FlashPrefillKernel<kHeadDim, kMb, Kv>, kSmem, &smem_allowed));
  PrefillArgs a = args;
  a.q_scale = kLog2e / std::sqrt(static_cast<float>(kHeadDim));
  a.n_q_tiles = static_cast<int>((max_q_len + Smem::kBq - 1) / Smem::kBq);
  const dim3 grid(static_cast<unsigned>(a.n_heads), static_cast<unsigned>(a.n_q_tiles),
                  static_cast<unsigned>(n_seqs));
  FlashPrefillKernel<kHeadDim, kMb, Kv><<<grid, kThreads, kSmem, stream>>>(a, kv);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

// ---- simple path --------------------------------------------------------------------------------
// One position of the simple kernel's online softmax (OnlineSoftmaxStep's contract): its K/V are
// cache row `row` ((block * n_kv_heads + kv_head) * block_size + slot), of which the lane holds
// dims [lane * kDpl, (lane + 1) * kDpl).
template <int kDpl>
__device__ __forceinline__ void SimpleStep(const Bf16Kv& kv, int64_t row, int lane,
                                           const float (&qr)[kDpl], float& m, float& l,
                                           float (&acc)[kDpl]) {
  const __nv_bfloat16* __restrict__ k_cache = kv.k;
  const __nv_bfloat16* __restrict__ v_cache = kv.v;
  const int64_t off = row * (32 * kDpl) + lane * kDpl;
  OnlineSoftmaxStep<kDpl>(qr, k_cache + off, v_cache + off, m, l, acc);
}
// The FP8 form: scores over the codes times the key row's scale, weights times the value row's.
template <int kDpl>
__device__ __forceinline__ void SimpleStep(const Fp8KvCache& kv, int64_t row, int lane,
                                           const float (&qr)[kDpl], float& m, float& l,
                                           float (&acc)[kDpl]) {
  const int64_t off = row * (32 * kDpl) + lane * kDpl;
  OnlineSoftmaxStep<kDpl>(qr, kv.k + off, kv.v + off, kv.k_scale[row], kv.v_scale[row], m, l, acc);
}

template <int kDpl, typename Kv>
__global__ void __launch_bounds__(kThreads) SimplePrefillKernel(const PrefillArgs a, const Kv kv) {
  constexpr int kHeadDim = kDpl * 32;
  const int head = blockIdx.y, seq = blockIdx.z;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row = blockIdx.x * kWarps + warp;  // query row within the sequence's chunk
  if (row >= a.q_lens[seq]) return;            // warps share nothing, so each may leave on its own
  const int pos = a.start_pos[seq] + row;
  const int64_t q_row = static_cast<int64_t>(a.q_offsets[seq]) + row;
  const int kv_head = head / (a.n_heads / a.n_kv_heads);
  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks;
  const int n_kv_heads = a.n_kv_heads, block_size = a.block_size;

  float qr[kDpl], acc[kDpl];
  const float* qh = a.q + q_row * a.q_stride + head * kHeadDim + lane * kDpl;
#pragma unroll
  for (int i = 0; i < kDpl; ++i) {
    qr[i] = qh[i];
    acc[i] = 0.0f;
  }
  if (a.rope_cos_sin != nullptr) {
    // Lane l < 16 holds dims of the first half of the head, lane l + 16 the dims half further on
    // that pair with them: the partner's value is one shuffle away.
    const float2* cs = a.rope_cos_sin + q_row * (kHeadDim / 2) + (lane & 15) * kDpl;
#pragma unroll
    for (int i = 0; i < kDpl; ++i) {
      const float other = __shfl_xor_sync(0xffffffffu, qr[i], 16);
      float y1, y2;
      if (lane < 16) {
        RopeRotateCs(qr[i], other, cs[i], y1, y2);
        qr[i] = y1;
      } else {
        RopeRotateCs(other, qr[i], cs[i], y1, y2);
        qr[i] = y2;
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kDpl; ++i) qr[i] *= a.q_scale;
  float m = -INFINITY, l = 0.0f;
  // Not unrolled: ptxas spilled a few bytes in some unrolled instantiations (and the serial
  // softmax recurrence gains little from unrolling).
#pragma unroll 1
  for (int p = 0; p <= pos; ++p) {
    const int64_t block = table[p / block_size];
    SimpleStep<kDpl>(kv, (block * n_kv_heads + kv_head) * block_size + p % block_size, lane, qr, m,
                     l, acc);
  }
  __nv_bfloat16* o = a.out + (q_row * a.n_heads + head) * kHeadDim + lane * kDpl;
  // l >= 1 (the max position contributes exp(0)), where the approximate reciprocal is within
  // 2 ulp; IEEE division would add a slow-path subroutine call that spills around it.
  const float inv = __fdividef(1.0f, l);
#pragma unroll
  for (int i = 0; i < kDpl; ++i) o[i] = __float2bfloat16_rn(acc[i] * inv);
}

template <typename Kv>
Status LaunchSimple(PrefillArgs args, const Kv& kv, int64_t n_seqs, int64_t max_q_len,
                    int64_t head_dim, cudaStream_t stream) {
  args.q_scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const dim3 grid(static_cast<unsigned>((max_q_len + kWarps - 1) / kWarps),
                  static_cast<unsigned>(args.n_heads), static_cast<unsigned>(n_seqs));
#define RAG_SIMPLE_PREFILL_CASE(DPL)                                       \
  case DPL:                                                                \
    SimplePrefillKernel<DPL, Kv><<<grid, kThreads, 0, stream>>>(args, kv); \
    break;
  switch (head_dim / 32) {
    RAG_SIMPLE_PREFILL_CASE(1)
    RAG_SIMPLE_PREFILL_CASE(2)
    RAG_SIMPLE_PREFILL_CASE(3)
    RAG_SIMPLE_PREFILL_CASE(4)
    RAG_SIMPLE_PREFILL_CASE(5)
    RAG_SIMPLE_PREFILL_CASE(6)
    RAG_SIMPLE_PREFILL_CASE(7)
    RAG_SIMPLE_PREFILL_CASE(8)
  }
#undef RAG_SIMPLE_PREFILL_CASE
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

bool Aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// The name of a cache's first null pointer, or null when it has none.
const char* NullCachePointer(const Bf16Kv& kv) {
  return kv.k == nullptr ? "k_cache" : kv.v == nullptr ? "v_cache" : nullptr;
}
const char* NullCachePointer(const Fp8KvCache& kv) {
  return kv.k == nullptr         ? "cache.k"
         : kv.v == nullptr       ? "cache.v"
         : kv.k_scale == nullptr ? "cache.k_scale"
         : kv.v_scale == nullptr ? "cache.v_scale"
                                 : nullptr;
}

// True when the tensor-core kernel's tile loads are aligned: 16-byte copies of bf16 rows, 16-byte
// loads of code rows and 4-byte loads of scales.
bool TileLoadsAligned(const Bf16Kv& kv) { return Aligned(kv.k, 16) && Aligned(kv.v, 16); }
bool TileLoadsAligned(const Fp8KvCache& kv) {
  return Aligned(kv.k, 16) && Aligned(kv.v, 16) && Aligned(kv.k_scale, 4) && Aligned(kv.v_scale, 4);
}

// Checks the arguments of every entry point and fills `args` (q_scale and n_q_tiles are left to
// the path). `*nothing` is set when there is no work.
template <typename Kv>
Status PrepareArgs(const char* name, const float* q, int64_t q_stride, const Kv& kv,
                   const int32_t* block_tables, int64_t max_blocks_per_seq,
                   const int32_t* q_offsets, const int32_t* q_lens, const int32_t* start_pos,
                   int64_t n_seqs, int64_t max_q_len, int64_t n_heads, int64_t n_kv_heads,
                   int64_t head_dim, int64_t block_size, __nv_bfloat16* out,
                   const float2* q_rope_cos_sin, PrefillArgs* args, bool* nothing) {
  if (n_seqs < 0 || n_seqs > 65535 || max_q_len < 0 || max_q_len > INT32_MAX || n_heads <= 0 ||
      n_heads > 65535 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0 ||
      head_dim % 32 != 0 || head_dim > 256 || block_size <= 0 || block_size > INT32_MAX ||
      max_blocks_per_seq <= 0 || max_blocks_per_seq > INT32_MAX || q_stride < n_heads * head_dim) {
    return InvalidArgument(
        std::string(name) + ": bad shape n_seqs=" + std::to_string(n_seqs) +
        " max_q_len=" + std::to_string(max_q_len) + " n_heads=" + std::to_string(n_heads) +
        " n_kv_heads=" + std::to_string(n_kv_heads) + " head_dim=" + std::to_string(head_dim) +
        " block_size=" + std::to_string(block_size) + " max_blocks_per_seq=" +
        std::to_string(max_blocks_per_seq) + " q_stride=" + std::to_string(q_stride));
  }
  *nothing = n_seqs == 0 || max_q_len == 0;
  if (*nothing) return Status::Ok();
  if (q == nullptr || block_tables == nullptr || q_offsets == nullptr || q_lens == nullptr ||
      start_pos == nullptr || out == nullptr) {
    return InvalidArgument(std::string(name) + ": null pointer");
  }
  if (const char* member = NullCachePointer(kv)) {
    return InvalidArgument(std::string(name) + ": null pointer " + member);
  }
  *args = PrefillArgs{};
  args->q = q;
  args->q_stride = q_stride;
  args->block_tables = block_tables;
  args->max_blocks = max_blocks_per_seq;
  args->q_offsets = q_offsets;
  args->q_lens = q_lens;
  args->start_pos = start_pos;
  args->n_heads = static_cast<int>(n_heads);
  args->n_kv_heads = static_cast<int>(n_kv_heads);
  args->block_size = static_cast<int>(block_size);
  args->out = out;
  args->rope_cos_sin = q_rope_cos_sin;
  return Status::Ok();
}

// Every entry point: the checks, then the tensor-core kernel where it applies (never when
// `simple_only`), else the simple one.
template <typename Kv>
Status RunPrefill(const char* name, bool simple_only, const float* q, int64_t q_stride,
                  const Kv& kv, const int32_t* block_tables, int64_t max_blocks_per_seq,
                  const int32_t* q_offsets, const int32_t* q_lens, const int32_t* start_pos,
                  int64_t n_seqs, int64_t max_q_len, int64_t n_heads, int64_t n_kv_heads,
                  int64_t head_dim, int64_t block_size, __nv_bfloat16* out, cudaStream_t stream,
                  const float2* q_rope_cos_sin) {
  PrefillArgs args;
  bool nothing = false;
  RAG_RETURN_IF_ERROR(PrepareArgs(
      name, q, q_stride, kv, block_tables, max_blocks_per_seq, q_offsets, q_lens, start_pos, n_seqs,
      max_q_len, n_heads, n_kv_heads, head_dim, block_size, out, q_rope_cos_sin, &args, &nothing));
  if (nothing) return Status::Ok();
  // float4 loads of q and of the angles, 16-byte tile loads, bf16x2 stores of out; grid.y counts
  // the query tiles of 64 rows at most.
  const bool fast = !simple_only && (head_dim == 64 || head_dim == 128) &&
                    (max_q_len + 63) / 64 <= 65535 && Aligned(q, 16) && q_stride % 4 == 0 &&
                    TileLoadsAligned(kv) && Aligned(out, 4) && Aligned(q_rope_cos_sin, 16) &&
                    FlashKernelUsable();
  if (!fast) return LaunchSimple(args, kv, n_seqs, max_q_len, head_dim, stream);
  const int rows_per_warp = g_rows_per_warp.load(std::memory_order_relaxed);
  if (head_dim == 128 && (rows_per_warp == 0 || rows_per_warp == 64) &&
      prefill::WarpgroupKernelUsable()) {
    return prefill::LaunchWarpgroupPrefill(args, kv, n_seqs, max_q_len, stream);
  }
  const bool wide = rows_per_warp != 16;
  if (head_dim == 64) {
    return wide ? LaunchFlash<64, 2>(args, kv, n_seqs, max_q_len, stream)
                : LaunchFlash<64, 1>(args, kv, n_seqs, max_q_len, stream);
  }
  return wide ? LaunchFlash<128, 2>(args, kv, n_seqs, max_q_len, stream)
              : LaunchFlash<128, 1>(args, kv, n_seqs, max_q_len, stream);
}

}  // namespace

void SetPrefillAttentionRowsPerWarp(int rows) {
  g_rows_per_warp.store(rows == 16 || rows == 32 || rows == 64 ? rows : 0,
                        std::memory_order_relaxed);
}

bool PrefillAttentionWarpgroupKernelUsable() { return prefill::WarpgroupKernelUsable(); }

Status PagedPrefillAttention(const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                             const __nv_bfloat16* v_cache, const int32_t* block_tables,
                             int64_t max_blocks_per_seq, const int32_t* q_offsets,
                             const int32_t* q_lens, const int32_t* start_pos, int64_t n_seqs,
                             int64_t max_q_len, int64_t n_heads, int64_t n_kv_heads,
                             int64_t head_dim, int64_t block_size, __nv_bfloat16* out,
                             cudaStream_t stream, const float2* q_rope_cos_sin) {
  return RunPrefill("PagedPrefillAttention", /*simple_only=*/false, q, q_stride,
                    Bf16Kv{k_cache, v_cache}, block_tables, max_blocks_per_seq, q_offsets, q_lens,
                    start_pos, n_seqs, max_q_len, n_heads, n_kv_heads, head_dim, block_size, out,
                    stream, q_rope_cos_sin);
}

Status PagedPrefillAttentionSimple(const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                                   const __nv_bfloat16* v_cache, const int32_t* block_tables,
                                   int64_t max_blocks_per_seq, const int32_t* q_offsets,
                                   const int32_t* q_lens, const int32_t* start_pos, int64_t n_seqs,
                                   int64_t max_q_len, int64_t n_heads, int64_t n_kv_heads,
                                   int64_t head_dim, int64_t block_size, __nv_bfloat16* out,
                                   cudaStream_t stream, const float2* q_rope_cos_sin) {
  return RunPrefill("PagedPrefillAttentionSimple", /*simple_only=*/true, q, q_stride,
                    Bf16Kv{k_cache, v_cache}, block_tables, max_blocks_per_seq, q_offsets, q_lens,
                    start_pos, n_seqs, max_q_len, n_heads, n_kv_heads, head_dim, block_size, out,
                    stream, q_rope_cos_sin);
}

Status PagedPrefillAttention(const float* q, int64_t q_stride, const Fp8KvCache& cache,
                             const int32_t* block_tables, int64_t max_blocks_per_seq,
                             const int32_t* q_offsets, const int32_t* q_lens,
                             const int32_t* start_pos, int64_t n_seqs, int64_t max_q_len,
                             int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                             int64_t block_size, __nv_bfloat16* out, cudaStream_t stream,
                             const float2* q_rope_cos_sin) {
  return RunPrefill("PagedPrefillAttention (fp8)", /*simple_only=*/false, q, q_stride, cache,
                    block_tables, max_blocks_per_seq, q_offsets, q_lens, start_pos, n_seqs,
                    max_q_len, n_heads, n_kv_heads, head_dim, block_size, out, stream,
                    q_rope_cos_sin);
}

Status PagedPrefillAttentionSimple(const float* q, int64_t q_stride, const Fp8KvCache& cache,
                                   const int32_t* block_tables, int64_t max_blocks_per_seq,
                                   const int32_t* q_offsets, const int32_t* q_lens,
                                   const int32_t* start_pos, int64_t n_seqs, int64_t max_q_len,
                                   int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                   int64_t block_size, __nv_bfloat16* out, cudaStream_t stream,
                                   const float2* q_rope_cos_sin) {
  return RunPrefill("PagedPrefillAttentionSimple (fp8)", /*simple_only=*/true, q, q_stride, cache,
                    block_tables, max_blocks_per_seq, q_offsets, q_lens, start_pos, n_seqs,
                    max_q_len, n_heads, n_kv_heads, head_dim, block_size, out, stream,
                    q_rope_cos_sin);
}

}  // namespace rag
