#include <gtest/gtest.h>

#include <string>

#include "server/multipart.h"

namespace rag {
namespace {

constexpr char kType[] = "multipart/form-data; boundary=XyZ";

std::string Body(std::initializer_list<std::string> parts, const std::string& boundary = "XyZ") {
  std::string body;
  for (const std::string& part : parts) body += "--" + boundary + "\r\n" + part + "\r\n";
  body += "--" + boundary + "--\r\n";
  return body;
}

TEST(MultipartBoundary, ReadsTokenAndQuotedBoundaries) {
  EXPECT_EQ(*MultipartBoundary("multipart/form-data; boundary=abc"), "abc");
  EXPECT_EQ(*MultipartBoundary("Multipart/Form-Data;boundary=\"a b:c\""), "a b:c");
  EXPECT_EQ(
      *MultipartBoundary(
          "multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW"),
      "----WebKitFormBoundary7MA4YWxkTrZu0gW");
  EXPECT_EQ(MultipartBoundary(std::string(70, 'b')).status().code(), StatusCode::kUnsupported);
  // '=' is no token character: such a boundary must be quoted.
  EXPECT_EQ(MultipartBoundary("multipart/form-data; boundary==x").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(MultipartBoundary("multipart/form-data; boundary=" + std::string(70, 'b')).ok());
}

TEST(MultipartBoundary, RejectsOtherTypesAndBadBoundaries) {
  EXPECT_EQ(MultipartBoundary("application/json").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(MultipartBoundary("").status().code(), StatusCode::kUnsupported);
  EXPECT_EQ(MultipartBoundary("multipart/mixed; boundary=a").status().code(),
            StatusCode::kUnsupported);
  for (const char* bad :
       {"multipart/form-data", "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\"\"", "multipart/form-data; boundary=\"ends with space \"",
        "multipart/form-data; boundary=\"semi;colon\"",
        "multipart/form-data; boundary=\"unterminated",
        "multipart/form-data; boundary=a; boundary=b", "multipart/form-data; boundary"}) {
    EXPECT_EQ(MultipartBoundary(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(
      MultipartBoundary("multipart/form-data; boundary=" + std::string(71, 'b')).status().code(),
      StatusCode::kInvalidArgument);
}

TEST(Multipart, ParsesSeveralParts) {
  const std::string body = Body({
      "Content-Disposition: form-data; name=\"collection\"\r\n\r\nmanuals",
      "Content-Disposition: form-data; name=\"file\"; filename=\"report.pdf\"\r\n"
      "Content-Type: application/pdf\r\n\r\n%PDF-1.4 data",
  });
  auto parts = ParseMultipart(kType, body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 2u);
  EXPECT_EQ((*parts)[0].name, "collection");
  EXPECT_FALSE((*parts)[0].filename.has_value());
  EXPECT_EQ((*parts)[0].data, "manuals");
  EXPECT_EQ((*parts)[0].content_type, "");
  EXPECT_EQ((*parts)[1].name, "file");
  EXPECT_EQ((*parts)[1].filename.value(), "report.pdf");
  EXPECT_EQ((*parts)[1].content_type, "application/pdf");
  EXPECT_EQ((*parts)[1].data, "%PDF-1.4 data");
  // Views into the body, not copies.
  EXPECT_GE((*parts)[1].data.data(), body.data());
  EXPECT_LE((*parts)[1].data.data() + (*parts)[1].data.size(), body.data() + body.size());
  EXPECT_EQ(FindPart(*parts, "file"), &(*parts)[1]);
  EXPECT_EQ(FindPart(*parts, "nope"), nullptr);
}

TEST(Multipart, KeepsBinaryDataWithCrLfAndDashes) {
  std::string data = "line1\r\nline2\r\n--XyZnot\r\n--Xy\r\n\r\n--";
  data += std::string("\0\xff\r\n\x00--", 7);
  data += "\r\n-- XyZ";
  const std::string body =
      Body({"Content-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n\r\n" + data});
  // "\r\n--XyZnot" would be a malformed boundary line: a sender must pick a boundary that does
  // not occur in the data, so use one that does not.
  const std::string safe_body =
      Body({"Content-Disposition: form-data; name=\"file\"; filename=\"b.bin\"\r\n\r\n" + data},
           "=_boundary_42");
  auto parts = ParseMultipart("multipart/form-data; boundary=\"=_boundary_42\"", safe_body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, data);
  EXPECT_EQ(ParseMultipart(kType, body).status().code(), StatusCode::kInvalidArgument);
}

TEST(Multipart, EmptyPartDataAndQuotedBoundary) {
  const std::string body = Body({"Content-Disposition: form-data; name=\"a\"\r\n\r\n"}, "q b");
  auto parts = ParseMultipart("multipart/form-data; boundary=\"q b\"", body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].data, "");
}

TEST(Multipart, IgnoresPreambleEpilogueAndPadding) {
  const std::string body =
      "This is the preamble.\r\n--XyZ  \t\r\n"
      "content-disposition: FORM-DATA; name=file; filename=\"notes.txt\"\r\n"
      "X-Whatever: ignored\r\n\r\n"
      "hello\r\n--XyZ--\r\nThis is the epilogue, --XyZ inside it is fine.\r\n";
  auto parts = ParseMultipart(kType, body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0].filename.value(), "notes.txt");
  EXPECT_EQ((*parts)[0].data, "hello");
}

TEST(Multipart, StripsDirectoriesFromFilenames) {
  struct Case {
    std::string sent, expected;
  } cases[] = {
      {"../../etc/passwd", "passwd"},    {"C:\\Users\\me\\My Report.pdf", "My Report.pdf"},
      {"/abs/path/x.md", "x.md"},        {"a\\\"b.txt", "a\"b.txt"},  // quoted-pair: \" is a quote
      {"dir\\..\\evil.txt", "evil.txt"},
  };
  for (const Case& c : cases) {
    const std::string body = Body(
        {"Content-Disposition: form-data; name=\"file\"; filename=\"" + c.sent + "\"\r\n\r\nx"});
    auto parts = ParseMultipart(kType, body);
    ASSERT_TRUE(parts.ok()) << c.sent << ": " << parts.status().ToString();
    EXPECT_EQ((*parts)[0].filename.value(), c.expected) << c.sent;
  }
}

TEST(Multipart, DecodesExtendedFilename) {
  const std::string body =
      Body({"Content-Disposition: form-data; name=\"file\"; filename=\"fallback.pdf\"; "
            "filename*=UTF-8''na%C3%AFve%20notes.pdf\r\n\r\nx"});
  auto parts = ParseMultipart(kType, body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  EXPECT_EQ((*parts)[0].filename.value(), "na\xc3\xafve notes.pdf");
  const std::string latin1 = Body(
      {"Content-Disposition: form-data; name=\"file\"; filename*=iso-8859-1''caf%E9.txt\r\n\r\nx"});
  auto parts2 = ParseMultipart(kType, latin1);
  ASSERT_TRUE(parts2.ok()) << parts2.status().ToString();
  EXPECT_EQ((*parts2)[0].filename.value(), "caf\xc3\xa9.txt");
}

TEST(Multipart, MalformedBodiesAreInvalidArgument) {
  const std::string disposition =
      "Content-Disposition: form-data; name=\"file\"; filename=\"a.txt\"";
  struct Case {
    const char* what;
    std::string body;
  } cases[] = {
      {"empty body", ""},
      {"no boundary at all", "just some text"},
      {"LF line endings", "--XyZ\n" + disposition + "\n\nx\n--XyZ--\n"},
      {"missing final boundary", "--XyZ\r\n" + disposition + "\r\n\r\nx"},
      {"missing final boundary after CRLF", "--XyZ\r\n" + disposition + "\r\n\r\nx\r\n"},
      {"truncated after boundary", "--XyZ"},
      {"truncated after boundary padding", "--XyZ   "},
      {"garbage after boundary", "--XyZgarbage\r\n" + disposition + "\r\n\r\nx\r\n--XyZ--"},
      {"no headers", "--XyZ\r\n\r\nx\r\n--XyZ--"},
      {"headers never end", "--XyZ\r\n" + disposition + "\r\nx\r\n--XyZ--"},
      {"no Content-Disposition", "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"},
      {"not form-data", "--XyZ\r\nContent-Disposition: attachment; name=\"f\"\r\n\r\nx\r\n--XyZ--"},
      {"no name", "--XyZ\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nx\r\n--XyZ--"},
      {"empty name", "--XyZ\r\nContent-Disposition: form-data; name=\"\"\r\n\r\nx\r\n--XyZ--"},
      {"empty filename",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\"\r\n\r\nx\r\n--XyZ--"},
      {"filename is a directory",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
       "filename=\"a/b/\"\r\n\r\nx\r\n--XyZ--"},
      {"filename ..",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
       "filename=\"..\"\r\n\r\nx\r\n--XyZ--"},
      {"control character in filename",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
       "filename=\"a\tb\"\r\n\r\nx\r\n--XyZ--"},
      {"bad filename*",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
       "filename*=UTF-8''%zz\r\n\r\nx\r\n--XyZ--"},
      {"unknown filename* charset",
       "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; "
       "filename*=koi8-r''x\r\n\r\nx\r\n--XyZ--"},
      {"duplicate parameter",
       "--XyZ\r\nContent-Disposition: form-data; name=\"a\"; name=\"b\"\r\n\r\nx\r\n--XyZ--"},
      {"duplicate Content-Disposition",
       "--XyZ\r\n" + disposition + "\r\n" + disposition + "\r\n\r\nx\r\n--XyZ--"},
      {"duplicate Content-Type",
       "--XyZ\r\n" + disposition +
           "\r\nContent-Type: a/b\r\nContent-Type: a/b\r\n\r\nx\r\n--XyZ--"},
      {"duplicate field",
       "--XyZ\r\n" + disposition + "\r\n\r\nx\r\n--XyZ\r\n" + disposition + "\r\n\r\ny\r\n--XyZ--"},
      {"folded header",
       "--XyZ\r\nContent-Disposition: form-data;\r\n name=\"a\"\r\n\r\nx\r\n--XyZ--"},
      {"header without colon", "--XyZ\r\n" + disposition + "\r\nNoColon\r\n\r\nx\r\n--XyZ--"},
      {"unterminated quoted name",
       "--XyZ\r\nContent-Disposition: form-data; name=\"abc\r\n\r\nx\r\n--XyZ--"},
      {"unquoted value with space",
       "--XyZ\r\nContent-Disposition: form-data; name=a b\r\n\r\nx\r\n--XyZ--"},
      {"binary garbage", std::string("\x00\xff\xfe--XyZ\x00\r\n\r\n", 12)},
  };
  for (const Case& c : cases) {
    auto parts = ParseMultipart(kType, c.body);
    EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument) << c.what;
    if (!parts.ok()) {
      EXPECT_FALSE(parts.status().message().empty()) << c.what;
    }
  }
}

TEST(Multipart, LimitsPartsAndHeaderSize) {
  std::string body;
  for (int i = 0; i < 17; ++i) {
    body +=
        "--XyZ\r\nContent-Disposition: form-data; name=\"f" + std::to_string(i) + "\"\r\n\r\nx\r\n";
  }
  body += "--XyZ--\r\n";
  auto parts = ParseMultipart(kType, body);
  EXPECT_EQ(parts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parts.status().message().find("more than 16 parts"), std::string::npos);
  MultipartLimits limits;
  limits.max_parts = 17;
  EXPECT_TRUE(ParseMultipart(kType, body, limits).ok());

  const std::string big_header =
      "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: " + std::string(9000, 'p') +
      "\r\n\r\nx\r\n--XyZ--";
  EXPECT_EQ(ParseMultipart(kType, big_header).status().code(), StatusCode::kInvalidArgument);
}

TEST(Multipart, EmptyFormHasNoParts) {
  auto parts = ParseMultipart(kType, "--XyZ--\r\n");
  ASSERT_TRUE(parts.ok());
  EXPECT_TRUE(parts->empty());
}

TEST(Multipart, LargeBodyIsParsedInLinearTime) {
  // 32 MB of near-boundaries (the delimiter but for its last byte), the worst case of a naive
  // search; Boyer-Moore stays linear.
  const std::string near = "\r\n--" + std::string(59, 'X') + "Y";
  std::string data;
  data.reserve((32 << 20) + near.size());
  while (data.size() < (32u << 20)) data += near;
  const std::string body = "--" + std::string(60, 'X') +
                           "\r\nContent-Disposition: form-data; name=\"file\"; "
                           "filename=\"big.bin\"\r\n\r\n" +
                           data + "\r\n--" + std::string(60, 'X') + "--";
  auto parts = ParseMultipart("multipart/form-data; boundary=" + std::string(60, 'X'), body);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  EXPECT_EQ((*parts)[0].data.size(), data.size());
}

TEST(SanitizeFilename, KeepsTheBaseName) {
  EXPECT_EQ(*SanitizeFilename("a/b\\c.pdf"), "c.pdf");
  EXPECT_EQ(*SanitizeFilename("plain.txt"), "plain.txt");
  EXPECT_FALSE(SanitizeFilename("").ok());
  EXPECT_FALSE(SanitizeFilename("/").ok());
  EXPECT_FALSE(SanitizeFilename("x/.").ok());
  EXPECT_FALSE(SanitizeFilename(std::string(300, 'a')).ok());
}

}  // namespace
}  // namespace rag
