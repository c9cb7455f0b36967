// A strict multipart/form-data parser (RFC 7578 over RFC 2046), for uploads: Pistache has none.
//
// Accepted: the boundary from the Content-Type parameter (token or quoted-string, 1-70
// characters of RFC 2046's bchars, not ending in a space); CRLF line endings; a preamble before
// the first boundary and an epilogue after the final one (both ignored); transport padding
// (spaces/tabs) after a boundary; per part a Content-Disposition of type form-data with a name
// and optionally filename / filename* (RFC 5987, UTF-8 or ISO-8859-1), and an optional
// Content-Type. Other part headers are ignored.
//
// Rejected with InvalidArgument (the message says what is wrong): a missing, malformed or too
// long boundary; no boundary in the body; a missing final boundary; a part without headers or
// without Content-Disposition or name; duplicate headers, parameters or field names; folded
// headers; an empty or unusable filename; more than max_parts parts; part headers over
// max_header_bytes. A Content-Type that is not multipart/form-data gives Unsupported (HTTP 415).
//
// Filenames are reduced to their last path component ('/' and '\' both separate), so
// "../../etc/passwd" becomes "passwd"; what is left must not be empty, "." or "..", nor contain
// control characters.
//
// Cost: one pass over the body with a Boyer-Moore search for the delimiter (linear); part data
// is never copied: MultipartPart::data points into the body given to ParseMultipart.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace rag {

struct MultipartPart {
  std::string name;                     // the form field's name
  std::optional<std::string> filename;  // base name, present only for file fields
  std::string content_type;             // as sent, "" when the part has none
  std::string_view data;                // the part's bytes: a view into the parsed body
};

struct MultipartLimits {
  size_t max_parts = 16;
  size_t max_header_bytes = 8192;  // per part, the header block
  size_t max_filename_bytes = 255;
};

// The boundary of a multipart/form-data Content-Type value. Unsupported when the media type is
// something else; InvalidArgument when the boundary is missing or malformed.
StatusOr<std::string> MultipartBoundary(std::string_view content_type);

// Parses body. The returned views point into body, which must outlive them.
StatusOr<std::vector<MultipartPart>> ParseMultipart(std::string_view content_type,
                                                    std::string_view body,
                                                    const MultipartLimits& limits = {});

// The part whose name is `name`, or nullptr.
const MultipartPart* FindPart(const std::vector<MultipartPart>& parts, std::string_view name);

// The last path component of a client-supplied file name ('/' and '\' separate), or
// InvalidArgument when nothing usable is left.
StatusOr<std::string> SanitizeFilename(std::string_view filename, size_t max_bytes = 255);

}  // namespace rag
