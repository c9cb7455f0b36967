// A guard in front of poppler against decompression bombs (internal to ingest/).
//
// A PDF's streams are compressed (FlateDecode deflates ~1000:1, and filters chain: two
// FlateDecode stages make a megabyte of file a terabyte of content). Poppler decodes content
// streams as it extracts text, with no limit: one 100 KB upload of a zero-filled 200 MB content
// stream kept an ingestion worker busy for seconds, a 100 MB upload of nested streams would keep
// it busy for days. Before poppler sees a PDF we decode every stream it may decode while
// extracting text, counting the bytes and keeping none, and refuse the file once the total
// passes a limit: linear in the decoded size, bounded by the limit, in 64 KB buffers.
//
// Streams are found by their `stream` keyword after a dictionary (not through the cross-
// reference table, which a hostile file may point anywhere; poppler itself reconstructs a
// broken one by the same scan). Skipped: images (/Subtype /Image; text extraction never decodes
// them) and embedded files (/Type /EmbeddedFile). Filters: FlateDecode, LZWDecode,
// ASCII85Decode, ASCIIHexDecode and RunLengthDecode, in chains; a stream with another filter
// (image codecs, Crypt) counts its encoded length. Predictors are not undone (they shrink data
// by at most 1/(columns+1)). Encrypted streams do not inflate and count their encoded length:
// the guard does not cover bombs inside encrypted PDFs (docs/RELIABILITY.md).
#pragma once

#include <cstdint>
#include <string_view>

namespace rag::ingest_internal {

// Decoded bytes allowed in one PDF's streams (content streams, forms, fonts, object streams).
// Real documents use ~30 KB a page (the 63-page Debian New Maintainers' Guide: 1.8 MB), so this
// admits ~17000 such pages; poppler reads 512 MB of content in ~15 s on one core.
inline constexpr uint64_t kMaxPdfDecodedBytes = 512ull << 20;

// The total decoded size of the streams of `pdf` that text extraction may decode, counted up to
// just past `limit` (a result above `limit` means "too much"; counting stops there).
uint64_t PdfDecodedStreamBytes(std::string_view pdf, uint64_t limit = kMaxPdfDecodedBytes);

}  // namespace rag::ingest_internal
