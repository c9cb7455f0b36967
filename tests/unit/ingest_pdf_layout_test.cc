// The PDF text heuristics of ingest/pdf_layout.h on synthetic words.
#include <gtest/gtest.h>

#include <sstream>

#include "ingest/pdf_layout.h"

namespace rag::ingest_internal {
namespace {

constexpr double kFont = 10;   // word height
constexpr double kPitch = 12;  // baseline to baseline

// Words of a line of text starting at (x, y): 6 points per character, 4 per space.
std::vector<PdfWord> Line(const std::string& text, double x, double y, double height = kFont) {
  std::vector<PdfWord> words;
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    const double width = 6.0 * static_cast<double>(w.size());
    words.push_back(PdfWord{w, x, y, x + width, y + height, true});
    x += width + 4;
  }
  if (!words.empty()) words.back().space_after = false;
  return words;
}

// Lines placed one pitch apart from y = 100; "" leaves a blank line (a paragraph gap).
PdfPageLines Page(const std::vector<std::string>& rows, double x = 50) {
  std::vector<PdfWord> words;
  double y = 100;
  for (const std::string& row : rows) {
    const std::vector<PdfWord> line = Line(row, x, y);
    words.insert(words.end(), line.begin(), line.end());
    y += kPitch;
  }
  return GroupLines(words);
}

std::string Assemble(const std::vector<std::string>& rows,
                     const std::unordered_set<std::string>& hyphenated = {}) {
  return AssemblePageText(Page(rows), hyphenated);
}

TEST(IngestPdfLayout, GroupsWordsIntoLines) {
  const PdfPageLines lines = Page({"first line here", "second line"});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].text, "first line here");
  EXPECT_EQ(lines[1].text, "second line");
  EXPECT_DOUBLE_EQ(lines[0].left, 50);
}

TEST(IngestPdfLayout, WordsWithoutSpaceStayTogether) {
  std::vector<PdfWord> words = {
      {"Hel", 0, 0, 18, 10, false}, {"lo", 18.5, 0, 30, 10, true}, {"world", 34, 0, 64, 10, false}};
  const PdfPageLines lines = GroupLines(words);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].text, "Hello world");
}

TEST(IngestPdfLayout, JoinsWrappedLinesIntoParagraphs) {
  EXPECT_EQ(Assemble({"The tide comes in twice a day and the boats",
                      "leave the harbour at high water only.", "",
                      "A second paragraph follows after a gap."}),
            "The tide comes in twice a day and the boats leave the harbour at high water only."
            "\n\nA second paragraph follows after a gap.");
}

TEST(IngestPdfLayout, DehyphenatesSyllableBreaksButKeepsCompounds) {
  EXPECT_EQ(Assemble({"We share infor-", "mation daily with everyone in town."}),
            "We share information daily with everyone in town.");
  EXPECT_EQ(
      Assemble({"Their skill is well-", "known among the pilots of the coast."}, {"well-known"}),
      "Their skill is well-known among the pilots of the coast.");
  EXPECT_EQ(Assemble({"The oldest annals of the kingdom form the Anglo-", "Saxon chronicle."}),
            "The oldest annals of the kingdom form the Anglo-Saxon chronicle.");
  EXPECT_EQ(Assemble({"A soft hyphen infor\xC2\xAD", "mation breaks here and there too."}),
            "A soft hyphen information breaks here and there too.");
}

TEST(IngestPdfLayout, HeadingsInALargerFontAreParagraphs) {
  std::vector<PdfWord> words = Line("2 Operations", 50, 80, 16);
  for (const auto& row : {Line("The lighthouse was built in 1887 and it", 50, 100),
                          Line("still guides the ships today at night.", 50, 112)}) {
    words.insert(words.end(), row.begin(), row.end());
  }
  EXPECT_EQ(AssemblePageText(GroupLines(words), {}),
            "2 Operations\n\nThe lighthouse was built in 1887 and it still guides the ships today "
            "at night.");
}

TEST(IngestPdfLayout, ListItemsAndShortLinesKeepTheirLines) {
  EXPECT_EQ(Assemble({"The port offers these services to its visitors:",
                      "- Cargo handling for containers and goods.", "- Passenger ferries."}),
            "The port offers these services to its visitors:\n- Cargo handling for containers and "
            "goods.\n- Passenger ferries.");
  EXPECT_EQ(Assemble({"Harbour Office", "12 Quay Street", "Portsmouth and the surrounding area"}),
            "Harbour Office\n12 Quay Street\nPortsmouth and the surrounding area");
}

TEST(IngestPdfLayout, TableOfContentsEntriesKeepTheirLinesWithoutLeaders) {
  EXPECT_EQ(Assemble({"1 Getting started the right way with the package . . . . . . . . . 1",
                      "1.1 Social dynamics of the project community .................. 2",
                      "2 First steps 6"}),
            "1 Getting started the right way with the package 1\n1.1 Social dynamics of the "
            "project community 2\n2 First steps 6");
  EXPECT_EQ(Assemble({"He paused... and then went on without any further delay at all."}),
            "He paused... and then went on without any further delay at all.");
}

TEST(IngestPdfLayout, ShortLineEndingASentenceEndsAParagraph) {
  EXPECT_EQ(Assemble({"This paragraph has a long first line of text in it", "and it ends here.",
                      "The next paragraph starts without a gap between."}),
            "This paragraph has a long first line of text in it and it ends here.\n\nThe next "
            "paragraph starts without a gap between.");
}

