// Next-token choice on the GPU: argmax, and temperature / top-k / top-p sampling driven by one
// caller-drawn uniform per row (kernels.h states the semantics; engine/sampler.cc is the CPU
// reference).
//
// Layout of the work: one thread-block cluster per row (Hopper; cluster size C <= 8, the
// portable limit, fewer for small vocabularies; C = 1 on older cards). CTA r of the cluster owns
// the slice [r * L, (r + 1) * L) of the vocabulary and keeps its scaled logits
// s = logits / temperature in shared memory when they fit (else each pass re-reads the logits,
// usually L2 hits: the lm_head has just written them). The CTAs of a cluster exchange partial
// results through distributed shared memory between cluster barriers.
//
// Algorithm for one row, no sort of the vocabulary:
//  1. Max pass: s, and the cluster-wide maximum of (key(s), lowest index) packed in 64 bits.
//     Greedy rows, top_k == 1 and rows whose maximum is not finite stop here with the argmax.
//  2. Top-k: radix select on the order-preserving 32-bit key of s, 8 bits a round, most
//     significant first. Each round histograms (count, mass) over the 256 values of the next
//     digit among the elements whose higher digits equal those chosen so far; the cluster's
//     histograms are summed and one warp walks the bins from the top to the bin where the
//     running count passes k - 1. After 4 rounds: the k-th token's key, how many tokens lie
//     above it, and how many of its ties are kept (the lowest indices).
//  3. Top-p: the same walk on mass, to the shortest prefix of the order whose mass reaches
//     ceil(top_p * mass of the top-k set). Rounds whose prefix equals the top-k walk's reuse its
//     histograms (round 0 always does; with top-k off, round 0 reuses the build that gave the
//     total mass).
//  4. Pick: every thread owns a contiguous index range of its CTA's slice; block and cluster
//     exclusive scans, first of the tie counts (so each thread knows which of its ties are kept),
//     then of the kept mass, give each thread its start in the cumulative mass in index order;
//     the thread whose range holds target = floor(uniform * kept mass) is searched by its warp.
//
// Masses are exp(s - max) in fp32 turned into integers in units of 2^-40 and summed in 64-bit
// integers: every sum is exact whatever the order of additions, so the chosen ids are a pure
// function of the inputs (no run-to-run variation), and vocab <= kSampleMaxVocab keeps the sums
// below 2^63. Histogram updates avoid atomics (a 64-bit shared-memory atomic add is a
// compare-and-swap loop on Hopper, and logits crowd into a few bins): the lanes of a warp with
// the same digit are grouped by __match_any_sync and summed by redux, and the group's leader
// adds into its warp's private histogram.
#include <cooperative_groups.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "kernels/cuda_check.h"
#include "kernels/kernels.h"

