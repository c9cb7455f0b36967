// Paged decode attention, one query token per sequence, over the paged KV cache: bf16, or FP8
// (e4m3 codes with a scale per row: kernels.h, Fp8KvCache). Every kernel is a template over the
// cache element; FP8 rows are half the bytes, so a CTA keeps three tiles in flight at head_dim
// 128, and the row scales ride beside the row offsets (scores times the key row's scale,
// probabilities times the value row's scale before they weigh the codes).
//
// Fast path (head_dim 64 or 128, 16-byte aligned caches): split-KV.
//  - One CTA of 4 warps per (split, group of hp query heads sharing one KV head, sequence), so
//    the heads of a GQA group read each K/V row once (hp = the largest divisor of the group size
//    up to kMaxHeads). Reading the rows once per head instead would move 4x the bytes out of L2
//    for Llama 3's groups of 4 and make L2, not HBM, the limit.
//  - The context is cut into tiles of kTile positions; a split owns a contiguous run of tiles.
//    K/V tiles are copied into shared memory with cp.async, double buffered (triple for head_dim
//    64), so the next tile is in flight while one is consumed (the kernel is bound by HBM
//    bandwidth). Shared memory stays under the 48 KiB a kernel gets without opting in: opting in
//    (cudaFuncSetAttribute) is a host call that waits for pending copies, unwelcome in captures.
//  - Per tile: scores q . k in fp32 (q pre-scaled by log2(e) / sqrt(head_dim), so exp2 gives the
//    softmax), online softmax per head (running max m, running sum l), acc += p * v.
//  - A split writes its unnormalised (m, l, acc) to the workspace and CombineSplitsKernel merges
//    the splits; with a single split the kernel normalises and writes `out` itself.
// Why the split size is chosen this way: decode steps are captured in CUDA graphs and replayed
// with other context lengths, so the grid (the number of splits) depends only on host-known sizes
// (batch, n_heads, max_blocks_per_seq * block_size). How many tiles a split takes is derived on
// the device from the sequence's length (the tiles spread evenly over the splits), so every
// length uses all the splits it can fill; splits past the end return at once, and the combine
// kernel recomputes the same count of active splits.
//
// The FP8 cache at head_dim 128 takes a tensor-core kernel with the same grid and merge instead
// (decode_attention_mma.cu; what the two share is in decode_attention_split.cuh).
//
// Fallback (other head_dim multiples of 32 up to 256, or unaligned caches): one CTA of 4 warps
// per (head, sequence) walks the whole context; warp w takes positions w, w + 4, ...; lane l owns
// dims [l * kDpl, (l + 1) * kDpl) and q . k is reduced with shuffles; the warps' softmax states
// are merged through shared memory at the end.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <type_traits>

#include "kernels/attention_util.cuh"
#include "kernels/cuda_check.h"
#include "kernels/decode_attention_split.cuh"
#include "kernels/device_util.cuh"
#include "kernels/kernels.h"
#include "kernels/launch.cuh"

