// The dense index against a real SQLite store and the real bundled embedder (all-MiniLM-L6-v2,
// fetched by scripts/setup.sh; the tests skip without it): semantic search finds a passage that
// shares no words with the question, and the index follows the store through crashes (a missing
// or stale vectors.faiss, chunks stored but never indexed, chunks deleted but still indexed)
// and refuses another embedder until `rag reindex`.
#include "retrieval/dense_index.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "retrieval/passage_windows.h"
#include "tests/testing/temp_dir.h"

namespace rag {
namespace {

const std::string kModelDir = std::string(RAG_SOURCE_DIR) + "/models/all-MiniLM-L6-v2";

class DenseIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModelDir + "/model.safetensors")) {
      GTEST_SKIP() << kModelDir << " is missing: run scripts/setup.sh";
    }
    auto store = DocumentStore::Open(dir_.file("rag.db"));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }

  std::unique_ptr<Embedder> MiniLm() {
    auto e = LoadBertEmbedder(kModelDir, 2);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(*e) : nullptr;
  }

  StatusOr<std::unique_ptr<DenseIndex>> Open() { return DenseIndex::Open(dir_.path(), MiniLm(), store_.get()); }

  int64_t AddDocument(const std::string& hash, const std::vector<std::string>& texts) {
    NewDocument doc;
    doc.collection = "default";
    doc.content_hash = hash;
    doc.filename = hash + ".txt";
    bool existed = true;
    auto rec = store_->CreateDocument(doc, &existed);
    EXPECT_TRUE(rec.ok());
    std::vector<Chunk> chunks;
    for (const std::string& t : texts) {
      Chunk c;
      c.page = 1;
      c.end = t.size();
      c.text = t;
      chunks.push_back(c);
    }
    EXPECT_TRUE(store_->StoreChunks(rec->id, hash, "text", 1, chunks).ok());
    return rec->id;
  }

  int64_t TopDocument(const DenseIndex& index, const std::string& query) {
    auto hits = index.Search(query, 1);
    EXPECT_TRUE(hits.ok()) << hits.status().ToString();
    if (!hits.ok() || hits->empty()) return -1;
    auto chunks = store_->GetChunks({(*hits)[0].id});
    return chunks.ok() && !chunks->empty() ? (*chunks)[0].document_id : -1;
  }

  testing::TempDir dir_;
  std::unique_ptr<DocumentStore> store_;
};

TEST_F(DenseIndexTest, FindsPassagesByMeaningAndFollowsTheStore) {
  const int64_t cooking = AddDocument("cook", {"Knead the dough, let it rise overnight, then bake the loaf in a hot oven."});
  const int64_t network = AddDocument("net", {"The router forwards packets between the local network and the internet."});
  auto index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->size(), 2);
  // No word in common with either passage.
  EXPECT_EQ(TopDocument(**index, "How do I make bread?"), cooking);
  EXPECT_EQ(TopDocument(**index, "Which device connects my LAN to the web?"), network);

  // A document stored after the index was saved and never embedded (a crash in between):
  // the next Open embeds it.
  const int64_t music = AddDocument("music", {"The violinist tuned her instrument before the symphony concert."});
  index->reset();
  index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->size(), 3);
  EXPECT_EQ(TopDocument(**index, "an orchestra performance with string players"), music);

  // Deleted from the store but still in the index (a crash before RemoveChunks): rebuilt away.
  ASSERT_TRUE(store_->DeleteDocument(music).ok());
  index->reset();
  index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->size(), 2);
  EXPECT_NE(TopDocument(**index, "an orchestra performance with string players"), music);

  // A lost or corrupt vectors.faiss is rebuilt from the store.
  index->reset();
  std::filesystem::remove(dir_.file("vectors.faiss"));
  index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->size(), 2);
  index->reset();
  { std::ofstream(dir_.file("vectors.faiss")) << "not an index"; }
  index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ(TopDocument(**index, "How do I make bread?"), cooking);

  // AddDocument and RemoveChunks keep it in step without a reopen.
  const int64_t extra = AddDocument("extra", {"Glaciers carve valleys as they slowly move downhill."});
  ASSERT_TRUE((*index)->AddDocument(extra).ok());
  ASSERT_TRUE((*index)->AddDocument(extra).ok());  // again: replaced, not duplicated
  EXPECT_EQ((*index)->size(), 3);
  auto chunks = store_->GetDocumentChunks(extra);
  ASSERT_TRUE(chunks.ok());
  ASSERT_TRUE((*index)->RemoveChunks({(*chunks)[0].id}).ok());
  EXPECT_EQ((*index)->size(), 2);
}