namespace rag {
namespace {

// Sum of v over the lanes of `peers` (every lane of the warp calls it): one instruction from
// sm_80 on, shuffles before (the kernels still compile for older cards).
__device__ __forceinline__ uint32_t PeerSum(unsigned peers, uint32_t v) {
#if __CUDA_ARCH__ >= 800
  return __reduce_add_sync(peers, v);
#else
  uint32_t sum = 0;
  for (int l = 0; l < 32; ++l) {
    const uint32_t other = __shfl_sync(0xffffffffu, v, l);
    if ((peers >> l) & 1u) sum += other;
  }
  return sum;
#endif
}

namespace cg = cooperative_groups;
using u64 = unsigned long long;

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kBins = 256;                // 8-bit digits
constexpr int kRounds = 4;                // digits of a 32-bit key
constexpr int kMaxCluster = 8;            // the portable cluster size
constexpr int64_t kMinSlice = 4096;       // a CTA gets at least this many elements (C shrinks)
constexpr int kStaticSmemReserve = 2048;  // the kernels' static shared memory (< 1 KB) and slack
constexpr int kMaxDevices = 64;
constexpr float kMassScale = 1099511627776.0f;  // 2^40: a token as likely as the top one

// --- pure arithmetic, shared by host and device (no state) ----------------------------------

__host__ __device__ inline uint32_t FloatBits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
#endif
}

__host__ __device__ inline float BitsFloat(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
#endif
}

// Order-preserving key: a < b (as floats, -0 already folded into +0) iff KeyOf(a) < KeyOf(b).
// NaN with the sign bit clear ranks above +inf (as torch.argmax treats NaN as the maximum).
__host__ __device__ inline uint32_t KeyOf(float s) {
  const uint32_t u = FloatBits(s);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__host__ __device__ inline float FloatOfKey(uint32_t key) {
  return BitsFloat((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// (key, index) packed so that the maximum is the largest key at its lowest index.
__host__ __device__ inline u64 Pack(uint32_t key, int64_t index) {
  return (static_cast<u64>(key) << 32) | (0xffffffffu - static_cast<uint32_t>(index));
}
__host__ __device__ inline int32_t IndexOf(u64 packed) {
  return static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(packed));
}

// The top-p goal in fixed point: the kept prefix is the shortest whose mass reaches top_p * z
// (z: mass of the top-k set), i.e. whose integer mass is >= ceil(top_p * z); at least 1, so
// top_p <= 0 keeps the first token alone.
__host__ __device__ inline u64 TopPTarget(float top_p, u64 z) {
  const double want = ceil(static_cast<double>(top_p) * static_cast<double>(z));
  if (!(want >= 1.0)) return 1;
  return want < static_cast<double>(z) ? static_cast<u64>(want) : z;
}

// How many tokens of mass m, after `above` mass, reach `target`: ceil((target - above) / m).
__host__ __device__ inline u64 TiesToReach(u64 target, u64 above, u64 m) {
  if (m == 0 || target <= above) return 1;
  return (target - above + m - 1) / m;
}

// floor(uniform * total) in [0, total): the draw's position in the cumulative mass. The uniform
// is clamped to [0, 1) (NaN counts as 0).
__host__ __device__ inline u64 DrawTarget(float uniform, u64 total) {
  const double u = uniform > 0.0f ? static_cast<double>(uniform) : 0.0;
  const u64 t = u < 1.0 ? static_cast<u64>(u * static_cast<double>(total)) : total;
  return t < total ? t : total - 1;
}

// --- device helpers ----------------------------------------------------------------------------

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define RAG_SAMPLING_CLUSTERS 1
#endif

__device__ __forceinline__ unsigned ClusterRank() {
#ifdef RAG_SAMPLING_CLUSTERS
  return cg::this_cluster().block_rank();
#else
  return 0;
#endif
}

__device__ __forceinline__ unsigned ClusterSize() {
#ifdef RAG_SAMPLING_CLUSTERS
  return cg::this_cluster().num_blocks();
#else
  return 1;
#endif
}

// A barrier of every thread of the cluster; orders shared and global memory at cluster scope.
__device__ __forceinline__ void ClusterSync() {
#ifdef RAG_SAMPLING_CLUSTERS
  cg::this_cluster().sync();
#else
  __syncthreads();
#endif
}

// The same shared variable in the cluster's CTA `rank`.
template <typename T>
__device__ __forceinline__ const T* Remote(const T* p, unsigned rank) {
#ifdef RAG_SAMPLING_CLUSTERS
  return cg::this_cluster().map_shared_rank(const_cast<T*>(p), rank);
#else
  return p;
#endif
}

__device__ __forceinline__ u64 WarpMax(u64 v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const u64 other = __shfl_xor_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  return v;
}

__device__ __forceinline__ u64 WarpInclusiveSum(u64 v) {
  const int lane = threadIdx.x % 32;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 other = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += other;
  }
  return v;
}

// Exclusive prefix sum in thread order over the block; *total gets the block's sum. Every thread
// of the block must call it.
__device__ u64 BlockExclusiveSum(u64 v, u64* total) {
  __shared__ u64 s_warp[kWarps];
  __shared__ u64 s_total;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const u64 inclusive = WarpInclusiveSum(v);
  if (lane == 31) s_warp[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const u64 w = lane < kWarps ? s_warp[lane] : 0;
    const u64 wi = WarpInclusiveSum(w);
    if (lane < kWarps) s_warp[lane] = wi - w;
    if (lane == 31) s_total = wi;
  }
  __syncthreads();
  const u64 result = s_warp[warp] + inclusive - v;
  *total = s_total;
  __syncthreads();  // s_warp and s_total are reused by the next call
  return result;
}

// s = logits / temperature in fp32 (IEEE division, as the CPU sampler), or the logit itself for
// temperature <= 0; -0 becomes +0 so that equal values have equal keys.
__device__ __forceinline__ float Scaled(float x, float temperature) {
  const float s = temperature > 0.0f ? __fdiv_rn(x, temperature) : x;
  return s == 0.0f ? 0.0f : s;
}

// exp(s - max) in units of 2^-40; 0 for NaN. s <= max, so the value is at most 2^40.
__device__ __forceinline__ u64 Mass(float s, float max_value) {
  const float e = expf(s - max_value);
  return e > 0.0f ? __float2ull_rn(e * kMassScale) : 0ull;
}

// One CTA's view of its row.
struct Row {
  const float* x;  // the slice's logits (global memory)
  float* cache;    // the slice's s in shared memory, or null: recompute from x
  float temperature;
  float max_value;  // the row's maximum s (after the max pass)
  int64_t begin;    // vocabulary index of the slice's first element
  int len;          // elements in the slice (0 for a trailing CTA of a tiny vocabulary)
  int per_thread;   // E: odd (conflict-free strided shared reads), E * kThreads >= len
};

__device__ __forceinline__ float Load(const Row& row, int i) {
  return row.cache != nullptr ? row.cache[i] : Scaled(row.x[i], row.temperature);
}

__device__ Row MakeRow(const float* logits, int64_t vocab, int64_t r, int slice, int per_thread,
                       float temperature, float* cache) {
  Row row;
  row.begin = static_cast<int64_t>(ClusterRank()) * slice;
  const int64_t left = vocab - row.begin;
  row.len = static_cast<int>(left <= 0 ? 0 : left < slice ? left : slice);
  row.x = logits + r * vocab + row.begin;
  row.cache = cache;
  row.temperature = temperature;
  row.max_value = 0.0f;
  row.per_thread = per_thread;
  return row;
}

// The cluster-wide max of Pack(KeyOf(s), index) over the row; fills the cache when asked. Reads
// the other CTAs' shared memory: the kernel must end with a ClusterSync.
__device__ u64 RowMax(const Row& row, bool fill_cache) {
  __shared__ u64 s_warp[kWarps];
  __shared__ u64 s_cta, s_row;
  u64 best = 0;
#pragma unroll 4
  for (int j = 0; j < row.per_thread; ++j) {
    const int i = j * kThreads + threadIdx.x;
    if (i < row.len) {
      const float s = Scaled(row.x[i], row.temperature);
      if (fill_cache) row.cache[i] = s;
      const u64 p = Pack(KeyOf(s), row.begin + i);
      best = p > best ? p : best;
    }
  }
  best = WarpMax(best);
  if (threadIdx.x % 32 == 0) s_warp[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    u64 m = 0;
    for (int w = 0; w < kWarps; ++w) m = s_warp[w] > m ? s_warp[w] : m;
    s_cta = m;
  }
  ClusterSync();
  if (threadIdx.x == 0) {
    u64 m = 0;
    for (unsigned c = 0; c < ClusterSize(); ++c) {
      const u64 v = *Remote(&s_cta, c);
      m = v > m ? v : m;
    }
    s_row = m;
  }
  __syncthreads();
  return s_row;
}

// Dynamic shared memory of SampleKernel; the slice cache (floats) follows it.
struct Hist {
  u64 warp_mass[kWarps][kBins];  // per-warp partial histograms
  u64 cta_mass[2][kBins];        // the CTA's histogram, read by the cluster (2 buffers)
  u64 mass[kRounds][kBins];      // the cluster's histogram of each round
  uint32_t warp_count[kWarps][kBins];
  uint32_t cta_count[2][kBins];
  uint32_t count[kRounds][kBins];
};

// Fills h.count[round] and h.mass[round] (mass only when with_mass) with the cluster-wide
// histogram of digit `round` of the keys whose higher digits equal prefix's. Consecutive calls
// must alternate `buffer`: another CTA may still be reading this CTA's previous histogram.
__device__ void BuildHistogram(const Row& row, Hist& h, int round, uint32_t prefix, bool with_mass,
                               int buffer) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int shift = 24 - 8 * round;
  const uint32_t high = round == 0 ? 0u : ~0u << (shift + 8);  // the digits already chosen
  uint32_t* wc = h.warp_count[warp];
  u64* wm = h.warp_mass[warp];
  for (int b = lane; b < kBins; b += 32) {
    wc[b] = 0;
    wm[b] = 0;
  }
  __syncwarp();
  // Trip count uniform across the warp: the warp-collective calls below need every lane.
  for (int j = 0; j < row.per_thread; ++j) {
    const int i = j * kThreads + threadIdx.x;
    const bool valid = i < row.len;
    const float s = valid ? Load(row, i) : 0.0f;
    const uint32_t key = KeyOf(s);
    const bool match = valid && ((key ^ prefix) & high) == 0;
    if (!__any_sync(0xffffffffu, match)) continue;
    const uint32_t digit = match ? (key >> shift) & (kBins - 1) : kBins;
    const unsigned peers = __match_any_sync(0xffffffffu, digit);
    const bool leader = match && lane == __ffs(peers) - 1;
    if (with_mass) {
      // A mass is < 2^41: 17 high bits and 24 low bits, each summed over <= 32 lanes in 32 bits.
      const u64 m = match ? Mass(s, row.max_value) : 0ull;
      const uint32_t lo = PeerSum(peers, static_cast<uint32_t>(m & 0xffffffu));
      const uint32_t hi = PeerSum(peers, static_cast<uint32_t>(m >> 24));
      if (leader) wm[digit] += (static_cast<u64>(hi) << 24) + lo;
    }
    if (leader) wc[digit] += __popc(peers);
    __syncwarp();  // the next leader of this digit may be another lane
  }
  __syncthreads();
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    uint32_t c = 0;
    u64 m = 0;
    for (int w = 0; w < kWarps; ++w) {
      c += h.warp_count[w][b];
      m += h.warp_mass[w][b];
    }
    h.cta_count[buffer][b] = c;
    h.cta_mass[buffer][b] = m;
  }
  ClusterSync();
  for (int b = threadIdx.x; b < kBins; b += kThreads) {
    uint32_t c = 0;
    u64 m = 0;
    for (unsigned r = 0; r < ClusterSize(); ++r) {
      c += *Remote(&h.cta_count[buffer][b], r);
      m += *Remote(&h.cta_mass[buffer][b], r);
    }
    h.count[round][b] = c;
    h.mass[round][b] = m;
  }
  __syncthreads();
}

// Sum of h.mass[round] (every thread gets it; no synchronisation).
__device__ u64 HistTotalMass(const Hist& h, int round) {
  u64 m = 0;
  for (int b = threadIdx.x % 32; b < kBins; b += 32) m += h.mass[round][b];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) m += __shfl_xor_sync(0xffffffffu, m, o);
  return m;
}