namespace rag {
namespace {

using decode_split::ContextLen;
using decode_split::DecodeArgs;
using decode_split::kLog2e;
using decode_split::kMaxHeads;
using decode_split::kMaxSplits;
using decode_split::kThreads;
using decode_split::kTile;
using decode_split::kWarps;
using decode_split::TilesPerSplit;

// ---- split-KV path ----------------------------------------------------------------------------
// About kDefaultHeadSplits (split, head) pairs per call: batch 1 with 32 heads gets 64 splits,
// i.e. 512 CTAs for GQA groups of 4 (about four per SM of an H100); a 2000-token context then
// gives every split one tile of 32 positions, an 8000-token one 4. (1024 pairs, two tiles a
// split at 2000 tokens, decoded the 8B shape 2% slower on an H100; 4096, slower again.) Larger
// batches get fewer splits; never more than the tiles of the longest possible context, so a
// short max_blocks_per_seq (eager calls on short prompts) takes the single-split path with no
// merging.
constexpr int64_t kDefaultHeadSplits = 2048;
std::atomic<int64_t> g_target_head_splits{kDefaultHeadSplits};  // SetDecodeAttentionSplitTarget
// ... but where that leaves few CTAs (under kFewCtas) that each walk a long run of the longest
// possible context (over kLongRun tiles times heads), the context is cut into runs of at most
// kDefaultMaxTilesPerSplit tiles instead: a split walks its tiles one after another, and at batch
// 64 with 5000-token contexts over 2 GPUs (70B: 8 query heads a CTA) one split a sequence left
// 256 CTAs on 132 SMs each walking 173 tiles, latency-bound. Measured on 2 H100s, 70B FP8 with
// the FP8 cache, batch-64 steps at 5000 tokens: 76.3 ms unsplit, 51.3 ms in runs of 16 tiles
// (55.5 at 4, 56.9 at 64). Where the CTAs are already many, splitting more only adds merging:
// the 8B shape's batch 32 and 64 steps were 2-6% slower split so (2000- and 5000-token contexts).
constexpr int64_t kDefaultMaxTilesPerSplit = 16;
constexpr int64_t kFewCtas = 512;  // about 4 CTAs an SM of an H100
constexpr int64_t kLongRun = 512;  // tiles times query heads one CTA walks
// The tensor-core kernel (FP8 cache) walks a tile several times faster, so its splits are
// longer: runs of up to 64 tiles, and never more than 16 splits, since the last split's merge
// of them all is on every layer's critical path. Measured on an H200 (bench/decode_attention_bench,
// 2026-11-28), 70B over 2 GPUs: batch 64 x 5250 tokens 182 us a call in runs of 16 tiles, 161 in
// runs of 32, 150 in runs of 64; batch 1 x 2048 16.3 us in 64 splits, 11.6 in 32, 9.5 in 16;
// batch 8 x 2048 14.7 us in 8 splits, 20.9 in 4 (fewer than one CTA an SM).
constexpr int64_t kMmaMaxTilesPerSplit = 64;
constexpr int64_t kMmaMaxSplits = 16;
// SetDecodeAttentionMaxTilesPerSplit; -1: each kernel's default.
std::atomic<int64_t> g_max_tiles_per_split{-1};
std::atomic<bool> g_tensor_cores{true};  // SetDecodeAttentionTensorCores

bool FastHeadDim(int64_t head_dim) { return head_dim == 64 || head_dim == 128; }

// Query heads one CTA takes: the largest divisor of the GQA group up to kMaxHeads.
int64_t HeadsPerCta(int64_t n_heads, int64_t n_kv_heads) {
  const int64_t group = n_heads / n_kv_heads;
  int64_t hp = std::min<int64_t>(group, kMaxHeads);
  while (group % hp != 0) --hp;
  return hp;
}

// Splits of a call; mma: for the tensor-core kernel (never more than the SIMT kernel's, so a
// workspace sized by PagedDecodeAttentionWorkspace serves both).
int64_t NumSplits(int64_t batch, int64_t n_heads, int64_t n_kv_heads, int64_t max_blocks_per_seq,
                  int64_t block_size, bool mma = false) {
  const int64_t max_tiles = (max_blocks_per_seq * block_size + kTile - 1) / kTile;
  const int64_t target = g_target_head_splits.load(std::memory_order_relaxed);
  int64_t want = std::min((target + batch * n_heads - 1) / (batch * n_heads), max_tiles);
  const int64_t hp = HeadsPerCta(n_heads, n_kv_heads);
  const int64_t run = (max_tiles + want - 1) / want;  // tiles a split walks at most
  int64_t tiles_cap = g_max_tiles_per_split.load(std::memory_order_relaxed);
  if (tiles_cap < 0) tiles_cap = mma ? kMmaMaxTilesPerSplit : kDefaultMaxTilesPerSplit;
  if (tiles_cap > 0 && batch * (n_heads / hp) * want < kFewCtas && run * hp > kLongRun) {
    want = std::max(want, (max_tiles + tiles_cap - 1) / tiles_cap);
  }
  return std::max<int64_t>(1, std::min({want, max_tiles, mma ? kMmaMaxSplits : kMaxSplits}));
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The cache element C (bf16, or e4m3 codes with row scales) and the sizes that follow from it.
// K/V rows are copied in 16-byte chunks (8 bf16 or 16 codes); the score phase takes them a
// chunk at a time, the PV phase 8 elements at a time (so acc keeps 8 dims a thread either way).
template <int kHeadDim, typename C>
struct CacheTile {
  static constexpr bool kFp8 = std::is_same_v<C, __nv_fp8_e4m3>;
  static constexpr int kElemBytes = static_cast<int>(sizeof(C));
  static constexpr int kChunkElems = 16 / kElemBytes;      // elements of one 16-byte chunk
  static constexpr int kChunks = kHeadDim / kChunkElems;  // 16-byte chunks of a row
  // K/V rows padded by 16 bytes: the 8 rows read by a quarter-warp land in distinct bank groups.
  static constexpr int kRowBytes = kHeadDim * kElemBytes + 16;
};

template <int kHeadDim, typename C>
struct DecodeSmem {
  using Tile = CacheTile<kHeadDim, C>;
  // Tiles resident in shared memory (what fits in 48 KiB with the rest).
  static constexpr int kStages = kHeadDim * Tile::kElemBytes <= 128 ? 3 : 2;
  union {
    struct {
      uint8_t k[kStages][kTile][Tile::kRowBytes];
      uint8_t v[kStages][kTile][Tile::kRowBytes];
    } kv;
    float red[kWarps][kMaxHeads][kHeadDim];  // end of split: acc of each warp
  } u;
  int64_t row_off[kStages][kTile];  // cache offset (elements) of each row of a tile; -1 past len
  // e4m3: the rows' scales (0 past len); a size of 1 for bf16, unused.
  float k_scale[Tile::kFp8 ? kStages : 1][kTile];
  float v_scale[Tile::kFp8 ? kStages : 1][kTile];
  float q[kMaxHeads][kHeadDim];     // scaled queries
  float part[kWarps][kMaxHeads][kTile];  // scores: each warp's share of the head_dim sum
  float p[kMaxHeads][kTile];             // probabilities of the current tile
  float corr[kMaxHeads];                 // acc rescale factor of the current tile
  float m[kMaxHeads], l[kMaxHeads];      // final softmax state of each head
};

// Copies the K/V rows of the tile of `stage` into shared memory (cp.async), all but row
// skip_row (-1: none), which the caller fills itself.
template <int kHeadDim, typename C>
__device__ __forceinline__ void IssueTile(const DecodeArgs& a, DecodeSmem<kHeadDim, C>& sh,
                                          int stage, int skip_row = -1) {
  using Tile = CacheTile<kHeadDim, C>;
  const uint8_t* kc = static_cast<const uint8_t*>(a.k_cache);
  const uint8_t* vc = static_cast<const uint8_t*>(a.v_cache);
#pragma unroll
  for (int i = 0; i < kTile * Tile::kChunks / kThreads; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / Tile::kChunks, c = idx % Tile::kChunks;
    if (r == skip_row) continue;
    const int64_t off = sh.row_off[stage][r];
    const int64_t src = off >= 0 ? off * Tile::kElemBytes + c * 16 : 0;
    CopyAsync16(&sh.u.kv.k[stage][r][c * 16], kc + src, off >= 0);
    CopyAsync16(&sh.u.kv.v[stage][r][c * 16], vc + src, off >= 0);
  }
}

// The scale of the cached row at element offset `off` (e4m3; 0 past the end, off < 0).
template <int kHeadDim>
__device__ __forceinline__ float RowScale(const float* scales, int64_t off) {
  return off >= 0 ? scales[off / kHeadDim] : 0.0f;
}

// kN elements of a shared-memory row (16 bytes: 8 bf16 or 16 codes; 8 bytes: 8 codes) as fp32.
template <typename C, int kN>
__device__ __forceinline__ void LoadRowElems(const uint8_t* p, float (&f)[kN]) {
  if constexpr (std::is_same_v<C, __nv_bfloat16>) {
    static_assert(kN == 8);
    UnpackBf16x8(*reinterpret_cast<const uint4*>(p), f);
  } else {
    static_assert(kN == 8 || kN == 16);
    uint32_t w[kN / 4];
    if constexpr (kN == 16) {
      const uint4 u = *reinterpret_cast<const uint4*>(p);
      w[0] = u.x, w[1] = u.y, w[2] = u.z, w[3] = u.w;
    } else {
      const uint2 u = *reinterpret_cast<const uint2*>(p);
      w[0] = u.x, w[1] = u.y;
    }
#pragma unroll
    for (int i = 0; i < kN / 4; ++i) {
      const float2 lo = Fp8x2ToFloat2(w[i]), hi = Fp8x2ToFloat2(w[i] >> 16);
      f[4 * i] = lo.x, f[4 * i + 1] = lo.y, f[4 * i + 2] = hi.x, f[4 * i + 3] = hi.y;
    }
  }
}

// Under programmatic launch the kernel starts before the previous one (the RoPE + KV append of
// this step's token) has finished: everything that does not depend on it (the step metadata, the
// cached K/V of earlier positions) is read before AwaitPriorGrid; the query and the newest
// position's K/V row after it. At most 128 registers a thread, so that four CTAs fit an SM
// (batch 1 of the 8B shape launches 512).
// FP8 cache (C = e4m3): a score is taken over the codes and multiplied by the key row's scale;
// the probability that weighs a value row's codes is multiplied by that row's scale (the
// softmax sum l takes the probability itself). The scales of a tile sit beside its row offsets.
template <int kHeadDim, typename C>
__global__ void __launch_bounds__(kThreads, 4) SplitKvDecodeKernel(const DecodeArgs a) {
  AllowDependentLaunch();
  using Smem = DecodeSmem<kHeadDim, C>;
  using Tile = CacheTile<kHeadDim, C>;
  constexpr bool kFp8 = Tile::kFp8;
  constexpr int kStages = Smem::kStages;
  constexpr int kChunks = kHeadDim / 8;                     // PV phase: 8-element chunks
  constexpr int kScoreElems = Tile::kChunkElems;            // score phase: 16-byte chunks
  constexpr int kChunksPerWarp = Tile::kChunks / kWarps;  // score phase: warp w sums these
  constexpr int kKeyGroups = kThreads / kChunks;    // PV phase: threads per chunk column
  constexpr int kKeysPerThread = kTile / kKeyGroups;
  constexpr int kHeadsPerWarp = kMaxHeads / kWarps;  // softmax: warp w owns heads w + kWarps * i
  static_assert(Tile::kChunks % kWarps == 0 && kThreads % kChunks == 0 &&
                kTile % kKeyGroups == 0);
  static_assert(kMaxHeads % kWarps == 0 && kStages * kTile <= kThreads && kTile == 32);
  static_assert(sizeof(float) * kWarps * kMaxHeads * kHeadDim <=
                    2 * kStages * kTile * Tile::kRowBytes,
                "the reduction buffer must fit in the K/V buffers it reuses");
  static_assert(sizeof(float) * 2 * kMaxHeads * kMaxSplits <= sizeof(Smem::u),
                "the splits' softmax states must fit in the K/V buffers they reuse");

  __shared__ __align__(16) Smem sh;
  const int seq = blockIdx.z;
  const int hp = a.heads_per_cta, head0 = blockIdx.y * hp;
  const int kv_head = head0 / (a.n_heads / a.n_kv_heads);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  const decode_split::SplitRange range = decode_split::ThisSplit(a);
  const int len = range.len, tile0 = range.tile0, n = range.n;
  if (n <= 0) {
    decode_split::FinishEmptySplit<kHeadDim>(a, range);
    return;
  }

  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks;
  auto row_offset = [&](int tile, int r) -> int64_t {
    const int pos = tile * kTile + r;
    if (pos >= len) return -1;
    const int64_t block = table[pos / a.block_size];
    return ((block * a.n_kv_heads + kv_head) * a.block_size + pos % a.block_size) * kHeadDim;
  };

  // Prologue: offsets of the first kStages tiles; the first kStages - 1 tiles but the newest
  // position's row; then (after the previous kernel) the scaled queries and that row.
  const int newest_stage = (len - 1) / kTile - tile0;  // stage holding position len - 1, if < kStages
  const int newest_row = (len - 1) % kTile;
  if (tid < kStages * kTile && tid / kTile < n) {
    const int stage = tid / kTile, r = tid % kTile;
    const int64_t off = row_offset(tile0 + stage, r);
    sh.row_off[stage][r] = off;
    if constexpr (kFp8) {  // the newest row's scales are the previous kernel's: read below
      const bool newest = stage == newest_stage && r == newest_row;
      sh.k_scale[stage][r] = newest ? 0.0f : RowScale<kHeadDim>(a.k_scale, off);
      sh.v_scale[stage][r] = newest ? 0.0f : RowScale<kHeadDim>(a.v_scale, off);
    }
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < n) IssueTile(a, sh, i, i == newest_stage ? newest_row : -1);
    CopyAsyncCommit();  // empty groups too: the wait below counts groups
  }
  AwaitPriorGrid();
  const float* qb = a.q + static_cast<int64_t>(seq) * a.q_stride + head0 * kHeadDim;
  for (int e = tid; e < hp * kHeadDim; e += kThreads) {
    sh.q[e / kHeadDim][e % kHeadDim] = qb[e] * a.q_scale;
  }
  if (newest_stage >= 0 && newest_stage < kStages - 1 && newest_stage < n &&
      tid < Tile::kChunks) {  // plain loads: just written
    const int64_t off = sh.row_off[newest_stage][newest_row] * Tile::kElemBytes + tid * 16;
    *reinterpret_cast<uint4*>(&sh.u.kv.k[newest_stage][newest_row][tid * 16]) =
        *reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(a.k_cache) + off);
    *reinterpret_cast<uint4*>(&sh.u.kv.v[newest_stage][newest_row][tid * 16]) =
        *reinterpret_cast<const uint4*>(static_cast<const uint8_t*>(a.v_cache) + off);
  }
  if constexpr (kFp8) {
    if (newest_stage >= 0 && newest_stage < kStages && newest_stage < n && tid == 0) {
      const int64_t off = sh.row_off[newest_stage][newest_row];
      sh.k_scale[newest_stage][newest_row] = RowScale<kHeadDim>(a.k_scale, off);
      sh.v_scale[newest_stage][newest_row] = RowScale<kHeadDim>(a.v_scale, off);
    }
  }
  // (The first barrier of the loop orders these stores before their readers.)

