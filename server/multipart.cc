#include "server/multipart.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <utility>

#include "common/strings.h"

namespace rag {
namespace {


std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view TrimWhitespace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool IsControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

// RFC 7230 tchar.
bool IsTokenChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// RFC 2046 bchars (without the space, which is allowed but not last).
bool IsBoundaryChar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("'()+_,-./:=? ").find(c) != std::string_view::npos;
}

// A value as it may appear in an error message: quoted, at most 60 bytes, control bytes shown
// as '?'. Client input must not break log lines or error JSON.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 60; ++i) out += IsControl(s[i]) ? '?' : s[i];
  if (s.size() > 60) out += "...";
  out += '"';
  return out;
}

struct Param {
  std::string name;  // lower case
  std::string value;
};

// Parses the `; name=value` list that follows the first item of a header value. Values are
// tokens or quoted-strings; inside quotes, `\"` and `\\` are escapes and any other backslash is
// literal (browsers send Windows paths unescaped). Duplicate names are an error.
StatusOr<std::vector<Param>> ParseParams(std::string_view s, std::string_view what) {
  std::vector<Param> params;
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  for (;;) {
    skip_ws();
    if (i == s.size()) return params;
    if (s[i] != ';') return InvalidArgument(std::string(what) + ": expected ';' before parameter");
    ++i;
    skip_ws();
    if (i == s.size()) return params;  // a trailing ';' is harmless
    const size_t name_start = i;
    while (i < s.size() && IsTokenChar(s[i])) ++i;
    if (i == name_start) return InvalidArgument(std::string(what) + ": malformed parameter");
    Param param{Lower(s.substr(name_start, i - name_start)), ""};
    skip_ws();
    if (i == s.size() || s[i] != '=') {
      return InvalidArgument(std::string(what) + ": parameter " + Quote(param.name) +
                             " has no value");
    }
    ++i;
    skip_ws();
    if (i < s.size() && s[i] == '"') {
      ++i;
      bool closed = false;
      while (i < s.size()) {
        const char c = s[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < s.size() && (s[i] == '"' || s[i] == '\\')) {
          param.value += s[i++];
        } else {
          param.value += c;
        }
      }
      if (!closed) {
        return InvalidArgument(std::string(what) + ": unterminated quoted value of parameter " +
                               Quote(param.name));
      }
    } else {
      const size_t value_start = i;
      while (i < s.size() && IsTokenChar(s[i])) ++i;
      if (i == value_start) {
        return InvalidArgument(std::string(what) + ": malformed value of parameter " +
                               Quote(param.name));
      }
      param.value = std::string(s.substr(value_start, i - value_start));
    }
    for (const Param& p : params) {
      if (p.name == param.name) {
        return InvalidArgument(std::string(what) + ": duplicate parameter " + Quote(param.name));
      }
    }
    params.push_back(std::move(param));
  }
}