// A radix selection in progress.
struct Selection {
  uint32_t prefix;       // the digits chosen so far, in place; the others zero
  uint32_t above_count;  // elements whose key exceeds every key with this prefix
  uint32_t bin_count;    // elements in the last chosen bin (after round 3: the key's ties)
  u64 above_mass;        // their mass
};

// Warp 0 only. Chooses digit `round` of *sel from h.count/mass[round], walking the bins from the
// top: the first bin where the running count exceeds `goal` (by_mass false: goal is a 0-based
// rank) or where the running mass reaches `goal` (by_mass true). The running totals start at
// sel's above_count / above_mass. Lane l looks at bins 255 - 8l down to 248 - 8l.
__device__ void Walk(const Hist& h, int round, bool by_mass, u64 goal, Selection* sel) {
  const int lane = threadIdx.x % 32;
  uint32_t c[8];
  u64 m[8];
  uint32_t lane_c = 0;
  u64 lane_m = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int b = kBins - 1 - 8 * lane - j;
    c[j] = h.count[round][b];
    m[j] = h.mass[round][b];
    lane_c += c[j];
    lane_m += m[j];
  }
  u64 run_c = sel->above_count + WarpInclusiveSum(lane_c) - lane_c;
  u64 run_m = sel->above_mass + WarpInclusiveSum(lane_m) - lane_m;
  int hit = -1;
  u64 hit_c = 0, hit_m = 0;
  uint32_t hit_bin_count = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const bool reached = by_mass ? run_m + m[j] >= goal : run_c + c[j] > goal;
    // The last bin is taken when nothing reached the goal (only if the sums were inconsistent).
    if (hit < 0 && (reached || (lane == 31 && j == 7))) {
      hit = j;
      hit_c = run_c;
      hit_m = run_m;
      hit_bin_count = c[j];
    }
    run_c += c[j];
    run_m += m[j];
  }
  const unsigned hits = __ballot_sync(0xffffffffu, hit >= 0);
  const Selection old = *sel;
  __syncwarp();
  if (lane == __ffs(hits) - 1) {
    Selection next;
    next.prefix =
        old.prefix | (static_cast<uint32_t>(kBins - 1 - 8 * lane - hit) << (24 - 8 * round));
    next.above_count = static_cast<uint32_t>(hit_c);
    next.bin_count = hit_bin_count;
    next.above_mass = hit_m;
    *sel = next;
  }
}

