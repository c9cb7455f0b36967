#include "ingest/pdf_streams.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace rag::ingest_internal {
namespace {

constexpr size_t kBuffer = 64 * 1024;
constexpr size_t kMaxDictBytes = 64 * 1024;  // how far back a stream's dictionary may start
constexpr size_t kMaxStages = 8;             // filters in one chain we follow

bool IsWhite(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\0'; }
bool IsDelimiter(char c) {
  return IsWhite(c) || c == '/' || c == '<' || c == '>' || c == '[' || c == ']' || c == '(' ||
         c == ')' || c == '{' || c == '}' || c == '%';
}

// Receives decoded bytes. Put returns false to stop everything (the limit was passed).
class Sink {
 public:
  virtual ~Sink() = default;
  virtual bool Put(const uint8_t* data, size_t n) = 0;
};

class Counter : public Sink {
 public:
  Counter(uint64_t* total, uint64_t limit) : total_(total), limit_(limit) {}
  bool Put(const uint8_t*, size_t n) override {
    *total_ += n;
    return *total_ <= limit_;
  }

 private:
  uint64_t* total_;
  uint64_t limit_;
};

// One filter of a chain: decodes what it is fed into the next sink, in kBuffer pieces. After its
// end of data (or an error, where poppler stops too) it ignores further input.
class Stage : public Sink {
 public:
  explicit Stage(Sink* next) : next_(next) { out_.reserve(kBuffer); }

 protected:
  // Appends a byte to the output, flushing full buffers; false to stop.
  bool Out(uint8_t b) {
    out_.push_back(b);
    return out_.size() < kBuffer || Flush();
  }
  bool Flush() {
    if (out_.empty()) return true;
    const bool go_on = next_->Put(out_.data(), out_.size());
    out_.clear();
    return go_on;
  }
  Sink* next_;
  std::vector<uint8_t> out_;
  bool ended_ = false;
};

class FlateStage : public Stage {
 public:
  explicit FlateStage(Sink* next) : Stage(next) {
    ok_ = inflateInit(&z_) == Z_OK;
    ended_ = !ok_;
    buffer_.resize(kBuffer);
  }
  ~FlateStage() override {
    if (ok_) inflateEnd(&z_);
  }
  bool Put(const uint8_t* data, size_t n) override {
    if (ended_) return true;
    z_.next_in = const_cast<Bytef*>(data);
    z_.avail_in = static_cast<uInt>(n);
    for (;;) {
      z_.next_out = buffer_.data();
      z_.avail_out = static_cast<uInt>(buffer_.size());
      const int rc = inflate(&z_, Z_NO_FLUSH);
      const size_t got = buffer_.size() - z_.avail_out;
      if (got > 0 && !next_->Put(buffer_.data(), got)) return false;
      if (rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR)) {
        ended_ = true;
        return true;
      }
      if (z_.avail_in == 0 && z_.avail_out > 0) return true;  // wants more input
      if (rc == Z_BUF_ERROR && got == 0) return true;
    }
  }
 private:
  z_stream z_{};
  bool ok_ = false;
  std::vector<uint8_t> buffer_;
};

class HexStage : public Stage {
 public:
  using Stage::Stage;
  bool Put(const uint8_t* data, size_t n) override {
    for (size_t i = 0; i < n && !ended_; ++i) {
      const char c = static_cast<char>(data[i]);
      int v;
      if (c >= '0' && c <= '9') v = c - '0';
      else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
      else if (c == '>') { ended_ = true; break; }
      else continue;
      if (high_ < 0) {
        high_ = v;
      } else {
        if (!Out(static_cast<uint8_t>(high_ * 16 + v))) return false;
        high_ = -1;
      }
    }
    return Flush();
  }

 private:
  int high_ = -1;
};

class Ascii85Stage : public Stage {
 public:
  using Stage::Stage;
  bool Put(const uint8_t* data, size_t n) override {
    for (size_t i = 0; i < n && !ended_; ++i) {
      const char c = static_cast<char>(data[i]);
      if (c == '~') {  // "~>": the end; a partial group gives count - 1 bytes
        if (count_ > 1) {
          for (int k = count_; k < 5; ++k) group_ = group_ * 85 + 84;
          for (int k = 0; k < count_ - 1; ++k) {
            if (!Out(static_cast<uint8_t>(group_ >> (24 - 8 * k)))) return false;
          }
        }
        ended_ = true;
      } else if (c == 'z' && count_ == 0) {
        for (int k = 0; k < 4; ++k) {
          if (!Out(0)) return false;
        }
      } else if (c >= '!' && c <= 'u') {
        group_ = group_ * 85 + static_cast<uint32_t>(c - '!');
        if (++count_ == 5) {
          for (int k = 0; k < 4; ++k) {
            if (!Out(static_cast<uint8_t>(group_ >> (24 - 8 * k)))) return false;
          }
          group_ = 0;
          count_ = 0;
        }
      }
    }
    return Flush();
  }

