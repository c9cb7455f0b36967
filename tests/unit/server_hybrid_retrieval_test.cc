// Hybrid retrieval through the Assistant with the real bundled embedder (skips without
// models/all-MiniLM-L6-v2, fetched by scripts/setup.sh): a question sharing no word with its
// answer is found through the dense index, collection and document filters hold for the dense
// candidates too, a deleted document's passages never come back, and the vectors survive a
// restart without being embedded again.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/assistant.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

const std::string kEmbedder = std::string(RAG_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";

class HybridRetrievalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kEmbedder + "/model.safetensors")) {
      GTEST_SKIP() << kEmbedder << " is missing: run scripts/setup.sh";
    }
  }
  std::unique_ptr<Assistant> Open() {
    AssistantOptions options;
    options.data_dir = dir_.file("data");
    options.mode = "extractive";
    options.embedder_path = kEmbedder;
    options.model_threads = 2;
    auto a = Assistant::Open(options);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    return a.ok() ? std::move(*a) : nullptr;
  }
  int64_t Ingest(Assistant& a, const std::string& name, const std::string& text,
                 const std::string& collection) {
    const std::string path = dir_.file(name);
    std::ofstream(path) << text;
    auto r = a.IngestPath(path, collection, {});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->document.id : -1;
  }
  std::vector<int64_t> Documents(Assistant& a, QueryRequest request) {
    auto passages = a.Retrieve(request);
    EXPECT_TRUE(passages.ok()) << passages.status().ToString();
    std::vector<int64_t> docs;
    if (passages.ok()) {
      for (const Passage& p : *passages) docs.push_back(p.chunk.document_id);
    }
    return docs;
  }
  testing::TempDir dir_;
};

TEST_F(HybridRetrievalTest, DenseCandidatesFollowFiltersAndDeletes) {
  auto a = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(a->dense(), nullptr);
  const int64_t bread = Ingest(*a, "bread.txt",
                               "Knead the dough for ten minutes, let it rise overnight, then bake the "
                               "loaf in a very hot oven until the crust is brown.", "kitchen");
  const int64_t router = Ingest(*a, "router.txt",
                                "The router forwards packets between the local network and the "
                                "internet service provider.", "office");
  const int64_t glacier = Ingest(*a, "glacier.txt",
                                 "Glaciers carve deep valleys as the ice slowly moves downhill over "
                                 "thousands of years.", "office");
  EXPECT_EQ(a->dense()->size(), 3);

  QueryRequest q;
  q.question = "How do I make bread at home?";  // "bread" only: BM25 alone finds nothing
  q.top_k = 1;
  EXPECT_EQ(Documents(*a, q), (std::vector<int64_t>{bread}));

  q.collection = "office";  // the best dense match is in another collection
  q.top_k = 3;
  for (int64_t d : Documents(*a, q)) EXPECT_NE(d, bread);
  q.collection.reset();
  q.document_id = glacier;
  EXPECT_EQ(Documents(*a, q), (std::vector<int64_t>{glacier}));
  q.document_id.reset();
  q.allowed_collections = {"kitchen"};
  EXPECT_EQ(Documents(*a, q), (std::vector<int64_t>{bread}));
  q.allowed_collections.clear();

  ASSERT_TRUE(a->DeleteDocument(bread).ok());
  EXPECT_EQ(a->dense()->size(), 2);
  for (int64_t d : Documents(*a, q)) EXPECT_NE(d, bread);

  // A restart loads the saved vectors (same count, nothing re-embedded: mtime unchanged).
  const auto saved = std::filesystem::last_write_time(dir_.file("data/vectors.faiss"));
  a.reset();
  a = Open();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dense()->size(), 2);
  EXPECT_EQ(std::filesystem::last_write_time(dir_.file("data/vectors.faiss")), saved);
  QueryRequest net;
  net.question = "Which box links my LAN to the web?";
  net.top_k = 1;
  EXPECT_EQ(Documents(*a, net), (std::vector<int64_t>{router}));

  // A changed file at the same path replaces its old version, vectors included.
  const int64_t router2 = Ingest(*a, "router.txt",
                                 "The modem and the wireless access point share one small box on "
                                 "the desk.", "office");
  EXPECT_NE(router2, router);
  EXPECT_EQ(a->dense()->size(), 2);
  a.reset();
  a = Open();  // nothing stale for the repair to find: the index is not rebuilt
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dense()->size(), 2);
}

}  // namespace
}  // namespace rag
