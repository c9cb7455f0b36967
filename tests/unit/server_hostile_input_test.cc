// Hostile input against the real server on loopback (docs/RELIABILITY.md, "Hostile input"):
// file names that climb out of the data folder, compressed bodies and PDF decompression bombs,
// PDFs with thousands of pages or huge pages, forms drawn without end, deeply nested HTML,
// Markdown and JSON, slow and idle clients, oversized request lines and headers. Each must end
// in a clean 4xx (or a failed ingestion job naming the limit), never a crash, a hang or a 5xx,
// and the server must keep answering; so must clients that never read their responses. Wrong API keys and one key reaching for another
// collection's documents by id are tested in server_access_test.cc (ApiKeysHttpTest); the
// duplicate-upload path across collections is tested here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/json_util.h"
#include "ingest/parser.h"
#include "ingest/pdf_sandbox.h"
#include "server/api_keys.h"
#include "server/assistant.h"
#include "server/http_server.h"
#include "tests/testing/api_error.h"
#include "tests/testing/http_client.h"
#include "tests/testing/pdf_writer.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

using namespace std::chrono_literals;
using testing::Client;
using testing::Do;
using testing::ExpectError;
using testing::FormPart;
using testing::kBoundary;
using testing::Multipart;
using testing::RawRequest;
using testing::Response;

// Random words, so that no two pages look like running headers to the PDF parser.
std::vector<std::string> RandomLines(std::mt19937& rng, int lines, int words) {
  std::vector<std::string> out;
  for (int l = 0; l < lines; ++l) {
    std::string line;
    for (int w = 0; w < words; ++w) {
      if (w) line += ' ';
      for (int c = 0, n = 3 + static_cast<int>(rng() % 6); c < n; ++c) line += static_cast<char>('a' + rng() % 26);
    }
    out.push_back(line);
  }
  return out;
}

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_limits_ = GetPdfReadLimits();
    data_dir_ = parent_.file("data");
    AssistantOptions assistant_options;
    assistant_options.data_dir = data_dir_;
    auto assistant = Assistant::Open(assistant_options);
    ASSERT_TRUE(assistant.ok()) << assistant.status().ToString();
    assistant_ = std::move(*assistant);
    Start(ServerOptions{});
  }
  void TearDown() override {
    server_.reset();
    SetPdfReadLimits(saved_limits_);
  }

  void Start(ServerOptions options) {
    server_.reset();
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    auto server = HttpServer::Start(*assistant_, options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    port_ = server_->port();
  }

  Response Upload(const std::string& filename, const std::string& data,
                  const std::vector<std::string>& headers = {}) {
    std::vector<std::string> all = {testing::MultipartContentType()};
    all.insert(all.end(), headers.begin(), headers.end());
    return Do(port_, "POST", "/v1/documents", Multipart({{"file", filename, data}}), all);
  }

  // Uploads and waits for the job; returns it (state done or failed).
  Json Ingest(const std::string& filename, const std::string& data, double timeout_s = 60) {
    Response r = Upload(filename, data);
    EXPECT_EQ(r.status, 202) << r.body;
    SCOPED_TRACE(filename);
    return testing::WaitForJob(port_, r.json().value("job_id", ""), timeout_s);
  }

  void ExpectHealthy() {
    Response r = Do(port_, "GET", "/healthz");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json().value("status", ""), "ok");
  }

  testing::TempDir parent_;  // holds data/ and nothing else: uploads must not land beside it
  std::string data_dir_;
  std::unique_ptr<Assistant> assistant_;
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  PdfReadLimits saved_limits_;
};