const Param* FindParam(const std::vector<Param>& params, std::string_view name) {
  for (const Param& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 5987 ext-value: charset'[language]'pct-encoded, charset UTF-8 or ISO-8859-1.
StatusOr<std::string> DecodeExtValue(std::string_view v) {
  const size_t q1 = v.find('\'');
  const size_t q2 = q1 == std::string_view::npos ? q1 : v.find('\'', q1 + 1);
  if (q2 == std::string_view::npos) {
    return InvalidArgument("filename*: expected charset'language'value");
  }
  const std::string_view charset = v.substr(0, q1);
  const bool latin1 = EqualsIgnoreCase(charset, "iso-8859-1");
  if (!latin1 && !EqualsIgnoreCase(charset, "utf-8")) {
    return InvalidArgument("filename*: unsupported charset " + Quote(charset));
  }
  std::string out;
  for (size_t i = q2 + 1; i < v.size(); ++i) {
    unsigned char byte = static_cast<unsigned char>(v[i]);
    if (v[i] == '%') {
      const int hi = i + 2 < v.size() ? HexValue(v[i + 1]) : -1;
      const int lo = i + 2 < v.size() ? HexValue(v[i + 2]) : -1;
      if (hi < 0 || lo < 0) return InvalidArgument("filename*: malformed percent-encoding");
      byte = static_cast<unsigned char>(hi * 16 + lo);
      i += 2;
    }
    if (latin1 && byte >= 0x80) {
      out += static_cast<char>(0xc0 | (byte >> 6));
      out += static_cast<char>(0x80 | (byte & 0x3f));
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out;
}

// Fills part from its header block (the lines before the empty line, without it).
Status ParsePartHeaders(std::string_view block, size_t max_filename_bytes, MultipartPart* part) {
  bool have_disposition = false, have_type = false;
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
    if (line.empty()) return InvalidArgument("empty line inside part headers");
    if (line.front() == ' ' || line.front() == '\t') {
      return InvalidArgument("folded part header lines are not supported");
    }
    for (char c : line) {
      if (IsControl(c) && c != '\t') return InvalidArgument("control character in a part header");
    }
    const size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    if (colon == std::string_view::npos || name.empty() ||
        !std::all_of(name.begin(), name.end(), IsTokenChar)) {
      return InvalidArgument("malformed part header " + Quote(line));
    }
    const std::string_view value = TrimWhitespace(line.substr(colon + 1));
    if (EqualsIgnoreCase(name, "content-disposition")) {
      if (have_disposition) return InvalidArgument("duplicate Content-Disposition in a part");
      have_disposition = true;
      const size_t semi = value.find(';');
      const std::string_view type = TrimWhitespace(value.substr(0, semi));
      if (!EqualsIgnoreCase(type, "form-data")) {
        return InvalidArgument("Content-Disposition must be form-data, got " + Quote(type));
      }
      RAG_ASSIGN_OR_RETURN(
          std::vector<Param> params,
          ParseParams(semi == std::string_view::npos ? std::string_view() : value.substr(semi),
                      "Content-Disposition"));
      const Param* field = FindParam(params, "name");
      if (field == nullptr || field->value.empty()) {
        return InvalidArgument("Content-Disposition has no field name");
      }
      part->name = field->value;
      const Param* ext = FindParam(params, "filename*");
      const Param* plain = FindParam(params, "filename");
      if (ext != nullptr || plain != nullptr) {
        std::string raw;
        if (ext != nullptr) {
          RAG_ASSIGN_OR_RETURN(raw, DecodeExtValue(ext->value));
        } else {
          raw = plain->value;
        }
        RAG_ASSIGN_OR_RETURN(std::string base, SanitizeFilename(raw, max_filename_bytes));
        part->filename = std::move(base);
      }
    } else if (EqualsIgnoreCase(name, "content-type")) {
      if (have_type) return InvalidArgument("duplicate Content-Type in a part");
      have_type = true;
      part->content_type = std::string(value);
    }
    // Other headers (Content-Transfer-Encoding, ...) carry nothing we use.
  }
  if (!have_disposition) return InvalidArgument("part has no Content-Disposition header");
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> SanitizeFilename(std::string_view filename, size_t max_bytes) {
  if (filename.empty()) return InvalidArgument("empty filename");
  const size_t slash = filename.find_last_of("/\\");
  const std::string_view base =
      slash == std::string_view::npos ? filename : filename.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") {
    return InvalidArgument("filename " + Quote(filename) + " names no file");
  }
  for (char c : base) {
    if (IsControl(c)) {
      return InvalidArgument("filename " + Quote(filename) + " has control characters");
    }
  }
  if (base.size() > max_bytes) {
    return InvalidArgument("filename is longer than " + std::to_string(max_bytes) + " bytes");
  }
  return std::string(base);
}

StatusOr<std::string> MultipartBoundary(std::string_view content_type) {
  const size_t semi = content_type.find(';');
  const std::string_view media = TrimWhitespace(content_type.substr(0, semi));
  if (media.empty()) return Unsupported("missing Content-Type; expected multipart/form-data");
  if (!EqualsIgnoreCase(media, "multipart/form-data")) {
    return Unsupported("Content-Type must be multipart/form-data, got " + Quote(media));
  }
  RAG_ASSIGN_OR_RETURN(
      std::vector<Param> params,
      ParseParams(semi == std::string_view::npos ? std::string_view() : content_type.substr(semi),
                  "Content-Type"));
  const Param* boundary = FindParam(params, "boundary");
  if (boundary == nullptr) return InvalidArgument("multipart Content-Type has no boundary");
  const std::string& b = boundary->value;
  if (b.empty() || b.size() > 70) {
    return InvalidArgument("multipart boundary must have 1 to 70 characters");
  }
  if (!std::all_of(b.begin(), b.end(), IsBoundaryChar) || b.back() == ' ') {
    return InvalidArgument("multipart boundary " + Quote(b) + " has characters RFC 2046 forbids");
  }
  return b;
}

StatusOr<std::vector<MultipartPart>> ParseMultipart(std::string_view content_type,
                                                    std::string_view body,
                                                    const MultipartLimits& limits) {
  RAG_ASSIGN_OR_RETURN(std::string boundary, MultipartBoundary(content_type));
  // Every boundary but a leading one starts a line: CRLF "--" boundary.
  const std::string delimiter = "\r\n--" + boundary;
  const std::boyer_moore_searcher searcher(delimiter.begin(), delimiter.end());
  constexpr size_t npos = std::string_view::npos;
  auto find_delimiter = [&](size_t from) -> size_t {
    const auto match = searcher(body.begin() + from, body.end());
    return match.first == body.end() ? npos : static_cast<size_t>(match.first - body.begin());
  };

  size_t pos;
  const std::string_view first_line = std::string_view(delimiter).substr(2);
  if (body.substr(0, first_line.size()) == first_line) {
    pos = first_line.size();
  } else {
    const size_t found = find_delimiter(0);
    if (found == npos) {
      return InvalidArgument("multipart body has no boundary line " + Quote(first_line) +
                             " (lines must end with CRLF)");
    }
    pos = found + delimiter.size();  // what came before is the preamble
  }

  std::vector<MultipartPart> parts;
  for (;;) {
    // pos is just after a boundary: "--" closes the body (the epilogue is ignored), otherwise
    // optional padding and CRLF open a part.
    if (body.substr(pos, 2) == "--") return parts;
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (pos >= body.size()) return InvalidArgument("multipart body has no final boundary");
    if (body.substr(pos, 2) != "\r\n") {
      return InvalidArgument("malformed multipart boundary line (expected CRLF after it)");
    }
    pos += 2;
    const std::string part_label = "multipart part " + std::to_string(parts.size() + 1);
    if (parts.size() == limits.max_parts) {
      return InvalidArgument("multipart body has more than " + std::to_string(limits.max_parts) +
                             " parts");
    }
    if (body.substr(pos, 2) == "\r\n") {
      return InvalidArgument(part_label + " has no headers (Content-Disposition is required)");
    }
    const std::string_view window = body.substr(pos, limits.max_header_bytes + 4);
    const size_t header_end = window.find("\r\n\r\n");
    if (header_end == npos) {
      if (window.size() == limits.max_header_bytes + 4) {
        return InvalidArgument(part_label + ": headers longer than " +
                               std::to_string(limits.max_header_bytes) + " bytes");
      }
      return InvalidArgument(part_label + ": headers not ended by an empty line");
    }
    MultipartPart part;
    Status st = ParsePartHeaders(window.substr(0, header_end), limits.max_filename_bytes, &part);
    if (!st.ok()) return st.WithPrefix(part_label);
    for (const MultipartPart& other : parts) {
      if (other.name == part.name) {
        return InvalidArgument("duplicate multipart field " + Quote(part.name));
      }
    }
    const size_t data_start = pos + header_end + 4;
    const size_t next = find_delimiter(data_start);
    if (next == npos) return InvalidArgument("multipart body has no final boundary");
    part.data = body.substr(data_start, next - data_start);
    parts.push_back(std::move(part));
    pos = next + delimiter.size();
  }
}

const MultipartPart* FindPart(const std::vector<MultipartPart>& parts, std::string_view name) {
  for (const MultipartPart& part : parts) {
    if (part.name == name) return &part;
  }
  return nullptr;
}

}  // namespace rag
