// Decode attention on tensor cores (head_dim 128): the split-KV kernel of decode_attention.cu with
// its inner loop on mma.sync (m16n8k16, fp32 accumulate), over the FP8 KV cache (f16 products,
// below) and the bf16 one (bf16 products: "the bf16 cache" further down); both by default.
// Why: the query heads of a GQA group share each cached row, so the SIMT kernel spends 2 * hp
// fp32 FMAs on every cached byte (hp = 8 for Llama-3.1-70B: 16 a byte, above the ~20 flop a
// byte an H100 issues against its bandwidth once the widening and the shared-memory traffic are
// counted): at batch 64 over 5000-token contexts it read the cache at ~0.75 TB/s. Here the
// tensor cores do the arithmetic and the loop only widens codes.
//
// Same grid, splits, workspace and merge as the SIMT kernel (decode_attention_split.cuh). Each
// of the CTA's four warps walks chunks of 16 positions of the split (warp w: chunks w, w + 4,
// ...) with its own online softmax, straight from global memory into registers (16-byte loads,
// each warp instruction covering whole row pieces; the next chunk's loads in flight while one is
// consumed): no shared memory and no barrier in the loop. The warps' states merge at the end.
// With g = lane / 4, t = lane % 4, per chunk:
//  - S = Q K^T as two n-tiles of 8 positions (rows of the mma: the CTA's heads, g < hp; rows
//    g + 8 and heads past hp are zero), 8 k-steps over head_dim. The dims are visited in an
//    order that gives each thread 32 contiguous bytes of its key row: in k-step s, fragment
//    columns {2t, 2t+1, 2t+8, 2t+9} are dims base + {0, 1, 2, 3}, base = 16t + 4s (s < 4) or 64 +
//    16t + 4(s - 4); the queries are loaded in the same order (a dot product ignores order).
//    Key codes widen to f16 exactly (e4m3 fits in f16); queries round to f16 (2^-12 relative).
//  - Scores times the key rows' scales, online softmax in fp32 (exp2; q is pre-scaled by
//    log2(e) / sqrt(head_dim)).
//  - O += P V as 16 n-tiles of 8 dims: A = P straight from S's accumulators (rows = heads, as
//    FA2 reuses them), B = the value codes widened to f16. The value rows' scales ride on P: a
//    chunk's P is p * v_scale / u with u the chunk's largest value scale (so P stays in [0, 1],
//    f16's range), and the accumulator is kept in units of u (rescaled with the softmax
//    correction). Output dims are permuted too: in n-tile j column n is dim 16 n + j, so thread
//    (g, t) loads 16 contiguous bytes of four value rows (positions 2t, 2t+1, 2t+8, 2t+9) and
//    holds dims 32t + j and 32t + 16 + j of head g.
// Precision: scores from f16 queries and exact codes, fp32 sums; P in f16 (2^-12 relative,
// absolute 2^-25 below 2^-14): far below the cache's own e4m3 rounding (2^-4).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>

#include "kernels/attention_util.cuh"
#include "kernels/decode_attention_split.cuh"
#include "kernels/device_util.cuh"
#include "kernels/launch.cuh"

namespace rag {
namespace decode_split {
namespace {

constexpr int kHeadDim = 128;
constexpr int kChunk = 16;               // positions a warp takes at a time
constexpr int kKSteps = kHeadDim / 16;   // S: k-steps over head_dim
constexpr int kDimTiles = kHeadDim / 8;  // O: n-tiles of 8 dims
constexpr int kRowBytes = kHeadDim;      // an FP8 row
// The warps' accumulators in shared memory at the end, rows padded so that a warp's stores
// (dims 32t + j of head g) spread over 8 banks rather than 1.
constexpr int kRedStride = kHeadDim + 4;
static_assert(kChunk * 2 == kTile, "a split's tiles are whole chunks");

// d[0..1] += A B for rows g of A (rows g + 8 are zero): a0 = A[g][2t..2t+1], a2 = A[g][2t+8..];
// b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]; d = D[g][2t..2t+1]. f16 inputs, fp32 sums.
__device__ __forceinline__ void MmaRowsG(float (&d)[2], uint32_t a0, uint32_t a2, uint32_t b0,
                                         uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  float rows8[2] = {0.0f, 0.0f};  // D's rows g + 8: zero in, zero out (A's rows g + 8 are zero)
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %2, %3};\n"
      : "=f"(d[0]), "=f"(d[1]), "+f"(rows8[0]), "+f"(rows8[1])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1), "f"(d[0]), "f"(d[1]));
#endif
}