TEST_F(HostileInputTest, FileNamesCannotClimbOutOfTheDataFolder) {
  const struct {
    std::string disposition;  // the filename parameters of Content-Disposition
    std::string stored;       // the name the document gets ("" when refused with 400)
  } cases[] = {
      {"filename=\"../../../../tmp/evil.txt\"", "evil.txt"},
      {"filename=\"..\\\\..\\\\windows\\\\evil.txt\"", "evil.txt"},
      {"filename=\"/etc/cron.d/evil.md\"", "evil.md"},
      {"filename=\"C:\\\\Users\\\\evil.html\"", "evil.html"},
      {"filename=\"a/../../b/../evil.txt\"", "evil.txt"},
      {"filename=\"x.txt\"; filename*=UTF-8''..%2F..%2F..%2Fetc%2Fevil.txt", "evil.txt"},
      {"filename*=UTF-8''%2E%2E%5C%2E%2E%5Cevil.md", "evil.md"},
      {"filename=\"%2e%2e%2fliteral.txt\"", "%2e%2e%2fliteral.txt"},
      {"filename=\"..\"", ""},
      {"filename=\"../\"", ""},
      {"filename=\"evil\r\nX-Injected: 1.txt\"", ""},
      {"filename=\"..\\\\evil\\\\\"", ""},
      {"filename*=UTF-8''evil%00.txt", ""},
      {"filename*=UTF-8''evil%0D%0AX-Injected:%201.txt", ""},
  };
  int n = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.disposition);
    const std::string body = std::string("--") + kBoundary +
                             "\r\nContent-Disposition: form-data; name=\"file\"; " + c.disposition +
                             "\r\n\r\nThe traversal attempt number " + std::to_string(n++) +
                             " about harbours.\r\n--" + kBoundary + "--\r\n";
    Response r = Do(port_, "POST", "/v1/documents", body, {testing::MultipartContentType()});
    if (c.stored.empty()) {
      ExpectError(r, 400);
      continue;
    }
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.json()["document"]["filename"], c.stored);
    // The original comes back under its base name, with a header that cannot be split.
    Response file = Do(port_, "GET", "/v1/documents/" + std::to_string(r.json().value("document_id", 0)) + "/file");
    EXPECT_EQ(file.status, 200);
    EXPECT_EQ(file.header("x-injected"), "");
    EXPECT_EQ(file.header("content-disposition").find('/'), std::string::npos)
        << file.header("content-disposition");
  }
  // Nothing but data/ beside the data folder; under it only rag.db*, vectors and files/<sha256>.
  std::set<std::string> beside;
  for (const auto& e : std::filesystem::directory_iterator(parent_.path())) beside.insert(e.path().filename());
  EXPECT_EQ(beside, std::set<std::string>{"data"});
  for (const auto& e : std::filesystem::recursive_directory_iterator(data_dir_)) {
    const std::string rel = std::filesystem::relative(e.path(), data_dir_).string();
    const bool ok = rel == "files" || rel.rfind("rag.db", 0) == 0 ||
                    (rel.rfind("files/", 0) == 0 && rel.size() == 6 + 64 &&
                     rel.find_first_not_of("0123456789abcdef", 6) == std::string::npos);
    EXPECT_TRUE(ok) << "unexpected path in the data folder: " << rel;
  }
  // The web page's files cannot be escaped either (with a folder of its own too).
  testing::TempDir web;
  std::ofstream(web.file("index.html")) << "<p>page</p>";
  ServerOptions options;
  options.web_dir = web.path();
  Start(options);
  for (const std::string path : {"/../data/rag.db", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd",
                                 "/static/../../../etc/passwd", "/%2E%2E%5C%2E%2E%5Cetc%5Cpasswd",
                                 "//etc/passwd", "/index.html%00.txt"}) {
    Response r = Do(port_, "GET", path);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << path << ": " << r.status << " " << r.body;
  }
  ExpectHealthy();
}

TEST_F(HostileInputTest, CompressedRequestBodiesAreRefusedNotDecoded) {
  const std::string gz = testing::Deflate(Multipart({{"file", "notes.txt", std::string(1 << 20, 'a')}}));
  for (const std::string encoding : {"gzip", "deflate", "br", "gzip, gzip"}) {
    ExpectError(Do(port_, "POST", "/v1/documents", gz, {testing::MultipartContentType(), "Content-Encoding: " + encoding}), 415,
                "Content-Encoding");
    ExpectError(Do(port_, "POST", "/v1/query", gz, {"Content-Type: application/json", "Content-Encoding: " + encoding}),
                415, "Content-Encoding");
  }
  EXPECT_EQ(Upload("plain.txt", "plain text about ferries", {"Content-Encoding: identity"}).status, 202);
  ExpectHealthy();
}