  float acc[kMaxHeads][8] = {};  // heads x the 8 dims of chunk dc, over keys kg + kKeyGroups * i
  float m_run[kHeadsPerWarp], l_run[kHeadsPerWarp];
#pragma unroll
  for (int i = 0; i < kHeadsPerWarp; ++i) {
    m_run[i] = -INFINITY;
    l_run[i] = 0.0f;
  }
  const int dc = tid % kChunks, kg = tid / kChunks;

  for (int j = 0; j < n; ++j) {
    const int st = j % kStages;
    if (j + kStages - 1 < n) IssueTile(a, sh, (j + kStages - 1) % kStages);
    CopyAsyncCommit();
    CopyAsyncWait<kStages - 1>();  // this thread's copies of tile j have landed
    __syncthreads();               // ... and everyone's
    // Offsets of tile j + kStages (it reuses stage st): loaded now, stored after the math.
    const bool fetch = tid < kTile && j + kStages < n;
    const int64_t next_off = fetch ? row_offset(tile0 + j + kStages, tid) : -1;
    float next_k_scale = 0.0f, next_v_scale = 0.0f;
    if constexpr (kFp8) {
      if (fetch) {
        next_k_scale = RowScale<kHeadDim>(a.k_scale, next_off);
        next_v_scale = RowScale<kHeadDim>(a.v_scale, next_off);
      }
    }

    {  // Scores: warp w sums its chunks of q . k at position `lane` for every head.
      float s[kMaxHeads] = {};
      const uint8_t* krow = sh.u.kv.k[st][lane];
#pragma unroll
      for (int i = 0; i < kChunksPerWarp; ++i) {
        const int c = warp * kChunksPerWarp + i;
        float kf[kScoreElems];
        LoadRowElems<C, kScoreElems>(krow + c * 16, kf);
#pragma unroll
        for (int h = 0; h < kMaxHeads; ++h) {
          if (h < hp) {
#pragma unroll
            for (int e = 0; e < kScoreElems; e += 4) {
              const float4 q4 = *reinterpret_cast<const float4*>(&sh.q[h][c * kScoreElems + e]);
              s[h] = fmaf(q4.x, kf[e], s[h]);
              s[h] = fmaf(q4.y, kf[e + 1], s[h]);
              s[h] = fmaf(q4.z, kf[e + 2], s[h]);
              s[h] = fmaf(q4.w, kf[e + 3], s[h]);
            }
          }
        }
      }
#pragma unroll
      for (int h = 0; h < kMaxHeads; ++h) {
        if (h < hp) sh.part[warp][h][lane] = s[h];
      }
    }
    __syncthreads();

    // Online softmax, one warp per head. The tile's first position is < len, so m stays finite.
    const bool valid = (tile0 + j) * kTile + lane < len;
#pragma unroll
    for (int i = 0; i < kHeadsPerWarp; ++i) {
      const int h = warp + kWarps * i;
      if (h < hp) {
        float x = -INFINITY;
        if (valid) {
          x = 0.0f;
#pragma unroll
          for (int w = 0; w < kWarps; ++w) x += sh.part[w][h][lane];
          if constexpr (kFp8) x *= sh.k_scale[st][lane];
        }
        const float m_new = fmaxf(m_run[i], WarpMax(x));
        const float corr = exp2f(m_run[i] - m_new);  // first tile: exp2(-inf) = 0
        const float p = exp2f(x - m_new);            // masked: 0
        l_run[i] = l_run[i] * corr + WarpSum(p);
        m_run[i] = m_new;
        if constexpr (kFp8) {
          sh.p[h][lane] = p * sh.v_scale[st][lane];
        } else {
          sh.p[h][lane] = p;
        }
        if (lane == 0) sh.corr[h] = corr;
      }
    }
    __syncthreads();

    // acc = acc * corr + p . v over this thread's keys of the tile.
#pragma unroll
    for (int h = 0; h < kMaxHeads; ++h) {
      if (h < hp) {
        const float c = sh.corr[h];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[h][e] *= c;
      }
    }
#pragma unroll
    for (int i = 0; i < kKeysPerThread; ++i) {
      const int t = kg + kKeyGroups * i;
      float vf[8];
      LoadRowElems<C, 8>(&sh.u.kv.v[st][t][dc * 8 * Tile::kElemBytes], vf);
#pragma unroll
      for (int h = 0; h < kMaxHeads; ++h) {
        if (h < hp) {
          const float p = sh.p[h][t];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[h][e] = fmaf(p, vf[e], acc[h][e]);
        }
      }
    }
    if (fetch) {
      sh.row_off[st][tid] = next_off;
      if constexpr (kFp8) {
        sh.k_scale[st][tid] = next_k_scale;
        sh.v_scale[st][tid] = next_v_scale;
      }
    }
    __syncthreads();  // stage st and row_off[st] are free for tile j + kStages
  }
  CopyAsyncWait<0>();  // only empty groups remain; the K/V buffers are reused below