// Two e4m3 codes (the low 16 bits of `pair`, lower address in the low byte) as an f16 pair.
__device__ __forceinline__ uint32_t CodesToHalf2(uint32_t pair) {
  const __half2_raw h =
      __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(pair & 0xffffu), __NV_E4M3);
  return static_cast<uint32_t>(h.x) | (static_cast<uint32_t>(h.y) << 16);
}

__device__ __forceinline__ uint32_t PackHalf2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

// 16 bytes at `byte` of cache row `row` (rows of kRowBytes bytes: e4m3 codes, or bf16 at twice
// that); zeros for row -1 (past the end).
template <int kRowBytesT = kRowBytes>
__device__ __forceinline__ uint4 LoadRowPiece(const uint8_t* cache, int64_t row, int byte) {
  return row >= 0 ? __ldcg(reinterpret_cast<const uint4*>(cache + row * kRowBytesT + byte))
                  : make_uint4(0u, 0u, 0u, 0u);
}

// One chunk as a thread holds it: its key rows g and g + 8 (bytes 16t.. and 64 + 16t..), its
// value rows 2t, 2t+1, 2t+8, 2t+9 (bytes 16g..), and lane r's row scales (of position r % 16;
// 0 past the end), shuffled to where they are needed only when the chunk is consumed (fewer
// registers for the chunk in flight).
struct Chunk {
  uint4 k[4];
  uint4 v[4];
  float ks, vs;
};

// Lane r (of 16; lanes 16.. repeat them) looks up position pos0 + r: its cache row (-1 past
// pos_end) ...
struct LaneRow {
  int64_t row;
  float ks, vs;
};

__device__ __forceinline__ int64_t RowOf(const DecodeArgs& a, const int32_t* table, int kv_head,
                                         int pos, int pos_end) {
  if (pos >= pos_end) return -1;
  const int64_t block = table[pos / a.block_size];
  return (block * a.n_kv_heads + kv_head) * a.block_size + pos % a.block_size;
}

// ... and its scales (read only once the row may be read: the newest row's are the previous
// kernel's).
__device__ __forceinline__ void LoadScales(const DecodeArgs& a, LaneRow& r) {
  r.ks = r.row >= 0 ? __ldcg(a.k_scale + r.row) : 0.0f;
  r.vs = r.row >= 0 ? __ldcg(a.v_scale + r.row) : 0.0f;
}

// The first of the 4 dims that thread t's fragment columns {2t, 2t+1, 2t+8, 2t+9} of k-step s
// stand for (the visiting order of head_dim in S = Q K^T).
__device__ __forceinline__ int KStepBase(int s, int t) {
  return (s < 4 ? 0 : 64) + 16 * t + 4 * (s % 4);
}

// The chunk position of a thread's value row i (0..3): 2t, 2t+1, 2t+8, 2t+9.
__device__ __forceinline__ int ValuePosition(int i, int t) {
  return 2 * t + (i & 1) + 8 * (i >> 1);
}