TEST_F(HostileInputTest, PdfDecompressionBombsAreRefusedBeforePopplerReadsThem) {
  PdfReadLimits limits;
  limits.max_decoded_bytes = 16 << 20;
  SetPdfReadLimits(limits);
  const std::string page = testing::TextContent({"A short page about lighthouses."});
  // 64 MB of spaces after the text: ~64 KB of FlateDecode.
  const std::string bomb = testing::PdfOfPages({page + std::string(64 << 20, ' ')}, /*compress=*/true);
  ASSERT_LT(bomb.size(), 200u << 10);
  // Two FlateDecode stages: a 256 MB stream in a few KB.
  testing::PdfWriter w;
  const int font = w.Add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  const int pages = w.Add("");
  const int content = w.AddStream(testing::Deflate(testing::Deflate(page + std::string(256 << 20, ' '))),
                                  "[/FlateDecode /FlateDecode]");
  const int p = w.Add("<< /Type /Page /Parent " + std::to_string(pages) + " 0 R /MediaBox [0 0 612 792] "
                      "/Resources << /Font << /F1 " + std::to_string(font) + " 0 R >> >> /Contents " +
                      std::to_string(content) + " 0 R >>");
  w.Set(pages, "<< /Type /Pages /Kids [" + std::to_string(p) + " 0 R] /Count 1 >>");
  const std::string nested = w.Finish(w.Add("<< /Type /Catalog /Pages " + std::to_string(pages) + " 0 R >>"));
  ASSERT_LT(nested.size(), 64u << 10);

  for (const auto& [name, bytes] : {std::pair{"bomb.pdf", bomb}, std::pair{"nested.pdf", nested}}) {
    SCOPED_TRACE(name);
    const auto t0 = std::chrono::steady_clock::now();
    const Json job = Ingest(name, bytes, 30);
    EXPECT_EQ(job.value("state", ""), "failed") << job.dump();
    EXPECT_NE(job.value("error", "").find("expand to more than 16 MB"), std::string::npos) << job.dump();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
    const Json doc = Do(port_, "GET", "/v1/documents/" + std::to_string(job.value("document_id", 0))).json();
    EXPECT_EQ(doc.value("status", ""), "failed");
  }
  // Within the limit, the same kind of file is read (8 MB of spaces).
  const Json ok = Ingest("fine.pdf", testing::PdfOfPages({page + std::string(8 << 20, ' ')}, true));
  EXPECT_EQ(ok.value("state", ""), "done") << ok.dump();
  ExpectHealthy();
}

TEST_F(HostileInputTest, PdfsWithThousandsOfPagesOrHugePagesStayBounded) {
  std::mt19937 rng(7);
  std::vector<std::string> pages;
  for (int i = 0; i < 3000; ++i) pages.push_back(testing::TextContent(RandomLines(rng, 4, 8)));
  const std::string thousands = testing::PdfOfPages(pages, true);
  const auto t0 = std::chrono::steady_clock::now();
  const Json job = Ingest("thousands.pdf", thousands, 120);
  EXPECT_EQ(job.value("state", ""), "done") << job.dump();
  EXPECT_EQ(job["progress"].value("pages_total", 0), 3000) << job.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 60s);

  PdfReadLimits limits;
  limits.max_pages = 1000;
  SetPdfReadLimits(limits);
  pages.resize(1200);
  pages[0] = testing::TextContent(RandomLines(rng, 4, 8));  // other bytes than the first upload
  const Json over = Ingest("over.pdf", testing::PdfOfPages(pages, true));
  EXPECT_EQ(over.value("state", ""), "failed");
  EXPECT_NE(over.value("error", "").find("has 1200 pages, more than the limit of 1000"), std::string::npos)
      << over.dump();
  SetPdfReadLimits(saved_limits_);

  // Pages far larger than any paper (PDF allows 14400 units; these are a billion).
  for (const std::string box : {"0 0 14400 14400", "0 0 1000000000 1000000000", "-1e9 -1e9 1e9 1e9"}) {
    SCOPED_TRACE(box);
    const Json huge = Ingest("huge" + std::to_string(rng()) + ".pdf",
                             testing::PdfOfPages({testing::TextContent({"A page as large as a field " + box})}, false, box));
    EXPECT_EQ(huge.value("state", ""), "done") << huge.dump();
  }
  // A page tree that claims a billion pages.
  std::string liar = testing::PdfOfPages({testing::TextContent({"One real page."})});
  liar.replace(liar.find("/Count 1 "), 9, "/Count 1000000000 ");
  const Json lie = Ingest("liar.pdf", liar);
  EXPECT_EQ(lie.value("state", ""), "failed") << lie.dump();
  ExpectHealthy();
}