// Step 4: the draw among the kept tokens (key > kappa, or key == kappa and among the first
// keep_ties of those by index), in ascending index order. m_kappa: the mass of one tie. Writes
// *id from the one warp of the cluster that holds the target. Ends with warps returning early:
// the caller synchronises.
__device__ void Pick(const Row& row, uint32_t kappa, u64 keep_ties, u64 m_kappa, float uniform,
                     int32_t* id) {
  __shared__ u64 s_cta_ties, s_cta_mass;  // read by the cluster
  __shared__ u64 s_tie_offset, s_mass_offset, s_target;
  const int lane = threadIdx.x % 32;
  const int first = threadIdx.x * row.per_thread;  // this thread's range: [first, first + E)
  uint32_t ties = 0;
  u64 above = 0;
  for (int j = 0; j < row.per_thread; ++j) {
    const int i = first + j;
    if (i >= row.len) break;
    const float s = Load(row, i);
    const uint32_t key = KeyOf(s);
    if (key > kappa) {
      above += Mass(s, row.max_value);
    } else if (key == kappa) {
      ++ties;
    }
  }
  u64 cta_ties;
  const u64 ties_before_in_cta = BlockExclusiveSum(ties, &cta_ties);
  if (threadIdx.x == 0) s_cta_ties = cta_ties;
  ClusterSync();
  if (threadIdx.x == 0) {
    u64 offset = 0;
    for (unsigned c = 0; c < ClusterRank(); ++c) offset += *Remote(&s_cta_ties, c);
    s_tie_offset = offset;
  }
  __syncthreads();
  const u64 ties_before = s_tie_offset + ties_before_in_cta;
  const u64 kept_ties =
      keep_ties > ties_before ? min(keep_ties - ties_before, static_cast<u64>(ties)) : 0ull;
  const u64 kept = above + kept_ties * m_kappa;
  u64 cta_mass;
  const u64 mass_before_in_cta = BlockExclusiveSum(kept, &cta_mass);
  if (threadIdx.x == 0) s_cta_mass = cta_mass;
  ClusterSync();
  if (threadIdx.x == 0) {
    u64 offset = 0, total = 0;
    for (unsigned c = 0; c < ClusterSize(); ++c) {
      const u64 v = *Remote(&s_cta_mass, c);
      if (c < ClusterRank()) offset += v;
      total += v;
    }
    s_mass_offset = offset;
    s_target = DrawTarget(uniform, total);
  }
  __syncthreads();
  const u64 start = s_mass_offset + mass_before_in_cta, target = s_target;
  const unsigned owners = __ballot_sync(0xffffffffu, target >= start && target - start < kept);
  if (owners == 0) return;
  // The owner's range, 32 elements at a time, one per lane.
  const int src = __ffs(owners) - 1;
  const int owner_first = __shfl_sync(0xffffffffu, first, src);
  const u64 owner_kept_ties = __shfl_sync(0xffffffffu, kept_ties, src);
  u64 running = __shfl_sync(0xffffffffu, start, src);
  u64 ties_seen = 0;
  for (int j0 = 0; j0 < row.per_thread; j0 += 32) {
    const int j = j0 + lane, i = owner_first + j;
    const bool valid = j < row.per_thread && i < row.len;
    const float s = valid ? Load(row, i) : 0.0f;
    const uint32_t key = KeyOf(s);
    const bool tie = valid && key == kappa;
    const unsigned tie_mask = __ballot_sync(0xffffffffu, tie);
    const u64 tie_rank = ties_seen + __popc(tie_mask & ((1u << lane) - 1u));
    const bool keep = valid && (key > kappa || (tie && tie_rank < owner_kept_ties));
    const u64 cum = running + WarpInclusiveSum(keep ? Mass(s, row.max_value) : 0ull);
    const unsigned hits = __ballot_sync(0xffffffffu, keep && target < cum);
    if (hits != 0) {
      if (lane == __ffs(hits) - 1) *id = static_cast<int32_t>(row.begin + i);
      return;
    }
    running = __shfl_sync(0xffffffffu, cum, 31);
    ties_seen += __popc(tie_mask);
  }
}