  // Sum acc over the lanes that share chunk dc (lanes dc, dc + kChunks, ...), then over warps.
#pragma unroll
  for (int h = 0; h < kMaxHeads; ++h) {
    if (h < hp) {
#pragma unroll
      for (int e = 0; e < 8; ++e) {
#pragma unroll
        for (int o = kChunks; o < 32; o <<= 1) {
          acc[h][e] += __shfl_xor_sync(0xffffffffu, acc[h][e], o);
        }
      }
    }
  }
  if (lane < kChunks) {
#pragma unroll
    for (int h = 0; h < kMaxHeads; ++h) {
      if (h < hp) {
#pragma unroll
        for (int e = 0; e < 8; ++e) sh.u.red[warp][h][lane * 8 + e] = acc[h][e];
      }
    }
  }
#pragma unroll
  for (int i = 0; i < kHeadsPerWarp; ++i) {
    const int h = warp + kWarps * i;
    if (h < hp && lane == 0) {
      sh.m[h] = m_run[i];
      sh.l[h] = l_run[i];
    }
  }
  __syncthreads();

  decode_split::FinishSplit<kHeadDim, kWarps, kHeadDim>(a, range, &sh.u.red[0][0][0], sh.m, sh.l,
                                                        reinterpret_cast<float*>(&sh.u));
}

// Merges the active splits of one (head, sequence): thread d produces dim d.
__global__ void CombineSplitsKernel(const float* __restrict__ ws_acc,
                                    const float* __restrict__ ws_ml,
                                    const int32_t* __restrict__ context_lens, int64_t cap,
                                    int n_heads, int n_splits, __nv_bfloat16* __restrict__ out) {
  AllowDependentLaunch();
  AwaitPriorGrid();
  const int head = blockIdx.x, seq = blockIdx.y, d = threadIdx.x, head_dim = blockDim.x;
  const int len = ContextLen(context_lens, seq, cap);
  const int n_tiles = (len + kTile - 1) / kTile;
  const int active = n_tiles == 0 ? 0
                                  : (n_tiles + TilesPerSplit(n_tiles, n_splits) - 1) /
                                        TilesPerSplit(n_tiles, n_splits);
  const int64_t row = (static_cast<int64_t>(seq) * n_heads + head) * n_splits;
  // The splits' (m, l) pairs are loaded in parallel into shared memory first: a loop of
  // dependent global loads per thread made this kernel latency-bound (~10 us at 32 splits).
  __shared__ float s_m[kMaxSplits], s_l[kMaxSplits];
  for (int s = d; s < active; s += head_dim) {
    s_m[s] = ws_ml[(row + s) * 2];
    s_l[s] = ws_ml[(row + s) * 2 + 1];
  }
  __syncthreads();
  float gm = -INFINITY;
  for (int s = 0; s < active; ++s) gm = fmaxf(gm, s_m[s]);
  float num = 0.0f, den = 0.0f;
#pragma unroll 8
  for (int s = 0; s < active; ++s) {
    const float w = exp2f(s_m[s] - gm);
    num = fmaf(w, ws_acc[(row + s) * head_dim + d], num);
    den = fmaf(w, s_l[s], den);
  }
  out[(static_cast<int64_t>(seq) * n_heads + head) * head_dim + d] =
      __float2bfloat16_rn(active > 0 ? num / den : 0.0f);
}

// ---- fallback: no split, any head_dim multiple of 32 up to 256 --------------------------------
// k_scale, v_scale: the FP8 cache's row scales; null for bf16 (scale 1).
template <int kDpl, typename C>
__global__ void __launch_bounds__(kThreads)
    SimpleDecodeKernel(const float* q, int64_t q_stride, const C* k_cache, const C* v_cache,
                       const float* k_scale, const float* v_scale,
                       const int32_t* __restrict__ block_tables, int64_t max_blocks,
                       const int32_t* __restrict__ context_lens, int n_heads, int n_kv_heads,
                       int block_size, float scale, __nv_bfloat16* __restrict__ out) {
  constexpr int kHeadDim = kDpl * 32;
  const int head = blockIdx.x, seq = blockIdx.y;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int kv_head = head / (n_heads / n_kv_heads);
  const int len = ContextLen(context_lens, seq, max_blocks * block_size);
  const int32_t* table = block_tables + static_cast<int64_t>(seq) * max_blocks;

  float qr[kDpl], acc[kDpl];
  const float* qh = q + static_cast<int64_t>(seq) * q_stride + head * kHeadDim + lane * kDpl;
#pragma unroll
  for (int i = 0; i < kDpl; ++i) {
    qr[i] = qh[i] * scale;
    acc[i] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int p = warp; p < len; p += kWarps) {
    const int64_t block = table[p / block_size];
    const int64_t row = (block * n_kv_heads + kv_head) * block_size + p % block_size;
    const int64_t off = row * kHeadDim + lane * kDpl;
    OnlineSoftmaxStep<kDpl>(qr, k_cache + off, v_cache + off,
                            k_scale != nullptr ? k_scale[row] : 1.0f,
                            v_scale != nullptr ? v_scale[row] : 1.0f, m, l, acc);
  }

  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][kHeadDim];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kDpl; ++i) s_acc[warp][lane * kDpl + i] = acc[i];
  __syncthreads();
  float gm = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) gm = fmaxf(gm, s_m[w]);
  __nv_bfloat16* o = out + (static_cast<int64_t>(seq) * n_heads + head) * kHeadDim;
  for (int d = threadIdx.x; d < kHeadDim; d += kThreads) {
    float num = 0.0f, den = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      if (s_m[w] == -INFINITY) continue;  // warp saw no position
      const float c = expf(s_m[w] - gm);
      num = fmaf(c, s_acc[w][d], num);
      den = fmaf(c, s_l[w], den);
    }
    o[d] = __float2bfloat16_rn(den > 0.0f ? num / den : 0.0f);  // empty context: zeros
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace

