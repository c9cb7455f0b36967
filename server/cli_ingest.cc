// `rag ingest PATH...`: files and folders, parsed in parallel, stored one transaction per
// document, with a progress bar on a terminal and a summary line at the end.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "common/logging.h"
#include "common/progress_bar.h"
#include "common/thread_pool.h"
#include "ingest/parser.h"
#include "server/assistant.h"
#include "server/cli_commands.h"

namespace rag {
namespace {

// Expands folders recursively into the supported files below them (hidden entries skipped),
// sorted so that runs are reproducible. Files named explicitly are kept whatever their type,
// so that an unsupported one gets a clear error.
StatusOr<std::vector<std::string>> ExpandPaths(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  for (const auto& path : paths) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      std::vector<std::string> found;
      auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
      if (ec) return InvalidArgument("cannot read folder " + path + ": " + ec.message());
      for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) return InvalidArgument("cannot read folder " + path + ": " + ec.message());
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file() && IsSupportedFileName(name)) found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::exists(path, ec)) {
      files.push_back(path);
    } else {
      return NotFound("no such file or folder: " + path);
    }
  }
  return files;
}

}  // namespace

int RunIngestCommand(const CommonFlags& common, const IngestFlags& flags) {
  const auto t0 = std::chrono::steady_clock::now();
  auto files = ExpandPaths(flags.paths);
  if (!files.ok()) {
    std::fprintf(stderr, "rag ingest: %s\n", files.status().message().c_str());
    return 1;
  }
  if (files->empty()) {
    std::fprintf(stderr, "rag ingest: no supported files (.pdf .txt .md .html) in the given paths\n");
    return 1;
  }
  AssistantOptions options;
  options.data_dir = common.data_dir;
  options.embedder_path = ResolveEmbedder(common);
  if (flags.chunk_words > 0) {
    options.chunking.target_words = static_cast<size_t>(flags.chunk_words);
    options.chunking.max_words = std::max(options.chunking.max_words, options.chunking.target_words);
  }
  if (flags.chunk_overlap >= 0) options.chunking.overlap_words = static_cast<size_t>(flags.chunk_overlap);
  if (options.chunking.overlap_words >= options.chunking.target_words) {
    std::fprintf(stderr, "rag ingest: --chunk-overlap must be smaller than --chunk-words\n");
    return 2;
  }
  auto assistant = Assistant::Open(options);
  if (!assistant.ok()) {
    std::fprintf(stderr, "rag ingest: %s\n", assistant.status().message().c_str());
    return 1;
  }

  std::mutex mu;
  int stored = 0, unchanged = 0, failed = 0;
  long long pages = 0, chunks = 0;
  std::vector<std::string> errors;
  {
    ProgressBar bar("ingest", files->size());
    ThreadPool pool(flags.jobs > 0 ? static_cast<size_t>(flags.jobs) : 0);
    pool.ParallelFor(files->size(), [&](size_t i) {
      const std::string& path = (*files)[i];
      auto result = (*assistant)->IngestPath(path, flags.collection);
      std::lock_guard<std::mutex> lock(mu);
      if (!result.ok()) {
        ++failed;
        errors.push_back(result.status().message());
      } else if (result->duplicate) {
        ++unchanged;
      } else {
        ++stored;
        pages += result->document.pages;
        chunks += result->document.chunks;
      }
      bar.Add(1, path);
    });
  }
  for (const auto& e : errors) std::fprintf(stderr, "rag ingest: error: %s\n", e.c_str());
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("ingested %zu files (%d new, %d unchanged, %d failed): %lld pages, %lld chunks in %.2f s\n",
              files->size(), stored, unchanged, failed, pages, chunks, secs);
  return failed ? 1 : 0;
}

}  // namespace rag
