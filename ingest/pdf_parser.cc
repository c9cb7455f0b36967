// ParsePdf: a PDF -> one PageText per page (empty pages included, so pages[i] is page i + 1),
// through poppler-cpp.
//
// Reading order: we take poppler's word list (page::text_list), which comes in the order of
// poppler's non-raw, non-physical layout: it finds columns and blocks and reads them one after
// the other. Tried on tests/data/ingest/two_columns.pdf, physical_layout put both columns side
// by side on each output line (the sentences of the two columns interleaved), and
// raw_order_layout follows the content stream, which is right only when the producer wrote it
// in reading order. The word list also keeps what page::text() throws away: each word's box
// (for paragraph gaps, headings, running headers and footers) and the hyphen at a line end
// (page::text() removes it even from "well-known"). See pdf_layout.h for the text heuristics.
//
// Title: the metadata Title unless it is a placeholder or a file name, else the largest-font
// lines of the first page with text (GuessTitle), which is also its first line when all its
// text is in one size.
//
// Poppler's diagnostics go to our log at debug level, not to stderr.
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <algorithm>
#include <exception>
#include <climits>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "common/logging.h"
#include "common/utf8.h"
#include "ingest/parser.h"
#include "ingest/parser_guard.h"
#include "ingest/pdf_layout.h"
#include "ingest/pdf_streams.h"
#include "ingest/text_util.h"

namespace rag {
namespace {

using ingest_internal::PdfPageLines;
using ingest_internal::PdfWord;

void LogPopplerMessage(const std::string& message, void* /*closure*/) {
  RAG_LOG(DEBUG) << "poppler: " << message;
}

// Installs the handler once per process; poppler keeps it in a global.
void RoutePopplerMessagesToLog() {
  static std::once_flag once;
  std::call_once(once, [] { poppler::set_debug_error_function(LogPopplerMessage, nullptr); });
}

std::string ToUtf8(const poppler::ustring& s) {
  const poppler::byte_array bytes = s.to_utf8();
  return std::string(bytes.begin(), bytes.end());
}

// The metadata title, or "" when it is missing or is only a file name or a placeholder, as
// some producers write ("Microsoft Word - report.docx", "untitled").
std::string MetadataTitle(const poppler::document& doc) {
  std::string title =
      ingest_internal::MakeTitle(ReplaceInvalidUtf8Bytes(ToUtf8(doc.info_key("Title"))));
  std::string lower = title;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.starts_with("microsoft word - ")) {
    title = title.substr(17);
    lower = lower.substr(17);
  }
  if (lower == "untitled" || lower == "title" || lower == "no title") return "";
  for (std::string_view ext : {".doc", ".docx", ".pdf", ".tex", ".dvi", ".ps", ".rtf", ".odt",
                               ".indd", ".txt", ".html", ".md"}) {
    if (lower.ends_with(ext)) return "";
  }
  return title;
}

// Maps a word box from page space (x right, y down) into the reading frame of text drawn with
// `rotation` quarter turns clockwise, so that lines run along x and follow each other along y.
void ToReadingFrame(int rotation, const poppler::rectf& box, PdfWord* w) {
  const double x0 = box.left(), y0 = box.top(), x1 = box.right(), y1 = box.bottom();
  switch (rotation) {
    case 1:
      w->left = y0;
      w->right = y1;
      w->top = -x1;
      w->bottom = -x0;
      break;
    case 2:
      w->left = -x1;
      w->right = -x0;
      w->top = -y1;
      w->bottom = -y0;
      break;
    case 3:
      w->left = -y1;
      w->right = -y0;
      w->top = x0;
      w->bottom = x1;
      break;
    default:
      w->left = x0;
      w->right = x1;
      w->top = y0;
      w->bottom = y1;
      break;
  }
}

// The words of one page in reading order. Text at another rotation than most of the page's
// (margin stamps such as arXiv identifiers, rotated table headers) is left out.
std::vector<PdfWord> PageWords(const poppler::page& page) {
  // Font names cost about a third more time in poppler; they tell code (monospace) apart.
  const std::vector<poppler::text_box> boxes =
      page.text_list(poppler::page::text_list_include_font);
  int count[4] = {0, 0, 0, 0};
  for (const poppler::text_box& b : boxes) ++count[std::clamp(b.rotation(), 0, 3)];
  const int rotation = static_cast<int>(std::max_element(count, count + 4) - count);
  std::vector<PdfWord> words;
  words.reserve(boxes.size());
  for (const poppler::text_box& b : boxes) {
    if (std::clamp(b.rotation(), 0, 3) != rotation) continue;
    PdfWord w;
    w.text = ingest_internal::NormalizePdfWordText(ToUtf8(b.text()));
    w.space_after = b.has_space_after();
    w.monospace = b.has_font_info() && ingest_internal::IsMonospaceFontName(b.get_font_name());
    ToReadingFrame(rotation, b.bbox(), &w);
    words.push_back(std::move(w));
  }
  return words;
}

// Words -> lines of pages [begin, end) of `doc` into (*lines)[begin, end).
void ExtractRange(const poppler::document& doc, int begin, int end, std::vector<PdfPageLines>* lines) {
  for (int i = begin; i < end; ++i) {
    const std::unique_ptr<poppler::page> page(doc.create_page(i));
    if (page) (*lines)[static_cast<size_t>(i)] = ingest_internal::GroupLines(PageWords(*page));
  }
}

// Text extraction (poppler's word list) is nearly all of the time of a PDF and is independent
// per page, so long PDFs are split into contiguous page ranges over the cores. Each thread
// loads its own poppler::document from the same bytes (a document is not safe to share
// between threads; separate documents are). Short PDFs stay on the calling thread.
Status ExtractPageLines(const poppler::document& doc, std::string_view bytes,
                        const std::string& filename, std::vector<PdfPageLines>* lines) {
  constexpr int kMinPagesPerThread = 8;
  constexpr int kMaxThreads = 8;
  const int page_count = static_cast<int>(lines->size());
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::clamp(std::min(cores, page_count / kMinPagesPerThread), 1, kMaxThreads);
  if (threads == 1) {
    ExtractRange(doc, 0, page_count, lines);
    return Status::Ok();
  }
  std::vector<std::thread> workers;
  std::vector<Status> results(static_cast<size_t>(threads));
  for (int t = 1; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const int begin = page_count * t / threads, end = page_count * (t + 1) / threads;
      try {
        std::unique_ptr<poppler::document> own(
            poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
        if (!own || own->is_locked()) {
          results[t] = InvalidArgument(filename + ": corrupt or unreadable PDF");
          return;
        }
        ExtractRange(*own, begin, end, lines);
      } catch (const std::exception& e) {
        results[t] = InvalidArgument(filename + ": corrupt or unreadable PDF (" + e.what() + ")");
      } catch (...) {
        results[t] = InvalidArgument(filename + ": corrupt or unreadable PDF");
      }
    });
  }
  // The calling thread takes the first range; its exceptions reach CatchParserExceptions after
  // the workers are joined (a joinable std::thread must not be destroyed).
  std::exception_ptr first_error;
  try {
    ExtractRange(doc, 0, page_count / threads, lines);
  } catch (...) {
    first_error = std::current_exception();
  }
  for (auto& w : workers) w.join();
  if (first_error) std::rethrow_exception(first_error);
  for (const Status& st : results) RAG_RETURN_IF_ERROR(st);
  return Status::Ok();
}