 private:
  uint32_t group_ = 0;
  int count_ = 0;
};

class RunLengthStage : public Stage {
 public:
  using Stage::Stage;
  bool Put(const uint8_t* data, size_t n) override {
    for (size_t i = 0; i < n && !ended_; ++i) {
      const uint8_t b = data[i];
      if (literal_ > 0) {
        --literal_;
        if (!Out(b)) return false;
      } else if (repeat_ > 0) {
        for (int k = 0; k < repeat_; ++k) {
          if (!Out(b)) return false;
        }
        repeat_ = 0;
      } else if (b == 128) {
        ended_ = true;
      } else if (b < 128) {
        literal_ = b + 1;
      } else {
        repeat_ = 257 - b;
      }
    }
    return Flush();
  }

 private:
  int literal_ = 0, repeat_ = 0;
};

// LZW as PDF uses it (EarlyChange 1: the code width grows one code early).
class LzwStage : public Stage {
 public:
  explicit LzwStage(Sink* next) : Stage(next) { Reset(); }
  bool Put(const uint8_t* data, size_t n) override {
    for (size_t i = 0; i < n && !ended_; ++i) {
      bits_ = (bits_ << 8) | data[i];
      nbits_ += 8;
      while (nbits_ >= width_ && !ended_) {
        const int code = static_cast<int>((bits_ >> (nbits_ - width_)) & ((1u << width_) - 1));
        nbits_ -= width_;
        if (!Code(code)) return false;
      }
    }
    return Flush();
  }

 private:
  void Reset() {
    next_code_ = 258;
    width_ = 9;
    prev_ = -1;
  }
  // Writes the string of `code` (walking prefixes backwards into scratch_).
  bool Emit(int code, uint8_t* first) {
    scratch_.clear();
    for (int c = code; c >= 0 && scratch_.size() <= 4096; c = prefix_[c]) {
      scratch_.push_back(c < 256 ? static_cast<uint8_t>(c) : last_[c]);
      if (c < 256) break;
    }
    *first = scratch_.back();
    for (auto it = scratch_.rbegin(); it != scratch_.rend(); ++it) {
      if (!Out(*it)) return false;
    }
    return true;
  }
  bool Code(int code) {
    if (code == 256) {
      Reset();
      return true;
    }
    if (code == 257) {
      ended_ = true;
      return true;
    }
    uint8_t first = 0;
    if (prev_ < 0) {
      if (code > 255) {  // corrupt: poppler stops too
        ended_ = true;
        return true;
      }
      prev_ = code;
      return Out(static_cast<uint8_t>(code));
    }
    if (code < next_code_) {
      if (!Emit(code, &first)) return false;
    } else if (code == next_code_) {  // the KwKwK case: prev's string + its first byte
      uint8_t prev_first = 0;
      if (!Emit(prev_, &prev_first)) return false;
      first = prev_first;
      if (!Out(first)) return false;
    } else {
      ended_ = true;
      return true;
    }
    if (next_code_ < 4096) {
      prefix_[next_code_] = prev_;
      last_[next_code_] = first;
      ++next_code_;
      if (next_code_ + 1 >= (1 << width_) && width_ < 12) ++width_;
    }
    prev_ = code;
    return true;
  }

  std::array<int, 4096> prefix_{};
  std::array<uint8_t, 4096> last_{};
  std::vector<uint8_t> scratch_;
  uint64_t bits_ = 0;
  int nbits_ = 0, width_ = 9, next_code_ = 258, prev_ = -1;
};

// The value of `/key` at the top level of a dictionary's text (from the key to the next key or
// the end), or "".
std::string_view ValueOf(std::string_view dict, std::string_view key) {
  size_t at = 0;
  while ((at = dict.find(key, at)) != std::string_view::npos) {
    const size_t end = at + key.size();
    if (end < dict.size() && !IsDelimiter(dict[end])) {
      at = end;
      continue;
    }
    std::string_view rest = dict.substr(end);
    while (!rest.empty() && IsWhite(rest.front())) rest.remove_prefix(1);
    if (!rest.empty() && rest.front() == '[') {
      const size_t close = rest.find(']');
      return rest.substr(0, close == std::string_view::npos ? rest.size() : close + 1);
    }
    size_t stop = rest.empty() ? 0 : 1;
    while (stop < rest.size() && !IsDelimiter(rest[stop])) ++stop;
    return rest.substr(0, stop);
  }
  return {};
}

// Whether the dictionary has the name `name` as a value somewhere (e.g. /Image).
bool HasName(std::string_view dict, std::string_view name) {
  size_t at = 0;
  while ((at = dict.find(name, at)) != std::string_view::npos) {
    const size_t end = at + name.size();
    if (end == dict.size() || IsDelimiter(dict[end])) return true;
    at = end;
  }
  return false;
}

// The filter names of a /Filter value: "/FlateDecode" or "[/ASCII85Decode /FlateDecode]".
std::vector<std::string> FilterNames(std::string_view value) {
  std::vector<std::string> names;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '/') continue;
    size_t j = i + 1;
    while (j < value.size() && !IsDelimiter(value[j])) ++j;
    names.emplace_back(value.substr(i + 1, j - i - 1));
    i = j - 1;
  }
  return names;
}