// A long passage is embedded as windows (retrieval/passage_windows.h): a sentence past the
// encoder's 256 word pieces, which one vector for the whole chunk would have cut off, is found;
// every window is a vector, removal and re-adding take all of them, and an index made with
// another vector layout is rebuilt on open.
TEST_F(DenseIndexTest, LongPassagesAreEmbeddedAsWindows) {
  std::string filler;
  const char* kFiller[] = {"Tomatoes", "need", "full", "sun,", "rich", "compost", "and", "steady",
                           "watering", "through", "the", "summer", "months", "in", "the", "garden."};
  for (int i = 0; i < 240; ++i) filler += std::string(kFiller[i % 16]) + " ";
  const std::string tail = "The lighthouse keeper climbed the spiral stairs each evening to light "
                           "the great lamp that warns ships away from the rocks.";
  const int64_t long_doc = AddDocument("long", {filler + tail});
  AddDocument("sea", {"Fishing boats return to the harbour at dawn with their catch of cod."});
  AddDocument("bird", {"Seagulls nest on the cliffs and dive for fish along the shore."});
  auto index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  const int64_t windows = static_cast<int64_t>(PassageWindows(filler + tail).size());
  ASSERT_GT(windows, 4);
  EXPECT_EQ((*index)->size(), windows + 2);
  EXPECT_EQ(TopDocument(**index, "Who keeps the beacon burning for sailors at night?"), long_doc);
  auto hits = (*index)->Search("Who keeps the beacon burning for sailors at night?", 3);
  ASSERT_TRUE(hits.ok());
  ASSERT_EQ(hits->size(), 3u);  // three chunks, each once, though one has many windows
  EXPECT_NE((*hits)[0].id, (*hits)[1].id);
  EXPECT_NE((*hits)[1].id, (*hits)[2].id);

  auto chunks = store_->GetDocumentChunks(long_doc);
  ASSERT_TRUE(chunks.ok());
  ASSERT_TRUE((*index)->AddDocument(long_doc).ok());  // replaced, not duplicated
  EXPECT_EQ((*index)->size(), windows + 2);
  ASSERT_TRUE((*index)->RemoveChunks({(*chunks)[0].id}).ok());
  EXPECT_EQ((*index)->size(), 2);
  ASSERT_TRUE((*index)->AddDocument(long_doc).ok());

  // An index of another layout (one vector a chunk, as before windows): rebuilt on open.
  index->reset();
  ASSERT_TRUE(store_->SetMeta("vector_layout", "one vector a chunk").ok());
  index = Open();
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  EXPECT_EQ((*index)->size(), windows + 2);
  auto layout = store_->GetMeta("vector_layout");
  ASSERT_TRUE(layout.ok() && layout->has_value());
  EXPECT_NE(**layout, "one vector a chunk");
}

TEST_F(DenseIndexTest, AnotherEmbedderNeedsAReindex) {
  AddDocument("cook", {"Knead the dough, let it rise overnight, then bake the loaf."});
  ASSERT_TRUE(Open().ok());
  ASSERT_TRUE(store_->SetMeta("embedder", "bge-small-en-v1.5:384").ok());  // as if made by another
  auto refused = Open();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("rag reindex"), std::string::npos) << refused.status().message();
  auto reindexed = DenseIndex::Reindex(dir_.path(), MiniLm(), store_.get());
  ASSERT_TRUE(reindexed.ok()) << reindexed.status().ToString();
  EXPECT_EQ((*reindexed)->size(), 1);
  reindexed->reset();
  EXPECT_TRUE(Open().ok());
}

}  // namespace
}  // namespace rag
