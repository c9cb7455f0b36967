// Prefill attention on Hopper's warpgroup tensor-core instructions (wgmma, sm_90a), head_dim 128:
// what PagedPrefillAttention runs on an H100/H200 when this build has the sm_90a code. Same
// contract and arithmetic as the mma.sync kernel of prefill_attention.cu (bf16 products, fp32
// accumulators and online softmax in exp2, P rounded to bf16), so the same tests hold it.
//  - One CTA of two warpgroups (256 threads) per (tile of 128 query rows, query head, sequence);
//    each warpgroup owns 64 rows, the m of wgmma.m64n128k16.
//  - Shared memory holds every operand as two halves of 64 columns, rows of 128 bytes, 16-byte
//    chunk c of row r at chunk c ^ (r % 8): the 128-byte swizzle that the instructions' matrix
//    descriptors name (bank-conflict free for them), each half on a 1024-byte boundary.
//  - S = Q K^T: Q (scaled by log2(e) / sqrt(128), rotated first when the caller left RoPE of q to
//    us, rounded to bf16) and the K tile both from shared memory, K-major; 8 instructions of 16
//    dims. The accumulators (each warp's 16 rows, as mma.sync's m16n8 fragments side by side) get
//    the causal mask and the online softmax in registers; P, rounded to bf16, is the register A
//    operand of O += P V with V's tile read transposed from shared memory (MN-major): 8
//    instructions of 16 keys. O stays in fp32 registers and is divided by the row sums at the end.
//  - K/V tiles of 128 positions, double buffered: the bf16 cache's by cp.async (tile j + 1 lands
//    under tile j's math). The FP8 cache's codes and row scales are fetched into registers before
//    tile j's math and widened to bf16 (code times its row's scale) into the other stage while
//    tile j's P V runs on the tensor cores (tile 0 at once, before the loop). A warpgroup skips
//    the math of a tile wholly past its rows.
//  - Code for sm_90a only (wgmma is not part of sm_90); other builds hold a trap, never launched:
//    WarpgroupKernelUsable asks the device, once, what the loaded code is.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "kernels/cuda_check.h"
#include "kernels/prefill_attention.cuh"

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RAG_WGMMA_CODE 1
#else
#define RAG_WGMMA_CODE 0
#endif

