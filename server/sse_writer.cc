#include "server/sse_writer.h"

#include <exception>
#include <string>
#include <utility>

#include "common/logging.h"

namespace rag {

SseWriter::SseWriter(Pistache::Http::ResponseStream stream) : stream_(std::move(stream)) {}

bool SseWriter::Send(std::string_view event, std::string_view data) {
  if (failed_ || ended_) return false;
  std::string frame;
  frame.reserve(event.size() + data.size() + 16);
  if (!event.empty()) frame.append("event: ").append(event).append("\n");
  frame.append("data: ").append(data).append("\n\n");
  try {
    stream_.write(frame.data(), static_cast<std::streamsize>(frame.size()));
    stream_ << Pistache::Http::flush;
  } catch (const std::exception& e) {
    failed_ = true;
    RAG_LOG(DEBUG) << "sse: write failed (client gone?): " << e.what();
  } catch (...) {
    failed_ = true;
  }
  return !failed_;
}

void SseWriter::End() {
  if (ended_) return;
  ended_ = true;
  if (failed_) return;
  try {
    stream_ << Pistache::Http::ends;
  } catch (const std::exception& e) {
    failed_ = true;
    RAG_LOG(DEBUG) << "sse: end of stream failed (client gone?): " << e.what();
  } catch (...) {
    failed_ = true;
  }
}

}  // namespace rag