__global__ void __launch_bounds__(kThreads)
    ArgmaxKernel(const float* __restrict__ logits, int64_t vocab, int slice, int per_thread,
                 int32_t* __restrict__ ids) {
  const int64_t r = blockIdx.y;
  const Row row = MakeRow(logits, vocab, r, slice, per_thread, 0.0f, nullptr);
  const u64 best = RowMax(row, false);
  if (ClusterRank() == 0 && threadIdx.x == 0) ids[r] = IndexOf(best);
  ClusterSync();  // the CTAs read each other's shared memory until here
}

struct SampleArgs {
  const float* logits;  // (rows, vocab)
  int64_t vocab;
  const float* temperature;
  const int32_t* top_k;
  const float* top_p;
  const float* uniforms;
  int32_t* ids;
  int slice;       // L: elements per CTA
  int per_thread;  // E
  bool cached;     // the slice fits in shared memory after Hist
};

// Every branch below depends only on the row's parameters and cluster-wide values, so all CTAs
// of a cluster take the same branches and meet at the same cluster barriers.
__global__ void __launch_bounds__(kThreads) SampleKernel(SampleArgs a) {
  extern __shared__ u64 smem[];
  Hist& h = *reinterpret_cast<Hist*>(smem);
  __shared__ Selection s_sel;
  const int64_t r = blockIdx.y;
  const float temperature = a.temperature[r];
  const bool greedy = !(temperature > 0.0f);
  float* cache = a.cached && !greedy ? reinterpret_cast<float*>(&h + 1) : nullptr;
  Row row = MakeRow(a.logits, a.vocab, r, a.slice, a.per_thread, temperature, cache);
  const u64 best = RowMax(row, cache != nullptr);
  // The answer unless a draw replaces it (a later write, ordered by the cluster barriers).
  if (ClusterRank() == 0 && threadIdx.x == 0) a.ids[r] = IndexOf(best);
  row.max_value = FloatOfKey(static_cast<uint32_t>(best >> 32));
  const int32_t top_k = a.top_k[r];
  const uint32_t vocab = static_cast<uint32_t>(a.vocab);
  const uint32_t k = top_k > 0 && static_cast<uint32_t>(top_k) < vocab ? top_k : vocab;
  const float top_p = a.top_p[r];
  const bool use_k = k < vocab, use_p = top_p < 1.0f;
  if (greedy || k == 1 || !isfinite(row.max_value)) {
    ClusterSync();
    return;
  }

  int builds = 0;  // histogram buffers alternate between consecutive builds
  uint32_t k_prefix[kRounds] = {0, 0, 0, 0};  // the top-k walk's prefix before each round
  Selection ks = {0, 0, 0, 0};
  if (use_k) {
    if (threadIdx.x == 0) s_sel = Selection{0, 0, 0, 0};
    __syncthreads();
    for (int round = 0; round < kRounds; ++round) {
      k_prefix[round] = s_sel.prefix;
      BuildHistogram(row, h, round, k_prefix[round], use_p, builds++ & 1);
      if (threadIdx.x < 32) Walk(h, round, false, k - 1, &s_sel);
      __syncthreads();
    }
    ks = s_sel;
    __syncthreads();
  }

  // Kept: key > kappa, or key == kappa and among the first keep_ties such tokens by index.
  uint32_t kappa = 0;
  u64 keep_ties = ~0ull;  // no filter: everything
  if (use_k) {
    kappa = ks.prefix;
    keep_ties = k - ks.above_count;
  }
  if (use_p) {
    u64 z;  // mass of the top-k set
    if (use_k) {
      z = ks.above_mass + keep_ties * Mass(FloatOfKey(kappa), row.max_value);
    } else {
      BuildHistogram(row, h, 0, 0, true, builds++ & 1);
      z = HistTotalMass(h, 0);
    }
    const u64 target = TopPTarget(top_p, z);
    if (threadIdx.x == 0) s_sel = Selection{0, 0, 0, 0};
    __syncthreads();
    for (int round = 0; round < kRounds; ++round) {
      const uint32_t prefix = s_sel.prefix;
      const bool reuse = use_k ? prefix == k_prefix[round] : round == 0;
      __syncthreads();  // every thread has read s_sel before warp 0 rewrites it
      if (!reuse) BuildHistogram(row, h, round, prefix, true, builds++ & 1);
      if (threadIdx.x < 32) Walk(h, round, true, target, &s_sel);
      __syncthreads();
    }
    const Selection ps = s_sel;
    u64 ties = TiesToReach(target, ps.above_mass, Mass(FloatOfKey(ps.prefix), row.max_value));
    ties = min(max(ties, 1ull), static_cast<u64>(max(ps.bin_count, 1u)));
    // Top-p's cut lies within top-k's (target <= z); ps.prefix < kappa would be inconsistent.
    if (!use_k || ps.prefix > kappa) {
      kappa = ps.prefix;
      keep_ties = ties;
    } else if (ps.prefix == kappa) {
      keep_ties = min(keep_ties, ties);
    }
  }
  Pick(row, kappa, keep_ties, Mass(FloatOfKey(kappa), row.max_value), a.uniforms[r], a.ids + r);
  ClusterSync();  // the CTAs read each other's shared memory until here
}