void SetDecodeAttentionSplitTarget(int64_t head_splits) {
  g_target_head_splits.store(head_splits > 0 ? head_splits : kDefaultHeadSplits);
}

void SetDecodeAttentionTensorCores(bool enabled) { g_tensor_cores.store(enabled); }

void SetDecodeAttentionMaxTilesPerSplit(int64_t tiles) {
  g_max_tiles_per_split.store(tiles >= 0 ? tiles : -1);
}

int64_t PagedDecodeAttentionWorkspace(int64_t batch, int64_t n_heads, int64_t n_kv_heads,
                                      int64_t head_dim, int64_t max_blocks_per_seq,
                                      int64_t block_size) {
  if (!FastHeadDim(head_dim) || batch <= 0 || batch > 65535 || n_heads <= 0 || n_heads > 65535 ||
      n_kv_heads <= 0 || n_heads % n_kv_heads != 0 ||
      max_blocks_per_seq <= 0 || max_blocks_per_seq > INT32_MAX || block_size <= 0 ||
      block_size > INT32_MAX) {
    return 0;
  }
  // The most (sequence, split) pairs of any batch b <= batch that splits at all (only
  // b * n_heads < the split target does), so that a buffer sized for a batch bucket serves every
  // smaller batch.
  int64_t most = 0;
  for (int64_t b = 1; b <= batch; ++b) {
    const int64_t splits = NumSplits(b, n_heads, n_kv_heads, max_blocks_per_seq, block_size);
    if (splits > 1) most = std::max(most, b * splits);
  }
  return most * n_heads * (head_dim + 2);
}

