// ParseHtml on tests/data/ingest/sample.html and small inline documents, and the nesting guard.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/file_util.h"
#include "ingest/document_check.h"
#include "ingest/html_nesting.h"
#include "ingest/parser.h"

namespace rag {
namespace {

ParsedDocument ParseOk(std::string_view html, const std::string& name = "page.html") {
  StatusOr<ParsedDocument> doc = ParseHtml(html, name);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return {};
  const Status check = CheckParsedDocument(*doc);
  EXPECT_TRUE(check.ok()) << check.ToString();
  return *doc;
}

ParsedDocument ParseSample() {
  const StatusOr<std::string> bytes =
      ReadFileToString(std::string(RAG_TEST_DATA_DIR) + "/ingest/sample.html");
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return ParseOk(bytes.ok() ? *bytes : "", "sample.html");
}

bool Contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

TEST(IngestHtmlParser, SampleKeepsVisibleTextOnly) {
  const ParsedDocument doc = ParseSample();
  EXPECT_EQ(doc.format, "html");
  EXPECT_EQ(doc.title, "City Library & Archive");
  ASSERT_EQ(doc.pages.size(), 1u);
  const std::string& t = doc.pages[0].text;
  EXPECT_FALSE(Contains(t, "must-not-appear")) << t;
  EXPECT_FALSE(Contains(t, "color: red"));
  EXPECT_FALSE(Contains(t, "var secret"));
  EXPECT_FALSE(Contains(t, "City Library"));  // <title> is the title, not text
  EXPECT_FALSE(Contains(t, "<p"));
  EXPECT_FALSE(Contains(t, "</"));
  EXPECT_FALSE(Contains(t, "&amp;"));
}

TEST(IngestHtmlParser, SampleLayoutAndEntities) {
  const ParsedDocument doc = ParseSample();
  const std::string& t = doc.pages[0].text;
  EXPECT_TRUE(
      Contains(t,
               "\n\nWelcome to the Library\n\nThe library opens at 9 a.m. \xE2\x80\x94 every "
               "day except Sunday. Fish & chips are not allowed.\n\n"))
      << t;
  EXPECT_TRUE(
      Contains(t, "\n\nRare books\nMaps from 1650\nLetters of the founders\nNewspapers\n\n"))
      << t;
  EXPECT_TRUE(Contains(t, "Day\tHours\nMonday\t9-17")) << t;
  EXPECT_TRUE(Contains(t, "\n\nline one\n    indented line two\n\n")) << t;
  EXPECT_TRUE(t.ends_with("Caf\xC3\xA9 on the <ground> floor.\nSecond line after the break.")) << t;
}

TEST(IngestHtmlParser, HeadingsAreSections) {
  const ParsedDocument doc = ParseSample();
  ASSERT_EQ(doc.sections.size(), 3u);
  const char* titles[] = {"Welcome to the Library", "Collections", "Opening hours"};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(doc.sections[i].title, titles[i]);
    EXPECT_EQ(doc.pages[0].text.substr(doc.sections[i].offset, doc.sections[i].title.size()),
              titles[i]);
  }
}

TEST(IngestHtmlParser, TitleFallsBackToH1ThenHeadingThenFirstLine) {
  EXPECT_EQ(ParseOk("<h2>Second</h2><h1> First\n  Heading </h1><p>x</p>").title, "First Heading");
  EXPECT_EQ(ParseOk("<title>  </title><h3>Third</h3><p>x</p>").title, "Third");
  EXPECT_EQ(ParseOk("<p>Plain first line</p><p>second</p>").title, "Plain first line");
}

TEST(IngestHtmlParser, ScriptOnlyPageHasNoText) {
  const StatusOr<ParsedDocument> doc = ParseHtml(
      "<html><head><title>T</title><script>a()</script></head><body> </body></html>", "app.html");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().message(), "app.html: the document has no text");
}

TEST(IngestHtmlParser, LegacyEncodingIsDecoded) {
  EXPECT_EQ(ParseOk("<p>caf\xE9</p>").pages[0].text, "caf\xC3\xA9");
}

TEST(IngestHtmlParser, HundredThousandNestedDivsAreFastAndKeepTheirText) {
  std::string html = "<html><body>";
  for (int i = 0; i < 100000; ++i) html += "<div>";
  html += "deep text";
  for (int i = 0; i < 100000; ++i) html += "</div>";
  html += "<p>after</p></body></html>";
  const auto start = std::chrono::steady_clock::now();
  const ParsedDocument doc = ParseOk(html);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(doc.pages[0].text, "deep text\n\nafter");
  EXPECT_LT(seconds, 2.0);  // unguarded, gumbo takes tens of seconds here
}

TEST(IngestHtmlParser, DeepInlineAndUnclosedNestingSurvive) {
  for (const char* tag : {"<span>", "<b>", "<li>", "<table>", "<p>", "<svg>", "<a href=x>"}) {
    std::string html;
    for (int i = 0; i < 100000; ++i) html += tag;
    const StatusOr<ParsedDocument> doc = ParseHtml(html + "bottom", "deep.html");
    if (std::string(tag) == "<svg>") {
      EXPECT_FALSE(doc.ok());  // svg content is not text
      continue;
    }
    ASSERT_TRUE(doc.ok()) << tag << ": " << doc.status().ToString();
    EXPECT_TRUE(Contains(doc->pages[0].text, "bottom")) << tag;
  }
}

// Found by tests/fuzz/html_fuzz and markdown_fuzz: gumbo overflowed on long numeric character
// references, giving a lone byte 0xAD (invalid UTF-8), "&", or dropping the text after them.
TEST(IngestHtmlParser, OutOfRangeCharacterReferencesBecomeReplacementCharacters) {
  const ParsedDocument doc = ParseOk(
      "<p>a &#xD8aaaaaaad b &#xFFFFFFFF c &#x80000000 d &#99999999999; e &#x110000; f "
      "&#x0000000041; &#233; &#x1F600;</p>");
  ASSERT_EQ(doc.pages.size(), 1u);
  EXPECT_EQ(doc.pages[0].text,
            "a \uFFFD b \uFFFD c \uFFFD d \uFFFD e \uFFFD f A \u00E9 \U0001F600");
}

TEST(IngestHtmlNesting, LeavesShallowHtmlAlone) {
  EXPECT_FALSE(ingest_internal::LimitHtmlNesting("<div><p>a<p>b</div>", 2).has_value());
}

TEST(IngestHtmlNesting, FlattensBeyondTheLimitAndKeepsText) {
  const auto out =
      ingest_internal::LimitHtmlNesting("<div><div><DIV class='a>b'>x</DIV>y</div>z</div>", 2);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, "<div><div>xy</div>z</div>");
}

TEST(IngestHtmlNesting, IgnoresTagsInCommentsScriptsAndVoidElements) {
  const std::string html =
      "<!-- <div><div><div> --><script>'<div><div><div>'</script><br><img src=a><hr>"
      "<div>text</div>";
  EXPECT_FALSE(ingest_internal::LimitHtmlNesting(html, 1).has_value());
  EXPECT_FALSE(
      ingest_internal::LimitHtmlNesting("<svg><path/><path/><path/></svg>", 1).has_value());
}

}  // namespace
}  // namespace rag