// --- host side ---------------------------------------------------------------------------------

Status CheckShape(const char* what, int64_t rows, int64_t vocab) {
  if (rows < 0 || rows > 65535 || vocab <= 0 || vocab > kSampleMaxVocab) {
    return InvalidArgument(std::string(what) + ": bad shape rows=" + std::to_string(rows) +
                           " vocab=" + std::to_string(vocab) +
                           " (rows must be 0..65535, vocab 1.." + std::to_string(kSampleMaxVocab) +
                           ")");
  }
  return Status::Ok();
}

// What the launchers need to know about the current device, queried once per device.
struct DeviceFacts {
  bool clusters = false;     // compute capability >= 9.0
  int64_t dynamic_smem = 0;  // SampleKernel's dynamic shared-memory limit (set on the kernel)
};

Status GetDeviceFacts(DeviceFacts* facts) {
  // Per device: 0 unknown, else (dynamic_smem << 1) | clusters.
  static std::atomic<int64_t> cached[kMaxDevices];
  int device = 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  int64_t v = device < kMaxDevices ? cached[device].load(std::memory_order_relaxed) : 0;
  if (v == 0) {
    int major = 0, optin = 0;
    RAG_CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    RAG_CUDA_RETURN_IF_ERROR(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const int64_t dynamic = std::max<int64_t>(1, optin - kStaticSmemReserve);
    if (dynamic >= static_cast<int64_t>(sizeof(Hist))) {
      // Per function and device; once, not per launch (it costs microseconds).
      RAG_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(
          SampleKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(dynamic)));
    }
    v = (dynamic << 1) | (major >= 9 ? 1 : 0);
    if (device < kMaxDevices) cached[device].store(v, std::memory_order_relaxed);
  }
  facts->clusters = (v & 1) != 0;
  facts->dynamic_smem = v >> 1;
  return Status::Ok();
}