namespace rag::prefill {
namespace {

constexpr int kHeadDim = 128;
constexpr int kWgRows = 64;  // query rows of a warpgroup
constexpr int kWgs = 2;      // warpgroups a CTA
constexpr int kThreads = 128 * kWgs;
constexpr int kBq = kWgRows * kWgs;  // query rows a CTA
constexpr int kBk = 128;             // key positions a K/V tile
constexpr int kStages = 2;
constexpr int kRowBytes = 128;               // a swizzled row: 64 bf16 columns
constexpr int kQHalf = kWgRows * kRowBytes;  // bytes of a 64-column half of a warpgroup's Q
constexpr int kKvHalf = kBk * kRowBytes;     // ... of a K or V tile
static_assert(kStages * kBk == kThreads, "prologue: one row offset a thread");

struct Smem {
  uint8_t q[kWgs][2][kQHalf];
  uint8_t k[kStages][2][kKvHalf];
  uint8_t v[kStages][2][kKvHalf];
  int64_t row_off[kStages][kBk];  // cache offset (elements) of each row of a tile; -1 past kv_end
};
constexpr int kSmemBytes = static_cast<int>(sizeof(Smem)) + 1024;  // + aligning the base
template <typename Kv>
constexpr bool kFp8 = std::is_same_v<Kv, Fp8KvCache>;

// Byte offset of 16-byte chunk `chunk` (0..7) of row `row` in a swizzled half.
__device__ __forceinline__ uint32_t Swizzled(int row, int chunk) {
  return static_cast<uint32_t>(row * kRowBytes + ((chunk ^ (row & 7)) << 4));
}

// A shared-memory matrix descriptor with the 128-byte swizzle: start address, leading and stride
// byte offsets (what each means depends on the operand's major-ness; see the callers).
__device__ __forceinline__ uint64_t Descriptor(uint32_t smem_addr, uint32_t lead, uint32_t stride) {
  return static_cast<uint64_t>((smem_addr & 0x3ffffu) >> 4) |
         (static_cast<uint64_t>((lead >> 4) & 0x3fffu) << 16) |
         (static_cast<uint64_t>((stride >> 4) & 0x3fffu) << 32) | (uint64_t{1} << 62);
}

__device__ __forceinline__ uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if RAG_WGMMA_CODE
__device__ __forceinline__ void WgmmaFence() {
  asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaCommit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void WgmmaWaitAll() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// Shared-memory stores of this thread (st.shared, cp.async) made visible to the async proxy,
// through which wgmma reads its descriptors' operands; a barrier after it covers every thread.
__device__ __forceinline__ void FenceProxyAsync() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
// Keeps the compiler from moving uses of the accumulators across the asynchronous instructions
// (they are registers the asm names; only the wait makes them valid).
__device__ __forceinline__ void PinRegisters(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// A thread's 64 fp32 accumulators of an m64n128 wgmma: their names in the instruction and the
// asm operands that bind them (read and written), %0..%63.
#define RAG_WGMMA_D64_NAMES                                                                    \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, "     \
  "%19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, " \
  "%37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, " \
  "%55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define RAG_WGMMA_D64_OPERANDS(d)                                                                 \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),    \
      "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),  \
      "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),  \
      "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]),  \
      "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]),  \
      "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]),  \
      "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),  \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])

// d (+)= A B for A a 64x16 bf16 tile in shared memory (descriptor da, K-major), B a 16x128
// tile (descriptor db, K-major: the keys' rows), fp32 d; scale_d 0 overwrites d.
__device__ __forceinline__ void WgmmaSs(float (&d)[64], uint64_t da, uint64_t db, int scale_d) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RAG_WGMMA_D64_NAMES
      ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : RAG_WGMMA_D64_OPERANDS(d)
      : "l"(da), "l"(db), "r"(scale_d));
}
// d += A B for A a 64x16 bf16 tile in registers (the m16n8k16 A fragment of each warp's 16 rows),
// B a 16x128 tile in shared memory given transposed (descriptor db, MN-major: V's rows).
__device__ __forceinline__ void WgmmaRs(float (&d)[64], const uint32_t (&a)[4], uint64_t db) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " RAG_WGMMA_D64_NAMES
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : RAG_WGMMA_D64_OPERANDS(d)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(1));
}
#undef RAG_WGMMA_D64_NAMES
#undef RAG_WGMMA_D64_OPERANDS

// The K/V rows of row_off[stage] from the bf16 cache into stage `stage`, 16 bytes a cp.async
// (the caller commits them as one group); rows past kv_end are zero-filled.
__device__ __forceinline__ void LoadKvTile(const Bf16Kv& kv, Smem& sh, int stage) {
  constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks a row
#pragma unroll
  for (int i = 0; i < kBk * kChunks / kThreads; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;
    const int64_t off = sh.row_off[stage][r];
    const int64_t src = off >= 0 ? off + c * 8 : 0;
    const uint32_t dst = Swizzled(r, c % 8);
    CopyAsync16(&sh.k[stage][c / 8][dst], kv.k + src, off >= 0);
    CopyAsync16(&sh.v[stage][c / 8][dst], kv.v + src, off >= 0);
  }
}

// An FP8 tile in flight in registers: each thread's 16-code chunks of K and V and their rows'
// scales (FetchFp8Tile), widened into shared memory later (StoreFp8Tile), so that the loads'
// latency passes under a tile's math.
struct Fp8TileRegs {
  static constexpr int kPerThread = kBk * (kHeadDim / 16) / kThreads;
  uint4 k[kPerThread], v[kPerThread];
  float k_scale[kPerThread], v_scale[kPerThread];
};

