// ChunkDocument: see chunker.h for the contract.
//
// Each page is cut at its section starts into segments; each segment is split into sentences
// (SplitSentencesInRange), sentences longer than max_words are cut at word boundaries into
// pieces of at most target_words words, and a window slides over these units:
//   [s, e) grows by whole units while it stays within target_words (it always takes at least
//   one unit it has not emitted yet); the next window starts at the last units of [s, e) that
//   together have at most overlap_words words, minus those that would push the next window
//   past max_words.
//
// Words are runs of non-whitespace; a CJK character (U+3000..U+DFFF) counts as one word, and a
// run longer than kMaxWordBytes counts one word per kMaxWordBytes, so text without spaces
// (CJK, base64 blobs) still makes chunks of bounded size.
#include "ingest/chunker.h"

#include <algorithm>
#include <string_view>

#include "ingest/sentences.h"

namespace rag {
namespace {

constexpr size_t kMaxWordBytes = 48;

bool IsSpace(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
bool IsCjkLead(unsigned char c) { return c >= 0xE3 && c <= 0xED; }
bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Calls on_word(begin, end) for each word of text[begin, end), in order.
template <typename OnWord>
void ForEachWord(std::string_view text, size_t begin, size_t end, OnWord on_word) {
  size_t i = begin;
  while (i < end) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    if (IsCjkLead(c)) {
      const size_t e = std::min(end, i + 3);
      on_word(i, e);
      i = e;
      continue;
    }
    const size_t b = i;
    while (i < end) {
      const auto d = static_cast<unsigned char>(text[i]);
      if (IsSpace(d) || IsCjkLead(d)) break;
      if (i - b >= kMaxWordBytes && !IsContinuation(d)) break;
      ++i;
    }
    on_word(b, i);
  }
}

size_t CountWords(std::string_view text, size_t begin, size_t end) {
  size_t n = 0;
  ForEachWord(text, begin, end, [&n](size_t, size_t) { ++n; });
  return n;
}

// A sentence or a piece of one.
struct Unit {
  size_t begin;
  size_t end;
  size_t words;
};

class PageChunker {
 public:
  PageChunker(const ChunkOptions& options, std::vector<Chunk>* out) : out_(out) {
    target_ = std::max<size_t>(1, options.target_words);
    max_ = std::max(target_, options.max_words);
    overlap_ = std::min(options.overlap_words, target_ - 1);
  }

  // Chunks text[begin, end) of page `page`, all of it in section `section`.
  void ChunkSegment(const PageText& page, size_t begin, size_t end, const std::string& section) {
    sentences_.clear();
    units_.clear();
    ingest_internal::SplitSentencesInRange(page.text, begin, end, &sentences_);
    for (const SentenceSpan& s : sentences_) AddUnits(page.text, s);
    size_t s = 0;
    size_t fresh = 0;  // the first unit no chunk has taken yet
    while (fresh < units_.size()) {
      size_t e = s;
      size_t total = 0;
      while (e < units_.size() && (e <= fresh || total + units_[e].words <= target_)) {
        total += units_[e].words;
        ++e;
      }
      Emit(page, s, e, section);
      fresh = e;
      if (e == units_.size()) break;
      size_t next = e;
      size_t overlap = 0;
      while (next > s + 1 && overlap + units_[next - 1].words <= overlap_) {
        overlap += units_[--next].words;
      }
      while (next < e && overlap + units_[e].words > max_) overlap -= units_[next++].words;
      s = next;
    }
  }

 private:
  void AddUnits(std::string_view text, const SentenceSpan& s) {
    const size_t words = CountWords(text, s.begin, s.end);
    if (words <= max_) {
      units_.push_back(Unit{s.begin, s.end, words});
      return;
    }
    // Cut into ceil(words / target) pieces of near-equal size.
    const size_t pieces = (words + target_ - 1) / target_;
    const size_t per_piece = (words + pieces - 1) / pieces;
    size_t count = 0;
    Unit piece{0, 0, 0};
    ForEachWord(text, s.begin, s.end, [&](size_t b, size_t e) {
      if (count == 0) piece.begin = b;
      piece.end = e;
      if (++count == per_piece) {
        units_.push_back(Unit{piece.begin, piece.end, count});
        count = 0;
      }
    });
    if (count > 0) units_.push_back(Unit{piece.begin, piece.end, count});
  }

  void Emit(const PageText& page, size_t s, size_t e, const std::string& section) {
    Chunk c;
    c.page = page.number;
    c.start = units_[s].begin;
    c.end = units_[e - 1].end;
    c.section = section;
    c.text = page.text.substr(c.start, c.end - c.start);
    out_->push_back(std::move(c));
  }

  std::vector<Chunk>* out_;
  size_t target_, max_, overlap_;
  std::vector<SentenceSpan> sentences_;
  std::vector<Unit> units_;
};

bool SectionBefore(const SectionStart& a, const SectionStart& b) {
  return a.page != b.page ? a.page < b.page : a.offset < b.offset;
}

}  // namespace

std::vector<Chunk> ChunkDocument(const ParsedDocument& doc, const ChunkOptions& options) {
  std::vector<Chunk> chunks;
  PageChunker chunker(options, &chunks);
  // Parsers give the sections in order; a hand-made document might not.
  std::vector<SectionStart> sorted;
  const std::vector<SectionStart>* ordered = &doc.sections;
  if (!std::is_sorted(doc.sections.begin(), doc.sections.end(), SectionBefore)) {
    sorted = doc.sections;
    std::stable_sort(sorted.begin(), sorted.end(), SectionBefore);
    ordered = &sorted;
  }
  const std::vector<SectionStart>& sections = *ordered;
  size_t next_section = 0;
  const std::string none;
  const std::string* section = &none;
  for (const PageText& page : doc.pages) {
    // Sections of earlier pages (or of pages not in the document) carry over.
    while (next_section < sections.size() && sections[next_section].page < page.number) {
      section = &sections[next_section++].title;
    }
    const size_t size = page.text.size();
    size_t begin = 0;
    while (true) {
      while (next_section < sections.size() && sections[next_section].page == page.number &&
             std::min(sections[next_section].offset, size) <= begin) {
        section = &sections[next_section++].title;
      }
      size_t end = size;
      if (next_section < sections.size() && sections[next_section].page == page.number) {
        end = std::min(sections[next_section].offset, size);
      }
      chunker.ChunkSegment(page, begin, end, *section);
      if (end == size) break;
      begin = end;
    }
  }
  return chunks;
}

}  // namespace rag
