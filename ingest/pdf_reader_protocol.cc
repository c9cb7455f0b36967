#include "ingest/pdf_reader_protocol.h"

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace rag::ingest_internal {
namespace {

void PutU64(std::string* out, uint64_t v) { out->append(reinterpret_cast<const char*>(&v), 8); }
void PutString(std::string* out, std::string_view s) {
  PutU64(out, s.size());
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U64(uint64_t* v) {
    if (data_.size() < 8) return false;
    std::memcpy(v, data_.data(), 8);
    data_.remove_prefix(8);
    return true;
  }
  bool String(std::string* s) {
    uint64_t n;
    if (!U64(&n) || n > data_.size()) return false;
    s->assign(data_.substr(0, n));
    data_.remove_prefix(n);
    return true;
  }
  bool done() const { return data_.empty(); }

 private:
  std::string_view data_;
};

}  // namespace

std::string EncodeReaderAnswer(const StatusOr<ParsedDocument>& result) {
  std::string out;
  if (!result.ok()) {
    out.push_back('E');
    PutU64(&out, static_cast<uint64_t>(result.status().code()));
    PutString(&out, result.status().message());
    return out;
  }
  const ParsedDocument& doc = *result;
  out.push_back('D');
  PutString(&out, doc.title);
  PutString(&out, doc.format);
  PutU64(&out, doc.pages.size());
  for (const PageText& p : doc.pages) {
    PutU64(&out, static_cast<uint64_t>(p.number));
    PutString(&out, p.text);
  }
  PutU64(&out, doc.sections.size());
  for (const SectionStart& s : doc.sections) {
    PutU64(&out, static_cast<uint64_t>(s.page));
    PutU64(&out, s.offset);
    PutString(&out, s.title);
  }
  return out;
}

StatusOr<ParsedDocument> DecodeReaderAnswer(std::string_view data, const std::string& filename) {
  const Status garbled = Internal(filename + ": the PDF reader's answer is garbled");
  if (data.empty()) return garbled;
  const char tag = data.front();
  Reader r(data.substr(1));
  if (tag == 'E') {
    uint64_t code;
    std::string message;
    if (!r.U64(&code) || !r.String(&message) || !r.done() ||
        code > static_cast<uint64_t>(StatusCode::kUnavailable)) {
      return garbled;
    }
    return Status(static_cast<StatusCode>(code), message);
  }
  if (tag != 'D') return garbled;
  ParsedDocument doc;
  uint64_t n;
  if (!r.String(&doc.title) || !r.String(&doc.format) || !r.U64(&n)) return garbled;
  for (uint64_t i = 0; i < n; ++i) {
    PageText p;
    uint64_t number;
    if (!r.U64(&number) || !r.String(&p.text)) return garbled;
    p.number = static_cast<int>(number);
    doc.pages.push_back(std::move(p));
  }
  if (!r.U64(&n)) return garbled;
  for (uint64_t i = 0; i < n; ++i) {
    SectionStart s;
    uint64_t page, offset;
    if (!r.U64(&page) || !r.U64(&offset) || !r.String(&s.title)) return garbled;
    s.page = static_cast<int>(page);
    s.offset = offset;
    doc.sections.push_back(std::move(s));
  }
  if (!r.done()) return garbled;
  return doc;
}

bool WriteReaderAnswer(int fd, const StatusOr<ParsedDocument>& result) {
  const std::string answer = EncodeReaderAnswer(result);
  std::string_view left = answer;
  while (!left.empty()) {
    const ssize_t n = ::write(fd, left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    left.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace rag::ingest_internal