// Two lines side by side: the second one higher up and to the right, as at a column break.
std::string ColumnBreak(const std::string& left_line, const std::string& right_line) {
  std::vector<PdfWord> words = Line(left_line, 50, 100);
  const std::vector<PdfWord> right = Line(right_line, 300, 40);
  words.insert(words.end(), right.begin(), right.end());
  return AssemblePageText(GroupLines(words), {});
}

TEST(IngestPdfLayout, ANewColumnStartsAParagraphUnlessTheSentenceGoesOn) {
  EXPECT_EQ(ColumnBreak("Left column text ends.", "Right column text"),
            "Left column text ends.\n\nRight column text");
  EXPECT_EQ(ColumnBreak("Left column text ends", "Right column text"),
            "Left column text ends\n\nRight column text");
  EXPECT_EQ(ColumnBreak("The sentence runs on into the", "next column without a break."),
            "The sentence runs on into the next column without a break.");
}

TEST(IngestPdfLayout, RemovesRunningHeadersAndFootersOnly) {
  std::vector<PdfPageLines> pages;
  const char* body[] = {"Ships arrive.", "Cranes lift cargo.", "Ferries leave at noon.",
                        "Storms close the port.", "Pilots guide vessels."};
  for (int p = 1; p <= 5; ++p) {
    pages.push_back(Page({"Harbour Report", body[p - 1], "Page " + std::to_string(p) + " of 5"}));
  }
  pages[1].insert(pages[1].begin() + 1, Page({"Body text repeated twice."})[0]);
  pages[2].insert(pages[2].begin() + 1, Page({"Body text repeated twice."})[0]);
  RemoveRunningHeadersAndFooters(&pages);
  for (int p = 0; p < 5; ++p) {
    ASSERT_FALSE(pages[p].empty());
    for (const PdfLine& line : pages[p]) {
      EXPECT_NE(line.text, "Harbour Report");
      EXPECT_FALSE(line.text.starts_with("Page "));
    }
  }
  EXPECT_EQ(pages[0][0].text, "Ships arrive.");
  EXPECT_EQ(pages[1].size(), 2u);  // a body line on two pages stays
}

TEST(IngestPdfLayout, KeepsFootersOfShortDocuments) {
  std::vector<PdfPageLines> pages = {Page({"Text one.", "Page 1"}), Page({"Text two.", "Page 2"})};
  RemoveRunningHeadersAndFooters(&pages);
  EXPECT_EQ(pages[0].size(), 2u);
  EXPECT_EQ(pages[1].size(), 2u);
}

TEST(IngestPdfLayout, GuessesTheTitleFromTheLargestFont) {
  std::vector<PdfWord> words = Line("Published at a workshop", 50, 40);
  for (const auto& row :
       {Line("A Study of Tides", 50, 60, 18), Line("in Small Harbours", 50, 82, 18),
        Line("Body text follows here.", 50, 110)}) {
    words.insert(words.end(), row.begin(), row.end());
  }
  EXPECT_EQ(GuessTitle({{}, GroupLines(words)}), "A Study of Tides in Small Harbours");
  EXPECT_EQ(GuessTitle({Page({"First line", "Second line"})}), "First line");
  EXPECT_EQ(GuessTitle({{}, {}}), "");
}

TEST(IngestPdfLayout, MonospaceLinesAreCode) {
  for (const char* name : {"Courier", "ABCDEF+DejaVuSansMono", "CMTT10", "LMMono10-Regular",
                           "Consolas-Bold", "SFTT1000"}) {
    EXPECT_TRUE(IsMonospaceFontName(name)) << name;
  }
  for (const char* name : {"Helvetica", "ABCDEF+Times-Roman", "CMR10", "Arial-BoldMT"}) {
    EXPECT_FALSE(IsMonospaceFontName(name)) << name;
  }
  std::vector<PdfWord> words;
  for (const auto& row : {Line("for (int i = 0; i < n; ++i) {", 50, 100),
                          Line("sum += i;", 50, 112), Line("}", 50, 124)}) {
    words.insert(words.end(), row.begin(), row.end());
  }
  for (PdfWord& w : words) w.monospace = true;
  EXPECT_EQ(AssemblePageText(GroupLines(words), {}), "for (int i = 0; i < n; ++i) {\nsum += i;\n}");
}

TEST(IngestPdfLayout, CollectsHyphenatedWords) {
  const auto words =
      CollectHyphenatedWords({Page({"A well-known and Long-Standing fact", "x-ray 3-4"})});
  EXPECT_TRUE(words.count("well-known"));
  EXPECT_TRUE(words.count("long-standing"));
  EXPECT_TRUE(words.count("x-ray"));
  EXPECT_FALSE(words.count("3-4"));
}

TEST(IngestPdfLayout, NormalizesWordText) {
  EXPECT_EQ(NormalizePdfWordText("\xEF\xAC\x81nd"), "find");  // U+FB01 fi ligature
  EXPECT_EQ(NormalizePdfWordText("e\xEF\xAC\x83"
                                 "cient"),
            "efficient");  // U+FB03 ffi
  EXPECT_EQ(NormalizePdfWordText("a\xC2\xA0"
                                 "b"),
            "a b");
  EXPECT_EQ(NormalizePdfWordText("ab\x01"
                                 "c\xE2\x80\x8B"),
            "abc");
  EXPECT_EQ(NormalizePdfWordText("bad\xFF"), "bad\xEF\xBF\xBD");
  EXPECT_EQ(NormalizePdfWordText("in\xC2\xAD"
                                 "for\xC2\xAD"),
            "infor\xC2\xAD");
}

}  // namespace
}  // namespace rag::ingest_internal
