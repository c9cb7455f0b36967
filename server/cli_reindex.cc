// `rag reindex`: embeds every chunk of the data folder's ready documents again into a fresh
// vectors.faiss, for the embedder given (--embedder, or the bundled one), e.g. after changing
// embedders (opening the folder with another embedder refuses and names this command).
#include <cstdio>
#include <filesystem>

#include "common/progress_bar.h"
#include "engine/bert/embedder.h"
#include "retrieval/dense_index.h"
#include "retrieval/document_store.h"
#include "server/cli_commands.h"
#include "server/model_device.h"

namespace rag {

int RunReindexCommand(const CommonFlags& common) {
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "rag reindex: %s\n", st.message().c_str());
    return 1;
  };
  const std::string embedder_dir = ResolveEmbedder(common);
  if (embedder_dir.empty()) {
    return fail(InvalidArgument(std::string("no embedder: give --embedder DIR (the bundled ") +
                                kDefaultEmbedderPath + " is missing: run scripts/setup.sh)"));
  }
  std::error_code ec;
  if (!std::filesystem::exists(common.data_dir + "/rag.db", ec)) {
    return fail(NotFound("no documents in " + common.data_dir + ": run `rag ingest PATH --data " +
                         common.data_dir + "` first"));
  }
  auto store = DocumentStore::Open(common.data_dir + "/rag.db");
  if (!store.ok()) return fail(store.status());
  auto encoder = EmbedderEncoderFor("auto");  // the GPU when there is one
  if (!encoder.ok()) return fail(encoder.status());
  auto embedder = LoadBertEmbedder(embedder_dir, 0, *encoder);
  if (!embedder.ok()) return fail(embedder.status());
  ProgressBar bar("embedding", 0);
  auto index = DenseIndex::Reindex(common.data_dir, std::move(*embedder), store->get(),
                                   [&bar](int64_t done, int64_t total) {
                                     bar.SetTotal(static_cast<size_t>(total));
                                     bar.Add(static_cast<size_t>(done) - bar.done());
                                   });
  bar.Finish();
  if (!index.ok()) return fail(index.status());
  auto counts = (*store)->CountAll();
  if (!counts.ok()) return fail(counts.status());
  std::printf("reindexed %lld chunks (%lld window vectors) with %s\n",
              static_cast<long long>(counts->chunks), static_cast<long long>((*index)->size()),
              (*index)->embedder().name().c_str());
  return 0;
}

}  // namespace rag