// Issues the chunk's loads from the lane rows.
__device__ __forceinline__ Chunk FetchChunk(const DecodeArgs& a, const LaneRow& r, int g, int t) {
  const uint8_t* kc = static_cast<const uint8_t*>(a.k_cache);
  const uint8_t* vc = static_cast<const uint8_t*>(a.v_cache);
  Chunk c;
  const int64_t k0 = __shfl_sync(0xffffffffu, r.row, g),
                k1 = __shfl_sync(0xffffffffu, r.row, g + 8);
  c.k[0] = LoadRowPiece(kc, k0, 16 * t);
  c.k[1] = LoadRowPiece(kc, k0, 64 + 16 * t);
  c.k[2] = LoadRowPiece(kc, k1, 16 * t);
  c.k[3] = LoadRowPiece(kc, k1, 64 + 16 * t);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    c.v[i] = LoadRowPiece(vc, __shfl_sync(0xffffffffu, r.row, ValuePosition(i, t)), 16 * g);
  }
  c.ks = r.ks;
  c.vs = r.vs;
  return c;
}

// Word w (bytes 4w..4w+3) of a 16-byte piece.
__device__ __forceinline__ uint32_t Word(const uint4& u, int w) {
  return w == 0 ? u.x : (w == 1 ? u.y : (w == 2 ? u.z : u.w));
}

// This CTA's split as its warps walk it: its heads, and its positions [pos0, pos_end) in chunks
// of kChunk (warp w takes chunks w, w + kWarps, ...; every chunk starts at a valid position).
struct SplitWalk {
  SplitRange range;
  int seq, hp, head0, kv_head, pos0, pos_end, n_chunks;
  const int32_t* table;

  __device__ __forceinline__ static SplitWalk Begin(const DecodeArgs& a) {
    SplitWalk w;
    w.range = ThisSplit(a);
    w.seq = blockIdx.z;
    w.hp = a.heads_per_cta;
    w.head0 = blockIdx.y * w.hp;
    w.kv_head = w.head0 / (a.n_heads / a.n_kv_heads);
    w.pos0 = w.range.tile0 * kTile;
    w.pos_end = min(w.range.len, (w.range.tile0 + w.range.n) * kTile);
    w.n_chunks = w.range.n > 0 ? (w.pos_end - w.pos0 + kChunk - 1) / kChunk : 0;
    w.table = a.block_tables + static_cast<int64_t>(w.seq) * a.max_blocks;
    return w;
  }
  // A split past the end of its context: FinishEmptySplit, and true (the kernel returns).
  __device__ __forceinline__ bool EndIfEmpty(const DecodeArgs& a) const {
    if (range.n > 0) return false;
    FinishEmptySplit<kHeadDim>(a, range);
    return true;
  }
  // Lane r's cache row: position r % kChunk of chunk c (-1 past the end).
  __device__ __forceinline__ int64_t RowOfLane(const DecodeArgs& a, int c, int lane) const {
    return RowOf(a, table, kv_head, pos0 + c * kChunk + lane % kChunk, pos_end);
  }
  // Whether chunk c may hold the newest position, which the previous kernel writes.
  __device__ __forceinline__ bool MayHoldNewest(int c) const {
    return pos0 + (c + 1) * kChunk >= range.len;
  }
  // Whether position i of chunk c is in the split.
  __device__ __forceinline__ bool Valid(int c, int i) const {
    return pos0 + c * kChunk + i < pos_end;
  }
  // Query row of head head0 + g.
  __device__ __forceinline__ const float* QueryRow(const DecodeArgs& a, int g) const {
    return a.q + static_cast<int64_t>(seq) * a.q_stride +
           static_cast<int64_t>(head0 + g) * kHeadDim;
  }
};

// The online softmax over chunk c for head g: s[nt][e] is the score of chunk position 8 nt + 2t
// + e, times ks[2 nt + e] (the key rows' scales; 1 for bf16), -inf past the split. Updates the
// running max m_run (the 4 lanes of a head hold its 16 positions) and this lane's share of the
// sum l_run, leaves the probabilities in p and returns the factor for what came before
// (exp2(old max - new max): 0 at the first chunk; the max stays finite, as a chunk's first
// position is valid).
__device__ __forceinline__ float ChunkSoftmax(const SplitWalk& sw, int c, int t,
                                              const float (&s)[2][2], const float (&ks)[4],
                                              float& m_run, float& l_run, float (&p)[2][2]) {
  float x[2][2], mx = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) {
      x[nt][e] = sw.Valid(c, 8 * nt + 2 * t + e) ? s[nt][e] * ks[2 * nt + e] : -INFINITY;
      mx = fmaxf(mx, x[nt][e]);
    }
  }
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_new = fmaxf(m_run, mx);
  const float corr = exp2f(m_run - m_new);
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
    for (int e = 0; e < 2; ++e) p[nt][e] = exp2f(x[nt][e] - m_new);  // masked: 0
  }
  l_run = l_run * corr + ((p[0][0] + p[0][1]) + (p[1][0] + p[1][1]));
  m_run = m_new;
  return corr;
}

