// The dense index embeds a passage as overlapping windows of words and scores it by its best
// window (max pooling over windows), instead of one vector for the whole passage.
//
// Why: small sentence encoders are trained on short texts (all-MiniLM-L6-v2 on pairs cut at 128
// word pieces) and truncate at 256; a 200-word chunk is ~270 word pieces, so one vector both
// loses the chunk's tail and averages several topics into one point. A question usually matches
// one paragraph of a chunk. Measured on two question sets (docs/BENCHMARKS.md): recall@5 and
// MRR@10 of the dense half rose on both (Debian FAQ 0.847 / 0.712 -> 0.881 / 0.666, Python FAQ
// 0.855 / 0.740 -> 0.922 / 0.837), for ~6 vectors a 200-word chunk and ~1.8x the embedding work.
//
// Vector ids. A window's vector id is chunk_id * kWindowSlots + window (window < kWindowSlots),
// so the vectors of a chunk are the id range [chunk_id * kWindowSlots, (chunk_id + 1) *
// kWindowSlots) and the chunk of a vector is id / kWindowSlots.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rag {

inline constexpr int kWindowWords = 60;   // ~80 word pieces: inside MiniLM's training length
inline constexpr int kWindowStride = 30;  // half a window: every sentence is whole in some window
inline constexpr int64_t kWindowSlots = 64;

// The windows of `text`: runs of kWindowWords whitespace-separated words starting every
// kWindowStride words, the last one reaching the final word, joined by single spaces. A text of
// at most kWindowWords words is one window; an empty (all-space) text is none. Never more than
// kWindowSlots windows: a longer text gets a wider stride so that the windows still cover it.
std::vector<std::string> PassageWindows(const std::string& text);

inline int64_t WindowVectorId(int64_t chunk_id, int64_t window) {
  return chunk_id * kWindowSlots + window;
}
inline int64_t ChunkOfVector(int64_t vector_id) { return vector_id / kWindowSlots; }

}  // namespace rag