namespace {

// Both cache kinds: C = bf16 (scales null) or e4m3 codes with their row scales.
template <typename C>
Status DecodeImpl(const float* q, int64_t q_stride, const C* k_cache, const C* v_cache,
                  const float* k_scale, const float* v_scale, const int32_t* block_tables,
                  int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t batch,
                  int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                  float* workspace, __nv_bfloat16* out, cudaStream_t stream,
                  int32_t* split_counters) {
  constexpr bool kFp8 = std::is_same_v<C, __nv_fp8_e4m3>;
  if (batch < 0 || batch > 65535 || n_heads <= 0 || n_heads > 65535 || n_kv_heads <= 0 ||
      n_heads % n_kv_heads != 0 || block_size <= 0 || block_size > INT32_MAX ||
      max_blocks_per_seq <= 0 || max_blocks_per_seq > INT32_MAX || head_dim <= 0 ||
      head_dim % 32 != 0 || head_dim > 256 || q_stride < n_heads * head_dim) {
    return InvalidArgument(
        "PagedDecodeAttention: bad shape batch=" + std::to_string(batch) +
        " n_heads=" + std::to_string(n_heads) + " n_kv_heads=" + std::to_string(n_kv_heads) +
        " head_dim=" + std::to_string(head_dim) + " block_size=" + std::to_string(block_size) +
        " max_blocks_per_seq=" + std::to_string(max_blocks_per_seq) +
        " q_stride=" + std::to_string(q_stride));
  }
  if (batch == 0) return Status::Ok();
  if (q == nullptr || k_cache == nullptr || v_cache == nullptr || block_tables == nullptr ||
      context_lens == nullptr || out == nullptr ||
      (kFp8 && (k_scale == nullptr || v_scale == nullptr))) {
    return InvalidArgument("PagedDecodeAttention: null pointer");
  }
  const int nh = static_cast<int>(n_heads), nkv = static_cast<int>(n_kv_heads),
            bs = static_cast<int>(block_size);
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));

  if (!FastHeadDim(head_dim) || !Aligned16(k_cache) || !Aligned16(v_cache)) {
    const dim3 grid(static_cast<unsigned>(n_heads), static_cast<unsigned>(batch));
#define RAG_SIMPLE_DECODE_CASE(DPL)                                                                \
  case DPL:                                                                                        \
    SimpleDecodeKernel<DPL, C><<<grid, kThreads, 0, stream>>>(                                     \
        q, q_stride, k_cache, v_cache, k_scale, v_scale, block_tables, max_blocks_per_seq,         \
        context_lens, nh, nkv, bs, scale, out);                                                    \
    break;
    switch (head_dim / 32) {
      RAG_SIMPLE_DECODE_CASE(1)
      RAG_SIMPLE_DECODE_CASE(2)
      RAG_SIMPLE_DECODE_CASE(3)
      RAG_SIMPLE_DECODE_CASE(4)
      RAG_SIMPLE_DECODE_CASE(5)
      RAG_SIMPLE_DECODE_CASE(6)
      RAG_SIMPLE_DECODE_CASE(7)
      RAG_SIMPLE_DECODE_CASE(8)
    }
#undef RAG_SIMPLE_DECODE_CASE
    RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
    return Status::Ok();
  }

  // Both caches at head_dim 128 (Llama 3's) run on tensor cores (decode_attention_mma.cu); their
  // queries are read as float4.
  const bool mma = head_dim == 128 && g_tensor_cores.load(std::memory_order_relaxed) &&
                   Aligned16(q) && q_stride % 4 == 0;
  const int64_t n_splits =
      NumSplits(batch, n_heads, n_kv_heads, max_blocks_per_seq, block_size, mma);
  if (n_splits > 1 && workspace == nullptr) {
    return InvalidArgument("PagedDecodeAttention: these sizes need a workspace of " +
                           std::to_string(PagedDecodeAttentionWorkspace(
                               batch, n_heads, n_kv_heads, head_dim, max_blocks_per_seq,
                               block_size)) +
                           " floats (PagedDecodeAttentionWorkspace)");
  }
  const int64_t hp = HeadsPerCta(n_heads, n_kv_heads);

  DecodeArgs args{};
  args.q = q;
  args.q_stride = q_stride;
  args.k_cache = k_cache;
  args.v_cache = v_cache;
  args.k_scale = k_scale;
  args.v_scale = v_scale;
  args.block_tables = block_tables;
  args.max_blocks = max_blocks_per_seq;
  args.context_lens = context_lens;
  args.n_heads = nh;
  args.n_kv_heads = nkv;
  args.block_size = bs;
  args.heads_per_cta = static_cast<int>(hp);
  args.n_splits = static_cast<int>(n_splits);
  args.q_scale = kLog2e * scale;
  args.ws_acc = n_splits > 1 ? workspace : nullptr;
  args.ws_ml = n_splits > 1 ? workspace + batch * n_heads * n_splits * head_dim : nullptr;
  // (Merging in the kernel reads the workspace as float4.)
  args.counters = n_splits > 1 && Aligned16(workspace) ? split_counters : nullptr;
  args.out = out;
  const dim3 grid(static_cast<unsigned>(n_splits), static_cast<unsigned>(n_heads / hp),
                  static_cast<unsigned>(batch));
  if (mma) {
    RAG_CUDA_RETURN_IF_ERROR(kFp8 ? decode_split::LaunchFp8MmaDecode(args, grid, stream)
                                  : decode_split::LaunchBf16MmaDecode(args, grid, stream));
  } else {
    RAG_CUDA_RETURN_IF_ERROR(
        LaunchDependent(head_dim == 64 ? SplitKvDecodeKernel<64, C> : SplitKvDecodeKernel<128, C>,
                        grid, dim3(kThreads), 0, stream, args));
  }
  if (n_splits > 1 && args.counters == nullptr) {
    RAG_CUDA_RETURN_IF_ERROR(LaunchDependent(
        CombineSplitsKernel, dim3(static_cast<unsigned>(n_heads), static_cast<unsigned>(batch)),
        dim3(static_cast<unsigned>(head_dim)), 0, stream, args.ws_acc, args.ws_ml, context_lens,
        static_cast<int64_t>(max_blocks_per_seq * block_size), nh, args.n_splits, out));
  }
  return Status::Ok();
}


}  // namespace