struct Plan {
  int cluster;     // C: CTAs per row
  int slice;       // L = ceil(vocab / C)
  int per_thread;  // E
};

Plan MakePlan(int64_t vocab, bool clusters) {
  Plan p;
  p.cluster = 1;
  while (clusters && p.cluster < kMaxCluster && p.cluster * kMinSlice < vocab) p.cluster *= 2;
  p.slice = static_cast<int>((vocab + p.cluster - 1) / p.cluster);
  p.per_thread = static_cast<int>((p.slice + kThreads - 1) / kThreads) | 1;
  return p;
}

// Launches kernel on a (C, rows) grid, one cluster of C CTAs per row where clusters exist.
template <typename... Params, typename... Args>
Status LaunchRows(void (*kernel)(Params...), const Plan& plan, int64_t rows, bool clusters,
                  size_t smem, cudaStream_t stream, Args... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(plan.cluster), static_cast<unsigned>(rows), 1);
  config.blockDim = dim3(kThreads, 1, 1);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = static_cast<unsigned>(plan.cluster);
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = clusters ? 1 : 0;
  RAG_CUDA_RETURN_IF_ERROR(cudaLaunchKernelEx(&config, kernel, args...));
  return Status::Ok();
}

}  // namespace

Status ArgmaxRows(const float* logits, int64_t rows, int64_t vocab, int32_t* ids,
                  cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckShape("ArgmaxRows", rows, vocab));
  if (rows == 0) return Status::Ok();
  DeviceFacts facts;
  RAG_RETURN_IF_ERROR(GetDeviceFacts(&facts));
  const Plan plan = MakePlan(vocab, facts.clusters);
  return LaunchRows(ArgmaxKernel, plan, rows, facts.clusters, 0, stream, logits, vocab, plan.slice,
                    plan.per_thread, ids);
}

