// Stop strings over streamed text: the generated text arrives in pieces (one or more tokens'
// worth), and must stop right before the first occurrence of any stop string, even when a stop
// string is split across pieces. Text that might be the start of a stop string is held back
// until it is known not to be.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace rag {

class StopStringMatcher {
 public:
  // Empty stop strings are ignored.
  explicit StopStringMatcher(std::vector<std::string> stops);

  // Adds a piece; returns the text that is now safe to emit (possibly ""). After a stop string
  // is seen, returns the text before it once and stopped() is true; later calls return "".
  std::string Feed(std::string_view piece);
  // At the end of generation: the text still held back (never part of a stop string).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace rag