Status PagedDecodeAttention(const float* q, int64_t q_stride, const __nv_bfloat16* k_cache,
                            const __nv_bfloat16* v_cache, const int32_t* block_tables,
                            int64_t max_blocks_per_seq, const int32_t* context_lens, int64_t batch,
                            int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                            int64_t block_size, float* workspace, __nv_bfloat16* out,
                            cudaStream_t stream, int32_t* split_counters) {
  return DecodeImpl(q, q_stride, k_cache, v_cache, nullptr, nullptr, block_tables,
                    max_blocks_per_seq, context_lens, batch, n_heads, n_kv_heads, head_dim,
                    block_size, workspace, out, stream, split_counters);
}

Status PagedDecodeAttention(const float* q, int64_t q_stride, const Fp8KvCache& cache,
                            const int32_t* block_tables, int64_t max_blocks_per_seq,
                            const int32_t* context_lens, int64_t batch, int64_t n_heads,
                            int64_t n_kv_heads, int64_t head_dim, int64_t block_size,
                            float* workspace, __nv_bfloat16* out, cudaStream_t stream,
                            int32_t* split_counters) {
  return DecodeImpl<__nv_fp8_e4m3>(q, q_stride, cache.k, cache.v, cache.k_scale, cache.v_scale,
                                   block_tables, max_blocks_per_seq, context_lens, batch, n_heads,
                                   n_kv_heads, head_dim, block_size, workspace, out, stream,
                                   split_counters);
}
}  // namespace rag