__device__ __forceinline__ void ScaleAcc(float (&acc)[kDimTiles][2], float f) {
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) {
    acc[j][0] *= f;
    acc[j][1] *= f;
  }
}

// mma.sync needs sm_80: builds for older GPUs must keep the tensor-core paths off.
__device__ __forceinline__ void TrapBelowSm80() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();
#endif
}

// The end of a split: each warp's state (acc in units of u, running max m_run, this lane's share
// of the sum l_run) scaled to the CTA's running max and summed (FinishSplit).
__device__ __forceinline__ void MergeWarpsAndFinish(const DecodeArgs& a, const SplitRange& range,
                                                    const float (&acc)[kDimTiles][2], float m_run,
                                                    float l_run, float u, int hp, int warp, int g,
                                                    int t) {
  __shared__ __align__(16) float red[kWarps][kMaxHeads][kRedStride];
  __shared__ float s_m[kWarps][kMaxHeads], s_l[kWarps][kMaxHeads];
  __shared__ float m_fin[kMaxHeads], l_fin[kMaxHeads];
  static_assert(sizeof(red) >= sizeof(float) * 2 * kMaxHeads * kMaxSplits,
                "the splits' softmax states must fit in the buffer they reuse");
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 1);
  l_run += __shfl_xor_sync(0xffffffffu, l_run, 2);
  if (t == 0 && g < hp) {
    s_m[warp][g] = m_run;  // -inf for a warp that had no chunk (l 0, acc 0)
    s_l[warp][g] = l_run;
  }
  __syncthreads();
  if (g < hp) {
    float m_cta = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m_cta = fmaxf(m_cta, s_m[w][g]);
    const float f = m_run == -INFINITY ? 0.0f : exp2f(m_run - m_cta) * u;
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      red[warp][g][32 * t + j] = acc[j][0] * f;
      red[warp][g][32 * t + 16 + j] = acc[j][1] * f;
    }
    if (warp == 0 && t == 0) {
      float l_cta = 0.0f;
#pragma unroll
      for (int w = 0; w < kWarps; ++w) {
        if (s_m[w][g] != -INFINITY) l_cta += s_l[w][g] * exp2f(s_m[w][g] - m_cta);
      }
      m_fin[g] = m_cta;
      l_fin[g] = l_cta;
    }
  }
  __syncthreads();
  FinishSplit<kHeadDim, kWarps, kRedStride>(a, range, &red[0][0][0], m_fin, l_fin, &red[0][0][0]);
}

