// ChunkDocument: the contract of chunker.h on synthetic and parsed documents.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>

#include "common/file_util.h"
#include "ingest/chunker.h"
#include "ingest/document_check.h"
#include "ingest/parser.h"

namespace rag {
namespace {

size_t Words(const std::string& s) {
  std::istringstream in(s);
  std::string w;
  size_t n = 0;
  while (in >> w) ++n;
  return n;
}

// A page of `n` sentences of exactly `words` words each: "S0w1 w2 ... wN." separated by spaces.
std::string Sentences(int n, int words, int first = 0) {
  std::string text;
  for (int s = first; s < first + n; ++s) {
    if (!text.empty()) text += ' ';
    text += "S" + std::to_string(s);
    for (int w = 1; w < words; ++w) text += " w" + std::to_string(w);
    text += '.';
  }
  return text;
}

ParsedDocument Doc(std::vector<std::string> pages) {
  ParsedDocument doc;
  doc.title = "t";
  doc.format = "text";
  for (size_t i = 0; i < pages.size(); ++i)
    doc.pages.push_back(PageText{static_cast<int>(i) + 1, pages[i]});
  return doc;
}

std::vector<Chunk> ChunkChecked(const ParsedDocument& doc, const ChunkOptions& options) {
  std::vector<Chunk> chunks = ChunkDocument(doc, options);
  const Status check = CheckChunks(doc, chunks);
  EXPECT_TRUE(check.ok()) << check.ToString();
  return chunks;
}

TEST(IngestChunker, WindowsOfWholeSentencesWithOverlap) {
  const ParsedDocument doc = Doc({Sentences(100, 10)});
  const std::vector<Chunk> chunks = ChunkChecked(doc, ChunkOptions{120, 30, 200});
  ASSERT_GT(chunks.size(), 5u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    EXPECT_LE(Words(c.text), 120u);
    EXPECT_TRUE(c.text.starts_with("S")) << c.text;  // whole sentences
    EXPECT_TRUE(c.text.ends_with(".")) << c.text;
    if (i + 1 < chunks.size()) {
      EXPECT_EQ(Words(c.text), 120u);
      const Chunk& next = chunks[i + 1];
      ASSERT_LT(next.start, c.end);  // overlap...
      EXPECT_EQ(Words(doc.pages[0].text.substr(next.start, c.end - next.start)),
                30u);  // of 3 sentences
    }
  }
  EXPECT_EQ(chunks.back().end, doc.pages[0].text.size());
}

TEST(IngestChunker, EverySentenceIsWholeInSomeChunk) {
  const ParsedDocument doc = Doc({Sentences(40, 7) + "\n\n" + Sentences(30, 13, 40)});
  const std::vector<Chunk> chunks = ChunkChecked(doc, ChunkOptions{50, 15, 80});
  for (const SentenceSpan& s : SplitSentences(doc.pages[0].text)) {
    bool whole = false;
    for (const Chunk& c : chunks) whole |= c.start <= s.begin && s.end <= c.end;
    EXPECT_TRUE(whole) << doc.pages[0].text.substr(s.begin, s.end - s.begin);
  }
}

TEST(IngestChunker, LongSentencesAreCutAtWordBoundaries) {
  std::string sentence = "Start";
  for (int i = 0; i < 499; ++i) sentence += " word" + std::to_string(i);
  const ParsedDocument doc = Doc({sentence + ". Short one after."});
  const std::vector<Chunk> chunks = ChunkChecked(doc, ChunkOptions{120, 30, 200});
  size_t words = 0;
  for (const Chunk& c : chunks) {
    EXPECT_LE(Words(c.text), 200u);
    EXPECT_NE(c.text.front(), ' ');
    words += Words(c.text);
  }
  EXPECT_GE(words, 503u);  // every word is in a chunk (overlap may add some)
  EXPECT_TRUE(chunks.front().text.starts_with("Start word0"));
  EXPECT_TRUE(chunks.back().text.ends_with("Short one after."));
}

TEST(IngestChunker, TextWithoutSpacesStillMakesBoundedChunks) {
  const ParsedDocument doc = Doc({std::string(100000, 'x')});
  const std::vector<Chunk> chunks = ChunkChecked(doc, ChunkOptions{120, 30, 200});
  ASSERT_GT(chunks.size(), 10u);
  for (const Chunk& c : chunks) EXPECT_LE(c.text.size(), 200u * 48u);
  std::string cjk;
  for (int i = 0; i < 1000; ++i) cjk += "\xE6\x97\xA5";  // 日, no punctuation
  const std::vector<Chunk> cjk_chunks = ChunkChecked(Doc({cjk}), ChunkOptions{100, 0, 100});
  EXPECT_EQ(cjk_chunks.size(), 10u);
  EXPECT_EQ(cjk_chunks[0].text.size(), 300u);
}

TEST(IngestChunker, NeverCrossesPages) {
  const ParsedDocument doc = Doc({Sentences(5, 4), "", "   ", Sentences(5, 4, 5)});
  const std::vector<Chunk> chunks = ChunkChecked(doc, ChunkOptions{1000, 10, 2000});
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].page, 1);
  EXPECT_EQ(chunks[1].page, 4);
  EXPECT_EQ(chunks[1].text, doc.pages[3].text);
}

