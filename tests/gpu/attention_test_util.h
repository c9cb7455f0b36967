// Helpers shared by the attention kernel tests (attention_kernels_test.cc over the bf16 KV
// cache, fp8_kv_decode_test.cc and fp8_kv_prefill_test.cc over the FP8 one): shapes, the CPU
// reference's thread pool, scattered block tables, the host model of an FP8 cache row, and the
// check of an attention output against the CPU reference.
#pragma once

#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_pool.h"
#include "engine/cpu/attention.h"
#include "tests/gpu/gpu_test_util.h"

namespace rag::testing_gpu {

inline constexpr uint16_t kBf16Poison = 0xffff;  // bf16 NaN, the byte pattern of cudaMemset(0xff)

// The CPU reference attention's threads, shared by every test of a binary.
inline ThreadPool* AttentionPool() {
  static ThreadPool pool;
  return &pool;
}

struct AttentionTestShape {
  int64_t n_heads, n_kv_heads, head_dim, block_size;
  AttentionShape cpu() const { return {n_heads, n_kv_heads, head_dim, block_size}; }
  std::string Name() const {
    return "heads " + std::to_string(n_heads) + "/" + std::to_string(n_kv_heads) + " head_dim " +
           std::to_string(head_dim) + " block_size " + std::to_string(block_size);
  }
};

// Block tables of sequences of lens[b] tokens over all their blocks and `spare` blocks more
// (which no table names), handed out in a shuffled order; each row padded with -1 to max_blocks
// (the longest table plus extra_per_seq, at least 1) in `flat`.
struct ScatteredTables {
  int64_t max_blocks = 1, total_blocks = 0;
  std::vector<std::vector<int32_t>> tables;
  std::vector<int32_t> flat;  // (lens.size(), max_blocks)
  int64_t Slot(size_t b, int64_t pos, int64_t block_size) const {
    return static_cast<int64_t>(tables[b][pos / block_size]) * block_size + pos % block_size;
  }
};
inline ScatteredTables MakeScatteredTables(const std::vector<int64_t>& lens, int64_t block_size,
                                           int64_t extra_per_seq, int64_t spare,
                                           std::mt19937& rng) {
  ScatteredTables t;
  t.total_blocks = spare;
  int64_t longest = 0;
  for (int64_t len : lens) {
    const int64_t nb = (len + block_size - 1) / block_size;
    longest = std::max(longest, nb);
    t.total_blocks += nb;
  }
  t.max_blocks = std::max<int64_t>(1, longest + extra_per_seq);
  std::vector<int32_t> ids(static_cast<size_t>(t.total_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  t.tables.resize(lens.size());
  t.flat.assign(lens.size() * static_cast<size_t>(t.max_blocks), -1);
  size_t next = 0;
  for (size_t b = 0; b < lens.size(); ++b) {
    for (int64_t i = 0; i < (lens[b] + block_size - 1) / block_size; ++i) {
      t.tables[b].push_back(ids[next++]);
      t.flat[b * t.max_blocks + i] = t.tables[b].back();
    }
  }
  return t;
}

// The value of an e4m3 code (exact in fp32).
inline float Fp8CodeValue(uint8_t code) {
  __nv_fp8_e4m3 v;
  v.__x = code;
  return static_cast<float>(v);
}

// One row x (n) as the FP8 cache stores it (KvAppend's FP8 form, same arithmetic, so the same
// bits): codes of x * (448 / max |x|), nearest even, saturating; returns the scale max |x| / 448
// (0 for a row of zeros). deq (n, may be null) gets the values the row stands for, code * scale.
inline float QuantizeFp8Row(const float* x, int64_t n, uint8_t* codes, float* deq) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float inv = amax > 0.0f ? 448.0f / amax : 0.0f;
  const float scale = amax / 448.0f;
  for (int64_t i = 0; i < n; ++i) {
    codes[i] = __nv_cvt_float_to_fp8(x[i] * inv, __NV_SATFINITE, __NV_E4M3);
    if (deq != nullptr) deq[i] = Fp8CodeValue(codes[i]) * scale;
  }
  return scale;
}

// Checks bf16 attention outputs (rows x q_dim, then one guard row) against the reference (rows x
// q_dim): the guard must hold kBf16Poison, rows with skip_rows[r] too (they belong to no
// sequence), rows with zero_rows[r] must be exactly zero (empty contexts), every other element
// finite. fp32_kernel: each element within 1e-4 + 2^-7 |ref| (a kernel computing in fp32 that
// rounds only its output to bf16), plus 2^-7 weighted_abs[i] where given: the same attention
// over |v| (sum of p |v| / sum of p), the scale of the error of a kernel that rounds its
// queries and weights to f16 (2^-11 each, and the scores' error on p). Every (row, head) within
// norm_tolerance relative norm error.
inline void CheckAttentionOutput(const std::vector<uint16_t>& got, const std::vector<float>& want,
                                 int64_t rows, int64_t n_heads, int64_t head_dim, bool fp32_kernel,
                                 const std::vector<bool>& zero_rows = {},
                                 const std::vector<bool>& skip_rows = {},
                                 double norm_tolerance = 1e-2,
                                 const std::vector<float>* weighted_abs = nullptr) {
  const int64_t q_dim = n_heads * head_dim;
  ASSERT_EQ(static_cast<int64_t>(got.size()), (rows + 1) * q_dim);
  int bad = 0;
  for (int64_t i = rows * q_dim; i < (rows + 1) * q_dim && bad < 5; ++i) {
    if (got[i] != kBf16Poison) {
      ADD_FAILURE() << "guard row element " << i - rows * q_dim << " overwritten";
      ++bad;
    }
  }
  for (int64_t r = 0; r < rows && bad < 10; ++r) {
    const bool skip = !skip_rows.empty() && skip_rows[r];
    const bool zero = !zero_rows.empty() && zero_rows[r];
    for (int64_t h = 0; h < n_heads && bad < 10; ++h) {
      double err2 = 0.0, ref2 = 0.0;
      for (int64_t d = 0; d < head_dim; ++d) {
        const int64_t i = r * q_dim + h * head_dim + d;
        if (skip) {
          if (got[i] != kBf16Poison) {
            ADD_FAILURE() << "row " << r << " belongs to no sequence but was written";
            ++bad;
            break;
          }
          continue;
        }
        const float g = Bf16BitsToFloat(got[i]), w = want[i];
        if (!std::isfinite(g)) {
          ADD_FAILURE() << "row " << r << " head " << h << " dim " << d << " not written or "
                        << "not finite (bits 0x" << std::hex << got[i] << std::dec << ")";
          ++bad;
          break;
        }
        if (zero && g != 0.0f) {
          ADD_FAILURE() << "row " << r << " (empty context) head " << h << " dim " << d << ": got "
                        << g << ", want 0";
          ++bad;
          break;
        }
        const float slack = weighted_abs != nullptr ? 0.0078125f * (*weighted_abs)[i] : 0.0f;
        if (fp32_kernel && !(std::fabs(g - w) <= 1e-4f + 0.0078125f * std::fabs(w) + slack)) {
          ADD_FAILURE() << "row " << r << " head " << h << " dim " << d << ": got " << g
                        << ", want " << w << " (slack " << slack << ")";
          ++bad;
          break;
        }
        err2 += (static_cast<double>(g) - w) * (static_cast<double>(g) - w);
        ref2 += static_cast<double>(w) * w;
      }
      if (!skip && !zero && !(std::sqrt(err2) <= norm_tolerance * std::sqrt(ref2) + 1e-6)) {
        ADD_FAILURE() << "row " << r << " head " << h << ": relative norm error "
                      << std::sqrt(err2 / std::max(ref2, 1e-30));
        ++bad;
      }
    }
  }
}

// The query rows of prefill chunks (start_pos, q_len), a sequence each, back to back in a q
// buffer, with one row that no sequence covers before the third sequence (a kernel must leave
// its output row alone).
struct PrefillRows {
  std::vector<int32_t> q_offsets, q_lens, start_pos;
  int64_t rows = 0, max_q_len = 0;
  std::vector<bool> skip;  // (rows): the uncovered row
};
inline PrefillRows LayOutPrefillRows(const std::vector<std::pair<int64_t, int64_t>>& chunks) {
  PrefillRows p;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i == 2) {
      p.skip.push_back(true);
      ++p.rows;
    }
    p.q_offsets.push_back(static_cast<int32_t>(p.rows));
    p.q_lens.push_back(static_cast<int32_t>(chunks[i].second));
    p.start_pos.push_back(static_cast<int32_t>(chunks[i].first));
    p.rows += chunks[i].second;
    p.max_q_len = std::max(p.max_q_len, chunks[i].second);
    p.skip.resize(static_cast<size_t>(p.rows), false);
  }
  return p;
}