__global__ void __launch_bounds__(kThreads, 3) Fp8MmaDecodeKernel(const DecodeArgs a) {
  TrapBelowSm80();
  AllowDependentLaunch();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const SplitWalk sw = SplitWalk::Begin(a);
  if (sw.EndIfEmpty(a)) return;

  // Prologue: the first chunk's rows; its loads before the previous kernel has finished unless
  // it may hold the newest position, then the queries.
  int c = warp;
  LaneRow cur_row{-1, 0.0f, 0.0f};
  Chunk cur{};
  const bool early = c < sw.n_chunks && !sw.MayHoldNewest(c);
  if (c < sw.n_chunks) cur_row.row = sw.RowOfLane(a, c, lane);
  if (early) {
    LoadScales(a, cur_row);
    cur = FetchChunk(a, cur_row, g, t);
  }
  AwaitPriorGrid();
  uint32_t qa[kKSteps][2];  // A fragments of the queries: [s][0] cols 2t.., [s][1] cols 2t+8..
  {
    const float* qrow = sw.QueryRow(a, g);
#pragma unroll
    for (int s = 0; s < kKSteps; ++s) {
      const float4 q = g < sw.hp ? *reinterpret_cast<const float4*>(qrow + KStepBase(s, t))
                                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      qa[s][0] = PackHalf2(q.x * a.q_scale, q.y * a.q_scale);
      qa[s][1] = PackHalf2(q.z * a.q_scale, q.w * a.q_scale);
    }
  }
  if (c < sw.n_chunks && !early) {
    LoadScales(a, cur_row);
    cur = FetchChunk(a, cur_row, g, t);
  }

  float acc[kDimTiles][2] = {};  // head g, dims 32t + j and 32t + 16 + j, in units of u
  float m_run = -INFINITY, l_run = 0.0f, u = 1.0f;
  for (; c < sw.n_chunks; c += kWarps) {
    // The next chunk's loads go out before this one is consumed.
    Chunk next{};
    if (c + kWarps < sw.n_chunks) {
      LaneRow r{sw.RowOfLane(a, c + kWarps, lane), 0.0f, 0.0f};
      LoadScales(a, r);
      next = FetchChunk(a, r, g, t);
    }

    // S = Q K^T: s[nt][e] is head g at chunk position 8 nt + 2t + e.
    float s[2][2] = {};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        const uint32_t w = Word(cur.k[2 * nt + kk / 4], kk % 4);
        MmaRowsG(s[nt], qa[kk][0], qa[kk][1], CodesToHalf2(w), CodesToHalf2(w >> 16));
      }
    }
    // The scales of this thread's positions (value rows: the same positions as its scores),
    // and the chunk's largest value scale.
    float ks[4], vs[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      ks[i] = __shfl_sync(0xffffffffu, cur.ks, ValuePosition(i, t));
      vs[i] = __shfl_sync(0xffffffffu, cur.vs, ValuePosition(i, t));
    }
    float v_max = cur.vs;
#pragma unroll
    for (int o = 8; o > 0; o >>= 1) v_max = fmaxf(v_max, __shfl_xor_sync(0xffffffffu, v_max, o));
    v_max = v_max > 0.0f ? v_max : 1.0f;  // all-zero value rows: P is 0 anyway
    float p[2][2];
    const float corr = ChunkSoftmax(sw, c, t, s, ks, m_run, l_run, p);
    const float inv_u = 1.0f / v_max;
    ScaleAcc(acc, corr * u * inv_u);  // old units (u) to this chunk's (v_max)
    u = v_max;
    const uint32_t pa0 = PackHalf2(p[0][0] * vs[0] * inv_u, p[0][1] * vs[1] * inv_u);
    const uint32_t pa2 = PackHalf2(p[1][0] * vs[2] * inv_u, p[1][1] * vs[3] * inv_u);
    // O += P V: for n-tile j, b0 pairs positions 2t, 2t+1 at dim 16g + j, b1 positions 2t+8, 2t+9.
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t lo01 = __byte_perm(Word(cur.v[0], w), Word(cur.v[1], w), 0x5140);
      const uint32_t hi01 = __byte_perm(Word(cur.v[0], w), Word(cur.v[1], w), 0x7362);
      const uint32_t lo23 = __byte_perm(Word(cur.v[2], w), Word(cur.v[3], w), 0x5140);
      const uint32_t hi23 = __byte_perm(Word(cur.v[2], w), Word(cur.v[3], w), 0x7362);
      MmaRowsG(acc[4 * w], pa0, pa2, CodesToHalf2(lo01), CodesToHalf2(lo23));
      MmaRowsG(acc[4 * w + 1], pa0, pa2, CodesToHalf2(lo01 >> 16), CodesToHalf2(lo23 >> 16));
      MmaRowsG(acc[4 * w + 2], pa0, pa2, CodesToHalf2(hi01), CodesToHalf2(hi23));
      MmaRowsG(acc[4 * w + 3], pa0, pa2, CodesToHalf2(hi01 >> 16), CodesToHalf2(hi23 >> 16));
    }
    cur = next;
  }

  MergeWarpsAndFinish(a, sw.range, acc, m_run, l_run, u, sw.hp, warp, g, t);
}

