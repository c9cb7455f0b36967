// Minimal PDFs written from code, for tests of what hostile or extreme PDFs do to ingestion:
// many pages, huge pages, compressed and nested compressed streams, form XObjects drawn many
// times. The files are valid (objects, cross-reference table, trailer); text is Helvetica.
#pragma once

#include <zlib.h>

#include <cstdio>
#include <string>
#include <vector>

namespace rag::testing {

// zlib's compress at level 9 (the FlateDecode format).
inline std::string Deflate(const std::string& data) {
  uLongf size = compressBound(static_cast<uLong>(data.size()));
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size,
            reinterpret_cast<const Bytef*>(data.data()), static_cast<uLong>(data.size()), 9);
  out.resize(size);
  return out;
}

class PdfWriter {
 public:
  // Adds an object (its body, without "N 0 obj"); returns its number.
  int Add(const std::string& body) {
    objects_.push_back(body);
    return static_cast<int>(objects_.size());
  }
  void Set(int number, const std::string& body) { objects_[number - 1] = body; }
  // A stream object; `filters` is the /Filter value ("" for none), `extra` more dictionary keys.
  int AddStream(const std::string& data, const std::string& filters = "",
                const std::string& extra = "") {
    std::string dict = "<< /Length " + std::to_string(data.size());
    if (!filters.empty()) dict += " /Filter " + filters;
    return Add(dict + " " + extra + " >>\nstream\n" + data + "\nendstream");
  }
  // The file, with `root` as the catalog.
  std::string Finish(int root) const {
    std::string out = "%PDF-1.4\n";
    std::vector<size_t> offsets;
    for (size_t i = 0; i < objects_.size(); ++i) {
      offsets.push_back(out.size());
      out += std::to_string(i + 1) + " 0 obj\n" + objects_[i] + "\nendobj\n";
    }
    const size_t xref = out.size();
    out += "xref\n0 " + std::to_string(objects_.size() + 1) + "\n0000000000 65535 f \n";
    for (size_t o : offsets) {
      char line[32];
      std::snprintf(line, sizeof(line), "%010zu 00000 n \n", o);
      out += line;
    }
    out += "trailer\n<< /Size " + std::to_string(objects_.size() + 1) + " /Root " +
           std::to_string(root) + " 0 R >>\nstartxref\n" + std::to_string(xref) + "\n%%EOF\n";
    return out;
  }

 private:
  std::vector<std::string> objects_;
};

// A content stream that writes `lines` top down (ASCII without parentheses or backslashes).
inline std::string TextContent(const std::vector<std::string>& lines) {
  std::string s = "BT /F1 10 Tf 40 760 Td 12 TL\n";
  for (const std::string& l : lines) s += "(" + l + ") '\n";
  return s + "ET\n";
}

// A PDF with one page per content stream (compressed when `compress`), each page `media_box`.
inline std::string PdfOfPages(const std::vector<std::string>& contents, bool compress = false,
                              const std::string& media_box = "0 0 612 792") {
  PdfWriter w;
  const int font = w.Add("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  const int pages = w.Add("");
  std::string kids;
  for (const std::string& c : contents) {
    const int stream = compress ? w.AddStream(Deflate(c), "/FlateDecode") : w.AddStream(c);
    const int page = w.Add("<< /Type /Page /Parent " + std::to_string(pages) +
                           " 0 R /MediaBox [" + media_box + "] /Resources << /Font << /F1 " +
                           std::to_string(font) + " 0 R >> >> /Contents " +
                           std::to_string(stream) + " 0 R >>");
    kids += std::to_string(page) + " 0 R ";
  }
  w.Set(pages, "<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(contents.size()) +
                   " >>");
  return w.Finish(w.Add("<< /Type /Catalog /Pages " + std::to_string(pages) + " 0 R >>"));
}

}  // namespace rag::testing