// The CPU reference of a prefill: (rows, n_heads * head_dim), each sequence i's q rows (of
// q_stride floats in q) attending through tables[i] over `cache`; `rotate` (when set) is applied
// to each q row, compacted to n_heads * head_dim floats, at its position first (RoPE on the CPU).
inline std::vector<float> PrefillReference(
    const KvCacheLayer& cache, const AttentionTestShape& s,
    const std::vector<std::vector<int32_t>>& tables, const PrefillRows& p,
    const std::vector<float>& q, int64_t q_stride,
    const std::function<void(float*, int64_t)>& rotate = {}) {
  const int64_t q_dim = s.n_heads * s.head_dim;
  std::vector<float> want(static_cast<size_t>(p.rows * q_dim), 0.0f);
  for (size_t i = 0; i < p.q_lens.size(); ++i) {
    std::vector<AttentionQuery> queries;
    std::vector<float> qc;
    for (int64_t r = 0; r < p.q_lens[i]; ++r) {
      queries.push_back({p.start_pos[i] + r, &tables[i]});
      const float* row = q.data() + (p.q_offsets[i] + r) * q_stride;
      qc.insert(qc.end(), row, row + q_dim);
      if (rotate) rotate(qc.data() + r * q_dim, p.start_pos[i] + r);
    }
    if (!queries.empty()) {
      PagedAttention(cache, s.cpu(), queries, qc.data(), want.data() + p.q_offsets[i] * q_dim,
                     AttentionPool());
    }
  }
  return want;
}

}  // namespace rag::testing_gpu