// A page that draws a form (a few words) 20000 times, the form drawing another 20000 times:
// 400 million draws from a 2 KB file. Poppler would run for hours; the reader is stopped at
// the time limit, in its own process, and the server carries on.
TEST_F(HostileInputTest, FormsDrawnWithoutEndAreStoppedAtTheLimits) {
  if (!ingest_internal::PdfChildProcessesAreSafe()) {
    GTEST_SKIP() << "AddressSanitizer build: PDFs are read in the process, without the reader's limits";
  }
  testing::PdfWriter w;
  const int font = w.Add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  int form = w.AddStream(testing::Deflate("BT /F1 12 Tf 72 720 Td (repeated words) Tj ET\n"), "/FlateDecode",
                         "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F1 " +
                             std::to_string(font) + " 0 R >> >>");
  std::string draws;
  for (int i = 0; i < 20000; ++i) draws += "/X Do\n";
  form = w.AddStream(testing::Deflate(draws), "/FlateDecode",
                     "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /XObject << /X " +
                         std::to_string(form) + " 0 R >> >>");
  const int content = w.AddStream(testing::Deflate(draws), "/FlateDecode");
  const int pages = w.Add("");
  const int page = w.Add("<< /Type /Page /Parent " + std::to_string(pages) +
                         " 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X " + std::to_string(form) +
                         " 0 R >> >> /Contents " + std::to_string(content) + " 0 R >>");
  w.Set(pages, "<< /Type /Pages /Kids [" + std::to_string(page) + " 0 R] /Count 1 >>");
  const std::string bomb = w.Finish(w.Add("<< /Type /Catalog /Pages " + std::to_string(pages) + " 0 R >>"));
  ASSERT_LT(bomb.size(), 4096u);

  PdfReadLimits limits;
  limits.max_seconds = 3;
  SetPdfReadLimits(limits);
  const auto t0 = std::chrono::steady_clock::now();
  // Meanwhile the server answers others at once (the reader runs on the ingestion worker).
  const Json job = Ingest("forms.pdf", bomb, 30);
  EXPECT_EQ(job.value("state", ""), "failed") << job.dump();
  EXPECT_NE(job.value("error", "").find("took longer than 3 s"), std::string::npos) << job.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 15s);

  // The memory cap: the same file with time enough, and 64 MB.
  limits.max_seconds = 120;
  limits.max_memory_bytes = 64 << 20;
  SetPdfReadLimits(limits);
  const std::string again = bomb + "% another copy\n";
  const Json job2 = Ingest("forms2.pdf", again, 150);
  EXPECT_EQ(job2.value("state", ""), "failed") << job2.dump();
  EXPECT_NE(job2.value("error", "").find("more than 64 MB of memory"), std::string::npos) << job2.dump();
  ExpectHealthy();
  // A good PDF after them is read as usual.
  const Json good = Ingest("good.pdf", testing::PdfOfPages({testing::TextContent({"The harbour opens at dawn."})}));
  EXPECT_EQ(good.value("state", ""), "done") << good.dump();
}

TEST_F(HostileInputTest, DeeplyNestedDocumentsAndBodiesAreBounded) {
  const int depth = 100000;
  std::string html = "<html><body>";
  for (int i = 0; i < depth; ++i) html += "<div>";
  html += "The innermost paragraph about tides.";
  for (int i = 0; i < depth; ++i) html += "</div>";
  html += "</body></html>";
  auto t0 = std::chrono::steady_clock::now();
  const Json h = Ingest("nested.html", html, 60);
  EXPECT_EQ(h.value("state", ""), "done") << h.dump();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);

  std::string quotes(depth, '>');
  quotes += " Quoted words about tides.\n\n";
  std::string lists;
  for (int i = 0; i < 20000; ++i) lists += std::string(static_cast<size_t>(i % 200) * 2, ' ') + "- item " + std::to_string(i) + "\n";
  std::string emphasis;
  for (int i = 0; i < 50000; ++i) emphasis += "*_[";
  emphasis += "deep";
  t0 = std::chrono::steady_clock::now();
  for (const auto& [name, text] : {std::pair{"quotes.md", quotes}, std::pair{"lists.md", lists},
                                   std::pair{"emphasis.md", emphasis}}) {
    SCOPED_TRACE(name);
    const Json m = Ingest(name, text, 60);
    EXPECT_TRUE(m.value("state", "") == "done" || m.value("state", "") == "failed") << m.dump();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);

  // JSON bodies nested far deeper than any request needs: 400, not a stack overflow.
  const std::string arrays = std::string(200000, '[') + std::string(200000, ']');
  ExpectError(Do(port_, "POST", "/v1/query", arrays, {"Content-Type: application/json"}), 400);
  std::string objects;
  for (int i = 0; i < 60000; ++i) objects += "{\"question\":";
  objects += "\"x\"" + std::string(60000, '}');
  ExpectError(Do(port_, "POST", "/v1/query", objects, {"Content-Type: application/json"}), 400);
  ExpectHealthy();
}