bool HasPdfHeader(std::string_view bytes) {
  // The header may follow some junk, within the first 1024 bytes (as Acrobat accepts).
  return bytes.substr(0, 1024).find("%PDF-") != std::string_view::npos;
}

StatusOr<ParsedDocument> ParsePdfUnguarded(std::string_view bytes, const std::string& filename) {
  if (!HasPdfHeader(bytes)) return InvalidArgument(filename + ": not a PDF file (no %PDF header)");
  if (bytes.size() > static_cast<size_t>(INT_MAX)) {
    return ResourceExhausted(filename + ": PDF larger than 2 GiB");
  }
  const PdfReadLimits limits = GetPdfReadLimits();
  // Decompression bombs are refused before poppler decodes anything (pdf_streams.h).
  if (const uint64_t decoded = ingest_internal::PdfDecodedStreamBytes(bytes, limits.max_decoded_bytes);
      decoded > limits.max_decoded_bytes) {
    return ResourceExhausted(filename + ": the PDF's compressed streams expand to more than " +
                             std::to_string(limits.max_decoded_bytes >> 20) +
                             " MB (a decompression bomb?); refused");
  }
  RoutePopplerMessagesToLog();
  // load_from_raw_data reads `bytes` in place: they outlive `doc`.
  std::unique_ptr<poppler::document> doc(
      poppler::document::load_from_raw_data(bytes.data(), static_cast<int>(bytes.size())));
  if (!doc) return InvalidArgument(filename + ": corrupt or unreadable PDF");
  if (doc->is_locked()) {
    return InvalidArgument(filename + ": the PDF is encrypted (password protected)");
  }
  const int page_count = doc->pages();
  if (page_count <= 0) return InvalidArgument(filename + ": corrupt or unreadable PDF (no pages)");
  if (page_count > limits.max_pages) {
    return ResourceExhausted(filename + ": the PDF has " + std::to_string(page_count) +
                             " pages, more than the limit of " + std::to_string(limits.max_pages));
  }

  std::vector<PdfPageLines> lines(static_cast<size_t>(page_count));
  RAG_RETURN_IF_ERROR(ExtractPageLines(*doc, bytes, filename, &lines));
  ingest_internal::RemoveRunningHeadersAndFooters(&lines);
  const auto hyphenated = ingest_internal::CollectHyphenatedWords(lines);

  ParsedDocument parsed;
  parsed.format = "pdf";
  parsed.pages.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    parsed.pages.push_back(
        PageText{static_cast<int>(i) + 1, ingest_internal::AssemblePageText(lines[i], hyphenated)});
  }
  if (ingest_internal::HasNoText(parsed)) {
    return InvalidArgument(filename +
                           ": the PDF has no extractable text (scanned pages need OCR first)");
  }
  parsed.title = MetadataTitle(*doc);
  if (parsed.title.empty()) parsed.title = ingest_internal::GuessTitle(lines);
  if (parsed.title.empty()) parsed.title = ingest_internal::FirstLineTitle(parsed);
  if (parsed.title.empty()) parsed.title = ingest_internal::FileNameTitle(filename);
  return parsed;
}

}  // namespace

StatusOr<ParsedDocument> ParsePdf(std::string_view bytes, const std::string& filename) {
  return ingest_internal::CatchParserExceptions(filename,
                                                [&] { return ParsePdfUnguarded(bytes, filename); });
}

}  // namespace rag