// ---- the bf16 cache ------------------------------------------------------------------------
// The same walk over a bf16 cache (rows of 256 bytes), with bf16 products: S from the query split
// into a bf16 high and low part (two products a k-step: ~16 bits of the query, as fp32 keys
// exactly), P in bf16 (2^-9 relative, as the prefill kernel's), values as they are cached.
// Registers: a chunk is twice the FP8 one, so the next chunk's loads go out as this one is done
// (other warps cover the wait) instead of a chunk ahead, and two CTAs share an SM (232 registers
// a thread; three spilled 800 bytes). Against the SIMT kernel on an H200 (decode_attention_bench,
// 2026-11-28): 70B over 2 GPUs batch 1 x 2048 18.6 -> 10.1 us, batch 64 x 5250 402 -> 217 us.
constexpr int kBf16RowBytes = 2 * kHeadDim;

// A thread's bf16 chunk: key rows g and g + 8, dims 16t.. and 64 + 16t.. (16 each, two 16-byte
// pieces: k[h][0..1] and k[h][2..3]); value rows 2t, 2t+1, 2t+8, 2t+9, dims 16g..16g+15.
struct Bf16Chunk {
  uint4 k[2][4];
  uint4 v[4][2];
};

__device__ __forceinline__ Bf16Chunk FetchBf16Chunk(const DecodeArgs& a, int64_t lane_row, int g,
                                                    int t) {
  const uint8_t* kc = static_cast<const uint8_t*>(a.k_cache);
  const uint8_t* vc = static_cast<const uint8_t*>(a.v_cache);
  Bf16Chunk c;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int64_t row = __shfl_sync(0xffffffffu, lane_row, g + 8 * h);
#pragma unroll
    for (int p = 0; p < 4; ++p) {
      c.k[h][p] =
          LoadRowPiece<kBf16RowBytes>(kc, row, 2 * ((p < 2 ? 0 : 64) + 16 * t + 8 * (p % 2)));
    }
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = __shfl_sync(0xffffffffu, lane_row, ValuePosition(i, t));
#pragma unroll
    for (int p = 0; p < 2; ++p)
      c.v[i][p] = LoadRowPiece<kBf16RowBytes>(vc, row, 2 * (16 * g + 8 * p));
  }
  return c;
}

// MmaRowsG with bf16 inputs.
__device__ __forceinline__ void MmaBf16RowsG(float (&d)[2], uint32_t a0, uint32_t a2, uint32_t b0,
                                             uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  float rows8[2] = {0.0f, 0.0f};
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
      "{%4, %5, %6, %7}, {%8, %9}, {%10, %11, %2, %3};\n"
      : "=f"(d[0]), "=f"(d[1]), "+f"(rows8[0]), "+f"(rows8[1])
      : "r"(a0), "r"(0u), "r"(a2), "r"(0u), "r"(b0), "r"(b1), "f"(d[0]), "f"(d[1]));
#endif
}

