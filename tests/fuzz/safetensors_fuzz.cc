// Fuzz target: the safetensors header parser (engine/safetensors.h). The input is a whole
// .safetensors file (8-byte little-endian header length, JSON header, data), written to an
// in-memory file (memfd) that SafetensorsReader::OpenFile maps like a file on disk. On success
// every tensor must be what the header validated: data inside the file, nbytes equal to the
// shape's element count times the dtype size, no two tensors overlapping; small tensors are also
// converted to fp32 (which reads every byte of their data).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "engine/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

// One memfd for the whole run; its /proc/self/fd path stands for a file on disk.
int MemFd() {
  static const int fd = [] {
    const int fd = memfd_create("safetensors_fuzz", 0);
    if (fd < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    return fd;
  }();
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = MemFd();
  FUZZ_CHECK(ftruncate(fd, 0) == 0);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = pwrite(fd, data + written, size - written, static_cast<off_t>(written));
    FUZZ_CHECK(n > 0);
    written += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  rag::StatusOr<std::unique_ptr<rag::SafetensorsReader>> reader = rag::SafetensorsReader::OpenFile(path);
  if (!reader.ok()) {
    FUZZ_CHECK(reader.status().message().find(path) != std::string::npos);  // names the file
    return 0;
  }
  const uint64_t header_len = size >= 8 ? [&] {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
    return n;
  }() : 0;
  FUZZ_CHECK(size >= 8 && header_len <= size - 8);
  std::vector<std::pair<const uint8_t*, const uint8_t*>> spans;  // [begin, end) of each tensor's data
  const std::vector<std::string> names = (*reader)->Names();
  for (const std::string& name : names) {
    rag::StatusOr<const rag::TensorView*> t = (*reader)->Get(name);
    FUZZ_CHECK(t.ok());
    const rag::TensorView& v = **t;
    FUZZ_CHECK(v.name == name);
    // The element count in exact (128-bit) arithmetic must match the bytes of data.
    unsigned __int128 numel = 1;
    for (int64_t d : v.shape) {
      FUZZ_CHECK(d >= 0);
      numel *= static_cast<uint64_t>(d);
      if (numel > (static_cast<unsigned __int128>(1) << 64)) numel = static_cast<unsigned __int128>(1) << 64;
    }
    FUZZ_CHECK(numel * rag::TensorDTypeSize(v.dtype) == v.nbytes);
    FUZZ_CHECK(static_cast<unsigned __int128>(v.numel()) == numel);
    (void)v.ShapeString();
    if (v.nbytes > 0) spans.emplace_back(v.data, v.data + v.nbytes);
    if (v.nbytes <= (1u << 16)) {
      std::vector<float> out(static_cast<size_t>(numel));
      rag::SafetensorsReader::ToFloat(v, out.data());
    }
  }
  // No two tensors overlap, and together they fit in the data section (what follows the header).
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i) FUZZ_CHECK(spans[i - 1].second <= spans[i].first);
  if (!spans.empty()) {
    FUZZ_CHECK(static_cast<uint64_t>(spans.back().second - spans.front().first) <= size - 8 - header_len);
  }
  return 0;
}