// Issues the loads of the FP8 cache's tile of row_off[stage]: 16 codes a load, row r's chunks
// by consecutive threads; rows past kv_end get code 0 and scale 0.
__device__ __forceinline__ void FetchFp8Tile(const Fp8KvCache& kv, const Smem& sh, int stage,
                                             Fp8TileRegs& t) {
  constexpr int kChunks = kHeadDim / 16;
#pragma unroll
  for (int i = 0; i < Fp8TileRegs::kPerThread; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;
    const int64_t off = sh.row_off[stage][r];
    t.k[i] = t.v[i] = make_uint4(0u, 0u, 0u, 0u);
    t.k_scale[i] = t.v_scale[i] = 0.0f;
    if (off >= 0) {
      t.k[i] = __ldcg(reinterpret_cast<const uint4*>(kv.k + off) + c);
      t.v[i] = __ldcg(reinterpret_cast<const uint4*>(kv.v + off) + c);
      t.k_scale[i] = kv.k_scale[off / kHeadDim];
      t.v_scale[i] = kv.v_scale[off / kHeadDim];
    }
  }
}

// Widens a fetched tile (code times its row's scale, to bf16) into the swizzled stage `stage`;
// the stage's previous readers must be done, and a proxy fence and a barrier publish it.
__device__ __forceinline__ void StoreFp8Tile(const Fp8TileRegs& t, Smem& sh, int stage) {
  constexpr int kChunks = kHeadDim / 16;
#pragma unroll
  for (int i = 0; i < Fp8TileRegs::kPerThread; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;  // dims 16c..16c+15: bf16 chunks 2c, 2c + 1
    const int half = c / 4, chunk = 2 * c % 8;
    uint4 lo, hi;
    WidenFp8x16(t.k[i], t.k_scale[i], lo, hi);
    StoreShared16(&sh.k[stage][half][Swizzled(r, chunk)], lo);
    StoreShared16(&sh.k[stage][half][Swizzled(r, chunk + 1)], hi);
    WidenFp8x16(t.v[i], t.v_scale[i], lo, hi);
    StoreShared16(&sh.v[stage][half][Swizzled(r, chunk)], lo);
    StoreShared16(&sh.v[stage][half][Swizzled(r, chunk + 1)], hi);
  }
}

// The same tile at once (the prologue's tile 0).
__device__ __forceinline__ void LoadKvTile(const Fp8KvCache& kv, Smem& sh, int stage) {
  Fp8TileRegs t;
  FetchFp8Tile(kv, sh, stage, t);
  StoreFp8Tile(t, sh, stage);
}

// The CTA's Q tile: row r of q (at qg + r * q_stride, q row row0 + r) rotated by row row0 + r of
// a.rope_cos_sin when set, scaled by a.q_scale, rounded to bf16, into warpgroup r / 64's halves;
// rows at or past `rows` are zeros (computed on, never stored). A thread takes a float4 of the
// first half of a head and the float4 of the second half that pairs with it under RoPE.
__device__ __forceinline__ void LoadQTile(const PrefillArgs& a, const float* qg, int rows,
                                          int64_t row0, Smem& sh) {
  constexpr int kHalf = kHeadDim / 2, kHalfQuads = kHalf / 4;
#pragma unroll 4
  for (int idx = threadIdx.x; idx < kBq * kHalfQuads; idx += kThreads) {
    const int r = idx / kHalfQuads, c = idx % kHalfQuads;
    uint2 lo, hi;
    LoadQQuads<kHeadDim>(a, qg, r, c, rows, row0, lo, hi);
    // Columns 4c..4c+3 of each half: chunk c / 2, bytes 8 (c % 2) of it.
    const uint32_t at = Swizzled(r % kWgRows, c / 2) + (c % 2) * 8;
    *reinterpret_cast<uint2*>(&sh.q[r / kWgRows][0][at]) = lo;
    *reinterpret_cast<uint2*>(&sh.q[r / kWgRows][1][at]) = hi;
  }
}
#endif  // RAG_WGMMA_CODE