__global__ void __launch_bounds__(kThreads, 2) Bf16MmaDecodeKernel(const DecodeArgs a) {
  TrapBelowSm80();
  AllowDependentLaunch();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const SplitWalk sw = SplitWalk::Begin(a);
  if (sw.EndIfEmpty(a)) return;
  int c = warp;
  Bf16Chunk cur{};
  const bool early = c < sw.n_chunks && !sw.MayHoldNewest(c);
  const int64_t first_row = c < sw.n_chunks ? sw.RowOfLane(a, c, lane) : -1;
  if (early) cur = FetchBf16Chunk(a, first_row, g, t);
  AwaitPriorGrid();
  uint32_t qh[kKSteps][2], ql[kKSteps][2];  // the queries' A fragments: high and low bf16 parts
  {
    const float* qrow = sw.QueryRow(a, g);
#pragma unroll
    for (int s = 0; s < kKSteps; ++s) {
      const float4 q = g < sw.hp ? *reinterpret_cast<const float4*>(qrow + KStepBase(s, t))
                                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      const float x[4] = {q.x * a.q_scale, q.y * a.q_scale, q.z * a.q_scale, q.w * a.q_scale};
      float hi[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) hi[i] = __bfloat162float(__float2bfloat16_rn(x[i]));
      qh[s][0] = PackBf16(hi[0], hi[1]);
      qh[s][1] = PackBf16(hi[2], hi[3]);
      ql[s][0] = PackBf16(x[0] - hi[0], x[1] - hi[1]);
      ql[s][1] = PackBf16(x[2] - hi[2], x[3] - hi[3]);
    }
  }
  if (c < sw.n_chunks && !early) cur = FetchBf16Chunk(a, first_row, g, t);

  float acc[kDimTiles][2] = {};  // head g, dims 32t + j and 32t + 16 + j
  float m_run = -INFINITY, l_run = 0.0f;
  for (; c < sw.n_chunks; c += kWarps) {
    const int64_t next_row = c + kWarps < sw.n_chunks ? sw.RowOfLane(a, c + kWarps, lane) : -1;
    // S = Q K^T: k-step kk's dims base.. are piece kk / 2 of the key row, words 2 (kk % 2) and
    // 2 (kk % 2) + 1.
    float s[2][2] = {};
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int kk = 0; kk < kKSteps; ++kk) {
        const uint32_t b0 = Word(cur.k[nt][kk / 2], 2 * (kk % 2));
        const uint32_t b1 = Word(cur.k[nt][kk / 2], 2 * (kk % 2) + 1);
        MmaBf16RowsG(s[nt], qh[kk][0], qh[kk][1], b0, b1);
        MmaBf16RowsG(s[nt], ql[kk][0], ql[kk][1], b0, b1);
      }
    }
    constexpr float kUnscaled[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    float p[2][2];
    ScaleAcc(acc, ChunkSoftmax(sw, c, t, s, kUnscaled, m_run, l_run, p));
    const uint32_t pa0 = PackBf16(p[0][0], p[0][1]);
    const uint32_t pa2 = PackBf16(p[1][0], p[1][1]);
    // O += P V: n-tile j is dim 16g + j of the value rows: piece j / 8, word (j % 8) / 2, the low
    // (even j) or high (odd j) bf16 of it, paired across rows 2t, 2t+1 (b0) and 2t+8, 2t+9 (b1).
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      const int pc = j / 8, w = (j % 8) / 2;
      const uint32_t sel = j % 2 == 0 ? 0x5410u : 0x7632u;
      const uint32_t b0 = __byte_perm(Word(cur.v[0][pc], w), Word(cur.v[1][pc], w), sel);
      const uint32_t b1 = __byte_perm(Word(cur.v[2][pc], w), Word(cur.v[3][pc], w), sel);
      MmaBf16RowsG(acc[j], pa0, pa2, b0, b1);
    }
    if (c + kWarps < sw.n_chunks) cur = FetchBf16Chunk(a, next_row, g, t);
  }
  MergeWarpsAndFinish(a, sw.range, acc, m_run, l_run, 1.0f, sw.hp, warp, g, t);
}

}  // namespace

cudaError_t LaunchFp8MmaDecode(const DecodeArgs& a, dim3 grid, cudaStream_t stream) {
  return LaunchDependent(Fp8MmaDecodeKernel, grid, dim3(kThreads), 0, stream, a);
}

cudaError_t LaunchBf16MmaDecode(const DecodeArgs& a, dim3 grid, cudaStream_t stream) {
  return LaunchDependent(Bf16MmaDecodeKernel, grid, dim3(kThreads), 0, stream, a);
}

}  // namespace decode_split
}  // namespace rag