int64_t SampleRowsWorkspace(int64_t rows, int64_t vocab) { return 0; }

Status SampleRows(const float* logits, int64_t rows, int64_t vocab, const float* temperature,
                  const int32_t* top_k, const float* top_p, const float* uniforms, float* workspace,
                  int32_t* ids, cudaStream_t stream) {
  RAG_RETURN_IF_ERROR(CheckShape("SampleRows", rows, vocab));
  if (rows == 0) return Status::Ok();
  DeviceFacts facts;
  RAG_RETURN_IF_ERROR(GetDeviceFacts(&facts));
  if (facts.dynamic_smem < static_cast<int64_t>(sizeof(Hist))) {
    return Unsupported("SampleRows: needs " + std::to_string(sizeof(Hist)) +
                       " bytes of shared memory per block; the device allows " +
                       std::to_string(facts.dynamic_smem));
  }
  const Plan plan = MakePlan(vocab, facts.clusters);
  const int64_t cache_bytes = static_cast<int64_t>(plan.slice) * sizeof(float);
  const bool cached = static_cast<int64_t>(sizeof(Hist)) + cache_bytes <= facts.dynamic_smem;
  const size_t smem = sizeof(Hist) + (cached ? cache_bytes : 0);
  SampleArgs args;
  args.logits = logits;
  args.vocab = vocab;
  args.temperature = temperature;
  args.top_k = top_k;
  args.top_p = top_p;
  args.uniforms = uniforms;
  args.ids = ids;
  args.slice = plan.slice;
  args.per_thread = plan.per_thread;
  args.cached = cached;
  return LaunchRows(SampleKernel, plan, rows, facts.clusters, smem, stream, args);
}

}  // namespace rag