template <typename Kv>
__global__ void __launch_bounds__(kThreads, 1)
    WarpgroupPrefillKernel(const PrefillArgs a, const Kv kv) {
#if RAG_WGMMA_CODE
  extern __shared__ unsigned char smem_raw[];
  Smem& sh = *reinterpret_cast<Smem*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) &
                                      ~static_cast<uintptr_t>(1023));
  const PrefillCta<kHeadDim, kBq> cta(a);
  if (cta.q0 >= cta.q_len) return;
  const int head = cta.head, q0 = cta.q0, start = cta.start, rows = cta.rows;
  const int64_t row0 = cta.row0;
  const int n_tiles = (cta.kv_end + kBk - 1) / kBk;
  const int tid = threadIdx.x, wg = tid / 128, warp = tid % 128 / 32, lane = tid % 32;
  auto row_offset = [&](int tile, int r) { return cta.KeyOffset(a, tile * kBk + r); };

  // Prologue: offsets of tiles 0 and 1, tile 0 in flight while the Q tile goes to shared memory.
  if (tid / kBk < n_tiles) sh.row_off[tid / kBk][tid % kBk] = row_offset(tid / kBk, tid % kBk);
  __syncthreads();
  LoadKvTile(kv, sh, 0);
  CopyAsyncCommit();
  LoadQTile(a, a.q + row0 * a.q_stride + static_cast<int64_t>(head) * kHeadDim, rows, row0, sh);

  const int wg_row0 = wg * kWgRows;  // the warpgroup's first row in the tile
  const bool wg_rows = wg_row0 < rows;
  const int wg_first_pos = start + q0 + wg_row0;
  const int wg_last_pos = wg_first_pos + kWgRows - 1;
  const int g = lane / 4, t4 = lane % 4;
  const int qpos = wg_first_pos + warp * 16 + g;  // position of the thread's row g; g + 8: + 8
  const uint32_t q_addr = SmemAddr(&sh.q[wg][0][0]);
  float o[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};

  for (int j = 0; j < n_tiles; ++j) {
    const int st = j % kStages;
    [[maybe_unused]] Fp8TileRegs next;  // FP8: tile j + 1, stored once tile j's P V is issued
    if constexpr (kFp8<Kv>) {
      if (j + 1 < n_tiles) FetchFp8Tile(kv, sh, (j + 1) % kStages, next);
    } else {
      if (j + 1 < n_tiles) LoadKvTile(kv, sh, (j + 1) % kStages);
      CopyAsyncCommit();   // possibly empty: the wait counts groups
      CopyAsyncWait<1>();  // this thread's copies of tile j have landed
    }
    FenceProxyAsync();  // ... and are visible to wgmma (as are Q's and the FP8 tiles' stores)
    __syncthreads();    // ... everyone's
    // Offsets of tile j + 2 (it reuses stage st): loaded now, stored after the math.
    const bool fetch = tid < kBk && j + kStages < n_tiles;
    const int64_t next_off = fetch ? row_offset(j + kStages, tid) : -1;

    const int kv0 = j * kBk;
    const bool math = wg_rows && kv0 <= wg_last_pos;  // else no row sees a key of the tile
    if (math) {
      // S = Q K^T over 8 steps of 16 dims: Q's and K's halves are K-major (the leading offset
      // is unused under the swizzle; 8-row groups 1024 bytes apart), a step 32 bytes in a half.
      const uint32_t k_addr = SmemAddr(&sh.k[st][0][0]);
      float s[64];
      WgmmaFence();
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {
        const uint32_t step = (kk % 4) * 32;
        WgmmaSs(s, Descriptor(q_addr + (kk / 4) * kQHalf + step, 16, 1024),
                Descriptor(k_addr + (kk / 4) * kKvHalf + step, 16, 1024), kk > 0 ? 1 : 0);
      }
      WgmmaCommit();
      WgmmaWaitAll();
      PinRegisters(s);

      // s[4i + e]: row g (e 0, 1) or g + 8 (e 2, 3) of the warp's 16, key kv0 + 8i + 2 t4 + e % 2.
      if (kv0 + kBk - 1 > wg_first_pos) {  // the tile crosses the diagonal of some row
#pragma unroll
        for (int i = 0; i < kBk / 8; ++i) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            if (kv0 + i * 8 + 2 * t4 + (e & 1) > qpos + (e >> 1) * 8) s[4 * i + e] = -INFINITY;
          }
        }
      }
      // Online softmax of rows g (r 0) and g + 8 (r 1); each lane keeps its part of the row sum.
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int i = 0; i < kBk / 8; ++i)
          mx = fmaxf(mx, fmaxf(s[4 * i + 2 * r], s[4 * i + 2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_run[r], mx);
        // Every row sees position 0 in tile 0; the guard keeps exp2(-inf - -inf) out all the same.
        const float base = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = exp2f(m_run[r] - base);  // first tile: exp2(-inf) = 0
        m_run[r] = m_new;
        float sum = 0.0f;
#pragma unroll
        for (int i = 0; i < kBk / 8; ++i) {
          s[4 * i + 2 * r] = exp2f(s[4 * i + 2 * r] - base);
          s[4 * i + 2 * r + 1] = exp2f(s[4 * i + 2 * r + 1] - base);
          sum += s[4 * i + 2 * r] + s[4 * i + 2 * r + 1];
        }
        l_run[r] = l_run[r] * corr + sum;
#pragma unroll
        for (int i = 0; i < kHeadDim / 8; ++i) {
          o[4 * i + 2 * r] *= corr;
          o[4 * i + 2 * r + 1] *= corr;
        }
      }
      // O += P V over 8 steps of 16 keys: P of keys 16kk.. is the A fragment {S block 2kk rows g,
      // g + 8; block 2kk + 1 rows g, g + 8}; V's halves are read transposed (MN-major: the
      // leading offset is the distance between the two 64-column halves, the stride offset
      // between groups of 8 keys), a step 16 rows.
      const uint32_t v_addr = SmemAddr(&sh.v[st][0][0]);
      uint32_t pa[kBk / 16][4];
#pragma unroll
      for (int kk = 0; kk < kBk / 16; ++kk) {
        pa[kk][0] = PackBf16(s[8 * kk + 0], s[8 * kk + 1]);
        pa[kk][1] = PackBf16(s[8 * kk + 2], s[8 * kk + 3]);
        pa[kk][2] = PackBf16(s[8 * kk + 4], s[8 * kk + 5]);
        pa[kk][3] = PackBf16(s[8 * kk + 6], s[8 * kk + 7]);
      }
      PinRegisters(o);
      WgmmaFence();
#pragma unroll
      for (int kk = 0; kk < kBk / 16; ++kk) {
        WgmmaRs(o, pa[kk], Descriptor(v_addr + kk * 16 * kRowBytes, kKvHalf, 1024));
      }
      WgmmaCommit();
    }
    // FP8: tile j + 1 widened into the other stage while the tensor cores multiply (its last
    // readers, tile j - 1's instructions, finished before the barrier that ended that tile).
    if constexpr (kFp8<Kv>) {
      if (j + 1 < n_tiles) StoreFp8Tile(next, sh, (j + 1) % kStages);
    }
    if (math) {
      WgmmaWaitAll();
      PinRegisters(o);
    }
    if (fetch) sh.row_off[st][tid] = next_off;
    __syncthreads();  // stage st and row_off[st] are free for tile j + 2
  }

  if (!wg_rows) return;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float l = l_run[r];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = 1.0f / l;  // l >= 1: the row's max contributes exp2(0)
    const int row = wg_row0 + warp * 16 + g + 8 * r;
    if (row < rows) {
      __nv_bfloat16* dst = a.out + ((row0 + row) * a.n_heads + head) * kHeadDim + 2 * t4;
#pragma unroll
      for (int i = 0; i < kHeadDim / 8; ++i) {
        *reinterpret_cast<__nv_bfloat162*>(dst + i * 8) =
            __floats2bfloat162_rn(o[4 * i + 2 * r] * inv, o[4 * i + 2 * r + 1] * inv);
      }
    }
  }