TEST_F(HostileInputTest, SlowClientsDoNotHoldUpOthersAndAreCutOff) {
  ServerOptions options;
  options.header_timeout_s = 3;
  Start(options);
  // 40 clients send a request a byte every 50 ms: headers that would take seconds to arrive.
  const std::string request = RawRequest("GET", "/healthz", "", {"X-Padding: " + std::string(200, 'p')});
  std::vector<std::unique_ptr<Client>> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(std::make_unique<Client>(port_));
  std::atomic<bool> stop{false};
  std::thread dribbler([&] {
    for (size_t at = 0; at < request.size() && !stop; ++at) {
      for (auto& c : slow) c->Send(std::string_view(request).substr(at, 1));
      std::this_thread::sleep_for(50ms);
    }
  });
  // Meanwhile everyone else is answered at once.
  double worst_ms = 0;
  for (int i = 0; i < 30; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Response r = Do(port_, "GET", "/healthz");
    worst_ms = std::max(worst_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    EXPECT_EQ(r.status, 200);
    std::this_thread::sleep_for(30ms);
  }
  EXPECT_LT(worst_ms, 1500) << "a request waited behind the slow clients";
  // Past the header timeout the slow ones are answered 408 and closed.
  const auto t0 = std::chrono::steady_clock::now();
  int cut = 0;
  for (auto& c : slow) {
    std::optional<Response> r = c->Read();
    cut += r && r->status == 408 && c->ClosedByServer();
  }
  stop = true;
  dribbler.join();
  EXPECT_EQ(cut, 40);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 8s);
  // A body dribbled as slowly is cut off too (the body timeout), without blocking others.
  options.body_timeout_s = 2;
  Start(options);
  Client body(port_);
  const std::string upload = Multipart({{"file", "slow.txt", std::string(4096, 's')}});
  ASSERT_TRUE(body.Send(RawRequest("POST", "/v1/documents", "", {testing::MultipartContentType(), "Content-Length: " + std::to_string(upload.size())})));
  for (int i = 0; i < 20; ++i) {
    body.Send(upload.substr(static_cast<size_t>(i), 1));
    EXPECT_EQ(Do(port_, "GET", "/healthz").status, 200);
    std::this_thread::sleep_for(100ms);
  }
  std::optional<Response> r = body.Read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 408);
  ExpectHealthy();
}

// CPU seconds this process (the server runs in it) has used.
double CpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// Clients that ask for a large response and never read it. Pistache's own writer retries a
// write that would block in a loop on the connection's thread (pistache issue 949): before the
// server wrote responses itself (server/response_sender.h), one such client kept a core at 100%
// and a few of them (one per HTTP thread) stopped the server answering anyone.
TEST_F(HostileInputTest, ClientsThatDoNotReadTheirResponsesHoldNoThread) {
  ServerOptions options;
  options.send_stall_timeout_s = 2;
  Start(options);
  // 24 MB that fail to ingest at once (not a PDF), so that no ingestion work runs meanwhile.
  std::string big;
  std::mt19937 rng(3);
  while (big.size() < (24u << 20)) big += RandomLines(rng, 1, 12)[0] + "\n";
  Response up = Upload("big.pdf", big);
  ASSERT_EQ(up.status, 202) << up.body;
  EXPECT_EQ(Ingest("other.txt", "Waits for the first job to end.").value("state", ""), "done");
  const std::string request =
      RawRequest("GET", "/v1/documents/" + std::to_string(up.json().value("document_id", 0)) + "/file", "", {});
  std::vector<int> readers;  // 6 clients for 2 HTTP threads, with tiny receive windows
  for (int i = 0; i < 6; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int small = 4096;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    readers.push_back(fd);
  }
  std::this_thread::sleep_for(300ms);
  const double cpu0 = CpuSeconds();
  double worst_ms = 0;
  for (int i = 0; i < 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(Do(port_, "GET", "/healthz").status, 200);
    worst_ms = std::max(worst_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::this_thread::sleep_for(100ms);
  }
  // Spinning, each of the 2 HTTP threads would burn a core for the ~1.5 s of this loop.
  EXPECT_LT(CpuSeconds() - cpu0, 1.0) << "the server spins on the clients that do not read";
  EXPECT_LT(worst_ms, 1500);
  // After the stall timeout they are disconnected: reading now ends in EOF or a reset, well
  // before 24 MB arrive.
  std::this_thread::sleep_for(3s);
  for (int fd : readers) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[65536];
    size_t total = 0;
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) total += static_cast<size_t>(n);
    EXPECT_TRUE(n == 0 || (n < 0 && errno == ECONNRESET)) << "n=" << n << " errno=" << errno;
    EXPECT_LT(total, big.size());
    ::close(fd);
  }
  // A client that reads gets the whole file, and the server is well.
  Response whole = Do(port_, "GET", "/v1/documents/" + std::to_string(up.json().value("document_id", 0)) + "/file");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(whole.body.size(), big.size());
  ExpectHealthy();
}