TEST(IngestChunker, NeverCrossesSectionsAndNamesThem) {
  ParsedDocument doc = Doc({"Intro sentence here. Alpha\n\nAlpha text one. Alpha text two.",
                            "Still alpha here. Beta\n\nBeta text."});
  doc.sections = {{1, 21, "Alpha"}, {2, 18, "Beta"}};
  const std::vector<Chunk> chunks = ChunkChecked(doc, ChunkOptions{1000, 10, 2000});
  ASSERT_EQ(chunks.size(), 4u);
  EXPECT_EQ(chunks[0].text, "Intro sentence here.");
  EXPECT_EQ(chunks[0].section, "");
  EXPECT_EQ(chunks[1].text, "Alpha\n\nAlpha text one. Alpha text two.");
  EXPECT_EQ(chunks[1].section, "Alpha");
  EXPECT_EQ(chunks[2].text, "Still alpha here.");
  EXPECT_EQ(chunks[2].section, "Alpha");  // a section carries over to the next page
  EXPECT_EQ(chunks[3].text, "Beta\n\nBeta text.");
  EXPECT_EQ(chunks[3].section, "Beta");
}

TEST(IngestChunker, OddOptionsAndEmptyDocumentsTerminate) {
  const ParsedDocument doc = Doc({Sentences(20, 5)});
  for (const ChunkOptions& o : {ChunkOptions{0, 0, 0}, ChunkOptions{10, 50, 5},
                                ChunkOptions{1, 1, 1}, ChunkOptions{5, 4, 6}}) {
    const std::vector<Chunk> chunks = ChunkChecked(doc, o);
    EXPECT_GE(chunks.size(), 1u);
    EXPECT_LE(chunks.size(), 100u);  // at most one per word
  }
  EXPECT_TRUE(ChunkDocument(Doc({}), ChunkOptions{}).empty());
  EXPECT_TRUE(ChunkDocument(Doc({"", " \n\n "}), ChunkOptions{}).empty());
}

TEST(IngestChunker, ParsedTestDocumentsKeepTheContract) {
  for (const char* name : {"report.pdf", "two_columns.pdf", "justified_columns.pdf", "sample.md",
                           "sample.html", "sample.txt"}) {
    const StatusOr<std::string> bytes =
        ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/" + name);
    ASSERT_TRUE(bytes.ok());
    const StatusOr<ParsedDocument> doc = ParseDocument(*bytes, name);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    for (const ChunkOptions& o : {ChunkOptions{}, ChunkOptions{8, 3, 12}, ChunkOptions{3, 1, 4}}) {
      const std::vector<Chunk> chunks = ChunkDocument(*doc, o);
      EXPECT_FALSE(chunks.empty()) << name;
      const Status check = CheckChunks(*doc, chunks);
      EXPECT_TRUE(check.ok()) << name << ": " << check.ToString();
    }
  }
}

// Throughput on about 16 MB of prose; run with --gtest_also_run_disabled_tests.
TEST(IngestChunkerBench, DISABLED_Throughput) {
  const std::string paragraph =
      "The harbour authority publishes this report every year. Dr. Smith reviewed the figures, "
      "e.g. the 3.14 percent growth in cargo volume! Did the pilots agree? They did... Mostly.\n\n";
  ParsedDocument doc = Doc({});
  for (int p = 0; p < 4000; ++p) {
    std::string text;
    while (text.size() < 4000) text += paragraph;
    doc.pages.push_back(PageText{p + 1, text});
  }
  size_t bytes = 0;
  for (const PageText& p : doc.pages) bytes += p.text.size();
  const auto start = std::chrono::steady_clock::now();
  const std::vector<Chunk> chunks = ChunkDocument(doc, ChunkOptions{});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("chunker: %.1f MB in %.3f s = %.1f MB/s, %zu chunks\n", bytes / 1e6, s,
              bytes / 1e6 / s, chunks.size());
  const auto split_start = std::chrono::steady_clock::now();
  size_t sentences = 0;
  for (const PageText& p : doc.pages) sentences += SplitSentences(p.text).size();
  const double split_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - split_start).count();
  std::printf("sentences: %.1f MB/s, %zu sentences\n", bytes / 1e6 / split_s, sentences);
}

}  // namespace
}  // namespace rag