#else
  __trap();  // unreachable: WarpgroupKernelUsable is false without sm_90a code
#endif
}

// Writes 1 when the code the device loaded for this file is sm_90a's.
__global__ void ProbeKernel(int* has_wgmma) { *has_wgmma = RAG_WGMMA_CODE; }

template <typename Kv>
Status Launch(const PrefillArgs& args, const Kv& kv, int64_t n_seqs, int64_t max_q_len,
              cudaStream_t stream) {
  static std::atomic<uint64_t> smem_allowed{0};  // bit d: done on device d (per instantiation)
  RAG_RETURN_IF_ERROR(AllowDynamicSmem(WarpgroupPrefillKernel<Kv>, kSmemBytes, &smem_allowed));
  PrefillArgs a = args;
  a.q_scale = kLog2e / std::sqrt(static_cast<float>(kHeadDim));
  a.n_q_tiles = static_cast<int>((max_q_len + kBq - 1) / kBq);
  const dim3 grid(static_cast<unsigned>(a.n_heads), static_cast<unsigned>(a.n_q_tiles),
                  static_cast<unsigned>(n_seqs));
  WarpgroupPrefillKernel<Kv><<<grid, kThreads, kSmemBytes, stream>>>(a, kv);
  RAG_CUDA_RETURN_IF_LAUNCH_FAILED();
  return Status::Ok();
}

}  // namespace