// The dictionary text that ends just before `stream_kw` (the position of the keyword), or ""
// when there is no complete dictionary there.
std::string_view DictBefore(std::string_view pdf, size_t stream_kw) {
  size_t end = stream_kw;
  while (end > 0 && IsWhite(pdf[end - 1])) --end;
  if (end < 2 || pdf[end - 1] != '>' || pdf[end - 2] != '>') return {};
  // Walk back to the matching "<<", counting nested dictionaries.
  const size_t floor = end > kMaxDictBytes ? end - kMaxDictBytes : 0;
  int depth = 0;
  for (size_t i = end; i >= floor + 2; --i) {
    if (pdf[i - 1] == '>' && pdf[i - 2] == '>') {
      ++depth;
      --i;
    } else if (pdf[i - 1] == '<' && pdf[i - 2] == '<') {
      if (--depth == 0) return pdf.substr(i - 2, end - (i - 2));
      --i;
    }
  }
  return {};
}

}  // namespace

uint64_t PdfDecodedStreamBytes(std::string_view pdf, uint64_t limit) {
  uint64_t total = 0;
  size_t at = 0;
  while ((at = pdf.find("stream", at)) != std::string_view::npos) {
    const size_t kw = at;
    at += 6;
    // The keyword (not the tail of "endstream"), then white space up to the end of its line.
    if (kw >= 3 && pdf.substr(kw - 3, 3) == "end") continue;
    size_t data = kw + 6;
    if (data >= pdf.size() || !IsWhite(pdf[data])) continue;
    while (data < pdf.size() && (pdf[data] == ' ' || pdf[data] == '\t')) ++data;
    if (data < pdf.size() && pdf[data] == '\r') ++data;
    if (data < pdf.size() && pdf[data] == '\n') ++data;
    const std::string_view dict = DictBefore(pdf, kw);
    if (dict.empty()) continue;
    // /Length when it is a number that lands on "endstream" (compressed data may contain those
    // letters), else the next "endstream".
    size_t end = std::string_view::npos;
    const std::string_view length = ValueOf(dict, "/Length");
    if (!length.empty() && length.size() <= 12 &&
        std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      const size_t n = std::stoull(std::string(length));
      if (n <= pdf.size() - data) {
        size_t after = data + n;
        while (after < pdf.size() && IsWhite(pdf[after])) ++after;
        if (pdf.substr(after, 9) == "endstream") end = data + n;
      }
    }
    if (end == std::string_view::npos) end = pdf.find("endstream", data);
    if (end == std::string_view::npos) end = pdf.size();
    at = end;
    // Text extraction never decodes images or attachments.
    if (HasName(dict, "/Image") || HasName(dict, "/EmbeddedFile")) continue;
    const std::string_view encoded = pdf.substr(data, end - data);
    const std::vector<std::string> filters = FilterNames(ValueOf(dict, "/Filter"));

    Counter counter(&total, limit);
    std::vector<std::unique_ptr<Stage>> stages;
    Sink* next = &counter;
    bool decodable = filters.size() <= kMaxStages;
    for (auto it = filters.rbegin(); decodable && it != filters.rend(); ++it) {
      const std::string& f = *it;
      if (f == "FlateDecode" || f == "Fl") stages.push_back(std::make_unique<FlateStage>(next));
      else if (f == "LZWDecode" || f == "LZW") stages.push_back(std::make_unique<LzwStage>(next));
      else if (f == "ASCII85Decode" || f == "A85") stages.push_back(std::make_unique<Ascii85Stage>(next));
      else if (f == "ASCIIHexDecode" || f == "AHx") stages.push_back(std::make_unique<HexStage>(next));
      else if (f == "RunLengthDecode" || f == "RL") stages.push_back(std::make_unique<RunLengthStage>(next));
      else decodable = false;  // an image codec or Crypt: count the encoded bytes
      if (decodable) next = stages.back().get();
    }
    if (!decodable) {
      total += encoded.size();
      if (total > limit) return total;
      continue;
    }
    for (size_t off = 0; off < encoded.size(); off += kBuffer) {
      const size_t n = std::min(kBuffer, encoded.size() - off);
      if (!next->Put(reinterpret_cast<const uint8_t*>(encoded.data() + off), n)) return total;
    }
  }
  return total;
}

}  // namespace rag::ingest_internal