TEST_F(HostileInputTest, ManyIdleConnectionsDoNotStopTheServer) {
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const int n = static_cast<int>(std::min<rlim_t>(files.rlim_cur / 3, 600));
  std::vector<std::unique_ptr<Client>> idle;
  for (int i = 0; i < n; ++i) {
    idle.push_back(std::make_unique<Client>(port_));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Do(port_, "GET", "/healthz").status, 200);
  idle.clear();
  ExpectHealthy();
}

TEST_F(HostileInputTest, OversizedRequestLinesAndHeadersGet431) {
  // Over 64 KB of request line, of one header, of many headers: 431 and the connection closed.
  const std::vector<std::string> heads = {
      "GET /v1/documents?collection=" + std::string(70 << 10, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: " + std::string(70 << 10, 'c') + "\r\n\r\n",
      [] {
        std::string s = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
        for (int i = 0; i < 8000; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
        return s + "\r\n";
      }(),
  };
  for (const std::string& head : heads) {
    Client c(port_);
    ASSERT_TRUE(c.Send(head));
    std::optional<Response> r = c.Read();
    ASSERT_TRUE(r);
    ExpectError(*r, 431);
    EXPECT_EQ(r->json()["error"].value("code", ""), "headers_too_large");
    EXPECT_TRUE(c.ClosedByServer());
  }
  // Many small headers within the limit are fine.
  std::vector<std::string> many;
  for (int i = 0; i < 500; ++i) many.push_back("X-Many-" + std::to_string(i) + ": value");
  EXPECT_EQ(Do(port_, "GET", "/healthz", "", many).status, 200);
  ExpectHealthy();
}

// A key that uploads the very bytes another collection holds gets a document of its own: the
// duplicate check is per collection, so it never hands back (or reveals the id of) the other
// collection's document; and the failed-upload retry path stays inside the collection too.
TEST(HostileKeysTest, DuplicateUploadsNeverReachAnotherCollection) {
  testing::TempDir data;
  AssistantOptions assistant_options;
  assistant_options.data_dir = data.path();
  auto assistant = Assistant::Open(assistant_options);
  ASSERT_TRUE(assistant.ok());
  auto keys = ApiKeys::Parse(R"({"keys": [
      {"name": "alice", "key": "alice-0123456789abcdef", "collections": ["hr"]},
      {"name": "bob", "key": "bob-0123456789abcdef-xyz", "collections": ["eng"]}]})");
  ASSERT_TRUE(keys.ok());
  ServerOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.api_keys = *keys;
  auto server = HttpServer::Start(**assistant, options);
  ASSERT_TRUE(server.ok());
  const int port = (*server)->port();
  auto upload = [&](const std::string& key, const std::string& collection, const std::string& bytes) {
    return Do(port, "POST", "/v1/documents",
              Multipart({{"file", "same.txt", bytes}, {"collection", std::nullopt, collection}}),
              {testing::MultipartContentType(), "Authorization: Bearer " + key});
  };
  const std::string bytes = "Salaries are reviewed every spring by the harbour board.";
  Response a = upload("alice-0123456789abcdef", "hr", bytes);
  ASSERT_EQ(a.status, 202) << a.body;
  Response b = upload("bob-0123456789abcdef-xyz", "eng", bytes);
  ASSERT_EQ(b.status, 202) << b.body;
  EXPECT_FALSE(b.json().value("duplicate", true));
  EXPECT_NE(b.json().value("document_id", 0), a.json().value("document_id", 0));
  EXPECT_EQ(b.json()["document"].value("collection", ""), "eng");
  // The same bytes into alice's collection with bob's key: refused before anything is looked up.
  ExpectError(upload("bob-0123456789abcdef-xyz", "hr", bytes), 403);
  // A wrong key, and a key with its last character changed: 401.
  ExpectError(upload("bob-0123456789abcdef-xyZ", "eng", bytes), 401);
  ExpectError(upload("", "eng", bytes), 401);
}

}  // namespace
}  // namespace rag