bool WarpgroupKernelUsable() {
  static std::atomic<uint64_t> asked{0}, usable{0};  // bit d: device d asked / usable
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device >= 64) {
    (void)cudaGetLastError();
    return false;
  }
  const uint64_t bit = uint64_t{1} << device;
  if ((asked.load(std::memory_order_acquire) & bit) != 0) {
    return (usable.load(std::memory_order_acquire) & bit) != 0;
  }
  bool ok = false;
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) == cudaSuccess && prop.major == 9 && prop.minor == 0) {
    int* d_flag = nullptr;
    int flag = 0;
    ok = cudaMalloc(&d_flag, sizeof(int)) == cudaSuccess;
    if (ok) {
      ProbeKernel<<<1, 1>>>(d_flag);
      ok = cudaGetLastError() == cudaSuccess &&
           cudaMemcpy(&flag, d_flag, sizeof(int), cudaMemcpyDeviceToHost) == cudaSuccess &&
           flag == 1;
      (void)cudaFree(d_flag);
    }
  }
  (void)cudaGetLastError();  // a failed probe leaves no error behind for the next launch check
  if (ok) usable.fetch_or(bit, std::memory_order_release);
  asked.fetch_or(bit, std::memory_order_release);
  return ok;
}

Status LaunchWarpgroupPrefill(const PrefillArgs& args, const Bf16Kv& kv, int64_t n_seqs,
                              int64_t max_q_len, cudaStream_t stream) {
  return Launch(args, kv, n_seqs, max_q_len, stream);
}
Status LaunchWarpgroupPrefill(const PrefillArgs& args, const Fp8KvCache& kv, int64_t n_seqs,
                              int64_t max_q_len, cudaStream_t stream) {
  return Launch(args, kv, n_seqs, max_q_len, stream);
}

}  // namespace rag::prefill
